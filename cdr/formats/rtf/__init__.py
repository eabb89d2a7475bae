"""RTF: rebuilt from an allow-list of control words and destinations, fields and objects disarmed.

The file is tokenised once into a tree of groups (iteratively, nesting bounded). A destination word
or a \\* in the middle of a group switches the rest of that group for a reader, so the rest is given
a group of its own first (canonicalize); then objects, remote templates and fetching fields are
removed with their own threat ids (disarm), and finally only control words, destinations and symbols
of the allow-list (vocab.py), shape properties of its list included, are kept (restrict); dropped ones
are reported once per file, counted. Pictures are kept only when their data is an image of the type
they name, cut at that image's end (check_pictures, pictures.py). Kept tokens are written back byte for
byte, so text, formatting and pictures (\\pict) survive unchanged. oletools' rtfobj cross-checks the
result for object data our tokenizer might not have seen (it mimics Word's lenient parser).
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import Malformed, ToolMissing
from ...handler import Context, Handler, Rebuilt, register
from ...model import Detection, Threat
from .pictures import Rejected, hex_digits, hex_ok, image_end, picture_kind
from .vocab import (
    ALLOWED_DEST,
    ALLOWED_SYMBOLS,
    ALLOWED_WORDS,
    DESTINATIONS,
    DROPPED_DEST,
    PICTURE_TYPES,
    SHAPE_PROPS,
    STARRED_WORDS,
    word_allowed,
)

MAX_DEPTH = 1000

# Control words whose group carries an embedded object or its data.
_OBJECT_WORDS = {b"objdata", b"objupdate", b"objlink", b"objautlink", b"objemb", b"objocx", b"objhtml",
                 b"objsub", b"objpub", b"objicemb", b"objclass", b"objname", b"objsect", b"objalias",
                 b"oleclsid", b"datastore"}
# Field instructions that pull content from elsewhere or run something.
# MACROBUTTON runs a macro (or Word command) on double-click, DATABASE queries an external data
# source, RD pulls another file into indexes/TOCs.
_FETCHING_FIELDS = {"DDE", "DDEAUTO", "INCLUDETEXT", "INCLUDEPICTURE", "INCLUDE", "IMPORT", "LINK",
                    "MACROBUTTON", "DATABASE", "RD"}
# Field keywords kept (the allow-list): page and document numbers, dates, document properties, references,
# indexes and tables of contents, numbering, form fields, mail-merge names and formulas; HYPERLINK only to
# web, mail and in-document addresses. Any other keyword Word might know (EMBED, PRINT, PRIVATE, a damaged
# name...) becomes its result text. A keyword that is not ASCII (a local name, read as a bookmark) stays.
_SAFE_FIELDS = frozenset("""
    PAGE NUMPAGES SECTIONPAGES SECTION DATE TIME CREATEDATE SAVEDATE PRINTDATE EDITTIME AUTHOR TITLE SUBJECT
    KEYWORDS COMMENTS LASTSAVEDBY REVNUM NUMWORDS NUMCHARS FILENAME FILESIZE TEMPLATE DOCPROPERTY DOCVARIABLE
    INFO USERNAME USERINITIALS USERADDRESS HYPERLINK TOC TOA TA TC XE INDEX PAGEREF REF NOTEREF SEQ STYLEREF
    FORMTEXT FORMCHECKBOX FORMDROPDOWN SYMBOL EQ ADVANCE LISTNUM AUTONUM AUTONUMLGL AUTONUMOUT MERGEFIELD
    MERGEREC MERGESEQ NEXT NEXTIF SKIPIF IF COMPARE QUOTE SET ASK FILLIN GOTOBUTTON BIDIOUTLINE SHAPE CITATION
    BIBLIOGRAPHY ADDRESSBLOCK GREETINGLINE BARCODE DISPLAYBARCODE MERGEBARCODE AUTOTEXT AUTOTEXTLIST GLOSSARY
