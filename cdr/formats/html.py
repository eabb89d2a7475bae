"""HTML: delivered as sanitized HTML (ammonia via nh3) or as text, per policy.

Everything that runs, loads or submits is dropped: script, iframe, object/embed,
event handlers, javascript:/data: URLs, forms, meta refresh, base, external CSS.
"""
from __future__ import annotations

import html as htmllib
import re
from html.parser import HTMLParser
from pathlib import Path

from ..encoding import decode_text
from ..errors import Malformed
from ..handler import Context, Handler, Rebuilt, register
from ..model import Detection, Threat
from ._catalog import OPTIONS

_TAGS = {
    "a", "abbr", "address", "article", "aside", "b", "bdi", "blockquote", "br", "caption", "cite", "code",
    "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure",
    "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li", "main",
    "mark", "nav", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "section", "small", "span",
    "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u",
    "ul", "var", "font", "center",
}
_ATTRS = {
    "*": {"title", "lang", "dir", "class", "id", "align", "style"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "valign", "width"},
    "th": {"colspan", "rowspan", "valign", "width", "scope"},
    "col": {"span", "width"},
    "table": {"border", "cellpadding", "cellspacing", "width", "summary"},
    "font": {"color", "size", "face"},
    "ol": {"start", "type"},
    "time": {"datetime"},
}
_STYLE_PROPS = {
    "color", "background-color", "font-weight", "font-style", "font-size", "font-family", "text-align",
    "text-decoration", "vertical-align", "margin", "margin-left", "margin-right", "margin-top",
    "margin-bottom", "padding", "padding-left", "padding-right", "padding-top", "padding-bottom", "border",
    "border-collapse", "width", "height", "line-height", "white-space", "writing-mode", "list-style-type",
    "background", "border-top", "border-right", "border-bottom", "border-left", "border-width", "border-style",
    "border-color", "border-spacing", "text-indent", "letter-spacing", "font",
}
# Characters no kept rule may hold: "<" could end the style element, escapes could spell anything.
_CSS_UNSAFE = "<>\\&"
# Functions a kept declaration may use: colours only (url(), image(), expression(), var() never).
_CSS_FUNCS = {"rgb", "rgba", "hsl", "hsla"}
_DROP_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "applet", "noscript", "template",
                      "frameset", "frame", "svg", "math", "title", "head"}

_ACTIVE = [
    (re.compile(r"<\s*script\b", re.I), "<script>"),
    (re.compile(r"<\s*(iframe|frame|frameset)\b", re.I), "<iframe>/<frame>"),
    (re.compile(r"<\s*(object|embed|applet)\b", re.I), "<object>/<embed>/<applet>"),
    (re.compile(r"<\s*form\b", re.I), "<form>"),
    (re.compile(r"<\s*(button|input|select|textarea)\b[^>]*\bformaction\s*=", re.I), "formaction"),
    (re.compile(r"<\s*meta\b[^>]*http-equiv\s*=\s*['\"]?\s*refresh", re.I), "meta refresh"),
    (re.compile(r"<\s*base\b", re.I), "<base>"),
    (re.compile(r"<\s*link\b[^>]*\brel\s*=\s*['\"]?[^'\">]*(stylesheet|import|preload|prefetch)", re.I),
     "<link> to external resources"),
    (re.compile(r"<[^>]+\s(on[a-z]+)\s*=", re.I), "event handler attribute"),
    (re.compile(r"(href|src|action|formaction|data|background|poster|xlink:href)\s*=\s*['\"]?\s*"
                r"(javascript|vbscript|data|livescript):", re.I), "javascript:/data: URL"),
    (re.compile(r"expression\s*\(|url\s*\(\s*['\"]?\s*(javascript|vbscript):", re.I), "script in CSS"),
    (re.compile(r"<\s*(svg|math)\b", re.I), "<svg>/<math> markup"),
]


