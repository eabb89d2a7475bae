"""Upload requests and the public upload page (issue 14), over HTTP against the real service.

A link from `exchange create`, the form it shows, the checks on the server (fields, files, sizes,
counts), the same path as the REST API (bundle, receipt, ledger, audit), closed links, limits,
CSRF / Host / Origin, a form that lies about its fields, per-form policies and the 要確認 checks.
"""
from __future__ import annotations

import json
import re
import sqlite3
import time
from html import unescape

import httpx
import pytest

from samples.pdf_samples import _base, _js, _save, japanese_pdf
from tests.portal_helpers import CONFIG, new_key, start, ta
from transfer_agent import clock

FORMS = """
[exchange]
link_per_hour = 3600.0
address_per_hour = 3600.0
burst = 50

[channels.kokuho]
form = "kokuho"
display_name = "国民健康保険課"

[channels.zeimu]
display_name = "税務課"

[forms.kokuho]
title = "国民健康保険の届出"
families = ["pdf", "text"]
max_file_mb = 0.5
max_total_mb = 1
min_files = 1
max_files = 3

[[forms.kokuho.fields]]
name = "name"
label = "氏名"
required = true
max_length = 20

[[forms.kokuho.fields]]
name = "zip"
label = "郵便番号"
type = "postal"

[[forms.kokuho.fields]]
name = "tel"
label = "電話番号"
type = "tel"

[[forms.kokuho.fields]]
name = "birth"
label = "生年月日"
type = "date"

[[forms.kokuho.fields]]
name = "count"
label = "世帯人数"
type = "number"
min = 1
max = 30

[[forms.kokuho.fields]]
name = "kind"
label = "届出の種類"
type = "choice"
choices = ["加入", "脱退", "変更"]
required = true

[[forms.kokuho.fields]]
name = "mail"
label = "メールアドレス"
type = "email"
receipt = true

[[forms.kokuho.fields]]
name = "member"
label = "被保険者番号"
pattern = "[0-9]{8}"
hint = "8桁の数字"

[[forms.kokuho.fields]]
name = "note"
label = "連絡事項"
type = "multiline"
max_length = 200

[forms.kokuho.checks]
require_families = ["pdf"]
duplicate_fields = ["name", "birth"]
duplicate_files = true

[[forms.kokuho.checks.number]]
field = "count"
max = 10

[[forms.kokuho.checks.date]]
field = "birth"
min = "1900-01-01"
max = "today"

[forms.pdfonly]
title = "PDFの提出"
extensions = [".pdf"]
max_files = 2
"""

def hostile_pdf() -> bytes:
    pdf = _base()
    pdf.Root.OpenAction = _js(pdf)
    return _save(pdf)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    a = start(tmp_path_factory.mktemp("exchange") / "data", config=CONFIG + FORMS)
    yield a
    a.stop()


def cfg(app) -> str:
    return str(app.data_dir.parent / f"{app.data_dir.name}.toml")


def link(app, channel: str = "default", *extra: str) -> str:
    r = ta("exchange", "create", "--config", cfg(app), "--channel", channel, "--expires", "1d", *extra,
           data_dir=app.data_dir)
    assert r.returncode == 0, r.stderr
    url = r.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/u/[A-Za-z0-9_-]{43}", url), url
    return url


def form_action(page: str) -> str:
    return unescape(re.search(r'<form method="post" action="([^"]+)"', page).group(1))


def post(c: httpx.Client, app, url: str, data: dict, files: list, headers: dict | None = None) -> httpx.Response:
    page = c.get(url)
    assert page.status_code == 200, page.text
    return c.post(app.api + form_action(page.text), data=data, files=files,
                  headers={"Origin": app.api, **(headers or {})})


def wait_status(c: httpx.Client, app, location: str) -> str:
    for _ in range(300):
        page = c.get(app.api + location)
        assert page.status_code == 200
        if 'id="done"' in page.text:
            return page.text
        time.sleep(0.1)
    raise AssertionError(page.text)


def db(app) -> sqlite3.Connection:
    conn = sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3")
    conn.row_factory = sqlite3.Row
    return conn


