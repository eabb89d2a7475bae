"""Arbitrary bytes under any name never crash the tool, never hang past the timeout, and are either
blocked or delivered verified."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdr.model import BLOCKED, VERDICTS
from cdr.policy import load_policy
from cdr.worker import Job, WorkerPool

PREFIXES = [b"", b"%PDF-1.7\n", b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"{\\rtf1 ", b"GIF89a",
            b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"<svg ", b"<html>", b"MZ", b"7z\xbc\xaf\x27\x1c",
            b"\x1f\x8b\x08", b"BM", b"II*\x00", b"RIFF\x00\x00\x00\x00WEBP", "氏名,金額\n".encode("cp932")]
NAMES = ["a.pdf", "a.docx", "a.xls", "a.txt", "a.csv", "a.zip", "a.png", "a.jpg", "a.svg", "a.html", "申請書.doc",
         "noext", "a.exe", "a.rtf", "a.odt", "a.tar.gz", "a.7z", "a.gif", "a.tif", "a.webp"]


@pytest.fixture(scope="module")
def pool():
    p = WorkerPool(2)
    yield p
    p.close()


@pytest.fixture(scope="module")
def policy_dict():
    pol = load_policy("default")
    pol.limits.seconds_per_file = 10
    pol.limits.worker_memory_mb = 1024
    return pol.to_dict()


@settings(max_examples=int(os.environ.get("CDR_FUZZ_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=3000), name=st.sampled_from(NAMES))
def test_arbitrary_bytes(pool, policy_dict, prefix, body, name):
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "input.bin"
        src.write_bytes(prefix + body)
        out = Path(tmp) / "out"
        out.mkdir()
        res = pool.run(Job(str(src), name, str(out), policy_dict, want_text=True))
        assert res.verdict in VERDICTS
        assert res.elapsed_ms < 20_000
        if res.verdict == BLOCKED:
            assert res.reason and res.output is None
            assert not any(out.iterdir()), "blocked file left output behind"
            return
        assert res.output and Path(res.output).is_file()
        # Re-inspect the delivered file in a worker: nothing active may remain.
        again = pool.call(Job(res.output, os.path.basename(res.output), str(out), policy_dict, op="inspect"))
        info = again.get("inspect")
        assert info is not None, again
        assert [t for t in info["threats"] if t["id"] != "file.type_mismatch"] == [], info


FAMILIES = ["pdf", "ooxml", "image", "svg", "archive", "rtf", "odf", "text"]


@pytest.fixture(scope="module")
def seeds(corpus):
    """Benign and hostile samples of every family: mutated, they reach deep into the parsers."""
    files = []
    for fam in FAMILIES:
        base, samples = corpus(fam)
        files.extend(base / rel for rel, s in sorted(samples.items()) if (base / rel).stat().st_size < 400_000)
    return files


@settings(max_examples=int(os.environ.get("CDR_FUZZ_EXAMPLES", "80")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_samples(pool, policy_dict, seeds, data):
    seed = data.draw(st.sampled_from(seeds), label="seed")
    raw = bytearray(seed.read_bytes())
    for _ in range(data.draw(st.integers(1, 8), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "zero"]), label="kind")
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)), label="pos")
        if kind == "flip" and raw:
            raw[pos] ^= data.draw(st.integers(1, 255), label="mask")
        elif kind == "truncate":
            del raw[pos:]
        elif kind == "insert":
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=64), label="bytes")
        elif raw:
            raw[pos:pos + 16] = bytes(len(raw[pos:pos + 16]))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "input.bin"
        src.write_bytes(bytes(raw))
        out = Path(tmp) / "out"
        out.mkdir()
        res = pool.run(Job(str(src), seed.name, str(out), policy_dict, want_text=True))
        assert res.verdict in VERDICTS
        assert res.elapsed_ms < 20_000
        if res.verdict == BLOCKED:
            assert res.reason and not any(out.iterdir())
            return
        again = pool.call(Job(res.output, os.path.basename(res.output), str(out), policy_dict, op="inspect"))
        info = again.get("inspect")
        assert info is not None, again
        assert [t for t in info["threats"] if t["id"] != "file.type_mismatch"] == [], (seed.name, info)
