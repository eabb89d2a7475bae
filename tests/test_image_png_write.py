"""PNG re-encoded from pixels by png_write (zlib-ng, Up filter): same pixels, same mode, similar size."""
from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cdr.pipeline import process
from samples.image_samples import asymmetric, photo


def _png(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **kw)
    return buf.getvalue()


def _palette(n: int) -> Image.Image:
    im = photo(97, 61, seed=n).quantize(n)
    assert len(im.palette.tobytes()) // 3 <= n
    return im


CASES = {
    "1-bit": lambda: (photo(99, 40, seed=1).convert("1"), {}),
    "grey": lambda: (photo(120, 80, seed=2).convert("L"), {}),
    "grey+alpha": lambda: (photo(120, 80, seed=3).convert("LA"), {}),
    "grey 16-bit": lambda: (Image.fromarray((np.arange(64 * 48, dtype=np.uint16) * 21).reshape(48, 64)), {}),
    "palette 2": lambda: (_palette(2), {}),
    "palette 4": lambda: (_palette(4), {}),
    "palette 16, transparent index": lambda: (_palette(16), {"transparency": 3}),
    "palette 200, alpha table": lambda: (_palette(200), {"transparency": bytes(range(0, 200))}),
    "RGB": lambda: (photo(257, 130, seed=4), {}),
    "RGB colour key": lambda: (asymmetric(), {"transparency": (200, 30, 30)}),
    "RGBA": lambda: (photo(130, 257, seed=5).convert("RGBA"), {}),
    "RGB, 300 dpi": lambda: (asymmetric(), {"dpi": (300, 300)}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_pixels_mode_palette_and_transparency_kept(name, default_policy, tmp_path):
    im, kw = CASES[name]()
    src = tmp_path / "in.png"
    src.write_bytes(_png(im, **kw))
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "clean", r.reason
    with Image.open(src) as a, Image.open(r.output) as b:
        assert b.mode == a.mode and b.size == a.size, name
        assert np.array_equal(np.asarray(a), np.asarray(b)), name
        if a.mode == "P":
            assert b.getpalette() == a.getpalette()
            assert Path(r.output).read_bytes()[24] == src.read_bytes()[24]  # same bit depth (packed as before)
        assert b.info.get("transparency") == a.info.get("transparency"), name
        if "dpi" in kw:
            assert tuple(round(v) for v in b.info["dpi"]) == (300, 300)


def test_screenshot_size_stays_close_to_the_source(default_policy, tmp_path):
    from benchmarks.corpus import _png_screenshot

    for w, h in ((1366, 768), (2560, 1440)):
        src = tmp_path / f"s{w}.png"
        _png_screenshot(src, w, h, random.Random(w))
        r = process(src, src.name, tmp_path / f"o{w}", default_policy)
        assert r.verdict == "clean"
        assert Path(r.output).stat().st_size <= 1.3 * src.stat().st_size
        with Image.open(src) as a, Image.open(r.output) as b:
            assert np.array_equal(np.asarray(a), np.asarray(b))


def test_rows_in_blocks_join_up_exactly(default_policy, tmp_path, monkeypatch):
    """The Up filter of the first row of a block refers to the last row of the block before."""
    from cdr.formats.image import png_write

    monkeypatch.setattr(png_write, "_BLOCK", 1000)  # a few rows per block
    im = photo(150, 90, seed=9)
    out = png_write.encode(im)
    with Image.open(io.BytesIO(out)) as b:
        assert np.array_equal(np.asarray(b), np.asarray(im))
