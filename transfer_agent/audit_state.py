"""The final state of every job and original request, recomputed from the audit trail alone.

The chain and its anchor prove the audit rows are as written; this proves the tables the console
and the API read agree with them: someone who flips a blocked job to clean in the jobs table, or
marks an original request approved, without a matching audit row, is named by `audit verify`.
Events read: intake / job.password_retry (a job exists, its content), verdict, delivery (final
state, names written); original.requested / approved / rejected / released; exchange.created /
exchange.revoked and the api.submission rows of an upload request (its state and uses);
smtp.received / abandoned / taken (a mail of the SMTP intake: its state and the job of each of
its channels).
"""
from __future__ import annotations

import json
from typing import Any

from . import db

FINAL = ("delivered", "blocked")
_JOB_EVENTS = ("intake", "job.password_retry", "verdict", "delivery")
_REQ_EVENTS = ("original.requested", "original.approved", "original.rejected", "original.released")
_MAIL_EVENTS = ("smtp.received", "smtp.abandoned", "smtp.taken")


def _rows(conn: Any, events: tuple[str, ...]) -> list[tuple[int, str, int | None, dict[str, Any]]]:
    marks = ",".join("?" * len(events))
    out = []
    for seq, event, job_id, data in conn.execute(
            f"SELECT seq, event, job_id, data FROM audit WHERE event IN ({marks}) ORDER BY seq", events):
        try:
            d = json.loads(data)
        except ValueError:
            d = {}
        out.append((seq, event, job_id, d if isinstance(d, dict) else {}))
    return out


def _has_table(conn: Any, name: str) -> bool:
    return db.has_table(conn, name)


def job_differences(conn: Any) -> list[str]:
    expected: dict[int, dict[str, Any]] = {}
    for seq, event, job_id, d in _rows(conn, _JOB_EVENTS):
        if job_id is None:
            continue
        e = expected.setdefault(job_id, {"seq": seq})
        if event in ("intake", "job.password_retry"):
            e.update(name=d.get("name"), channel=d.get("channel"), status="queued")
            if event == "intake":
                e["sha256"] = d.get("sha256")
        elif event == "verdict":
            e.update(verdict=d.get("verdict"), status="delivering", seq=seq)
        elif event == "delivery":
            e.update(status="blocked" if d.get("verdict") == "blocked" else "delivered", verdict=d.get("verdict"),
                     files=sorted(f.get("name") for f in d.get("files", [])), seq=seq)
    problems: list[str] = []
    seen: set[int] = set()
    for row in conn.execute("SELECT id, status, verdict, sha256, name, channel, delivered FROM jobs ORDER BY id"):
        jid, status, verdict, sha, name, channel, delivered = row
        seen.add(jid)
        e = expected.get(jid)
        if status in FINAL:
            if e is None or e.get("status") not in FINAL:
                problems.append(f"job {jid} ({name}): the jobs table says {status} ({verdict}), but the audit trail"
                                " has no delivery for it")
                continue
            said = f"{e['status']} ({e['verdict']}), audit seq {e['seq']}"
            if (status, verdict) != (e["status"], e["verdict"]):
                problems.append(f"job {jid} ({name}): the jobs table says {status} ({verdict}), the audit trail says"
                                f" {said}")
            names = sorted(json.loads(delivered)) if delivered else []
            if names != e["files"]:
                problems.append(f"job {jid} ({name}): delivered names {names} differ from the audit trail's"
                                f" {e['files']}")
        elif e is not None and e.get("status") in FINAL:
            problems.append(f"job {jid} ({name}): the jobs table says {status}, the audit trail says"
                            f" {e['status']} ({e['verdict']}), audit seq {e['seq']}")
        if e is not None:
            if e.get("sha256") and sha != e["sha256"]:
                problems.append(f"job {jid} ({name}): sha256 {str(sha)[:16]}... differs from the audited"
                                f" {e['sha256'][:16]}...")
            if e.get("name") is not None and (name, channel) != (e["name"], e["channel"]):
                problems.append(f"job {jid}: name/channel {name!r}/{channel!r} differ from the audited"
                                f" {e['name']!r}/{e['channel']!r}")
    for jid, e in sorted(expected.items()):
        if jid not in seen and "name" in e:
            problems.append(f"job {jid} ({e['name']}) is in the audit trail (seq {e['seq']}) but not in the jobs table")
    return problems


