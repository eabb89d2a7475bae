"""Archive samples: Japanese names, nesting, bombs, hostile names, links, PPAP, every container format.

ZIPs whose bytes matter (cp932 names without the UTF-8 flag, NUL in names,
symlink attributes, ZipCrypto, bytes hidden between members, overlapping
members) are assembled by hand with `build_zip`; the rest use zipfile,
tarfile, gzip/bz2/lzma, pyzipper and py7zr. Everything is small: the bombs are
highly compressible and come to a few hundred KB at most.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from . import Sample, generator

PASSWORD = "Himitsu-2024"
TEXT_JA = "電子申請の添付書類です。\r\n申請者：山田太郎\r\n".encode("cp932")
CSV_JA = "品目,数量,金額\r\n表計算ソフト,1,9800\r\n申請書様式,2,0\r\n".encode("cp932")
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 44 + b"\x80\x00\x00\x00" \
      + b"\x00" * 64 + b"PE\x00\x00" + b"\x00" * 200


def tiny_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (30, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


# ---------------------------------------------------------------- raw ZIP assembly

@dataclass
class Raw:
    name: bytes  # stored bytes of the name, exactly
    data: bytes
    utf8: bool = False  # general purpose flag bit 11
    method: int = 8  # 8 deflate, 0 stored
    mode: int = 0o100644  # Unix mode in the high half of external_attr
    password: bytes | None = None  # ZipCrypto
    date_time: tuple = (2024, 4, 1, 9, 30, 0)
    create_system: int = 3


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


_T = _crc_table()


def zipcrypto(data: bytes, password: bytes, crc: int) -> bytes:
    """Traditional PKWARE encryption (APPNOTE 6.1): 12-byte header whose last byte is the CRC's high byte."""
    k = [0x12345678, 0x23456789, 0x34567890]

    def update(b: int) -> None:
        k[0] = (k[0] >> 8) ^ _T[(k[0] ^ b) & 0xFF]
        k[1] = ((k[1] + (k[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        k[2] = (k[2] >> 8) ^ _T[(k[2] ^ (k[1] >> 24)) & 0xFF]

    for b in password:
        update(b)
    out = bytearray()
    for p in bytes(range(11, 22)) + bytes([crc >> 24]) + data:
        t = (k[2] | 2) & 0xFFFF
        out.append(p ^ (((t * (t ^ 1)) >> 8) & 0xFF))
        update(p)
    return bytes(out)


def build_zip(entries: list[Raw], comment: bytes = b"", between: bytes = b"", duplicate_first: bool = False) -> bytes:
    """Assemble a ZIP byte for byte. `between` is hidden after the first member's data;
    `duplicate_first` adds a second directory entry pointing at the first member (overlap)."""
    body = bytearray()
    central = []
    for i, e in enumerate(entries):
        crc = zlib.crc32(e.data)
        if e.method == 8:
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            payload = c.compress(e.data) + c.flush()
        else:
            payload = e.data
        flags = (0x800 if e.utf8 else 0) | (0x1 if e.password else 0)
        if e.password:
            payload = zipcrypto(payload, e.password, crc)
        y, mo, d, h, mi, s = e.date_time
        dtime, ddate = (h << 11) | (mi << 5) | (s // 2), ((y - 1980) << 9) | (mo << 5) | d
        offset = len(body)
        body += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, flags, e.method, dtime, ddate, crc,
                            len(payload), len(e.data), len(e.name), 0) + e.name + payload
        if i == 0:
            body += between
        central.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", (e.create_system << 8) | 20, 20, flags,
                                   e.method, dtime, ddate, crc, len(payload), len(e.data), len(e.name), 0, 0, 0,
                                   0, e.mode << 16, offset) + e.name)
    if duplicate_first and central:
        central.append(central[0])
    cd = b"".join(central)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(central), len(central), len(cd), len(body),
                       len(comment)) + comment
    return bytes(body) + cd + eocd


def zip_of(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, (2024, 4, 1, 9, 30, 0)), data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def tar_of(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                ti = tarfile.TarInfo(m[0])
                ti.size, ti.mtime, ti.mode = len(m[1]), 1711963800, 0o644
                tf.addfile(ti, io.BytesIO(m[1]))
    return buf.getvalue()


def zeros_zip(name: str, mb: int) -> bytes:
    """`mb` MB of zeros deflated into one member, streamed so the zeros never sit in memory at once."""
    buf = io.BytesIO()
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zi = zipfile.ZipInfo(name, (2024, 4, 1, 9, 30, 0))
        zi.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(zi, "w") as w:
            for _ in range(mb):
                w.write(chunk)
    return buf.getvalue()


def _num7(v: int) -> bytes:
    """7-Zip's variable-length number."""
    for i in range(8):
        if v < 1 << (8 * i + 7 - i):
            return bytes([((0xFF << (8 - i)) & 0xFF) | (v >> (8 * i))]) + (v & ((1 << 8 * i) - 1)).to_bytes(i, "little")
    return b"\xff" + v.to_bytes(8, "little")


def many_entries_7z(n: int = 1_000_000) -> bytes:
    """A 7z whose LZMA-packed header lists `n` empty files (0.4 MB for a million): py7zr alone
    spends seconds and hundreds of MB building the entry list before any count is checked."""
    names = "".join(f"f{i:07d}\0" for i in range(n)).encode("utf-16-le")
    empty = b"\xff" * (n // 8) + (bytes([(0xFF << (8 - n % 8)) & 0xFF]) if n % 8 else b"")
    header = (b"\x01\x05" + _num7(n) + b"\x0e" + _num7(len(empty)) + empty
              + b"\x11" + _num7(len(names) + 1) + b"\x00" + names + b"\x00\x00")
    lc, lp, pb, dict_size = 3, 0, 2, 1 << 20
    packed = lzma.compress(header, format=lzma.FORMAT_RAW, filters=[
        {"id": lzma.FILTER_LZMA1, "preset": 1, "lc": lc, "lp": lp, "pb": pb, "dict_size": dict_size}])
    props = bytes([(pb * 5 + lp) * 9 + lc]) + dict_size.to_bytes(4, "little")
    enc = (b"\x17\x06" + _num7(0) + _num7(1) + b"\x09" + _num7(len(packed)) + b"\x00"
           + b"\x07\x0b\x01\x00\x01\x23\x03\x01\x01\x05" + props + b"\x0c" + _num7(len(header))
           + b"\x0a\x01" + struct.pack("<I", zlib.crc32(header)) + b"\x00\x00")
    start = struct.pack("<QQI", len(packed), len(enc), zlib.crc32(enc))
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + struct.pack("<I", zlib.crc32(start)) + start + packed + enc


def _link(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mtime = kind, target, 1711963800
    if kind == tarfile.CHRTYPE:
        ti.devmajor, ti.devminor = 1, 3
    return ti


@generator("archive")
def archive_samples(out: Path) -> list[Sample]:
    base = out / "archive"
    (base / "benign").mkdir(parents=True, exist_ok=True)
    (base / "hostile").mkdir(parents=True, exist_ok=True)
    made: list[Sample] = []

    def put(rel: str, data: bytes, verdict: str, threats: list[str] | None = None, note: str = "",
            password: str | None = None) -> None:
        (base / rel).write_bytes(data)
        made.append(Sample(f"archive/{rel}", verdict, threats or [], note, password))

    png = tiny_png()
    ok = ("readme.txt", "この書類は安全です。\n".encode())

    # -- benign ------------------------------------------------------------------------------
    cp = [Raw("申請書.txt".encode("cp932"), TEXT_JA),  # 申 = 90 5C: trail byte is a backslash
          Raw("表計算/集計表.csv".encode("cp932"), CSV_JA),  # 表 = 95 5C
          Raw("ソフト/画像.png".encode("cp932"), png, method=0),  # ソ = 83 5C
          Raw("日本語ＵＴＦ８.txt".encode(), b"utf-8 flagged\n", utf8=True)]
    put("benign/japanese_cp932_names.zip", build_zip(cp), "clean",
        note="cp932 names without the UTF-8 flag, including trail byte 0x5C; one UTF-8 flagged name")
    put("benign/nested_ok.zip", zip_of([("外側.txt", TEXT_JA), ("inner.zip", zip_of([("内側.txt", TEXT_JA)]))]),
        "clean", note="zip in zip, depth 2")
    plain_tar_members = [("書類/申請書.txt", TEXT_JA), ("書類/集計表.csv", CSV_JA), ok]
    put("benign/documents.tar", tar_of(plain_tar_members), "clean")
    put("benign/documents.tar.gz", tar_of(plain_tar_members, "w:gz"), "clean")
    put("benign/documents.tar.bz2", tar_of(plain_tar_members, "w:bz2"), "clean")
    put("benign/documents.tar.xz", tar_of(plain_tar_members, "w:xz"), "clean")
    put("benign/申請書.txt.gz", gzip.compress(TEXT_JA, mtime=0), "clean", note="single file, not a tar")
    put("benign/集計表.csv.bz2", bz2.compress(CSV_JA), "clean")
    put("benign/notes.txt.xz", lzma.compress(TEXT_JA), "clean")

    import py7zr
    import pyzipper

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as z:
        z.writestr(TEXT_JA, "書類/申請書.txt")
        z.writestr(ok[1], ok[0])
    put("benign/documents.7z", buf.getvalue(), "clean")
    put("hostile/million_entries.7z", many_entries_7z(), "blocked", ["archive.too_many_members"],
        "1.5 MB, a packed header listing a million empty files: counted before py7zr reads it")

    # -- PPAP ----------------------------------------------------------------------------------
    pw = PASSWORD.encode()
    ppap = build_zip([Raw("見積書.txt".encode("cp932"), TEXT_JA, password=pw),
                      Raw("明細.csv".encode("cp932"), CSV_JA, password=pw)])
    put("benign/ppap_zipcrypto.zip", ppap, "sanitized", ["archive.encrypted"],
        "ZipCrypto with the password supplied out of band: decrypted, delivered unencrypted", PASSWORD)
    put("hostile/ppap_zipcrypto_nopass.zip", ppap, "blocked", ["archive.encrypted"],
        "ZipCrypto without a password: blocked, the reason asks for the password")
    buf = io.BytesIO()
    with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as zf:
        zf.setpassword(pw)
        zf.writestr("見積書.txt", TEXT_JA)
        zf.writestr("明細.csv", CSV_JA)
    put("benign/ppap_aes.zip", buf.getvalue(), "sanitized", ["archive.encrypted"], "AES-256 ZIP with password",
        PASSWORD)
    put("hostile/ppap_aes_nopass.zip", buf.getvalue(), "blocked", ["archive.encrypted"])
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", password=PASSWORD) as z:
        z.writestr(TEXT_JA, "見積書.txt")
    put("benign/ppap.7z", buf.getvalue(), "sanitized", ["archive.encrypted"], "7z with password", PASSWORD)
    put("hostile/mixed_encrypted.zip",
        build_zip([Raw(b"public.txt", b"plain member\n"), Raw(b"secret.txt", b"hidden\n", password=pw)]),
        "sanitized", ["archive.encrypted"], "one encrypted member, no password: that member is dropped")

    # -- nesting and bombs -------------------------------------------------------------------------
    inner = zip_of([("level4.txt", b"level 4\n")])
    for level in (3, 2, 1):
        inner = zip_of([(f"level{level}.txt", f"level {level}\n".encode()), (f"level{level + 1}.zip", inner)])
    put("hostile/nested_depth4.zip", inner, "sanitized", ["archive.too_deep", "archive.member_blocked"],
        "four nested zips; the fourth exceeds archive_depth = 3 and is dropped")
    put("hostile/nested_formula.zip",
        zip_of([("inner.zip", zip_of([("集計.csv", "名前,式\r\n山田,=HYPERLINK(\"http://x\")\r\n".encode("cp932"))]))]),
        "sanitized", ["archive.member_sanitized", "csv.formula"], "a CSV formula two levels down")
    put("hostile/zip_bomb_200mb.zip", zeros_zip("zeros.txt", 200), "blocked", ["archive.bomb"],
        "200 MB of zeros in one member")
    leaf = zip_of([(f"{i}.txt", bytes(8 << 20)) for i in range(4)])
    mid = zip_of([(f"{i}.zip", leaf) for i in range(4)])
    put("hostile/bomb_42_small.zip", zip_of([(f"{i}.zip", mid) for i in range(4)]), "blocked", ["archive.bomb"],
        "42.zip-style: 4 x 4 x 4 x 8 MB = 512 MB spread over nested zips")
    put("hostile/tar_bomb.tar.gz", tar_of([("zeros.txt", bytes(30 << 20))], "w:gz"), "blocked", ["archive.bomb"],
        "30 MB of zeros in a tar.gz")
    put("hostile/overlapping_members.zip", build_zip([Raw(b"a.txt", b"A" * 1000)], duplicate_first=True),
        "blocked", ["archive.bomb"], "two directory entries share one member (non-recursive bomb technique)")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(1001):
            zf.writestr(zipfile.ZipInfo(f"f{i:04d}.txt", (2024, 4, 1, 0, 0, 0)), b"")
    put("hostile/too_many_members.zip", buf.getvalue(), "blocked", ["archive.too_many_members"], "1001 members")

    # -- names -------------------------------------------------------------------------------------
    put("hostile/path_traversal.zip", build_zip([Raw(b"../../evil.txt", b"x\n"), Raw(ok[0].encode(), ok[1])]),
        "sanitized", ["archive.path_traversal"], "'..' member dropped")
    put("hostile/absolute_paths.zip",
        build_zip([Raw(b"/etc/cron.d/job.txt", b"x\n"), Raw(b"C:\\Users\\Public\\x.txt", b"y\n")]),
        "sanitized", ["archive.path_traversal"], "absolute and drive-letter paths made relative")
    put("hostile/backslash_name.zip", build_zip([Raw(b"docs\\memo.txt", b"memo\n"), Raw(ok[0].encode(), ok[1])]),
        "sanitized", ["archive.bad_name"], "backslash separators normalised to /")
    put("hostile/bidi_name.zip",
        build_zip([Raw("invoice\u202egpj.exe".encode(), EXE, utf8=True), Raw(ok[0].encode(), ok[1])]),
        "sanitized", ["archive.bad_name"], "right-to-left override hides .exe")
    put("hostile/nul_name.zip", build_zip([Raw(b"report.txt\x00.exe", EXE), Raw(ok[0].encode(), ok[1])]),
        "sanitized", ["archive.bad_name"], "NUL in the name")
    put("hostile/tar_traversal.tar.gz", tar_of([("../../etc/evil.txt", b"x\n"), ok], "w:gz"), "sanitized",
        ["archive.path_traversal"])

    # -- links, devices, executables, containers we refuse ----------------------------------------------
    put("hostile/symlink.zip", build_zip([Raw(b"passwd", b"/etc/passwd", method=0, mode=0o120777),
                                          Raw(ok[0].encode(), ok[1])]),
        "sanitized", ["archive.symlink"], "ZIP symlink via Unix mode in external_attr")
    put("hostile/links_devices.tar",
        tar_of([ok, _link("passwd", tarfile.SYMTYPE, "/etc/passwd"), _link("hard", tarfile.LNKTYPE, "readme.txt"),
                _link("dev/null0", tarfile.CHRTYPE), _link("pipe", tarfile.FIFOTYPE)]),
        "sanitized", ["archive.symlink", "archive.special_file"])
    put("hostile/exe_member.zip", zip_of([("setup.exe", EXE), ok]), "sanitized",
        ["archive.member_blocked", "file.executable"], "an executable member is dropped")
    put("hostile/only_exe.zip", zip_of([("setup.exe", EXE), ("tool.exe", EXE)]), "blocked",
        ["archive.all_members_blocked"], "every member blocked: the archive is blocked")
    put("hostile/fake.rar", b"Rar!\x1a\x07\x01\x00" + bytes(64), "blocked", ["archive.unsupported"],
        "RAR: no free writer, refused")
    put("hostile/comment_and_gap.zip",
        build_zip([Raw(b"a.txt", b"first\n"), Raw(ok[0].encode(), ok[1])], comment=b"hidden note in comment",
                  between=b"SMUGGLED-PAYLOAD" * 8),
        "sanitized", ["archive.comment", "archive.hidden_data"], "comment and bytes between members dropped")
    return made
