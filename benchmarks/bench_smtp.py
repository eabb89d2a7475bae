"""The SMTP intake end to end: mails per second from an smtplib client on loopback until every mail is in
its recipient's Maildir, through the real `transfer-agent serve` (spool, ledger, quarantine, worker,
rebuild, Maildir drop; fsync on, as in production), on the Japanese mix of samples/mail_samples.

`python -m benchmarks.bench_smtp [--mails 60] [--rounds 3] [--connections 4] [--workers 0]`

Floor, in the same run: the same mails over the same connections to a plain aiosmtpd server that only
writes each one into a Maildir (tmp/, fsync, link into new/), which is what a mail server without
sanitizing does. Each round sends fresh mails (a header per round), so nothing is answered as a retry
or from the result cache. Figures are medians of the rounds.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "transfer-agent"
RCPTS = ["kokuho@city.example.lg.jp", "somu@city.example.lg.jp"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mails(n: int, tag: str) -> list[bytes]:
    from samples.mail_samples import japanese_mix

    mix = [data for _name, data in japanese_mix(12)]
    return [f"X-Bench: {tag}-{i}\r\n".encode() + mix[i % len(mix)] for i in range(n)]


def _send(port: int, mails: list[bytes], connections: int) -> tuple[float, list[str]]:
    """Send `mails` over `connections` parallel sessions; (seconds until every 250, queue ids)."""
    import smtplib

    ids: list[str] = []
    lock = threading.Lock()
    chunks = [mails[i::connections] for i in range(connections)]
    errors: list[BaseException] = []

    def worker(batch: list[bytes]) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=300) as s:
                s.ehlo("bench.example.jp")
                for n, data in enumerate(batch):
                    s.mail("sender@example.jp")
                    s.rcpt(RCPTS[n % len(RCPTS)])
                    code, msg = s.data(data)
                    if code != 250:
                        raise RuntimeError(f"{code} {msg!r}")
                    with lock:
                        ids.append(msg.decode().rsplit(" ", 1)[-1])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(b,)) for b in chunks if b]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t, ids


def _wait_delivered(data: Path, ids: list[str], timeout: float = 900) -> None:
    marks = ",".join("?" * len(ids))
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with sqlite3.connect(data / "state" / "ledger.sqlite3", timeout=30) as c:
            done = c.execute(f"SELECT COUNT(*) FROM jobs WHERE mail_id IN ({marks}) AND status IN"
                             " ('delivered', 'blocked')", ids).fetchone()[0]
        if done >= len(ids):
            return
        time.sleep(0.05)
    raise TimeoutError("mails not delivered")


class _FloorSink:
    """aiosmtpd writing each mail into a Maildir with the same durability as ours (fsync, link)."""

    def __init__(self, root: Path) -> None:
        from aiosmtpd.controller import Controller

        self.root = root
        for sub in ("tmp", "new", "cur"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.n = 0
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN202
                sink.n += 1
                name = f"{time.time():.6f}.{sink.n}.bench"
                tmp = sink.root / "tmp" / name
                with open(tmp, "wb") as f:
                    f.write(envelope.original_content)
                    f.flush()
                    os.fsync(f.fileno())
                os.link(tmp, sink.root / "new" / name)
                os.unlink(tmp)
                fd = os.open(sink.root / "new", os.O_RDONLY | os.O_DIRECTORY)
                os.fsync(fd)
                os.close(fd)
                return "250 2.0.0 Ok"

        self.port = _port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                     data_size_limit=50 * 1024 * 1024)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def _start(data: Path, port: int, workers: int) -> subprocess.Popen:
    cfg = data.parent / "bench.toml"
    cfg.write_text(f"""
[service]
workers = {workers}
[mail]
dns = false
[mail.routes]
"city.example.lg.jp" = "default"
""", "utf-8")
    log = open(data.parent / "serve.log", "wb")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen([str(BIN), "serve", "--data-dir", str(data), "--config", str(cfg), "--api-port", "0",
                             "--console-port", "0", "--smtp-port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            cwd=ROOT)
    info = data / "state" / "agent.json"
    end = time.monotonic() + 120
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError((data.parent / "serve.log").read_text()[-2000:])
        if info.is_file():
            try:
                if json.loads(info.read_text()).get("pid") == proc.pid:
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                        if s.recv(100).startswith(b"220"):
                            return proc
            except (ValueError, OSError):
                pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("serve did not start")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_smtp")
    ap.add_argument("--mails", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--workers", type=int, default=0, help="worker processes (0 = one per core)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    rows: dict[str, list[float]] = {"e2e": [], "intake": [], "floor": []}
    with tempfile.TemporaryDirectory(prefix="bench-smtp-") as tmp:
        data, port = Path(tmp) / "data", _port()
        proc = _start(data, port, args.workers)
        floor = _FloorSink(Path(tmp) / "floor")
        try:
            _send(port, _mails(4, "warm"), 1)  # workers warm, first-use imports done
            time.sleep(3)
            for r in range(args.rounds):
                mails = _mails(args.mails, f"r{r}")
                f_secs, _ = _send(floor.port, mails, args.connections)
                t = time.perf_counter()
                secs, ids = _send(port, mails, args.connections)
                _wait_delivered(data, ids)
                total = time.perf_counter() - t
                rows["floor"].append(args.mails / f_secs)
                rows["intake"].append(args.mails / secs)
                rows["e2e"].append(args.mails / total)
                print(f"round {r + 1}: end to end {args.mails / total:.1f} mails/s, 250s at {args.mails / secs:.1f}/s,"
                      f" floor {args.mails / f_secs:.1f}/s", flush=True)
        finally:
            floor.stop()
            proc.terminate()
            proc.wait(60)
        load = os.getloadavg()[0]
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    print(f"SMTP intake, {args.mails} mails x {args.rounds} rounds, {args.connections} connections, "
          f"load {load:.1f}: end to end (smtplib -> Maildir) {med['e2e']:.1f} mails/s = {med['e2e'] * 3600:,.0f}"
          f" mails/hour; 250s at {med['intake']:.1f}/s; floor (aiosmtpd -> Maildir, no sanitizing)"
          f" {med['floor']:.1f}/s; floor/ours {med['floor'] / med['e2e']:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"rounds": rows, "median": med, "load": load,
                                               "mails": args.mails, "connections": args.connections}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
