"""How a job gets executed: the one seam between the appliance and the CDR engine.

The dispatcher (dispatcher.py) only sees `Executor`: submit a `cdr.worker.Job`, get a
Future[FileResult] whose outputs lie in `job.out_dir`. `LocalExecutor` runs the job in
this machine's sandboxed worker processes. A distributed backend implements the same
three members and is passed to `Service(cfg, executor_factory=...)`; the ledger side has
its own seam (storage.py).
"""
from __future__ import annotations

import shutil
from concurrent.futures import Future
from pathlib import Path
from typing import Protocol

from cdr.worker import Job, WorkerPool


class Executor(Protocol):
    capacity: int  # how many jobs it usefully runs at once

    def submit(self, job: Job) -> Future: ...  # Future[cdr.model.FileResult]

    def healthy(self) -> bool: ...

    def close(self) -> None: ...


class LocalExecutor:
    """The subprocess worker pool of the engine (`cdr.worker.WorkerPool`).

    `stage_root`: where the sandboxed workers' private folders go (the data directory's work/, on
    the file system of the quarantine, so that inputs are hard-linked, not copied); emptied first,
    since nothing there outlives a worker. Raises cdr.errors.SandboxUnavailable when workers cannot
    be sandboxed here."""

    def __init__(self, workers: int, stage_root: Path | None = None) -> None:
        if stage_root is not None:
            shutil.rmtree(stage_root, ignore_errors=True)
        self._pool = WorkerPool(workers=workers, stage_root=stage_root)
        try:
            self.isolation = self._pool.check()
        except BaseException:
            self._pool.close()
            raise
        self.capacity = self._pool.size
        self._closed = False

    def submit(self, job: Job) -> Future:
        return self._pool.submit(job)

    def call(self, job: Job) -> dict:
        """A job that reads without rebuilding (`op` inspect / detect / mail_part), on an idle worker."""
        return self._pool.call(job)

    def healthy(self) -> bool:
        # Dead workers are replaced on the next job; the pool is healthy unless closed.
        return not self._closed

    def close(self) -> None:
        self._closed = True
        self._pool.close()

    def abort(self) -> None:
        """Kill running workers (shutdown grace spent; their jobs were requeued)."""
        self._closed = True
        self._pool.kill()
