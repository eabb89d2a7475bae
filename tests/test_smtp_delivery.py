"""Issue 13, appliance: nothing lost and nothing twice around the 250, in the Maildir and at the relay.

kill -9 (crashpoints.py) of the internet-side process before and after the 250 and of the core in
the middle of a multi-recipient Maildir drop; a relay (the LGWAN mail server: an aiosmtpd sink the
test starts) that is down and comes back; the one crash window SMTP leaves (after the relay's 250,
before our commit); the outbox that internet-side features use for mail of their own.
"""
from __future__ import annotations

import json
import smtplib
import subprocess
import time
from pathlib import Path

import pytest

from samples.mail_samples import ew, head, text_part
from tests.portal_helpers import BIN, CONFIG, start
from tests.smtp_helpers import ROUTES, Sink, free_port, ledger, maildir, queue_id, wait_final

FAST = CONFIG.replace("[delivery]\nfsync = false\n", "[delivery]\nfsync = false\nretry_seconds = 0.2\n"
                                                   "retry_max_seconds = 1.0\n")


def _config(extra: str = "") -> str:
    return FAST + "\n[mail]\ndns = false\n" + extra + ROUTES


def _send_until_accepted(port: int, rcpts: list[str], data: bytes, timeout: float = 60) -> tuple[str, int]:
    """Send as an MTA does: a connection that breaks before the 250 is tried again. (queue id, attempts)."""
    end, attempts = time.monotonic() + timeout, 0
    while time.monotonic() < end:
        attempts += 1
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
                s.ehlo("mx.example.jp")
                s.mail("taro@example.jp")
                for r in rcpts:
                    assert s.rcpt(r)[0] == 250
                code, msg = s.data(data)
            if code == 250:
                return queue_id(msg), attempts
        except (smtplib.SMTPServerDisconnected, ConnectionError, OSError):
            pass
        time.sleep(0.3)
    raise AssertionError("never accepted")


