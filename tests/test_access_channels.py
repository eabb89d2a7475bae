"""Access by department (issue 15, guarantee 7), attacked from outside against a real `transfer-agent serve`.

A clerk, an approver and an API key bound to 国保課 try every console page and every API route on the
objects of another channel (zeimu): its files, reports, downloads, form-only e-application, original
requests, password retry and status URL. Every route of both FastAPI apps must have an attack here: a
new route without one fails `test_every_route_is_attacked`. Channel names compare after NFKC and case
folding: files dropped in `dropbox/ＺＥＩＭＵ/` are zeimu's (its text-only policy, its inbox folder, its
clerks), and a clerk bound to `ｚｅｉｍｕ` is zeimu's clerk.
"""
from __future__ import annotations

import html
import io
import json
import re
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
import pyzipper
from starlette.routing import Mount

from tests.portal_helpers import CONFIG, add_user, new_key, start, ta, wait_done

ACCESS_CONFIG = CONFIG + '[channels.zeimu]\npolicy = "text-only"\n[channels."国保課"]\npolicy = "default"\n'
SECRET = "税務秘密"  # in every zeimu name: any page that shows it leaked
PW = {"kclerk": "kclerk-pass-1", "kappr": "kappr-pass-1", "zclerk": "zclerk-pass-1", "zappr": "zappr-pass-1",
      "nobody": "nobody-pass-1", "mover": "mover-pass-1", "admin": "admin-pass-123"}


