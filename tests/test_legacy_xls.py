"""Excel 97-2003 rebuilt as .xls (mode = "rebuild"): record walk, removals, positions, verify.

Each sample is made by LibreOffice (samples/legacy_samples.py) and, where LibreOffice cannot
write a construct, patched record by record (samples/xls_samples.py). Outputs are read back by
xlrd (an independent BIFF8 reader), olefile, and our own walker (verify must find nothing).
"""
from __future__ import annotations

import shutil
import struct
from pathlib import Path

import olefile
import pytest
import xlrd

from cdr.detect import detect
from cdr.handler import Context, handler_for
from cdr.pipeline import process
from cdr.policy import Limits, Policy
from samples.legacy_samples import ENC_PASSWORD, write_cfb
from samples.xls_samples import records

from .conftest import all_threat_ids

pytestmark = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice not installed")
XLS = "application/vnd.ms-excel"


@pytest.fixture(scope="module")
def legacy(corpus):
    return corpus("legacy_office")


def _values(path: Path) -> dict[str, list]:
    book = xlrd.open_workbook(str(path))
    return {s.name: [s.row_values(i) for i in range(s.nrows)] for s in book.sheets()}


def _reinspect(path: Path, **options) -> list:
    det = detect(path, path.name)
    ctx = Context(name=path.name, options=options, limits=Limits(), workdir=path.parent)
    return handler_for(det.mime).inspect(ctx, path, det)


def _workbook(path: Path) -> list[list]:
    with olefile.OleFileIO(str(path)) as ole:
        return records(ole.openstream("Workbook").read())


def _policy(default_policy, **legacy) -> Policy:
    data = default_policy.to_dict()
    data["families"]["legacy_office"].update(legacy)
    return Policy.from_dict(data)


def test_every_xls_sample_rebuilt_in_its_own_format(legacy, default_policy, tmp_path):
    """Expected verdict and threats; output is .xls that verify (our walker and oletools) finds clean,
    that xlrd reads with the same cell values, and that a second rebuild leaves unchanged in content."""
    base, samples = legacy
    for rel, s in samples.items():
        if not rel.endswith(".xls") or s.password:
            continue
        src = base / rel
        res = process(src, src.name, tmp_path / Path(rel).stem, default_policy)
        assert res.verdict == s.verdict and res.output.endswith(".xls"), (rel, res.reason)
        assert set(s.threats) <= all_threat_ids(res.to_dict()), (rel, res.threats)
        assert not res.warnings, (rel, res.warnings)  # every record these files hold is understood
        out = Path(res.output)
        assert _reinspect(out) == [], rel
        after = _values(out)
        assert all(after[name] == rows for name, rows in _values(src).items()), rel  # xlrd skips macro sheets
        again = process(out, out.name, tmp_path / "again" / Path(rel).stem, default_policy)
        assert again.verdict == "clean", (rel, again.threats)
        assert _values(Path(again.output)) == _values(out)


def test_benign_workbook_keeps_everything(legacy, default_policy, tmp_path):
    base, _ = legacy
    src = base / "legacy_office/benign/申請一覧.xls"
    res = process(src, src.name, tmp_path, default_policy)
    assert res.verdict == "clean", res.reason
    out = Path(res.output)
    kinds = [r[0] for r in _workbook(out)]
    orig = [r[0] for r in _workbook(src)]
    # Pictures, chart, comment, validation, conditional format, header/footer, link, furigana all survive.
    for rt in (0xEB, 0xEC, 0x5D, 0x1B6, 0x1C, 0x1BE, 0x1B1, 0x14, 0x15, 0x1B8, 0xEF, 0x1002):
        assert kinds.count(rt) == orig.count(rt), hex(rt)
    sst = next(r[1] for r in _workbook(out) if r[0] == 0xFC)
    assert "ヤマダ".encode("utf-16-le") in sst  # phonetic guides kept with their strings
    book = xlrd.open_workbook(str(out))
    assert [s.visibility for s in book.sheets()] == [0, 1]  # hidden stays hidden
    with olefile.OleFileIO(str(out)) as ole:
        assert sorted("/".join(e) for e in ole.listdir()) == [
            "\x05DocumentSummaryInformation", "\x05SummaryInformation", "Workbook"]
        assert ole.get_metadata().author is None and ole.get_metadata().codepage == -535
        assert ole.root.clsid == "00020810-0000-0000-C000-000000000046"
    # EXTSST points at the strings where they now are.
    data = olefile.OleFileIO(str(out)).openstream("Workbook").read()
    pos, sst_at, ext = 0, None, None
    while pos + 4 <= len(data):
        rt, n = struct.unpack_from("<HH", data, pos)
        if rt == 0xFC:
            sst_at = pos
        elif rt == 0xFF:
            ext = data[pos + 4:pos + 4 + n]
        pos += 4 + n
    ib, cb = struct.unpack_from("<IH", ext, 2)
    assert ib == sst_at + 12 and cb == 12


