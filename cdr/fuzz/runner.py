"""The fuzz loop: mutate samples, run them through the real worker pool, judge every result.

Oracle per input: no exception escapes (the pool answers, the worker did not die or fail), a verdict
arrives within the policy's time limit, a blocked file leaves nothing behind, and a delivered file passes
the independent scan (oracle.py). Anything else is a finding, saved with its seed and mutations as a
regression case when a folder is given.
"""
from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path

from . import mutators, oracle

# Threats that say the engine itself failed rather than judged the file.
_CRASH_IDS = {"worker.crashed", "worker.error", "worker.protocol"}


@dataclass
class Seed:
    path: Path
    name: str  # relative sample path, e.g. "pdf/hostile/launch.pdf"
    family: str


@dataclass
class Finding:
    kind: str  # crash | residual | slow | leftover
    family: str
    seed: str
    case_seed: int
    steps: list[str]
    detail: str
    data: bytes = b""


@dataclass
class Stats:
    inputs: Counter = field(default_factory=Counter)
    verdicts: dict = field(default_factory=lambda: defaultdict(Counter))
    crashes: Counter = field(default_factory=Counter)
    residuals: Counter = field(default_factory=Counter)
    timeouts: Counter = field(default_factory=Counter)
    exceptions: Counter = field(default_factory=Counter)  # handler exceptions the pipeline turned into "blocked"
    exception_kinds: Counter = field(default_factory=Counter)  # "family: ExceptionType"
    # The first case of each kind, to replay it: {"family: Type": {detail, seed, case_seed, steps}}
    exception_examples: dict = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    def table(self) -> str:
        fams = sorted(self.inputs)
        rows = ["family      inputs   clean  sanit.  blocked  timeouts  exceptions  crashes  residuals"]
        for f in fams + ["total"]:
            pick = (lambda c: sum(c.values())) if f == "total" else (lambda c, f=f: c[f])
            v = Counter()
            for fam in (fams if f == "total" else [f]):
                v.update(self.verdicts[fam])
            rows.append(f"{f:<10} {pick(self.inputs):>7} {v['clean']:>7} {v['sanitized']:>7} {v['blocked']:>8} "
                        f"{pick(self.timeouts):>9} {pick(self.exceptions):>11} {pick(self.crashes):>8} "
                        f"{pick(self.residuals):>10}")
        return "\n".join(rows)

    def to_dict(self) -> dict:
        return {"seconds": round(self.seconds, 1), "inputs": dict(self.inputs),
                "verdicts": {k: dict(v) for k, v in self.verdicts.items()}, "crashes": dict(self.crashes),
                "residuals": dict(self.residuals), "timeouts": dict(self.timeouts),
                "exceptions": dict(self.exceptions), "exception_kinds": dict(self.exception_kinds),
                "exception_examples": self.exception_examples,
                "findings": [{k: v for k, v in f.__dict__.items() if k != "data"} for f in self.findings]}


def load_seeds(root: Path, families: list[str] | None = None, max_bytes: int = 2_000_000) -> list[Seed]:
    """The benign and hostile samples (samples/), generated into `root`."""
    from samples import generate

    seeds = []
    for s in generate(root, families):
        p = root / s.path
        if p.is_file() and p.stat().st_size <= max_bytes and not s.password:
            seeds.append(Seed(p, s.path, s.family))
    return seeds


def _policy(seconds: float, memory_mb: int) -> dict:
    from ..policy import load_policy

    pol = load_policy("default")
    pol.limits.seconds_per_file = seconds
    pol.limits.worker_memory_mb = memory_mb
    return pol.to_dict()


