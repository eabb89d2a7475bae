"""Isolated worker processes: untrusted bytes are parsed only here.

The parent (CLI or appliance) talks to long-lived `python -m cdr.worker`
processes over pipes with length-prefixed JSON frames: no pickle crosses the
boundary. Each job runs under RLIMIT_AS (the policy's memory per worker) and a
wall-clock timeout enforced by the parent, which kills and replaces a worker
that overruns, crashes or runs out of memory; that file is then blocked.
The parent re-checks what the worker says (dangerzone-style): outputs must lie
inside the job's output directory and their hashes are recomputed.

Workers run in the sandbox of `cdr.sandbox` (unprivileged user, Landlock, seccomp, namespaces):
the parent stages each job's input into the worker's private directory and moves its outputs back
(`cdr.sandbox.stage`), so that a worker never sees the original locations.
"""
from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import sandbox
from .model import BLOCKED, FileResult, Threat, sha256_file
from .sandbox.stage import Stage, StageError

# subprocess, queue and concurrent.futures serve the parent only and are imported where it uses them:
# every worker runs this module (`python -m cdr.worker`), and importing them cost it 10 ms of its start.
if TYPE_CHECKING:
    from concurrent.futures import Future

_HDR = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024
GRACE_S = 3.0  # on top of the policy's seconds per file: the pipeline checks cooperatively first
_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)


@dataclass
class Job:
    """One file to sanitize. `out_dir` receives the output and text rendition."""

    src: str
    name: str
    out_dir: str
    policy: dict  # Policy.to_dict()
    password: str | None = None
    want_text: bool = False
    op: str = "process"  # process | inspect | detect | mail_part
    # SHA-256 of `src` when the caller already knows it (the pool fills it in before dispatch):
    # the worker then does not hash the source again, and the parent keeps its own value.
    sha256: str | None = None
    part: int | None = None  # op mail_part: which attachment (the mail report's children index)

    def to_json(self) -> bytes:
        # surrogatepass: a path whose name is not UTF-8 still reaches the worker (json.loads undoes it).
        return json.dumps(self.__dict__, ensure_ascii=False).encode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------- worker side

def _write_frame(fd: int, payload: bytes) -> None:
    data = _HDR.pack(len(payload)) + payload
    while data:
        n = os.write(fd, data)
        data = data[n:]


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _set_memory_limit(mb: int) -> None:
    limit = int(mb) * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000


def _isolate_network_only() -> str:
    """Without the sandbox (CDR_WORKER_SANDBOX=0): at least no network, where namespaces are allowed.

    Root can unshare directly; others try a user namespace; where neither is allowed the worker runs
    without it and says so (CDR_WORKER_NETNS=0 skips it).
    """
    if os.environ.get("CDR_WORKER_NETNS", "1") == "0" or not sys.platform.startswith("linux"):
        return "sandbox off, network isolation off"
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for flags in (_CLONE_NEWNET, _CLONE_NEWUSER | _CLONE_NEWNET):
        if libc.unshare(flags) == 0:
            return "sandbox off, network namespace"
    return f"sandbox off, network isolation unavailable (errno {ctypes.get_errno()})"


# The libraries the worker loads before its sandbox closes, by the names the dynamic loader knows them by.
_SONAMES = {"c": "libc.so.6", "seccomp": "libseccomp.so.2", "magic": "libmagic.so.1"}


@contextlib.contextmanager
def _known_sonames() -> Iterator[None]:
    """ctypes.util.find_library starts `ldconfig -p` for every name it is asked (5 ms each, four times
    while pyseccomp and libmagic load): answer with the soname of those libraries when the dynamic
    loader opens it (as turbojpeg.py does), and ask ldconfig only for others."""
    import ctypes
    import ctypes.util

    real = ctypes.util.find_library

    def find_library(name: str) -> str | None:
        soname = _SONAMES.get(name)
        if soname is not None:
            try:
                ctypes.CDLL(soname)
                return soname
            except OSError:
                pass
        return real(name)

    ctypes.util.find_library = find_library
    try:
        yield
    finally:
        ctypes.util.find_library = real


