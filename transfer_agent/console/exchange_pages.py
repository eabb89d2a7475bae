"""Console pages of issue 14: upload requests (アップロード依頼), submissions (受付一覧) with their
要確認 flags, and tallies (集計) with CSV and chart. Every page and action is limited to the channels
the account is bound to (users.Session.user.scope): another channel's request, submission or tally
is answered exactly like a missing one.
"""
from __future__ import annotations

import json
import time
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from .. import exchange, tally
from ..channels import Scope, channel_name
from ..ledger import FINAL, loads
from . import FLASH, Console, _Denied, _flash, _flash_url

FLASH.update({
    "exchange_created": "アップロード依頼を作成しました。下のリンクを提出する方にお知らせください",
    "exchange_revoked": "アップロード依頼を取り消しました。このリンクからは送信できなくなりました",
    "exchange_not_open": "このアップロード依頼はすでに受付を終えています",
})
EXPIRY_CHOICES = [("1d", "1日"), ("3d", "3日"), ("7d", "7日（1週間）"), ("14d", "14日"), ("30d", "30日"), ("90d", "90日")]
SOURCE_JA = {"page": "アップロードページ", "api": "電子申請（REST）"}
ALL, ALL_LABEL = "*", "担当のすべてのチャネル"  # the tally of every channel the account reaches (a tenant's whole)


def _channels(con: Console, cfg: Any, scope: Scope) -> list[str]:
    seen = set(exchange.known_channels(cfg))
    seen |= {r[0] for r in con.ledger.query("SELECT DISTINCT channel FROM submissions")}
    return sorted(c for c in seen if scope.allows(c))


def _request(con: Console, rid: str, scope: Scope) -> exchange.UploadRequest:
    req = exchange.get(con.ledger, rid) if rid.isalnum() and len(rid) <= 16 else None
    if req is None or not scope.allows(req.channel):
        raise _Denied(404, "該当するアップロード依頼がありません")
    return req


def _summary(con: Console, sub_ids: list[str]) -> dict[str, dict[str, int]]:
    """Per submission: files by result (clean / sanitized / blocked / pending)."""
    out: dict[str, dict[str, int]] = {s: {} for s in sub_ids}
    for i in range(0, len(sub_ids), 500):
        chunk = sub_ids[i:i + 500]
        for j in con.ledger.query(f"SELECT submission_id, status, verdict FROM jobs WHERE submission_id IN"
                                  f" ({','.join('?' * len(chunk))})", tuple(chunk)):
            v = j["verdict"] if j["status"] in FINAL else "pending"
            d = out[j["submission_id"]]
            d[v] = d.get(v, 0) + 1
    return out


def _submission_rows(con: Console, cfg: Any, rows: list[Any]) -> list[dict[str, Any]]:
    sums = _summary(con, [r["id"] for r in rows])
    titles: dict[str, str] = {}
    out = []
    for r in rows:
        rid = r["request_id"]
        if rid and rid not in titles:
            req = exchange.get(con.ledger, rid)
            titles[rid] = req.title if req else rid
        out.append({**dict(r), "label": cfg.channel_label(r["channel"]), "source_ja": SOURCE_JA.get(r["source"], "—"),
                    "request_title": titles.get(rid) if rid else None, "files": sums.get(r["id"], {}),
                    "flags_list": json.loads(r["flags"]) if r["flags"] else []})
    return out


def _period(start: str, end: str) -> tuple[date, date]:
    if not start and not end:
        today = exchange.local(time.time()).date()
        return today.replace(day=1), today
    return tally.period(start or end, end or start)