def run(seeds: list[Seed], *, seconds: float, seed: int = 0, workers: int = 2, max_inputs: int | None = None,
        file_seconds: float = 20.0, memory_mb: int = 1536, save_dir: Path | None = None,
        progress: Callable[[str], None] | None = None, progress_every: float = 60.0) -> Stats:
    """Fuzz for `seconds` (or `max_inputs` cases), `workers` cases at a time through the worker pool."""
    from ..worker import WorkerPool

    rng = random.Random(seed)
    stats = Stats()
    policy = _policy(file_seconds, memory_mb)
    limit_ms = (file_seconds + 5) * 1000
    start = time.monotonic()
    last = start
    tmp = Path(tempfile.mkdtemp(prefix="cdr-fuzz-"))
    pending: dict[Future, tuple[Seed, int, list[str], bytes, Path]] = {}
    n = 0
    try:
        with WorkerPool(workers) as pool:
            while True:
                done_time = time.monotonic() - start >= seconds
                done_count = max_inputs is not None and n >= max_inputs
                while not (done_time or done_count) and len(pending) < workers * 2:
                    s = rng.choice(seeds)
                    case_seed = rng.getrandbits(32)
                    data, steps = mutators.mutate(s.path.read_bytes(), random.Random(case_seed))
                    case_dir = tmp / f"c{n}"
                    (case_dir / "out").mkdir(parents=True)
                    src = case_dir / "input"
                    src.write_bytes(data)
                    from ..worker import Job

                    fut = pool.submit(Job(str(src), Path(s.name).name, str(case_dir / "out"), policy, want_text=True))
                    pending[fut] = (s, case_seed, steps, data, case_dir)
                    n += 1
                    done_count = max_inputs is not None and n >= max_inputs
                if not pending:
                    break
                finished, _ = wait(list(pending), timeout=5, return_when=FIRST_COMPLETED)
                for fut in finished:
                    s, case_seed, steps, data, case_dir = pending.pop(fut)
                    known = len(stats.findings)
                    _judge(stats, fut, s, case_seed, steps, data, case_dir, limit_ms)
                    shutil.rmtree(case_dir, ignore_errors=True)
                    if save_dir is not None:  # at once: a long run's findings are there to work on before it ends
                        for f in stats.findings[known:]:
                            save_case(save_dir, f)
                now = time.monotonic()
                if progress and now - last >= progress_every:
                    last = now
                    progress(f"[{now - start:7.0f} s] {sum(stats.inputs.values())} inputs, "
                             f"{sum(stats.crashes.values())} crashes, {sum(stats.residuals.values())} residuals")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    stats.seconds = time.monotonic() - start
    return stats


def _judge(stats: Stats, fut: Future, s: Seed, case_seed: int, steps: list[str], data: bytes, case_dir: Path,
           limit_ms: float) -> None:
    fam = s.family
    stats.inputs[fam] += 1

    def finding(kind: str, detail: str) -> None:
        stats.findings.append(Finding(kind, fam, s.name, case_seed, steps, detail[:500], data))

    try:
        res = fut.result()
    except Exception as exc:  # an exception escaped the pool itself
        stats.crashes[fam] += 1
        finding("crash", f"pool raised {type(exc).__name__}: {exc}")
        return
    stats.verdicts[fam][res.verdict] += 1
    ids = {t.id for t in res.threats}
    if ids & _CRASH_IDS or res.verdict not in ("clean", "sanitized", "blocked"):
        stats.crashes[fam] += 1
        finding("crash", f"{sorted(ids & _CRASH_IDS)} {res.reason_en}")
        return
    if "file.timeout" in ids:
        stats.timeouts[fam] += 1
    if res.elapsed_ms > limit_ms:
        finding("slow", f"verdict after {res.elapsed_ms:.0f} ms")
    if res.verdict == "blocked":
        if (res.reason_en or "").startswith("the file could not be parsed ("):
            stats.exceptions[fam] += 1
            detail = next((t.detail for t in res.threats if t.id == "file.malformed"), "")
            kind = f"{fam}: {detail.split(':', 1)[0]}"
            stats.exception_kinds[kind] += 1
            stats.exception_examples.setdefault(kind, {"detail": detail[:300], "seed": s.name,
                                                       "case_seed": case_seed, "steps": steps})
        if res.output or any((case_dir / "out").iterdir()):
            stats.crashes[fam] += 1
            finding("leftover", "a blocked file left output behind")
        return
    if not res.output or not Path(res.output).is_file():
        stats.crashes[fam] += 1
        finding("crash", "delivered without an output file")
        return
    try:
        found = oracle.scan_file(res.output)
    except Exception as exc:  # the scanner itself failed: worth a look, but not the engine's fault
        found = [f"oracle error {type(exc).__name__}: {exc}"[:200]]
    if found:
        stats.residuals[fam] += 1
        finding("residual", "; ".join(found)[:500])


def save_case(root: Path, f: Finding) -> Path:
    """tests/fuzz_regressions/<family>/<sha12>.bin and .json: the input, its seed and mutations, the finding."""
    digest = hashlib.sha256(f.data).hexdigest()[:12]
    d = root / f.family
    d.mkdir(parents=True, exist_ok=True)
    bin_path = d / f"{digest}.bin"
    bin_path.write_bytes(f.data)
    meta = {"seed": f.seed, "case_seed": f.case_seed, "mutations": f.steps, "kind": f.kind, "finding": f.detail,
            "name": Path(f.seed).name, "status": "open"}
    (d / f"{digest}.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return bin_path
