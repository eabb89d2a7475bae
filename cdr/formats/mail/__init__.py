"""Mail: .eml (RFC 5322/MIME), Outlook .msg and TNEF (winmail.dat) rebuilt as a brand-new message.

Reading (message.py, msg.py, tnef.py) fills a neutral `MailDoc`; authentication results of the
original are taken before anything changes (auth.py); every attachment and nested message goes
through the whole pipeline as a child, like an archive member; the new message is written by us
alone (builder.py): allow-listed headers decoded and re-encoded, one `X-CDR-Sanitized:` header, a
UTF-8 text body with one Japanese banner on top, HTML converted to text or cleaned, attachments
as the pipeline delivered them and a short notice in place of each blocked one.

Decisions:
- The mail is blocked only when the mail as a whole cannot be read the way Outlook reads it
  (ambiguous top-level header or structure, encrypted S/MIME or PGP, a limit); an ambiguous or
  blocked *part* is dropped, reported and replaced by a notice, and the mail is `sanitized`.
- A PPAP ZIP attachment gets the job's password like an archive member; without one it is
  blocked and listed in the report's `mail.needs_password`, so the appliance can run the
  whole mail again once the clerk has the password.
"""
from __future__ import annotations

import mimetypes
import re
import unicodedata
from collections import Counter
from pathlib import Path, PurePosixPath

from ...detect import DANGEROUS_EXTENSIONS, detect
from ...errors import Blocked, CdrError, LimitExceeded
from ...handler import Context, Handler, Rebuilt, handler_for, register
from ...model import BLOCKED, SANITIZED, Detection, FileResult, Threat
from ...names import safe_basename
from .._catalog import MAIL_ORIGINAL_REQUEST, OPTIONS
from . import builder, htmlbody, links
from .auth import POLICY_DMARC, Authentication, authenticate
from .headers import address_field, rule_name, unstructured
from .limits import MailBudget, MailLimits, budget_for, own_budget
from .message import Attachment, MailDoc, from_eml
from .mime import sniff

__all__ = ["MailHandler", "sniff"]

EML = "message/rfc822"
MSG = "application/vnd.ms-outlook"
TNEF = "application/vnd.ms-tnef"
_NOTICE = ("この添付ファイルは安全に配送できないため削除しました。", "This attachment was removed because it could not be "
           "delivered safely.")
_DEFAULT_REQUEST = MAIL_ORIGINAL_REQUEST


def _ext(name: str) -> str:
    return PurePosixPath(name.lower()).suffix


def _display(name: str) -> str:
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cc", "Cf") else c for c in name)[:300]


class _Read:
    """What reading the original gave: the document and its authentication results."""

    def __init__(self, doc: MailDoc, auth: Authentication | None) -> None:
        self.doc, self.auth = doc, auth


