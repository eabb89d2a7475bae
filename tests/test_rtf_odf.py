"""RTF, ODF, 一太郎 and DocuWorks: threats found and removed, outputs re-inspect clean, text kept."""
from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from cdr.detect import detect
from cdr.errors import Malformed
from cdr.formats import rtf
from cdr.formats.japanese_wp import ichitaro_text
from cdr.handler import handler_for
from cdr.pipeline import process
from samples.legacy_samples import JA_BODY, JA_TITLE, make_jtd

from .conftest import all_threat_ids, sanitize_report

HOSTILE_KEEP = {  # sample -> text that must survive the rebuild
    "rtf/hostile/ddeauto.rtf": "計算結果",
    "rtf/hostile/objautlink.rtf": "リンク",
    "odf/hostile/external_links.odt": "キャッシュ本文",
    "odf/hostile/database_form.odt": "宛名: 山田 花子 様",
    "odf/hostile/run_program.odp": "次へ",
}


def _run(path: Path, out: Path, policy, **kw):
    return process(path, path.name, out, policy, want_text=True, **kw)


def _reinspect(out_path: Path) -> list:
    det = detect(out_path, out_path.name)
    h = handler_for(det.mime)
    assert h is not None, det
    from cdr.handler import Context
    from cdr.policy import Limits

    ctx = Context(name=out_path.name, options={}, limits=Limits(), workdir=out_path.parent)
    return h.inspect(ctx, out_path, det)


@pytest.mark.parametrize("family", ["rtf", "odf"])
def test_samples_verdicts_threats_and_clean_reinspection(family, corpus, default_policy, tmp_path):
    base, samples = corpus(family)
    assert samples
    for rel, s in samples.items():
        res = _run(base / rel, tmp_path / rel.replace("/", "_"), default_policy)
        assert res.verdict == s.verdict, (rel, res.reason, res.threats)
        ids = all_threat_ids(res.to_dict())
        assert set(s.threats) <= ids, (rel, ids)
        out = Path(res.output)
        assert out.exists() and _reinspect(out) == [], rel
        src_text = handler_for(detect(base / rel).mime).extract_text(None, base / rel, detect(base / rel))
        out_text = Path(res.text_output).read_text("utf-8")
        assert "住民票" in src_text and "住民票" in out_text, rel
        if s.verdict == "clean":
            assert out_text == src_text, rel
        if rel in HOSTILE_KEEP:
            assert HOSTILE_KEEP[rel] in out_text, rel


def test_rtf_round_trip_is_byte_exact_for_clean_files(corpus):
    base, _ = corpus("rtf")
    data = (base / "rtf/benign/申請書.rtf").read_bytes()
    root, repaired = rtf.parse(data)
    assert not repaired
    assert rtf.serialize(root) == data.rstrip(b"\n")
    assert rtf.disarm(root) == []


def test_rtf_object_removed_result_picture_kept(corpus, default_policy, tmp_path):
    base, _ = corpus("rtf")
    res = _run(base / "rtf/hostile/object_package.rtf", tmp_path, default_policy)
    data = Path(res.output).read_bytes()
    assert b"objdata" not in data and b"\\object" not in data and b"objupdate" not in data
    assert data.count(b"\\pngblip") == 1  # the object's result picture
    from oletools.rtfobj import RtfObjParser

    p = RtfObjParser(data)
    p.parse()
    assert p.objects == []


def test_rtf_fields_keep_results(corpus, default_policy, tmp_path):
    base, _ = corpus("rtf")
    res = _run(base / "rtf/hostile/includepicture.rtf", tmp_path, default_policy)
    data = Path(res.output).read_bytes()
    assert b"INCLUDEPICTURE" not in data and b"203.0.113.9" not in data and b"\\pngblip" in data
    res = _run(base / "rtf/hostile/ddeauto.rtf", tmp_path / "dde", default_policy)
    data = Path(res.output).read_bytes()
    assert b"DDEAUTO" not in data and b"cmd.exe" not in data
    # the https hyperlink of the benign file is not a finding and stays
    benign = (base / "rtf/benign/申請書.rtf").read_bytes()
    assert rtf.findings(benign) == []


