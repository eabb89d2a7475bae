"""The LGWAN-side staff console (職員コンソール), a separate app on the console port.

Clerks (担当者) see deliveries and their reports in plain Japanese, download the delivered
file and its text rendition, and ask for an original (原本取り出し申請); approvers (承認者)
approve or reject; admins (管理者) see users and API keys. Server-rendered HTML, no
JavaScript, no external resources. Sessions: random token in an httpOnly SameSite=Strict
cookie; every form carries the session's CSRF token; logins lock after repeated failures.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from cdr.policy import Policy, load_policy

from .. import apikeys, clock, tenants, threat_labels, users
from ..bundles import field_text
from ..channels import Scope, channel_name
from ..files import clean_name, fit_name
from ..ledger import FINAL, Ledger, loads
from ..password_retry import RetryRefused, retry_tag, wants_password
from ..portal_db import ensure_schema
from . import originals

log = logging.getLogger("transfer_agent.console")

PKG = Path(__file__).resolve().parent.parent
COOKIE = "ta_session"
PRE_COOKIE = "ta_login"
PAGE = 50
MAX_ID = 2**63 - 1  # SQLite INTEGER
# Banners after an action: the redirect carries a code, the text is ours (never text from the URL).
FLASH = {
    **originals.MESSAGES,
    "requested": "原本取り出しを申請しました。承認をお待ちください",
    "approved": "承認しました。申請者は「原本取り出し申請」の画面から期限内にダウンロードできます",
    "rejected": "却下しました",
    "no_user": "ユーザーが見つかりません",
    "password_retry": "パスワードを指定して再処理を始めました。結果はこの画面に表示されます",
    "bad_password": "パスワードを入力してください",
    "not_encrypted": "このファイルはパスワードを指定して再処理する対象ではありません",
    "purged": "原本の保管期間が過ぎたため再処理できません",
    "not_found": "ファイルが見つかりません",
    "no_retry": "この画面からは再処理できません",
    "retry_running": "このファイルはいま再処理中です。結果をお待ちください",
    "retry_done": "このファイルはすでにパスワードを指定して配送済みです",
}
# Codes with a variable part: shown only with a signature made for this session.
FLASH_ARG = {"unlocked": "{arg} のロックを解除しました"}
_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")


class _Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


class _Denied(Exception):
    def __init__(self, status: int, ja: str) -> None:
        self.status, self.ja = status, ja


def _fmt_ts(ts: float | None) -> str:
    return clock.shown(ts)  # in the appliance's zone, with it: 2026-12-07 15:30 JST


def _fmt_size(n: int | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(PKG / "templates")),
                      autoescape=select_autoescape(["html"], default=True), trim_blocks=True, lstrip_blocks=True)
    env.filters["ts"] = _fmt_ts
    env.filters["size"] = _fmt_size
    env.filters["verdict_ja"] = threat_labels.verdict_ja
    env.filters["action_ja"] = threat_labels.action_ja
    env.filters["threat_label"] = threat_labels.label
    env.filters["threat_explain"] = threat_labels.explain
    env.filters["type_label"] = threat_labels.type_label
    env.filters["place"] = threat_labels.place
    env.filters["family_label"] = threat_labels.family_label
    return env


_SHOWN_PLACES = 8  # places listed per row; the sidecar has all


def _flatten(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per kind of finding (id, action), members' included: 12 CSV cells are one row listing the
    cells, a password-protected ZIP of 30 files one row naming them (the member before its place).
    What was removed first, notes ("reported") last."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def walk(r: dict[str, Any], where: str) -> None:
        for t in r.get("threats") or []:
            key = (str(t.get("id", "")), str(t.get("action", "")))
            row = rows.setdefault(key, {"id": key[0], "action": key[1], "where": "", "count": 0,
                                        "places": [], "hidden": 0, "tech": [], "members": False})
            row["count"] += 1
            place = threat_labels.place(t)
            shown = "：".join(x for x in (where, place) if x)
            row["members"] = row["members"] or bool(where)
            if shown and shown not in row["places"]:
                if len(row["places"]) < _SHOWN_PLACES:
                    row["places"].append(shown)
                else:
                    row["hidden"] += 1  # "ほか N 件": places not listed (the sidecar has all)
            if len(row["tech"]) < _SHOWN_PLACES:
                row["tech"].append(" ".join(x for x in (str(t.get("location") or ""),
                                                         "" if place else str(t.get("detail") or "")) if x))
        for c in r.get("children") or []:
            walk(c, (where + " › " if where else "") + str(c.get("source", "")))

    if result:
        walk(result, "")
    return sorted(rows.values(), key=lambda r: (r["action"] == "reported", r["members"]))


def sent_name(job: Any) -> str:
    """The name as the sender gave it: an e-application's attachment may have been renamed for Windows
    (`<img ...>.txt` is delivered as `_img ..._.txt`)."""
    for f in loads(job["sub_files"]) or []:
        if f.get("name") == job["name"] and f.get("sent_name"):
            return str(f["sent_name"])
    return str(job["name"])


def delivered_name(job: Any) -> str | None:
    """The name the file has on the share (申請書.docx for a 申請書.docm sent), None when not delivered."""
    plan = loads(job["plan"]) or {}
    return next((pf["name"] for pf in plan.get("files", []) if pf.get("kind") == "output"), None)


def _children(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def walk(r: dict[str, Any], depth: int) -> None:
        for c in r.get("children") or []:
            rows.append({"name": c.get("source"), "verdict": c.get("verdict"), "depth": depth,
                         "reason": c.get("reason_ja") or c.get("reason"), "threats": len(c.get("threats") or []),
                         "type": c.get("detected_type")})
            walk(c, depth + 1)

    if result:
        walk(result, 0)
    return rows


class Console:
    def __init__(self, ledger: Ledger, data_dir: Path, fsync: bool = True, lock: Any = None,
                 retry: Callable[[int, str, str], int] | None = None, tree: Any = None,
                 policy_for: Callable[[str], Policy] | None = None, extract: Any = None) -> None:
        self.ledger = ledger
        self.extract = extract  # the appliance's mail_part: one attachment of a quarantined mail
        # The channel's policy (its [release] rules); without an appliance, the default policy.
        if policy_for is None:
            default = load_policy()
            policy_for = lambda _channel: default  # noqa: E731
        self.policy_for = policy_for
        self.tree = tree  # the appliance's safefs.Tree (links refused and reported); None: a plain one
        self.retry = retry  # the appliance's retry_with_password, when there is an appliance
        self.data_dir = Path(data_dir)
        self.fsync = fsync
        self.lock = lock
        self.env = _env()
        ensure_schema(ledger)

    # ---------------------------------------------------------------- helpers
    def render(self, request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        sess = getattr(request.state, "session", None)
        if sess is not None and sess.user.has_role(("approver", "admin")):
            cond, names = sess.user.scope.sql("j.channel")
            ctx.setdefault("pending_count", self.ledger.one(
                "SELECT COUNT(*) FROM original_requests r JOIN jobs j ON j.id = r.job_id WHERE r.status = 'pending'"
                f" AND {cond}", names)[0])
        html = self.env.get_template(template).render(request=request, session=sess, **ctx)
        return HTMLResponse(html, status_code=status)

    def session(self, request: Request, roles: tuple[str, ...] = users.ROLES) -> users.Session:
        sess = users.session_for(self.ledger, request.cookies.get(COOKIE))
        if sess is None:
            nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise _Redirect("/login?" + urlencode({"next": nxt}))
        request.state.session = sess
        if not sess.user.has_role(roles):
            raise _Denied(403, "この画面を表示する権限がありません")
        return sess

    async def check_csrf(self, request: Request, sess: users.Session) -> dict[str, str]:
        form = await request.form(max_files=0, max_fields=50, max_part_size=64 * 1024)
        token = str(form.get("csrf", ""))
        origin = request.headers.get("origin")
        if origin and origin != "null" and origin.rstrip("/") != f"{request.url.scheme}://{request.url.netloc}":
            raise _Denied(403, "不正な送信元からの操作です")
        if not hmac.compare_digest(token.encode(), sess.csrf.encode()):
            raise _Denied(403, "画面の有効期限が切れました。もう一度操作してください（CSRF）")
        return {k: str(v) for k, v in form.items()}

    def manages(self, admin: users.User, tenant: str) -> bool:
        """Whether `admin` administers accounts and keys of `tenant` ("" for a prefecture administrator)."""
        return admin.role == "prefecture" or (tenant != "" and tenant == admin.tenant)

    def audit_rows(self, admin: users.User, limit: int = 30) -> list[Any]:
        """The newest audit rows an admin may read: all of them on a single-tenant appliance or for the
        prefecture; for a municipality's admin, those its own accounts made or about its own channels' jobs."""
        scope = admin.scope
        base = "SELECT seq, ts, event, actor, job_id, data FROM audit"
        if admin.role == "prefecture" or scope.domain is None or scope.domain.unrestricted:
            return self.ledger.query(base + " ORDER BY seq DESC LIMIT ?", (limit,))
        names = [u["name"] for u in users.list_users(self.ledger) if u["tenant"] == admin.tenant]
        cond, chans = scope.sql("j.channel")
        by_actor = f"actor IN ({','.join('?' * len(names))}) OR " if names else ""
        return self.ledger.query(base + f" WHERE {by_actor}job_id IN (SELECT j.id FROM jobs j WHERE {cond})"
                                 " ORDER BY seq DESC LIMIT ?", (*names, *chans, limit))

    def job(self, job_id: int, scope: Scope) -> Any:
        """A job of a channel within `scope`; another channel's is answered exactly like a missing one."""
        row = self.ledger.one("SELECT j.*, s.receipt, s.client AS sub_client, s.bundle_dir, s.files AS sub_files"
                              " FROM jobs j"
                              " LEFT JOIN submissions s ON s.id = j.submission_id WHERE j.id = ?", (job_id,))
        if row is None or not scope.allows(row["channel"]):
            raise _Denied(404, "該当するファイルがありません")
        return row

    # ---------------------------------------------------------------- deliveries
    def list_deliveries(self, f: dict[str, str], page: int, scope: Scope) -> tuple[list[dict[str, Any]], int]:
        cond, names = scope.sql("j.channel")
        where, params = [cond], list(names)
        if f.get("channel"):
            where.append("chkey(j.channel) = ?")
            params.append(channel_name(f["channel"]))
        if f.get("date"):
            try:
                d0, d1 = clock.day_bounds(f["date"])  # the day in the appliance's zone, as the folders
                where.append("j.received_at >= ? AND j.received_at < ?")
                params += [d0, d1]
            except ValueError:
                pass
        v = f.get("verdict")
        if v in ("clean", "sanitized", "blocked"):
            where.append("j.verdict = ? AND j.status IN ('delivered','blocked')")
            params.append(v)
        elif v == "pending":
            where.append("j.status NOT IN ('delivered','blocked')")
        receipt = unicodedata.normalize("NFKC", f.get("receipt", "")).strip()
        if receipt:
            # Receipts are generated ASCII (YYYYMMDD-NNNN): normalising the query is enough.
            where.append("s.receipt LIKE ? ESCAPE '\\'")
            params.append(_like(receipt) + "%")
        q = _norm(f.get("q", ""))[:200]
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        base = " FROM jobs j LEFT JOIN submissions s ON s.id = j.submission_id" + cond
        cols = ("SELECT j.id, j.status, j.channel, j.name, j.verdict, j.received_at, j.finished_at, j.size,"
                " j.result, j.plan, j.source, j.drop_path, j.mail_id, s.receipt, s.files AS sub_files,"
                " (SELECT COUNT(*) FROM original_requests r WHERE r.job_id = j.id"
                " AND r.status = 'approved') AS originals")
        if q:
            # SQL LIKE cannot compare width-normalised text: filter the (id, name) pairs here,
            # then load only the page's rows. A mail is found by its subject and sender too.
            ids = [r[0] for r in self.ledger.query(
                "SELECT j.id, j.name, CASE WHEN j.mail_id IS NULL THEN NULL ELSE j.result END" + base
                + " ORDER BY j.id DESC", tuple(params)) if q in _norm_name(r[1] or "") or q in _mail_words(r[2])]
            total = len(ids)
            ids = ids[(page - 1) * PAGE:page * PAGE]
            rows = self.ledger.query(
                cols + " FROM jobs j LEFT JOIN submissions s ON s.id = j.submission_id WHERE j.id IN ("
                + ",".join("?" * len(ids)) + ") ORDER BY j.id DESC", tuple(ids)) if ids else []
        else:
            total = self.ledger.one("SELECT COUNT(*)" + base, tuple(params))[0]
            rows = self.ledger.query(cols + base + " ORDER BY j.id DESC LIMIT ? OFFSET ?",
                                     (*params, PAGE, (page - 1) * PAGE))
        out = []
        for r in rows:
            threats = _flatten(loads(r["result"]))
            labels: list[str] = []
            notes: list[str] = []
            for t in threats:
                # A note (properties not carried over) is not what the list should say first, and beside
                # 問題なし it must not read as a finding: "お知らせ：文書のプロパティ".
                into = notes if t["action"] == "reported" else labels
                lab = threat_labels.label(t["id"])
                if lab not in into:
                    into.append(lab)
            if not labels and notes:
                labels = ["お知らせ：" + "、".join(notes)]
            out.append({**dict(r), "final": r["status"] in FINAL, "threat_labels": labels,
                        "threat_count": len(threats), "shown_name": delivered_name(r), "sent_name": sent_name(r)})
        self._mail_rows(out)
        self._retry_marks(out)
        return out, total

    def _retry_marks(self, rows: list[dict[str, Any]]) -> None:
        """Mark the rows of a password chain (PPAP): a retry says so, and a blocked notice that a later
        retry replaced in the inbox says 置き換え済み, so the list shows one live verdict per file."""
        tags = {retry_tag(r) for r in rows}
        if not tags:
            return
        delivered: dict[str, list[int]] = {}
        for r in self.ledger.query("SELECT id, drop_path FROM jobs WHERE source = 'console' AND status = 'delivered'"
                                   " AND drop_path IN (" + ",".join("?" * len(tags)) + ")", tuple(tags)):
            delivered.setdefault(r["drop_path"], []).append(int(r["id"]))
        for r in rows:
            r["is_retry"] = r["source"] == "console" and str(r["drop_path"] or "").startswith("retry of job ")
            r["superseded_by"] = next((i for i in delivered.get(retry_tag(r), []) if i > r["id"]), None) \
                if r["status"] == "blocked" else None

    def _mail_rows(self, rows: list[dict[str, Any]]) -> None:
        """Mails are listed like files, with their subject, sender and recipients."""
        mail_ids = sorted({r["mail_id"] for r in rows if r.get("mail_id")})
        if not mail_ids:
            return
        rcpts: dict[tuple[str, str], list[str]] = {}
        for m, ch, addr in self.ledger.query("SELECT mail_id, channel, address FROM mail_rcpts WHERE mail_id IN ("
                                             + ",".join("?" * len(mail_ids)) + ") ORDER BY n", tuple(mail_ids)):
            rcpts.setdefault((m, ch), []).append(addr)
        senders = {m: f for m, f in self.ledger.query("SELECT id, mail_from FROM mails WHERE id IN ("
                                                      + ",".join("?" * len(mail_ids)) + ")", tuple(mail_ids))}
        for r in rows:
            if r.get("mail_id"):
                res = loads(r["result"]) or {}
                info = res.get("mail") or {}
                r["mail"] = {"subject": info.get("subject") or "", "from": ", ".join(info.get("from") or [])
                             or senders.get(r["mail_id"]) or "", "rcpts": rcpts.get((r["mail_id"], r["channel"]), []),
                             "attachments": len(res.get("children") or [])}

    def mail_view(self, job: Any, result: dict[str, Any]) -> dict[str, Any] | None:
        """The mail panel of a report: header, envelope, authentication, attachments with their verdicts."""
        if not job["mail_id"]:
            return None
        m = self.ledger.one("SELECT * FROM mails WHERE id = ?", (job["mail_id"],))
        info = result.get("mail") or {}
        auth = info.get("authentication") or {}
        spf = auth.get("spf") or (loads(m["spf"]) if m is not None else None) or {}
        policy = self.policy_for(job["channel"])
        atts = []
        for i, c in enumerate(result.get("children") or []):
            atts.append({"index": i, "name": c.get("source"), "verdict": c.get("verdict"),
                         "delivered_as": c.get("output") if c.get("verdict") != "blocked" else None,
                         "reason": c.get("reason_ja") or c.get("reason"),
                         "requestable": bool(c.get("sha256")) and not originals.never_released(job, policy, i)})
        return {
            "id": job["mail_id"], "subject": info.get("subject"), "from": ", ".join(info.get("from") or []),
            "to": ", ".join((info.get("to") or []) + (info.get("cc") or [])), "date": info.get("date"),
            "message_id": info.get("message_id"),
            "rcpts": self._mail_rcpts(job),
            "envelope_from": m["mail_from"] if m is not None else None,
            "client_ip": m["client_ip"] if m is not None else None, "helo": m["helo"] if m is not None else None,
            "tls": bool(m["tls"]) if m is not None else False,
            "spf": spf.get("result"), "dkim": ", ".join(d.get("result", "") for d in auth.get("dkim") or []),
            "dmarc": (auth.get("dmarc") or {}).get("result"), "attachments": atts,
            "needs_password": info.get("needs_password") or [],
            "deceptive_links": info.get("deceptive_links") or [],
            "where": self._mail_where(job),
        }

    _RELAY_STATE = {"sent": "転送済み", "pending": "転送待ち（再試行中）",
                    "rejected": "LGWAN側のメールサーバーが受け取りを拒否（配送されていません）",
                    "expired": "期限までに転送できず、配送をあきらめました（差出人に通知）"}

    def _mail_rcpts(self, job: Any) -> list[str]:
        """The job's recipients; relayed ones with what the LGWAN mail server did with each (a recipient it
        refused for good got nothing, and the clerk should see that here, not only in the audit trail)."""
        rcpts = self.ledger.mail_recipients(job["mail_id"], job["channel"])
        state = (loads(job["plan"]) or {}).get("relay") or {}
        return [f"{r}（{self._RELAY_STATE[state[r]]}）" if state.get(r) in self._RELAY_STATE else r for r in rcpts]

    @staticmethod
    def _mail_where(job: Any) -> str:
        """Where the mail went, for the clerk: the recipients' mailboxes or the LGWAN mail server (not the
        channel's inbox folder, where a mail never lands)."""
        plan = loads(job["plan"]) or {}
        if plan.get("deliver") == "smtp":
            return f"LGWAN側のメールサーバー（{plan.get('relay_target') or '—'}）へ転送"
        folders = list(dict.fromkeys(f["folder"] for f in plan.get("files") or [] if f.get("folder")))
        return "、".join(f"{d}/（メールボックス）" for d in folders) if folders else ""

    def form_only(self, f: dict[str, str], scope: Scope) -> list[Any]:
        """E-applications sent without attachments: no job row, so the file list cannot show them."""
        if f.get("verdict") or f.get("q"):
            return []
        cond, names = scope.sql("s.channel")
        where, params = ["NOT EXISTS (SELECT 1 FROM jobs j WHERE j.submission_id = s.id)", cond], list(names)
        if f.get("channel"):
            where.append("chkey(s.channel) = ?")
            params.append(channel_name(f["channel"]))
        if f.get("date"):
            where.append("s.day = ?")
            params.append(f["date"])
        receipt = unicodedata.normalize("NFKC", f.get("receipt", "")).strip()
        if receipt:
            where.append("s.receipt LIKE ? ESCAPE '\\'")
            params.append(_like(receipt) + "%")
        return self.ledger.query("SELECT s.receipt, s.channel, s.client, s.created_at, s.status FROM submissions s"
                                 " WHERE " + " AND ".join(where) + " ORDER BY s.created_at DESC LIMIT 50",
                                 tuple(params))

    def channels(self, scope: Scope) -> list[str]:
        cond, names = scope.sql("channel")
        return sorted({channel_name(r[0]) for r in self.ledger.query(
            f"SELECT DISTINCT channel FROM jobs WHERE {cond}", names)})

    def with_expiry(self, rows: list[Any]) -> list[dict[str, Any]]:
        """Request rows with `until` (when an approved original's download closes) and `open`."""
        now = time.time()
        out = []
        for r in rows:
            d = dict(r)
            if d["status"] == "approved":
                d["until"] = originals.expiry(r, self.policy_for(d["channel"]))
                d["open"] = d["until"] > now
            out.append(d)
        return out

    def for_approval(self, r: Any) -> dict[str, Any]:
        """A pending request with what the approver must see: why the file was blocked (or what was
        removed), whether the policy forbids its release, and whether approving needs a comment."""
        policy = self.policy_for(r["channel"])
        result = loads(r["result"]) or {}
        labels: list[str] = []
        for t in _flatten(result):
            lab = threat_labels.label(t["id"])
            if lab not in labels:
                labels.append(lab)
        return {**dict(r), "blocked_reason": result.get("reason_ja") or result.get("reason"),
                "threat_labels": labels, "never": originals.never_released(r, policy, r["part"]),
                "needs_comment": originals.needs_comment(r, policy)}

    def delivered_file(self, job: Any, kind: str) -> tuple[Path, str]:
        plan = loads(job["plan"]) or {}
        if job["status"] not in FINAL:
            raise _Denied(404, "まだ配送されていません")
        if plan.get("kind") == "mail":
            # The rebuilt mail as delivered (kept with the result until the original is purged).
            args = plan.get("args") or {}
            path = self.data_dir / args["cache"] / args["out_name"] if kind == "output" and args.get("cache") \
                and args.get("out_name") else None
            if path is None or path.is_symlink() or not path.is_file():
                raise _Denied(404, "このファイルはありません")
            return path, job["name"]
        for pf in plan.get("files", []):
            if pf["kind"] == kind:
                where = self.tree.path if self.tree is not None else self.data_dir.joinpath  # --inbox elsewhere
                path = where(plan["dir"]) / pf["name"]
                inbox = where("inbox").resolve()
                if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(inbox):
                    raise _Denied(404, "ファイルが受信フォルダに見つかりません（移動または削除された可能性があります）")
                return path, pf["name"]
        raise _Denied(404, "このファイルはありません")