def register(app: FastAPI, con: Console, cfg: Any) -> None:
    """Add the pages to the console app (called by build_console when it has the configuration)."""
    con.env.filters.setdefault("shown", exchange.shown)  # times in the appliance's zone, with its name (JST)

    def new_form(request: Request, sess: Any, status: int = 200, error: str | None = None,
                 values: dict[str, str] | None = None) -> HTMLResponse:
        scope = sess.user.scope
        rows = exchange.list_requests(con.ledger, *scope.sql("channel"))  # within the tenant, too
        return con.render(request, "exchange.html", status=status, error=error, values=values or {},
                          channels=[(c, cfg.channel_label(c)) for c in _channels(con, cfg, scope)],
                          forms=sorted(cfg.forms.values(), key=lambda f: (not f.builtin, f.name)),
                          channel_forms=cfg.channel_forms, expiries=EXPIRY_CHOICES, rows=rows,
                          state_ja=exchange.STATE_JA, label=cfg.channel_label, msg=_flash(request, sess),
                          unbound=scope.none)

    @app.get("/exchange", response_class=HTMLResponse)
    def exchange_list(request: Request) -> Response:
        sess = con.session(request)
        return new_form(request, sess)

    @app.post("/exchange")
    async def exchange_create(request: Request) -> Response:
        sess = con.session(request)
        form = await con.check_csrf(request, sess)
        values = {k: form.get(k, "") for k in ("channel", "form", "title", "instructions", "expires", "until",
                                               "notify", "max_uses")}
        channel = channel_name(values["channel"]) if values["channel"].strip() else ""
        if not channel or not sess.user.scope.allows(channel) or channel not in _channels(con, cfg, sess.user.scope):
            return new_form(request, sess, 422, "提出先のチャネルを選んでください", values)
        name = values["form"] or cfg.channel_forms.get(channel, "default")
        if name not in cfg.forms:
            return new_form(request, sess, 422, "フォームを選んでください", values)
        max_uses = None
        if values["max_uses"].strip():
            if not values["max_uses"].strip().isdigit():
                return new_form(request, sess, 422, "受付回数の上限は数字で入力してください", values)
            max_uses = int(values["max_uses"].strip())
        try:
            until = exchange.parse_expiry(values["until"] or values["expires"] or "7d")
            req, _token = await run_in_threadpool(
                lambda: exchange.create(con.ledger, channel=channel, form=name,
                                        title=values["title"] or cfg.forms[name].title or "ファイルの提出",
                                        expires_at=until, actor=sess.user.name, instructions=values["instructions"],
                                        notify=values["notify"].strip() or None, max_uses=max_uses))
        except exchange.RequestError as exc:
            return new_form(request, sess, 422, exc.ja, values)
        return RedirectResponse(_flash_url(f"/exchange/{req.id}", "exchange_created"), status_code=303)

    @app.get("/exchange/{rid}", response_class=HTMLResponse)
    def exchange_detail(request: Request, rid: str) -> Response:
        sess = con.session(request)
        req = _request(con, rid, sess.user.scope)
        subs = con.ledger.query("SELECT * FROM submissions WHERE request_id = ? ORDER BY created_at DESC LIMIT 500",
                                (req.id,))
        return con.render(request, "exchange_detail.html", req=req, url=exchange.url(exchange.public_base(cfg),
                                                                                      req.token),
                          state=req.state(), state_ja=exchange.STATE_JA, label=cfg.channel_label(req.channel),
                          form=cfg.forms.get(req.form), subs=_submission_rows(con, cfg, subs),
                          msg=_flash(request, sess))

    @app.post("/exchange/{rid}/revoke")
    async def exchange_revoke(request: Request, rid: str) -> Response:
        sess = con.session(request)
        req = _request(con, rid, sess.user.scope)
        await con.check_csrf(request, sess)
        ok = await run_in_threadpool(exchange.revoke, con.ledger, req.id, sess.user.name)
        return RedirectResponse(_flash_url(f"/exchange/{req.id}", "exchange_revoked" if ok else "exchange_not_open"),
                                status_code=303)

    @app.get("/submissions", response_class=HTMLResponse)
    def submissions(request: Request, channel: str = "", start: str = "", end: str = "", flagged: str = "",
                    receipt: str = "") -> Response:
        sess = con.session(request)
        scope = sess.user.scope
        try:
            a, b = _period(start[:10], end[:10])
        except tally.PeriodError as exc:
            raise _Denied(400, str(exc)) from None
        lo, hi = tally._bounds(a, b)
        cond, names = scope.sql("channel")
        where, params = [cond, "created_at >= ?", "created_at < ?"], [*names, lo, hi]
        if channel.strip():
            where.append("channel = ?")
            params.append(channel_name(channel[:64]))
        if flagged:
            where.append("flags IS NOT NULL AND flags != '[]'")
        if receipt.strip():
            where.append("receipt = ?")
            params.append(receipt.strip()[:32])
        rows = con.ledger.query(f"SELECT * FROM submissions WHERE {' AND '.join(where)} ORDER BY created_at DESC"
                                " LIMIT 500", tuple(params))
        listed = _submission_rows(con, cfg, rows)
        return con.render(request, "submissions.html", rows=listed, subs=listed,
                          f={"channel": channel[:64], "start": a.isoformat(), "end": b.isoformat(),
                             "flagged": flagged[:1]},
                          channels=[(c, cfg.channel_label(c)) for c in _channels(con, cfg, scope)],
                          unbound=scope.none)

    @app.get("/submissions/{receipt}", response_class=HTMLResponse)
    def submission(request: Request, receipt: str) -> Response:
        sess = con.session(request)
        s = con.ledger.one("SELECT * FROM submissions WHERE receipt = ?", (receipt[:32],))
        if s is None or not sess.user.scope.allows(s["channel"]):
            raise _Denied(404, "該当する受付がありません")
        form = cfg.forms.get(s["form"]) if s["form"] else None
        labels = {f.name: f.label for f in form.fields} if form else {}
        fields = [(labels.get(k, k), v) for k, v in (tuple(x) for x in loads(s["fields"]) or [])]
        jobs = con.ledger.query("SELECT id, name, status, verdict, result FROM jobs WHERE submission_id = ? ORDER BY id",
                                (s["id"],))
        files = []
        for j in jobs:
            res = loads(j["result"]) or {}
            files.append({"id": j["id"], "name": j["name"], "final": j["status"] in FINAL, "verdict": j["verdict"],
                          "reason": res.get("reason_ja") or res.get("reason")})
        req = exchange.get(con.ledger, s["request_id"]) if s["request_id"] else None
        mail = None
        if s["receipt_to"]:
            mail = {"to": json.loads(s["receipt_to"]), "state": _mail_state(con, s)}
        return con.render(request, "submission.html", s=s, fields=fields, files=files, req=req,
                          label=cfg.channel_label(s["channel"]), source_ja=SOURCE_JA.get(s["source"], "—"),
                          flags=json.loads(s["flags"]) if s["flags"] else [], mail=mail)

    def _tally(request: Request, channel: str, start: str, end: str) -> tuple[Any, tally.Tally | None, str | None]:
        sess = con.session(request)
        scope = sess.user.scope
        channels = _channels(con, cfg, scope)
        if not channel.strip():
            return sess, None, None
        whole = channel.strip() == ALL
        channel = ALL if whole else channel_name(channel)
        if channel not in channels and not (whole and channels):
            raise _Denied(404, "該当するチャネルがありません")
        try:
            a, b = _period(start[:10], end[:10])
        except tally.PeriodError as exc:
            return sess, None, str(exc)
        if whole:  # every channel the account reaches: its municipality's whole (or its department's)
            return sess, tally.compute(con.ledger, cfg, ALL, a, b, channels=channels, label=ALL_LABEL), None
        return sess, tally.compute(con.ledger, cfg, channel, a, b), None

    @app.get("/tally", response_class=HTMLResponse)
    def tally_page(request: Request, channel: str = "", start: str = "", end: str = "") -> Response:
        sess, t, error = _tally(request, channel[:64], start, end)
        channels = _channels(con, cfg, sess.user.scope)
        a, b = (t.start, t.end) if t else _period("", "")
        qs = urlencode({"channel": channel, "start": a.isoformat(), "end": b.isoformat()})
        sections: dict[str, list[tuple[str, Any]]] = {}
        if t is not None:
            for section, item, n in t.rows()[2:]:
                sections.setdefault(section, []).append((item, n))
        return con.render(request, "tally.html", t=t, error=error, sections=sections, qs=qs,
                          chart=tally.svg(t, title=False) if t else None,
                          channels=[(ALL, ALL_LABEL)] * bool(channels) + [(c, cfg.channel_label(c)) for c in channels],
                          f={"channel": channel[:64], "start": a.isoformat(), "end": b.isoformat()},
                          status=400 if error else 200)

    def _download(t: tally.Tally, data: bytes, ext: str, media: str) -> Response:
        name = f"集計_{t.label}_{t.start.isoformat()}_{t.end.isoformat()}.{ext}"
        disp = f"attachment; filename=\"tally.{ext}\"; filename*=UTF-8''{quote(name)}"
        return Response(data, media_type=media, headers={"Content-Disposition": disp,
                                                         "X-Content-Type-Options": "nosniff"})

    @app.get("/tally.csv")
    def tally_csv(request: Request, channel: str = "", start: str = "", end: str = "") -> Response:
        sess, t, error = _tally(request, channel[:64], start, end)
        if t is None:
            raise _Denied(400, error or "チャネルを選んでください")
        with con.ledger.tx() as tx:
            tx.audit("console.download", {"kind": "tally", "channel": t.channel, "from": t.start.isoformat(),
                                          "to": t.end.isoformat()}, actor=sess.user.name)
        return _download(t, tally.to_csv(t), "csv", "text/csv; charset=utf-8")

    @app.get("/tally.svg")
    def tally_svg(request: Request, channel: str = "", start: str = "", end: str = "") -> Response:
        _sess, t, error = _tally(request, channel[:64], start, end)
        if t is None:
            raise _Denied(400, error or "チャネルを選んでください")
        return _download(t, tally.svg(t).encode("utf-8"), "svg", "image/svg+xml")


def _mail_state(con: Console, s: Any) -> str:
    """The receipt mail's state for staff: 未送信 (not yet due), 送信待ち, 送信済み, 送信できず."""
    qid = s["receipt_mail"]
    if not qid:
        return "結果の確定待ち" if s["status"] != "done" else "送信待ち"
    try:
        row = con.ledger.one("SELECT status, rcpts, last_error FROM outbox WHERE queue_id = ?", (qid,))
    except Exception:  # noqa: BLE001 - no outbox table (mail not configured)
        row = None
    if row is None:
        return "送信待ち"
    states = set(json.loads(row["rcpts"]).values()) if row["rcpts"] else set()
    if row["status"] == "done":
        return "送信済み" if "sent" in states else "送信できませんでした（宛先が受け付けられませんでした）"
    return "送信待ち（再試行中）" if row["last_error"] else "送信待ち"
