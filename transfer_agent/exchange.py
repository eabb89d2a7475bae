"""Upload requests (アップロード依頼): a link a clerk sends to a resident or a business.

A request belongs to a channel and names the channel's form; it has a title, instructions for the
sender, an expiry, an optional notify address (the receipt mail goes there too) and an optional
number of uses. The link is `<public_url>/u/<token>`, the token 256 random bits; it stops working
when revoked, at expiry, or after `max_uses` submissions. Creation, revocation and every use are
audited (`exchange.created`, `exchange.revoked`, `api.submission` with the request id), and
`audit verify` recomputes each request's state from those rows (audit_state.py).
"""
from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import clock, schema

SCHEMA = """
CREATE TABLE IF NOT EXISTS upload_requests (
    id           TEXT PRIMARY KEY,        -- short id for console pages and the audit trail
    token_hash   TEXT NOT NULL UNIQUE,    -- sha256 of the link's token: how a request is found
    token        TEXT NOT NULL,           -- the token itself, so staff of the channel can send the link again
    channel      TEXT NOT NULL,
    form         TEXT NOT NULL,
    title        TEXT NOT NULL,
    instructions TEXT NOT NULL DEFAULT '',
    notify       TEXT,                    -- receipt mails also go here
    expires_at   REAL NOT NULL,
    max_uses     INTEGER,                 -- NULL: until expiry
    uses         INTEGER NOT NULL DEFAULT 0,
    created_by   TEXT NOT NULL,
    created_at   REAL NOT NULL,
    revoked_at   REAL,
    revoked_by   TEXT
);
CREATE INDEX IF NOT EXISTS upload_requests_channel ON upload_requests(channel, created_at);
"""
schema.register("exchange", SCHEMA)

MAX_TITLE = 100
MAX_INSTRUCTIONS = 2000
MAX_EXPIRY_DAYS = 365
_DURATION = re.compile(r"([0-9]{1,4})\s*([hdw])")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


class RequestError(ValueError):
    def __init__(self, ja: str, en: str) -> None:
        super().__init__(en)
        self.ja, self.en = ja, en


@dataclass
class UploadRequest:
    id: str
    channel: str
    form: str
    title: str
    instructions: str
    notify: str | None
    expires_at: float
    max_uses: int | None
    uses: int
    created_by: str
    created_at: float
    revoked_at: float | None
    revoked_by: str | None
    token: str

    @classmethod
    def from_row(cls, r: Any) -> UploadRequest:
        return cls(r["id"], r["channel"], r["form"], r["title"], r["instructions"], r["notify"], r["expires_at"],
                   r["max_uses"], r["uses"], r["created_by"], r["created_at"], r["revoked_at"], r["revoked_by"],
                   r["token"])

    def state(self, now: float | None = None) -> str:
        """open | revoked | expired | used_up"""
        now = time.time() if now is None else now
        if self.revoked_at is not None:
            return "revoked"
        if now >= self.expires_at:
            return "expired"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "used_up"
        return "open"


STATE_JA = {"open": "受付中", "revoked": "取り消し済み", "expired": "期限切れ", "used_up": "回数上限"}


def zone() -> Any:
    """The appliance's time zone (clock.py: Asia/Tokyo unless configured)."""
    return clock.zone()


def local(ts: float) -> datetime:
    return clock.local(ts)


def shown(ts: float | None) -> str:
    """A time for a person: 2026-12-07 15:30 JST."""
    return clock.shown(ts)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def valid_token(token: str) -> bool:
    return bool(_TOKEN.fullmatch(token))


def parse_expiry(text: str, now: float | None = None) -> float:
    """`7d`, `12h`, `2w` or a date `2026-12-31` (the end of that day) -> epoch seconds."""
    now = time.time() if now is None else now
    text = text.strip()
    m = _DURATION.fullmatch(text)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        seconds = n * {"h": 3600, "d": 86400, "w": 7 * 86400}[unit]
        if n <= 0:
            raise RequestError("有効期限は1時間以上にしてください", "expiry must be at least 1h")
        until = now + seconds
    else:
        try:
            d = datetime.strptime(text, "%Y-%m-%d")
        except ValueError:
            raise RequestError("有効期限は「7d」（日数）、「12h」（時間）または日付（2026-12-31）で指定してください",
                               "expiry: 7d, 12h, 2w or a date YYYY-MM-DD") from None
        until = (d + timedelta(days=1)).replace(tzinfo=zone()).timestamp()
        if until <= now:
            raise RequestError("有効期限が過去の日付です", "expiry is in the past")
    if until - now > MAX_EXPIRY_DAYS * 86400:
        raise RequestError(f"有効期限は{MAX_EXPIRY_DAYS}日以内にしてください",
                           f"expiry: at most {MAX_EXPIRY_DAYS} days")
    return until


