"""Landlock (Linux 5.13+) through its three system calls, with ctypes.

A ruleset names the access rights it handles; everything handled and not granted by a rule is denied
to this process and every process it starts, for good. Rights grow with the kernel's ABI version:
only those the running kernel knows are handled (and reported), so an older kernel confines less
rather than refusing every rule.
"""
from __future__ import annotations

import ctypes
import os
import platform
import stat

# Same numbers on every architecture (the unified system call table).
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

# Rights that apply to a file (a rule on a file may only carry these).
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ = READ_FILE | READ_DIR
# Everything a scratch directory needs: no execution, no device nodes.
SCRATCH = (READ | WRITE_FILE | TRUNCATE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SOCK
           | MAKE_FIFO | MAKE_SYM | REFER)

_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
MIN_ABI = 2  # without REFER (ABI 1) a confined process cannot even move a file between its own folders


class LandlockError(OSError):
    pass


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is absent or disabled."""
    if platform.system() != "Linux":
        return 0
    v = _libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return int(v) if v > 0 else 0


def _fail(what: str) -> LandlockError:
    err = ctypes.get_errno()
    return LandlockError(err, f"Landlock {what}: {os.strerror(err)}")


class Ruleset:
    """Build with `allow(path, rights)`, then `restrict()` this process (after PR_SET_NO_NEW_PRIVS)."""

    def __init__(self, abi: int | None = None) -> None:
        self.abi = abi_version() if abi is None else abi
        if self.abi < MIN_ABI:
            raise LandlockError(0, f"Landlock ABI {self.abi} (need {MIN_ABI}, Linux 5.19 or later)")
        self.fs = _FS_BY_ABI.get(self.abi, (1 << 16) - 1)
        self.net = NET_BIND_TCP | NET_CONNECT_TCP if self.abi >= 4 else 0
        self.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if self.abi >= 6 else 0
        attr = _RulesetAttr(self.fs, self.net, self.scoped)
        size = 8 if self.abi < 4 else 16 if self.abi < 6 else 24
        fd = _libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
        if fd < 0:
            raise _fail("create_ruleset")
        self.fd = int(fd)
        self.granted: list[tuple[str, int]] = []

    def allow(self, path: str | os.PathLike, rights: int) -> bool:
        """Grant `rights` beneath `path` (a directory) or on it (a file). False when it does not exist."""
        try:
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return False
        try:
            if not stat.S_ISDIR(os.fstat(pfd).st_mode):
                rights &= FILE_RIGHTS
            rights &= self.fs
            if not rights:
                return False
            rule = _PathBeneath(rights, pfd)
            if _libc.syscall(_ADD_RULE, ctypes.c_int(self.fd), ctypes.c_int(_RULE_PATH_BENEATH),
                             ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                raise _fail(f"add_rule {path}")
        finally:
            os.close(pfd)
        self.granted.append((str(path), rights))
        return True

    def restrict(self) -> None:
        try:
            if _libc.syscall(_RESTRICT_SELF, ctypes.c_int(self.fd), ctypes.c_uint32(0)) < 0:
                raise _fail("restrict_self")
        finally:
            os.close(self.fd)

    def describe(self) -> str:
        return f"Landlock ABI {self.abi}"

