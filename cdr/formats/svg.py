"""SVG: sanitized XML (default) or a PNG rendering of the sanitized drawing.

Parsed with a safe lxml parser (no entity expansion, no DTD, no network). Kept: SVG-namespace
drawing elements on an allowlist, their presentation attributes, in-document '#id' references,
and data:image/(png|jpeg|gif|webp) pictures, which are re-encoded through the image handler.
Dropped: script, foreignObject and HTML, event attributes, external and javascript: references,
<use>/<image> pointing outside, animations that set href or handlers, CSS @import/url()/expression,
DOCTYPE and entities, processing instructions, comments and editor-private namespaces.
"""
from __future__ import annotations

import base64
import binascii
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from ..errors import LimitExceeded, Malformed, ToolMissing
from ..handler import Context, Handler, Rebuilt, register
from ..model import Detection, Threat
from ._catalog import OPTIONS
from ._tools import memory_cap, run_tool, tool_env
from ._xml import SAFE_OPTIONS, logged_error, remove_keep_tail

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XHTML_NS = "http://www.w3.org/1999/xhtml"
XINCLUDE_NS = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")
EVENTS_NS = "http://www.w3.org/2001/xml-events"

_ALLOWED = {
    "svg", "g", "defs", "desc", "title", "metadata", "symbol", "use", "image", "switch", "a", "view",
    "path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "text", "tspan", "textPath", "tref",
    "linearGradient", "radialGradient", "stop", "pattern", "clipPath", "mask", "marker", "style",
    "filter", "feBlend", "feColorMatrix", "feComponentTransfer", "feComposite", "feConvolveMatrix",
    "feDiffuseLighting", "feDisplacementMap", "feDistantLight", "feDropShadow", "feFlood", "feFuncA",
    "feFuncB", "feFuncG", "feFuncR", "feGaussianBlur", "feImage", "feMerge", "feMergeNode", "feMorphology",
    "feOffset", "fePointLight", "feSpecularLighting", "feSpotLight", "feTile", "feTurbulence",
    "animate", "animateMotion", "animateTransform", "animateColor", "set", "mpath",
    "font", "font-face", "font-face-name", "font-face-src", "glyph", "missing-glyph", "hkern", "vkern",
    "altGlyph", "altGlyphDef", "altGlyphItem", "glyphRef", "solidcolor", "hatch", "hatchpath",
    "meshgradient", "meshrow", "meshpatch",
}
# Attributes an element may keep (no namespace; xlink:href and xml:space/lang are judged apart): SVG 1.1
# and SVG 2 geometry, presentation, gradient, filter, animation and font attributes, plus accessibility.
# Anything else (data-*, editor leftovers, attributes of other vocabularies) is dropped without a finding.
_ATTRS = frozenset("""
id class style lang tabindex role title transform viewBox preserveAspectRatio x y width height rx ry cx cy r fr
x1 y1 x2 y2 fx fy points d pathLength dx dy rotate textLength lengthAdjust startOffset method spacing side href
version baseProfile zoomAndPan requiredFeatures requiredExtensions systemLanguage target
gradientUnits gradientTransform spreadMethod offset patternUnits patternContentUnits patternTransform
clipPathUnits maskUnits maskContentUnits markerUnits markerWidth markerHeight refX refY orient
filterUnits primitiveUnits in in2 result mode type values tableValues slope intercept amplitude exponent
operator k1 k2 k3 k4 order kernelMatrix divisor bias targetX targetY edgeMode kernelUnitLength preserveAlpha
surfaceScale diffuseConstant specularConstant specularExponent limitingConeAngle pointsAtX pointsAtY pointsAtZ
azimuth elevation z scale xChannelSelector yChannelSelector stdDeviation radius baseFrequency numOctaves seed
stitchTiles dur begin end repeatCount repeatDur fill restart calcMode keyTimes keySplines keyPoints from to by
attributeName attributeType additive accumulate path min max
font-family font-size font-style font-variant font-weight font-stretch font-size-adjust unicode-range
units-per-em panose-1 stemv stemh cap-height x-height accent-height ascent descent widths bbox ideographic
alphabetic mathematical hanging v-ideographic v-alphabetic v-mathematical v-hanging underline-position
underline-thickness strikethrough-position strikethrough-thickness overline-position overline-thickness
horiz-adv-x horiz-origin-x horiz-origin-y vert-adv-y vert-origin-x vert-origin-y unicode glyph-name
orientation arabic-form g1 g2 u1 u2 k format glyphRef
alignment-baseline baseline-shift clip clip-path clip-rule color color-interpolation
color-interpolation-filters color-profile color-rendering cursor direction display dominant-baseline
enable-background fill-opacity fill-rule filter flood-color flood-opacity font glyph-orientation-horizontal
glyph-orientation-vertical image-rendering kerning letter-spacing lighting-color marker marker-start
marker-mid marker-end mask mask-type opacity overflow pointer-events shape-rendering stop-color stop-opacity
stroke stroke-dasharray stroke-dashoffset stroke-linecap stroke-linejoin stroke-miterlimit stroke-opacity
stroke-width text-anchor text-decoration text-rendering unicode-bidi visibility word-spacing writing-mode
mix-blend-mode isolation paint-order vector-effect transform-origin white-space inline-size solid-color
solid-opacity hatchContentUnits hatchUnits pitch media
""".split())