def test_rtf_text_decoding_cp932_and_unicode():
    # Word style: \uc2 + \uN with a two-byte fallback; a cp932 trail byte written as an escaped backslash.
    doc = (b"{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0\\fnil\\fcharset128 MS Mincho;}"
           b"{\\f1\\fswiss\\fcharset0 Arial;}}\\f0 \\uc2\\u12354\\'82\\'a0 \\'95\\\\\\par\\f1 caf\\'e9\\tab x}")
    assert rtf.rtf_text(doc) == "あ 表\ncafé\tx\n"
    # nested field with a DDE instruction built from another field is neutralised
    sneaky = (b"{\\rtf1{\\field{\\*\\fldinst {\\field{\\*\\fldinst QUOTE 68 68 69}{\\fldrslt DDE}} c:\\\\x.exe}"
              b"{\\fldrslt ok}}}")
    root, _ = rtf.parse(sneaky)
    assert [t.id for t in rtf.disarm(root)] == ["rtf.field"]
    assert rtf.serialize(root) == b"{\\rtf1{ok}}"


def test_rtf_malformed_inputs():
    root, repaired = rtf.parse(b"{\\rtf1 unclosed {\\b bold")
    assert repaired and rtf.serialize(root) == b"{\\rtf1 unclosed {\\b bold}}"
    root, repaired = rtf.parse(b"{\\rtf1 a}{\\object{\\*\\objdata 0105}}")
    assert repaired and rtf.serialize(root) == b"{\\rtf1 a}"
    with pytest.raises(Malformed):
        rtf.parse(b"{\\rtf1" + b"{" * (rtf.MAX_DEPTH + 5))
    with pytest.raises(Malformed):
        rtf.parse(b"not rtf at all")


def test_odf_package_structure(corpus, default_policy, tmp_path):
    base, _ = corpus("odf")
    res = _run(base / "odf/hostile/macro_onload.odt", tmp_path / "m", default_policy)
    with zipfile.ZipFile(res.output) as z:
        infos = z.infolist()
        assert infos[0].filename == "mimetype" and infos[0].compress_type == zipfile.ZIP_STORED
        assert infos[0].extra == b""
        names = {i.filename for i in infos}
        assert not any(n.startswith(("Basic/", "Scripts/")) for n in names)
        man = z.read("META-INF/manifest.xml").decode()
        listed = set(__import__("re").findall(r'full-path="([^"]+)"', man)) - {"/"}
        assert listed == names - {"mimetype", "META-INF/manifest.xml"}
        assert b"event-listener" not in z.read("content.xml")
        assert "Pictures/seal.png" in names
    # chart sub-document kept (not an active object), its manifest entry too
    res = _run(base / "odf/benign/グラフ付き.odt", tmp_path / "c", default_policy)
    with zipfile.ZipFile(res.output) as z:
        assert "Object 1/content.xml" in z.namelist() and b"draw:object" in z.read("content.xml")
        assert b'full-path="Object 1/"' in z.read("META-INF/manifest.xml")
    # embedded ODT/OLE/applet removed, replacement images kept
    res = _run(base / "odf/hostile/embedded_objects.odt", tmp_path / "e", default_policy)
    with zipfile.ZipFile(res.output) as z:
        content = z.read("content.xml")
        assert b"draw:object" not in content and b"applet" not in content
        assert content.count(b"ObjectReplacements/Object") == 2
        assert not any(n.startswith(("Object 2/", "Object 3")) for n in z.namelist())
    # presentation: 'execute' gone, next-page navigation kept; https link kept in text
    res = _run(base / "odf/hostile/run_program.odp", tmp_path / "p", default_policy)
    with zipfile.ZipFile(res.output) as z:
        content = z.read("content.xml")
        assert b'action="execute"' not in content and b"cmd.exe" not in content
        assert b'presentation:action="next-page"' in content
    res = _run(base / "odf/hostile/external_links.odt", tmp_path / "x", default_policy)
    with zipfile.ZipFile(res.output) as z:
        content = z.read("content.xml")
        assert b"https://www.city.example.lg.jp/" in content
        assert b"file:" not in content and b"203.0.113.9" not in content and b"section-source" not in content


