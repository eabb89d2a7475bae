"""Safe XML parsing, element surgery and media checks shared by the XML-based formats (OOXML, ODF, SVG)."""
from __future__ import annotations

import re

from lxml import etree

# No DTD loading, no entity expansion, no network, no huge trees: the baseline for every untrusted part.
# A "picture" or "media" member of an office package that starts like this is a program or a document.
BAD_MEDIA_MAGIC = (b"MZ", b"\x7fELF", b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"{\\rtf", b"%PDF", b"#!")
SAFE_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, dtd_validation=False)


def logged_error(parser: etree.XMLParser, lenient: bool = False) -> str | None:
    """The first error of the parser's last parse that lxml let pass, or None.

    lxml raises only when the last message libxml2 logged is an error: a later warning (such as a bad
    xml:space value) hides earlier namespace errors, and the tree then holds e.g. a namespaced attribute
    twice (w:instr and x:instr, both prefixes bound to one URI), of which a reader may take either.
    `lenient`, for recover-mode parsers, counts attribute redefinitions only."""
    for err in parser.error_log:
        if err.level >= etree.ErrorLevels.ERROR and (not lenient or "REDEFINED" in err.type_name):
            return err.message
    return None


def _text_before(el: etree._Element, text: str) -> None:
    """Append `text` to what precedes `el`: its previous sibling's tail, or its parent's text."""
    prev = el.getprevious()
    if prev is not None:
        prev.tail = (prev.tail or "") + text
    else:
        parent = el.getparent()
        parent.text = (parent.text or "") + text


def remove_keep_tail(el: etree._Element) -> None:
    """Remove an element but keep the text that follows it (lxml stores it as the tail)."""
    parent = el.getparent()
    if parent is None:
        return
    if el.tail:
        _text_before(el, el.tail)
    parent.remove(el)


def unwrap(el: etree._Element) -> None:
    """Replace an element by its children and text, keeping the surrounding text order."""
    parent = el.getparent()
    if parent is None:
        return
    idx = parent.index(el)
    if el.text:
        _text_before(el, el.text)
    for i, child in enumerate(list(el)):
        parent.insert(idx + i, child)
    remove_keep_tail(el)


# ---------------------------------------------------------------- namespace allow-lists

_ENC_DECL = re.compile(rb"<\?xml[^>]*?\sencoding\s*=\s*[\"']([A-Za-z0-9._\-]*)[\"']")


def bytes_literal(data: bytes) -> bool:
    """True when element and attribute names are plain bytes (UTF-8 or ASCII, declared or by default),
    so that a byte search for a name can rule it out. Conservative: anything unusual answers False."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:64]:
        return False
    head = data[3:512] if data.startswith(b"\xef\xbb\xbf") else data[:512]
    if not head.startswith(b"<"):
        return False
    if head.startswith(b"<?xml"):
        end = head.find(b"?>")
        if end < 0:
            return False
        m = _ENC_DECL.match(head[:end + 2])
        if m is not None:
            enc = m.group(1).decode("ascii").upper().replace("_", "-")
            return enc in ("UTF-8", "UTF8", "US-ASCII", "ASCII")
        return b"encoding" not in head[:end]
    return True


# Any prefix a name may have (XML names are not only ASCII): "xmlns:日本=" must not slip past.
_DECL = re.compile(rb"xmlns(?::([^\s=/>'\"]+))?\s*=\s*(?:\"([^\"<]*)\"|'([^'<]*)')")


def declarations(data: bytes) -> list[tuple[str, str]] | None:
    """(prefix, URI) of every namespace declaration in `data` ("" prefix: the default namespace); a
    superset, since text that looks like a declaration counts too. None when the bytes cannot say
    (not UTF-8/ASCII, a character reference inside a URI): then only a parse can tell."""
    if not bytes_literal(data):
        return None
    out = []
    for m in _DECL.finditer(data):
        uri = m.group(2) if m.group(2) is not None else m.group(3)
        if b"&" in uri:
            return None
        try:
            out.append(((m.group(1) or b"").decode("utf-8"), uri.decode("utf-8")))
        except UnicodeDecodeError:
            return None
    return out


_ROOT_NAME = re.compile(rb"<(?![?!])([^\s/>]+)")
_ATTR = re.compile(rb"\s+([^\s=/>]+)\s*=\s*(?:\"([^\"<]*)\"|'([^'<]*)')")
_TAG_END = re.compile(rb"\s*/?>")
_UNPREFIXED_TAG = re.compile(rb"<[^\s/?!:>]+[\s/>]")


def _root_default_ns(data: bytes) -> bytes | None:
    """The default namespace the root start tag declares (b"" for xmlns=""), read from the bytes: only
    when nothing but the XML declaration comes before it (no comment or DOCTYPE could hide a tag), and
    only from the tag's own attributes, read one by one (a value may hold " xmlns=" or ">")."""
    m = _ROOT_NAME.search(data)
    if m is None or b":" in m.group(1):
        return None
    head = data[:m.start()]
    if b"<!" in head or head.count(b"<?") > (1 if head.lstrip(b"\xef\xbb\xbf").startswith(b"<?xml") else 0):
        return None
    pos, found = m.end(), None
    while (a := _ATTR.match(data, pos)) is not None:
        if a.group(1) == b"xmlns":
            found = a.group(2) if a.group(2) is not None else a.group(3)
        pos = a.end()
    return found if _TAG_END.match(data, pos) else None


