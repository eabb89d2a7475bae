"""PDF handler: every hostile sample loses its active content, benign files keep their fidelity."""
from __future__ import annotations

import copy
import io
import subprocess
import time
import tomllib
from pathlib import Path

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name

from cdr.detect import detect
from cdr.formats.pdf.walk import Walker
from cdr.handler import Context, handler_for
from cdr.pipeline import process
from cdr.policy import Policy
from samples.pdf_samples import _base, _js, _save, japanese_pdf

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = [
    "js_names_tree", "js_openaction", "js_link_annotation", "js_outline", "js_objstm", "js_incremental",
    "js_obfuscated_names", "aa_document", "aa_page", "aa_annotation", "aa_field", "launch", "submit_form",
    "import_data", "gotor", "gotoe", "uri_javascript", "uri_file", "uri_fake_type", "outside_files",
    "outside_files_indirect", "richmedia", "richmedia_damaged_subtype", "launch_damaged_dict",
    "movie_sound_screen_3d", "xfa",
    "embedded_file", "embedded_exe", "trailing_data", "leading_junk", "damaged_xref", "encrypted_empty_user",
    "encrypted_password", "encrypted_password_supplied", "bomb", "bomb_before_codec", "too_many_pages",
    "codec_trailing_payload", "font_sing_table",
]
BENIGN = ["japanese_1page", "multipage_images", "bookmarks_links_labels", "form_values", "comments", "scanned_codecs",
          "embedded_truetype", "embedded_cff", "embedded_type1"]


def _policy(action: str = "sanitize", limits: dict | None = None, **opts) -> Policy:
    """rules/default.toml's limits and pdf section (other families left out), with overrides."""
    data = tomllib.loads((ROOT / "rules" / "default.toml").read_text("utf-8"))
    pdf = dict(data.get("families", {}).get("pdf", {"action": "sanitize"}))
    pdf.update(action=action, **opts)
    data["families"] = {"pdf": pdf}
    data["limits"] = {**data.get("limits", {}), **(limits or {})}
    return Policy.from_dict(data, "test")


@pytest.fixture(scope="module")
def pdfs(corpus):
    base, samples = corpus("pdf")
    return base, {Path(p).stem: s for p, s in samples.items()}


@pytest.fixture(scope="module")
def done(pdfs, tmp_path_factory):
    """Every sample through the default policy once: name -> FileResult."""
    base, samples = pdfs
    out = tmp_path_factory.mktemp("pdf-out")
    pol = _policy()
    return {name: process(base / s.path, Path(s.path).name, out / name, pol, password=s.password,
                          want_text=name in BENIGN)
            for name, s in samples.items()}


def _ctx(tmp: Path, pol: Policy | None = None) -> Context:
    pol = pol or _policy()
    return Context(name="t.pdf", options=dict(pol.family("pdf").options), limits=pol.limits, workdir=tmp)


def _inspect(path: Path, tmp: Path, pol: Policy | None = None) -> list:
    return handler_for("application/pdf").inspect(_ctx(tmp, pol), path, detect(path))


def _text(path: Path, tmp: Path) -> str:
    return handler_for("application/pdf").extract_text(_ctx(tmp), path, detect(path))


def _deep_walk(path: Path, **kw) -> list:
    """The full rule walk, bypassing the byte pre-scan."""
    with pikepdf.open(path) as pdf:
        return Walker(pdf, fix=False, **kw).run()


def test_every_sample_is_covered(pdfs):
    assert sorted(pdfs[1]) == sorted(HOSTILE + BENIGN)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile(name, pdfs, done, tmp_path):
    sample, res = pdfs[1][name], done[name]
    ids = {t.id for t in res.threats}
    assert res.verdict == sample.verdict, (res.reason, res.threats)
    assert set(sample.threats) <= ids, ids
    if res.verdict == "blocked":
        assert res.output is None and res.reason
        return
    out = Path(res.output)
    assert out.read_bytes().rstrip().endswith(b"%%EOF") and out.read_bytes().startswith(b"%PDF-")
    assert out.read_bytes().count(b"%%EOF") == 1
    assert _inspect(out, tmp_path) == []
    assert _deep_walk(out) == []
    with pikepdf.open(out) as pdf:  # opens without a password: never encrypted
        assert not pdf.is_encrypted
        assert len(pdf.pages) == 1
        assert "/OpenAction" not in pdf.Root and "/AA" not in pdf.Root
        assert "/JavaScript" not in pdf.Root.get("/Names", {})
        assert "/EmbeddedFiles" not in pdf.Root.get("/Names", {})
        assert "/XFA" not in pdf.Root.get("/AcroForm", {})


