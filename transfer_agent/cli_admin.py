"""`transfer-agent apikey ...` and `transfer-agent user ...`: accounts for the API and the console.

  apikey create --data-dir DIR --client NAME (--channels A,B | --all-channels)
                prints the new key as its last line (shown once)
  apikey channels --data-dir DIR KEY_ID_OR_PREFIX (--channels A,B | --all-channels | --none)
  apikey list   --data-dir DIR [--json]
  apikey revoke --data-dir DIR KEY_ID_OR_PREFIX
  user add      --data-dir DIR --name NAME --role clerk|approver|admin [--display-name TEXT]
                [--channels A,B | --all-channels]   (password from stdin: one line; asked twice on a terminal)
  user channels --name NAME (--channels A,B | --all-channels | --none)
  user list | passwd --name NAME | disable --name NAME | enable --name NAME | unlock --name NAME
                (the positional NAME of earlier versions still works, with a note)
  tenant create NAME --channels A,B [--display-name TEXT]   (security cloud: a municipality owning channels)
  tenant list [--json] | disable NAME | enable NAME | channels NAME --channels A,B
  user tenant --name NAME --tenant T | apikey tenant KEY --tenant T   (move one into a tenant)
  (every command takes --database postgresql://... for the shared ledger; user add and apikey create
   take --tenant NAME: the account or key belongs to that municipality and reaches only its channels)
  originals legacy --data-dir DIR [--remove] [--json]
                originals that older versions copied into shared delivery folders (and removing them)

Channels: a key or a clerk/approver reaches only the channels it is bound to; without --channels or
--all-channels it reaches none (admins reach all). Names compare after NFKC and case folding.
"""
from __future__ import annotations

import argparse
import getpass
import json
import string
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import apikeys, clock, tenants, users
from .channels import Scope, parse_list
from .ledger import Ledger


def _open(args: argparse.Namespace) -> Ledger:
    """The SQLite ledger under --data-dir, or the shared one named by --database (the anchor stays in
    DATA_DIR/state either way)."""
    state = Path(args.data_dir) / "state"
    return Ledger(args.database or state / "ledger.sqlite3", anchor_path=state / "audit.anchor")


def _ts(ts: float | None) -> str:
    return clock.shown(ts) if ts else "-"


