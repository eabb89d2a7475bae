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
    assert "No issues found" in out, out[-2000:]
    m = re.search(r"(\d+) generated, (\d+) passed", out)
    assert m and int(m.group(1)) >= 50 and m.group(1) == m.group(2), out[-2000:]
    # Unauthenticated runs too (every answer a JSON 401, never a 5xx).
    r2 = subprocess.run(cmd[:-4] + ["--suppress-health-check", "all"], capture_output=True, text=True,
                        timeout=120, cwd=tmp_path)
    assert r2.returncode == 0, (r2.stdout + r2.stderr)[-4000:]
    assert httpx.get(app.api + "/healthz").status_code == 200