def _odf_variant(src: Path, dst: Path, change) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        items = [(i, zin.read(i.filename)) for i in zin.infolist()]
        for info, data in change(items):
            zout.writestr(info, data)
    return dst


def test_odf_encrypted_and_duplicate_members_blocked(corpus, default_policy, tmp_path):
    base, _ = corpus("odf")
    src = base / "odf/benign/申請書.odt"

    def encrypt(items):
        for info, data in items:
            if info.filename == "META-INF/manifest.xml":
                data = data.replace(b'manifest:media-type="text/xml"/>',
                                    b'manifest:media-type="text/xml"><manifest:encryption-data/>'
                                    b"</manifest:file-entry>", 1)
            yield info, data

    res = _run(_odf_variant(src, tmp_path / "enc.odt", encrypt), tmp_path / "o1", default_policy)
    assert res.verdict == "blocked" and "odf.encrypted" in all_threat_ids(res.to_dict())
    assert "パスワード" in res.reason

    def duplicate(items):
        items = list(items)
        return items + [(zipfile.ZipInfo("content.xml"), b"<x/>")]

    with pytest.warns(UserWarning):
        bad = _odf_variant(src, tmp_path / "dup.odt", duplicate)
    res = _run(bad, tmp_path / "o2", default_policy)
    assert res.verdict == "blocked"


def test_libreoffice_opens_rebuilt_rtf_and_odf(corpus, default_policy, tmp_path):
    if shutil.which("soffice") is None or shutil.which("pdftotext") is None:
        pytest.skip("LibreOffice/pdftotext not installed")
    rels = ["rtf/benign/申請書.rtf", "rtf/hostile/object_package.rtf", "odf/benign/申請書.odt",
            "odf/hostile/embedded_objects.odt", "odf/benign/集計.ods", "odf/hostile/run_program.odp"]
    outs = []
    for rel in rels:
        base, _ = corpus(rel.split("/")[0])
        res = _run(base / rel, tmp_path / "out" / rel.replace("/", "_").rsplit(".", 1)[0], default_policy)
        stem = rel.replace("/", "_").replace(".", "_")
        dst = tmp_path / "in" / (stem + Path(res.output).suffix)
        dst.parent.mkdir(exist_ok=True)
        shutil.copyfile(res.output, dst)
        outs.append((rel, dst))
    pdf = tmp_path / "pdf"
    subprocess.run(["soffice", "--headless", "--norestore", f"-env:UserInstallation={(tmp_path / 'p').as_uri()}",
                    "--convert-to", "pdf", "--outdir", str(pdf), *[str(d) for _r, d in outs]],
                   check=True, capture_output=True, timeout=120)
    for rel, d in outs:
        text = subprocess.run(["pdftotext", "-layout", str(pdf / (d.stem + ".pdf")), "-"], capture_output=True,
                              check=True).stdout.decode()
        compact = "".join(text.split())
        expect = "住民票" if rel.endswith(".ods") else JA_TITLE
        assert expect in compact, (rel, text[:200])
        if rel.endswith((".rtf", ".odt")):
            assert "".join(JA_BODY.split()) in compact, rel


