"""Console hardening against a real `transfer-agent serve`: lockout under parallel guesses, out-of-range
ids, banners only from message codes, width-insensitive search, and the CLI lists with wide names."""
from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from tests.portal_helpers import add_user, new_key, start, ta, wait_done
from transfer_agent import clock
from transfer_agent.cli_admin import display_width
from transfer_agent.users import MAX_FAILURES

NAMES = ["見積書（最終）.txt", "住民票 写し.txt", "ＡＢＣ報告.txt", "議事録.txt"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    a = start(tmp_path_factory.mktemp("consec") / "data")
    add_user(a.data_dir, "yamada", "clerk", "clerk-pass-1", "山田 花子")
    add_user(a.data_dir, "kacho", "approver", "approver-pass-1")
    add_user(a.data_dir, "admin", "admin", "admin-pass-123")
    add_user(a.data_dir, "racer", "clerk", "racer-pass-1")
    add_user(a.data_dir, "鈴木", "clerk", "suzuki-pass-1")
    key = new_key(a.data_dir, "電子申請システム")
    with httpx.Client(base_url=a.api, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        r = c.post("/api/v1/submissions", data={"氏名": "山田 太郎"},
                   files=[("files", (n, f"{n} の内容です。\n".encode())) for n in NAMES])
        assert r.status_code == 202, r.text
        receipt = r.json()["receipt"]
        wait_done(c, r.json()["status_url"])
    yield {"app": a, "receipt": receipt}
    a.stop()


def _db(app) -> sqlite3.Connection:
    return sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3")


def _pre(c: httpx.Client) -> str:
    return re.search(r'name="pre" value="([^"]+)"', c.get("/login").text).group(1)


def _login(app, name: str, password: str) -> httpx.Client:
    c = httpx.Client(base_url=app.console, timeout=30)
    r = c.post("/login", data={"name": name, "password": password, "pre": _pre(c), "next": "/"})
    assert r.status_code == 303, r.text[:300]
    return c


def _csrf(c: httpx.Client, path: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', c.get(path).text).group(1)


def _job_ids(app) -> dict[str, int]:
    with _db(app) as db:
        return {n: i for i, n in db.execute("SELECT id, name FROM jobs")}


def _notice(html: str) -> str | None:
    m = re.search(r'<p class="notice"[^>]*>(.*?)</p>', html, re.S)
    return m.group(1) if m else None


def test_parallel_logins_cannot_beat_lockout(env):
    """M1: a burst of concurrent guesses gets at most MAX_FAILURES password checks, and the right
    password inside the burst never logs in once the burst has locked the account."""
    app = env["app"]
    n = 30
    right = {5, 15, 27}
    guesses = ["racer-pass-1" if i in right else f"wrong-{i}" for i in range(n)]
    results: list[tuple[int, bool] | None] = [None] * n
    barrier = threading.Barrier(n)

    def go(i: int) -> None:
        with httpx.Client(base_url=app.console, timeout=60) as c:
            pre = _pre(c)
            barrier.wait()
            r = c.post("/login", data={"name": "racer", "password": guesses[i], "pre": pre, "next": "/"})
            results[i] = (r.status_code, "ta_session" in r.headers.get("set-cookie", ""))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r is not None for r in results), results
    with _db(app) as db:
        rows = db.execute("SELECT seq, event, data FROM audit WHERE (event IN ('console.login_failed',"
                          " 'console.login') AND actor = 'racer') OR (event = 'user.locked' AND data LIKE"
                          " '%racer%') ORDER BY seq").fetchall()
    whys = [json.loads(d).get("why") for _, e, d in rows if e == "console.login_failed"]
    assert whys.count("bad password") <= MAX_FAILURES, whys
    assert len(whys) + sum(1 for _, e, _ in rows if e == "console.login") == n  # every attempt audited
    lock_seqs = [s for s, e, _ in rows if e == "user.locked"]
    assert len(lock_seqs) == 1, rows  # one lock for the whole burst
    logins = [s for s, e, _ in rows if e == "console.login"]
    assert all(s < lock_seqs[0] for s in logins), rows  # no login while locked
    for i in right:
        status, cookie = results[i]
        assert (status, cookie) in ((303, True), (401, False))
    assert sum(1 for s, _ in results if s == 303) == len(logins)

    # Afterwards the account stays locked for the right password too, until an admin unlocks it.
    with httpx.Client(base_url=app.console, timeout=30) as c:
        r = c.post("/login", data={"name": "racer", "password": "racer-pass-1", "pre": _pre(c), "next": "/"})
        assert r.status_code == 401 and "ロック" in r.text
    assert "locked" in ta("user", "list", data_dir=app.data_dir).stdout
    assert ta("user", "unlock", "--name", "racer", data_dir=app.data_dir).returncode == 0  # as `user add --name`
    _login(app, "racer", "racer-pass-1").close()


def test_sequential_lockout_still_counts_each_failure(env):
    """The reservation must not change the sequential rules: 4 failures then the right password logs in;
    5 failures lock."""
    app = env["app"]
    with httpx.Client(base_url=app.console, timeout=30) as c:
        def attempt(pw: str) -> httpx.Response:
            return c.post("/login", data={"name": "racer", "password": pw, "pre": _pre(c), "next": "/"})

        for _ in range(MAX_FAILURES - 1):
            assert attempt("nope-nope").status_code == 401
        assert attempt("racer-pass-1").status_code == 303
        for _ in range(MAX_FAILURES - 1):
            r = attempt("nope-nope")
            assert r.status_code == 401 and "ロック" not in r.text
        r = attempt("nope-nope")
        assert r.status_code == 401 and "ロックしました" in r.text
        assert attempt("racer-pass-1").status_code == 401
    old = ta("user", "unlock", "racer", data_dir=app.data_dir)  # the positional form of earlier versions
    assert old.returncode == 0 and "deprecated" in old.stderr and "--name" in old.stderr
    assert ta("user", "unlock", data_dir=app.data_dir).returncode == 2


BAD_IDS = ["9" * 25, str(2**63), "0", "-1", "abc", "１"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_out_of_range_ids_are_404(env, bad):
    """L1: ids SQLite cannot hold (or <= 0, or not a number) give the normal 404 page, never a 500."""
    app = env["app"]
    clerk, approver = _login(app, "yamada", "clerk-pass-1"), _login(app, "kacho", "approver-pass-1")
    try:
        ccs, acs = _csrf(clerk, "/deliveries"), _csrf(approver, "/approvals")
        b = quote(bad)
        responses = [clerk.get(f"/deliveries/{b}"), clerk.get(f"/deliveries/{b}/files/output"),
                     clerk.get(f"/originals/{b}"),
                     clerk.post(f"/deliveries/{b}/request", data={"csrf": ccs, "reason": "確認のため必要"}),
                     approver.post(f"/approvals/{b}", data={"csrf": acs, "decision": "approve"})]
        for r in responses:
            assert r.status_code == 404, (r.request.url, r.status_code)
            assert r.headers["content-type"].startswith("text/html") and "ページが見つかりません" in r.text
        # The biggest id SQLite holds is a normal "not found" too.
        assert clerk.get(f"/deliveries/{2**63 - 1}").status_code == 404
        assert clerk.get("/deliveries?page=99999999999999999999999").status_code == 200
        assert clerk.get("/deliveries?page=abc").status_code == 200
    finally:
        clerk.close()
        approver.close()
    log = (app.data_dir.parent / f"{app.data_dir.name}.log").read_text("utf-8", "replace")
    assert "OverflowError" not in log


def test_banner_shows_only_known_message_codes(env):
    """L8: `?msg=` selects one of our fixed texts; arbitrary text in the URL is never shown."""
    app = env["app"]
    job = _job_ids(app)["議事録.txt"]
    clerk, approver, admin = (_login(app, "yamada", "clerk-pass-1"), _login(app, "kacho", "approver-pass-1"),
                              _login(app, "admin", "admin-pass-123"))
    try:
        spoof = "パスワードが期限切れです。こちらから再設定してください"
        for c, path in ((clerk, f"/deliveries/{job}"), (approver, "/approvals"), (admin, "/admin")):
            r = c.get(path, params={"msg": spoof})
            assert r.status_code == 200 and spoof not in r.text and _notice(r.text) is None
            assert _notice(c.get(path, params={"msg": "nosuchcode"}).text) is None

        # Error and success after a request: codes in the redirect, our texts on the page.
        cs = _csrf(clerk, f"/deliveries/{job}")
        r = clerk.post(f"/deliveries/{job}/request", data={"csrf": cs, "reason": "短"})
        assert r.status_code == 303 and parse_qs(urlsplit(r.headers["location"]).query) == {"msg": ["reason_short"]}
        assert _notice(clerk.get(r.headers["location"]).text) == "申請理由を具体的に入力してください（4文字以上）"
        r = clerk.post(f"/deliveries/{job}/request", data={"csrf": cs, "reason": "内容の確認が必要なため"})
        assert _notice(clerk.get(r.headers["location"]).text) == "原本取り出しを申請しました。承認をお待ちください"
        r = clerk.post(f"/deliveries/{job}/request", data={"csrf": cs, "reason": "内容の確認が必要なため"})
        assert "すでに承認待ちの申請があります" in _notice(clerk.get(r.headers["location"]).text)

        # The approver: reject without a comment is refused, then rejected.
        with _db(app) as db:
            rid = db.execute("SELECT id FROM original_requests WHERE job_id = ? AND status = 'pending'",
                             (job,)).fetchone()[0]
        acs = _csrf(approver, "/approvals")
        r = approver.post(f"/approvals/{rid}", data={"csrf": acs, "decision": "reject"})
        assert _notice(approver.get(r.headers["location"]).text) == "却下する場合は理由（コメント）を入力してください"
        r = approver.post(f"/approvals/{rid}", data={"csrf": acs, "decision": "reject", "comment": "不要です"})
        assert _notice(approver.get(r.headers["location"]).text) == "却下しました"
        r = approver.post(f"/approvals/{rid}", data={"csrf": acs, "decision": "reject", "comment": "不要です"})
        assert _notice(approver.get(r.headers["location"]).text) == "この申請はすでに処理されています"

        # Admin unlock names the user: that part is signed for this session, so it cannot be forged.
        xcs = _csrf(admin, "/admin")
        r = admin.post("/admin/users/racer/unlock", data={"csrf": xcs})
        loc = r.headers["location"]
        assert _notice(admin.get(loc).text) == "racer のロックを解除しました"
        assert _notice(admin.get(loc.replace("arg=racer", "arg=" + quote(spoof))).text) is None
        assert _notice(admin.get("/admin", params={"msg": "unlocked", "arg": spoof}).text) is None
        other = _login(app, "admin", "admin-pass-123")  # another session: the same link shows nothing
        try:
            assert _notice(other.get(loc).text) is None
        finally:
            other.close()
        r = admin.post("/admin/users/nobody/unlock", data={"csrf": xcs})
        assert _notice(admin.get(r.headers["location"]).text) == "ユーザーが見つかりません"
    finally:
        for c in (clerk, approver, admin):
            c.close()


def _listed(c: httpx.Client, **params: str) -> list[str]:
    html = c.get("/deliveries", params=params).text
    body = html.split('<table class="list" id="deliveries">', 1)[1]
    return re.findall(r'<td class="name"><a href="/deliveries/\d+">([^<]+)</a>', body)


def test_search_ignores_width_and_space_forms(env):
    """L3: file-name search and the receipt filter match full/half-width and space variants (NFKC)."""
    app, receipt = env["app"], env["receipt"]
    c = _login(app, "yamada", "clerk-pass-1")
    try:
        for q in ("見積書（最終）", "見積書(最終)", "見積書（最終)"):
            assert _listed(c, q=q) == ["見積書（最終）.txt"], q
        for q in ("住民票 写し", "住民票　写し", "住民票  写し"):
            assert _listed(c, q=q) == ["住民票 写し.txt"], q
        for q in ("ABC報告", "abc報告", "ａｂｃ", "ＡＢＣ"):
            assert _listed(c, q=q) == ["ＡＢＣ報告.txt"], q
        assert _listed(c, q="100%") == [] and _listed(c, q="_") == []  # no LIKE wildcards
        assert sorted(_listed(c, q=".TXT")) == sorted(NAMES)
        wide = receipt.translate(str.maketrans("0123456789-", "０１２３４５６７８９－"))
        assert sorted(_listed(c, receipt=wide)) == sorted(NAMES)
        assert sorted(_listed(c, receipt=receipt, q="txt")) == sorted(NAMES)
        html = c.get("/deliveries", params={"q": "見積書(最終)"}).text
        assert "1 件" in html
        assert _listed(c, q="見積書(最終)", page="2") == []
    finally:
        c.close()


def test_cli_lists_align_wide_names(env):
    """Cosmetic: `user list` / `apikey list` pad by display width (wide characters count 2)."""
    app = env["app"]
    users = ta("user", "list", data_dir=app.data_dir).stdout.splitlines()
    roles = {"yamada": "clerk", "kacho": "approver", "admin": "admin", "racer": "clerk", "鈴木": "clerk"}
    cols = {display_width(users[0][:users[0].index("role")])}
    for line in users[1:]:
        name = line.split()[1]
        cols.add(display_width(line[:line.index(roles[name], line.index(name) + len(name))]))
    assert len(cols) == 1 and any("鈴木" in line for line in users), users
    keys = ta("apikey", "list", data_dir=app.data_dir).stdout.splitlines()
    assert any("電子申請システム" in line for line in keys)
    # The date after the client name (a random key prefix may hold "20" too).
    cols = {display_width(line[:line.index(word, line.index(after) + len(after))])
            for line in keys for word, after in (("created", "client"), ("20", "電子申請システム")) if after in line}
    assert len(cols) == 1, keys


def _wait_job(app, jid: int, timeout: float = 60) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _db(app) as db:
            status, verdict = db.execute("SELECT status, verdict FROM jobs WHERE id = ?", (jid,)).fetchone()
        if status in ("delivered", "blocked"):
            return status, verdict
        time.sleep(0.1)
    raise AssertionError(f"job {jid} not final")


def test_ppap_dropped_without_password_is_processed_with_the_one_a_clerk_enters(env):
    """A password-protected ZIP dropped in the drop folder is blocked; the clerk, who got the password
    another way, enters it on the report page and the quarantined original is sanitized and delivered.
    A wrong password gives another blocked notice; the password is audited by actor, never stored."""
    import io

    import pyzipper

    app = env["app"]
    buf = io.BytesIO()
    with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as z:
        z.setpassword("とどいた合言葉".encode())
        z.writestr("申請書.txt", "PPAPの中身です。\n".encode())
    box = app.data_dir / "dropbox" / "ppap"
    box.mkdir(parents=True, exist_ok=True)
    (box / ".資料.zip.part").write_bytes(buf.getvalue())
    (box / ".資料.zip.part").rename(box / "資料.zip")
    deadline = time.monotonic() + 60
    jid = None
    while jid is None and time.monotonic() < deadline:
        jid = _job_ids(app).get("資料.zip")
        time.sleep(0.1)
    assert jid and _wait_job(app, jid) == ("blocked", "blocked")
    c = _login(app, "yamada", "clerk-pass-1")
    page = c.get(f"/deliveries/{jid}").text
    assert 'id="password-retry"' in page
    for pw, want in (("まちがい", "blocked"), ("とどいた合言葉", "sanitized")):
        r = c.post(f"/deliveries/{jid}/password", data={"csrf": _csrf(c, f"/deliveries/{jid}"), "password": pw})
        assert r.status_code == 303
        new_id = int(urlsplit(r.headers["location"]).path.rsplit("/", 1)[1])
        assert new_id != jid and _wait_job(app, new_id)[1] in ((want,) if want == "blocked" else ("clean", want))
    # Once delivered, the file is not processed again (no second copy in the inbox).
    r = c.post(f"/deliveries/{jid}/password", data={"csrf": _csrf(c, f"/deliveries/{jid}"), "password": "x"})
    assert _notice(c.get(r.headers["location"]).text) == "このファイルはすでにパスワードを指定して配送済みです"
    out = app.data_dir / "inbox" / "ppap" / clock.day() / "資料.zip"
    # The delivered file supersedes its notices: the first one is gone, the failed retry left none.
    names = sorted(os.listdir(out.parent))
    assert out.is_file() and not [n for n in names if n.endswith(".blocked.json") or "(2)" in n], names
    report = (out.parent / "資料.zip.報告.txt").read_text("utf-8-sig")
    assert "判定：無害化済み" in report and "パスワードで開いて" in report and "送信者" not in report
    page = c.get(f"/deliveries/{jid}").text
    assert 'id="superseded"' in page and 'id="password-retry"' not in page
    import zipfile

    with zipfile.ZipFile(out) as z:
        assert z.read("申請書.txt").decode() == "PPAPの中身です。\n"
    with _db(app) as db:
        actors = [r[0] for r in db.execute("SELECT actor FROM audit WHERE event = 'job.password_retry'")]
        assert actors == ["yamada", "yamada"]  # the refused third one queued nothing
        first, *retries = db.execute("SELECT received_at FROM jobs WHERE name = '資料.zip' ORDER BY id").fetchall()
        assert len(retries) == 2 and all(r == first for r in retries)  # same dated folder, same retention
        assert db.execute("SELECT COUNT(*) FROM jobs WHERE password IS NOT NULL").fetchone()[0] == 0
    for f in (app.data_dir / "state").iterdir():
        if f.name.startswith("ledger.sqlite3"):
            assert "とどいた合言葉".encode() not in f.read_bytes()
    # The retry form is offered only for files blocked for want of a password.
    other = _job_ids(app)["議事録.txt"]
    assert 'id="password-retry"' not in c.get(f"/deliveries/{other}").text
    r = c.post(f"/deliveries/{other}/password", data={"csrf": _csrf(c, f"/deliveries/{other}"), "password": "x"})
    assert _notice(c.get(r.headers["location"]).text) == "このファイルはパスワードを指定して再処理する対象ではありません"


def test_form_only_submission_is_listed(env):
    """An e-application with fields but no attachments has no file row; the list still shows it, with a
    link to its form, and the receipt filter finds it."""
    app = env["app"]
    key = new_key(app.data_dir, "申請フォーム")
    with httpx.Client(base_url=app.api, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
        body = ("--XYZ\r\nContent-Disposition: form-data; name=\"氏名\"\r\n\r\n添付 なし\r\n"
                "--XYZ\r\nContent-Disposition: form-data; name=\"用件\"\r\n\r\n住所変更の相談\r\n--XYZ--\r\n")
        r = api.post("/api/v1/submissions", content=body.encode(),
                     headers={"Content-Type": "multipart/form-data; boundary=XYZ"})
        assert r.status_code == 202, r.text
        receipt = r.json()["receipt"]
        wait_done(api, r.json()["status_url"])
    c = _login(app, "yamada", "clerk-pass-1")
    page = c.get("/deliveries", params={"receipt": receipt}).text
    assert 'id="forms"' in page and f"/submissions/{receipt}/form" in page
    assert "住所変更の相談" in c.get(f"/submissions/{receipt}/form").text
    assert f"/submissions/{receipt}/form" not in c.get("/deliveries", params={"verdict": "clean"}).text
