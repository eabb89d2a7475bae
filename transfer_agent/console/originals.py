"""原本取り出し: requests for an original, approval by a second person, download by the requester.

The policy's `[release]` says which originals may be released at all (`never`: families, an archive
or mail member counts) and which verdicts need the approver's comment (`comment_required`). An
approved original is never written to a shared folder: the requester, and only the requester,
downloads it from the console for `download_hours` after the approval, each download checked
against the recorded hash and audited. Request and decision are audited in the transaction that
records them.

Before this, an approval copied the original into the channel's delivery folder as
`originals/ORIGINAL_<name>`, where everyone with access to the share could take it;
`transfer-agent originals legacy [--remove]` lists (and removes, audited) those copies.

For a mail, a request may name one attachment (`part`: its index among the report's children) instead
of the whole original mail: the policy's `never` then looks at that attachment only, and at download
a worker reads it out of the quarantined mail (`extract`, cdr op mail_part); its bytes are checked
against the sha256 the report recorded for that attachment before the requester gets them.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

from cdr.policy import Policy

from .. import safefs
from ..ledger import FINAL, Ledger, loads
from ..safefs import Tree
from ..users import User

ORIGINALS_DIR = "originals"  # where approvals used to copy originals (the legacy sweep looks there)
PREFIX = "ORIGINAL_"
MAX_REASON = 2000

PolicyFor = Callable[[str], Policy]

# Fixed texts by code: the console redirects with `?msg=<code>`, never with the text itself.
MESSAGES = {
    "reason_short": "申請理由を具体的に入力してください（4文字以上）",
    "reason_long": f"申請理由は{MAX_REASON}文字以内で入力してください",
    "not_final": "処理が完了したファイルについてのみ申請できます",
    "pending_exists": "このファイルについては、すでに承認待ちの申請があります",
    "no_quarantine": "原本の保管場所が記録されていません",
    "expired": "原本は保存期間を過ぎたため削除されています",
    "hash_mismatch": "隔離中の原本が記録と一致しないため取り出しを中止しました",
    "never_release": "このファイルはポリシーにより原本を取り出せません（実行ファイルなど）",
    "comment_required": "却下する場合は理由（コメント）を入力してください",
    "comment_required_danger": "危険な内容が見つかったファイルです。承認する理由（コメント）を入力してください",
    "not_found": "申請が見つかりません",
    "already_decided": "この申請はすでに処理されています",
    "own_request": "自分の申請を承認・却下することはできません（別の承認者が必要です）",
    "bad_part": "指定された添付ファイルはこのメールにありません",
    "part_failed": "添付ファイルの原本を取り出せませんでした（管理者に連絡してください）",
}


class RequestError(Exception):
    def __init__(self, code: str) -> None:
        self.code = code
        self.ja = MESSAGES[code]
        super().__init__(self.ja)


def families(result: dict[str, Any] | None) -> set[str]:
    """Every family in a result: the file's and each member's (archives, mails), at any depth."""
    out: set[str] = set()

    def walk(r: dict[str, Any]) -> None:
        if r.get("family"):
            out.add(str(r["family"]))
        for t in r.get("threats") or []:
            if t.get("id") == "file.executable":  # however the member was typed
                out.add("executable")
        for c in r.get("children") or []:
            if isinstance(c, dict):
                walk(c)

    if result:
        walk(result)
    return out


def never_released(job: Any, policy: Policy, part: int | None = None) -> list[str]:
    """The families of this job (of its attachment `part`, for one attachment of a mail) that the policy
    never releases (empty: it may be released)."""
    result = loads(job["result"])
    if part is not None:
        children = (result or {}).get("children") or []
        result = children[part] if 0 <= part < len(children) else None
    return sorted(families(result) & set(policy.release.never))


def mail_part(job: Any, part: int | None) -> tuple[str, str] | None:
    """(name, sha256) of attachment `part` of a mail job's report, None for the whole original; RequestError
    when the job is no mail or has no such attachment."""
    if part is None:
        return None
    children = (loads(job["result"]) or {}).get("children") or []
    if not job["mail_id"] or not 0 <= part < len(children) or not children[part].get("sha256"):
        raise RequestError("bad_part")
    return str(children[part].get("source") or f"attachment{part + 1}"), str(children[part]["sha256"])


def needs_comment(job: Any, policy: Policy) -> bool:
    return (job["verdict"] or "blocked") in policy.release.comment_required


def request_original(ledger: Ledger, user: User, job_id: int, reason: str, policy_for: PolicyFor | None = None,
                     part: int | None = None) -> int:
    """A request for the original of `job_id` (of its attachment `part`, for a mail)."""
    reason = reason.strip()
    if len(reason) < 4:
        raise RequestError("reason_short")
    if len(reason) > MAX_REASON:
        raise RequestError("reason_long")
    with ledger.tx() as t:
        job = t.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if job is None or job["status"] not in FINAL or not user.scope.allows(job["channel"]):
            raise RequestError("not_final")
        which = mail_part(job, part)
        if policy_for is not None and never_released(job, policy_for(job["channel"]), part):
            raise RequestError("never_release")
        if t.execute("SELECT 1 FROM original_requests WHERE job_id = ? AND requester_id = ? AND status = 'pending'",
                     (job_id, user.id)).fetchone():
            raise RequestError("pending_exists")
        cur = t.execute("INSERT INTO original_requests(job_id, requester_id, reason, status, created_at, part,"
                        " part_name) VALUES (?,?,?,?,?,?,?)", (job_id, user.id, reason, "pending", time.time(), part,
                                                              which[0] if which else None))
        rid = int(cur.lastrowid)
        data = {"request_id": rid, "name": job["name"], "sha256": job["sha256"], "reason": reason,
                "requester": user.name}
        if which is not None:
            data.update(part=part, part_name=which[0], part_sha256=which[1])
        t.audit("original.requested", data, job_id=job_id, actor=user.name)
    return rid


def decide(ledger: Ledger, data_dir: Path, approver: User, request_id: int, approve: bool, comment: str,
           policy_for: PolicyFor) -> dict[str, Any]:
    """Approve or reject a pending request of a channel the approver reaches. An approval opens the
    requester's download for the policy's `download_hours`; nothing is written to any folder."""
    comment = comment.strip()[:MAX_REASON]
    req = ledger.one("SELECT r.*, u.name AS requester FROM original_requests r JOIN console_users u"
                     " ON u.id = r.requester_id WHERE r.id = ?", (request_id,))
    job = ledger.one("SELECT * FROM jobs WHERE id = ?", (req["job_id"],)) if req is not None else None
    if req is None or job is None or not approver.scope.allows(job["channel"]):
        raise RequestError("not_found")  # another channel's: answered as if there were none
    if not approve and not comment:
        raise RequestError("comment_required")
    if req["status"] != "pending":
        raise RequestError("already_decided")
    if req["requester_id"] == approver.id:
        raise RequestError("own_request")
    policy = policy_for(job["channel"])
    expires = None
    now = time.time()
    if approve:
        if never_released(job, policy, req["part"]):
            raise RequestError("never_release")
        if needs_comment(job, policy) and not comment:
            raise RequestError("comment_required_danger")
        if not job["quarantine"]:
            raise RequestError("no_quarantine")
        if not (data_dir / job["quarantine"]).is_file():
            raise RequestError("expired")
        expires = now + policy.release.download_hours * 3600
    with ledger.tx() as t:
        cur = t.execute("UPDATE original_requests SET status = ?, approver_id = ?, comment = ?, decided_at = ?,"
                        " expires_at = ? WHERE id = ? AND status = 'pending'",
                        ("approved" if approve else "rejected", approver.id, comment, now, expires, request_id))
        if cur.rowcount != 1:
            raise RequestError("already_decided")
        event = "original.approved" if approve else "original.rejected"
        data: dict[str, Any] = {"request_id": request_id, "requester": req["requester"], "comment": comment,
                                "verdict": job["verdict"]}
        if approve:
            data.update(expires_at=expires, policy=policy.label)
        t.audit(event, data, job_id=req["job_id"], actor=approver.name)
    return {"status": "approved" if approve else "rejected", "expires_at": expires}


class Unavailable(Exception):
    """An approved original that cannot be downloaded now; `status` and `ja` for the page."""

    def __init__(self, status: int, ja: str) -> None:
        super().__init__(ja)
        self.status, self.ja = status, ja


def expiry(req: Any, policy: Policy) -> float:
    """When the requester's download closes (approvals from before expires_at: decided_at + the policy's)."""
    if req["expires_at"]:
        return float(req["expires_at"])
    return float(req["decided_at"] or 0) + policy.release.download_hours * 3600


def open_original(ledger: Ledger, data_dir: Path, user: User, request_id: int, policy_for: PolicyFor,
                  client: str = "", extract: Callable[[Any, int], tuple[str, bytes]] | None = None
                  ) -> tuple[Path | bytes, str]:
    """The quarantined original of an approved request, for its requester only, within its time and
    only if the policy still allows it and the file still has the recorded hash. Audited. For one
    attachment of a mail: its bytes, read out by `extract(job, part)` in a worker and checked."""
    r = ledger.one("SELECT r.*, j.channel, j.name, j.sha256, j.quarantine, j.result, j.verdict, j.mail_id"
                   " FROM original_requests r JOIN jobs j ON j.id = r.job_id WHERE r.id = ?", (request_id,))
    # Someone else's request, another channel's or none at all: the same answer.
    if r is None or r["requester_id"] != user.id or not user.scope.allows(r["channel"]) or r["status"] != "approved":
        raise Unavailable(404, "取り出しが承認された原本はありません")
    policy = policy_for(r["channel"])
    if time.time() > expiry(r, policy):
        raise Unavailable(410, "ダウンロードの期限が過ぎました。必要な場合はもう一度申請してください")
    if never_released(r, policy, r["part"]):
        raise Unavailable(403, MESSAGES["never_release"])
    path = data_dir / (r["quarantine"] or "")
    if not r["quarantine"] or path.is_symlink() or not path.is_file():
        raise Unavailable(404, MESSAGES["expired"])
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != r["sha256"]:
        raise Unavailable(409, MESSAGES["hash_mismatch"])
    out: Path | bytes = path
    name, sha = r["name"], r["sha256"]
    if r["part"] is not None:
        try:
            name, sha = mail_part(r, int(r["part"]))
        except RequestError:
            raise Unavailable(404, MESSAGES["bad_part"]) from None
        try:
            sent_name, out = extract(r, int(r["part"])) if extract is not None else ("", b"")
        except Exception:  # noqa: BLE001 - a worker error: nothing handed out
            raise Unavailable(503, MESSAGES["part_failed"]) from None
        if hashlib.sha256(out).hexdigest() != sha:
            raise Unavailable(409 if extract is not None else 503,
                              MESSAGES["hash_mismatch" if extract is not None else "part_failed"])
        name = sent_name or name
    with ledger.tx() as t:
        t.execute("UPDATE original_requests SET downloads = downloads + 1 WHERE id = ?", (request_id,))
        data = {"request_id": request_id, "sha256": sha, "name": name, "client": client}
        if r["part"] is not None:
            data["part"] = r["part"]
        t.audit("original.downloaded", data, job_id=r["job_id"], actor=user.name)
    return out, name


def legacy_copies(ledger: Ledger, data_dir: Path, remove: bool = False, actor: str = "cli") -> list[dict[str, Any]]:
    """Originals an older version copied into shared delivery folders (`originals/ORIGINAL_<name>`), with
    what is there now: `present`, `gone`, `changed` (another file under that name: never removed) or
    `unreachable` (a link on the way). With `remove`, present copies are deleted (audited); the request
    stays approved and its requester downloads from the console until it expires."""
    out = []
    tree = Tree(data_dir)
    for r in ledger.query("SELECT r.id, r.job_id, r.released, j.sha256 FROM original_requests r JOIN jobs j"
                          " ON j.id = r.job_id WHERE r.status = 'approved' AND r.released IS NOT NULL ORDER BY r.id"):
        rel = PurePath(r["released"])
        state = "gone"
        try:
            with tree.dir(rel.parent) as dfd:
                sha = safefs.sha256_of(dfd, rel.name)
                if sha is not None:
                    state = "present" if sha == r["sha256"] else "changed"
                elif safefs.exists(dfd, rel.name):
                    state = "changed"  # a link or a folder under that name: not ours to remove
                if state == "present" and remove and safefs.unlink(dfd, rel.name):
                    os.fsync(dfd)
                    with ledger.tx() as t:
                        t.audit("original.legacy_removed", {"request_id": r["id"], "path": r["released"],
                                                            "sha256": r["sha256"]}, job_id=r["job_id"], actor=actor)
                    state = "removed"
        except FileNotFoundError:
            state = "gone"
        except OSError:
            state = "unreachable"
        out.append({"request_id": r["id"], "job_id": r["job_id"], "path": r["released"], "state": state})
    return out