def text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_default_form_end_to_end(app):
    url = link(app, "default", "--title", "転入の書類", "--instructions", "<b>本人確認書類</b>を添付してください\n2行目")
    name = "山田 花子 <hanako@example.jp>"
    with httpx.Client(timeout=30) as c:
        page = c.get(url)
        assert page.status_code == 200
        h = page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert "<script" not in h and "http://" not in h.replace(app.api, "")  # no script, no CDN
        # Fields with labels, the accepted types and limits before upload; the instructions escaped.
        for label in ('for="f-0">氏名', 'for="f-1">メールアドレス', 'for="f-2">連絡事項', "受け付ける形式", "PDF",
                      "1ファイル", "合計"):
            assert label in h, label
        assert "&lt;b&gt;本人確認書類&lt;/b&gt;" in h and "<b>本人確認書類" not in h
        assert "連絡先（任意）" in h and "受付確認メール" not in h  # no [notify] smtp: no receipt promised
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        r = c.post(app.api + form_action(h), headers={"Origin": app.api},
                   data={"氏名": name, "メールアドレス": "ｈａｎａｋｏ＠example.jp", "連絡事項": "よろしく\r\nお願いします\u202e"},
                   files=[("files", ("申請書.pdf", japanese_pdf(1))), ("files", ("script.pdf", hostile_pdf())),
                          ("files", ("setup.pdf", b"MZ" + b"\0" * 300))])
        assert r.status_code == 303, r.text
        done = text(wait_status(c, app, r.headers["location"]))
    receipt = re.search(r"受付番号 (\d{8}-\d{4})", done).group(1)
    assert "申請書.pdf 受理" in done
    assert "script.pdf 無害化して受理" in done
    assert re.search(r"setup\.pdf 受理できませんでした: \S+", done)
    conn = db(app)
    s = conn.execute("SELECT * FROM submissions WHERE receipt = ?", (receipt,)).fetchone()
    assert s["source"] == "page" and s["form"] == "default" and s["api_key_id"] == 0
    # Stored as typed (control/bidi characters aside); the email in its canonical form.
    assert json.loads(s["fields"]) == [["氏名", name], ["メールアドレス", "hanako@example.jp"],
                                       ["連絡事項", "よろしく\nお願いします"]]
    assert json.loads(s["receipt_to"]) == ["hanako@example.jp"]
    req = conn.execute("SELECT * FROM upload_requests WHERE id = ?", (s["request_id"],)).fetchone()
    assert req["uses"] == 1
    # The same bundle as a REST submission.
    bundle = app.data_dir / s["bundle_dir"]
    assert {"form.json", "form.txt", "manifest.json", "申請書.pdf", "script.pdf", "setup.pdf.blocked.json"} <= {
        p.name for p in bundle.iterdir()}
    form = json.loads((bundle / "form.json").read_text("utf-8"))
    assert {"name": "氏名", "value": name, "label": "氏名"} in form["fields"] and form["form"] == "default"
    assert f"【氏名】\r\n{name}\r\n" in (bundle / "form.txt").read_bytes().decode("utf-8-sig")
    manifest = json.loads((bundle / "manifest.json").read_text("utf-8"))
    assert {f["name"]: f["verdict"] for f in manifest["files"]} == {
        "申請書.pdf": "clean", "script.pdf": "sanitized", "setup.pdf": "blocked"}
    events = [json.loads(d) for e, d in conn.execute("SELECT event, data FROM audit WHERE event = 'api.submission'")]
    mine = next(d for d in events if d["receipt"] == receipt)
    assert mine["source"] == "page" and mine["request_id"] == s["request_id"] and mine["form"] == "default"
    assert ta("audit", "verify", data_dir=app.data_dir).returncode == 0


