"""Test hook (like SQLite's fault injection): TRANSFER_AGENT_CRASHPOINT="NAME" or "NAME:N" kills
this process with SIGKILL the N-th time the code passes the point NAME. Unset in production.

Points: intake.row, intake.renamed, intake.copied, intake.hashed, intake.stored (intake.py),
api.handover (api_submissions.py), deliver.planned, deliver.done (deliverer.py), deliver.temp_written, deliver.linked (delivery.py).
Pause points (TRANSFER_AGENT_PAUSEPOINT): intake.copied.
"""
from __future__ import annotations

import os
import signal
import time

_CRASH = os.environ.get("TRANSFER_AGENT_CRASHPOINT", "")
_CRASH_COUNTS: dict[str, int] = {}


def crashpoint(name: str) -> None:
    if not _CRASH:
        return
    point, _, nth = _CRASH.partition(":")
    if point != name:
        return
    _CRASH_COUNTS[name] = _CRASH_COUNTS.get(name, 0) + 1
    if _CRASH_COUNTS[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


_POISON = os.environ.get("TRANSFER_AGENT_POISON", "")


def poisonpoint(name: str) -> None:
    """Test hook: TRANSFER_AGENT_POISON="PREFIX" kills this process (a worker node) whenever it takes a
    file whose name starts with PREFIX: a poisoned file that crashes every worker."""
    if _POISON and name.startswith(_POISON):
        os.kill(os.getpid(), signal.SIGKILL)


_PAUSE = os.environ.get("TRANSFER_AGENT_PAUSEPOINT", "")


def pausepoint(name: str) -> None:
    """Test hook: TRANSFER_AGENT_PAUSEPOINT="NAME:SECONDS" sleeps there (to act inside a window)."""
    if not _PAUSE:
        return
    point, _, seconds = _PAUSE.partition(":")
    if point == name:
        time.sleep(float(seconds or 1))