def _warm_up() -> None:
    """What must happen before the sandbox closes: lookups that start a program (ctypes'
    find_library runs ldconfig) or read files the sandbox does not open (mimetypes' tables)."""
    import mimetypes

    mimetypes.init()
    with _known_sonames():
        try:
            import magic  # noqa: F401 - libmagic is found through find_library
        except ImportError:
            pass
        try:
            sandbox.syscalls.binding()  # pyseccomp finds libc and libseccomp the same way; lock() uses it
        except sandbox.syscalls.SeccompUnavailable:
            pass  # lock() says so, and the worker refuses to start


def _tune_malloc() -> None:
    """No glibc fastbins (tcache still serves small blocks): freeing qpdf's object graph left
    fastbins that the next large allocation consolidated, 15 % of a 5,000-object PDF."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None).mallopt(1, 0)  # M_MXFAST = 1
        except (OSError, AttributeError):  # not glibc
            pass


def worker_main() -> None:
    """Serve jobs on stdin/stdout until EOF."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Keep the protocol channel private: anything a library prints goes to stderr.
    proto_out = os.dup(1)
    os.dup2(2, 1)
    proto_in = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    # Test hook (unset in production): CDR_TEST_PAUSE="PREFIX:SECONDS" holds a file whose name starts
    # with PREFIX that long before processing it, so a test can kill this worker mid-file.
    pause_prefix, _, pause_s = os.environ.get("CDR_TEST_PAUSE", "").partition(":")
    conf = None
    scratch = None  # the stage's work/, which the parent empties after every job
    try:
        if sandbox.enabled():
            ids = os.environ.get("CDR_WORKER_IDS", "")
            uid_gid = tuple(int(x) for x in ids.split(":")) if ids else None
            conf = sandbox.enter(os.environ.get("CDR_WORKER_STAGE", ""), uid_gid)
            scratch = f"{sandbox.VIEW}/work"
            isolation = ""
        else:
            isolation = _isolate_network_only()
        _tune_malloc()
        from .handler import load_handlers, plugin_modules
        from .pipeline import detect_only, inspect, process
        from .policy import Policy

        # A family's handler is imported when its first file arrives (a third of a second for all of
        # them): inside the sandbox, which lets the worker read Python and its packages. Plugins are
        # imported now, with every handler they may override: Landlock grants reading only the code
        # imported before it closes, wherever it lies (a plugin outside site-packages).
        if plugin_modules():
            load_handlers()
        if conf is not None:
            _warm_up()
            isolation = sandbox.lock(conf)
    except sandbox.SandboxUnavailable as exc:
        _write_frame(proto_out, json.dumps({"ready": False, "sandbox": exc.what}).encode("utf-8"))
        sys.exit(3)
    _write_frame(proto_out, json.dumps({"ready": True, "isolation": isolation}).encode("utf-8"))
    cached: tuple[dict, Policy] | None = None
    while True:
        hdr = _read_exact(proto_in, _HDR.size)
        if hdr is None:
            return
        (size,) = _HDR.unpack(hdr)
        raw = _read_exact(proto_in, size)
        if raw is None:
            return
        req = json.loads(raw)
        recycle = False
        try:
            # The parent sends the same policy with every job: parse it (and set the limit) when it changes.
            if cached is None or cached[0] != req["policy"]:
                cached = None
                policy = Policy.from_dict(req["policy"], source=req["policy"].get("name", "policy"))
                _set_memory_limit(policy.limits.worker_memory_mb)
                cached = (req["policy"], policy)
            policy = cached[1]
            op = req.get("op", "process")
            if op == "inspect":
                payload = {"inspect": inspect(req["src"], req["name"], policy, password=req.get("password"))}
            elif op == "detect":
                payload = {"detect": detect_only(req["src"], req["name"])}
            elif op == "mail_part":
                from .formats.mail.parts import original_attachment

                payload = {"part": original_attachment(req["src"], int(req.get("part") or 0), policy)}
            else:
                if pause_prefix and str(req.get("name", "")).startswith(pause_prefix):
                    time.sleep(float(pause_s or 5))
                # The parent hashes the source before and the output after (recheck): no second pass here.
                res = process(req["src"], req["name"], req["out_dir"], policy, password=req.get("password"),
                              want_text=bool(req.get("want_text")), sha256=req.get("sha256"), hash_output=False,
                              scratch=scratch)
                recycle = any(t.detail == "memory limit" for t in res.threats)
                payload = {"result": res.to_dict(), "recycle": recycle}
        except MemoryError:
            payload = {"error": "memory", "recycle": True}
        except Exception as exc:  # report, never die silently
            payload = {"error": f"{type(exc).__name__}: {exc}"[:500], "recycle": True}
        # A lone surrogate (from an undecodable name or cell) must not break the frame: "?" instead.
        _write_frame(proto_out, json.dumps(payload, ensure_ascii=False).encode("utf-8", "replace"))
        if payload.get("recycle"):
            return