@register
class MailHandler(Handler):
    family = "mail"
    mime_types = (EML, MSG, TNEF)
    options = OPTIONS["mail"]

    # ------------------------------------------------------------ reading

    def _limits(self, ctx: Context) -> MailLimits:
        return MailLimits.of(ctx.limits, float(ctx.options.get("ratio_floor_mb", 1.0)))

    def _read(self, ctx: Context, data: bytes, mime: str, budget: MailBudget, with_auth: bool) -> _Read:
        if mime == MSG:
            from .msg import from_msg

            return _Read(from_msg(data, budget), None)
        if mime == TNEF:
            from .tnef import read_tnef

            doc = MailDoc()
            read_tnef(data, doc, "winmail.dat", budget)
            return _Read(doc, None)
        try:
            doc = from_eml(data, budget)
        except CdrError as exc:
            exc.mail = header_summary(data, budget.limits.header_bytes)
            raise
        auth = None
        if with_auth:
            trusted = [str(t) for t in ctx.options.get("trusted_authserv_ids", []) if isinstance(t, str)]
            auth = authenticate(data, doc.fields, dns=bool(ctx.options.get("dns", True)),
                                authserv_id=_token(str(ctx.options.get("authserv_id", "lgwan-cdr"))),
                                trusted=trusted)
        return _Read(doc, auth)

    # ------------------------------------------------------------ rebuild

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        data = src.read_bytes()
        with budget_for(self._limits(ctx), len(data)) as budget:
            read = self._read(ctx, data, detection.mime, budget, with_auth=True)
            work = _Rebuild(ctx, read.doc, read.auth, budget)
            try:
                out = work.run()
            except CdrError as exc:
                exc.mail = work.info()
                if exc.children == [] and work.children:
                    exc.children = work.children
                raise
        dst.write_bytes(out)
        return Rebuilt(threats=work.threats, children=work.children, extension=".eml", mime=EML, mail=work.info())

    # ------------------------------------------------------------ inspect (verify)

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        data = path.read_bytes()
        found: list[Threat] = []
        budget = own_budget(self._limits(ctx), len(data))
        try:
            doc = self._read(ctx, data, detection.mime, budget, with_auth=False).doc
        except LimitExceeded:
            raise
        except CdrError as exc:
            return [Threat(exc.threat_id, exc.location or ctx.name, "found", exc.en)]
        # What is only reported (an undecodable character) is no residual: a rebuild keeps U+FFFD as it is.
        found.extend(Threat(t.id, t.location, "found", t.detail) for t in doc.threats if t.action != "reported")
        if doc.html is not None:
            if ctx.options.get("html", "text") == "text":
                found.append(Threat("mail.html_converted", "body", "found", "HTML body"))
            for tid, what, n in htmlbody.scan(doc.html).findings():
                found.append(Threat(tid, "HTML body", "found", f"{what}: {n}"))
        for a in doc.attachments:
            for cand in [a.name, *a.candidates]:
                if _ext(rule_name(cand)) in DANGEROUS_EXTENSIONS:
                    found.append(Threat("mail.attachment_blocked", _display(cand), "found",
                                        "a name Windows would run or open as a program"))
                    break
        return found

    # ------------------------------------------------------------ text

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        data = path.read_bytes()
        with budget_for(self._limits(ctx), len(data)) as budget:
            doc = self._read(ctx, data, detection.mime, budget, with_auth=False).doc
            return _text_rendition(ctx, doc, budget)


def _text_charset(data: bytes) -> str:
    """The charset a mail reader needs to show a text attachment (the text family keeps its bytes)."""
    from ...encoding import detect_encoding

    enc = detect_encoding(data[:1 << 20])
    return {"utf-8": "utf-8", "utf-8-sig": "utf-8", "cp932": "shift_jis", "euc_jp": "euc-jp",
            "iso2022_jp": "iso-2022-jp", "utf-16": "utf-16", "ascii": "us-ascii"}.get(enc, "")


def _token(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "", s)[:63] or "lgwan-cdr"


def header_summary(data: bytes, limit: int) -> dict | None:
    """Sender, recipients and subject of a mail we block, best effort (the appliance's notice needs them)."""
    from .headers import HeaderError, split_fields
    from .message import read_headers
    from .mime import Entity, split_header

    try:
        hend, _ = split_header(data, 0, len(data), limit)
        fields = split_fields(data[:hend], limit)
    except HeaderError:
        return None
    doc = MailDoc()
    read_headers(doc, Entity("", 0, 0, len(data), 0, fields=fields))
    return _header_info(doc)


def _header_info(doc: MailDoc) -> dict:
    h = doc.headers
    out: dict = {}
    for key in ("from", "to", "cc", "reply_to"):
        out[key] = [a.display() for a in h.get(key, []) or []]  # type: ignore[union-attr]
    addrs = h.get("from") or []
    out["from_address"] = addrs[0].addr if addrs else None  # type: ignore[index]
    for key in ("subject", "date_raw", "date_iso", "message_id"):
        out["date" if key == "date_raw" else key] = h.get(key)
    return out


# ------------------------------------------------------------------ the rebuild of one mail

