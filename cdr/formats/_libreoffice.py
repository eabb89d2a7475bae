"""Run LibreOffice headless for one conversion, inside the worker, offline and bounded in time.

Each run gets a private profile under the job's workdir, pre-seeded with settings that keep
macros from running, VBA from being loaded and links from being refreshed; proxies point at a
dead port as a second guard (the worker sandbox is the real network barrier).
"""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import time
from pathlib import Path

from ..errors import ToolMissing
from ..handler import Context
from ._tools import run_tool

_S = "/org.openoffice.Office.Common/Security/Scripting"
_SETTINGS = [
    (_S, "MacroSecurityLevel", "int", "3"),
    (_S, "DisableMacrosExecution", "boolean", "true"),
    (_S, "BlockUntrustedRefererLinks", "boolean", "true"),
    ("/org.openoffice.Office.Writer/Content/Update", "Link", "int", "0"),  # 0 = never (sw NEVER)
    ("/org.openoffice.Office.Writer/Content/Update", "Field", "boolean", "false"),
    ("/org.openoffice.Office.Calc/Content/Update", "Link", "int", "1"),  # 1 = never (LM_NEVER)
    ("/org.openoffice.Inet/Settings", "ooInetProxyType", "int", "1"),
    ("/org.openoffice.Inet/Settings", "ooInetHTTPProxyName", "string", "127.0.0.1"),
    ("/org.openoffice.Inet/Settings", "ooInetHTTPProxyPort", "int", "9"),
    ("/org.openoffice.Inet/Settings", "ooInetHTTPSProxyName", "string", "127.0.0.1"),
    ("/org.openoffice.Inet/Settings", "ooInetHTTPSProxyPort", "int", "9"),
    ("/org.openoffice.Inet/Settings", "ooInetNoProxy", "string", ""),
    ("/org.openoffice.Office.Common/Misc", "UseLocking", "boolean", "false"),
]
for _app in ("Writer", "Calc", "Impress"):
    for _prop in ("Load", "Executable", "Save"):
        _SETTINGS.append((f"/org.openoffice.Office.{_app}/Filter/Import/VBA", _prop, "boolean", "false"))

# Address space LibreOffice needs: it maps far more than it touches.
_LO_ADDRESS_SPACE = 16 << 30
_MIN_SECONDS = 5.0
_DEFAULT_SECONDS = 120.0


def soffice_path() -> str | None:
    """The soffice binary, or None when LibreOffice is not installed."""
    for name in ("soffice", "libreoffice"):
        found = shutil.which(name)
        if found:
            return found
    for cand in ("/usr/lib/libreoffice/program/soffice", "/opt/libreoffice/program/soffice"):
        if os.access(cand, os.X_OK):
            return cand
    return None


def launcher() -> str | None:
    """What to execute: oosplash beside soffice when present (it restarts soffice.bin after a first
    start with a new profile, as the soffice script does); that script itself would need /bin/sh and
    coreutils, which the worker sandbox does not let a worker execute."""
    exe = soffice_path()
    if exe is None:
        return None
    splash = Path(os.path.realpath(exe)).with_name("oosplash")
    return str(splash) if os.access(splash, os.X_OK) else exe


def _profile(workdir: Path) -> Path:
    prof = workdir / "lo-profile"
    user = prof / "user"
    if not (user / "registrymodifications.xcu").exists():
        user.mkdir(parents=True, exist_ok=True)
        items = "".join(
            f'<item oor:path="{path}"><prop oor:name="{name}" oor:op="fuse">'
            f'<value xsi:type="xs:{typ}">{value}</value></prop></item>\n'
            for path, name, typ, value in _SETTINGS)
        (user / "registrymodifications.xcu").write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<oor:items xmlns:oor="http://openoffice.org/2001/registry" '
            'xmlns:xs="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n' + items + "</oor:items>\n", "utf-8")
    return prof


def _preexec() -> None:
    # The worker caps RLIMIT_AS for Python parsers; LibreOffice maps far more than it touches.
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return
    new = hard if hard != resource.RLIM_INFINITY else max(soft, _LO_ADDRESS_SPACE)
    resource.setrlimit(resource.RLIMIT_AS, (new, hard))


def convert(ctx: Context, src: Path, target: str, out_dir: Path | None = None, suffix: str | None = None) -> Path:
    """Convert `src` with LibreOffice to format `target` (e.g. "docx", "xlsx:Calc MS Excel 2007 XML").

    Returns the produced file. Raises ToolMissing with a clerk-readable reason on any failure.
    """
    exe = launcher()
    if exe is None:
        raise ToolMissing("LibreOffice is not installed, so this legacy Office file cannot be converted",
                          "LibreOffice が導入されていないため、旧形式の Office ファイルを変換できません")
    out_dir = out_dir or (ctx.workdir / "lo-out")
    out_dir.mkdir(parents=True, exist_ok=True)
    # LibreOffice names the output after the input's stem: give it a plain ASCII name.
    ext = suffix if suffix is not None else src.suffix.lower()
    staged = ctx.workdir / f"lo-in{ext}"
    if staged != src:
        shutil.copyfile(src, staged)
    prof = _profile(ctx.workdir)
    remaining = ctx.deadline - time.monotonic() if ctx.deadline != float("inf") else _DEFAULT_SECONDS
    if remaining < _MIN_SECONDS:
        raise ToolMissing("not enough time left to run the converter", "変換に必要な処理時間が残っていません",
                          threat_id="file.timeout")
    home = ctx.workdir / "lo-home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(ctx.workdir),
        "LANG": "C.UTF-8",
        "SAL_USE_VCLPLUGIN": "svp",
        "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
        "no_proxy": "", "NO_PROXY": "",
    }
    cmd = [exe, "--headless", "--norestore", "--nologo", "--nodefault", "--nolockcheck", "--invisible",
           f"-env:UserInstallation={prof.resolve().as_uri()}",
           "--convert-to", target, "--outdir", str(out_dir), str(staged)]
    try:
        proc = run_tool(cmd, min(remaining, _DEFAULT_SECONDS * 5), _preexec, ctx.workdir, env)
    except OSError as exc:
        raise ToolMissing(f"LibreOffice could not be started ({exc.strerror or exc})",
                          "LibreOffice を起動できなかったため変換できません") from None
    except subprocess.TimeoutExpired:
        raise ToolMissing("the LibreOffice conversion took too long and was stopped",
                          "LibreOffice による変換が時間内に終わらなかったため中止しました",
                          threat_id="file.timeout") from None
    out, err = proc.stdout, proc.stderr
    produced = out_dir / f"{staged.stem}.{target.split(':', 1)[0]}"
    if proc.returncode != 0 or not produced.exists() or produced.stat().st_size == 0:
        detail = (err or out or b"").decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise ToolMissing(f"LibreOffice could not convert the file (exit {proc.returncode}) {detail[0][:200]}".strip(),
                          "LibreOffice で変換できませんでした。ファイルが壊れている可能性があります")
    return produced