# Elements whose only purpose is the resource they point at: without a safe href they go.
_NEEDS_HREF = {"use", "image", "feImage", "tref", "textPath", "mpath", "altGlyph", "glyphRef"}
_ANIMATION = {"animate", "animateMotion", "animateTransform", "animateColor", "set"}
_SCRIPTY = {"script", "handler", "listener"}
_FOREIGN = {"foreignObject", "iframe", "embed", "object", "frame", "frameset", "applet", "video", "audio",
            "canvas", "animation", "html", "body"}
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|jpg|gif|webp);base64,(.*)$", re.S | re.I)
_IMAGE_MIME = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "gif": "image/gif",
               "webp": "image/webp"}
MAX_DATA_IMAGE = 32 << 20


def _parser(resolve: bool | str = False) -> etree.XMLParser:
    return etree.XMLParser(**{**SAFE_OPTIONS, "resolve_entities": resolve}, remove_comments=True,
                           remove_blank_text=False)


def _local(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


# ---------------------------------------------------------------- CSS

_CSS_COMMENT = re.compile(r"/\*.*?(\*/|$)", re.S)
_CSS_HEX = re.compile(r"\\([0-9a-fA-F]{1,6})[ \t\r\n\f]?")
_CSS_ESC = re.compile(r"\\(.)", re.S)
_CSS_IMPORT = re.compile(r"@import\b[^;{}]*;?", re.I)
_CSS_URL = re.compile(r"url\(\s*(?:\"([^\"]*)\"|'([^']*)'|([^)]*?))\s*\)", re.I)
_CSS_URLISH_STRING = re.compile(r"([\"'])\s*((?:[a-z][a-z0-9+.\-]*:)?//|javascript:|vbscript:|data:)[^\"']*\1",
                                re.I)
_CSS_EXPRESSION = re.compile(r"expression\s*\(", re.I)
_CSS_BINDING = re.compile(r"(-moz-binding|behavior)\s*:", re.I)
_CSS_JS = re.compile(r"(javascript|vbscript)\s*:", re.I)


def _css_unescape(text: str) -> str:
    def hexrep(m: re.Match) -> str:
        cp = int(m.group(1), 16)
        return chr(cp) if 0 < cp <= 0x10FFFF and not 0xD800 <= cp <= 0xDFFF else "\ufffd"

    return _CSS_ESC.sub(r"\1", _CSS_HEX.sub(hexrep, text))


def clean_css(css: str) -> tuple[str, list[tuple[str, str]]]:
    """Neutralise what CSS can fetch or run; returns (css, [(threat id, what)]).

    Untouched when nothing is found (keeps escapes and comments as the author wrote them).
    """
    t = _CSS_COMMENT.sub(" ", css)
    if "\\" in t:  # escapes can spell url( or @import: judge the decoded text
        t = _css_unescape(t)
    found: list[tuple[str, str]] = []
    replaced = [0]

    def url(m: re.Match) -> str:
        target = next(g for g in m.groups() if g is not None)
        v = re.sub(r"[\x00-\x20]", "", target).lower()
        if v.startswith("#"):
            return m.group(0)
        replaced[0] += 1
        if v.startswith(("javascript:", "vbscript:")):
            found.append(("svg.script", "javascript: URL in CSS"))
        else:
            found.append(("svg.external_ref", f"CSS url({target[:60]})"))
        return "none"

    if _CSS_IMPORT.search(t):
        found.append(("svg.external_ref", "CSS @import"))
        t = _CSS_IMPORT.sub("", t)
    t = _CSS_URL.sub(url, t)

    def urlish(m: re.Match) -> str:
        found.append(("svg.external_ref", f"URL string in CSS {m.group(0)[:60]}"))
        return '""'

    t = _CSS_URLISH_STRING.sub(urlish, t)
    if _CSS_EXPRESSION.search(t):
        found.append(("svg.script", "CSS expression()"))
        t = _CSS_EXPRESSION.sub("invalid(", t)
    if _CSS_BINDING.search(t):
        found.append(("svg.script", "CSS behavior/-moz-binding"))
        t = _CSS_BINDING.sub("x-removed:", t)
    if _CSS_JS.search(t):
        found.append(("svg.script", "javascript: in CSS"))
        t = _CSS_JS.sub("removed:", t)
    # Last check on what a browser may still read as an address: a url( left unclosed at the end, or one
    # whose "/*" the comment stripping above took for a comment. Nothing isolated: drop it all.
    raw = _css_unescape(css) if "\\" in css else css
    if _fetches(t) or _fetches(raw) > replaced[0]:
        found.append(("svg.external_ref", "CSS address that could not be isolated"))
        return "", found
    return (t, found) if found else (css, [])


_URL_OPEN = re.compile(r"(?<![a-z0-9_-])(?:url|image|image-set|src)\s*\(\s*[\"']?\s*(.?)", re.I)


def _fetches(css: str) -> int:
    """How many url(), image(), image-set() or src() have a target that is not a fragment of this document."""
    return sum(1 for m in _URL_OPEN.finditer(css) if m.group(1) != "#")


# ---------------------------------------------------------------- the walk

@dataclass
class _Walk:
    ctx: Context
    rebuild: bool  # False: only report (inspect)
    keep_links: bool
    threats: list[Threat] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)
    images: int = 0

    def hit(self, tid: str, where: str, detail: str = "") -> None:
        key = (tid, where)
        if key not in self.seen:  # one line per kind and place, not per occurrence
            self.seen.add(key)
            self.threats.append(Threat(tid, where, "removed" if self.rebuild else "found", detail))


