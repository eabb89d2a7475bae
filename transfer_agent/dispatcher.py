"""Dispatch: choosing queued work, reusing results of identical content, submitting the rest to
the executor, and completing what it returns.

Steps (recovery.py requeues an interrupted one): row 'processing' -> the worker writes into
work/jobs/<id>-<attempt>/ -> outputs moved into the result cache state/results/<sha>/<policy>/<ext>/
-> handed to the delivery thread (the job stays 'processing' until its verdict is committed there;
the worker already takes the next file). The executor is the seam to the CDR engine (executor.py).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdr import engine_fingerprint
from cdr.model import BLOCKED, FileResult, Threat
from cdr.policy import Policy
from cdr.worker import Job

from .config import Config
from .executor import Executor, LocalExecutor
from .metrics import Metrics
from .results import Key, KeyHolds, claimed_ext, content_result
from .storage import JobStore, Row

log = logging.getLogger("transfer_agent.service")  # the appliance's steps log as the service did


def trust_intake(policy: dict[str, Any], authserv_id: str) -> dict[str, Any]:
    """The policy for a mail of our SMTP intake: our Authentication-Results (the SPF result computed at
    intake, the topmost field of the message) is taken over by the engine. Only for these jobs: a
    mail dropped as a file could carry a forged field under our name."""
    fam = dict(policy.get("families", {}).get("mail") or {})
    if not fam:
        return policy
    trusted = [t for t in fam.get("trusted_authserv_ids", []) if isinstance(t, str)]
    fam["trusted_authserv_ids"] = [*trusted, authserv_id] if authserv_id not in trusted else trusted
    return {**policy, "families": {**policy["families"], "mail": fam}}


@dataclass
class Inflight:
    future: Future
    key: Key
    out_dir: Path
    started: float
    source: str | None = None  # the job's source_key (fair dispatch)
    attempt: int = 0  # the attempt this node claimed (a result for another is not ours)


class Dispatcher:
    """Runs the processor thread (`run`); `hand_over(job_id, key, result, cache, out_name, text_name,
    reused_from, first_name=...)` passes each verdict on to delivery."""

    def __init__(self, cfg: Config, ledger: JobStore, metrics: Metrics, policy_for: Callable[..., Policy],
                 holds: KeyHolds, hand_over: Callable[..., None], stop: threading.Event) -> None:
        self.cfg = cfg
        self.ledger = ledger
        self.metrics = metrics
        self.policy_for = policy_for
        self.holds = holds
        self.hand_over = hand_over
        self._stop = stop
        self.results_root = cfg.results_root
        self.blobs = cfg.blob_store()  # originals, cached results, job outputs (blobstore.py)
        self.executor: Executor | None = None  # set by the service at start
        self.inflight: dict[int, Inflight] = {}
        # Finished job ids, and None to wake the processor (new work queued, stop): it blocks on this.
        self._done: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._engine_ids: dict[str, str] = {}  # policy label -> engine_id
        # Round-robin between sources: the turn at which each was last served (lowest goes first).
        self._served: dict[str | None, int] = {}
        self._turns = itertools.count(1)

    def kick(self) -> None:
        """Wake the processor now (a job was queued, or we stop) instead of at its next poll."""
        self._done.put(None)

    def engine_id(self, policy: Policy) -> str:
        """Who made a result: the engine's fingerprint and the policy's content (a policy edited
        without a new version still gets fresh results). [release] is left out: it says who may have
        an original, not what a file becomes."""
        known = self._engine_ids.get(policy.label)
        if known is None:
            judged = {k: v for k, v in policy.to_dict().items() if k != "release"}
            body = json.dumps(judged, sort_keys=True, ensure_ascii=False).encode()
            known = self._engine_ids[policy.label] = \
                f"{engine_fingerprint()}/{hashlib.sha256(body).hexdigest()[:12]}"
        return known

    def cache_dir(self, sha: str, policy: str, ext: str) -> Path:
        return self.blobs.path(self.blobs.results_key(sha, policy, ext))

    def live_dirs(self) -> set[str]:
        """Names of the job directories in work/jobs that workers are using now."""
        return {inf.out_dir.name for inf in list(self.inflight.values())}

    def run(self) -> None:
        """The processor thread: dispatch while running; once stopping, wait for in-flight jobs up to
        the grace time, then requeue them."""
        deadline: float | None = None
        while True:
            if self._stop.is_set():
                if not self.inflight:
                    return
                if deadline is None:
                    deadline = time.monotonic() + self.cfg.shutdown_grace_seconds
                elif time.monotonic() > deadline:
                    self._requeue_inflight()
                    return
            else:
                self._dispatch_safe()
            try:
                # Event driven: a finished job or a kick wakes us; the timeout is only a safety net.
                jid = self._done.get(timeout=0.1 if self._stop.is_set() else 0.5)
            except queue.Empty:
                continue
            if jid is None:
                continue
            try:
                self._complete(jid)
            except Exception:  # noqa: BLE001
                self.metrics.errors.labels("complete").inc()
                log.exception("completing a job failed", extra={"event": "error", "job_id": jid})

    def _dispatch_safe(self) -> None:
        if self._stop.is_set():
            return
        try:
            self._dispatch()
        except Exception:  # noqa: BLE001 - keep the loop alive; the ledger keeps the state
            self.metrics.errors.labels("dispatch").inc()
            log.exception("dispatch failed", extra={"event": "error"})

    def _requeue_inflight(self) -> None:
        ids = list(self.inflight)
        with self.ledger.tx() as t:
            for jid in ids:
                t.requeue_if_processing(jid)
        self.inflight.clear()
        if isinstance(self.executor, LocalExecutor):
            self.executor.abort()
        log.warning("requeued unfinished jobs at shutdown", extra={"event": "shutdown.requeue", "job_ids": ids})

    def _dispatch(self) -> None:
        """Start queued work on free workers, round-robin per source (api:<key>, dropbox:<channel>,
        ...): each round gives every source with queued work one file, least recently served first, so
        one sender's backlog never waits in front of another's. A source holds at most
        `max_workers_per_source` workers, and the last `reserve_workers` free ones only for a source
        with nothing running or for a small file: a file arriving from someone else during a flood of
        large files finds a worker at once."""
        assert self.executor is not None
        capacity = self.executor.capacity
        free = capacity - len(self.inflight)
        if free <= 0:
            return
        # Identical content running or being delivered now: it waits and is answered from the cache.
        busy, held = self.holds.busy_and_held({inf.key for inf in self.inflight.values()})
        running: dict[str | None, int] = {}
        for inf in self.inflight.values():
            running[inf.source] = running.get(inf.source, 0) + 1
        cap = self.cfg.max_workers_per_source or capacity
        reserve = min(self.cfg.reserve_workers, capacity - 1)
        small = self.cfg.small_file_mb * 1024 * 1024
        queued = self.ledger.queued_sources()
        if len(self._served) > 4096:  # forget senders long gone (an unserved one simply goes first)
            self._served = {src: self._served[src] for src, _ in queued if src in self._served}
        sources = sorted(queued, key=lambda s: (self._served.get(s[0], 0), s[1]))
        rows = {src: self._queued(src, free) for src, _ in sources}
        while rows and free > 0:
            for src in list(rows):
                if free <= 0 or self._stop.is_set():
                    return
                n = running.get(src, 0)
                started: bool | None = None
                if n < cap:
                    for row in rows[src]:
                        if n > 0 and free <= reserve and (row["size"] or 0) > small:
                            break  # the reserved workers stay free for the other senders
                        started = self._start(row, busy, held)
                        if started is not None:
                            break  # one file per source per round
                if started is None:
                    del rows[src]  # nothing more this source can start now
                    continue
                self._served[src] = next(self._turns)
                if started:
                    running[src] = n + 1
                    free -= 1

    def _start(self, row: Row, busy: set[Key], held: set[Key]) -> bool | None:
        """Claim one queued job: True when it went to a worker, False when it was answered without one
        (reused result, blocked after repeated interruptions), None when it must wait (identical
        content running now)."""
        assert self.executor is not None
        policy = self.policy_for(row["channel"], row["submission_id"])
        ext = claimed_ext(row["name"])
        key = (row["sha256"], policy.label, ext)
        if key in busy and key not in held:
            return None  # identical content running or being delivered now: wait and reuse its result
        attempts = row["attempts"] + 1
        with self.ledger.tx() as t:
            if not t.claim(row["id"], attempts, policy.label, policy.retention_days, self.engine_id(policy)):
                return None  # another serve node claimed it since it was read
        # A password changes the outcome (PPAP), so such jobs are never answered from the cache.
        # A key held by a delivery retry: reuse its committed result, or else process the file (its
        # result then goes to a cache of its own, see _complete), rather than wait for that inbox.
        if not row["password"] and self._try_reuse(row["id"], key, self.engine_id(policy),
                                                   delivering=key in held):
            return False
        if attempts > self.cfg.max_attempts:
            res = FileResult(source=row["name"], sha256=row["sha256"], size=row["size"] or 0)
            res.threats.append(Threat("worker.interrupted", row["name"], "blocked",
                                      f"interrupted {attempts - 1} times"))
            res.block("処理が繰り返し中断されたため配送を停止しました",
                      "processing was interrupted repeatedly; the file was not delivered")
            self.hand_over(row["id"], None, res.to_dict(), None, None, None, None)
            return False
        out_dir = self.blobs.path(self.blobs.job_key(row["id"], attempts))
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        # The quarantine is content-addressed by this hash: the pool need not hash the original again.
        pdict = policy.to_dict()
        if row["mail_id"]:
            pdict = trust_intake(pdict, self.cfg.mail_authserv_id or self.cfg.mail_name)
        job = Job(src=str(self.blobs.path(row["quarantine"])), name=row["name"], out_dir=str(out_dir),
                  policy=pdict, password=row["password"], want_text=policy.text_rendition,
                  sha256=row["sha256"])
        try:
            fut = self.executor.submit(job)
        except Exception:
            with self.ledger.tx() as t:
                t.requeue(row["id"])
            raise
        self.inflight[row["id"]] = Inflight(fut, key, out_dir, time.monotonic(), row["source_key"], attempts)
        fut.add_done_callback(lambda _f, jid=row["id"]: self._done.put(jid))
        busy.add(key)
        return True

    def _queued(self, source: str | None, free: int) -> Iterator[Row]:
        """A source's queued jobs in order, a page at a time: many waiting on one busy key cannot hide
        the rest."""
        last = 0
        while True:
            rows = self.ledger.queued_page(last, free + 64, source)
            if not rows:
                return
            yield from rows
            last = rows[-1]["id"]

    def _try_reuse(self, job_id: int, key: Key, engine: str, delivering: bool = False) -> bool:
        """Identical content, same policy version, same claimed extension, made by this engine with
        this policy content: deliver the stored result. `delivering`: also a result whose own
        delivery waits for a retry (committed, its cache in place)."""
        sha, policy, ext = key
        for prev in self.ledger.reuse_candidates(sha, policy, engine, job_id, delivering):
            if claimed_ext(prev["name"]) != ext:
                continue
            result = json.loads(prev["result"])
            if not content_result(result):
                continue
            args = json.loads(prev["plan"]).get("args", {}) if prev["plan"] else {}
            cache = self.cfg.data_dir / args["cache"] if args.get("cache") else self.cache_dir(*key)
            out_name, text_name = result.get("output"), result.get("text_output")
            if result.get("verdict") != BLOCKED and not (out_name and (cache / out_name).is_file()):
                continue
            origin = prev["reused_from"] or prev["id"]
            # The cached output is named after the job that produced it, not after the last reuse.
            first = prev if origin == prev["id"] else self.ledger.job(origin)
            if first is None:
                continue
            self.hand_over(job_id, key, result, cache, out_name, text_name, origin, first_name=first["name"])
            return True
        return False

    def _complete(self, job_id: int) -> None:
        inf = self.inflight.pop(job_id, None)
        if inf is None:
            return
        try:
            res: FileResult = inf.future.result()
        except Exception as exc:  # noqa: BLE001 - fail closed on anything the executor raises
            log.exception("executor failed", extra={"event": "error", "job_id": job_id})
            row = self.ledger.job(job_id)
            res = FileResult(source=row["name"], sha256=row["sha256"] or "", size=row["size"] or 0)
            res.threats.append(Threat("worker.error", row["name"], "blocked", f"{type(exc).__name__}"))
            res.block("処理中にエラーが発生しました", "an internal error occurred while processing")
        self.metrics.process.observe(time.monotonic() - inf.started)
        row = self.ledger.job(job_id)
        if row is None or row["status"] != "processing" or row["attempts"] != inf.attempt or \
                (self.ledger.owner is not None and row["owner"] != self.ledger.owner):
            shutil.rmtree(inf.out_dir, ignore_errors=True)  # requeued or taken over meanwhile: not ours
            return
        result: dict[str, Any] = res.to_dict()
        cache = out_name = text_name = None
        if res.verdict != BLOCKED and res.output:
            cache = self.cache_dir(*inf.key)
            if self.holds.is_pending(inf.key) or self.cfg.database:
                # Several serve nodes share the cache: each job's output has a folder of its own, so
                # that one node never replaces a cache another node's delivery reads.
                # A delivery still reads the shared cache (e.g. one waiting for a retry): keep it.
                cache = cache.with_name(f"{cache.name}.job{job_id}")
            out_name = os.path.relpath(res.output, inf.out_dir)
            text_name = os.path.relpath(res.text_output, inf.out_dir) if res.text_output else None
            shutil.rmtree(cache, ignore_errors=True)
            cache.parent.mkdir(parents=True, exist_ok=True)
            os.rename(inf.out_dir, cache)
            result["output"], result["text_output"] = out_name, text_name
        else:
            shutil.rmtree(inf.out_dir, ignore_errors=True)
            result["output"] = result["text_output"] = None
        self.hand_over(job_id, inf.key, result, cache, out_name, text_name, None)