def test_macros_in_every_place_removed(legacy, default_policy, tmp_path):
    base, _ = legacy
    src = base / "legacy_office/hostile/xls_macros.xls"
    res = process(src, src.name, tmp_path, default_policy)
    by = {(t.id, t.location) for t in res.threats}
    assert {("ole.xlm", "sheet Macro1"), ("ole.xlm", "name Auto_Open"), ("ole.xlm", "name Auto_Close"),
            ("ole.vba", "_VBA_PROJECT_CUR")} <= by
    recs = _workbook(Path(res.output))
    assert not [r for r in recs if r[0] in (0x18, 0xD3)]  # no names left, no OBPROJ
    book = xlrd.open_workbook(res.output)
    macro = book.sheet_by_name("Macro1")
    assert macro.nrows == 0 and macro.visibility == 1  # emptied worksheet, hidden, sheet numbers unchanged
    assert _values(Path(res.output))["集計"] == _values(src)["集計"]


def test_links_and_functions_become_cached_values(legacy, default_policy, tmp_path):
    base, _ = legacy
    src = base / "legacy_office/hostile/xls_links.xls"
    res = process(src, src.name, tmp_path, default_policy)
    got = {(t.id, t.action) for t in res.threats}
    assert {("ole.external_link", "removed"), ("ole.dde", "removed"), ("ole.external_link", "neutralized"),
            ("ole.dde", "neutralized"), ("ole.dangerous_function", "neutralized"),
            ("ole.hyperlink", "neutralized")} <= got
    rows = _values(Path(res.output))["集計"]
    assert [r[1] for r in rows[5:10]] == [100.0, 42.0, 7.0, "申請", "市HP"]
    recs = _workbook(Path(res.output))
    assert not [r for r in recs if r[0] in (0x1AE, 0x23, 0x17)]  # no SUPBOOK, EXTERNNAME, EXTERNSHEET left
    formulas = [r for r in recs if r[0] == 0x06]
    assert len(formulas) == 3  # the two SUMs and the web HYPERLINK stay formulas
    assert any(b"www.city.example.lg.jp".decode().encode("utf-16-le") in r[1] for r in formulas)


