"""The serve node's executor in the security cloud: jobs go to worker nodes over Celery.

Same seam as `LocalExecutor` (executor.py): `submit(job)` gives a Future[FileResult] whose outputs
lie in `job.out_dir`. The dispatcher has already claimed the job with an attempt number (the folder
work/jobs/<id>-<attempt>); the task carries the id, the attempt, paths relative to the shared
directory and the policy. The future is completed from the ledger (`cloud_results`, written by the
worker node under the fencing rules of cloud_worker.py), not from a Celery result backend; a
message dead-lettered after the delivery limit (a file that killed every worker that took it)
completes it with an error, which the dispatcher turns into a `blocked` verdict.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from cdr.model import FileResult, Threat
from cdr.worker import Job

from .blobstore import LocalBlobStore, S3Objects
from .cloud_tasks import TASK, make_app
from .storage import JobStore

log = logging.getLogger("transfer_agent.cloud")


class WorkerKilledRepeatedly(RuntimeError):
    """The task was dead-lettered: every worker node that took it died (delivery limit reached)."""


class CeleryExecutor:
    def __init__(self, ledger: JobStore, shared_dir: Path, broker: str, capacity: int, prefix: str = "",
                 objects: S3Objects | None = None,
                 poll_seconds: float = 0.1) -> None:
        self.ledger = ledger
        self.shared = Path(shared_dir).absolute()
        self.blobs = LocalBlobStore(self.shared)  # the task names files by their keys in it
        # With S3 (--object-store), originals go up before the task and outputs come down after it.
        self.objects = objects
        self.capacity = capacity
        self.prefix = prefix
        self.app = make_app(broker, prefix)
        self.poll_seconds = poll_seconds
        self._pending: dict[tuple[int, int], tuple[Future, Job]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._healthy = True
        # Declare the queues (quorum, delivery limit, dead-letter) before the first publish.
        with self.app.connection_for_write() as conn:
            ch = conn.default_channel
            for q in (*self.app.conf.task_queues, self.app.conf.cloud_dead_queue):
                q.bind(ch).declare()
        self._poller = threading.Thread(target=self._poll, name="cloud-results", daemon=True)
        self._poller.start()
        self._dead = threading.Thread(target=self._watch_dead_letters, name="cloud-dead", daemon=True)
        self._dead.start()

    def submit(self, job: Job) -> Future:
        out = Path(job.out_dir)
        job_id, attempt = (int(x) for x in out.name.split("-")[:2])
        fut: Future = Future()
        fut.set_running_or_notify_cancel()
        with self._lock:
            self._pending[(job_id, attempt)] = (fut, job)
        kwargs = {"job_id": job_id, "attempt": attempt, "src": self.blobs.key(job.src),
                  "name": job.name, "out": self.blobs.key(out), "policy": job.policy,
                  "want_text": job.want_text, "sha256": job.sha256}
        try:
            if self.objects is not None:
                self.objects.ensure(kwargs["src"], job.src)
            # Publisher confirms: returns once RabbitMQ has it (the password stays in the ledger).
            self.app.send_task(TASK, kwargs=kwargs, task_id=f"{self.prefix}{job_id}-{attempt}")
        except Exception:
            with self._lock:
                self._pending.pop((job_id, attempt), None)
            raise
        return fut

    def healthy(self) -> bool:
        return self._healthy and not self._stop.is_set()

    def close(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ completion
    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            with self._lock:
                keys = list(self._pending)
            if not keys:
                continue
            try:
                ids = sorted({k[0] for k in keys})
                rows = self.ledger.query(
                    f"SELECT job_id, attempt, result FROM cloud_results WHERE job_id IN ({','.join('?' * len(ids))})",
                    tuple(ids))
                self._healthy = True
            except Exception:  # noqa: BLE001 - database restarting: try again
                self._healthy = False
                log.warning("cannot read worker results", exc_info=True, extra={"event": "cloud.poll_failed"})
                continue
            for r in rows:
                key = (int(r["job_id"]), int(r["attempt"]))
                with self._lock:
                    entry = self._pending.pop(key, None)
                if entry is None:
                    continue
                fut, job = entry
                if self.objects is not None and not self._fetch(job, fut):
                    continue
                d = json.loads(r["result"])
                for k in ("output", "text_output"):
                    if d.get(k):
                        d[k] = str(Path(job.out_dir) / d[k])
                fut.set_result(FileResult.from_dict(d))
                try:
                    with self.ledger.tx() as t:
                        t.execute("DELETE FROM cloud_results WHERE job_id = ? AND attempt = ?", key)
                except Exception:  # noqa: BLE001 - a leftover row is harmless (attempts move on)
                    log.warning("cannot clear a worker result", exc_info=True)

    def _fetch(self, job: Job, fut: Future) -> bool:
        """Bring a worker's published outputs from S3 into the attempt's folder; on failure the future
        fails, which blocks the file (fail closed)."""
        key = self.blobs.key(job.out_dir)
        try:
            self.objects.fetch_dir(key, Path(job.out_dir))
            self.objects.delete_prefix(key)
            return True
        except Exception as exc:  # noqa: BLE001 - storage unreachable: the file is blocked, not lost
            log.error("cannot fetch a worker's outputs from the object store", exc_info=True,
                      extra={"event": "cloud.fetch_failed", "key": key})
            fut.set_exception(exc)
            return False

    def _dead_for_another_node(self, job_id: int, attempt: int, task_id: str) -> None:
        """Several serve nodes read the one dead-letter queue: a task another node (or this node's earlier
        incarnation) submitted becomes a blocked result row for that attempt, which its owner's poll
        completes like a worker's (only while the job is still processing at that attempt)."""
        row = self.ledger.one("SELECT name, sha256, size, status, attempts FROM jobs WHERE id = ?", (job_id,))
        if row is None or row["status"] != "processing" or row["attempts"] != attempt:
            return
        res = FileResult(source=row["name"], sha256=row["sha256"] or "", size=row["size"] or 0)
        res.threats.append(Threat("worker.error", row["name"], "blocked", "WorkerKilledRepeatedly"))
        res.block("処理中にエラーが発生しました", "an internal error occurred while processing")
        with self.ledger.tx() as t:
            cur = t.execute("SELECT status, attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if cur is None or cur["status"] != "processing" or cur["attempts"] != attempt:
                return
            t.execute("INSERT OR IGNORE INTO cloud_results(job_id, attempt, result, worker, created_at)"
                      " VALUES (?,?,?,?,?)", (job_id, attempt, json.dumps(res.to_dict(), ensure_ascii=False),
                                              f"dead-letter:{task_id}", time.time()))
        log.error("a file killed every worker node that took it; blocked (for the serve node that owns it)",
                  extra={"event": "cloud.dead_letter", "job_id": job_id, "attempt": attempt})

    def _watch_dead_letters(self) -> None:
        """Tasks dead-lettered after the delivery limit: fail their futures (the file is blocked)."""
        dead = self.app.conf.cloud_dead_queue

        def on_message(body: Any, message: Any) -> None:
            task_id = str(message.headers.get("id", "")) if message.headers else ""
            tail = task_id[len(self.prefix):] if task_id.startswith(self.prefix) else ""
            try:
                key = tuple(int(x) for x in tail.split("-")[:2])
            except ValueError:
                key = ()
            with self._lock:
                entry = self._pending.pop(key, None) if len(key) == 2 else None  # type: ignore[arg-type]
            if entry is not None:
                log.error("a file killed every worker node that took it; blocked",
                          extra={"event": "cloud.dead_letter", "job_id": key[0], "attempt": key[1]})
                entry[0].set_exception(WorkerKilledRepeatedly(f"task {task_id} dead-lettered"))
            elif len(key) == 2:
                self._dead_for_another_node(key[0], key[1], task_id)  # type: ignore[misc]
            message.ack()

        while not self._stop.is_set():
            try:
                with self.app.connection_for_read() as conn, conn.Consumer(dead, callbacks=[on_message],
                                                                           accept=["json"]):
                    while not self._stop.is_set():
                        try:
                            conn.drain_events(timeout=1)
                        except TimeoutError:
                            continue
            except Exception:  # noqa: BLE001 - broker restarting: reconnect
                log.warning("dead-letter consumer lost the broker; reconnecting", exc_info=True,
                            extra={"event": "cloud.broker_lost"})
                time.sleep(1)
