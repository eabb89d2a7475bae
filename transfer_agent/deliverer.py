"""Delivery: committing verdicts and plans, carrying them out, and retrying an inbox that fails.

Steps (each durable before the next; recovery.py completes an interrupted one): plan (names,
hashes) + verdict + audit 'verdict' committed as 'delivering' -> each file: temp name, fsync,
link to its final name; then one fsync of the directory (delivery.py) -> row 'delivered' or
'blocked' + audit 'delivery' (one transaction). If the inbox cannot be written meanwhile, the
job stays 'delivering' and the delivery thread replays the same plan with backoff (audit
'delivery.failed' once, 'delivery.resumed' when it works again).

Verdicts arrive from the dispatcher through `hand_over` and are delivered in order by one
thread (`run`), so that a freed worker gets its next file at once.
"""
from __future__ import annotations

import functools
import json
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdr.model import BLOCKED

from . import clock, delivery
from .cluster import Fenced
from .config import Config
from .crashpoints import crashpoint
from .mail_delivery import MailDelivery
from .metrics import Metrics
from .results import Key, KeyHolds, reuse_name
from .safefs import Tree
from .storage import JobStore, Row

log = logging.getLogger("transfer_agent.service")  # the appliance's steps log as the service did


@dataclass
class Retry:
    """A job whose committed plan could not be carried out: the delivery thread replays it when due."""

    key: Key | None  # dedup key held meanwhile (the plan reads the result cache)
    channel: str | None  # a delivery that works on this channel again ends the others' backoff
    failures: int
    first_failed: float  # wall clock
    due: float  # monotonic
    error: str