def _read_password(confirm: bool = True) -> str:
    if sys.stdin.isatty():
        pw = getpass.getpass("password: ")
        if confirm and getpass.getpass("again: ") != pw:
            raise ValueError("passwords do not match")
        return pw
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def add_admin_commands(sub: argparse._SubParsersAction) -> None:
    """Register `apikey` and `user` on the main parser's subparsers."""
    def dd(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", default="./var", help="data directory (default ./var)")
        p.add_argument("--database", help="the shared ledger, postgresql://USER@HOST:PORT/DB (security cloud)")

    raw = argparse.RawDescriptionHelpFormatter
    k = sub.add_parser("apikey", help="API keys for e-application systems", formatter_class=raw,
                       description="API keys for the e-application systems that POST to /api/v1/submissions.",
                       epilog="examples:\n  .venv/bin/transfer-agent apikey create --data-dir var --client 電子申請システム\n"
                              "  .venv/bin/transfer-agent apikey list --data-dir var\n"
                              "  .venv/bin/transfer-agent apikey revoke --data-dir var PREFIX")
    ks = k.add_subparsers(dest="apikey_command", required=True)
    c = ks.add_parser("create", help="issue a key; the key is the last line printed",
                      description="Issue a key for a client. The key is printed once, as the last line of"
                                  " stdout; only its hash is kept.")
    dd(c)
    c.add_argument("--client", required=True, help="name of the form system / client")
    _tenant_arg(c)
    _scope_args(c)
    c.set_defaults(func=cmd_apikey_create)
    kc = ks.add_parser("channels", help="bind a key to channels (what it may submit to and read)")
    dd(kc)
    kc.add_argument("key", help="key id or prefix (as in `apikey list`)")
    _scope_args(kc, change=True)
    kc.set_defaults(func=cmd_apikey_channels)
    kt = ks.add_parser("tenant", help="move a key to a tenant (its binding must be within it)")
    dd(kt)
    kt.add_argument("key", help="key id or prefix (as in `apikey list`)")
    kt.add_argument("--tenant", required=True, metavar="NAME", help="the tenant (default: the default tenant)")
    kt.set_defaults(func=cmd_apikey_tenant)
    ls = ks.add_parser("list", help="list keys (never the keys themselves)")
    dd(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_apikey_list)
    r = ks.add_parser("revoke", help="revoke a key by id or prefix")
    dd(r)
    r.add_argument("key", help="key id or prefix (as in `apikey list`)")
    r.set_defaults(func=cmd_apikey_revoke)

    u = sub.add_parser("user", help="console accounts", formatter_class=raw,
                       description="Accounts of the staff console: clerk (担当者), approver (上長), admin (管理者).",
                       epilog="examples:\n  echo 'a long password' | .venv/bin/transfer-agent user add --data-dir var"
                              " --name yamada --role clerk --display-name '山田 花子'\n"
                              "  .venv/bin/transfer-agent user unlock --data-dir var --name yamada")
    us = u.add_subparsers(dest="user_command", required=True)
    a = us.add_parser("add", help="add an account; password from stdin",
                      description="Add a console account. The password is read from stdin (one line), or asked"
                                  " twice on a terminal; at least 10 characters.")
    dd(a)
    a.add_argument("--name", required=True, help="login name")
    a.add_argument("--role", required=True, choices=users.ROLES)
    a.add_argument("--display-name", default="", help="name shown in the console (e.g. 山田 花子)")
    _tenant_arg(a)
    _scope_args(a)
    a.set_defaults(func=cmd_user_add)
    uc = us.add_parser("channels", help="bind an account to channels (what it may see and request)")
    dd(uc)
    uc.add_argument("--name", help="login name (as in `user add --name`)")
    uc.add_argument("old_name", nargs="?", metavar="NAME", help=argparse.SUPPRESS)  # before --name existed
    _scope_args(uc, change=True)
    uc.set_defaults(func=_named(cmd_user_channels, "channels"))
    ut = us.add_parser("tenant", help="move an account to a tenant (its binding must be within it)")
    dd(ut)
    ut.add_argument("--name", required=True, help="login name")
    ut.add_argument("--tenant", required=True, metavar="NAME", help="the tenant (default: the default tenant)")
    ut.set_defaults(func=lambda args: _user_op(args, lambda lg: users.set_tenant(lg, args.name, args.tenant)))
    ul = us.add_parser("list", help="list accounts")
    dd(ul)
    ul.add_argument("--json", action="store_true")
    ul.set_defaults(func=cmd_user_list)
    for name, helptext, func in (("passwd", "set a new password (stdin)", cmd_user_passwd),
                                 ("disable", "disable an account and end its sessions", cmd_user_disable),
                                 ("enable", "enable an account", cmd_user_enable),
                                 ("unlock", "clear a lockout", cmd_user_unlock)):
        p = us.add_parser(name, help=helptext, description=f"{helptext[0].upper()}{helptext[1:]}.")
        dd(p)
        p.add_argument("--name", help="login name (as in `user add --name`)")
        p.add_argument("old_name", nargs="?", metavar="NAME", help=argparse.SUPPRESS)  # before --name existed
        p.set_defaults(func=_named(func, name))

    t = sub.add_parser("tenant", help="municipalities of a security cloud (tenants owning channels)",
                       formatter_class=raw,
                       description="Tenants: a municipality owning channels. Its accounts and API keys (user add /"
                                   " apikey create --tenant NAME) reach only its channels. Channels no tenant owns,"
                                   " and accounts and keys without --tenant, are the default tenant's.",
                       epilog="examples:\n  .venv/bin/transfer-agent tenant create naha --channels naha-kokuho,naha-zeimu"
                              " --display-name 那覇市 --database postgresql://cdr@db:5432/cdr\n"
                              "  .venv/bin/transfer-agent tenant list --database postgresql://cdr@db:5432/cdr\n"
                              "  .venv/bin/transfer-agent tenant disable naha --database postgresql://cdr@db:5432/cdr")
    ts = t.add_subparsers(dest="tenant_command", required=True)
    tc = ts.add_parser("create", help="a new tenant owning channels")
    dd(tc)
    tc.add_argument("name", metavar="NAME", help="short name, e.g. naha (letters, digits, ._-)")
    tc.add_argument("--channels", required=True, metavar="A,B", help="the channels it owns (no other tenant's)")
    tc.add_argument("--display-name", default="", help="e.g. 那覇市")
    tc.set_defaults(func=cmd_tenant_create)
    tl = ts.add_parser("list", help="list tenants with their channels, accounts and keys")
    dd(tl)
    tl.add_argument("--json", action="store_true")
    tl.set_defaults(func=cmd_tenant_list)
    for name, helptext in (("disable", "disable a tenant: its sessions end; logins, keys and upload links refused"),
                           ("enable", "enable a disabled tenant")):
        p = ts.add_parser(name, help=helptext)
        dd(p)
        p.add_argument("name", metavar="NAME")
        p.set_defaults(func=cmd_tenant_disable if name == "disable" else cmd_tenant_enable)
    tch = ts.add_parser("channels", help="set the channels a tenant owns (those left return to the default tenant)")
    dd(tch)
    tch.add_argument("name", metavar="NAME")
    tch.add_argument("--channels", required=True, metavar="A,B")
    tch.set_defaults(func=cmd_tenant_channels)

    o = sub.add_parser("originals", help="released originals")
    os_ = o.add_subparsers(dest="originals_command", required=True)
    lg = os_.add_parser("legacy", help="originals older versions copied into shared delivery folders")
    dd(lg)
    lg.add_argument("--remove", action="store_true", help="delete the copies still there (audited)")
    lg.add_argument("--json", action="store_true")
    lg.set_defaults(func=cmd_originals_legacy)


def _named(func: Callable[[argparse.Namespace], int], command: str) -> Callable[[argparse.Namespace], int]:
    """`user unlock --name NAME`, as `user add --name`; the positional form of earlier versions still works."""
    def run(args: argparse.Namespace) -> int:
        if args.old_name and args.name and args.old_name != args.name:
            return _fail(f"user {command}: give the name once (--name {args.name})")
        if args.old_name and not args.name:
            print(f"transfer-agent: note: `user {command} NAME` is deprecated; use `user {command} --name NAME`",
                  file=sys.stderr)
        args.name = args.name or args.old_name
        if not args.name:
            return _fail(f"user {command}: --name NAME is required")
        return func(args)
    return run


def _scope_args(p: argparse.ArgumentParser, change: bool = False) -> None:
    g = p.add_mutually_exclusive_group(required=change)
    g.add_argument("--channels", metavar="A,B", help="the channels it may reach, e.g. 国保課,税務課 (NFKC and case"
                   " folded: Kokuho and ＫＯＫＵＨＯ are kokuho)")
    g.add_argument("--all-channels", action="store_true", help="every channel, present and future")
    if change:
        g.add_argument("--none", action="store_true", help="no channel at all")


def _tenant_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenant", metavar="NAME", help="the municipality (tenant) it belongs to; default: the"
                   " default tenant (a prefecture administrator belongs to none)")


