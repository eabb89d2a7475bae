"""Archives: recursive sanitising, bombs, hostile names, Japanese names, PPAP."""
from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from cdr.detect import detect
from cdr.errors import LimitExceeded
from cdr.formats.archive import ArchiveHandler
from cdr.formats.archive.containers import ZipReader
from cdr.formats.archive.limits import Budget, Meter
from cdr.formats.archive.names import check_name, decode_name_bytes, unique
from cdr.handler import Context
from cdr.model import BLOCKED, CLEAN, SANITIZED
from cdr.pipeline import process
from cdr.policy import Policy
from samples.archive_samples import CSV_JA, PASSWORD, TEXT_JA, Raw, build_zip, zip_of
from tests.conftest import all_threat_ids, sanitize_report


@pytest.fixture(scope="module")
def arch(corpus):
    return corpus("archive")


def run(arch, rel: str, tmp_path: Path, policy, **kw):
    base, samples = arch
    s = samples[f"archive/{rel}"]
    kw.setdefault("password", s.password)
    return process(base / s.path, Path(s.path).name, tmp_path / "out", policy, **kw)


def ids(result) -> set[str]:
    return all_threat_ids(result.to_dict())


def test_every_sample_gets_its_verdict_and_threats(arch, default_policy, tmp_path):
    base, samples = arch
    assert len(samples) >= 30
    bad = []
    for rel, s in samples.items():
        r = process(base / rel, Path(rel).name, tmp_path / "o", default_policy, password=s.password)
        got = ids(r)
        if r.verdict != s.verdict or not set(s.threats) <= got:
            bad.append((rel, r.verdict, s.verdict, sorted(got), r.reason))
        if r.verdict != BLOCKED:  # verify already re-inspected it; double-check the delivered file
            det = detect(r.output, Path(r.output).name)
            assert det.family == "archive", rel
    assert not bad, bad


# ------------------------------------------------------------------ names

def test_decode_cp932_with_backslash_trail_bytes_and_utf8_without_flag():
    for name in ("申請書.docx", "表計算/集計表.xlsx", "ソフト.txt", "能力.pdf"):
        assert decode_name_bytes(name.encode("cp932")) == name
    assert all(b"\\" in ch.encode("cp932") for ch in "申表ソ能")  # trail byte 0x5C
    assert decode_name_bytes("資料.txt".encode()) == "資料.txt"  # UTF-8 written without the flag
    assert decode_name_bytes(b"caf\x82.txt") == "café.txt"  # neither UTF-8 nor cp932: cp437


@pytest.mark.parametrize("name,expect,tid", [
    ("../../etc/passwd", None, "archive.path_traversal"),
    ("a/../../b.txt", None, "archive.path_traversal"),
    ("invoice\u202egpj.exe", None, "archive.bad_name"),
    ("report.txt\x00.exe", None, "archive.bad_name"),
    ("bell\x07.txt", None, "archive.bad_name"),
    ("docs\\memo.txt", "docs/memo.txt", "archive.bad_name"),
    ("/etc/cron.d/job", "etc/cron.d/job", "archive.path_traversal"),
    ("C:\\Windows\\x.txt", "Windows/x.txt", "archive.path_traversal"),
    ("CON.txt", "_CON.txt", "archive.bad_name"),
    ("what?.txt", "what_.txt", "archive.bad_name"),
    ("trailing. ", "trailing", "archive.bad_name"),
    ("./ok/./申請書.txt", "ok/申請書.txt", None),
    ("ﾃｽﾄ.txt", "ﾃｽﾄ.txt", None),  # half-width kana kept (NFC, not NFKC)
])
def test_check_name(name, expect, tid):
    chk = check_name(name)
    assert chk.name == expect
    if expect is None:
        assert chk.refused and chk.refused[0] == tid
    else:
        assert (tid in {t for t, _ in chk.renamed}) if tid else not chk.renamed
        again = check_name(expect)  # idempotent: what we deliver passes untouched
        assert again.name == expect and not again.renamed


