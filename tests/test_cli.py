"""The batch CLI end to end, driven as a user drives it."""
from __future__ import annotations

import json
import os
from pathlib import Path

from cdr.names import text_rendition_name
from tests.conftest import all_threat_ids, run_cli, sanitize_report

REPORT_KEYS = {"source", "sha256", "size", "detected_type", "verdict", "output", "output_sha256", "threats",
               "reason", "text_output", "elapsed_ms"}


def test_sanitize_corpus_matches_expectations(corpus, tmp_path):
    base, samples = corpus("text")
    out, text = tmp_path / "out", tmp_path / "text"
    report = sanitize_report([base], out, "--text", str(text))
    by = {Path(f["source"]).relative_to(base).as_posix(): f for f in report["files"]}
    assert set(by) == set(samples)
    for rel, s in samples.items():
        f = by[rel]
        assert REPORT_KEYS <= set(f), rel
        assert f["verdict"] == s.verdict, (rel, f["reason"], f["threats"])
        assert set(s.threats) <= all_threat_ids(f), (rel, f["threats"])
        if s.verdict == "blocked":
            assert f["output"] is None and f["reason"] and " / " in f["reason"]
        else:
            outp = Path(f["output"])
            assert outp.is_file() and outp.is_relative_to(out)
            # Outputs mirror the relative path of the input.
            assert outp.parent.relative_to(out).as_posix() == Path(rel).parent.as_posix()
            # Named so that Windows hiding extensions cannot make it look like the document itself.
            assert Path(f["text_output"]) == text / Path(rel).parent / text_rendition_name(outp.name)
            assert Path(f["text_output"]).name.endswith("_テキスト.txt")
    # Blocked files are not written at all, not even a placeholder.
    blocked_dir = out / "detect" / "blocked"
    assert not blocked_dir.exists() or not any(blocked_dir.iterdir())
    s = report["summary"]
    assert s["total"] == len(samples) and s["policy"] == "default" and s["policy_version"]
    assert s["clean"] + s["sanitized"] + s["blocked"] == s["total"]


def test_summary_only_when_not_a_terminal(corpus, tmp_path):
    base, _ = corpus("text")
    proc = run_cli("sanitize", str(base / "text" / "benign"), "-o", str(tmp_path / "o"))
    assert proc.returncode == 0
    lines = proc.stdout.decode().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["clean", "sanitized", "blocked"]
    assert proc.stderr == b""


def test_usage_errors_exit_2(tmp_path):
    assert run_cli("sanitize", str(tmp_path)).returncode == 2  # no -o
    missing = run_cli("sanitize", str(tmp_path / "nope"), "-o", str(tmp_path / "o"))
    assert missing.returncode == 2 and b"no such file" in missing.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nversion = "1"\n[families.csv]\naction = "allow"\n', "utf-8")
    f = tmp_path / "a.txt"
    f.write_text("x")
    proc = run_cli("sanitize", str(f), "-o", str(tmp_path / "o"), "--policy", str(bad))
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "bad.toml" in err and "families.csv.action" in err and "'allow'" in err
    assert run_cli("frobnicate").returncode == 2


def test_detect_inspect_extract(corpus, tmp_path):
    base, _ = corpus("text")
    d = run_cli("detect", str(base / "detect" / "blocked" / "invoice.pdf"))
    assert d.returncode == 0
    text = d.stdout.decode()
    assert "application/vnd.microsoft.portable-executable" in text and "MISMATCH" in text and "MZ" in text
    dj = run_cli("detect", "--json", str(base / "text" / "hostile" / "disguised.txt"))
    assert json.loads(dj.stdout)["detection"]["mime"] == "text/html"

    i = run_cli("inspect", "--json", str(base / "text" / "hostile" / "formula_sjis.csv"))
    info = json.loads(i.stdout)
    assert {t["id"] for t in info["threats"]} == {"csv.formula"}
    assert not any(tmp_path.iterdir())  # inspect writes nothing

    e = run_cli("extract", str(base / "text" / "benign" / "sjis.txt"))
    assert e.returncode == 0
    assert "住民票の写しの交付申請書" in e.stdout.decode("utf-8") and "表示・申請・ソ・能・十" in e.stdout.decode()
    blocked = run_cli("extract", str(base / "detect" / "blocked" / "tool.exe"))
    # A blocked file is a verdict, not a failure: exit 0 (the README's rule), reason on stderr, nothing on stdout.
    assert blocked.returncode == 0 and "blocked" in blocked.stderr.decode() and blocked.stdout == b""
    assert run_cli("extract", str(tmp_path / "missing.txt")).returncode == 2


