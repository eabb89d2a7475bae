"""The worker sandbox: what a parser exploited inside `cdr.worker` can still reach (nearly nothing).

Each long-lived worker process, before it reads a byte of a job:
- runs as an unprivileged user: root drops to the `cdr-worker` user (CDR_WORKER_USER), with no
  supplementary groups; anyone else enters a user namespace of their own, keeping no capability;
- has a mount namespace with a /tmp of its own, in which its private stage directory is /tmp/job
  (the parent links each job's input into /tmp/job/in, read-only, and takes outputs from
  /tmp/job/out), and an empty network namespace;
- is confined by Landlock: it reads only the system's programs, libraries, fonts and a few named
  files of /etc, Python and our code; it writes only its stage; it executes only HELPER_TOOLS;
- runs with no_new_privs and a seccomp filter (`syscalls.DENIED`, namespace flags, sockets other
  than local stream ones, connect()).
Everything it starts (LibreOffice, poppler) inherits all of it.

`CDR_WORKER_SANDBOX=0` is the only way to run workers without it. Where the sandbox cannot be set
up, workers refuse to start (fail closed) with a message naming what is missing and that switch.
"""
from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SandboxUnavailable
from . import landlock, namespaces, syscalls

__all__ = ["HELPER_TOOLS", "SYSTEM_READ", "SandboxUnavailable", "enabled", "enter", "lock", "preflight"]

# The only programs a worker may execute, looked up on PATH when it starts. "soffice" stands for
# LibreOffice's launcher and office binary (oosplash, soffice.bin), started directly: the soffice
# shell script would need /bin/sh and coreutils. A tool that is a script is never made executable.
# JPEGs are transcoded in process by libturbojpeg (cdr/formats/image/turbojpeg.py): no jpegtran here.
HELPER_TOOLS = ("soffice", "pdftotext", "pdftoppm", "pdfinfo", "rsvg-convert")

# Read-only for the worker besides Python and our code: programs and libraries, fonts, the files of
# /etc that the C library, fontconfig, libmagic, OpenSSL and LibreOffice read, and a few of /proc.
SYSTEM_READ = (
    "/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin",
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/timezone",
    "/etc/locale.alias", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/fonts", "/etc/libreoffice", "/etc/magic",
    "/etc/mime.types", "/etc/papersize", "/etc/ssl/openssl.cnf", "/var/cache/fontconfig",
    "/var/spool/libreoffice",  # LibreOffice's shared extension cache (a link from its share/ folder)
    "/dev/zero", "/dev/urandom", "/dev/random",
    "/proc/self", "/proc/filesystems", "/proc/meminfo", "/proc/stat", "/proc/cpuinfo",
    "/sys/devices/system/cpu",
)

TMP = "/tmp"  # a worker's own (a tmpfs)
VIEW = "/tmp/job"  # where a worker sees its stage directory
STAGE_DIRS = ("in", "out", "work", "home")
SWITCH = "CDR_WORKER_SANDBOX"
DEFAULT_USER = "cdr-worker"


def enabled() -> bool:
    return os.environ.get(SWITCH, "1") != "0"


