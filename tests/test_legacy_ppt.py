"""PowerPoint 97-2003 rebuilt as .ppt: one compact full save of the live presentation; each hostile
construct removed and reported; the output re-read by our walker, olefile, oletools and LibreOffice.

Samples (samples/legacy_samples.py, legacy_ppt_samples): LibreOffice conversions of generated
.pptx/.odp files; the VBA project, ActiveX control and run-program/macro actions are added by an
incremental save the way PowerPoint writes one.
"""
from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import olefile
import pytest

from cdr.formats.legacy_office import Unrebuildable, ppt, records
from cdr.formats.legacy_office.pptrecords import RT
from cdr.pipeline import process
from samples.legacy_samples import JA_TITLE

from .conftest import all_threat_ids

pytestmark = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice not installed")

BENIGN = ("会議資料.ppt", "説明資料.ppt")
HOSTILE = ("click_actions.ppt", "vba_activex.ppt", "embedded_object.ppt")
KEPT_STREAMS = {"PowerPoint Document", "Current User", "Pictures", "\x05SummaryInformation",
                "\x05DocumentSummaryInformation"}


@pytest.fixture(scope="module")
def legacy(corpus):
    return corpus("legacy_office")


@pytest.fixture(scope="module")
def rebuilt(legacy, default_policy, tmp_path_factory):
    base, _ = legacy
    out = tmp_path_factory.mktemp("ppt-out")
    return {name: process(base / "legacy_office" / ("benign" if name in BENIGN else "hostile") / name, name,
                          out / Path(name).stem, default_policy) for name in BENIGN + HOSTILE}


def _streams(path: Path) -> dict[str, bytes]:
    with olefile.OleFileIO(str(path)) as ole:
        return {"/".join(e): ole.openstream(e).read() for e in ole.listdir()}


def _types(path: Path) -> list[int]:
    stream = _streams(path)["PowerPoint Document"]
    return [r.type for top in records.parse(stream) for r in top.walk()]


def test_benign_ppt_rebuilt_in_its_own_format(legacy, rebuilt):
    base, _ = legacy
    for name in BENIGN:
        res = rebuilt[name]
        assert res.verdict == "clean", (name, res.reason, res.threats)
        out = Path(res.output)
        assert out.name == name and "ole.converted" not in {t.id for t in res.threats}
        streams = _streams(out)
        assert set(streams) <= KEPT_STREAMS
        _out, walker = ppt.rebuild_bytes(streams)
        assert walker.found == [] and walker.notes == []
        # One full save: a single edit, which the Current User stream names.
        types = _types(out)
        assert types.count(RT["UserEditAtom"]) == 1 and types.count(RT["PersistDirectoryAtom"]) == 1
        orig = _types(base / "legacy_office/benign" / name)
        for t in (RT["Slide"], RT["Notes"], RT["MainMaster"], RT["TextCharsAtom"], RT["SlideShowSlideInfoAtom"]):
            assert types.count(t) == orig.count(t), (name, hex(t))


def test_hostile_ppt_constructs_removed_and_reported(legacy, rebuilt):
    from oletools.olevba import VBA_Parser

    base, samples = legacy
    for name in HOSTILE:
        res = rebuilt[name]
        want = set(samples[f"legacy_office/hostile/{name}"].threats)
        assert res.verdict == "sanitized", (name, res.reason)
        assert want <= all_threat_ids(res.to_dict()), (name, want, res.threats)
        assert "ole.converted" not in {t.id for t in res.threats}
        out = Path(res.output)
        assert out.suffix == ".ppt" and set(_streams(out)) <= KEPT_STREAMS
        _out, walker = ppt.rebuild_bytes(_streams(out))
        assert walker.found == [], (name, walker.found)
        types = _types(out)
        for t in ("ExOleObjStg", "VbaInfo", "ExControl", "ExOleEmbed"):
            assert RT[t] not in types, (name, t)
        vp = VBA_Parser(str(out))
        try:
            assert not vp.detect_vba_macros(), name
        finally:
            vp.close()
    vp = VBA_Parser(str(base / "legacy_office/hostile/vba_activex.ppt"))  # the sample is live
    try:
        assert vp.detect_vba_macros()
    finally:
        vp.close()