def test_nfc_and_unique_names():
    assert check_name("が.txt".replace("が", "か\u3099")).name == "が.txt"
    taken: set[str] = set()
    assert [unique(n, taken) for n in ("A.txt", "a.txt", "a.txt", "dir/x")] == \
        ["A.txt", "a (2).txt", "a (3).txt", "dir/x"]


def test_japanese_names_arrive_as_utf8_flagged(arch, default_policy, tmp_path):
    r = run(arch, "benign/japanese_cp932_names.zip", tmp_path, default_policy, want_text=True)
    assert r.verdict == CLEAN, r.reason
    assert [c.source for c in r.children] == ["申請書.txt", "表計算/集計表.csv", "ソフト/画像.png",
                                              "日本語ＵＴＦ８.txt"]
    with zipfile.ZipFile(r.output) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == [c.source for c in r.children]
        assert all(i.flag_bits & 0x800 for i in infos)
        assert all(i.extra == b"" for i in infos) and zf.comment == b""
        assert zf.read("申請書.txt") == TEXT_JA  # bytes untouched, cp932 text stays cp932
        assert zf.read("表計算/集計表.csv") == CSV_JA
        assert zf.read("ソフト/画像.png").startswith(b"\x89PNG")
        assert infos[0].date_time == (2024, 4, 1, 9, 30, 0)
    text = Path(r.text_output).read_text("utf-8")
    assert "申請者：山田太郎" in text and "表計算/集計表.csv" in text


# ------------------------------------------------------------------ children and nesting

def test_children_have_their_own_verdicts_and_exe_is_dropped(arch, default_policy, tmp_path):
    r = run(arch, "hostile/exe_member.zip", tmp_path, default_policy)
    assert r.verdict == SANITIZED
    by = {c.source: c for c in r.children}
    assert by["setup.exe"].verdict == BLOCKED and "file.executable" in {t.id for t in by["setup.exe"].threats}
    assert by["readme.txt"].verdict == CLEAN and by["readme.txt"].output == "readme.txt"
    assert any(t.id == "archive.member_blocked" and t.location == "setup.exe" for t in r.threats)
    with zipfile.ZipFile(r.output) as zf:
        assert zf.namelist() == ["readme.txt"]
    report = r.to_dict()
    assert [c["verdict"] for c in report["children"]] == [BLOCKED, CLEAN]


def test_nested_member_is_sanitised_inside_the_rebuilt_inner_zip(arch, default_policy, tmp_path):
    r = run(arch, "hostile/nested_formula.zip", tmp_path, default_policy)
    assert r.verdict == SANITIZED
    inner_result = r.children[0]
    assert inner_result.source == "inner.zip" and inner_result.verdict == SANITIZED
    assert "csv.formula" in {t.id for t in inner_result.children[0].threats}
    with zipfile.ZipFile(r.output) as zf, zipfile.ZipFile(io.BytesIO(zf.read("inner.zip"))) as inner:
        csv = inner.read("集計.csv").decode("cp932")
    assert "'=HYPERLINK" in csv and "山田" in csv


def test_depth_limit_drops_only_the_too_deep_archive(arch, default_policy, tmp_path):
    r = run(arch, "hostile/nested_depth4.zip", tmp_path, default_policy)
    assert r.verdict == SANITIZED
    node, names = r, []
    for _ in range(3):
        names.append(sorted(c.source for c in node.children))
        node = next(c for c in node.children if c.source.endswith(".zip"))
    assert node.verdict == BLOCKED and "archive.too_deep" in {t.id for t in node.threats}
    with zipfile.ZipFile(r.output) as z1, zipfile.ZipFile(io.BytesIO(z1.read("level2.zip"))) as z2, \
            zipfile.ZipFile(io.BytesIO(z2.read("level3.zip"))) as z3:
        assert z3.namelist() == ["level3.txt"]  # level4.zip dropped, the rest delivered


