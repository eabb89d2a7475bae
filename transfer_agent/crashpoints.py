"""Test hook (like SQLite's fault injection): TRANSFER_AGENT_CRASHPOINT="NAME" or "NAME:N" kills
this process with SIGKILL the N-th time the code passes the point NAME ("A:1,B:2": several points,
e.g. one in the core and one in the internet-side process; an internet-side process restarted by the
core runs without them). Unset in production.

Points: intake.row, intake.renamed, intake.copied, intake.hashed, intake.stored (intake.py),
api.handover (api_submissions.py), deliver.planned, deliver.done (deliverer.py), deliver.temp_written, deliver.linked (delivery.py),
smtp.spooled, smtp.recorded (mail_spool.py: before the 250), smtp.replied (smtp_server.py: after it),
mail.dropped, mail.relay_sent, mail.relayed (mail_delivery.py), mail.tmp_written (maildir.py).
Pause points (TRANSFER_AGENT_PAUSEPOINT): intake.copied.
TRANSFER_AGENT_STOPPOINT="NAME[:N]" stops this process with SIGSTOP there instead (a node frozen in
the middle of a step, for another serve node to take over; SIGCONT lets it go on).
"""
from __future__ import annotations

import os
import signal
import time

_CRASH = {p.partition(":")[0]: int(p.partition(":")[2] or 1)
          for p in os.environ.get("TRANSFER_AGENT_CRASHPOINT", "").split(",") if p}
_CRASH_COUNTS: dict[str, int] = {}


_STOP = {p.partition(":")[0]: int(p.partition(":")[2] or 1)
         for p in os.environ.get("TRANSFER_AGENT_STOPPOINT", "").split(",") if p}


def crashpoint(name: str) -> None:
    if _STOP and name in _STOP:
        _CRASH_COUNTS["stop:" + name] = _CRASH_COUNTS.get("stop:" + name, 0) + 1
        if _CRASH_COUNTS["stop:" + name] == _STOP[name]:
            os.kill(os.getpid(), signal.SIGSTOP)
    if not _CRASH or name not in _CRASH:
        return
    _CRASH_COUNTS[name] = _CRASH_COUNTS.get(name, 0) + 1
    if _CRASH_COUNTS[name] >= _CRASH[name]:
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