# Inspect reports active content by rule (deny-list, as verify does on every output); what only the rebuild's
# allow-list removes (a damaged subtype, keys outside the specification) it does not name.
@pytest.mark.parametrize("name", [n for n in HOSTILE if n not in
                                  ("damaged_xref", "bomb", "bomb_before_codec", "too_many_pages", "encrypted_password",
                                   "encrypted_password_supplied", "richmedia_damaged_subtype", "launch_damaged_dict")])
def test_inspect_finds_threats_in_input(name, pdfs, tmp_path):
    base, samples = pdfs
    found = _inspect(base / samples[name].path, tmp_path)
    assert set(samples[name].threats) <= {t.id for t in found}
    assert all(t.action == "found" for t in found)


def test_obfuscated_names_are_normalised(pdfs):
    base, samples = pdfs
    raw = (base / samples["js_obfuscated_names"].path).read_bytes()
    assert b"/JavaScript" not in raw and b"/J#61vaScript" in raw
    assert "pdf.javascript" in {t.id for t in _deep_walk(base / samples["js_obfuscated_names"].path)}


def test_incremental_update_earlier_revision_gone(done):
    res = done["js_incremental"]
    assert any(t.id == "pdf.incremental_update" and t.action == "reported" for t in res.threats)


def test_web_link_kept_foreign_link_removed(done):
    with pikepdf.open(done["uri_file"].output) as pdf:
        uris = [str(a.A.URI) for a in pdf.pages[0].Annots if "/A" in a]
        assert uris == ["https://www.example.lg.jp/"]
        assert len(pdf.pages[0].Annots) == 2  # the neutralised link stays as a plain annotation


def test_xfa_fields_and_values_kept(done):
    with pikepdf.open(done["xfa"].output) as pdf:
        fields = {str(f.T): f.get("/V") for f in pdf.Root.AcroForm.Fields}
        assert str(fields["applicant"]) == "Yamada Taro"
        assert "/NeedsRendering" not in pdf.Root


def test_password_supplied_and_wrong(pdfs, tmp_path):
    base, samples = pdfs
    src = base / samples["encrypted_password"].path
    ok = process(src, "p.pdf", tmp_path / "a", _policy(), password="himitsu", want_text=True)
    assert ok.verdict == "sanitized" and "pdf.encrypted" in {t.id for t in ok.threats}
    assert "住民票" in Path(ok.text_output).read_text("utf-8")
    bad = process(src, "p.pdf", tmp_path / "b", _policy(), password="wrong")
    assert bad.verdict == "blocked" and "file.encrypted" in {t.id for t in bad.threats}
    assert "パスワード" in bad.reason


# ---- fidelity ----------------------------------------------------------------------------------
def _summary(path: Path) -> dict:
    with pikepdf.open(path) as pdf:
        pages = []
        for p in pdf.pages:
            annots = [(str(a.get("/Subtype")), str(a.get("/Contents", ""))) for a in p.get("/Annots", [])]
            pages.append({"box": [float(x) for x in p.mediabox], "images": len(list(p.get_images())), "annots": annots,
                          "fonts": sorted(p.Resources.get("/Font", {}).keys())})
        return {"pages": pages, "labels": repr(pdf.Root.get("/PageLabels")).count("/S")}


@pytest.mark.parametrize("name", BENIGN)
def test_benign_fidelity(name, pdfs, done, tmp_path):
    base, samples = pdfs
    src, res = base / samples[name].path, done[name]
    assert res.verdict == "clean", res.threats
    assert {t.action for t in res.threats} <= {"reported"}
    out = Path(res.output)
    assert _summary(out) == _summary(src)
    text = Path(res.text_output).read_text("utf-8")
    assert text == _text(src, tmp_path)
    assert "\f" in text
    assert _inspect(out, tmp_path) == []


