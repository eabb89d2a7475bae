"""Writing the new message: every byte is ours. ASCII only (RFC 2047/2231 for words and names,
base64 for content), CRLF line ends, lines folded at 76 columns where the syntax allows, fresh random
boundaries."""
from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from .headers import encoded_name, param_value


@dataclass
class OutPart:
    mime: str
    data: bytes
    filename: str = ""
    cid: str = ""
    disposition: str = "attachment"  # attachment | inline | "" (none)
    charset: str = ""
    message: bool = False  # an RFC 5322 message we built (message/rfc822, 7bit)


def _b64(data: bytes) -> bytes:
    enc = base64.b64encode(data)
    return b"\r\n".join(enc[i:i + 76] for i in range(0, len(enc), 76))


def _params_line(name: str, value: str, params: list[str]) -> str:
    """`Name: value; p1; p2` folded between parameters."""
    lines = [f"{name}: {value}"]
    for p in params:
        if len(lines[-1]) + 2 + len(p) > 76:
            lines[-1] += ";"
            lines.append(" " + p)
        else:
            lines[-1] += "; " + p
    return "\r\n".join(lines)


def _name_params(key: str, filename: str) -> list[str]:
    """name="=?UTF-8?B?...?=" (Outlook) and name*=UTF-8''... (RFC 2231) for the same name."""
    plain = param_value(key, filename)
    if len(plain) == 1 and "*" not in plain[0].split("=", 1)[0]:
        return plain
    return [f"{key}={encoded_name(filename)}", *plain]


def part_bytes(p: OutPart) -> bytes:
    ctype_params = []
    if p.charset:
        ctype_params.append(f"charset={p.charset}")
    if p.filename:
        ctype_params.append(f"name={encoded_name(p.filename)}")
    head = [_params_line("Content-Type", p.mime, ctype_params)]
    if p.disposition:
        head.append(_params_line("Content-Disposition", p.disposition,
                                 _name_params("filename", p.filename) if p.filename else []))
    if p.cid:
        head.append(f"Content-ID: <{p.cid}>")
    if p.message:
        head.append("Content-Transfer-Encoding: 7bit")
        body = p.data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").rstrip(b"\r\n")
    else:
        head.append("Content-Transfer-Encoding: base64")
        body = _b64(p.data)
    return "\r\n".join(head).encode("ascii") + b"\r\n\r\n" + body


def _boundary(parts: list[bytes]) -> str:
    while True:
        b = "=_cdr_" + secrets.token_hex(12)
        if not any(b.encode() in p for p in parts):
            return b


def multipart(subtype: str, parts: list[bytes], extra: str = "") -> bytes:
    b = _boundary(parts)
    head = f'Content-Type: multipart/{subtype};{extra}\r\n boundary="{b}"'
    out = [head.encode("ascii"), b"\r\n\r\n"]
    for p in parts:
        out += [b"--", b.encode(), b"\r\n", p, b"\r\n"]
    out += [b"--", b.encode(), b"--\r\n"]
    return b"".join(out)


def text_part(text: str, subtype: str = "plain") -> bytes:
    data = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n").encode("utf-8")
    return part_bytes(OutPart(f"text/{subtype}", data, charset="utf-8", disposition=""))


def message(header_lines: list[str], text: str | None, html: str | None, related: list[OutPart],
            attachments: list[OutPart]) -> bytes:
    """The whole message: headers, then text (and HTML with its pictures), then attachments.
    `text` None with an HTML body: the HTML alone (only for messages carried to a nested run)."""
    body = text_part(text or "")
    if html is not None:
        html_p = text_part(html, "html")
        if related:
            html_p = multipart("related", [html_p] + [part_bytes(r) for r in related], ' type="text/html";')
        body = multipart("alternative", [body, html_p]) if text is not None else html_p
    elif related:
        attachments = related + attachments
    if attachments:
        body = multipart("mixed", [body] + [part_bytes(a) for a in attachments])
    head = "\r\n".join([*header_lines, "MIME-Version: 1.0"]).encode("ascii")
    return head + b"\r\n" + body + (b"" if body.endswith(b"\r\n") else b"\r\n")
