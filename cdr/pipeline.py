"""detect -> policy -> rebuild -> verify -> text, for one file, in the current process.

Runs inside a worker process (cdr.worker); call it directly only in tests or
when you already are in a sandbox. Never raises: every failure is a `blocked`
result with a reason.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
import time
from dataclasses import replace
from pathlib import Path, PurePosixPath

from .detect import KINDS, detect, label_ja
from .errors import CdrError
from .formats._memo import forget_all
from .handler import Context, handler_for
from .model import BLOCKED, CLEAN, SANITIZED, Detection, FileResult, Threat, sha256_file
from .names import safe_basename
from .policy import Policy

# The scratch folder of a file's members, inside the file's own (a name no handler uses).
_CHILD_SCRATCH = ".cdr-child"
# What a clerk reads when a whole family is refused by policy.
_POLICY_BLOCK = ("ポリシーにより「{label}」は受け付けていません", "the policy does not accept {label}")


def output_name(name: str, detection: Detection, extension: str | None) -> str:
    """The delivered file's base name: the sender's stem with a truthful extension."""
    base = safe_basename(PurePosixPath(name.replace("\\", "/")).name or "file")
    kind = KINDS.get(detection.mime)
    claimed = detection.claimed
    stem = base[: len(base) - len(claimed)] if claimed and base.lower().endswith(claimed) else base
    if extension is None:
        if claimed and kind and claimed in kind.extensions:
            return base
        extension = detection.extension
    return stem + (extension or "")


def _is_empty_dir(path: Path) -> bool:
    """A real directory (not a link to one) with nothing in it."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return False
        with os.scandir(path) as it:
            return next(it, None) is None
    except OSError:
        return False


