"""A parser exploit in a worker gets nothing (issue 15, guarantee 2).

Real workers load tests/plugins/escape.py, a text handler that does what a compromised parser would:
read the appliance's ledger, /etc/shadow or another job's file, write outside its job, connect
anywhere, run a shell, trace or signal another process. Each attempt must end `blocked` (or as a
contained error) with nothing delivered. The same attempt without the sandbox (CDR_WORKER_SANDBOX=0)
succeeds where that is safe to show, so that the test proves the sandbox, not a missing file.
Targets live in /var/tmp, readable and writable for anyone: only Landlock and seccomp stand between
them and the worker (the worker's own /tmp is its private stage).
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from cdr.errors import SandboxUnavailable
from cdr.policy import load_policy
from cdr.worker import Job, WorkerPool
from tests.conftest import BIN, ROOT, run_cli

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux only")

ENV = {"CDR_PLUGINS": "tests.plugins.escape",
       "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
OFF = {**ENV, "CDR_WORKER_SANDBOX": "0"}
POLICY = load_policy("default").to_dict()
SECRET = b"ledger row: not for workers"


@pytest.fixture(scope="module")
def outside():
    """A data directory like the appliance's (ledger, another job's input, a drop folder), in /var/tmp."""
    d = Path(tempfile.mkdtemp(prefix="cdr-sandbox-test-", dir="/var/tmp"))
    os.chmod(d, 0o755)
    (d / "state").mkdir(mode=0o755)
    from transfer_agent.ledger import Ledger

    ledger = Ledger(d / "state" / "ledger.sqlite3")
    with ledger.tx() as t:
        t.audit("test", {"note": SECRET.decode()})
    ledger.close()
    os.chmod(d / "state" / "ledger.sqlite3", 0o644)
    (d / "quarantine").mkdir(mode=0o755)
    (d / "quarantine" / "other-job.txt").write_bytes(b"another job's input")
    os.chmod(d / "quarantine" / "other-job.txt", 0o644)
    (d / "drop").mkdir()
    os.chmod(d / "drop", 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _run(pool: WorkerPool, tmp_path: Path, attempts: dict[str, str]) -> dict[str, tuple]:
    """Submit one job per attempt; {name: (FileResult, out_dir)}."""
    futures = {}
    for name, body in attempts.items():
        src = tmp_path / "in" / f"{name}.txt"
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(body)
        out = tmp_path / "out" / name
        out.mkdir(parents=True)
        futures[name] = (pool.submit(Job(str(src), src.name, str(out), POLICY)), out)
    return {name: (f.result(timeout=120), out) for name, (f, out) in futures.items()}


def _contained(res, out: Path) -> None:
    assert res.verdict == "blocked", (res.verdict, res.reason)
    assert res.output is None and not any(out.iterdir())
    detail = " ".join(t.detail for t in res.threats)
    assert any(e in detail for e in ("PermissionError", "Errno 1]", "Errno 13]", "Errno 30]", "OSError")), detail


def test_isolation_is_reported_and_complete():
    with WorkerPool(1, env=ENV) as pool:
        iso = pool.check()
    assert "Landlock" in iso and "seccomp" in iso and "network namespace" in iso, iso
    if os.geteuid() == 0:
        assert f"uid {pwd.getpwnam('cdr-worker').pw_uid}" in iso
    else:
        assert "user namespace" in iso


def test_reads_nothing_outside_its_job(outside, tmp_path):
    home = os.path.expanduser("~")
    stage_root = outside / "work" / "sandbox"  # where the appliance puts it: inside its data directory
    with WorkerPool(2, env=ENV, stage_root=stage_root) as pool:
        # A job that holds the other worker, so that its staged input exists while we look for it.
        busy = pool.submit(Job(str(_write(tmp_path / "busy.txt", "SLEEP 4")), "busy.txt",
                               str(_mkdir(tmp_path / "busy-out")), POLICY))
        staged = _wait_for(lambda: [p for p in stage_root.glob("*/in/*")])
        res = _run(pool, tmp_path, {
            "ledger": f"ESCAPE read {outside / 'state' / 'ledger.sqlite3'}",
            "datadir": f"ESCAPE list {outside}",
            "stages": f"ESCAPE list {stage_root}",
            "other_input": f"ESCAPE read {outside / 'quarantine' / 'other-job.txt'}",
            "other_stage": f"ESCAPE read {staged[0]}",
            "shadow": "ESCAPE read /etc/shadow",
            "home": f"ESCAPE list {home}",
            "etc": "ESCAPE list /etc",
        })
        assert busy.result(timeout=60).verdict == "clean"
        fine = _run(pool, tmp_path / "fine", {"plain": "普通のテキスト\n"})["plain"][0]
    for r, out in res.values():
        _contained(r, out)
    assert fine.verdict == "clean" and Path(fine.output).read_text("utf-8") == "普通のテキスト\n"
    assert not list(stage_root.glob("*/in/*")), "inputs are removed from the stage after each job"
    # Without the sandbox the very same attempt delivers the ledger: the files were there to take.
    with WorkerPool(1, env=OFF) as pool:
        (r, _out), = _run(pool, tmp_path / "off", {
            "ledger": f"ESCAPE read {outside / 'state' / 'ledger.sqlite3'}"}).values()
    assert r.verdict == "clean" and SECRET.hex() in Path(r.output).read_text()


def test_writes_nothing_outside_its_job(outside, tmp_path):
    target = outside / "drop" / "planted.txt"
    other_out = _mkdir(outside / "work" / "jobs" / "7-1")  # another job's output folder
    os.chmod(other_out, 0o777)
    with WorkerPool(1, env=ENV) as pool:
        res = _run(pool, tmp_path, {
            "drop": f"ESCAPE write {target}",
            "other_out": f"ESCAPE write {other_out / 'planted.txt'}",
            "own_input": "ESCAPE overwrite -",
            "etc": "ESCAPE write /etc/cdr-planted",
            "mount": "ESCAPE mount /tmp/job/work",
        })
    for r, out in res.values():
        _contained(r, out)
    assert not target.exists() and not any(other_out.iterdir()) and not Path("/etc/cdr-planted").exists()
    assert (tmp_path / "in" / "own_input.txt").read_text() == "ESCAPE overwrite -"  # the original, linked in
    with WorkerPool(1, env=OFF) as pool:
        (r, _out), = _run(pool, tmp_path / "off", {"drop": f"ESCAPE write {target}"}).values()
    assert r.verdict == "clean" and target.read_bytes() == b"written by a worker"
    target.unlink()


def test_connects_nowhere(outside, tmp_path):
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(4)
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    sock_path = str(outside / "control.sock")
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(sock_path)
    os.chmod(sock_path, 0o777)
    unix.listen(4)
    unix.setblocking(False)
    dgram_path = str(outside / "log.sock")
    dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dgram.bind(dgram_path)
    os.chmod(dgram_path, 0o777)
    dgram.setblocking(False)
    try:
        with WorkerPool(1, env=ENV) as pool:
            res = _run(pool, tmp_path, {
                "tcp": f"ESCAPE tcp {tcp.getsockname()[1]}",
                "udp": f"ESCAPE udp {udp.getsockname()[1]}",
                "unix": f"ESCAPE unix {sock_path}",
                "unixdgram": f"ESCAPE unixdgram {dgram_path}",
            })
        for r, out in res.values():
            _contained(r, out)
        for s in (tcp, unix):
            with pytest.raises(BlockingIOError):
                s.accept()
        for s in (udp, dgram):
            with pytest.raises(BlockingIOError):
                s.recv(100)
        # The named socket was reachable: without the sandbox the worker gets through.
        with WorkerPool(1, env=OFF) as pool:
            (r, _out), = _run(pool, tmp_path / "off", {"unix": f"ESCAPE unix {sock_path}"}).values()
        assert r.verdict == "clean"
        conn, _ = unix.accept()
        conn.close()
    finally:
        for s in (tcp, udp, unix, dgram):
            s.close()


def test_cannot_trace_signal_or_run_a_shell(tmp_path):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        with WorkerPool(1, env=ENV) as pool:
            res = _run(pool, tmp_path, {
                "shell": "ESCAPE exec /bin/sh",
                "bash": "ESCAPE exec /usr/bin/bash",
                "python": f"ESCAPE exec {os.path.realpath(sys.executable)}",
                "ptrace": f"ESCAPE ptrace {sleeper.pid}",
                "signal": f"ESCAPE signal {sleeper.pid}",
                "parent": f"ESCAPE ptrace {os.getpid()}",
            })
        for r, out in res.values():
            _contained(r, out)
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_helper_tools_still_work_inside(corpus, tmp_path):
    """LibreOffice, poppler (text and page images) and the SVG rasteriser run inside the sandbox."""
    pdf_base, _ = corpus("pdf")
    svg_base, _ = corpus("svg")
    legacy_base, _ = corpus("legacy_office")
    tools = json.loads(json.dumps(POLICY))
    tools["families"]["pdf"]["render"] = "images"
    tools["families"]["svg"]["mode"] = "rasterize"
    tools["families"]["legacy_office"]["mode"] = "convert"
    jobs = [(pdf_base / "pdf/benign/japanese_1page.pdf", POLICY, True),
            (pdf_base / "pdf/benign/comments.pdf", tools, False),
            (svg_base / "svg/benign/map.svg", tools, False),
            (legacy_base / "legacy_office/benign/申請書.doc", tools, True)]
    with WorkerPool(1) as pool:
        results = [pool.run(Job(str(src), src.name, str(_mkdir(tmp_path / str(i))), pol, want_text=text))
                   for i, (src, pol, text) in enumerate(jobs)]
    for (src, _pol, text), r in zip(jobs, results, strict=True):
        assert r.verdict != "blocked", (src.name, r.reason)
        assert Path(r.output).stat().st_size > 0
        if text:
            assert Path(r.text_output).read_text("utf-8").strip(), src.name
    assert results[2].output.endswith(".png") and results[3].output.endswith(".docx")


def test_parent_takes_only_plain_closed_outputs(tmp_path):
    """The parent moves the output out of the stage itself: a link, or a file the worker still
    holds open for writing (it could change after its hash was taken), is refused."""
    with WorkerPool(1, env=ENV) as pool:
        res = _run(pool, tmp_path, {"symlink": "OUTPUT symlink /etc/passwd", "hardlink": "OUTPUT hardlink",
                                    "keepopen": "OUTPUT keepopen"})
        fine = _run(pool, tmp_path / "after", {"plain": "普通のテキスト\n"})["plain"][0]
    for name, (r, out) in res.items():
        assert r.verdict == "blocked" and r.threats[-1].id == "worker.protocol", (name, r.reason)
        assert not any(out.iterdir()), name
    assert "open for writing" in res["keepopen"][0].threats[-1].detail
    assert fine.verdict == "clean"


def test_nothing_a_job_leaves_in_its_scratch_reaches_the_next(tmp_path):
    """Jobs work directly in the stage's work/ (no folder made and removed per file): what one job
    leaves there is gone before the next job of the same worker starts."""
    stage_root = tmp_path / "stages"
    with WorkerPool(1, env=ENV, stage_root=stage_root) as pool:
        (first, _o), = _run(pool, tmp_path / "1", {"plant": "ESCAPE write /tmp/job/work/planted.txt"}).values()
        assert not list(stage_root.glob("*/work/*")), "the parent empties work/ after each job"
        (second, out), = _run(pool, tmp_path / "2", {"look": "ESCAPE read /tmp/job/work/planted.txt"}).values()
        fine = _run(pool, tmp_path / "3", {"plain": "普通のテキスト\n"})["plain"][0]
    assert first.verdict == "clean", (first.reason, [t.detail for t in first.threats])
    assert second.verdict == "blocked" and not any(out.iterdir())
    assert "No such file" in " ".join(t.detail for t in second.threats)
    assert fine.verdict == "clean" and Path(fine.output).read_text("utf-8") == "普通のテキスト\n"


def test_staged_input_is_readable_whatever_the_umask(tmp_path):
    """An original the worker's user may not read (quarantine keeps them 0440) is copied into the
    stage readable for it, even while the parent's umask is 077 (a service unit's UMask, or another
    thread narrowing it): the worker must not fail on its own input (CI saw PermissionError)."""
    src = tmp_path / "in" / "原本.txt"
    src.parent.mkdir()
    src.write_text("受付した原本です。\n", "utf-8")
    os.chmod(src, 0o440)
    out = tmp_path / "out"
    out.mkdir()
    with WorkerPool(1) as pool:
        old = os.umask(0o077)
        try:
            res = pool.submit(Job(str(src), src.name, str(out), POLICY)).result(timeout=120)
        finally:
            os.umask(old)
    assert res.verdict == "clean", (res.reason, [t.detail for t in res.threats])
    assert Path(res.output).read_text("utf-8") == "受付した原本です。\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="root drops workers to the cdr-worker user")
def test_worker_that_cannot_be_sandboxed_refuses(tmp_path):
    """Fail closed: a handler module the worker user may not read stops the worker, not the check."""
    plugin = _write(tmp_path / "private_plugin.py", "")
    os.chmod(plugin, 0o600)
    env = {"CDR_PLUGINS": "private_plugin", "PYTHONPATH": str(tmp_path)}
    with WorkerPool(1, env=env) as pool:
        with pytest.raises(SandboxUnavailable) as exc:
            pool.check()
        res = pool.run(Job(str(_write(tmp_path / "a.txt", "hello")), "a.txt", str(_mkdir(tmp_path / "o")), POLICY))
    assert "private_plugin.py is not readable" in str(exc.value) and "CDR_WORKER_SANDBOX=0" in str(exc.value)
    assert res.verdict == "blocked" and res.threats[0].id == "worker.sandbox" and not any((tmp_path / "o").iterdir())
    assert "隔離" in res.reason


@pytest.mark.skipif(os.geteuid() != 0, reason="root drops workers to the cdr-worker user")
def test_missing_worker_user_stops_cli_before_any_output(tmp_path):
    src = _write(tmp_path / "a.txt", "hello")
    proc = run_cli("sanitize", str(src), "-o", str(tmp_path / "out"), env={"CDR_WORKER_USER": "no-such-user"})
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "no-such-user" in err and "CDR_WORKER_SANDBOX=0" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal is for root")
def test_serve_refuses_sandbox_off_as_root(tmp_path):
    proc = subprocess.run([str(BIN / "transfer-agent"), "serve", "--data-dir", str(tmp_path / "var"),
                           "--api-port", "0", "--console-port", "0"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "CDR_WORKER_SANDBOX": "0"})
    assert proc.returncode == 2 and "CDR_WORKER_SANDBOX=0" in proc.stderr and "root" in proc.stderr
    assert not (tmp_path / "var" / "state").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user for the test")
def test_unprivileged_parent_sandboxes_workers_in_a_user_namespace(outside, tmp_path):
    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(prefix="cdr-sandbox-user-", dir="/var/tmp"))
    try:
        os.chmod(base, 0o755)
        jobs = {}
        for name, body in {"plain": "普通のテキスト\n", "ledger": f"ESCAPE read {outside / 'state' / 'ledger.sqlite3'}",
                           "tcp": "ESCAPE tcp 9", "shell": "ESCAPE exec /bin/sh",
                           "drop": f"ESCAPE write {outside / 'drop' / 'user.txt'}"}.items():
            src, out = _write(base / f"{name}.txt", body), _mkdir(base / f"out-{name}")
            for p in (src, out):
                os.chown(p, nobody.pw_uid, nobody.pw_gid)
            jobs[name] = [str(src), str(out)]
        req = {"uid": nobody.pw_uid, "gid": nobody.pw_gid, "env": ENV, "jobs": jobs}
        proc = subprocess.run([sys.executable, "-m", "tests.sandbox_unprivileged"], input=json.dumps(req),
                              capture_output=True, text=True, timeout=180, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-3000:]
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        assert got["uid"] == nobody.pw_uid and "user namespace" in got["isolation"], got["isolation"]
        r = got["results"]
        assert r["plain"]["verdict"] == "clean" and Path(r["plain"]["output"]).read_text("utf-8") == "普通のテキスト\n"
        for name in ("ledger", "tcp", "shell", "drop"):
            assert r[name]["verdict"] == "blocked" and not r[name]["output"], (name, r[name])
        assert not (outside / "drop" / "user.txt").exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------ helpers

def _write(p: Path, text: str) -> Path:
    p.write_text(text, "utf-8")
    return p


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _wait_for(fn, timeout: float = 30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = fn()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out waiting")