""".split())
# Character-formatting words Word and LibreOffice put around field instructions. A subgroup of an
# instruction made only of these (plus text) is "plain"; anything else could hide or split the keyword.
_CHAR_FMT = {b"plain", b"b", b"i", b"ul", b"ulnone", b"uld", b"uldb", b"ulw", b"ulwave", b"uldash", b"ulc",
             b"strike", b"striked", b"caps", b"scaps", b"outl", b"shad", b"embo", b"impr", b"v", b"webhidden",
             b"f", b"fs", b"cf", b"cb", b"cs", b"highlight", b"chcbpat", b"chcfpat", b"chshdng", b"up", b"dn",
             b"sub", b"super", b"nosupersub", b"expnd", b"expndtw", b"kerning", b"charscalex", b"lang",
             b"langfe", b"langnp", b"langfenp", b"noproof", b"rtlch", b"ltrch", b"fcs", b"hich", b"dbch",
             b"loch", b"insrsid", b"charrsid", b"delrsid", b"af", b"afs", b"ab", b"ai", b"acf", b"alang",
             b"aul", b"aup", b"adn", b"g", b"cgrid", b"u", b"uc", b"par", b"line", b"tab"}
# Destinations a reader skips without adding their text (besides any {\*\...} group).
_NO_TEXT_DEST = {b"bkmkstart", b"bkmkend", b"atnid", b"atnauthor", b"atrfstart", b"atrfend", b"atnref",
                 b"atndate", b"atnicn", b"atnparent", b"annotation", b"datafield", b"formfield", b"xe", b"tc",
                 b"pict", b"object", b"fldinst", b"sp", b"shpinst", b"nonshppict", b"footnote", b"txe", b"rxe"}
# Shape properties naming a linked (not embedded) picture.
_LINK_PROPS = {"pibname", "fillblipname", "linefillblipname"}
_SAFE_LINK = re.compile(r"^(https?://|mailto:|#)", re.I)  # "#x": a bookmark in the same document
_TOKEN = re.compile(rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\([^a-zA-Z])|([{}])|([^\\{}]+)|(\\)$",
                    re.S)


@dataclass(slots=True)
class Tok:
    kind: str  # w control word, s control symbol, x hex byte, t text, b \bin data
    raw: bytes
    word: bytes = b""
    param: int | None = None


@dataclass(slots=True)
class Group:
    children: list = field(default_factory=list)

    def first_word(self) -> bytes:
        """The destination word: the first control word, skipping a leading \\*."""
        for c in self.children:
            if isinstance(c, Tok):
                if c.kind == "s" and c.raw == b"\\*":
                    continue
                if c.kind == "w":
                    return c.word
                if c.kind == "t" and not c.raw.strip():
                    continue
            return b""
        return b""

    def starred(self) -> bool:
        for c in self.children:
            if isinstance(c, Tok) and c.kind == "t" and not c.raw.strip():
                continue
            return isinstance(c, Tok) and c.kind == "s" and c.raw == b"\\*"
        return False

    def words(self) -> set[bytes]:
        return {c.word for c in self.children if isinstance(c, Tok) and c.kind == "w"}


def parse(data: bytes) -> tuple[Group, bool]:
    """Tokenise into a tree. Returns (root group, repaired) where repaired means braces were fixed."""
    start = data.find(b"{")
    if start < 0 or not data[start:start + 6].lower().startswith((b"{\\rtf", b"{\\rt0")):
        raise Malformed("not an RTF document", "RTF 文書として読み取れません")
    root: Group | None = None
    stack: list[Group] = []
    pos, n = start, len(data)
    repaired = False
    while pos < n:
        m = _TOKEN.match(data, pos)
        if m is None:  # cannot happen with the catch-all alternatives; fail closed anyway
            raise Malformed("RTF tokenizer stalled", "RTF を解析できません")
        pos = m.end()
        word, param, hexd, sym, brace, text, lone = m.groups()
        if brace == b"{":
            g = Group()
            if stack:
                stack[-1].children.append(g)
            elif root is None:
                root = g
            else:  # a second top-level group after the document ended: Word ignores it
                repaired = True
                break
            stack.append(g)
            if len(stack) > MAX_DEPTH:
                raise Malformed("RTF groups nested too deeply", "RTF の入れ子が深すぎます")
            continue
        if brace == b"}":
            if not stack:
                repaired = True
                break
            stack.pop()
            if not stack:
                if data[pos:].strip(b"\x00\r\n\t "):
                    repaired = True  # trailing data after the document: dropped
                break
            continue
        if not stack:
            continue
        cur = stack[-1]
        if word is not None:
            p = int(param) if param is not None else None
            if word == b"bin" and p and p > 0:
                cur.children.append(Tok("w", m.group(0), word, p))
                cur.children.append(Tok("b", data[pos:pos + p]))
                pos += p
                continue
            cur.children.append(Tok("w", m.group(0), word, p))
        elif hexd is not None:
            cur.children.append(Tok("x", m.group(0), param=int(hexd, 16)))
        elif sym is not None:
            cur.children.append(Tok("s", m.group(0)))
        elif text is not None:
            cur.children.append(Tok("t", text))
        elif lone is not None:
            repaired = True
    if stack:
        repaired = True  # unclosed groups: serialisation closes them
    assert root is not None
    return root, repaired


# Text that would run into a control word written just before it (more letters, more digits, a sign
# and digits, or the space a reader takes as its delimiter).
_GLUES = re.compile(rb"[a-zA-Z0-9 ]|-[0-9]")


def serialize(root: Group) -> bytes:
    """The tree as bytes. Tokens keep their bytes; where something between a control word and text was
    dropped, a space keeps the text from joining the word, so the output reads back as this tree."""
    out: list[bytes] = []
    open_word = False  # the last thing written is a control word without its delimiting space
    # Iterative walk so deep (but allowed) nesting cannot exhaust the Python stack.
    work: list = [root]
    while work:
        item = work.pop()
        if isinstance(item, bytes):
            out.append(item)
            open_word = False
        elif isinstance(item, Tok):
            if open_word and item.kind == "t" and _GLUES.match(item.raw):
                out.append(b" ")
            out.append(item.raw)
            open_word = item.kind == "w" and not item.raw.endswith(b" ")
        else:
            work.append(b"}")
            work.extend(reversed(item.children))
            work.append(b"{")
    return b"".join(out)


def _plain(g: Group) -> str:
    """The literal text of a group and its subgroups (field instructions are ASCII in practice)."""
    parts: list[str] = []
    stack: list = [g]
    while stack:
        item = stack.pop()
        if isinstance(item, Group):
            stack.extend(reversed(item.children))
        elif item.kind == "t":
            parts.append(item.raw.decode("latin-1"))
        elif item.kind == "x":
            parts.append(chr(item.param or 0))
        elif item.kind == "s" and item.raw in (b"\\\\", b"\\{", b"\\}"):
            parts.append(item.raw[1:].decode())
        elif item.kind == "w" and item.word == b"u" and item.param is not None:
            parts.append(chr(item.param % 65536))
    return "".join(parts).replace("\r", "").replace("\n", "")


def _reader_text(g: Group) -> str:
    """The instruction text as an RTF reader builds it: {\\*\\...} and no-text destinations skipped,
    \\uN fallback characters skipped per \\ucN (unlike _plain, which reads every byte)."""
    parts: list[str] = []
    frames: list[tuple] = [(iter(g.children), [1, 0])]  # [uc, chars still to skip]
    while frames:
        it, st = frames[-1]
        item = next(it, None)
        if item is None:
            frames.pop()
            continue
        if isinstance(item, Group):
            if not (item.starred() or item.first_word() in _NO_TEXT_DEST):
                frames.append((iter(item.children), [st[0], 0]))
            continue
        if item.kind == "w":
            if item.word == b"u" and item.param is not None:
                parts.append(chr(item.param % 65536))
                st[1] = st[0]
            elif item.word == b"uc" and item.param is not None:
                st[0] = max(0, item.param)
            elif item.word in (b"par", b"line", b"tab"):
                parts.append(" ")
            continue
        if item.kind in ("x", "s") and st[1] > 0:
            st[1] -= 1
            continue
        if item.kind == "t":
            raw = item.raw.replace(b"\r", b"").replace(b"\n", b"")
            cut = min(st[1], len(raw))
            st[1] -= cut
            parts.append(raw[cut:].decode("latin-1"))
        elif item.kind == "x":
            parts.append(chr(item.param or 0))
        elif item.kind == "s" and item.raw in (b"\\\\", b"\\{", b"\\}"):
            parts.append(item.raw[1:].decode())
    return "".join(parts)


def _only_formatting(g: Group, top: bool) -> bool:
    """The group's own tokens are text and character formatting; `top` allows the leading \\*\\fldinst."""
    lead = True
    for x in g.children:
        if isinstance(x, Group) or (lead and x.kind == "t" and not x.raw.strip()):
            continue
        if x.kind == "s" and x.raw == b"\\*":
            if not (top and lead):
                return False
        elif x.kind == "b":
            return False
        elif x.kind == "w" and x.word not in _CHAR_FMT and not (top and x.word == b"fldinst"):
            return False
        lead = False
    return True


