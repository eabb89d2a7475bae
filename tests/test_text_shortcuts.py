"""The text and CSV shortcuts give the answers of the checks they stand for: the control-byte test on
bytes, the candidate pre-check of formula cells, one decoding shared by detection and the whole-file
decode, and the verify step's inspect of bytes the rebuild proved clean."""
from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from cdr.encoding import decode_whole, detect_encoding
from cdr.formats import _memo
from cdr.formats import text as T
from cdr.pipeline import process
from samples.text_samples import CSV_ROWS


@pytest.mark.parametrize("codec", sorted(T._CONTROL_BYTE_SAFE))
def test_control_bytes_are_control_characters_only(codec):
    """Every character's byte sequence that decodes strictly (all of up to 3 bytes; 4-byte UTF-8 with
    its last byte sampled) holds a control byte exactly when it decodes to a control character: these
    codecs decode character by character, so the whole file's bytes can be checked instead of its text."""
    bad_bytes = re.compile(rb"[\x00-\x08\x0e-\x19\x1c-\x1f]")
    checked = 0

    def walk(prefix: bytes) -> None:
        nonlocal checked
        last = range(256) if len(prefix) < 3 else [*range(0x20), 0x7F, 0x80, 0x9F, 0xBF, 0xC0, 0xFF]
        for b in last:
            seq = prefix + bytes([b])
            try:
                s = seq.decode(codec)
            except UnicodeDecodeError as exc:
                if exc.start == 0 and ("unexpected end" in exc.reason or "incomplete" in exc.reason):
                    walk(seq)  # the start of a longer character
                continue
            assert (T._BINARY.search(s) is not None) == (bad_bytes.search(seq) is not None), (codec, seq)
            checked += 1

    walk(b"")
    assert checked > 7000


def test_candidate_precheck_answers_like_the_one_regex():
    rnd = random.Random(11)
    cells = ["=1", "+81", "-5", "-", "－５", "＝Ａ", "@x", "\t-5", "\t=1", '"=1"', '"-5"', '"\r=1"', '"\t"', "x", "田中",
             "", '""', "1,234", "-1,234", "－", "sep=;", '"a,b"', "-a", "- 5", " -5", "--"]
    for _ in range(4000):
        d = rnd.choice([",", "\t", ";"])
        rows = [d.join(rnd.choice(cells) for _ in range(rnd.randint(1, 5))) for _ in range(rnd.randint(1, 6))]
        head = rnd.choice(["", "sep=;\n", '"sep=\t"\r\n', "sep==\n", 'sep="\r\n', "sep=-\n", "sep=＝\n"])
        text = head + "".join(r + rnd.choice(["\r\n", "\n", "\r"]) for r in rows)
        # Many near misses now and then, past the point where the pre-check hands over to one pass.
        if rnd.random() < 0.1:
            text = "a,-5\r\n" * rnd.randint(60, 80) + text
        for utf16 in (False, True):
            delims = T._delimiters(text, utf16)
            first, anywhere = T._any_split_patterns(delims)
            want = bool(first.match(text) or anywhere.search(text))
            assert T._any_formula_cell(text, delims) == want, (text, delims)


def _reference_formula_cells(text: str, d: str) -> list[tuple[int, int, int]]:
    """_formula_cells as it was: one regex pass for the pre-check, a tokenizer match for every row end."""
    e = re.escape(d)
    start = T._cell_start(d, True)
    if not (re.match(f"(?:{start})", text) or re.search(rf"[{e}\r\n](?:{start})", text)):
        return []
    quoted = rf'"(?P<q>[^"]*(?:""[^"]*)*)(?:"(?P<t>[^{e}\r\n]*))?|' if d != '"' else ""
    tok = re.compile(rf"(?:^|(?<=[{e}\r\n]))(?:{quoted}(?P<u>{T._cell_start(d, False)}))|(?P<nl>\r\n?|\n)")
    found, row, col, last = [], 1, 1, 0
    for m in tok.finditer(text):
        if m["nl"]:
            row, col, last = row + 1, 1, m.end()
            continue
        col += text.count(d, last, m.start())
        if m["u"]:
            found.append((m.start(), row, col))
            last = m.start()
            continue
        last = m.end()
        q = m.group("q")
        c = q[:1]
        value = (q.replace('""', '"') + (m.group("t") or "")).strip()
        if c and c != d and (c in T._LEAD or c in T._SIGNS + "\t\r" and not T._NUMBER.match(value)
                             and not (c in T._SIGNS and T._SIGNS_ONLY.match(value))):
            found.append((m.start() + 1, row, col))
    return found


