"""HTML bodies: converted to readable text (inscriptis: tables and lists kept) or cleaned as the html
family cleans documents (nh3 with its allow-lists), with `cid:` pictures kept when they were
delivered. In both modes nothing loads by itself: no remote picture (web bug), style sheet, script,
form or frame survives. Links follow the policy (keep, defang, drop) and deceptive ones are listed.
"""
from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass, field

from ..html import _ATTRS, _DROP_WITH_CONTENT, _STYLE_PROPS, _TAGS, clean_css
from .links import Deceptive, defang, judge

_SCRIPTS = {"script", "noscript"}
_FRAMES = {"iframe", "frame", "frameset", "object", "embed", "applet"}
_FORMS = {"form", "input", "button", "select", "textarea"}
_FETCH_ATTRS = ("src", "srcset", "background", "poster", "lowsrc", "dynsrc", "data", "href", "xlink:href")
_CSS_URL = re.compile(r"""(?i)url\s*\(\s*['"]?\s*([^'")\s]*)|@import\s+['"]?([^'";\s]*)""")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*>", re.I)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


@dataclass
class HtmlScan:
    scripts: int = 0
    handlers: int = 0
    frames: int = 0
    forms: int = 0
    remote: int = 0  # resources a reader would fetch on opening (web bugs included)
    meta_refresh: int = 0
    script_urls: int = 0
    cids: set[str] = field(default_factory=set)
    anchors: list[tuple[str, str]] = field(default_factory=list)

    def findings(self) -> list[tuple[str, str, int]]:
        """(threat id, what, count) for what was found."""
        out = []
        if self.scripts or self.handlers or self.script_urls:
            out.append(("mail.script", "script, event handlers or javascript: links",
                        self.scripts + self.handlers + self.script_urls))
        if self.frames:
            out.append(("mail.frame", "frames, objects or embedded content", self.frames))
        if self.forms:
            out.append(("mail.form", "forms or input fields", self.forms))
        if self.remote or self.meta_refresh:
            out.append(("mail.remote_content", "pictures or style sheets loaded from the internet (web bugs)",
                        self.remote + self.meta_refresh))
        return out


def _tree(markup: str):
    import lxml.html
    from lxml.etree import ParserError

    # Characters an XML tree cannot hold go before parsing: libxml2's HTML parser keeps them in attributes
    # and text, and any later edit of the tree (a link shown after its text) would raise on them.
    markup = _XML_DECL.sub("", _NOT_XML.sub("", markup), count=1)
    if not markup.strip():
        return None
    # huge_tree: without it libxml2 silently drops whatever is nested deeper than 256 elements, and a
    # sender could hide text from the clerk that way (memory stays bounded by the worker's limit).
    parser = lxml.html.HTMLParser(huge_tree=True, no_network=True)
    try:
        return lxml.html.document_fromstring(markup, parser=parser)
    except (ParserError, ValueError):
        return lxml.html.document_fromstring("<pre>" + htmllib.escape(markup) + "</pre>", parser=parser)


def _is_remote(url: str) -> bool:
    u = re.sub(r"[\x00-\x20]", "", url).replace("\\", "/").lower()
    return bool(re.match(r"[a-z][a-z0-9+.-]*:", u) and not u.startswith(("cid:", "data:", "mid:"))) \
        or u.startswith("//")


def _text_of(el) -> str:
    return re.sub(r"\s+", " ", el.text_content() or "").strip()


def scan(markup: str) -> HtmlScan:
    """What the HTML would do when opened (counts), its cid: references and its links."""
    s = HtmlScan()
    tree = _tree(markup)
    if tree is None:
        return s
    for el in tree.iter():
        tag = el.tag if isinstance(el.tag, str) else ""
        tag = tag.lower().rpartition("}")[2]
        if tag in _SCRIPTS:
            s.scripts += 1
        elif tag in _FRAMES:
            s.frames += 1
        elif tag in _FORMS:
            s.forms += 1
        elif tag == "meta" and (el.get("http-equiv") or "").strip().lower() == "refresh":
            s.meta_refresh += 1
        elif tag == "link" and el.get("href"):
            s.remote += 1 if _is_remote(el.get("href", "")) else 0
        elif tag == "style":
            s.remote += sum(1 for m in _CSS_URL.finditer(el.text or "") if _is_remote(m.group(1) or m.group(2) or ""))
        if not tag:
            continue
        for name, value in el.attrib.items():
            name = name.lower()
            v = value.strip()
            if name.startswith("on"):
                s.handlers += 1
            elif name == "style":
                s.remote += sum(1 for m in _CSS_URL.finditer(value) if _is_remote(m.group(1) or m.group(2) or ""))
            elif name in _FETCH_ATTRS:
                low = re.sub(r"[\x00-\x20]", "", v).lower()
                if low.startswith(("javascript:", "vbscript:", "livescript:")):
                    s.script_urls += 1
                elif name == "href" and tag in ("a", "area"):
                    s.anchors.append((_text_of(el), v))
                elif name == "href":
                    pass  # <link href> counted above
                elif low.startswith("cid:"):
                    s.cids.add(v[4:].strip().strip("<>"))
                elif name == "srcset":
                    s.remote += sum(1 for c in v.split(",") if c.split() and _is_remote(c.split()[0]))
                elif _is_remote(v) or low.startswith("data:") and tag != "img":
                    s.remote += 1
    return s