def test_ichitaro_and_docuworks(corpus, default_policy, text_policy, tmp_path):
    base, _ = corpus("ichitaro")
    jtd = base / "ichitaro/申請書.jtd"
    assert detect(jtd).mime == "application/x-js-taro"
    res = _run(jtd, tmp_path / "d", default_policy)
    assert res.verdict == "blocked" and "PDF" in res.reason_en and "PDF" in res.reason_ja
    res = _run(jtd, tmp_path / "t", text_policy)
    assert res.verdict == "sanitized", res.reason
    text = Path(res.output).read_text("utf-8")
    assert text == f"{JA_TITLE}\n{JA_BODY}\n注記\n"  # hidden template instruction not shown
    res = _run(base / "ichitaro/圧縮.jtdc", tmp_path / "c", text_policy)
    assert res.verdict == "blocked" and "PDF" in res.reason_en
    # a body large enough to span several 256-byte blocks of the SsmgV.01 store
    big = tmp_path / "big.jtd"
    big.write_bytes(make_jtd([JA_BODY] * 40))
    assert ichitaro_text(big).count(JA_BODY) == 40

    base, _ = corpus("docuworks")
    xdw = base / "docuworks/決裁文書.xdw"
    assert detect(xdw).family == "docuworks"
    for pol in (default_policy, text_policy):
        res = _run(xdw, tmp_path / "x", pol)
        assert res.verdict == "blocked" and "PDF" in res.reason_en and res.output is None


def test_cli_end_to_end(corpus, tmp_path):
    if not Path(__file__).resolve().parent.parent.joinpath("cdr", "cli.py").exists():
        pytest.skip("CLI not available")
    base, _ = corpus("rtf")
    obase, _ = corpus("odf")
    report = sanitize_report([base / "rtf/hostile/remote_template.rtf", obase / "odf/hostile/macro_onload.odt"],
                             tmp_path / "out")
    by = {Path(f["source"]).name: f for f in report["files"]}
    assert by["remote_template.rtf"]["verdict"] == "sanitized"
    assert "rtf.remote_template" in all_threat_ids(by["remote_template.rtf"])
    assert {"odf.macro", "odf.event"} <= all_threat_ids(by["macro_onload.odt"])


@pytest.mark.parametrize("body", [
    rb'{\field{\f1\fldinst DDEAUTO c:\\windows\\system32\\cmd.exe "/c calc"}{\fldrslt shown}}',
    rb'{\fldlock\field{\*\fldinst DDEAUTO x y}{\fldrslt shown}}',
    rb'{\field{{\*\fldinst DDEAUTO x y}}{\fldrslt shown}}',
])
def test_rtf_fields_found_wherever_the_instruction_sits(default_policy, tmp_path, body):
    from cdr.pipeline import inspect as inspect_file
    from cdr.pipeline import process

    src = tmp_path / "f.rtf"
    src.write_bytes(rb"{\rtf1\ansi before " + body + rb" after}")
    r = process(src, "f.rtf", tmp_path / "out", default_policy)
    assert r.verdict == "sanitized" and any(t.id == "rtf.field" for t in r.threats)
    out = Path(r.output).read_bytes()
    assert b"DDEAUTO" not in out and b"shown" in out
    assert inspect_file(r.output, "f.rtf", default_policy)["threats"] == []


def test_odf_xml_with_a_namespace_error_hidden_by_a_warning_is_malformed():
    from cdr.errors import Malformed
    from cdr.formats.odf import _parse

    with pytest.raises(Malformed):
        _parse(b'<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               b'xmlns:xl="http://www.w3.org/1999/xlink" xmlns:x2="http://www.w3.org/1999/xlink">'
               b'<a xl:href="#ok" x2:href="macro:evil"/><b xml:space="bogus"/></office:document-content>',
               "content.xml")


