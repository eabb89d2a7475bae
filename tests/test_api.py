"""REST intake against the real appliance (`transfer-agent serve`, uvicorn on 127.0.0.1, free ports)."""
from __future__ import annotations

import io
import json
import re
import socket
import sqlite3
import statistics
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import pyzipper

from tests.portal_helpers import CONFIG, new_key, start, ta, wait_done
from transfer_agent import clock

# Requests may name only configured (or existing dropbox) channels.
API_CONFIG = CONFIG + '[channels.kokuho]\npolicy = "default"\n[channels."国保課"]\npolicy = "default"\n'


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    a = start(tmp_path_factory.mktemp("api") / "data", "--max-upload-mb", "1", config=API_CONFIG)
    yield a
    a.stop()


@pytest.fixture
def key(app, request):
    return new_key(app.data_dir, f"申請システム-{request.node.name[:20]}")


def client(app, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=app.api, headers=headers, timeout=30)


def healthy(app) -> None:
    r = httpx.get(app.api + "/healthz", timeout=5)
    assert r.status_code == 200, r.text


def error_json(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["message"] and body["message_ja"]
    if code:
        assert body["error"] == code
    return body


def test_auth_missing_wrong_revoked(app, key):
    files = {"files": ("a.txt", b"hello")}
    r = client(app, None).post("/api/v1/submissions", files=files)
    error_json(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    error_json(client(app, "tak_00000000_nope").post("/api/v1/submissions", files=files), 401)
    error_json(client(app, key[:-2] + "xx").post("/api/v1/submissions", files=files), 401)
    error_json(client(app, "Basic abc").get("/api/v1/submissions/" + "0" * 24), 401)
    # Revoke by prefix through the CLI: the same key is now refused with 403.
    prefix = key.split("_")[1]
    listing = ta("apikey", "list", data_dir=app.data_dir)
    assert prefix in listing.stdout and key not in listing.stdout
    assert ta("apikey", "revoke", prefix, data_dir=app.data_dir).returncode == 0
    error_json(client(app, key).post("/api/v1/submissions", files=files), 403, "forbidden")
    healthy(app)


def test_submission_bundle_japanese_fields_and_status(app, key):
    c = client(app, key)
    fields = {"氏名": "山田 花子 <hanako@example.jp>", "住所": "東京都千代田区霞が関１－２",
              "備考": "右から左\u202eexe.pdf\x07 と ｶﾀｶﾅ", "channel": "kokuho"}
    files = [("files", ("申請書.csv", "氏名,金額\n山田,=1+2\n".encode())),
             ("files", ("メモ.txt", "連絡事項：よろしくお願いします。\n".encode()))]
    t0 = time.monotonic()
    r = c.post("/api/v1/submissions", data=fields, files=files)
    post_ms = (time.monotonic() - t0) * 1000
    assert r.status_code == 202, r.text
    body = r.json()
    assert re.fullmatch(r"\d{8}-\d{4}", body["receipt"])
    assert body["status_url"] == f"/api/v1/submissions/{body['id']}" == r.headers["location"]
    st = wait_done(c, body["status_url"])
    done_ms = (time.monotonic() - t0) * 1000
    print(f"\nPOST 2 files: {post_ms:.0f} ms; done after {done_ms:.0f} ms")
    by = {f["name"]: f for f in st["files"]}
    assert by["申請書.csv"]["verdict"] == "sanitized"
    assert [t["id"] for t in by["申請書.csv"]["threats"]] == ["csv.formula"]
    assert by["メモ.txt"]["verdict"] == "clean" and by["メモ.txt"]["threats"] == []
    # Verdicts only: no contents, no paths.
    assert "山田,=1+2" not in r.text + json.dumps(st) and "inbox" not in json.dumps(st)

    day = clock.day()
    bundle = app.data_dir / "inbox" / "kokuho" / day / body["receipt"]
    names = sorted(p.name for p in bundle.iterdir())
    assert {"form.json", "form.txt", "manifest.json", "申請書.csv", "申請書.csv.cdr.json", "申請書.csv.報告.txt",
            "メモ.txt", "メモ.txt.cdr.json"} <= set(names), names
    assert not [n for n in names if n.startswith(".")]
    raw = (bundle / "form.txt").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # Notepad: UTF-8 with BOM, CRLF
    text = raw.decode("utf-8-sig").replace("\r\n", "\n")
    # Exactly as typed: what looks like markup is text (a mail address), never stripped.
    assert "【氏名】\n山田 花子 <hanako@example.jp>\n" in text
    assert "東京都千代田区霞が関１－２" in text and "ｶﾀｶﾅ" in text
    assert "\u202e" not in text and "\x07" not in text and "右から左exe.pdf と" in text
    assert body["receipt"] in text
    form = json.loads((bundle / "form.json").read_text("utf-8"))
    assert form["receipt"] == body["receipt"] and form["channel"] == "kokuho"
    assert {f["name"] for f in form["fields"]} == {"氏名", "住所", "備考"}
    assert {f["name"]: f["value"] for f in form["fields"]}["氏名"] == "山田 花子 <hanako@example.jp>"
    man = json.loads((bundle / "manifest.json").read_text("utf-8"))
    assert man["summary"] == {"sanitized": 1, "clean": 1}
    m = {f["name"]: f for f in man["files"]}
    assert m["申請書.csv"]["delivered"] == "申請書.csv" and (bundle / m["申請書.csv"]["report"]).is_file()
    assert m["申請書.csv"]["report_ja"] == "申請書.csv.報告.txt"
    assert "'=1+2" in (bundle / "申請書.csv").read_text("utf-8")

    # Another client cannot see it; unknown ids are 404 JSON.
    other = client(app, new_key(app.data_dir, "別システム"))
    error_json(other.get(body["status_url"]), 404, "not_found")
    error_json(c.get("/api/v1/submissions/zzz"), 404)
    # Audited: the submission and its completion, chain intact.
    db = sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3")
    events = [e for (e,) in db.execute("SELECT event FROM audit WHERE data LIKE ?", (f"%{body['id']}%",))]
    assert "api.submission" in events and "api.submission_done" in events
    assert ta("audit", "verify", data_dir=app.data_dir).returncode == 0


def _ppap_zip(password: bytes) -> bytes:
    buf = io.BytesIO()
    with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as z:
        z.setpassword(password)
        z.writestr("申請書.txt", "パスワード付きZIPの中身です。\n".encode())
    return buf.getvalue()


def test_ppap_password(app, key):
    c = client(app, key)
    data = _ppap_zip("ひみつ2024".encode())
    # AES salts differ, so the second archive has other bytes (identical bytes would reuse the result).
    data2 = _ppap_zip("ひみつ2024".encode())
    r = c.post("/api/v1/submissions", data={"passwords": json.dumps({"書類.zip": "ひみつ2024"})},
               files=[("files", ("書類.zip", data)), ("files", ("同じ書類.zip", data2))])
    assert r.status_code == 202, r.text
    st = wait_done(c, r.json()["status_url"])
    by = {f["name"]: f for f in st["files"]}
    assert by["書類.zip"]["verdict"] in ("clean", "sanitized"), by
    # The same bytes without a password are blocked, with a reason that asks for it.
    assert by["同じ書類.zip"]["verdict"] == "blocked"
    assert "パスワード" in by["同じ書類.zip"]["reason"]
    assert "archive.encrypted" in [t["id"] for t in by["同じ書類.zip"]["threats"]]
    # The same reason fields as the notice in the inbox: bilingual "ja / en", and each language alone.
    [notice] = (app.data_dir / "inbox").rglob("同じ書類.zip.blocked.json")
    side = json.loads(notice.read_text("utf-8"))
    for f in ("reason", "reason_ja", "reason_en"):
        assert by["同じ書類.zip"][f] == side[f], (f, by["同じ書類.zip"][f], side[f])
    assert by["同じ書類.zip"]["reason"] == f"{side['reason_ja']} / {side['reason_en']}"
    # The password is not kept once the jobs are final.
    db = sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM jobs WHERE password IS NOT NULL AND status IN"
                      " ('delivered','blocked')").fetchone()[0] == 0
    assert "ひみつ" not in json.dumps(db.execute("SELECT files FROM submissions").fetchall(), ensure_ascii=False)
    db.close()
    # ... nor left on disk in freed pages or in the write-ahead log.
    for f in (app.data_dir / "state").iterdir():
        if f.name.startswith("ledger.sqlite3"):
            assert "ひみつ2024".encode() not in f.read_bytes(), f.name
    # Passwords for files that were not sent, or not a JSON object: 400.
    error_json(c.post("/api/v1/submissions", data={"passwords": '{"other.zip": "x"}'},
                      files=[("files", ("書類.zip", data))]), 400, "bad_passwords")
    error_json(c.post("/api/v1/submissions", data={"passwords": "[1]"}, files=[("files", ("a.zip", data))]),
               400, "bad_passwords")


def test_too_large_413(app, key):
    c = client(app, key)
    big = b"x" * (1024 * 1024 + 200 * 1024)
    error_json(c.post("/api/v1/submissions", files=[("files", ("big.txt", big))]), 413, "too_large")

    # Without Content-Length (chunked): caught while streaming.
    def gen():
        yield (b"--B\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.txt\"\r\n\r\n")
        for _ in range(20):
            yield b"y" * 65536
        yield b"\r\n--B--\r\n"

    r = c.post("/api/v1/submissions", content=gen(), headers={"Content-Type": "multipart/form-data; boundary=B"})
    error_json(r, 413, "too_large")
    assert not list((app.data_dir / "work" / "api-uploads").iterdir())
    healthy(app)


def test_limits_files_and_fields(app, key):
    c = client(app, key)
    error_json(c.post("/api/v1/submissions", data={"長い": "あ" * 30000}, files=[("files", ("a.txt", b"a"))]),
               413, "field_too_large")
    many = [("files", (f"f{i}.txt", b"x")) for i in range(51)]
    error_json(c.post("/api/v1/submissions", files=many), 413, "too_many_files")
    healthy(app)


def _raw(app, key: str, body: bytes, ctype: str) -> httpx.Response:
    return client(app, key).post("/api/v1/submissions", content=body, headers={"Content-Type": ctype})


def test_malformed_bodies_are_4xx_json(app, key):
    error_json(_raw(app, key, b"hello", "text/plain"), 415)
    error_json(_raw(app, key, b"hello", "multipart/form-data"), 415)  # no boundary
    error_json(_raw(app, key, b"garbage without boundary", "multipart/form-data; boundary=XYZ"), 400, "malformed")
    truncated = b"--XYZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.txt\"\r\n\r\nabc"
    error_json(_raw(app, key, truncated, "multipart/form-data; boundary=XYZ"), 400, "malformed")
    noname = b"--XYZ\r\nContent-Type: text/plain\r\n\r\nabc\r\n--XYZ--\r\n"
    error_json(_raw(app, key, noname, "multipart/form-data; boundary=XYZ"), 400, "malformed")
    sjis = (b"--XYZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n" + "氏名".encode("cp932")
            + b"\r\n--XYZ--\r\n")
    error_json(_raw(app, key, sjis, "multipart/form-data; boundary=XYZ"), 400, "bad_encoding")
    error_json(_raw(app, key, b"--" + b"B" * 100 + b"\r\n", "multipart/form-data; boundary=" + "B" * 100), 400)
    error_json(client(app, key).post("/api/v1/submissions", data={"channel": "../etc"},
                                     files=[("files", ("a.txt", b"a"))]), 400, "bad_channel")
    # A raw socket that lies about its length and hangs up: the service shrugs it off.
    u = urlparse(app.api)
    with socket.create_connection((u.hostname, u.port), timeout=5) as s:
        s.sendall(b"POST /api/v1/submissions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode()
                  + b"\r\nContent-Type: multipart/form-data; boundary=Q\r\nContent-Length: 100000\r\n\r\n--Q\r\n")
    deadline = time.monotonic() + 5
    while list((app.data_dir / "work" / "api-uploads").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list((app.data_dir / "work" / "api-uploads").iterdir()), "staged upload left behind"
    healthy(app)


def test_idempotency_key(app, key):
    c = client(app, key)
    files = [("files", ("届出.txt", "同じ内容".encode()))]
    hdr = {"Idempotency-Key": "form-123-retry"}
    r1 = c.post("/api/v1/submissions", data={"件名": "転入届"}, files=files, headers=hdr)
    r2 = c.post("/api/v1/submissions", data={"件名": "転入届"}, files=files, headers=hdr)
    assert r1.status_code == 202 and r2.status_code == 200, (r1.text, r2.text)
    assert r1.json()["id"] == r2.json()["id"] and r1.json()["receipt"] == r2.json()["receipt"]
    assert r2.headers["idempotent-replayed"] == "true"
    error_json(c.post("/api/v1/submissions", data={"件名": "別の届"}, files=files, headers=hdr), 409,
               "idempotency_conflict")
    db = sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM jobs WHERE submission_id = ?", (r1.json()["id"],)).fetchone()[0] == 1
    # The key is per client: another client may use the same value for its own submission.
    other = client(app, new_key(app.data_dir, "他システム"))
    r3 = other.post("/api/v1/submissions", data={"件名": "転入届"}, files=files, headers=hdr)
    assert r3.status_code == 202 and r3.json()["id"] != r1.json()["id"]
    wait_done(c, r1.json()["status_url"])


def test_rate_limit_429(app, key):
    c = client(app, key)
    codes = [c.post("/api/v1/submissions", content=b"x", headers={"Content-Type": "text/plain"}).status_code
             for _ in range(20)]
    assert codes[:12] == [415] * 12 and 429 in codes[12:], codes
    r = c.post("/api/v1/submissions", content=b"x", headers={"Content-Type": "text/plain"})
    body = error_json(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1 and "再送" in body["message_ja"]
    healthy(app)


def test_latency_small_submission(app, key):
    c = client(app, key)
    times = []
    for i in range(8):
        t0 = time.monotonic()
        r = c.post("/api/v1/submissions", data={"番号": str(i)}, files=[("files", (f"小{i}.txt", b"small"))])
        times.append((time.monotonic() - t0) * 1000)
        assert r.status_code == 202
    print(f"\nsmall submission POST latency: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms")
    assert statistics.median(times) < 1000
    r = httpx.get(app.api + "/metrics")
    assert r.status_code == 200 and "transfer_files_total" in r.text


def test_console_not_on_api_port(app):
    for path in ("/login", "/deliveries", "/approvals", "/admin"):
        assert httpx.get(app.api + path).status_code == 404
    assert httpx.get(app.console + "/openapi.json").status_code == 404
    assert Path(app.data_dir / "state" / "ledger.sqlite3").is_file()


# --------------------------------------------------------------------------- review fixes

def _multipart(*parts: tuple[bytes, bytes], boundary: bytes = b"XYZ") -> bytes:
    """A raw body: each part is (Content-Disposition value, data); names as bytes, exactly as sent."""
    out = b""
    for disp, data in parts:
        out += b"--" + boundary + b"\r\nContent-Disposition: " + disp + b"\r\n\r\n" + data + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def _bundle(app, channel: str, receipt: str) -> Path:
    return app.data_dir / "inbox" / channel / clock.day() / receipt


def test_passwords_nested_or_huge_is_400_json(app, key):
    mp = "multipart/form-data; boundary=XYZ"
    for value in (b"[" * 50000, b'{"a":' * 12000, b"1" * 100, b""):
        r = _raw(app, key, _multipart((b'form-data; name="passwords"', value),
                                      (b'form-data; name="files"; filename="a.txt"', b"a")), mp)
        error_json(r, 400, "bad_passwords")
    big = json.dumps({"a.txt": "p" * 40000}).encode()
    error_json(_raw(app, key, _multipart((b'form-data; name="passwords"', big),
                                         (b'form-data; name="files"; filename="a.txt"', b"a")), mp),
               400, "bad_passwords")
    healthy(app)


def test_unexpected_error_is_json_500(app, key):
    # The staging folder replaced by a file: the upload cannot be staged (a real OSError).
    stage = app.data_dir / "work" / "api-uploads"
    aside = stage.with_name("api-uploads.aside")
    stage.rename(aside)
    try:
        stage.write_bytes(b"not a folder")
        r = client(app, key).post("/api/v1/submissions", files=[("files", ("a.txt", b"a"))])
        body = error_json(r, 500, "internal_error")
        assert "Traceback" not in r.text and "api-uploads" not in r.text
        assert body["message_ja"].startswith("内部エラー")
    finally:
        stage.unlink()
        aside.rename(stage)
    log = (app.data_dir.parent / f"{app.data_dir.name}.log").read_text("utf-8", "replace")
    assert '"event": "api.error"' in log and "NotADirectoryError" in log
    # Routing errors use the same shape.
    error_json(httpx.get(app.api + "/api/v1/nothing-here"), 404, "not_found")
    error_json(httpx.delete(app.api + "/api/v1/submissions"), 405, "method_not_allowed")
    r = client(app, key).post("/api/v1/submissions", files=[("files", ("after.txt", b"ok"))])
    assert r.status_code == 202, r.text
    healthy(app)


def test_channel_trailing_newline_and_look_alikes_rejected(app, key):
    mp = "multipart/form-data; boundary=XYZ"
    for value in (b"default\n", b"kokuho\r\n", b" kokuho", b".kokuho", b"a/b", b"..", "国保課\u202e".encode()):
        r = _raw(app, key, _multipart((b'form-data; name="channel"', value),
                                      (b'form-data; name="files"; filename="a.txt"', b"a")), mp)
        error_json(r, 400, "bad_channel")
    assert sorted(p.name for p in (app.data_dir / "inbox").iterdir() if p.name.strip() != p.name) == []
    error_json(client(app, key).post("/api/v1/submissions", files=[("files", ("a.txt", b"a"))],
                                     headers={"Idempotency-Key": "ok-key\tx"}), 400, "bad_idempotency_key")


def test_channels_configured_existing_or_unknown(app, key):
    c = client(app, key)
    files = [("files", ("届出.txt", "国保の届出です。".encode()))]
    r = c.post("/api/v1/submissions", data={"channel": "国保課", "件名": "国保"}, files=files)
    assert r.status_code == 202, r.text
    wait_done(c, r.json()["status_url"])
    assert (_bundle(app, "国保課", r.json()["receipt"]) / "届出.txt").is_file()
    # Unknown (a typo) is refused and creates nothing; the message does not list the channels.
    body = error_json(c.post("/api/v1/submissions", data={"channel": "kokuhoo"}, files=files), 400,
                      "unknown_channel")
    assert "kokuho" not in body["message"] + body["message_ja"] and "設定されていません" in body["message_ja"]
    assert not (app.data_dir / "inbox" / "kokuhoo").exists()
    error_json(c.post("/api/v1/submissions", data={"channel": "住民課"}, files=files), 400, "unknown_channel")
    # A channel folder that exists in the dropbox is a channel (as for dropped files).
    (app.data_dir / "dropbox" / "住民課").mkdir(parents=True, exist_ok=True)
    r = c.post("/api/v1/submissions", data={"channel": "住民課"}, files=files)
    assert r.status_code == 202, r.text
    r2 = c.post("/api/v1/submissions", data={"channel": "default"}, files=files)
    assert r2.status_code == 202, r2.text
    assert c.get(r2.json()["status_url"]).json()["channel"] == "default"
    wait_done(c, r.json()["status_url"])
    assert (_bundle(app, "住民課", r.json()["receipt"]) / "form.txt").is_file()


def test_field_values_and_names_are_kept_exactly(app, key):
    """Field values are stored and delivered as typed (only control and format characters go): what looks
    like markup is text. form.txt is plain text; the console escapes what it shows (test_console_*)."""
    c = client(app, key)
    fields = {"備考": "&lt;script&gt;alert(1)&lt;/script&gt;前後",
              "比較": "A < B かつ C > D、AT&T と x &lt; y",
              "連絡先": "山田 花子 <hanako@example.jp>\r\n2行目\tタブ\x00\u200b"}
    r = c.post("/api/v1/submissions", data=fields,
               files=[("files", ("<img src=x onerror=alert(1)>.txt", b"m"))])
    assert r.status_code == 202, r.text
    st = wait_done(c, r.json()["status_url"])
    bundle = _bundle(app, "default", r.json()["receipt"])
    text = (bundle / "form.txt").read_text("utf-8-sig")
    values = {f["name"]: f["value"] for f in json.loads((bundle / "form.json").read_text("utf-8"))["fields"]}
    assert values["備考"] == fields["備考"] and values["比較"] == fields["比較"]
    assert values["連絡先"] == "山田 花子 <hanako@example.jp>\n2行目\tタブ"
    for v in values.values():
        assert v in text.replace("\r\n", "\n")
    # The attachment's name as sent, and where it went (Windows cannot hold < > in a name).
    assert "- <img src=x onerror=alert(1)>.txt (1 バイト)" in text
    [f] = st["files"]
    assert (bundle / f["name"]).read_bytes() == b"m" and "<" not in f["name"]


def test_file_part_without_a_filename_is_refused(app, key):
    """`-F files=` (an empty field) or a file part without a name is a 400 naming the part, not a 0-byte file."""
    c = client(app, key)
    mp = {"Content-Type": "multipart/form-data; boundary=XYZ"}
    r = c.post("/api/v1/submissions", headers=mp, content=_multipart(
        ('form-data; name="氏名"'.encode(), "山田".encode()), (b'form-data; name="files"', b"")))
    e = error_json(r, 400, "missing_filename")
    assert "part 2" in e["message"] and "files" in e["message"] and "ファイル名" in e["message_ja"]
    r = c.post("/api/v1/submissions", content=_multipart((b'form-data; name="files"', b"contents without a name")),
               headers=mp)
    e = error_json(r, 400, "missing_filename")
    assert "part 1" in e["message"]
    r = c.post("/api/v1/submissions", content=_multipart((b'form-data; name="files"; filename=""', b"x")),
               headers=mp)
    error_json(r, 400, "missing_filename")


def test_dot_and_undecodable_names_are_not_hidden(app, key):
    body = _multipart((b'form-data; name="files"; filename=".hidden.txt"', b"hidden attachment"),
                      (b'form-data; name="files"; filename="\xff\xfe.txt"', b"undecodable"),
                      (b'form-data; name="files"; filename="trailing.txt. "', b"trailing"))
    r = _raw(app, key, body, "multipart/form-data; boundary=XYZ")
    assert r.status_code == 202, r.text
    st = wait_done(client(app, key), r.json()["status_url"])
    assert [f["name"] for f in st["files"]] == ["_hidden.txt", "file.txt", "trailing.txt"]
    bundle = _bundle(app, "default", r.json()["receipt"])
    names = {p.name for p in bundle.iterdir()}
    assert {"_hidden.txt", "file.txt", "trailing.txt"} <= names, names
    assert not [n for n in names if n.startswith(".")], names


def test_rfc5987_and_percent_encoded_file_names(app, key):
    body = _multipart(
        (b'form-data; name="files"; filename="tennyu.txt"; filename*=UTF-8\'\'%E8%BB%A2%E5%85%A5%E5%B1%8A.txt',
         b"1"),
        (b'form-data; name="files"; filename*=utf-8\'ja\'%E5%8F%B0%E5%B8%B3%20%E5%86%99%E3%81%97.txt', b"2"),
        (b'form-data; name="files"; filename="%E7%94%B3%E8%AB%8B%E6%9B%B8.txt"', b"3"),
        (b'form-data; name="files"; filename="' + "転入届_sjis.txt".encode("cp932") + b'"', b"4"),
        (b'form-data; name="files"; filename="50%20off.txt"', b"5"),
        (b'form-data; name="passwords"', json.dumps({"転入届.txt": "x"}).encode()))
    r = _raw(app, key, body, "multipart/form-data; boundary=XYZ")
    assert r.status_code == 202, r.text
    st = wait_done(client(app, key), r.json()["status_url"])
    names = [f["name"] for f in st["files"]]
    assert names == ["転入届.txt", "台帳 写し.txt", "申請書.txt", "転入届_sjis.txt", "50%20off.txt"], names
    bundle = _bundle(app, "default", r.json()["receipt"])
    assert all((bundle / n).read_bytes() == str(i + 1).encode() for i, n in enumerate(names))


def test_planted_form_and_manifest_do_not_stand(app, key):
    c = client(app, key)
    probe = c.post("/api/v1/submissions", files=[("files", ("probe.txt", b"probe"))])
    assert probe.status_code == 202, probe.text
    day, n = probe.json()["receipt"].split("-")
    nxt = f"{day}-{int(n) + 1:04d}"
    bundle = _bundle(app, "default", nxt)
    bundle.mkdir(parents=True)
    forged = "電子申請 受付内容\n受付番号: " + nxt + "\n【振込先口座】\n悪意銀行 1234567\n"
    (bundle / "form.txt").write_text(forged, "utf-8")
    (bundle / "form.json").write_text('{"fields": [{"name": "振込先口座", "value": "悪意銀行"}]}', "utf-8")
    (bundle / "manifest.json").write_text('{"files": []}', "utf-8")
    r = c.post("/api/v1/submissions", data={"振込先口座": "正しい銀行 7654321"},
               files=[("files", ("口座.txt", "正しい口座".encode()))])
    assert r.status_code == 202 and r.json()["receipt"] == nxt, r.text
    wait_done(c, r.json()["status_url"])  # the core writes the bundle (the internet side only records it)
    text = (bundle / "form.txt").read_text("utf-8")
    assert "正しい銀行 7654321" in text and "悪意銀行" not in text
    assert "悪意銀行" not in (bundle / "form.json").read_text("utf-8")
    man = json.loads((bundle / "manifest.json").read_text("utf-8"))
    assert man["receipt"] == nxt and [f["name"] for f in man["files"]] == ["口座.txt"]
    db = sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3")
    rows = [json.loads(d) for (d,) in db.execute("SELECT data FROM audit WHERE event = 'api.bundle_foreign'")]
    assert any(d["receipt"] == nxt and set(d["replaced"]) == {"form.txt", "form.json", "manifest.json"}
               for d in rows), rows
    assert ta("audit", "verify", data_dir=app.data_dir).returncode == 0


def test_form_only_submission_is_accepted(app, key):
    c = client(app, key)
    # Fields only, no files part at all (multipart/form-data, as a web form sends it).
    r = _raw(app, key, _multipart(("form-data; name=\"氏名\"".encode(), "山田 太郎".encode()),
                                  ("form-data; name=\"用件\"".encode(), "住所変更の問い合わせ".encode())),
             "multipart/form-data; boundary=XYZ")
    assert r.status_code == 202, r.text
    st = wait_done(c, r.json()["status_url"])
    assert st["files"] == []
    bundle = _bundle(app, "default", r.json()["receipt"])
    assert "山田 太郎" in (bundle / "form.txt").read_text("utf-8")
    man = json.loads((bundle / "manifest.json").read_text("utf-8"))
    assert man["files"] == [] and man["summary"] == {}


def test_metrics_only_for_allowed_monitoring_hosts(tmp_path):
    """Channel names and volumes are internal: /metrics on the internet-side port answers only the
    hosts in [api] metrics_allow (loopback by default, as the other tests use)."""
    cfg = CONFIG.replace("[api]\n", '[api]\nmetrics_allow = ["192.0.2.0/24"]\n')
    a = start(tmp_path / "data", config=cfg)
    try:
        error_json(httpx.get(a.api + "/metrics", timeout=10), 404, "not_found")
        # A forwarded-for header naming an allowed host changes nothing: only the peer address counts.
        error_json(httpx.get(a.api + "/metrics", headers={"X-Forwarded-For": "192.0.2.7",
                                                         "Forwarded": "for=192.0.2.7"}, timeout=10), 404)
        assert httpx.get(a.api + "/healthz", timeout=10).status_code == 200
    finally:
        a.stop()
    (tmp_path / "bad.toml").write_text(CONFIG.replace("[api]\n", '[api]\nmetrics_allow = ["not-an-ip"]\n'), "utf-8")
    proc = ta("serve", "--config", str(tmp_path / "bad.toml"), "--api-port", "0", "--console-port", "0",
              data_dir=tmp_path / "d2")
    assert proc.returncode != 0 and "api.metrics_allow" in proc.stderr, proc.stderr
