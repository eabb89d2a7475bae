"""RTF shapes and pictures by allow-list: shape property names from the specification's list, picture data
that is hex (or one \\binN) and an image of the type the picture names, nothing after the image's end."""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from cdr.pipeline import inspect as inspect_file
from cdr.pipeline import process

HEAD = rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\froman Times New Roman;}}\f0 Antrag\par "


def _img(fmt: str, rebuilt: bool = True) -> bytes:
    """A picture; `rebuilt`: a PNG as the rebuild writes one (png_write), which rewriting leaves byte for
    byte (Pillow's JPEG already is: libjpeg with the standard tables)."""
    im = Image.new("RGB", (24, 16), (30, 90, 200))
    if fmt == "PNG" and rebuilt:
        from cdr.formats.image import png_write

        return png_write.encode(im)
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def _pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as im:
        return im.tobytes()


def _pict(data: bytes | str, kind: bytes = rb"\pngblip", extra: bytes = b"") -> bytes:
    hexdata = data.hex().encode() if isinstance(data, bytes) else data.encode()
    lines = b"\r\n".join(hexdata[i:i + 128] for i in range(0, len(hexdata), 128))
    return (rb"{\*\shppict{\pict{\*\picprop\shplid1025{\sp{\sn shapeType}{\sv 75}}{\sp{\sn fFlipH}{\sv 0}}}"
            rb"\picw635\pich423\picwgoal360\pichgoal240" + kind + rb"\bliptag-1146239000"
            rb"{\*\blipuid bbad7ee8f1c4d9a1f0e1d2c3b4a59687}" + extra + b"\r\n" + lines + b"}}")


def _run(tmp_path: Path, policy, body: bytes):
    src = tmp_path / "f.rtf"
    src.write_bytes(HEAD + body + rb"\par}")
    r = process(src, "f.rtf", tmp_path / "out", policy)
    assert r.verdict in ("clean", "sanitized"), (r.reason, r.threats)
    out = Path(r.output).read_bytes()
    assert inspect_file(r.output, "f.rtf", policy)["threats"] == []  # the output inspects clean
    return r, out


SHAPE = (rb"{\shp{\*\shpinst\shpleft0\shptop0\shpright2000\shpbottom1000\shpfhdr0\shpbxcolumn\shpbypara"
         rb"\shpwr3\shpwrk0\shpfblwtxt0\shpz0\shplid2049"
         rb"{\sp{\sn shapeType}{\sv 1}}{\sp{\sn fillColor}{\sv 16777215}}{\sp{\sn lineWidth}{\sv 12700}}"
         rb"{\sp{\sn posh}{\sv 0}}{\sp{\sn posrelh}{\sv 3}}{\sp{\sn fLayoutInCell}{\sv 1}}"
         rb"{\sp{\sn wzName}{\sv Rechteck 1}}{\sp{\sn fBehindDocument}{\sv 0}}")


def test_unknown_shape_property_is_dropped_known_ones_kept_byte_for_byte(default_policy, tmp_path):
    body = SHAPE + rb"{\sp{\sn metroBlob}{\sv 504b0304deadbeef}}{\sp{\sn xyzzyPayload}{\sv cmd.exe /c calc}}}}"
    r, out = _run(tmp_path, default_policy, body)
    assert b"metroBlob" not in out and b"504b0304" not in out and b"xyzzyPayload" not in out
    assert out == HEAD + SHAPE + rb"}}\par}"  # every known property where it was, as it was
    unknown = [t for t in r.threats if t.id == "rtf.unknown_control"]
    assert len(unknown) == 1 and "\\sp metroBlob (1)" in unknown[0].detail, r.threats


def test_shape_property_names_compare_exactly(default_policy, tmp_path):
    body = SHAPE + rb"{\sp{\sn FILLCOLOR}{\sv 255}}}}"
    r, out = _run(tmp_path, default_policy, body)
    assert b"FILLCOLOR" not in out and b"fillColor" in out


def test_remote_linked_picture_keeps_its_own_threat(default_policy, tmp_path):
    body = SHAPE + rb"{\sp{\sn pibName}{\sv http://203.0.113.9/a.png}}}}"
    r, out = _run(tmp_path, default_policy, body)
    assert b"203.0.113.9" not in out
    assert "rtf.remote_template" in {t.id for t in r.threats}


@pytest.mark.parametrize("fmt, kind", [("PNG", rb"\pngblip"), ("JPEG", rb"\jpegblip"), ("BMP", rb"\dibitmap0")])
def test_pictures_of_their_type_are_kept_byte_for_byte(default_policy, tmp_path, fmt, kind):
    data = _img(fmt)
    if fmt == "BMP":
        data = data[14:]  # \dibitmap holds the bitmap without its file header
    body = _pict(data, kind)
    r, out = _run(tmp_path, default_policy, body)
    assert out == HEAD + body + rb"\par}"
    assert not {t.id for t in r.threats} & {"rtf.picture", "rtf.hidden_data", "rtf.unknown_control"}


