"""`transfer-agent exchange ...` (upload requests) and `transfer-agent report` (tallies as CSV).

  exchange create --data-dir DIR --channel CH [--form NAME] --expires 7d [--title T] [--instructions T]
                  [--notify ADDRESS] [--max-uses N]      prints the public URL on its last line
  exchange list   --data-dir DIR [--channel CH] [--json]
  exchange revoke --data-dir DIR ID
  report          --data-dir DIR (--channel CH | --tenant NAME) --from DATE --to DATE [--csv FILE] [--svg FILE]
  (each takes --database postgresql://... for the shared ledger of a security cloud)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import exchange, tally, tenants
from .config import ConfigError, load_config


def add_exchange_commands(sub: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", default="./var", help="data directory (default ./var)")
        p.add_argument("--config", help="configuration TOML (default: DATA_DIR/transfer_agent.toml if present)")
        p.add_argument("--database", help="the shared ledger, postgresql://USER@HOST:PORT/DB (security cloud)")

    e = sub.add_parser("exchange", help="upload requests (アップロード依頼): links for senders")
    es = e.add_subparsers(dest="exchange_command", required=True)
    c = es.add_parser("create", help="a new upload link; the URL is the last line printed")
    common(c)
    c.add_argument("--channel", required=True, help="channel the files go to (default: the default channel)")
    c.add_argument("--form", help="form to use (default: the channel's form)")
    c.add_argument("--expires", required=True, help="7d, 12h, 2w or a date YYYY-MM-DD (end of that day)")
    c.add_argument("--title", help="title shown to the sender (default: the form's title)")
    c.add_argument("--instructions", default="", help="instructions shown to the sender")
    c.add_argument("--notify", help="also send the receipt mail to this address")
    c.add_argument("--max-uses", type=int, help="the link takes at most this many submissions")
    c.set_defaults(func=cmd_create)
    ls = es.add_parser("list", help="upload requests and their state")
    common(ls)
    ls.add_argument("--channel")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    r = es.add_parser("revoke", help="stop a link now")
    common(r)
    r.add_argument("id", help="request id (as in `exchange list`)")
    r.set_defaults(func=cmd_revoke)

    rp = sub.add_parser("report", help="tallies of a channel's (or a tenant's) submissions over a period (集計)")
    common(rp)
    which = rp.add_mutually_exclusive_group(required=True)
    which.add_argument("--channel")
    which.add_argument("--tenant", help="every channel of this municipality together (security cloud)")
    rp.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    rp.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD (included)")
    rp.add_argument("--csv", help="write the tallies as CSV (UTF-8 with BOM, for Excel)")
    rp.add_argument("--svg", help="write the chart as SVG")
    rp.set_defaults(func=cmd_report)


def _setup(args: argparse.Namespace):  # noqa: ANN202
    from .ledger import Ledger

    cfg = load_config(args.config, args.data_dir, database=args.database)
    return cfg, Ledger(cfg.ledger_target, anchor_path=cfg.state / "audit.anchor")


def _fail(msg: str) -> int:
    print(f"transfer-agent: {msg}", file=sys.stderr)
    return 2


def cmd_create(args: argparse.Namespace) -> int:
    try:
        cfg, ledger = _setup(args)
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        channel = exchange.channel_for(cfg, args.channel)
        form = args.form or cfg.channel_forms.get(channel, "default")
        if form not in cfg.forms:
            return _fail(f"no form {form!r} (known: {', '.join(sorted(cfg.forms))})")
        title = args.title or cfg.forms[form].title or "ファイルの提出"
        req, token = exchange.create(ledger, channel=channel, form=form, title=title,
                                     expires_at=exchange.parse_expiry(args.expires), actor="cli",
                                     instructions=args.instructions, notify=args.notify, max_uses=args.max_uses)
    except exchange.RequestError as exc:
        return _fail(f"{exc.en} / {exc.ja}")
    finally:
        ledger.close()
    if not cfg.channel_labels.get(req.channel):
        key = req.channel if req.channel.isascii() and req.channel.replace("-", "").replace("_", "").isalnum() \
            else f'"{req.channel}"'
        print(f"transfer-agent: note: channel {req.channel!r} has no display_name, so senders see {req.channel!r} on"
              f" the page and in receipt mails (set [channels.{key}] display_name = \"...\")", file=sys.stderr)
    if not cfg.notify_smtp and (args.notify or any(f.receipt for f in cfg.forms[form].fields)):
        print("transfer-agent: note: [notify] smtp is not set, so no receipt mail (受付確認メール) is sent"
              + (f" to {args.notify}" if args.notify else "") + " until it is", file=sys.stderr)
    print(f"upload request {req.id}: channel {req.channel}, form {req.form}, until {exchange.shown(req.expires_at)}"
          + (f", at most {req.max_uses} submission(s)" if req.max_uses else ""))
    print(exchange.url(exchange.public_base(cfg), token))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    try:
        cfg, ledger = _setup(args)
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        rows = (exchange.list_requests(ledger, "channel = ?", (args.channel,)) if args.channel
                else exchange.list_requests(ledger))
    finally:
        ledger.close()
    if args.json:
        print(json.dumps([{"id": r.id, "channel": r.channel, "form": r.form, "title": r.title, "state": r.state(),
                           "uses": r.uses, "max_uses": r.max_uses, "expires_at": r.expires_at,
                           "created_by": r.created_by} for r in rows], ensure_ascii=False, indent=2))
        return 0
    for r in rows:
        print(f"{r.id}  {exchange.STATE_JA[r.state()]:<6}  {r.channel}  {r.title}  uses {r.uses}"
              f"{'/' + str(r.max_uses) if r.max_uses else ''}  until {exchange.shown(r.expires_at)}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    try:
        _cfg, ledger = _setup(args)
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        ok = exchange.revoke(ledger, args.id, "cli")
    finally:
        ledger.close()
    if not ok:
        return _fail(f"no open upload request {args.id!r}")
    print(f"revoked {args.id}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    try:
        cfg, ledger = _setup(args)
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        start, end = tally.period(args.start, args.end)
        if args.tenant:
            if not tenants.exists(ledger, args.tenant):
                return _fail(f"no tenant {tenants.tenant_name(args.tenant)!r}")
            d = tenants.domain(ledger, args.tenant)
            seen = set(exchange.known_channels(cfg)) | {r[0] for r in ledger.query(
                "SELECT DISTINCT channel FROM submissions")}
            t = tally.compute(ledger, cfg, d.tenant, start, end, channels=sorted(c for c in seen if d.contains(c)))
        else:
            channel = exchange.channel_for(cfg, args.channel)
            t = tally.compute(ledger, cfg, channel, start, end)
    except tally.PeriodError as exc:
        return _fail(str(exc))
    except exchange.RequestError as exc:
        return _fail(exc.en)
    finally:
        ledger.close()
    if args.csv:
        Path(args.csv).write_bytes(tally.to_csv(t))
    if args.svg:
        Path(args.svg).write_text(tally.svg(t), "utf-8")
    for section, item, n in t.rows():
        print(f"{section}\t{item}\t{n}")
    return 0
