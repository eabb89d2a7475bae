"""Per-file time of image sanitizing, as a ratio to a plain Pillow decode+encode in the same run.

`python -m benchmarks.bench_images [--quick]`. For 2, 6 and 12 MP JPEGs (with EXIF/XMP like a
phone photo) and a 12 MP PNG, the full pipeline (detect, rebuild, verify, hash) is timed in
"rebuild" (default), "reencode" and "lossless" mode, alternating with the floors round after round;
medians are reported. "rebuild" rows of JPEGs are compared with libjpeg-turbo's transcode alone
(tjTransform), "reencode" rows (and "rebuild" of PNG, which re-encodes) with a plain Pillow
decode+encode (Image.open + load + save in memory, JPEG with quality="keep", PNG with Pillow
defaults), "lossless" rows with the copy floor (read + sha256 + write of the same bytes, as in
`python -m benchmarks`). Images come from fixed seeds.
"""
from __future__ import annotations

import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from .measure import copy_floor, pipeline_seconds, transcode_floor

SIZES = {"2MP": (1632, 1224), "6MP": (3000, 2000), "12MP": (4000, 3000)}


def _make(dirpath: Path, quick: bool) -> list[tuple[str, Path]]:
    from samples.image_samples import XMP, exif_gps, photo

    files = []
    for label, (w, h) in SIZES.items():
        p = dirpath / f"photo_{label}.jpg"
        photo(w, h, seed=w, grain=0.3).save(p, "JPEG", quality=90, exif=exif_gps(1), xmp=XMP)
        files.append((f"jpeg-{label}", p))
    w, h = SIZES["12MP"]
    p = dirpath / "screen_12MP.png"
    photo(w, h, seed=3, grain=0.15).save(p, "PNG")  # a photo saved as PNG: the expensive case
    files.append(("png-12MP", p))
    # A 1920x1080 UI screenshot, the common PNG (flat colours compress ~60:1, so inflating dominates).
    import random

    from .corpus import _png_screenshot

    p = dirpath / "screen_1080p.png"
    _png_screenshot(p, 1920, 1080, random.Random(1080))
    files.append(("png-1080p-screen", p))
    return files


def _timed(fn, path: Path, out: Path) -> float:
    t = time.perf_counter()
    fn(path, out)
    return time.perf_counter() - t


def _floor(path: Path) -> float:
    t = time.perf_counter()
    with Image.open(path) as im:
        im.load()
        buf = io.BytesIO()
        # Same output quality as ours: JPEG with the source's tables and sampling, PNG at default level.
        im.save(buf, format=im.format, **({"quality": "keep"} if im.format == "JPEG" else {}))
    return time.perf_counter() - t


def run(quick: bool = False) -> list[dict]:
    from cdr.policy import Policy, load_policy

    base = load_policy("default").to_dict()
    policies = {}
    for mode in ("rebuild", "reencode", "lossless"):
        d = json.loads(json.dumps(base))
        d["families"]["image"]["mode"] = mode
        policies[mode] = Policy.from_dict(d, f"bench-{mode}")
    rounds = 3 if quick else 6  # each kind goes first about equally often
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-img-") as tmp:
        tmpd = Path(tmp)
        for name, path in _make(tmpd, quick):
            order = ["floor", "copy", "reencode", "lossless", "rebuild"] + (["transcode"] if "jpeg" in name else [])
            times: dict[str, list[float]] = {k: [] for k in order}
            (tmpd / "out").mkdir(exist_ok=True)
            _floor(path)  # warm caches and imports
            for i in range(rounds):
                for which in order[i % len(order):] + order[:i % len(order)]:  # alternate who goes first
                    if which == "floor":
                        times["floor"].append(_floor(path))
                    elif which == "copy":
                        times["copy"].append(_timed(copy_floor, path, tmpd / "out"))
                    elif which == "transcode":
                        times["transcode"].append(_timed(transcode_floor, path, tmpd / "out"))
                    else:
                        times[which].append(pipeline_seconds(path, policies[which], tmpd / "out"))
            med = {k: statistics.median(v) for k, v in times.items()}
            rebuild_floor = ("transcode", "libjpeg-turbo transcode") if "jpeg" in name else \
                ("floor", "Pillow decode+encode")
            for mode, floor_key, floor_name in (("rebuild", *rebuild_floor),
                                                ("reencode", "floor", "Pillow decode+encode"),
                                                ("lossless", "copy", "copy (read+sha256+write)")):
                sec, floor = med[mode], med[floor_key]
                rows.append({"name": f"{name} {mode}", "files": 1, "bytes": path.stat().st_size,
                             "seconds": round(sec, 4), "floor": floor_name, "floor_seconds": round(floor, 4),
                             "ratio_to_floor": round(sec / floor, 2),
                             "ratio_to_decode_encode": round(sec / med["floor"], 2)})
    return rows


def main() -> None:
    rows = run(quick="--quick" in sys.argv)
    print(f"{'name':26} {'bytes':>10} {'seconds':>8} {'floor s':>8} {'ratio':>6} {'/dec+enc':>8}  floor")
    for r in rows:
        print(f"{r['name']:26} {r['bytes']:>10} {r['seconds']:>8.4f} {r['floor_seconds']:>8.4f} "
              f"{r['ratio_to_floor']:>6.2f} {r['ratio_to_decode_encode']:>8.2f}  {r['floor']}")


if __name__ == "__main__":
    main()