def _benign_sub(g: Group) -> bool:
    """Word's own subgroups inside an instruction: hex \\datafield, and \\formfield without macros."""
    first = g.first_word()
    if g.starred() and first == b"datafield":
        return all(isinstance(x, Tok) and (x.raw == b"\\*" or (x.kind == "w" and x.word == b"datafield")
                                           or (x.kind == "t" and re.fullmatch(rb"[0-9a-fA-F\s]*", x.raw)))
                   for x in g.children)
    if g.starred() and first == b"formfield":
        return all(_find_group(g, w) is None for w in (b"ffentrymcr", b"ffexitmcr", b"field", b"objdata"))
    return False


def _obfuscated(inst: Group) -> bool:
    """An instruction with anything beyond text and formatting groups: readers may see another keyword."""
    if not _only_formatting(inst, True):
        return True
    stack = [c for c in inst.children if isinstance(c, Group)]
    while stack:
        sub = stack.pop()
        if _benign_sub(sub):
            continue
        if not _only_formatting(sub, False):  # also catches every other {\*\...} and destination
            return True
        stack.extend(c for c in sub.children if isinstance(c, Group))
    return False


def _instructions(fld: Group) -> int:
    """How many instruction groups belong to this field (not to fields nested in its result)."""
    count, stack = 0, [c for c in fld.children if isinstance(c, Group)]
    while stack:
        c = stack.pop()
        first = c.first_word()
        if first in (b"fldrslt", b"field"):
            continue
        if b"fldinst" in c.words():
            count += 1
            continue
        stack.extend(x for x in c.children if isinstance(x, Group))
    return count


def _contains_field(g: Group) -> bool:
    stack = list(g.children)
    while stack:
        item = stack.pop()
        if isinstance(item, Group):
            if item.first_word() == b"field":
                return True
            stack.extend(item.children)
    return False


def _own_instruction(fld: Group) -> Group | None:
    """The field's instruction group wherever it sits, but not one of a field nested in it (its result or a
    damaged group may hold whole fields: their instruction is not this field's)."""
    stack = [c for c in reversed(fld.children) if isinstance(c, Group)]
    while stack:
        c = stack.pop()
        if c.first_word() in (b"fldrslt", b"field"):
            continue
        if b"fldinst" in c.words():
            return c
        stack.extend(x for x in reversed(c.children) if isinstance(x, Group))
    return None


