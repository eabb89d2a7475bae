"""Login lockout (issue 15, guarantee 8): per account *and* source address, with backoff, and silent about
which accounts exist. Attacked from outside against a real `transfer-agent serve`: one address guesses
at every approver (and at names that do not exist); the approvers still log in from their own desks.
The attacker connects from 127.0.0.2, the approvers from 127.0.0.1 (both reach the loopback listener).
"""
from __future__ import annotations

import json
import re
import sqlite3

import httpx
import pytest

from tests.portal_helpers import add_user, start, ta
from transfer_agent.users import LOCK_SECONDS, MAX_FAILURES

APPROVERS = {"kacho": "kacho-pass-1", "bucho": "bucho-pass-1", "jicho": "jicho-pass-1"}
GHOSTS = ["kakaricho", "shicho"]  # no such accounts


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    a = start(tmp_path_factory.mktemp("lockout") / "data")
    for name, pw in APPROVERS.items():
        add_user(a.data_dir, name, "approver", pw)
    add_user(a.data_dir, "taishoku", "clerk", "taishoku-pass-1")
    assert ta("user", "disable", "taishoku", data_dir=a.data_dir).returncode == 0
    yield a
    a.stop()


def _client(app, address: str) -> httpx.Client:
    return httpx.Client(base_url=app.console, timeout=30, transport=httpx.HTTPTransport(local_address=address))


def _try(c: httpx.Client, name: str, password: str) -> httpx.Response:
    pre = re.search(r'name="pre" value="([^"]+)"', c.get("/login").text).group(1)
    return c.post("/login", data={"name": name, "password": password, "pre": pre, "next": "/"})


def _answer(r: httpx.Response, name: str) -> tuple[int, str]:
    """What the attacker learns: status and the page's error text (the typed name echoed back aside)."""
    m = re.search(r'id="login-error"[^>]*>(.*?)<', r.text, re.S)
    return r.status_code, (m.group(1) if m else "").replace(name, "NAME")


def _audit(app, event: str) -> list[dict]:
    with sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3") as db:
        return [json.loads(d) for (d,) in db.execute("SELECT data FROM audit WHERE event = ? ORDER BY seq", (event,))]


def test_one_address_cannot_lock_out_every_approver_nor_learn_who_exists(app):
    answers: dict[str, list[tuple[int, str]]] = {}
    with _client(app, "127.0.0.2") as attacker:
        for name in [*APPROVERS, *GHOSTS, "taishoku"]:
            answers[name] = [_answer(_try(attacker, name, f"guess-{i}-wrong"), name) for i in range(MAX_FAILURES + 2)]
        # The right password from the attacker's address does not get in while that address is locked.
        assert _try(attacker, "kacho", APPROVERS["kacho"]).status_code == 401
    # Existing, missing and disabled names answer the same, lock included.
    first = answers["kacho"]
    assert [s for s, _ in first] == [401] * (MAX_FAILURES + 2)
    assert "ロック" in first[MAX_FAILURES - 1][1] and "ロック" in first[-1][1] and "ロック" not in first[0][1]
    for name, got in answers.items():
        assert got == first, (name, got, first)
    # Every approver still logs in from its own desk.
    with _client(app, "127.0.0.1") as desk:
        for name, pw in APPROVERS.items():
            r = _try(desk, name, pw)
            assert r.status_code == 303 and "ta_session" in r.headers.get("set-cookie", ""), (name, r.text[:300])
            desk.cookies.clear()
    locks = _audit(app, "user.locked")
    assert {(x["name"], x["client"]) for x in locks} >= {(n, "127.0.0.2") for n in [*APPROVERS, *GHOSTS]}
    assert all(x["seconds"] == LOCK_SECONDS for x in locks)


def test_a_guesser_that_keeps_on_waits_longer_each_time(app):
    """Backoff: once a lock has run out, the next MAX_FAILURES guesses lock the name for twice as long."""
    with _client(app, "127.0.0.3") as attacker:
        for _ in range(MAX_FAILURES):
            _try(attacker, "bucho", "wrong-wrong")
        with sqlite3.connect(app.data_dir / "state" / "ledger.sqlite3") as db:  # let the first lock run out
            db.execute("UPDATE login_failures SET locked_until = 1 WHERE name = 'bucho' AND client = '127.0.0.3'")
        r = _try(attacker, "bucho", "wrong-wrong")
        assert r.status_code == 401 and "ロック" not in r.text
        for _ in range(MAX_FAILURES - 1):
            r = _try(attacker, "bucho", "wrong-wrong")
        assert "ロック" in r.text
    mine = [x for x in _audit(app, "user.locked") if x["client"] == "127.0.0.3"]
    assert [x["seconds"] for x in mine] == [LOCK_SECONDS, 2 * LOCK_SECONDS]
    # An admin's unlock clears the name from every address.
    assert "locked" in ta("user", "list", data_dir=app.data_dir).stdout
    assert ta("user", "unlock", "bucho", data_dir=app.data_dir).returncode == 0
    with _client(app, "127.0.0.3") as c:
        assert _try(c, "bucho", APPROVERS["bucho"]).status_code == 303


def test_disabled_account_says_so_only_to_its_password(app):
    with _client(app, "127.0.0.4") as c:
        wrong = _answer(_try(c, "taishoku", "wrong-wrong"), "taishoku")
        ghost = _answer(_try(c, "ghost", "wrong-wrong"), "ghost")
        assert wrong == ghost and "無効" not in wrong[1]
        r = _try(c, "taishoku", "taishoku-pass-1")
        assert r.status_code == 401 and "無効" in r.text
