"""Password retry (PPAP): a file blocked for want of a password is processed again from its
quarantined original, with the password a clerk was given by another way."""
from __future__ import annotations

import json
import logging
from typing import Any

from .quarantine import Quarantine
from .storage import JobStore

log = logging.getLogger("transfer_agent.service")  # the appliance's steps log as the service did


def retry_tag(job: Any) -> str:
    """What password retries of this job's file are filed under (their drop_path): the first job
    of the file, so that retries of a retry belong to the same chain."""
    dp = job["drop_path"]
    if job["source"] == "console" and isinstance(dp, str) and dp.startswith("retry of job "):
        return dp
    return f"retry of job {job['id']}"


def wants_password(status: str, result: dict[str, Any] | None, mail: bool = False) -> bool:
    """Whether a final job's result is waiting for a password: a file blocked as encrypted, or a mail
    (delivered with notices in place of its PPAP attachments) whose report lists `needs_password`:
    the whole mail is then run again with the password, which the engine hands to every attachment."""
    result = result or {}
    if mail:
        return status in ("delivered", "blocked") and bool((result.get("mail") or {}).get("needs_password"))
    return status == "blocked" and any(
        th.get("action") == "blocked" and str(th.get("id", "")).endswith(".encrypted")
        for th in result.get("threats", []))


class RetryRefused(Exception):
    """A password retry that cannot be done; `code` names why (for the console's message)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def queue_retry(ledger: JobStore, quarantine: Quarantine, job_id: int, password: str, actor: str) -> int:
    """Queue the retry of `job_id` with `password`; returns the new job's id (its result is delivered
    next to the blocked notice like any job's). Raises RetryRefused."""
    if not password or len(password) > 1024:
        raise RetryRefused("bad_password")
    with quarantine.lock, ledger.tx() as t:
        row = t.job(job_id)
        if row is None:
            raise RetryRefused("not_found")
        result = json.loads(row["result"]) if row["result"] else {}
        mail = bool(row["mail_id"])
        if not wants_password(row["status"], result, mail):
            raise RetryRefused("not_encrypted")
        # A chain of retries is judged as one: one at a time, and none once the file is delivered
        # (a mail: once a retry opened every attachment).
        tag = retry_tag(row)
        for other in t.password_retries(tag):
            if other["status"] not in ("delivered", "blocked"):
                raise RetryRefused("retry_running")
            done = (not wants_password(other["status"], json.loads(other["result"]) if other["result"] else {}, True)
                    if mail else other["verdict"] != "blocked")
            if done:
                raise RetryRefused("retry_done")
        q = t.original(row["sha256"])
        if q is None or q["purged_at"] is not None or not quarantine.path_for(row["sha256"]).is_file():
            raise RetryRefused("purged")
        # Not tied to the submission (its status and manifest stay as the applicant was told).
        # received_at is the original's: the result lands in the same dated folder as the notice,
        # and the retry does not extend how long the original is kept.
        new_id = t.add_password_retry(row, tag, password)
        data = {"from_job": job_id, "name": row["name"], "channel": row["channel"]}
        if mail:
            data["mail_id"] = row["mail_id"]
        t.audit("job.password_retry", data, job_id=new_id, actor=actor)
    log.info("processing again with a password", extra={"event": "job.password_retry", "job_id": new_id,
                                                         "from_job": job_id, "actor": actor})
    return new_id
