"""Tallies for staff (集計): submissions of a channel over a period, for the console and `transfer-agent report`.

Counted: submissions (by source, with 要確認 flags), their files by verdict, by detected type and by
threat id, the values of every choice field of the forms used, and submissions per day. The same
numbers go to the console page, a CSV file (UTF-8 with a BOM and CRLF, which Excel opens as it is)
and a bar chart drawn on the server as SVG (no script).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from html import escape
from typing import Any

from . import exchange, threat_labels

VERDICT_ORDER = ("clean", "sanitized", "blocked", "pending")
VERDICT_LABEL = {"clean": "受理", "sanitized": "無害化して受理", "blocked": "受理できませんでした", "pending": "処理中"}
SOURCE_LABEL = {"page": "アップロードページ", "api": "REST API（電子申請）"}
MAX_DAYS = 366


class PeriodError(ValueError):
    pass


def period(start: str, end: str) -> tuple[date, date]:
    """Inclusive dates; ValueError-like PeriodError in Japanese when unusable."""
    try:
        a, b = date.fromisoformat(start.strip()), date.fromisoformat(end.strip())
    except ValueError:
        raise PeriodError("期間は YYYY-MM-DD の形で指定してください") from None
    if b < a:
        raise PeriodError("期間の終わりが始まりより前です")
    if (b - a).days >= MAX_DAYS:
        raise PeriodError(f"期間は{MAX_DAYS}日以内にしてください")
    return a, b


def _bounds(a: date, b: date) -> tuple[float, float]:
    z = exchange.zone()
    start = datetime(a.year, a.month, a.day, tzinfo=z).timestamp()
    nxt = b + timedelta(days=1)
    return start, datetime(nxt.year, nxt.month, nxt.day, tzinfo=z).timestamp()


@dataclass
class Tally:
    channel: str
    label: str
    start: date
    end: date
    submissions: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    flagged: int = 0
    flags: dict[str, int] = field(default_factory=dict)
    files: int = 0
    by_verdict: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICT_ORDER, 0))
    by_type: dict[str, int] = field(default_factory=dict)
    by_threat: dict[str, int] = field(default_factory=dict)
    choices: dict[str, dict[str, int]] = field(default_factory=dict)  # field label -> value -> submissions
    by_day: dict[str, int] = field(default_factory=dict)

    def rows(self) -> list[tuple[str, str, int | str]]:
        """(section, item, count): the CSV's rows and the page's tables."""
        out: list[tuple[str, str, int | str]] = [
            ("集計", "チャネル", self.label if self.label == self.channel else f"{self.label}（{self.channel}）"),
            ("集計", "期間", f"{self.start.isoformat()}～{self.end.isoformat()}"),
            ("受付件数", "合計", self.submissions),
        ]
        out += [("受付件数", SOURCE_LABEL.get(k, k), v) for k, v in sorted(self.by_source.items())]
        out.append(("受付件数", "要確認あり", self.flagged))
        out += [("ファイル（判定）", VERDICT_LABEL[k], self.by_verdict.get(k, 0)) for k in VERDICT_ORDER]
        out += [("ファイル（種類）", k, v) for k, v in _desc(self.by_type)]
        out += [("検出内容", f"{k}（{threat_labels.label(k)}）", v) for k, v in _desc(self.by_threat)]
        for label, counts in self.choices.items():
            out += [(f"選択項目（{label}）", k, v) for k, v in _desc(counts)]
        out += [("要確認の内訳", k, v) for k, v in _desc(self.flags)]
        out += [("日別受付件数", k, v) for k, v in sorted(self.by_day.items())]
        return out


def _desc(d: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))


FLAG_LABEL = {"required_type": "必要な種類の添付なし", "date_range": "日付が範囲外", "number_range": "数値が範囲外",
              "duplicate": "以前の受付と同じ入力", "duplicate_file": "以前の受付と同じファイル"}


def compute(ledger: Any, cfg: Any, channel: str, start: date, end: date, channels: list[str] | None = None,
            label: str | None = None) -> Tally:
    """The tallies of `channel`; with `channels`, of all those together (a municipality's whole, named
    `channel` and shown as `label`)."""
    from cdr.detect import KINDS, label_ja

    t = Tally(channel, label or cfg.channel_label(channel), start, end)
    names = list(channels) if channels is not None else [channel]
    if not names:
        names = [""]  # no channel: nothing counted (a portable empty IN)
    lo, hi = _bounds(start, end)
    d = start
    while d <= end:
        t.by_day[d.isoformat()] = 0
        d += timedelta(days=1)
    subs = ledger.query("SELECT id, source, form, fields, flags, created_at FROM submissions WHERE channel IN ("
                        + ",".join("?" * len(names)) + ") AND created_at >= ? AND created_at < ? ORDER BY created_at",
                        (*names, lo, hi))
    for s in subs:
        t.submissions += 1
        t.by_source[s["source"] or "api"] = t.by_source.get(s["source"] or "api", 0) + 1
        day = exchange.local(s["created_at"]).date().isoformat()
        t.by_day[day] = t.by_day.get(day, 0) + 1
        flags = json.loads(s["flags"]) if s["flags"] else []
        if flags:
            t.flagged += 1
            for f in flags:
                name = FLAG_LABEL.get(f.get("id", ""), f.get("id", ""))
                t.flags[name] = t.flags.get(name, 0) + 1
        form = cfg.forms.get(s["form"]) if s["form"] else None
        if form is not None:
            values = dict(tuple(x) for x in json.loads(s["fields"] or "[]"))
            for fd in form.fields:
                if fd.type == "choice":
                    counts = t.choices.setdefault(fd.label, {c: 0 for c in fd.choices})
                    v = values.get(fd.name)
                    if v is not None:
                        counts[v] = counts.get(v, 0) + 1
    ids = [s["id"] for s in subs]
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for j in ledger.query(f"SELECT status, verdict, result FROM jobs WHERE submission_id IN"
                              f" ({','.join('?' * len(chunk))})", tuple(chunk)):
            t.files += 1
            final = j["status"] in ("delivered", "blocked")
            v = j["verdict"] if final and j["verdict"] in VERDICT_LABEL else "pending"
            t.by_verdict[v] += 1
            res = json.loads(j["result"]) if j["result"] and final else {}
            mime = res.get("detected_type")
            if mime:
                kind = KINDS.get(mime)
                name = label_ja(mime, kind.label if kind else mime)
                t.by_type[name] = t.by_type.get(name, 0) + 1
            seen: set[str] = set()
            for tid in _threat_ids(res):
                if tid not in seen:
                    seen.add(tid)
                    t.by_threat[tid] = t.by_threat.get(tid, 0) + 1
    return t


def _threat_ids(res: dict[str, Any]) -> list[str]:
    out = [str(x.get("id", "")) for x in res.get("threats") or []]
    for c in res.get("children") or []:
        out += _threat_ids(c)
    return [x for x in out if x]


def _cell(v: Any) -> Any:
    """A cell Excel will not run: text starting with = + - @ (or a tab/CR) gets a leading apostrophe."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def to_csv(t: Tally) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["区分", "項目", "件数"])
    for section, item, n in t.rows():
        w.writerow([_cell(section), _cell(item), _cell(n)])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def svg(t: Tally, title: bool = True) -> str:
    """Two bar charts as one SVG (files by verdict, submissions per day), drawn here: no script."""
    colors = {"clean": "#17703a", "sanitized": "#b86e00", "blocked": "#b3261e", "pending": "#8c94a5"}
    w, row_h = 460, 28
    parts: list[str] = []
    y = 24
    if title:
        parts.append(f'<text x="0" y="16" font-size="16" font-weight="bold">{escape(t.label)} '
                     f'{t.start.isoformat()}～{t.end.isoformat()}</text>')
        y = 40
    parts.append(f'<text x="0" y="{y + 12}" font-size="15" font-weight="bold">ファイルの判定（{t.files}件）</text>')
    y += 22
    top = max([*t.by_verdict.values(), 1])
    for k in VERDICT_ORDER:
        n = t.by_verdict.get(k, 0)
        bw = int(230 * n / top)
        parts.append(f'<text x="0" y="{y + 17}" font-size="14">{VERDICT_LABEL[k]}</text>'
                     f'<rect x="170" y="{y + 4}" width="{bw}" height="{row_h - 10}" fill="{colors[k]}"/>'
                     f'<text x="{176 + bw}" y="{y + 17}" font-size="14">{n}</text>')
        y += row_h
    y += 14
    parts.append(f'<text x="0" y="{y + 12}" font-size="15" font-weight="bold">日別の受付件数（{t.submissions}件）</text>')
    y += 24
    days = sorted(t.by_day.items())
    peak = max([n for _, n in days] + [1])
    ch = 120
    bw = max(2, min(24, (w - 40) // max(1, len(days)) - 2))
    for i, (day, n) in enumerate(days):
        h = int(ch * n / peak)
        x = 30 + i * (bw + 2)
        parts.append(f'<rect x="{x}" y="{y + ch - h}" width="{bw}" height="{h}" fill="#1f5fa8">'
                     f'<title>{day}: {n}件</title></rect>')
    parts.append(f'<line x1="28" y1="{y + ch}" x2="{w}" y2="{y + ch}" stroke="#555d6e"/>'
                 f'<text x="0" y="{y + 12}" font-size="13">{peak}</text>'
                 f'<text x="30" y="{y + ch + 16}" font-size="13">{days[0][0] if days else ""}</text>'
                 f'<text x="{w}" y="{y + ch + 16}" font-size="13" text-anchor="end">{days[-1][0] if days else ""}</text>')
    y += ch + 24
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w + 20}" height="{y}" viewBox="0 0 {w + 20} {y}" '
            f'role="img" aria-label="{escape(t.label)}の集計グラフ" font-family="sans-serif">'
            + "".join(parts) + "</svg>")
