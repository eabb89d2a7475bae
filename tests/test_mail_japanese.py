"""Mail: Japanese charsets decoded as Japanese mailers write them, header words and file names in
every form, and every undecodable character counted."""
from __future__ import annotations

import base64
from urllib.parse import quote, unquote_to_bytes

import pytest

from cdr.formats.mail.headers import decode_words, param_value, parse_addresses, parse_params, rule_name
from cdr.formats.mail.japanese import decode, decode_eucjp, decode_iso2022jp, encode_iso2022jp_ms

HARD = "①②⑳Ⅰ㈱㈲㍻№髙﨑德ｶﾀｶﾅ～－∥￢"


def test_iso2022jp_with_nec_ibm_and_kana_the_way_windows_reads_it():
    raw = encode_iso2022jp_ms(HARD + "\r\n漢字かなカナ abc")
    d = decode_iso2022jp(raw)
    assert d.text == HARD + "\r\n漢字かなカナ abc" and d.defects == 0
    with pytest.raises(UnicodeDecodeError):  # what Python's own codec does with the same bytes
        raw.decode("iso2022_jp")


def test_iso2022jp_quirks():
    assert decode_iso2022jp(b"\x1b$B$\"\x1b(B\x0e123\x0fX").text == "あｱｲｳX"  # SO/SI kana (CP50221)
    assert decode_iso2022jp(b"\x1b$B$\"\n$\"\x1b(B").text == "あ\n$\""  # a line ends in ASCII
    d = decode_iso2022jp(b"\x1b$B\x7f\x7f\x1b(B")
    assert d.defects == 1 and "\ufffd" in d.text
    assert decode_iso2022jp(b"\x1b$(D\x30\x21\x1b(B").text == "\u4e02"  # JIS X 0212 through EUC-JP
    mislabelled = decode("日本語".encode("cp932"), "iso-2022-jp")
    assert mislabelled.text == "日本語" and mislabelled.notes


@pytest.mark.parametrize("label", ["shift_jis", "Shift-JIS", "x-sjis", "windows-31j", "CP932", "MS_Kanji"])
def test_shift_jis_labels_are_cp932(label):
    d = decode(HARD.replace("ｶﾀｶﾅ", "").encode("cp932"), label)
    assert d.text == HARD.replace("ｶﾀｶﾅ", "") and d.defects == 0


def test_euc_jp_with_nec_row_13():
    # ① in EUC-JP as Microsoft writes it (CP51932): row 13 = 0xAD.
    assert decode_eucjp(b"\xad\xa1\xb4\xc1\x8e\xb6").text == "①漢ｶ"
    assert decode(b"\xad\xa1", "EUC-JP").text == "①"


def test_unlabelled_8bit_is_utf8_then_cp932_and_defects_are_counted():
    assert decode("名簿".encode(), None).text == "名簿"
    assert decode("名簿".encode("cp932"), "us-ascii").text == "名簿"
    d = decode(b"abc\xe3\x81", "utf-8")
    assert d.defects == 1 and d.text == "abc\ufffd"
    assert decode(b"x", "unicode_escape").charset != "unicode_escape"  # not a charset: never used


def test_encoded_words_split_inside_a_character_are_joined():
    raw = "髙橋①".encode()
    a, b = base64.b64encode(raw[:4]).decode(), base64.b64encode(raw[4:]).decode()
    t = decode_words(f"=?UTF-8?B?{a}?=\r\n =?UTF-8?B?{b}?=".encode().replace(b"\r\n", b""))
    assert t.value == "髙橋①" and t.defects == 0
    jis = encode_iso2022jp_ms("会議①")
    t2 = decode_words(f"=?ISO-2022-JP?B?{base64.b64encode(jis[:5]).decode()}?= "
                      f"=?ISO-2022-JP?B?{base64.b64encode(jis[5:]).decode()}?=".encode())
    assert t2.value == "会議①"
    assert decode_words(b"Re: =?utf-8?q?=E4=BC=9A=E8=AD=B0?= (2)").value == "Re: 会議 (2)"


def test_header_injection_is_neutralised():
    t = decode_words(b"=?UTF-8?Q?Hello=0D=0ABcc:_x@example.jp?=")
    assert t.injected and "\r" not in t.value and "\n" not in t.value and t.value == "Hello Bcc: x@example.jp"
    assert decode_words(b"a\x00b").value == "a b"


@pytest.mark.parametrize("params,expect", [
    (b"; name*=shift_jis''" + quote("申請書①.txt".encode("cp932")).encode(), "申請書①.txt"),
    (b"; name*0*=UTF-8''" + quote("住民".encode()).encode() + b"; name*1*=" + quote("票.pdf".encode()).encode(),
     "住民票.pdf"),
    (b'; name="=?ISO-2022-JP?B?' + base64.b64encode(encode_iso2022jp_ms("届出①.pdf")) + b'?="', "届出①.pdf"),
    (b'; name="' + "見積書.xlsx".encode("cp932") + b'"', "見積書.xlsx"),
    (b'; name="' + "名簿.csv".encode() + b'"', "名簿.csv"),
    (b'; name="a\\"b.txt"', 'a"b.txt'),
])
def test_file_names_in_every_form(params, expect):
    assert parse_params(b"application/octet-stream" + params).params["name"] == expect


def test_rule_name_removes_bidi_and_trailing_dots():
    assert rule_name("invoice\u202efdp.exe") == "invoicefdp.exe"
    assert rule_name("report.exe. . ") == "report.exe"
    assert rule_name("ｶﾞ") == "ｶﾞ"  # NFC keeps half-width kana as they are


def test_written_names_round_trip_through_our_reader_and_split_whole_characters():
    long = "住民票の写しの交付申請書（令和６年度・第２回）添付資料一式.pdf"
    lines = param_value("filename", long)
    assert len(lines) > 1 and all(len(x) < 80 for x in lines)
    for seg in lines:
        value = seg.split("=", 1)[1].split("''", 1)[-1]
        unquote_to_bytes(value).decode("utf-8")  # each segment is whole characters
    assert parse_params(b"attachment; " + "; ".join(lines).encode()).params["filename"] == long


def test_addresses():
    a = parse_addresses('"山田, 太郎" <taro@example.jp>, hanako@example.jp (花子), 部署: a@b.jp, c@d.jp;')
    assert [(x.name, x.addr) for x in a] == [("山田, 太郎", "taro@example.jp"), ("花子", "hanako@example.jp"),
                                            ("", "a@b.jp"), ("", "c@d.jp")]
    assert parse_addresses("x <bad address>")[0].addr == ""
    assert parse_addresses("<user@日本.jp>")[0].addr == "user@xn--wgv71a.jp"


def test_raw_jis_in_a_header_and_8bit_data_with_escapes():
    assert decode_words(b"Re: " + encode_iso2022jp_ms("会議①")).value == "Re: 会議①"
    # ESC $ B followed by 8-bit bytes once sent the two decoders into each other (RecursionError).
    d = decode(b"\x1b$B\x82\xa0\x1b(B", "iso-2022-jp")
    assert isinstance(d.text, str) and d.notes