def test_hidden_sheets_links_objects_and_controls(legacy, default_policy, tmp_path):
    base, _ = legacy
    res = process(base / "legacy_office/hostile/xls_hidden_links.xls", "h.xls", tmp_path / "h", default_policy)
    assert ("ole.hidden_sheet", "sheet 設定", "converted") in {(t.id, t.location, t.action) for t in res.threats}
    book = xlrd.open_workbook(res.output)
    assert [(s.name, s.visibility) for s in book.sheets()] == [("申請一覧", 0), ("控え", 1), ("設定", 1)]
    links = [r for r in _workbook(Path(res.output)) if r[0] == 0x1B8]
    assert len(links) == 1 and "city.example.lg.jp".encode("utf-16-le") in links[0][1]  # the web link stays

    res = process(base / "legacy_office/hostile/xls_object.xls", "o.xls", tmp_path / "o", default_policy)
    with olefile.OleFileIO(res.output) as ole:
        assert not any(e[0].startswith("MBD") for e in ole.listdir())
    objs = [r[1] for r in _workbook(Path(res.output)) if r[0] == 0x5D]
    assert len(objs) == 1 and struct.unpack_from("<H", objs[0], 4)[0] == 8  # still a picture
    assert not _has_subrecord(objs[0], 0x09)  # no ftPictFmla: the link to the object storage is gone

    res = process(base / "legacy_office/hostile/xls_controls.xls", "c.xls", tmp_path / "c", default_policy)
    objs = [r[1] for r in _workbook(Path(res.output)) if r[0] == 0x5D]
    assert len(objs) == 1 and struct.unpack_from("<H", objs[0], 4)[0] == 0x0B  # the check box stays
    assert not _has_subrecord(objs[0], 0x04)  # without its macro
    with olefile.OleFileIO(res.output) as ole:
        assert not ole.exists("Ctls")


def _has_subrecord(obj: bytes, ft: int) -> bool:
    pos = 0
    while pos + 4 <= len(obj):
        kind, cb = struct.unpack_from("<HH", obj, pos)
        if kind == ft:
            return True
        if kind in (0x00, 0x13):
            return False
        pos += 4 + cb
    return False


def test_policy_options_links_and_metadata(legacy, default_policy, tmp_path):
    base, _ = legacy
    src = base / "legacy_office/benign/申請一覧.xls"
    res = process(src, src.name, tmp_path / "a", _policy(default_policy, hyperlinks="drop", metadata="keep"))
    assert res.verdict == "sanitized" and "ole.hyperlink" in all_threat_ids(res.to_dict())
    assert not [r for r in _workbook(Path(res.output)) if r[0] == 0x1B8]
    with olefile.OleFileIO(res.output) as ole:
        assert ole.get_metadata().author == b"openpyxl"
    res = process(src, src.name, tmp_path / "b", _policy(default_policy, mode="convert"))
    assert res.verdict == "clean" and res.output.endswith(".xlsx")


def test_encrypted_workbook(legacy, default_policy, tmp_path):
    base, _ = legacy
    src = base / "legacy_office/hostile/encrypted.xls"
    res = process(src, src.name, tmp_path / "a", default_policy)
    assert res.verdict == "blocked" and "ole.encrypted" in all_threat_ids(res.to_dict())
    res = process(src, src.name, tmp_path / "b", default_policy, password=ENC_PASSWORD)
    assert res.verdict == "clean" and res.output.endswith(".xls") and not res.warnings, res.reason
    assert _values(Path(res.output))["集計"][3][1:] == [17.0, 5100.0]
    assert not [r for r in _workbook(Path(res.output)) if r[0] == 0x2F]  # no FILEPASS: the output is plain


def test_damaged_workbook_falls_back_to_convert(legacy, default_policy, tmp_path):
    """A structure the walker cannot trust is converted instead (and says so); with convert = block, blocked."""
    from samples.legacy_samples import ole_streams

    base, _ = legacy
    streams, storages = ole_streams(base / "legacy_office/benign/集計.xls")
    wb = bytearray(streams["Workbook"])
    pos = 0
    while pos + 4 <= len(wb):  # point the sheet somewhere that is not a BOF
        rt, n = struct.unpack_from("<HH", wb, pos)
        if rt == 0x85:
            struct.pack_into("<I", wb, pos + 4, 7)
        pos += 4 + n
    src = tmp_path / "壊れた.xls"
    src.write_bytes(write_cfb({**streams, "Workbook": bytes(wb)}, storages))
    res = process(src, src.name, tmp_path / "a", default_policy)
    assert res.verdict in ("clean", "sanitized") and res.output.endswith(".xlsx"), res.reason
    conv = [t for t in res.threats if t.id == "ole.converted"]
    assert conv and "could not be rebuilt" in conv[0].detail
    assert any("converted instead" in w for w in res.warnings)
    res = process(src, src.name, tmp_path / "b", _policy(default_policy, convert="block"))
    assert res.verdict == "blocked" and "rebuilt" in res.reason_en and res.output is None