# --------------------------------------------------------------------------- parent side

class WorkerDied(Exception):
    pass


class _Worker:
    def __init__(self, env: dict | None = None, stage: Stage | None = None) -> None:
        import subprocess

        e = dict(os.environ)
        e.update(env or {})
        e.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        # -P: the working directory is not on sys.path; the folder holding this package is.
        e["PYTHONPATH"] = os.pathsep.join(filter(None, (_PACKAGE_PARENT, e.get("PYTHONPATH"))))
        self.stage = stage
        cwd = None
        if stage is not None:
            e.update(stage.env())
            cwd = stage.path
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "cdr.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=None, env=e, cwd=cwd, start_new_session=True)
        self._ready = False
        self.refused: str | None = None  # why the worker would not start (its sandbox)
        self.isolation = ""

    def _read_frame(self, deadline: float) -> dict:
        fd = self.proc.stdout.fileno()
        buf = bytearray()
        need = _HDR.size
        header_done = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            r, _, _ = select.select([fd], [], [], remaining)
            if not r:
                raise TimeoutError
            chunk = os.read(fd, need - len(buf))
            if not chunk:
                raise WorkerDied
            buf += chunk
            if len(buf) == need:
                if header_done:
                    return json.loads(bytes(buf))
                (size,) = _HDR.unpack(bytes(buf))
                if size > MAX_FRAME:
                    raise WorkerDied
                need, buf, header_done = size, bytearray(), True

    def wait_ready(self, timeout: float = 60.0) -> None:
        if self.refused is not None:
            raise sandbox.SandboxUnavailable(self.refused)
        if not self._ready:
            hello = self._read_frame(time.monotonic() + timeout)
            if not hello.get("ready"):
                self.refused = str(hello.get("sandbox", "the worker did not start"))
                raise sandbox.SandboxUnavailable(self.refused)
            self.isolation = str(hello.get("isolation", ""))
            self._ready = True

    def call(self, job: Job, timeout: float) -> dict:
        self.wait_ready()
        payload = job.to_json()
        self.proc.stdin.write(_HDR.pack(len(payload)) + payload)
        self.proc.stdin.flush()
        return self._read_frame(time.monotonic() + timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _wait(self, timeout: float) -> None:
        """proc.wait(timeout), woken by the kernel when the worker exits (a pidfd): Popen.wait polls,
        sleeping up to 50 ms between looks, which a one-file run of the CLI waited for every time."""
        if self.proc.returncode is None and hasattr(os, "pidfd_open"):
            try:
                fd = os.pidfd_open(self.proc.pid)
            except OSError:  # gone already, or no pidfds (Linux < 5.3): wait() below as before
                pass
            else:
                try:
                    ready = select.poll()  # not select(): a busy appliance may hold more than 1024 files
                    ready.register(fd, select.POLLIN)
                    ready.poll(timeout * 1000)
                finally:
                    os.close(fd)
                timeout = 0  # it has exited (wait() reaps it) or the time is up (wait() raises)
        self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        import subprocess

        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self._wait(5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def end_input(self) -> None:
        """Close the worker's input: it finishes its job, if any, and exits."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def close(self) -> None:
        import subprocess

        self.end_input()
        try:
            self._wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
        self.remove_stage()

    def remove_stage(self) -> None:
        if self.stage is not None:
            self.stage.remove()


def _blocked(job: Job, threat: str, detail: str, ja: str, en: str) -> FileResult:
    r = FileResult(source=job.name)
    try:
        r.size = os.path.getsize(job.src)
        r.sha256 = job.sha256 or sha256_file(Path(job.src))
    except OSError:
        pass
    r.threats.append(Threat(threat, job.name, "blocked", detail))
    return r.block(ja, en)


def _inside(path: str | None, root: Path) -> bool:
    if not path:
        return True
    try:
        return Path(path).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False


def recheck(job: Job, res: FileResult) -> FileResult:
    """Do not take the worker's word: outputs must exist inside out_dir; hashes recomputed."""
    root = Path(job.out_dir).resolve()
    paths = [res.output, res.text_output]
    if not all(_inside(p, root) for p in paths):
        return _blocked(job, "worker.protocol", "output outside its directory",
                        "処理結果の検証に失敗しました", "the worker's result failed verification")
    if res.verdict == BLOCKED:
        for p in paths:
            if p:
                Path(p).unlink(missing_ok=True)
        res.output = res.output_sha256 = res.text_output = None
        return res
    if not res.output or not Path(res.output).is_file():
        return _blocked(job, "worker.protocol", "no output file",
                        "処理結果の検証に失敗しました", "the worker produced no output")
    res.output_sha256 = sha256_file(Path(res.output))
    if res.text_output and not Path(res.text_output).is_file():
        res.text_output = None
    # The parent's own hash of the source (taken before dispatch), never the worker's.
    res.sha256 = job.sha256 or sha256_file(Path(job.src))
    return res


class WorkerPool:
    """A fixed number of worker processes; `submit(job)` gives a Future[FileResult].

    This is the small execution interface the appliance depends on: a
    distributed backend only has to provide `submit` and `close`.
    With the sandbox on (the default), workers' private stage directories live in `stage_root`
    (a temporary folder by default; best on the file system of the inputs, so that they are
    hard-linked rather than copied). Raises SandboxUnavailable when the sandbox cannot be set up.
    """

    def __init__(self, workers: int | None = None, env: dict | None = None,
                 stage_root: str | os.PathLike | None = None) -> None:
        self.size = max(1, workers or os.cpu_count() or 1)
        self._env = env
        self._sandboxed = sandbox.enabled() if env is None or "CDR_WORKER_SANDBOX" not in env \
            else env["CDR_WORKER_SANDBOX"] != "0"
        self._ids: tuple[int, int] | None = None
        self._stage_root: Path | None = None
        self._own_root = False
        if self._sandboxed:
            self._ids = sandbox.preflight()
            if stage_root is None:
                self._stage_root = Path(tempfile.mkdtemp(prefix="cdr-sandbox-"))
                self._own_root = True
            else:
                self._stage_root = Path(stage_root)
                self._stage_root.mkdir(parents=True, exist_ok=True)
        import queue
        from concurrent.futures import ThreadPoolExecutor

        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(self.size):
            self._idle.put(self._spawn())
        self._exec = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="cdr-pool")

    def _spawn(self) -> _Worker:
        stage = Stage(self._stage_root, self._ids) if self._stage_root is not None else None
        w = _Worker(self._env, stage)
        with self._lock:
            self._all.append(w)
        return w

    def _retire(self, w: _Worker) -> None:
        w.kill()
        w.remove_stage()
        with self._lock:
            if w in self._all:
                self._all.remove(w)

    def _replace(self, w: _Worker) -> _Worker:
        """Retire `w` and start its successor; a closed pool starts none (`w` is retired in the end)."""
        self._retire(w)
        return w if self._closed else self._spawn()

    def check(self, timeout: float = 60.0) -> str:
        """Wait until one worker is ready and say how it is isolated; raises SandboxUnavailable
        (or WorkerDied) when workers cannot start, so that a caller can refuse to go on."""
        w = self._idle.get()
        try:
            try:
                w.wait_ready(timeout)
            except (WorkerDied, TimeoutError, OSError, ValueError) as exc:
                raise WorkerDied(f"the first worker did not start ({type(exc).__name__})") from None
            return w.isolation
        finally:
            self._idle.put(w)

    def _exchange(self, job: Job) -> dict | FileResult:
        """Send one job to an idle worker: its reply, or a blocked result when the worker failed."""
        limits = job.policy.get("limits", {})
        timeout = float(limits.get("seconds_per_file", 60)) + GRACE_S
        w = self._idle.get()
        try:
            if not w.alive():
                w = self._replace(w)
            try:
                w.wait_ready()
                try:
                    seen = w.stage.put(job) if w.stage is not None else job
                except StageError as exc:
                    return _blocked(job, "worker.error", str(exc), "ファイルを読み取れませんでした",
                                    "the file could not be read")
                reply = w.call(seen, timeout)
                if w.stage is not None and isinstance(reply.get("result"), dict):
                    reply = dict(reply, result=w.stage.take(job, reply["result"]))
            except StageError as exc:
                return _blocked(job, "worker.protocol", str(exc), "処理結果の検証に失敗しました",
                                "the worker's result failed verification")
            except sandbox.SandboxUnavailable as exc:
                w = self._replace(w)
                return _blocked(job, "worker.sandbox", exc.what[:300],
                                "処理を隔離する環境を用意できなかったため配送を停止しました",
                                "the worker sandbox could not be set up")
            except TimeoutError:
                w = self._replace(w)
                secs = timeout - GRACE_S
                return _blocked(job, "file.timeout", f"timed out after {secs:g} s",
                                f"処理がタイムアウトしました（{secs:g} 秒）", f"timed out after {secs:g} s")
            except (WorkerDied, BrokenPipeError, OSError, ValueError) as exc:
                code = w.proc.poll()
                w = self._replace(w)
                if code is not None and code < 0 and -code == signal.SIGKILL:
                    return _blocked(job, "file.limit", "worker killed (memory)",
                                    "メモリ使用量の上限を超えたため処理を中止しました",
                                    "the worker ran out of memory")
                return _blocked(job, "worker.crashed", f"worker exited ({code}): {type(exc).__name__}",
                                "処理中にワーカーが異常終了しました", "the worker crashed while processing")
            if reply.get("recycle"):
                w = self._replace(w)
            return reply
        finally:
            if w.stage is not None and w in self._all:
                try:
                    w.stage.clear()
                except OSError:  # a stage that cannot be emptied is not reused
                    w = self._replace(w)
            if self._closed:
                self._retire(w)
            else:
                self._idle.put(w)

    def run(self, job: Job) -> FileResult:
        """Sanitize one file on an idle worker, blocking. Never raises for a bad file."""
        if not job.sha256:
            try:
                job = replace(job, sha256=sha256_file(Path(job.src)))
            except OSError:
                pass  # the worker reports the unreadable file
        reply = self._exchange(job)
        if isinstance(reply, FileResult):
            return reply
        if "result" not in reply:
            err = reply.get("error", "unknown")
            if err == "memory":
                return _blocked(job, "file.limit", "memory limit",
                                "メモリ使用量の上限を超えたため処理を中止しました", "memory limit exceeded")
            return _blocked(job, "worker.error", err, "処理中にエラーが発生しました",
                            "an internal error occurred while processing")
        try:
            res = FileResult.from_dict(reply["result"])
        except (TypeError, ValueError, KeyError):
            return _blocked(job, "worker.protocol", "bad result", "処理結果の検証に失敗しました",
                            "the worker's result could not be read")
        return recheck(job, res)

    def call(self, job: Job) -> dict:
        """Run an inspect/detect/mail_part job (job.op); failures come back as {"error": reason}."""
        reply = self._exchange(job)
        if isinstance(reply, FileResult):
            return {"error": reply.reason}
        if "error" in reply:
            return {"error": reply["error"]}
        return reply

    @property
    def isolation(self) -> str:
        """How the workers are fenced off ("network namespace", or why not), once one has started."""
        with self._lock:
            workers = list(self._all)
        for w in workers:
            if w.isolation:
                return w.isolation
        return ""

    def submit(self, job: Job) -> Future:
        return self._exec.submit(self.run, job)

    def kill(self) -> None:
        """Stop now: kill every worker (their jobs come back blocked as crashed)."""
        self._closed = True
        with self._lock:
            workers = list(self._all)
        for w in workers:
            w.kill()

    def close(self) -> None:
        self._closed = True
        self._exec.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for w in workers:  # all of them first, so that they exit together
            w.end_input()
        for w in workers:
            w.close()
        if self._own_root and self._stage_root is not None:
            shutil.rmtree(self._stage_root, ignore_errors=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    worker_main()
    # The parent closed our input: leave without the interpreter's teardown of every module (tens of
    # ms that the parent's join waits for). Nothing needs it: no job is open, the parent removes the stage.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(0)
