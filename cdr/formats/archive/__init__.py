"""Archives: ZIP, tar (plain, .gz, .bz2, .xz), single-file .gz/.bz2/.xz, 7z; RAR is refused.

Every member is extracted (metered, to a generated file name) and run through
the full pipeline as a child; a *new* archive of the same format is built from
the delivered members only, under their delivered names. Nothing of the
original container survives: no comment, no extra fields, no hidden bytes
between members, no encryption, no links or devices.

Decisions:
- A member that is blocked is dropped and reported (archive.member_blocked);
  the archive is then "sanitized". If *every* member is blocked the archive is
  blocked: an empty box is useless to the clerk and the report explains why
  (for a PPAP ZIP without password: ask the sender for the password).
- Limits hold for the whole tree of nested archives (see limits.py).
  Expansion and member-count limits block the outermost archive, because a
  bomb is hostile as a whole; a member nested too deep is only dropped.
- Names: refused when they contain NUL, control or bidi characters or '..';
  normalised (and reported as renamed) for backslashes, absolute paths, drive
  letters and names Windows cannot create. Non-UTF-8 names are decoded as
  UTF-8, then cp932, then cp437, and written back as UTF-8 (flag bit 11).
"""
from __future__ import annotations

import os
import unicodedata
from dataclasses import replace
from pathlib import Path, PurePosixPath

from ...detect import detect
from ...encoding import BIDI_CONTROLS
from ...errors import Blocked, Encrypted, LimitExceeded, Unsupported
from ...handler import Context, Handler, Rebuilt, handler_for, register
from ...model import BLOCKED, SANITIZED, Detection, FileResult, Threat
from .._catalog import OPTIONS
from .containers import (
    BZIP2,
    COMPRESSED,
    GZIP,
    RAR,
    SEVENZ,
    XZ,
    ZIP,
    Entry,
    MemberError,
    SevenZipReader,
    SevenZipWriter,
    SingleReader,
    SingleWriter,
    TarReader,
    TarWriter,
    WrongPassword,
    ZipReader,
    ZipWriter,
    is_tar_stream,
)
from .limits import Budget, Meter, MiB, budget_for
from .names import MAX_NAME_CHARS, check_name, unique

_SINGLE_EXT = {GZIP: ".gz", BZIP2: ".bz2", XZ: ".xz"}
_PPAP_JA = ("パスワード付きの圧縮ファイルです。送信者にパスワードを確認し、"
            "パスワードを指定して再度取り込んでください")
_PPAP_EN = "password-protected archive (PPAP): ask the sender for the password and submit it with the file"
_WRONG_JA = "指定されたパスワードでは開けませんでした。送信者にパスワードを確認してください"
_WRONG_EN = "the password supplied does not open this archive; check it with the sender"
_REASONS = {
    "archive.path_traversal": ("パス名に上位フォルダーへの移動（..）が含まれるため除外しました",
                               "the name climbs out of the archive folder ('..')"),
    "archive.bad_name": ("ファイル名に不正な文字（制御文字・表示方向制御文字など）が含まれるため除外しました",
                         "the name contains forbidden characters (control or bidirectional)"),
    "archive.symlink": ("シンボリックリンク／ハードリンクは受け付けないため除外しました",
                        "symbolic and hard links are never delivered"),
    "archive.special_file": ("デバイスファイル等の特殊ファイルは受け付けないため除外しました",
                             "device files, FIFOs and other special files are never delivered"),
}


def display(name: str) -> str:
    """A name safe to show in a report: control and bidi characters made visible, and cut short (a
    member name of megabytes would otherwise fill the report and every reason that lists it)."""
    if len(name) > MAX_NAME_CHARS:
        name = f"{name[:200]}…({len(name)} characters)"
    return "".join(f"\\u{ord(c):04x}" if c in BIDI_CONTROLS or unicodedata.category(c) == "Cc" else c
                   for c in name)


def _file_folder_clashes(plan: list[tuple], taken: set[str], threats: list[Threat]) -> None:
    """A file named like a folder of the same archive ("x.txt" beside "x.txt/a") cannot be unpacked on
    Windows: the file gets a free name instead (the folder keeps its members together)."""
    folders = {item[1].casefold() for item in plan if item[0] == "dir"}
    for item in plan:
        parts = item[1].split("/")
        folders.update("/".join(parts[:i]).casefold() for i in range(1, len(parts)))
    for i, item in enumerate(plan):
        if item[0] == "file" and item[1].casefold() in folders:
            new = unique(item[1], taken)
            threats.append(Threat("archive.duplicate_name", item[1], "renamed", f"a folder has this name: {new}"))
            item[4].output = new
            plan[i] = ("file", new, *item[2:])


