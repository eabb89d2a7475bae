"""One original attachment of a mail, as the sender sent it: for an approved request (原本取り出し) of a
single attachment. Runs in a worker like any parse of a mail (op "mail_part" of cdr.worker).

The index is the attachment's place among the mail's report `children` (the rebuild makes exactly one
child per attachment, in mail order, delivered or blocked), so the appliance can check the bytes
against that child's sha256 before it releases them.
"""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from ...detect import detect
from ...errors import CdrError
from ...names import safe_basename
from ...policy import Policy
from .headers import rule_name
from .limits import MailLimits, budget_for


def original_attachment(src: str | Path, index: int, policy: Policy) -> dict:
    """{"name", "data" (base64), "sha256"} of attachment `index` (0-based), or {"error": why}."""
    from . import EML, MSG, TNEF, MailHandler

    path = Path(src)
    det = detect(path, "original.eml")
    if det.mime not in (EML, MSG, TNEF):
        return {"error": f"not a mail ({det.mime})"}
    data = path.read_bytes()
    fam = policy.families.get("mail")
    floor = float(fam.options.get("ratio_floor_mb", 1.0)) if fam is not None else 1.0
    handler = MailHandler()
    try:
        with budget_for(MailLimits.of(policy.limits, floor), len(data)) as budget:
            doc = handler._read(None, data, det.mime, budget, with_auth=False).doc  # noqa: SLF001 - same reader
    except CdrError as exc:
        return {"error": f"the mail cannot be read: {exc}"[:300]}
    if not 0 <= index < len(doc.attachments):
        return {"error": f"no attachment {index} (the mail has {len(doc.attachments)})"}
    att = doc.attachments[index]
    name = safe_basename(rule_name(att.name)) if att.name else ""
    if att.kind == "message" and not name.lower().endswith((".eml", ".msg")):
        name = (name or "message") + ".eml"
    return {"name": name or f"attachment{index + 1:03d}.bin", "data": base64.b64encode(att.data).decode("ascii"),
            "sha256": hashlib.sha256(att.data).hexdigest()}