def _href_verdict(w: _Walk, el_local: str, value: str, where: str) -> tuple[bool, str | None]:
    """(keep?, replacement value). Reports what it refuses."""
    v = re.sub(r"[\x00-\x20]", "", value).lower()
    if v == "" or v.startswith("#"):
        return True, None
    if v.startswith(("javascript:", "vbscript:", "livescript:")):
        w.hit("svg.script", where, "javascript: URL")
        return False, None
    if v.startswith("data:"):
        m = _DATA_IMAGE.match(value.strip())
        if m and el_local in ("image", "feImage"):
            return _data_image(w, _IMAGE_MIME[m.group(1).lower()], m.group(2), where)
        w.hit("svg.external_ref", where, "data: URL")
        return False, None
    if el_local == "a" and w.keep_links and v.startswith(("http://", "https://", "mailto:")):
        return True, None
    w.hit("svg.external_ref", where, value[:120])
    return False, None


def _data_image(w: _Walk, mime: str, b64: str, where: str) -> tuple[bool, str | None]:
    from .image import _findings, rebuild_bytes

    try:
        raw = base64.b64decode(re.sub(r"\s+", "", b64), validate=True)
    except (binascii.Error, ValueError):
        w.hit("svg.external_ref", where, "malformed data: image")
        return False, None
    if len(raw) > MAX_DATA_IMAGE:
        w.hit("svg.external_ref", where, "embedded image too large")
        return False, None
    w.images += 1
    try:
        if not w.rebuild:
            for f in _findings(raw, mime, "srgb", int(w.ctx.limits.max_pixels)):
                w.hit(f.id, f"{where}: {f.location}", f.detail)
            return True, None
        out, found = rebuild_bytes(w.ctx, raw, mime)
    except LimitExceeded:
        raise
    except Exception as exc:  # a damaged embedded picture goes, the drawing stays
        w.hit("svg.external_ref", where, f"embedded image unreadable ({type(exc).__name__})")
        return False, None
    for t in found:
        w.hit(t.id, f"{where}: {t.location}", t.detail)
    return True, f"data:{mime};base64," + base64.b64encode(out).decode("ascii")


