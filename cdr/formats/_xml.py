"""Safe XML parsing, element surgery and media checks shared by the XML-based formats (OOXML, ODF, SVG)."""
from __future__ import annotations

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