def test_odf_markup_outside_its_namespaces_is_dropped(default_policy, tmp_path):
    """Issue 20: only ODF's namespaces (and LibreOffice's extensions) survive. A foreign element in a
    paragraph gives way to its text; elsewhere it goes whole; XForms (forms that submit) and XML events go."""
    from samples.legacy_samples import ODT, _odf

    evil, xforms = "urn:evil:active", "http://www.w3.org/2002/xforms"
    body = (f'<text:p xmlns:e="{evil}" e:onclick="run()">前<e:span>包まれた文</e:span>後'
            '<e:hidden office:process-content="false">出ない</e:hidden></text:p>'
            f'<e:block xmlns:e="{evil}"><text:p>ブロックごと消える</text:p></e:block>'
            f'<xforms:model xmlns:xforms="{xforms}"><xforms:submission xforms:action="http://203.0.113.5/post"/>'
            '</xforms:model><text:p loext:marker="1" xmlns:loext="urn:org:documentfoundation:names:experimental:'
            'office:xmlns:loext:1.0">残る</text:p>')
    src = tmp_path / "f.odt"
    _odf(src, ODT, body)
    r = process(src, src.name, tmp_path / "out", default_policy)
    assert r.verdict == "clean", r.threats  # foreign markup is allowed by ODF and ignored by readers
    found = [t for t in r.threats if t.id == "odf.unknown_markup"]
    assert [(t.location, t.action) for t in found] == [("content.xml", "reported")]
    with zipfile.ZipFile(r.output) as z:
        content = z.read("content.xml").decode()
    assert "前包まれた文後" in content and "残る" in content and 'loext:marker="1"' in content
    for gone in ("出ない", "ブロックごと消える", "203.0.113.5", "run()", evil, "submission"):
        assert gone not in content, gone
    from cdr.pipeline import inspect as inspect_file

    assert inspect_file(r.output, "f.odt", default_policy)["threats"] == []


def test_odf_root_outside_odf_is_malformed(default_policy, tmp_path):
    from samples.legacy_samples import ODT, _odf

    src = tmp_path / "f.odt"
    _odf(src, ODT, "<text:p>x</text:p>")
    data = {}
    with zipfile.ZipFile(src) as z:
        for i in z.infolist():
            data[i.filename] = z.read(i)
    data["styles.xml"] = b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><script/></html>'
    with zipfile.ZipFile(src, "w") as z:
        for n, d in data.items():
            z.writestr(n, d)
    r = process(src, src.name, tmp_path / "out", default_policy)
    assert r.verdict == "blocked"


_DB = "sdbc:mysql:jdbc:203.0.113.9:3306/juminhyo"


def _odf_settings(items: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<office:document-settings xmlns:office="urn:oasis:names:tc:'
            'opendocument:xmlns:office:1.0" xmlns:config="urn:oasis:names:tc:opendocument:xmlns:config:1.0" '
            'office:version="1.3"><office:settings><config:config-item-set config:name="ooo:configuration-settings">'
            f'{items}</config:config-item-set></office:settings></office:document-settings>').encode()