def _flash_sig(sess: users.Session, code: str, arg: str) -> str:
    return hmac.new(sess.csrf.encode(), f"{code}\n{arg}".encode(), hashlib.sha256).hexdigest()[:32]


def _flash_url(path: str, code: str, sess: users.Session | None = None, arg: str = "") -> str:
    """Redirect target that shows the fixed banner `code` (with `arg`, signed for `sess`)."""
    q = {"msg": code}
    if arg and sess is not None:
        q.update(arg=arg, sig=_flash_sig(sess, code, arg))
    return path + "?" + urlencode(q)


def _flash(request: Request, sess: users.Session) -> str | None:
    """The banner for `?msg=`: known codes only; unknown codes and bad signatures show nothing."""
    code = request.query_params.get("msg", "")
    if code in FLASH:
        return FLASH[code]
    if code in FLASH_ARG:
        arg, sig = request.query_params.get("arg", ""), request.query_params.get("sig", "")
        if arg and hmac.compare_digest(sig.encode(), _flash_sig(sess, code, arg).encode()):
            return FLASH_ARG[code].format(arg=arg[:64])
    return None


def _id(raw: str) -> int:
    """A path id: a positive integer SQLite can hold; anything else is the normal 404 page."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 0 < int(raw) <= MAX_ID:
        raise _Denied(404, "ページが見つかりません")
    return int(raw)


def _page(raw: str) -> int:
    """The page query parameter: 1..100000; junk or huge numbers are not an error."""
    n = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 20 else 1
    return max(1, min(n, 100000))


def _norm(s: str) -> str:
    """Search form of a text: NFKC (full/half width, U+3000 space), case folded, runs of spaces as one."""
    return " ".join(unicodedata.normalize("NFKC", s).casefold().split())


@functools.lru_cache(maxsize=65536)
def _norm_name(name: str) -> str:  # the same job names are compared on every search
    return _norm(name)


def _mail_words(result: str | None) -> str:
    """A mail's subject and sender, as the name search compares them."""
    if not result:
        return ""
    info = (loads(result) or {}).get("mail") or {}
    return _norm(" ".join([str(info.get("subject") or ""), *[str(x) for x in info.get("from") or []]]))