@pytest.mark.parametrize("hexed", [True, False])
def test_a_picture_from_elsewhere_is_written_anew(default_policy, tmp_path, hexed):
    """A PNG the rebuild did not write (Pillow's, with a text chunk) is written anew by the image family:
    same pixels, no chunk of the sender's; the group around it stays."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "sender's note")
    buf = io.BytesIO()
    Image.new("RGB", (24, 16), (30, 90, 200)).save(buf, "PNG", pnginfo=info)
    img = buf.getvalue()
    body = _pict(img) if hexed else rb"{\pict\pngblip\picw24\pich16\bin" + str(len(img)).encode() + b" " + img + b"}"
    r, out = _run(tmp_path, default_policy, body)
    assert r.verdict == "clean", r.threats
    if hexed:
        data = bytes.fromhex(re.search(rb"\}\r\n([0-9a-f\r\n]+)\}\}", out).group(1).replace(b"\r\n", b"").decode())
        assert out.startswith(HEAD + body[:body.index(b"}\r\n") + 1])  # the group up to the data as it was
    else:
        m = re.search(rb"\\bin(\d+) ", out)
        data = out[m.end():m.end() + int(m.group(1))]
    assert data != img and b"Comment" not in data and _pixels(data) == _pixels(img)


def _payload_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("run.vbs", 'CreateObject("WScript.Shell").Run "calc"')
    return buf.getvalue()


@pytest.mark.parametrize("body, why", [
    (_pict(_img("PNG").hex()[:40] + "zz" + _img("PNG").hex()[40:]), "not hex"),
    (_pict(_img("PNG")).replace(b"\r\n", rb"\'41", 1), "not hex"),
    (_pict(_payload_zip()), "PNG picture whose data is not a PNG"),
    (_pict(b"MZ\x90\x00" + bytes(60) + b"PE\x00\x00" + bytes(200)), "PNG picture whose data is not a PNG"),
    (_pict(_payload_zip(), rb"\jpegblip"), "JPEG picture whose data is not a JPEG"),
    (_pict(_img("PNG"), rb"\emfblip"), "EMF picture whose data is not an EMF"),
    (_pict(_img("PNG"), b""), "without a known type"),
    (_pict(_img("PNG"), rb"\pngblip\jpegblip"), "more than one type"),
    (_pict(_img("PNG")[:-12]), "without its end"),
])
def test_picture_data_that_is_not_what_it_says_is_dropped(default_policy, tmp_path, body, why):
    r, out = _run(tmp_path, default_policy, body)
    assert rb"\pict" not in out and b"504b0304" not in out and b"4d5a9000" not in out
    pics = [t for t in r.threats if t.id == "rtf.picture"]
    assert len(pics) == 1 and pics[0].action == "removed" and why in pics[0].detail, r.threats
    assert b"Antrag" in out


@pytest.mark.parametrize("fmt, kind", [("PNG", rb"\pngblip"), ("JPEG", rb"\jpegblip")])
def test_data_appended_to_a_picture_is_cut(default_policy, tmp_path, fmt, kind):
    img = _img(fmt)
    r, out = _run(tmp_path, default_policy, _pict(img + _payload_zip(), kind))
    assert b"504b0304" not in out
    hexdata = re.search(rb"\}\r\n([0-9a-f\r\n]+)\}\}", out).group(1)
    assert bytes.fromhex(hexdata.replace(b"\r\n", b"").decode()) == img  # the picture itself intact
    hidden = [t for t in r.threats if t.id == "rtf.hidden_data"]
    assert len(hidden) == 1 and f"{len(_payload_zip())} bytes after the end" in hidden[0].detail


def test_bin_picture_checked_and_cut_like_hex(default_policy, tmp_path):
    img = _img("PNG")
    data = img + b"hidden-tail"
    body = rb"{\pict\pngblip\picw24\pich16\bin" + str(len(data)).encode() + b" " + data + b"}"
    r, out = _run(tmp_path, default_policy, body)
    assert rb"\bin" + str(len(img)).encode() + b" " + img + b"}" in out and b"hidden-tail" not in out
    assert "rtf.hidden_data" in {t.id for t in r.threats}
    nested = rb"{\pict\pngblip{\*\picprop{\sp{\sn wzName}{\sv \bin6 hidden}}}" + img.hex().encode() + b"}"
    r, out = _run(tmp_path, default_policy, nested)  # \bin data only in the picture group itself
    assert b"hidden" not in out and img.hex().encode() in out
    bad = rb"{\pict\pngblip\bin4 MZ\x90\x00}"
    r, out = _run(tmp_path, default_policy, bad)
    assert b"MZ" not in out and "rtf.picture" in {t.id for t in r.threats}


def test_benign_samples_keep_their_pictures(corpus, default_policy, tmp_path):
    base, _ = corpus("rtf")
    for src in sorted((base / "rtf" / "benign").glob("*.rtf")):
        r = process(src, src.name, tmp_path / "out" / src.stem, default_policy)
        ids = {t.id for t in r.threats}
        assert not ids & {"rtf.picture", "rtf.hidden_data"}, (src.name, r.threats)
        assert src.read_bytes().count(rb"\pict") == Path(r.output).read_bytes().count(rb"\pict")