def test_scratch_folder_is_used_emptied_and_kept(arch, default_policy, tmp_path):
    """A worker passes its stage's work/ as the scratch folder (members share one inside it): the
    result is the same as with a fresh temporary folder, and the folder is left empty, not removed."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    fresh = run(arch, "hostile/nested_depth4.zip", tmp_path / "a", default_policy)
    reused = run(arch, "hostile/nested_depth4.zip", tmp_path / "b", default_policy, scratch=scratch)
    assert reused.verdict == fresh.verdict == SANITIZED
    assert ids(reused) == ids(fresh)
    with zipfile.ZipFile(fresh.output) as a, zipfile.ZipFile(reused.output) as b:
        assert a.namelist() == b.namelist()
    assert scratch.is_dir() and not any(scratch.iterdir())


def test_members_with_the_same_name_in_different_folders_keep_their_own_bytes(default_policy, tmp_path):
    """Members' outputs share one scratch folder and are moved out one by one: same-named members of
    different folders, and a blocked one between them, each deliver their own content."""
    src = tmp_path / "same.zip"
    src.write_bytes(zip_of([("a/お知らせ.txt", "一つ目\n".encode()), ("b/お知らせ.txt", b"MZ" + b"\0" * 200),
                            ("c/お知らせ.txt", "三つ目\n".encode())]))
    r = process(src, src.name, tmp_path / "out", default_policy)
    assert r.verdict == SANITIZED, r.reason
    assert [c.verdict for c in r.children] == [CLEAN, BLOCKED, CLEAN]
    with zipfile.ZipFile(r.output) as zf:
        assert zf.namelist() == ["a/お知らせ.txt", "c/お知らせ.txt"]
        assert zf.read("a/お知らせ.txt").decode() == "一つ目\n" and zf.read("c/お知らせ.txt").decode() == "三つ目\n"


def test_scratch_folder_that_is_not_empty_is_not_used(arch, default_policy, tmp_path):
    """Fail safe: a scratch folder holding anything (an earlier job's file) is left alone; the file
    gets a fresh folder of its own."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "left.txt").write_text("an earlier job's file")
    r = run(arch, "hostile/exe_member.zip", tmp_path, default_policy, scratch=scratch)
    assert r.verdict == SANITIZED
    assert [p.name for p in scratch.iterdir()] == ["left.txt"]


# ------------------------------------------------------------------ bombs and limits

def test_zip_bomb_blocked_fast(arch, default_policy, tmp_path):
    t = time.process_time()
    r = run(arch, "hostile/zip_bomb_200mb.zip", tmp_path, default_policy)
    assert time.process_time() - t < 20  # runaway guard (CPU time): inflating 200 MB would take far longer
    assert r.verdict == BLOCKED and "archive.bomb" in ids(r) and "ZIP爆弾" in r.reason


def test_42_style_bomb_blocks_the_outer_archive(arch, default_policy, tmp_path):
    t = time.process_time()
    r = run(arch, "hostile/bomb_42_small.zip", tmp_path, default_policy)
    assert time.process_time() - t < 20  # runaway guard (CPU time), not a speed test
    assert r.verdict == BLOCKED and any(t.id == "archive.bomb" for t in r.threats)


def test_total_limit_is_enforced_while_writing(arch, default_policy, tmp_path):
    """With the ratio out of the way, archive_total_mb stops extraction before the limit is written."""
    base, _ = arch
    limits = replace(default_policy.limits, archive_total_mb=5.0, archive_ratio=1e9)
    budget = Budget(limits, 1, 0)
    meter = Meter(budget, 1, "bomb")
    reader = ZipReader(base / "archive/hostile/zip_bomb_200mb.zip")
    entry = next(reader.entries())
    dst = tmp_path / "m"
    with pytest.raises(LimitExceeded) as exc:
        reader.extract(entry, dst, meter)
    reader.close()
    assert exc.value.threat_id == "archive.bomb"
    assert dst.stat().st_size <= 5 * 1024 * 1024  # never more than the limit on disk
    assert budget.tripped is exc.value
    policy = Policy.from_dict({**default_policy.to_dict(), "limits": {
        **default_policy.to_dict()["limits"], "archive_total_mb": 5, "archive_ratio": 1e9}})
    r = process(base / "archive/hostile/zip_bomb_200mb.zip", "b.zip", tmp_path / "o", policy)
    assert r.verdict == BLOCKED and "archive_total_mb" in r.reason


def test_member_count_limit_from_policy(default_policy, tmp_path):
    src = tmp_path / "five.zip"
    src.write_bytes(zip_of([(f"{i}.txt", b"x\n") for i in range(5)]))
    d = default_policy.to_dict()
    policy = Policy.from_dict({**d, "limits": {**d["limits"], "archive_members": 4}})
    r = process(src, "five.zip", tmp_path / "o", policy)
    assert r.verdict == BLOCKED and "archive.too_many_members" in ids(r)
    assert "declares 5 members" in r.reason_en  # refused from the directory, before any member is read
    assert process(src, "five.zip", tmp_path / "o", default_policy).verdict == CLEAN


def _claiming(data: bytes, entries: int, zip64: bool = False, cd_entries: bytes = b"") -> bytes:
    """`data` (a ZIP without comment) with `cd_entries` appended to its central directory and an end
    record claiming `entries` members (through a ZIP64 end record when zip64)."""
    sig, disk, disk_cd, here, total, cd_size, cd_off, clen = struct.unpack("<4s4H2LH", data[-22:])
    body = data[:-22] + cd_entries
    cd_size += len(cd_entries)
    if not zip64:
        return body + struct.pack("<4s4H2LH", sig, 0, 0, min(entries, 0xFFFF), min(entries, 0xFFFF), cd_size,
                                  cd_off, 0)
    rec_at = len(body)
    rec = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, cd_size, cd_off)
    loc = struct.pack("<4sLQL", b"PK\x06\x07", 0, rec_at, 1)
    return body + rec + loc + struct.pack("<4s4H2LH", sig, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)