def _refused(entry: Entry, threat_id: str, en: str, ja: str) -> FileResult:
    r = FileResult(source=display(entry.name), size=entry.size)
    r.threats.append(Threat(threat_id, display(entry.name), "blocked", en))
    return r.block(ja, en)


def _refuse_rar() -> None:
    raise Unsupported("RAR archives cannot be rebuilt (no free RAR writer); ask the sender for a ZIP",
                      "RAR形式は再構築できないため受け付けていません。ZIP形式での再送を依頼してください",
                      threat_id="archive.unsupported")


@register
class ArchiveHandler(Handler):
    family = "archive"
    mime_types = (ZIP, "application/x-tar", "application/gzip", "application/x-bzip2", "application/x-xz",
                  SEVENZ, RAR)
    options = OPTIONS["archive"]

    # ------------------------------------------------------------ readers

    def _reader(self, ctx: Context, src: Path, mime: str, meter: Meter, budget: Budget):
        if mime == RAR:
            _refuse_rar()
        if mime == ZIP:
            try:  # counted from the central directory before zipfile allocates an object per entry
                return ZipReader(src, ctx.password, max_members=max(0, budget.members_limit - budget.members))
            except LimitExceeded as exc:
                raise budget.trip(exc) from None
        if mime == SEVENZ:
            r = SevenZipReader(src, ctx.password, ctx.workdir, budget)
            if budget.members + len(r.files) > budget.members_limit:
                r.close()
                raise budget.trip(LimitExceeded(
                    f"the archive has {len(r.files)} members, more than the limit of {budget.members_limit}",
                    f"アーカイブ内のファイル数（{len(r.files)}）が上限（{budget.members_limit}）を超えています",
                    threat_id="archive.too_many_members"))
            return r
        if mime in COMPRESSED and not is_tar_stream(src, mime):
            return SingleReader(src, mime, ctx.name)
        return TarReader(src, mime, meter)

    def _writer(self, ctx: Context, dst: Path, mime: str, reader):
        if mime == ZIP:
            return ZipWriter(dst)
        if mime == SEVENZ:
            return SevenZipWriter(dst, ctx.workdir)
        if isinstance(reader, SingleReader):
            return SingleWriter(dst, mime)
        return TarWriter(dst, mime)

    # ------------------------------------------------------------ rebuild

    def rebuild(self, ctx: Context, src: Path, dst: Path, detection: Detection) -> Rebuilt:
        if detection.mime == RAR:
            _refuse_rar()
        if ctx.depth >= ctx.limits.archive_depth:
            raise LimitExceeded(f"archives nested deeper than {ctx.limits.archive_depth} levels",
                                f"アーカイブの入れ子が上限（{ctx.limits.archive_depth} 階層）を超えています",
                                threat_id="archive.too_deep")
        if ctx.process_child is None:
            raise Blocked("archive members cannot be processed here", "アーカイブの中身を処理できません")
        size = src.stat().st_size
        floor = int(float(ctx.options.get("ratio_floor_mb", 1.0)) * MiB)
        with budget_for(ctx.limits, size, floor) as budget:
            meter = Meter(budget, size, ctx.name, ctx.check_time)
            reader = self._reader(ctx, src, detection.mime, meter, budget)
            try:
                return self._rebuild(ctx, reader, dst, detection.mime, meter, budget)
            finally:
                reader.close()

    def _rebuild(self, ctx: Context, reader, dst: Path, mime: str, meter: Meter, budget: Budget) -> Rebuilt:
        threats = reader.structure_threats("removed")
        for t in threats:
            t.location = t.location or ctx.name
        children: list[FileResult] = []
        plan: list[tuple] = []  # ("dir", name, mtime) | ("file", name, path, mtime), in archive order
        taken: set[str] = set()
        members = delivered = encrypted_blocked = 0
        assert ctx.process_child is not None
        for entry in reader.entries():
            ctx.check_time()
            budget.count_member(display(entry.name))
            loc = display(entry.name)
            chk = check_name(entry.name)
            if chk.name is None:
                tid, why = chk.refused or ("archive.bad_name", "bad name")
                if chk.is_dir or entry.kind == "dir":
                    if why != "empty name":  # "./" and the like are just noise
                        threats.append(Threat(tid, loc, "removed", f"folder entry: {why}"))
                    continue
                members += 1
                ja, _ = _REASONS.get(tid, _REASONS["archive.bad_name"])
                threats.append(Threat(tid, loc, "removed", why))
                children.append(_refused(entry, tid, why, ja))
                continue
            for tid, why in chk.renamed:
                threats.append(Threat(tid, loc, "renamed", f"{why}: delivered as {chk.name}"))
            if entry.kind == "dir" or chk.is_dir:
                plan.append(("dir", unique(chk.name, taken), entry.mtime))
                continue
            members += 1
            if entry.kind in ("symlink", "hardlink", "special"):
                tid = "archive.special_file" if entry.kind == "special" else "archive.symlink"
                ja, en = _REASONS[tid]
                threats.append(Threat(tid, loc, "removed", entry.detail or entry.kind))
                children.append(_refused(entry, tid, en, ja))
                continue
            if entry.encrypted and not ctx.password:
                encrypted_blocked += 1
                threats.append(Threat("archive.encrypted", loc, "removed", "encrypted member, no password"))
                children.append(_refused(entry, "archive.encrypted", _PPAP_EN, _PPAP_JA))
                continue
            tmp = ctx.workdir / f"m{entry.index:06d}"
            try:
                reader.extract(entry, tmp, meter)
            except WrongPassword:
                encrypted_blocked += 1
                threats.append(Threat("archive.encrypted", loc, "removed", "the supplied password does not open it"))
                children.append(_refused(entry, "archive.encrypted", _WRONG_EN, _WRONG_JA))
                tmp.unlink(missing_ok=True)
                continue
            except MemberError as exc:
                threats.append(Threat("archive.member_blocked", loc, "removed", exc.en))
                children.append(_refused(entry, exc.threat_id, exc.en, exc.ja))
                tmp.unlink(missing_ok=True)
                continue
            if entry.encrypted:
                threats.append(Threat("archive.encrypted", loc, "converted",
                                      "decrypted with the supplied password; delivered without encryption"))
            # One output folder for every member (a folder made and removed per member costs 2.5 ms on
            # ext4 with discard); each delivered output is moved out of it under its index at once.
            out_dir = ctx.workdir / "members-out"
            child = ctx.process_child(chk.name, tmp, out_dir)
            tmp.unlink(missing_ok=True)
            budget.reraise()  # a bomb found in a nested archive blocks this one too
            children.append(child)
            if child.verdict == BLOCKED or not child.output:
                threats.append(Threat("archive.member_blocked", chk.name, "removed",
                                      child.reason_en or "blocked"))
                continue
            if child.verdict == SANITIZED:
                ids = sorted({t.id for t in child.threats})
                threats.append(Threat("archive.member_sanitized", chk.name, "neutralized", ", ".join(ids)))
            folder = chk.name.rpartition("/")[0]
            out_name = Path(child.output).name
            kept = ctx.workdir / f"member-{entry.index:06d}"
            os.replace(child.output, kept)
            arc = f"{folder}/{out_name}" if folder else out_name
            final = unique(arc, taken)
            if final != arc:
                threats.append(Threat("archive.duplicate_name", arc, "renamed", f"delivered as {final}"))
            plan.append(("file", final, kept, entry.mtime, child))
            # The scratch path dies with the job: report where the member lives in the delivered archive.
            child.output = final
            child.text_output = None
            delivered += 1
        if members and not delivered:
            if encrypted_blocked == members:
                if ctx.password:
                    err = Encrypted(_WRONG_EN, _WRONG_JA, threat_id="archive.encrypted")
                else:
                    err = Encrypted(_PPAP_EN, _PPAP_JA, threat_id="archive.encrypted")
                err.children = children
                raise err
            names = ", ".join(c.source for c in children[:3]) + (" ..." if len(children) > 3 else "")
            first = next((c.reason_en for c in children if c.reason_en), "")
            first_ja = next((c.reason_ja for c in children if c.reason_ja), "")
            err = Blocked(f"every member of the archive was blocked ({members}: {names}); first reason: {first}",
                          f"アーカイブ内のすべてのファイル（{members} 件）が遮断されました。理由の例: {first_ja}",
                          threat_id="archive.all_members_blocked")
            err.children = children  # the report still lists each member's own verdict
            raise err
        _file_folder_clashes(plan, taken, threats)
        writer = self._writer(ctx, dst, mime, reader)
        for item in plan:
            ctx.check_time()
            if item[0] == "dir":
                writer.add_dir(item[1], item[2])
            else:
                writer.add_file(item[1], item[2], item[3])
        writer.close()
        extension = None
        if isinstance(reader, SingleReader):
            # A single compressed file has no member names: unpackers name it after the archive, so the
            # member's true extension must show there ("report.html.gz" holding text -> "report.html.txt.gz").
            inner = next(item[1] for item in plan if item[0] == "file")
            if inner != reader.member:
                extension = PurePosixPath(inner).suffix + _SINGLE_EXT.get(mime, ".gz")
        return Rebuilt(threats=threats, children=children, extension=extension)

    # ------------------------------------------------------------ inspect (used by verify)

    def inspect(self, ctx: Context, path: Path, detection: Detection) -> list[Threat]:
        if detection.mime == RAR:
            return [Threat("archive.unsupported", ctx.name, "found", "RAR archive")]
        found: list[Threat] = []
        size = path.stat().st_size
        budget = Budget(ctx.limits, size, int(float(ctx.options.get("ratio_floor_mb", 1.0)) * MiB))
        meter = Meter(budget, size, ctx.name, ctx.check_time)
        if detection.mime == ZIP:
            try:
                reader = ZipReader(path, max_members=ctx.limits.archive_members)
            except LimitExceeded as exc:
                return [Threat(exc.threat_id, ctx.name, "found", exc.en)]
        elif detection.mime == SEVENZ:
            reader = SevenZipReader(path, None, ctx.workdir, budget)  # type: ignore[assignment]
        elif detection.mime in COMPRESSED and not is_tar_stream(path, detection.mime):
            return []
        else:
            reader = TarReader(path, detection.mime, meter)  # type: ignore[assignment]
        try:
            found.extend(replace(t, location=t.location or ctx.name) for t in reader.structure_threats("found"))
            taken: set[str] = set()
            count = 0
            for entry in reader.entries():
                count += 1
                loc = display(entry.name)
                chk = check_name(entry.name)
                if chk.name is None:
                    if not (chk.is_dir or entry.kind == "dir"):
                        found.append(Threat(chk.refused[0] if chk.refused else "archive.bad_name", loc, "found",
                                            chk.refused[1] if chk.refused else ""))
                    continue
                found.extend(Threat(tid, loc, "found", why) for tid, why in chk.renamed)
                if chk.name.casefold() in taken:
                    found.append(Threat("archive.duplicate_name", loc, "found", "name used twice"))
                taken.add(chk.name.casefold())
                if entry.kind in ("symlink", "hardlink"):
                    found.append(Threat("archive.symlink", loc, "found", entry.kind))
                elif entry.kind == "special":
                    found.append(Threat("archive.special_file", loc, "found", entry.detail or entry.kind))
                if entry.encrypted:
                    found.append(Threat("archive.encrypted", loc, "found", "encrypted member"))
            if count > ctx.limits.archive_members:
                found.append(Threat("archive.too_many_members", ctx.name, "found", f"{count} members"))
        finally:
            reader.close()
        return found

    # ------------------------------------------------------------ text

    def extract_text(self, ctx: Context, path: Path, detection: Detection) -> str:
        """Member list, then each member's text where its handler gives one (nested archives recurse)."""
        if detection.mime == RAR:
            return ""
        size = path.stat().st_size
        budget = Budget(ctx.limits, size, int(float(ctx.options.get("ratio_floor_mb", 1.0)) * MiB))
        meter = Meter(budget, size, ctx.name, ctx.check_time)
        reader = self._reader(ctx, path, detection.mime, meter, budget)
        want_text = bool(ctx.options.get("member_text", True))
        listing: list[str] = []
        bodies: list[str] = []
        try:
            for entry in reader.entries():
                ctx.check_time()
                if entry.kind == "dir":
                    continue
                listing.append(f"- {display(entry.name)}")
                if not want_text or entry.kind != "file" or entry.encrypted:
                    continue
                tmp = ctx.workdir / f"text-{ctx.depth}-{entry.index:06d}"
                try:
                    reader.extract(entry, tmp, meter)
                    text = self._member_text(ctx, entry.name, tmp)
                except (MemberError, WrongPassword):
                    text = None
                finally:
                    tmp.unlink(missing_ok=True)
                if text and text.strip():
                    bodies.append(f"===== {display(entry.name)} =====\n{text.rstrip()}\n")
        finally:
            reader.close()
        head = f"{ctx.name}: {len(listing)} files\n" + "\n".join(listing) + "\n"
        return head + ("\n" + "\n".join(bodies) if bodies else "")

    def _member_text(self, ctx: Context, name: str, path: Path) -> str | None:
        det = detect(path, name)
        h = handler_for(det.mime)
        if h is None or not h.has_text or det.family in ("executable", "unknown"):
            return None
        if isinstance(h, ArchiveHandler) and ctx.depth + 1 >= ctx.limits.archive_depth:
            return None
        opts = ctx.policy.family(det.family).options if ctx.policy is not None else {}
        sub = ctx.workdir / f"text-ctx-{ctx.depth + 1}"
        sub.mkdir(exist_ok=True)
        cctx = Context(name=f"{ctx.name}/{name}", options=dict(opts), limits=ctx.limits, workdir=sub,
                       deadline=ctx.deadline, depth=ctx.depth + 1, policy=ctx.policy)
        try:
            return h.extract_text(cctx, path, det)
        except LimitExceeded:
            raise
        except Exception as exc:  # one member's text failing must not cost the others
            ctx.warn(f"no text for {display(name)}: {type(exc).__name__}")
            return None
