"""Maintenance: purging originals and cached results past retention, and removing job
directories an orphaned worker may have recreated after a crash."""
from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable

from .config import Config
from .metrics import Metrics
from .quarantine import Quarantine
from .storage import JobStore

log = logging.getLogger("transfer_agent.service")  # the appliance's steps log as the service did


class Maintenance:
    def __init__(self, cfg: Config, ledger: JobStore, quarantine: Quarantine, metrics: Metrics,
                 live_dirs: Callable[[], set[str]], stop: threading.Event) -> None:
        self.cfg = cfg
        self.ledger = ledger
        self.quarantine = quarantine
        self.metrics = metrics
        self.results_root = cfg.state / "results"
        self.live_dirs = live_dirs  # job directories in use (not to be removed)
        self._stop = stop

    def purge(self) -> list[str]:
        purged = self.quarantine.purge_expired(self.ledger, self.results_root)
        self.metrics.purged.inc(len(purged))
        return purged

    def run(self) -> None:
        """The maintenance thread."""
        next_purge = 0.0
        while not self._stop.wait(1.0):
            now = time.monotonic()
            if now >= next_purge:
                next_purge = now + self.cfg.purge_interval_seconds
                try:
                    self.purge()
                except Exception:  # noqa: BLE001
                    self.metrics.errors.labels("purge").inc()
                    log.exception("purge failed", extra={"event": "error"})
            # Job directories an orphaned worker may have recreated after a crash.
            live = self.live_dirs()
            for d in (self.cfg.work / "jobs").iterdir():
                try:
                    if d.name not in live and time.time() - d.stat().st_mtime > 600:
                        shutil.rmtree(d, ignore_errors=True)
                except OSError:
                    pass
