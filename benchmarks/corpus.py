"""A fixed-seed "municipal mix" for the throughput benchmark.

What a city hall's internet-side mailbox receives in a day, scaled down. The full mix has 37
files: PDF 11 (30 %), Office docx/xlsx/pptx 11 (30 %), photos and screenshots 8 (22 %),
Shift_JIS CSV 4 (11 %), ZIP 3 (8 %). `quick` keeps every family with 19 fewer and smaller files
(about 4 MB); `tiny` (the smoke test) one small file per family.

  family  what                                               full                   quick
  pdf     Japanese text PDFs (reportlab, CID font)          1,1,2,3,5,10,30,100 p  1,5,100 p
          scanned-style PDFs, one JPEG per page             3 and 10 pages         3 pages
          ~5,000 small objects (note annotations, 20 p)     1                      1
  docx    headings, tables, pictures, comments, ruby        1,2,5,10 pages         1,5 pages
  xlsx    formulas, chart, validation, formatting, rows     50,500,2000,5000 rows  100,2000 rows
  pptx    title/body, table, picture, chart, notes          3,6,12 slides          3,8 slides
  jpeg    phone photos with EXIF GPS + XMP, quality 90      2,5,8,12 MP            2,6 MP
  png     UI screenshots (flat colours, text)               1280x800 .. 1920x1080  2 of them
  csv     cp932 (Shift_JIS) resident lists                  100..20,000 rows       200,3000 rows
  zip     mixed members (pdf, docx, csv, png, jpeg)         3 archives             2 archives

Besides the mix, `xlsx_100k()` writes the 100,000-cell workbook of the openpyxl comparison.
Everything is generated with code from `random.Random(seed)`; same seed, same bytes
(up to library versions).
"""
from __future__ import annotations

import csv
import io
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

SEED = 20240401

