"""Prometheus metrics, in a registry of their own (one per service instance)."""
from __future__ import annotations

import re
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: F401 - re-exported
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.files = Counter("transfer_files_total", "Files finished, by verdict and channel",
                             ["verdict", "channel"], registry=r)
        self.intake = Counter("transfer_intake_total", "Files taken into quarantine, by channel",
                              ["channel"], registry=r)
        self.mails = Counter("transfer_mails_total", "Mails from the SMTP intake delivered (one per mail and"
                             " channel), by verdict, channel and delivery (maildir, smtp)",
                             ["verdict", "channel", "delivery"], registry=r)
        self.reused = Counter("transfer_dedup_reused_total", "Results reused for identical content", registry=r)
        self.purged = Counter("transfer_purged_total", "Originals purged after retention", registry=r)
        self.errors = Counter("transfer_errors_total", "Internal errors, by stage", ["stage"], registry=r)
        self.latency = Histogram("transfer_latency_seconds", "Intake to delivery, seconds",
                                 buckets=_LATENCY, registry=r)
        self.process = Histogram("transfer_process_seconds", "Time in the worker, seconds",
                                 buckets=_LATENCY, registry=r)
        self.queue_depth = Gauge("transfer_queue_depth", "Jobs received, queued or processing", registry=r)
        self.inflight = Gauge("transfer_inflight", "Jobs running in workers", registry=r)
        self.quarantine_bytes = Gauge("transfer_quarantine_bytes", "Bytes of originals in quarantine", registry=r)
        self.up = Gauge("transfer_component_up", "1 when a component is alive", ["component"], registry=r)

    def bind(self, queue_depth: Callable[[], float], inflight: Callable[[], float],
             quarantine_bytes: Callable[[], float], components: dict[str, Callable[[], bool]]) -> None:
        """Gauges read live values when scraped."""
        self.queue_depth.set_function(queue_depth)
        self.inflight.set_function(inflight)
        self.quarantine_bytes.set_function(quarantine_bytes)
        for name, fn in components.items():
            self.up.labels(name).set_function(lambda fn=fn: 1.0 if fn() else 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_KEEP_UNSCOPED = ("transfer_component_up",)  # health only: no volumes, no names


def _unescape(v: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def per_tenant(text: bytes, owner: Callable[[str], str], allows: Callable[[str], bool] | None = None) -> bytes:
    """The exposition text with a `tenant` label on every series that has a `channel` label (so that
    `sum by (tenant)` gives each municipality's figures). With `allows` (one tenant's or one key's view),
    only the series of channels it allows are kept, plus component health: appliance-wide volumes
    (queue depth, quarantine bytes, latency of everyone's files) are the prefecture's."""
    out = []
    for line in text.decode("utf-8").splitlines():
        if not line or line.startswith("#"):
            out.append(line)
            continue
        name, brace, rest = line.partition("{")
        if not brace:
            if allows is None or name.split(" ")[0] in _KEEP_UNSCOPED:
                out.append(line)
            continue
        labels, _, value = rest.rpartition("}")
        found = dict((k, _unescape(v)) for k, v in _LABEL.findall(labels))
        if "channel" not in found:
            if allows is None or name in _KEEP_UNSCOPED:
                out.append(line)
            continue
        channel = found["channel"]
        if allows is not None and not allows(channel):
            continue
        out.append(f'{name}{{{labels},tenant="{_escape(owner(channel))}"}}{value}')
    return ("\n".join(out) + "\n").encode("utf-8")