def test_walker_limits_on_hostile_bytes(tmp_path, default_policy):
    """Records that overrun, CONTINUE with nothing before it, a second BIFF version: never a crash."""
    from cdr.formats.legacy_office import Report, Unrebuildable, xls

    ctx = Context(name="x", options={}, limits=Limits(), workdir=tmp_path)
    bof = struct.pack("<HH", 0x809, 16) + struct.pack("<HHHHII", 0x0600, 5, 0, 0, 0, 0)
    for bad in (bof + struct.pack("<HH", 0x3C, 2) + b"ab", bof + struct.pack("<HH", 0x31, 9000),
                struct.pack("<HH", 0x809, 16) + struct.pack("<HHHHII", 0x0500, 5, 0, 0, 0, 0),
                bof + struct.pack("<HH", 0xFC, 8) + struct.pack("<II", 5, 5) + struct.pack("<HH", 0x0A, 0)):
        with olefile.OleFileIO(write_cfb({"Workbook": bad + b"\0" * 4096})) as ole:
            with pytest.raises(Unrebuildable):
                xls.rebuild(ole, ctx, Report())


def test_text_rendition_read_by_the_walker(legacy, default_policy, text_policy, tmp_path):
    """Text comes from the records (every sheet, hidden ones too, cached values), without LibreOffice."""
    base, _ = legacy
    src = base / "legacy_office/benign/申請一覧.xls"
    res = process(src, src.name, tmp_path / "a", default_policy, want_text=True)
    text = Path(res.text_output).read_text("utf-8")
    assert text.startswith("--- シート: 申請一覧 ---\n番号\t氏名\t区分\t件数\t手数料\n1\t山田1\t印鑑証明\t2\t600")
    assert "\t60\t18000" in text and "--- シート: 控え ---\n非表示のシート" in text
    src = base / "legacy_office/hostile/xls_links.xls"
    res = process(src, src.name, tmp_path / "b", text_policy)
    assert res.verdict == "sanitized" and res.output.endswith("xls_links.xls.txt")
    lines = Path(res.output).read_text("utf-8").splitlines()
    assert lines[-5:] == ["\t100", "\t42", "\t7", "\t申請", "\t市HP"]


def test_mutated_workbooks_never_crash_and_rebuild_to_a_fixed_point(legacy, tmp_path):
    """Random byte changes in the Workbook stream: the walker either gives up (the family then converts)
    or writes a stream that a second walk leaves byte for byte the same, with nothing to remove."""
    import random

    from cdr.formats.legacy_office import Report, Unrebuildable, xls

    base, _ = legacy
    ctx = Context(name="x", options={}, limits=Limits(), workdir=tmp_path)
    sources = []
    for rel in ("benign/申請一覧.xls", "hostile/xls_links.xls", "hostile/xls_macros.xls", "benign/同意書.xls"):
        with olefile.OleFileIO(str(base / "legacy_office" / rel)) as ole:
            sources.append(ole.openstream("Workbook").read())
    rnd = random.Random(17)
    outcomes = {"gave up": 0, "rebuilt": 0}
    for _ in range(80):
        data = bytearray(rnd.choice(sources))
        for _ in range(rnd.randint(1, 4)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        with olefile.OleFileIO(write_cfb({"Workbook": bytes(data)})) as ole:
            try:
                first = xls.rebuild(ole, ctx, Report())["Workbook"]
            except Unrebuildable:
                outcomes["gave up"] += 1
                continue
        again = Report()
        with olefile.OleFileIO(write_cfb({"Workbook": first})) as ole:
            assert xls.rebuild(ole, ctx, again)["Workbook"] == first
        assert not [t for t in again.threats if t.action != "reported"] and not again.notes
        outcomes["rebuilt"] += 1
    assert outcomes["gave up"] and outcomes["rebuilt"]