def _walk(w: _Walk, root: etree._Element, svg_ns: str | None) -> None:
    dropped: set[etree._Element] = set()
    for el in list(root.iter()):
        w.ctx.check_time()
        if any(a in dropped for a in el.iterancestors()):
            continue  # inside something already dropped
        if el.getparent() is None and el is not root:
            continue
        dropped.add(el)  # removed again below unless the element is kept
        tag = el.tag
        if tag is etree.Entity:
            w.hit("svg.entity", "entity reference", f"&{el.name};")
            remove_keep_tail(el)
            continue
        if tag is etree.PI or tag is etree.Comment:
            remove_keep_tail(el)
            continue
        ns, local = _local(tag)
        where = f"<{local}>"
        el_id = el.get("id")
        if el_id:
            where = f"<{local} id={el_id[:40]}>"
        if ns in XINCLUDE_NS:
            w.hit("svg.external_ref", "<xi:include>")
            remove_keep_tail(el)
            continue
        if ns == EVENTS_NS:
            w.hit("svg.event_handler", f"<ev:{local}>")
            remove_keep_tail(el)
            continue
        if ns == XHTML_NS or ns == svg_ns or ns is None:
            if local in _SCRIPTY:
                w.hit("svg.script", "<script>" if local == "script" else where)
                remove_keep_tail(el)
                continue
            if local in _FOREIGN or ns == XHTML_NS:
                w.hit("svg.foreign_object", where)
                remove_keep_tail(el)
                continue
        if ns != svg_ns or local not in _ALLOWED:
            remove_keep_tail(el)  # editor data (inkscape, sodipodi, RDF) and unknown elements: inert, not reported
            continue
        if local in _ANIMATION:
            target = re.sub(r"\s", "", el.get("attributeName", "")).lower()
            vals = " ".join(el.get(a, "") for a in ("values", "from", "to", "by"))
            prefix, _, name = target.rpartition(":")
            # Any prefix bound to xlink names the same attribute as "xlink:href".
            xlink = prefix and (prefix == "xlink" or el.nsmap.get(prefix) == XLINK_NS
                                or any(p and p.lower() == prefix and u == XLINK_NS for p, u in el.nsmap.items()))
            if target == "href" or (xlink and name == "href") or name.startswith("on"):
                js = re.search(r"(?i)(javascript|vbscript)\s*:", re.sub(r"[\x00-\x20]", "", vals))
                w.hit("svg.script" if js else "svg.external_ref", where, f"animates {target}")
                remove_keep_tail(el)
                continue
        if not _attributes(w, el, local, where):
            remove_keep_tail(el)
            continue
        dropped.discard(el)
        if local == "style":
            css = "".join(el.itertext())
            new, found = clean_css(css)
            for tid, what in found:
                w.hit(tid, "<style>", what)
            if found and w.rebuild:
                for child in list(el):
                    el.remove(child)
                el.text = new


def _attributes(w: _Walk, el: etree._Element, local: str, where: str) -> bool:
    """Clean the attributes of `el`; False when the element must go."""
    for name in list(el.attrib):
        value = el.attrib[name]
        if w.rebuild:
            el.attrib[name] = value  # plain text: drops entity nodes libxml2 keeps inside attributes
        ns, attr = _local(name)
        if ns == EVENTS_NS or (ns is None and attr.lower().startswith("on")):
            w.hit("svg.event_handler", where, f"{attr}=")
            del el.attrib[name]
            continue
        if ns == XML_NS:
            if attr == "base":
                del el.attrib[name]
            continue
        if ns not in (None, XLINK_NS):
            del el.attrib[name]  # editor-private attributes
            continue
        if attr == "href":
            keep, repl = _href_verdict(w, local, value, where)
            if not keep:
                if local in _NEEDS_HREF:
                    return False
                del el.attrib[name]
            elif repl is not None and w.rebuild:
                el.attrib[name] = repl
            continue
        if ns == XLINK_NS:
            if attr not in ("type", "title", "show", "actuate", "role", "arcrole"):
                del el.attrib[name]
            continue
        if attr not in _ATTRS and not attr.startswith("aria-"):
            del el.attrib[name]  # not an SVG attribute: dropped, as unknown elements are
            continue
        if attr == "style" or "url(" in value.lower() or "\\" in value:
            new, found = clean_css(value)
            for tid, what in found:
                w.hit(tid, where, f"{attr}: {what}")
            if found:
                el.attrib[name] = new
        elif attr in ("src", "formaction", "action") or "javascript:" in re.sub(r"[\x00-\x20]", "",
                                                                               value).lower():
            w.hit("svg.script" if "javascript" in value.lower() else "svg.external_ref", where, attr)
            del el.attrib[name]
    return True