def create(ledger: Any, *, channel: str, form: str, title: str, expires_at: float, actor: str,
           instructions: str = "", notify: str | None = None, max_uses: int | None = None) -> tuple[UploadRequest, str]:
    """A new request (audited 'exchange.created'); returns it and its token."""
    from .forms import Field

    title = " ".join(title.split())
    if not title:
        raise RequestError("件名を入力してください", "a title is required")
    if len(title) > MAX_TITLE or len(instructions) > MAX_INSTRUCTIONS:
        raise RequestError(f"件名は{MAX_TITLE}文字、説明は{MAX_INSTRUCTIONS}文字までです",
                           f"title at most {MAX_TITLE}, instructions at most {MAX_INSTRUCTIONS} characters")
    from .forms import text_value

    instructions = text_value(instructions).strip()
    if notify:
        notify, err = Field("notify", "通知先メールアドレス", "email").clean(notify)
        if err is not None:
            raise RequestError(err.ja, err.en)
    if max_uses is not None and not 1 <= max_uses <= 100_000:
        raise RequestError("使用回数の上限は1以上にしてください", "max_uses must be 1..100000")
    token = secrets.token_urlsafe(32)
    rid = secrets.token_hex(4)
    now = time.time()
    with ledger.tx() as t:
        t.execute("INSERT INTO upload_requests(id, token_hash, token, channel, form, title, instructions, notify,"
                  " expires_at, max_uses, created_by, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                  (rid, token_hash(token), token, channel, form, title, instructions, notify or None, expires_at,
                   max_uses, actor, now))
        t.audit("exchange.created", {"request_id": rid, "channel": channel, "form": form, "title": title,
                                     "expires_at": expires_at, "max_uses": max_uses, "notify": notify or None},
                actor=actor)
    return get(ledger, rid), token  # type: ignore[return-value]


def get(ledger: Any, rid: str) -> UploadRequest | None:
    row = ledger.one("SELECT * FROM upload_requests WHERE id = ?", (rid[:16],))
    return UploadRequest.from_row(row) if row is not None else None


def by_token(ledger: Any, token: str) -> UploadRequest | None:
    if not valid_token(token):
        return None
    row = ledger.one("SELECT * FROM upload_requests WHERE token_hash = ?", (token_hash(token),))
    if row is None:
        return None
    from . import tenants

    if tenants.domain(ledger, tenants.owner(ledger, row["channel"])).disabled:
        return None  # its town's tenant is disabled: the link answers as one that does not exist
    return UploadRequest.from_row(row)


def revoke(ledger: Any, rid: str, actor: str) -> bool:
    """Stop a link now (audited 'exchange.revoked'); False if it was already revoked or does not exist."""
    with ledger.tx() as t:
        cur = t.execute("UPDATE upload_requests SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
                        (time.time(), actor, rid))
        if not cur.rowcount:
            return False
        t.audit("exchange.revoked", {"request_id": rid}, actor=actor)
    return True


def list_requests(ledger: Any, where: str = "1", params: tuple = (), limit: int = 200) -> list[UploadRequest]:
    return [UploadRequest.from_row(r) for r in ledger.query(
        f"SELECT * FROM upload_requests WHERE {where} ORDER BY created_at DESC LIMIT ?", (*params, limit))]


def url(base: str, token: str) -> str:
    return f"{base.rstrip('/')}/u/{token}"


def public_base(cfg: Any) -> str:
    """Where senders reach the upload pages: `[exchange] public_url`, else the running service's API
    address (state/agent.json), else the configured API address."""
    if cfg.exchange_public_url:
        return cfg.exchange_public_url.rstrip("/")
    import json

    try:
        info = json.loads((cfg.state / "agent.json").read_text("utf-8"))
        if info.get("api_url"):
            return str(info["api_url"]).rstrip("/")
    except (OSError, ValueError):
        pass
    host = cfg.api_bind
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if cfg.api_tls_cert else 'http'}://{host}:{cfg.api_port}"


def known_channels(cfg: Any) -> list[str]:
    """Channels a request may be made for: the default one, the configured ones and the dropbox's folders."""
    from .channels import channel_name

    names = {cfg.default_channel, *cfg.channel_policies, *cfg.channel_forms, *cfg.channel_labels}
    try:
        for p in cfg.dropbox.iterdir():
            if p.is_dir() and not p.is_symlink() and not p.name.startswith("."):
                names.add(channel_name(p.name))
    except OSError:
        pass
    return sorted(names)


def channel_for(cfg: Any, name: str) -> str:
    """The channel `name` names (`default` is the default channel); RequestError if it is not known."""
    from .channels import channel_name

    name = channel_name(name.strip()) if name.strip() else ""
    if name == "default" and name not in known_channels(cfg):
        return cfg.default_channel
    if name not in known_channels(cfg):
        raise RequestError(f"チャネル「{name}」はこの装置にありません",
                           f"unknown channel {name!r} (known: {', '.join(known_channels(cfg))})")
    return name