def _like(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")[:200]


def _file_response(path: Path, name: str, text: bool = False) -> FileResponse:
    media = "text/plain; charset=utf-8" if text else "application/octet-stream"
    resp = FileResponse(path, media_type=media, filename=name, content_disposition_type="attachment")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _warn_unbound(ledger: Ledger) -> None:
    """Accounts and keys bound to no channel (e.g. created before bindings existed) reach nothing: say so
    once at start, so that an upgrade does not leave clerks wondering where their files went."""
    names = [r[0] for r in ledger.query("SELECT name FROM console_users WHERE role NOT IN ('admin', 'prefecture')"
                                        " AND disabled = 0"
                                        " AND all_channels = 0 AND (channels IS NULL OR channels = '[]')")]
    keys = [r[0] for r in ledger.query("SELECT prefix FROM api_keys WHERE revoked_at IS NULL AND all_channels = 0"
                                       " AND (channels IS NULL OR channels = '[]')")]
    if names or keys:
        log.warning("accounts or API keys bound to no channel reach nothing; bind them with `transfer-agent user"
                    " channels NAME --channels ...` / `apikey channels ID --channels ...` (or --all-channels)",
                    extra={"event": "access.unbound", "users": names[:50], "api_keys": keys[:50]})


def create_console_app(service: Any) -> FastAPI:
    """The console for an appliance `Service` (uses its ledger, data dir and delivery lock)."""
    ensure_schema(service.ledger)
    _warn_unbound(service.ledger)
    return build_console(service.ledger, service.cfg.data_dir, fsync=service.cfg.fsync,
                         lock=getattr(service, "delivery_lock", None),
                         retry=getattr(service, "retry_with_password", None),
                         tree=getattr(service, "tree", None), policy_for=getattr(service, "policy_for", None),
                         extract=getattr(service, "mail_part", None), cfg=service.cfg)


def build_console(ledger: Ledger, data_dir: Path, fsync: bool = True, lock: Any = None,
                  retry: Callable[[int, str, str], int] | None = None, tree: Any = None,
                  policy_for: Callable[[str], Policy] | None = None, extract: Any = None,
                  cfg: Any = None) -> FastAPI:
    """The console app; with the appliance's configuration `cfg` also its upload requests, submissions
    and tallies (exchange_pages.py)."""
    con = Console(ledger, data_dir, fsync, lock, retry, tree, policy_for, extract)
    app = FastAPI(title="transfer-agent console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = con
    app.state.has_exchange = False
    app.mount("/static", StaticFiles(directory=str(PKG / "static")), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        resp = await call_next(request)
        resp.headers.setdefault("Content-Security-Policy", _CSP)
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        if not request.url.path.startswith("/static/"):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.exception_handler(_Redirect)
    async def on_redirect(request: Request, exc: _Redirect) -> Response:
        return RedirectResponse(exc.url, status_code=303)

    @app.exception_handler(_Denied)
    async def on_denied(request: Request, exc: _Denied) -> Response:
        return con.render(request, "error.html", status=exc.status, message=exc.ja)

    @app.exception_handler(404)
    async def on_404(request: Request, exc: Exception) -> Response:
        return con.render(request, "error.html", status=404, message="ページが見つかりません")

    # ------------------------------------------------------------ login
    def login_page(request: Request, nxt: str, status: int = 200, error: str | None = None,
                   name: str = "") -> Response:
        # Login CSRF: a random value in a cookie that the form must echo (double submit).
        pre = secrets.token_urlsafe(24)
        resp = con.render(request, "login.html", status=status, pre=pre, next=_safe_next(nxt), error=error,
                          name=name)
        resp.set_cookie(PRE_COOKIE, pre, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        max_age=3600, path="/login")
        return resp

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:
        return login_page(request, next)

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=10, max_part_size=8192)
        name, pw = str(form.get("name", "")).strip(), str(form.get("password", ""))
        nxt = _safe_next(str(form.get("next", "/")))
        pre_c, pre_f = request.cookies.get(PRE_COOKIE, ""), str(form.get("pre", ""))
        if not pre_c or not hmac.compare_digest(pre_c.encode(), pre_f.encode()):
            return login_page(request, nxt, 403, "画面の有効期限が切れました。もう一度ログインしてください", name)
        client = request.client.host if request.client else ""
        try:
            token, _sess = await run_in_threadpool(users.login, con.ledger, name, pw, client)
        except users.LoginError as exc:
            return login_page(request, nxt, 401, exc.ja, name)
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        max_age=users.SESSION_SECONDS, path="/")
        resp.delete_cookie(PRE_COOKIE, path="/login")
        return resp

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        sess = con.session(request)
        await con.check_csrf(request, sess)
        await run_in_threadpool(users.logout, con.ledger, sess)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    @app.get("/")
    def home(request: Request) -> Response:
        sess = con.session(request)
        target = {"approver": "/approvals", "admin": "/admin", "prefecture": "/admin"}.get(sess.user.role, "/deliveries")
        return RedirectResponse(target, status_code=303)

    # ------------------------------------------------------------ clerk views
    @app.get("/deliveries", response_class=HTMLResponse)
    def deliveries(request: Request, channel: str = "", date: str = "", verdict: str = "", receipt: str = "",
                   q: str = "", page: str = "1") -> Response:
        sess = con.session(request)
        scope = sess.user.scope
        f = {"channel": channel[:64], "date": date[:10], "verdict": verdict[:16], "receipt": receipt[:64],
             "q": q[:200]}
        page_no = _page(page)
        rows, total = con.list_deliveries(f, page_no, scope)
        qs = {k: v for k, v in f.items() if v}
        return con.render(request, "deliveries.html", rows=rows, total=total, page=page_no, pages=max(1, -(-total // PAGE)),
                          f=f, channels=con.channels(scope), qs=urlencode(qs), forms=con.form_only(f, scope),
                          unbound=scope.none)

    @app.get("/deliveries/{job_id}", response_class=HTMLResponse)
    def report(request: Request, job_id: str) -> Response:
        sess = con.session(request)
        job = con.job(_id(job_id), sess.user.scope)
        result = loads(job["result"]) or {}
        plan = loads(job["plan"]) or {}
        kinds = {pf["kind"]: pf["name"] for pf in plan.get("files", [])}
        reqs = con.ledger.query(
            "SELECT r.*, j.channel, u.name AS requester, u.display_name AS requester_dn, a.name AS approver"
            " FROM original_requests r JOIN jobs j ON j.id = r.job_id JOIN console_users u ON u.id = r.requester_id"
            " LEFT JOIN console_users a ON a.id = r.approver_id WHERE r.job_id = ? ORDER BY r.id DESC", (job["id"],))
        pending_mine = any(r["status"] == "pending" and r["requester_id"] == sess.user.id for r in reqs)
        threats = _flatten(result)
        # PPAP: blocked for want of a password, which the clerk may have received another way (a mail:
        # delivered with a notice in place of its password-protected attachment).
        needs_password = con.retry is not None and wants_password(job["status"], result, bool(job["mail_id"]))
        retries = con.ledger.query("SELECT id, verdict, status FROM jobs WHERE source = 'console' AND drop_path = ?"
                                   " AND id > ? ORDER BY id", (retry_tag(job), job["id"]))
        # A password retry delivered the file: this notice was replaced in the inbox.
        superseded = next((r for r in retries if r["status"] == "delivered"), None)
        if superseded is not None:
            needs_password = False
            kinds = {k: v for k, v in kinds.items() if k not in ("notice", "report")}
        fields = []
        if job["submission_id"]:
            sub = con.ledger.one("SELECT fields FROM submissions WHERE id = ?", (job["submission_id"],))
            fields = [(field_text(str(k)), field_text(str(v))) for k, v in (loads(sub["fields"]) or [])] if sub else []
        return con.render(request, "report.html", job=job, result=result, kinds=kinds, threats=threats,
                          children=_children(result), reqs=con.with_expiry(reqs), pending_mine=pending_mine,
                          never=originals.never_released(job, con.policy_for(job["channel"])),
                          final=job["status"] in FINAL, msg=_flash(request, sess),
                          needs_password=needs_password, retries=retries, superseded=superseded,
                          delivered=delivered_name(job), sent_name=sent_name(job), fields=fields,
                          mail=con.mail_view(job, result), text_only=threat_labels.is_text_only(result),
                          sentence=threat_labels.verdict_sentence(result) if job["status"] in FINAL else "")

    @app.get("/deliveries/{job_id}/files/{kind}")
    def download(request: Request, job_id: str, kind: str) -> Response:
        sess = con.session(request)
        if kind not in ("output", "text", "sidecar", "report", "notice"):
            raise _Denied(404, "このファイルはありません")
        job = con.job(_id(job_id), sess.user.scope)
        path, name = con.delivered_file(job, kind)
        with con.ledger.tx() as t:
            t.audit("console.download", {"kind": kind, "name": name}, job_id=job["id"], actor=sess.user.name)
        return _file_response(path, name, text=kind in ("text", "report"))

    @app.post("/deliveries/{job_id}/request")
    async def request_original(request: Request, job_id: str) -> Response:
        sess = con.session(request)
        jid = _id(job_id)
        form = await con.check_csrf(request, sess)
        await run_in_threadpool(con.job, jid, sess.user.scope)  # another channel's: the same 404 as none
        raw = str(form.get("part", "")).strip()
        part = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 6 else None
        if raw and part is None:
            return RedirectResponse(_flash_url(f"/deliveries/{jid}", "bad_part"), status_code=303)
        try:
            await run_in_threadpool(originals.request_original, con.ledger, sess.user, jid, form.get("reason", ""),
                                    con.policy_for, part)
        except originals.RequestError as exc:
            return RedirectResponse(_flash_url(f"/deliveries/{jid}", exc.code), status_code=303)
        return RedirectResponse(_flash_url(f"/deliveries/{jid}", "requested"), status_code=303)

    @app.post("/deliveries/{job_id}/password")
    async def password_retry(request: Request, job_id: str) -> Response:
        sess = con.session(request)
        jid = _id(job_id)
        form = await con.check_csrf(request, sess)
        await run_in_threadpool(con.job, jid, sess.user.scope)  # another channel's: the same 404 as none
        if con.retry is None:
            return RedirectResponse(_flash_url(f"/deliveries/{jid}", "no_retry"), status_code=303)
        try:
            new_id = await run_in_threadpool(con.retry, jid, str(form.get("password", "")), sess.user.name)
        except RetryRefused as exc:
            return RedirectResponse(_flash_url(f"/deliveries/{jid}", exc.code), status_code=303)
        return RedirectResponse(_flash_url(f"/deliveries/{new_id}", "password_retry"), status_code=303)

    @app.get("/requests", response_class=HTMLResponse)
    def my_requests(request: Request) -> Response:
        sess = con.session(request)
        cond, names = sess.user.scope.sql("j.channel")
        rows = con.ledger.query(
            "SELECT r.*, j.name, j.channel, a.name AS approver FROM original_requests r JOIN jobs j ON j.id = r.job_id"
            f" LEFT JOIN console_users a ON a.id = r.approver_id WHERE r.requester_id = ? AND {cond}"
            " ORDER BY r.id DESC LIMIT 200", (sess.user.id, *names))
        return con.render(request, "requests.html", rows=con.with_expiry(rows))

    @app.get("/originals/{request_id}")
    def original_download(request: Request, request_id: str) -> Response:
        sess = con.session(request)
        client = request.client.host if request.client else ""
        try:
            path, name = originals.open_original(con.ledger, con.data_dir, sess.user, _id(request_id),
                                                 con.policy_for, client, con.extract)
        except originals.Unavailable as exc:
            raise _Denied(exc.status, exc.ja) from None
        # Named apart from the sanitized file the clerk may have downloaded beside it.
        name = fit_name(clean_name(originals.PREFIX + name), 200)
        if isinstance(path, bytes):  # one attachment of a mail, read out of the quarantined mail
            resp = Response(path, media_type="application/octet-stream", headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
                "X-Content-Type-Options": "nosniff"})
            return resp
        return _file_response(path, name)

    @app.get("/submissions/{receipt}/form")
    def form_text(request: Request, receipt: str) -> Response:
        sess = con.session(request)
        s = con.ledger.one("SELECT * FROM submissions WHERE receipt = ?", (receipt[:64],))
        if s is not None and not sess.user.scope.allows(s["channel"]):
            s = None  # another channel's: the same 404 as none
        path = (con.tree.path(s["bundle_dir"]) if con.tree is not None else con.data_dir / s["bundle_dir"]) \
            / "form.txt" if s else None
        if path is None or path.is_symlink() or not path.is_file():
            raise _Denied(404, "申請内容が見つかりません")
        with con.ledger.tx() as t:
            t.audit("console.download", {"kind": "form", "receipt": receipt}, actor=sess.user.name)
        return _file_response(path, f"{receipt}_form.txt", text=True)

    # ------------------------------------------------------------ approver views
    @app.get("/approvals", response_class=HTMLResponse)
    def approvals(request: Request) -> Response:
        sess = con.session(request, ("approver", "admin"))
        base = ("SELECT r.*, j.name, j.channel, j.verdict, u.name AS requester, u.display_name AS requester_dn,"
                " a.name AS approver FROM original_requests r JOIN jobs j ON j.id = r.job_id JOIN console_users u"
                " ON u.id = r.requester_id LEFT JOIN console_users a ON a.id = r.approver_id")
        cond, names = sess.user.scope.sql("j.channel")
        pending = [con.for_approval(r) for r in con.ledger.query(
            base.replace("j.verdict,", "j.verdict, j.result,") + f" WHERE r.status = 'pending' AND {cond} ORDER BY r.id",
            names)]
        done = con.ledger.query(base + f" WHERE r.status != 'pending' AND {cond} ORDER BY r.decided_at DESC LIMIT 30",
                                names)
        return con.render(request, "approvals.html", pending=pending, done=done, msg=_flash(request, sess))

    @app.post("/approvals/{request_id}")
    async def decide(request: Request, request_id: str) -> Response:
        sess = con.session(request, ("approver", "admin"))
        if sess.user.role == "prefecture":
            # Releasing a resident's original is the municipality's decision (its approvers'), not the
            # prefecture's that runs the cloud: it sees the requests, it does not decide them.
            raise _Denied(403, "原本取り出しの承認は各団体の承認者・管理者が行います")
        rid = _id(request_id)
        form = await con.check_csrf(request, sess)
        decision = form.get("decision")
        if decision not in ("approve", "reject"):
            raise _Denied(400, "承認または却下を選んでください")
        try:
            out = await run_in_threadpool(originals.decide, con.ledger, con.data_dir, sess.user, rid,
                                          decision == "approve", form.get("comment", ""), con.policy_for)
        except originals.RequestError as exc:
            return RedirectResponse(_flash_url("/approvals", exc.code), status_code=303)
        return RedirectResponse(_flash_url("/approvals", "approved" if out["status"] == "approved" else "rejected"),
                                status_code=303)

    # ------------------------------------------------------------ admin
    @app.get("/admin", response_class=HTMLResponse)
    def admin(request: Request) -> Response:
        sess = con.session(request, ("admin",))
        now = time.time()
        # A municipality's admin sees its own tenant's accounts, keys and audit rows; the prefecture's all.
        accounts = [{**u, "scope_ja": users.user_scope(u, tenants.domain(con.ledger, u["tenant"]) if u["tenant"]
                                                       else None).describe_ja()}
                    for u in users.list_users(con.ledger) if con.manages(sess.user, u["tenant"])]
        keys = [{**k, "tenant": tenants.tenant_name(k["tenant"]),
                 "scope_ja": apikeys.key_scope(con.ledger, k).describe_ja()}
                for k in apikeys.list_keys(con.ledger) if con.manages(sess.user, tenants.tenant_name(k["tenant"]))]
        prefecture = sess.user.role == "prefecture"
        return con.render(request, "admin.html", users=accounts, keys=keys, prefecture=prefecture,
                          tenants=tenants.list_tenants(con.ledger) if prefecture else [],
                          now=now, roles=users.ROLE_JA, msg=_flash(request, sess), audit=con.audit_rows(sess.user))

    @app.post("/admin/users/{name}/unlock")
    async def admin_unlock(request: Request, name: str) -> Response:
        sess = con.session(request, ("admin",))
        await con.check_csrf(request, sess)
        row = con.ledger.one("SELECT role, tenant FROM console_users WHERE name = ?", (name[:64],))
        if row is None or not con.manages(sess.user, "" if row["role"] == "prefecture"
                                          else tenants.tenant_name(row["tenant"])):
            return RedirectResponse(_flash_url("/admin", "no_user"), status_code=303)  # another tenant's: as none
        try:
            await run_in_threadpool(users.unlock, con.ledger, name, sess.user.name)
        except ValueError:
            return RedirectResponse(_flash_url("/admin", "no_user"), status_code=303)
        return RedirectResponse(_flash_url("/admin", "unlocked", sess, name[:64]), status_code=303)

    if cfg is not None:
        from . import exchange_pages

        exchange_pages.register(app, con, cfg)
        app.state.has_exchange = True
    return app


def _safe_next(nxt: str) -> str:
    """Only local paths: no scheme, no '//host' (open redirect)."""
    if not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt or "\n" in nxt or "\r" in nxt:
        return "/"
    return nxt[:500]