def _verify(data: Path) -> None:
    r = subprocess.run([str(BIN), "audit", "verify", "--data-dir", str(data)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _events(data: Path, event: str) -> list[dict]:
    with ledger(data) as c:
        return [json.loads(r[0]) for r in c.execute("SELECT data FROM audit WHERE event = ? ORDER BY seq", (event,))]


def test_kill9_around_the_250_and_in_the_maildir_drop(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    rcpts = ["kokuho@city.example.lg.jp", "a@city.example.lg.jp", "b@city.example.lg.jp"]
    # 1. The internet side dies right after the 250; the core dies after the second Maildir drop (the
    # first of the default channel's two recipients).
    app = start(data, "--smtp-port", str(port), config=_config(),
                env={"TRANSFER_AGENT_CRASHPOINT": "smtp.replied:1,mail.dropped:2"})
    mail1 = head(ew("一通目")).encode() + text_part()
    mid1, attempts = _send_until_accepted(port, rcpts, mail1)
    assert attempts == 1  # the 250 arrived before the kill
    app.proc.wait(60)
    assert app.proc.returncode != 0
    # 2. Restarted: the drop is finished without a second copy. Then the internet side dies after
    # recording a mail, before the 250: the sender tries again, is told it is queued; delivered once.
    app = start(data, "--smtp-port", str(port), config=_config(), env={"TRANSFER_AGENT_CRASHPOINT": "smtp.recorded:1"})
    wait_final(data, mid1, 2)
    for r in rcpts:
        assert len([m for m in maildir(data, r) if m["X-CDR-Queue-ID"].startswith(mid1)]) == 1, r
    mail2 = head(ew("二通目"), mid="<second@example.jp>").encode() + text_part()
    mid2, attempts = _send_until_accepted(port, ["kokuho@city.example.lg.jp"], mail2)
    assert attempts >= 2
    wait_final(data, mid2)
    assert len([m for m in maildir(data, "kokuho@city.example.lg.jp") if m["Subject"] == "二通目"]) == 1
    assert [e["mail_id"] for e in _events(data, "smtp.duplicate")] == [mid2]
    assert not list((data / "work" / "smtp").iterdir())
    app.stop()
    _verify(data)


def _send_once(port: int, rcpts: list[str], data: bytes) -> str | None:
    """One SMTP transaction; the queue id of a 250, None when the connection broke or it was refused."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            s.ehlo("mx.example.jp")
            s.mail("taro@example.jp")
            for r in rcpts:
                assert s.rcpt(r)[0] == 250
            code, msg = s.data(data)
        return queue_id(msg) if code == 250 else None
    except (smtplib.SMTPServerDisconnected, ConnectionError, OSError):
        return None


def _start_crashing(data: Path, port: int, point: str):  # noqa: ANN202 - the Appliance, or None if it died starting
    try:
        return start(data, "--smtp-port", str(port), config=_config(), env={"TRANSFER_AGENT_CRASHPOINT": point})
    except RuntimeError:
        return None


def test_kill9_of_the_core_while_taking_the_mail_and_between_tmp_and_new(tmp_path: Path) -> None:
    """The core dies while it takes a two-channel mail into quarantine (one channel's file renamed into
    intake, the other's still a spool link), then again with the first message whole in tmp/ but not
    yet linked into new/, and last the internet side with the sender's retry spooled but not recorded.
    After the restarts each recipient has the mail once, tmp/ and the spool are empty, and the sender's
    retry of the same transaction is answered with the same queue id (accepted once)."""
    data, port = tmp_path / "data", free_port()
    rcpts = ["kokuho@city.example.lg.jp", "a@city.example.lg.jp"]
    mail = head(ew("三通目"), mid="<third@example.jp>").encode() + text_part()
    app = start(data, "--smtp-port", str(port), config=_config(), env={"TRANSFER_AGENT_CRASHPOINT": "intake.renamed:1"})
    first = _send_once(port, rcpts, mail)  # 250 (the core claimed it before dying) or a broken connection
    app.proc.wait(60)
    time.sleep(1.5)  # the internet side sees its parent gone and leaves
    with ledger(data) as c:
        [row] = c.execute("SELECT id, status FROM mails").fetchall()
        assert row["status"] == "taking"  # claimed, durable in the spool and the ledger: the core's now
        assert len(c.execute("SELECT id FROM jobs WHERE mail_id = ?", (row["id"],)).fetchall()) == 2
    mid = row["id"]
    assert first in (None, mid)
    app = _start_crashing(data, port, "mail.tmp_written:1")
    if app is not None:
        app.proc.wait(60)
    time.sleep(1.5)
    boxes = [data / "inbox" / "mail" / r for r in rcpts]
    assert len([p for b in boxes if (b / "tmp").is_dir() for p in (b / "tmp").iterdir()]) == 1  # whole, in tmp/
    assert not [p for b in boxes if (b / "new").is_dir() for p in (b / "new").iterdir()]  # nothing half visible
    # Last, the internet side dies with the sender's retry spooled but not recorded; the core starts it
    # again, which removes that spool file, and the next retry is answered with the first queue id.
    app = start(data, "--smtp-port", str(port), config=_config(), env={"TRANSFER_AGENT_CRASHPOINT": "smtp.spooled:1"})
    try:
        assert _send_once(port, rcpts, mail) is None
        assert _send_until_accepted(port, rcpts, mail)[0] == mid  # the same queue id, not a second mail
        wait_final(data, mid, 2)
        for r, b in zip(rcpts, boxes, strict=True):
            assert [m["Subject"] for m in maildir(data, r)] == ["三通目"], r
            assert not list((b / "tmp").iterdir())
        assert [e["mail_id"] for e in _events(data, "smtp.duplicate")] == [mid]
        assert len(_events(data, "smtp.taken")) == 1
        assert not list((data / "work" / "smtp").iterdir())
    finally:
        app.stop()
    _verify(data)


@pytest.fixture
def relay_app(tmp_path: Path):
    relay = free_port()
    port = free_port()
    outbound = Sink(free_port())  # the city's outbound relay to the internet ([notify] smtp): DSNs go there
    cfg = _config(f'deliver = "smtp"\nrelay = "127.0.0.1:{relay}"\nrelay_timeout_seconds = 5.0\n'
                  f'[notify]\nsmtp = "127.0.0.1:{outbound.controller.port}"\nretry_seconds = 0.2\n'
                  'retry_max_seconds = 1.0\n')
    data = tmp_path / "data"
    app = start(data, "--smtp-port", str(port), config=cfg)
    app.smtp, app.relay, app.outbound = port, relay, outbound
    yield app
    app.stop()
    outbound.stop()


def test_relay_down_then_up_delivers_exactly_once(relay_app) -> None:
    app, data = relay_app, relay_app.data_dir
    rcpts = ["kokuho@city.example.lg.jp", "a@city.example.lg.jp", "nosuchuser@city.example.lg.jp"]
    mid, _ = _send_until_accepted(app.smtp, rcpts, head(ew("中継テスト")).encode() + text_part())
    # The LGWAN mail server is down: the delivery waits (audited once), nothing is lost.
    end = time.monotonic() + 30
    while time.monotonic() < end and len(_events(data, "delivery.failed")) < 2:
        time.sleep(0.2)
    assert len(_events(data, "delivery.failed")) == 2  # one per channel's job
    time.sleep(1.5)  # a few retries with backoff, all failing
    sink = Sink(app.relay)
    try:
        jobs = wait_final(data, mid, 2, timeout=30)
        time.sleep(1.0)  # would a retry send it again? (it must not)
        got = sorted((r, m) for m, rs, _ in sink.received for r in rs)
        assert [r for r, _ in got] == ["a@city.example.lg.jp", "kokuho@city.example.lg.jp"]
        assert len(sink.received) == 2  # one transaction per channel
        for mail_from, _rs, body in sink.received:
            assert mail_from == "taro@example.jp"
            assert body.startswith(f"X-CDR-Queue-ID: {mid}.".encode())
            assert b"Subject: =?UTF-8?" in body and b"smime" not in body
        assert len(_events(data, "delivery.resumed")) == 2
        rejected = _events(data, "smtp.relay_rejected")
        assert list(rejected[0]["rcpts"]) == ["nosuchuser@city.example.lg.jp"]
        assert all(j["status"] == "delivered" for j in jobs)
        plan = json.loads([j for j in jobs if j["channel"] == "default"][0]["plan"])
        assert plan["relay"] == {"a@city.example.lg.jp": "sent", "nosuchuser@city.example.lg.jp": "rejected"}
        # The sender is told, once (RFC 5321 6.1): a delivery status notification from the null sender.
        end = time.monotonic() + 20
        while time.monotonic() < end and not app.outbound.received:
            time.sleep(0.1)
        time.sleep(0.5)
        [(dsn_from, dsn_to, raw)] = app.outbound.received
        assert dsn_from in ("", "<>") and dsn_to == ["taro@example.jp"]
        import email
        import email.policy

        dsn = email.message_from_bytes(raw, policy=email.policy.default)
        assert dsn.get_content_type() == "multipart/report" and dsn.get_param("report-type") == "delivery-status"
        assert dsn["Auto-Submitted"] == "auto-replied" and str(dsn["Subject"]).startswith("配送できませんでした")
        text, status, headers = dsn.get_payload()
        assert "nosuchuser@city.example.lg.jp: 550 5.1.1" in text.get_content() and "a@city" not in text.get_content()
        fields = status.as_string()
        assert "Final-Recipient: rfc822; nosuchuser@city.example.lg.jp" in fields and "Status: 5.1.1" in fields
        assert headers.get_content_type() == "text/rfc822-headers"
        block = headers.get_content().strip().replace("\r\n", "\n")
        assert "\nSubject: =?" in block and "\n\n" not in block  # the header block we wrote, no content
        assert [e["purpose"] for e in _events(data, "outbox.queued")] == ["dsn"]
        # The clerk sees which recipient the LGWAN mail server refused, on the mail's report.
        from tests.portal_helpers import add_user
        from tests.smtp_helpers import console_login

        add_user(data, "yamada", "clerk", "clerk-pass-1", "山田")
        job = [j for j in jobs if j["channel"] == "default"][0]
        page = console_login(app.console, "yamada", "clerk-pass-1").get(f"/deliveries/{job['id']}").text
        assert "a@city.example.lg.jp（転送済み）" in page
        assert "nosuchuser@city.example.lg.jp（LGWAN側のメールサーバーが受け取りを拒否" in page
        assert f"LGWAN側のメールサーバー（127.0.0.1:{app.relay}）へ転送" in page
    finally:
        sink.stop()
    _verify(data)


def test_relay_crash_window_resends_the_same_bytes_and_ids(tmp_path: Path) -> None:
    """The one window SMTP leaves: after the relay's 250, before our commit. We send again (never lose);
    the copy is byte for byte the same, with the same Message-ID and X-CDR-Queue-ID for the server to
    drop. A crash after the commit sends nothing again."""
    data, port, relay = tmp_path / "data", free_port(), free_port()
    cfg = _config(f'deliver = "smtp"\nrelay = "127.0.0.1:{relay}"\n')
    sink = Sink(relay)
    try:
        app = start(data, "--smtp-port", str(port), config=cfg, env={"TRANSFER_AGENT_CRASHPOINT": "mail.relay_sent:1"})
        mid, _ = _send_until_accepted(port, ["kokuho@city.example.lg.jp"], head(ew("中継の窓")).encode() + text_part())
        app.proc.wait(60)  # killed after the relay's 250, before the commit
        assert len(sink.received) == 1
        # Restarted: the plan is replayed and the mail sent again; killed once more, after the commit.
        with pytest.raises(RuntimeError, match="exited"):
            start(data, "--smtp-port", str(port), config=cfg, env={"TRANSFER_AGENT_CRASHPOINT": "mail.relayed:1"})
        assert len(sink.received) == 2
        app = start(data, "--smtp-port", str(port), config=cfg)  # replayed: recorded as sent, not sent again
        wait_final(data, mid)
        time.sleep(0.5)
        assert len(sink.received) == 2
        first, second = (body for _f, _r, body in sink.received)
        assert first == second and first.startswith(f"X-CDR-Queue-ID: {mid}.".encode())
        assert [e["rcpts"] for e in _events(data, "smtp.relayed")] == [["kokuho@city.example.lg.jp"]]
        app.stop()
    finally:
        sink.stop()
    _verify(data)


def test_outbox_retries_until_the_relay_is_back_and_sends_once(tmp_path: Path) -> None:
    from transfer_agent.ledger import Ledger
    from transfer_agent.smtp_relay import Outbox, Relay

    port = free_port()
    led = Ledger(tmp_path / "state" / "ledger.sqlite3", anchor_fsync=False)
    box = Outbox(led, Relay(f"127.0.0.1:{port}", "appliance.example", timeout=5), retry_seconds=0.1,
                 retry_max_seconds=0.3)
    msg = b"From: a@x.example\r\nTo: b@city.example.lg.jp\r\nSubject: receipt\r\n\r\nok\r\n"
    qid = box.enqueue("", ["b@city.example.lg.jp", "nosuchuser@city.example.lg.jp"], msg, "receipt")
    assert box.enqueue("", ["b@city.example.lg.jp"], msg, "receipt", queue_id=qid) == qid  # idempotent
    assert box.send_due() == 1  # relay down: still pending
    box.start()
    time.sleep(0.5)
    sink = Sink(port)
    try:
        end = time.monotonic() + 20
        while time.monotonic() < end and led.one("SELECT status FROM outbox")[0] != "done":
            time.sleep(0.1)
        box.stop()
        assert len(sink.received) == 1 and sink.received[0][1] == ["b@city.example.lg.jp"]
        assert sink.received[0][2].startswith(f"X-CDR-Queue-ID: {qid}".encode())
        events = [r[0] for r in led.query("SELECT event FROM audit ORDER BY seq")]
        assert events == ["outbox.queued", "outbox.failed", "outbox.sent", "outbox.rejected"]
        assert box.send_due() == 0 and len(sink.received) == 1
    finally:
        sink.stop()
        led.close()


def test_relay_down_past_the_give_up_time_tells_the_sender_once(tmp_path: Path) -> None:
    """The LGWAN mail server stays unreachable past `relay_give_up_hours` (here 2 s): the mail is not
    retried for ever in silence; its sender gets one delivery status notification, the recipient is
    marked expired, and a relay that comes back later receives nothing."""
    data, port, relay = tmp_path / "data", free_port(), free_port()
    outbound = Sink(free_port())
    cfg = _config(f'deliver = "smtp"\nrelay = "127.0.0.1:{relay}"\nrelay_timeout_seconds = 2.0\n'
                  f'relay_give_up_hours = {2 / 3600}\n'
                  f'[notify]\nsmtp = "127.0.0.1:{outbound.controller.port}"\nretry_seconds = 0.2\n'
                  'retry_max_seconds = 1.0\n')
    app = start(data, "--smtp-port", str(port), config=cfg)
    try:
        mid, _ = _send_until_accepted(port, ["kokuho@city.example.lg.jp"], head(ew("届かない")).encode() + text_part())
        [job] = wait_final(data, mid, timeout=60)
        assert json.loads(job["plan"])["relay"] == {"kokuho@city.example.lg.jp": "expired"}
        end = time.monotonic() + 20
        while time.monotonic() < end and not outbound.received:
            time.sleep(0.1)
        sink = Sink(relay)
        try:
            time.sleep(1.5)  # would a retry still go to the relay now it is back? (it must not)
            assert sink.received == []
        finally:
            sink.stop()
        [(_f, to, raw)] = outbound.received
        assert to == ["taro@example.jp"]
        import email
        import email.policy

        text, status, _headers = email.message_from_bytes(raw, policy=email.policy.default).get_payload()
        assert "配送をあきらめました" in text.get_content() and "kokuho@city.example.lg.jp: 554 5.4.7" in text.get_content()
        assert "Status: 5.4.7" in status.as_string() and "Action: failed" in status.as_string()
        [ev] = _events(data, "smtp.relay_expired")
        assert list(ev["rcpts"]) == ["kokuho@city.example.lg.jp"]
    finally:
        app.stop()
        outbound.stop()
    _verify(data)