_TAG = re.compile(r"<[^>]*>")
# A browser ends a style element at "</style" followed by whitespace, "/" or ">".
_STYLE_BODY = re.compile(r"<style\b[^>]*>(.*?)</style[\s/>]", re.I | re.S)
_SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):", re.I)
_WEB_SCHEMES = {"http", "https", "mailto"}
_SCRIPT_SCHEMES = {"javascript", "vbscript", "livescript"}
# Attributes that make the browser fetch a resource as soon as the page opens.
_PICTURE_ATTRS = {"src", "srcset", "poster", "background", "lowsrc", "dynsrc"}
_CSS_URL = re.compile(r"""url\s*\(\s*['"]?([^'")]*)|@import\s+['"]([^'"]*)""", re.I)
# None of the kept style properties takes a picture, so a declaration with url()/image()/escapes is
# dead weight at best and a fetch at worst (escapes could spell url).
_CSS_FETCH = re.compile(r"url\s*\(|image(?:-set)?\s*\(|\\", re.I)
_LINK_PROTOCOL_RELATIVE = "<a href> protocol-relative"


_C0_SPACE = "".join(chr(c) for c in range(0x21))


def _trimmed(value: str) -> str:
    """What a browser's URL parser (WHATWG) starts from: C0 controls and spaces trimmed, tab/LF/CR gone."""
    return re.sub(r"[\t\n\r]", "", value.strip(_C0_SPACE))


def _normalise_url(value: str) -> str:
    """The URL a browser actually parses: _trimmed, with \\ read as /."""
    return _trimmed(value).replace("\\", "/")


def _is_local_picture(value: str) -> bool:
    """A relative path inside the document's folder. Not a data: image either: its bytes would reach the
    browser's decoder without going through the image rebuild."""
    url = _normalise_url(value)
    if _SCHEME.match(url):
        return False
    # //host (or \\host after normalising) is a network path: file://host = SMB from a local file.
    return not url.startswith("//")


def _link_kind(value: str) -> str:
    """'ok' (web/mail link or in-document path), 'protocol' (//host: a web link), 'unc', 'script', 'other'."""
    url = _normalise_url(value)
    m = _SCHEME.match(url)
    if m:
        scheme = m.group(1).lower()
        if scheme in _WEB_SCHEMES:
            return "ok"
        return "script" if scheme in _SCRIPT_SCHEMES or scheme == "data" else "other"
    if not url.startswith("//"):
        return "ok"
    raw = _trimmed(value)
    # Exactly two forward slashes is a protocol-relative web link; backslashes or more slashes is a UNC path.
    return "protocol" if re.match(r"//[^/\\]", raw) else "unc"


def _filter_style(value: str) -> str | None:
    kept = ";".join(d for d in value.split(";") if not _CSS_FETCH.search(d))
    return kept if kept.strip(" ;") else None


def _in_page(value: str) -> bool:
    """A link to a place in the same page (#top): kept even when the policy drops links."""
    return _trimmed(value).startswith("#")


def _keep_local_src(tag: str, attr: str, value: str, links: str = "web") -> str | None:
    """Pictures load only from inside the document; links stay web links and never reach a file share.
    links = "drop" keeps only links to a place in the page (the link text stays)."""
    if attr in _PICTURE_ATTRS:
        return value if _is_local_picture(value) else None
    if attr == "href":
        if links == "drop":
            return value if _in_page(value) else None
        kind = _link_kind(value)
        if kind == "protocol":
            # Opened from disk //host resolves to file://host (SMB); the sender meant the web.
            return "https:" + _trimmed(value)
        return value if kind == "ok" else None
    if attr == "style":
        return _filter_style(value)
    return value


