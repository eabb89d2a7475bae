#!/usr/bin/env bash
# Bootstrap a fresh Debian machine: system packages (apt-get) and .venv with the project installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# libmagic for detection, poppler for PDF text/images, LibreOffice (no GUI) for legacy Office,
# Chromium for the console's browser tests, CJK fonts so Japanese renders in PDFs and screenshots.
PKGS=(libmagic1 poppler-utils libreoffice-core-nogui libreoffice-writer-nogui libreoffice-calc-nogui
      libreoffice-impress-nogui chromium fonts-noto-cjk sqlite3 libcairo2 poppler-data libturbojpeg0 libjbig2dec0
      libseccomp2)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Workers started by root drop to this unprivileged user (cdr/sandbox); others use a user namespace.
if [ "$(id -u)" = 0 ] && ! getent passwd cdr-worker >/dev/null; then
  echo "bootstrap: creating the unprivileged user cdr-worker for sandboxed workers"
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin cdr-worker
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  python3 -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ setup.cfg -nt .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  echo "bootstrap: installing the project into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch .venv/.installed
fi

# Workers write no bytecode (PYTHONDONTWRITEBYTECODE, a read-only sandbox) and import a handler when
# its first file arrives: compile ours here, or every worker compiles the modules it imports again.
.venv/bin/python -m compileall -q cdr
