"""Maintenance: purging originals and cached results past retention, removing job directories an
orphaned worker may have recreated after a crash, and (several serve nodes) taking over the jobs of
a node that stopped or fell silent (cluster.py). The purge runs on one node at a time (the `purge`
lease); each original is removed inside the write transaction that marks it purged, after checking
again that no job needs it, so an intake of the same content on another node is never left without
its original."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .config import Config
from .metrics import Metrics
from .quarantine import Quarantine
from .recovery import clean_job_dirs
from .storage import JobStore

log = logging.getLogger("transfer_agent.service")  # the appliance's steps log as the service did


class Maintenance:
    def __init__(self, cfg: Config, ledger: JobStore, quarantine: Quarantine, metrics: Metrics,
                 live_dirs: Callable[[], set[str]], stop: threading.Event) -> None:
        self.cfg = cfg
        self.ledger = ledger
        self.quarantine = quarantine
        self.metrics = metrics
        self.results_root = cfg.results_root
        self.live_dirs = live_dirs  # job directories in use (not to be removed)
        self._stop = stop
        self.node: Any = None  # cluster.Node
        self.on_adopt: Callable[[list[Any]], None] | None = None  # jobs taken over from a dead node

    def purge(self) -> list[str]:
        if self.node is not None and not self.node.lease("purge", max(60.0, self.cfg.purge_interval_seconds * 2)):
            return []  # another serve node purges
        purged = self.quarantine.purge_expired(self.ledger, self.results_root)
        self.metrics.purged.inc(len(purged))
        return purged

    def takeover(self) -> None:
        if self.node is None:
            return
        rows = self.node.takeover()
        if rows and self.on_adopt is not None:
            self.on_adopt(rows)

    def run(self) -> None:
        """The maintenance thread."""
        next_purge = next_takeover = 0.0
        while not self._stop.wait(1.0):
            now = time.monotonic()
            if self.node is not None and now >= next_takeover:
                next_takeover = now + self.node.lease_seconds / 3
                try:
                    self.takeover()
                except Exception:  # noqa: BLE001 - database away: tried again on the next round
                    self.metrics.errors.labels("takeover").inc()
                    log.warning("takeover pass failed", exc_info=True, extra={"event": "error"})
            if now >= next_purge:
                next_purge = now + self.cfg.purge_interval_seconds
                try:
                    self.purge()
                except Exception:  # noqa: BLE001
                    self.metrics.errors.labels("purge").inc()
                    log.exception("purge failed", extra={"event": "error"})
            # Job directories an orphaned worker may have recreated after a crash.
            try:
                clean_job_dirs(self.cfg, self.ledger, 600, self.live_dirs())
            except Exception:  # noqa: BLE001 - database away: tried again on the next round
                log.warning("cleaning job folders failed", exc_info=True, extra={"event": "error"})