class _UrlScan(HTMLParser):
    """Attribute values as the browser sees them (entities decoded), for the external-reference checks."""

    def __init__(self, links: str = "web") -> None:
        super().__init__(convert_charrefs=True)
        self.counts: dict[tuple[str, str], int] = {}
        self.links = links

    def _add(self, tid: str, location: str) -> None:
        self.counts[(tid, location)] = self.counts.get((tid, location), 0) + 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in _PICTURE_ATTRS:
                urls = [c.split()[0] for c in value.split(",") if c.split()] if name == "srcset" else [value]
                if not all(_is_local_picture(u) for u in urls):
                    self._add("html.external_ref", f"<{tag} {name}>")
            elif name == "href" and tag in ("a", "area", "link"):
                kind = _link_kind(value)
                if tag == "link" and kind != "script":
                    kind = "ok" if _is_local_picture(value) else "unc"
                if kind == "protocol":
                    self._add("html.external_ref", _LINK_PROTOCOL_RELATIVE)
                elif kind in ("unc", "other"):
                    self._add("html.external_ref", f"<{tag} href>")
                elif kind == "script":
                    self._add("html.active_content", "javascript:/data: URL")
                elif tag != "link" and self.links == "drop" and not _in_page(value):
                    self._add("html.hyperlink", f"<{tag} href>")
            elif name == "style":
                self._css(value, f"<{tag} style>")

    handle_startendtag = handle_starttag

    def _css(self, css: str, location: str) -> None:
        for m in _CSS_URL.finditer(css):
            if not _is_local_picture(m.group(1) or m.group(2) or ""):
                self._add("html.external_ref", location)


def scan_active(markup: str, links: str = "web") -> list[Threat]:
    """Active-content findings in HTML markup, by construct (tags and style sheets only, not prose).
    links = "drop" also reports every link out of the page (html.hyperlink)."""
    found: list[Threat] = []
    code = " ".join(_TAG.findall(markup) + _STYLE_BODY.findall(markup))
    urls = _UrlScan(links)
    try:
        urls.feed(markup)
        urls.close()
    except AssertionError as exc:  # Python 3.11's parser asserts on a damaged "<![" section
        raise Malformed(f"HTML markup the parser cannot read ({exc})",
                        "HTMLの記述が壊れていて読み取れないため配送を停止しました") from None
    for body in _STYLE_BODY.findall(markup):
        urls._css(htmllib.unescape(body), "<style>")
        if "<" in body:
            urls._add("html.active_content", "markup inside a style sheet")
    seen: set[tuple[str, str]] = set()
    for (tid, where), n in urls.counts.items():
        seen.add((tid, where))
        found.append(Threat(tid, where, "found", f"{n} reference(s) outside the document"
                            if tid == "html.external_ref" else f"{n} link(s) out of the page"
                            if tid == "html.hyperlink" else f"{n} occurrence(s)"))
    for pattern, what in _ACTIVE:
        hits = pattern.findall(code)
        if hits and ("html.active_content", what) not in seen:
            found.append(Threat("html.active_content", what, "found", f"{len(hits)} occurrence(s)"))
    return found


def _title(markup: str) -> str:
    m = re.search(r"<title[^>]*>(.*?)</title>", markup, re.I | re.S)
    return htmllib.unescape(m.group(1)).strip() if m else ""


def _css_value_ok(tokens: list) -> bool:
    for t in tokens:
        if t.type in ("whitespace", "ident", "number", "percentage", "dimension", "hash", "comment"):
            continue
        if t.type == "literal" and t.value in (",", "/", "%"):
            continue
        if t.type == "string":  # clean_css refuses the serialized value if it holds an unsafe character
            continue
        if t.type == "function" and t.lower_name in _CSS_FUNCS and _css_value_ok(t.arguments):
            continue
        return False
    return True


def clean_css(css: str) -> str:
    """A style sheet rebuilt from its plain rules: allowed properties with colour, length and keyword
    values only. At-rules (@import, @font-face, @media), url() and every other function go."""
    import tinycss2

    out = []
    for rule in tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True):
        if rule.type != "qualified-rule":
            continue
        selector = tinycss2.serialize(rule.prelude).strip()
        if not selector or any(c in selector for c in _CSS_UNSAFE + "{}@") or len(selector) > 500:
            continue  # "<" could close the style element; escapes could spell anything
        kept = []
        for d in tinycss2.parse_declaration_list(rule.content, skip_comments=True, skip_whitespace=True):
            if d.type == "declaration" and d.lower_name in _STYLE_PROPS and _css_value_ok(d.value):
                value = tinycss2.serialize(d.value).strip()
                # Escapes come back as "\<": to an HTML parser that is "<", which could close the element.
                if not any(c in value for c in _CSS_UNSAFE):
                    kept.append(f"{d.lower_name}: {value}" + (" !important" if d.important else ""))
        if kept:
            out.append(f"{selector} {{ {'; '.join(kept)} }}")
    css = "\n".join(out)
    return "" if any(c in css for c in "<&") else css  # never markup inside a style element