def _empty_dir(path: Path) -> None:
    """Remove what is inside `path`, not `path` itself."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(e.path, ignore_errors=True)
            else:
                os.unlink(e.path)
        except OSError:
            pass


def process(src: str | Path, name: str, out_dir: str | Path, policy: Policy, *,
            password: str | None = None, want_text: bool = False, depth: int = 0,
            deadline: float | None = None, sha256: str | None = None, hash_output: bool = True,
            scratch: str | Path | None = None) -> FileResult:
    """Sanitize one file. Outputs (file and text rendition) are written into `out_dir`.

    `sha256`: the source's hash when the caller already has it. `hash_output=False` leaves
    `output_sha256` to a caller that recomputes it anyway (the worker pool's parent).
    `scratch`: an empty directory of the caller's to work in (a worker's stage work/), emptied but
    kept at the end, instead of a new temporary directory: on ext4 mounted with `discard` creating
    and removing a directory costs 2.5 ms, half the time of a small CSV. One that is not empty is
    not used (a fresh directory instead), so that nothing of an earlier job can be read."""
    src, out_dir = Path(src), Path(out_dir)
    start = time.monotonic()
    if deadline is None:
        deadline = start + policy.limits.seconds_per_file
    result = FileResult(source=name)
    if depth == 0:
        forget_all()
    reuse = scratch is not None and _is_empty_dir(Path(scratch))
    work = Path(scratch) if reuse else Path(tempfile.mkdtemp(prefix="cdr-job-"))
    written: list[Path] = []  # outputs placed in out_dir so far, removed if the file ends up blocked
    try:
        _run(src, name, out_dir, policy, password, want_text, depth, deadline, result, work, sha256, hash_output,
             written)
    except CdrError as exc:
        _block_with(result, exc)
    except MemoryError:
        result.threats.append(Threat("file.limit", name, "blocked", "memory limit"))
        result.block("メモリ使用量の上限を超えたため処理を中止しました", "memory limit exceeded while processing")
    except RecursionError:
        result.threats.append(Threat("file.malformed", name, "blocked", "nesting too deep"))
        result.block("構造の入れ子が深すぎるため処理できません", "structure nested too deeply to process")
    except Exception as exc:  # fail closed on anything a parser throws
        result.threats.append(Threat("file.malformed", name, "blocked", f"{type(exc).__name__}: {exc}"[:300]))
        result.block("ファイルの解析中にエラーが発生したため配送を停止しました",
                     f"the file could not be parsed ({type(exc).__name__})")
    finally:
        if depth == 0:
            forget_all()
        if reuse:
            _empty_dir(work)
        else:
            shutil.rmtree(work, ignore_errors=True)
        result.elapsed_ms = (time.monotonic() - start) * 1000
    if result.verdict == BLOCKED:
        for produced in written:
            produced.unlink(missing_ok=True)
        result.output = result.output_sha256 = result.text_output = None
    return result


def _block_with(result: FileResult, exc: CdrError) -> None:
    if not any(t.id == exc.threat_id and t.action == "blocked" for t in result.threats):
        result.threats.append(Threat(exc.threat_id, exc.location or result.source, "blocked", exc.en))
    if exc.children:
        result.children = exc.children
    if exc.mail is not None:
        result.mail = exc.mail
    result.block(exc.ja, exc.en)


def _run(src: Path, name: str, out_dir: Path, policy: Policy, password: str | None, want_text: bool,
         depth: int, deadline: float, result: FileResult, work: Path, sha256: str | None = None,
         hash_output: bool = True, written: list[Path] | None = None) -> None:
    written = [] if written is None else written
    result.size = src.stat().st_size
    result.sha256 = sha256 or sha256_file(src)
    if result.size > policy.limits.max_file_bytes:
        raise CdrError(f"file is larger than the policy limit of {policy.limits.max_file_mb:g} MB",
                       f"ファイルサイズが上限 ({policy.limits.max_file_mb:g} MB) を超えています", "file.limit")
    det = detect(src, name)
    result.detected_type = det.mime
    result.family = det.family
    result.threats.extend(det.threats)
    if det.family == "executable":
        raise CdrError(f"executable content is never delivered ({det.label})",
                       f"実行可能なファイルは受け付けません（{label_ja(det.mime, det.label)}）", "file.executable")
    if det.family == "unknown":
        raise CdrError(f"unknown or unsupported file type ({det.label})",
                       f"判別できない、または未対応のファイル形式です（{label_ja(det.mime, det.label)}）", "file.unsupported")
    rule = policy.family(det.family)
    handler = handler_for(det.mime)
    if rule.action == "block":
        ja, en = _POLICY_BLOCK[0].format(label=label_ja(det.mime, det.label)), _POLICY_BLOCK[1].format(label=det.label)
        if handler is not None and handler.block_hint:
            ja, en = f"{ja}。{handler.block_hint[0]}", f"{en}; {handler.block_hint[1]}"
        raise CdrError(en, ja, "policy.blocked")
    if handler is None:
        raise CdrError(f"no sanitizer for {det.label}", f"この形式（{label_ja(det.mime, det.label)}）を無害化する処理がありません",
                       "file.unsupported")

    def child(child_name: str, child_src: Path, child_out: Path) -> FileResult:
        # Members are processed one after another: each gets the same scratch folder, emptied by the
        # member before it (not a directory made and removed per member).
        child_scratch: Path | None = work / _CHILD_SCRATCH
        try:
            os.mkdir(child_scratch)
        except FileExistsError:
            pass  # the last member's, emptied (process() checks that it is an empty folder)
        except OSError:
            child_scratch = None
        return process(child_src, child_name, child_out, policy, password=password, want_text=False,
                       depth=depth + 1, deadline=deadline, scratch=child_scratch)

    ctx = Context(name=name, options=dict(rule.options), limits=policy.limits, workdir=work,
                  deadline=deadline, password=password, depth=depth, process_child=child, policy=policy)
    if rule.action == "text" and not handler.rebuildable:
        # No rebuild exists for this type (e.g. 一太郎): the text rendition is read from the source.
        text = handler.extract_text(ctx, src, det)
        ctx.check_time()
        out_dir.mkdir(parents=True, exist_ok=True)
        dest = out_dir / (output_name(name, det, None) + ".txt")
        written.append(dest)
        _write(dest, text.encode("utf-8", "replace"))
        result.warnings.extend(ctx.warnings)
        result.output = result.text_output = str(dest)
        result.output_sha256 = sha256_file(dest) if hash_output else None
        result.threats.append(Threat("policy.text_only", name, "converted", "delivered as text only"))
        result.verdict = SANITIZED
        return
    built = work / "rebuilt.bin"
    rebuilt = handler.rebuild(ctx, src, built, det)
    ctx.check_time()
    result.threats.extend(rebuilt.threats)
    result.children = rebuilt.children
    result.mail = rebuilt.mail
    final = output_name(name, det, rebuilt.extension)

    # Verify: the rebuilt file is detected and inspected afresh; any residual finding blocks it.
    det2 = detect(built, final)
    h2 = handler_for(det2.mime)
    # The output must be what the handler said it wrote, so that the right handler re-inspects it.
    want = KINDS[rebuilt.mime].family if rebuilt.mime in KINDS else det.family
    if det2.family != want or h2 is None:
        raise CdrError(f"the rebuilt file is not a valid {det.label} (detected {det2.label})",
                       "再構築したファイルの検証に失敗しました", "verify.failed")
    # Inspect the output with its own family's options (SVG rasterised to PNG is judged as an image).
    vctx = ctx if det2.family == det.family else replace(ctx, options=dict(policy.family(det2.family).options))
    residual = [t for t in h2.inspect(vctx, built, det2) if t.id != "file.type_mismatch"]
    if residual:
        ids = ", ".join(sorted({t.id for t in residual}))
        for t in residual:
            result.threats.append(Threat(t.id, t.location, "blocked", "residual after rebuild"))
        raise CdrError(f"active content remained after rebuilding ({ids})",
                       f"無害化後も危険な要素が残っていたため配送を停止しました（{ids}）", "verify.residual")
    result.warnings.extend(ctx.warnings)
    out_dir.mkdir(parents=True, exist_ok=True)
    if rule.action == "text":
        text = h2.extract_text(vctx, built, det2)
        dest = out_dir / (final + ".txt")
        written.append(dest)
        _write(dest, text.encode("utf-8", "replace"))
        result.output = str(dest)
        result.output_sha256 = sha256_file(dest) if hash_output else None
        result.text_output = str(dest)
        result.threats.append(Threat("policy.text_only", name, "converted", "delivered as text only"))
    else:
        dest = out_dir / final
        written.append(dest)
        _place(built, dest)
        result.output = str(dest)
        result.output_sha256 = sha256_file(dest) if hash_output else None
        if want_text:
            tdest = out_dir / (final + ".txt")
            try:
                text = h2.extract_text(vctx, dest, det2)
                written.append(tdest)
                _write(tdest, text.encode("utf-8", "replace"))
            except Exception as exc:  # a missing rendition must not stop a clean delivery
                result.warnings.append(f"text rendition failed: {type(exc).__name__}: {exc}"[:300])
            else:
                result.text_output = str(tdest)
    result.verdict = SANITIZED if any(t.action != "reported" for t in result.threats) else CLEAN


def _place(built: Path, dest: Path) -> None:
    """Move the rebuilt file to its final name; across file systems via a temporary name, so that a
    failed copy never leaves a partial file under the final name."""
    try:
        os.replace(built, dest)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    tmp = dest.with_name(dest.name + ".part")
    try:
        shutil.copyfile(built, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def inspect(src: str | Path, name: str, policy: Policy, *, password: str | None = None) -> dict:
    """Findings for one file without writing anything: {"detection", "threats", "error"}."""
    src = Path(src)
    out: dict = {"source": name, "detection": None, "threats": [], "error": None}
    work = Path(tempfile.mkdtemp(prefix="cdr-inspect-"))
    forget_all()  # as process(): nothing of this file may stay in the worker for the next job
    try:
        det = detect(src, name)
        out["detection"] = det.to_dict()
        threats = list(det.threats)
        handler = handler_for(det.mime)
        if handler is not None and det.family not in ("executable", "unknown"):
            rule = policy.family(det.family)
            ctx = Context(name=name, options=dict(rule.options), limits=policy.limits, workdir=work,
                          deadline=time.monotonic() + policy.limits.seconds_per_file, password=password,
                          policy=policy)
            threats.extend(handler.inspect(ctx, src, det))
            threats.extend(handler.inspect_rebuild(ctx, src, det))
        out["threats"] = [t.to_dict() for t in threats]
    except CdrError as exc:
        out["error"] = f"{exc.ja} / {exc.en}"
        out["threats"].append(Threat(exc.threat_id, name, "found", exc.en).to_dict())
    except Exception as exc:  # inspection of hostile bytes must not crash the caller
        out["error"] = f"ファイルの解析中にエラーが発生しました / could not parse ({type(exc).__name__}: {exc})"[:400]
        out["threats"].append(Threat("file.malformed", name, "found", type(exc).__name__).to_dict())
    finally:
        forget_all()
        shutil.rmtree(work, ignore_errors=True)
    return out


def detect_only(src: str | Path, name: str) -> dict:
    try:
        return {"detection": detect(Path(src), name).to_dict(), "error": None}
    except Exception as exc:
        return {"detection": None, "error": f"{type(exc).__name__}: {exc}"[:300]}
