"""Writes beneath the data directory that never follow a symbolic link.

The inbox is a share: anyone who can write there can plant a symbolic link (or a file) where the
appliance will create a folder or a file. Every inbox write therefore goes through a descriptor of
the data directory and then one folder at a time (`openat` with O_NOFOLLOW|O_DIRECTORY, `mkdirat`),
creates files with O_EXCL|O_NOFOLLOW, and links, renames and removes names relative to the folder's
descriptor (`linkat`/`renameat`/`unlinkat`, which act on a link itself, never on its target).
A link (or a file) found where a folder should be raises `Refused`; a link found at a file name is
never opened. Both are reported through `Tree.on_refused` (audited, shown on /healthz).

The dropbox reads do the same (dropbox.py). The data directory itself is the operator's choice and
is opened as given.
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
FOLDER_MODE = 0o755  # inbox folders: read by the share (Samba, NFS) as another user
FILE_MODE = 0o644


class Refused(OSError):
    """A symbolic link (or something other than a folder) stands where a folder of ours should be."""

    def __init__(self, rel: str, what: str) -> None:
        super().__init__(errno.ELOOP, f"{rel}: {what}; refused, not followed")
        self.rel, self.what = rel, what


def _parts(rel: str | PurePath) -> tuple[str, ...]:
    parts = PurePath(rel).parts
    if PurePath(rel).is_absolute() or any(p in ("..", ".", "") for p in parts):
        raise ValueError(f"not a plain relative path: {rel!r}")
    return parts


class Tree:
    """The data directory as a descriptor root. `on_refused(rel, what)` hears of every link met.

    `mounts` maps a first path component to a folder elsewhere (the security cloud's `--inbox DIR`:
    "inbox/..." opens below DIR), so the paths kept in the ledger stay "inbox/<channel>/<date>" wherever
    the inbox is. The mount point itself is the operator's choice and is opened as given, like the root.
    """

    def __init__(self, root: Path, on_refused: Callable[[str, str], None] | None = None,
                 mounts: dict[str, Path] | None = None) -> None:
        self.root = Path(root)
        self.on_refused = on_refused
        self.mounts = {k: Path(v) for k, v in (mounts or {}).items() if Path(v) != self.root / k}

    def path(self, rel: str | PurePath) -> Path:
        """The absolute path of root/rel, through a mount (for reads that need a path)."""
        parts = PurePath(rel).parts
        if parts and parts[0] in self.mounts:
            return self.mounts[parts[0]].joinpath(*parts[1:])
        return self.root / rel

    def refused(self, rel: str, what: str) -> Refused:
        if self.on_refused is not None:
            try:
                self.on_refused(rel, what)
            except Exception:  # noqa: BLE001 - reporting must not turn a refusal into something else
                pass
        return Refused(rel, what)

    def rel(self, path: Path) -> str:
        """`path` (absolute, below the root or a mount) as a relative path string."""
        for name, where in self.mounts.items():
            if Path(path) == where or Path(path).is_relative_to(where):
                return str(PurePath(name) / Path(path).relative_to(where))
        return str(Path(path).relative_to(self.root))

    def open_dir(self, rel: str | PurePath, create: bool = False, fsync: bool = False) -> int:
        """A descriptor of root/rel, each component opened without following a link; missing ones are
        made with `create` (mkdirat: a name taken meanwhile is opened no-follow like any other), their
        parents fsynced with `fsync`. FileNotFoundError without `create`; Refused on a link."""
        parts = _parts(rel)
        if parts and parts[0] in self.mounts:
            mount = self.mounts[parts[0]]
            if create:
                mount.mkdir(parents=True, exist_ok=True)
            fd = os.open(mount, os.O_RDONLY | os.O_DIRECTORY)
            parts = parts[1:]
        else:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for i, part in enumerate(parts):
                try:
                    nfd = os.open(part, _DIR, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(part, FOLDER_MODE, dir_fd=fd)
                    except FileExistsError:
                        pass
                    else:
                        if fsync:
                            os.fsync(fd)
                    nfd = self._open_part(fd, parts, i)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise self._refusal(fd, parts, i) from None
                    raise
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open_part(self, fd: int, parts: tuple[str, ...], i: int) -> int:
        try:
            return os.open(parts[i], _DIR, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise self._refusal(fd, parts, i) from None
            raise

    def _refusal(self, fd: int, parts: tuple[str, ...], i: int) -> Refused:
        rel = "/".join(parts[: i + 1])
        try:
            st = os.stat(parts[i], dir_fd=fd, follow_symlinks=False)
            what = "a symbolic link where a folder should be" if stat.S_ISLNK(st.st_mode) \
                else "not a folder where a folder should be"
        except OSError:
            what = "not a folder where a folder should be"
        return self.refused(rel, what)

    @contextmanager
    def dir(self, rel: str | PurePath, create: bool = False, fsync: bool = False) -> Iterator[int]:
        fd = self.open_dir(rel, create, fsync)
        try:
            yield fd
        finally:
            os.close(fd)

    def note_link(self, dir_rel: str | PurePath, name: str) -> None:
        """A link found at a file name of ours (left alone, never opened): reported."""
        self.refused(f"{PurePath(dir_rel) / name}", "a symbolic link where a file should be")


# ---------------------------------------------------------------------------- names in a folder

def lstat(dfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def exists(dfd: int, name: str) -> bool:
    return lstat(dfd, name) is not None


def is_link(dfd: int, name: str) -> bool:
    st = lstat(dfd, name)
    return st is not None and stat.S_ISLNK(st.st_mode)


def unlink(dfd: int, name: str) -> bool:
    """Remove a name (a link itself, never its target); False when it was not there."""
    try:
        os.unlink(name, dir_fd=dfd)
    except FileNotFoundError:
        return False
    return True


def sha256_of(dfd: int, name: str) -> str | None:
    """sha256 of a regular file `name`; None when absent, a link or not a regular file."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        h = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
        return h.hexdigest()


