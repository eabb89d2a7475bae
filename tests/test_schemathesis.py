"""Property-based run of the REST intake's OpenAPI spec (schemathesis): no 5xx, whatever the input."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.portal_helpers import CONFIG, new_key, start

ST = Path(sys.executable).parent / "schemathesis"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    cfg = CONFIG.replace("rate_per_minute = 60.0", "rate_per_minute = 60000.0").replace(
        "rate_burst = 12", "rate_burst = 5000")
    a = start(tmp_path_factory.mktemp("st") / "data", "--max-upload-mb", "2", config=cfg)
    yield a
    a.stop()


def test_openapi_no_server_errors(app, tmp_path):
    spec = httpx.get(app.api + "/openapi.json").json()
    assert "/api/v1/submissions" in spec["paths"] and "/api/v1/submissions/{submission_id}" in spec["paths"]
    assert "multipart/form-data" in spec["paths"]["/api/v1/submissions"]["post"]["requestBody"]["content"]
    key = new_key(app.data_dir, "schemathesis")
    cmd = [str(ST), "run", app.api + "/openapi.json", "--checks", "not_a_server_error",
           "-n", "25", "--seed", "7", "--generation-deterministic", "--request-timeout", "20",
           "-H", f"Authorization: Bearer {key}", "--suppress-health-check", "all"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=150, cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    # No issue; a warning that a channel's form is refused for most generated channel names is expected.
    assert "No issues found" in out or re.search(r"\d+ warnings? in", out), out[-2000:]
    m = re.search(r"(\d+) generated, (\d+) passed", out)
    assert m and int(m.group(1)) >= 50 and m.group(1) == m.group(2), out[-2000:]
    # Unauthenticated runs too (every answer a JSON 401, never a 5xx).
    r2 = subprocess.run(cmd[:-4] + ["--suppress-health-check", "all"], capture_output=True, text=True,
                        timeout=120, cwd=tmp_path)
    assert r2.returncode == 0, (r2.stdout + r2.stderr)[-4000:]
    assert httpx.get(app.api + "/healthz").status_code == 200


FORM_CONFIG = """
[exchange]
link_per_hour = 36000.0
address_per_hour = 36000.0
burst = 1000

[channels.default]
form = "todoke"

[forms.todoke]
title = "届出"
max_files = 3
max_total_mb = 1

[[forms.todoke.fields]]
name = "name"
label = "氏名"
required = true
max_length = 20

[[forms.todoke.fields]]
name = "zip"
label = "郵便番号"
type = "postal"

[[forms.todoke.fields]]
name = "count"
label = "人数"
type = "number"
min = 1
max = 9

[[forms.todoke.fields]]
name = "kind"
label = "種類"
type = "choice"
choices = ["転入", "転出"]