def test_form_that_lies_is_refused_and_nothing_stored(app):
    url = link(app, "kokuho")
    conn = db(app)
    before = conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0]
    with httpx.Client(timeout=30) as c:
        page = c.get(url).text
        for label in ("郵便番号", "電話番号", "生年月日", "世帯人数", "届出の種類", "8桁の数字", "国民健康保険課"):
            assert label in page, label
        accept = re.search(r'accept="([^"]*)"', page).group(1).split(",")
        assert ".pdf" in accept and ".txt" in accept and ".docx" not in accept
        bad = {"name": "あ" * 21, "zip": "12-345", "tel": "abc", "birth": "2026-02-30", "count": "many",
               "kind": "その他", "mail": "not-an-address", "member": "1234", "note": "x",
               "admin": "yes", "channel": "zeimu"}
        r = c.post(app.api + form_action(page), headers={"Origin": app.api}, data=bad,
                   files=[("files", ("a.exe", b"MZ")), ("files", ("b.docx", b"PK")), ("files", ("c.pdf", b"%PDF")),
                          ("files", ("d.pdf", b"%PDF"))])
    assert r.status_code == 422
    h = r.text
    assert 'role="alert"' in h and "入力内容に誤りがあります" in h
    for msg in ("「氏名」は20文字以内", "7桁の郵便番号", "電話番号を数字とハイフン", "日付（例", "「世帯人数」は数字",
                "選択肢から選んで", "メールアドレスの形", "「被保険者番号」の形式", "「admin」はこのフォームにない項目",
                "受け付けていない形式", "3件まで"):
        assert msg in h, msg
    # Errors sit next to their field and the field says so (keyboard and screen readers find them).
    assert re.search(r'id="f-1-error"[^>]*>.*?7桁', h) and 'aria-invalid="true"' in h
    assert 'aria-describedby="f-1-error"' in h or re.search(r'aria-describedby="[^"]*f-1-error', h)
    # What was typed comes back, escaped.
    assert "あ" * 21 in h
    assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == before
    assert not any((app.data_dir / "work" / "api-uploads").iterdir())


def test_typed_values_stored_canonical_and_checks_flag(app):
    url = link(app, "kokuho")
    data = {"name": "佐藤 一郎", "zip": "１００−０００１", "tel": "０３－１２３４－５６７８", "birth": "1980/4/1",
            "count": "１２", "kind": "加入", "mail": "ichiro@example.jp", "member": "12345678", "note": "<script>"}
    with httpx.Client(timeout=30) as c:
        r = post(c, app, url, data, [("files", ("メモ.txt", "本文".encode()))])
        assert r.status_code == 303, r.text
        wait_status(c, app, r.headers["location"])
        # Same person and birth date again, with the same file plus a PDF: a duplicate.
        r = post(c, app, link(app, "kokuho"), dict(data, count="2"),
                 [("files", ("メモ.txt", "本文".encode())), ("files", ("x.pdf", japanese_pdf(1)))])
        assert r.status_code == 303, r.text
        wait_status(c, app, r.headers["location"])
    rows = db(app).execute("SELECT * FROM submissions WHERE form = 'kokuho' ORDER BY created_at").fetchall()
    first, second = rows[-2], rows[-1]
    assert dict(json.loads(first["fields"])) == {"name": "佐藤 一郎", "zip": "100-0001", "tel": "03-1234-5678",
                                                 "birth": "1980-04-01", "count": "12", "kind": "加入",
                                                 "mail": "ichiro@example.jp", "member": "12345678", "note": "<script>"}
    flags1 = {f["id"] for f in json.loads(first["flags"])}
    assert flags1 == {"required_type", "number_range"}  # no PDF, 12 > 10
    flags2 = {f["id"]: f["ja"] for f in json.loads(second["flags"])}
    assert set(flags2) == {"duplicate", "duplicate_file"}
    assert first["receipt"] in flags2["duplicate"]
    manifest = json.loads((app.data_dir / second["bundle_dir"] / "manifest.json").read_text("utf-8"))
    assert {c["id"] for c in manifest["checks"]} == {"duplicate", "duplicate_file"}
    text = (app.data_dir / second["bundle_dir"] / "form.txt").read_bytes().decode("utf-8-sig")
    assert "【郵便番号】\r\n100-0001" in text and "【連絡事項】\r\n<script>" in text and "フォーム: kokuho" in text


