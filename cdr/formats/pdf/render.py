"""PDF text extraction and page rendering (画像化), through poppler with limits.

pdftotext is fast and right for embedded fonts with ToUnicode. Without the
poppler-data package it cannot map the predefined Japanese CMaps of
non-embedded CID fonts (common in Japanese PDFs), and says so on stderr
("Missing language pack"); we then fall back to pdfminer.six, which ships
those CMaps. Rendering refuses the same case instead of delivering blank pages.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pikepdf
from pikepdf import Name

from ...errors import LimitExceeded, ToolMissing
from ...handler import Context
from .._tools import memory_cap, run_tool

_NO_CMAP = b"Missing language pack"
_CAP_SECONDS = 300.0


def _timeout(ctx: Context) -> float:
    left = ctx.deadline - time.monotonic()
    return max(1.0, min(left, _CAP_SECONDS))


def _run(ctx: Context, cmd: list[str]) -> subprocess.CompletedProcess:
    """Run a poppler tool with the job's remaining time and the worker's memory limit."""
    if shutil.which(cmd[0]) is None:
        raise ToolMissing(f"{cmd[0]} (poppler-utils) is not installed", f"{cmd[0]}（poppler-utils）がありません")
    try:
        return run_tool(cmd, _timeout(ctx), memory_cap(int(ctx.limits.worker_memory_mb) << 20), ctx.workdir)
    except OSError as exc:
        raise ToolMissing(f"{cmd[0]} could not be started ({exc.strerror or exc})",
                          f"{cmd[0]} を起動できませんでした") from None
    except subprocess.TimeoutExpired:
        raise LimitExceeded(f"{cmd[0]} did not finish in time", "処理時間の上限を超えました",
                            threat_id="file.timeout") from None


def _clean_copy(ctx: Context, rendered: Path) -> Path:
    """Where render = images keeps the rebuilt document behind the page images, for the text rendition.

    The workdir is private to one job and the pipeline asks text only of that job's output, so the
    rendered file's size (kept by the pipeline's move or copy) is identification enough: no hashing."""
    return ctx.workdir / f"pdf-clean.{rendered.stat().st_size}.pdf"


def extract_text(ctx: Context, path: Path) -> str:
    """Text page by page, pages separated by a form feed."""
    src = path
    if ctx.workdir is not None:
        cached = _clean_copy(ctx, path)
        if cached.exists():  # render = images: take the text from the rebuilt document behind the images
            src = cached
    proc = _run(ctx, ["pdftotext", "-enc", "UTF-8", "-eol", "unix", str(src), "-"])
    if proc.returncode == 0 and _NO_CMAP not in proc.stderr:
        return proc.stdout.decode("utf-8", "replace")
    return _pdfminer_text(ctx, src)


def _pdfminer_text(ctx: Context, path: Path) -> str:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTTextContainer

    pages = []
    for layout in extract_pages(str(path), laparams=LAParams()):
        ctx.check_time()
        pages.append("".join(el.get_text() for el in layout if isinstance(el, LTTextContainer)))
    return "".join(p + "\f" for p in pages)


def render_to_images(ctx: Context, pdf_path: Path, dpi: int) -> None:
    """Replace the PDF at `pdf_path` by one made of page images rendered by pdftoppm."""
    if not 20 <= dpi <= 600:
        raise LimitExceeded(f"render dpi {dpi} outside 20..600", "画像化の解像度が範囲外です")
    max_pixels = int(ctx.limits.max_pixels)
    sizes: list[tuple[float, float]] = []
    with pikepdf.open(pdf_path) as pdf:
        npages = len(pdf.pages)
        for i, page in enumerate(pdf.pages, 1):
            box = [float(x) for x in page.cropbox]
            pw, ph = abs(box[2] - box[0]), abs(box[3] - box[1])
            if int(page.obj.get("/Rotate", 0)) % 180:
                pw, ph = ph, pw  # pdftoppm renders the page as displayed
            sizes.append((pw, ph))
            w, h = pw * dpi / 72, ph * dpi / 72
            if w * h > max_pixels:
                raise LimitExceeded(f"page {i} would render to {int(w)}x{int(h)} pixels, over the policy limit",
                                    f"{i}ページ目の画像化後の画素数が上限を超えます", threat_id="pdf.bomb")
    outdir = ctx.workdir / "pdf-render"
    outdir.mkdir(parents=True, exist_ok=True)
    proc = _run(ctx, ["pdftoppm", "-r", str(dpi), "-jpeg", "-jpegopt", "quality=85", str(pdf_path),
                      str(outdir / "p")])
    if _NO_CMAP in proc.stderr:
        raise ToolMissing("rendering would drop Japanese text set in non-embedded fonts (install poppler-data)",
                          "埋め込まれていない日本語フォントを画像化できません（poppler-data が必要です）")
    if proc.returncode != 0:
        raise ToolMissing(f"pdftoppm failed: {proc.stderr.decode('utf-8', 'replace')[-200:]}",
                          "ページの画像化に失敗しました")
    images = sorted(outdir.glob("p-*.jpg"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    if len(images) != npages:
        raise ToolMissing(f"pdftoppm rendered {len(images)} of {npages} pages", "一部のページを画像化できませんでした")
    from PIL import Image

    new = pikepdf.new()
    for img_path, (pw, ph) in zip(images, sizes, strict=True):
        ctx.check_time()
        with Image.open(img_path) as im:
            width, height, mode = im.width, im.height, im.mode
        data = img_path.read_bytes()
        img = pikepdf.Stream(new, data)
        img.Type, img.Subtype, img.Filter = Name.XObject, Name.Image, Name.DCTDecode
        img.Width, img.Height, img.BitsPerComponent = width, height, 8
        img.ColorSpace = Name.DeviceGray if mode == "L" else Name.DeviceCMYK if mode == "CMYK" else Name.DeviceRGB
        content = new.make_stream(f"q {pw:.4f} 0 0 {ph:.4f} 0 0 cm /Im0 Do Q".encode())
        page = pikepdf.Dictionary(Type=Name.Page, MediaBox=[0, 0, pw, ph], Contents=content,
                                  Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=img)))
        new.pages.append(pikepdf.Page(page))
    tmp = pdf_path.with_name(pdf_path.name + ".img")
    new.save(tmp)
    os.replace(pdf_path, _clean_copy(ctx, tmp))  # moved, not copied: the images take its place
    os.replace(tmp, pdf_path)
