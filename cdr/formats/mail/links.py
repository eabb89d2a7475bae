"""Links in a mail body: kept, defanged (`hxxps://example[.]jp/...` as text) or dropped, and the
deceptive ones flagged for the banner: a link whose text shows another host than its target,
a numeric (IP-literal) host, a punycode name that imitates Latin letters with other scripts."""
from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

URL = re.compile(r"(?i)\b((?:https?|ftp)://[^\s<>\"'「」『』（）()【】、。]+|www\.[a-z0-9-]+\.[^\s<>\"'「」『』（）()【】、。]+)")
_HOST_IN_TEXT = re.compile(r"(?i)(?:https?://)?((?:[a-z0-9\u00a1-\uffff-]+\.)+[a-z\u00a1-\uffff]{2,}|\[[0-9a-f:.]+\]"
                           r"|\d{1,3}(?:\.\d{1,3}){3})(?=[/:?#\s]|$)")
_OK_SCRIPTS = {"LATIN", "DIGIT", "HYPHEN-MINUS", "CJK", "HIRAGANA", "KATAKANA", "FULLWIDTH", "HALFWIDTH",
               "IDEOGRAPHIC", "HANGUL", "KATAKANA-HIRAGANA"}


@dataclass
class Deceptive:
    text: str  # what the reader sees
    target: str  # where it goes
    why: str  # en
    why_ja: str


def host_of(url: str) -> str:
    u = url.strip()
    if u.lower().startswith("www."):
        u = "http://" + u
    try:
        host = urlsplit(u).hostname or ""
    except ValueError:
        return ""
    return host.rstrip(".").lower()


def _is_ip(host: str) -> bool:
    h = host.strip("[]")
    try:
        ipaddress.ip_address(h)
        return True
    except ValueError:
        pass
    # Forms a browser still reads as an address: 3232235777, 0xc0a80001, 0300.0250.0.1, 192.168.1
    return bool(re.fullmatch(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}", h))


def _script(ch: str) -> str:
    try:
        return unicodedata.name(ch).split(" ")[0]
    except ValueError:
        return "UNKNOWN"


def lookalike(host: str) -> str | None:
    """A reason when a punycode host imitates Latin letters (Cyrillic а in аpple.com), else None.
    Japanese names (日本語.jp) are fine."""
    labels = host.split(".")
    for label in labels:
        if not label.startswith("xn--"):
            continue
        try:
            uni = label.encode("ascii").decode("idna")
        except UnicodeError:
            return f"undecodable punycode label {label}"
        scripts = {_script(c) for c in uni if c not in "-0123456789"}
        odd = scripts - _OK_SCRIPTS
        if odd:
            return f"{uni} mixes {', '.join(sorted(odd)).lower()} letters into the name"
        if "LATIN" in scripts and any(not c.isascii() for c in uni if _script(c) == "LATIN"):
            return f"{uni} uses accented Latin letters that look like plain ones"
    return None


def registrable(host: str) -> str:
    """example.co.jp for www.city.example.co.jp (Public Suffix List)."""
    h = host.strip("[]").lower()
    if _is_ip(h):
        return h
    try:
        from publicsuffixlist import PublicSuffixList

        psl = _PSL[0] if _PSL else None
        if psl is None:
            psl = PublicSuffixList()
            _PSL.append(psl)
        return psl.privatesuffix(h) or h
    except Exception:  # no list: the last two labels, good enough to compare
        return ".".join(h.split(".")[-2:])


_PSL: list = []


def judge(text: str, target: str) -> Deceptive | None:
    """Is the link (visible `text`, real `target`) deceptive?"""
    host = host_of(target)
    if not host:
        return None
    if _is_ip(host):
        return Deceptive(text, target, f"the link goes to a numeric address ({host})",
                         f"リンク先がドメイン名ではなくIPアドレス（{host}）です")
    why = lookalike(host)
    if why:
        return Deceptive(text, target, f"look-alike host name: {why}",
                         f"リンク先のドメイン名が見た目の似た別の文字を使っています（{host}）")
    m = _HOST_IN_TEXT.search(text.strip())
    if m:
        shown = m.group(1).lower().strip("[]").rstrip(".")
        try:
            shown = shown.encode("idna").decode("ascii") if not shown.isascii() else shown
        except UnicodeError:
            pass
        if shown and registrable(shown) != registrable(host):
            return Deceptive(text, target, f"the text shows {shown} but the link goes to {host}",
                             f"表示は「{shown}」ですが、実際のリンク先は「{host}」です")
    return None


def defang(url: str) -> str:
    """hxxps://example[.]jp/path: readable, not clickable (no mail reader links it)."""
    u = re.sub(r"(?i)^http", "hxxp", url)
    u = re.sub(r"(?i)^ftp", "fxp", u)
    host = host_of(url)
    if host:
        i = u.lower().find(host)
        if i >= 0:
            u = u[:i] + u[i:i + len(host)].replace(".", "[.]") + u[i + len(host):]
    else:
        u = u.replace(".", "[.]", 1)
    return u


def rewrite_text(text: str, mode: str) -> tuple[str, list[Deceptive], int]:
    """Links in plain text under `mode` (keep | defang | drop): (new text, deceptive links, links changed)."""
    found: list[Deceptive] = []
    changed = 0

    def repl(m: re.Match) -> str:
        nonlocal changed
        url = m.group(1)
        d = judge(url, url)
        if d:
            found.append(d)
        if mode == "keep":
            return url
        changed += 1
        return defang(url) if mode == "defang" else "[リンク削除 / link removed]"

    return URL.sub(repl, text), found, changed