@pytest.mark.parametrize("zip64", [False, True])
def test_stated_member_count_blocks_before_zipfile_parses(default_policy, tmp_path, zip64):
    """An end record claiming a huge count is refused before zipfile reads the central directory."""
    src = tmp_path / "claims.zip"
    src.write_bytes(_claiming(zip_of([("a.txt", b"a\n")]), 10**9 if zip64 else 60_000, zip64))
    with pytest.raises(LimitExceeded) as exc:
        ZipReader(src, max_members=1000)
    assert exc.value.threat_id == "archive.too_many_members" and "declares" in exc.value.en
    r = process(src, "claims.zip", tmp_path / "o", default_policy)
    assert r.verdict == BLOCKED and "archive.too_many_members" in ids(r)
    ctx = Context(name="claims.zip", options={}, limits=default_policy.limits, workdir=tmp_path)
    assert [t.id for t in ArchiveHandler().inspect(ctx, src, detect(src))] == ["archive.too_many_members"]


def test_directory_headers_counted_even_when_the_end_record_lies(default_policy, tmp_path):
    """200,000 directory headers behind an end record that says 1: counting stops at the limit + 1."""
    one = zip_of([("a.txt", b"a\n")])
    cd_at = struct.unpack("<L", one[-6:-2])[0]
    header = one[cd_at:-22]  # the one real directory header, repeated
    src = tmp_path / "liar.zip"
    src.write_bytes(_claiming(one, 1, cd_entries=header * 200_000))
    t = time.process_time()
    r = process(src, "liar.zip", tmp_path / "o", default_policy)
    # A guard against reading all 200,000 headers into zipfile (minutes), not a speed test: CPU time,
    # so a loaded machine does not fail it.
    assert time.process_time() - t < 20
    assert r.verdict == BLOCKED and "archive.too_many_members" in ids(r)
    assert "more than 1000 members" in r.reason_en
    with pytest.raises(LimitExceeded):
        ZipReader.check_directory(src, 1000)
    assert ZipReader.check_directory(src, 200_001) == 200_001


def test_central_directory_larger_than_the_file_is_malformed(default_policy, tmp_path):
    data = bytearray(zip_of([("a.txt", b"a\n")]))
    data[-10:-6] = struct.pack("<L", 0x7FFFFFFF)  # central directory size
    src = tmp_path / "huge_cd.zip"
    src.write_bytes(bytes(data))
    r = process(src, "huge_cd.zip", tmp_path / "o", default_policy)
    assert r.verdict == BLOCKED and "file.malformed" in ids(r) and "central directory" in r.reason_en


