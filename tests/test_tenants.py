"""Tenants of the security cloud (issue 19), attacked from outside against a real `transfer-agent serve`.

Two municipalities share one appliance: naha (channels naha-kokuho, naha-zeimu) and nago
(nago-kokuho); a third channel, kokuho, is the implicit default tenant's. naha has real jobs (a
clean file, a PPAP archive), a form-only and a file e-application through its API key, original
requests (one approved, one pending) and an upload link. Then nago's admin and clerk, the default
tenant's admin (who reaches "every channel" of a single box), and nago's and the default tenant's
API keys try every console page and every API route on naha's objects: lists, search,
detail, downloads, original requests, approvals, upload requests, submissions, tallies, metrics,
status URLs. Another tenant's object answers exactly as a missing one (404, or the unknown-channel
answer), never 403. The routes are enumerated from the FastAPI apps: a new route without an attack
here fails `test_every_route_has_a_tenant_attack`. The whole module runs on SQLite and on the real
PostgreSQL (when it is up).
"""
from __future__ import annotations

import html
import io
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import pyzipper

from tests.cloud_services import NEED_PG, drop_schema, new_schema_url, pg_up
from tests.portal_helpers import CONFIG, start, ta, wait_done
from tests.test_access_channels import _app_routes
from transfer_agent import apikeys, exchange, tenants, users
from transfer_agent.channels import Scope
from transfer_agent.ledger import Ledger

SECRET = "那覇秘密"  # in every name of naha's: any page that shows it leaked
NAHA = ("naha-kokuho", "naha-zeimu")
CONFIG_T = CONFIG + "".join(f'[channels."{c}"]\npolicy = "default"\n' for c in (*NAHA, "nago-kokuho", "kokuho"))
PW = {n: f"{n}-pass-123" for n in ("naclerk", "naappr", "nbclerk", "nbadmin", "dadmin", "pref")}


