"""`python -m cdr.fuzz [--hours H | --seconds S] [--seed N] [--workers N] [--family F ...] [--save DIR]`.

Prints inputs per family, verdicts, timeouts, handler exceptions, crashes and residuals; with `--save`,
every finding is written as a regression case (input, seed, mutations) for tests/test_fuzz_regressions.py.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from .runner import load_seeds, run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cdr.fuzz", description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=None)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--family", action="append", help="sample families to seed from (default: all)")
    ap.add_argument("--max-inputs", type=int, default=None)
    ap.add_argument("--file-seconds", type=float, default=20.0, help="time limit per input")
    ap.add_argument("--save", type=Path, default=None, help="write findings as regression cases here")
    ap.add_argument("--json", type=Path, default=None, help="write the counts and findings as JSON")
    args = ap.parse_args(argv)
    seconds = args.hours * 3600 if args.hours is not None else args.seconds
    with tempfile.TemporaryDirectory(prefix="cdr-fuzz-seeds-") as tmp:
        seeds = load_seeds(Path(tmp), args.family)
        print(f"{len(seeds)} seeds; fuzzing for {seconds:.0f} s with {args.workers} workers, seed {args.seed}",
              flush=True)
        stats = run(seeds, seconds=seconds, seed=args.seed, workers=args.workers, max_inputs=args.max_inputs,
                    file_seconds=args.file_seconds, save_dir=args.save,
                    progress=lambda m: print(m, flush=True), progress_every=300 if seconds > 600 else 30)
    print(stats.table())
    if stats.exception_kinds:
        print("handler exceptions (blocked, fail closed):", dict(stats.exception_kinds.most_common(12)))
    for f in stats.findings:
        print(f"{f.kind:9} {f.family:8} {f.seed} case {f.case_seed}: {f.detail[:160]}")
        print(f"          mutations: {' | '.join(f.steps)[:300]}")
    if args.json:
        args.json.write_text(json.dumps(stats.to_dict(), ensure_ascii=False, indent=1), "utf-8")
    return 1 if any(f.kind in ("crash", "residual", "leftover") for f in stats.findings) else 0


if __name__ == "__main__":
    sys.exit(main())