def test_csv_findings_name_the_cell_as_excel_reads_it(tmp_path):
    """A finding's detail is the cell, not the rest of its line; a quoted cell with a stray quote inside reads
    on to its delimiter, as Excel reads it; a doubled quote is one quote."""
    f = tmp_path / "名簿.csv"
    f.write_text('氏名,式,備考\n山田,"=HYPERLINK(""http://x"",""x"")",至急\n田中,"=HYPERLINK("http://y","y")",表示\n'
                 '佐藤,=1+2,メモ\n', "utf-8")
    r = run_cli("inspect", "--json", str(f))
    details = {t["location"]: t["detail"] for t in json.loads(r.stdout)["threats"]}
    assert details == {"row 2, column 2": '=HYPERLINK("http://x","x")', "row 3, column 2": '=HYPERLINK(http://y"',
                       "row 4, column 2": "=1+2"}, details


def test_subcommand_help_says_what_it_does():
    for cmd, words in (("sanitize", ("Rebuild", "examples", "exit codes")), ("extract", ("stdout", "exit codes")),
                       ("inspect", ("nothing is written",)), ("detect", ("true type",))):
        out = run_cli(cmd, "--help").stdout.decode()
        assert all(w in out for w in words), (cmd, out)


def test_policy_check(tmp_path):
    from tests.conftest import ROOT

    ok = run_cli("policy", "check", str(ROOT / "rules" / "default.toml"), str(ROOT / "rules" / "text-only.toml"))
    assert ok.returncode == 0, ok.stderr.decode()
    assert b"default@" in ok.stdout


def test_text_only_policy_delivers_text(corpus, tmp_path):
    base, _ = corpus("text")
    out = tmp_path / "o"
    report = sanitize_report([base / "text" / "hostile" / "script.html"], out, "--policy", "text-only")
    f = report["files"][0]
    assert f["verdict"] == "sanitized"
    assert Path(f["output"]).name == "script_テキスト.txt"
    body = Path(f["output"]).read_text("utf-8")
    assert "本文" in body and "<script" not in body and "alert" not in body


def test_symlinks_are_reported_not_followed(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("外部のファイル")
    (src / "ok.txt").write_text("本文")
    (src / "link.txt").symlink_to(secret)
    out = tmp_path / "out"
    report = sanitize_report([src], out)
    by = {Path(f["source"]).name: f for f in report["files"]}
    assert by["ok.txt"]["verdict"] == "clean"
    assert by["link.txt"]["verdict"] == "blocked" and "symbolic" in by["link.txt"]["reason"]
    assert sorted(p.name for p in out.iterdir()) == ["ok.txt"]


def test_delivered_names_are_safe_on_windows(tmp_path):
    """A colon (NTFS stream), reserved device names, bidi controls, NUL and over-long names never
    reach a delivered name; process() blocks or delivers, it does not raise."""
    from cdr.pipeline import process
    from cdr.policy import load_policy

    src = tmp_path / "in.txt"
    src.write_bytes("申請内容\n".encode())
    cases = {"a.js:evil.txt": "a.js_evil.txt", "CON.txt": "_CON.txt", "evil\u202egpj.txt": "evilgpj.txt",
             "nul\x00byte.txt": "nulbyte.txt", "申請書.txt": "申請書.txt", "com\u00b9.txt": "_com\u00b9.txt"}
    for i, (name, want) in enumerate(cases.items()):
        r = process(src, name, tmp_path / f"o{i}", load_policy("default"))
        assert r.verdict == "clean" and Path(r.output).name == want, (name, r.output, r.reason)
    r = process(src, "長" * 120 + ".txt", tmp_path / "long", load_policy("default"))
    out = Path(r.output).name
    assert r.verdict == "clean" and out.endswith(".txt") and len(out.encode()) <= 255


def test_name_that_is_not_utf8_is_read_as_cp932(tmp_path):
    """A file name written by an old Windows client or unzip (CP932 bytes) neither crashes the report
    nor holds up the other files: it is read as CP932 and delivered under its Japanese name."""
    src = tmp_path / "in"
    src.mkdir()
    with open(os.path.join(os.fsencode(src), "課税証明.txt".encode("cp932")), "wb") as f:
        f.write("本文\n".encode())
    (src / "申請書.txt").write_text("本文2\n", "utf-8")
    rep = sanitize_report([src], tmp_path / "out")
    assert sorted(Path(f["source"]).name for f in rep["files"]) == ["申請書.txt", "課税証明.txt"]
    assert {f["verdict"] for f in rep["files"]} == {"clean"}
    assert (tmp_path / "out" / "課税証明.txt").read_text("utf-8") == "本文\n"
    proc = run_cli("detect", os.fsdecode(os.path.join(os.fsencode(src), "課税証明.txt".encode("cp932"))))
    assert proc.returncode == 0 and "課税証明.txt: text/plain" in proc.stdout.decode(), proc.stderr
