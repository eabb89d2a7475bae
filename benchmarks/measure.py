"""Timing primitives: floors, the engine through the real worker pool, statistics, worker memory.

Floors are what any tool must at least do with the same bytes:
- copy: read + sha256 + write (what the pipeline does around every file anyway);
- pikepdf open+save (PDF), re-zip of the same members at their own compression (OOXML, ZIP);
- libjpeg-turbo's transcode on the DCT coefficients (JPEG: what the default rebuild does at least);
- Pillow decode+encode (PNG, the re-encode of the previous release).
Peak RSS of a worker is its VmHWM from /proc, reset (clear_refs 5) before each family so that a
family is not charged with the peak of the one before; RUSAGE_CHILDREN is the fallback.
"""
from __future__ import annotations

import hashlib
import io
import math
import os
import resource
import shutil
import statistics
import time
import zipfile
from pathlib import Path


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def percentile(xs: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# --------------------------------------------------------------------------- floors

def pipeline_seconds(path: Path, policy, out_dir: Path, want: tuple[str, ...] = ("clean", "sanitized")) -> float:
    """One file through cdr.pipeline.process in this process (no worker round trip), in seconds."""
    from cdr.pipeline import process

    t = time.perf_counter()
    r = process(path, path.name, out_dir, policy)
    dt = time.perf_counter() - t
    if r.verdict not in want:
        raise RuntimeError(f"{path.name}: {r.verdict} {r.reason} {[x.id for x in r.threats]}")
    Path(r.output).unlink()
    return dt


def copy_floor(src: Path, out_dir: Path) -> None:
    data = src.read_bytes()
    hashlib.sha256(data).hexdigest()
    dst = out_dir / src.name
    dst.write_bytes(data)
    dst.unlink()


def contract_floor(src: Path, out_dir: Path) -> None:
    """copy_floor plus a second sha256: the report gives the hash of the input and of the output, so an
    engine that changes nothing still hashes the bytes twice (informative, for the lossless rows)."""
    data = src.read_bytes()
    hashlib.sha256(data).hexdigest()
    dst = out_dir / src.name
    dst.write_bytes(data)
    hashlib.sha256(data).hexdigest()
    dst.unlink()


def pikepdf_floor(src: Path, out_dir: Path) -> None:
    import pikepdf

    dst = out_dir / src.name
    with pikepdf.open(src) as pdf:
        pdf.save(dst)
    dst.unlink()


def rezip_floor(src: Path, out_dir: Path) -> None:
    """Every member read (decompressed) and written again with its own compression method."""
    dst = out_dir / src.name
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info), compress_type=info.compress_type)
    dst.unlink()


def transcode_floor(src: Path, out_dir: Path) -> None:
    """Read, rebuild on the DCT coefficients with libjpeg-turbo's tjTransform (jpegtran), write."""
    from cdr.formats.image import turbojpeg

    dst = out_dir / src.name
    dst.write_bytes(turbojpeg.transcode(src.read_bytes()))
    dst.unlink()


def pillow_floor(src: Path, out_dir: Path) -> None:
    from PIL import Image

    with Image.open(src) as im:
        im.load()
        buf = io.BytesIO()
        im.save(buf, format=im.format, **({"quality": "keep"} if im.format == "JPEG" else {}))
    (out_dir / src.name).write_bytes(buf.getvalue())
    (out_dir / src.name).unlink()


def openpyxl_roundtrip(src: Path, out_dir: Path) -> None:
    import openpyxl

    dst = out_dir / src.name
    wb = openpyxl.load_workbook(src)
    wb.save(dst)
    wb.close()
    dst.unlink()


STRUCTURAL = {"pdf": ("pikepdf open+save", pikepdf_floor), "docx": ("re-zip", rezip_floor),
              "xlsx": ("re-zip", rezip_floor), "pptx": ("re-zip", rezip_floor), "zip": ("re-zip", rezip_floor),
              "jpeg": ("libjpeg-turbo transcode (jpegtran)", transcode_floor),
              "png": ("Pillow decode+encode", pillow_floor)}


