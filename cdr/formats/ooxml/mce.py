"""Markup compatibility (ECMA-376 Part 3) and the namespace allow-list of a part, applied to its tree.

`mc:AlternateContent` is resolved first: the first `mc:Choice` whose Requires names only namespaces
of the part's vocabulary is kept (inside its AlternateContent, which Office expects around content
such as c14:style or p14 transitions), else the `mc:Fallback` takes the block's place, else the block
goes. A Choice most readers cannot draw (Office 2016 charts, 3D models, ink: vocab.PICTURE_FALLBACK)
gives way to its Fallback picture when there is one. Then every element and attribute outside the vocabulary is dropped (an element of an ignorable
namespace listed in mc:ProcessContent gives way to its children), and mc:Ignorable keeps only
namespaces that remain. Dropping what a newer Office marked ignorable, or put in an extension list, is
what any consumer that does not know it does: counted as "tolerated". Anything else was markup no
conforming consumer would accept: counted as "removed".
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from lxml import etree

from .._memo import per_file, remembered
from .._xml import attached, declarations, foreign_nodes, remove_keep_tail, unwrap, vocabulary_clean
from .elements import element_names
from .vocab import MC_NS, PICTURE_FALLBACK, XML_NS, XSD_NS

_MC = f"{{{MC_NS}}}"
_AC, _CHOICE, _FALLBACK = _MC + "AlternateContent", _MC + "Choice", _MC + "Fallback"
_IGNORABLE, _PROCESS = _MC + "Ignorable", _MC + "ProcessContent"
_IGNORABLE_ATTR = re.compile(rb":Ignorable\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


@dataclass
class Foreign:
    """What left a part: counts by namespace URI."""
    removed: Counter = field(default_factory=Counter)
    tolerated: Counter = field(default_factory=Counter)

    def __bool__(self) -> bool:
        return bool(self.removed or self.tolerated)

    def add(self, other: Foreign) -> None:
        self.removed.update(other.removed)
        self.tolerated.update(other.tolerated)


_START_TAG = re.compile(rb"<([^\s/>!?]+)")


@remembered
def tag_names(data: bytes) -> frozenset[bytes]:
    """The distinct names _START_TAG finds in `data` (a superset when a name holds "<", which no
    well-formed part has). A large part repeats a few names many times: once the scan keeps meeting
    names it knows, a lookahead skips them instead of building a list of every start tag (1.4x on a
    4 MB sheet); it is rebuilt only then, so a part with hundreds of names costs no more than findall.
    Remembered for the file: the rebuild's byte proofs (parts.py) and the markup proof here share it."""
    if len(data) < 262_144:
        return frozenset(_START_TAG.findall(data))
    seen: set[bytes] = set()
    skipped = 0
    pattern, pos, repeats = _START_TAG, 0, 0
    while (m := pattern.search(data, pos)) is not None:
        pos = m.end()
        if m.group(1) not in seen:
            seen.add(m.group(1))
        elif (repeats := repeats + 1) >= 256 and len(seen) > skipped:
            known = b"|".join(re.escape(n) for n in sorted(seen, key=len, reverse=True))
            pattern = re.compile(rb"<(?!(?:" + known + rb")[\s/>])([^\s/>!?]+)")
            skipped, repeats = len(seen), 0
    return frozenset(seen)


# Per binding of prefixes to namespaces with a list of names: the tag names (as written) already known
# to be defined or outside those namespaces, and those known not to be, with their Clark names. The
# parts of one file share a few hundred names; forgotten with the file (_memo.forget_all).
_Bindings = tuple[tuple[str, str], ...]
_KNOWN: dict[_Bindings, tuple[set[bytes], dict[bytes, str]]] = per_file({})
_KNOWN_MAX = 4096


def _undefined_names(data: bytes, decls: list[tuple[str, str]], allowed: frozenset[str],
                     tags: frozenset[bytes] | None = None) -> set[str] | None:
    """Clark names of the elements `data` uses that are in an allowed namespace whose list of element
    names (elements.py) lacks them; None when the bytes cannot say. `tags`: tag_names(data), if known."""
    bindings = tuple(sorted({(p, u) for p, u in decls if u in allowed and element_names(u) is not None}))
    known = _KNOWN.get(bindings)
    if known is None:
        if len(_KNOWN) >= 64:
            _KNOWN.clear()
        known = _KNOWN[bindings] = (set(), {})
    ok, bad = known
    tags = tag_names(data) if tags is None else tags
    rest = tags - ok
    if not rest:
        return set()
    by_prefix: dict[str, list[str]] = {}
    for p, u in bindings:
        by_prefix.setdefault(p, []).append(u)
    out: set[str] = set()
    for raw in rest:
        clark = bad.get(raw)
        if clark is not None:
            out.add(clark)
            continue
        try:
            qname = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        prefix, _, local = qname.rpartition(":")
        found = [f"{{{uri}}}{local}" for uri in by_prefix.get(prefix, ()) if local not in element_names(uri)]
        out.update(found)
        if len(raw) <= 64 and len(ok) + len(bad) < _KNOWN_MAX and len(found) <= 1:
            if found:
                bad[raw] = found[0]
            else:
                ok.add(raw)
    return out


