"""Structured JSON log lines for operators: one object per line on stderr."""
from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None) or "log",
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD and key not in ("event", "color_message"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def _not_shutdown_noise(record: logging.LogRecord) -> bool:
    # watchdog logs this at error level whenever an observer is stopped while events are pending.
    return "called when the thread is inactive" not in record.getMessage()


def setup(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_not_shutdown_noise)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The watchdog and HTTP libraries are chatty at info.
    for name in ("watchdog", "uvicorn.access", "multipart"):
        logging.getLogger(name).setLevel(logging.WARNING)
