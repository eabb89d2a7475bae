"""Receipt mails (受付確認メール) into an aiosmtpd sink: Japanese headers and body, exactly once even
when the service is killed (-9) before the mail went out, and the staff digest."""
from __future__ import annotations

import email
import email.policy
import os
import re
import socket
import sqlite3
import time
from email.header import decode_header, make_header

import httpx
import pytest
from aiosmtpd.controller import Controller

from samples.pdf_samples import _base, _js, _save, japanese_pdf
from tests.portal_helpers import CONFIG, new_key, start, ta

FORM = """
[channels.kokuho]
form = "kokuho"
display_name = "国民健康保険課"
digest = ["kokuho-staff@city.example.lg.jp"]

[forms.kokuho]
title = "国民健康保険の届出"
min_files = 0

[[forms.kokuho.fields]]
name = "name"
label = "氏名"
required = true

[[forms.kokuho.fields]]
name = "mail"
label = "メールアドレス"
type = "email"
receipt = true
"""


class Sink:
    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201 - aiosmtpd's hook
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 Ok: queued"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sink_on(port: int) -> tuple[Controller, Sink]:
    sink = Sink()
    ctl = Controller(sink, hostname="127.0.0.1", port=port)
    ctl.start()
    return ctl, sink


def config(port: int, extra: str = "") -> str:
    return CONFIG + f"""
[notify]
smtp = "127.0.0.1:{port}"
from = "noreply@city.example.lg.jp"
retry_seconds = 0.3
retry_max_seconds = 0.6
{extra}""" + FORM


# An operator's own receipt template (in DATA_DIR/mail-templates, named relative to the data dir).
OPERATOR_RECEIPT = """【受付のお知らせ】{{ channel }}（{{ receipt }}）

{{ channel }}の窓口です。{{ received }}に{{ count }}件のファイルを受け付けました。
{% for f in files %}
- {{ f.name }}: {{ f.result }}
{% endfor %}
"""


def hostile_pdf() -> bytes:
    pdf = _base()
    pdf.Root.OpenAction = _js(pdf)
    return _save(pdf)


def submit_page(app, *link_args: str, files: list) -> str:
    cfg = str(app.data_dir.parent / f"{app.data_dir.name}.toml")
    r = ta("exchange", "create", "--config", cfg, "--channel", "default", "--expires", "1d", *link_args,
           data_dir=app.data_dir)
    assert r.returncode == 0, r.stderr
    url = r.stdout.strip().splitlines()[-1]
    with httpx.Client(timeout=30) as c:
        page = c.get(url).text
        assert "受付確認メールの送り先" in page  # receipt mails are on: the built-in form says where they go
        action = re.search(r'<form method="post" action="([^"]+)"', page).group(1).replace("&amp;", "&")
        r = c.post(app.api + action, headers={"Origin": app.api}, files=files,
                   data={"氏名": "山田 花子", "メールアドレス": "hanako@example.jp", "連絡事項": "宛先は http://spam.example"})
        assert r.status_code == 303, r.text
        for _ in range(300):
            if 'id="done"' in c.get(app.api + r.headers["location"]).text:
                break
            time.sleep(0.1)
    row = sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3").execute(
        "SELECT id FROM submissions ORDER BY created_at DESC LIMIT 1").fetchone()
    return row[0]