class _Rebuild:
    def __init__(self, ctx: Context, doc: MailDoc, auth: Authentication | None, budget: MailBudget) -> None:
        self.ctx, self.doc, self.auth, self.budget = ctx, doc, auth, budget
        self.threats: list[Threat] = list(doc.threats)
        self.children: list[FileResult] = []
        self.banner: list[str] = []
        self.attached: list[builder.OutPart] = []
        self.related: list[builder.OutPart] = []
        self.needs_password: list[str] = []
        self.deceptive: list[links.Deceptive] = []
        self.html_mode: str | None = None
        self.att_info: list[dict] = []

    def info(self) -> dict:
        d = _header_info(self.doc)
        d.update({
            "authentication": self.auth.to_dict() if self.auth else None,
            "authentication_results": self.auth.header().replace("\r\n", "") if self.auth else None,
            "signature": self.doc.smime or None,
            "html": self.html_mode,
            "attachments": self.att_info,
            "needs_password": self.needs_password,
            "deceptive_links": [{"text": x.text[:200], "target": x.target[:500], "reason": x.why}
                                for x in self.deceptive],
            "decode_defects": self.doc.defects,
        })
        return d

    # ---------------------------------------------------------------- steps

    def run(self) -> bytes:
        ctx, doc = self.ctx, self.doc
        if self.auth is not None and ctx.options.get("dmarc_fail") == "block" and self.auth.dmarc.result == "fail" \
                and self.auth.dmarc.props.get(POLICY_DMARC) in ("reject", "quarantine"):
            raise Blocked("the mail fails DMARC and its domain asks receivers to reject it",
                          "送信ドメイン認証（DMARC）に失敗し、送信元ドメインが受信拒否を指定しているため配送を停止しました",
                          threat_id="mail.dmarc_fail")
        html = doc.html
        cid_map: dict[str, str] = {}
        sanitize_html = html is not None and ctx.options.get("html", "text") == "sanitize"
        wanted_cids = htmlbody.scan(html).cids if sanitize_html and html is not None else set()
        for n, att in enumerate(doc.attachments, 1):
            ctx.check_time()
            self._attachment(n, att, wanted_cids, cid_map)
            self.budget.reraise()
        for where, en, ja in doc.blocked_parts:
            self._notice(where, en, ja)
        text = self._body(html, sanitize_html, cid_map)
        return builder.message(self._headers(), text, self._html, self.related, self.attached)

    def _attachment(self, n: int, att: Attachment, wanted_cids: set[str], cid_map: dict[str, str]) -> None:
        ctx = self.ctx
        shown = att.name
        if att.kind == "message":
            stem = shown or f"{(str(self.doc.headers.get('subject') or '') or 'message')[:60]}"
            if _ext(stem) not in (".eml", ".msg"):
                stem += ".eml"
            shown = stem
        if not shown:
            ext = mimetypes.guess_extension(att.mime or "") or ".bin"
            shown = f"{'image' if att.mime.startswith('image/') else 'attachment'}{n:03d}{ext}"
        name = rule_name(shown) or f"attachment{n:03d}"
        if name != unicodedata.normalize("NFC", shown):
            self.threats.append(Threat("mail.attachment_name", _display(shown), "renamed",
                                       f"bidi/format controls or trailing dots/spaces removed: {name}"))
        name = safe_basename(name)
        loc = _display(shown)
        for cand in att.candidates:
            c = rule_name(cand)
            if c != name and _ext(c) in DANGEROUS_EXTENSIONS:
                refused = FileResult(source=loc, size=len(att.data))
                refused.threats.append(Threat("file.executable", _display(c), "blocked", "second name of the part"))
                self._blocked_att(loc, refused.block(
                    f"別名（{_display(c)}）が実行ファイルの名前になっています",
                    f"the part also calls itself {_display(c)}, a name Windows would run"))
                return
        if ctx.process_child is None:
            raise Blocked("attachments cannot be processed here", "添付ファイルを処理できません")
        tmp = ctx.workdir / f"att{n:04d}"
        tmp.write_bytes(att.data)
        out_dir = ctx.workdir / f"out{n:04d}"
        child = ctx.process_child(name, tmp, out_dir)
        tmp.unlink(missing_ok=True)
        if att.origin:
            child.warnings.append(f"taken out of {att.origin}")
        if child.verdict == BLOCKED or not child.output:
            self._blocked_att(loc, child)
            return
        out = Path(child.output)
        delivered = out.name
        data = out.read_bytes()
        mime = EML if child.family == "mail" and delivered.lower().endswith(".eml") else (
            mimetypes.guess_type(delivered)[0] or "application/octet-stream")
        if child.mail:  # a PPAP ZIP inside a forwarded mail needs the password too
            self.needs_password.extend(f"{delivered}/{n}" for n in child.mail.get("needs_password") or [])
        renamed = f"し、「{delivered}」として配送しました" if delivered != name else "しました"
        if child.verdict == SANITIZED:
            ids = sorted({t.id for t in child.threats if t.action != "reported"})
            self.threats.append(Threat("mail.attachment_sanitized", delivered, "neutralized", ", ".join(ids)))
            what = "テキスト化" if ids == ["policy.text_only"] else f"無害化（{_ids_ja(child.family)}）"
            self.banner.append(f"・添付ファイル「{_display(shown)}」を{what}{renamed}。")
        elif delivered != name:
            self.banner.append(f"・添付ファイル「{_display(shown)}」は「{delivered}」として配送しました。")
        part = builder.OutPart(mime, data, filename=delivered, message=mime == EML,
                               charset=_text_charset(data) if mime.startswith("text/") else "")
        if att.cid and att.cid in wanted_cids and mime.startswith("image/"):
            new = f"img{n:03d}.{id(self) & 0xffff:04x}@cdr.invalid"
            cid_map[att.cid] = new
            part.cid, part.disposition = new, "inline"
            self.related.append(part)
        else:
            self.attached.append(part)
        child.output = delivered
        child.text_output = None
        self.children.append(child)
        self.att_info.append({"name": loc, "delivered_as": delivered, "verdict": child.verdict})

    def _blocked_att(self, loc: str, child: FileResult) -> None:
        self.children.append(child)
        self.threats.append(Threat("mail.attachment_blocked", loc, "removed", child.reason_en or "blocked"))
        pw = any(t.id.endswith(".encrypted") and t.action in ("blocked", "removed") for t in _walk_threats(child))
        if pw:
            self.needs_password.append(loc)
        self._notice(loc, child.reason_en or "blocked", child.reason_ja or "")
        self.att_info.append({"name": loc, "delivered_as": None, "verdict": BLOCKED,
                              "needs_password": pw})

    def _notice(self, what: str, en: str, ja: str) -> None:
        text = (f"{_NOTICE[0]}\r\n\r\n  ファイル: {what}\r\n  理由: {ja}\r\n\r\n{_NOTICE[1]}\r\n\r\n"
                f"  File: {what}\r\n  Reason: {en}\r\n")
        base = safe_basename(what.split("/")[-1]) or "part"
        self.attached.append(builder.OutPart("text/plain", text.encode("utf-8"), filename=f"{base}.blocked.txt",
                                             charset="utf-8"))
        self.banner.append(f"・添付ファイル等「{what}」は安全でないため削除しました（{ja or en}）。")

    def _body(self, html: str | None, sanitize_html: bool, cid_map: dict[str, str]) -> str:
        doc, mode = self.doc, str(self.ctx.options.get("links", "defang"))
        self._html: str | None = None
        changed = 0
        if html is not None:
            for tid, what, n in htmlbody.scan(html).findings():
                self.threats.append(Threat(tid, "HTML body", "removed", f"{what}: {n}"))
                self.banner.append(f"・{_FINDING_JA[tid]}（{n} 件）を削除しました。")
        if doc.text is not None:
            text, dec, changed = links.rewrite_text(doc.text, mode)
            self.deceptive.extend(dec)
            if html is not None and not sanitize_html:
                self.html_mode = "converted"
                self.threats.append(Threat("mail.html_converted", "body", "removed",
                                           "HTML version dropped; the sender's text version kept"))
                self.banner.append("・HTML形式の本文を削除し、送信者が付けたテキスト形式の本文を残しました。")
        elif html is not None:
            text, dec, changed = htmlbody.to_text(html, mode)
            self.deceptive.extend(dec)
            if not sanitize_html:
                self.html_mode = "converted"
                self.threats.append(Threat("mail.html_converted", "body", "converted", "HTML body converted to text"))
                self.banner.append("・HTML形式の本文をテキストに変換しました。")
        else:
            text = ""
        if sanitize_html and html is not None:
            self.html_mode = "sanitized"
            cleaned, dec, _ = htmlbody.clean(html, mode, cid_map, "")
            if not self.deceptive:
                self.deceptive.extend(dec)
            self._html = cleaned
        if changed:
            self.threats.append(Threat("mail.link", "body", "neutralized" if mode == "defang" else "removed",
                                       f"{changed} link(s) {'defanged' if mode == 'defang' else 'removed'}"))
            self.banner.append(f"・本文のリンク（{changed} 件）を"
                               f"{'クリックできない形に変えました' if mode == 'defang' else '削除しました'}。")
        for d in self.deceptive:
            self.threats.append(Threat("mail.deceptive_link", d.target[:200], "reported", d.why))
        text = _clean_text(text)
        banner = self._banner()
        if self._html is not None and banner:
            import html as htmllib

            block = "<pre style=\"white-space: pre-wrap; border: 1px solid #c00; padding: 4px\">" \
                    f"{htmllib.escape(banner)}</pre>\n"
            self._html = self._html.replace("<body>\n", "<body>\n" + block, 1)
        return (banner + "\r\n" if banner else "") + text

    def _banner(self) -> str:
        doc = self.doc
        lines = list(self.banner)
        if doc.smime:
            lines.insert(0, "・電子署名（S/MIME）付きのメールでした。署名は取り除いて内容のみ配送しています。"
                         if doc.smime == "signed" else "・電子署名（PGP）付きのメールでした。署名は取り除いて内容のみ配送しています。")
        if any(t.id == "mail.tnef" for t in self.threats):
            lines.append("・Outlook形式（winmail.dat）の添付ファイルを取り出しました。")
        if any(t.id == "mail.uuencode" for t in self.threats):
            lines.append("・本文に埋め込まれたファイル（uuencode）を添付ファイルとして取り出しました。")
        if doc.defects:
            lines.append(f"・文字化けのため読み取れない文字が {doc.defects} 文字ありました（「\ufffd」で表示）。")
        if doc.injected:
            lines.append("・ヘッダーに含まれていた不正な改行等を取り除きました。")
        warn = []
        for d in self.deceptive[:10]:
            warn.append(f"  - {d.why_ja}")
        if not lines and not warn:
            return ""
        out = ["【無害化（サニタイズ）済みメール】このメールは受信時に安全のため作り直されています。"]
        out += lines
        if warn:
            out.append("【注意】見た目とリンク先が異なる、または不審なリンクがあります。クリックしないでください。")
            out += warn
        out.append(str(self.ctx.options.get("original_request") or _DEFAULT_REQUEST))
        out.append("-" * 60)
        return "\r\n".join(out) + "\r\n"

    def _headers(self) -> list[str]:
        h = self.doc.headers
        lines: list[str] = []
        if self.auth is not None:
            lines.append(self.auth.header())
        for r in self.doc.received:
            if r:
                lines.append(unstructured("Received", r))
        for key, name in (("from", "From"), ("reply_to", "Reply-To"), ("to", "To"), ("cc", "Cc")):
            line = address_field(name, h.get(key) or [])  # type: ignore[arg-type]
            if line:
                lines.append(line)
        if h.get("subject") is not None:
            lines.append(unstructured("Subject", str(h["subject"])))
        if h.get("date"):
            lines.append(f"Date: {h['date']}")
        if h.get("message_id"):
            lines.append(f"Message-ID: {h['message_id']}")
        if h.get("in_reply_to"):
            lines.append(builder_fold("In-Reply-To", h["in_reply_to"]))  # type: ignore[arg-type]
        if h.get("references"):
            lines.append(builder_fold("References", h["references"]))  # type: ignore[arg-type]
        lines.append(self._sanitized_header())
        return lines

    def _sanitized_header(self) -> str:
        counts = Counter(t.id for t in self.threats if t.action != "reported")
        policy = getattr(self.ctx.policy, "label", "") if self.ctx.policy is not None else ""
        items = [f"{tid}={n}" for tid, n in sorted(counts.items())] or ["no-change"]
        tokens = ["lgwan-cdr;"] + ([f"policy={_token_policy(policy)};"] if policy else []) + \
                 [f"{x}," for x in items[:-1]] + [items[-1]]
        from .headers import fold

        return fold("X-CDR-Sanitized", tokens)