def test_japanese_text_extracted(done):
    text = Path(done["japanese_1page"].text_output).read_text("utf-8")
    assert "住民票の写しの交付申請書" in text and "東京都千代田区霞が関" in text
    multi = Path(done["multipage_images"].text_output).read_text("utf-8").split("\f")
    assert all(f"写真資料 第{i}頁" in multi[i - 1] for i in (1, 2, 3))


def test_bookmarks_links_labels_kept(done):
    with pikepdf.open(done["bookmarks_links_labels"].output) as pdf:
        with pdf.open_outline() as ol:
            titles = [str(i.title) for i in ol.root]
            targets = [i.destination for i in ol.root]
        assert titles == ["第1章", "第2章", "第3章"] and all(t is not None for t in targets)
        links = pdf.pages[0].Annots
        internal = [a for a in links if "/Dest" in a or ("/A" in a and a.A.S == Name.GoTo)]
        assert internal, "internal link lost"
        web = [a for a in links if "/A" in a and a.A.get("/S") == Name.URI]
        assert str(web[0].A.URI) == "https://www.example.lg.jp/"
        assert pdf.Root.OpenAction[0].objgen == pdf.pages[0].obj.objgen
        assert pdf.Root.PageLabels.Nums[3].P == "本文-"
        assert "/Info" not in pdf.trailer  # metadata = drop by default


def test_form_fields_point_at_page_widgets(done):
    with pikepdf.open(done["form_values"].output) as pdf:
        fields = {str(f.T): f for f in pdf.Root.AcroForm.Fields}
        assert str(fields["applicant"].V) == "Yamada Taro"
        assert fields["agree"].V == Name("/Yes") or str(fields["agree"].V) != "/Off"
        widgets = {a.objgen for a in pdf.pages[0].Annots if a.get("/Subtype") == Name.Widget}
        assert {f.objgen for f in fields.values()} <= widgets


# ---- policy options ----------------------------------------------------------------------------
def _attachment_pdf(tmp: Path) -> Path:
    """A PDF carrying a PDF with JavaScript and an executable."""
    inner = _base()
    inner.Root.OpenAction = _js(inner)
    pdf = _base()
    pdf.attachments["inner.pdf"] = pikepdf.AttachedFileSpec(pdf, _save(inner), filename="inner.pdf")
    pdf.attachments["tool.exe"] = pikepdf.AttachedFileSpec(pdf, b"MZ" + b"\0" * 300, filename="tool.exe")
    p = tmp / "attach.pdf"
    p.write_bytes(_save(pdf))
    return p


def test_attachments_sanitized_and_reattached(tmp_path):
    src = _attachment_pdf(tmp_path)
    pol = _policy(embedded_files="sanitize")
    res = process(src, "attach.pdf", tmp_path / "o", pol)
    assert res.verdict == "sanitized", res.reason
    kids = {c.source: c for c in res.children}
    assert kids["attach.pdf/inner.pdf"].verdict == "sanitized"
    assert "pdf.javascript" in {t.id for t in kids["attach.pdf/inner.pdf"].threats}
    assert kids["attach.pdf/tool.exe"].verdict == "blocked"
    with pikepdf.open(res.output) as pdf:
        assert list(pdf.attachments) == ["inner.pdf"]
        data = pdf.attachments["inner.pdf"].get_file().read_bytes()
    with pikepdf.open(io.BytesIO(data)) as inner:
        assert "/OpenAction" not in inner.Root
    assert _inspect(Path(res.output), tmp_path, pol) == []
    # Under the default policy the same attachments are dropped.
    dropped = process(src, "attach.pdf", tmp_path / "d", _policy())
    assert "pdf.embedded_file" in {t.id for t in dropped.threats} and not dropped.children
    with pikepdf.open(dropped.output) as pdf:
        assert len(pdf.attachments) == 0


