"""Issue 13, appliance: the SMTP intake on the internet side and Maildir delivery on the LGWAN side.

The real `transfer-agent serve --smtp-port`, driven with smtplib on loopback; SPF from a DNS stub on
loopback; the delivered mail read back with Python's `mailbox`; the console with a real HTTP client.
"""
from __future__ import annotations

import io
import json
import re
import smtplib
import socket
import subprocess
import time
import zipfile

import httpx
import pytest

from samples.mail_samples import (
    PASSWORD,
    attachment,
    encrypted_smime,
    ew,
    head,
    macro_xlsm,
    mixed,
    ppap_zip,
    simple_name,
    text_part,
    tiny_pdf,
)
from tests.portal_helpers import BIN, CONFIG, add_user, start
from tests.smtp_helpers import (
    ROUTES,
    DnsStub,
    attachments,
    free_port,
    ledger,
    maildir,
    queue_id,
    wait_final,
)
from tests.smtp_helpers import console_login as _login

XLSM = "application/vnd.ms-excel.sheet.macroEnabled.12"


@pytest.fixture(scope="module")
def dns():
    stub = DnsStub({"example.jp": "v=spf1 ip4:127.0.0.1 -all", "spoofed.example": "v=spf1 ip4:192.0.2.1 -all"})
    yield stub
    stub.close()


@pytest.fixture(scope="module")
def mta(tmp_path_factory, dns):
    port = free_port()
    cfg = CONFIG + f"""
[mail]
max_size_mb = 0.5
max_recipients = 5
max_line_length = 1000
per_address_connections = 4
command_timeout_seconds = 3.0
data_timeout_seconds = 2.0
data_min_bytes_per_second = 512.0
dns_servers = ["127.0.0.1:{dns.port}"]
console_url = "https://console.city.example.lg.jp/"

# 国保課 takes PDFs only on its upload pages and REST submissions; its mail and dropbox are not forms.
[channels."国保課"]
form = "pdf_only"
[forms.pdf_only]
families = ["pdf"]
""" + ROUTES
    from tests.test_appliance_listeners import _self_signed

    base = tmp_path_factory.mktemp("smtp")
    cert, key = _self_signed(base)
    app = start(base / "data", "--smtp-port", str(port), "--smtp-tls-cert", str(cert), "--smtp-tls-key", str(key),
                config=cfg)
    app.cert = cert
    add_user(app.data_dir, "yamada", "clerk", "clerk-pass-1", "山田")
    add_user(app.data_dir, "sato", "approver", "approver-pass-1", "佐藤")
    app.smtp = port
    yield app
    app.stop()


def send(port: int, mail_from: str, rcpts: list[str], data: bytes) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        s.ehlo("mx.example.jp")
        s.mail(mail_from)
        for r in rcpts:
            code, msg = s.rcpt(r)
            assert code == 250, (r, code, msg)
        code, msg = s.data(data)
    assert code == 250, msg
    return queue_id(msg)


