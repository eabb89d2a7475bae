"""Text, CSV and HTML handlers: encodings, byte fidelity, formula neutralising, HTML disarming."""
from __future__ import annotations

from pathlib import Path

import pytest

from cdr.detect import detect
from cdr.encoding import detect_encoding
from cdr.pipeline import inspect, process
from samples.text_samples import CSV_ROWS, JA


@pytest.mark.parametrize("enc", ["utf-8", "cp932", "euc_jp", "iso2022_jp"])
def test_japanese_encodings_are_recognised(enc):
    data = (JA * 3).encode(enc)
    got = detect_encoding(data)
    assert data.decode(got) == JA * 3


def test_short_shift_jis_is_not_mojibake():
    for word in ("表", "申請書", "ソフト", "能力", "予定表"):
        data = word.encode("cp932")
        assert data.decode(detect_encoding(data)) == word


def test_plain_text_is_byte_identical(corpus, default_policy, tmp_path):
    base, _ = corpus("text")
    for name in ("sjis.txt", "eucjp.txt", "iso2022jp.txt", "utf8_bom.txt"):
        src = base / "text" / "benign" / name
        r = process(src, name, tmp_path / name, default_policy, want_text=True)
        assert r.verdict == "clean"
        assert Path(r.output).read_bytes() == src.read_bytes()
        assert Path(r.text_output).read_text("utf-8").replace("\ufeff", "") == JA


def test_csv_formulas_neutralised_rest_byte_faithful(corpus, default_policy, tmp_path):
    base, _ = corpus("text")
    src = base / "text" / "hostile" / "formula_sjis.csv"
    r = process(src, "formula_sjis.csv", tmp_path, default_policy)
    assert r.verdict == "sanitized"
    locs = {t.location for t in r.threats if t.id == "csv.formula"}
    assert "row 4, column 2" in locs and "row 4, column 3" in locs
    out = Path(r.output).read_bytes()
    text = out.decode("cp932")
    assert "'=1+2" in text and "'@SUM(A1:A2)" in text and "'+81-3-1234" in text and "'-2+3" in text
    assert ",-5," in text  # a plain negative number is data
    # Removing the inserted apostrophes gives back the original bytes exactly.
    assert out.replace(b"'", b"") == src.read_bytes().replace(b"'", b"")
    assert inspect(r.output, "x.csv", default_policy)["threats"] == []


def test_csv_quoted_cells_with_tab_and_cr(corpus, default_policy, tmp_path):
    base, _ = corpus("text")
    r = process(base / "text" / "hostile" / "tab_cell.csv", "tab_cell.csv", tmp_path, default_policy)
    assert Path(r.output).read_bytes() == b'a,"\'\tcmd"\r\nb,"\'\r=1"\r\n'


def test_csv_rows_roundtrip_via_csv_module(default_policy, tmp_path):
    import csv
    import io

    src = tmp_path / "in.csv"
    src.write_bytes("\r\n".join(",".join(r) for r in CSV_ROWS[:3]).encode("cp932"))
    r = process(src, "in.csv", tmp_path / "o", default_policy)
    rows = list(csv.reader(io.StringIO(Path(r.output).read_bytes().decode("cp932"))))
    assert rows == CSV_ROWS[:3]


def test_html_disarmed_and_text_kept(corpus, default_policy, tmp_path):
    base, _ = corpus("text")
    r = process(base / "text" / "hostile" / "script.html", "script.html", tmp_path, default_policy,
                want_text=True)
    assert r.verdict == "sanitized"
    html = Path(r.output).read_text("utf-8")
    for bad in ("<script", "onload", "<iframe", "javascript:", "<form", "http-equiv", "evil.example"):
        assert bad not in html.lower()
    assert "本文" in html
    assert "本文" in Path(r.text_output).read_text("utf-8")


def test_benign_html_keeps_structure(corpus, default_policy, tmp_path):
    base, _ = corpus("text")
    r = process(base / "text" / "benign" / "page.html", "page.html", tmp_path, default_policy)
    assert r.verdict == "clean"
    html = Path(r.output).read_text("utf-8")
    assert "<h1>休館日のお知らせ</h1>" in html and "<table>" in html and "https://www.example.lg.jp/" in html
    assert "<title>お知らせ</title>" in html


def test_disguised_html_detected(corpus):
    base, _ = corpus("text")
    det = detect(base / "text" / "hostile" / "disguised.txt")
    assert det.mime == "text/html"
    assert any(t.id == "file.type_mismatch" for t in det.threats)


def test_xml_is_delivered_as_plain_text(default_policy, tmp_path):
    """Office opens Word 2003 XML (macros, remote templates) by its .xml name; as .txt it is inert."""
    src = tmp_path / "invoice.xml"
    src.write_text('<?xml version="1.0"?><?mso-application progid="Word.Document"?><w:wordDocument/>')
    r = process(src, "invoice.xml", tmp_path / "out", default_policy)
    assert r.verdict == "sanitized" and Path(r.output).name == "invoice.txt"
    assert any(t.id == "file.type_mismatch" for t in r.threats)


def test_html_remote_pictures_dropped_and_prose_not_mistaken(default_policy, tmp_path):
    src = tmp_path / "p.html"
    src.write_text('<html><body><p>a regular expression (regex) and src=data: in prose</p>'
                   '<img src="http://tracker.example/p.gif"><img src="local.png"></body></html>', "utf-8")
    r = process(src, "p.html", tmp_path / "out", default_policy)
    assert r.verdict == "sanitized", r.reason
    assert [t.id for t in r.threats] == ["html.external_ref"]
    html = Path(r.output).read_text("utf-8")
    assert "tracker.example" not in html and 'src="local.png"' in html and "regular expression" in html