# ------------------------------------------------------------------ PPAP

@pytest.mark.parametrize("rel", ["benign/ppap_zipcrypto.zip", "benign/ppap_aes.zip", "benign/ppap.7z"])
def test_ppap_with_and_without_password(arch, default_policy, tmp_path, rel):
    r = run(arch, rel, tmp_path, default_policy, password=None)
    assert r.verdict == BLOCKED and "archive.encrypted" in ids(r)
    assert "パスワード" in r.reason_ja and "password" in r.reason_en
    wrong = run(arch, rel, tmp_path, default_policy, password="wrong-password")
    assert wrong.verdict == BLOCKED and "archive.encrypted" in ids(wrong)
    ok = run(arch, rel, tmp_path, default_policy, password=PASSWORD)
    assert ok.verdict == SANITIZED, ok.reason
    assert any(t.id == "archive.encrypted" and t.action == "converted" for t in ok.threats)
    assert ok.children[0].source == "見積書.txt" and ok.children[0].verdict == CLEAN
    if rel.endswith(".zip"):
        with zipfile.ZipFile(ok.output) as zf:
            assert all(not (i.flag_bits & 0x1) for i in zf.infolist())  # delivered unencrypted
            assert zf.read("見積書.txt") == TEXT_JA and zf.read("明細.csv") == CSV_JA
    else:
        import py7zr

        with py7zr.SevenZipFile(ok.output) as z:
            assert not z.needs_password() and z.getnames() == ["見積書.txt"]


def test_ppap_through_the_cli(arch, tmp_path):
    if not (Path(__file__).resolve().parent.parent / "cdr" / "cli.py").exists():
        pytest.skip("CLI not written yet")
    base, _ = arch
    src = base / "archive/benign/ppap_zipcrypto.zip"
    report = sanitize_report([src], tmp_path / "a")
    assert report["files"][0]["verdict"] == BLOCKED
    assert "archive.encrypted" in all_threat_ids(report["files"][0])
    report = sanitize_report([src], tmp_path / "b", "--password", PASSWORD)
    entry = report["files"][0]
    assert entry["verdict"] == SANITIZED, json.dumps(entry, ensure_ascii=False)
    assert [c["source"] for c in entry["children"]] == ["見積書.txt", "明細.csv"]
    with zipfile.ZipFile(entry["output"]) as zf:
        assert zf.read("見積書.txt") == TEXT_JA


def test_mixed_encryption_keeps_the_plain_member(arch, default_policy, tmp_path):
    r = run(arch, "hostile/mixed_encrypted.zip", tmp_path, default_policy)
    assert r.verdict == SANITIZED
    secret = next(c for c in r.children if c.source == "secret.txt")
    assert secret.verdict == BLOCKED and "パスワード" in secret.reason_ja
    with zipfile.ZipFile(r.output) as zf:
        assert zf.namelist() == ["public.txt"]


# ------------------------------------------------------------------ hostile structure

def test_hostile_names_and_links_never_reach_the_output(arch, default_policy, tmp_path):
    expect = {
        "hostile/path_traversal.zip": ["readme.txt"],
        "hostile/absolute_paths.zip": ["etc/cron.d/job.txt", "Users/Public/x.txt"],
        "hostile/backslash_name.zip": ["docs/memo.txt", "readme.txt"],
        "hostile/bidi_name.zip": ["readme.txt"],
        "hostile/nul_name.zip": ["readme.txt"],
        "hostile/symlink.zip": ["readme.txt"],
        "hostile/comment_and_gap.zip": ["a.txt", "readme.txt"],
    }
    for rel, names in expect.items():
        r = run(arch, rel, tmp_path, default_policy)
        assert r.verdict == SANITIZED, (rel, r.reason)
        with zipfile.ZipFile(r.output) as zf:
            assert zf.namelist() == names, rel
            assert zf.comment == b""
            assert all((i.external_attr >> 16) == 0o100644 for i in zf.infolist())
        handler = ArchiveHandler()
        ctx = Context(name=rel, options={}, limits=default_policy.limits, workdir=tmp_path)
        assert handler.inspect(ctx, Path(r.output), detect(r.output)) == []
    bidi = run(arch, "hostile/bidi_name.zip", tmp_path, default_policy)
    assert any(t.location == "invoice\\u202egpj.exe" for t in bidi.threats)  # shown escaped, not reordered