def _drop(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.rename(path)


def _db(app) -> sqlite3.Connection:
    return sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3")


def _pre(c: httpx.Client) -> str:
    return re.search(r'name="pre" value="([^"]+)"', c.get("/login").text).group(1)


def _login(app, name: str) -> httpx.Client:
    c = httpx.Client(base_url=app.console, timeout=30)
    r = c.post("/login", data={"name": name, "password": PW[name], "pre": _pre(c), "next": "/"})
    assert r.status_code == 303, r.text[:300]
    return c


def _csrf(c: httpx.Client, path: str = "/requests") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', c.get(path).text).group(1)


def _final(app, names: list[str], timeout: float = 90) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _db(app) as db:
            db.row_factory = sqlite3.Row
            rows = {r["name"]: dict(r) for r in db.execute("SELECT * FROM jobs")}
        if all(n in rows and rows[n]["status"] in ("delivered", "blocked") for n in names):
            return rows
        time.sleep(0.2)
    raise AssertionError(f"not final: {names}")


def _fields_only(c: httpx.Client, fields: dict[str, str]) -> httpx.Response:
    """A form-only e-application (multipart/form-data without a file part, as a web form sends it)."""
    body = b"".join(f'--XYZ\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in fields.items()) + b"--XYZ--\r\n"
    return c.post("/api/v1/submissions", content=body, headers={"Content-Type": "multipart/form-data; boundary=XYZ"})


def _ppap() -> bytes:
    buf = io.BytesIO()
    with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as z:
        z.setpassword(b"aikotoba")
        z.writestr("中身.txt", "秘密の中身\n")
    return buf.getvalue()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    a = start(tmp_path_factory.mktemp("access") / "data", config=ACCESS_CONFIG)
    d = a.data_dir
    add_user(d, "kclerk", "clerk", PW["kclerk"], channels="国保課")
    add_user(d, "kappr", "approver", PW["kappr"], channels="国保課")
    add_user(d, "zclerk", "clerk", PW["zclerk"], channels="ｚｅｉｍｕ")  # full width: the same channel
    add_user(d, "zappr", "approver", PW["zappr"], channels="ZEIMU")
    add_user(d, "nobody", "clerk", PW["nobody"], channels="")  # bound to nothing
    add_user(d, "mover", "clerk", PW["mover"])  # all channels, rebound to 国保課 below
    add_user(d, "admin", "admin", PW["admin"])
    kkey, zkey = new_key(d, "国保システム", channels="国保課"), new_key(d, "税務システム", channels="zeimu")
    free_key = new_key(d, "未割当システム", channels="")
    # zeimu's files come through a folder spelled another way: its channel is still zeimu.
    _drop(d / "dropbox" / "ＺＥＩＭＵ" / f"{SECRET}.txt", "税務の秘密です\n".encode())
    _drop(d / "dropbox" / "ＺＥＩＭＵ" / f"{SECRET}.zip", _ppap())
    _drop(d / "dropbox" / "国保課" / "国保の書類.txt", "国保の書類です\n".encode())
    with httpx.Client(base_url=a.api, headers={"Authorization": f"Bearer {zkey}"}, timeout=30) as c:
        r = _fields_only(c, {"氏名": f"{SECRET}の申請者"})  # form only: no job row
        assert r.status_code == 202, r.text
        zform = r.json()
        r = c.post("/api/v1/submissions", data={"channel": "Zeimu"},
                   files=[("files", (f"{SECRET}申請.txt", "申請です\n".encode()))])
        assert r.status_code == 202, r.text
        zsub = {**wait_done(c, r.json()["status_url"]), "status_url": r.json()["status_url"]}
    rows = _final(a, [f"{SECRET}.txt", f"{SECRET}.zip", "国保の書類.txt", f"{SECRET}申請.txt"])
    zjob, zzip = rows[f"{SECRET}.txt"]["id"], rows[f"{SECRET}.zip"]["id"]
    # mover (all channels) asks for zeimu's original, zappr approves; zclerk asks too (pending).
    mover, zclerk, zappr = _login(a, "mover"), _login(a, "zclerk"), _login(a, "zappr")
    for c in (mover, zclerk):
        r = c.post(f"/deliveries/{zjob}/request", data={"csrf": _csrf(c, f"/deliveries/{zjob}"),
                                                        "reason": "税務の確認のため必要です"})
        assert r.status_code == 303 and "requested" in r.headers["location"], r.headers
    with _db(a) as db:
        moved, pending = (r[0] for r in db.execute("SELECT id FROM original_requests ORDER BY id"))
    r = zappr.post(f"/approvals/{moved}", data={"csrf": _csrf(zappr, "/approvals"), "decision": "approve",
                                               "comment": "確認済み"})
    assert "approved" in r.headers["location"], r.headers
    assert mover.get(f"/originals/{moved}").status_code == 200  # while mover reaches zeimu
    for c in (mover, zclerk, zappr):
        c.close()
    assert ta("user", "channels", "mover", "--channels", "国保課", data_dir=d).returncode == 0
    r = ta("exchange", "create", "--config", str(d.parent / f"{d.name}.toml"), "--channel", "国保課", "--expires",
           "1d", data_dir=d)
    assert r.returncode == 0, r.stderr
    klink = r.stdout.strip().splitlines()[-1]
    r = ta("exchange", "create", "--config", str(d.parent / f"{d.name}.toml"), "--channel", "zeimu", "--expires",
           "1d", "--title", f"{SECRET}の依頼", data_dir=d)
    assert r.returncode == 0, r.stderr
    with _db(a) as db:
        zrid = db.execute("SELECT id FROM upload_requests WHERE channel = 'zeimu'").fetchone()[0]
    yield {"app": a, "kkey": kkey, "zkey": zkey, "free_key": free_key, "zform": zform, "zsub": zsub,
           "zjob": zjob, "zzip": zzip, "moved": moved, "pending": pending, "rows": rows, "klink": klink,
           "zrid": zrid}
    a.stop()


def test_channel_identity_is_normalised_at_intake(env):
    """dropbox/ＺＥＩＭＵ/ and an API request naming "Zeimu" are the channel zeimu: its policy (text-only)
    judged them and they went to inbox/zeimu/."""
    rows = env["rows"]
    for name in (f"{SECRET}.txt", f"{SECRET}申請.txt"):
        assert rows[name]["channel"] == "zeimu"
        assert rows[name]["policy"].startswith("text-only@"), rows[name]["policy"]
        assert rows[name]["inbox_dir"].startswith("inbox/zeimu/")
    assert env["zsub"]["channel"] == "zeimu"
    assert rows["国保の書類.txt"]["policy"].startswith("default@")
    assert rows[f"{SECRET}.txt"]["source_key"] == "dropbox:zeimu"
    assert rows[f"{SECRET}申請.txt"]["source_key"].startswith("api:")


# ---------------------------------------------------------------------------- the console, route by route

def _no_leak(r: httpx.Response, env) -> None:
    body = re.sub(r"<input[^>]*>", "", r.text)  # the search form echoes what was searched for
    for secret in (SECRET, env["zform"]["receipt"], env["zsub"]["receipt"], ">zeimu<", '"zeimu"'):
        assert secret not in body, (r.request.method, str(r.request.url), r.status_code, secret)
    assert "content-disposition" not in r.headers, r.request.url


def _c_home(s):
    r = s["k"].get("/")
    assert r.status_code == 303 and r.headers["location"] == "/deliveries"
    return [r]


def _c_login_form(s):
    return [s["anon"].get("/login", params={"next": f"/deliveries/{s['env']['zjob']}"})]


def _c_login(s):
    # Logging in with another channel's account name reveals nothing either (wrong password).
    c = s["anon"]
    r = c.post("/login", data={"name": "zclerk", "password": "wrong-wrong", "pre": _pre(c), "next": "/"})
    assert r.status_code == 401
    return [r]


def _c_logout(s):
    c = _login(s["app"], "kclerk")
    r = c.post("/logout", data={"csrf": _csrf(c)})
    assert r.status_code == 303
    assert c.get("/deliveries").status_code == 303  # the session is gone
    c.close()
    return [r]


def _c_deliveries(s):
    env, k = s["env"], s["k"]
    out = []
    for params in ({}, {"channel": "zeimu"}, {"channel": "ＺＥＩＭＵ"}, {"q": SECRET}, {"verdict": "blocked"},
                   {"receipt": env["zform"]["receipt"]}, {"receipt": env["zsub"]["receipt"]}, {"page": "2"}):
        r = k.get("/deliveries", params=params)
        assert r.status_code == 200
        out.append(r)
    assert "国保の書類.txt" in k.get("/deliveries").text  # its own channel is there
    return out


def _c_report(s):
    return [s["k"].get(f"/deliveries/{s['env']['zjob']}"), s["k"].get(f"/deliveries/{s['env']['zzip']}")]


def _c_download(s):
    out = []
    for kind in ("output", "text", "sidecar", "notice"):
        for jid in (s["env"]["zjob"], s["env"]["zzip"]):
            r = s["k"].get(f"/deliveries/{jid}/files/{kind}")
            assert r.status_code == 404
            out.append(r)
    return out


def _c_request(s):
    env, k = s["env"], s["k"]
    r = k.post(f"/deliveries/{env['zjob']}/request", data={"csrf": _csrf(k), "reason": "他課の原本がほしい"})
    assert r.status_code == 404
    with _db(s["app"]) as db:
        assert db.execute("SELECT COUNT(*) FROM original_requests WHERE requester_id ="
                          " (SELECT id FROM console_users WHERE name = 'kclerk')").fetchone()[0] == 0
    return [r]


def _c_password(s):
    env, k = s["env"], s["k"]
    with _db(s["app"]) as db:
        before = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    r = k.post(f"/deliveries/{env['zzip']}/password", data={"csrf": _csrf(k), "password": "aikotoba"})
    assert r.status_code == 404
    with _db(s["app"]) as db:
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == before  # no retry queued
    return [r]


def _c_requests(s):
    # mover asked for zeimu's original while it reached zeimu; bound to 国保課 now, it no longer sees it.
    m = s["mover"]
    r = m.get("/requests")
    assert r.status_code == 200
    return [r, s["k"].get("/requests")]


def _c_original(s):
    env = s["env"]
    out = [s["mover"].get(f"/originals/{env['moved']}"), s["k"].get(f"/originals/{env['moved']}"),
           s["kappr"].get(f"/originals/{env['moved']}")]
    assert all(r.status_code == 404 for r in out), [r.status_code for r in out]
    return out


def _c_form(s):
    env = s["env"]
    out = [s["k"].get(f"/submissions/{env['zform']['receipt']}/form"),
           s["k"].get(f"/submissions/{env['zsub']['receipt']}/form")]
    assert all(r.status_code == 404 for r in out)
    return out


def _c_approvals(s):
    r = s["kappr"].get("/approvals")
    assert r.status_code == 200 and "承認待ちの申請はありません" in r.text
    assert 'id="pending-count"' not in r.text  # zeimu's pending request is not counted either
    return [r]


def _c_decide(s):
    env, a = s["env"], s["kappr"]
    r = a.post(f"/approvals/{env['pending']}", data={"csrf": _csrf(a, "/approvals"), "decision": "approve",
                                                    "comment": "他課だが承認"})
    assert r.status_code == 303 and "msg=not_found" in r.headers["location"]
    with _db(s["app"]) as db:
        assert db.execute("SELECT status FROM original_requests WHERE id = ?",
                          (env["pending"],)).fetchone()[0] == "pending"
    return [r]


def _c_admin(s):
    r = s["k"].get("/admin")
    assert r.status_code == 403
    return [r]


def _c_unlock(s):
    r = s["k"].post("/admin/users/zclerk/unlock", data={"csrf": _csrf(s["k"])})
    assert r.status_code == 403
    return [r]


def _c_static(s):
    r = s["k"].get("/static/console.css")
    assert r.status_code == 200 and "text/css" in r.headers["content-type"]
    return [r]


def _c_exchange_list(s):
    r = s["k"].get("/exchange")
    assert r.status_code == 200 and "国保課" in r.text  # its own channel is offered, zeimu's request is not listed
    return [r]


def _c_exchange_create(s):
    k = s["k"]
    out = []
    for channel in ("zeimu", "ＺＥＩＭＵ"):
        r = k.post("/exchange", data={"csrf": _csrf(k), "channel": channel, "title": "他課への依頼", "expires": "1d"})
        assert r.status_code == 422
        out.append(r)
    with _db(s["app"]) as db:
        assert db.execute("SELECT COUNT(*) FROM upload_requests WHERE created_by = 'kclerk'").fetchone()[0] == 0
    return out


def _c_exchange_detail(s):
    r = s["k"].get(f"/exchange/{s['env']['zrid']}")
    assert r.status_code == 404
    return [r]


def _c_exchange_revoke(s):
    k = s["k"]
    r = k.post(f"/exchange/{s['env']['zrid']}/revoke", data={"csrf": _csrf(k)})
    assert r.status_code == 404
    with _db(s["app"]) as db:
        assert db.execute("SELECT revoked_at FROM upload_requests WHERE id = ?", (s["env"]["zrid"],)).fetchone()[0] is None
    return [r]


def _c_submissions(s):
    env, k = s["env"], s["k"]
    out = []
    for params in ({}, {"channel": "zeimu"}, {"channel": "ＺＥＩＭＵ"}, {"receipt": env["zsub"]["receipt"]},
                   {"flagged": "1"}):
        r = k.get("/submissions", params=params)
        assert r.status_code == 200
        out.append(r)
    return out


def _c_submission(s):
    env = s["env"]
    out = [s["k"].get(f"/submissions/{env['zform']['receipt']}"), s["k"].get(f"/submissions/{env['zsub']['receipt']}")]
    assert all(r.status_code == 404 for r in out)
    return out


def _c_tally(s):
    out = []
    for path in ("/tally", "/tally.csv", "/tally.svg"):
        for channel in ("zeimu", "ＺＥＩＭＵ"):
            r = s["k"].get(path, params={"channel": channel})
            assert r.status_code == 404, (path, channel)
            out.append(r)
    return out


CONSOLE_ATTACKS = {
    ("GET", "/"): _c_home, ("GET", "/login"): _c_login_form, ("POST", "/login"): _c_login,
    ("POST", "/logout"): _c_logout, ("GET", "/deliveries"): _c_deliveries, ("GET", "/deliveries/{job_id}"): _c_report,
    ("GET", "/deliveries/{job_id}/files/{kind}"): _c_download, ("POST", "/deliveries/{job_id}/request"): _c_request,
    ("POST", "/deliveries/{job_id}/password"): _c_password, ("GET", "/requests"): _c_requests,
    ("GET", "/originals/{request_id}"): _c_original, ("GET", "/submissions/{receipt}/form"): _c_form,
    ("GET", "/approvals"): _c_approvals, ("POST", "/approvals/{request_id}"): _c_decide,
    ("GET", "/admin"): _c_admin, ("POST", "/admin/users/{name}/unlock"): _c_unlock,
    ("GET", "/static/{path}"): _c_static,
    ("GET", "/exchange"): _c_exchange_list, ("POST", "/exchange"): _c_exchange_create,
    ("GET", "/exchange/{rid}"): _c_exchange_detail, ("POST", "/exchange/{rid}/revoke"): _c_exchange_revoke,
    ("GET", "/submissions"): _c_submissions, ("GET", "/submissions/{receipt}"): _c_submission,
    ("GET", "/tally"): _c_tally, ("GET", "/tally.csv"): _c_tally, ("GET", "/tally.svg"): _c_tally,
}


# ---------------------------------------------------------------------------- the API, route by route

def _api(s, key: str | None = None) -> httpx.Client:
    key = key or s["env"]["kkey"]
    return httpx.Client(base_url=s["app"].api, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _a_submit(s):
    out = []
    with _api(s) as c:
        for channel in ("zeimu", "ZEIMU", "ｚｅｉｍｕ", "Zeimu"):
            r = c.post("/api/v1/submissions", data={"channel": channel}, files=[("files", ("a.txt", b"x"))])
            assert r.status_code == 403 and r.json()["error"] == "channel_forbidden", r.text
            assert r.json()["message_ja"]
            out.append(r)
        # Without a channel, a key bound to one channel submits there.
        r = _fields_only(c, {"氏名": "国保の申請者"})
        assert r.status_code == 202 and c.get(r.json()["status_url"]).json()["channel"] == "国保課"
    with _api(s, s["env"]["free_key"]) as c:  # a key bound to nothing submits nowhere
        for data in ({}, {"channel": "国保課"}):
            r = c.post("/api/v1/submissions", data=data, files=[("files", ("a.txt", b"x"))])
            assert r.status_code == 403, r.text
            out.append(r)
    return out


def _a_status(s):
    env = s["env"]
    out = []
    with _api(s) as c:
        for sub in (env["zform"], env["zsub"]):
            r = c.get(sub["status_url"])
            assert r.status_code == 404 and r.json()["error"] == "not_found"
            out.append(r)
    with _api(s, env["zkey"]) as c:  # its own key reads it
        assert c.get(env["zform"]["status_url"]).status_code == 200
    return out


def _a_healthz(s):
    r = httpx.get(s["app"].api + "/healthz", timeout=10)
    assert r.status_code == 200
    return [r]


def _a_metrics(s):
    # Channel names are in the metrics: only the monitoring hosts ([api] metrics_allow) read them.
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=10) as c:
        r = c.get(s["app"].api + "/metrics", headers={"Authorization": f"Bearer {s['env']['kkey']}"})
    assert r.status_code == 404
    return [r]


def _a_docs(s):
    out = []
    for path in ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"):
        r = httpx.get(s["app"].api + path, timeout=10)
        assert r.status_code in (200, 404)
        out.append(r)
    return out


def _u_page(s):
    # A link is its channel's: 国保課's page shows 国保課 only.
    r = httpx.get(s["env"]["klink"], timeout=30)
    assert r.status_code == 200 and "国保課" in r.text
    forged = httpx.get(s["app"].api + "/u/" + "A" * 43, timeout=30)
    assert forged.status_code in (404, 410) and "国保課" not in forged.text
    return [r, forged]


def _u_post(s):
    """The page's form cannot redirect the files to another channel: a `channel` field is refused."""
    with httpx.Client(timeout=30) as c:
        page = c.get(s["env"]["klink"])
        action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
        fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
        r = c.post(s["app"].api + action, headers={"Origin": s["app"].api},
                   data={**fields, "氏名": "山田", "channel": "zeimu"}, files=[("files", ("a.txt", b"x"))])
    assert r.status_code == 422 and "このフォームにない項目" in html.unescape(r.text), r.text[:500]
    with _db(s["app"]) as db:
        assert db.execute("SELECT COUNT(*) FROM submissions WHERE request_id IS NOT NULL").fetchone()[0] == 0
    return [r]


def _s_status(s):
    # The status page answers its own token only: neither a guess nor another submission's API id opens it.
    out = [httpx.get(s["app"].api + "/s/" + "B" * 43, timeout=30),
           httpx.get(s["app"].api + "/s/" + s["env"]["zsub"]["id"], timeout=30)]
    assert all(r.status_code == 404 for r in out)
    return out


def _a_channel_form(s):
    out = []
    with _api(s) as c:
        for channel in ("zeimu", "ＺＥＩＭＵ"):
            r = c.get(f"/api/v1/channels/{channel}/form")
            assert r.status_code == 403 and r.json()["error"] == "channel_forbidden", r.text
            out.append(r)
        assert c.get("/api/v1/channels/国保課/form").json()["channel"] == "国保課"  # its own
    return out


def _u_css(s):
    r = httpx.get(s["app"].api + "/assets/upload.css", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    return [r]


API_ATTACKS = {
    ("POST", "/api/v1/submissions"): _a_submit, ("GET", "/api/v1/submissions/{submission_id}"): _a_status,
    ("GET", "/healthz"): _a_healthz, ("GET", "/metrics"): _a_metrics,
    ("GET", "/docs"): _a_docs, ("GET", "/docs/oauth2-redirect"): _a_docs, ("GET", "/redoc"): _a_docs,
    ("GET", "/openapi.json"): _a_docs,
    ("GET", "/u/{token}"): _u_page, ("POST", "/u/{token}"): _u_post, ("GET", "/s/{token}"): _s_status,
    ("GET", "/assets/upload.css"): _u_css, ("GET", "/api/v1/channels/{channel}/form"): _a_channel_form,
}


def _routes(routes, prefix: str = "") -> set[tuple[str, str]]:
    """(method, path) of every route, into included routers (FastAPI keeps those apart since 0.16x)."""
    out: set[tuple[str, str]] = set()
    for r in routes:
        if isinstance(r, Mount):
            out.add(("GET", prefix + r.path + "/{path}"))
        elif hasattr(r, "original_router"):
            out |= _routes(r.original_router.routes, prefix + getattr(r.include_context, "prefix", ""))
        else:
            out |= {(m, prefix + r.path) for m in getattr(r, "methods", None) or () if m != "HEAD"}
    return out


def _app_routes(app) -> set[tuple[str, str]]:
    found = _routes(app.routes)
    if app.openapi_url:  # the schema's view of the same app: the walk above missed nothing
        schema = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}
        assert schema <= found, schema - found
    return found


def test_every_route_is_attacked(tmp_path):
    """The routes of both apps, enumerated from the FastAPI apps themselves: a new one needs an attack."""
    from transfer_agent.api_app import create_app
    from transfer_agent.config import load_config
    from transfer_agent.console import build_console
    from transfer_agent.internet import InternetSide
    from transfer_agent.ledger import Ledger

    cfg = load_config(data_dir=tmp_path / "data")
    cfg.state.mkdir(parents=True)
    side = InternetSide(cfg)
    try:
        assert _app_routes(create_app(side)) == set(API_ATTACKS)
    finally:
        side.ledger.close()
    ledger = Ledger(tmp_path / "console.sqlite3")
    try:  # with the configuration: the upload requests, submissions and tallies too
        assert _app_routes(build_console(ledger, tmp_path, cfg=cfg)) == set(CONSOLE_ATTACKS)
    finally:
        ledger.close()


def test_clerk_of_another_channel_gets_nothing_on_any_console_page(env):
    app = env["app"]
    s = {"app": app, "env": env, "k": _login(app, "kclerk"), "kappr": _login(app, "kappr"),
         "mover": _login(app, "mover"), "anon": httpx.Client(base_url=app.console, timeout=30)}
    try:
        for attack in CONSOLE_ATTACKS.values():
            for r in attack(s):
                _no_leak(r, env)
        # The same pages show zeimu's own clerk its files (the attacks above are not vacuous).
        z = _login(app, "zclerk")
        assert SECRET in z.get("/deliveries").text and z.get(f"/deliveries/{env['zjob']}").status_code == 200
        assert z.get(f"/submissions/{env['zform']['receipt']}/form").status_code == 200
        z.close()
    finally:
        for c in s.values():
            if isinstance(c, httpx.Client):
                c.close()


def test_unbound_clerk_sees_nothing(env):
    app = env["app"]
    c = _login(app, "nobody")
    try:
        r = c.get("/deliveries")
        assert r.status_code == 200 and 'id="unbound"' in r.text and "国保の書類" not in r.text
        _no_leak(r, env)
        assert c.get(f"/deliveries/{env['zjob']}").status_code == 404
    finally:
        c.close()
    listing = ta("user", "list", data_dir=app.data_dir).stdout
    assert re.search(r"nobody\s+clerk\s+\S+ \S+( JST)?\s+\(none\)", listing), listing  # last login shows its zone


def test_api_key_of_another_channel_gets_nothing_on_any_route(env):
    s = {"app": env["app"], "env": env}
    for route, attack in API_ATTACKS.items():
        for r in attack(s):
            assert SECRET not in r.text and env["zsub"]["receipt"] not in r.text, route
    with _db(env["app"]) as db:
        audit = [json.loads(d) for (d,) in db.execute("SELECT data FROM audit WHERE event = 'apikey.created'")]
    assert {a["client"]: (a["channels"], a["all_channels"]) for a in audit}["国保システム"] == (["国保課"], False)
