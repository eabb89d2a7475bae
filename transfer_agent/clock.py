"""The appliance's time zone: every time a person reads, folder dates and receipt numbers.

`[service] timezone = "Asia/Tokyo"` (the default) is used whatever the server's own zone is, so a
server kept in UTC still changes folders at midnight JST and shows 15:30 JST, not 06:30. Times shown
to a person always carry the zone's abbreviation (JST). Stored times stay epoch seconds.
"""
from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT = "Asia/Tokyo"
_zone = ZoneInfo(DEFAULT)


def load(name: str) -> ZoneInfo:
    """A zone by its IANA name; ValueError names the problem."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not a time zone name (for example \"Asia/Tokyo\")") from exc


def set_zone(name: str) -> None:
    global _zone
    _zone = load(name)


def zone() -> ZoneInfo:
    return _zone


def local(ts: float | None = None) -> datetime:
    return datetime.fromtimestamp(time.time() if ts is None else ts, _zone)


def day(ts: float | None = None) -> str:
    """The date of `ts` in the appliance's zone: inbox folders (2026-12-07)."""
    return local(ts).strftime("%Y-%m-%d")


def compact_day(ts: float | None = None) -> str:
    """20261207: the date part of receipt numbers."""
    return local(ts).strftime("%Y%m%d")


def iso(ts: float | None) -> str | None:
    """ISO 8601 with the offset (2026-12-07T15:30:00+09:00), for JSON."""
    return None if ts is None else local(ts).isoformat(timespec="seconds")


def shown(ts: float | None, seconds: bool = False) -> str:
    """A time for a person: 2026-12-07 15:30 JST."""
    if not ts:
        return "—"
    d = local(ts)
    return d.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + f" {d.tzname()}"


def day_bounds(date: str) -> tuple[float, float]:
    """Epoch seconds of the start and end of YYYY-MM-DD in the appliance's zone (ValueError if not a date)."""
    d = datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=_zone)
    nxt = datetime.fromordinal(d.toordinal() + 1).replace(tzinfo=_zone)
    return d.timestamp(), nxt.timestamp()
