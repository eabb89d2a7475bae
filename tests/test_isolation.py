"""Workers are real processes with a wall-clock timeout and a memory limit; a bad handler never
takes the batch down and never delivers its input."""
from __future__ import annotations

import json
import os

from tests.conftest import ROOT, run_cli

POLICY = """
name = "isolation-test"
version = "1"
[limits]
seconds_per_file = 3
worker_memory_mb = 600
[families.text]
action = "sanitize"
"""


def test_loop_alloc_crash_are_blocked_and_batch_completes(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "loop.txt").write_bytes(b"LOOP forever")
    (src / "alloc.txt").write_bytes(b"ALLOC all memory")
    (src / "crash.txt").write_bytes(b"CRASH now")
    (src / "raise.txt").write_bytes(b"RAISE error")
    for i in range(6):
        (src / f"ok{i}.txt").write_text(f"普通のテキスト {i}\n", "utf-8")
    policy = tmp_path / "p.toml"
    policy.write_text(POLICY, "utf-8")
    out, report = tmp_path / "out", tmp_path / "r.json"
    env = {"CDR_PLUGINS": "tests.plugins.misbehave",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = run_cli("sanitize", str(src), "-o", str(out), "--policy", str(policy), "--report", str(report),
                   "--jobs", "2", env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    files = {os.path.basename(f["source"]): f for f in json.loads(report.read_text("utf-8"))["files"]}
    assert files["loop.txt"]["verdict"] == "blocked"
    assert "timed out after 3 s" in files["loop.txt"]["reason"]
    assert "タイムアウト" in files["loop.txt"]["reason"]
    assert files["alloc.txt"]["verdict"] == "blocked"
    assert any(t["id"] == "file.limit" for t in files["alloc.txt"]["threats"])
    assert files["crash.txt"]["verdict"] == "blocked"
    assert any(t["id"] == "worker.crashed" for t in files["crash.txt"]["threats"])
    assert files["raise.txt"]["verdict"] == "blocked"
    assert any(t["id"] == "file.malformed" for t in files["raise.txt"]["threats"])
    for i in range(6):
        assert files[f"ok{i}.txt"]["verdict"] == "clean"
        assert (out / f"ok{i}.txt").read_text("utf-8") == f"普通のテキスト {i}\n"
    for bad in ("loop.txt", "alloc.txt", "crash.txt", "raise.txt"):
        assert not (out / bad).exists()
    # Nothing else in the output folder: no placeholders, no staging leftovers.
    assert sorted(p.name for p in out.iterdir()) == [f"ok{i}.txt" for i in range(6)]


def test_worker_has_no_network(tmp_path):
    """A parser tricked into fetching something reaches nothing, not even this machine's loopback."""
    import socket

    from cdr.policy import load_policy
    from cdr.worker import Job, WorkerPool

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    src = tmp_path / "net.txt"
    src.write_text(f"NET {port}\n")
    env = {"CDR_PLUGINS": "tests.plugins.misbehave",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = tmp_path / "out"
    out.mkdir()
    with WorkerPool(1, env=env) as pool:
        res = pool.run(Job(str(src), "net.txt", str(out), load_policy("default").to_dict()))
        isolation = pool.isolation
    listener.close()
    if "network namespace" not in isolation:
        import pytest

        pytest.skip(f"this machine does not allow network namespaces: {isolation}")
    assert res.verdict == "clean"
    assert (out / "net.txt").read_text().startswith("isolated")