def _find_group(g: Group, word: bytes) -> Group | None:
    """The first group below `g` (at any depth) that carries the control word `word`."""
    stack = [c for c in reversed(g.children) if isinstance(c, Group)]
    while stack:
        c = stack.pop()
        if word in c.words():
            return c
        stack.extend(x for x in reversed(c.children) if isinstance(x, Group))
    return None


def _field_verdict(fld: Group) -> str | None:
    """Why a field must be neutralised, or None to keep it."""
    inst = next((c for c in fld.children if isinstance(c, Group) and c.first_word() == b"fldinst"), None)
    if inst is None:
        # An instruction that is not the usual direct child (formatting first, wrapped in another
        # group): readers still find it, so we judge it the same way, or neutralise when there is none.
        inst = _own_instruction(fld)
        if inst is None:
            return "field without a recognisable instruction"
    if _contains_field(inst):
        return "field instruction built from nested fields"
    if _instructions(fld) > 1:
        return "field with more than one instruction"
    if _obfuscated(inst):
        return "field instruction split by destinations or unusual groups (obfuscated)"
    # Judge what a reader sees and, to be safe, every byte too: either naming a fetching field is enough.
    for text in (_reader_text(inst), _plain(inst)):
        words = re.findall(r'"[^"]*"|\S+', text)
        kw = re.match(r'[\s"\\]*([^\s"\\]*)', text).group(1).upper()  # quotes never hide the keyword
        kw = unicodedata.normalize("NFKC", kw).upper()  # full-width letters spell the same keyword
        if kw in _FETCHING_FIELDS:
            return f"{kw} field"
        if kw.isascii() and kw and not kw.startswith("=") and kw not in _SAFE_FIELDS:
            return f"{kw[:40]} field (not in the allow-list)"
        if kw == "HYPERLINK":
            # Where an unterminated or control-character-split address ends is the reader's guess, not ours.
            if text.count('"') % 2 or re.search(r"[\x00-\x1f\x7f]", text):
                return "HYPERLINK with an unterminated or broken address"
            target = _link_target(words[1:])
            if target and not _SAFE_LINK.match(target):
                return f"HYPERLINK to {target[:80]}"
    return None


def _link_target(args: list[str]) -> str:
    """The address of a HYPERLINK field; \\l "bookmark", \\o "tip" and \\t "frame" arguments are not it."""
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a.startswith("\\"):
            skip = a.lower() in ("\\l", "\\o", "\\t")
        else:
            return a.strip('"')
    return ""


def _result_group(g: Group, word: bytes) -> Group | None:
    """The content of the `word` subgroup (fldrslt / result) as a plain group, its keyword dropped."""
    for c in g.children:
        if isinstance(c, Group) and c.first_word() == word:
            kept = [x for x in c.children if not (isinstance(x, Tok) and x.kind == "w" and x.word == word)]
            return Group(kept)
    return None


def _is_remote(target: str) -> bool:
    t = target.strip().strip('"').lower()
    return "://" in t or t.startswith(("\\\\", "//", "file:", "http", "ftp"))


def _is_star(t: object) -> bool:
    return isinstance(t, Tok) and t.kind == "s" and t.raw == b"\\*"


def _blank(t: object) -> bool:
    return isinstance(t, Tok) and t.kind == "t" and not t.raw.strip()