def request_differences(conn: Any) -> list[str]:
    if not _has_table(conn, "original_requests"):
        return []
    expected: dict[int, dict[str, Any]] = {}
    for seq, event, job_id, d in _rows(conn, _REQ_EVENTS):
        rid = d.get("request_id")
        if not isinstance(rid, int):
            continue
        e = expected.setdefault(rid, {"status": "pending", "job_id": job_id, "released": None, "seq": seq,
                                      "part": d.get("part") if event == "original.requested" else None})
        if event == "original.approved":
            e.update(status="approved", seq=seq)
        elif event == "original.rejected":
            e.update(status="rejected", seq=seq)
        elif event == "original.released":
            e.update(released=d.get("path"), seq=seq)
    problems: list[str] = []
    seen: set[int] = set()
    has_part = "part" in db.table_columns(conn, "original_requests")
    for rid, job_id, status, released, part in conn.execute(
            "SELECT id, job_id, status, released, " + ("part" if has_part else "NULL") +
            " FROM original_requests ORDER BY id"):
        seen.add(rid)
        e = expected.get(rid)
        if e is None:
            problems.append(f"original request {rid} (job {job_id}, {status}) has no original.requested row in the"
                            " audit trail")
            continue
        if part != e["part"]:
            problems.append(f"original request {rid}: asks for attachment {part!r}, the audit trail says"
                            f" {e['part']!r} (audit seq {e['seq']})")
        if (status, job_id, released) != (e["status"], e["job_id"], e["released"]):
            problems.append(f"original request {rid}: the table says {status} for job {job_id}"
                            f" (released {released!r}), the audit trail says {e['status']} for job {e['job_id']}"
                            f" (released {e['released']!r}), audit seq {e['seq']}")
    for rid, e in sorted(expected.items()):
        if rid not in seen:
            problems.append(f"original request {rid} is in the audit trail (seq {e['seq']}) but not in the table")
    return problems


def upload_request_differences(conn: Any) -> list[str]:
    """Upload requests (exchange.py): each exists, is revoked or not, and has taken as many submissions as
    the audit trail says (exchange.created / exchange.revoked / api.submission with its request id)."""
    if not _has_table(conn, "upload_requests"):
        return []
    expected: dict[str, dict[str, Any]] = {}
    for seq, event, _job, d in _rows(conn, ("exchange.created", "exchange.revoked", "api.submission")):
        rid = d.get("request_id")
        if not isinstance(rid, str):
            continue
        if event == "exchange.created":
            expected[rid] = {"channel": d.get("channel"), "form": d.get("form"), "expires_at": d.get("expires_at"),
                             "max_uses": d.get("max_uses"), "revoked": False, "uses": 0, "seq": seq}
        elif rid in expected:
            if event == "exchange.revoked":
                expected[rid].update(revoked=True, seq=seq)
            else:
                expected[rid]["uses"] += 1
    problems: list[str] = []
    seen: set[str] = set()
    for rid, channel, form, expires_at, max_uses, uses, revoked_at in conn.execute(
            "SELECT id, channel, form, expires_at, max_uses, uses, revoked_at FROM upload_requests ORDER BY created_at"):
        seen.add(rid)
        e = expected.get(rid)
        if e is None:
            problems.append(f"upload request {rid} ({channel}) has no exchange.created row in the audit trail")
            continue
        table = (channel, form, expires_at, max_uses, uses, revoked_at is not None)
        audited = (e["channel"], e["form"], e["expires_at"], e["max_uses"], e["uses"], e["revoked"])
        if table != audited:
            problems.append(f"upload request {rid}: the table says channel {channel!r}, form {form!r}, expires"
                            f" {expires_at}, max_uses {max_uses}, {uses} use(s), revoked {revoked_at is not None};"
                            f" the audit trail says {e['channel']!r}, {e['form']!r}, {e['expires_at']},"
                            f" {e['max_uses']}, {e['uses']}, {e['revoked']} (seq {e['seq']})")
    for rid, e in expected.items():
        if rid not in seen:
            problems.append(f"upload request {rid} is in the audit trail (seq {e['seq']}) but not in the table")
    return problems