def _undefined_elements(root: etree._Element, data: bytes | None, allowed: frozenset[str],
                        decls: list[tuple[str, str]] | None) -> list[etree._Element]:
    """Elements of an allowed namespace with a name it does not define (a <script> in SpreadsheetML)."""
    names = _undefined_names(data, decls, allowed) if data is not None and decls is not None else None
    if names is not None:
        return list(root.iter(*sorted(names))) if names else []
    out = []
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag[0] == "{":
            uri, _, local = el.tag[1:].partition("}")
            names_ = element_names(uri) if uri in allowed else None
            if names_ is not None and local not in names_:
                out.append(el)
    return out


def quiet(data: bytes, allowed: frozenset[str], plain: frozenset[str] = frozenset()) -> bool:
    """Byte-level proof that `apply` would change nothing: every namespace used is allowed, and the
    only markup-compatibility construct is an mc:Ignorable naming namespaces that stay. Remembered for
    the file (the verify step asks again about the parts written as they were read)."""
    return _quiet(data, allowed, plain)  # always three arguments: one memo key for the same question


@remembered
def _quiet(data: bytes, allowed: frozenset[str], plain: frozenset[str]) -> bool:
    decls = declarations(data)
    if decls is None:
        return False
    tags = tag_names(data)
    if not vocabulary_clean(data, allowed | {MC_NS}, plain, decls, tags) \
            or _undefined_names(data, decls, allowed, tags) != set():
        return False
    if not any(u == MC_NS for _p, u in decls):
        return True
    if not _only_ignorable(data, decls):
        return False
    known = {p for p, u in decls if p and u in allowed}
    for m in _IGNORABLE_ATTR.finditer(data):
        value = m.group(1) if m.group(1) is not None else m.group(2)
        if not set(value.decode("utf-8", "replace").split()) <= known:
            return False
    return True


def _only_ignorable(data: bytes, decls: list[tuple[str, str]]) -> bool:
    """True when every name written with a prefix bound to the MCE namespace is mc:Ignorable: no
    AlternateContent, ProcessContent, MustUnderstand, ... (names cannot be escaped, and an element or
    attribute name follows "<", "</" or a blank; the same prefix bound elsewhere to another namespace
    only makes this say False). MCE as the default namespace is never proven."""
    for p in {p for p, u in decls if u == MC_NS}:
        if not p:
            return False
        needle = p.encode("utf-8") + b":"
        pos = data.find(needle)
        while pos >= 0:
            end = pos + len(needle)
            if pos > 0 and data[pos - 1] in b"< \t\r\n/" and not (
                    data.startswith(b"Ignorable", end) and data[end + 9:end + 10] in _AFTER_NAME):
                return False
            pos = data.find(needle, end)
    return True


_AFTER_NAME = (b"=", b" ", b"\t", b"\r", b"\n")




def apply(root: etree._Element, data: bytes | None, allowed: frozenset[str],
          plain: frozenset[str] = frozenset()) -> Foreign:
    """Resolve markup compatibility and drop what `allowed` does not name, in place."""
    found = Foreign()
    rq = etree.QName(root)
    if (rq.namespace or "") not in allowed and not (not rq.namespace and rq.localname in plain):
        raise ValueError(f"the root element {rq.localname!r} is outside the part's vocabulary")
    decls = declarations(data) if data is not None else None
    has_mc = decls is None or any(u == MC_NS for _p, u in decls)
    if has_mc:
        _resolve(root, allowed)
    elements, attrs = foreign_nodes(root, data, allowed | {MC_NS}, plain, decls)
    undefined = _undefined_elements(root, data, allowed, decls)
    mc_left = [el for el in root.iter(_MC + "*") if not _kept_mc(el)] if has_mc else []
    gone: list[etree._Element] = []
    together = mc_left + elements + undefined
    for el in sorted(together, key=_order(root)) if len(together) > len(elements) else elements:
        if not attached(el, root):
            continue  # inside something removed already
        ns = etree.QName(el).namespace or ""
        tolerated = ns != MC_NS and (_ignorable(el, ns) or _in_extension(el))
        (found.tolerated if tolerated else found.removed)[ns or "(no namespace)"] += 1
        if ns != MC_NS and tolerated and _process_content(el, ns):
            unwrap(el)
            continue
        parent = el.getparent()
        remove_keep_tail(el)
        gone.append(parent)
    for el, name in attrs:
        if not attached(el, root) or name not in el.attrib:
            continue
        ns = etree.QName(name).namespace or ""
        (found.tolerated if _ignorable(el, ns) else found.removed)[ns] += 1
        del el.attrib[name]
    if has_mc:
        _mc_attributes(root, allowed)
    for parent in gone:
        _drop_empty_extension(parent, root)
    if decls is not None and XSD_NS not in allowed \
            and any(u not in allowed and u not in (MC_NS, XML_NS) for _p, u in decls):
        # Declarations of namespaces that left (or were never used) go too; those of the vocabulary stay,
        # since mc:Ignorable and Requires name them by prefix. An XML schema names its types and elements
        # by prefix (and by the default namespace) in attribute values: there, every declaration stays.
        etree.cleanup_namespaces(root, keep_ns_prefixes=sorted({p for p, u in decls if p and u in allowed | {MC_NS}}))
    return found


