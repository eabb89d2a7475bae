"""Crash recovery: `recover()` runs at start, before any thread, and finishes or undoes each step.

Crash safety, step by step (every arrow is durable before the next step starts):
intake   row 'received' (dropbox path) -> rename into work/intake/<id> -> sha256 recorded
         -> rename into quarantine/<sha> -> row 'queued' + audit 'intake' (one transaction);
         files that are ready together take each step together (shared commits and fsyncs)
         (intake.py)
process  row 'processing' -> worker writes into work/jobs/<id>-<attempt>/ -> outputs moved
         into the result cache state/results/<sha>/<policy>/<ext>/ -> handed to the delivery
         thread (the job stays 'processing' until then; the worker already takes the next file)
         (dispatcher.py)
deliver  plan (names, hashes) + verdict + audit 'verdict' committed as 'delivering'
         -> each file: temp name, fsync, link to final name; then one fsync of the directory
         -> row 'delivered'/'blocked' + audit 'delivery' (one transaction)
         If the inbox cannot be written meanwhile, the job stays 'delivering' and the delivery
         thread replays the same plan with backoff (audit 'delivery.failed' once, 'delivery.resumed').
         (deliverer.py, delivery.py)
mail     (SMTP intake) spooled + row 'received' by the internet side -> claimed 'taking' -> one job
         per channel, as for intake above (jobs.mail_id) -> 'queued' + audit 'smtp.taken'
         (mail_spool.py, mail_intake.py); delivered by a mail plan (Maildir drops or the relay,
         mail_delivery.py) through the same 'delivering' state and retries
Recovery: a 'received' job is taken or finished from wherever its file is (or forgotten if the
file is gone or was left in the dropbox); 'processing' goes back to 'queued'; 'delivering'
replays its committed plan; recorded or half-taken mails are taken (Service.recover, then every
second). Tests kill the service at each named step (crashpoints.py).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from . import delivery, safefs
from .config import Config
from .deliverer import Deliverer
from .dropbox import NotTaken, StillWriting, sig, stat_beneath, unlink_beneath
from .files import fsync_dir
from .intake import Intake
from .quarantine import Quarantine
from .results import claimed_ext
from .storage import JobStore, Row

log = logging.getLogger("transfer_agent.service")  # the appliance's steps log as the service did


def recover(cfg: Config, ledger: JobStore, quarantine: Quarantine, intake: Intake, deliverer: Deliverer) -> None:
    """Bring every unfinished job back to a consistent state (runs before any thread starts)."""
    for row in ledger.jobs("received"):
        # One job that cannot be recovered now must not keep the service from starting: it stays
        # as it is (nothing delivered) and is tried again at the next start.
        try:
            _recover_intake(cfg, ledger, quarantine, intake, row)
        except Exception:  # noqa: BLE001 - logged with the job id, retried at the next start
            log.exception("cannot recover intake", extra={"event": "recover.failed", "job_id": row["id"]})
    rows = ledger.jobs("processing")
    for row in [r for r in rows if r["source"] == "too_large"]:
        try:  # a too-large notice whose delivery never started: deliver it now
            deliverer.finish(row["id"], json.loads(row["result"]), None, None, None, None)
        except Exception:  # noqa: BLE001 - stays 'processing'; tried again at the next start
            log.exception("cannot deliver a too-large notice", extra={"event": "recover.failed", "job_id": row["id"]})
    rows = [r for r in rows if r["source"] != "too_large"]
    if rows:
        with ledger.tx() as t:
            t.requeue_all_processing()
        log.info("requeued interrupted jobs", extra={"event": "recover.requeue",
                                                     "job_ids": [r["id"] for r in rows]})
    for row in ledger.jobs("delivering"):
        log.info("completing interrupted delivery", extra={"event": "recover.deliver", "job_id": row["id"]})
        try:
            # Inside the try: an inbox that cannot be written must not keep the service from starting.
            plan = json.loads(row["plan"])
            if plan.get("kind") != "mail":  # a mail's Maildir drop cleans its own tmp/ name
                delivery.remove_temps(plan, deliverer.tree, row["id"])
            deliverer.deliver(row["id"])
        except Exception as exc:  # noqa: BLE001 - stays 'delivering'; the delivery thread retries it
            log.exception("cannot complete delivery", extra={"event": "recover.failed", "job_id": row["id"]})
            if deliverer.status(row["id"]) == "delivering":
                deliverer.resume_later(row["id"], (row["sha256"], row["policy"], claimed_ext(row["name"])), exc)
    shutil.rmtree(cfg.work / "jobs", ignore_errors=True)
    (cfg.work / "jobs").mkdir(parents=True, exist_ok=True)
    for part in (cfg.work / "intake").glob("*.copy"):
        part.unlink()  # a copy whose job row is gone or already re-taken
    inbox = deliverer.tree.rel(cfg.inbox)
    for dfd, name in safefs.fwalk_names(deliverer.tree, inbox, lambda n: n.startswith(".") and n.endswith(".tmp-orig")):
        safefs.unlink(dfd, name)  # an approved original whose copy was cut short
    stray = [p.name for p in (cfg.work / "intake").iterdir()]
    if stray:
        log.error("files in work/intake without a job row (left in place)",
                  extra={"event": "recover.stray", "files": stray})


def _recover_intake(cfg: Config, ledger: JobStore, quarantine: Quarantine, intake: Intake, row: Row) -> None:
    jid = row["id"]
    taken = cfg.work / "intake" / str(jid)
    drop_path = Path(os.fsdecode(row["drop_path"]))
    dropbox = row["source"] == "dropbox"
    if taken.exists():
        # Intake died between copy and unlink: the same file is still there.
        try:
            if dropbox:
                st = stat_beneath(cfg.dropbox, drop_path)
                if sig(st) == row["drop_sig"]:
                    unlink_beneath(cfg.dropbox, drop_path, same_as=st)
            elif sig(os.lstat(drop_path)) == row["drop_sig"]:
                os.unlink(drop_path)
        except (FileNotFoundError, NotTaken):
            pass
        intake.finish(jid, taken)
    elif row["sha256"] and quarantine.path_for(row["sha256"]).exists():
        with quarantine.lock:
            intake.mark_queued(jid)
    elif os.path.lexists(drop_path):
        try:
            intake.take(drop_path, taken, own=not dropbox)
        except (StillWriting, NotTaken, FileNotFoundError) as exc:
            with ledger.tx() as t:  # left where it is: the watcher decides again
                t.delete_job(jid)
            log.warning("not taken after restart", extra={"event": "recover.skip", "job_id": jid,
                                                          "path": str(drop_path), "why": str(exc)})
            return
        if cfg.fsync:
            fsync_dir(drop_path.parent)
            fsync_dir(taken.parent)
        intake.finish(jid, taken)
    else:
        with ledger.tx() as t:
            t.delete_job(jid)
        log.warning("file vanished before intake", extra={"event": "recover.vanished", "job_id": jid,
                                                          "path": str(drop_path)})
        return
    log.info("intake completed after restart", extra={"event": "recover.intake", "job_id": jid})