def test_click_actions_made_inert(rebuilt):
    stream = _streams(Path(rebuilt["click_actions.ppt"].output))["PowerPoint Document"]
    actions = []
    for top in records.parse(stream):
        for r in top.walk():
            if r.type == RT["InteractiveInfoAtom"]:
                actions.append((struct.unpack_from("<I", r.body, 4)[0], r.body[8]))
            assert not (r.type == RT["CString"] and "calc.exe" in r.body.decode("utf-16-le", "replace"))
            assert not (r.type == RT["CString"] and "AutoRun" in r.body.decode("utf-16-le", "replace"))
    assert (1, 4) in actions  # the web link still opens
    assert [a for a in actions if a[1] in (1, 2, 5)] == []
    ids = {t.id for t in rebuilt["click_actions.ppt"].threats}
    assert {"ole.action", "ole.hyperlink"} <= ids


def test_hyperlinks_drop_option(legacy, default_policy, tmp_path):
    from cdr.policy import Policy

    base, _ = legacy
    data = default_policy.to_dict()
    data["families"]["legacy_office"]["hyperlinks"] = "drop"
    src = base / "legacy_office/benign/会議資料.ppt"
    res = process(src, src.name, tmp_path, Policy.from_dict(data))
    assert res.verdict == "sanitized" and "ole.hyperlink" in {t.id for t in res.threats}, res.reason
    stream = _streams(Path(res.output))["PowerPoint Document"]
    atoms = [r for top in records.parse(stream) for r in top.walk() if r.type == RT["InteractiveInfoAtom"]]
    assert atoms and all(a.body[8] == 0 for a in atoms)
    assert RT["ExHyperlink"] not in _types(Path(res.output))


def test_object_shape_keeps_its_picture(legacy, rebuilt):
    base, _ = legacy
    out = Path(rebuilt["embedded_object.ppt"].output)
    streams = _streams(out)
    assert streams["Pictures"] and len(streams["Pictures"]) == len(_streams(
        base / "legacy_office/hostile/embedded_object.ppt")["Pictures"])
    shapes = [r for top in records.parse(streams["PowerPoint Document"]) for r in top.walk() if r.type == 0xF00A]
    assert shapes and not any(s.body[4] & 0x10 for s in shapes)  # no fOleShape left


def test_libreoffice_reads_the_output(rebuilt, tmp_path):
    outs = [Path(rebuilt[n].output) for n in ("会議資料.ppt", "click_actions.ppt", "embedded_object.ppt")]
    for i, o in enumerate(outs):
        shutil.copy(o, tmp_path / f"f{i}.ppt")
    subprocess.run(["soffice", "--headless", "--norestore", f"-env:UserInstallation={(tmp_path / 'p').as_uri()}",
                    "--convert-to", "pdf", "--outdir", str(tmp_path / "pdf"),
                    *(str(tmp_path / f"f{i}.ppt") for i in range(len(outs)))], capture_output=True, timeout=300)
    for i in range(len(outs)):
        text = subprocess.run(["pdftotext", str(tmp_path / "pdf" / f"f{i}.pdf"), "-"], capture_output=True,
                              timeout=60).stdout.decode()
        assert JA_TITLE in text, (outs[i], text[:200])
    assert "ここをクリック" in subprocess.run(["pdftotext", str(tmp_path / "pdf" / "f1.pdf"), "-"],
                                          capture_output=True).stdout.decode()


def test_damaged_edit_chain_is_unrebuildable(legacy):
    base, _ = legacy
    streams = _streams(base / "legacy_office/benign/会議資料.ppt")
    cu = bytearray(streams["Current User"])
    struct.pack_into("<I", cu, 16, 3)  # offsetToCurrentEdit into the middle of a record
    with pytest.raises(Unrebuildable):
        ppt.rebuild_bytes({**streams, "Current User": bytes(cu)})
    doc = bytearray(streams["PowerPoint Document"])
    struct.pack_into("<I", doc, 8 + 8 + 40 + 4, 0x7FFFFFFF)  # the Environment container runs past the document
    with pytest.raises(Unrebuildable):
        ppt.rebuild_bytes({**streams, "PowerPoint Document": bytes(doc)})
