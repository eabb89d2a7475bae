"""Parent side of the sandbox: each worker's private stage directory, which the worker sees as
/tmp/job (in a /tmp of its own).

    in/    the job's input, hard-linked (or copied when a link is impossible) by the parent;
           read-only for the worker (a read-only bind mount, and Landlock)
    out/   where the worker writes the output and text rendition; the parent moves them into the
           job's out_dir, so the worker never needs access to the original location
    work/  the worker's TMPDIR (the pipeline's scratch folders, LibreOffice's files)
    home/  its HOME (fontconfig's cache), kept for the worker's life

The parent empties in/, out/ and work/ after every job. It does not take the worker's word for
what it moves out: a plain file with one link, directly in out/, that no process still holds open
for writing once it is in the job's folder (a read lease proves it), else the job is blocked.
"""
from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import stat
import tempfile
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from . import STAGE_DIRS, VIEW

_SUFFIX = re.compile(r"\.[A-Za-z0-9_-]{1,16}$")


class StageError(Exception):
    """What the worker left is not a clean output (or the input could not be staged)."""


def _open_dir(path: str | os.PathLike, dir_fd: int | None = None) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)


def _copy_fd(src_fd: int, dst_fd: int) -> None:
    """In-kernel copy (a reflink where the file system shares blocks), else through user space."""
    try:
        while os.copy_file_range(src_fd, dst_fd, 1 << 30):
            pass
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    os.lseek(src_fd, 0, os.SEEK_SET)
    os.lseek(dst_fd, 0, os.SEEK_SET)
    os.ftruncate(dst_fd, 0)
    while chunk := os.read(src_fd, 1 << 20):
        os.write(dst_fd, chunk)


