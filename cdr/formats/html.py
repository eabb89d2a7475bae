"""HTML: delivered as sanitized HTML (ammonia via nh3) or as text, per policy.

Everything that runs, loads or submits is dropped: script, iframe, object/embed,
event handlers, javascript:/data: URLs, forms, meta refresh, base, external CSS.
"""
from __future__ import annotations

import html as htmllib
import re
from pathlib import Path

from ..encoding import decode_text
from ..handler import Context, Handler, Option, Rebuilt, register
from ..model import Detection, Threat

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
}
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
_STYLE_BODY = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.I | re.S)
_REMOTE_IMG = re.compile(r"<\s*img\b[^>]*\bsrc\s*=\s*['\"]?\s*(?:[a-z][a-z0-9+.-]*:|//)", re.I)


def _keep_local_src(tag: str, attr: str, value: str) -> str | None:
    """Pictures load only from inside the document: a remote src would call out when opened."""
    if tag == "img" and attr == "src" and re.match(r"\s*(?:[a-z][a-z0-9+.-]*:|//)", value, re.I):
        return None
    return value


def scan_active(markup: str) -> list[Threat]:
    """Active-content findings in HTML markup, by construct (tags and style sheets only, not prose)."""
    found: list[Threat] = []
    code = " ".join(_TAG.findall(markup) + _STYLE_BODY.findall(markup))
    remote = _REMOTE_IMG.findall(code)
    if remote:
        found.append(Threat("html.external_ref", "<img src>", "found", f"{len(remote)} remote picture(s)"))
    for pattern, what in _ACTIVE:
        hits = pattern.findall(code)
        if hits:
            found.append(Threat("html.active_content", what, "found", f"{len(hits)} occurrence(s)"))
    return found


def _title(markup: str) -> str:
    m = re.search(r"<title[^>]*>(.*?)</title>", markup, re.I | re.S)
    return htmllib.unescape(m.group(1)).strip() if m else ""


def clean_html(markup: str) -> str:
    """Sanitize an HTML document and wrap the result in a minimal UTF-8 document."""
    import nh3

    body = nh3.clean(
        markup, tags=_TAGS, clean_content_tags=_DROP_WITH_CONTENT, attributes=_ATTRS,
        url_schemes={"http", "https", "mailto"}, filter_style_properties=_STYLE_PROPS,
        link_rel="noopener noreferrer", strip_comments=True, attribute_filter=_keep_local_src,
    )
    title = htmllib.escape(_title(markup))
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{title}</title></head>\n<body>\n{body}\n</body></html>\n")


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
    options = {"title": Option(True, help="keep the document title")}

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        return scan_active(decode_text(path.read_bytes())[0])

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        markup, _enc = decode_text(src.read_bytes())
        threats = [Threat(t.id, t.location, "removed", t.detail) for t in scan_active(markup)]
        cleaned = clean_html(markup)
        if not ctx.options.get("title", True):
            cleaned = re.sub(r"<title>.*?</title>", "<title></title>", cleaned, flags=re.S)
        dst.write_bytes(cleaned.encode("utf-8"))
        return Rebuilt(threats=threats)

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        return html_to_text(decode_text(path.read_bytes())[0])