def test_attachment_with_f_and_uf_reported_once_under_its_unicode_name(default_policy, tmp_path):
    """/EF /F and /UF hold one file (a second stream under one of them is dropped): one child, one threat,
    the Japanese /UF name kept even when /F is a legacy Shift_JIS byte string."""
    pdf = _base()
    body = pdf.make_stream("申請者：山田太郎\n".encode())
    body.Type = Name.EmbeddedFile
    spec = pdf.make_indirect(Dictionary(Type=Name.Filespec, F=pikepdf.String("申請書.txt".encode("cp932")),
                                        UF=pikepdf.String("申請書.txt"), EF=Dictionary(F=body, UF=body)))
    hidden = pdf.make_stream(b"MZ" + bytes(100))
    hidden.Type = Name.EmbeddedFile
    spec2 = pdf.make_indirect(Dictionary(Type=Name.Filespec, F=pikepdf.String("memo.txt"),
                                         UF=pikepdf.String("メモ.txt"),
                                         EF=Dictionary(F=hidden, UF=pdf.make_stream(b"memo\n"))))
    pdf.Root.Names = Dictionary(EmbeddedFiles=Dictionary(Names=Array(["a", spec, "b", spec2])))
    # The same file reached again through an annotation with its own (direct) file specification.
    pdf.pages[0].Annots = Array([pdf.make_indirect(Dictionary(
        Type=Name.Annot, Subtype=Name.FileAttachment, Rect=[10, 10, 30, 30],
        FS=Dictionary(Type=Name.Filespec, UF=pikepdf.String("申請書.txt"), EF=Dictionary(F=body))))])
    src = tmp_path / "uf.pdf"
    src.write_bytes(_save(pdf))
    d = default_policy.to_dict()
    d["families"]["pdf"]["embedded_files"] = "sanitize"
    pol = Policy.from_dict(d, "test")
    res = process(src, "uf.pdf", tmp_path / "o", pol)
    assert res.verdict == "sanitized", res.reason
    assert sorted(c.source for c in res.children) == ["uf.pdf/メモ.txt", "uf.pdf/申請書.txt"]
    assert all(c.verdict == "clean" for c in res.children)
    att = [t for t in res.threats if t.id == "pdf.embedded_file"]
    assert [t.detail for t in att if "申請書" in t.location] == ["attachment sanitized and re-attached"]
    assert sorted(t.detail for t in att if "メモ" in t.location) == [
        "1 other file(s) stored under the same attachment", "attachment sanitized and re-attached"]
    with pikepdf.open(res.output) as out:
        specs = dict(zip(out.Root.Names.EmbeddedFiles.Names[::2], out.Root.Names.EmbeddedFiles.Names[1::2],
                         strict=True))
        ef = specs["a"].EF
        assert ef.F.objgen == ef.UF.objgen and ef.F.read_bytes() == "申請者：山田太郎\n".encode()
        assert str(specs["a"].UF) == "申請書.txt"
        assert specs["b"].EF.F.read_bytes() == b"memo\n"  # /UF's file; the MZ under /F is gone
        assert b"MZ" + bytes(100) not in Path(res.output).read_bytes()
    assert _inspect(Path(res.output), tmp_path, pol) == []


def test_links_drop(pdfs, tmp_path):
    base, samples = pdfs
    pol = _policy(links="drop")
    res = process(base / samples["bookmarks_links_labels"].path, "l.pdf", tmp_path, pol)
    assert res.verdict == "sanitized" and "pdf.uri" in {t.id for t in res.threats}
    with pikepdf.open(res.output) as pdf:
        assert not any("/A" in a and a.A.get("/S") == Name.URI for a in pdf.pages[0].Annots)
    assert _inspect(Path(res.output), tmp_path, pol) == []


def test_metadata_keep(pdfs, tmp_path):
    base, samples = pdfs
    res = process(base / samples["japanese_1page"].path, "m.pdf", tmp_path, _policy(metadata="keep"))
    assert "pdf.metadata" not in {t.id for t in res.threats}
    with pikepdf.open(res.output) as pdf:
        assert str(pdf.docinfo.Title) == "申請書"


def test_malformed_block(pdfs, tmp_path):
    base, samples = pdfs
    res = process(base / samples["damaged_xref"].path, "d.pdf", tmp_path, _policy(malformed="block"))
    assert res.verdict == "blocked" and "file.malformed" in {t.id for t in res.threats}


