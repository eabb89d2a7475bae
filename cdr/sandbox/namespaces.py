"""Namespaces, mounts and identity of a worker, set up before it reads anything untrusted.

Root drops to the sandbox user; anyone else enters a user namespace of their own. Either way the
worker gets a private mount namespace (a /tmp of its own holding its stage directory, the input
folder read-only) and an empty network namespace.
"""
from __future__ import annotations

import ctypes
import os
import stat
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
_PR_SET_NO_NEW_PRIVS, _PR_CAPBSET_DROP, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 38, 24, 47, 4

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


class SetupError(OSError):
    pass


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise SetupError(err, f"{what}: {os.strerror(err)}")


def _enc(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def _mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = _enc
    _check(_libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)), f"mount {src or fstype} on {dst}")


def unshare(root: bool) -> None:
    """New mount and network namespaces; a user namespace too when not root (mapping our own ids)."""
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWNET | (0 if root else CLONE_NEWUSER)
    _check(_libc.unshare(flags), "unshare" + ("" if root else " (user namespace)"))
    if not root:
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    # Nothing mounted from here on may propagate back to the host.
    _mount(None, "/", None, MS_REC | MS_PRIVATE)


def _locked_flags(path: str) -> int:
    """Per-mount flags to repeat on a remount (a user namespace may not clear them)."""
    f = os.statvfs(path).f_flag
    return (MS_NOSUID if f & os.ST_NOSUID else 0) | (MS_NODEV if f & os.ST_NODEV else 0) | \
        (MS_NOEXEC if f & os.ST_NOEXEC else 0) | (MS_RDONLY if f & os.ST_RDONLY else 0)


def bind(src: str, dst: str, flags: int) -> None:
    """Bind `src` on `dst`, then apply `flags` (MS_RDONLY, MS_NOSUID...) to the new mount."""
    _mount(src, dst, None, MS_BIND | MS_REC)
    _mount(None, dst, None, MS_REMOUNT | MS_BIND | flags | _locked_flags(dst))


def _may_enter(st: os.stat_result, uid: int, gid: int, bits: int) -> bool:
    shift = 6 if st.st_uid == uid else 3 if st.st_gid == gid else 0
    return (st.st_mode >> shift) & bits == bits


def _blocking_ancestor(path: Path, uid: int, gid: int) -> Path | None:
    """The highest folder above `path` that `uid` cannot pass through, or None."""
    for anc in reversed(path.parents):
        if not _may_enter(os.stat(anc), uid, gid, 1):
            return anc
    return None


def _outermost(paths: list[Path]) -> list[Path]:
    """The existing paths of `paths` not inside another of them."""
    kept: list[Path] = []
    for p in sorted({p for p in paths if p.exists()}, key=lambda p: len(p.parts)):
        if not any(p.is_relative_to(k) for k in kept):
            kept.append(p)
    return kept


def _mountpoint(p: Path, top: Path, is_dir: bool) -> None:
    """Create `p` and the folders above it, up to `top`, in a fresh tmpfs on `top`."""
    for d in [*reversed(p.parents), p]:
        if not d.is_relative_to(top) or d == top or d.exists():
            continue
        if d != p or is_dir:
            os.mkdir(d)
            os.chmod(d, 0o755)
        else:
            os.close(os.open(d, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


def cover(top: Path, keep: list[Path], data: str) -> None:
    """Mount an empty tmpfs (`data`: its options) on `top`, with each of `keep` (paths below
    `top`) bound back read-only: the rest of `top` disappears from this mount namespace."""
    fds = [(p, os.open(p, os.O_PATH | os.O_CLOEXEC)) for p in _outermost(keep)]  # before they are hidden
    try:
        _mount("tmpfs", str(top), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, data)
        for p, fd in fds:
            _mountpoint(p, top, stat.S_ISDIR(os.fstat(fd).st_mode))
            bind(f"/proc/self/fd/{fd}", str(p), MS_RDONLY | MS_NOSUID | MS_NODEV)
    finally:
        for _p, fd in fds:
            os.close(fd)


def expose(paths: list[Path], uid: int, gid: int) -> list[str]:
    """Make each of `paths` reachable for `uid` in this mount namespace, and nothing else new.

    A folder above one of them that `uid` may not pass through (e.g. /root holding the Python
    installation) is covered (see `cover`) with the needed paths bound back: the rest of that
    folder disappears from the worker's view. Returns the covered folders.
    """
    groups: dict[Path, list[Path]] = {}
    for p in _outermost(paths):
        anc = _blocking_ancestor(p, uid, gid)
        if anc is not None:
            groups.setdefault(anc, []).append(p)
    tops = [a for a in groups if not any(a != b and a.is_relative_to(b) for b in groups)]
    for top in tops:
        cover(top, [p for a, ps in groups.items() if a.is_relative_to(top) for p in ps],
              "mode=0755,size=1m,nr_inodes=4096")
    return [str(t) for t in tops]


def drop_to(uid: int, gid: int) -> None:
    """Root only: become uid/gid for good, with no supplementary groups (capabilities go with uid 0)."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        raise SetupError(0, "could not drop to the sandbox user")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    """Give up every capability (those a new user namespace grants over its own resources)."""
    for cap in range(64):
        if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:  # EINVAL: no such cap
            break
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(_CapHeader(0x20080522, 0)), data), "capset")


def capabilities() -> int:
    """This process's effective capabilities (0 once confined)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return -1


def no_new_privs() -> None:
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")

