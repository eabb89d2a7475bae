"""The seccomp filter of a worker: system calls parsers never need are refused (EPERM or EACCES).

Everything else is allowed: the filter removes kernel attack surface and ways out (debugging other
processes, mounting, loading code into the kernel, new namespaces, network sockets); what may be
read, written and executed is Landlock's part. Built with libseccomp through its Python binding
(`seccomp` where the distribution ships it, else `pyseccomp`, the same API over ctypes), which also
kills any call made through another architecture's entry (32-bit `int 0x80`, x32).
"""
from __future__ import annotations

import errno
import socket

# Refused outright. Grouped by what they would give a compromised parser.
DENIED = (
    # other processes' memory and state
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # file system namespace and mounts
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "setns", "unshare",
    # kernel code, keys, eBPF, perf, tracing
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "bpf",
    "keyctl", "add_key", "request_key", "perf_event_open", "userfaultfd", "lookup_dcookie",
    # io_uring performs socket and file operations that this filter would never see
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    # machine-wide settings
    "reboot", "swapon", "swapoff", "syslog", "acct", "quotactl", "settimeofday", "clock_settime",
    "clock_adjtime", "adjtimex", "sethostname", "setdomainname", "iopl", "ioperm", "vhangup",
    "open_by_handle_at", "name_to_handle_at", "uselib",
)
# Namespace flags refused in clone(); clone3 passes its flags in memory the filter cannot read, so it
# answers ENOSYS and the C library falls back to clone().
_CLONE_NS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
             0x40000000)  # NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
# Socket types other than a stream: a datagram socket reaches a named socket without connect().
_NOT_STREAM = (socket.SOCK_DGRAM, socket.SOCK_RAW, socket.SOCK_RDM, socket.SOCK_SEQPACKET, 10)  # 10: PACKET


class SeccompUnavailable(RuntimeError):
    pass


def _binding():
    try:
        import seccomp  # libseccomp's own binding (Debian: python3-seccomp)
    except ImportError:
        try:
            import pyseccomp as seccomp
        except (ImportError, OSError, AttributeError) as exc:  # no binding, or no libseccomp.so.2
            raise SeccompUnavailable(f"no seccomp binding ({type(exc).__name__}: {exc}); install libseccomp2 "
                                     "and the pyseccomp package") from None
    return seccomp


def available() -> str | None:
    """None when a binding and libseccomp are installed, else what is missing: the parent's preflight.

    It looks for them without importing the binding (pyseccomp runs ldconfig twice as it loads, 10 ms
    before the first worker can start); each worker imports it before Landlock closes and refuses to
    start without it, so a binding that is present but broken still stops every job."""
    import ctypes
    import importlib.util

    try:
        if importlib.util.find_spec("seccomp") is not None:
            return None
        if importlib.util.find_spec("pyseccomp") is None:
            raise ModuleNotFoundError("No module named 'pyseccomp'")
        ctypes.CDLL("libseccomp.so.2")  # what pyseccomp loads (the name ldconfig gives it)
    except (ImportError, OSError, ValueError) as exc:
        return (f"no seccomp binding ({type(exc).__name__}: {exc}); install libseccomp2 and the pyseccomp "
                "package")
    return None


def binding():
    """The binding module; import it before Landlock closes (it runs ldconfig to find libseccomp)."""
    return _binding()


def install(sc) -> list[str]:
    """Load the filter into this process (inherited by everything it starts). Returns the names the
    installed libseccomp did not know (older than the kernel's newest calls): those stay allowed."""
    f = sc.SyscallFilter(sc.ALLOW)
    unknown: list[str] = []

    def rule(action: int, name: str, *args) -> None:
        try:
            f.add_rule(action, name, *args)
        except (OSError, ValueError, RuntimeError):
            unknown.append(name)

    for name in DENIED:
        rule(sc.ERRNO(errno.EPERM), name)
    for flag in _CLONE_NS:
        rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    rule(sc.ERRNO(errno.ENOSYS), "clone3")
    # Sockets: only local stream sockets (LibreOffice's own pipe) and connected pairs; no connect().
    rule(sc.ERRNO(errno.EACCES), "socket", sc.Arg(0, sc.NE, socket.AF_UNIX))
    for typ in _NOT_STREAM:
        rule(sc.ERRNO(errno.EACCES), "socket", sc.Arg(1, sc.MASKED_EQ, 0xF, typ))
    rule(sc.ERRNO(errno.EACCES), "socketpair", sc.Arg(0, sc.NE, socket.AF_UNIX))
    rule(sc.ERRNO(errno.EACCES), "connect")
    f.load()
    return unknown