def write_new(dfd: int, name: str, data: bytes | Path, fsync: bool = True, mode: int = FILE_MODE) -> str:
    """Create `name` (O_EXCL: never an existing file or link) holding `data` (bytes, or a file of ours
    to copy); fsync; returns its sha256. Nothing is left behind on an error."""
    h = hashlib.sha256()
    fd = os.open(name, _NEW, mode, dir_fd=dfd)
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(data, Path):
                with open(data, "rb") as src:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        out.write(chunk)
                        h.update(chunk)
            else:
                out.write(data)
                h.update(data)
            out.flush()
            if fsync:
                os.fsync(out.fileno())
    except BaseException:
        unlink(dfd, name)
        raise
    return h.hexdigest()


def link_no_replace(dfd: int, src: str, dst: str) -> None:
    """Give `src` the name `dst` in the same folder, failing with FileExistsError if `dst` exists (a link
    there too). A hard link never replaces; where links are unsupported, check + rename."""
    try:
        os.link(src, dst, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
            raise
        if exists(dfd, dst):
            raise FileExistsError(errno.EEXIST, "exists", dst) from None
        os.rename(src, dst, src_dir_fd=dfd, dst_dir_fd=dfd)
        return
    os.unlink(src, dir_fd=dfd)


def replace(dfd: int, src: str, dst: str) -> None:
    """renameat: `dst` (a file or a link itself) is replaced atomically."""
    os.rename(src, dst, src_dir_fd=dfd, dst_dir_fd=dfd)


def fwalk_names(tree: Tree, rel: str, match: Callable[[str], bool]) -> Iterator[tuple[int, str]]:
    """(folder descriptor, file name) of every non-folder below root/rel whose name matches; links to
    folders are not entered (os.fwalk without follow_symlinks)."""
    try:
        top = tree.open_dir(rel)
    except (FileNotFoundError, Refused):
        return
    try:
        for _dirpath, _dirs, files, dfd in os.fwalk(".", dir_fd=top):
            for name in files:
                if match(name):
                    yield dfd, name
    finally:
        os.close(top)


class Refusals:
    """Links met where the appliance writes: each audited once (`audit(event, data)`), and listed on
    /healthz for as long as it is still there."""

    def __init__(self, root: Path, audit: Callable[[str, dict], None] | None = None,
                 log: Callable[[str, str], None] | None = None) -> None:
        self.tree = Tree(root)  # re-checks report nothing themselves
        self.audit = audit
        self.log = log
        self._seen: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, rel: str, what: str) -> None:
        with self._lock:
            if self._seen.get(rel) == what:
                return
            self._seen[rel] = what
        if self.log is not None:
            self.log(rel, what)
        if self.audit is not None:
            self.audit("inbox.link_refused", {"path": rel, "what": what})

    def _still_there(self, rel: str) -> bool:
        parent, name = os.path.split(rel)
        try:
            with self.tree.dir(parent) as dfd:
                st = lstat(dfd, name)
        except Refused:
            return True
        except OSError:
            return False
        if st is None:
            return False
        if "folder" in self._seen.get(rel, ""):
            return not stat.S_ISDIR(st.st_mode)
        return stat.S_ISLNK(st.st_mode)

    def current(self) -> list[str]:
        """Refused places that still hold a link (or a non-folder); the others are forgotten."""
        with self._lock:
            items = list(self._seen.items())
        out = []
        for rel, _what in items:
            if self._still_there(rel):
                out.append(rel)
            else:
                with self._lock:
                    self._seen.pop(rel, None)
        return sorted(out)