def _web(url: str) -> bool:
    return bool(re.match(r"(?i)\s*(https?|mailto):", url))


def _rewrite_links(tree, mode: str, deceptive: list[Deceptive], for_text: bool) -> int:
    """Anchors under the policy; returns how many links were changed. For text, the target is written
    after the link text (a converted mail must still show where a link goes)."""
    changed = 0
    for a in list(tree.iter("a", "area")):
        href = (a.get("href") or "").strip()
        if not href or href.startswith("#"):
            continue
        text = _text_of(a)
        d = judge(text, href) if _web(href) else None
        if d:
            deceptive.append(d)
        if not _web(href):
            a.attrib.pop("href", None)  # javascript:, file:, \\server\share and the like never survive
            changed += 1
            continue
        if mode == "keep" and not for_text:
            continue
        shown = {"keep": href, "defang": defang(href), "drop": ""}[mode]
        a.attrib.pop("href", None)
        if mode != "keep":
            changed += 1
        if shown and shown != text and not (for_text and mode == "keep" and text == href):
            a.tail = f" <{shown}>" + (a.tail or "")
    return changed


def to_text(markup: str, mode: str) -> tuple[str, list[Deceptive], int]:
    """Readable text (tables and lists kept) and the deceptive links."""
    from inscriptis import Inscriptis
    from inscriptis.model.config import ParserConfig

    tree = _tree(markup)
    if tree is None:
        return "", [], 0
    for bad in list(tree.iter("script", "style", "noscript", "template", "head", "title")):
        bad.drop_tree()
    deceptive: list[Deceptive] = []
    changed = _rewrite_links(tree, mode, deceptive, True)
    try:
        text = Inscriptis(tree, ParserConfig(display_images=False)).get_text()
    except RecursionError:  # inscriptis recurses per element
        text = ""
    if markup.count("<") > 2000:
        # libxml2 stops at 2,048 levels even with huge_tree and drops the rest without a word: when the
        # flat converter (html5ever through nh3, no depth limit) sees clearly more text, it wins.
        from ..html import html_to_text

        flat = html_to_text(markup)
        if len(re.sub(r"\s", "", text)) < 0.9 * len(re.sub(r"\s", "", flat)):
            text = flat
    lines = [ln.rstrip() for ln in text.splitlines()]
    out: list[str] = []
    for ln in lines:  # at most one empty line in a row
        if ln or (out and out[-1]):
            out.append(ln)
    return "\n".join(out).strip("\n") + "\n", deceptive, changed


def clean(markup: str, mode: str, cids: dict[str, str], banner_html: str) -> tuple[str, list[Deceptive], int]:
    """Sanitized HTML (a whole UTF-8 document) with only the delivered cid: pictures, per the link policy."""
    import lxml.html
    import nh3

    tree = _tree(markup)
    deceptive: list[Deceptive] = []
    changed = 0
    css = ""
    body = ""
    if tree is not None:
        css = clean_css("\n".join(st.text or "" for st in tree.iter("style")))
        for img in list(tree.iter("img")):
            src = (img.get("src") or "").strip()
            if src.lower().startswith("cid:") and src[4:].strip().strip("<>") in cids:
                img.set("src", "cid:" + cids[src[4:].strip().strip("<>")])
            else:
                img.drop_tree()
        changed = _rewrite_links(tree, mode, deceptive, False)
        body_el = tree.find("body")
        body = lxml.html.tostring(body_el if body_el is not None else tree, encoding="unicode")

    def attr_filter(tag: str, attr: str, value: str) -> str | None:
        if attr == "src":
            return value if tag == "img" and value.startswith("cid:") else None
        if attr == "href":
            return value if _web(value) else None
        if attr == "style":
            return None if re.search(r"(?i)url\s*\(|image(-set)?\s*\(|\\|expression", value) else value
        if attr == "background":
            return None
        return value

    cleaned = nh3.clean(body, tags=_TAGS, clean_content_tags=_DROP_WITH_CONTENT, attributes=_ATTRS,
                        url_schemes={"http", "https", "mailto", "cid"}, filter_style_properties=_STYLE_PROPS,
                        link_rel="noopener noreferrer", strip_comments=True, attribute_filter=attr_filter)
    style = f"<style>\n{css}\n</style>" if css else ""
    doc = (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8">{style}</head>\n<body>\n'
           f"{banner_html}{cleaned}\n</body></html>\n")
    return doc, deceptive, changed
