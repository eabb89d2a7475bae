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


def _csv_out(tmp_path, data: bytes, name: str = "in.csv", policy=None):
    from cdr.policy import load_policy

    policy = policy or load_policy(Path(__file__).resolve().parents[1] / "rules" / "default.toml")
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = tmp_path / name
    src.write_bytes(data)
    r = process(src, name, tmp_path / "out", policy)
    return r, (Path(r.output).read_bytes() if r.output else None)


@pytest.mark.parametrize("data, want", [
    # More tabs than commas, but Excel still splits a .csv on commas.
    (b'a\tb\tc\td\r\nx,=HYPERLINK("http://203.0.113.5/","click")\r\n',
     b'a\tb\tc\td\r\nx,\'=HYPERLINK("http://203.0.113.5/","click")\r\n'),
    # A sep= first line makes Excel split on that character; the directive itself stays intact.
    (b"sep=;\r\nname;=1+1\r\n", b"sep=;\r\nname;'=1+1\r\n"),
    (b"sep=|\r\nname|=1+1\r\n", b"sep=|\r\nname|'=1+1\r\n"),
    # Excel splits a UTF-16 CSV on tabs; the output keeps the byte order and BOM.
    ("a,b,c,d\tq\r\nx,y,z\t=1+1\r\n".encode("utf-16"), "a,b,c,d\tq\r\nx,y,z\t'=1+1\r\n".encode("utf-16")),
    (b"\xfe\xff" + "x,y\t@SUM(1)\r\n".encode("utf-16-be"), b"\xfe\xff" + "x,y\t'@SUM(1)\r\n".encode("utf-16-be")),
    # A file laid out with tabs is also read split on tabs; a comma file is not (see below).
    (b'a\tb\r\nx,y\t=1+1\r\n', b"a\tb\r\nx,y\t'=1+1\r\n"),
])
def test_csv_formulas_found_under_every_split(tmp_path, default_policy, data, want):
    r, out = _csv_out(tmp_path, data)
    assert r.verdict == "sanitized", r.reason
    assert out == want
    assert any(t.id == "csv.formula" for t in r.threats)
    assert inspect(r.output, "x.csv", default_policy)["threats"] == []


def test_comma_file_is_not_read_split_on_tabs(tmp_path):
    """Split on tabs, "-500,返金" would be one cell starting with a sign: a comma file is not read that way."""
    data = "金額,摘要\r\n-500,返金\r\n+3.2,調整\r\n".encode("cp932")
    r, out = _csv_out(tmp_path, data)
    assert r.verdict == "clean" and out == data


def test_iso2022jp_csv_hiding_formulas_from_excel_is_blocked(tmp_path):
    # Inside ESC $ B the pairs "0," "=1" are kanji to us, but Excel reads the file as CP932 and sees ",=11+1".
    data = "氏名,備考\r\n".encode("iso2022_jp") + b"abc\x1b$B0,=11+1,\x1b(B\r\n"
    r, out = _csv_out(tmp_path, data)
    assert r.verdict == "blocked" and out is None
    assert [t.id for t in r.threats] == ["csv.formula"]
    assert "Shift_JIS" in str(r.reason)


def test_iso2022jp_text_and_benign_csv_untouched(tmp_path):
    data = "氏名,備考\r\n山田,申請済み\r\n".encode("iso2022_jp")
    r, out = _csv_out(tmp_path, data)
    assert r.verdict == "clean" and out == data


def test_utf8_sep_swallowed_by_cp932_is_blocked(tmp_path):
    # In CP932, the UTF-8 byte 0x81 of "Á" swallows the "|" delimiter: Excel's quoting shifts and =1 starts a cell.
    r, _out = _csv_out(tmp_path, 'sep=|\r\nÁ|"a|=1"\r\n'.encode())
    assert r.verdict == "blocked"


@pytest.mark.parametrize("text", [
    "氏名,金額,備考\r\n山田太郎,-5,\"東京都, 千代田区\"\r\n鈴木,+3.2,\"複数行\r\nの備考\"\r\n",
    "sep=;\r\n氏名;金額\r\n山田;-1200\r\n",
    "sep=\t\r\n氏名\t金額\r\n山田\t-1,200\r\n",
    "金額\r\n-500\r\n+3.2\r\n\t12\r\n",
    "ソ,表,能\n\"a\"\"b\",-0.5e3,50%\n",
])
@pytest.mark.parametrize("enc", ["cp932", "utf-8", "utf-8-sig", "euc_jp", "utf-16"])
def test_benign_csv_byte_identical(tmp_path, text, enc):
    data = text.encode(enc)
    r, out = _csv_out(tmp_path, data)
    assert r.verdict == "clean", r.reason
    assert out == data