def test_hidden_data_and_comment_are_found_by_inspect(arch, default_policy, tmp_path):
    base, _ = arch
    src = base / "archive/hostile/comment_and_gap.zip"
    ctx = Context(name="x.zip", options={}, limits=default_policy.limits, workdir=tmp_path)
    found = {t.id for t in ArchiveHandler().inspect(ctx, src, detect(src))}
    assert {"archive.comment", "archive.hidden_data"} <= found


def test_tar_links_devices_dropped_and_formats_kept(arch, default_policy, tmp_path):
    r = run(arch, "hostile/links_devices.tar", tmp_path, default_policy)
    assert r.verdict == SANITIZED
    with tarfile.open(r.output) as tf:
        assert [(m.name, m.isreg()) for m in tf.getmembers()] == [("readme.txt", True)]
    for ext in ("tar", "tar.gz", "tar.bz2", "tar.xz"):
        r = run(arch, f"benign/documents.{ext}", tmp_path, default_policy)
        assert r.verdict == CLEAN, r.reason
        assert detect(r.output).mime == detect(Path(arch[0]) / f"archive/benign/documents.{ext}").mime
        with tarfile.open(r.output) as tf:
            assert tf.getnames() == ["書類/申請書.txt", "書類/集計表.csv", "readme.txt"]
            assert tf.extractfile("書類/申請書.txt").read() == TEXT_JA
    gz = run(arch, "benign/documents.tar.gz", tmp_path, default_policy)
    head = Path(gz.output).read_bytes()[:10]
    assert head[4:8] == b"\0\0\0\0" and not (head[3] & 0x08)  # no mtime, no stored file name


def test_single_file_compression_round_trip(arch, default_policy, tmp_path):
    r = run(arch, "benign/申請書.txt.gz", tmp_path, default_policy)
    assert r.verdict == CLEAN and r.children[0].source == "申請書.txt"
    assert gzip.decompress(Path(r.output).read_bytes()) == TEXT_JA
    assert Path(r.output).name == "申請書.txt.gz"


def test_rar_refused_with_reason(arch, default_policy, tmp_path):
    r = run(arch, "hostile/fake.rar", tmp_path, default_policy)
    assert r.verdict == BLOCKED and "archive.unsupported" in ids(r) and "RAR" in r.reason


def test_all_members_blocked_blocks_the_archive(arch, default_policy, tmp_path):
    r = run(arch, "hostile/only_exe.zip", tmp_path, default_policy)
    assert r.verdict == BLOCKED and "setup.exe" in r.reason_en


def test_duplicate_and_renamed_members(default_policy, tmp_path):
    src = tmp_path / "dup.zip"
    src.write_bytes(build_zip([Raw(b"A.txt", b"one\n"), Raw(b"a.txt", b"two\n"), Raw(b"dir\\a.txt", b"3\n"),
                               Raw(b"dir/a.txt", b"4\n")]))
    r = process(src, "dup.zip", tmp_path / "o", default_policy)
    assert r.verdict == SANITIZED
    with zipfile.ZipFile(r.output) as zf:
        assert zf.namelist() == ["A.txt", "a (2).txt", "dir/a.txt", "dir/a (2).txt"]
        assert zf.read("dir/a (2).txt") == b"4\n"


def test_text_only_policy_gives_member_list_and_texts(arch, text_policy, tmp_path):
    r = run(arch, "benign/nested_ok.zip", tmp_path, text_policy)
    assert r.verdict == SANITIZED and r.output.endswith(".zip.txt")
    text = Path(r.output).read_text("utf-8")
    assert "外側.txt" in text and "内側.txt" in text and text.count("申請者：山田太郎") == 2


