"""Word 97-2003 rebuilt as .doc: each hostile construct removed and reported, the output re-read by
our walker, olefile, oletools and LibreOffice, and benign samples rendered as before.

The samples (samples/legacy_samples.py, legacy_doc_samples) are LibreOffice conversions of
generated .docx files, with hostile variants patched in place (field instructions, table-stream
structures, form-field data).
"""
from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import olefile
import pytest

from cdr.formats.legacy_office import doc
from cdr.formats.legacy_office.docfib import INDEX
from cdr.pipeline import process

from .conftest import all_threat_ids

pytestmark = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice not installed")

BENIGN = ("申請書.doc", "交付申請様式.doc", "リンク付き.doc", "様式.dot")
HOSTILE = ("dde_fields.doc", "include_fields.doc", "linked_picture.doc", "macrobutton.doc", "file_hyperlink.doc", "remote_template.doc",
           "toolbar_macros.doc", "formfield_macro.doc", "embedded_document.doc", "ole_object.doc",
           "vba_autoopen.doc")
KEPT_STREAMS = {"WordDocument", "0Table", "1Table", "Data", "\x01CompObj", "\x05SummaryInformation",
                "\x05DocumentSummaryInformation"}


@pytest.fixture(scope="module")
def legacy(corpus):
    return corpus("legacy_office")


@pytest.fixture(scope="module")
def rebuilt(legacy, default_policy, tmp_path_factory):
    """Every .doc sample through the pipeline once: name -> FileResult."""
    base, _ = legacy
    out = tmp_path_factory.mktemp("doc-out")
    results = {}
    for name in BENIGN + HOSTILE:
        sub = "benign" if name in BENIGN else "hostile"
        src = base / "legacy_office" / sub / name
        results[name] = process(src, name, out / Path(name).stem, default_policy)
    return results


def _streams(path: Path) -> dict[str, bytes]:
    with olefile.OleFileIO(str(path)) as ole:
        return {"/".join(e): ole.openstream(e).read() for e in ole.listdir()}


def _walker(path: Path) -> doc.DocRebuild:
    r = doc.DocRebuild(_streams(path))
    r.run()
    return r


def test_benign_doc_rebuilt_in_its_own_format(rebuilt):
    for name in BENIGN:
        res = rebuilt[name]
        assert res.verdict == "clean", (name, res.reason, res.threats)
        out = Path(res.output)
        assert out.name == name, out
        assert "ole.converted" not in {t.id for t in res.threats}
        streams = _streams(out)
        assert set(streams) <= KEPT_STREAMS and "WordDocument" in streams
        assert _walker(out).threats == []


def test_hostile_doc_constructs_removed_and_reported(legacy, rebuilt):
    from oletools.olevba import VBA_Parser

    _, samples = legacy
    for name in HOSTILE:
        res = rebuilt[name]
        want = {t for t in samples[f"legacy_office/hostile/{name}"].threats if t.startswith("ole.")}
        assert res.verdict == "sanitized", (name, res.reason)
        assert want <= all_threat_ids(res.to_dict()), (name, want, res.threats)
        assert "ole.converted" not in {t.id for t in res.threats}, name
        out = Path(res.output)
        assert out.suffix == ".doc" and set(_streams(out)) <= KEPT_STREAMS, name
        assert _walker(out).threats == [], name  # the verify walker finds nothing left
        vp = VBA_Parser(str(out))
        try:
            assert not vp.detect_vba_macros(), name
        finally:
            vp.close()


def test_dde_fields_keep_their_result(legacy, rebuilt):
    from oletools import msodde

    base, _ = legacy
    src = base / "legacy_office/hostile/dde_fields.doc"
    assert "DDEAUTO" in msodde.process_file(str(src), msodde.FIELD_FILTER_DDE).replace("\0", "")  # live sample
    out = Path(rebuilt["dde_fields.doc"].output)
    assert msodde.process_file(str(out), msodde.FIELD_FILTER_DDE) == ""
    r = doc.DocRebuild(_streams(out))
    r.check_pairs()
    r.read_pieces()
    fields = r.read_fields()
    plc = r.plc_edits["PlcfFldMom"]
    n = (len(plc) - 4) // 6
    codes = [r.instruction(f)[1].strip() for f in fields]
    assert codes[:2] == ["QUOTE", "QUOTE"] and codes[2].startswith("HYPERLINK")
    for f in fields[:2]:
        assert plc[4 * (n + 1) + 2 * f.begin_fld + 1] == doc.FLT_QUOTE
        assert plc[4 * (n + 1) + 2 * f.end_fld + 1] & 0x10  # fLocked


