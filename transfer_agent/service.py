"""The appliance: intake -> quarantine -> ledger -> executor -> delivery, and crash recovery.

`Service` is the coordinator: it holds the lock on the data dir, builds the steps, runs their
threads (dropbox watcher, processor, delivery, maintenance) and reports health. The steps:
intake.py (files into quarantine), dispatcher.py (queued work to the executor, reuse, completion),
deliverer.py (verdicts and plans committed and carried out, retries), recovery.py (at start; it
also holds the crash-safety rules of every step), maintenance.py (purge), password_retry.py (PPAP).
They reach the ledger only through the storage seam (storage.py) and the engine only through the
executor seam (executor.py).
"""
from __future__ import annotations

import base64
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import Gauge

from cdr.policy import Policy, load_policy
from cdr.worker import Job

from .channels import channel_name
from .cluster import Node
from .config import Config
from .deliverer import Deliverer
from .dispatcher import Dispatcher
from .dropbox import leases_for_others
from .executor import Executor, LocalExecutor
from .forms import FormBook, restrict_policy
from .intake import Arrival, Intake
from .ledger import Ledger
from .mail_intake import MailIntake
from .maintenance import Maintenance
from .metrics import Metrics
from .password_retry import queue_retry
from .quarantine import Quarantine
from .recovery import adopt, recover
from .results import KeyHolds
from .safefs import Refusals, Tree
from .watcher import UNPROVEN_FACTOR, DropboxWatcher

log = logging.getLogger("transfer_agent.service")


class AlreadyRunning(RuntimeError):
    pass