def _no_plain_elements(data: bytes, decls: list[tuple[str, str]], root: etree._Element | None = None,
                       tags: set[bytes] | None = None) -> bool:
    """True when every element has a namespace: the root declares a default one that nothing undeclares
    (xmlns=""), or no start tag lacks a prefix. With `root`, the parsed tree says what the root declares;
    `tags`, the start-tag names of `data` when the caller has them (a name holding "<" is doubt)."""
    if any(not p and not u for p, u in decls):
        return False  # xmlns="" somewhere
    if root is not None:
        return root.nsmap.get(None) is not None or _UNPREFIXED_TAG.search(data) is None
    if _root_default_ns(data):
        return True
    if tags is not None:
        return all(b":" in t and b"<" not in t for t in tags)
    return _UNPREFIXED_TAG.search(data) is None


def _prefix_used(data: bytes, prefix: str) -> bool:
    """May `prefix:` name an element or attribute in `data`? (a byte search; a superset)"""
    needle = prefix.encode("utf-8") + b":"
    pos = data.find(needle)
    while pos >= 0:
        if pos > 0 and data[pos - 1] in b"< \t\r\n/":
            return True
        pos = data.find(needle, pos + 1)
    return False


def vocabulary_clean(data: bytes, allowed: frozenset[str], plain: frozenset[str] = frozenset(),
                     decls: list[tuple[str, str]] | None = None, tags: frozenset[bytes] | None = None) -> bool:
    """Byte-level proof that `data` uses no namespace outside `allowed` (declared only, unused is fine)
    and no element without one (unless `plain` may hold some: then never proven). `decls`: the
    declarations of `data` when the caller has them already; `tags`, its start-tag names."""
    decls = declarations(data) if decls is None else decls
    if decls is None or plain:
        return False
    for p, u in decls:
        if u not in allowed and u != XML_NS and (not p or _prefix_used(data, p)):
            return False
    return _no_plain_elements(data, decls, tags=tags)


def foreign_nodes(root: etree._Element, data: bytes | None, allowed: frozenset[str],
                  plain: frozenset[str] = frozenset(), decls: list[tuple[str, str]] | None = None,
                  ) -> tuple[list[etree._Element], list[tuple[etree._Element, str]]]:
    """Elements whose namespace is not in `allowed` (an element without a namespace only when its name
    is not in `plain`), outermost first, and (element, attribute) pairs whose attribute namespace is not
    in `allowed` (attributes without a namespace belong to their element; xml:space, xml:lang stay).

    `data`, the bytes `root` was parsed from, lets byte searches and C-level filters look for exactly
    the foreign namespaces it declares; without it (or when its bytes cannot say) the whole tree is walked."""
    if decls is None:
        decls = declarations(data) if data is not None else None
    if decls is None:
        elements, attrs = [], []
        for el in root.iter():
            if not isinstance(el.tag, str):
                continue
            ns, _, local = el.tag[1:].partition("}") if el.tag[0] == "{" else ("", "", el.tag)
            if ns not in allowed and not (not ns and local in plain):
                elements.append(el)
            for name in el.attrib:
                if name[0] == "{" and name[1:name.index("}")] not in allowed and not name.startswith(_XML):
                    attrs.append((el, name))
        return elements, attrs
    foreign = {u for _p, u in decls if u and u not in allowed and u != XML_NS}
    used = [p for p, u in decls if u in foreign and (not p or _prefix_used(data, p))]
    elements: list[etree._Element] = []
    attrs: list[tuple[etree._Element, str]] = []
    if used:
        elements = list(root.iter(*(f"{{{u}}}*" for u in sorted(foreign))))
        if any(used):  # a prefixed foreign namespace may name attributes
            cond = " or ".join(f"namespace-uri()=$u{i}" for i in range(len(foreign)))
            kw = {f"u{i}": u for i, u in enumerate(sorted(foreign))}
            attrs = [(a.getparent(), a.attrname) for a in root.xpath(f"//@*[{cond}]", **kw)]
    if not _no_plain_elements(data, decls, root):
        plain_els = [el for el in root.iter("{}*") if el.tag not in plain]
        if plain_els:
            seen = {id(e) for e in elements}
            elements += [e for e in plain_els if id(e) not in seen]
            order = {id(e): i for i, e in enumerate(root.iter())}
            elements.sort(key=lambda e: order[id(e)])
    return elements, attrs


XML_NS = "http://www.w3.org/XML/1998/namespace"
_XML = f"{{{XML_NS}}}"


def _doc_position(el: etree._Element) -> tuple[int, ...]:
    path = []
    while el.getparent() is not None:
        path.append(el.getparent().index(el))
        el = el.getparent()
    return tuple(reversed(path))


def attached(el: etree._Element, root: etree._Element) -> bool:
    """Is `el` still inside `root` (not in a subtree removed earlier)?"""
    while el is not None:
        if el is root:
            return True
        el = el.getparent()
    return False