def mail_differences(conn: Any) -> list[str]:
    """Each mail's state ('taking' is 'received' claimed, not audited) and which job took each channel."""
    if not _has_table(conn, "mails"):
        return []
    expected: dict[str, dict[str, Any]] = {}
    for seq, event, _job, d in _rows(conn, _MAIL_EVENTS):
        mid = d.get("mail_id")
        if not isinstance(mid, str):
            continue
        if event == "smtp.received":
            expected[mid] = {"status": "received", "seq": seq, "sha256": d.get("sha256"),
                             "rcpts": d.get("rcpts"), "jobs": {}}
        elif mid in expected:
            e = expected[mid]
            e.update(status="abandoned" if event == "smtp.abandoned" else "queued", seq=seq)
            if event == "smtp.taken":
                e["jobs"] = {str(c): j for c, j in (d.get("jobs") or {}).items()}
    problems: list[str] = []
    seen: set[str] = set()
    for mid, status, sha in conn.execute("SELECT id, status, sha256 FROM mails ORDER BY received_at"):
        seen.add(mid)
        e = expected.get(mid)
        if e is None:
            problems.append(f"mail {mid} ({status}) has no smtp.received row in the audit trail")
            continue
        said = "received" if status == "taking" else status
        if said != e["status"] or sha != e["sha256"]:
            problems.append(f"mail {mid}: the table says {status} (sha256 {str(sha)[:16]}...), the audit trail says"
                            f" {e['status']} ({str(e['sha256'])[:16]}...), audit seq {e['seq']}")
        rcpts = [r[0] for r in conn.execute("SELECT address FROM mail_rcpts WHERE mail_id = ? ORDER BY n", (mid,))]
        if rcpts != e["rcpts"]:
            problems.append(f"mail {mid}: recipients {rcpts} differ from the audited {e['rcpts']}")
        if e["status"] == "queued":
            jobs = {str(c): j for c, j in conn.execute(
                "SELECT channel, id FROM jobs WHERE mail_id = ? AND source = 'smtp'", (mid,))}
            if jobs != e["jobs"]:
                problems.append(f"mail {mid}: jobs {jobs} differ from the audited {e['jobs']}")
    for mid, e in expected.items():
        if mid not in seen:
            problems.append(f"mail {mid} is in the audit trail (seq {e['seq']}) but not in the table")
    return problems


def outbox_differences(conn: Any) -> list[str]:
    """Mails of the appliance (smtp_relay.Outbox: receipt mails, digests): each queued message has its
    outbox.queued row, each recipient the table marks sent or refused has exactly one outbox.sent /
    outbox.rejected row, and none was sent twice."""
    if not _has_table(conn, "outbox"):
        return []
    expected: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for seq, event, _job, d in _rows(conn, ("outbox.queued", "outbox.sent", "outbox.rejected")):
        qid = d.get("queue_id")
        if not isinstance(qid, str):
            continue
        if event == "outbox.queued":
            expected[qid] = {"rcpts": {r: "pending" for r in d.get("rcpts") or []}, "seq": seq}
            continue
        e = expected.get(qid)
        if e is None:
            problems.append(f"outbox {qid}: {event} (seq {seq}) for a message never queued")
            continue
        state = "sent" if event == "outbox.sent" else "rejected"
        for r in (d.get("rcpts") or []) if state == "sent" else list(d.get("rcpts") or {}):
            if e["rcpts"].get(r) != "pending":
                problems.append(f"outbox {qid}: {r} {state} again at seq {seq} (was {e['rcpts'].get(r)})")
            e["rcpts"][r] = state
            e["seq"] = seq
    seen: set[str] = set()
    for qid, rcpts in conn.execute("SELECT queue_id, rcpts FROM outbox ORDER BY id"):
        seen.add(qid)
        e = expected.get(qid)
        if e is None:
            problems.append(f"outbox {qid} has no outbox.queued row in the audit trail")
            continue
        try:
            table = json.loads(rcpts)
        except ValueError:
            table = None
        if table != e["rcpts"]:
            problems.append(f"outbox {qid}: the table says {table}, the audit trail says {e['rcpts']} (seq {e['seq']})")
    for qid, e in expected.items():
        if qid not in seen:
            problems.append(f"outbox {qid} is in the audit trail (seq {e['seq']}) but not in the table")
    return problems


def differences(conn: Any, limit: int = 20) -> list[str]:
    """Every difference between the tables and the audit trail (at most `limit`)."""
    return (job_differences(conn) + request_differences(conn) + upload_request_differences(conn)
            + mail_differences(conn) + outbox_differences(conn))[:limit]