class Service:
    def __init__(self, cfg: Config, executor_factory: Callable[[int], Executor] | None = None) -> None:
        self.cfg = cfg
        for d in (cfg.dropbox, cfg.inbox, cfg.quarantine, cfg.state, cfg.work / "intake", cfg.work / "jobs"):
            d.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(cfg.state / "agent.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise AlreadyRunning(f"another transfer-agent is running on {cfg.data_dir}") from None
        self.ledger = Ledger(cfg.ledger_target, anchor_fsync=cfg.fsync, anchor_syslog=cfg.audit_syslog,
                             anchor_path=cfg.state / "audit.anchor")
        self.quarantine = Quarantine(cfg.quarantine, cfg.data_dir, cfg.fsync)
        self.results_root = cfg.results_root
        self.metrics = Metrics()
        self.default_policy = load_policy(cfg.policy)
        self.channel_policies = {ch: load_policy(p) for ch, p in cfg.channel_policies.items()}
        # Forms (forms.py): a submission (upload page, REST) is sanitized with its form's policy, limited to
        # the families the form accepts (content of another family is blocked, whatever its name said).
        # The channel's mail and dropbox files are not submissions of a form: the channel's policy alone.
        self.form_book = FormBook(cfg)
        self._form_policies: dict[tuple[str, str], Policy] = {}
        self._submission_forms: dict[str, str | None] = {}
        self._executor_factory = executor_factory or (lambda n: LocalExecutor(n, self.cfg.work / "sandbox"))
        self.delivery_lock = threading.RLock()  # anything that writes into the inbox takes it
        # Every write beneath the data dir that a share user can reach goes through `tree`: a link
        # planted there is refused (never followed), audited once and listed on /healthz.
        self.refusals = Refusals(cfg.data_dir, self._audit_refusal, self._log_refusal)
        self.tree = Tree(cfg.data_dir, on_refused=self.refusals, mounts={"inbox": cfg.inbox})
        self.on_final: list[Callable[[int], None]] = []  # called with the job id once final
        self._stop = threading.Event()
        holds = KeyHolds()  # dedup keys between dispatch and delivery
        self.intake = Intake(cfg, self.ledger, self.quarantine, self.metrics, self.policy_for, self._kick)
        self.deliverer = Deliverer(cfg, self.ledger, self.metrics, holds, self._stop, self._kick,
                                   self.delivery_lock, self.on_final, self.tree)
        self.deliverer.never_for = self._never_released
        self.intake.on_too_large = lambda jid, res: self.deliverer.hand_over(jid, None, res, None, None, None, None)
        self.dispatcher = Dispatcher(cfg, self.ledger, self.metrics, self.policy_for, holds,
                                     self.deliverer.hand_over, self._stop)
        self.maintenance = Maintenance(cfg, self.ledger, self.quarantine, self.metrics, self.dispatcher.live_dirs,
                                       self._stop)
        # This node in the ledger (cluster.py): a lease, and the owner of the jobs it works on.
        self.node = Node(self.ledger, Node.default_name(cfg.node), cfg.node_lease_seconds)
        self.deliverer.node = self.maintenance.node = self.node
        self.maintenance.on_adopt = lambda rows: adopt(cfg, self.ledger, self.quarantine, self.intake,
                                                       self.deliverer, rows)
        self.watcher = DropboxWatcher(cfg, self.intake.on_dropped)
        self.mail_intake = MailIntake(cfg, self.ledger, self.intake)  # mails the SMTP intake recorded
        self.mail_intake.node = self.node
        # Delivery runs in its own thread so that a freed worker gets its next file at once.
        self._processor = threading.Thread(target=self.dispatcher.run, name="processor", daemon=True)
        self._deliverer = threading.Thread(target=self.deliverer.run, name="delivery", daemon=True)
        self._maint = threading.Thread(target=self.maintenance.run, name="maintenance", daemon=True)
        self.metrics.bind(self.ledger.queue_depth, lambda: len(self.dispatcher.inflight), self.ledger.quarantine_bytes,
                          self.components())
        Gauge("transfer_delivery_retry_waiting", "Jobs whose delivery failed and waits for a retry",
              registry=self.metrics.registry).set_function(lambda: len(self.deliverer.retries))

    # ------------------------------------------------------------------ lifecycle

    @property
    def executor(self) -> Executor | None:
        return self.dispatcher.executor

    def _never_released(self, row: dict[str, Any], result: dict[str, Any]) -> list[str]:
        """The families of a result that its channel's policy never releases (the clerk's report says so)."""
        from .console.originals import families

        return sorted(families(result) & set(self.policy_for(row["channel"], row.get("submission_id")).release.never))

    def policy_for(self, channel: str, submission_id: str | None = None) -> Policy:
        """The channel's policy; for a submission (upload page or REST), its form's policy and families."""
        if submission_id:
            form = self._submission_form(submission_id)
            if form and form in self.cfg.forms:
                key = (channel, form)
                if key not in self._form_policies:
                    self._form_policies[key] = restrict_policy(self.form_book.policy(channel, form),
                                                               self.cfg.forms[form])
                return self._form_policies[key]
        # Keys are channel names already (config.py); a job's channel too, unless written before that.
        return self.channel_policies.get(channel_name(channel), self.default_policy)

    def _submission_form(self, submission_id: str) -> str | None:
        if submission_id not in self._submission_forms:
            if len(self._submission_forms) > 10_000:
                self._submission_forms.clear()
            row = self.ledger.one("SELECT form FROM submissions WHERE id = ?", (submission_id,))
            self._submission_forms[submission_id] = row["form"] if row is not None else None
        return self._submission_forms[submission_id]

    def start(self) -> None:
        with self.ledger.tx() as t:
            t.audit("service.start", {"policy": self.default_policy.label, "workers": self.cfg.worker_count,
                                      "channels": {c: p.label for c, p in self.channel_policies.items()}})
        self.node.register()
        self.node.takeover()  # this node's earlier incarnation, and nodes that fell silent
        self.node.start()
        self.recover()
        self.dispatcher.executor = self._executor_factory(self.cfg.worker_count)
        self._deliverer.start()
        self._processor.start()
        self._maint.start()
        self.watcher.start()
        self.mail_intake.start()
        log.info("service started", extra={"event": "service.start", "data_dir": str(self.cfg.data_dir),
                                           "policy": self.default_policy.label, "workers": self.cfg.worker_count})
        if not leases_for_others():
            log.warning("no CAP_LEASE: a dropped file owned by another user cannot be proven closed; such"
                        f" files wait {UNPROVEN_FACTOR} x stable_seconds without a close event (grant CAP_LEASE)",
                        extra={"event": "service.no_lease"})

    def recover(self) -> None:
        """Bring every unfinished job back to a consistent state (runs before any thread starts)."""
        recover(self.cfg, self.ledger, self.quarantine, self.intake, self.deliverer)
        try:
            self.mail_intake.take_pending()  # mails recorded (or half taken) while the core was away
        except Exception:  # noqa: BLE001 - its thread tries again every second
            log.exception("cannot take recorded mails", extra={"event": "recover.failed"})

    def stop(self) -> None:
        """Stop intake, let in-flight files finish (up to the grace time), requeue the rest."""
        log.info("stopping", extra={"event": "service.stopping", "inflight": len(self.dispatcher.inflight)})
        self._stop.set()
        self._kick()
        self.watcher.stop()
        self.mail_intake.stop()
        if self._processor.is_alive():
            self._processor.join(self.cfg.shutdown_grace_seconds + 30)
        # The processor has handed over its last result: deliver what is queued, then stop.
        self.deliverer.close()
        if self._deliverer.is_alive():
            self._deliverer.join(60)
        if self._maint.is_alive():
            self._maint.join(10)
        if self.executor is not None:
            closer = threading.Thread(target=self.executor.close, daemon=True)
            closer.start()
            closer.join(10)
        counts = self.ledger.counts()
        with self.ledger.tx() as t:
            t.audit("service.stop", {"jobs": counts["jobs"]})
        if self.node.valid():
            self.node.stop()  # the jobs still unfinished may be taken over at once
        log.info("service stopped", extra={"event": "service.stop", **counts})
        self.ledger.close()
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)

    def _kick(self) -> None:
        """Wake the processor now (a job was queued, or we stop) instead of at its next poll."""
        self.dispatcher.kick()

    def components(self) -> dict[str, Callable[[], bool]]:
        return {
            "watcher": self.watcher.alive,
            "workers": lambda: (self.executor is not None and self.executor.healthy() and self._processor.is_alive()
                                and self._deliverer.is_alive()),
            "ledger": self.ledger.ping,
        }

    def health(self) -> dict[str, bool]:
        return {name: bool(fn()) for name, fn in self.components().items()}

    def _audit_refusal(self, event: str, data: dict) -> None:
        with self.ledger.tx() as t:
            t.audit(event, data)

    @staticmethod
    def _log_refusal(rel: str, what: str) -> None:
        log.error("a link in the inbox was refused, not followed", extra={"event": "inbox.link_refused",
                                                                          "path": rel, "what": what})

    def health_notes(self) -> list[str]:
        """Conditions that do not stop the service but need an operator (/healthz reports 'degraded')."""
        notes = []
        links = self.refusals.current()
        if links:
            notes.append(f"{len(links)} symbolic link(s) or foreign file(s) where the appliance writes, refused"
                         f" (remove them; audit event inbox.link_refused): {', '.join(links[:10])}")
        waiting = len(self.deliverer.retries)
        if waiting:
            notes.append(f"{waiting} job(s) waiting for a delivery retry (inbox not writable? see log event"
                         " deliver.retry)")
        stuck = self.ledger.one("SELECT COUNT(*) FROM mails WHERE status IN ('received', 'taking')"
                                " AND received_at < ?", (time.time() - 60,))[0]
        if stuck:
            notes.append(f"{stuck} mail(s) from the SMTP intake recorded over a minute ago and not yet in"
                         " quarantine (see log event mail.take_partial)")
        oversized = self.intake.oversized()
        if oversized:
            notes.append(f"{oversized} file(s) in the dropbox are over the size limit and were not"
                         " taken (see log event intake.too_large)")
        return notes

    # ------------------------------------------------------------------ intake, password retry, purge

    def accept(self, path: Path, *, source: str, channel: str, name: str, subdir: str = "",
               submission_id: str | None = None, password: str | None = None,
               received_at: float | None = None, source_key: str | None = None) -> int | None:
        """Take a complete file (same file system as the data dir) into quarantine; returns the job id.

        Used by the dropbox watcher and by other intake channels (REST uploads staged under
        work/). The file is gone from `path` afterwards. None if it vanished meanwhile.
        """
        arrival = Arrival(path, source=source, channel=channel, name=name, subdir=subdir,
                          submission_id=submission_id, password=password, received_at=received_at,
                          source_key=source_key)
        return self.accept_many([arrival], strict=True)[0]

    def accept_many(self, arrivals: list[Arrival], strict: bool = False) -> list[int | None]:
        """`accept` for a group of files sharing commits and fsyncs (see Intake.accept_many)."""
        return self.intake.accept_many(arrivals, strict)

    def retry_with_password(self, job_id: int, password: str, actor: str) -> int:
        """Process a file blocked for want of a password again, from its quarantined original, with the
        password a clerk was given (PPAP: it came by another way). Returns the new job's id; the new
        result is delivered next to the blocked notice like any job. Raises RetryRefused."""
        new_id = queue_retry(self.ledger, self.quarantine, job_id, password, actor)
        self._kick()
        return new_id

    def purge(self) -> list[str]:
        return self.maintenance.purge()

    def mail_part(self, job: Any, index: int) -> tuple[str, bytes]:
        """One original attachment of a quarantined mail (an approved request), read by a worker:
        (the name the sender gave it, its bytes). Raises RuntimeError when it cannot be read."""
        ex = self.executor
        if ex is None or not hasattr(ex, "call"):
            raise RuntimeError("no worker to read the mail")
        policy = self.policy_for(job["channel"])
        reply = ex.call(Job(src=str(self.cfg.data_dir / job["quarantine"]), name=job["name"],
                            out_dir=str(self.cfg.work / "jobs" / "part"), policy=policy.to_dict(), op="mail_part",
                            part=index))
        part = reply.get("part") or {"error": reply.get("error", "no answer")}
        if "error" in part:
            raise RuntimeError(f"cannot read attachment {index} of job {job['id']}: {part['error']}")
        return str(part["name"]), base64.b64decode(part["data"])
