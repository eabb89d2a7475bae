"""Issue 15, guarantees 5 and 6: slow clients cannot hold the service; two networks, TLS.

The real `transfer-agent serve` on loopback. A bounded number of slow connections (slowloris
headers, trickled bodies) is cut off by the deadlines and the per-address cap; meanwhile, and while
the internet-side process is frozen or killed, a dropbox file is still delivered and the console
still answers. The two listeners bind to different addresses and serve TLS with a certificate the
test makes; console cookies are Secure over TLS and behind a trusted proxy only.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import signal
import socket
import sqlite3
import ssl
import time
from pathlib import Path

import httpx
import pytest

from tests.portal_helpers import CONFIG, add_user, start
from tests.test_appliance import drop

SLOW = CONFIG + """
[http]
header_timeout_seconds = 2.0
body_timeout_seconds = 2.0
per_address_connections = 8
"""


def _host_port(url: str) -> tuple[str, int]:
    m = re.match(r"https?://\[?([^\]/]+?)\]?:(\d+)", url)
    return m.group(1), int(m.group(2))


def _delivered(data: Path, name: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with sqlite3.connect(data / "state" / "ledger.sqlite3", timeout=30) as c:
            row = c.execute("SELECT status FROM jobs WHERE name = ?", (name,)).fetchone()
        if row and row[0] == "delivered":
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} not delivered")


def _closed_by_server(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        while True:
            if s.recv(4096) == b"":
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def _login_cookie(console: str, headers: dict | None = None, verify: object = True) -> str:
    with httpx.Client(base_url=console, timeout=30, verify=verify, headers=headers or {}) as c:
        page = c.get("/login")
        pre = re.search(r'name="pre" value="([^"]+)"', page.text).group(1)
        # Sent back by hand: a Secure cookie is not returned over the plain hop behind a proxy.
        jar = "; ".join(f"{k}={v}" for k, v in page.cookies.items())
        r = c.post("/login", data={"name": "yamada", "password": "clerk-pass-1", "pre": pre, "next": "/"},
                   headers={"Cookie": jar})
        assert r.status_code == 303, r.text[:300]
        return r.headers["set-cookie"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    a = start(tmp_path_factory.mktemp("slow") / "data", config=SLOW)
    add_user(a.data_dir, "yamada", "clerk", "clerk-pass-1")
    yield a
    a.stop()


def test_slow_clients_are_cut_off_and_intake_delivery_console_go_on(app) -> None:
    host, port = _host_port(app.api)
    socks = []
    try:
        # Slowloris: heads that never finish, one header line at a time.
        for _ in range(5):
            s = socket.create_connection((host, port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        # Slow bodies: a whole head, then a trickle.
        for _ in range(3):
            s = socket.create_connection((host, port))
            s.sendall(b"POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n"
                      b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b")
            socks.append(s)
        # One more from the same address is over the cap: closed at once.
        extra = socket.create_connection((host, port))
        assert _closed_by_server(extra, 2.0)
        extra.close()
        drop(app.data_dir / "dropbox" / "届出.txt", "遅い接続の最中の届出\n".encode())
        start_t = time.monotonic()
        for _ in range(6):  # keep trickling for 3 s: past the head deadline, at ~2 bytes/s
            for s in socks:
                try:
                    s.sendall(b"X" if socks.index(s) >= 5 else b"X-Slow: 1\r\n")
                except OSError:
                    pass
            time.sleep(0.5)
        assert httpx.get(app.console + "/login", timeout=5).status_code == 200
        _delivered(app.data_dir, "届出.txt")
        # Every slow connection was closed by the server within its deadlines.
        assert all(_closed_by_server(s, 5.0) for s in socks)
        assert time.monotonic() - start_t < 15
    finally:
        for s in socks:
            s.close()
    assert httpx.get(app.api + "/healthz", timeout=5).status_code == 200
    log = (app.data_dir.parent / f"{app.data_dir.name}.log").read_text("utf-8", "replace")
    assert '"http.slow_client"' in log and '"http.too_many"' in log


def test_a_frozen_or_dead_internet_side_stops_neither_intake_nor_console(app) -> None:
    info = json.loads((app.data_dir / "state" / "agent.json").read_text("utf-8"))
    pid = info["internet_pid"]
    assert pid and pid != app.proc.pid
    os.kill(pid, signal.SIGSTOP)  # exhausted as badly as it can be
    try:
        with pytest.raises(httpx.TimeoutException):
            httpx.get(app.api + "/healthz", timeout=2)
        drop(app.data_dir / "dropbox" / "凍結中.txt", "止まっている間の届出\n".encode())
        assert httpx.get(app.console + "/login", timeout=5).status_code == 200
        _delivered(app.data_dir, "凍結中.txt")
    finally:
        os.kill(pid, signal.SIGCONT)
    os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + 30
    while True:
        info = json.loads((app.data_dir / "state" / "agent.json").read_text("utf-8"))
        if info["internet_pid"] != pid:
            try:
                if httpx.get(app.api + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
        assert time.monotonic() < end, "the internet side was not restarted"
        time.sleep(0.2)
    with sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3") as c:
        assert c.execute("SELECT COUNT(*) FROM audit WHERE event = 'internet.restarted'").fetchone()[0] >= 1


def test_forwarded_proto_from_an_untrusted_peer_does_not_make_cookies_secure(app) -> None:
    assert "secure" not in _login_cookie(app.console, {"X-Forwarded-Proto": "https"}).lower()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "transfer-agent test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.2"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_p, key_p = tmp / "cert.pem", tmp / "key.pem"
    cert_p.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_p.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    return cert_p, key_p


def test_two_networks_with_tls_and_secure_cookies(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    ctx = ssl.create_default_context(cafile=str(cert))
    a = start(tmp_path / "data", "--api-host", "127.0.0.1", "--console-host", "127.0.0.2",
              "--api-tls-cert", str(cert), "--api-tls-key", str(key),
              "--console-tls-cert", str(cert), "--console-tls-key", str(key),
              config=CONFIG.replace("[intake]", "[http]\nconsole_trusted_proxies = []\n[intake]"),
              verify=ctx)
    try:
        add_user(a.data_dir, "yamada", "clerk", "clerk-pass-1")
        assert a.api.startswith("https://127.0.0.1:") and a.console.startswith("https://127.0.0.2:")
        assert httpx.get(a.api + "/healthz", verify=ctx, timeout=10).json()["status"] == "ok"
        # Each listener is on its own address only.
        _, cport = _host_port(a.console)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", cport), timeout=2).close()
        with pytest.raises(httpx.HTTPError):  # no plain HTTP on a TLS listener
            httpx.get(a.api.replace("https://", "http://") + "/healthz", timeout=5)
        cookie = _login_cookie(a.console, verify=ctx)
        assert "secure" in cookie.lower() and "httponly" in cookie.lower()
    finally:
        a.stop()


def test_secure_cookies_behind_a_trusted_proxy(tmp_path: Path) -> None:
    a = start(tmp_path / "data",
              config=CONFIG.replace("[intake]", '[http]\nconsole_trusted_proxies = ["127.0.0.0/8"]\n[intake]'))
    try:
        add_user(a.data_dir, "yamada", "clerk", "clerk-pass-1")
        assert "secure" in _login_cookie(a.console, {"X-Forwarded-Proto": "https"}).lower()
        assert "secure" not in _login_cookie(a.console).lower()  # plain HTTP through the proxy: not Secure
    finally:
        a.stop()