def test_odf_database_bindings_are_cut_and_what_they_show_stays(default_policy, tmp_path):
    """LibreOffice connects to a database a document names: a form bound to one (on opening, to show the
    first record), a mail merge's database fields and data source, a sheet range or pivot table that
    imports from one. The address is the sender's choice (a server, a UNC folder of text files). Each
    binding goes; the form's controls, the fields' text and the imported cells stay. All were delivered
    clean before."""
    from samples.legacy_samples import ODS, ODT, _odf

    form = (f'<office:forms><form:form form:name="申請" form:datasource="{_DB}" form:command="SELECT * FROM 住民" '
            'form:command-type="command"><form:text form:name="氏名" form:id="c1" form:data-field="name"/>'
            '</form:form></office:forms>')
    field = (f'<text:p>宛名: <text:database-display text:database-name="{_DB}" text:table-name="住民" '
             'text:table-type="table" text:column-name="name">山田 花子</text:database-display> 様</text:p>')
    settings = _odf_settings(
        f'<config:config-item config:name="CurrentDatabaseDataSource" config:type="string">{_DB}</config:config-item>'
        '<config:config-item config:name="CurrentDatabaseCommand" config:type="string">住民</config:config-item>'
        '<config:config-item config:name="CurrentDatabaseCommandType" config:type="int">0</config:config-item>'
        '<config:config-item config:name="PrinterName" config:type="string">\\\\203.0.113.9\\3F</config:config-item>'
        '<config:config-item config:name="PrinterSetup" config:type="base64Binary">AAAAMjAzLjAuMTEzLjk=</config:config-item>'
        '<config:config-item config:name="AddParaTableSpacing" config:type="boolean">true</config:config-item>')
    src = tmp_path / "merge.odt"
    _odf(src, ODT, form + field, {"settings.xml": settings})
    r = process(src, src.name, tmp_path / "o1", default_policy)
    assert r.verdict == "sanitized", r.threats
    details = [(t.id, t.location) for t in r.threats if t.id == "odf.external_link"]
    assert ("odf.external_link", "content.xml: form 申請") in details
    assert ("odf.external_link", "content.xml: database-display") in details
    assert ("odf.external_link", "settings.xml: CurrentDatabaseDataSource") in details
    with zipfile.ZipFile(r.output) as z:
        content, kept_settings = z.read("content.xml").decode(), z.read("settings.xml").decode()
    assert "203.0.113.9" not in content + kept_settings and "datasource" not in content
    assert "database-display" not in content and "宛名: 山田 花子 様" in content and 'form:data-field="name"' in content
    assert "Printer" not in kept_settings and "AddParaTableSpacing" in kept_settings
    assert 'CurrentDatabaseCommandType" config:type="int">0<' in kept_settings  # LibreOffice writes it always
    assert _reinspect(Path(r.output)) == []

    cells = ('<table:table table:name="集計"><table:table-row><table:table-cell office:value-type="float" '
             'office:value="12"><text:p>12</text:p></table:table-cell></table:table-row></table:table>')
    ranges = ('<table:database-ranges><table:database-range table:name="住民" table:target-range-address='
              '"集計.A1:集計.A1" table:refresh-delay="PT10S"><table:database-source-sql table:database-name='
              f'"{_DB}" table:sql-statement="SELECT count(*) FROM 住民"/></table:database-range></table:database-ranges>'
              '<table:data-pilot-tables><table:data-pilot-table table:name="P" table:target-range-address='
              f'"集計.C1:集計.D2"><table:database-source-table table:database-name="{_DB}" '
              'table:database-table-name="住民"/></table:data-pilot-table></table:data-pilot-tables>')
    src = tmp_path / "import.ods"
    _odf(src, ODS, cells + ranges)
    r = process(src, src.name, tmp_path / "o2", default_policy)
    assert r.verdict == "sanitized", r.threats
    assert {t.location for t in r.threats if t.id == "odf.external_link"} == {
        "content.xml: database-range", "content.xml: data-pilot-table"}
    with zipfile.ZipFile(r.output) as z:
        content = z.read("content.xml").decode()
    assert "203.0.113.9" not in content and "refresh-delay" not in content and "data-pilot-table" not in content
    assert 'table:database-range table:name="住民"' in content and 'office:value="12"' in content
    assert _reinspect(Path(r.output)) == []


def test_odf_plain_settings_are_kept_as_they_are(default_policy, tmp_path):
    """LibreOffice's usual settings (an empty data source, the command type, view settings) are not a
    finding: a document without a database stays clean."""
    from samples.legacy_samples import ODT, _odf

    settings = _odf_settings(
        '<config:config-item config:name="CurrentDatabaseDataSource" config:type="string"/>'
        '<config:config-item config:name="CurrentDatabaseCommand" config:type="string"/>'
        '<config:config-item config:name="CurrentDatabaseCommandType" config:type="int">0</config:config-item>'
        '<config:config-item config:name="PrinterName" config:type="string"/>'
        '<config:config-item config:name="LinkUpdateMode" config:type="short">1</config:config-item>')
    src = tmp_path / "plain.odt"
    _odf(src, ODT, "<text:p>本文</text:p>", {"settings.xml": settings})
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "clean" and [t for t in r.threats if t.id != "odf.metadata"] == [], r.threats
    with zipfile.ZipFile(r.output) as z:
        kept = z.read("settings.xml").decode()
    assert "CurrentDatabaseDataSource" in kept and "LinkUpdateMode" in kept and "PrinterName" not in kept