def wait_for(cond, timeout: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def kill9(app) -> None:
    app.proc.kill()
    app.proc.wait(10)
    time.sleep(1.5)  # the internet-side child sees its parent gone and leaves


def outbox(app) -> list[sqlite3.Row]:
    conn = sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM outbox ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []


def header(msg: email.message.Message, name: str) -> str:
    return str(make_header(decode_header(msg[name])))


def test_receipt_mail_once_across_kill9_while_relay_down(tmp_path):
    port = free_port()
    data = tmp_path / "data"
    app = start(data, config=config(port))
    try:
        sub_id = submit_page(app, "--notify", "staff@city.example.lg.jp", "--title", "転入の書類",
                             files=[("files", ("申請書.pdf", japanese_pdf(1))), ("files", ("script.pdf", hostile_pdf())),
                                    ("files", ("setup.pdf", b"MZ" + b"\0" * 300))])
        # The relay is down: the mail waits in the outbox, retried with backoff.
        wait_for(lambda: any(r["attempts"] >= 2 for r in outbox(app)))
        assert [r["status"] for r in outbox(app)] == ["pending"]
        kill9(app)
    finally:
        app.stop()
    ctl, sink = sink_on(port)
    try:
        app = start(data, config=config(port))
        try:
            wait_for(lambda: len(sink.mails) >= 1)
            time.sleep(2.5)  # several retry periods: nothing is sent again
            assert len(sink.mails) == 1
            assert [r["status"] for r in outbox(app)] == ["done"]
        finally:
            app.stop()
    finally:
        ctl.stop()
    mail_from, rcpts, raw = sink.mails[0]
    assert mail_from == "noreply@city.example.lg.jp"
    assert sorted(rcpts) == ["hanako@example.jp", "staff@city.example.lg.jp"]
    # Japanese headers as RFC 2047 encoded words, nothing raw on the wire.
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"=?utf-8?" in head.lower()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    receipt = sqlite3.connect(data / "state" / "ledger.sqlite3").execute(
        "SELECT receipt FROM submissions WHERE id = ?", (sub_id,)).fetchone()[0]
    assert header(msg, "Subject") == f"【受付確認】default 受付番号 {receipt}"
    assert msg["From"].addresses[0].display_name == "default"
    assert msg["X-CDR-Queue-ID"] == f"receipt-{sub_id}"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["Message-ID"]
    assert msg["Date"].datetime.utcoffset().total_seconds() == 9 * 3600
    assert not msg.is_multipart() and msg.get_content_charset() == "utf-8"
    body = msg.get_content()
    for text in (receipt, "転入の書類", "JST", "申請書.pdf", "script.pdf", "setup.pdf", "無害化して受理",
                 "受理できませんでした:"):
        assert text in body, text
    assert re.search(r"申請書\.pdf\r?\n\s+受理\r?\n", body)
    assert "http" not in body and "山田" not in body  # no link, nothing the sender typed
    r = ta("audit", "verify", data_dir=data)
    assert r.returncode == 0, r.stderr


def test_receipt_mail_once_when_killed_right_after_queueing(tmp_path, monkeypatch):
    port = free_port()
    ctl, sink = sink_on(port)
    data = tmp_path / "data"
    templates = data / "mail-templates"
    templates.mkdir(parents=True)
    # A typo in the operator's template stops the start with file and line, instead of mails never sent.
    (templates / "receipt.txt").write_text("【受付】{{ channel }\n\n{% for f in files %}", "utf-8")
    cfg_file = tmp_path / "bad.toml"
    cfg_file.write_text(config(port, 'templates = "mail-templates"'), "utf-8")
    r = ta("exchange", "list", "--config", str(cfg_file), data_dir=data)
    assert r.returncode == 2 and "receipt.txt, line 1" in r.stderr, r.stderr
    (templates / "receipt.txt").write_text("【受付】{{ channel }}\n{{ no_such_variable }}\n", "utf-8")
    r = ta("exchange", "list", "--config", str(cfg_file), data_dir=data)
    assert r.returncode == 2 and "no_such_variable" in r.stderr, r.stderr
    (templates / "receipt.txt").write_text(OPERATOR_RECEIPT, "utf-8")
    try:
        monkeypatch.setenv("TRANSFER_AGENT_CRASHPOINT", "notify.queued")
        app = start(data, config=config(port, 'templates = "mail-templates"'))
        monkeypatch.delenv("TRANSFER_AGENT_CRASHPOINT")
        try:
            key = new_key(data, "電子申請")
            with httpx.Client(base_url=app.api, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
                r = c.post("/api/v1/submissions", data={"channel": "kokuho", "name": "佐藤", "mail": "sato@example.jp"},
                           files=[("files", ("届出.pdf", japanese_pdf(1)))])
                assert r.status_code == 202, r.text
            app.proc.wait(60)  # killed at the crash point, just after the mail was queued
            time.sleep(1.5)
        finally:
            app.stop()
        app = start(data, config=config(port, 'templates = "mail-templates"'))
        try:
            wait_for(lambda: len(sink.mails) >= 1)
            time.sleep(2.0)
            assert len(sink.mails) == 1
            conn = sqlite3.connect(data / "state" / "ledger.sqlite3")
            assert conn.execute("SELECT receipt_mail FROM submissions").fetchone()[0].startswith("receipt-")
        finally:
            app.stop()
        msg = email.message_from_bytes(sink.mails[0][2], policy=email.policy.default)
        assert sink.mails[0][1] == ["sato@example.jp"]
        assert header(msg, "Subject").startswith("【受付のお知らせ】国民健康保険課（")  # the operator's template
        assert msg["From"].addresses[0].display_name == "国民健康保険課"
        assert "国民健康保険課の窓口です。" in msg.get_content() and "- 届出.pdf: 受理" in msg.get_content()
        events = [e for (e,) in sqlite3.connect(data / "state" / "ledger.sqlite3").execute("SELECT event FROM audit")]
        assert events.count("outbox.queued") == 1 and events.count("outbox.sent") == 1
        assert ta("audit", "verify", data_dir=data).returncode == 0

        # The staff digest. Its hour, on the stopped service's ledger: nothing before digest_hour.
        from datetime import datetime, timedelta

        from transfer_agent.config import load_config
        from transfer_agent.exchange import local
        from transfer_agent.ledger import Ledger
        from transfer_agent.notify import Notifier

        cfg = load_config(str(data.parent / "data.toml"), data)
        cfg.notify_digest_hour = 23
        tomorrow_22h = datetime.combine(local(time.time()).date() + timedelta(days=1), datetime.min.time(),
                                        local(time.time()).tzinfo).replace(hour=22).timestamp()
        ledger = Ledger(cfg.ledger_target, anchor_path=cfg.state / "audit.anchor")
        try:
            assert Notifier(cfg, ledger).digests(now=tomorrow_22h) == []
        finally:
            ledger.close()
        # As if the submission came two days ago and the appliance was off at yesterday's digest hour: the
        # running service sends the missed digest when it starts, once (not again after a restart).
        conn = sqlite3.connect(data / "state" / "ledger.sqlite3")
        conn.execute("UPDATE submissions SET created_at = created_at - 2 * 86400")
        conn.commit()
        day = local(conn.execute("SELECT created_at FROM submissions").fetchone()[0]).date().isoformat()
        conn.close()
        for _ in range(2):
            app = start(data, config=config(port, 'templates = "mail-templates"\ndigest_hour = 0'))
            try:
                wait_for(lambda: len(sink.mails) >= 2)
                time.sleep(1.5)
            finally:
                app.stop()
            assert len(sink.mails) == 2
        digest = email.message_from_bytes(sink.mails[1][2], policy=email.policy.default)
        assert sink.mails[1][1] == ["kokuho-staff@city.example.lg.jp"]
        assert digest["X-CDR-Queue-ID"] == f"digest-kokuho-{day}"
        assert header(digest, "Subject") == f"【受付の日報】国民健康保険課 {day}（1件）"
        body = digest.get_content()
        assert "1 件" in body and "受理: 1件" in body and "アップロードページ" not in body  # a REST submission
    finally:
        ctl.stop()
    assert os.environ.get("TRANSFER_AGENT_CRASHPOINT") is None


@pytest.fixture(autouse=True)
def _no_crashpoint(monkeypatch):
    monkeypatch.delenv("TRANSFER_AGENT_CRASHPOINT", raising=False)
