"""JPEG rebuilt on its DCT coefficients (default and lossless modes): same pixels, nothing else kept."""
from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cdr.formats.image import turbojpeg
from cdr.pipeline import process
from cdr.policy import Policy
from samples.image_samples import photo

pytestmark = pytest.mark.skipif(not turbojpeg.available(), reason="libturbojpeg0 is not installed")


def _policy(base: Policy, **image_opts) -> Policy:
    d = base.to_dict()
    d["families"]["image"].update(image_opts)
    return Policy.from_dict(d, "test")


def _pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)


def _markers(data: bytes) -> list[int]:
    """Markers in front of the first scan."""
    out, pos = [], 2
    while data[pos + 1] != 0xDA:
        out.append(data[pos + 1])
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return out


def _jpeg(**kw) -> bytes:
    buf = io.BytesIO()
    im = photo(kw.pop("w", 333), kw.pop("h", 251), seed=7)
    im.convert(kw.pop("mode", "RGB")).save(buf, "JPEG", **kw)
    return buf.getvalue()


VARIANTS = {
    "baseline 4:2:0": {"quality": 90},
    "baseline 4:4:4 q95, optimised tables": {"quality": 95, "subsampling": 0, "optimize": True},
    "4:2:2": {"quality": 80, "subsampling": 1},
    "progressive": {"quality": 85, "progressive": True},
    "restart markers": {"quality": 90, "restart_marker_blocks": 3},
    "grey": {"quality": 90, "mode": "L"},
    "CMYK": {"quality": 90, "mode": "CMYK"},
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_decoded_pixels_equal_and_stream_is_new(name, default_policy, tmp_path):
    data = _jpeg(**VARIANTS[name])
    src = tmp_path / "in.jpg"
    src.write_bytes(data)
    r = process(src, src.name, tmp_path / "out", default_policy)
    assert r.verdict == "clean", (r.reason, r.threats)
    out = Path(r.output).read_bytes()
    assert np.array_equal(_pixels(out), _pixels(data)), name  # no generation loss
    # Written by libjpeg from the coefficients: progressive stays progressive, baseline gets the standard
    # Huffman tables (the optimised ones of the source are not carried), and no restart markers are kept.
    assert (0xC2 in _markers(out)) == ("progressive" in name)
    if "optimised" in name:
        assert out != data and len(out) > len(data)
    if "restart" in name:
        assert 0xDD not in _markers(out) and b"\xff\xd0" not in out


def test_rotation_applied_to_coefficients_or_pixels_when_not_perfect(default_policy, tmp_path):
    from samples.image_samples import exif_gps

    for (w, h), exact in (((320, 240), True), ((330, 250), False)):  # 4:2:0: 16-pixel MCUs
        buf = io.BytesIO()
        photo(w, h, seed=3).save(buf, "JPEG", quality=92, exif=exif_gps(6))
        src = tmp_path / f"o6_{w}.jpg"
        src.write_bytes(buf.getvalue())
        r = process(src, src.name, tmp_path / f"out{w}", default_policy)
        assert r.verdict == "sanitized"
        with Image.open(src) as a, Image.open(r.output) as b:
            assert b.size == (h, w) and not b.getexif()
            turned = np.asarray(a.transpose(Image.Transpose.ROTATE_270), dtype=np.int16)
            diff = np.abs(np.asarray(b, dtype=np.int16) - turned)
            # Coefficients turned: IDCT rounding only. Not perfect: re-encoded from the turned pixels.
            assert diff.mean() < (0.2 if exact else 3), (w, diff.mean())
            if exact:
                assert b.quantization == {k: list(np.asarray(v).reshape(8, 8).T.ravel())
                                          for k, v in a.quantization.items()}


def _dqt(table_id: int, values: bytes) -> bytes:
    return b"\xff\xdb" + struct.pack(">H", 67) + bytes([table_id]) + values


def _dht(cls_id: int, symbols: bytes) -> bytes:
    counts = bytes([0] * 7 + [len(symbols)] + [0] * 8)  # all codes 8 bits long
    return b"\xff\xc4" + struct.pack(">H", 19 + len(symbols)) + bytes([cls_id]) + counts + symbols


@pytest.mark.parametrize("mode", ["rebuild", "lossless"])
def test_hidden_data_in_scan_padding_tables_or_after_eoi_cannot_survive(default_policy, tmp_path, mode):
    """Every byte of the output is written anew: the gaps of the marker-level rewrite are closed."""
    secret = b"SECRET-PAYLOAD-0123456789"
    data = _jpeg(quality=90, restart_marker_blocks=4)
    sos = data.index(b"\xff\xda")
    rst = data.index(b"\xff\xd3")
    cases = {
        # Before EOI, after the last MCU: libjpeg skips it (a warning), the marker walk took it for scan data.
        "end of scan": (data[:-2] + secret + data[-2:], "image.hidden_data"),
        # Between two restart intervals.
        "restart padding": (data[:rst] + secret + data[rst:], "image.hidden_data"),
        # Tables no component uses, with the payload as their values or symbols.
        "unused tables": (data[:sos] + _dqt(3, secret + bytes(64 - len(secret))) + _dht(0x13, secret) + data[sos:],
                          None),
        "after EOI": (data + secret * 3, "image.trailing_data"),
    }
    for name, (payload, threat) in cases.items():
        src = tmp_path / f"{name}.jpg"
        src.write_bytes(payload)
        r = process(src, src.name, tmp_path / mode / name, _policy(default_policy, mode=mode))
        assert r.verdict in ("clean", "sanitized"), (name, r.reason)
        out = Path(r.output).read_bytes()
        assert secret not in out and b"SECRET" not in out, name
        if threat:
            assert threat in {t.id for t in r.threats}, name
        assert out.count(b"\xff\xdb") <= 2 and out.endswith(b"\xff\xd9"), name
    # Without the payload the rebuild is exact: the ones above that warned were rebuilt from pixels.
    r = process(tmp_path / "unused tables.jpg", "t.jpg", tmp_path / mode / "again", _policy(default_policy, mode=mode))
    assert np.array_equal(_pixels(Path(r.output).read_bytes()), _pixels(data))


def test_icc_kept_in_segments_of_our_own(default_policy, tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "icc.jpg"
    src.write_bytes(_jpeg(quality=90, icc_profile=icc))
    r = process(src, src.name, tmp_path / "o", _policy(default_policy, icc="keep"))
    assert r.verdict == "clean"
    out = Path(r.output).read_bytes()
    with Image.open(io.BytesIO(out)) as im:
        assert im.info["icc_profile"] == icc
    assert np.array_equal(_pixels(out), _pixels(src.read_bytes()))


def test_resolution_from_exif_kept_in_jfif(default_policy, tmp_path):
    """A scan whose dpi is in its EXIF only (no JFIF) keeps its print size."""
    ex = Image.Exif()
    ex[0x011A], ex[0x011B], ex[0x0128] = 300.0, 300.0, 2  # XResolution, YResolution, inches
    buf = io.BytesIO()
    photo(160, 120, seed=1).save(buf, "JPEG", quality=90, exif=ex.tobytes())
    data = buf.getvalue()
    src = tmp_path / "scan.jpg"
    src.write_bytes(data[:2] + data[2 + 2 + int.from_bytes(data[4:6], "big"):] if data[2:4] == b"\xff\xe0" else data)
    with Image.open(src) as im:
        assert "jfif" not in im.info and round(im.info["dpi"][0]) == 300
    r = process(src, src.name, tmp_path / "o", default_policy)
    with Image.open(r.output) as im:
        assert tuple(round(v) for v in im.info["dpi"]) == (300, 300) and not im.getexif()


def _patched_red(icc: bytes) -> bytes:
    """The profile with its red colorant moved: no longer sRGB, though its description still says so."""
    out = bytearray(icc)
    for i in range(int.from_bytes(icc[128:132], "big")):
        e = 132 + 12 * i
        if icc[e:e + 4] == b"rXYZ":
            off = int.from_bytes(icc[e + 4:e + 8], "big") + 8
            out[off:off + 4] = (int.from_bytes(icc[off:off + 4], "big") + 6000).to_bytes(4, "big")
    return bytes(out)


def test_srgb_profile_dropped_without_touching_the_coefficients(default_policy, tmp_path):
    """icc = "srgb": a profile that maps every probe colour onto itself is only dropped (same pixels);
    any other one is converted from the pixels, whatever its description says."""
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for name, icc, same in (("srgb", srgb, True), ("not-srgb", _patched_red(srgb), False)):
        src = tmp_path / f"{name}.jpg"
        src.write_bytes(_jpeg(quality=90, icc_profile=icc))
        r = process(src, src.name, tmp_path / name, default_policy)
        assert r.verdict == "sanitized" and [(t.id, t.action) for t in r.threats] == [("image.icc", "converted")]
        out = Path(r.output).read_bytes()
        with Image.open(io.BytesIO(out)) as im:
            assert not im.info.get("icc_profile")
        assert np.array_equal(_pixels(out), _pixels(src.read_bytes())) == same, name