def _scope(args: argparse.Namespace) -> Scope:
    if args.all_channels:
        return Scope(True)
    names = parse_list(args.channels or "")
    if args.channels is not None and not names:
        raise ValueError("--channels: give at least one channel name (or --none)")
    return Scope(False, names)


def _fail(msg: str) -> int:
    print(f"transfer-agent: {msg}", file=sys.stderr)
    return 2


def cmd_apikey_create(args: argparse.Namespace) -> int:
    ledger = _open(args)
    try:
        row, key = apikeys.create_key(ledger, args.client, scope=_scope(args), tenant=args.tenant)
    except ValueError as exc:
        return _fail(str(exc))
    finally:
        ledger.close()
    print(f"API key for {row.client!r} (id {row.id}, prefix {row.prefix}, channels: {row.scope.describe()})."
          " Store it now; it is not shown again:", file=sys.stderr)
    if row.scope.none:
        print("warning: this key is bound to no channel: every submission gets 403 until"
              " `apikey channels` binds it", file=sys.stderr)
    print(key)
    return 0


def cmd_apikey_channels(args: argparse.Namespace) -> int:
    ledger = _open(args)
    try:
        scope = _scope(args)
        n = apikeys.set_channels(ledger, args.key, scope)
    except ValueError as exc:
        return _fail(str(exc))
    finally:
        ledger.close()
    if n == 0:
        return _fail(f"no key {args.key!r}")
    print(f"key {args.key}: {scope.describe()}")
    return 0


