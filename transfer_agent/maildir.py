"""An atomic Maildir drop that Dovecot (or any IMAP server) can serve: inbox/mail/<address>/{tmp,new,cur}.

The message is written under tmp/<name> (O_EXCL, fsync), hard-linked to new/<name> (never replacing),
tmp/<name> removed, and new/ fsynced: the message appears whole or not at all. Everything goes
through safefs (folders opened one at a time without following links), since the inbox is a share.
Names are unique and chosen by the delivery plan (`unique_name`), so a replay after a crash finds
its message in new/, or in cur/ with flags (`name:2,S`) once the mail client has seen it, and does
not deliver it twice.
"""
from __future__ import annotations

import errno
import os
import stat

from . import safefs
from .crashpoints import crashpoint
from .safefs import Tree

SUBDIRS = ("tmp", "new", "cur")


def unique_name(received_at: float, job_id: int, n: int, host: str, size: int) -> str:
    """`<seconds>.J<job>R<n>.<host>,S=<size>` (the Maildir convention; S= lets Dovecot skip a stat)."""
    host = host.replace("/", "\\057").replace(":", "\\072").replace(",", "\\054") or "localhost"
    return f"{int(received_at)}.J{job_id}R{n}.{host},S={size}"


def _open_sub(tree: Tree, folder: str, sub: str, fsync: bool) -> int:
    return tree.open_dir(f"{folder}/{sub}", create=True, fsync=fsync)


def delivered(tree: Tree, folder: str, name: str) -> bool:
    """Whether the message `name` is already in new/ or (seen) in cur/."""
    try:
        with tree.dir(f"{folder}/new") as nfd:
            if safefs.exists(nfd, name):
                return True
        with tree.dir(f"{folder}/cur") as cfd:
            prefix = name + ":"
            return any(x == name or x.startswith(prefix) for x in os.listdir(cfd))
    except FileNotFoundError:
        return False


def deliver(tree: Tree, folder: str, name: str, data: bytes, fsync: bool = True, replay: bool = False) -> bool:
    """Drop `data` as new/<name> of the Maildir `folder` (relative to the data dir); False when it was
    there already (a replay). Raises OSError (Refused for a link in the way) when it cannot be written."""
    if replay and delivered(tree, folder, name):
        return False
    tfd = _open_sub(tree, folder, "tmp", fsync)
    try:
        nfd = _open_sub(tree, folder, "new", fsync)
        try:
            os.close(_open_sub(tree, folder, "cur", fsync))
            if safefs.is_link(tfd, name):
                tree.note_link(f"{folder}/tmp", name)
            safefs.unlink(tfd, name)  # left by a crash
            safefs.write_new(tfd, name, data, fsync)
            crashpoint("mail.tmp_written")  # whole in tmp/, not yet in new/: a reader sees nothing
            try:
                os.link(name, name, src_dir_fd=tfd, dst_dir_fd=nfd, follow_symlinks=False)
            except FileExistsError:
                st = safefs.lstat(nfd, name)
                if st is not None and stat.S_ISLNK(st.st_mode):
                    tree.note_link(f"{folder}/new", name)
                    raise safefs.Refused(f"{folder}/new/{name}", "a symbolic link where a file should be") from None
                safefs.unlink(tfd, name)
                return False
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                    raise
                if safefs.exists(nfd, name):
                    safefs.unlink(tfd, name)
                    return False
                os.rename(name, name, src_dir_fd=tfd, dst_dir_fd=nfd)
            else:
                safefs.unlink(tfd, name)
            if fsync:
                os.fsync(nfd)
                os.fsync(tfd)
        finally:
            os.close(nfd)
    finally:
        os.close(tfd)
    return True