def _parse(data: bytes) -> tuple[etree._Element, list[Threat]]:
    try:
        parser = _parser()
        root = etree.fromstring(data, parser)
        found: list[Threat] = []
        dtd = root.getroottree().docinfo.internalDTD
        ents = list(dtd.iterentities()) if dtd is not None else []
        if ents:
            ext = [e.name for e in ents if e.system_url]
            if not ext:
                # Text-only internal entities (Illustrator's &ns_svg;): expand them, libxml2 caps amplification.
                parser = _parser(resolve="internal")
                root = etree.fromstring(data, parser)
            found.append(Threat("svg.entity", "DOCTYPE", "found",
                                f"{len(ents)} entity declarations"
                                + (f", external: {ext[:5]}" if ext else " (internal, expanded)")))
        err = logged_error(parser)
        if err:
            raise etree.XMLSyntaxError(err, 0, 0, 0)
    except etree.XMLSyntaxError as exc:
        msg = str(exc)
        if "entity" in msg.lower() or "amplification" in msg.lower():
            raise Malformed(f"the SVG declares entities that expand explosively ({msg})"[:200],
                            "SVG に危険なエンティティ定義（展開爆弾）が含まれています", threat_id="svg.entity") from None
        raise Malformed(f"the SVG is not well-formed XML ({msg})"[:200],
                        "SVG ファイルの XML が壊れています") from None
    for sib in root.itersiblings(preceding=True):
        if sib.tag is etree.PI and sib.target == "xml-stylesheet":
            found.append(Threat("svg.external_ref", "<?xml-stylesheet?>", "found", sib.text or ""))
    return root, found


def _svg_ns(root: etree._Element) -> str | None:
    ns, local = _local(root.tag) if isinstance(root.tag, str) else (None, "")
    if local != "svg" or ns not in (SVG_NS, None):
        raise Malformed("the file is not an SVG drawing (root element is not <svg>)",
                        "SVG 形式ではありません（ルート要素が <svg> ではありません）")
    return ns


_MAX_USE_EXPANSION = 1_000_000  # a big map with thousands of reused symbols stays well below


def _use_expansion(root: etree._Element) -> int:
    """How many elements a viewer draws once every <use> is expanded (4^10 from 40 <use> freezes it)."""
    ids = {el.get("id"): el for el in root.iter() if isinstance(el.tag, str) and el.get("id")}
    memo: dict[int, int] = {}

    def size(el: etree._Element, depth: int) -> int:
        key = id(el)
        if key in memo:
            return memo[key]
        if depth > 64:  # a chain this deep is a bomb whatever it expands to
            return _MAX_USE_EXPANSION + 1
        memo[key] = _MAX_USE_EXPANSION + 1  # a cycle counts as too big
        n = 0
        for sub in el.iter():
            if not isinstance(sub.tag, str):
                continue
            n += 1
            if etree.QName(sub).localname == "use":
                ref = sub.get("href") or sub.get(f"{{{XLINK_NS}}}href") or ""
                target = ids.get(ref[1:]) if ref.startswith("#") else None
                if target is not None:
                    n += size(target, depth + 1)
            if n > _MAX_USE_EXPANSION:
                break
        memo[key] = n
        return n

    return size(root, 0)


def sanitize_svg(ctx: Context, data: bytes, rebuild: bool) -> tuple[bytes | None, list[Threat]]:
    root, threats = _parse(data)
    ns = _svg_ns(root)
    w = _Walk(ctx, rebuild, bool(ctx.options.get("keep_hyperlinks", False)))
    _walk(w, root, ns)
    threats += w.threats
    if _use_expansion(root) > _MAX_USE_EXPANSION:
        raise LimitExceeded("the drawing repeats itself through <use> beyond what a viewer can draw",
                            "SVG の要素の参照（use）が多重に展開され、表示できない規模になります", threat_id="file.limit")
    if rebuild:
        for t in threats:
            t.action = "removed"
        out = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        return out, threats
    return None, threats


# ---------------------------------------------------------------- rasterising

_UNITS = {"": 1.0, "px": 1.0, "pt": 96 / 72, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}


def _length(v: str | None) -> float | None:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([a-z]*)\s*", v or "", re.I)
    if not m or m.group(2).lower() not in _UNITS:
        return None
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