_HTML_TAG = re.compile(r"<html\b([^>]*)>", re.I)
_LANG = re.compile(r"""\blang\s*=\s*["']?([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)["'\s>]""", re.I)
_DIR = re.compile(r"""\bdir\s*=\s*["']?(ltr|rtl|auto)["'\s>]""", re.I)


def _html_attrs(markup: str) -> str:
    """lang and dir of the source's <html> (without lang="ja" browsers may draw kanji in Chinese forms)."""
    m = _HTML_TAG.search(markup)
    if not m:
        return ""
    attrs = m.group(1) + ">"
    out = ""
    if (lm := _LANG.search(attrs)):
        out += f' lang="{lm.group(1)}"'
    if (dm := _DIR.search(attrs)):
        out += f' dir="{dm.group(1).lower()}"'
    return out


def clean_html(markup: str, links: str = "web") -> str:
    """Sanitize an HTML document and wrap the result in a minimal UTF-8 document."""
    import nh3

    body = nh3.clean(
        markup, tags=_TAGS, clean_content_tags=_DROP_WITH_CONTENT, attributes=_ATTRS,
        url_schemes={"http", "https", "mailto"}, filter_style_properties=_STYLE_PROPS,
        link_rel="noopener noreferrer", strip_comments=True,
        attribute_filter=lambda tag, attr, value: _keep_local_src(tag, attr, value, links),
    )
    title = htmllib.escape(_title(markup))
    css = clean_css("\n".join(_STYLE_BODY.findall(markup)))
    style = f"<style>\n{css}\n</style>" if css else ""
    return (f"<!DOCTYPE html>\n<html{_html_attrs(markup)}><head><meta charset=\"utf-8\">"
            f"<title>{title}</title>{style}</head>\n<body>\n{body}\n</body></html>\n")


def html_to_text(markup: str) -> str:
    """Readable text: block elements become line breaks, scripts and styles vanish."""
    import nh3

    stripped = nh3.clean(markup, tags={"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"},
                         clean_content_tags=_DROP_WITH_CONTENT, attributes={})
    stripped = re.sub(r"<br\s*/?>|</?(p|div|li|tr|h\d)\s*>", "\n", stripped, flags=re.I)
    stripped = re.sub(r"<[^>]+>", "", stripped)
    text = htmllib.unescape(stripped)
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.splitlines()]
    out, blank = [], False
    for line in lines:
        if line or not blank:
            out.append(line)
        blank = not line
    return "\n".join(out).strip() + "\n"


@register
class HtmlHandler(Handler):
    family = "html"
    mime_types = ("text/html",)
    options = OPTIONS["html"]

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        return scan_active(decode_text(path.read_bytes())[0], ctx.options.get("links", "web"))

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        markup, _enc = decode_text(src.read_bytes())
        links = ctx.options.get("links", "web")
        threats = [Threat(t.id, t.location, "neutralized" if t.location == _LINK_PROTOCOL_RELATIVE else "removed",
                          t.detail) for t in scan_active(markup, links)]
        cleaned = clean_html(markup, links)
        if not ctx.options.get("title", True):
            cleaned = re.sub(r"<title>.*?</title>", "<title></title>", cleaned, flags=re.S)
        dst.write_bytes(cleaned.encode("utf-8"))
        return Rebuilt(threats=threats)

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        return html_to_text(decode_text(path.read_bytes())[0])