def worker_ids() -> tuple[int, int] | None:
    """(uid, gid) root drops workers to; None when not root (workers use a user namespace)."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("CDR_WORKER_USER", DEFAULT_USER)
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise SandboxUnavailable(
            f"running as root, but the unprivileged user {name!r} for workers does not exist (create it: "
            f"useradd --system --user-group --no-create-home --shell /usr/sbin/nologin {name}; "
            "or name another with CDR_WORKER_USER)") from None
    if pw.pw_uid == 0 or pw.pw_gid == 0:
        raise SandboxUnavailable(f"the worker user {name!r} must not have uid or gid 0")
    return pw.pw_uid, pw.pw_gid


def preflight() -> tuple[int, int] | None:
    """Parent side, before starting workers: raise SandboxUnavailable naming what is missing."""
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable("it needs Linux (Landlock, seccomp, namespaces)")
    abi = landlock.abi_version()
    if abi < landlock.MIN_ABI:
        raise SandboxUnavailable(f"Landlock is {'missing or disabled' if abi == 0 else f'ABI {abi}'} "
                                 f"(need ABI {landlock.MIN_ABI}: Linux 5.19 or later with lsm=landlock)")
    missing = syscalls.available()
    if missing:
        raise SandboxUnavailable(missing)
    ids = worker_ids()
    if ids is None:
        try:
            if Path("/proc/sys/user/max_user_namespaces").read_text().strip() == "0":
                raise SandboxUnavailable("user namespaces are disabled (user.max_user_namespaces = 0)")
            if Path("/proc/sys/kernel/unprivileged_userns_clone").read_text().strip() == "0":
                raise SandboxUnavailable("unprivileged user namespaces are disabled "
                                         "(kernel.unprivileged_userns_clone = 0)")
        except FileNotFoundError:
            pass
    return ids


# --------------------------------------------------------------------------- worker side

@dataclass
class Confinement:
    stage: str
    ids: tuple[int, int] | None
    covered: list[str] = field(default_factory=list)


def _real(p: str | os.PathLike, folders: dict[str, str] | None = None) -> Path:
    """os.path.realpath. With `folders` (a cache of the real paths of folders), a path whose last part
    is a plain name and not a link is its folder's real path plus that name: the same answer, with a
    folder resolved once rather than once per module in it (a hundred modules, 15 ms before a worker
    is ready)."""
    s = os.fspath(p)
    if folders is not None:
        head, tail = os.path.split(s)
        if os.path.isabs(s) and tail not in ("", ".", "..") and not os.path.islink(s):
            real = folders.get(head)
            if real is None:
                real = folders[head] = os.path.realpath(head)
            return Path(real, tail)
    return Path(os.path.realpath(s))


def _python_dirs() -> set[Path]:
    """The interpreter's installation and site-packages (read wholesale: lazy imports read them)."""
    dirs = {_real(p) for p in (sys.base_prefix, sys.prefix, sys.base_exec_prefix, sys.exec_prefix)}
    for entry in sys.path:
        if entry and entry.rstrip("/").endswith(("site-packages", "dist-packages")) and os.path.isdir(entry):
            dirs.add(_real(entry))
    return dirs


def _package_paths(names: list[str], folders: dict[str, str] | None = None) -> set[Path]:
    """Where top-level packages live: only these, not the folder above them (a checkout, a home)."""
    out: set[Path] = set()
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        if spec.submodule_search_locations:
            out.update(_real(p, folders) for p in spec.submodule_search_locations)
        elif spec.origin and os.path.isfile(spec.origin):
            out.add(_real(spec.origin, folders))
    return out


def _plugin_tops() -> list[str]:
    return [n.strip().split(".")[0] for n in os.environ.get("CDR_PLUGINS", "").split(",") if n.strip()]