def test_linked_picture_path_blanked(legacy, rebuilt):
    base, _ = legacy
    src = _streams(base / "legacy_office/hostile/linked_picture.doc")["Data"]
    out = _streams(Path(rebuilt["linked_picture.doc"].output))["Data"]
    assert b"203.0.113.9" in src and b"203.0.113.9" not in out
    assert any(t.id == "ole.external_link" and "track.png" in t.detail for t in rebuilt["linked_picture.doc"].threats)


def test_hyperlinks_drop_option(legacy, default_policy, tmp_path):
    """hyperlinks = "drop": even web links go (text kept)."""
    from cdr.policy import Policy

    base, _ = legacy
    data = default_policy.to_dict()
    data["families"]["legacy_office"]["hyperlinks"] = "drop"
    src = base / "legacy_office/benign/リンク付き.doc"
    res = process(src, src.name, tmp_path, Policy.from_dict(data))
    assert res.verdict == "sanitized" and res.output.endswith(".doc"), res.reason
    assert sum(1 for t in res.threats if t.id == "ole.hyperlink") >= 1
    r = _walker(Path(res.output))
    assert [r.instruction(f)[1].strip() for f in r.read_fields()].count("QUOTE") == 5


def test_table_structures_dropped(rebuilt):
    r = doc.DocRebuild(_streams(Path(rebuilt["remote_template.doc"].output)))
    r.check_pairs()
    assoc = r.pair_bytes("SttbfAssoc")
    count = struct.unpack_from("<H", assoc, 2)[0]
    assert count == 18 and assoc[6:] == b"\0\0" * count  # template path, title, author: all empty
    r = doc.DocRebuild(_streams(Path(rebuilt["toolbar_macros.doc"].output)))
    for name in ("Cmds", "SttbfMcr", "PlcMcr"):
        assert r.fib.pair_at(INDEX[name])[1] == 0, name


def test_form_field_macro_removed_checkbox_kept(rebuilt):
    out = Path(rebuilt["formfield_macro.doc"].output)
    r = _walker(out)
    assert "ffdata" in r.data_refs.values()
    data = _streams(out)["Data"]
    for off, kind in r.data_refs.items():
        if kind == "ffdata":
            assert "AutoOpen".encode("utf-16-le") not in data[off:off + struct.unpack_from("<I", data, off)[0]]
    codes = [r.instruction(f)[1].strip() for f in r.read_fields()]
    assert codes.count("FORMCHECKBOX") == 2


def test_libreoffice_reads_the_output(rebuilt, tmp_path):
    """LibreOffice opens each rebuilt file and shows the text, cached field results included."""
    outs = [Path(rebuilt[n].output) for n in ("交付申請様式.doc", "dde_fields.doc", "include_fields.doc",
                                              "file_hyperlink.doc", "embedded_document.doc")]
    for i, o in enumerate(outs):
        shutil.copy(o, tmp_path / f"f{i}.doc")
    subprocess.run(["soffice", "--headless", "--norestore", f"-env:UserInstallation={(tmp_path / 'p').as_uri()}",
                    "--convert-to", "txt:Text (encoded):UTF8", "--outdir", str(tmp_path / "txt"),
                    *(str(tmp_path / f"f{i}.doc") for i in range(len(outs)))], capture_output=True, timeout=300)
    texts = [(tmp_path / "txt" / f"f{i}.txt").read_text("utf-8-sig") for i in range(len(outs))]
    assert "委任状" in texts[0] and "山田" in texts[0] and "区のホームページ" in texts[0]
    assert "計算結果：計算結果" in texts[1] and "取り込んだ本文：取り込んだ本文" in texts[1]
    assert "取り込んだ本文：取り込んだ本文" in texts[2]
    assert "ここをクリック：ここをクリック" in texts[3]
    assert "住民票の写しの交付申請書" in texts[4]


def test_unusual_structure_falls_back_to_convert(legacy, default_policy, tmp_path):
    """A picture in the pre-Word 97 form (mm 8): LibreOffice reads it, the rebuild refuses it."""
    from samples.legacy_samples import write_cfb

    base, _ = legacy
    streams = _streams(base / "legacy_office/benign/申請書.doc")
    r = _walker(base / "legacy_office/benign/申請書.doc")
    off = next(o for o, k in r.data_refs.items() if k == "picf")
    data = bytearray(streams["Data"])
    struct.pack_into("<H", data, off + 6, 8)
    src = tmp_path / "古い図.doc"
    src.write_bytes(write_cfb({**streams, "Data": bytes(data)}))
    res = process(src, src.name, tmp_path / "out", default_policy)
    assert any("converted instead" in w and "mm 0x8" in w for w in res.warnings), res.warnings
    assert res.verdict == "clean" and res.output.endswith("古い図.docx"), res.reason