def _latin_pdf() -> bytes:
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(300, 200))
    for i in range(2):
        c.setFont("Helvetica", 14)
        c.drawString(20, 150, f"Rendered page {i + 1}")
        c.rect(20, 20, 100, 60, fill=1)
        c.showPage()
    c.save()
    return buf.getvalue()


def test_render_images(tmp_path):
    src = tmp_path / "latin.pdf"
    pdf = pikepdf.open(io.BytesIO(_latin_pdf()))
    pdf.Root.OpenAction = _js(pdf)
    src.write_bytes(_save(pdf))
    pol = _policy(render="images", dpi=50)
    res = process(src, "latin.pdf", tmp_path / "o", pol, want_text=True)
    assert res.verdict == "sanitized", res.reason
    assert {"pdf.rendered", "pdf.javascript"} <= {t.id for t in res.threats}
    with pikepdf.open(res.output) as out:
        assert len(out.pages) == 2
        for page in out.pages:
            assert len(list(page.get_images())) == 1 and "/Font" not in page.Resources
            assert [round(float(x)) for x in page.mediabox] == [0, 0, 300, 200]
    assert "Rendered page 2" in Path(res.text_output).read_text("utf-8")


@pytest.mark.skipif(Path("/usr/share/poppler/cMap").exists(), reason="poppler-data installed")
def test_render_refuses_to_blank_japanese(pdfs, tmp_path):
    base, samples = pdfs
    res = process(base / samples["japanese_1page"].path, "j.pdf", tmp_path, _policy(render="images", dpi=50))
    assert res.verdict == "blocked" and "file.tool_failed" in {t.id for t in res.threats}


def test_text_only_policy(pdfs, tmp_path):
    base, samples = pdfs
    res = process(base / samples["js_openaction"].path, "t.pdf", tmp_path, _policy(action="text"))
    assert res.verdict == "sanitized" and res.output.endswith(".pdf.txt")
    assert "住民票の写しの交付申請書" in Path(res.output).read_text("utf-8")


def test_limits(pdfs, tmp_path):
    base, samples = pdfs
    src = base / samples["multipage_images"].path
    res = process(src, "x.pdf", tmp_path / "p", _policy(limits={"max_pages": 2}))
    assert res.verdict == "blocked" and "file.limit" in {t.id for t in res.threats}
    res = process(src, "x.pdf", tmp_path / "o", _policy(limits={"max_pdf_objects": 5}))
    assert res.verdict == "blocked" and "file.limit" in {t.id for t in res.threats}
    res = process(src, "x.pdf", tmp_path / "i", _policy(limits={"max_pixels": 1000}))
    assert res.verdict == "blocked" and "pdf.bomb" in {t.id for t in res.threats}
    res = process(src, "x.pdf", tmp_path / "t", _policy(), deadline=time.monotonic() - 1)
    assert res.verdict == "blocked" and "file.timeout" in {t.id for t in res.threats}


def test_rule_walk_removes_what_prescan_misses(tmp_path):
    """Actions hidden in odd places: the fix walk and the find walk agree."""
    pdf = _base()
    js = _js(pdf)
    pdf.pages[0].obj.Custom = Dictionary(Next=Array([js]))
    pdf.Root.Outlines = pdf.make_indirect(Dictionary(Type=Name.Outlines, Count=0))
    link = Dictionary(S=Name.GoTo, D=Array([pdf.pages[0].obj, Name.Fit]), Next=js)
    pdf.pages[0].obj.Annots = Array([pdf.make_indirect(Dictionary(Type=Name.Annot, Subtype=Name.Link,
                                                                  Rect=[0, 0, 9, 9], A=link))])
    pdf.pages[0].obj.Annots.append(pdf.make_indirect(Dictionary(
        Type=Name.Annot, Subtype=Name.Link, Rect=[0, 0, 9, 9],
        A=Dictionary(S=Name.Named, N=Name("/AcroSendMail:SendMail")))))
    src = tmp_path / "odd.pdf"
    src.write_bytes(_save(pdf))
    res = process(src, "odd.pdf", tmp_path / "o", _policy())
    ids = {t.id for t in res.threats}
    assert res.verdict == "sanitized" and {"pdf.javascript", "pdf.named_action"} <= ids
    with pikepdf.open(res.output) as out:
        a = out.pages[0].Annots[0].A
        assert a.S == Name.GoTo and "/Next" not in a
    assert _deep_walk(Path(res.output)) == []