def _drop(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.rename(path)


def _ppap() -> bytes:
    buf = io.BytesIO()
    with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as z:
        z.setpassword(b"aikotoba")
        z.writestr("中身.txt", "秘密の中身\n")
    return buf.getvalue()


def _pre(c: httpx.Client) -> str:
    return re.search(r'name="pre" value="([^"]+)"', c.get("/login").text).group(1)


def _login(env, name: str) -> httpx.Client:
    c = httpx.Client(base_url=env["app"].console, timeout=30)
    r = c.post("/login", data={"name": name, "password": PW[name], "pre": _pre(c), "next": "/"})
    assert r.status_code == 303, r.text[:300]
    return c


_CSRF: dict[int, str] = {}


def _csrf(c: httpx.Client, path: str = "/requests") -> str:
    """The session's CSRF token (one per session: read once per client)."""
    if id(c) not in _CSRF:
        _CSRF[id(c)] = re.search(r'name="csrf" value="([^"]+)"', c.get(path).text).group(1)
    return _CSRF[id(c)]


def _final(led: Ledger, names: list[str], timeout: float = 90) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = {r["name"]: dict(r) for r in led.query("SELECT * FROM jobs")}
        if all(n in rows and rows[n]["status"] in ("delivered", "blocked") for n in names):
            return rows
        time.sleep(0.2)
    raise AssertionError(f"not final: {names}")


def _fields_only(c: httpx.Client, fields: dict[str, str], channel: str) -> httpx.Response:
    """A form-only e-application (multipart without a file part, as a web form sends it)."""
    body = b"".join(f'--XYZ\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in {**fields, "channel": channel}.items()) + b"--XYZ--\r\n"
    return c.post("/api/v1/submissions", content=body, headers={"Content-Type": "multipart/form-data; boundary=XYZ"})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request, tmp_path_factory):
    data = tmp_path_factory.mktemp(f"tenants-{request.param}") / "data"
    dbargs: list[str] = []
    schema = None
    if request.param == "postgresql":
        if not pg_up():
            pytest.skip(NEED_PG)
        url, schema = new_schema_url()
        dbargs = ["--database", url]
    state = data / "state"
    state.mkdir(parents=True)
    for c in (*NAHA, "nago-kokuho", "kokuho"):
        (data / "dropbox" / c).mkdir(parents=True, exist_ok=True)
    # The prefecture's operator creates a municipality, its clerk and its key with the CLI, while the
    # appliance starts (accounts and tenants are read at each request: nothing needs a restart).
    r = ta("tenant", "create", "Nago", "--channels", "nago-kokuho", "--display-name", "名護市", *dbargs, data_dir=data)
    assert r.returncode == 0, r.stderr
    pool = ThreadPoolExecutor(3)
    starting = pool.submit(start, data, *dbargs, config=CONFIG_T)
    clerk = pool.submit(ta, "user", "add", "--name", "nbclerk", "--role", "clerk", "--tenant", "nago", "--all-channels",
                        *dbargs, data_dir=data, stdin=PW["nbclerk"] + "\n")
    key = pool.submit(ta, "apikey", "create", "--client", "名護システム", "--tenant", "NAGO", "--all-channels", *dbargs,
                      data_dir=data)
    # ... and the rest in-process (the same functions the CLI calls; a CLI start takes seconds here).
    led = Ledger(dbargs[1] if dbargs else state / "ledger.sqlite3", anchor_path=state / "audit.anchor")
    tenants.create(led, "naha", list(NAHA), "那覇市")
    with pytest.raises(tenants.TenantError, match="owned by another tenant"):
        tenants.create(led, "naha2", ["NAGO-KOKUHO"])
    with pytest.raises(tenants.TenantError, match="not of tenant"):  # a binding never reaches past the tenant
        users.add_user(led, "sneaky", "clerk", "sneaky-pass-1", scope=Scope(False, ["naha-kokuho"]), tenant="nago")
    for name, role, tenant in (("naclerk", "clerk", "naha"), ("naappr", "approver", "naha"),
                               ("nbadmin", "admin", "nago"),
                               ("dadmin", "admin", None), ("pref", "prefecture", None)):
        users.add_user(led, name, role, PW[name], scope=Scope(True), tenant=tenant)
    _row, nakey = apikeys.create_key(led, "那覇システム" + SECRET, scope=Scope(True), tenant="naha")
    _row, dkey = apikeys.create_key(led, "既定システム", scope=Scope(True))
    _req, natoken = exchange.create(led, channel="naha-kokuho", form="default", title=f"{SECRET}の依頼",
                                    expires_at=time.time() + 86400, actor="naclerk")
    nbreq, nbtoken = exchange.create(led, channel="nago-kokuho", form="default", title="名護の依頼",
                                     expires_at=time.time() + 86400, actor="nbclerk")
    for r in (clerk.result(), key.result()):
        assert r.returncode == 0, r.stderr
    nbkey = key.result().stdout.strip().splitlines()[-1]
    app = starting.result()
    pool.shutdown()
    try:
        _drop(data / "dropbox" / "naha-kokuho" / f"{SECRET}.txt", "那覇の秘密です\n".encode())
        _drop(data / "dropbox" / "naha-kokuho" / f"{SECRET}.zip", _ppap())
        _drop(data / "dropbox" / "nago-kokuho" / "名護の書類.txt", "名護の書類です\n".encode())
        _drop(data / "dropbox" / "kokuho" / "既定の書類.txt", "既定の書類です\n".encode())
        with httpx.Client(base_url=app.api, headers={"Authorization": f"Bearer {nakey}"}, timeout=30) as c:
            r = _fields_only(c, {"氏名": f"{SECRET}の申請者"}, "naha-zeimu")
            assert r.status_code == 202, r.text
            naform = r.json()
            r = c.post("/api/v1/submissions", data={"channel": "naha-zeimu"},
                       files=[("files", (f"{SECRET}申請.txt", "申請です\n".encode()))])
            assert r.status_code == 202, r.text
            nasub = {**wait_done(c, r.json()["status_url"]), "status_url": r.json()["status_url"]}
        with httpx.Client(base_url=app.api, headers={"Authorization": f"Bearer {nbkey}"}, timeout=30) as c:
            r = c.post("/api/v1/submissions", files=[("files", ("名護申請.txt", "申請です\n".encode()))])
            assert r.status_code == 202, r.text  # no channel named: nago's only channel
            nbsub = wait_done(c, r.json()["status_url"])
            assert nbsub["channel"] == "nago-kokuho"
        rows = _final(led, [f"{SECRET}.txt", f"{SECRET}.zip", "名護の書類.txt", "既定の書類.txt", f"{SECRET}申請.txt"])
        najob, nazip = rows[f"{SECRET}.txt"]["id"], rows[f"{SECRET}.zip"]["id"]
        # naha's clerk asks for an original, naha's approver approves it and asks for one too (pending).
        e = {"app": app}
        naclerk, naappr = _login(e, "naclerk"), _login(e, "naappr")

        def ask(c: httpx.Client) -> None:
            r = c.post(f"/deliveries/{najob}/request", data={"csrf": _csrf(c, f"/deliveries/{najob}"),
                                                            "reason": "那覇の確認のため必要です"})
            assert r.status_code == 303 and "requested" in r.headers["location"], r.headers

        ask(naclerk)
        approved = led.one("SELECT MAX(id) FROM original_requests")[0]
        r = naappr.post(f"/approvals/{approved}", data={"csrf": _csrf(naappr, "/approvals"), "decision": "approve",
                                                       "comment": "確認済み"})
        assert "approved" in r.headers["location"], r.headers
        ask(naappr)
        pending = led.one("SELECT MAX(id) FROM original_requests")[0]
        assert naclerk.get(f"/originals/{approved}").status_code == 200
        naclerk.close()
        naappr.close()
        narid = led.one("SELECT id FROM upload_requests WHERE channel = 'naha-kokuho'")[0]
        yield {"app": app, "led": led, "data": data, "dbargs": dbargs, "nakey": nakey, "nbkey": nbkey, "dkey": dkey,
               "naform": naform, "nasub": nasub, "najob": najob, "nazip": nazip, "approved": approved,
               "pending": pending, "narid": narid, "natoken": natoken, "nbtoken": nbtoken, "nbrid": nbreq.id,
               "backend": request.param}
    finally:
        app.stop()
        led.close()
        if schema:
            drop_schema(schema)


# ---------------------------------------------------------------------------- the console, route by route

def _no_leak(r: httpx.Response, env) -> None:
    body = re.sub(r"<input[^>]*>", "", r.text)  # the search form echoes what was searched for
    secrets = [SECRET, env["naform"]["receipt"], env["nasub"]["receipt"], "naclerk", "naappr", "那覇",
               *(f">{c}<" for c in NAHA), *(f'"{c}"' for c in NAHA), *(f"{c}（" for c in NAHA)]
    for secret in secrets:
        assert secret not in body, (r.request.method, str(r.request.url), r.status_code, secret)
    assert "content-disposition" not in r.headers, r.request.url


def _c_home(s, c):
    r = c.get("/")
    assert r.status_code == 303
    return [r]


def _c_login_form(s, c):
    return [s["anon"].get("/login", params={"next": f"/deliveries/{s['env']['najob']}"})]


def _c_login(s, c):
    # Another tenant's account name answers like any wrong name (and reveals nothing).
    a = s["anon"]
    out = []
    for name in ("naclerk", "no-such-user"):
        r = a.post("/login", data={"name": name, "password": "wrong-wrong", "pre": _pre(a), "next": "/"})
        assert r.status_code == 401
        out.append(r)
    def page(r: httpx.Response) -> str:
        return re.sub(r"<input[^>]*>", "", r.text)  # the form echoes the typed name and a fresh token

    assert page(out[0]) == page(out[1])
    return out[1:]


def _c_logout(s, c):
    return [s["anon"].post("/logout", data={"csrf": "x"})]  # no session: to the login page


def _c_deliveries(s, c):
    env = s["env"]
    out = []
    for params in ({}, {"channel": NAHA[0]}, {"channel": "ＮＡＨＡ-ＫＯＫＵＨＯ"}, {"q": SECRET}, {"q": "秘密"},
                   {"verdict": "blocked"}, {"receipt": env["naform"]["receipt"]}, {"receipt": env["nasub"]["receipt"]},
                   {"page": "2"}):
        r = c.get("/deliveries", params=params)
        assert r.status_code == 200
        out.append(r)
    return out


def _c_report(s, c):
    out = [c.get(f"/deliveries/{s['env']['najob']}"), c.get(f"/deliveries/{s['env']['nazip']}")]
    missing = c.get("/deliveries/999999")
    assert all(r.status_code == 404 and r.text == missing.text for r in out)  # exactly as a missing one
    return out


def _c_download(s, c):
    out = []
    for kind in ("output", "text", "sidecar", "notice"):
        for jid in (s["env"]["najob"], s["env"]["nazip"]):
            r = c.get(f"/deliveries/{jid}/files/{kind}")
            assert r.status_code == 404
            out.append(r)
    return out


def _c_request(s, c):
    env = s["env"]
    before = env["led"].one("SELECT COUNT(*) FROM original_requests")[0]
    r = c.post(f"/deliveries/{env['najob']}/request", data={"csrf": _csrf(c), "reason": "他の団体の原本がほしい"})
    assert r.status_code == 404
    assert env["led"].one("SELECT COUNT(*) FROM original_requests")[0] == before
    return [r]


def _c_password(s, c):
    env = s["env"]
    before = env["led"].one("SELECT COUNT(*) FROM jobs")[0]
    r = c.post(f"/deliveries/{env['nazip']}/password", data={"csrf": _csrf(c), "password": "aikotoba"})
    assert r.status_code == 404
    assert env["led"].one("SELECT COUNT(*) FROM jobs")[0] == before  # no retry queued
    return [r]


def _c_requests(s, c):
    r = c.get("/requests")
    assert r.status_code == 200
    return [r]


def _c_original(s, c):
    out = [c.get(f"/originals/{s['env']['approved']}"), c.get(f"/originals/{s['env']['pending']}")]
    assert all(r.status_code == 404 for r in out), [r.status_code for r in out]
    return out


def _c_form(s, c):
    env = s["env"]
    out = [c.get(f"/submissions/{env['naform']['receipt']}/form"), c.get(f"/submissions/{env['nasub']['receipt']}/form")]
    assert all(r.status_code == 404 for r in out)
    return out


def _c_approvals(s, c):
    r = c.get("/approvals")
    assert r.status_code in (200, 403)
    assert 'id="pending-count"' not in r.text  # naha's pending request is not counted
    return [r]


def _c_decide(s, c):
    env = s["env"]
    out = []
    for rid in (env["pending"], env["approved"]):
        r = c.post(f"/approvals/{rid}", data={"csrf": _csrf(c), "decision": "reject", "comment": "他の団体だが却下"})
        assert r.status_code == 403 or (r.status_code == 303 and "msg=not_found" in r.headers["location"]), r.headers
        out.append(r)
    assert env["led"].one("SELECT status FROM original_requests WHERE id = ?", (env["pending"],))[0] == "pending"
    return out


def _c_admin(s, c):
    r = c.get("/admin")
    assert r.status_code in (200, 403)
    if r.status_code == 200:
        assert 'id="tenants"' not in r.text  # the tenant list is the prefecture's
    return [r]


def _c_unlock(s, c):
    r = c.post("/admin/users/naclerk/unlock", data={"csrf": _csrf(c)})
    assert r.status_code == 403 or (r.status_code == 303 and "msg=no_user" in r.headers["location"]), r.headers
    return [r]


def _c_static(s, c):
    r = c.get("/static/console.css")
    assert r.status_code == 200
    return [r]


def _c_exchange_list(s, c):
    r = c.get("/exchange")
    assert r.status_code == 200
    return [r]


def _c_exchange_create(s, c):
    env = s["env"]
    before = env["led"].one("SELECT COUNT(*) FROM upload_requests")[0]
    out = []
    for channel in NAHA:
        r = c.post("/exchange", data={"csrf": _csrf(c), "channel": channel, "title": "他団体への依頼", "expires": "1d"})
        assert r.status_code == 422
        out.append(r)
    assert env["led"].one("SELECT COUNT(*) FROM upload_requests")[0] == before
    return out


def _c_exchange_detail(s, c):
    r = c.get(f"/exchange/{s['env']['narid']}")
    assert r.status_code == 404
    return [r]


def _c_exchange_revoke(s, c):
    env = s["env"]
    r = c.post(f"/exchange/{env['narid']}/revoke", data={"csrf": _csrf(c)})
    assert r.status_code == 404
    assert env["led"].one("SELECT revoked_at FROM upload_requests WHERE id = ?", (env["narid"],))[0] is None
    return [r]


def _c_submissions(s, c):
    env = s["env"]
    out = []
    for params in ({}, {"channel": NAHA[1]}, {"channel": "ＮＡＨＡ-ＺＥＩＭＵ"}, {"receipt": env["nasub"]["receipt"]},
                   {"receipt": env["naform"]["receipt"]}, {"flagged": "1"}):
        r = c.get("/submissions", params=params)
        assert r.status_code == 200
        out.append(r)
    return out


def _c_submission(s, c):
    env = s["env"]
    out = [c.get(f"/submissions/{env['naform']['receipt']}"), c.get(f"/submissions/{env['nasub']['receipt']}")]
    assert all(r.status_code == 404 for r in out)
    return out


def _c_tally(s, c):
    out = [c.get("/tally")]  # the channel choice offers its own tenant's channels only
    # "All my channels" counts none of naha's two submissions (only nago's one, or none).
    r = c.get("/tally", params={"channel": "*"})
    assert r.status_code == 200 and int(re.search(r'合計</td><td class="num">(\d+)', r.text).group(1)) <= 1
    out.append(r)
    for path in ("/tally", "/tally.csv", "/tally.svg"):
        for channel in (*NAHA, "ＮＡＨＡ-ＫＯＫＵＨＯ"):
            r = c.get(path, params={"channel": channel})
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

def _api(s, key: str) -> httpx.Client:
    return httpx.Client(base_url=s["app"].api, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _a_submit(s, key):
    out = []
    with _api(s, key) as c:
        nowhere = c.post("/api/v1/submissions", data={"channel": "no-such-channel"}, files=[("files", ("a.txt", b"x"))])
        assert nowhere.status_code == 400 and nowhere.json()["error"] == "unknown_channel", nowhere.text
        for channel in (*NAHA, "ＮＡＨＡ-ＫＯＫＵＨＯ", "Naha-Zeimu"):
            r = c.post("/api/v1/submissions", data={"channel": channel}, files=[("files", ("a.txt", b"x"))])
            # Another tenant's channel is answered as a channel that does not exist (not 403).
            assert (r.status_code, r.json()) == (nowhere.status_code, nowhere.json()), r.text
            out.append(r)
    assert s["env"]["led"].one("SELECT COUNT(*) FROM jobs WHERE name = 'a.txt'")[0] == 0
    return out


def _a_status(s, key):
    env = s["env"]
    out = []
    with _api(s, key) as c:
        missing = c.get("/api/v1/submissions/" + "0" * 24)
        for sub in (env["naform"], env["nasub"]):
            r = c.get(sub["status_url"])
            assert r.status_code == 404 and r.json() == missing.json()
            out.append(r)
    return out


def _a_healthz(s, key):
    r = httpx.get(s["app"].api + "/healthz", timeout=10)
    assert r.status_code == 200
    return [r]


def _a_metrics(s, key):
    # A tenant's key reads only its own channels' series, whatever ?tenant= says.
    out = []
    with _api(s, key) as c:
        for params in ({}, {"tenant": "naha"}):
            r = c.get("/metrics", params=params)
            assert r.status_code == 200 and "transfer_component_up" in r.text
            assert not re.search(r"^transfer_queue_depth ", r.text, re.M)  # appliance-wide volumes: the prefecture's
            out.append(r)
    return out


def _a_docs(s, key):
    out = []
    for path in ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"):
        r = httpx.get(s["app"].api + path, timeout=10)
        assert r.status_code in (200, 404)
        out.append(r)
    return out


def _u_page(s, key):
    # A link shows its own channel; naha's link is a capability nago cannot list (console pages above).
    r = httpx.get(s["app"].api + "/u/" + s["env"]["nbtoken"], timeout=30)
    assert r.status_code == 200
    forged = httpx.get(s["app"].api + "/u/" + "A" * 43, timeout=30)
    assert forged.status_code in (404, 410)
    return [r, forged]


def _u_post(s, key):
    """nago's link cannot redirect its files to naha's channel: a `channel` field is refused."""
    with httpx.Client(timeout=30) as c:
        page = c.get(s["app"].api + "/u/" + s["env"]["nbtoken"])
        action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
        fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
        r = c.post(s["app"].api + action, headers={"Origin": s["app"].api},
                   data={**fields, "氏名": "山田", "channel": NAHA[0]}, files=[("files", ("a.txt", b"x"))])
    assert r.status_code == 422, r.text[:500]
    return [r]


def _s_status(s, key):
    out = [httpx.get(s["app"].api + "/s/" + "B" * 43, timeout=30),
           httpx.get(s["app"].api + "/s/" + s["env"]["nasub"]["id"], timeout=30)]
    assert all(r.status_code == 404 for r in out)
    return out


def _a_channel_form(s, key):
    out = []
    with _api(s, key) as c:
        nowhere = c.get("/api/v1/channels/no-such-channel/form")
        for channel in (*NAHA, "ＮＡＨＡ-ＫＯＫＵＨＯ"):
            r = c.get(f"/api/v1/channels/{channel}/form")
            assert (r.status_code, r.json()) == (nowhere.status_code, nowhere.json()), r.text
            out.append(r)
    return out


def _u_css(s, key):
    r = httpx.get(s["app"].api + "/assets/upload.css", timeout=30)
    assert r.status_code == 200
    return [r]


API_ATTACKS = {
    ("POST", "/api/v1/submissions"): _a_submit, ("GET", "/api/v1/submissions/{submission_id}"): _a_status,
    ("GET", "/healthz"): _a_healthz, ("GET", "/metrics"): _a_metrics,
    ("GET", "/docs"): _a_docs, ("GET", "/docs/oauth2-redirect"): _a_docs, ("GET", "/redoc"): _a_docs,
    ("GET", "/openapi.json"): _a_docs,
    ("GET", "/u/{token}"): _u_page, ("POST", "/u/{token}"): _u_post, ("GET", "/s/{token}"): _s_status,
    ("GET", "/assets/upload.css"): _u_css, ("GET", "/api/v1/channels/{channel}/form"): _a_channel_form,
}


def test_every_route_has_a_tenant_attack(tmp_path):
    """The routes of both apps, enumerated from the FastAPI apps themselves: a new one needs an attack here."""
    from transfer_agent.api_app import create_app
    from transfer_agent.config import load_config
    from transfer_agent.console import build_console
    from transfer_agent.internet import InternetSide

    cfg = load_config(data_dir=tmp_path / "data")
    cfg.state.mkdir(parents=True)
    side = InternetSide(cfg)
    try:
        assert _app_routes(create_app(side)) == set(API_ATTACKS)
    finally:
        side.ledger.close()
    ledger = Ledger(tmp_path / "console.sqlite3")
    try:
        assert _app_routes(build_console(ledger, tmp_path, cfg=cfg)) == set(CONSOLE_ATTACKS)
    finally:
        ledger.close()


def test_another_tenants_staff_get_nothing_on_any_console_page(env):
    """nago's clerk, approver and admin, and the default tenant's admin, on every page, on naha's objects."""
    s = {"app": env["app"], "env": env, "anon": httpx.Client(base_url=env["app"].console, timeout=30)}
    # An admin reaches every page (and every channel of its tenant): nago's, and the default tenant's, whose
    # "all channels" is every channel but the other tenants' (the NOT IN path). A clerk once, on SQLite.
    names = ("nbadmin", "dadmin", "nbclerk") if env["backend"] == "sqlite" else ("nbadmin", "dadmin")
    attackers = {n: _login(env, n) for n in names}
    try:
        for name, c in attackers.items():
            for route, attack in CONSOLE_ATTACKS.items():
                for r in attack(s, c):
                    try:
                        _no_leak(r, env)
                    except AssertionError as exc:
                        raise AssertionError(f"{name} {route}: {exc}") from None
        # Not vacuous: the same pages show each its own tenant's files, and naha's to naha.
        nb = _login(env, "nbclerk")
        assert "名護の書類.txt" in nb.get("/deliveries").text and "既定の書類" not in nb.get("/deliveries").text
        assert "nago-kokuho" in nb.get("/tally").text and nb.get("/tally", params={"channel": "nago-kokuho"}).status_code == 200
        assert "名護の依頼" in nb.get("/exchange").text
        nb.close()
        assert "既定の書類.txt" in attackers["dadmin"].get("/deliveries").text
        admin = attackers["nbadmin"].get("/admin").text
        assert "nbclerk" in admin and "名護システム" in admin and "dadmin" not in admin and "既定システム" not in admin
        na = _login(env, "naclerk")
        assert SECRET in na.get("/deliveries").text and na.get(f"/deliveries/{env['najob']}").status_code == 200
        assert re.search(r'合計</td><td class="num">2<', na.get("/tally", params={"channel": "*"}).text)
        assert "名護" not in na.get("/deliveries").text
        na.close()
        pref = _login(env, "pref")
        page = pref.get("/admin").text
        assert 'id="tenants"' in page and "那覇市" in page and "名護市" in page and "naclerk" in page
        assert SECRET in pref.get("/deliveries").text and "名護の書類.txt" in pref.get("/deliveries").text
        # It sees a town's pending request but does not decide it (the town's approvers do).
        assert f'/approvals/{env["pending"]}' in pref.get("/approvals").text
        r = pref.post(f"/approvals/{env['pending']}", data={"csrf": _csrf(pref), "decision": "approve",
                                                             "comment": "県が承認"})
        assert r.status_code == 403
        assert env["led"].one("SELECT status FROM original_requests WHERE id = ?", (env["pending"],))[0] == "pending"
        pref.close()
    finally:
        for c in (*attackers.values(), s["anon"]):
            c.close()


def test_another_tenants_keys_get_nothing_on_any_route(env):
    s = {"app": env["app"], "env": env}
    for key in (env["nbkey"], env["dkey"]):
        for route, attack in API_ATTACKS.items():
            for r in attack(s, key):
                for secret in (SECRET, env["nasub"]["receipt"], env["naform"]["receipt"], *NAHA, "naha"):
                    assert secret not in r.text, (route, secret)
    # Not vacuous: naha's key reads its own status; the prefecture's monitoring sees every tenant.
    with _api(s, env["nakey"]) as c:
        assert c.get(env["naform"]["status_url"]).status_code == 200
        own = c.get("/metrics").text
    assert 'channel="naha-kokuho"' in own and "nago" not in own
    full = httpx.get(env["app"].api + "/metrics", timeout=10).text
    assert re.search(r'transfer_intake_total\{channel="naha-kokuho",tenant="naha"\} [1-9]', full), full
    assert 'channel="nago-kokuho",tenant="nago"' in full and 'channel="kokuho",tenant="default"' in full
    one = httpx.get(env["app"].api + "/metrics", params={"tenant": "nago"}, timeout=10).text
    assert 'tenant="nago"' in one and "naha" not in one


def test_tenant_list_and_disable(env):
    """`tenant list` shows both; disabling nago ends its sessions and refuses its logins, keys and link."""
    data, dbargs = env["data"], env["dbargs"]
    r = ta("tenant", "list", *dbargs, data_dir=data)
    assert r.returncode == 0, r.stderr
    assert re.search(r"naha\s+那覇市\s+active\s+2\s+1\s+naha-kokuho,naha-zeimu", r.stdout), r.stdout
    assert re.search(r"nago\s+名護市\s+active\s+2\s+1\s+nago-kokuho", r.stdout), r.stdout
    assert re.search(r"default\s+-\s+active\s+1\s+1\s+\(every channel", r.stdout), r.stdout
    today = exchange.local(time.time()).date().isoformat()  # the prefecture's tally of one municipality
    r = ta("report", "--tenant", "naha", "--from", today, "--to", today, *dbargs, data_dir=data)
    assert r.returncode == 0 and "受付件数\t合計\t2" in r.stdout, r.stdout + r.stderr
    nb = _login(env, "nbclerk")
    r = ta("tenant", "disable", "nago", *dbargs, data_dir=data)
    assert r.returncode == 0, r.stderr
    try:
        assert nb.get("/deliveries").status_code == 303  # its session ended
        c = httpx.Client(base_url=env["app"].console, timeout=30)
        r = c.post("/login", data={"name": "nbclerk", "password": PW["nbclerk"], "pre": _pre(c), "next": "/"})
        assert r.status_code == 401 and "無効" in r.text
        c.close()
        with _api({"app": env["app"]}, env["nbkey"]) as k:
            assert k.post("/api/v1/submissions", files=[("files", ("a.txt", b"x"))]).status_code == 403
        assert httpx.get(env["app"].api + "/u/" + env["nbtoken"], timeout=30).status_code == 404
        assert httpx.get(env["app"].api + "/u/" + env["natoken"], timeout=30).status_code == 200  # naha's still works
        assert [t["disabled_at"] is not None for t in tenants.list_tenants(env["led"])] == [False, True, False]  # default, nago, naha
    finally:
        nb.close()
        tenants.set_disabled(env["led"], "nago", False)
    again = _login(env, "nbclerk")
    assert again.get("/deliveries").status_code == 200
    again.close()


def test_existing_database_goes_to_the_default_tenant(ledger_target, tmp_path):
    """An appliance from before tenants: its accounts and keys have no tenant column; on opening they are
    the default tenant's and reach what they reached. Once a tenant takes a channel, they no longer do."""
    led = Ledger(ledger_target, anchor_path=tmp_path / "state" / "audit.anchor")
    u = users.add_user(led, "old", "clerk", "old-pass-123", scope=Scope(True))
    _k, key = apikeys.create_key(led, "old-client", scope=Scope(False, ["kokuho", "naha-kokuho"]))
    with led.tx() as t:  # as the tables were before tenants
        t.execute("ALTER TABLE console_users DROP COLUMN tenant")
        t.execute("ALTER TABLE api_keys DROP COLUMN tenant")
    led.close()
    led = Ledger(ledger_target, anchor_path=tmp_path / "state" / "audit.anchor")
    try:
        token, sess = users.login(led, "old", "old-pass-123")
        assert sess.user.tenant == "default" and sess.user.scope.sql("j.channel") == ("1 = 1", ())
        client = apikeys.authenticate(led, key)
        assert client.scope.allows("naha-kokuho") and client.scope.allows("kokuho")
        from transfer_agent import tenants

        tenants.create(led, "naha", ["naha-kokuho"])
        sess = users.session_for(led, token)
        assert sess is not None and sess.user.id == u.id
        assert not sess.user.scope.allows("naha-kokuho") and sess.user.scope.allows("kokuho")
        assert not apikeys.authenticate(led, key).scope.allows("naha-kokuho")
        assert [t["name"] for t in tenants.list_tenants(led)] == ["default", "naha"]
        # The town joins the cloud: its account and key move into its tenant (the CLI for one; the binding
        # keeps only the tenant's channels, and the account's sessions end).
        dbargs = ["--database", str(ledger_target)] if "://" in str(ledger_target) else []
        r = ta("user", "tenant", "--name", "old", "--tenant", "naha", *dbargs, data_dir=tmp_path)
        assert r.returncode == 0, r.stderr
        assert users.session_for(led, token) is None
        _token, sess = users.login(led, "old", "old-pass-123")
        assert sess.user.tenant == "naha" and sess.user.scope.allows("naha-kokuho")
        assert not sess.user.scope.allows("kokuho")
        assert apikeys.set_tenant(led, key.split("_")[1], "naha") == 1
        moved = apikeys.authenticate(led, key)
        assert moved.tenant == "naha" and moved.scope.names == ("naha-kokuho",) and not moved.scope.allows("kokuho")
    finally:
        led.close()
