"""`transfer-agent`: serve the appliance, show status, verify the audit trail.

Subcommands are registered in `build_parser()`; add new ones there (e.g. `apikey`, `user`).
Exit codes: 0 ok, 1 failure (broken audit chain, cannot start), 2 usage / missing data.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sqlite3
import sys
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from . import clock
from .config import ConfigError, load_config

log = logging.getLogger("transfer_agent.cli")


def _data_dir_arg(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--data-dir", default=default, help="data directory (dropbox/, inbox/, quarantine/, state/)")


def _database_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database", help="the shared ledger, postgresql://USER@HOST:PORT/DB (default: the SQLite"
                                      " ledger in DATA_DIR/state; security cloud: README)")


def _object_store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--object-store", metavar="s3://BUCKET/PREFIX", help="originals and outputs go between serve"
                   " and worker nodes through S3-compatible storage, not a shared directory (docs/cloud.md)")
    p.add_argument("--s3-endpoint", metavar="URL", help="the S3-compatible endpoint (default: AWS_ENDPOINT_URL)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="transfer-agent", description="LGWAN transfer appliance (無害化転送)")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the appliance", formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run the appliance: watch DATA_DIR/dropbox/, sanitize in worker processes, deliver"
                                   " into DATA_DIR/inbox/<channel>/<date>/ (with a Japanese report beside each file),"
                                   " serve the REST intake (API port) and the staff console (console port).",
                       epilog="example:\n  .venv/bin/transfer-agent serve --data-dir var   # = make run\n"
                              "configuration: DATA_DIR/transfer_agent.toml or --config FILE (flags win); the"
                              " embedded defaults are transfer_agent/transfer_agent.toml")
    _data_dir_arg(s)
    s.add_argument("--config", help="configuration TOML (default: DATA_DIR/transfer_agent.toml if present)")
    s.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--api-host", help="address of the internet-side API listener (default: --host)")
    s.add_argument("--console-host", help="address of the LGWAN-side console listener (default: --host)")
    s.add_argument("--api-tls-cert", help="PEM certificate: serve the API over TLS (with --api-tls-key)")
    s.add_argument("--api-tls-key", help="PEM private key of --api-tls-cert")
    s.add_argument("--console-tls-cert", help="PEM certificate: serve the console over TLS (with --console-tls-key)")
    s.add_argument("--console-tls-key", help="PEM private key of --console-tls-cert")
    s.add_argument("--api-port", type=int, help="internet-side API port (default 8080; 0 = any free port)")
    s.add_argument("--console-port", type=int, help="LGWAN-side console port (default 8081; 0 = any free port)")
    s.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    s.add_argument("--policy", help="policy name in rules/ or a policy file (default: default)")
    s.add_argument("--max-upload-mb", type=float, help="largest REST submission in MB (default 100)")
    _database_arg(s)
    s.add_argument("--broker", help="amqp://USER:PASS@HOST:PORT// : files are processed by worker nodes"
                                    " (`transfer-agent worker`) over Celery instead of local workers")
    s.add_argument("--shared-dir", help="the directory shared with the worker nodes and the other serve nodes"
                                        " (NFS or similar; README Security cloud): originals, results, work; with"
                                        " it, --data-dir is this node's own folder (drop folders, state, logs)")
    _object_store_args(s)
    s.add_argument("--inbox", help="the LGWAN-side inbox, when it is not DATA_DIR/inbox (security cloud: a share"
                                   " every serve node writes to)")
    s.add_argument("--smtp-port", type=int, help="SMTP intake port on the internet side (default 0 = off; 25 for"
                                                 " an MX; needs [mail.routes])")
    s.add_argument("--smtp-host", help="address of the SMTP listener (default: --api-host, else --host)")
    s.add_argument("--smtp-tls-cert", help="PEM certificate: offer STARTTLS on the SMTP port (with --smtp-tls-key)")
    s.add_argument("--smtp-tls-key", help="PEM private key of --smtp-tls-cert")
    s.set_defaults(func=cmd_serve)

    w = sub.add_parser("worker", help="a worker node of the security cloud (Celery consumer)")
    w.add_argument("--data-dir", default="./var-worker", help="this node's own folder (state/, logs)")
    w.add_argument("--config", help="configuration TOML (for [service] broker_prefix, log_level)")
    _database_arg(w)
    w.add_argument("--broker", required=False, help="amqp://USER:PASS@HOST:PORT//")
    w.add_argument("--shared-dir", required=True, help="the directory shared with the serve nodes (with"
                                                      " --object-store: this node's own scratch folder)")
    _object_store_args(w)
    w.add_argument("--concurrency", type=int, default=0, help="sandboxed workers on this node (default: one per core)")
    w.set_defaults(func=cmd_worker)

    st = sub.add_parser("status", help="job counts from the ledger",
                        description="Print job counts by status, verdict and channel, and the size of the"
                                    " quarantine, from the ledger (the service may be running).")
    _data_dir_arg(st, "./var")
    st.add_argument("--json", action="store_true", help="print JSON")
    _database_arg(st)
    st.set_defaults(func=cmd_status)

    a = sub.add_parser("audit", help="audit trail tools")
    asub = a.add_subparsers(dest="audit_command", required=True)
    v = asub.add_parser("verify", help="check the hash chain; exit 1 naming the first broken row",
                        description="Check the hash-chained audit trail and its anchor; exit 0 when intact, 1"
                                    " naming the first broken row.")
    _data_dir_arg(v, "./var")
    _database_arg(v)
    v.add_argument("--anchor", action="append", default=[], metavar="FILE",
                   help="an anchor file to check the chain against (repeat for each node's state/audit.anchor;"
                        " default: DATA_DIR/state/audit.anchor)")
    v.set_defaults(func=cmd_audit_verify)

    from .cli_admin import add_admin_commands
    add_admin_commands(sub)
    from .cli_exchange import add_exchange_commands
    add_exchange_commands(sub)
    _describe(parser)
    return parser


_P = ".venv/bin/transfer-agent"
# Examples for `COMMAND --help` of the commands that do not write their own.
_EXAMPLES = {
    "worker": f"{_P} worker --database postgresql://cdr@db:5432/cdr --broker amqp://cdr:PASS@mq:5672// \\\n"
              "      --shared-dir /srv/cdr-shared --data-dir /var/lib/cdr-worker",
    "status": f"{_P} status --data-dir var",
    "audit": f"{_P} audit verify --data-dir var",
    "audit verify": f"{_P} audit verify --data-dir var",
    "apikey create": f"{_P} apikey create --data-dir var --client 電子申請システム --channels 国保課,税務課",
    "apikey channels": f"{_P} apikey channels --data-dir var 3f2a --channels 国保課   # id or prefix from `apikey list`",
    "apikey list": f"{_P} apikey list --data-dir var",
    "apikey revoke": f"{_P} apikey revoke --data-dir var 3f2a",
    "user add": f"echo 'a long password' | {_P} user add --data-dir var --name yamada --role clerk --channels 国保課",
    "user channels": f"{_P} user channels --data-dir var --name yamada --channels 国保課,税務課",
    "user list": f"{_P} user list --data-dir var",
    "user passwd": f"echo 'a new long password' | {_P} user passwd --data-dir var --name yamada",
    "user disable": f"{_P} user disable --data-dir var --name yamada",
    "user enable": f"{_P} user enable --data-dir var --name yamada",
    "user unlock": f"{_P} user unlock --data-dir var --name yamada",
    "originals": f"{_P} originals legacy --data-dir var [--remove]",
    "originals legacy": f"{_P} originals legacy --data-dir var            # list, then --remove",
    "exchange": f"{_P} exchange create --data-dir var --channel 国保課 --expires 7d --title 転入の書類",
    "exchange create": f"{_P} exchange create --data-dir var --channel 国保課 --expires 7d --title 転入の書類",
    "exchange list": f"{_P} exchange list --data-dir var",
    "exchange revoke": f"{_P} exchange revoke --data-dir var ID",
    "tenant": f"{_P} tenant create --data-dir var naha --channels 国保課,税務課 --display-name 那覇市",
    "tenant create": f"{_P} tenant create --data-dir var naha --channels 国保課,税務課 --display-name 那覇市",
    "tenant list": f"{_P} tenant list --data-dir var",
    "tenant disable": f"{_P} tenant disable --data-dir var naha",
    "tenant enable": f"{_P} tenant enable --data-dir var naha",
    "tenant channels": f"{_P} tenant channels --data-dir var naha --channels 国保課,税務課,福祉課",
    "report": f"{_P} report --data-dir var --channel 国保課 --from 2026-12-01 --to 2026-12-31 --csv 集計.csv",
    "user tenant": f"{_P} user tenant --data-dir var --name yamada --tenant naha   # a town joining the cloud",
    "apikey tenant": f"{_P} apikey tenant --data-dir var 3f2a --tenant naha",
}


def _describe(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Every subcommand's --help says what it does (its one-line help as the description, when it has no
    longer one) and shows an example."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help for a in action._choices_actions}
        for name, sp in action.choices.items():
            full = f"{path} {name}".strip()
            if not sp.description and helps.get(name):
                h = str(helps[name])
                sp.description = h[0].upper() + h[1:] + ("" if h.endswith(".") else ".")
            if not sp.epilog and full in _EXAMPLES:
                sp.epilog = "example:\n  " + _EXAMPLES[full]
                sp.formatter_class = argparse.RawDescriptionHelpFormatter
            _describe(sp, full)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


# ---------------------------------------------------------------------------- serve

def cmd_serve(args: argparse.Namespace) -> int:
    """The core (intake, workers, delivery, ledger, the LGWAN console, in this process) and the
    internet-side process (internet.py: the API on a socket bound here), supervised from here."""
    from cdr import sandbox
    from cdr.errors import SandboxUnavailable

    from . import logutil
    from .api_app import HttpServer, bind
    from .api_submissions import attach
    from .console import create_console_app
    from .corelink import SOCKET_NAME, CoreLink
    from .httpguard import Limits
    from .internet import Supervisor
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
    overrides = dict(host=args.host, api_port=args.api_port, console_port=args.console_port, workers=args.workers,
                     policy=args.policy, max_upload_mb=args.max_upload_mb, api_host=args.api_host,
                     console_host=args.console_host, api_tls_cert=args.api_tls_cert, api_tls_key=args.api_tls_key,
                     console_tls_cert=args.console_tls_cert, console_tls_key=args.console_tls_key,
                     database=args.database, broker=args.broker, object_store=args.object_store,
                     s3_endpoint=args.s3_endpoint,
                     node_dir=args.data_dir if args.shared_dir and args.data_dir else None, inbox_dir=args.inbox,
                     smtp_port=args.smtp_port, smtp_host=args.smtp_host, smtp_tls_cert=args.smtp_tls_cert,
                     smtp_tls_key=args.smtp_tls_key)
    try:
        cfg = load_config(args.config, args.shared_dir or args.data_dir, **overrides)
    except ConfigError as exc:
        print(f"transfer-agent: {exc}", file=sys.stderr)
        return 2
    logutil.setup(cfg.log_level)
    factory = None
    if cfg.broker:
        def factory(n: int):  # noqa: ANN202 - the executor seam (executor.py)
            from .cloud_executor import CeleryExecutor
            objects = None
            if cfg.object_store:
                from .blobstore import S3Objects
                objects = S3Objects(cfg.object_store, cfg.s3_endpoint or None)
            return CeleryExecutor(svc.ledger, cfg.data_dir, cfg.broker, capacity=n, prefix=cfg.broker_prefix,
                                  objects=objects)
    try:
        svc = Service(cfg, executor_factory=factory)
    except AlreadyRunning as exc:
        print(f"transfer-agent: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - e.g. a bad policy file: say it plainly
        print(f"transfer-agent: cannot start: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    limits = Limits(cfg.header_timeout_seconds, cfg.body_timeout_seconds, cfg.per_address_connections,
                    cfg.body_min_bytes_per_second)
    api_sock = console = smtp_sock = None
    where, flag = f"{cfg.api_bind}:{cfg.api_port}", "--api-port"
    try:
        api_sock = bind(cfg.api_bind, cfg.api_port)
        if cfg.smtp_port:
            where, flag = f"{cfg.smtp_bind}:{cfg.smtp_port}", "--smtp-port"
            smtp_sock = bind(cfg.smtp_bind, cfg.smtp_port)
        where, flag = f"{cfg.console_bind}:{cfg.console_port}", "--console-port"
        console = HttpServer(create_console_app(svc), cfg.console_bind, cfg.console_port, "console", limits=limits,
                             tls_cert=cfg.console_tls_cert or None, tls_key=cfg.console_tls_key or None,
                             trusted_proxies=cfg.console_trusted_proxies)
    except OSError as exc:
        print(f"transfer-agent: cannot listen on {where}: {exc.strerror or exc} (choose another port with {flag})",
              file=sys.stderr)
        for sock in (api_sock, smtp_sock):
            if sock is not None:
                sock.close()
        svc.ledger.close()
        return 1
    try:
        svc.start()
    except SandboxUnavailable as exc:
        print(f"transfer-agent: cannot start: {exc}", file=sys.stderr)
        api_sock.close()
        if smtp_sock is not None:
            smtp_sock.close()
        console.sock.close()
        svc.stop()
        return 1
    submissions = attach(svc)  # bundles and handovers of what the internet side records
    from . import notify
    notifier = notify.attach(svc, submissions)  # receipt mails and digests ([notify] smtp)
    if notifier is not None:  # delivery status notifications of relayed mail go out through its outbox
        svc.deliverer.mail.on_outbox = notifier.outbox.wake
    link = CoreLink(cfg.state / SOCKET_NAME, {
        "wake": lambda: (submissions.poke(), b"ok")[1],
        "health": lambda: json.dumps({"components": svc.health(), "notes": svc.health_notes()}).encode(),
        "metrics": svc.metrics.render,
        "mail": svc.mail_intake.wake,  # the SMTP intake recorded a mail: quarantine it, then answer
    })
    link.start()

    def audit(event: str, data: dict) -> None:
        with svc.ledger.tx() as t:
            t.audit(event, data)

    api_sock.set_inheritable(True)
    if smtp_sock is not None:
        smtp_sock.set_inheritable(True)
    internet = Supervisor(api_sock, args.config, str(cfg.data_dir), overrides, on_event=audit, smtp_sock=smtp_sock)
    internet.start()
    console.start()
    host, port = api_sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    api_url = f"{'https' if cfg.api_tls_cert else 'http'}://{host}:{port}/"
    info = {"pid": os.getpid(), "internet_pid": internet.pid, "data_dir": str(cfg.data_dir), "api_url": api_url,
            "console_url": console.url, "dropbox": str(cfg.dropbox), "inbox": str(cfg.inbox),
            "policy": svc.default_policy.label}
    if smtp_sock is not None:
        shost, sport = smtp_sock.getsockname()[:2]
        info["smtp"] = f"[{shost}]:{sport}" if ":" in shost else f"{shost}:{sport}"
    agent_json = cfg.state / "agent.json"
    _write_private(agent_json, info)
    print(_banner(cfg, svc, api_url, console.url, info.get("smtp")), flush=True)

    while not stop.wait(0.5):
        if not console.alive():
            log.error("the console server stopped; shutting down", extra={"event": "error"})
            break
        before = internet.pid
        internet.check()
        if internet.pid != before:
            info["internet_pid"] = internet.pid
            _write_private(agent_json, info)
    internet.stop()
    console.stop()
    link.stop()
    submissions.stop()
    if notifier is not None:
        notifier.stop()
    svc.stop()
    api_sock.close()
    if smtp_sock is not None:
        smtp_sock.close()
    agent_json.unlink(missing_ok=True)
    print("transfer-agent stopped", flush=True)
    sys.stderr.flush()
    # Worker threads of requeued jobs may still be blocked in a pipe read: do not wait for them.
    os._exit(0)


def _write_private(path: Path, info: dict) -> None:
    """agent.json: 0600 (state files are the service's alone), replaced atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(info, ensure_ascii=False, indent=2))
    os.replace(tmp, path)


def _program() -> str:
    """How to call transfer-agent from here: .venv/bin/transfer-agent when started from the checkout."""
    exe = Path(sys.executable).parent / "transfer-agent"
    if not exe.exists():
        return "transfer-agent"
    try:
        return shlex.quote(str(exe.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(exe))


def _banner(cfg, svc, api_url: str, console_url: str, smtp: str | None = None) -> str:  # noqa: ANN001
    from .db import describe

    ch = ", ".join(f"{c}={p.label}" for c, p in svc.channel_policies.items())
    prog = _program()
    now = clock.local()
    lines = [
        f"transfer-agent is running (data: {cfg.data_dir})",
        f"  drop files here  : {cfg.dropbox}/   (a subfolder dropbox/<channel>/ is a channel)",
        f"  clean files in   : {cfg.inbox}/<channel>/<YYYY-MM-DD>/   (+ NAME.報告.txt, NAME.cdr.json,"
        " STEM_テキスト.txt, NAME.blocked.json)",
        f"  originals        : {cfg.quarantine}/   (kept {svc.default_policy.retention_days} days)",
        f"  ledger           : {describe(cfg.ledger_target)}",
        f"  API              : {api_url}   (health {api_url}healthz, metrics {api_url}metrics)",
        f"  staff console    : {console_url}",
        *([f"  SMTP intake      : {smtp}   (mail delivered {'into ' + str(cfg.inbox) + '/mail/<address>/ (Maildir)' if cfg.mail_deliver == 'maildir' else 'to ' + cfg.mail_relay})"]
          if smtp else []),
        f"  policy           : {svc.default_policy.label}" + (f"; channels: {ch}" if ch else ""),
        f"  workers          : {cfg.worker_count}",
        f"  time zone        : {cfg.timezone} ({now.strftime('%Z, UTC%z')}; now {now.strftime('%Y-%m-%d %H:%M %Z')})"
        "   (inbox dates, receipts, times shown; [service] timezone)",
        f"  console account  : echo PASSWORD | {prog} user add --data-dir {shlex.quote(str(cfg.data_dir))}"
        " --name NAME --role clerk",
        f"  API key          : {prog} apikey create --data-dir {shlex.quote(str(cfg.data_dir))} --client NAME",
        "  stop with Ctrl-C (or SIGTERM)",
    ]
    return "\n".join(lines)


def cmd_worker(args: argparse.Namespace) -> int:
    """A worker node: the sandboxed worker pool consuming Celery tasks (cloud_worker.py)."""
    from cdr import sandbox
    from cdr.errors import SandboxUnavailable

    from . import logutil
    from .cloud_worker import run

    try:
        cfg = load_config(args.config, args.data_dir, database=args.database, broker=args.broker,
                          object_store=args.object_store, s3_endpoint=args.s3_endpoint)
    except ConfigError as exc:
        print(f"transfer-agent: {exc}", file=sys.stderr)
        return 2
    if not (cfg.database and cfg.broker):
        print("transfer-agent worker: needs --database postgresql://... and --broker amqp://...", file=sys.stderr)
        return 2
    if not sandbox.enabled() and os.geteuid() == 0:
        print("transfer-agent: refusing to start: CDR_WORKER_SANDBOX=0 as root (see serve)", file=sys.stderr)
        return 2
    logutil.setup(cfg.log_level)
    try:
        objects = None
        if cfg.object_store:
            from .blobstore import S3Objects
            objects = S3Objects(cfg.object_store, cfg.s3_endpoint or None)
        return run(cfg.database, cfg.broker, Path(args.shared_dir), args.concurrency or cfg.worker_count,
                   cfg.data_dir, prefix=cfg.broker_prefix, objects=objects)
    except SandboxUnavailable as exc:
        print(f"transfer-agent: cannot start: {exc}", file=sys.stderr)
        return 1


# ---------------------------------------------------------------------------- status / audit

def _open_ledger(data_dir: str, database: str | None = None) -> Any:
    """A connection to the ledger for reading: the SQLite file under DATA_DIR, or --database."""
    from . import db

    if database:
        if not db.is_postgres(database):
            print(f"transfer-agent: --database {database!r}: expected postgresql://USER@HOST:PORT/DB", file=sys.stderr)
            return None
        try:
            conn = db.connect(database)
        except db.Error as exc:
            print(f"transfer-agent: cannot open {db.describe(database)}: {exc}", file=sys.stderr)
            return None
        if not db.has_table(conn, "audit"):
            print(f"transfer-agent: no ledger in {db.describe(database)}", file=sys.stderr)
            conn.close()
            return None
        return conn
    path = Path(data_dir) / "state" / "ledger.sqlite3"
    if not path.is_file():
        print(f"transfer-agent: no ledger at {path}", file=sys.stderr)
        return None
    conn = sqlite3.connect(path, timeout=30)  # read only in practice; ro mode fails on a closed WAL db
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def cmd_status(args: argparse.Namespace) -> int:
    from .db import has_table

    conn = _open_ledger(args.data_dir, args.database)
    if conn is None:
        return 2
    with closing(conn):
        jobs = dict(conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
        verdicts = dict(conn.execute("SELECT verdict, COUNT(*) FROM jobs WHERE status IN ('delivered','blocked')"
                                     " GROUP BY verdict").fetchall())
        reused = conn.execute("SELECT COUNT(*) FROM jobs WHERE reused_from IS NOT NULL").fetchone()[0]
        qn, qb = conn.execute("SELECT COUNT(*), COALESCE(SUM(size),0) FROM quarantine WHERE purged_at IS NULL"
                              ).fetchone()
        channels = dict(conn.execute("SELECT channel, COUNT(*) FROM jobs GROUP BY channel").fetchall())
        mails = dict(conn.execute("SELECT status, COUNT(*) FROM mails GROUP BY status").fetchall()) \
            if has_table(conn, "mails") else {}
        # Serve nodes (cluster.py): the live ones, and those stopped or fenced in the last day.
        cols = ("id", "state", "pid", "started_at", "seen_at", "lease_until", "fenced_by")
        nodes = [dict(zip(cols, tuple(r), strict=True)) for r in conn.execute(
            f"SELECT {', '.join(cols)} FROM nodes WHERE state = 'alive' OR seen_at > ? ORDER BY started_at",
            (time.time() - 86400,)).fetchall()] if has_table(conn, "nodes") else []
        for n in nodes:
            n["jobs"] = conn.execute("SELECT COUNT(*) FROM jobs WHERE owner = ? AND status IN"
                                     " ('received','processing','delivering')", (n["id"],)).fetchone()[0]
    out = {"jobs": jobs, "verdicts": verdicts, "reused": reused, "channels": channels,
           "quarantine_files": qn, "quarantine_bytes": qb, "mails": mails, "nodes": nodes}
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    print(f"jobs: {sum(jobs.values())}  " + "  ".join(f"{k}={v}" for k, v in sorted(jobs.items())))
    print("verdicts: " + ("  ".join(f"{k}={v}" for k, v in sorted(verdicts.items())) or "-"))
    print(f"reused results: {reused}")
    print("channels: " + ("  ".join(f"{k}={v}" for k, v in sorted(channels.items())) or "-"))
    print(f"quarantine: {qn} originals, {qb} bytes")
    if mails:
        print("mails (SMTP intake): " + "  ".join(f"{k}={v}" for k, v in sorted(mails.items())))
    for n in nodes:
        lease = n["lease_until"] - time.time()
        when = f"lease {lease:+.0f} s" if n["state"] == "alive" else f"last seen {clock.shown(n['seen_at'])}" \
            + (f", taken over by {n['fenced_by']}" if n["fenced_by"] else "")
        print(f"serve node {n['id']} (pid {n['pid']}): {n['state']}, {when}, {n['jobs']} unfinished job(s)")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """The chain row by row, then every anchored head against it, then the jobs and original-requests
    tables against the final states the audit rows give."""
    from .audit import ANCHOR_NAME, Anchor, verify, verify_anchor
    from .audit_state import differences

    conn = _open_ledger(args.data_dir, args.database)
    if conn is None:
        return 2
    anchors = [Path(a) for a in args.anchor] or [Path(args.data_dir) / "state" / ANCHOR_NAME]
    with closing(conn):
        res = verify(conn)
        anchor = [p for a in anchors for p in verify_anchor(conn, Anchor(a))]
        tables = differences(conn)
    if res.ok and not anchor and not tables:
        names = ", ".join(str(a) for a in args.anchor) or "state/audit.anchor"
        print(res.message() + f"; matches {names}; jobs, original requests and mails agree with it")
        return 0
    print(res.message(), file=sys.stdout if res.ok else sys.stderr)
    for p in anchor:
        print(f"audit anchor MISMATCH: {p}", file=sys.stderr)
    for p in tables:
        print(f"tables differ from the audit trail: {p}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
