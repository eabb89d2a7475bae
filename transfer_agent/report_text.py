"""The Japanese report beside each delivered file (NAME.報告.txt), for the clerk who opens the share.

Tried both ways (an HTML page in chromium, this text as Notepad shows it): a plain text file, because it
opens by double-click on every LGWAN PC (Notepad), holds nothing active (an HTML file in a CDR inbox is
what clerks are taught not to open, and every sender-given name in it would need escaping), and reads
the same as form.txt: UTF-8 with a BOM (Notepad of every Windows version reads it as UTF-8, not Shift_JIS) and CRLF
line ends. What it says comes from the message catalogue (threat_labels): the verdict in one sentence
that matches what happened, what was removed in plain words, where the text rendition is, and how to
ask for the original. The JSON sidecar (NAME.cdr.json) stays for systems.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

from . import clock
from . import threat_labels as tl
from .bundles import crlf_text

WIDTH = 40  # full-width characters a line: Notepad of Windows 10 does not wrap by default
MAX_FINDINGS = 40  # one line each: a clerk reads a summary, the sidecar has all
MAX_MEMBERS = 60


def _findings(result: dict[str, Any]) -> list[tuple[str, str, str, list[str]]]:
    """(label, action, explanation, places) once per (id, action), in the order found, members' included;
    places: CSV cells and the like, as a clerk names them (B2: =1+1 → '=1+1), the first few."""
    groups: dict[tuple[str, str], list[Any]] = {}

    def walk(r: dict[str, Any]) -> None:
        for t in r.get("threats") or []:
            key = (str(t.get("id", "")), str(t.get("action", "")))
            g = groups.setdefault(key, [0, []])
            g[0] += 1
            where = tl.place(t)
            if where and len(g[1]) < 5:
                g[1].append(where)
        for c in r.get("children") or []:
            walk(c)

    walk(result)
    return [(tl.label(tid) + (f"（{n}件）" if n > 1 else ""), act, tl.explain(tid, act), places)
            for (tid, act), (n, places) in groups.items()]


# Kinsoku: what never begins a line (closing brackets and punctuation), and ASCII runs never split.
_NO_START = set("。、，．）」』】〕〉》！？ー・：；,.)!?:;")
_WORD = re.compile(r"[!-~]+")


def _cols(text: str) -> int:
    """Display width as Notepad shows it: full-width characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _kana(c: str) -> bool:
    return "\u3041" <= c <= "\u309f"


def _wrap(text: str, indent: str = "") -> list[str]:
    """A long sentence as lines of about WIDTH full-width characters, broken after 。 or 、 where possible,
    never inside an ASCII word (a file name, an error text) and never before 。、」 and the like."""
    limit = 2 * WIDTH - _cols(indent)
    out: list[str] = []
    while _cols(text) > limit:
        # The positions a line may end at: between two characters, not inside an ASCII word.
        words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        inside = {i for a, b in words for i in range(a + 1, b)}
        fit, cols = 0, 0
        for i, c in enumerate(text):
            cols += _cols(c)
            if cols > limit:
                break
            fit = i + 1
        cuts = [i for i in range(1, fit + 1) if i not in inside or text[i - 1] == " "]
        late = [i for i in cuts if i >= fit // 2]
        # After 。 or 、; else where kana meets a word (…ファイルを|開き), not inside 開|き; else anywhere.
        cut = max((i for i in late if text[i - 1] in "。、"), default=0) or \
            max((i for i in late if i < len(text) and _kana(text[i - 1]) and not _kana(text[i])
                 and text[i] not in _NO_START), default=0) or max(cuts, default=0) or fit
        while cut < len(text) and text[cut] in _NO_START:
            cut += 1  # a 。 or ） goes with its line, even one column over
        out.append(indent + text[:cut].rstrip(" "))
        text = text[cut:].lstrip(" ")
    return out + ([indent + text] if text else [])


def _members(result: dict[str, Any]) -> list[str]:
    rows: list[str] = []

    def walk(r: dict[str, Any], depth: int) -> None:
        for c in r.get("children") or []:
            if len(rows) >= MAX_MEMBERS:
                return
            reason = c.get("reason_ja") or ""
            line = f"・{c.get('source', '')}：{tl.verdict_label(c.get('verdict'))}" + (
                f"（{reason}）" if reason and c.get("verdict") == "blocked" else "")
            wrapped = _wrap(line, "  " * (depth + 2))  # continuation lines under the name
            rows.extend([wrapped[0][2:]] + wrapped[1:])
            walk(c, depth + 1)

    walk(result, 0)
    return rows


def render(*, job: dict[str, Any], result: dict[str, Any], delivered_name: str | None, text_name: str | None,
           receipt: str | None = None, never: list[str] | None = None) -> bytes:
    """The report's bytes (UTF-8 with BOM, CRLF). `never`: the families of this file that the policy never
    releases ([release] never): the report then does not invite a request for the original."""
    verdict = result.get("verdict") or "blocked"
    sent = str(job.get("name") or "")
    lines = ["無害化の処理結果（自動作成）", "=" * 30]
    if delivered_name:
        lines.append(f"ファイル名：{delivered_name}")
        if delivered_name != sent:
            lines.append(f"送られてきたときの名前：{sent}")
    else:
        lines.append(f"ファイル名：{sent}（配送していません）")
    lines.append(f"判定：{tl.verdict_label(verdict)}")
    lines.append(f"ファイルの種類：{tl.type_label(result.get('detected_type'))}")
    lines.append(f"受信日時：{clock.shown(job.get('received_at'))}")
    lines.append(f"チャネル：{job.get('channel', '')}" + (f"　受付番号：{receipt}" if receipt else ""))
    lines += [""] + _wrap(tl.verdict_sentence(result))
    if verdict == "blocked":
        reason = result.get("reason_ja") or result.get("reason")
        if reason:
            lines += _wrap(f"理由：{reason}")
        if job.get("source") != "too_large":
            lines.append("元のファイル（原本）は隔離して保管しています。")
    findings = _findings(result)
    if findings:
        lines += ["", "■ 取り除いたもの・見つかったもの"]
        if tl.is_text_only(result):
            lines += _wrap("（元のファイルにあったものです。配送したのは文字だけのファイルで、書式・画像・"
                           "マクロなどは含まれません）", "　")
        for lab, act, why, places in findings[:MAX_FINDINGS]:
            lines.append(f"・{lab}［{tl.action_label(act)}］")
            lines += _wrap(why, "　　")
            for p in places:
                lines += _wrap(f"場所：{p}", "　　")
        if len(findings) > MAX_FINDINGS:
            lines.append(f"・ほか {len(findings) - MAX_FINDINGS} 種類（詳細は {delivered_name or sent}.cdr.json）")
    members = _members(result)
    if members:
        lines += ["", "■ 中身（圧縮ファイル・メールの添付）"] + members
    if text_name and text_name != delivered_name:
        lines += ["", "■ 文字だけを取り出したファイル（テキスト版）", f"　{text_name}"]
    if job.get("source") == "too_large":
        lines += ["", "■ このファイルについて"]
        lines += _wrap("大きさの上限を超えたため受け取っていません。送信側のフォルダに残っています。"
                       "分割するなどして送り直してもらうか、管理者に相談してください。", "　")
    elif never:
        lines += ["", "■ 元のファイル（原本）について"]
        lines += _wrap(f"このファイルには{'・'.join(tl.family_label(f) for f in never)}が含まれるため、"
                       "ポリシーにより原本を取り出せません。", "　")
        lines += _wrap("必要な場合は、受け付けている形式で送り直すよう送信者に依頼してください。", "　")
    else:
        lines += ["", "■ 元のファイル（原本）が必要なとき"]
        for sentence in ("無害化で必要な情報が失われた場合は、職員コンソールの受信一覧でこのファイルを開き、"
                         "「原本の取り出しを申請する」から申請してください。",
                         "上長が承認すると、申請した職員が職員コンソールから原本をダウンロードできます。",
                         "原本には危険な要素が残っている可能性があります。"):
            lines += _wrap(sentence, "　")
    if verdict == "blocked" and tl.block_kind(result) == "password":
        lines += ["", "■ パスワードを受け取ったら"]
        lines += _wrap("職員コンソールでこのファイルの報告を開き、パスワードを入力してください。"
                       "無害化したファイルがこのフォルダに届き、この報告は新しい報告に置き換わります。", "　")
    lines += ["", f"処理番号：{job.get('id')}　ポリシー：{job.get('policy') or '—'}"]
    lines += _wrap("（このファイルは無害化転送装置が自動で作成しました。機械で読む記録は .cdr.json / .blocked.json です）")
    return crlf_text(lines)
