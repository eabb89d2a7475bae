"""External programs run from a worker (poppler, rsvg-convert, LibreOffice).

Each runs in its own process group with a minimal environment and an address-space cap, and the
whole group is killed on timeout, so that nothing a tool starts outlives the job.
"""
from __future__ import annotations

import os
import resource
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path


def memory_cap(mem_bytes: int) -> Callable[[], None]:
    """A preexec function that caps RLIMIT_AS at `mem_bytes`, never above the inherited hard limit."""

    def limit() -> None:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = mem_bytes if hard == resource.RLIM_INFINITY else min(mem_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))

    return limit


def tool_env(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **extra}


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def run_tool(cmd: list[str], timeout: float, preexec: Callable[[], None], cwd: Path | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `cmd` to completion with stdout and stderr captured.

    Raises OSError when it cannot start and subprocess.TimeoutExpired (after killing its group)
    when it runs past `timeout` seconds; callers turn both into a clerk-readable reason."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=str(cwd) if cwd else None, env=env if env is not None else tool_env(),
                            preexec_fn=preexec, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        for fh in (proc.stdout, proc.stderr):
            if fh is not None:
                fh.close()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
