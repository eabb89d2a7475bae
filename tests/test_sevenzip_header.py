"""7z header counts read before py7zr: a million-entry header is refused without py7zr building it."""
from __future__ import annotations

import io
from pathlib import Path

import py7zr
import pytest

from cdr.formats.archive.sevenzip_header import HeaderError, TooMany, count_entries
from cdr.pipeline import process
from cdr.policy import Policy
from samples.archive_samples import many_entries_7z


def _limits(base: Policy, **limits) -> Policy:
    d = base.to_dict()
    d["limits"].update(limits)
    return Policy.from_dict(d, "test")


def _7z(tmp_path: Path, n: int, **kw) -> Path:
    p = tmp_path / f"n{n}_{len(kw)}.7z"
    with py7zr.SevenZipFile(p, "w", **kw) as z:
        for i in range(n):
            z.writestr(f"申請書 {i}\n".encode(), f"書類/{i:03d}.txt")
        z.writestr(b"", "空のファイル.txt")  # an empty stream: listed in FilesInfo only
    return p


def test_million_entries_blocked_before_py7zr_reads_the_header(default_policy, tmp_path, monkeypatch):
    src = tmp_path / "million.7z"
    src.write_bytes(many_entries_7z())
    assert src.stat().st_size < 2_000_000

    def refuse(*a, **k):
        raise AssertionError("py7zr was asked to parse the header")

    monkeypatch.setattr(py7zr, "SevenZipFile", refuse)
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "blocked" and r.output is None
    assert "archive.too_many_members" in {t.id for t in r.threats}
    assert "1,000,000" in r.reason


@pytest.mark.parametrize("kw", [{}, {"filters": [{"id": py7zr.FILTER_LZMA2}]},
                                {"filters": [{"id": py7zr.FILTER_DEFLATE}]}])
def test_counts_agree_with_py7zr(tmp_path, kw):
    p = _7z(tmp_path, 12, **kw)
    with py7zr.SevenZipFile(p) as z:
        n = len(z.files)
    with open(p, "rb") as fp:
        assert count_entries(fp, p.stat().st_size, 1000, 1 << 22) == n == 13
        with pytest.raises(TooMany):  # the streams (or the entries) are over a limit of 5
            count_entries(fp, p.stat().st_size, 5, 1 << 22)


def test_limit_from_policy_and_encrypted_header(default_policy, tmp_path):
    p = _7z(tmp_path, 12)
    r = process(p, p.name, tmp_path / "o", _limits(default_policy, archive_members=5))
    assert r.verdict == "blocked" and "archive.too_many_members" in {t.id for t in r.threats}
    r = process(p, p.name, tmp_path / "o2", default_policy)
    assert r.verdict == "clean", r.reason
    # A header encrypted with the password (-mhe) cannot be counted: bounded by its size, then py7zr.
    enc = tmp_path / "enc.7z"
    with py7zr.SevenZipFile(enc, "w", password="secret", header_encryption=True) as z:
        z.writestr(b"data\n", "a.txt")
    with open(enc, "rb") as fp:
        assert count_entries(fp, enc.stat().st_size, 1000, 1 << 22) == -1
        with pytest.raises(TooMany):
            count_entries(fp, enc.stat().st_size, 1000, 16)


def test_damaged_header_is_malformed(default_policy, tmp_path):
    data = bytearray(_7z(tmp_path, 3).read_bytes())
    data[-3] ^= 0xFF  # inside the header: its CRC no longer matches
    src = tmp_path / "bad.7z"
    src.write_bytes(bytes(data))
    with pytest.raises(HeaderError):
        count_entries(io.BytesIO(bytes(data)), len(data), 1000, 1 << 22)
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "blocked" and "file.malformed" in {t.id for t in r.threats}


def test_mutated_headers_raise_only_header_errors(tmp_path):
    """Bytes flipped in the header (checksums made to match again): a HeaderError or TooMany, nothing else
    (a 4 GiB dictionary claim is not allocated, bad LZMA properties are refused)."""
    import random
    import struct
    import zlib

    seeds = [many_entries_7z(50), _7z(tmp_path, 4).read_bytes()]
    rnd = random.Random(18)
    outcomes = set()
    for _ in range(1500):
        d = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 3)):
            d[rnd.randrange(32, len(d))] = rnd.randrange(256)
        off, size = struct.unpack("<QQ", d[12:28])
        if 32 + off + size <= len(d):
            d[28:32] = struct.pack("<I", zlib.crc32(d[32 + off:32 + off + size]))
        d[8:12] = struct.pack("<I", zlib.crc32(d[12:32]))
        try:
            count_entries(io.BytesIO(bytes(d)), len(d), 1000, 1 << 22)
            outcomes.add("counted")
        except (HeaderError, TooMany) as exc:
            outcomes.add(type(exc).__name__)
    assert "HeaderError" in outcomes and "counted" in outcomes


def test_lzma_properties_of_the_packed_header(tmp_path):
    import struct
    import zlib

    def patched(value: bytes) -> bytes:
        d = bytearray(many_entries_7z(20))
        at = d.rindex(b"\x23\x03\x01\x01\x05") + 5  # the LZMA coder's 5 property bytes
        d[at:at + len(value)] = value
        off, size = struct.unpack("<QQ", d[12:28])
        d[28:32] = struct.pack("<I", zlib.crc32(d[32 + off:32 + off + size]))
        d[8:12] = struct.pack("<I", zlib.crc32(d[12:32]))
        return bytes(d)

    d = patched(bytes([0x5D]) + b"\xff\xff\xff\xff")  # a 4 GiB dictionary claimed: not allocated, counted
    assert count_entries(io.BytesIO(d), len(d), 1000, 1 << 22) == 20
    d = patched(b"\xff")  # lc/lp/pb out of range
    with pytest.raises(HeaderError):
        count_entries(io.BytesIO(d), len(d), 1000, 1 << 22)
