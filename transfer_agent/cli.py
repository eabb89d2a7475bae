"""`transfer-agent`: serve the appliance, show status, verify the audit trail.

Subcommands are registered in `build_parser()`; add new ones there (e.g. `apikey`, `user`).
Exit codes: 0 ok, 1 failure (broken audit chain, cannot start), 2 usage / missing data.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

from .config import ConfigError, load_config

log = logging.getLogger("transfer_agent.cli")


def _data_dir_arg(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--data-dir", default=default, help="data directory (dropbox/, inbox/, quarantine/, state/)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="transfer-agent", description="LGWAN transfer appliance (無害化転送)")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the appliance")
    _data_dir_arg(s)
    s.add_argument("--config", help="configuration TOML (default: DATA_DIR/transfer_agent.toml if present)")
    s.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--api-port", type=int, help="internet-side API port (default 8080; 0 = any free port)")
    s.add_argument("--console-port", type=int, help="LGWAN-side console port (default 8081; 0 = any free port)")
    s.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    s.add_argument("--policy", help="policy name in rules/ or a policy file (default: default)")
    s.add_argument("--max-upload-mb", type=float, help="largest REST submission in MB (default 100)")
    s.set_defaults(func=cmd_serve)

    st = sub.add_parser("status", help="job counts from the ledger")
    _data_dir_arg(st, "./var")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=cmd_status)

    a = sub.add_parser("audit", help="audit trail tools")
    asub = a.add_subparsers(dest="audit_command", required=True)
    v = asub.add_parser("verify", help="check the hash chain; exit 1 naming the first broken row")
    _data_dir_arg(v, "./var")
    v.set_defaults(func=cmd_audit_verify)

    from .cli_admin import add_admin_commands
    add_admin_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


# ---------------------------------------------------------------------------- serve

def cmd_serve(args: argparse.Namespace) -> int:
    from cdr import sandbox
    from cdr.errors import SandboxUnavailable

    from . import logutil
    from .api_app import HttpServer, create_app
    from .console import create_console_app
    from .service import AlreadyRunning, Service

    if not sandbox.enabled() and os.geteuid() == 0:
        print("transfer-agent: refusing to start: CDR_WORKER_SANDBOX=0 would let the workers, which parse"
              " files from the internet, run as root with no sandbox. Unset CDR_WORKER_SANDBOX (or run the"
              " service as an unprivileged user).", file=sys.stderr)
        return 2
    if sandbox.enabled():
        try:
            sandbox.preflight()
        except SandboxUnavailable as exc:
            print(f"transfer-agent: cannot start: {exc}", file=sys.stderr)
            return 1
    try:
        cfg = load_config(args.config, args.data_dir, host=args.host, api_port=args.api_port,
                          console_port=args.console_port, workers=args.workers, policy=args.policy,
                          max_upload_mb=args.max_upload_mb)
    except ConfigError as exc:
        print(f"transfer-agent: {exc}", file=sys.stderr)
        return 2
    logutil.setup(cfg.log_level)
    try:
        svc = Service(cfg)
    except AlreadyRunning as exc:
        print(f"transfer-agent: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - e.g. a bad policy file: say it plainly
        print(f"transfer-agent: cannot start: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    servers: list[HttpServer] = []
    port = cfg.api_port
    try:
        svc.start()
        servers.append(HttpServer(create_app(svc), cfg.host, cfg.api_port, "api"))
        port = cfg.console_port
        servers.append(HttpServer(create_console_app(svc), cfg.host, cfg.console_port, "console"))
    except SandboxUnavailable as exc:
        print(f"transfer-agent: cannot start: {exc}", file=sys.stderr)
        svc.stop()
        return 1
    except OSError as exc:
        flag = "--console-port" if servers else "--api-port"
        print(f"transfer-agent: cannot listen on {cfg.host}:{port}: {exc.strerror or exc}"
              f" (choose another port with {flag})", file=sys.stderr)
        for s in servers:
            s.sock.close()
        svc.stop()
        return 1
    for s in servers:
        s.start()
    api, console = servers
    info = {"pid": os.getpid(), "data_dir": str(cfg.data_dir), "api_url": api.url, "console_url": console.url,
            "dropbox": str(cfg.dropbox), "inbox": str(cfg.inbox), "policy": svc.default_policy.label}
    agent_json = cfg.state / "agent.json"
    tmp = agent_json.with_name(".agent.json.tmp")
    tmp.write_text(json.dumps(info, ensure_ascii=False, indent=2), "utf-8")
    os.replace(tmp, agent_json)
    print(_banner(cfg, svc, api.url, console.url), flush=True)

    while not stop.wait(1.0):
        if not all(s.alive() for s in servers):
            log.error("an HTTP server stopped; shutting down", extra={"event": "error"})
            break
    for s in servers:
        s.stop()
    svc.stop()
    agent_json.unlink(missing_ok=True)
    print("transfer-agent stopped", flush=True)
    sys.stderr.flush()
    # Worker threads of requeued jobs may still be blocked in a pipe read: do not wait for them.
    os._exit(0)


def _banner(cfg, svc, api_url: str, console_url: str) -> str:  # noqa: ANN001
    ch = ", ".join(f"{c}={p.label}" for c, p in svc.channel_policies.items())
    lines = [
        f"transfer-agent is running (data: {cfg.data_dir})",
        f"  drop files here  : {cfg.dropbox}/   (a subfolder dropbox/<channel>/ is a channel)",
        f"  clean files in   : {cfg.inbox}/<channel>/<YYYY-MM-DD>/   (+ NAME.cdr.json, NAME.txt, *.blocked.json)",
        f"  originals        : {cfg.quarantine}/   (kept {svc.default_policy.retention_days} days)",
        f"  ledger           : {cfg.ledger_path}",
        f"  API              : {api_url}   (health {api_url}healthz, metrics {api_url}metrics)",
        f"  staff console    : {console_url}",
        f"  policy           : {svc.default_policy.label}" + (f"; channels: {ch}" if ch else ""),
        f"  workers          : {cfg.worker_count}",
        f"  time zone        : {time.strftime('%Z (UTC%z)')}   (inbox dates and receipts; set TZ=Asia/Tokyo if"
        " the server runs in UTC)",
        f"  console account  : transfer-agent user add --data-dir {cfg.data_dir} --name NAME --role clerk"
        " (password on stdin)",
        f"  API key          : transfer-agent apikey create --data-dir {cfg.data_dir} --client NAME",
        "  stop with Ctrl-C (or SIGTERM)",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- status / audit

def _open_ledger(data_dir: str) -> sqlite3.Connection | None:
    path = Path(data_dir) / "state" / "ledger.sqlite3"
    if not path.is_file():
        print(f"transfer-agent: no ledger at {path}", file=sys.stderr)
        return None
    conn = sqlite3.connect(path, timeout=30)  # read only in practice; ro mode fails on a closed WAL db
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def cmd_status(args: argparse.Namespace) -> int:
    conn = _open_ledger(args.data_dir)
    if conn is None:
        return 2
    with conn:
        jobs = dict(conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
        verdicts = dict(conn.execute("SELECT verdict, COUNT(*) FROM jobs WHERE status IN ('delivered','blocked')"
                                     " GROUP BY verdict").fetchall())
        reused = conn.execute("SELECT COUNT(*) FROM jobs WHERE reused_from IS NOT NULL").fetchone()[0]
        qn, qb = conn.execute("SELECT COUNT(*), COALESCE(SUM(size),0) FROM quarantine WHERE purged_at IS NULL"
                              ).fetchone()
        channels = dict(conn.execute("SELECT channel, COUNT(*) FROM jobs GROUP BY channel").fetchall())
    out = {"jobs": jobs, "verdicts": verdicts, "reused": reused, "channels": channels,
           "quarantine_files": qn, "quarantine_bytes": qb}
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    print(f"jobs: {sum(jobs.values())}  " + "  ".join(f"{k}={v}" for k, v in sorted(jobs.items())))
    print("verdicts: " + ("  ".join(f"{k}={v}" for k, v in sorted(verdicts.items())) or "-"))
    print(f"reused results: {reused}")
    print("channels: " + ("  ".join(f"{k}={v}" for k, v in sorted(channels.items())) or "-"))
    print(f"quarantine: {qn} originals, {qb} bytes")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from .audit import verify

    conn = _open_ledger(args.data_dir)
    if conn is None:
        return 2
    with conn:
        res = verify(conn)
    print(res.message(), file=sys.stdout if res.ok else sys.stderr)
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