def enter(stage: str, ids: tuple[int, int] | None) -> Confinement:
    """First half, before importing the handlers: namespaces, a /tmp of its own with the stage, the user."""
    root = os.geteuid() == 0
    if root and ids is None:
        raise SandboxUnavailable("started as root without a worker user")
    conf = Confinement(stage, ids)
    needed = sorted(_python_dirs() | _package_paths(["cdr", *_plugin_tops()]))
    tmp, view = Path(TMP), Path(VIEW)
    hidden = namespaces.MS_NOSUID | namespaces.MS_NODEV | namespaces.MS_NOEXEC
    fd = -1
    try:
        namespaces.unshare(root)
        # Opened in the new namespace (a mount is bound only from there) and before anything is
        # covered (the stage may lie under /tmp, or under a folder `expose` covers).
        fd = os.open(stage, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        if root:
            conf.covered = namespaces.expose(needed, *ids)
        # /tmp: an empty tmpfs of the worker's own (LibreOffice's pipe goes there), holding the stage
        # (one mount: moving a file from work/ to out/ is a rename) and whatever of our code lies
        # under the real /tmp.
        owner = f",uid={ids[0]},gid={ids[1]}" if root else ""
        namespaces.cover(tmp, [p for p in needed if p.is_relative_to(tmp)],
                         f"mode=0700,size=4m,nr_inodes=4096{owner}")
        os.mkdir(view)
        namespaces.bind(f"/proc/self/fd/{fd}", VIEW, hidden)
        namespaces.bind(f"{VIEW}/in", f"{VIEW}/in", hidden | namespaces.MS_RDONLY)
        os.chdir(VIEW)
        if root:
            namespaces.drop_to(*ids)
        else:
            namespaces.drop_capabilities()
        namespaces.no_new_privs()
    except OSError as exc:
        raise SandboxUnavailable(f"{exc.strerror or exc}" if isinstance(exc, namespaces.SetupError)
                                 else f"{type(exc).__name__}: {exc}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if namespaces.capabilities() != 0:
        raise SandboxUnavailable("capabilities remain after dropping privileges")
    for p in needed:
        if not os.access(p, os.R_OK):
            raise SandboxUnavailable(f"{p} is not readable by the worker user")
    return conf


def _elf_interpreter(path: str) -> str | None:
    """The program interpreter (PT_INTERP) of an ELF executable: the kernel opens it for execution."""
    with open(path, "rb") as f:
        hdr = f.read(64)
        if hdr[:4] != b"\x7fELF" or len(hdr) < 64:
            return None
        wide, end = hdr[4] == 2, "<" if hdr[5] == 1 else ">"
        phoff = struct.unpack_from(end + ("Q" if wide else "I"), hdr, 32 if wide else 28)[0]
        phentsize, phnum = struct.unpack_from(end + "HH", hdr, 54 if wide else 42)
        for i in range(min(phnum, 64)):
            f.seek(phoff + i * phentsize)
            ph = f.read(phentsize)
            if len(ph) < phentsize or struct.unpack_from(end + "I", ph, 0)[0] != 3:  # PT_INTERP
                continue
            off = struct.unpack_from(end + ("Q" if wide else "I"), ph, 8 if wide else 4)[0]
            size = struct.unpack_from(end + ("Q" if wide else "I"), ph, 32 if wide else 16)[0]
            f.seek(off)
            return f.read(min(size, 4096)).split(b"\0")[0].decode("utf-8", "replace") or None
    return None


def helper_programs() -> list[str]:
    """HELPER_TOOLS as executable files (ELF only), resolved."""
    found: list[str] = []
    for name in HELPER_TOOLS:
        if name == "soffice":
            from ..formats._libreoffice import launcher

            exe = launcher()
            paths = [exe, str(Path(exe).with_name("soffice.bin"))] if exe else []
        else:
            exe = shutil.which(name)
            paths = [exe] if exe else []
        found.extend(os.path.realpath(p) for p in paths if p and os.path.isfile(p))
    return found


def _imported_paths(known: set[Path]) -> set[Path]:
    """Top-level packages imported so far from outside the interpreter's own folders (our code, plugins)."""
    tops = {name.split(".")[0] for name, mod in list(sys.modules.items()) if getattr(mod, "__file__", None)}
    out: set[Path] = set()
    for p in _package_paths(sorted(tops), folders={}):
        if not any(p.is_relative_to(k) for k in known):
            out.add(p)
    return out


def lock(conf: Confinement) -> str:
    """Second half, after imports and before the first job: Landlock, then seccomp."""
    try:
        sc = syscalls.binding()
        rs = landlock.Ruleset()
    except (OSError, syscalls.SeccompUnavailable) as exc:
        raise SandboxUnavailable(str(exc)) from None
    try:
        for p in SYSTEM_READ:
            rs.allow(p, landlock.READ)
        py = _python_dirs()
        for p in sorted(py | _imported_paths(py)):
            rs.allow(p, landlock.READ)
        rs.allow("/dev/null", landlock.READ_FILE | landlock.WRITE_FILE | landlock.IOCTL_DEV)
        rs.allow(f"{VIEW}/in", landlock.READ)
        for d in ("out", "work", "home"):
            rs.allow(f"{VIEW}/{d}", landlock.SCRATCH)
        rs.allow(TMP, landlock.MAKE_SOCK | landlock.REMOVE_FILE)  # LibreOffice's pipe: /tmp/OSL_PIPE_*
        programs = helper_programs()
        interpreters: set[str] = set()
        for exe in programs:
            interp = _elf_interpreter(exe)
            if interp is None:
                continue  # a script: its interpreter would let anything run
            interpreters.add(os.path.realpath(interp))
            rs.allow(exe, landlock.EXECUTE | landlock.READ_FILE)
            if exe.endswith("/soffice.bin"):  # LibreOffice outside /usr (/opt/libreoffice...)
                rs.allow(str(Path(exe).parent.parent), landlock.READ)
        for interp in interpreters:
            rs.allow(interp, landlock.EXECUTE | landlock.READ_FILE)
        rs.restrict()
        unknown = syscalls.install(sc)
    except (OSError, syscalls.SeccompUnavailable) as exc:
        raise SandboxUnavailable(f"{type(exc).__name__}: {exc}") from None
    who = f"uid {os.getuid()}" + ("" if conf.ids else " in a user namespace")
    parts = [f"sandbox: {who}", rs.describe(), "seccomp", "network namespace", "mount namespace"]
    if unknown:
        parts.append(f"(libseccomp does not know {', '.join(unknown)})")
    return ", ".join(parts)
