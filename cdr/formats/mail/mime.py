"""An iterative MIME walker that notices what readers would see differently (RFC 7103).

Python's email package recurses (RecursionError near 1,000 levels), raises IndexError on
some malformed fields and quietly "repairs" structures that Outlook reads another way.
This walker keeps an explicit stack, enforces the part and depth limits as it goes, and
records every ambiguity as a `Problem` instead of guessing: the handler then blocks the
mail (a problem in the top-level header) or drops the part and reports it.
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from ...errors import Malformed
from .._mailsniff import mime_header_at, sniff  # noqa: F401 - sniff: detection's header check, by its old name
from .headers import Field, HeaderError, Params, parse_params, split_fields
from .limits import MailBudget

_DUP_FATAL = ("content-type", "content-transfer-encoding", "content-disposition", "mime-version")
_DUP_TOP = ("from", "sender", "subject", "date", "message-id", "reply-to", "in-reply-to", "references")
_MIME_LOOKING = re.compile(rb"(?im)^(content-type|content-transfer-encoding|content-disposition)\s*:")
_KNOWN_CTE = {"7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "uuencode", "x-uue"}


@dataclass
class Problem:
    where: str
    en: str
    ja: str
    scope: str = "entity"  # entity: the entity is dropped (the mail is blocked when it is the root) | note


@dataclass
class Entity:
    path: str  # MIME part number: "" for the message, "1", "1.2", ...
    start: int  # offset of the header block in the buffer
    body_start: int
    end: int
    depth: int
    fields: list[Field] = field(default_factory=list)
    ctype: Params = field(default_factory=lambda: Params("text/plain"))
    cte: str = "7bit"
    disposition: Params | None = None
    children: list[Entity] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    dropped: bool = False
    parent_type: str = ""
    boundaries: list[bytes] = field(default_factory=list)  # of the enclosing multiparts

    @property
    def mime(self) -> str:
        return self.ctype.value

    @property
    def is_multipart(self) -> bool:
        return self.mime.startswith("multipart/")

    @property
    def location(self) -> str:
        return f"part {self.path}" if self.path else "message"

    def header(self, key: str) -> list[Field]:
        return [f for f in self.fields if f.key == key]

    def first(self, key: str) -> bytes | None:
        found = self.header(key)
        return found[0].raw if found else None

    def filename_candidates(self) -> list[str]:
        """Every name the part gives itself (filename, filename*, name, name*): rules check them all."""
        names: list[str] = []
        if self.disposition is not None:
            names.extend(self.disposition.raw_names.get("filename", []))
        names.extend(self.ctype.raw_names.get("name", []))
        return [n for n in names if n]

    def filename(self) -> str:
        """The name a mail reader shows: filename (RFC 2231 form first), else name."""
        if self.disposition is not None and self.disposition.params.get("filename"):
            return self.disposition.params["filename"]
        return self.ctype.params.get("name", "")

    def walk(self):
        """Entities in document order, iteratively."""
        stack = [self]
        while stack:
            e = stack.pop()
            yield e
            stack.extend(reversed(e.children))


def split_header(buf: bytes, start: int, end: int, limit: int) -> tuple[int, int]:
    """(end of the header block, start of the body) of the entity at buf[start:end]."""
    if buf.startswith(b"\r\n", start) or buf.startswith(b"\n", start):
        return start, start + (2 if buf.startswith(b"\r\n", start) else 1)
    stop = min(end, start + limit + 4)
    candidates = [i for i in (buf.find(b"\n\r\n", start, stop), buf.find(b"\n\n", start, stop)) if i >= 0]
    if not candidates:
        if end - start > limit:
            raise HeaderError(f"no end of the header within {limit} bytes",
                              f"ヘッダーの終わりが上限（{limit} バイト）以内に見つかりません", "limit")
        return end, end
    i = min(candidates)
    body = i + (3 if buf.startswith(b"\n\r\n", i) else 2)
    return i + 1, body


def parse(buf: bytes, budget: MailBudget, descend_messages: bool = False) -> Entity:
    """Walk the message in `buf` into a tree of entities, iteratively.

    Raises LimitExceeded (parts, depth, header size at the top). Ambiguities are recorded on
    the entities (see Problem). With `descend_messages`, message/rfc822 parts are walked too
    (inspection); otherwise they stay leaves for the pipeline to process as nested mails."""
    hlimit = budget.limits.header_bytes
    root = Entity("", 0, 0, len(buf), 0)
    stack = [root]
    while stack:
        ent = stack.pop()
        budget.count_part(ent.location)
        budget.check_depth(ent.depth, ent.location)
        try:
            hend, ent.body_start = split_header(buf, ent.start, ent.end, hlimit)
            ent.fields = split_fields(buf[ent.start:hend], hlimit)
        except HeaderError as exc:
            if exc.kind == "limit" and ent is root:
                from ...errors import LimitExceeded

                raise LimitExceeded(exc.en, exc.ja, threat_id="mail.header_limit", location="message") from None
            ent.problems.append(Problem(ent.location, exc.en, exc.ja))
            ent.dropped = True
            continue
        _read_type(ent)
        if ent.first("content-type") is None and not ent.dropped \
                and mime_header_at(buf[ent.body_start:min(ent.end, ent.body_start + 65536)]):
            # Text by default, yet its body begins with a MIME header: a lenient reader reads that as the
            # message (with its attachments), a strict one as text. Neither reading is delivered.
            ent.problems.append(Problem(ent.location, "a part without a Content-Type whose body is itself "
                                        "a MIME message", "種類の指定がないのに本文が別のメールの形をしている部分です"))
            ent.dropped = True
        if ent.dropped:
            continue
        if ent.is_multipart:
            _split_multipart(buf, ent, stack)
        elif descend_messages and ent.mime in ("message/rfc822", "message/global") and ent.cte in (
                "7bit", "8bit", "binary"):
            child = Entity(_sub(ent.path, 1), ent.body_start, ent.body_start, ent.end, ent.depth + 1,
                           parent_type=ent.mime)
            ent.children.append(child)
            stack.append(child)
    return root


def _sub(path: str, n: int) -> str:
    return f"{path}.{n}" if path else str(n)


def _read_type(ent: Entity) -> None:
    for key in _DUP_FATAL:
        if len(ent.header(key)) > 1:
            ent.problems.append(Problem(ent.location, f"{len(ent.header(key))} {key} fields",
                                        f"{key} ヘッダーが複数あります"))
            ent.dropped = True
    if not ent.path:
        for key in _DUP_TOP:
            if len(ent.header(key)) > 1:
                ent.problems.append(Problem(ent.location, f"{len(ent.header(key))} {key} fields",
                                            f"{key} ヘッダーが複数あります"))
                ent.dropped = True
    raw = ent.first("content-type")
    default = "message/rfc822" if ent.parent_type == "multipart/digest" else "text/plain"
    if raw is None:
        ent.ctype = Params(default)
    else:
        ent.ctype = parse_params(raw)
        v = ent.ctype.value
        if v == "text":
            ent.ctype.value = "text/plain"
        elif not re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", v):
            # Readers disagree on a broken type: what matters is the bytes, so it becomes an attachment
            # that detection by content judges.
            ent.ctype.value = "application/octet-stream"
    if ent.ctype.conflicts:
        key = sorted(set(ent.ctype.conflicts))
        if "boundary" in key or "charset" in key:
            ent.problems.append(Problem(ent.location, f"Content-Type parameters given twice or inconsistently: {key}",
                                        f"Content-Type のパラメーター（{', '.join(key)}）が重複・矛盾しています"))
            ent.dropped = True
    cte = (ent.first("content-transfer-encoding") or b"7bit").decode("ascii", "replace").strip().lower()
    cte = cte.split(";")[0].strip() or "7bit"
    if cte not in _KNOWN_CTE:
        ent.problems.append(Problem(ent.location, f"unknown Content-Transfer-Encoding {cte[:40]!r}",
                                    f"不明な転送エンコーディング（{cte[:40]}）です"))
        ent.dropped = True
    ent.cte = cte
    disp = ent.first("content-disposition")
    ent.disposition = parse_params(disp) if disp is not None else None
    if ent.mime in ("message/partial", "message/external-body"):
        ent.problems.append(Problem(ent.location, f"{ent.mime} is never assembled or fetched",
                                    f"{ent.mime}（分割・外部参照メッセージ）は受け付けません"))
        ent.dropped = True


def _split_multipart(buf: bytes, ent: Entity, stack: list[Entity]) -> None:
    boundary_s = ent.ctype.params.get("boundary", "")
    if not boundary_s or len(boundary_s) > 200 or not boundary_s.isascii():
        ent.problems.append(Problem(ent.location, "multipart without a usable boundary",
                                    "マルチパートの区切り（boundary）がありません"))
        ent.dropped = True
        return
    boundary = boundary_s.encode("ascii")
    for anc in ent.boundaries:
        if anc.startswith(boundary) or boundary.startswith(anc):
            ent.problems.append(Problem(ent.location, "a boundary that is a prefix of an enclosing boundary",
                                        "区切り（boundary）が外側の区切りと重なっています"))
            ent.dropped = True
            return
    pat = re.compile(rb"(?m)^--" + re.escape(boundary) + rb"([^\n]*?)\r?$")
    delims: list[tuple[int, int, bool]] = []  # (line start, after the line end, is close)
    for m in pat.finditer(buf, ent.body_start, ent.end):
        rest = m.group(1)
        nxt = m.end() + 1 if m.end() < ent.end and buf[m.end():m.end() + 1] == b"\n" else m.end()
        if rest.strip(b" \t") == b"":
            delims.append((m.start(), nxt, False))
        elif rest.startswith(b"--") and rest[2:].strip(b" \t") == b"":
            delims.append((m.start(), nxt, True))
            break
        else:
            ent.problems.append(Problem(ent.location, "a line starts like the boundary but is not one",
                                        "区切り（boundary）と紛らわしい行があります"))
            ent.dropped = True
            return
    opens = [d for d in delims if not d[2]]
    if not opens:
        ent.problems.append(Problem(ent.location, "a multipart without any part",
                                    "マルチパートに部品がありません"))
        ent.dropped = True
        return
    preamble = buf[ent.body_start:delims[0][0]]
    if _MIME_LOOKING.search(preamble) or re.search(rb"(?m)^--\S", preamble):
        ent.problems.append(Problem(ent.location, "MIME-looking content hidden before the first boundary",
                                    "最初の区切りより前に隠れた部品がありました", "note"))
    closed = delims[-1][2]
    if closed:
        epilogue = buf[delims[-1][1]:ent.end]
        if _MIME_LOOKING.search(epilogue) or re.search(rb"(?m)^--\S", epilogue):
            ent.problems.append(Problem(ent.location, "parts hidden after the final boundary (epilogue)",
                                        "最後の区切りの後ろに隠れた部品がありました", "note"))
    children: list[Entity] = []
    for i, (_s, after, _c) in enumerate(opens):
        stop = delims[i + 1][0] if i + 1 < len(delims) else ent.end
        # The line end before a delimiter belongs to the delimiter (RFC 2046 section 5.1.1).
        if stop > after and buf[stop - 1:stop] == b"\n" and i + 1 < len(delims):
            stop -= 2 if buf[stop - 2:stop] == b"\r\n" else 1
        child = Entity(_sub(ent.path, i + 1), after, after, max(after, stop), ent.depth + 1, parent_type=ent.mime,
                       boundaries=[*ent.boundaries, boundary])
        children.append(child)
    if not closed:
        last = children[-1]
        if buf[last.start:last.end].strip():
            last.problems.append(Problem(last.location, "the final boundary is missing after this part",
                                         "最後の区切りがないため、この部品の終わりが確定できません"))
            last.dropped = True
    # Dropped children stay in the tree (they are reported) but are not parsed.
    ent.children = children
    stack.extend(child for child in reversed(children) if not child.dropped)


# ------------------------------------------------------------------ bodies

class DecodeProblem(Malformed):
    """A body that readers would decode differently (or not at all)."""

    threat_id = "mail.ambiguous_mime"
    default_ja = "内容を一意に復号できません"


def body_bytes(buf: bytes, ent: Entity, budget: MailBudget) -> bytes:
    """The decoded content of a leaf entity, metered."""
    raw = buf[ent.body_start:ent.end]
    cte = ent.cte
    if cte == "base64":
        data = decode_base64(raw)
    elif cte == "quoted-printable":
        data = binascii.a2b_qp(raw)
    elif cte in ("x-uuencode", "uuencode", "x-uue"):
        from .uuencode import decode_block

        found = decode_block(raw)
        if found is None:
            raise DecodeProblem("uuencoded body that does not decode")
        data = found[1]
    else:
        data = raw
    budget.add_decoded(len(data), ent.location)
    return data


def decode_base64(raw: bytes) -> bytes:
    """Base64 as mail readers decode it (line breaks and stray characters skipped), except data after the
    padding: readers disagree on it, so it is refused."""
    clean = re.sub(rb"[^A-Za-z0-9+/=]", b"", raw)
    pad = clean.find(b"=")
    if pad >= 0 and clean[pad:].strip(b"="):
        raise DecodeProblem("data after the base64 padding")
    clean = clean.rstrip(b"=")
    if len(clean) % 4 == 1:
        clean = clean[:-1]  # a lone sextet carries no byte
    clean += b"=" * (-len(clean) % 4)
    return base64.b64decode(clean)

