"""The dropbox as the service reaches it: every path opened one component at a time beneath the
dropbox folder, never through a symbolic link; a file copied out only once nobody writes it (read
leases), and removed only if its name still holds the very file that was copied.

Used by the watcher (is a file still open for writing?), by intake (take a file) and by
recovery (remove a dropped file whose copy is already ours).
"""
from __future__ import annotations

import errno
import fcntl
import os
import signal
import stat
from pathlib import Path

_LEASE = hasattr(fcntl, "F_SETLEASE") and hasattr(fcntl, "F_SETSIG")


def leases_for_others() -> bool:
    """Whether this process may take leases on files it does not own (root or CAP_LEASE)."""
    if not _LEASE:
        return False
    if os.geteuid() == 0:
        return True
    try:
        with open("/proc/self/status") as f:
            caps = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    except (OSError, StopIteration, ValueError):
        return False
    return bool(caps >> 28 & 1)  # CAP_LEASE


def no_writer(path: str) -> bool | None:
    """True if no process has `path` open for writing, False if one has, None if unknown.

    Linux grants a read lease only while the file has no writer (system-wide, any process,
    including writable shared mappings); the lease is dropped at once. Unknown where leases
    are not available (not the file's owner without CAP_LEASE, network file systems).
    """
    if not _LEASE:
        return None
    try:
        # O_NONBLOCK: do not wait for another holder's write lease (e.g. Samba) to break.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return False if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK) else None
    try:
        # A writer opening it in the microseconds we hold the lease makes the kernel signal us:
        # SIGURG is ignored by default (SIGIO, the default, would terminate the process).
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        return False if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY) else None
    else:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return True
    finally:
        os.close(fd)


class StillWriting(Exception):
    """The sender still has the file open for writing, or changed it while we copied it."""


class NotTaken(Exception):
    """The file could not be taken and is left where it is: reached through a symbolic link, not a
    regular file, or unreadable. It is never copied, and nothing outside the dropbox is touched."""


def open_dir_beneath(root: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of root/parts..., each component opened without following a symbolic link: a
    folder swapped for a link to elsewhere (another channel's inbox, /etc) is refused, not entered."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except OSError as exc:
        os.close(fd)
        raise NotTaken(f"{root.joinpath(*parts)}: {exc.strerror or exc}") from None
    return fd


def copy_out(dir_fd: int, name: str, dst: Path) -> os.stat_result:
    """Copy the file `name` of the folder `dir_fd` into a new file `dst` that only we can reach
    (O_EXCL, 0600), fsynced; returns the source's stat (to unlink that very file afterwards).

    The sender's inode is never kept: a writer that still holds it open, or another hard link to
    it, could otherwise change the quarantined original, or the bytes the worker reads, after
    they were hashed. A read lease held during the copy proves no process had it open for writing
    and none opened it for writing meanwhile; without leases, size and mtime must not move.
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except BlockingIOError:  # another holder's write lease (Samba): it is still in use
        raise StillWriting(f"{name} is in use") from None
    except FileNotFoundError:
        raise
    except OSError as exc:  # ELOOP (a symbolic link), EACCES...
        raise NotTaken(f"{name}: {exc.strerror or exc}") from None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise NotTaken(f"{name} is not a regular file")
        leased = False
        if _LEASE:
            try:
                fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
                leased = True
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY):
                    raise StillWriting(f"{name} is open for writing") from None
        try:
            out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                while chunk := os.read(fd, 1 << 20):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(out, view):]
                os.fsync(out)
            finally:
                os.close(out)
            # A writer that opened it meanwhile broke the lease (F_UNLCK while the break is pending).
            broken = leased and fcntl.fcntl(fd, fcntl.F_GETLEASE) != fcntl.F_RDLCK
        finally:
            if leased:
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        after = os.fstat(fd)
        if broken or (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) \
                or os.path.getsize(dst) != after.st_size:
            os.unlink(dst)
            raise StillWriting(f"{name} changed while it was taken")
        return after
    finally:
        os.close(fd)


def stat_beneath(root: Path, path: Path) -> os.stat_result:
    """lstat of `path` inside `root`, refusing any symbolic link on the way (NotTaken)."""
    parts = path.relative_to(root).parts
    dfd = open_dir_beneath(root, parts[:-1])
    try:
        return os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
    finally:
        os.close(dfd)


def _same(st: os.stat_result, was: os.stat_result) -> bool:
    """The very file, unchanged: same inode, size, mtime and ctime (a write, truncate, utime or chmod
    after the copy moves ctime even when mtime is set back)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) == \
        (was.st_dev, was.st_ino, was.st_size, was.st_mtime_ns, was.st_ctime_ns)


def unlink_at(dir_fd: int, name: str, same_as: os.stat_result | None = None) -> bool:
    """Remove `name` from the folder `dir_fd`; with `same_as`, only if the name still holds that very
    file, unchanged since it was copied (not one the sender put there or wrote to meanwhile: that is a
    new arrival, taken again). A read lease held while checking keeps any writer out until the name is
    gone. False when it was not removed or is gone."""
    if same_as is None:
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return False
        return True
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    except OSError:  # a writer's lease (EAGAIN), a link planted under the name (ELOOP), ...
        return False
    try:
        leased = False
        if _LEASE:
            try:
                fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
                leased = True
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY):
                    return False  # open for writing again: the sender is changing it
        try:
            if not _same(os.fstat(fd), same_as):
                return False
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if (st.st_dev, st.st_ino) != (same_as.st_dev, same_as.st_ino):
                return False
            os.unlink(name, dir_fd=dir_fd)
            return True
        except FileNotFoundError:
            return False
        finally:
            if leased:
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    finally:
        os.close(fd)


def unlink_beneath(root: Path, path: Path, same_as: os.stat_result | None = None) -> bool:
    """unlink_at for `path` inside `root`, its folder reached without following a link."""
    parts = path.relative_to(root).parts
    dfd = open_dir_beneath(root, parts[:-1])
    try:
        return unlink_at(dfd, parts[-1], same_as)
    finally:
        os.close(dfd)


def sig(st: os.stat_result) -> str:
    """What a dropped file was when taken (its row's drop_sig): the same file, unchanged, has the same."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