def _order(root: etree._Element):
    order = {id(e): i for i, e in enumerate(root.iter())}
    return lambda e: order.get(id(e), -1)


def _kept_mc(el: etree._Element) -> bool:
    """An AlternateContent left by _resolve, or its one Choice."""
    if el.tag == _AC:
        return True
    return el.tag == _CHOICE and el.getparent() is not None and el.getparent().tag == _AC


def _supported(choice: etree._Element, allowed: frozenset[str]) -> bool:
    prefixes = (choice.get("Requires") or "").split()
    return bool(prefixes) and all(choice.nsmap.get(p) in allowed for p in prefixes)


def _resolve(root: etree._Element, allowed: frozenset[str]) -> None:
    for ac in list(root.iter(_AC)):
        if not attached(ac, root) or ac.getparent() is None:
            continue
        fallback = next((c for c in ac if c.tag == _FALLBACK), None)
        choice = next((c for c in ac if c.tag == _CHOICE and _supported(c, allowed - PICTURE_FALLBACK)), None)
        if choice is None and fallback is None:
            choice = next((c for c in ac if c.tag == _CHOICE and _supported(c, allowed)), None)
        if choice is not None:
            for c in list(ac):
                if c is not choice:
                    ac.remove(c)
            for name in list(choice.attrib):
                if name != "Requires":
                    del choice.attrib[name]
            for name in list(ac.attrib):
                if name != _IGNORABLE:
                    del ac.attrib[name]
            if len(choice) == 0:
                remove_keep_tail(ac)  # nothing to show either way
            continue
        for c in list(ac):
            if c is not fallback:
                ac.remove(c)
        if fallback is not None:
            unwrap(fallback)
        unwrap(ac)


def _ignorable(el: etree._Element, ns: str) -> bool:
    """Is `ns` declared ignorable (mc:Ignorable) on `el` or an ancestor?"""
    node = el
    while node is not None:
        value = node.get(_IGNORABLE)
        if value and any(node.nsmap.get(p) == ns for p in value.split()):
            return True
        node = node.getparent()
    return False


def _in_extension(el: etree._Element) -> bool:
    """Inside an extension list entry (ext uri=...), a graphic's data or a kept mc:Choice: places made
    for markup that older readers skip (Excel's x15ac:absPath sits in a Choice that requires x15)."""
    for anc in el.iterancestors():
        if anc.tag == _CHOICE:
            return True
        local = etree.QName(anc).localname
        if (local == "ext" and anc.get("uri") is not None) or local == "graphicData":
            return True
    return False


def _process_content(el: etree._Element, ns: str) -> bool:
    """Is `el` named by an mc:ProcessContent in scope (its children then take its place)?"""
    local = etree.QName(el).localname
    node = el.getparent()
    while node is not None:
        for qname in (node.get(_PROCESS) or "").split():
            prefix, _, name = qname.partition(":")
            if node.nsmap.get(prefix) == ns and name in ("*", local):
                return True
        node = node.getparent()
    return False


def _mc_attributes(root: etree._Element, allowed: frozenset[str]) -> None:
    """mc:Ignorable keeps the prefixes of namespaces that stay; every other mc: attribute goes."""
    for attr in root.xpath("//@*[namespace-uri()=$mc]", mc=MC_NS):
        el, name = attr.getparent(), attr.attrname
        if name == _IGNORABLE:
            keep = [p for p in str(attr).split() if el.nsmap.get(p) in allowed]
            if keep != str(attr).split():
                if keep:
                    el.set(name, " ".join(keep))
                else:
                    del el.attrib[name]
        else:
            del el.attrib[name]


def _drop_empty_extension(parent: etree._Element, root: etree._Element) -> None:
    """An extension entry (ext) whose content went, then an extension list left empty, go too: the
    schema wants exactly one child in an ext."""
    el = parent
    while el is not None and el is not root and attached(el, root) and len(el) == 0 \
            and etree.QName(el).localname in ("ext", "extLst") and not (el.text or "").strip():
        up = el.getparent()
        if etree.QName(el).localname == "ext" and el.get("uri") is None:
            break  # a:ext cx= cy= is a shape's size, empty by design
        remove_keep_tail(el)
        el = up
