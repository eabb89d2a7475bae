"""PowerPoint 97-2003 (.ppt/.pot/.pps) rebuilt in its own format ([MS-PPT]).

The live presentation is found the way PowerPoint finds it: Current User names the newest
UserEditAtom, whose chain of persist directories maps persist ids to records. The rebuild
re-emits one compact "full save": the DocumentContainer, masters, slides, notes and handout it
references (persist ids unchanged), a new PersistDirectoryAtom and UserEditAtom, and a new
Current User stream. Earlier edits, orphans and everything else in the old stream are gone.
Every record is checked against the known record types (pptrecords.TYPES) and its length;
unknown records are dropped with a note. Removed: the VBA project and its VBAInfo, embedded and
linked OLE objects and ActiveX controls (their shapes stay as the picture they showed), linked
media, click actions that run a program, macro or OLE verb, hyperlinks that do not go to the web,
routing slips and mail envelopes, embedded fonts, Office 2007 round-trip packages, shape scripts.
The Pictures stream is rebuilt from the pictures the drawing group names, each checked.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from . import Report, Unrebuildable, officeart
from .pptrecords import ROUND_TRIP_PACKAGES, RT, SHOWN_PERSISTS, TYPES
from .records import Rec, RecordError, parse, parse_one

if TYPE_CHECKING:
    from ...handler import Context

ROOT_CLSIDS = ("64818D10-4F9B-11CF-86EA-00AA00B929E8",)  # PowerPoint.Show.8
CU_TOKEN, CU_TOKEN_ENCRYPTED = 0xE391C05F, 0xF3D1C4DF
MAX_EDITS = 10_000
_DOCUMENT_STREAM = "PowerPoint Document"

# InteractiveInfoAtom.action ([MS-PPT] 2.4.9): macro, run program, OLE verb.
_ACTIONS = {1: "runs a macro", 2: "runs a program", 5: "runs an OLE verb"}
_HYPERLINK_ACTION, _MEDIA_ACTION = 4, 6
# ExObjList members: (threat id, what) for those removed.
_EXOBJ_REMOVED = {RT["ExOleEmbed"]: ("ole.object", "embedded OLE object"),
                  RT["ExOleLink"]: ("ole.external_link", "linked OLE object"),
                  RT["ExControl"]: ("ole.activex", "ActiveX control"),
                  RT["ExAviMovie"]: ("ole.external_link", "linked video"),
                  RT["ExMCIMovie"]: ("ole.external_link", "linked video"),
                  RT["ExMIDIAudio"]: ("ole.external_link", "linked MIDI sound"),
                  RT["ExWAVAudioLink"]: ("ole.external_link", "linked sound"),
                  RT["ExCDAudio"]: ("ole.external_link", "CD audio track")}
# Records dropped wherever they are, and how that is reported (None: a note only).
_DROPPED = {RT["VbaInfo"]: None, RT["DocRoutingSlipAtom"]: ("ole.metadata", "routing slip"),
            RT["EnvelopeData9Atom"]: ("ole.metadata", "mail envelope"),
            RT["EnvelopeFlags9Atom"]: None, RT["BroadcastDocInfo9"]: ("ole.external_link", "broadcast server"),
            RT["HtmlPublishInfo9"]: None, RT["HtmlDocInfo9Atom"]: None, RT["HtmlPublishInfoAtom"]: None,
            RT["FontEmbedDataBlob"]: None, RT["SmartTagStore11Container"]: None, RT["ExOleObjStg"]: None,
            RT["CryptSession10Container"]: None, RT["DocToolbarStates10Atom"]: None}
_BINARY_TAGS = ("___PPT9", "___PPT10", "___PPT12")


def _u32(b: bytes, pos: int = 0) -> int:
    return struct.unpack_from("<I", b, pos)[0]


def _cstring(rec: Rec) -> str:
    return rec.body.decode("utf-16-le", "replace")


def _web(target: str, hyperlinks: str) -> bool:
    from .doc import _web as web

    return hyperlinks != "drop" and web(target)


class PptRebuild:
    def __init__(self, streams: dict[str, bytes], hyperlinks: str = "web") -> None:
        self.hyperlinks = hyperlinks
        self.doc = streams.get(_DOCUMENT_STREAM)
        self.cu = streams.get("Current User")
        if self.doc is None or self.cu is None:
            raise Unrebuildable("no PowerPoint Document or Current User stream")
        self.pictures = streams.get("Pictures", b"")
        self.has_pictures = "Pictures" in streams
        self.found: list[tuple[str, str, str, str]] = []  # (id, location, action, detail)
        self.notes: list[str] = []
        self.removed_exobj: dict[int, tuple[str, str]] = {}  # exObjId -> (threat id, what)
        self.bad_links: set[int] = set()
        self.kept_links: set[int] = set()

    def report(self, tid: str, location: str, detail: str, action: str = "removed") -> None:
        self.found.append((tid, location, action, detail))  # repeats are counted by Report.merged

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # ------------------------------------------------------------------ persist directory

    def current_user(self) -> tuple[int, bytes]:
        cu = self.cu
        if len(cu) < 8 + 24:
            raise Unrebuildable("Current User stream too short")
        _vi, rtype, length = struct.unpack_from("<HHI", cu, 0)
        size, token, offset, len_name = struct.unpack_from("<IIIH", cu, 8)
        if rtype != RT["CurrentUserAtom"] or size != 0x14:
            raise Unrebuildable("damaged Current User stream")
        if token == CU_TOKEN_ENCRYPTED:
            raise Unrebuildable("encrypted presentation")
        if token != CU_TOKEN:
            raise Unrebuildable("Current User stream with an unknown header token")
        rel_at = 8 + 0x14 + len_name
        rel = cu[rel_at:rel_at + 4] if rel_at + 4 <= len(cu) else b"\x08\0\0\0"
        if _u32(rel) not in (8, 9):
            rel = b"\x08\0\0\0"
        return offset, rel

    def persist_map(self, offset: int) -> tuple[dict[int, int], Rec]:
        objects: dict[int, int] = {}
        seen: set[int] = set()
        newest: Rec | None = None
        while True:
            if offset in seen or len(seen) > MAX_EDITS:
                raise Unrebuildable("the chain of edits loops")
            seen.add(offset)
            try:
                edit = parse_one(self.doc, offset)
            except RecordError as exc:
                raise Unrebuildable(f"no UserEditAtom at {offset}: {exc}") from None
            if edit.type != RT["UserEditAtom"] or len(edit.body) not in (28, 32):
                raise Unrebuildable(f"no UserEditAtom at {offset}")
            newest = newest or edit
            last_edit, dir_offset = struct.unpack_from("<II", edit.body, 8)
            try:
                pdir = parse_one(self.doc, dir_offset)
            except RecordError as exc:
                raise Unrebuildable(f"damaged persist directory: {exc}") from None
            if pdir.type != RT["PersistDirectoryAtom"]:
                raise Unrebuildable("damaged persist directory")
            body = pdir.body
            pos = 0
            while pos < len(body):
                if pos + 4 > len(body):
                    raise Unrebuildable("damaged persist directory")
                head = _u32(body, pos)
                first, count = head & 0xFFFFF, head >> 20
                pos += 4
                if pos + 4 * count > len(body):
                    raise Unrebuildable("damaged persist directory")
                for i in range(count):
                    objects.setdefault(first + i, _u32(body, pos + 4 * i))  # newer edits win
                pos += 4 * count
            if last_edit == 0:
                break
            offset = last_edit
        assert newest is not None
        return objects, newest

    def load(self, objects: dict[int, int], pid: int) -> Rec | None:
        if pid not in objects:
            return None
        try:
            return parse_one(self.doc, objects[pid])
        except RecordError as exc:
            raise Unrebuildable(f"damaged persist object {pid}: {exc}") from None

    # ------------------------------------------------------------------ record filter

    def check(self, rec: Rec, where: str) -> bool:
        """False when the record is to be dropped (unknown); raises when it is malformed."""
        spec = TYPES.get(rec.type)
        if spec is None:
            self.note(f"unknown PowerPoint record 0x{rec.type:04X} in {where} dropped")
            return False
        size = spec[1]
        if size is not None and not rec.container and len(rec.body) != size:
            raise Unrebuildable(f"{spec[0]} record of {len(rec.body)} bytes (expected {size})")
        return True

    def clean(self, rec: Rec, where: str) -> None:
        """Filter the children of a container in place, recursively."""
        kept: list[Rec] = []
        for child in rec.children:
            if not self.check(child, where):
                continue
            t = child.type
            if t in _DROPPED:
                tell = _DROPPED[t]
                if tell:
                    self.report(tell[0], where, tell[1], "reported" if tell[0] == "ole.metadata" else "removed")
                elif t == RT["VbaInfo"]:
                    self._vba_info(child, where)
                elif t == RT["FontEmbedDataBlob"]:
                    self.note("embedded fonts not kept")
                continue
            if t in ROUND_TRIP_PACKAGES:
                self.note("Office 2007 round-trip data not kept")
                continue
            if t == RT["ProgBinaryTag"] and not self._binary_tag(child, where):
                continue
            if t in (officeart.FOPT_TYPES) and not child.container:
                found = officeart.Findings()
                try:
                    officeart.clean_fopt(child, found)
                except RecordError as exc:
                    raise Unrebuildable(str(exc)) from None
                for tid, detail in found.items:
                    self.report(tid, where, detail)
                for n in found.notes:
                    self.note(n)
            elif officeart.BLIP_FIRST <= t <= officeart.BLIP_LAST or t == officeart.FBSE:
                try:
                    officeart.check_fbse(child) if t == officeart.FBSE else officeart.check_blip(child)
                except RecordError as exc:
                    raise Unrebuildable(str(exc)) from None
            elif t == RT["InteractiveInfoAtom"]:
                self._action(child, where)
            if child.container:
                self.clean(child, where)
            kept.append(child)
        if rec.type == RT["InteractiveInfo"]:
            atom = next((c for c in kept if c.type == RT["InteractiveInfoAtom"]), None)
            if atom is None or atom.body[8] == 0:  # no action left: a macro name has nothing to name
                kept = [c for c in kept if c.type != RT["CString"]]
        rec.children = kept

    def _vba_info(self, rec: Rec, where: str) -> None:
        atom = rec.first(RT["VbaInfoAtom"])
        if atom is not None and len(atom.body) == 12:
            pid, has_macros, _version = struct.unpack_from("<III", atom.body)
            if has_macros or pid:
                self.report("ole.vba", where, "VBA project")

    def _binary_tag(self, rec: Rec, where: str) -> bool:
        """PowerPoint 2000+ extensions live in named binary tags whose data is more records."""
        name_rec = rec.first(RT["CString"])
        data = rec.first(RT["BinaryTagDataBlob"])
        name = _cstring(name_rec) if name_rec is not None else ""
        if name not in _BINARY_TAGS or data is None:
            self.note(f"program tag {name[:40]!r} not kept")
            return False
        try:
            inner = Rec(0xF, 0, 0, children=parse(data.body))
        except RecordError as exc:
            raise Unrebuildable(f"damaged {name} data: {exc}") from None
        self.clean(inner, where)
        data.body = b"".join(c.to_bytes() for c in inner.children)
        return True

    def _action(self, atom: Rec, where: str) -> None:
        """Make an InteractiveInfoAtom inert when it runs something or opens a removed link."""
        b = bytearray(atom.body)
        link, action = _u32(b, 4), b[8]
        why = _ACTIONS.get(action)
        if action == _HYPERLINK_ACTION and link in self.bad_links:
            why = "opens a link that is not a web address"
        elif action in (_HYPERLINK_ACTION, _MEDIA_ACTION) and link in self.removed_exobj:
            why = "plays or opens a removed object"
        elif action == _HYPERLINK_ACTION and link and link not in self.kept_links:
            why = "opens a link that does not exist"
        if why is None:
            return
        tid = "ole.hyperlink" if action == _HYPERLINK_ACTION else "ole.action"
        self.report(tid, where, f"click action that {why}", "neutralized")
        b[4:8] = b"\0\0\0\0"  # exHyperlinkIdRef
        b[8:11] = b"\0\0\0"  # action none, oleVerb, jump
        b[12] = 0xFF  # hyperlinkType: not a hyperlink
        atom.body = bytes(b)

    # ------------------------------------------------------------------ document parts

    def ex_objects(self, document: Rec) -> None:
        """Decide which ExObjList members stay before anything that references them is walked."""
        exlist = document.first(RT["ExObjList"])
        if exlist is None:
            return
        kept = []
        for member in exlist.children:
            what = _EXOBJ_REMOVED.get(member.type)
            if what is not None:
                oid = self._exobj_id(member)
                self.removed_exobj[oid] = what
                self.report(what[0], "presentation", what[1])
                continue
            if member.type == RT["ExHyperlink"]:
                atom = member.first(RT["ExHyperlinkAtom"])
                target = member.first(RT["CString"], 1)
                hid = _u32(atom.body) if atom is not None and len(atom.body) == 4 else 0
                address = _cstring(target) if target is not None else ""
                if address and not _web(address, self.hyperlinks):
                    self.bad_links.add(hid)
                    self.report("ole.hyperlink", "presentation", f"link to {address[:80]}")
                    continue
                self.kept_links.add(hid)
            kept.append(member)
        exlist.children = kept

    def _exobj_id(self, member: Rec) -> int:
        for r in member.walk():
            if r.type == RT["ExOleObjAtom"] and len(r.body) == 24:
                return _u32(r.body, 8)
            if r.type == RT["ExMediaAtom"] and len(r.body) == 8:
                return _u32(r.body)
            if r.type == RT["ExCDAudioAtom"]:
                break
        return -1

    def shapes(self, top: Rec, where: str) -> None:
        """Shapes that showed a removed object keep their picture: the reference and fOleShape go."""
        for sp in top.walk():
            if sp.type != 0xF004:  # OfficeArtSpContainer
                continue
            data = sp.first(0xF011)
            if data is None:
                continue
            ref = data.first(RT["ExObjRefAtom"])
            if ref is None or len(ref.body) != 4 or _u32(ref.body) not in self.removed_exobj:
                continue
            data.children = [c for c in data.children if c is not ref]
            fsp = sp.first(officeart.FSP)
            if fsp is not None and len(fsp.body) == 8:
                fsp.body = fsp.body[:4] + bytes([fsp.body[4] & ~0x10 & 0xFF]) + fsp.body[5:]
            self.report(self.removed_exobj[_u32(ref.body)][0], where, "object shape kept as its picture",
                        "neutralized")

    def pictures_stream(self, document: Rec) -> bytes:
        """The BLIPs the drawing group's store names, checked and laid out anew."""
        group = document.first(RT["DrawingGroup"])
        out = bytearray()
        placed: dict[tuple[int, int], int] = {}
        if group is None:
            return b""
        for fbse in group.walk():
            if fbse.type != officeart.FBSE:
                continue
            try:
                delay = officeart.fbse_delay(fbse)
                if delay is None:
                    continue
                fo, size = delay
                if fo + size > len(self.pictures):
                    raise RecordError("a picture points outside the Pictures stream")
                if (fo, size) not in placed:
                    blip = parse_one(self.pictures, fo, fo + size)
                    officeart.check_blip(blip)
                    placed[(fo, size)] = len(out)
                    out += self.pictures[fo:fo + size]
            except RecordError as exc:
                raise Unrebuildable(f"damaged picture: {exc}") from None
            b = bytearray(fbse.body)
            struct.pack_into("<I", b, 28, placed[(fo, size)])
            fbse.body = bytes(b)
        return bytes(out)

    # ------------------------------------------------------------------ driver

    def run(self) -> dict[str, bytes]:
        offset, rel_version = self.current_user()
        objects, edit = self.persist_map(offset)
        last_slide, version, minor, major = struct.unpack_from("<IHBB", edit.body)
        doc_ref, seed, last_view = struct.unpack_from("<IIH", edit.body, 16)
        document = self.load(objects, doc_ref)
        if document is None or document.type != RT["Document"]:
            raise Unrebuildable("the document record is missing")
        atom = document.first(RT["DocumentAtom"])
        if atom is None or len(atom.body) != 40:
            raise Unrebuildable("the document atom is missing")
        self.ex_objects(document)
        self.clean(document, "presentation")
        self.shapes(document, "presentation")
        # Persist objects the document shows: slides, masters, notes (lists), notes and handout masters.
        wanted: list[int] = [doc_ref]
        for lst in document.children:
            if lst.type == RT["SlideListWithText"]:
                wanted += [_u32(a.body) for a in lst.children if a.type == RT["SlidePersistAtom"]]
        notes_master, handout_master = struct.unpack_from("<II", atom.body, 24)
        wanted += [p for p in (notes_master, handout_master) if p]
        parts: list[tuple[int, Rec]] = [(doc_ref, document)]
        done = {doc_ref}
        for pid in wanted[1:]:
            if pid in done:
                continue
            done.add(pid)
            rec = self.load(objects, pid)
            if rec is None:
                raise Unrebuildable(f"persist object {pid} is missing")
            if rec.type not in SHOWN_PERSISTS:
                raise Unrebuildable(f"persist object {pid} is a {TYPES.get(rec.type, ('unknown',))[0]} record")
            where = {RT["Slide"]: "slide", RT["MainMaster"]: "master", RT["Notes"]: "notes",
                     RT["Handout"]: "handout"}[rec.type]
            self.clean(rec, where)
            self.shapes(rec, where)
            parts.append((pid, rec))
        pictures = self.pictures_stream(document)
        # The new stream: each object once, then the directory and the one edit that names it.
        stream = bytearray()
        offsets: dict[int, int] = {}
        for pid, rec in parts:
            offsets[pid] = len(stream)
            stream += rec.to_bytes()
        entries = bytearray()
        ids = sorted(offsets)
        run: list[int] = []
        for pid in ids + [None]:
            if run and (pid is None or pid != run[-1] + 1 or len(run) == 0xFFF):
                entries += struct.pack("<I", run[0] | (len(run) << 20))
                entries += b"".join(struct.pack("<I", offsets[p]) for p in run)
                run = []
            if pid is not None:
                run.append(pid)
        dir_at = len(stream)
        stream += Rec(0, 0, RT["PersistDirectoryAtom"], bytes(entries)).to_bytes()
        edit_at = len(stream)
        seed = max(seed, max(ids) + 1)
        body = struct.pack("<IHBBIIIIHH", last_slide, version, minor, major, 0, dir_at, doc_ref, seed, last_view, 0)
        stream += Rec(0, 0, RT["UserEditAtom"], body).to_bytes()
        cu = (struct.pack("<IIIHHBBH", 0x14, CU_TOKEN, edit_at, 0, 0x03F4, 3, 0, 0) + rel_version)
        out = {_DOCUMENT_STREAM: bytes(stream), "Current User": Rec(0, 0, RT["CurrentUserAtom"], cu).to_bytes()}
        if self.has_pictures:
            out["Pictures"] = pictures
        return out


def rebuild_bytes(streams: dict[str, bytes], hyperlinks: str = "web") -> tuple[dict[str, bytes], PptRebuild]:
    r = PptRebuild(streams, hyperlinks)
    try:
        out = r.run()
    except RecordError as exc:
        raise Unrebuildable(f"damaged records: {exc}") from None
    return out, r


def rebuild(ole, ctx: Context, report: Report) -> dict[str, bytes]:
    """The family's entry point: the new file's streams; findings go to `report`."""
    streams = {name: ole.openstream(name).read() for name in (_DOCUMENT_STREAM, "Current User", "Pictures")
               if ole.exists(name)}
    out, r = rebuild_bytes(streams, ctx.options.get("hyperlinks", "web"))
    for tid, location, action, detail in r.found:
        report.threat(tid, location, detail, action)
    for n in r.notes:
        report.note(n)
    return out
