"""Every generated sample, benign and hostile, through the real CLI in one batch: each gets the
verdict and the threat ids its generator promises."""
from __future__ import annotations

from pathlib import Path

from samples import families
from tests.conftest import all_threat_ids, sanitize_report


def test_whole_corpus_through_cli(corpus, tmp_path):
    expected: dict[Path, object] = {}
    roots = []
    for fam in families():
        base, samples = corpus(fam)
        roots.append(base)
        for rel, s in samples.items():
            if s.password is None:  # PPAP cases need --password: their own tests cover them
                expected[(base / rel).resolve()] = s
    report = sanitize_report(roots, tmp_path / "out", "--jobs", "2")
    seen = {Path(f["source"]).resolve(): f for f in report["files"]}
    wrong = []
    for path, s in expected.items():
        f = seen[path]
        missing = set(s.threats) - all_threat_ids(f)
        if f["verdict"] != s.verdict or missing:
            wrong.append((str(path), s.verdict, f["verdict"], sorted(missing), f["reason"]))
    assert not wrong, wrong
    assert report["summary"]["total"] == len(seen)
