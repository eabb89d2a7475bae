"""The OOXML byte checks on the hot path: remembered per file by content, and the distinct-tag scan of
large parts."""
from __future__ import annotations

import random
import zipfile

from cdr.formats import _memo
from cdr.formats.ooxml import mce
from cdr.fuzz import mutators
from cdr.pipeline import inspect, process
from samples.office_samples import make_docx, make_xlsx
from samples.pdf_samples import japanese_pdf


def test_memo_answers_equal_bytes_only_and_is_bounded(monkeypatch):
    calls: list[bytes] = []

    def check(data: bytes, flag: str) -> int:
        calls.append(data)
        return len(data) + len(flag)

    memo = _memo.ContentMemo(check)
    a = b"<x/>" * 1000
    assert memo(a, "f") == memo(bytes(bytearray(a)), "f") == 4001  # equal content, another object
    assert len(calls) == 1
    memo(a[:-1] + b"!", "f")  # one byte changed: checked afresh
    memo(a, "g")  # other arguments: checked afresh
    assert len(calls) == 3
    memo(b"<y/>", "f")
    memo(b"<y/>", "f")  # small inputs are not remembered
    assert len(calls) == 5
    monkeypatch.setattr(_memo, "_MAX_BYTES", 10_000)
    for i in range(5):
        memo(bytes([65 + i]) * 4000, "f")
    assert memo.held <= 10_000 and len(memo.entries) == 2
    _memo.forget_all()
    assert not memo.entries and memo.held == 0


def test_nothing_of_a_file_is_remembered_after_it(default_policy, tmp_path):
    import cdr.formats.pdf  # noqa: F401 - registers its per-file cache too, as in a worker that met a PDF

    (tmp_path / "out").mkdir()
    pdf = tmp_path / "通知.pdf"
    pdf.write_bytes(japanese_pdf())
    for src in (make_xlsx(tmp_path / "表.xlsx", rows=3000), pdf):
        r = process(src, src.name, tmp_path / "out", default_policy)
        assert r.verdict in ("clean", "sanitized")
        # Every memo and per-file cache, whatever its kind, holds nothing of the file once it is done.
        assert all(len(getattr(m, "entries", m)) == 0 for m in _memo._memos), _memo._memos
        # Nor after an inspection only (`cdr inspect`, the worker's inspect jobs).
        found = inspect(src, src.name, default_policy)
        assert found["error"] is None
        assert all(len(getattr(m, "entries", m)) == 0 for m in _memo._memos), _memo._memos


def test_verify_still_judges_what_was_written(default_policy, tmp_path):
    """A docx whose part the rebuild must change: the changed bytes are checked again, and the result
    is the same as without any memory (same verdict and findings twice in a row)."""
    src = make_docx(tmp_path / "a.docx", pages=2)
    data = src.read_bytes()
    with zipfile.ZipFile(src) as z:
        doc = z.read("word/document.xml")
        items = [(i, z.read(i.filename)) for i in z.infolist()]
    foreign = doc.replace(b"<w:body>", b'<w:body><x:script xmlns:x="urn:evil">run()</x:script>', 1)
    bad = tmp_path / "b.docx"
    with zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as z:
        for info, body in items:
            z.writestr(info.filename, foreign if info.filename == "word/document.xml" else body)
    results = []
    for n in range(2):
        out = tmp_path / f"out{n}"
        out.mkdir()
        r = process(bad, bad.name, out, default_policy)
        results.append((r.verdict, sorted(t.id for t in r.threats)))
        assert r.verdict == "sanitized" and "ooxml.unknown_markup" in results[-1][1]
        with zipfile.ZipFile(r.output) as z:
            assert b"urn:evil" not in z.read("word/document.xml")
    assert results[0] == results[1]
    assert src.read_bytes() == data


def test_distinct_tag_scan_of_large_parts_equals_findall(tmp_path):
    src = make_xlsx(tmp_path / "big.xlsx", rows=6000)
    with zipfile.ZipFile(src) as z:
        parts = [z.read(n) for n in z.namelist() if n.endswith(".xml")]
    rnd = random.Random(7)
    checked = 0
    for part in parts:
        for k in range(4):
            data = part if k == 0 else mutators.mutate(part, random.Random(rnd.getrandbits(32)))[0]
            data = data * (1 + 300_000 // max(len(data), 1))  # the large-part path
            plain = set(mce._START_TAG.findall(data))
            fast = mce.tag_names(data)
            # Equal, or a superset when a damaged name holds "<" (then the tree path decides).
            assert fast == plain or (plain <= fast and any(b"<" in n for n in plain))
            checked += 1
    assert checked >= 8