def _no_writer(fd: int) -> bool | None:
    """True when no open file (anywhere) may write this inode; None when leases are unsupported."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        if exc.errno == errno.EAGAIN:
            return False
        return None
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    return True


class Stage:
    """One worker's stage. `ids` is the worker's (uid, gid) when the parent is root, else None."""

    def __init__(self, root: Path, ids: tuple[int, int] | None) -> None:
        self.ids = ids
        self.path = Path(tempfile.mkdtemp(prefix="w", dir=root))
        self._n = 0
        os.chmod(self.path, 0o711 if ids else 0o700)  # the worker's user passes through, lists nothing
        for d in STAGE_DIRS:
            p = self.path / d
            p.mkdir()
            os.chmod(p, 0o755 if d == "in" or not ids else 0o700)
            if ids and d != "in":
                os.chown(p, *ids)
        self._fd = _open_dir(self.path)
        self._in = _open_dir("in", self._fd)
        self._out = _open_dir("out", self._fd)
        self._work = _open_dir("work", self._fd)

    def env(self) -> dict[str, str]:
        return {"CDR_WORKER_STAGE": str(self.path),
                "CDR_WORKER_IDS": f"{self.ids[0]}:{self.ids[1]}" if self.ids else "",
                "TMPDIR": f"{VIEW}/work", "HOME": f"{VIEW}/home"}

    # ------------------------------------------------------------------ input

    def _readable_by_worker(self, st: os.stat_result) -> bool:
        if self.ids is None:
            return True  # same user, in its own namespace
        uid, gid = self.ids
        if st.st_uid == uid:
            return bool(st.st_mode & stat.S_IRUSR)
        if st.st_gid == gid:
            return bool(st.st_mode & stat.S_IRGRP)
        return bool(st.st_mode & stat.S_IROTH)

    def put(self, job: Any) -> Any:
        """The job as the worker sees it: its input in /tmp/job/in, its outputs to /tmp/job/out."""
        self._n += 1
        m = _SUFFIX.search(job.src)
        name = f"{self._n}{m.group(0).lower() if m else ''}"
        try:
            sfd = os.open(job.src, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise StageError(f"cannot read the input: {exc.strerror or exc}") from None
        try:
            st = os.fstat(sfd)
            if not stat.S_ISREG(st.st_mode):
                raise StageError("the input is not a regular file")
            linked = False
            if self._readable_by_worker(st):
                try:
                    os.link(f"/proc/self/fd/{sfd}", name, dst_dir_fd=self._in, follow_symlinks=True)
                    linked = True
                except OSError:  # another file system, protected_hardlinks, no /proc: copy
                    pass
            if not linked:
                dfd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                              0o644 if self.ids else 0o600, dir_fd=self._in)
                try:
                    os.fchmod(dfd, 0o644 if self.ids else 0o600)  # whatever the process umask is now
                    _copy_fd(sfd, dfd)
                finally:
                    os.close(dfd)
        finally:
            os.close(sfd)
        return replace(job, src=f"{VIEW}/in/{name}", out_dir=f"{VIEW}/out")

    # ------------------------------------------------------------------ outputs

    def take(self, job: Any, result: dict) -> dict:
        """Move the outputs named in `result` (the worker's reply) into job.out_dir; paths rewritten."""
        names: dict[str, str] = {}
        view_out = PurePosixPath(VIEW, "out")
        for key in ("output", "text_output"):
            p = result.get(key)
            if not p:
                continue
            pp = PurePosixPath(p)
            if pp.parent != view_out or pp.name in ("", ".", ".."):
                raise StageError("output outside its directory")
            names[key] = pp.name
        out = dict(result)
        if result.get("verdict") == "blocked" or not names:
            out.update(output=None, text_output=None)  # whatever it wrote is emptied with out/
            return out
        dest_fd = _open_dir(job.out_dir)
        moved: list[str] = []
        try:
            for name in dict.fromkeys(names.values()):
                self._move(name, dest_fd)
                moved.append(name)
        except BaseException:
            for name in moved:  # a blocked job leaves nothing in its folder
                os.unlink(name, dir_fd=dest_fd)
            raise
        finally:
            os.close(dest_fd)
        for key, name in names.items():
            out[key] = str(Path(job.out_dir) / name)
        return out

    def _move(self, name: str, dest_fd: int) -> None:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=self._out)
        except OSError as exc:
            raise StageError(f"output unreadable ({exc.strerror})") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                raise StageError("output is not a plain file")
            try:
                os.rename(name, name, src_dir_fd=self._out, dst_dir_fd=dest_fd)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise StageError(f"cannot move the output ({exc.strerror})") from None
                self._copy_out(fd, name, dest_fd)
                return
            moved = os.stat(name, dir_fd=dest_fd, follow_symlinks=False)
            if (moved.st_dev, moved.st_ino) != (st.st_dev, st.st_ino):
                raise StageError("output replaced while it was moved")
            sealed = _no_writer(fd)
            if sealed is False:
                os.unlink(name, dir_fd=dest_fd)
                raise StageError("output still open for writing by the worker")
            if sealed is None:  # no leases here: our own copy is the only proof
                self._copy_out(fd, name, dest_fd, replace_existing=True)
            elif self.ids:
                os.fchown(fd, os.geteuid(), os.getegid())
        finally:
            os.close(fd)

    def _copy_out(self, fd: int, name: str, dest_fd: int, replace_existing: bool = False) -> None:
        tmp = f".{name}.part"
        dfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644, dir_fd=dest_fd)
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            _copy_fd(fd, dfd)
            os.close(dfd)
            dfd = -1
            os.rename(tmp, name, src_dir_fd=dest_fd, dst_dir_fd=dest_fd)
        except BaseException:
            if dfd >= 0:
                os.close(dfd)
            os.unlink(tmp, dir_fd=dest_fd)
            raise
        if not replace_existing:
            os.unlink(name, dir_fd=self._out)

    # ------------------------------------------------------------------ between jobs

    @staticmethod
    def _empty(dir_fd: int) -> None:
        for entry in os.listdir(dir_fd):
            try:
                if stat.S_ISDIR(os.stat(entry, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    shutil.rmtree(entry, dir_fd=dir_fd, ignore_errors=True)
                else:
                    os.unlink(entry, dir_fd=dir_fd)
            except FileNotFoundError:
                pass

    def clear(self) -> None:
        """Empty in/, out/ and work/."""
        for fd in (self._in, self._out, self._work):
            self._empty(fd)

    def remove(self) -> None:
        for fd in (self._in, self._out, self._work, self._fd):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.path, ignore_errors=True)