def test_policy_copy_is_independent():
    pol = _policy()
    other = copy.deepcopy(pol)
    other.families["pdf"].options["links"] = "drop"
    assert pol.family("pdf").options["links"] == "web"


@pytest.mark.skipif(not (ROOT / "cdr" / "cli.py").exists(), reason="CLI not written yet")
def test_cli_end_to_end(pdfs, tmp_path):
    from tests.conftest import sanitize_report

    base, samples = pdfs
    paths = [base / samples[n].path for n in ("js_openaction", "japanese_1page", "encrypted_password")]
    policy = tmp_path / "pdf-only.toml"
    src = (ROOT / "rules" / "default.toml").read_text("utf-8")
    head = src.split("[families.")[0]
    policy.write_text(head + "[families.pdf]\naction = \"sanitize\"\n", "utf-8")
    report = sanitize_report(paths, tmp_path / "out", "--policy", str(policy))
    by = {Path(f["source"]).name: f for f in report["files"]}
    assert by["js_openaction.pdf"]["verdict"] == "sanitized"
    assert by["japanese_1page.pdf"]["verdict"] == "clean"
    assert by["encrypted_password.pdf"]["verdict"] == "blocked"


def test_japanese_pdf_helper_pages():
    with pikepdf.open(io.BytesIO(japanese_pdf(3))) as pdf:
        assert len(pdf.pages) == 3


def _render(path: Path, tmp: Path, tag: str) -> list:
    from PIL import Image, ImageChops

    subprocess.run(["pdftoppm", "-r", "40", "-png", str(path), str(tmp / tag)], check=True, timeout=60,
                   capture_output=True)
    pages = sorted(tmp.glob(f"{tag}-*.png"))
    return [ImageChops.invert(Image.open(p).convert("L")) for p in pages]


@pytest.mark.parametrize("name", ["multipage_images", "form_values", "comments"])
def test_same_appearance(name, pdfs, done, tmp_path):
    base, samples = pdfs
    before = _render(base / samples[name].path, tmp_path, "a")
    after = _render(Path(done[name].output), tmp_path, "b")
    assert len(before) == len(after)
    for x, y in zip(before, after, strict=True):
        from PIL import ImageChops

        assert x.size == y.size and ImageChops.difference(x, y).getbbox() is None
        assert x.getbbox() is not None  # something was drawn


@pytest.mark.parametrize("name", [n for n in HOSTILE + BENIGN if n not in
                                  ("bomb", "too_many_pages", "encrypted_password", "encrypted_password_supplied")])
def test_prescan_is_a_superset_of_the_walk(name, pdfs, done, tmp_path):
    """Where the rule walk finds anything in a qpdf-written file, the byte pre-scan must say so."""
    from cdr.formats.pdf.walk import scan

    base, samples = pdfs
    with pikepdf.open(base / samples[name].path) as pdf:
        flat = tmp_path / "flat.pdf"
        pdf.save(flat, object_stream_mode=pikepdf.ObjectStreamMode.disable, encryption=False)
    for links, embedded in (("web", "drop"), ("drop", "drop"), ("web", "sanitize")):
        if _deep_walk(flat, links=links, embedded=embedded):
            assert scan(flat.read_bytes(), links)[0], (links, embedded)
    if name in BENIGN:  # clean rebuilds take the fast path
        assert not scan(Path(done[name].output).read_bytes(), "web")[0]


def _pdf_with_indirect_length() -> bytes:
    """A PDF as LibreOffice and pdfTeX write it: the content stream's /Length is an indirect number."""
    content = b"BT /F1 24 Tf 72 720 Td (Hello) Tj ET"
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 6 0 R >> >> >>",
            b"<< /Length 5 0 R >>\nstream\n" + content + b"\nendstream",
            str(len(content)).encode(),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_indirect_length_numbers_do_not_block_the_file(tmp_path):
    src = tmp_path / "lo.pdf"
    src.write_bytes(_pdf_with_indirect_length())
    r = process(src, src.name, tmp_path / "o", _policy())
    assert r.verdict == "clean", (r.reason, r.threats)
    with pikepdf.open(r.output) as pdf:
        assert b"Hello" in pdf.pages[0].Contents.read_bytes()


