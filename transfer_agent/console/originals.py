"""原本取り出し: requests for an original, approval by a second person, release into the inbox.

On approval the original is copied out of quarantine (after checking its hash) into the job's
inbox folder under `originals/ORIGINAL_<name>`, written like any delivery: temp name, fsync,
link without replacing, fsync the folder. Request, decision and release are audited with the
decision in one transaction, so the trail never shows a release that did not happen.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..delivery import Conflict, HashMismatch, write_atomic
from ..files import clean_name, fit_name
from ..ledger import FINAL, Ledger
from ..safefs import Refused, Tree
from ..users import User

ORIGINALS_DIR = "originals"
PREFIX = "ORIGINAL_"
MAX_REASON = 2000


# Fixed texts by code: the console redirects with `?msg=<code>`, never with the text itself.
MESSAGES = {
    "reason_short": "申請理由を具体的に入力してください（4文字以上）",
    "reason_long": f"申請理由は{MAX_REASON}文字以内で入力してください",
    "not_final": "処理が完了したファイルについてのみ申請できます",
    "pending_exists": "このファイルについては、すでに承認待ちの申請があります",
    "no_quarantine": "原本の保管場所が記録されていません",
    "expired": "原本は保存期間を過ぎたため削除されています",
    "hash_mismatch": "隔離中の原本が記録と一致しないため取り出しを中止しました",
    "no_free_name": "取り出し先に空いている名前がありません",
    "link_refused": "取り出し先のフォルダにシンボリックリンクなどがあるため書き込みを中止しました（管理者に連絡してください）",
    "comment_required": "却下する場合は理由（コメント）を入力してください",
    "not_found": "申請が見つかりません",
    "already_decided": "この申請はすでに処理されています",
    "own_request": "自分の申請を承認・却下することはできません（別の承認者が必要です）",
}


class RequestError(Exception):
    def __init__(self, code: str) -> None:
        self.code = code
        self.ja = MESSAGES[code]
        super().__init__(self.ja)


def request_original(ledger: Ledger, user: User, job_id: int, reason: str) -> int:
    reason = reason.strip()
    if len(reason) < 4:
        raise RequestError("reason_short")
    if len(reason) > MAX_REASON:
        raise RequestError("reason_long")
    with ledger.tx() as t:
        job = t.execute("SELECT id, status, name, sha256 FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if job is None or job[1] not in FINAL:
            raise RequestError("not_final")
        if t.execute("SELECT 1 FROM original_requests WHERE job_id = ? AND requester_id = ? AND status = 'pending'",
                     (job_id, user.id)).fetchone():
            raise RequestError("pending_exists")
        cur = t.execute("INSERT INTO original_requests(job_id, requester_id, reason, status, created_at)"
                        " VALUES (?,?,?,?,?)", (job_id, user.id, reason, "pending", time.time()))
        rid = int(cur.lastrowid)
        t.audit("original.requested", {"request_id": rid, "name": job[2], "sha256": job[3], "reason": reason,
                                       "requester": user.name}, job_id=job_id, actor=user.name)
    return rid


def _release(data_dir: Path, job: Any, fsync: bool, commit: Any, tree: Tree | None = None) -> Path:
    """Copy the quarantined original into <inbox dir>/originals/ORIGINAL_<name>; returns the final path.

    `commit(relative path)` records the approval once the copy is complete and verified, before the
    copy becomes visible: a crash in between leaves a hidden temp (removed at start), never an
    original without its approval."""
    if not job["quarantine"]:
        raise RequestError("no_quarantine")
    src = data_dir / job["quarantine"]
    if not src.is_file():
        raise RequestError("expired")
    tree = tree or Tree(data_dir)
    target = str(Path(job["inbox_dir"] or f"inbox/{job['channel']}") / ORIGINALS_DIR)
    try:
        final = write_atomic(tree, target, fit_name(clean_name(PREFIX + job["name"]), 200), src, fsync, tag="orig",
                             expect_sha256=job["sha256"] or None,
                             before_link=lambda name: commit(f"{target}/{name}"))
    except HashMismatch:
        raise RequestError("hash_mismatch") from None
    except Conflict:
        raise RequestError("no_free_name") from None
    except Refused:
        raise RequestError("link_refused") from None
    return data_dir / target / final


def decide(ledger: Ledger, data_dir: Path, approver: User, request_id: int, approve: bool, comment: str,
           fsync: bool = True, lock: Any = None, tree: Tree | None = None) -> dict[str, Any]:
    comment = comment.strip()[:MAX_REASON]
    if not approve and not comment:
        raise RequestError("comment_required")
    req = ledger.one("SELECT r.*, u.name AS requester FROM original_requests r JOIN console_users u"
                     " ON u.id = r.requester_id WHERE r.id = ?", (request_id,))
    if req is None:
        raise RequestError("not_found")
    if req["status"] != "pending":
        raise RequestError("already_decided")
    if req["requester_id"] == approver.id:
        raise RequestError("own_request")
    job = ledger.one("SELECT * FROM jobs WHERE id = ?", (req["job_id"],))

    def record(released_rel: str | None) -> None:
        with ledger.tx() as t:
            cur = t.execute("UPDATE original_requests SET status = ?, approver_id = ?, comment = ?, decided_at = ?,"
                            " released = ? WHERE id = ? AND status = 'pending'",
                            ("approved" if approve else "rejected", approver.id, comment, time.time(),
                             released_rel, request_id))
            if cur.rowcount != 1:
                raise RequestError("already_decided")
            event = "original.approved" if approve else "original.rejected"
            t.audit(event, {"request_id": request_id, "requester": req["requester"], "comment": comment},
                    job_id=req["job_id"], actor=approver.name)
            if approve:
                t.audit("original.released", {"request_id": request_id, "path": released_rel,
                                              "sha256": job["sha256"], "name": job["name"]},
                        job_id=req["job_id"], actor=approver.name)

    released_rel = None
    if approve:
        if lock is not None:
            with lock:
                final = _release(data_dir, job, fsync, record, tree)
        else:
            final = _release(data_dir, job, fsync, record, tree)
        released_rel = str(final.relative_to(data_dir))
    else:
        record(None)
    return {"status": "approved" if approve else "rejected", "released": released_rel}
