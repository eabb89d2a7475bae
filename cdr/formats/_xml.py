"""Safe XML parsing, element surgery and media checks shared by the XML-based formats (OOXML, ODF, SVG)."""
from __future__ import annotations

from lxml import etree

# No DTD loading, no entity expansion, no network, no huge trees: the baseline for every untrusted part.
# A "picture" or "media" member of an office package that starts like this is a program or a document.
BAD_MEDIA_MAGIC = (b"MZ", b"\x7fELF", b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"{\\rtf", b"%PDF", b"#!")
SAFE_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, dtd_validation=False)


def remove_keep_tail(el: etree._Element) -> None:
    """Remove an element but keep the text that follows it (lxml stores it as the tail)."""
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail
    if tail:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(el)


def unwrap(el: etree._Element) -> None:
    """Replace an element by its children and text, keeping the surrounding text order."""
    parent = el.getparent()
    if parent is None:
        return
    idx = parent.index(el)
    lead = el.text or ""
    if lead:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + lead
        else:
            parent.text = (parent.text or "") + lead
    for i, child in enumerate(list(el)):
        parent.insert(idx + i, child)
    remove_keep_tail(el)
