"""Smoke test of `python -m benchmarks` on a tiny corpus: it runs end to end and reports in the
documented shape. No timing is asserted (the machine is shared)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import corpus, report
from benchmarks.__main__ import run

ROW_KEYS = {"name", "files", "bytes", "seconds", "files_per_s", "mb_per_s", "p50_ms", "p95_ms", "p99_ms",
            "peak_rss_mb", "floor_seconds", "ratio_to_floor"}


def test_corpus_is_deterministic(tmp_path: Path) -> None:
    a = corpus.build(tmp_path / "a", tiny=True)
    b = corpus.build(tmp_path / "b", tiny=True)
    assert {it.family for it in a} == {"pdf", "docx", "xlsx", "pptx", "jpeg", "png", "csv", "zip"}
    # Same seed, same bytes for what we generate ourselves (office files carry timestamps).
    for x, y in zip(a, b, strict=True):
        if x.family in ("csv", "png", "jpeg", "pdf"):
            assert x.path.read_bytes() == y.path.read_bytes(), x.path.name


def test_benchmark_runs_on_tiny_corpus(tmp_path: Path) -> None:
    data = run(quick=True, tiny=True, rounds=1, appliance=False, openpyxl=False, with_family_benches=False)
    names = {r["name"] for r in data["results"]}
    assert {"pdf", "docx", "xlsx", "pptx", "jpeg", "png", "csv", "zip", "jpeg lossless", "mix (1 worker)"} <= names
    for r in data["results"]:
        assert ROW_KEYS <= set(r), r["name"]
        assert r["files"] >= 1 and r["seconds"] > 0 and r["floor_seconds"] > 0
        assert r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"]
    assert data["blocked_in_mix"] == []  # the benign mix goes through the real worker pool
    pdf = next(r for r in data["results"] if r["name"] == "pdf")
    assert pdf["structural_floor"] == "pikepdf open+save" and pdf["ratio_to_structural"] > 0
    mix = next(r for r in data["results"] if r["name"] == "mix (1 worker)")
    assert mix["peak_rss_mb"] and mix["peak_rss_mb"] > 5  # read from the workers' /proc status
    sc = data["scaling"]
    assert sc["workers_1_files_per_s"] > 0 and sc["workers_2_files_per_s"] > 0
    assert data["cli_small_file"].get("wall_seconds_median", 0) > 0
    assert {t["target"] for t in data["targets"]} and all("met" in t for t in data["targets"])
    text = report.table(data)
    assert "targets:" in text and "mix (1 worker)" in text
    out = tmp_path / "b.json"
    out.write_text(json.dumps(data))
    assert set(json.loads(out.read_text())["scaling"]) >= {"workers_1_files_per_s", "workers_2_files_per_s"}
    # The committed baseline is printed beside every figure and carried in the JSON.
    base = json.loads((Path(report.__file__).parent / "baseline.json").read_text("utf-8"))
    assert base["baseline_of"]["machine_name"] and base["results"]
    report.attach_baseline(data, base, "baseline.json")
    assert data["baseline"]["skipped"]  # a quick run is not compared with a full baseline
    report.attach_baseline(data, {**base, "quick": True}, "baseline.json")
    pdf = next(r for r in data["results"] if r["name"] == "pdf")
    assert pdf["baseline"]["ratio_to_floor"] > 0 and data["baseline"]["commit"]
    assert "(" in report.table(data).split("\n")[2]  # previous figures in brackets
    png = next(r for r in data["results"] if r["name"] == "png")
    assert 0 < png["size_ratio"] < 3
    assert png["cpu_seconds"] > 0 and png["cpu_ratio_to_floor"] > 0 and mix["cpu_ratio_to_floor"] > 0
    report.plot(data, tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cluster_benchmark_runs_on_tiny_mix() -> None:
    """`--cluster` end to end on one small file per family: a serve node with 1, then 2 pinned worker
    nodes on the real PostgreSQL and RabbitMQ; every file finished, CPU read for each group, the
    scratch database and the queues removed afterwards."""
    from benchmarks import cluster

    why = cluster.services_down()
    if why:
        pytest.skip(f"the cluster benchmark needs PostgreSQL and RabbitMQ: {why}")
    data = cluster.run(tiny=True, rounds=1, nodes=(1, 2), single_box=False, timeout=120, own_broker=False)
    assert "skipped" not in data, data.get("skipped")
    assert [(r["mode"], r["nodes"]) for r in data["runs"]] == [("cluster", 1), ("cluster", 2)]
    for r in data["runs"]:
        assert r["files"] == data["files"] == 8 and r["blocked"] == 0
        assert r["files_per_s"] > 0 and r["seconds"] > 0
        # CPU came from /proc of the serve node, the sandboxed workers, the worker nodes, the broker
        # and the database backends of the scratch database.
        assert {"serve", "work", "worker_node", "rabbitmq", "postgres"} <= set(r["cpu_seconds"]), r["cpu_seconds"]
        assert r["cpu_seconds"]["work"] > 0 and r["coordination_cpu_ms_per_file"] > 0
    assert data["cluster_efficiency"] > 0 and data["cluster_2"]["files_per_s"] > 0
    assert "efficiency" in cluster.table(data)
    import psycopg
    from kombu import Connection

    with psycopg.connect(cluster.PG_URL, connect_timeout=5) as c:
        assert c.execute("SELECT COUNT(*) FROM pg_database WHERE datname = %s",
                         (data["scratch_database"],)).fetchone()[0] == 0
    with Connection(cluster.AMQP_URL, connect_timeout=5) as conn:
        for r in data["runs"]:
            with pytest.raises(Exception, match="NOT_FOUND|404"):
                conn.channel().queue_declare(queue=r["queue_prefix"] + "cdr", passive=True)