def display_width(text: str) -> int:
    """Terminal columns: East Asian wide/full-width characters take 2, combining marks 0."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def format_columns(layout: str, values: tuple[Any, ...]) -> str:
    """`layout.format(*values)` for fields like `{:<20}` / `{:>4}` / `{}`, but padded by display
    width, so names such as 鈴木 or 電子申請システム keep the following columns aligned."""
    out, i = [], 0
    for literal, field, spec, _conv in string.Formatter().parse(layout):
        out.append(literal)
        if field is None:
            continue
        text = str(values[i])
        i += 1
        align, width = (spec[0], int(spec[1:])) if spec else ("<", 0)
        fill = " " * max(0, width - display_width(text))
        out.append(fill + text if align == ">" else text + fill)
    return "".join(out)


def _print_list(args: argparse.Namespace, rows: list[dict[str, Any]], layout: str, header: tuple[str, ...],
                cells: Callable[[dict[str, Any]], tuple[Any, ...]]) -> int:
    """The `... list` commands: rows as JSON with --json, else a fixed-width table (`layout` is a format
    string with one `{:<N}`, `{:>N}` or `{}` field per column, applied to the header and to `cells(row)`)."""
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for line in (header, *map(cells, rows)):
        print(format_columns(layout, line))
    return 0


def cmd_apikey_tenant(args: argparse.Namespace) -> int:
    ledger = _open(args)
    try:
        n = apikeys.set_tenant(ledger, args.key, args.tenant)
    except ValueError as exc:
        return _fail(str(exc))
    finally:
        ledger.close()
    if n == 0:
        return _fail(f"no key {args.key!r}")
    print(f"key {args.key}: tenant {tenants.tenant_name(args.tenant)}")
    return 0


def cmd_apikey_list(args: argparse.Namespace) -> int:

    def cells(r: dict[str, Any]) -> tuple[Any, ...]:
        status = f"revoked {_ts(r['revoked_at'])}" if r["revoked_at"] else "active"
        return (r["id"], r["prefix"], r["client"], _ts(r["created_at"]), _ts(r["last_used"]), status,
                r["tenant"], r["scope"])

    ledger = _open(args)
    try:
        rows = apikeys.list_keys(ledger)
        for r in rows:
            r["scope"] = apikeys.key_scope(ledger, r).describe()
            r["tenant"] = tenants.tenant_name(r["tenant"])
            r.pop("all_channels")
            r.pop("channels")
    finally:
        ledger.close()
    return _print_list(args, rows, "{:>4}  {:<10} {:<24} {:<20} {:<20} {:<8} {:<12} {}",
                       ("id", "prefix", "client", "created", "last used", "status", "tenant", "channels"), cells)


def cmd_apikey_revoke(args: argparse.Namespace) -> int:
    ledger = _open(args)
    try:
        n = apikeys.revoke_key(ledger, args.key)
    finally:
        ledger.close()
    if n == 0:
        return _fail(f"no active key {args.key!r}")
    print(f"revoked {n} key(s)")
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    ledger = _open(args)
    try:
        pw = _read_password()
        scope = _scope(args)
        u = users.add_user(ledger, args.name, args.role, pw, args.display_name, scope=scope, tenant=args.tenant)
    except ValueError as exc:
        return _fail(str(exc))
    finally:
        ledger.close()
    print(f"added {u.name} ({u.role}, channels: {u.scope.describe()})")
    if u.scope.none:
        print(f"warning: {u.name} is bound to no channel and sees nothing until `user channels {u.name}"
              " --channels ...` (or --all-channels)", file=sys.stderr)
    return 0


def cmd_user_channels(args: argparse.Namespace) -> int:
    return _user_op(args, lambda lg: users.set_channels(lg, args.name, _scope(args)))


def cmd_user_list(args: argparse.Namespace) -> int:
    ledger = _open(args)
    rows = users.list_users(ledger)
    ledger.close()

    def cells(r: dict[str, Any]) -> tuple[Any, ...]:
        status = "disabled" if r["disabled"] else "active"
        if r["locked_addresses"]:
            status += f", locked ({r['locked_addresses']} address{'es' if r['locked_addresses'] > 1 else ''})"
        return r["id"], r["name"], r["role"], _ts(r["last_login"]), r["scope"], status, r["tenant"] or "-"

    for r in rows:
        r.pop("all_channels", None)
        r.pop("channels", None)
    return _print_list(args, rows, "{:>4}  {:<20} {:<10} {:<20} {:<24} {:<15} {}",
                       ("id", "name", "role", "last login", "channels", "status", "tenant"), cells)


def _user_op(args: argparse.Namespace, op) -> int:  # noqa: ANN001
    ledger = _open(args)
    try:
        op(ledger)
    except ValueError as exc:
        return _fail(str(exc))
    finally:
        ledger.close()
    print("ok")
    return 0


def cmd_user_passwd(args: argparse.Namespace) -> int:
    return _user_op(args, lambda lg: users.set_password(lg, args.name, _read_password()))


def cmd_user_disable(args: argparse.Namespace) -> int:
    return _user_op(args, lambda lg: users.set_disabled(lg, args.name, True))


def cmd_user_enable(args: argparse.Namespace) -> int:
    return _user_op(args, lambda lg: users.set_disabled(lg, args.name, False))


def cmd_user_unlock(args: argparse.Namespace) -> int:
    return _user_op(args, lambda lg: users.unlock(lg, args.name))


def cmd_originals_legacy(args: argparse.Namespace) -> int:
    from .console.originals import legacy_copies

    ledger = _open(args)
    try:
        rows = legacy_copies(ledger, Path(args.data_dir), remove=args.remove)
    finally:
        ledger.close()
    return _print_list(args, rows, "{:>7}  {:>6}  {:<11} {}", ("request", "job", "state", "path"),
                       lambda r: (r["request_id"], r["job_id"], r["state"], r["path"]))


def cmd_tenant_create(args: argparse.Namespace) -> int:
    names = parse_list(args.channels)
    if not names:
        return _fail("--channels: give at least one channel name")
    ledger = _open(args)
    try:
        name = tenants.create(ledger, args.name, names, args.display_name)
    except ValueError as exc:
        return _fail(str(exc))
    finally:
        ledger.close()
    print(f"tenant {name} created (channels: {','.join(names)}); add its accounts and keys with"
          f" `user add --tenant {name}` and `apikey create --tenant {name}`")
    return 0


def cmd_tenant_list(args: argparse.Namespace) -> int:
    ledger = _open(args)
    try:
        rows = tenants.list_tenants(ledger)
    finally:
        ledger.close()

    def cells(r: dict[str, Any]) -> tuple[Any, ...]:
        chans = "(every channel no other tenant owns)" if r["channels"] is None else ",".join(r["channels"]) or "(none)"
        status = f"disabled {_ts(r['disabled_at'])}" if r["disabled_at"] else "active"
        return r["name"], r["display_name"] or "-", status, r["users"], r["api_keys"], chans

    return _print_list(args, rows, "{:<16} {:<16} {:<24} {:>5} {:>5}  {}",
                       ("tenant", "display name", "status", "users", "keys", "channels"), cells)


def _tenant_op(args: argparse.Namespace, op: Callable[[Ledger], Any], done: str) -> int:
    ledger = _open(args)
    try:
        op(ledger)
    except ValueError as exc:
        return _fail(str(exc))
    finally:
        ledger.close()
    print(done)
    return 0


def cmd_tenant_disable(args: argparse.Namespace) -> int:
    return _tenant_op(args, lambda lg: tenants.set_disabled(lg, args.name, True),
                      f"tenant {tenants.tenant_name(args.name)} disabled: its sessions ended; its logins, API keys"
                      " and upload links are refused")


def cmd_tenant_enable(args: argparse.Namespace) -> int:
    return _tenant_op(args, lambda lg: tenants.set_disabled(lg, args.name, False),
                      f"tenant {tenants.tenant_name(args.name)} enabled")


def cmd_tenant_channels(args: argparse.Namespace) -> int:
    names = parse_list(args.channels)
    return _tenant_op(args, lambda lg: tenants.set_channels(lg, args.name, names),
                      f"tenant {tenants.tenant_name(args.name)}: {','.join(names) or '(none)'}")
