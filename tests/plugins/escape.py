"""A text handler that plays a parser taken over by its input, loaded into real workers with CDR_PLUGINS.

A file reading `ESCAPE <what> <argument>` makes the handler attempt that and, when it works, deliver
what it got as the "rebuilt" file. Nothing is caught here: inside the sandbox every attempt must fail
with an error, which the pipeline turns into a `blocked` verdict. `SLEEP <seconds>` holds a worker
busy; `OUTPUT symlink PATH|hardlink|keepopen` leaves an output the parent must not take; anything
else is handled like ordinary text (copied).

    read PATH       a file's bytes (hex)   list PATH       names in a folder
    write PATH      create a file          overwrite -     write over its own input
    tcp PORT        connect to 127.0.0.1   udp PORT        send a datagram to 127.0.0.1
    unix PATH       connect to a socket
    unixdgram PATH  datagram to a socket   exec PATH       run PATH -c "echo escaped"
    ptrace PID      attach to a process    signal PID      send SIGCONT to a process
    mount PATH      mount a tmpfs there
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from cdr.handler import Context, Handler, Rebuilt, register
from cdr.model import Detection, Threat

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def attempt(what: str, arg: str, src: Path) -> bytes:
    """Do `what`; return what it yielded (raises when refused)."""
    if what == "read":  # in hex: the "rebuilt" file must still pass as text
        return Path(arg).read_bytes().hex().encode()
    if what == "list":
        return "\n".join(sorted(os.listdir(arg))).encode()
    if what == "write":
        Path(arg).write_bytes(b"written by a worker")
        return b"wrote " + arg.encode()
    if what == "overwrite":  # its own input, which the parent links from the original
        src.write_bytes(b"overwritten by a worker")
        return b"overwrote"
    if what == "tcp":
        with socket.create_connection(("127.0.0.1", int(arg)), timeout=3) as s:
            s.sendall(b"worker")
        return b"connected"
    if what == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"worker", ("127.0.0.1", int(arg)))
        return b"sent"
    if what == "unix":
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            s.connect(arg)
            s.sendall(b"worker")
        return b"connected"
    if what == "unixdgram":
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"worker", arg)
        return b"sent"
    if what == "exec":
        return subprocess.run([arg, "-c", "echo escaped"], capture_output=True, check=True, timeout=10).stdout
    if what == "ptrace":
        _libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        _check(_libc.ptrace(0x4206, int(arg), None, None), "ptrace(PTRACE_SEIZE)")  # does not stop it
        return b"attached"
    if what == "signal":
        os.kill(int(arg), signal.SIGCONT)
        return b"signalled"
    if what == "mount":
        _check(_libc.mount(b"none", arg.encode(), b"tmpfs", 0, None), "mount")
        return b"mounted"
    raise ValueError(f"unknown attempt {what}")


_KEPT: list = []  # files this worker keeps open after its job


def _bad_output(how: str, arg: str, dst: Path) -> None:
    if how == "symlink":  # the output is a link to a file the parent could read
        dst.symlink_to(arg)
    elif how == "hardlink":  # the output has a second name the worker keeps (HOME outlives the job)
        dst.write_text("plain text\n")
        second = Path(os.environ["HOME"], "second-name")
        second.unlink(missing_ok=True)
        os.link(dst, second)
    elif how == "keepopen":  # the worker could change the output after the parent hashed it
        f = open(dst, "w")  # noqa: SIM115 - kept open on purpose
        f.write("plain text\n")
        f.flush()
        _KEPT.append(f)
    else:
        raise ValueError(how)


@register
class EscapingText(Handler):
    family = "text"
    mime_types = ("text/plain",)

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        return []

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        words = src.read_bytes().decode("utf-8", "replace").split(maxsplit=2)
        if words[:1] == ["OUTPUT"]:  # an output the parent must refuse to take
            _bad_output(words[1], words[2].strip() if len(words) > 2 else "", dst)
        elif words[:1] == ["ESCAPE"]:
            dst.write_bytes(attempt(words[1], words[2].strip(), src))
        elif words[:1] == ["SLEEP"]:
            time.sleep(float(words[1]))
            shutil.copyfile(src, dst)
        else:
            shutil.copyfile(src, dst)
        return Rebuilt()

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        return path.read_text("utf-8", "replace")