def test_rest_api_validates_against_the_channel_form(app):
    key = new_key(app.data_dir, "電子申請")
    with httpx.Client(base_url=app.api, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        r = c.post("/api/v1/submissions", data={"channel": "kokuho", "name": "x" * 30, "extra": "1"},
                   files=[("files", ("a.docx", b"PK"))])
        assert r.status_code == 422
        body = r.json()
        assert body["error"] == "invalid_form" and body["message_ja"]
        by = {e["field"]: e for e in body["fields"]}
        assert set(by) >= {"name", "kind", "extra", "files"}
        assert "20文字以内" in by["name"]["message_ja"] and "at most 20" in by["name"]["message"]
        r = c.post("/api/v1/submissions", data={"channel": "kokuho", "name": "鈴木", "kind": "脱退", "zip": "1000001"},
                   files=[("files", ("届出.pdf", japanese_pdf(1)))])
        assert r.status_code == 202, r.text
        sid = r.json()["id"]
        # A channel that names no form keeps free fields.
        r = c.post("/api/v1/submissions", data={"channel": "zeimu", "任意の項目": "値"},
                   files=[("files", ("memo.txt", b"free"))])
        assert r.status_code == 202, r.text
    row = db(app).execute("SELECT fields, form, source FROM submissions WHERE id = ?", (sid,)).fetchone()
    assert row["form"] == "kokuho" and row["source"] == "api"
    assert json.loads(row["fields"]) == [["name", "鈴木"], ["zip", "100-0001"], ["kind", "脱退"]]


def test_request_form_policy_blocks_other_content(app):
    """A request with the PDF-only form: a Word file renamed .pdf passes the name check and is blocked by
    the form's families (content), and a .txt is refused before it reaches the ledger."""
    from samples.legacy_samples import _make_docx

    p = app.data_dir.parent / "w.docx"
    _make_docx(p)
    url = link(app, "default", "--form", "pdfonly")
    with httpx.Client(timeout=30) as c:
        page = c.get(url).text
        assert 'accept=".pdf"' in page
        r = post(c, app, url, {}, [("files", ("memo.txt", b"hello"))])
        assert r.status_code == 422 and "受け付けていない形式" in r.text
        r = post(c, app, url, {}, [("files", ("report.pdf", p.read_bytes()))])
        assert r.status_code == 303, r.text
        done = text(wait_status(c, app, r.headers["location"]))
    assert "report.pdf 受理できませんでした" in done
    job = db(app).execute("SELECT policy, verdict FROM jobs WHERE name = 'report.pdf' ORDER BY id DESC").fetchone()
    assert job["verdict"] == "blocked" and "+form.pdfonly" in job["policy"]


def test_closed_links_show_a_clear_page(app):
    with httpx.Client(timeout=30) as c:
        r = c.get(app.api + "/u/" + "A" * 43)
        assert r.status_code == 404 and "このリンクは使えません" in r.text
        url = link(app, "default", "--max-uses", "1")
        r = post(c, app, url, {"氏名": "一回だけ"}, [("files", ("a.txt", b"one"))])
        assert r.status_code == 303
        r = c.get(url)
        assert r.status_code == 410 and "上限に達しました" in r.text
        url2 = link(app)
        rid = db(app).execute("SELECT id FROM upload_requests ORDER BY created_at DESC LIMIT 1").fetchone()[0]
        page = c.get(url2).text
        assert ta("exchange", "revoke", rid, data_dir=app.data_dir).returncode == 0
        r = c.get(url2)
        assert r.status_code == 410 and "取り消されました" in r.text
        # A form opened before the revocation cannot be sent afterwards.
        r = c.post(app.api + form_action(page), headers={"Origin": app.api}, data={"氏名": "x"},
                   files=[("files", ("a.txt", b"x"))])
        assert r.status_code == 410
    listed = ta("exchange", "list", "--json", data_dir=app.data_dir)
    states = {r["id"]: r["state"] for r in json.loads(listed.stdout)}
    assert states[rid] == "revoked" and "used_up" in states.values()
    assert ta("audit", "verify", data_dir=app.data_dir).returncode == 0


def test_many_uploads_at_once_on_one_link_keep_max_uses(app):
    """Eight senders post at the same moment on a link good for three: three receipts, five clear pages."""
    from concurrent.futures import ThreadPoolExecutor

    url = link(app, "default", "--max-uses", "3")
    clients = [httpx.Client(timeout=60) for _ in range(8)]
    try:
        actions = [form_action(c.get(url).text) for c in clients]

        def send(i: int) -> int:
            return clients[i].post(app.api + actions[i], headers={"Origin": app.api}, data={"氏名": f"同時{i}"},
                                   files=[("files", (f"f{i}.txt", b"x" * 20000))]).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = sorted(pool.map(send, range(8)))
    finally:
        for c in clients:
            c.close()
    assert codes == [303] * 3 + [410] * 5
    rid = db(app).execute("SELECT id, uses FROM upload_requests WHERE token = ?", (url.rsplit("/", 1)[1],)).fetchone()
    assert rid["uses"] == 3
    assert db(app).execute("SELECT COUNT(*) FROM submissions WHERE request_id = ?", (rid["id"],)).fetchone()[0] == 3
    for _ in range(100):  # the refused ones left nothing; the accepted ones go once the core has taken them
        if not any((app.data_dir / "work" / "api-uploads").iterdir()):
            break
        time.sleep(0.1)
    assert not any((app.data_dir / "work" / "api-uploads").iterdir())


def test_csrf_host_and_origin(app):
    url = link(app)
    files = [("files", ("a.txt", b"x"))]
    with httpx.Client(timeout=30) as c:
        page = c.get(url).text
        action = form_action(page)
        # No token, a foreign origin, another Host, no cookie: each refused with a page, nothing stored.
        r = c.post(url, data={"氏名": "x"}, files=files, headers={"Origin": app.api})
        assert r.status_code == 403 and "有効期限" in r.text
        r = c.post(app.api + action, data={"氏名": "x"}, files=files, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and "このページ以外からの送信" in r.text
        r = c.get(url, headers={"Host": "evil.example"})
        assert r.status_code == 421
    with httpx.Client(timeout=30) as other:  # no cookie of that page
        r = other.post(app.api + action, data={"氏名": "x"}, files=files, headers={"Origin": app.api})
        assert r.status_code == 403
    rid = url.rsplit("/", 1)[1]
    assert db(app).execute("SELECT uses FROM upload_requests WHERE token = ?", (rid,)).fetchone()[0] == 0


def test_oversized_and_many_uploads_are_answered_with_pages(app):
    url = link(app, "kokuho")
    with httpx.Client(timeout=60) as c:
        # Larger than the form's total (1 MB): 413 page, never a 5xx, nothing recorded.
        r = post(c, app, url, {"name": "大きい", "kind": "加入"}, [("files", ("big.pdf", b"%PDF" + b"0" * 3_000_000))])
        assert r.status_code == 413 and "ファイルが大きすぎます" in r.text and "合計1 MB" in r.text
        # Per-file limit (0.5 MB) inside the total: the form's own message next to the file field.
        r = post(c, app, url, {"name": "大きい", "kind": "加入"}, [("files", ("b.pdf", b"%PDF" + b"0" * 700_000))])
        assert r.status_code == 422 and "1ファイル512 KBまで" in r.text
        # Far more files than the form takes, or a field far too long: a page saying which, not "too large".
        r = post(c, app, url, {"name": "多数", "kind": "加入"}, [("files", (f"{i}.pdf", b"%PDF")) for i in range(60)])
        assert r.status_code == 413 and "ファイルが多すぎます" in r.text and "3件まで" in r.text
        r = post(c, app, url, {"name": "あ" * 40_000, "kind": "加入"}, [("files", ("a.pdf", b"%PDF"))])
        assert r.status_code == 413 and "入力内容が多すぎます" in r.text and "ファイルが大きすぎます" not in r.text
        # A body that is not multipart at all.
        page = c.get(url).text
        r = c.post(app.api + form_action(page), content=b"x" * 1000, headers={"Origin": app.api,
                                                                             "Content-Type": "text/plain"})
        assert r.status_code == 415
    assert not any((app.data_dir / "work" / "api-uploads").iterdir())


def test_rate_limit_per_link_and_address(tmp_path):
    cfg = CONFIG + "\n[exchange]\nlink_per_hour = 2.0\naddress_per_hour = 3.0\nburst = 2\n"
    a = start(tmp_path / "data", config=cfg)
    try:
        url = link(a)
        with httpx.Client(timeout=30) as c:
            codes = [post(c, a, url, {"氏名": f"連投{i}"}, [("files", ("a.txt", b"x"))]).status_code
                     for i in range(3)]
            assert codes[:2] == [303, 303] and codes[2] == 429
            r = post(c, a, url, {"氏名": "x"}, [("files", ("a.txt", b"x"))])
            assert r.status_code == 429 and "しばらくお待ちください" in r.text and int(r.headers["retry-after"]) > 0
            assert "このリンクへの送信" in r.text
            # Another link from the same address: the address has used its burst too.
            r = post(c, a, link(a), {"氏名": "y"}, [("files", ("a.txt", b"x"))])
            assert r.status_code == 429 and "お使いの回線" in r.text
        n = sqlite3.connect(a.data_dir / "state" / "ledger.sqlite3").execute(
            "SELECT COUNT(*) FROM submissions").fetchone()[0]
        assert n == 2
    finally:
        a.stop()


def test_report_cli_csv(app, tmp_path):
    # Days in the appliance's zone (JST), whatever the server's; from yesterday in case the module crossed midnight.
    today, yesterday = clock.day(), clock.day(time.time() - 86400)
    out = tmp_path / "kokuho.csv"
    r = ta("report", "--config", cfg(app), "--channel", "kokuho", "--from", yesterday, "--to", today, "--csv", str(out),
           "--svg", str(tmp_path / "k.svg"), data_dir=app.data_dir)
    assert r.returncode == 0, r.stderr
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    rows = [line.split(",") for line in raw.decode("utf-8-sig").splitlines()]
    got = {(a, b): c for a, b, c in rows[1:]}
    assert int(got[("受付件数", "合計")]) >= 2
    assert int(got[("選択項目（届出の種類）", "加入")]) >= 2
    assert int(got[("受付件数", "要確認あり")]) >= 2
    assert ("ファイル（判定）", "受理") in got
    assert (tmp_path / "k.svg").read_text("utf-8").startswith("<svg")
    bad = ta("report", "--config", cfg(app), "--channel", "kokuho", "--from", today, "--to", "2000-01-01", data_dir=app.data_dir)
    assert bad.returncode == 2


def test_expired_link_and_audit_verify_catches_edits(tmp_path):
    a = start(tmp_path / "data")
    try:
        url = link(a)
        with httpx.Client(timeout=30) as c:
            page = c.get(url).text
            conn = sqlite3.connect(a.data_dir / "state" / "ledger.sqlite3")
            conn.execute("UPDATE upload_requests SET expires_at = ?", (time.time() - 1,))  # as if a day went by
            conn.commit()
            r = c.get(url)
            assert r.status_code == 410 and "受付期限を過ぎています" in r.text
            r = c.post(a.api + form_action(page), headers={"Origin": a.api}, data={"氏名": "x"},
                       files=[("files", ("a.txt", b"x"))])
            assert r.status_code == 410
    finally:
        a.stop()
    r = ta("audit", "verify", data_dir=a.data_dir)  # the edited expiry is named
    assert r.returncode == 1 and "upload request" in r.stderr


def test_forms_in_files_and_bad_declarations(tmp_path):
    d = tmp_path / "data"
    (d / "forms").mkdir(parents=True)
    (d / "forms" / "jimu.toml").write_text('title = "事務"\n[[fields]]\nname = "files"\n', "utf-8")
    r = ta("exchange", "create", "--channel", "default", "--form", "jimu", "--expires", "1d", data_dir=d)
    assert r.returncode == 2 and "files" in r.stderr
    (d / "forms" / "jimu.toml").write_text('title = "事務"\n[[fields]]\nname = "件名"\nrequired = true\n', "utf-8")
    r = ta("exchange", "create", "--channel", "default", "--form", "jimu", "--expires", "1d", data_dir=d)
    assert r.returncode == 0, r.stderr
    assert "/u/" in r.stdout.splitlines()[-1]
    r = ta("exchange", "create", "--channel", "default", "--expires", "1d", "--notify", "kokuho@example.jp", data_dir=d)
    assert r.returncode == 0 and "no receipt mail" in r.stderr and "kokuho@example.jp" in r.stderr
    assert "has no display_name" in r.stderr  # senders would read 'default': the operator is told how to name it
    r = ta("exchange", "create", "--channel", "nosuch", "--expires", "1d", data_dir=d)
    assert r.returncode == 2 and "unknown channel" in r.stderr
    r = ta("exchange", "create", "--channel", "default", "--expires", "999d", data_dir=d)
    assert r.returncode == 2
