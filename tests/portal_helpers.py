"""Start the real `transfer-agent serve` for the API / console tests, and manage its accounts."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "transfer-agent"

CONFIG = """
[service]
workers = 1
shutdown_grace_seconds = 5.0
[intake]
stable_seconds = 1.0
close_settle_seconds = 0.3
[delivery]
fsync = false
[api]
rate_per_minute = 60.0
rate_burst = 12
"""


def ta(*args: str, data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args, "--data-dir", str(data_dir)], input=stdin, capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def _scope(channels: str | None) -> list[str]:
    """`--channels A,B`, or every channel when None (the tests written before bindings see all)."""
    return ["--all-channels"] if channels is None else ["--channels", channels] if channels else []


def new_key(data_dir: Path, client: str, channels: str | None = None) -> str:
    r = ta("apikey", "create", "--client", client, *_scope(channels), data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


def add_user(data_dir: Path, name: str, role: str, password: str, display: str = "",
             channels: str | None = None) -> None:
    extra = ["--display-name", display] if display else []
    r = ta("user", "add", "--name", name, "--role", role, *extra, *_scope(channels), data_dir=data_dir,
           stdin=password + "\n")
    assert r.returncode == 0, r.stderr


@dataclass
class Appliance:
    proc: subprocess.Popen
    data_dir: Path
    api: str
    console: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start(data_dir: Path, *extra: str, config: str = CONFIG, verify: object = True,
          env: dict[str, str] | None = None) -> Appliance:
    data_dir.mkdir(parents=True, exist_ok=True)
    cfg = data_dir.parent / f"{data_dir.name}.toml"
    cfg.write_text(config, "utf-8")
    log = open(data_dir.parent / f"{data_dir.name}.log", "wb")  # noqa: SIM115 - child keeps it
    proc = subprocess.Popen([str(BIN), "serve", "--data-dir", str(data_dir), "--config", str(cfg),
                             "--api-port", "0", "--console-port", "0", *extra],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})})
    info = data_dir / "state" / "agent.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"transfer-agent exited: {(data_dir.parent / f'{data_dir.name}.log').read_text()}")
        if info.is_file():
            try:
                d = json.loads(info.read_text("utf-8"))
            except ValueError:
                d = None
            if d and d.get("pid") == proc.pid:
                app = Appliance(proc, data_dir, d["api_url"].rstrip("/"), d["console_url"].rstrip("/"))
                try:
                    if httpx.get(app.api + "/healthz", timeout=2, verify=verify).status_code == 200:
                        return app
                except httpx.HTTPError:
                    pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("transfer-agent did not become healthy")


def wait_done(client: httpx.Client, status_url: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(status_url)
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] == "done":
            return body
        time.sleep(0.1)
    raise AssertionError(f"submission not done: {body}")