def test_pdfa_keeps_its_output_intent_and_identification(tmp_path):
    """An archival PDF/A stays one: its output intent (colour profile) is kept, and with metadata
    dropped a fresh XMP still says pdfaid part/conformance, without the author."""
    from PIL import ImageCms

    pdf = _base()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    pdf.Root.OutputIntents = Array([Dictionary(Type=Name.OutputIntent, S=Name.GTS_PDFA1,
                                               OutputConditionIdentifier=pikepdf.String("sRGB"),
                                               DestOutputProfile=pdf.make_stream(icc, N=3))])
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        meta["pdfaid:part"], meta["pdfaid:conformance"] = "2", "B"
        meta["dc:creator"] = ["山田 太郎"]
    src = tmp_path / "pdfa.pdf"
    pdf.save(src)
    r = process(src, src.name, tmp_path / "o", _policy())
    assert r.verdict == "clean", r.reason
    assert any("conformance identification kept (pdfaid:part=2" in t.detail for t in r.threats)
    with pikepdf.open(r.output) as out:
        assert len(out.Root.OutputIntents[0].DestOutputProfile.read_bytes()) == len(icc)
        with out.open_metadata() as meta:
            assert meta["pdfaid:part"] == "2" and "dc:creator" not in meta


def test_output_intent_loses_outside_profile_and_actions(tmp_path):
    pdf = _base()
    js = pdf.make_indirect(Dictionary(S=Name.JavaScript, JS=pikepdf.String("app.alert(1)")))
    pdf.Root.OutputIntents = Array([Dictionary(
        Type=Name.OutputIntent, S=Name.GTS_PDFA1, OutputConditionIdentifier=pikepdf.String("sRGB"),
        DestOutputProfileRef=Dictionary(URLs=Array([Dictionary(FS=Name.URL, F=pikepdf.String("http://203.0.113.5/x.icc"))])),
        A=js)])
    src = tmp_path / "oi.pdf"
    pdf.save(src)
    r = process(src, src.name, tmp_path / "o", _policy())
    assert {"pdf.external_ref", "pdf.javascript"} <= {t.id for t in r.threats} and r.verdict == "sanitized"
    with pikepdf.open(r.output) as out:
        oi = out.Root.OutputIntents[0]
        assert set(oi.keys()) == {"/Type", "/S", "/OutputConditionIdentifier"}
    assert _deep_walk(Path(r.output)) == []


def test_verify_rescans_output_changed_after_rebuild(tmp_path: Path) -> None:
    """Rebuild remembers its scan of the output for the verify step; an output changed afterwards (here a
    JavaScript open action written into it, and one byte flipped inside a name) is scanned afresh."""
    from cdr.formats._memo import forget_all

    src = tmp_path / "in.pdf"
    src.write_bytes(japanese_pdf(2, 5))
    dst = tmp_path / "out.pdf"
    h = handler_for("application/pdf")
    forget_all()
    try:
        h.rebuild(_ctx(tmp_path), src, dst, detect(src))
        assert _inspect(dst, tmp_path) == []
        with pikepdf.open(dst, allow_overwriting_input=True) as pdf:
            pdf.Root.OpenAction = _js(pdf)
            pdf.save(dst)
        ids = {t.id for t in _inspect(dst, tmp_path)}
        assert {"pdf.javascript", "pdf.open_action"} <= ids, ids
        # Same length as what rebuild scanned, one name changed: still scanned again.
        h.rebuild(_ctx(tmp_path), src, dst, detect(src))
        data = dst.read_bytes()
        assert b"/Font" in data
        dst.write_bytes(data.replace(b"/Font", b"/AA  ", 1))
        assert "pdf.additional_actions" in {t.id for t in _inspect(dst, tmp_path)}
    finally:
        forget_all()
