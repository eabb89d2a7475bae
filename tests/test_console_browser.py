"""The staff console in Debian's chromium (Playwright): login, list, report, request, approve, download."""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.browser_helpers import chromium, login, needs_chromium
from tests.portal_helpers import add_user, new_key, start, ta, wait_done

CSV = "氏名,金額\n山田,=HYPERLINK(\"http://evil\")\n".encode()
UNKNOWN = bytes(range(256)) * 4

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    a = start(tmp_path_factory.mktemp("console") / "data")
    add_user(a.data_dir, "yamada", "clerk", "clerk-pass-1", "山田 花子")
    add_user(a.data_dir, "kacho", "approver", "approver-pass-1", "佐藤 課長")
    add_user(a.data_dir, "admin", "admin", "admin-pass-123")
    add_user(a.data_dir, "victim", "clerk", "victim-pass-1")
    key = new_key(a.data_dir, "電子申請システム")
    with httpx.Client(base_url=a.api, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        r = c.post("/api/v1/submissions", data={"氏名": "山田 太郎", "申請種別": "転入届"},
                   files=[("files", ("申請書.csv", CSV)), ("files", ("添付メモ.txt", "よろしくお願いします".encode())),
                          ("files", ("setup.exe", b"MZ" + b"\0" * 200))])
        assert r.status_code == 202, r.text
        receipt = r.json()["receipt"]
        wait_done(c, r.json()["status_url"])
    # A dropbox file too: the list covers every channel, not just submissions.
    (a.data_dir / "dropbox" / "somu").mkdir(parents=True, exist_ok=True)
    (a.data_dir / "dropbox" / "somu" / "議事録.txt").write_text("会議の議事録です。\n", "utf-8")
    # A file of an unknown type: blocked, but not of a family the policy never releases.
    (a.data_dir / "dropbox" / "zeimu").mkdir(parents=True, exist_ok=True)
    (a.data_dir / "dropbox" / "zeimu" / "台帳.dat").write_bytes(UNKNOWN)
    with chromium() as browser:
        yield {"app": a, "receipt": receipt, "browser": browser}
    a.stop()


def _login(browser, app, name: str, password: str):
    return login(browser, app.console, name, password, height=768, wait=False)


def test_clerk_request_approver_approve_clerk_downloads(env, tmp_path):
    app, browser, receipt = env["app"], env["browser"], env["receipt"]
    # Wrong password: a Japanese error, still on the login page.
    ctx, page = _login(browser, app, "yamada", "wrong-password")
    assert "ユーザー名またはパスワードが違います" in page.inner_text("#login-error")
    ctx.close()

    ctx, page = _login(browser, app, "yamada", "clerk-pass-1")
    page.wait_for_url("**/deliveries")
    cookie = next(c for c in ctx.cookies() if c["name"] == "ta_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    for _ in range(100):  # the dropbox file may still be settling
        if "議事録.txt" in page.inner_text("#deliveries"):
            break
        page.wait_for_timeout(100)
        page.reload()
    table = page.inner_text("#deliveries")
    for text in ("申請書.csv", "添付メモ.txt", "setup.exe", "議事録.txt", receipt, "無害化済み", "配送停止",
                 "問題なし", "CSVの数式"):
        assert text in table, text
    shot = tmp_path / "clerk_list.png"
    page.screenshot(path=str(shot), full_page=False)
    shutil.copy(shot, "/tmp/clerk_list.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366  # no sideways scrolling at 1366x768

    # Filters: verdict, receipt, channel, name search.
    page.select_option("select[name=verdict]", "sanitized")
    page.click("form.filters button[type=submit]")
    rows = page.locator("#deliveries tbody tr")
    assert rows.count() == 1 and "申請書.csv" in rows.first.inner_text()
    page.goto(app.console + f"/deliveries?receipt={receipt}")
    assert page.locator("#deliveries tbody tr").count() == 3
    page.goto(app.console + "/deliveries?channel=somu")
    assert page.locator("#deliveries tbody tr").count() == 1
    page.goto(app.console + "/deliveries?q=" + "メモ")
    assert page.locator("#deliveries tbody tr").count() == 1

    # Blocked file: the reason in Japanese.
    page.goto(app.console + "/deliveries?verdict=blocked")
    page.click("text=setup.exe")
    assert "配送停止" in page.inner_text("#verdict") and page.inner_text("#reason").startswith("理由:")
    assert "実行ファイル" in page.inner_text("#threats") or "受け付けていません" in page.inner_text("#reason")

    # Report of the sanitized CSV, downloads of the file and its text rendition.
    page.goto(app.console + "/deliveries?verdict=sanitized")
    page.click("text=申請書.csv")
    assert "無害化済み" in page.inner_text("#verdict")
    threats = page.inner_text("#threats")
    assert "CSVの数式" in threats and "無効化" in threats and "Excel" in threats
    with page.expect_download() as dl:
        page.click("#dl-output")
    out = Path(dl.value.path()).read_text("utf-8")
    assert dl.value.suggested_filename == "申請書.csv" and "'=HYPERLINK" in out
    with page.expect_download() as dl:
        page.click("#dl-text")
    assert "山田" in Path(dl.value.path()).read_text("utf-8")
    report_url = page.url
    page.screenshot(path="/tmp/report.png", full_page=False)

    # 原本取り出し申請.
    page.fill("textarea[name=reason]", "リンク先の確認が業務上必要なため")
    page.click("form.request button[type=submit]")
    assert "申請しました" in page.inner_text("#msg")
    assert "承認待ち" in page.inner_text("#requests")

    # A POST without the CSRF token is refused.
    r = ctx.request.post(report_url + "/request", form={"reason": "CSRFなしの申請です"})
    assert r.status == 403

    # The approver sees it and approves.
    actx, apage = _login(browser, app, "kacho", "approver-pass-1")
    apage.wait_for_url("**/approvals")
    pending = apage.inner_text("#pending")
    assert "申請書.csv" in pending and "リンク先の確認" in pending and "山田 花子" in pending
    apage.fill("#pending input[name=comment]", "確認しました。取扱注意")
    apage.click("#pending button[value=approve]")
    assert "承認し" in apage.inner_text("#msg")
    assert "承認待ちの申請はありません" in apage.inner_text("#pending")
    actx.close()

    # The clerk sees the approval and downloads the original from the console; it is not in the inbox.
    page.goto(app.console + "/requests")
    mine = page.inner_text("#my-requests")
    assert "承認済み" in mine and "確認しました" in mine and "まで" in mine
    with page.expect_download() as dl:
        page.click("text=原本をダウンロード")
    assert Path(dl.value.path()).read_bytes() == CSV
    assert dl.value.suggested_filename == "ORIGINAL_申請書.csv"
    assert not list((app.data_dir / "inbox").rglob("ORIGINAL_*"))
    page.goto(app.console + "/deliveries")
    assert "原本あり" in page.inner_text("#deliveries")

    # Logout ends the session.
    page.click("button:has-text('ログアウト')")
    page.goto(app.console + "/deliveries")
    assert "/login" in page.url
    ctx.close()

    db = sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3")
    events = [e for (e,) in db.execute("SELECT event FROM audit ORDER BY seq")]
    for ev in ("console.login_failed", "console.login", "console.download", "original.requested",
               "original.approved", "original.downloaded", "console.logout"):
        assert ev in events, ev
    assert ta("audit", "verify", data_dir=app.data_dir).returncode == 0


def test_admin_reject_and_roles(env):
    app, browser = env["app"], env["browser"]
    ctx, page = _login(browser, app, "admin", "admin-pass-123")
    page.wait_for_url("**/admin")
    users = page.inner_text("#users")
    assert "yamada" in users and "山田 花子" in users and "承認者" in users
    keys = page.inner_text("#apikeys")
    assert "電子申請システム" in keys and "有効" in keys
    # A clerk may not open the approver or admin pages.
    cctx, cpage = _login(browser, app, "victim", "victim-pass-1")
    cpage.wait_for_url("**/deliveries")
    cpage.goto(app.console + "/approvals")
    assert "権限がありません" in cpage.content()
    # victim requests the text file's original; the admin (acting as approver) rejects it with a reason.
    cpage.goto(app.console + "/deliveries?q=" + "添付メモ")
    cpage.click("text=添付メモ.txt")
    cpage.fill("textarea[name=reason]", "念のため原本を確認したい")
    cpage.click("form.request button[type=submit]")
    page.goto(app.console + "/approvals")
    page.click("#pending button[value=reject]")  # no comment: refused
    assert "理由" in page.inner_text("#msg")
    page.fill("#pending input[name=comment]", "無害化済みの内容で足ります")
    page.click("#pending button[value=reject]")
    assert "却下しました" in page.inner_text("#msg")
    cpage.goto(app.console + "/requests")
    assert "却下" in cpage.inner_text("#my-requests") and "原本をダウンロード" not in cpage.content()
    ctx.close()
    cctx.close()


def test_lockout_after_repeated_failures(env):
    app = env["app"]
    with httpx.Client(base_url=app.console, timeout=10) as c:
        def attempt(pw: str) -> httpx.Response:
            pre = re.search(r'name="pre" value="([^"]+)"', c.get("/login").text).group(1)
            return c.post("/login", data={"name": "victim", "password": pw, "pre": pre, "next": "/"})

        for _ in range(4):
            assert attempt("nope-nope").status_code == 401
        r = attempt("nope-nope")
        assert r.status_code == 401 and "ロック" in r.text
        r = attempt("victim-pass-1")  # the right password does not help while locked
        assert r.status_code == 401 and "ロック" in r.text
        # Without the login form's cookie token (login CSRF) nothing is even tried.
        c.cookies.clear()
        r = c.post("/login", data={"name": "yamada", "password": "clerk-pass-1", "pre": "x", "next": "/"})
        assert r.status_code == 403
    assert ta("user", "unlock", "victim", data_dir=app.data_dir).returncode == 0
    listing = ta("user", "list", data_dir=app.data_dir).stdout
    assert "victim" in listing and "locked" not in listing


def _job(app, name: str) -> tuple[int, str]:
    for _ in range(300):
        row = sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3").execute(
            "SELECT id, status FROM jobs WHERE name = ?", (name,)).fetchone()
        if row and row[1] in ("delivered", "blocked"):
            return row
        time.sleep(0.1)
    raise AssertionError(f"{name} not final")


def test_approval_page_shows_why_needs_a_comment_and_never_releases_executables(env):
    """[release]: an executable's original cannot be requested (the report says why, a forged POST is
    refused); a blocked file's approval shows the blocking reason and needs a comment (in the browser and
    on the server); the released original is downloaded by its requester only, never written to a folder."""
    app, browser = env["app"], env["browser"]
    exe_id, _ = _job(app, "setup.exe")
    dat_id, status = _job(app, "台帳.dat")
    assert status == "blocked"
    ctx, page = _login(browser, app, "yamada", "clerk-pass-1")
    page.wait_for_url("**/deliveries")
    page.goto(app.console + f"/deliveries/{exe_id}")
    assert "ポリシーにより原本を取り出せません" in page.inner_text("#never-release")
    assert "実行ファイル" in page.inner_text("#never-release") and "executable" not in page.inner_text("#never-release")
    assert page.locator("form.request").count() == 0
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    r = ctx.request.post(app.console + f"/deliveries/{exe_id}/request", max_redirects=0,
                         form={"csrf": csrf, "reason": "どうしても必要です"})
    assert r.status == 303 and "never_release" in r.headers["location"]

    page.goto(app.console + f"/deliveries/{dat_id}")
    page.fill("textarea[name=reason]", "台帳の原本を確認する必要があるため")
    page.click("form.request button[type=submit]")
    assert "申請しました" in page.inner_text("#msg")

    actx, apage = _login(browser, app, "kacho", "approver-pass-1")
    apage.wait_for_url("**/approvals")
    db = sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3")
    rid = db.execute("SELECT id FROM original_requests WHERE job_id = ? AND status = 'pending'", (dat_id,)).fetchone()[0]
    row = apage.locator(f"#request-{rid}")
    why = row.inner_text()
    assert "配送停止" in why and "判別できない" in row.locator(".blocked-reason").inner_text(), why
    apage.screenshot(path="/tmp/approvals.png", full_page=False)
    # The browser refuses an approval without a comment (required) ...
    row.locator("button[value=approve]").click()
    assert row.locator("input[name=comment]:invalid").count() == 1
    assert apage.url.endswith("/approvals")
    # ... and so does the server when the form is bypassed.
    acsrf = row.locator("input[name=csrf]").get_attribute("value")
    r = actx.request.post(app.console + f"/approvals/{rid}", max_redirects=0,
                          form={"csrf": acsrf, "decision": "approve", "comment": " "})
    assert r.status == 303 and "comment_required_danger" in r.headers["location"]
    assert db.execute("SELECT status FROM original_requests WHERE id = ?", (rid,)).fetchone()[0] == "pending"
    row.locator("input[name=comment]").fill("内容を確認し、取扱注意で承認")
    row.locator("button[value=approve]").click()
    assert "承認しました" in apage.inner_text("#msg")
    # The approver cannot download the requester's original.
    r = actx.request.get(app.console + f"/originals/{rid}")
    assert r.status == 404
    actx.close()

    page.goto(app.console + "/requests")
    with page.expect_download() as dl:
        page.click(f"a[href='/originals/{rid}']")
    assert Path(dl.value.path()).read_bytes() == UNKNOWN
    assert not list((app.data_dir / "inbox").rglob("ORIGINAL_*"))
    # Past its time the link is closed.
    db.execute("UPDATE original_requests SET expires_at = ? WHERE id = ?", (1.0, rid))
    db.commit()
    page.goto(app.console + "/requests")
    assert "期限切れ" in page.inner_text("#my-requests")
    r = ctx.request.get(app.console + f"/originals/{rid}")
    assert r.status == 410
    ctx.close()
    events = [json.loads(d) for (d,) in db.execute(
        "SELECT data FROM audit WHERE event = 'original.downloaded' ORDER BY seq")]
    assert any(e["request_id"] == rid for e in events)