def _raster_size(root: etree._Element) -> tuple[float, float]:
    w, h = _length(root.get("width")), _length(root.get("height"))
    vb = re.split(r"[\s,]+", (root.get("viewBox") or "").strip())
    vbw = vbh = None
    if len(vb) == 4:
        try:
            vbw, vbh = float(vb[2]), float(vb[3])
        except ValueError:
            pass
    if w is None and h is None and vbw and vbh:
        return vbw, vbh
    if w is None and h is not None and vbw and vbh:
        return h * vbw / vbh, h
    if h is None and w is not None and vbw and vbh:
        return w, w * vbh / vbw
    return w or 300.0, h or 150.0


_RSVG_SECONDS = 60.0


def _rasterize(ctx: Context, svg: bytes, dst: Path) -> None:
    root = etree.fromstring(svg, _parser())
    w, h = _raster_size(root)
    cap = min(int(ctx.limits.max_pixels), 40_000_000)
    scale = float(ctx.options.get("raster_scale", 1.0))
    w, h = max(w * scale, 1.0), max(h * scale, 1.0)
    if w * h > cap:  # a drawing has no natural pixel size: shrink to the cap rather than refuse
        f = (cap / (w * h)) ** 0.5
        w, h = w * f, h * f
    ow, oh = max(1, int(round(w))), max(1, int(round(h)))
    try:
        from cairosvg.surface import PNGSurface
    except (ImportError, OSError):  # OSError: the module is there but libcairo is not
        PNGSurface = None
    if PNGSurface is not None:
        def fetch(url: str, resource_type: str = "") -> bytes:
            if url.startswith("data:"):
                from cairosvg.url import fetch as data_fetch
                return data_fetch(url, resource_type)
            return b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'

        try:
            png = PNGSurface.convert(bytestring=svg, output_width=ow, output_height=oh, unsafe=False,
                                     url_fetcher=fetch)
        except Exception as exc:
            raise ToolMissing(f"the SVG could not be rendered ({type(exc).__name__}: {exc})"[:200],
                              "SVG を画像に変換できませんでした") from None
        dst.write_bytes(png)
        return
    exe = shutil.which("rsvg-convert")
    if exe is None:
        raise ToolMissing("no SVG rasteriser is installed (cairosvg or rsvg-convert)",
                          "SVG を画像化するツールがインストールされていません")
    src = ctx.workdir / "sanitized.svg"
    src.write_bytes(svg)
    left = max(1.0, min(_RSVG_SECONDS, ctx.deadline - time.monotonic()))
    cmd = [exe, "-w", str(ow), "-h", str(oh), "-f", "png", "-o", str(dst), str(src)]
    try:
        # HOME in scratch space: fontconfig's cache writes stay inside the job.
        proc = run_tool(cmd, left, memory_cap(int(ctx.limits.worker_memory_mb) << 20), ctx.workdir,
                        tool_env(HOME=str(ctx.workdir)))
    except OSError as exc:
        raise ToolMissing(f"rsvg-convert could not be started ({exc.strerror or exc})",
                          "SVG を画像化するツールを起動できませんでした") from None
    except subprocess.TimeoutExpired:
        raise ToolMissing("rendering the SVG took too long and was stopped",
                          "SVG の画像化が時間内に終わらなかったため中止しました", threat_id="file.timeout") from None
    if proc.returncode != 0 or not dst.exists():
        raise ToolMissing("rsvg-convert failed: " + proc.stderr.decode("utf-8", "replace")[:200],
                          "SVG を画像に変換できませんでした")


# ---------------------------------------------------------------- handler

@register
class SvgHandler(Handler):
    family = "svg"
    mime_types = ("image/svg+xml",)
    has_text = True
    options = OPTIONS["svg"]

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        return sanitize_svg(ctx, path.read_bytes(), rebuild=False)[1]

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        out, threats = sanitize_svg(ctx, src.read_bytes(), rebuild=True)
        assert out is not None
        if ctx.options.get("mode", "sanitize") == "rasterize":
            _rasterize(ctx, out, dst)
            threats.append(Threat("svg.rasterized", ctx.name, "converted", "delivered as a PNG image"))
            return Rebuilt(threats=threats, extension=".png", mime="image/png")
        dst.write_bytes(out)
        return Rebuilt(threats=threats)

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        try:
            root = etree.fromstring(path.read_bytes(), _parser())
        except etree.XMLSyntaxError:
            return ""  # a PNG rendering has no text
        lines = []
        for el in root.iter(f"{{{SVG_NS}}}title", f"{{{SVG_NS}}}desc", f"{{{SVG_NS}}}text", "title", "desc",
                            "text"):
            s = " ".join("".join(el.itertext()).split())
            if s:
                lines.append(s)
        return "\n".join(lines) + ("\n" if lines else "")