def builder_fold(name: str, ids: list[str]) -> str:
    from .headers import fold

    return fold(name, list(ids))


def _token_policy(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]", "_", label)[:80]


def _walk_threats(r: FileResult):
    stack = [r]
    while stack:
        x = stack.pop()
        yield from x.threats
        stack.extend(x.children)


_FINDING_JA = {
    "mail.script": "本文HTML内のスクリプト・自動動作",
    "mail.frame": "本文HTML内のフレーム・埋め込みオブジェクト",
    "mail.form": "本文HTML内の入力フォーム",
    "mail.remote_content": "外部から画像等を読み込む指定（Webビーコン等）",
}


_FAMILY_JA = {"ooxml": "マクロ・外部参照等", "legacy_office": "マクロ等・新形式へ変換", "pdf": "スクリプト・外部参照等",
              "image": "画像の付加情報", "svg": "スクリプト等", "archive": "中身の一部", "html": "スクリプト・外部参照等",
              "csv": "数式", "rtf": "埋め込みオブジェクト等", "odf": "マクロ・外部参照等", "mail": "転送メール内の添付ファイル等",
              "text": "テキスト"}


def _ids_ja(family: str) -> str:
    return _FAMILY_JA.get(family, "危険な要素")


_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def _clean_text(text: str) -> str:
    """CRLF line ends; no C0 controls but tab and line breaks (a NUL or ESC has no place in a body)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text).replace("\n", "\r\n")


# ------------------------------------------------------------------ the text rendition

def _text_rendition(ctx: Context, doc: MailDoc, budget: MailBudget) -> str:
    h = doc.headers
    lines = []
    for key, label in (("from", "差出人 / From"), ("to", "宛先 / To"), ("cc", "Cc"), ("reply_to", "返信先 / Reply-To")):
        addrs = h.get(key) or []
        if addrs:
            lines.append(f"{label}: " + ", ".join(a.display() for a in addrs))  # type: ignore[union-attr]
    if h.get("date"):
        lines.append(f"日付 / Date: {h['date']}")
    lines.append(f"件名 / Subject: {h.get('subject') or ''}")
    if doc.attachments:
        lines.append("添付 / Attachments: " + ", ".join(_display(a.name or a.mime) for a in doc.attachments))
    body = doc.text if doc.text is not None else (htmlbody.to_text(doc.html, "keep")[0] if doc.html else "")
    out = "\n".join(lines) + "\n\n" + body.replace("\r\n", "\n").rstrip() + "\n"
    for n, att in enumerate(doc.attachments, 1):
        ctx.check_time()
        text = _attachment_text(ctx, att, n, budget)
        if text and text.strip():
            out += f"\n===== 添付 / Attachment: {_display(att.name or f'part {n}')} =====\n{text.rstrip()}\n"
    return out


def _attachment_text(ctx: Context, att: Attachment, n: int, budget: MailBudget) -> str | None:
    if att.kind == "message" and budget.level >= budget.limits.depth:
        return None
    tmp = ctx.workdir / f"text-{ctx.depth}-{n:04d}"
    tmp.write_bytes(att.data)
    try:
        det = detect(tmp, att.name or ("message.eml" if att.kind == "message" else f"part{n}"))
        h = handler_for(det.mime)
        if h is None or not h.has_text or det.family in ("executable", "unknown"):
            return None
        opts = ctx.policy.family(det.family).options if ctx.policy is not None else {}
        sub = ctx.workdir / f"text-ctx-{ctx.depth + 1}-{n}"
        sub.mkdir(exist_ok=True)
        cctx = Context(name=f"{ctx.name}/{att.name}", options=dict(opts), limits=ctx.limits, workdir=sub,
                       deadline=ctx.deadline, depth=ctx.depth + 1, policy=ctx.policy)
        return h.extract_text(cctx, tmp, det)
    except LimitExceeded:
        raise
    except Exception as exc:  # one attachment's text failing must not cost the others
        ctx.warn(f"no text for {_display(att.name)}: {type(exc).__name__}")
        return None
    finally:
        tmp.unlink(missing_ok=True)
