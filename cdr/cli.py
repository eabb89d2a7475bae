"""`cdr`: the batch command line.

  cdr sanitize PATH... -o OUTDIR [--policy FILE] [--report FILE.json] [--text DIR] [--jobs N]
  cdr detect PATH...        true type, the extension's claim, and why
  cdr inspect PATH...       findings, nothing written
  cdr extract PATH          text rendition on stdout
  cdr policy check FILE...  validate policy files

Exit codes: 0 every input got a verdict (blocked included, `extract` too); 2 usage error; 1 the tool
itself failed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from pathlib import Path

from . import __version__
from .errors import SandboxUnavailable
from .names import text_name, text_rendition_name


class UsageError(Exception):
    pass


def _collect(paths: list[str]) -> list[tuple[Path, str, bool]]:
    """(file, relative name, regular) for every entry under the given paths, in a stable order.

    Symbolic links and special files are listed with regular=False: they are reported as
    blocked, never followed or read."""
    items: list[tuple[Path, str, bool]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames.sort()
                for fn in sorted(filenames):
                    f = Path(dirpath) / fn
                    items.append((f, text_name(f.relative_to(p).as_posix()), f.is_file() and not f.is_symlink()))
        elif p.is_file():
            items.append((p, text_name(p.name), True))
        else:
            raise UsageError(f"no such file or directory: {raw}")
    return items


def _unique(dest: Path, taken: set[Path]) -> Path:
    """Never let two inputs of one run land on the same output name."""
    if dest not in taken:
        taken.add(dest)
        return dest
    stem, suffix = dest.stem, dest.suffix
    n = 2
    while True:
        cand = dest.with_name(f"{stem} ({n}){suffix}")
        if cand not in taken:
            taken.add(cand)
            return cand
        n += 1


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _load_policy(arg: str | None):
    from .policy import PolicyError, load_policy

    try:
        return load_policy(arg)
    except PolicyError as exc:
        raise UsageError(str(exc)) from None


def _progress(total: int):
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="file", file=sys.stderr, dynamic_ncols=True)


def cmd_sanitize(args: argparse.Namespace) -> int:
    from .model import BLOCKED, FileResult, Threat
    from .worker import Job, WorkerPool

    inputs = _collect(args.paths)
    # Start the workers first: they import the format handlers while we load the policy.
    regular = sum(1 for item in inputs if item[2])
    pool = WorkerPool(max(1, min(args.jobs or os.cpu_count() or 1, regular)))
    try:
        policy = _load_policy(args.policy)
        pool.check()  # a worker that cannot be sandboxed stops the run here, before any output
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".cdr-staging-", dir=out))
    except BaseException:
        pool.close()
        raise
    text_dir = Path(args.text) if args.text else None
    pdict = policy.to_dict()
    started = time.time()
    t0 = time.monotonic()
    bar = _progress(regular)
    results = [None] * len(inputs)
    taken: set[Path] = set()
    # Largest first, so that one big file does not start last and leave the other workers idle.
    order = sorted((i for i, item in enumerate(inputs) if item[2]), key=lambda i: -_size(inputs[i][0]))
    for i, (_src, rel, is_regular) in enumerate(inputs):
        if not is_regular:
            results[i] = FileResult(source=rel)
            results[i].threats.append(Threat("file.not_regular", rel, "blocked", "symbolic link or special file"))
            results[i].block("シンボリックリンクや特殊ファイルは処理しません",
                             "symbolic links and special files are not followed")
    try:
        with pool:
            futures = {}
            for i in order:
                src, rel, _regular = inputs[i]
                jd = staging / str(i)
                jd.mkdir()
                job = Job(str(src.resolve()), unicodedata.normalize("NFC", rel), str(jd), pdict,
                          password=args.password, want_text=text_dir is not None)
                futures[pool.submit(job)] = i
            from concurrent.futures import as_completed

            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                if bar:
                    bar.update(1)
                    bar.set_postfix_str(results[i].verdict)
            # Final names in input order, whatever order the workers finished in: stable "(2)" suffixes.
            for i, res in enumerate(results):
                rel = inputs[i][1]
                res.source = text_name(str(inputs[i][0]))
                parent = Path(rel).parent
                if res.verdict != BLOCKED and res.output:
                    produced = Path(res.output)
                    shown = produced.name
                    if res.text_output == res.output and shown.endswith(".txt") and any(
                            t.id == "policy.text_only" for t in res.threats):
                        shown = text_rendition_name(shown[:-4])  # 申請書.docx.txt would look like 申請書.docx
                    dest = _unique(out / parent / shown, taken)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(produced, dest)
                    res.output = str(dest)
                    if res.text_output and Path(res.text_output) != produced:
                        if text_dir is not None:
                            tdest = _unique(text_dir / parent / text_rendition_name(dest.name), taken)
                            tdest.parent.mkdir(parents=True, exist_ok=True)
                            shutil.move(res.text_output, tdest)
                            res.text_output = str(tdest)
                        else:
                            res.text_output = None
                    elif res.text_output:
                        res.text_output = str(dest)
    finally:
        if bar:
            bar.close()
        shutil.rmtree(staging, ignore_errors=True)
    counts = Counter(r.verdict for r in results)
    summary = {
        "total": len(results),
        "clean": counts.get("clean", 0),
        "sanitized": counts.get("sanitized", 0),
        "blocked": counts.get("blocked", 0),
        "policy": policy.name,
        "policy_version": policy.version,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "elapsed_ms": round((time.monotonic() - t0) * 1000, 1),
        "tool_version": __version__,
    }
    if args.report:
        report = {"files": [r.to_dict() for r in results], "summary": summary}
        rp = Path(args.report)
        rp.parent.mkdir(parents=True, exist_ok=True)
        tmp = rp.with_name(rp.name + ".part")
        tmp.write_text(json.dumps(report, ensure_ascii=False, indent=2), "utf-8")
        os.replace(tmp, rp)
    for verdict in ("clean", "sanitized", "blocked"):
        print(f"{verdict}: {counts.get(verdict, 0)}")
    return 0


def _one_off(op: str, paths: list[str], policy_arg: str | None, password: str | None) -> list[tuple[str, dict]]:
    from .worker import Job, WorkerPool

    policy = _load_policy(policy_arg)
    inputs = [(src, rel) for src, rel, regular in _collect(paths) if regular]
    replies = []
    with tempfile.TemporaryDirectory(prefix="cdr-") as tmp, WorkerPool(1) as pool:
        pool.check()
        for src, rel in inputs:
            job = Job(str(src.resolve()), rel, tmp, policy.to_dict(), password=password, op=op)
            replies.append((text_name(str(src)), pool.call(job)))
    return replies


def cmd_detect(args: argparse.Namespace) -> int:
    for src, reply in _one_off("detect", args.paths, None, None):
        det = (reply.get("detect") or {}).get("detection")
        if args.json:
            print(json.dumps({"source": src, **(reply.get("detect") or reply)}, ensure_ascii=False))
            continue
        if not det:
            print(f"{src}: error: {reply.get('error') or (reply.get('detect') or {}).get('error')}")
            continue
        claim = det["claimed"] or "(none)"
        mismatch = any(t["id"] == "file.type_mismatch" for t in det["threats"])
        print(f"{src}: {det['mime']} ({det['label']}), family {det['family']}")
        print(f"  name claims: {claim}{'  <- MISMATCH' if mismatch else ''}")
        for why in det["reasons"]:
            print(f"  why: {why}")
        for t in det["threats"]:
            print(f"  finding: {t['id']} {t['detail']}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    for src, reply in _one_off("inspect", args.paths, args.policy, args.password):
        info = reply.get("inspect") or {"error": reply.get("error"), "threats": [], "detection": None}
        if args.json:
            print(json.dumps({"source": src, **info}, ensure_ascii=False))
            continue
        det = info.get("detection") or {}
        print(f"{src}: {det.get('mime', '?')} ({det.get('label', '?')})")
        for t in info.get("threats", []):
            print(f"  {t['id']:32} {t['location']}  {t.get('detail', '')}".rstrip())
        if not info.get("threats"):
            print("  no findings")
        if info.get("error"):
            print(f"  error: {info['error']}")
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from .policy import FamilyPolicy
    from .worker import Job, WorkerPool

    policy = _load_policy(args.policy)
    # Text comes from the rebuilt file: same path as the text-only policy.
    policy.families = {k: FamilyPolicy("text" if v.action != "block" else "block", v.options)
                       for k, v in policy.families.items()}
    src = Path(args.path)
    if not src.is_file():
        raise UsageError(f"no such file: {args.path}")
    with tempfile.TemporaryDirectory(prefix="cdr-") as tmp, WorkerPool(1) as pool:
        pool.check()
        res = pool.run(Job(str(src.resolve()), text_name(src.name), tmp, policy.to_dict(), password=args.password))
        if res.verdict == "blocked" or not res.output:
            # A verdict, not a failure of the tool: exit 0 as for `sanitize` (nothing on stdout).
            print(f"blocked: {res.reason}", file=sys.stderr)
            return 0
        data = Path(res.output).read_bytes()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    from .policy import PolicyError, load_policy

    bad = 0
    for f in args.files:
        try:
            p = load_policy(f)
            print(f"{f}: ok ({p.label}, {len(p.families)} families)")
        except PolicyError as exc:
            print(str(exc), file=sys.stderr)
            bad += 1
    return 2 if bad else 0


_EXIT = "exit codes: 0 every input got a verdict (blocked included), 2 usage error, 1 the tool itself failed"


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    ap = argparse.ArgumentParser(prog="cdr", description="Content disarm and reconstruction (無害化) engine",
                                 epilog=_EXIT)
    ap.add_argument("--version", action="version", version=f"cdr {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser(
        "sanitize", help="rebuild files without active content", formatter_class=raw,
        description="Rebuild each file (folders are recursed) without macros, scripts, embedded objects, external"
                    " links and metadata, check the result again, and write it under OUTDIR with the same relative"
                    " path. Blocked files are not written; --report says why (Japanese and English).",
        epilog="examples:\n  .venv/bin/cdr sanitize 受信/ -o 無害化済み/ --report report.json\n"
               "  .venv/bin/cdr sanitize 申請書.docx -o out/ --text text/   # also text/申請書_テキスト.txt\n"
               "  .venv/bin/cdr sanitize 資料.zip -o out/ --password 'pass'   # PPAP\n" + _EXIT)
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    s.add_argument("--policy", metavar="FILE", help="policy TOML file or name in rules/ (default: default)")
    s.add_argument("--report", metavar="FILE.json")
    s.add_argument("--text", metavar="DIR", help="also write text renditions: DIR/<folder>/<output stem>_テキスト.txt"
                   " (申請書.docx -> 申請書_テキスト.txt)")
    s.add_argument("--jobs", type=int, default=None, metavar="N", help="worker processes (default: cores)")
    s.add_argument("--password", help="password for encrypted inputs (PPAP), supplied out of band")
    s.set_defaults(fn=cmd_sanitize)

    d = sub.add_parser("detect", help="show the true type of files",
                       description="Print each file's true type (by content), what its name claims and why.")
    d.add_argument("paths", nargs="+", metavar="PATH")
    d.add_argument("--json", action="store_true")
    d.set_defaults(fn=cmd_detect)

    i = sub.add_parser("inspect", help="list findings without writing anything",
                       description="List what would be removed or blocked (the same threat ids as the report);"
                                   " nothing is written.")
    i.add_argument("paths", nargs="+", metavar="PATH")
    i.add_argument("--policy", metavar="FILE")
    i.add_argument("--password")
    i.add_argument("--json", action="store_true")
    i.set_defaults(fn=cmd_inspect)

    e = sub.add_parser("extract", help="print the text rendition (UTF-8)",
                       description="Print the text of one file (read from its rebuilt form) on stdout, in UTF-8;"
                                   " spreadsheet cells as Excel shows them. A blocked file prints nothing and its"
                                   " reason on stderr.", epilog=_EXIT)
    e.add_argument("path", metavar="PATH")
    e.add_argument("--policy", metavar="FILE")
    e.add_argument("--password")
    e.set_defaults(fn=cmd_extract)

    p = sub.add_parser("policy", help="policy tools", description="Policy files (rules/*.toml).")
    psub = p.add_subparsers(dest="pcmd", required=True)
    pc = psub.add_parser("check", help="validate policy files",
                         description="Load each policy file and report errors by file, key and value; exit 2 on"
                                     " any error.")
    pc.add_argument("files", nargs="+")
    pc.set_defaults(fn=cmd_policy)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        ap.error("--jobs must be at least 1")
    try:
        return args.fn(args)
    except UsageError as exc:
        print(f"cdr: error: {exc}", file=sys.stderr)
        return 2
    except SandboxUnavailable as exc:
        print(f"cdr: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        print(f"cdr: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
