"""`transfer-agent worker`: a worker node of the security cloud.

It consumes Celery tasks (cloud_tasks.py) and runs each file in this node's sandboxed `cdr.worker`
pool, exactly as the one-box appliance does. The original is read from the shared directory, the
outputs are written next to it, and the verdict goes into the ledger (`cloud_results`); nothing but
small JSON crosses the broker.

Fencing: the serve node claims a job with an attempt number (jobs.attempts). A task runs only if the
job is still `processing` at that attempt, before and after the work; the outputs are made in a
private folder and renamed onto the attempt's (empty) folder, which only one copy can do (rename
over a non-empty folder fails: `BlobStore.publish`); then the result row is inserted under the ledger's write lock, again
only for the current attempt. So a worker whose attempt was taken over (re-dispatched after a serve
node failed over, a duplicate redelivery, a node cut off from the network that comes back) cannot
deliver or commit anything.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from cdr.worker import Job, WorkerPool

from .blobstore import LocalBlobStore, S3Objects
from .ledger import Ledger

log = logging.getLogger("transfer_agent.worker")



class WorkerNode:
    def __init__(self, database: str, shared_dir: Path, concurrency: int, node_dir: Path,
                 objects: S3Objects | None = None) -> None:
        self.shared = Path(shared_dir).absolute()
        # Keys in a task are resolved inside the shared directory only (a forged one is refused).
        self.blobs = LocalBlobStore(self.shared, fsync=True)
        # With S3 (--object-store) the shared dir is this node's own scratch folder: the original is
        # downloaded into it and the outputs published to the bucket (one copy wins there).
        self.objects = objects
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.ledger = Ledger(database, anchor_path=Path(node_dir) / "state" / "audit.anchor")
        stage = self.shared / "work" / "stage" / f"{socket.gethostname()}-{os.getpid()}"
        shutil.rmtree(stage, ignore_errors=True)
        self.pool = WorkerPool(workers=concurrency, stage_root=stage)
        self.isolation = self.pool.check()
        self._stage = stage
        self._lock = threading.Lock()

    def close(self) -> None:
        self.pool.close()
        shutil.rmtree(self._stage, ignore_errors=True)
        self.ledger.close()

    def current(self, job_id: int, attempt: int) -> bool:
        row = self.ledger.one("SELECT status, attempts FROM jobs WHERE id = ?", (job_id,))
        return row is not None and row["status"] == "processing" and row["attempts"] == attempt

    def process(self, job_id: int, attempt: int, src: str, name: str, out: str, policy: dict[str, Any],
                want_text: bool, sha256: str | None) -> str:
        """One task. Returns what happened (for the log): done, fenced or duplicate."""
        if not self.current(job_id, attempt):
            log.info("task fenced off before it ran", extra={"event": "worker.fenced", "job_id": job_id,
                                                             "attempt": attempt})
            return "fenced"
        row = self.ledger.one("SELECT password FROM jobs WHERE id = ?", (job_id,))
        src_path, final = self.blobs.path(src), self.blobs.path(out)
        tmp = final.with_name(f"{final.name}.{uuid.uuid4().hex[:12]}.tmp")
        tmp.mkdir(parents=True)
        if self.objects is not None:
            src_path = tmp.with_name(f"{tmp.name}.src")
        try:
            if self.objects is not None:
                self.objects.download(src, src_path)
            res = self.pool.run(Job(src=str(src_path), name=name, out_dir=str(tmp), policy=policy,
                                    password=row["password"] if row else None, want_text=want_text, sha256=sha256))
            d = res.to_dict()
            for k in ("output", "text_output"):
                if d.get(k):
                    d[k] = os.path.relpath(d[k], tmp)
            if not self.current(job_id, attempt):
                return "fenced"
            if self.objects is not None:
                if not self.objects.publish_dir(tmp, out):  # a conditional put: one copy wins
                    return "duplicate"
            elif not self.blobs.publish(tmp, out):  # onto the attempt's empty folder: one copy wins
                return "duplicate"
            with self.ledger.tx() as t:
                cur = t.execute("SELECT status, attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()
                if cur is None or cur["status"] != "processing" or cur["attempts"] != attempt:
                    return "fenced"
                t.execute("INSERT OR IGNORE INTO cloud_results(job_id, attempt, result, worker, created_at)"
                          " VALUES (?,?,?,?,?)", (job_id, attempt, json.dumps(d, ensure_ascii=False),
                                                  self.name, time.time()))
            log.info("task done", extra={"event": "worker.done", "job_id": job_id, "attempt": attempt,
                                         "verdict": d.get("verdict")})
            return "done"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if self.objects is not None:
                src_path.unlink(missing_ok=True)


def run(database: str, broker: str, shared_dir: Path, concurrency: int, node_dir: Path, prefix: str = "",
        objects: S3Objects | None = None) -> int:
    """Serve Celery tasks until SIGTERM (warm shutdown: running tasks finish, the rest stay queued)."""
    from .cloud_tasks import TASK, make_app
    from .crashpoints import crashpoint, poisonpoint

    node = WorkerNode(database, shared_dir, concurrency, node_dir, objects)
    app = make_app(broker, prefix)

    @app.task(name=TASK, bind=True)
    def process(self: Any, **kw: Any) -> str:  # noqa: ARG001 - Celery's bound task
        crashpoint("worker.task")  # test hooks: kill -9 of the whole node mid-task,
        poisonpoint(str(kw.get("name", "")))  # or by a file that kills every node that takes it
        return node.process(**kw)

    log.info("worker node started", extra={"event": "worker.start", "node": node.name,
                                           "isolation": node.isolation, "concurrency": concurrency})
    print(f"transfer-agent worker {node.name}: {concurrency} sandboxed workers ({node.isolation}), shared dir"
          f" {node.shared}", flush=True)
    worker = app.Worker(concurrency=concurrency, pool="threads", loglevel="WARNING", without_gossip=True,
                        without_mingle=True, hostname=f"cdr@{node.name}", quiet=True)
    try:
        worker.start()
    finally:
        node.close()
    return worker.exitcode or 0