class Deliverer:
    def __init__(self, cfg: Config, ledger: JobStore, metrics: Metrics, holds: KeyHolds, stop: threading.Event,
                 kick: Callable[[], None], lock: threading.RLock, on_final: list[Callable[[int], None]],
                 tree: Tree | None = None) -> None:
        self.cfg = cfg
        self.tree = tree or Tree(cfg.data_dir)  # every inbox write goes through it (no link followed)
        self.ledger = ledger
        self.metrics = metrics
        self.holds = holds
        self._stop = stop
        self._kick = kick  # wakes the dispatcher: a key is free, or a job is queued again
        self.lock = lock  # anything that writes into the inbox takes it
        self.on_final = on_final  # called with the job id once final
        # Verdicts to commit and deliver, in order: (job id, dedup key or None, finish arguments).
        self._queue: queue.SimpleQueue[tuple[int, Key | None, tuple, dict] | None] = queue.SimpleQueue()
        # Jobs waiting for a delivery retry; only the delivery thread (and recovery before it) changes it.
        self.retries: dict[int, Retry] = {}
        self.mail = MailDelivery(cfg, ledger, self.tree)  # mail jobs: Maildir drops or the LGWAN relay
        self.node: Any = None  # cluster.Node: no inbox write once its lease ran out
        # (job row, result) -> the families the channel's policy never releases (set by the service).
        self.never_for: Callable[[dict[str, Any], dict[str, Any]], list[str]] | None = None

    def hand_over(self, job_id: int, key: Key | None, *args: Any, **kw: Any) -> None:
        """Queue a verdict for the delivery thread (arguments of `finish`). Until it is delivered the job
        stays 'processing' in the ledger (a crash requeues it, as before), and identical content waits
        to reuse it."""
        self.holds.pending_add(key)
        self._queue.put((job_id, key, args, kw))

    def adopt(self, job_id: int, key: Key | None) -> None:
        """A committed plan taken over from another serve node: replayed by the delivery thread."""
        self.holds.pending_add(key)
        self._queue.put((job_id, key, (), {"adopted": True}))

    def close(self) -> None:
        """Deliver what is queued, then stop `run` (the dispatcher has handed over its last result)."""
        self._queue.put(None)

    def run(self) -> None:
        """The delivery thread."""
        while True:
            try:
                item = self._queue.get(timeout=self._retry_wait())
            except queue.Empty:
                self._retry_due()
                continue
            if item is None:
                self._drop_retries()
                return
            job_id, key, args, kw = item
            if kw.get("adopted"):
                self._attempt(job_id, key, functools.partial(self._replay, job_id), None)
            else:
                self._attempt(job_id, key, functools.partial(self.finish, job_id, *args, **kw), None)
            self._retry_due()  # a steady stream of new files must not starve the retries

    # ------------------------------------------------------------------ attempts and retries

    def _attempt(self, job_id: int, key: Key | None, fn: Callable[[], None], retry: Retry | None) -> None:
        """One delivery attempt. A failure after the plan was committed is retried (the key stays held);
        before it, the job goes back to the queue."""
        ok = True
        try:
            fn()
        except Fenced as exc:
            # Another serve node owns the job now (or this node's lease ran out): it finishes the job.
            log.warning("job no longer this node's; left to its owner", extra={"event": "deliver.fenced",
                                                                            "job_id": job_id, "why": str(exc)})
            if self.node is not None and not self.node.valid() and self.status(job_id) == "delivering":
                self.schedule_retry(job_id, key, exc, retry)  # ours again once the lease is renewed
                return
            ok = False
        except Exception as exc:  # noqa: BLE001 - the ledger keeps the state
            if self.status(job_id) in ("delivering", None):
                self.schedule_retry(job_id, key, exc, retry)
                return
            ok = False
            self.metrics.errors.labels("deliver").inc()
            log.exception("delivering a job failed", extra={"event": "error", "job_id": job_id})
            self._requeue_if_processing(job_id)
        done = self.retries.pop(job_id, None)
        if done is not None:
            self.holds.retry_done(done.key)
        if ok and self.retries:
            channel = done.channel if done is not None else self._channel(job_id)
            now = time.monotonic()
            for other in self.retries.values():  # that inbox is likely back: do not wait out the backoff
                if other.channel == channel:
                    other.due = min(other.due, now)
        self._release(key)

    def _release(self, key: Key | None) -> None:
        if key is not None:
            self.holds.pending_done(key)
            self._kick()  # identical content may now be answered from the cache

    def _field(self, job_id: int, name: str) -> str | None:
        """A column of the job's ledger row; "gone" without a row, None when the ledger cannot say."""
        try:
            row = self.ledger.job(job_id)
        except Exception:  # noqa: BLE001
            return None
        return row[name] if row is not None else "gone"

    def status(self, job_id: int) -> str | None:
        return self._field(job_id, "status")

    def _channel(self, job_id: int) -> str | None:
        return self._field(job_id, "channel")

    def schedule_retry(self, job_id: int, key: Key | None, exc: Exception, retry: Retry | None) -> None:
        self.metrics.errors.labels("deliver").inc()
        error = f"{type(exc).__name__}: {exc}"
        if retry is None:
            retry = Retry(key, self._channel(job_id), 0, time.time(), 0.0, error)
            self.holds.retry_add(key)
            # The first failure is audited (later ones only logged): the job is held, not lost.
            try:
                with self.ledger.tx() as t:
                    t.audit("delivery.failed", {"error": error}, job_id=job_id)
            except Exception:  # noqa: BLE001 - the ledger may share the failing disk
                log.exception("cannot audit a failed delivery", extra={"event": "error", "job_id": job_id})
        retry.failures += 1
        delay = min(self.cfg.delivery_retry_max_seconds,
                    self.cfg.delivery_retry_seconds * 2 ** min(retry.failures - 1, 30))
        retry.due = time.monotonic() + delay
        self.retries[job_id] = retry
        log.warning("delivery failed, will retry", exc_info=retry.failures == 1,
                    extra={"event": "deliver.retry", "job_id": job_id, "failures": retry.failures,
                           "retry_in": round(delay, 3), "error": error, "waiting": len(self.retries)})

    def resume_later(self, job_id: int, key: Key, exc: Exception) -> None:
        """A committed plan recovery could not carry out: the delivery thread retries it, and identical
        content waits meanwhile, as while delivering."""
        self.holds.pending_add(key)
        self.schedule_retry(job_id, key, exc, None)

    def _retry_wait(self) -> float | None:
        """Seconds until the next retry is due (None: nothing to retry, or stopping)."""
        if not self.retries or self._stop.is_set():
            return None
        return max(0.0, min(r.due for r in self.retries.values()) - time.monotonic())

    def _retry_due(self) -> None:
        now = time.monotonic()
        for job_id, retry in sorted(self.retries.items()):
            if self._stop.is_set():
                return  # shutting down: the plans stay committed and are replayed at the next start
            if retry.due <= now:
                self._attempt(job_id, retry.key, functools.partial(self._redeliver, job_id, retry), retry)

    def _redeliver(self, job_id: int, retry: Retry) -> None:
        status = self.status(job_id)
        if status == "delivering":
            self.deliver(job_id, retry)
        elif status is None:
            raise RuntimeError("ledger unavailable")
        elif status == "processing":  # the verdict was never committed after all
            self._requeue_if_processing(job_id)
        # Any other state: done or requeued meanwhile; _attempt drops the retry.

    def _replay(self, job_id: int) -> None:
        row = self.ledger.job(job_id)
        if row is None or row["status"] != "delivering":
            return
        plan = json.loads(row["plan"])
        if plan.get("kind") != "mail":  # a mail's Maildir drop cleans its own tmp/ name
            delivery.remove_temps(plan, self.tree, job_id)
        self.deliver(job_id)

    def _drop_retries(self) -> None:
        if self.retries:
            log.warning("stopping with deliveries still failing; they are replayed at the next start",
                        extra={"event": "deliver.retry_abandoned", "job_ids": sorted(self.retries)})
        for retry in self.retries.values():
            self.holds.retry_done(retry.key)
            self._release(retry.key)
        self.retries.clear()

    def _requeue_if_processing(self, job_id: int) -> None:
        """A job whose verdict was never committed goes back to the queue (max_attempts still applies);
        one already 'delivering' has a committed plan that the next start replays."""
        try:
            with self.ledger.tx() as t:
                t.requeue_if_processing(job_id)
        except Exception:  # noqa: BLE001 - the ledger itself is failing: recovery at start handles it
            log.exception("cannot requeue", extra={"event": "error", "job_id": job_id})
            return
        self._kick()

    # ------------------------------------------------------------------ commit and carry out

    def finish(self, job_id: int, result: dict[str, Any], cache: Path | None, out_name: str | None,
               text_name: str | None, reused_from: int | None, first_name: str | None = None) -> None:
        """Commit the verdict and the delivery plan, then deliver."""
        with self.lock:
            row = dict(self.ledger.job(job_id))
            received = clock.day(row["received_at"])  # the appliance's zone, as receipts and bundles
            inbox_dir = self.cfg.inbox / row["channel"] / received
            if row["subdir"]:
                inbox_dir = inbox_dir.joinpath(*row["subdir"].split("/"))
            deliver_as = out_name
            if out_name and first_name:
                deliver_as = reuse_name(row["name"], first_name, out_name)
            extra = {"receipt": self.ledger.receipt_of(row.get("submission_id")),
                     **self._retry_context(row, result, self.tree.rel(inbox_dir))}
            never = self.never_for(row, result) if self.never_for and not row["mail_id"] else []
            if never:
                extra["never"] = never
            try:
                if row["mail_id"]:
                    plan = self.mail.plan(row, result, cache, out_name, self.tree.rel(inbox_dir))
                else:
                    plan = delivery.build_plan(data_dir=self.cfg.data_dir, inbox_dir=inbox_dir, job=row, result=result,
                                               tree=self.tree,
                                               cache_dir=cache, out_name=out_name, text_name=text_name,
                                               deliver_as=deliver_as, reused_from=reused_from, **extra)
            except delivery.SourceMissing:
                self._requeue(job_id, cache, "cached output missing")
                return
            plan["args"] = {"cache": str(cache.relative_to(self.cfg.data_dir)) if cache else None,
                            "out_name": out_name, "text_name": text_name, "deliver_as": deliver_as, **extra}
            threats = sorted({t["id"] for t in result.get("threats", [])})
            with self.ledger.tx() as t:
                t.commit_verdict(job_id, result, plan, reused_from, self.tree.rel(inbox_dir))
                t.audit("verdict", {"verdict": result["verdict"], "policy": row["policy"], "threats": threats,
                                    "reason_en": result.get("reason_en"), "sha256": row["sha256"],
                                    "reused_from": reused_from}, job_id=job_id)
            crashpoint("deliver.planned")
            self.deliver(job_id, first=True)

    def _retry_context(self, row: dict[str, Any], result: dict[str, Any], dir_rel: str) -> dict[str, Any]:
        """A password retry: one that failed delivers nothing (the first notice stands, the console shows
        the attempt); one that worked supersedes the notices of its file (removed, names reused)."""
        tag = row.get("drop_path")
        if row.get("source") != "console" or not isinstance(tag, str) or not tag.startswith("retry of job "):
            return {}
        if result.get("verdict") == BLOCKED:
            return {"quiet": True}
        try:
            first = int(tag.rsplit(" ", 1)[1])
        except ValueError:
            return {}
        old = []
        for other in self.ledger.retry_chain(first, tag):
            plan = json.loads(other["plan"]) if other["id"] != row["id"] and other["plan"] else {}
            if plan.get("dir") == dir_rel:
                old += [{"name": f["name"], "sha256": f["sha256"]} for f in plan.get("files", [])
                        if f["kind"] in ("notice", "report")]
        return {"supersede": old}

    def _requeue(self, job_id: int, cache: Path | None, why: str) -> None:
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
        with self.ledger.tx() as t:
            t.requeue_without_verdict(job_id)
        log.warning("job requeued", extra={"event": "requeue", "job_id": job_id, "why": why})
        self._kick()

    def deliver(self, job_id: int, retry: Retry | None = None, first: bool = False) -> None:
        """Carry out the committed plan; `retry` when earlier attempts failed (audited on success); `first`:
        right after the plan was committed (nothing of it can be in place yet)."""
        with self.lock:
            row = self.ledger.job(job_id)
            plan = json.loads(row["plan"])
            for _ in range(5):
                if plan.get("kind") == "mail":
                    try:
                        names = self.mail.execute(job_id, plan, replay=not first)
                    except delivery.SourceMissing:
                        args = plan.get("args") or {}
                        self._requeue(job_id, self.cfg.data_dir / args["cache"] if args.get("cache") else None,
                                      "cached output missing or altered")
                        return
                    plan = json.loads(self.ledger.job(job_id)["plan"])  # the relay marks its progress there
                    break
                if self.node is not None:
                    self.node.check()  # no inbox write once another node may have taken the job over
                try:
                    names = delivery.execute(plan, self.tree, job_id, self.cfg.fsync, crashpoint)
                    break
                except delivery.Conflict as exc:
                    # A planned name was taken by someone else's file: plan again, keep theirs.
                    delivery.remove_temps(plan, self.tree, job_id)
                    log.warning("name taken meanwhile, planning again",
                                extra={"event": "deliver.conflict", "job_id": job_id, "file": str(exc)})
                    plan = self._replan(row, plan)
                except delivery.SourceMissing:
                    delivery.remove_temps(plan, self.tree, job_id)
                    delivery.unlink_delivered(plan, self.tree)
                    args = plan.get("args") or {}
                    self._requeue(job_id, self.cfg.data_dir / args["cache"] if args.get("cache") else None,
                                  "cached output missing or altered")
                    return
            else:
                raise RuntimeError(f"job {job_id}: could not find free names in the inbox")
            crashpoint("deliver.done")
            final = "blocked" if row["verdict"] == BLOCKED else "delivered"
            had_password = row["password"] is not None
            files = [{"name": f["name"], "kind": f["kind"], "sha256": f["sha256"]} for f in plan["files"]]
            with self.ledger.tx() as t:
                t.finish(job_id, final, names)
                audit = {"dir": plan["dir"], "files": files, "verdict": row["verdict"]}
                if plan.get("remove"):
                    audit["superseded"] = [f["name"] for f in plan["remove"]]  # notices of a retried file
                t.audit("delivery", audit, job_id=job_id)
                if retry is not None:
                    t.audit("delivery.resumed", {"failures": retry.failures, "first_error": retry.error,
                                                 "waited_seconds": round(time.time() - retry.first_failed, 1)},
                            job_id=job_id)
        if had_password:
            self.ledger.forget_secrets()
        row = self.ledger.job(job_id)
        self.metrics.files.labels(row["verdict"], row["channel"]).inc()
        if row["mail_id"]:
            self.metrics.mails.labels(row["verdict"], row["channel"], plan.get("deliver", "")).inc()
        self.metrics.latency.observe(max(0.0, row["finished_at"] - row["received_at"]))
        if row["reused_from"]:
            self.metrics.reused.inc()
        if retry is not None:
            log.info("delivery resumed", extra={"event": "deliver.resumed", "job_id": job_id,
                                                "failures": retry.failures})
        log.info("delivered" if final == "delivered" else "blocked, notice delivered",
                 extra={"event": f"job.{final}", "job_id": job_id, "channel": row["channel"], "file": row["name"],
                        "verdict": row["verdict"], "dir": plan["dir"], "main": plan["main"],
                        "reused_from": row["reused_from"]})
        for hook in self.on_final:
            try:
                hook(job_id)
            except Exception:  # noqa: BLE001 - a hook must not undo a delivery
                log.exception("on_final hook failed", extra={"event": "error", "job_id": job_id})

    def _replan(self, row: Row, old: dict[str, Any]) -> dict[str, Any]:
        args = old.get("args") or {}
        cache = self.cfg.data_dir / args["cache"] if args.get("cache") else None
        plan = delivery.build_plan(data_dir=self.cfg.data_dir, inbox_dir=self.tree.path(old["dir"]), tree=self.tree,
                                   job=dict(row), result=json.loads(row["result"]), cache_dir=cache,
                                   out_name=args.get("out_name"), text_name=args.get("text_name"),
                                   deliver_as=args.get("deliver_as"), reused_from=row["reused_from"],
                                   receipt=args.get("receipt"), supersede=args.get("supersede"),
                                   quiet=bool(args.get("quiet")), never=args.get("never"))
        plan["args"] = args
        with self.ledger.tx() as t:
            t.set_plan(row["id"], plan)
        return plan