def test_formula_cells_rows_and_columns_as_before():
    rnd = random.Random(5)
    cells = ["=1", "+81", "-5", "-", "@x", "\t-5", "\t=1", '"=1"', '"-5"', '"\r=1"', '"a\r\nb"', '"x\ny"', '"q""q"',
             '"open', 'a"b', "x", "田中", "", "－５", "＝Ａ", '"=1"x', "a;b", "|"]
    for _ in range(3000):
        d = rnd.choice([",", "\t", ";", "|", '"', "="])
        rows = [d.join(rnd.choice(cells) for _ in range(rnd.randint(1, 5))) for _ in range(rnd.randint(1, 6))]
        text = "".join(r + rnd.choice(["\r\n", "\n", "\r", "\r\r\n", "\n\r"]) for r in rows)
        text = text[:rnd.randint(0, len(text))] if rnd.random() < 0.3 else text
        assert T._formula_cells(text, d) == _reference_formula_cells(text, d), (text, d)


def test_detection_and_whole_decoding_share_one_decoding():
    for data in ("名簿,住所\r\n".encode("cp932") * 3, "名簿\n".encode("euc_jp"), "名簿".encode(),
                 "山田,住所\r\n".encode("cp932") * 120_000):  # past the detection sample
        assert decode_whole(data) == (data.decode(detect_encoding(data)), detect_encoding(data))


def test_verify_of_unchanged_bytes_is_remembered_and_forgotten(tmp_path, default_policy):
    src = tmp_path / "in.csv"
    src.write_bytes("\r\n".join(",".join(r) for r in CSV_ROWS[:3]).encode("cp932") * 50)
    h = T.CsvHandler()
    calls: list[bytes] = []
    real = T.CsvHandler._scan

    def counting(self, data):
        calls.append(data)
        return real(self, data)

    T.CsvHandler._scan = counting  # type: ignore[method-assign]
    try:
        r = process(src, "in.csv", tmp_path / "out", default_policy)
        assert r.verdict == "clean" and len(calls) == 1  # rebuild scanned; verify asked about equal bytes
        assert all(len(getattr(m, "entries", m)) == 0 for m in _memo._memos)
        assert h.inspect(None, src, None) == [] and len(calls) == 2  # forgotten: scanned again
        # Changed bytes are not what rebuild proved: scanned and judged afresh.
        _memo.forget_all()
        out = tmp_path / "o.csv"
        h.rebuild(None, src, out, None)
        out.write_bytes(out.read_bytes() + b"\r\nx,=1")
        assert [t.id for t in h.inspect(None, out, None)] == ["csv.formula"]
    finally:
        T.CsvHandler._scan = real  # type: ignore[method-assign]
        _memo.forget_all()


def test_plain_text_verify_of_unchanged_bytes(tmp_path, default_policy):
    src = tmp_path / "memo.txt"
    src.write_bytes("本文です。\r\n".encode("cp932") * 500)
    r = process(src, "memo.txt", tmp_path / "out", default_policy)
    assert r.verdict == "clean" and Path(r.output).read_bytes() == src.read_bytes()
    assert all(len(getattr(m, "entries", m)) == 0 for m in _memo._memos)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(src.read_bytes() + b"\x01")
    h = T.TextHandler()
    _memo.forget_all()
    try:
        h.rebuild(None, src, tmp_path / "o.txt", None)
        assert [t.id for t in h.inspect(None, bad, None)] == ["text.binary_data"]
        assert h.inspect(None, src, None) == []
    finally:
        _memo.forget_all()