SURNAMES = ["山田", "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "中村", "小林", "加藤", "吉田", "山本"]
GIVEN = ["太郎", "花子", "一郎", "美咲", "健太", "陽子", "翔", "さくら", "大輔", "直美"]
WARDS = ["中央区", "北区", "南区", "東区", "西区", "港区"]


@dataclass
class Item:
    path: Path
    family: str  # pdf | docx | xlsx | pptx | jpeg | png | csv | zip
    note: str

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def _photo(w: int, h: int, rnd: random.Random, grain: float):
    """samples.image_samples.photo with seeded sensor noise (Pillow's effect_noise is not seeded)."""
    from PIL import Image

    from samples.image_samples import photo

    im = photo(w, h, seed=rnd.randrange(1 << 30), grain=0.0)
    # Uniform noise over 86..170: about the spread (sigma ~24) of effect_noise(size, 24).
    noise = Image.merge("RGB", [Image.frombytes("L", (w, h), rnd.randbytes(w * h)).point(lambda v: 86 + v // 3)
                                for _ in range(3)])
    return Image.blend(im, noise, grain)


def _pdf_text(path: Path, pages: int) -> None:
    from samples.pdf_samples import japanese_pdf

    path.write_bytes(japanese_pdf(pages, lines=30))


def _pdf_scan(path: Path, pages: int, rnd: random.Random, tmp: Path) -> None:
    """A scanned-style PDF: one JPEG per page, like a multifunction printer makes."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=(595, 842), invariant=1)
    for p in range(pages):
        jp = tmp / f".scan{p}.jpg"
        _photo(1240, 1754, rnd, 0.05).convert("L").save(jp, "JPEG", quality=75)
        c.drawImage(ImageReader(str(jp)), 0, 0, 595, 842)
        c.showPage()
        jp.unlink()
    c.save()


def _pdf_many(path: Path, n: int) -> None:
    from samples.pdf_samples import many_objects_pdf

    path.write_bytes(many_objects_pdf(n))


def _jpeg(path: Path, mp: float, rnd: random.Random) -> None:
    from samples.image_samples import XMP, exif_gps

    w = int((mp * 1e6 * 4 / 3) ** 0.5)
    h = int(w * 3 / 4)
    _photo(w, h, rnd, 0.3).save(path, "JPEG", quality=90, exif=exif_gps(1), xmp=XMP)


def _png_screenshot(path: Path, w: int, h: int, rnd: random.Random) -> None:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (w, h), (240, 240, 240))
    d = ImageDraw.Draw(im)
    d.rectangle((0, 0, w, 32), fill=(40, 80, 150))
    d.rectangle((0, 32, 220, h), fill=(225, 228, 235))
    for _ in range(40):  # windows, buttons, table rows
        x, y = rnd.randrange(230, w - 200), rnd.randrange(40, h - 60)
        d.rectangle((x, y, x + rnd.randrange(60, 400), y + rnd.randrange(16, 120)),
                    fill=tuple(rnd.randrange(150, 256) for _ in range(3)), outline=(90, 90, 90))
    for y in range(50, h - 20, 18):
        d.text((12, y), f"menu item {y // 18}", fill=(20, 20, 20))
        d.text((250, y), f"申請番号 {rnd.randrange(10**6):06d}  受付済み" if y % 3 else "status OK", fill=(0, 0, 0))
    im.save(path, "PNG")


def _csv_sjis(path: Path, rows: int, rnd: random.Random) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["番号", "氏名", "住所", "生年月日", "世帯人数", "備考"])
    for i in range(rows):
        w.writerow([i + 1, rnd.choice(SURNAMES) + rnd.choice(GIVEN),
                    f"{rnd.choice(WARDS)}{rnd.randrange(1, 9)}丁目{rnd.randrange(1, 30)}-{rnd.randrange(1, 20)}",
                    f"{rnd.randrange(1940, 2020)}/{rnd.randrange(1, 13):02d}/{rnd.randrange(1, 29):02d}",
                    rnd.randrange(1, 7), rnd.choice(["", "転入", "転出予定", "要確認"])])
    path.write_bytes(buf.getvalue().encode("cp932"))


def _zip_mixed(path: Path, members: list[Path]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for i, m in enumerate(members):
            z.write(m, f"提出書類/{i + 1:02d}_{m.name}")


def build(out: Path, quick: bool = False, seed: int = SEED, tiny: bool = False) -> list[Item]:
    """Write the mix under `out` and return it (stable order). `tiny`: one small file per family (tests)."""
    from samples.office_samples import make_docx, make_pptx, make_xlsx

    rnd = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    items: list[Item] = []

    def add(family: str, name: str, note: str) -> Path:
        p = out / family / name
        p.parent.mkdir(parents=True, exist_ok=True)
        items.append(Item(p, family, note))
        return p

    def pick(full: list, short: list, one: list) -> list:
        return one if tiny else short if quick else full

    for pages in pick([1, 1, 2, 3, 5, 10, 30, 100], [1, 5, 100], [2]):
        _pdf_text(add("pdf", f"text_{pages:03d}p_{len(items)}.pdf", f"{pages} pages of text"), pages)
    for pages in pick([3, 10], [3], []):
        _pdf_scan(add("pdf", f"scan_{pages:02d}p.pdf", f"scan, {pages} pages"), pages, rnd, out)
    if not tiny:
        _pdf_many(add("pdf", "objects_5000.pdf", "~5,000 small objects"), 5000)

    for pages in pick([1, 2, 5, 10], [1, 5], [1]):
        make_docx(add("docx", f"notice_{pages:02d}p.docx", f"{pages} pages, pictures"), pages=pages,
                  pictures=min(pages, 3))
    for rows in pick([50, 500, 2000, 5000], [100, 2000], [20]):
        make_xlsx(add("xlsx", f"table_{rows:05d}.xlsx", f"{rows} rows x 10, chart"), rows=rows)
    for slides in pick([3, 6, 12], [3, 8], [3]):
        make_pptx(add("pptx", f"slides_{slides:02d}.pptx", f"{slides} slides, chart"), slides=slides)

    for mp in pick([2, 5, 8, 12], [2, 6], [0.3]):
        _jpeg(add("jpeg", f"photo_{mp:04.1f}mp.jpg", f"{mp} MP photo, EXIF GPS"), mp, rnd)
    for w, h in pick([(1280, 800), (1366, 768), (1600, 900), (1920, 1080)], [(1280, 800), (1920, 1080)],
                     [(640, 400)]):
        _png_screenshot(add("png", f"screen_{w}x{h}.png", f"{w}x{h} screenshot"), w, h, rnd)

    for rows in pick([100, 1000, 5000, 20000], [200, 3000], [50]):
        _csv_sjis(add("csv", f"residents_{rows:05d}.csv", f"{rows} rows, Shift_JIS"), rows, rnd)

    pool = [i.path for i in items if i.family != "jpeg" and i.size < 400_000]
    small_jpeg = out / ".member.jpg"
    _jpeg(small_jpeg, 0.1 if tiny else 0.5, rnd)
    for k in range(len(pick([1, 2, 3], [1, 2], [1]))):
        members = rnd.sample(pool, min(len(pool), 4 + k)) + [small_jpeg]
        _zip_mixed(add("zip", f"submission_{k + 1}.zip", f"{len(members)} mixed members"), members)
    small_jpeg.unlink()
    return items


def xlsx_100k(path: Path) -> Path:
    """10,000 rows x 10 columns on the second sheet: the openpyxl load+save comparison."""
    from samples.office_samples import make_xlsx

    return make_xlsx(path, rows=10_000)


def describe(items: list[Item]) -> list[dict]:
    """Per family: files and bytes, for the report."""
    fams: dict[str, dict] = {}
    for it in items:
        f = fams.setdefault(it.family, {"family": it.family, "files": 0, "bytes": 0})
        f["files"] += 1
        f["bytes"] += it.size
    return list(fams.values())