def test_members_keep_their_folder_under_the_delivered_name_and_output_is_deterministic(default_policy,
                                                                                          tmp_path):
    src = tmp_path / "ext.zip"
    src.write_bytes(zip_of([("書類/memo.bin", "メモです\n".encode()), ("書類/ok.txt", b"ok\n")]))
    r1 = process(src, "ext.zip", tmp_path / "o1", default_policy)
    r2 = process(src, "ext.zip", tmp_path / "o2", default_policy)
    assert r1.verdict == SANITIZED and r1.children[0].output == "書類/memo.txt"
    with zipfile.ZipFile(r1.output) as zf:
        assert zf.namelist() == ["書類/memo.txt", "書類/ok.txt"]
    assert r1.output_sha256 == r2.output_sha256  # same input, same bytes


def test_7z_symlink_dropped(default_policy, tmp_path):
    import os

    import py7zr

    (tmp_path / "a.txt").write_text("hi\n")
    os.symlink("/etc/passwd", tmp_path / "link")
    src = tmp_path / "s.7z"
    with py7zr.SevenZipFile(src, "w") as z:
        z.write(tmp_path / "a.txt", "a.txt")
        z.write(tmp_path / "link", "link")
    r = process(src, "s.7z", tmp_path / "o", default_policy)
    assert r.verdict == SANITIZED and "archive.symlink" in ids(r)
    with py7zr.SevenZipFile(r.output) as z:
        assert z.getnames() == ["a.txt"]


def test_single_compressed_file_shows_the_members_true_extension(tmp_path, default_policy):
    """Unpackers name a .gz member after the archive: HTML past the first 4 KB is text, so
    report.html.gz must not come out as report.html.gz (which would unpack to report.html)."""
    import gzip

    html = b"Quarterly report\n" + b"lorem ipsum " * 500 + b"\n<script>alert(document.domain)</script>\n"
    for name, body, want in (("report.html.gz", html, "report.html.txt.gz"),
                             ("x.rdp.gz", b"full address:s:203.0.113.5\n", "x.rdp.txt.gz"),
                             ("plain.txt.gz", b"hello\n", "plain.txt.gz")):
        src = tmp_path / name
        src.write_bytes(gzip.compress(body))
        r = process(src, name, tmp_path / "o", default_policy)
        assert r.verdict in ("clean", "sanitized") and Path(r.output).name == want, (name, r.output)


def test_file_named_like_a_folder_gets_a_free_name(tmp_path, default_policy):
    """Windows cannot unpack a file "x.txt" beside a folder "x.txt/": the file is renamed."""
    import zipfile

    src = tmp_path / "clash.zip"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("x.txt", "ファイル\n")
        z.writestr("x.txt/a.txt", "中のファイル\n")
        z.writestr("X.TXT/", "")
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "sanitized" and "archive.duplicate_name" in {t.id for t in r.threats}
    with zipfile.ZipFile(r.output) as z:
        names = z.namelist()
    files = [n for n in names if not n.endswith("/")]
    folders = {n.rstrip("/").casefold() for n in names if n.endswith("/")}
    folders |= {f.rsplit("/", 1)[0].casefold() for f in files if "/" in f}
    assert "x.txt/a.txt" in files and "x.txt" not in files, names
    assert not {f.casefold() for f in files} & folders, names  # nothing Windows would refuse to unpack
    assert {c.output for c in r.children if c.output} == set(files)


def _fix_7z_crcs(buf: bytearray) -> None:
    """After editing a plain (unencoded) 7z header in place: its CRC and the start header's."""
    import zlib

    off, size = struct.unpack_from("<QQ", buf, 12)
    struct.pack_into("<L", buf, 28, zlib.crc32(bytes(buf[32 + off:32 + off + size])))
    struct.pack_into("<L", buf, 8, zlib.crc32(bytes(buf[12:32])))