def test_multi_recipient_mail_is_sanitized_once_and_dropped_in_each_maildir(mta) -> None:
    xlsm = macro_xlsm()
    mail = mixed(head(ew("①予算書の送付（㈱髙橋商事）")), [text_part(), attachment(xlsm, simple_name("予算書.xlsm"), XLSM)])
    rcpts = ["kokuho@city.example.lg.jp", "Tanaka@City.Example.LG.JP", "suzuki@city.example.lg.jp"]
    mid = send(mta.smtp, "taro@example.jp", rcpts, mail)
    jobs = wait_final(mta.data_dir, mid, 2)
    # One job per channel; the second channel's job reused the first one's result: sanitized once.
    assert sorted(j["channel"] for j in jobs) == ["default", "国保課"]
    assert len([j for j in jobs if j["reused_from"] is None]) == 1
    assert all(j["verdict"] == "sanitized" and j["status"] == "delivered" for j in jobs)
    for addr in ("kokuho@city.example.lg.jp", "tanaka@city.example.lg.jp", "suzuki@city.example.lg.jp"):
        box = [m for m in maildir(mta.data_dir, addr) if m["X-CDR-Queue-ID"].startswith(mid)]
        assert len(box) == 1, addr
        msg = box[0]
        assert msg["Subject"] == "①予算書の送付（㈱髙橋商事）"
        assert msg["Delivered-To"] == addr and msg["Return-Path"] == "<taro@example.jp>"
        assert "spf=pass" in msg["Authentication-Results"]  # computed at intake, taken over by the engine
        files = attachments(msg)
        assert list(files) == ["予算書.xlsx"]
        with zipfile.ZipFile(io.BytesIO(files["予算書.xlsx"])) as z:
            assert not [n for n in z.namelist() if "vba" in n.lower()]
        assert "山田様" in msg.get_body(("plain",)).get_content()
    with ledger(mta.data_dir) as c:
        row = c.execute("SELECT * FROM mails WHERE id = ?", (mid,)).fetchone()
        assert row["status"] == "queued" and json.loads(row["spf"])["result"] == "pass"
        result = json.loads(jobs[0]["result"])
    assert result["mail"]["authentication"]["spf"]["result"] == "pass"
    r = subprocess.run([str(BIN), "audit", "verify", "--data-dir", str(mta.data_dir)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_channel_form_binds_its_submissions_not_its_mail_or_dropbox(mta) -> None:
    """国保課 names a PDF-only form: a workbook mailed to kokuho@ still arrives (rebuilt), a text file in
    its dropbox folder too, while a REST submission of a .txt is refused and a Word file renamed .pdf
    is blocked by the form's families."""
    from samples.legacy_samples import _make_docx
    from tests.portal_helpers import new_key

    mail = mixed(head(ew("様式の送付")), [text_part(), attachment(macro_xlsm(), simple_name("様式.xlsm"), XLSM)])
    mid = send(mta.smtp, "taro@example.jp", ["kokuho@city.example.lg.jp"], mail)
    [job] = wait_final(mta.data_dir, mid)
    assert job["verdict"] == "sanitized" and "+form." not in job["policy"]
    [msg] = [m for m in maildir(mta.data_dir, "kokuho@city.example.lg.jp") if m["X-CDR-Queue-ID"].startswith(mid)]
    assert list(attachments(msg)) == ["様式.xlsx"]
    drop = mta.data_dir / "dropbox" / "国保課"
    drop.mkdir(parents=True, exist_ok=True)
    (drop / "連絡.txt").write_text("窓口からの連絡です。\n", "utf-8")
    key = new_key(mta.data_dir, "電子申請", "国保課")
    docx = mta.data_dir.parent / "w.docx"
    _make_docx(docx)
    with httpx.Client(base_url=mta.api, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        r = c.post("/api/v1/submissions", data={"channel": "国保課"}, files=[("files", ("memo.txt", b"x"))])
        assert r.status_code == 422 and r.json()["error"] == "invalid_form"
        r = c.post("/api/v1/submissions", data={"channel": "国保課"},
                   files=[("files", ("申請書.pdf", docx.read_bytes()))])
        assert r.status_code == 202, r.text
    end = time.monotonic() + 60
    while time.monotonic() < end:
        with ledger(mta.data_dir) as c:
            rows = {r["name"]: r for r in c.execute("SELECT name, status, verdict, policy FROM jobs WHERE name IN"
                                                    " ('連絡.txt', '申請書.pdf')")}
        if len(rows) == 2 and all(r["status"] in ("delivered", "blocked") for r in rows.values()):
            break
        time.sleep(0.2)
    assert rows["連絡.txt"]["verdict"] == "clean" and "+form." not in rows["連絡.txt"]["policy"]
    assert rows["申請書.pdf"]["verdict"] == "blocked" and "+form.pdf_only" in rows["申請書.pdf"]["policy"]


def test_starttls_is_offered_and_used(mta) -> None:
    import ssl

    with smtplib.SMTP("127.0.0.1", mta.smtp, timeout=60) as s:
        s.ehlo("mx.example.jp")
        assert s.has_extn("starttls")
        s.starttls(context=ssl.create_default_context(cafile=str(mta.cert)))
        s.ehlo("mx.example.jp")
        s.mail("taro@example.jp")
        assert s.rcpt("kokuho@city.example.lg.jp")[0] == 250
        code, msg = s.data(head(ew("暗号化された経路")).encode() + text_part())
    assert code == 250
    mid = queue_id(msg)
    wait_final(mta.data_dir, mid)
    with ledger(mta.data_dir) as c:
        assert c.execute("SELECT tls FROM mails WHERE id = ?", (mid,)).fetchone()[0] == 1
    [m] = [m for m in maildir(mta.data_dir, "kokuho@city.example.lg.jp") if m["X-CDR-Queue-ID"].startswith(mid)]
    assert m["Subject"] == "暗号化された経路"


def test_spf_fail_is_recorded_and_the_mail_still_delivered(mta) -> None:
    mid = send(mta.smtp, "someone@spoofed.example", ["kokuho@city.example.lg.jp"],
               head(ew("なりすまし"), frm="someone@spoofed.example").encode() + text_part())
    job = wait_final(mta.data_dir, mid)[0]
    res = json.loads(job["result"])
    assert res["mail"]["authentication"]["spf"]["result"] == "fail"
    [msg] = [m for m in maildir(mta.data_dir, "kokuho@city.example.lg.jp") if m["X-CDR-Queue-ID"].startswith(mid)]
    assert "spf=fail" in msg["Authentication-Results"]


def test_refusals_unknown_recipient_too_many_oversize_bare_lf_long_line(mta) -> None:
    body = head().encode() + text_part()
    with smtplib.SMTP("127.0.0.1", mta.smtp, timeout=30) as s:
        code, ehlo = s.ehlo("mx.example.jp")
        assert b"SIZE 524288" in ehlo and b"AUTH" not in ehlo
        s.mail("taro@example.jp")
        code, msg = s.rcpt("nobody@elsewhere.example")
        assert code == 550 and msg.startswith(b"5.1.1")
        code, _ = s.rcpt('"two words/../x"@city.example.lg.jp')
        assert code in (550, 553)
        for i in range(5):
            assert s.rcpt(f"user{i}@city.example.lg.jp")[0] == 250
        code, msg = s.rcpt("user5@city.example.lg.jp")
        assert code == 452 and b"4.5.3" in msg
        s.rset()
        # SIZE declared too large: refused at MAIL; undeclared, refused after the data.
        code, _ = s.mail("taro@example.jp", ["SIZE=900000"])
        assert code == 552
        s.rset()
        s.mail("taro@example.jp")
        s.rcpt("kokuho@city.example.lg.jp")
        code, _ = s.data(body + (b"B" * 76 + b"\r\n") * 8000)
        assert code == 552
    # Bare LF and an over-long line, as raw SMTP (smtplib would repair the line ends).
    with socket.create_connection(("127.0.0.1", mta.smtp), timeout=30) as raw:
        f = raw.makefile("rwb")

        def cmd(line: bytes) -> bytes:
            f.write(line + b"\r\n")
            f.flush()
            reply = f.readline()
            while reply[3:4] == b"-":
                reply = f.readline()
            return reply

        assert f.readline().startswith(b"220")
        assert cmd(b"EHLO mx.example.jp").startswith(b"250")
        for payload, expect in ((b"Subject: x\r\n\r\nline one\nsmuggled\r\n", b"550 5.6.0"),
                                (b"Subject: y\r\n\r\n" + b"x" * 1200 + b"\r\n", b"500")):
            assert cmd(b"MAIL FROM:<taro@example.jp>").startswith(b"250")
            assert cmd(b"RCPT TO:<kokuho@city.example.lg.jp>").startswith(b"250")
            assert cmd(b"DATA").startswith(b"354")
            assert cmd(payload + b".").startswith(expect)
        assert cmd(b"QUIT").startswith(b"221")
    with ledger(mta.data_dir) as c:  # nothing of the refused transactions was taken
        assert c.execute("SELECT COUNT(*) FROM mails WHERE mail_from = 'taro@example.jp' AND size > 400000"
                         ).fetchone()[0] == 0


def _closed(s: socket.socket, within: float) -> bytes | None:
    """What the server said before closing the connection within `within` seconds (None: still open)."""
    s.settimeout(within)
    got = b""
    try:
        while chunk := s.recv(4096):
            got += chunk
    except TimeoutError:
        return None
    except ConnectionError:
        pass
    return got


def test_slow_and_greedy_senders_are_cut_off_and_mail_goes_on(mta) -> None:
    idle = []
    try:
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", mta.smtp), timeout=10)
            assert s.recv(100).startswith(b"220")
            idle.append(s)
        extra = socket.create_connection(("127.0.0.1", mta.smtp), timeout=10)
        assert (_closed(extra, 5) or b"").startswith(b"421 4.7.0")  # over the per-address cap
        extra.close()
        # Idle sessions: closed after command_timeout_seconds, with a 421.
        t = time.monotonic()
        assert all(b"421 4.4.2" in (_closed(s, 8) or b"") for s in idle)
        assert time.monotonic() - t < 8
    finally:
        for s in idle:
            s.close()
    # A trickled DATA: after data_timeout_seconds below the minimum rate, closed.
    with socket.create_connection(("127.0.0.1", mta.smtp), timeout=10) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"220")
        for line in (b"EHLO slow.example", b"MAIL FROM:<taro@example.jp>", b"RCPT TO:<kokuho@city.example.lg.jp>",
                     b"DATA"):
            s.sendall(line + b"\r\n")
            reply = f.readline()
            while reply[3:4] == b"-":
                reply = f.readline()
        assert reply.startswith(b"354")
        t, closed = time.monotonic(), False
        while time.monotonic() - t < 10 and not closed:
            try:
                s.sendall(b"x")
            except OSError:
                closed = True
            time.sleep(0.5)
        assert closed or (_closed(s, 2) is not None)
        assert time.monotonic() - t < 8
    # Meanwhile and afterwards, mail is taken as usual.
    mid = send(mta.smtp, "taro@example.jp", ["kokuho@city.example.lg.jp"], head(ew("遅い送信者の後")).encode()
               + text_part())
    assert wait_final(mta.data_dir, mid)[0]["status"] == "delivered"


def test_blocked_mail_delivers_a_japanese_notice_instead(mta) -> None:
    mid = send(mta.smtp, "taro@example.jp", ["kokuho@city.example.lg.jp"],
               head(ew("暗号化された見積書")).encode() + encrypted_smime())
    job = wait_final(mta.data_dir, mid)[0]
    assert job["status"] == "blocked" and job["verdict"] == "blocked"
    [msg] = [m for m in maildir(mta.data_dir, "kokuho@city.example.lg.jp") if m["X-CDR-Queue-ID"].startswith(mid)]
    assert msg["Subject"] == "【配送停止】暗号化された見積書"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["Return-Path"] == "<>"
    assert msg["To"] == "kokuho@city.example.lg.jp"  # addressed to its recipient, not undisclosed-recipients
    text = msg.get_content()
    for want in ("配送を停止しました", "山田 太郎 <taro@example.jp>", "暗号化された見積書", "理由", "原本取り出し申請",
                 mid, "https://console.city.example.lg.jp/", "Mon, 1 Apr 2024"):
        assert want in text, want
    assert "smime.p7m" not in msg.as_string()  # nothing of the blocked mail itself
    assert not list(msg.iter_attachments())


def _csrf(c: httpx.Client, path: str) -> tuple[str, str]:
    page = c.get(path)
    assert page.status_code == 200, page.text[:300]
    return page.text, re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_console_lists_mails_and_releases_one_original_attachment(mta) -> None:
    xlsm, pdf = macro_xlsm(), tiny_pdf()
    mail = mixed(head(ew("令和6年度 補助金申請書類")), [text_part(), attachment(xlsm, simple_name("申請書.xlsm"), XLSM),
                                                   attachment(pdf, simple_name("添付資料.pdf"), "application/pdf")])
    mid = send(mta.smtp, "taro@example.jp", ["kokuho@city.example.lg.jp"], mail)
    job = wait_final(mta.data_dir, mid)[0]
    clerk = _login(mta.console, "yamada", "clerk-pass-1")
    listing = clerk.get("/deliveries", params={"q": "補助金"}).text
    assert "令和6年度 補助金申請書類" in listing and "taro@example.jp" in listing
    assert "kokuho@city.example.lg.jp" in listing and "添付 2 件" in listing
    page, csrf = _csrf(clerk, f"/deliveries/{job['id']}")
    assert 'id="mail-attachments"' in page and "申請書.xlsm" in page and "申請書.xlsx" in page
    assert re.search(r'<h1[^>]*id="name">✉ 令和6年度 補助金申請書類</h1>', page)  # the subject, as in the list
    assert "SPF pass" in page
    # Where it went: the recipient's mailbox, not the channel's inbox folder (a mail never lands there).
    assert "inbox/mail/kokuho@city.example.lg.jp/（メールボックス）" in page and "受信フォルダ:" not in page
    assert clerk.get(f"/deliveries/{job['id']}/files/output").content.startswith(b"Authentication-Results:")
    # The clerk asks for the original workbook (attachment 0), the approver releases it.
    r = clerk.post(f"/deliveries/{job['id']}/request", data={"csrf": csrf, "reason": "マクロの内容を確認したい",
                                                            "part": "0"})
    assert r.status_code == 303 and "msg=requested" in r.headers["location"]
    approver = _login(mta.console, "sato", "approver-pass-1")
    page, csrf2 = _csrf(approver, "/approvals")
    assert "添付ファイル: 申請書.xlsm" in page
    with ledger(mta.data_dir) as c:
        rid = c.execute("SELECT id FROM original_requests WHERE job_id = ? AND part = 0", (job["id"],)).fetchone()[0]
    r = approver.post(f"/approvals/{rid}", data={"csrf": csrf2, "decision": "approve", "comment": "確認のため承認"})
    assert r.status_code == 303 and "msg=approved" in r.headers["location"], r.headers
    got = clerk.get(f"/originals/{rid}")
    assert got.status_code == 200 and got.content == xlsm
    assert "ORIGINAL_" in got.headers["content-disposition"]
    # And the whole original mail: the message as received, our trace fields on top.
    _, csrf = _csrf(clerk, f"/deliveries/{job['id']}")
    clerk.post(f"/deliveries/{job['id']}/request", data={"csrf": csrf, "reason": "原本のメールを保存したい", "part": ""})
    with ledger(mta.data_dir) as c:
        rid2 = c.execute("SELECT id FROM original_requests WHERE job_id = ? AND part IS NULL", (job["id"],)).fetchone()[0]
    _, csrf2 = _csrf(approver, "/approvals")
    approver.post(f"/approvals/{rid2}", data={"csrf": csrf2, "decision": "approve", "comment": "保存のため承認"})
    whole = clerk.get(f"/originals/{rid2}").content
    assert whole.startswith(b"Received: from mx.example.jp") and whole.rstrip().endswith(mail.rstrip())
    r = subprocess.run([str(BIN), "audit", "verify", "--data-dir", str(mta.data_dir)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_ppap_mail_runs_again_with_the_password_given_in_the_console(mta) -> None:
    mail = mixed(head(ew("見積書（パスワード別送）")), [text_part("パスワードは別途お送りします。\r\n"),
                                                  attachment(ppap_zip(), simple_name("見積書.zip"), "application/zip")])
    mid = send(mta.smtp, "taro@example.jp", ["kokuho@city.example.lg.jp"], mail)
    job = wait_final(mta.data_dir, mid)[0]
    assert job["verdict"] == "sanitized"
    assert json.loads(job["result"])["mail"]["needs_password"] == ["見積書.zip"]
    [first] = [m for m in maildir(mta.data_dir, "kokuho@city.example.lg.jp") if m["X-CDR-Queue-ID"].startswith(mid)]
    assert "見積書.zip" not in attachments(first)
    clerk = _login(mta.console, "yamada", "clerk-pass-1")
    page, csrf = _csrf(clerk, f"/deliveries/{job['id']}")
    assert 'id="password-retry"' in page
    r = clerk.post(f"/deliveries/{job['id']}/password", data={"csrf": csrf, "password": PASSWORD})
    assert r.status_code == 303 and "password_retry" in r.headers["location"]
    jobs = wait_final(mta.data_dir, mid, 2)
    retry = jobs[-1]
    assert retry["source"] == "console" and retry["password"] is None
    assert json.loads(retry["result"])["mail"]["needs_password"] == []
    box = [m for m in maildir(mta.data_dir, "kokuho@city.example.lg.jp") if m["X-CDR-Queue-ID"].startswith(mid)]
    assert len(box) == 2
    opened = attachments(box[-1] if box[-1]["X-CDR-Queue-ID"].endswith(f".{retry['id']}") else box[0])
    with zipfile.ZipFile(io.BytesIO(opened["見積書.zip"])) as z:
        assert z.read("見積書.csv").decode("cp932").startswith("番号,氏名")
    # Once opened, no further retry is offered.
    page, csrf = _csrf(clerk, f"/deliveries/{job['id']}")
    r = clerk.post(f"/deliveries/{job['id']}/password", data={"csrf": csrf, "password": PASSWORD})
    assert "retry_done" in r.headers["location"]


def test_metrics_count_mails_by_verdict(mta) -> None:
    text = httpx.get(mta.api + "/metrics", timeout=30).text
    # (series with a channel also carry its tenant, issue 19)
    assert re.search(r'transfer_mails_total\{channel="国保課",delivery="maildir",verdict="blocked"[^}]*\} [1-9]', text)
    assert re.search(r'transfer_mails_total\{channel="国保課",delivery="maildir",verdict="sanitized"[^}]*\} [1-9]', text)
    assert re.search(r'transfer_smtp_transactions_total\{outcome="unknown_recipient"\} [1-9]', text)


def test_spf_without_dns_is_none() -> None:
    from transfer_agent.smtp_server import spf_checker

    assert spf_checker(False, [])("127.0.0.1", "taro@example.jp", "mx.example.jp").result == "none"
    dead = free_port()  # nothing answers there: DNS unavailable, never an error
    assert spf_checker(True, [f"127.0.0.1:{dead}"], timeout=1.0)("127.0.0.1", "taro@example.jp", "mx").result == "none"


def test_the_mail_config_of_issue_13_works_and_routes_by_address_then_domain(tmp_path) -> None:
    from transfer_agent.config import ConfigError, load_config
    from transfer_agent.mailroutes import Routes

    f = tmp_path / "ta.toml"
    f.write_text('''[mail]
deliver = "maildir"            # or "smtp"
relay = "127.0.0.1:2526"       # LGWAN mail server, for deliver = "smtp"
[mail.routes]                  # recipient domain or address -> channel
"city.example.lg.jp" = "default"
"kokuho@city.example.lg.jp" = "国保課"
''', "utf-8")
    cfg = load_config(f, tmp_path, smtp_port=2525)
    routes = Routes(cfg.mail_routes, cfg.default_channel)
    assert routes.channel_for("Kokuho@City.Example.LG.JP") == ("国保課", "kokuho@city.example.lg.jp")
    assert routes.channel_for("tanaka@city.example.lg.jp") == ("default", "tanaka@city.example.lg.jp")
    assert routes.channel_for("tanaka@example.lg.jp") is None
    assert routes.channel_for("../x@city.example.lg.jp") is None
    for bad in ('[mail]\ndeliver = "smtp"\n', '[mail.routes]\n"city.example.lg.jp" = "../x"\n',
                '[mail]\nrelay = "nohost"\n'):
        f.write_text(bad, "utf-8")
        with pytest.raises(ConfigError):
            load_config(f, tmp_path, smtp_port=2525)
