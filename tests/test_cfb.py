"""The compound file writer (cdr/formats/legacy_office/cfb.py), read back by olefile, oletools and
LibreOffice, and checked against [MS-CFB]'s directory rules (red-black tree, ordering)."""
from __future__ import annotations

import shutil
import struct
import subprocess
import uuid

import olefile
import pytest

from cdr.formats.legacy_office import cfb

CLSID = bytes.fromhex("2008020000000000c000000000000046")


def _tree() -> dict[str, bytes]:
    sizes = [0, 1, 63, 64, 65, 4095, 4096, 4097, 70_000]
    streams = {f"s{n}": bytes((i * 7 + n) % 251 for i in range(n)) for n in sizes}
    streams["Workbook"] = b"\x09\x08" * 5000
    streams["\x05SummaryInformation"] = b"\xfe\xff" + b"\0" * 100
    streams["保存/資料/申請書"] = "住民票".encode("utf-16-le") * 300
    streams["保存/資料/小"] = b"x" * 10
    for i in range(40):  # a wide storage: a deep tree with a partial last level
        streams[f"wide/entry{i:02d}"] = bytes([i]) * (i * 150)
    return streams


def _directory(data: bytes) -> list[tuple]:
    ole = olefile.OleFileIO(data)
    try:
        raw = ole._open(ole.first_dir_sector, force_FAT=True).read()
    finally:
        ole.close()
    out = []
    for i in range(len(raw) // 128):
        name, nlen, kind, color, left, right, child = struct.unpack_from("<64sHBBIII", raw, i * 128)
        out.append((name[:max(nlen - 2, 0)].decode("utf-16-le"), kind, color, left, right, child))
    return out


def _check_rb(entries: list[tuple], node: int) -> tuple[int, list[str]]:
    """Black height of the subtree at `node` and its names in order; asserts the invariants."""
    if node == cfb.NOSTREAM:
        return 1, []
    name, _kind, color, left, right, _child = entries[node]
    for side in (left, right):
        if side != cfb.NOSTREAM and color == 0:
            assert entries[side][2] == 1, f"red {name} has a red child"
    hl, names_l = _check_rb(entries, left)
    hr, names_r = _check_rb(entries, right)
    assert hl == hr, f"black heights differ under {name}"
    return hl + (color == 1), names_l + [name] + names_r


def _check_storage(entries: list[tuple], sid: int) -> None:
    child = entries[sid][5]
    if child == cfb.NOSTREAM:
        return
    assert entries[child][2] == 1, "a storage's tree root must be black"
    _h, names = _check_rb(entries, child)
    keys = [cfb._key(n) for n in names]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for n in names:
        idx = next(i for i, e in enumerate(entries) if e[0] == n and e[1] in (1, 2))
        if entries[idx][1] == 1:
            _check_storage(entries, idx)


def test_round_trip_with_olefile():
    streams = _tree()
    data = cfb.write(streams, storages=["空"], clsids={"": CLSID, "保存": CLSID[::-1]})
    assert len(data) % 512 == 0
    with olefile.OleFileIO(data) as ole:
        got = {"/".join(e): ole.openstream(e).read() for e in ole.listdir(streams=True, storages=False)}
        assert got == streams
        assert ["空"] in ole.listdir(streams=False, storages=True)
        assert ole.root.clsid == "00020820-0000-0000-C000-000000000046"
        assert ole.get_type("保存") == olefile.STGTY_STORAGE and ole.getclsid("保存") != ole.root.clsid
        assert ole.get_size("s4095") == 4095 and ole.get_size("s0") == 0
        # Small streams live in the mini stream, large ones in regular sectors.
        assert ole.minisectorcutoff == 4096 and ole.direntries[0].size > 0
        assert ole.getmtime("Workbook") is None and ole.getctime("保存") is None  # no timestamps
    entries = _directory(data)
    assert entries[0][0] == "Root Entry" and entries[0][1] == 5
    _check_storage(entries, 0)


def test_large_file_needs_difat_sectors():
    big = bytes(range(256)) * (8 * 4096 + 3)  # > 109 FAT sectors' worth (about 7 MB)
    data = cfb.write({"Big": big, "small": b"abc"})
    assert struct.unpack_from("<I", data, 72)[0] >= 1  # DIFAT sectors in the header
    with olefile.OleFileIO(data) as ole:
        assert ole.openstream("Big").read() == big and ole.openstream("small").read() == b"abc"


def test_empty_and_bad_trees():
    with olefile.OleFileIO(cfb.write({})) as ole:
        assert ole.listdir() == []
    for bad in ({"a/b": b"", "a": b""}, {"x" * 32: b""}, {"a:b": b""}, {"Name": b"", "NAME": b""}):
        with pytest.raises(cfb.CfbError):
            cfb.write(bad)
    with pytest.raises(cfb.CfbError):
        cfb.write({"a": b""}, clsids={"": b"short"})


def test_oletools_read_it():
    from oletools.olevba import VBA_Parser

    from samples.legacy_samples import _vba_streams

    with_vba = cfb.write({"WordDocument": b"\0" * 5000, **_vba_streams("Macros")})
    clean = cfb.write({"WordDocument": b"\0" * 5000, "1Table": b"\0" * 600})
    for data, want in ((with_vba, True), (clean, False)):
        vp = VBA_Parser("t.doc", data=data)
        try:
            assert bool(vp.detect_vba_macros()) is want
        finally:
            vp.close()


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice not installed")
def test_libreoffice_reads_rewritten_files(corpus, tmp_path):
    """The benign .xls and .doc, their streams copied into a file of ours: LibreOffice reads the same content."""
    from samples.legacy_samples import ole_streams

    base, _ = corpus("legacy_office")
    names = {"xls": base / "legacy_office/benign/集計.xls", "doc": base / "legacy_office/benign/申請書.doc"}
    srcs = tmp_path / "src"
    srcs.mkdir()
    for kind, p in names.items():
        shutil.copyfile(p, srcs / f"orig.{kind}")
        with olefile.OleFileIO(str(p)) as ole:
            root = ole.root.clsid
        streams, storages = ole_streams(p)
        clsid = {"": uuid.UUID(root).bytes_le} if root else {}
        (srcs / f"ours.{kind}").write_bytes(cfb.write(streams, storages, clsid))
    out = tmp_path / "out"
    prof = (tmp_path / "prof").as_uri()
    for target, kind in (("csv", "xls"), ("txt:Text (encoded):UTF8", "doc")):
        subprocess.run(["soffice", "--headless", "--norestore", f"-env:UserInstallation={prof}", "--convert-to",
                        target, "--outdir", str(out), str(srcs / f"orig.{kind}"), str(srcs / f"ours.{kind}")],
                       check=True, capture_output=True, timeout=180)
        ext = target.split(":")[0]
        orig, ours = (out / f"orig.{ext}").read_bytes(), (out / f"ours.{ext}").read_bytes()
        assert ours == orig and len(ours) > 20, kind
    with olefile.OleFileIO(str(srcs / "ours.xls")) as ole:
        assert ole.root.clsid == "00020810-0000-0000-C000-000000000046"  # as LibreOffice wrote it


def test_property_streams_keep_only_what_rendering_needs(corpus):
    """SummaryInformation rebuilt: drop keeps the code page and application, keep adds the plain fields."""
    from cdr.formats.legacy_office import props

    base, _ = corpus("legacy_office")
    with olefile.OleFileIO(str(base / "legacy_office/benign/申請書.doc")) as ole:
        summary = ole.openstream(props.SUMMARY).read()
        docsum = ole.openstream(props.DOC_SUMMARY).read()
    for keep in (False, True):
        new_s, notes = props.rebuild(props.SUMMARY, summary, keep)
        new_d, _ = props.rebuild(props.DOC_SUMMARY, docsum, keep)
        with olefile.OleFileIO(cfb.write({props.SUMMARY: new_s, props.DOC_SUMMARY: new_d, "x": b"1"})) as ole:
            meta = ole.get_metadata()
        assert meta.codepage == -535 and meta.codepage_doc == -535  # UTF-8, as the source said
        assert (meta.author == b"python-docx") is keep and (meta.comments is not None) is keep
        assert bool(notes) is not keep  # drop says it left the author out
    # Japanese text survives a keep round trip in the source's code page.
    ja = props.write(props.FMTID_SUMMARY, {props.PID_CODEPAGE: (props.VT_I2, 932), 4: (props.VT_LPSTR, "市民課"),
                                           0x12: (props.VT_LPSTR, "Microsoft Excel")}, 932)
    kept, _ = props.rebuild(props.SUMMARY, ja, True)
    back = props.read(kept)
    assert back.codepage == 932 and back.values[4] == (props.VT_LPSTR, "市民課")
    dropped = props.read(props.rebuild(props.SUMMARY, ja, False)[0])
    assert 4 not in dropped.values and dropped.values[0x12] == (props.VT_LPSTR, "Microsoft Excel")
    for junk in (b"", b"\xfe\xff" + b"\0" * 60, ja[:60], ja[:48] + b"\xff" * 40):
        data, notes = props.rebuild(props.SUMMARY, junk, True)
        assert data is None and notes