def time_each(fn, paths: list[Path], out_dir: Path, cpu: list[float] | None = None) -> list[float]:
    """Seconds per file for fn(path, out_dir); `cpu` receives the CPU seconds of the whole list."""
    out = []
    c = time.process_time()
    for p in paths:
        t = time.perf_counter()
        fn(p, out_dir)
        out.append(time.perf_counter() - t)
    if cpu is not None:
        cpu.append(time.process_time() - c)
    return out


# --------------------------------------------------------------------------- engine

def engine_each(pool, paths: list[Path], policy: dict, out_dir: Path,
                sizes: list[int] | None = None) -> tuple[list[float], list[str]]:
    """Seconds per file through pool.run (worker + the parent's re-check), and the verdicts.
    `sizes` receives the size of each output (0 when blocked)."""
    from cdr.worker import Job

    lat, verdicts = [], []
    for i, p in enumerate(paths):
        jd = out_dir / f"j{i}"
        jd.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        res = pool.run(Job(str(p), p.name, str(jd), policy))
        lat.append(time.perf_counter() - t)
        verdicts.append(res.verdict if res.verdict != "blocked" else f"blocked: {res.reason}")
        if sizes is not None:
            sizes.append(Path(res.output).stat().st_size if res.output else 0)
        shutil.rmtree(jd, ignore_errors=True)
    return lat, verdicts


def engine_batch(pool, paths: list[Path], policy: dict, out_dir: Path, want_text: bool = False) -> float:
    """Wall seconds for the whole list submitted at once (throughput with pool.size workers).

    Largest first, as `cdr sanitize` submits them. `want_text` adds the text rendition, as the
    appliance's default policy does."""
    from cdr.worker import Job

    paths = sorted(paths, key=lambda p: -p.stat().st_size)
    t = time.perf_counter()
    futs = []
    for i, p in enumerate(paths):
        jd = out_dir / f"b{i}"
        jd.mkdir(parents=True, exist_ok=True)
        futs.append(pool.submit(Job(str(p), p.name, str(jd), policy, want_text=want_text)))
    for f in futs:
        f.result()
    wall = time.perf_counter() - t
    for i in range(len(paths)):
        shutil.rmtree(out_dir / f"b{i}", ignore_errors=True)
    return wall


# --------------------------------------------------------------------------- memory

def worker_pids(pool) -> list[int]:
    with pool._lock:  # the pool's own list of live workers
        return [w.proc.pid for w in pool._all if w.proc.poll() is None]


def _status_kb(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak(pool) -> bool:
    """Reset VmHWM of the pool's workers; False when the kernel does not allow it."""
    ok = True
    for pid in worker_pids(pool):
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            ok = False
    return ok


def peak_rss_mb(pool) -> float | None:
    """Largest VmHWM among the pool's workers, in MB; RUSAGE_CHILDREN maxrss when /proc is missing."""
    vals = [v for v in (_status_kb(pid, "VmHWM") for pid in worker_pids(pool)) if v is not None]
    if vals:
        return max(vals) / 1024
    kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return kb / 1024 if kb else None


def cpu_seconds(pool) -> float:
    """CPU seconds of the pool's live workers: /proc/<pid>/schedstat (nanoseconds), else utime + stime
    from /proc/<pid>/stat (clock ticks)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in worker_pids(pool):
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                total += int(f.read().split()[0]) / 1e9
            continue
        except (OSError, IndexError, ValueError):
            pass
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14 and 15)
        except (OSError, IndexError, ValueError):
            pass
    return total


def machine() -> dict:
    import platform

    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "load_avg_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["mem_total_mb"] = int(f.readline().split()[1]) // 1024
    except OSError:
        pass
    try:
        import pikepdf
        import PIL

        info["pikepdf"], info["pillow"] = pikepdf.__version__, PIL.__version__
    except ImportError:
        pass
    return info