def test_7z_entries_we_do_not_extract_still_count_towards_the_limits(tmp_path, default_policy):
    """py7zr expands an entry it will not hand over (a name it refuses, ../big.bin) to check CRCs on
    its way to the next member of the same solid block: that expansion is capped like any other."""
    import py7zr

    p = tmp_path / "nontarget.7z"
    with py7zr.SevenZipFile(p, "w", filters=[{"id": py7zr.FILTER_LZMA2, "preset": 1}]) as z:
        z.set_encoded_header_mode(False)
        z.writestr(bytes(64 << 20), "XXXXXXXbin")  # 64 MB of zeros, a few KB packed
        z.writestr("中身\n".encode(), "a.txt")
    b = bytearray(p.read_bytes())
    old = "XXXXXXXbin".encode("utf-16-le")
    i = b.rfind(old)
    b[i:i + len(old)] = "../big.bin".encode("utf-16-le")
    _fix_7z_crcs(b)
    p.write_bytes(b)
    r = process(p, p.name, tmp_path / "o", default_policy)
    assert r.verdict == BLOCKED and "archive.bomb" in {t.id for t in r.threats}, r.reason


def test_7z_link_and_file_with_one_name_keep_their_own_bytes(tmp_path, default_policy):
    """py7zr numbers a repeated name over links too: the regular file must be delivered with its own
    content, never with the link's text under its name."""
    import py7zr

    src = tmp_path / "src"
    src.mkdir()
    (src / "x<script>alert(1)<").mkdir()  # py7zr stores a link only when its target exists
    (src / "x<script>alert(1)<" / "script>").write_bytes(b"")
    (src / "lnk").symlink_to("x<script>alert(1)</script>")
    (src / "real.txt").write_text("本物の報告書です。\n", "utf-8")
    p = tmp_path / "samename.7z"
    with py7zr.SevenZipFile(p, "w") as z:
        z.write(src / "lnk", arcname="report.txt")
        z.write(src / "real.txt", arcname="report.txt")
    r = process(p, p.name, tmp_path / "o", default_policy)
    assert r.verdict == SANITIZED
    z = py7zr.SevenZipFile(r.output)
    z.extractall(tmp_path / "x")
    z.close()
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["report.txt"]
    assert (tmp_path / "x" / "report.txt").read_text("utf-8") == "本物の報告書です。\n"


def test_megabyte_member_name_is_refused_without_flooding_the_report(tmp_path, default_policy):
    """A tar member whose GNU long name is 2 MB: refused as too long, shown cut short in the report
    (the report and the clerk's reason stay small)."""
    p = tmp_path / "longname.tar"
    with tarfile.open(p, "w", format=tarfile.GNU_FORMAT) as t:
        info = tarfile.TarInfo("a" * (2 << 20))
        data = "中身\n".encode()
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    r = process(p, p.name, tmp_path / "o", default_policy)
    assert r.verdict == BLOCKED and r.children and r.children[0].threats[0].id == "archive.bad_name"
    assert len(json.dumps(r.to_dict())) < 20_000 and len(r.reason_en) < 1000


def test_folder_entry_carrying_data_is_reported(tmp_path, default_policy):
    p = tmp_path / "dirdata.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("本文.txt", "本文\n".encode())
        info = zipfile.ZipInfo("folder/")
        z.writestr(info, b"<script>alert(1)</script>" * 5)
    r = process(p, p.name, tmp_path / "o", default_policy)
    hidden = [t for t in r.threats if t.id == "archive.hidden_data"]
    assert r.verdict == SANITIZED and hidden and "folder entry carries 125 bytes" in hidden[0].detail
    with zipfile.ZipFile(r.output) as z:
        assert all(i.file_size == 0 for i in z.infolist() if i.is_dir())


def test_cut_compressed_tar_is_blocked_as_damaged_with_a_readable_reason(default_policy, tmp_path):
    """Fuzzer find: the tar-bomb sample cut to its first 1,074 bytes raised EOFError while a member was
    extracted, and the clerk read "could not be parsed (EOFError)"."""
    from samples import generate

    generate(tmp_path / "s", ["archive"])
    src = tmp_path / "cut.tar.gz"
    src.write_bytes((tmp_path / "s" / "archive" / "hostile" / "tar_bomb.tar.gz").read_bytes()[:1074])
    (tmp_path / "out").mkdir()
    r = process(src, src.name, tmp_path / "out", default_policy)
    assert r.verdict == BLOCKED and r.output is None
    assert "EOFError" not in r.reason_en and "damaged" in r.reason_en, (r.reason_en, r.threats)