def canonicalize(root: Group) -> None:
    """Give every destination a group of its own, as a reader sees it. A destination word (or a \\*)
    after the start of a group switches the rest of that group ({\\b x\\fldinst y} reads y as a field
    instruction; {^*\\fldinst y} too), so from there on the tokens move into a new subgroup, one per
    such word. Files written by Word or LibreOffice have none and come through unchanged."""
    stack = [root]
    while stack:
        g = stack.pop()
        ch = g.children
        n, i = len(ch), 0
        while i < n and _blank(ch[i]):
            i += 1
        if i < n and _is_star(ch[i]):
            i += 1
            while i < n and _blank(ch[i]):
                i += 1
        if i < n and isinstance(ch[i], Tok) and ch[i].kind == "w":
            i += 1
        cuts: list[int] = []
        starred = False  # a \\* cut just before: its destination word belongs to the same new group
        for j in range(i, n):  # the hottest loop of the rebuild: no helper calls
            t = ch[j]
            if t.__class__ is not Tok:
                starred = False
            elif t.kind == "w":
                if not starred and t.word in DESTINATIONS:
                    cuts.append(j)
                starred = False
            elif t.kind == "s" and t.raw == b"\\*":
                cuts.append(j)
                starred = True
            elif t.kind != "t" or t.raw.strip():
                starred = False
        if cuts:
            bounds = cuts + [n]
            g.children = ch[:cuts[0]] + [Group(ch[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
        stack.extend(c for c in g.children if isinstance(c, Group))


def restrict(root: Group) -> Counter:
    """Keep only what the allow-list names (vocab.py); return what was dropped, by name. A destination
    outside it goes with its whole group; an unknown word alone (a reader ignores it and keeps reading
    the group's text); \\bin data only directly inside a picture; shape properties by name (SHAPE_PROPS)."""
    dropped: Counter = Counter()
    stack: list[tuple[Group, bool]] = [(root, False)]
    while stack:
        g, pict = stack.pop()
        lead, starred = g.first_word(), g.starred()
        pict = lead == b"pict"  # \\bin data belongs to the picture group itself, not to groups within it
        is_dest = starred or lead in DESTINATIONS or g is root
        new: list = []
        at_lead, keep_bin = True, False
        for c in g.children:
            if isinstance(c, Group):
                w, st = c.first_word(), c.starred()
                if st and w not in ALLOWED_DEST and w not in STARRED_WORDS:
                    dropped["\\*\\" + w.decode() if w else "\\*"] += 1
                elif not st and w in DROPPED_DEST:
                    dropped["\\" + w.decode()] += 1
                elif not st and w == b"sp" and (name := _shape_prop(c)) not in SHAPE_PROPS:
                    # Shape properties by allow-list too: Word ignores a name it does not know.
                    dropped["\\sp " + (name[:40] if name else "(no name)")] += 1
                else:
                    new.append(c)
                    stack.append((c, pict))
                continue
            if c.kind == "t" and at_lead and not c.raw.strip():
                new.append(c)
                continue
            lead_tok, at_lead = at_lead, at_lead and _is_star(c)
            if c.kind == "b":
                if keep_bin:
                    new.append(c)
                continue
            if c.kind == "w":
                if c.word == b"bin":
                    keep_bin = pict
                    if not pict:
                        dropped["\\bin"] += 1
                        continue
                elif lead_tok and is_dest and c.word == lead:
                    pass  # the group's own destination: its parent already judged it
                elif c.word not in ALLOWED_WORDS and not word_allowed(c.word):
                    dropped["\\" + c.word.decode()] += 1
                    continue
                new.append(c)
            elif c.kind == "s":
                if c.raw in ALLOWED_SYMBOLS or (lead_tok and _is_star(c) and starred):
                    new.append(c)
                else:
                    dropped[c.raw.decode("latin-1")] += 1
            else:  # text and \\'xx bytes
                new.append(c)
        g.children = new
    return dropped


def _shape_prop(sp: Group) -> str:
    """The NAME of {\\sp{\\sn NAME}{\\sv VALUE}}, as written (Word compares it exactly)."""
    return next((_plain(x).strip() for x in sp.children if isinstance(x, Group) and x.first_word() == b"sn"), "")


# Writes a PNG or JPEG picture anew from its bytes (the image family's rebuild_picture), given when rebuilding.
Redraw = Callable[[bytes], bytes | None]


def _picture_verdict(pict: Group, redraw: Redraw | None = None) -> tuple[Threat | None, bool]:
    """Judge one \\pict group: (threat, keep). Its data must be hex (or one \\binN of N bytes) and be an
    image of the one type it names; bytes after that image's end are cut (the group is rewritten). With
    `redraw`, a PNG or JPEG picture is written anew from what it draws."""
    types: list[bytes] = []
    words: dict[bytes, int | None] = {}
    bins: list[tuple[int, Tok]] = []  # (index of the \\bin word, its data token)
    hexparts: list[bytes] = []
    ch = pict.children
    try:
        for i, c in enumerate(ch):
            if isinstance(c, Group):
                first = c.first_word()
                if not (c.starred() and first in (b"picprop", b"blipuid")):
                    raise Rejected("picture with an unexpected group in its data")
                if first == b"blipuid" and not all(isinstance(x, Tok) and (x.kind in ("w", "s") or (
                        x.kind == "t" and hex_ok(x.raw))) for x in c.children):
                    raise Rejected("picture whose identifier is not hex")
            elif c.kind == "w":
                words[c.word] = c.param
                if c.word in PICTURE_TYPES:
                    types.append(c.word)
                elif c.word == b"bin":
                    if i + 1 >= len(ch) or not (isinstance(ch[i + 1], Tok) and ch[i + 1].kind == "b"):
                        raise Rejected("picture whose \\bin data is missing")
                    bins.append((i, ch[i + 1]))
            elif c.kind == "b":
                continue
            elif c.kind == "t":
                if not hex_ok(c.raw):
                    raise Rejected("picture data that is not hex")
                hexparts.append(hex_digits(c.raw))
            else:  # \\'xx bytes or control symbols amid the data
                raise Rejected("picture data that is not hex")
        kind = picture_kind(types)
        digits = b"".join(hexparts)
        if bins:
            if len(bins) > 1 or digits:
                raise Rejected("picture with more than one block of data")
            i, tok = bins[0]
            if len(tok.raw) != ch[i].param:
                raise Rejected("picture whose \\bin data is shorter than announced")
            data = tok.raw
        else:
            if len(digits) % 2:
                raise Rejected("picture data with an odd number of hex digits")
            data = bytes.fromhex(digits.decode("ascii"))
        end = image_end(kind, data, words)
    except Rejected as why:
        return Threat("rtf.picture", "picture", "removed", str(why)), False
    extra = len(data) - end
    hidden = Threat("rtf.hidden_data", "picture", "removed",
                    f"{extra} bytes after the end of a {kind.upper()} picture cut") if extra > 0 else None
    if redraw is not None and kind in ("png", "jpeg"):
        new = redraw(data[:end])
        if new is not None and new != data[:end]:  # the same bytes: written as they were (cut below)
            _replace_data(pict, new, bins)
            return hidden, True  # none of the sender's picture bytes is left, past its end included
    if not extra:
        return None, True
    if bins:
        i, tok = bins[0]
        ch[i] = Tok("w", b"\\bin%d " % end, b"bin", end)
        ch[i + 1] = Tok("b", tok.raw[:end])
    else:
        _cut_hex(pict, 2 * end)
    return hidden, True


def _replace_data(pict: Group, data: bytes, bins: list[tuple[int, Tok]]) -> None:
    """The picture's data replaced by `data`, in the form it had (\\binN, or hex in lines of 128 digits)."""
    if bins:
        i, _tok = bins[0]
        pict.children[i] = Tok("w", b"\\bin%d " % len(data), b"bin", len(data))
        pict.children[i + 1] = Tok("b", data)
        return
    digits = data.hex().encode("ascii")
    text: Tok | None = Tok("t", b"\r\n" + b"\r\n".join(digits[k:k + 128] for k in range(0, len(digits), 128)))
    new: list = []
    for c in pict.children:
        if isinstance(c, Tok) and c.kind == "t":
            if text is not None:
                new.append(text)
                text = None
            continue
        new.append(c)
    pict.children = new


def _cut_hex(pict: Group, keep: int) -> None:
    """Keep the first `keep` hex digits of the picture's data, the text as it was written up to there."""
    new: list = []
    for c in pict.children:
        if isinstance(c, Tok) and c.kind == "t":
            if keep <= 0:
                continue
            # Runs of digits between line breaks: a few thousand even for a large picture.
            for run in _HEX_RUN.finditer(c.raw):
                if run.end() - run.start() >= keep:
                    c = Tok("t", c.raw[:run.start() + keep])
                    keep = 0
                    break
                keep -= run.end() - run.start()
        new.append(c)
    pict.children = new


_HEX_RUN = re.compile(rb"[0-9a-fA-F]+")


def check_pictures(root: Group, redraw: Redraw | None = None) -> list[Threat]:
    """Every \\pict group judged by _picture_verdict; rejected ones leave the tree."""
    threats: list[Threat] = []
    stack = [root]
    while stack:
        g = stack.pop()
        new: list = []
        for c in g.children:
            if isinstance(c, Group):
                if c.first_word() == b"pict":
                    threat, keep = _picture_verdict(c, redraw)
                    if threat is not None:
                        threats.append(threat)
                    if not keep:
                        continue
                stack.append(c)  # a picture's \\*\\picprop holds shape properties, judged like any other
            new.append(c)
        g.children = new
    return threats


def _dropped_threat(dropped: Counter, action: str) -> Threat:
    top = ", ".join(f"{k} ({v})" for k, v in dropped.most_common(6))
    return Threat("rtf.unknown_control", "document", action,
                  f"{sum(dropped.values())} control words or destinations outside the allow-list: {top}"[:300])


def disarm(root: Group) -> list[Threat]:
    """Rewrite the tree in place; return what was removed."""
    threats: list[Threat] = []
    # Root-level object words (no enclosing group to drop): remove the words themselves.
    root.children = [c for c in root.children
                     if not (isinstance(c, Tok) and c.kind == "w" and c.word in _OBJECT_WORDS | {b"object"})]
    stack = [root]
    while stack:
        g = stack.pop()
        new: list = []
        for c in g.children:
            if not isinstance(c, Group):
                new.append(c)
                continue
            first = c.first_word()
            words = c.words()
            if first == b"object" or b"object" in words:
                res = _result_group(c, b"result")
                cls = next((_plain(x).strip() for x in c.children
                            if isinstance(x, Group) and x.first_word() == b"objclass"), "")
                threats.append(Threat("rtf.object", f"object {cls}".strip(), "removed",
                                      "embedded OLE object (result picture kept)" if res else "embedded OLE object"))
                if res is not None:
                    new.append(res)
                    stack.append(res)
                continue
            if first in _OBJECT_WORDS or words & _OBJECT_WORDS:
                threats.append(Threat("rtf.object", (first or b"").decode(), "removed", "object data"))
                continue
            if first == b"template":
                target = _plain(c).strip()
                if _is_remote(target):
                    threats.append(Threat("rtf.remote_template", target[:200], "removed", "attached template"))
                continue  # a local template path is dropped silently: it only names a file
            if first == b"sp":
                name = next((_plain(x).strip().lower() for x in c.children
                             if isinstance(x, Group) and x.first_word() == b"sn"), "")
                val = next((x for x in c.children if isinstance(x, Group) and x.first_word() == b"sv"), None)
                if name in _LINK_PROPS and val is not None and any(
                        _is_remote(t) for t in (_reader_text(val), _plain(val))):
                    # A linked picture: Word fetches the URL on open. Dropping the property keeps the
                    # embedded copy (pib) if there is one.
                    threats.append(Threat("rtf.remote_template", _plain(val).strip()[:200], "removed",
                                          "linked picture (shape property)"))
                    continue
            if first == b"fldinst" and g.first_word() != b"field":
                # An instruction outside any field (its \\field damaged or cut): it shows nothing and a
                # lenient reader might still run it.
                threats.append(Threat("rtf.field", _plain(c).strip()[:80] or "fldinst", "removed",
                                      "field instruction outside a field"))
                continue
            if first == b"field" or b"field" in words:
                why = _field_verdict(c)
                if why:
                    res = _result_group(c, b"fldrslt") or Group()
                    threats.append(Threat("rtf.field", why, "neutralized", "field result kept as text"))
                    new.append(res)
                    stack.append(res)
                    continue
            new.append(c)
            stack.append(c)
        g.children = new
    return threats


def _rtfobj_findings(data: bytes) -> list[Threat]:
    """oletools' independent look for objects. Fails closed: if it cannot run, nothing is vouched for."""
    try:
        from oletools.rtfobj import RtfObjParser
    except ImportError as exc:
        raise ToolMissing("oletools (rtfobj) is not available", "oletools (rtfobj) が利用できません") from exc
    try:
        p = RtfObjParser(data)
        p.parse()
    except Exception as exc:
        raise Malformed(f"the RTF object scan failed ({type(exc).__name__})",
                        "RTF の埋め込みオブジェクト検査に失敗しました", threat_id="rtf.object") from None
    return [Threat("rtf.object", f"offset {o.start}", "found", "object data (rtfobj)") for o in p.objects]


def rebuild_tree(data: bytes, redraw: Redraw | None = None) -> tuple[Group, list[Threat], bool]:
    """Parse, canonicalize, disarm and restrict: the tree to write, what was removed, whether braces were
    repaired. Words outside the allow-list are "reported": every reader ignores them (an unknown word) or
    shows nothing of them (a destination we leave out), so dropping them alone does not sanitize a file."""
    root, repaired = parse(data)
    canonicalize(root)
    threats = disarm(root)
    dropped = restrict(root)
    threats += check_pictures(root, redraw)
    if dropped:
        # What restrict left out can change a field (a dropped group held its instruction): a second look
        # judges the tree as it will be written, so the output inspects clean. Nothing dropped, nothing changed.
        threats += disarm(root)
        threats.append(_dropped_threat(dropped, "reported"))
    return root, threats, repaired


def findings(data: bytes) -> list[Threat]:
    _, removed, _ = rebuild_tree(data)
    found = [t if t.action == "reported" else Threat(t.id, t.location, "found", t.detail) for t in removed]
    if not any(t.id == "rtf.object" for t in found):
        found += _rtfobj_findings(data)
    return found


# --- text rendition ------------------------------------------------------------------------------

_CHARSET_CP = {0: None, 128: "cp932", 129: "cp949", 130: "johab", 134: "gbk", 136: "big5", 161: "cp1253",
               162: "cp1254", 163: "cp1258", 177: "cp1255", 178: "cp1256", 186: "cp1257", 204: "cp1251",
               222: "cp874", 238: "cp1250", 77: "mac_roman", 78: "shift_jis"}
_SKIP = {b"fonttbl", b"colortbl", b"stylesheet", b"info", b"pict", b"themedata", b"colorschememapping",
         b"datastore", b"latentstyles", b"listtable", b"listoverridetable", b"rsidtbl", b"generator",
         b"xmlnstbl", b"mmathPr", b"fldinst", b"objdata", b"objclass", b"template", b"docvar", b"filetbl",
         b"revtbl", b"pgdsctbl", b"userprops", b"bkmkstart", b"bkmkend", b"nonshppict", b"pn", b"pntext",
         b"listtext", b"sp", b"xe", b"tc", b"atnid", b"atnauthor", b"wgrffmtfilter", b"ftnsep", b"ftnsepc",
         b"aftnsep", b"aftnsepc", b"protusertbl", b"passwordhash"}
_BREAKS = {b"par": "\n", b"line": "\n", b"sect": "\n", b"page": "\n", b"row": "\n", b"tab": "\t",
           b"cell": "\t", b"emdash": "\u2014", b"endash": "\u2013", b"bullet": "\u2022", b"lquote": "\u2018",
           b"rquote": "\u2019", b"ldblquote": "\u201c", b"rdblquote": "\u201d", b"emspace": "\u2003",
           b"enspace": "\u2002", b"qmspace": "\u2005", b"nestcell": "\t", b"nestrow": "\n"}
_CPG = {932: "cp932", 936: "gbk", 949: "cp949", 950: "big5", 1250: "cp1250", 1251: "cp1251", 1252: "cp1252",
        1253: "cp1253", 1254: "cp1254", 1255: "cp1255", 1256: "cp1256", 1257: "cp1257", 1258: "cp1258",
        874: "cp874", 10000: "mac_roman", 437: "cp437", 850: "cp850", 65001: "utf-8"}


def _fonts(root: Group, default: str) -> dict[int, str]:
    fonts: dict[int, str] = {}
    tbl = next((c for c in root.children if isinstance(c, Group) and c.first_word() == b"fonttbl"), None)
    if tbl is None:
        return fonts
    entries = [c for c in tbl.children if isinstance(c, Group)] or [tbl]
    for e in entries:
        num, cp = None, None
        for t in e.children:
            if isinstance(t, Tok) and t.kind == "w":
                if t.word == b"f" and num is None:
                    num = t.param
                elif t.word == b"fcharset" and t.param is not None:
                    cp = _CHARSET_CP.get(t.param, cp)
                elif t.word == b"cpg" and t.param in _CPG:
                    cp = _CPG[t.param]
        if num is not None:
            fonts[num] = cp or default
    return fonts


def rtf_text(data: bytes) -> str:
    """Plain text of an RTF document: \\'xx bytes decoded in the font's or document's code page."""
    root, _ = parse(data)
    default = "cp1252"
    for t in root.children[:40]:
        if isinstance(t, Tok) and t.kind == "w" and t.word == b"ansicpg" and t.param in _CPG:
            default = _CPG[t.param]
        elif isinstance(t, Tok) and t.kind == "w" and t.word == b"deff" and t.param is not None:
            pass
    fonts = _fonts(root, default)
    deff = next((t.param for t in root.children[:40]
                 if isinstance(t, Tok) and t.kind == "w" and t.word == b"deff"), None)
    base_cp = fonts.get(deff, default) if deff is not None else default

    out: list[str] = []
    pending = bytearray()
    # Each frame: (iterator over children, cp, uc, skip_upr)
    state = {"cp": base_cp, "uc": 1, "skip": 0}

    def flush() -> None:
        if pending:
            out.append(bytes(pending).decode(state["cp"], "replace"))
            pending.clear()

    frames: list[tuple] = [(iter(root.children), dict(state))]
    while frames:
        it, st = frames[-1]
        state = st
        item = next(it, None)
        if item is None:
            flush()
            frames.pop()
            continue
        if isinstance(item, Group):
            first = item.first_word()
            if first == b"upr":  # ANSI + Unicode twin: read only the \ud part
                ud = next((c for c in item.children if isinstance(c, Group) and c.first_word() == b"ud"), None)
                flush()
                if ud is not None:
                    frames.append((iter(ud.children), dict(st, skip=0)))
                continue
            if first in _SKIP or (item.starred() and first != b"ud"):
                continue
            flush()
            frames.append((iter(item.children), dict(st, skip=0)))
            continue
        if item.kind == "w":
            w = item.word
            if w == b"u" and item.param is not None:
                flush()
                out.append(chr(item.param % 65536))
                st["skip"] = st["uc"]
                continue
            if w == b"uc" and item.param is not None:
                st["uc"] = max(0, item.param)
                continue
            if w == b"f" and item.param is not None:
                flush()
                st["cp"] = fonts.get(item.param, base_cp)
                continue
            if w in _BREAKS:
                flush()
                out.append(_BREAKS[w])
                st["skip"] = 0
                continue
            continue
        if item.kind == "b":
            st["skip"] = 0
            continue
        if item.kind == "x":
            if st["skip"] > 0:
                st["skip"] -= 1
                continue
            pending.append(item.param or 0)
            continue
        if item.kind == "s":
            sym = item.raw[1:2]
            if st["skip"] > 0 and sym in (b"\\", b"{", b"}", b"~", b"_"):
                st["skip"] -= 1
                continue
            if sym in (b"\\", b"{", b"}"):
                pending.extend(sym)
            elif sym == b"~":
                flush()
                out.append("\u00a0")
            elif sym == b"_":
                flush()
                out.append("\u2011")
            elif sym in (b"\n", b"\r"):
                flush()
                out.append("\n")
            continue
        if item.kind == "t":
            raw = item.raw.replace(b"\r", b"").replace(b"\n", b"")
            if st["skip"] > 0 and raw:
                cut = min(st["skip"], len(raw))
                raw = raw[cut:]
                st["skip"] -= cut
            pending.extend(raw)
    text = "".join(out)
    return re.sub(r"[ \t]+\n", "\n", text).strip("\n") + "\n"


@register
class RtfHandler(Handler):
    family = "rtf"
    mime_types = ("application/rtf",)
    options = {}

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        return findings(path.read_bytes())

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        from ..image import rebuild_picture

        root, threats, repaired = rebuild_tree(src.read_bytes(), lambda data: rebuild_picture(ctx, "\\pict", data))
        out = serialize(root)
        if repaired:
            threats.append(Threat("file.malformed", ctx.name, "repaired", "unbalanced braces or trailing data"))
        # rtfobj mimics Word's lenient parser: anything it still sees as an object blocks the file.
        leftover = _rtfobj_findings(out)
        if leftover:
            raise Malformed("object data hidden in a way this sanitizer cannot rebuild safely",
                            "安全に再構築できない形で埋め込みオブジェクトが含まれています", threat_id="rtf.object")
        dst.write_bytes(out)
        return Rebuilt(threats=threats, extension=".rtf")

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        return rtf_text(path.read_bytes())