def test_formula_in_byte_safe_encodings_is_exact(tmp_path):
    for enc in ("cp932", "euc_jp", "utf-8", "utf-8-sig"):
        r, out = _csv_out(tmp_path / enc, "表\tソ\r\n能\t=1+1,\"x,;=2\"\r\n".encode(enc))
        # A tab layout is read split on tabs ("=1+1,..." starts a cell) and on commas (quoted "x,;=2" is one
        # cell); no semicolon layout, so "=2" is not a cell start.
        assert out == "表\tソ\r\n能\t'=1+1,\"x,;=2\"\r\n".encode(enc), enc


def test_csv_large_file_one_formula(tmp_path):
    row = "山田太郎,-1234,\"申請済み, 確認中\",東京都千代田区霞が関1-2-3,03-1234-5678\r\n"
    data = (row * (1_000_000 // len(row.encode("cp932")))).encode("cp932")
    r, out = _csv_out(tmp_path, data + b"x,=1+1\r\n")
    assert out == data + b"x,'=1+1\r\n"  # timing is measured by benchmarks/, not asserted here


def _zip_with_exe() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("請求書.exe", b"MZ" + b"\x90" * 58 + b"\x40\x00\x00\x00PE\x00\x00" + b"\x00" * 200)
    return buf.getvalue()


def test_text_or_csv_hiding_a_program_after_its_first_8kb_is_blocked(tmp_path, default_policy):
    """Detection reads the head only: a ZIP with an EXE appended to 18 KB of Japanese text (or CSV) must
    not be delivered byte for byte, alone or inside an archive (a tar would even become a ZIP)."""
    import tarfile

    tail = _zip_with_exe()
    body = "お知らせの本文です。\n".encode() * 1200
    cases = {"notes.txt": body + tail, "list.csv": "氏名,金額\n山田,1000\n".encode("cp932") * 600 + tail}
    for name, data in cases.items():
        src = tmp_path / name
        src.write_bytes(data)
        r = process(src, name, tmp_path / f"o-{name}", default_policy)
        assert r.verdict == "blocked" and "text.binary_data" in {t.id for t in r.threats}, (name, r.reason)
    tar = tmp_path / "bundle.tar"
    with tarfile.open(tar, "w") as t:
        t.add(tmp_path / "notes.txt", "notes.txt")
        (tmp_path / "ok.txt").write_text("問題のないメモ\n", "utf-8")
        t.add(tmp_path / "ok.txt", "ok.txt")
    r = process(tar, tar.name, tmp_path / "o-tar", default_policy)
    assert r.verdict == "sanitized" and {c.verdict for c in r.children} == {"blocked", "clean"}
    assert b"PK\x05\x06" not in Path(r.output).read_bytes()


def test_text_with_tabs_form_feeds_and_dos_eof_is_still_text(tmp_path, default_policy):
    src = tmp_path / "old.txt"
    src.write_bytes("見出し\t値\r\n\x0c次のページ\r\n\x1a".encode("cp932"))
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "clean" and Path(r.output).read_bytes() == src.read_bytes()


def test_csv_cells_of_dashes_alone_are_data(tmp_path, default_policy):
    """"-" and "--" (該当なし in statistics) call nothing: left as they are; "-A1" is still neutralised."""
    src = tmp_path / "stats.csv"
    src.write_bytes('地区,人口,備考\r\n北区,-,"--"\r\n南区,--,"-"\r\n東区,-A1,\r\n'.encode("cp932"))
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert [t.location for t in r.threats] == ["row 4, column 2"]
    assert Path(r.output).read_bytes() == src.read_bytes().replace(b",-A1,", b",'-A1,")


# ---------------------------------------------------------------- issue 20: text decodes completely

_SCRIPT_PAGE = "<html><body><script>alert(document.cookie)</script><p>本文です</p></body></html>"


@pytest.mark.parametrize("bom, enc", [(b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")])
@pytest.mark.parametrize("cut", [0, 1, 3])
@pytest.mark.parametrize("name", ["page.html", "page.txt"])
def test_utf16_html_with_script_is_html_whatever_its_length(tmp_path, default_policy, bom, enc, cut, name):
    """Cut to an odd length, a UTF-16 page no longer decoded and was delivered as clean text."""
    data = bom + _SCRIPT_PAGE.encode(enc)
    data = data[:len(data) - cut]
    src = tmp_path / name
    src.write_bytes(data)
    assert detect(src, name).mime == "text/html"
    r = process(src, name, tmp_path / "out", default_policy)
    assert r.verdict == "sanitized" and "html.active_content" in {t.id for t in r.threats}, r.reason
    out = Path(r.output).read_bytes().decode("utf-8")
    assert "<script" not in out.lower() and "本文です" in out


@pytest.mark.parametrize("data, why", [
    ("申請書の本文です。\r\n".encode("utf-16") * 50 + b"\x00", "UTF-16 cut to an odd length"),
    (b"\xff\xfe" + "前半".encode("utf-16-le") + b"\x00\xd8" + "後半".encode("utf-16-le"), "unpaired high surrogate"),
    (b"\xfe\xff" + "前半".encode("utf-16-be") + b"\xdc\x00", "unpaired low surrogate at the end"),
    ("本文です。\n".encode() * 70_000 + b"\xff\xfe\xed\xa0\x80\n" + "続き\n".encode(), "invalid UTF-8 after 1 MB"),
])
@pytest.mark.parametrize("name", ["memo.txt", "list.csv"])
def test_text_that_does_not_decode_completely_is_blocked(tmp_path, default_policy, data, why, name):
    src = tmp_path / name
    src.write_bytes(data)
    r = process(src, name, tmp_path / "out", default_policy)
    assert r.verdict == "blocked", why
    assert "text.binary_data" in {t.id for t in r.threats}, why
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    found = inspect(src, name, default_policy)["threats"]
    assert any(t["id"] == "text.binary_data" for t in found), why


def test_ascii_head_before_shift_jis_rows_still_decodes(tmp_path, default_policy):
    """The encoding is detected from the first megabyte; a Shift_JIS file with a long ASCII head is still whole."""
    data = b"id,code,amount\r\n" + b"1,ABC,100\r\n" * 110_000 + "2,山田,200\r\n".encode("cp932")
    for name in ("big.txt", "big.csv"):
        src = tmp_path / name
        src.write_bytes(data)
        r = process(src, name, tmp_path / f"out-{name}", default_policy, want_text=True)
        assert r.verdict == "clean", r.reason
        assert Path(r.output).read_bytes() == data


# ---------------------------------------------------------------- issue 15 (10): full-width formula signs

_FW_FORMULAS = ["＝1+1", "＝ＨＹＰＥＲＬＩＮＫ(\"http://203.0.113.5/\")", "＠SUM(A1:A2)", "＋A1", "－A1+3", "－未定"]
# "－" (該当なし), "－－" and full-width negative numbers are data: LibreOffice (ja-JP) reads "－" and "－5" as
# text and "－５" as the number -5; none of them can call anything.
_FW_DATA = ["－", "－－", "－ ", "－5", "－５", "－１，２３４", "＋８１", "－1.5", "－５０％"]


@pytest.mark.parametrize("enc", ["cp932", "utf-8", "utf-8-sig", "utf-16"])
@pytest.mark.parametrize("quoted", [False, True])
def test_full_width_formula_signs_are_neutralised_like_ascii(tmp_path, enc, quoted):
    def cell(v: str) -> str:
        return f'"{v}"' if quoted else v

    rows = [f"{i},{cell(v)}" for i, v in enumerate(_FW_FORMULAS + _FW_DATA)]
    data = ("\r\n".join(rows) + "\r\n").encode(enc)
    r, out = _csv_out(tmp_path, data)
    assert r.verdict == "sanitized", r.reason
    assert [t.location for t in r.threats] == [f"row {i + 1}, column 2" for i in range(len(_FW_FORMULAS))]
    text = out.decode(enc)
    for v in _FW_FORMULAS:
        assert f",{cell(chr(39) + v)}\r\n" in text, v
    for v in _FW_DATA:
        assert f",{cell(v)}\r\n" in text, v


def test_full_width_formula_in_iso2022jp_csv_is_blocked(tmp_path):
    r, out = _csv_out(tmp_path, "氏名,備考\r\n山田,＝１＋１\r\n".encode("iso2022_jp"))
    assert r.verdict == "blocked" and out is None and [t.id for t in r.threats] == ["csv.formula"]