[[forms.todoke.fields]]
name = "mail"
label = "メール"
type = "email"
receipt = true
"""


@pytest.fixture(scope="module")
def form_app(tmp_path_factory):
    cfg = CONFIG.replace("rate_per_minute = 60.0", "rate_per_minute = 60000.0").replace(
        "rate_burst = 12", "rate_burst = 5000") + FORM_CONFIG
    a = start(tmp_path_factory.mktemp("stf") / "data", "--max-upload-mb", "2", config=cfg)
    yield a
    a.stop()


def test_openapi_channel_forms_and_form_errors(form_app, tmp_path):
    """The default channel names a form: every generated submission is checked against it (422 with per-field
    errors, as documented), and the form description endpoint answers within its schema."""
    app = form_app
    key = new_key(app.data_dir, "schemathesis")
    h = {"Authorization": f"Bearer {key}"}
    form = httpx.get(app.api + "/api/v1/channels/default/form", headers=h).json()
    assert form["enforced"] and [f["name"] for f in form["fields"]] == ["name", "zip", "count", "kind", "mail"]
    assert form["files"]["max_files"] == 3 and form["files"]["max_total_mb"] == 1
    r = httpx.post(app.api + "/api/v1/submissions", headers=h, data={"name": "x" * 21, "zip": "1", "count": "99"},
                   files=[("files", ("a.exe", b"MZ"))])
    assert r.status_code == 422 and {e["field"] for e in r.json()["fields"]} == {"name", "zip", "count", "files"}
    cmd = [str(ST), "run", app.api + "/openapi.json",
           "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance",
           "--include-path-regex", "^/api/v1/(submissions|channels)",
           "-n", "20", "--seed", "11", "--generation-deterministic", "--request-timeout", "20",
           "-H", f"Authorization: Bearer {key}", "--suppress-health-check", "all"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=150, cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    m = re.search(r"(\d+) generated, (\d+) passed", out)  # (warnings: most generated data is refused, rightly)
    assert m and int(m.group(1)) >= 60 and m.group(1) == m.group(2), out[-2000:]
    # Nothing the form does not accept reached the ledger.
    import json
    import sqlite3

    conn = sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3")
    for (fields,) in conn.execute("SELECT fields FROM submissions"):
        values = dict(json.loads(fields))
        assert set(values) <= {"name", "zip", "count", "kind", "mail"} and 1 <= len(values["name"]) <= 20
    assert httpx.get(app.api + "/healthz").status_code == 200


def _page_spec(open_token: str, closed_token: str, csrf: str, status_token: str) -> dict:
    """An OpenAPI description of the public upload pages (HTML, so not in /openapi.json): the token of an
    open and of a revoked link, the page's CSRF token (its cookie goes in a header), and a multipart body
    of any fields and files, so that generated data gets past the CSRF check into the form's own checks."""
    html = {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "a page"}
    token = {"name": "token", "in": "path", "required": True,
             "schema": {"type": "string", "enum": [open_token, closed_token, "A" * 43]}}
    body = {"type": "object", "additionalProperties": {"type": "string"},
            "properties": {"name": {"type": "string"}, "zip": {"type": "string"}, "count": {"type": "string"},
                           "kind": {"type": "string"}, "mail": {"type": "string"},
                           "files": {"type": "array", "maxItems": 4, "items": {"type": "string", "format": "binary"}}}}
    return {
        "openapi": "3.0.3", "info": {"title": "upload pages", "version": "1"},
        "paths": {
            "/u/{token}": {
                "get": {"parameters": [token], "responses": {"default": html}},
                "post": {"parameters": [token,
                                        {"name": "t", "in": "query", "required": True,
                                         "schema": {"type": "string", "enum": [csrf]}}],
                         "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": body}}},
                         "responses": {"default": html}}},
            "/s/{token}": {"get": {"parameters": [{"name": "token", "in": "path", "required": True,
                                                   "schema": {"type": "string",
                                                              "enum": [status_token, "A" * 32, "x"]}}],
                                   "responses": {"default": html}}},
        },
    }


def test_schemathesis_over_the_public_upload_pages(form_app, tmp_path):
    """The upload page's routes (no login, the internet side) under generated requests: every answer a
    page with a status below 500, and nothing the form does not accept reaches the ledger."""
    import json
    import sqlite3

    from tests.portal_helpers import ta

    app = form_app
    cfg = str(app.data_dir.parent / f"{app.data_dir.name}.toml")
    urls = []
    for _ in range(2):
        r = ta("exchange", "create", "--config", cfg, "--channel", "default", "--expires", "1d", data_dir=app.data_dir)
        assert r.returncode == 0, r.stderr
        urls.append(r.stdout.strip().splitlines()[-1])
    closed = sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3").execute(
        "SELECT id FROM upload_requests WHERE token = ?", (urls[1].rsplit("/", 1)[1],)).fetchone()
    assert closed is not None and ta("exchange", "revoke", closed[0], data_dir=app.data_dir).returncode == 0
    with httpx.Client(timeout=30) as c:
        page = c.get(urls[0])
        nonce = page.cookies["ta_up"]
        csrf = re.search(r'action="/u/[^"?]+\?t=([^"]+)"', page.text).group(1)
        sent = c.post(urls[0], params={"t": csrf}, data={"name": "佐藤"}, files=[("files", ("a.txt", b"x"))])
        assert sent.status_code == 303, sent.text
        status = sent.headers["location"].rsplit("/", 1)[1]
    spec = tmp_path / "pages.json"
    spec.write_text(json.dumps(_page_spec(urls[0].rsplit("/", 1)[1], urls[1].rsplit("/", 1)[1], csrf, status)))
    cmd = [str(ST), "run", str(spec), "--url", app.api, "--checks", "not_a_server_error", "-H", f"Cookie: ta_up={nonce}",
           "-n", "30", "--seed", "13", "--generation-deterministic", "--request-timeout", "20",
           "--suppress-health-check", "all"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    m = re.search(r"(\d+) generated, (\d+) passed", out)
    assert m and int(m.group(1)) >= 60 and m.group(1) == m.group(2), out[-2000:]
    conn = sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3")
    pages = conn.execute("SELECT fields FROM submissions WHERE source = 'page'").fetchall()
    assert len(pages) >= 2  # the one sent above, and generated ones that got through the form's checks
    for (fields,) in pages:
        values = dict(json.loads(fields))
        assert set(values) <= {"name", "zip", "count", "kind", "mail"} and 1 <= len(values["name"]) <= 20
    assert httpx.get(app.api + "/healthz").status_code == 200
