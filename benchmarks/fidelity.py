"""Does a rebuilt document look like its original? Render both with LibreOffice and poppler, compare.

For each pair (original, rebuilt): page count, extracted text (difflib ratio after whitespace is
normalised) and per-page pixel similarity. Pixel similarity is strict: the share of "ink" pixels
(non-white in either page, at `dpi`) that are the same grey within a tolerance, so a blank margin
cannot make two different pages look alike. LibreOffice converts a whole batch in one call (it
costs about a second per call to start).

Used by tests/test_fidelity.py, tests/test_legacy_carry.py and by `python -m benchmarks --fidelity DIR`.
"""
from __future__ import annotations

import difflib
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

# What LibreOffice renders (others are skipped by the folder run).
RENDERABLE = {".doc", ".dot", ".xls", ".xlt", ".ppt", ".pot", ".docx", ".xlsx", ".pptx", ".docm", ".xlsm", ".pptm",
              ".odt", ".ods", ".odp", ".rtf", ".pdf"}
DPI = 60
_TOLERANCE = 48  # grey levels: anti-aliasing differences are not differences
_INK = 250


@dataclass
class Pair:
    name: str
    pages_original: int = 0
    pages_rebuilt: int = 0
    text: float = 0.0  # 0..1
    visual: float = 0.0  # 0..1, the worst page
    visual_pages: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def same_pages(self) -> bool:
        return self.pages_original == self.pages_rebuilt and self.pages_original > 0


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def to_pdf(files: list[Path], out_dir: Path, profile: Path, timeout: float = 600) -> dict[Path, Path]:
    """Convert `files` (distinct stems) to PDF in one LibreOffice call; the PDFs that came out. A PDF is
    its own rendering (poppler reads it directly)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    done = {f: f for f in files if f.suffix.lower() == ".pdf"}
    files = [f for f in files if f not in done]
    if files:
        subprocess.run([soffice() or "soffice", "--headless", "--norestore", "--nologo",
                        f"-env:UserInstallation={profile.resolve().as_uri()}", "--convert-to", "pdf",
                        "--outdir", str(out_dir), *map(str, files)],
                       capture_output=True, timeout=timeout, check=False)
    return done | {f: out_dir / f"{f.stem}.pdf" for f in files if (out_dir / f"{f.stem}.pdf").exists()}


def pdf_text(pdf: Path) -> str:
    proc = subprocess.run(["pdftotext", "-q", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, timeout=120)
    return proc.stdout.decode("utf-8", "replace")


def pdf_pages(pdf: Path, work: Path, dpi: int = DPI) -> list:
    from PIL import Image

    prefix = work / pdf.stem
    subprocess.run(["pdftoppm", "-q", "-gray", "-r", str(dpi), str(pdf), str(prefix)], capture_output=True,
                   timeout=300, check=False)
    files = sorted(work.glob(f"{pdf.stem}-*.pgm"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    pages = []
    for f in files:
        with Image.open(f) as im:
            pages.append(im.convert("L").copy())
        f.unlink()
    return pages


def page_similarity(a, b) -> float:
    """Share of ink pixels (dark in either page) that match within the tolerance; 0 when sizes differ."""
    from PIL import ImageChops

    if a.size != b.size:
        return 0.0
    ink = ImageChops.darker(a, b).point(lambda v: 255 if v < _INK else 0)
    total = ink.histogram()[255]
    if total == 0:
        return 1.0
    diff = ImageChops.difference(a, b).point(lambda v: 255 if v > _TOLERANCE else 0)
    bad = ImageChops.multiply(diff, ink).histogram()[255]
    return 1.0 - bad / total


def text_similarity(a: str, b: str) -> float:
    na, nb = (re.sub(r"\s+", " ", t).strip() for t in (a, b))
    if na == nb:
        return 1.0
    return difflib.SequenceMatcher(None, na[:200_000], nb[:200_000], autojunk=False).ratio()


def compare(pairs: list[tuple[str, Path, Path]], work: Path | None = None, dpi: int = DPI) -> list[Pair]:
    """Render every (name, original, rebuilt) and compare them; two LibreOffice calls in all."""
    own = work is None
    work = Path(tempfile.mkdtemp(prefix="cdr-fidelity-")) if own else work
    try:
        stage_a, stage_b = work / "a", work / "b"
        stage_a.mkdir(parents=True, exist_ok=True)
        stage_b.mkdir(parents=True, exist_ok=True)
        staged = []
        for i, (name, orig, new) in enumerate(pairs):
            a = stage_a / f"f{i:05d}{orig.suffix.lower()}"
            b = stage_b / f"f{i:05d}{new.suffix.lower()}"
            shutil.copyfile(orig, a)
            shutil.copyfile(new, b)
            staged.append((name, a, b))
        pdf_a = to_pdf([a for _n, a, _b in staged], work / "pdf-a", work / "profile")
        pdf_b = to_pdf([b for _n, _a, b in staged], work / "pdf-b", work / "profile")
        results = []
        for name, a, b in staged:
            if a not in pdf_a or b not in pdf_b:
                results.append(Pair(name, error="LibreOffice did not render "
                                    + ("the original" if a not in pdf_a else "the rebuilt file")))
                continue
            results.append(compare_pdfs(name, pdf_a[a], pdf_b[b], work / "img", dpi))
        return results
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def compare_pdfs(name: str, pdf_a: Path, pdf_b: Path, work: Path, dpi: int = DPI) -> Pair:
    """Pages, text and pixels of two renderings."""
    r = Pair(name)
    r.text = text_similarity(pdf_text(pdf_a), pdf_text(pdf_b))
    work.mkdir(parents=True, exist_ok=True)
    pa = pdf_pages(pdf_a, work, dpi)
    pb = pdf_pages(pdf_b, work, dpi)
    r.pages_original, r.pages_rebuilt = len(pa), len(pb)
    r.visual_pages = [round(page_similarity(x, y), 4) for x, y in zip(pa, pb, strict=False)]
    r.visual = min(r.visual_pages) if r.same_pages else 0.0
    return r


def table(results: list[Pair]) -> str:
    lines = [f"{'file':40} {'pages':>9} {'text':>6} {'visual':>7}  note"]
    for r in results:
        pages = f"{r.pages_original}/{r.pages_rebuilt}"
        lines.append(f"{r.name[:40]:40} {pages:>9} {r.text:6.3f} {r.visual:7.3f}  {r.error}")
    ok = [r for r in results if not r.error]
    if ok:
        lines.append(f"{'median':40} {'':>9} {_median([r.text for r in ok]):6.3f} {_median([r.visual for r in ok]):7.3f}")
    return "\n".join(lines)


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return (s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2) if s else 0.0


def run_folder(folder: Path, out_json: Path | None = None, policy: str | None = None) -> list[Pair]:
    """Sanitize every renderable document under `folder` with the real CLI, then compare each delivered
    file with its original. Prints a table; writes JSON when asked."""
    import sys

    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in RENDERABLE)
    with tempfile.TemporaryDirectory(prefix="cdr-fidelity-run-") as tmp:
        t = Path(tmp)
        report = t / "report.json"
        cmd = [sys.executable, "-m", "cdr.cli", "sanitize", *map(str, files), "-o", str(t / "out"),
               "--report", str(report)]
        if policy:
            cmd += ["--policy", policy]
        subprocess.run(cmd, capture_output=True, check=False)
        entries = json.loads(report.read_text("utf-8"))["files"] if report.exists() else []
        pairs, blocked = [], []
        for f, e in zip(files, entries, strict=False):
            if e.get("output"):
                pairs.append((str(f.relative_to(folder)), f, Path(e["output"])))
            else:
                blocked.append(Pair(str(f.relative_to(folder)), error=f"{e.get('verdict')}: {e.get('reason_en', '')}"))
        results = compare(pairs, t / "work") + blocked
    print(table(results))
    if out_json:
        out_json.write_text(json.dumps([asdict(r) for r in results], ensure_ascii=False, indent=2), "utf-8")
    return results
