"""Replays the inputs the fuzzer found (tests/fuzz_regressions/) and the bounded fuzz run of make test."""
from __future__ import annotations

import json
import os
from concurrent.futures import Future
from pathlib import Path

import pytest

from cdr.fuzz import oracle, runner
from cdr.worker import Job, WorkerPool

CASES = Path(__file__).resolve().parent / "fuzz_regressions"


def _cases() -> list[Path]:
    return sorted(CASES.glob("*/*.bin"))


@pytest.fixture(scope="module")
def pool():
    p = WorkerPool(2)
    yield p
    p.close()


@pytest.mark.parametrize("case", _cases(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fuzz_regression_case(case, pool, tmp_path):
    meta = json.loads(case.with_suffix(".json").read_text("utf-8"))
    if meta.get("status") == "open":
        pytest.xfail(f"open finding ({meta['family'] if 'family' in meta else case.parent.name}): {meta['finding'][:120]}")
    stats = runner.Stats()
    src = tmp_path / "input"
    src.write_bytes(case.read_bytes())
    (tmp_path / "out").mkdir()
    fut: Future = Future()
    policy = runner._policy(20.0, 1536)
    fut.set_result(pool.run(Job(str(src), meta["name"], str(tmp_path / "out"), policy, want_text=True)))
    runner._judge(stats, fut, runner.Seed(case, meta["seed"], case.parent.name), meta["case_seed"],
                  meta["mutations"], case.read_bytes(), tmp_path, 25_000)
    assert [f.detail for f in stats.findings if f.kind != "slow"] == [], meta


def test_oracle_sees_what_it_must(tmp_path):
    """The independent scan is not blind: hostile samples, unsanitized, are flagged."""
    from samples import generate

    samples = {s.path: s for s in generate(tmp_path, ["pdf", "ooxml", "odf", "svg", "text", "rtf"])}
    hostile = ["pdf/hostile/js_openaction.pdf", "pdf/hostile/launch.pdf", "pdf/hostile/richmedia.pdf",
               "pdf/hostile/xfa.pdf", "pdf/hostile/js_objstm.pdf", "pdf/hostile/js_obfuscated_names.pdf",
               "ooxml/hostile/vba.docm", "ooxml/hostile/ddeauto.docx", "ooxml/hostile/webservice.xlsx", "ooxml/hostile/web_publish.xlsx",
               "ooxml/hostile/online_video.docx", "ooxml/hostile/xml_map_binding.xlsx", "ooxml/hostile/xml_map_schema.xlsx", "ooxml/hostile/chart_external.xlsx", "ooxml/hostile/bibliography_style.docx",
               "ooxml/hostile/ppaction_program.pptx", "ooxml/hostile/activex.docx", "ooxml/hostile/remote_template.docx",
               "odf/hostile/macro_onload.odt", "odf/hostile/database_form.odt", "odf/hostile/run_program.odp", "svg/hostile/script.svg",
               "svg/hostile/onload.svg", "text/hostile/script.html", "rtf/hostile/ddeauto.rtf"]
    missed = [rel for rel in hostile if not oracle.scan_file(tmp_path / rel)]
    assert missed == []
    for rel, s in samples.items():
        if s.verdict == "clean" and rel.endswith((".docx", ".xlsx", ".pptx", ".odt", ".svg", ".html")):
            assert oracle.scan_file(tmp_path / rel) == [], rel


@pytest.mark.slow
def test_bounded_fuzz_run(tmp_path):
    """A fixed number of mutants (fixed seed: the same inputs on every machine; about 1.5 minutes on a quiet 2-core box)
    through the real worker pool: no crash, no leftover, no residual. The time cap only guards a very slow
    machine."""
    inputs = int(os.environ.get("CDR_FUZZ_INPUTS", "2000"))
    seeds = runner.load_seeds(tmp_path / "seeds")
    stats = runner.run(seeds, seconds=float(os.environ.get("CDR_FUZZ_SECONDS", "300")), max_inputs=inputs,
                       seed=20, workers=2, file_seconds=20)
    print(stats.table())
    assert sum(stats.inputs.values()) >= min(inputs, 500)
    bad = [f for f in stats.findings if f.kind in ("crash", "leftover", "residual")]
    assert bad == [], [(f.kind, f.seed, f.case_seed, f.detail[:200], f.steps) for f in bad]
