"""The real `transfer-agent serve` process driven from outside: drop files, read the inbox.

Helpers here (Agent, check_consistency, ...) are shared with test_appliance_crash.py.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import unicodedata
import urllib.request
from pathlib import Path

import pytest
import pyzipper

import cdr
from transfer_agent import clock

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
AGENT = str(BIN / "transfer-agent")

FAST = """
[service]
workers = 2
shutdown_grace_seconds = {grace}
[intake]
stable_seconds = {stable}
close_settle_seconds = 0.3
tick_seconds = 0.05
rescan_seconds = 0.5
max_attempts = {attempts}
[retention]
purge_interval_seconds = 0.5
{extra}
"""

# Content for the mixed batches: (suffix, bytes, delivered?). Handlers for text, csv and html exist.
EXE = b"MZ\x90\x00" + b"\x00" * 56 + b"\x80\x00\x00\x00" + b"\x00" * 64 + b"PE\x00\x00" + b"\x00" * 200
MIX = [
    (".txt", "住民票の写しを申請します。\n".encode(), True),
    (".txt", "請求書 第{i}号\n".encode("cp932"), True),
    (".csv", b"name,amount\n=HYPERLINK(\"http://x\"),{i}\n", True),
    (".html", b"<html><body><p>hello {i}</p><script>alert(1)</script></body></html>", True),
    (".bin", bytes(range(256)) * 4 + b"{i}", False),
    (".exe", EXE + b"{i}", False),
]


def mixed(i: int) -> tuple[str, bytes, bool]:
    suffix, body, ok = MIX[i % len(MIX)]
    # Every 7th file repeats an earlier one's content (dedup across restarts).
    n = i if i % 7 else max(0, i - 6)
    return suffix, body.replace(b"{i}", str(n).encode()), ok


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Agent:
    """One `transfer-agent serve` process on a data directory."""

    def __init__(self, data: Path, *, stable: float = 1.0, grace: float = 10.0, attempts: int = 3,
                 extra: str = "", env: dict | None = None) -> None:
        self.data = data
        self.cfg = data.parent / f"{data.name}.toml"
        self.cfg.write_text(FAST.format(stable=stable, grace=grace, attempts=attempts, extra=extra), "utf-8")
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.runs = 0

    def start(self, wait: bool = True, env: dict | None = None) -> Agent:
        e = dict(os.environ)
        e.update(self.env)
        e.update(env or {})
        self.runs += 1
        self.out = open(self.data.parent / f"{self.data.name}.out{self.runs}", "wb")
        self.err = open(self.data.parent / f"{self.data.name}.err{self.runs}", "wb")
        self.proc = subprocess.Popen([AGENT, "serve", "--data-dir", str(self.data), "--config", str(self.cfg),
                                      "--api-port", "0", "--console-port", "0"],
                                     stdout=self.out, stderr=self.err, env=e, cwd=ROOT)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 40) -> None:
        info = self.data / "state" / "agent.json"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc.poll() is None, f"agent exited early: {self.stderr()[-3000:]}"
            try:
                d = json.loads(info.read_text("utf-8"))
                if d["pid"] == self.proc.pid:
                    self.info = d
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        raise AssertionError("agent did not become ready")

    def stderr(self) -> str:
        return Path(self.err.name).read_text("utf-8", "replace")

    def stdout(self) -> str:
        return Path(self.out.name).read_text("utf-8", "replace")

    def term(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.out.close()
        self.err.close()
        return rc

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self.out.close()
        self.err.close()

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.info["api_url"] + path.lstrip("/"), timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    # ledger
    def rows(self, sql: str = "SELECT * FROM jobs ORDER BY id", params: tuple = ()) -> list[dict]:
        conn = sqlite3.connect(self.data / "state" / "ledger.sqlite3", timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql, params)]
        finally:
            conn.close()

    def final_named(self, name: str, timeout: float = 60) -> dict:
        """The latest job of this file name, once it is delivered or blocked."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            rows = self.rows("SELECT * FROM jobs WHERE name = ?", (name,))
            if rows and rows[-1]["status"] in ("delivered", "blocked"):
                return rows[-1]
            time.sleep(0.1)
        raise AssertionError(f"{name} not final: {[ln for ln in self.stderr().splitlines() if name in ln][-5:]}")

    def wait_final(self, n: int, timeout: float = 60) -> list[dict]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc is not None:
                assert self.proc.poll() is None, f"agent died: {self.stderr()[-3000:]}"
            try:
                rows = self.rows()
            except sqlite3.Error:
                rows = []
            if len(rows) >= n and all(r["status"] in ("delivered", "blocked") for r in rows):
                return rows
            time.sleep(0.1)
        raise AssertionError(f"not all final: {[(r['id'], r['name'], r['status']) for r in self.rows()]}")


def drop(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def run_agent_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([AGENT, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def outcomes(data: Path) -> dict[tuple[str, str], list[dict]]:
    """(channel, original name) -> the reports found in the inbox (sidecars and blocked notices)."""
    found: dict[tuple[str, str], list[dict]] = {}
    for p in (data / "inbox").rglob("*"):
        if p.name.endswith((".cdr.json", ".blocked.json")):
            rep = json.loads(p.read_text("utf-8"))
            rep["_path"] = p
            found.setdefault((rep["channel"], rep["original_name"]), []).append(rep)
    return found


def check_consistency(data: Path) -> list[dict]:
    """Nothing lost, nothing twice, no temp file, the ledger agrees with the folders, audit intact."""
    conn = sqlite3.connect(data / "state" / "ledger.sqlite3")
    conn.row_factory = sqlite3.Row
    jobs = [dict(r) for r in conn.execute("SELECT * FROM jobs ORDER BY id")]
    conn.close()
    assert jobs and all(j["status"] in ("delivered", "blocked") for j in jobs), \
        [(j["id"], j["status"]) for j in jobs if j["status"] not in ("delivered", "blocked")]
    inbox_files = {p for p in (data / "inbox").rglob("*") if p.is_file()}
    hidden = [p for p in inbox_files if p.name.startswith(".") or ".tmp-" in p.name]
    assert not hidden, f"temporary files visible in the inbox: {hidden}"
    expected: set[Path] = set()
    for j in jobs:
        names = json.loads(j["delivered"])
        plan = json.loads(j["plan"])
        for f in plan["files"]:
            p = data / j["inbox_dir"] / f["name"]
            assert p.is_file(), f"job {j['id']}: {p} missing"
            assert sha(p.read_bytes()) == f["sha256"], f"job {j['id']}: {p} altered"
        assert sorted(names) == sorted(f["name"] for f in plan["files"])
        expected |= {data / j["inbox_dir"] / n for n in names}
        if j["status"] == "blocked":
            assert [f["kind"] for f in plan["files"]] == ["report", "notice"]
        else:
            assert [f["kind"] for f in plan["files"]][-3:] == ["report", "sidecar", "output"]
        if j["source"] == "too_large":
            continue  # never taken: the file stayed in the dropbox, only its notice was delivered
        q = data / j["quarantine"]
        purged = sqlite3.connect(data / "state" / "ledger.sqlite3").execute(
            "SELECT purged_at FROM quarantine WHERE sha256 = ?", (j["sha256"],)).fetchone()[0]
        assert purged or (q.is_file() and sha(q.read_bytes()) == j["sha256"]), f"original of job {j['id']} lost"
    assert inbox_files == expected, f"inbox and ledger disagree: {inbox_files ^ expected}"
    # Exactly one outcome per job, found through the reports in the inbox.
    found = outcomes(data)
    for j in jobs:
        reps = [r for r in found.get((j["channel"], j["name"]), []) if r["job_id"] == j["id"]]
        assert len(reps) == 1, f"job {j['id']} {j['name']}: {len(reps)} outcomes"
    assert sum(len(v) for v in found.values()) == len(jobs)
    left = [p for p in (data / "dropbox").rglob("*") if p.is_file() and not p.name.startswith((".", "~$"))]
    assert not left, f"files left in the dropbox: {left}"
    assert not list((data / "work" / "intake").iterdir())
    v = run_agent_cli("audit", "verify", "--data-dir", str(data))
    assert v.returncode == 0, v.stdout + v.stderr
    return jobs


# ---------------------------------------------------------------------------- the main scenario

SHORT_POLICY = (ROOT / "rules" / "default.toml").read_text("utf-8").replace(
    'name = "default"', 'name = "short"').replace("retention_days = 30", "retention_days = 0")


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("appliance")
    (base / "short.toml").write_text(SHORT_POLICY, "utf-8")
    data = base / "var"
    # Files that arrive while the agent is down are picked up at start.
    drop(data / "dropbox" / "before.txt", "起動前に置かれたファイル\n".encode())
    drop(data / "dropbox" / "soumu" / "before.csv", b"a,b\n1,2\n")
    a = Agent(data, extra=f'[channels.shortlived]\npolicy = "{base / "short.toml"}"\n').start()
    yield a
    if a.proc.poll() is None:
        a.kill()


def test_files_present_before_start(agent: Agent) -> None:
    agent.wait_final(2)
    found = outcomes(agent.data)
    assert found[("default", "before.txt")][0]["verdict"] == "clean"
    assert found[("soumu", "before.csv")][0]["verdict"] == "clean"
    assert "drop files here" in agent.stdout() and str(agent.data / "dropbox") in agent.stdout()
    assert agent.info["api_url"] in agent.stdout()


def test_japanese_names_verdicts_and_layout(agent: Agent) -> None:
    dropbox = agent.data / "dropbox"
    n0 = len(agent.rows())
    nfd = unicodedata.normalize("NFD", "ガイド.txt")
    files = {
        "kokuho/申請書.txt": "国民健康保険の申請書です。\n".encode(),
        "kokuho/住民票 (写し).csv": "氏名,金額\n山田,=1+1\n".encode("cp932"),
        "kokuho/お知らせ.html": "<p>お知らせ</p><script>alert(1)</script>".encode(),
        "kokuho/請求書.exe": EXE,
        "kokuho/謎.bin": bytes(range(256)) * 8,
        nfd: "濁点\n".encode(),
        "kokuho/追加資料/添付.txt": b"nested\n",
    }
    # Temporary names are ignored until renamed.
    drop(dropbox / "kokuho" / "~$申請書.docx", b"owner file")
    drop(dropbox / "kokuho" / "download.txt.part", b"partial")
    drop(dropbox / "kokuho" / ".hidden.txt", b"hidden")
    for rel, body in files.items():
        drop(dropbox / rel, body)
    rows = agent.wait_final(n0 + len(files))
    time.sleep(0.5)
    assert (dropbox / "kokuho" / "~$申請書.docx").exists() and (dropbox / "kokuho" / "download.txt.part").exists()
    assert len(agent.rows()) == n0 + len(files)
    os.rename(dropbox / "kokuho" / "download.txt.part", dropbox / "kokuho" / "download.txt")
    rows = agent.wait_final(n0 + len(files) + 1)
    assert rows[-1]["name"] == "download.txt"

    day = clock.day()
    out = agent.data / "inbox" / "kokuho" / day
    assert (out / "申請書.txt").read_bytes() == files["kokuho/申請書.txt"]
    assert (out / "申請書_テキスト.txt").read_text("utf-8").startswith("国民健康保険")
    # The clerk's report: Japanese, opens in Notepad (UTF-8 with BOM, CRLF).
    ja = (out / "申請書.txt.報告.txt").read_bytes()
    assert ja.startswith(b"\xef\xbb\xbf") and b"\r\n" in ja and b"\n" not in ja.replace(b"\r\n", b"")
    assert "判定：問題なし" in ja.decode("utf-8-sig") and "申請書_テキスト.txt" in ja.decode("utf-8-sig")
    side = json.loads((out / "申請書.txt.cdr.json").read_text("utf-8"))
    assert side["verdict"] == "clean" and side["policy"] == "default@2026.11.1"
    assert side["original_sha256"] == sha(files["kokuho/申請書.txt"])
    assert side["output_sha256"] == sha((out / "申請書.txt").read_bytes())
    csv = json.loads((out / "住民票 (写し).csv.cdr.json").read_text("utf-8"))
    assert csv["verdict"] == "sanitized" and "csv.formula" in {t["id"] for t in csv["threats"]}
    assert "'=1+1" in (out / "住民票 (写し).csv").read_bytes().decode("cp932")
    html = json.loads((out / "お知らせ.html.cdr.json").read_text("utf-8"))
    assert html["verdict"] == "sanitized" and b"<script" not in (out / "お知らせ.html").read_bytes()
    for blocked, threat in (("請求書.exe", "file.executable"), ("謎.bin", "file.unsupported")):
        assert not (out / blocked).exists()
        notice = json.loads((out / f"{blocked}.blocked.json").read_text("utf-8"))
        assert notice["verdict"] == "blocked" and notice["reason_ja"] and notice["reason_en"]
        assert "判定：配送停止" in (out / f"{blocked}.報告.txt").read_text("utf-8-sig")
        assert threat in {t["id"] for t in notice["threats"]}
    assert (out / "追加資料" / "添付.txt").read_bytes() == b"nested\n"
    # NFC on the way out; the name is otherwise unchanged.
    nfc = unicodedata.normalize("NFC", nfd)
    assert (agent.data / "inbox" / "default" / day / nfc).is_file()
    assert nfd != nfc and nfc in os.listdir(agent.data / "inbox" / "default" / day)
    assert nfd not in os.listdir(agent.data / "inbox" / "default" / day)
    # Originals: content-addressed in quarantine, not in the inbox, read-only.
    q = agent.data / "quarantine" / sha(EXE)[:2] / sha(EXE)
    assert q.read_bytes() == EXE and q.stat().st_mode & 0o222 == 0


def test_collision_and_dedup(agent: Agent) -> None:
    dropbox = agent.data / "dropbox" / "kokuho"
    n0 = len(agent.rows())
    body = "国民健康保険の申請書です。\n".encode()  # same content as 申請書.txt above
    drop(dropbox / "申請書.txt", "別の内容\n".encode())
    agent.wait_final(n0 + 1)
    drop(dropbox / "コピー.txt", body)
    rows = agent.wait_final(n0 + 2)
    out = agent.data / "inbox" / "kokuho" / clock.day()
    assert (out / "申請書 (2).txt").read_text("utf-8") == "別の内容\n"
    assert (out / "申請書 (2).txt.cdr.json").is_file() and (out / "申請書 (2)_テキスト.txt").is_file()
    assert (out / "申請書.txt").read_bytes() == body  # never overwritten
    first = [r for r in rows if r["name"] == "申請書.txt" and r["sha256"] == sha(body)][0]
    reused = rows[-1]
    assert reused["reused_from"] == first["id"] and reused["verdict"] == "clean"
    side = json.loads((out / "コピー.txt.cdr.json").read_text("utf-8"))
    assert side["reused_from_job"] == first["id"] and (out / "コピー.txt").read_bytes() == body
    assert "reused_from" in agent.rows("SELECT data FROM audit WHERE event='verdict' ORDER BY seq DESC")[0]["data"]
    status, text = agent.get("/metrics")
    assert status == 200 and "transfer_dedup_reused_total 1.0" in text
    # A chain of reuses keeps each sender's name: the cached output is named after the first job
    # (申請書.txt), not after the latest reuse (申請.txt, whose stem is a prefix of it).
    drop(dropbox / "申請.txt", body)
    agent.wait_final(n0 + 3)
    drop(dropbox / "戸籍.txt", body)
    agent.wait_final(n0 + 4)
    assert (out / "申請.txt").read_bytes() == body and (out / "戸籍.txt").read_bytes() == body
    assert not (out / "戸籍書.txt").exists()


def test_slow_writer_not_taken_early(agent: Agent) -> None:
    n0 = len(agent.rows())
    path = agent.data / "dropbox" / "kokuho" / "ゆっくり.txt"
    chunks = [f"行{i} ".encode() * 200 + b"\n" for i in range(8)]
    with open(path, "wb") as f:  # one handle, a chunk every 0.4 s (> tick, < stable_seconds)
        for c in chunks:
            f.write(c)
            f.flush()
            time.sleep(0.4)
            assert len(agent.rows()) == n0, "taken while still being written"
    rows = agent.wait_final(n0 + 1)
    full = b"".join(chunks)
    assert rows[-1]["size"] == len(full) and rows[-1]["sha256"] == sha(full)
    out = agent.data / "inbox" / "kokuho" / clock.day() / "ゆっくり.txt"
    assert out.read_bytes() == full


def test_stalled_writer_and_hard_link_never_reach_quarantine(agent: Agent, tmp_path: Path) -> None:
    """A writer that stalls longer than stable_seconds keeps its file in the dropbox until it closes it;
    a hard-linked drop is copied: the sender's inode is never quarantined (or chmodded), so writing
    through the other name later cannot change the original or the bytes that were processed."""
    day = clock.day()
    path = agent.data / "dropbox" / "kokuho" / "止まる.txt"
    first, rest = "前半\n".encode() * 50, "後半\n".encode() * 50
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(first)
        f.flush()
        time.sleep(2.5)  # stable_seconds is 1.0: quiet, but still open for writing
        assert not agent.rows("SELECT id FROM jobs WHERE name = ?", (path.name,)) and path.exists(), \
            "taken while its writer still had it open"
        f.write(rest)
    assert agent.final_named(path.name)["sha256"] == sha(first + rest)
    assert (agent.data / "inbox" / "kokuho" / day / "止まる.txt").read_bytes() == first + rest

    outside = agent.data / "outside.txt"  # same file system, outside the dropbox
    outside.write_bytes("元の内容\n".encode())
    os.link(outside, agent.data / "dropbox" / "kokuho" / "リンク.txt")
    row = agent.final_named("リンク.txt")
    q = agent.data / row["quarantine"]
    assert os.stat(outside).st_ino != os.stat(q).st_ino and os.stat(outside).st_mode & 0o777 != 0o440
    outside.write_bytes("書き換え\n".encode())
    assert q.read_bytes() == "元の内容\n".encode() and sha(q.read_bytes()) == row["sha256"]


def test_cp932_name_in_dropbox_is_delivered(agent: Agent) -> None:
    """A name in CP932 bytes (an old Windows client, unzip without -O) is read as CP932; it neither
    fails intake forever nor holds up a file dropped with it."""
    day = clock.day()
    box = agent.data / "dropbox" / "zeimu"
    box.mkdir(parents=True, exist_ok=True)
    with open(os.path.join(os.fsencode(box), "課税証明.txt".encode("cp932")), "wb") as f:
        f.write("課税証明の内容\n".encode())
    drop(box / "同時.txt", "同時に置いた\n".encode())
    end = time.monotonic() + 30
    out = agent.data / "inbox" / "zeimu" / day
    while time.monotonic() < end and not ((out / "課税証明.txt").exists() and (out / "同時.txt").exists()):
        time.sleep(0.1)
    assert (out / "課税証明.txt").read_text("utf-8") == "課税証明の内容\n"
    assert (out / "同時.txt").exists() and not list(box.iterdir())


def test_sender_folders_cannot_fake_bundles_or_originals_or_overflow(agent: Agent) -> None:
    """A drop folder named like a receipt bundle or like `originals` gets its own name, so a sender cannot
    plant files (a forged form.txt) in a resident's e-application bundle or fake an approved original;
    a folder tree deeper than the inbox can hold is cut, so the file still gets delivered."""
    day = clock.day()
    receipt = clock.compact_day() + "-0042"
    box = agent.data / "dropbox" / "somu"
    deep = box.joinpath(*[f"階層{i:02d}" + "x" * 40 for i in range(12)])
    drop(box / receipt / "form.txt", "偽の申請内容\n".encode())
    drop(box / "originals" / "ORIGINAL_申請書.txt", "偽の原本\n".encode())
    drop(deep / "深い.txt", "深い場所\n".encode())
    out = agent.data / "inbox" / "somu" / day
    kept = out.joinpath(*[f"階層{i:02d}" + "x" * 40 for i in range(8)]) / "深い.txt"
    want = [out / f"_{receipt}" / "form.txt", out / "_originals" / "ORIGINAL_申請書.txt", kept]
    end = time.monotonic() + 30
    while time.monotonic() < end and not all(p.exists() for p in want):
        time.sleep(0.1)
    assert all(p.exists() for p in want), [p for p in want if not p.exists()]
    assert not (out / receipt).exists() and not (out / "originals").exists()


def test_folder_swapped_for_a_symlink_takes_nothing_from_elsewhere(agent: Agent, tmp_path: Path) -> None:
    """A drop folder replaced by a symbolic link after its file was noticed: the file behind the link
    (another channel's inbox, /etc...) is neither taken, delivered nor deleted."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "台帳.txt").write_text("他部署の台帳\n", "utf-8")
    box = agent.data / "dropbox" / "kokuho"
    drop(box / "swap" / "台帳.txt", "送信者の内容\n".encode())
    (box / "swap").rename(box / ".swap-hidden")  # dot folders are ignored
    (box / "swap").symlink_to(outside, target_is_directory=True)
    time.sleep(3.0)  # stable_seconds 1.0: long enough to have been taken
    assert (outside / "台帳.txt").read_text("utf-8") == "他部署の台帳\n"
    day = clock.day()
    assert not (agent.data / "inbox" / "kokuho" / day / "swap").exists()
    assert not agent.rows("SELECT id FROM jobs WHERE subdir = 'swap'")
    assert any('"intake.skip"' in ln and "swap" in ln for ln in agent.stderr().splitlines())  # it was tried
    (box / "swap").unlink()
    shutil.rmtree(box / ".swap-hidden")


def test_file_over_the_size_limit_gets_a_notice(agent: Agent) -> None:
    """A sparse file of 200 MB (over max_file_mb = 100) is not copied: it stays where it is; a notice and
    the clerk's report go into the inbox and the console lists it (a job without an original); it is
    audited once and shows on /healthz until it is removed."""
    big = agent.data / "dropbox" / "kokuho" / "巨大.pdf"
    with open(big, "wb") as f:
        f.truncate(200 * 1024 * 1024)  # no blocks on disk for the sender
    job = agent.final_named("巨大.pdf", timeout=30)
    assert job["source"] == "too_large" and job["verdict"] == "blocked" and job["quarantine"] is None
    out = agent.data / job["inbox_dir"]
    notice = json.loads((out / "巨大.pdf.blocked.json").read_text("utf-8"))
    assert [t["id"] for t in notice["threats"]] == ["file.limit"] and "200.0 MB" in notice["reason_ja"]
    report = (out / "巨大.pdf.報告.txt").read_text("utf-8-sig")
    assert "判定：配送停止" in report and "上限" in report and "送信側のフォルダに残っています" in report
    note = agent.get("/healthz")[1]
    assert "over the size limit" in note and big.exists()
    assert len(agent.rows("SELECT seq FROM audit WHERE event = 'intake.too_large'")) == 1
    assert not any(p.stat().st_size > 1 << 20 for p in (agent.data / "work" / "intake").iterdir())
    time.sleep(1.5)  # more walks of the dropbox: still one job, one audit row
    assert len(agent.rows("SELECT id FROM jobs WHERE name = ?", (big.name,))) == 1
    assert len(agent.rows("SELECT seq FROM audit WHERE event = 'intake.too_large'")) == 1
    big.unlink()
    assert "over the size limit" not in agent.get("/healthz")[1]


def test_too_large_notice_and_empty_folders_across_a_restart(tmp_path: Path) -> None:
    """A file over the limit is audited and noticed once, not again at the next start; a sender's folder
    whose files were taken is removed once empty and quiet (the channel folder stays)."""
    data = tmp_path / "var"
    a = Agent(data, extra='[channels.small]\npolicy = "%s"\n' % (tmp_path / "small.toml"))
    (tmp_path / "small.toml").write_text(SHORT_POLICY.replace("retention_days = 0", "retention_days = 30")
                                         .replace("max_file_mb = 100", "max_file_mb = 1"), "utf-8")
    a.start()
    try:
        big = data / "dropbox" / "small" / "大きい.pdf"
        big.parent.mkdir(parents=True)
        with open(big, "wb") as f:
            f.truncate(3 * 1024 * 1024)
        drop(data / "dropbox" / "small" / "山田さん" / "中" / "申請.txt", "申請です\n".encode())
        a.final_named("大きい.pdf")
        a.final_named("申請.txt")
        end = time.monotonic() + 20
        while (data / "dropbox" / "small" / "山田さん").exists() and time.monotonic() < end:
            time.sleep(0.2)
        assert not (data / "dropbox" / "small" / "山田さん").exists() and (data / "dropbox" / "small").is_dir()
        assert a.term() == 0
        a.start()
        time.sleep(2.0)  # several walks of the dropbox after the start
        assert len(a.rows("SELECT id FROM jobs WHERE name = '大きい.pdf'")) == 1
        assert len(a.rows("SELECT seq FROM audit WHERE event = 'intake.too_large'")) == 1
        assert big.exists() and "over the size limit" in a.get("/healthz")[1]
    finally:
        if a.proc.poll() is None:
            a.kill()


def test_results_of_another_engine_are_not_reused(agent: Agent) -> None:
    """Identical content is answered from the stored result only when the same engine (code and
    policy content) made it: after an upgrade with a new check, old verdicts are not handed out."""
    box = agent.data / "dropbox" / "engine"
    body = "同じ内容の文書です。\n".encode()

    drop(box / "一.txt", body)
    first = agent.final_named("一.txt")
    assert first["engine"] and first["engine"].startswith(cdr.__version__ + "+")
    drop(box / "二.txt", body)
    assert agent.final_named("二.txt")["reused_from"] == first["id"]
    db = sqlite3.connect(agent.data / "state" / "ledger.sqlite3")
    with db:  # as if an older engine had made both results
        db.execute("UPDATE jobs SET engine = 'older' WHERE name IN ('一.txt', '二.txt')")
    db.close()
    drop(box / "三.txt", body)
    third = agent.final_named("三.txt")
    assert third["reused_from"] is None and third["engine"] == first["engine"]

def test_retention_purge_is_audited(agent: Agent) -> None:
    n0 = len(agent.wait_final(2))  # the files dropped before start are final first
    body = b"kept for zero days\n"
    drop(agent.data / "dropbox" / "shortlived" / "temp.txt", body)
    rows = agent.wait_final(n0 + 1)
    assert rows[-1]["policy"].startswith("short@") and rows[-1]["channel"] == "shortlived"
    q = agent.data / "quarantine" / sha(body)[:2] / sha(body)

    def audited() -> bool:
        purges = agent.rows("SELECT data FROM audit WHERE event = 'purge'")
        return any(json.loads(p["data"])["sha256"] == sha(body) for p in purges)

    # The purge commits its audit row just after removing the file (a directory fsync later).
    end = time.monotonic() + 10
    while not audited() and time.monotonic() < end:
        time.sleep(0.1)
    assert audited()
    assert not q.exists()
    # Originals of the 30-day policy are still there.
    assert (agent.data / "quarantine" / sha(EXE)[:2] / sha(EXE)).is_file()


def test_healthz_metrics_status(agent: Agent) -> None:
    status, body = agent.get("/healthz")
    assert status == 200 and json.loads(body)["components"] == {"watcher": True, "workers": True, "ledger": True,
                                                                "internet": True}
    status, text = agent.get("/metrics")
    assert status == 200
    # 請求書.exe, 謎.bin and the notice of 巨大.pdf (over the size limit)
    assert 'transfer_files_total{channel="kokuho",verdict="blocked"} 3.0' in text
    assert 'transfer_files_total{channel="kokuho",verdict="sanitized"} 2.0' in text
    assert "transfer_latency_seconds_count" in text and "transfer_queue_depth 0.0" in text
    qbytes = float(next(line.split()[1] for line in text.splitlines()
                        if line.startswith("transfer_quarantine_bytes")))
    assert qbytes > len(EXE)
    with urllib.request.urlopen(agent.info["console_url"], timeout=10) as r:
        assert "コンソール" in r.read().decode()
    st = run_agent_cli("status", "--data-dir", str(agent.data), "--json")
    assert st.returncode == 0
    counts = json.loads(st.stdout)
    # Reused: コピー, 申請, 戸籍 (test_collision_and_dedup) and 二 (test_results_of_another_engine_are_not_reused).
    assert counts["verdicts"]["blocked"] == 3 and counts["reused"] == 4  # with the too-large notice


def test_sigterm_then_consistent(agent: Agent) -> None:
    assert agent.term() == 0
    assert "transfer-agent stopped" in agent.stdout()
    lines = [json.loads(line) for line in agent.stderr().splitlines() if line.startswith("{")]
    assert any(rec["event"] == "job.delivered" for rec in lines) and all("ts" in rec for rec in lines)
    check_consistency(agent.data)


# ---------------------------------------------------------------------------- audit tamper

def test_audit_tamper_detected(agent: Agent) -> None:
    db = agent.data / "state" / "ledger.sqlite3"
    assert run_agent_cli("audit", "verify", "--data-dir", str(agent.data)).returncode == 0
    # The triggers refuse a plain edit ...
    r = subprocess.run(["sqlite3", str(db), "UPDATE audit SET actor = 'x' WHERE seq = 3"], capture_output=True,
                       text=True)
    assert r.returncode != 0 and "append-only" in r.stderr
    # ... someone who drops them is caught by the chain.
    subprocess.run(["sqlite3", str(db), "DROP TRIGGER audit_no_update; "
                    "UPDATE audit SET data = data || ' ' WHERE seq = 3"], check=True)
    v = run_agent_cli("audit", "verify", "--data-dir", str(agent.data))
    assert v.returncode == 1 and "seq=3" in v.stderr, v.stderr
    subprocess.run(["sqlite3", str(db), "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2"], check=True)
    v = run_agent_cli("audit", "verify", "--data-dir", str(agent.data))
    assert v.returncode == 1 and "seq=2" in v.stderr, v.stderr


# ---------------------------------------------------------------------------- SIGTERM with work in flight

SLOW_PLUGIN = '''
import time
from cdr import handler as H
_base = H._BY_MIME.get("text/plain")
if _base is not None:
    @H.register
    class SlowText(type(_base)):
        def rebuild(self, ctx, src, dst, det):
            if "slow" in ctx.name:
                time.sleep(2.0)
            return super().rebuild(ctx, src, dst, det)
'''


def test_sigterm_finishes_or_requeues(tmp_path: Path) -> None:
    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "slowplug.py").write_text(SLOW_PLUGIN, "utf-8")
    env = {"CDR_PLUGINS": "slowplug", "PYTHONPATH": str(tmp_path / "plug")}
    data = tmp_path / "var"

    def wait_processing(a: Agent) -> None:
        end = time.monotonic() + 20
        while not a.rows("SELECT id FROM jobs WHERE status = 'processing'"):
            assert time.monotonic() < end, a.rows()
            time.sleep(0.05)

    # Generous grace: in-flight files finish before exit.
    a = Agent(data, stable=0.5, grace=15, env=env).start()
    for i in range(2):
        drop(data / "dropbox" / f"slow{i}.txt", f"slow {i}\n".encode())
    wait_processing(a)
    t0 = time.monotonic()
    assert a.term() == 0
    rows = a.rows()
    assert time.monotonic() - t0 < 15
    assert all(r["status"] == "delivered" for r in rows), [(r["name"], r["status"]) for r in rows]

    # Short grace: unfinished files are requeued, then finished after the restart.
    a = Agent(data, stable=0.5, grace=0.2, env=env).start()
    for i in range(2, 4):
        drop(data / "dropbox" / f"slow{i}.txt", f"slow {i}\n".encode())
    wait_processing(a)
    assert a.term() == 0
    rows = a.rows()
    assert not [r for r in rows if r["status"] not in ("delivered", "blocked", "queued")]
    assert [r for r in rows if r["status"] == "queued"], "expected requeued work"
    a.start()
    a.wait_final(4)
    assert a.term() == 0
    jobs = check_consistency(data)
    assert sorted(j["name"] for j in jobs) == [f"slow{i}.txt" for i in range(4)]
    assert all(j["verdict"] == "clean" for j in jobs)


def test_second_instance_refused(tmp_path: Path) -> None:
    a = Agent(tmp_path / "var").start()
    try:
        r = subprocess.run([AGENT, "serve", "--data-dir", str(a.data), "--api-port", "0", "--console-port", "0"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "another transfer-agent" in r.stderr
    finally:
        assert a.term() == 0


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs a second file system")
def test_dropbox_on_another_file_system(tmp_path: Path) -> None:
    """A dropbox mounted from elsewhere: copy + fsync + unlink, also when killed in between."""
    import shutil
    import tempfile

    other = Path(tempfile.mkdtemp(prefix="ta-dropbox-", dir="/dev/shm"))
    try:
        data = tmp_path / "var"
        data.mkdir()
        (data / "dropbox").symlink_to(other)
        drop(other / "遠隔.txt", "別のファイルシステム\n".encode())
        a = Agent(data, stable=0.3)
        a.start(wait=False, env={"TRANSFER_AGENT_CRASHPOINT": "intake.copied"})
        assert a.proc.wait(60) == -9
        a.out.close()
        a.err.close()
        assert (other / "遠隔.txt").exists()  # copied, not yet unlinked
        a.start()
        rows = a.wait_final(1)
        assert a.term() == 0
        assert len(rows) == 1 and rows[0]["status"] == "delivered"
        assert not list(other.iterdir())
        check_consistency(data)
    finally:
        shutil.rmtree(other, ignore_errors=True)


# ---------------------------------------------------------------------------- delivery retried while running

RETRY_FAST = "[delivery]\nretry_seconds = 0.2\nretry_max_seconds = 0.5\n"


def _events(a: Agent, event: str) -> list[dict]:
    """This run's JSON log records of one event."""
    recs = [json.loads(line) for line in a.stderr().splitlines() if line.startswith("{")]
    return [r for r in recs if r.get("event") == event]


def _until(pred, what: str, timeout: float = 30) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, what
        time.sleep(0.1)


def _audit_events(a: Agent, job_id: int) -> list[str]:
    return [r["event"] for r in a.rows("SELECT event FROM audit WHERE job_id = ? ORDER BY seq", (job_id,))]


def test_delivery_retried_while_running(tmp_path: Path) -> None:
    """The inbox cannot be written after the plan is committed: the job waits (not lost, not
    reprocessed), is retried with backoff and delivered once without a restart; SIGTERM does not
    wait for it, and a restart that still cannot deliver keeps retrying."""
    from transfer_agent.files import temp_name

    data = tmp_path / "var"
    a = Agent(data, stable=0.3, extra=RETRY_FAST).start()
    # Works as root too: the channel's inbox folder is a regular file, so the date folder cannot be made.
    blocker = data / "inbox" / "kokuho"
    blocker.write_bytes(b"not a folder")
    body = "再送のテスト\n".encode()
    drop(data / "dropbox" / "kokuho" / "再送.txt", body)
    _until(lambda: len(_events(a, "deliver.retry")) >= 3, "no delivery retries logged")
    [job] = a.rows()
    plan = json.loads(job["plan"])
    assert job["status"] == "delivering" and plan["main"] == "再送.txt"
    assert blocker.read_bytes() == b"not a folder"
    retries = _events(a, "deliver.retry")
    assert [r["failures"] for r in retries[:3]] == [1, 2, 3] and retries[0]["job_id"] == job["id"]
    assert "not a folder where a folder should be" in retries[0]["error"] and retries[1]["retry_in"] > retries[0]["retry_in"]
    status, text = a.get("/metrics")
    assert status == 200 and "transfer_delivery_retry_waiting 1.0" in text
    status, health = a.get("/healthz")
    assert status == 200 and json.loads(health)["status"] == "degraded" and json.loads(health)["notes"]
    # Other channels keep flowing meanwhile.
    drop(data / "dropbox" / "別の課.txt", b"other channel\n")
    _until(lambda: any(r["status"] == "delivered" for r in a.rows()), "other channel not delivered")

    # The folder comes back with a symlink at the main file's temp name: the link itself is removed
    # (never followed, reported) and the same plan is carried out, not the file processed again.
    out = data / plan["dir"]
    stage = tmp_path / "stage"
    (stage / out.name).mkdir(parents=True)
    (stage / out.name / temp_name(plan["main"], job["id"])).symlink_to("/nonexistent")
    blocker.unlink()
    os.rename(stage, blocker)
    rows = a.wait_final(2)
    assert any(r["path"].endswith(temp_name(plan["main"], job["id"])) for r in _events(a, "inbox.link_refused"))
    assert not _events(a, "requeue")
    job = rows[0]
    assert job["attempts"] == 1 and json.loads(job["plan"]) == plan
    assert (out / "再送.txt").read_bytes() == body
    assert sorted(os.listdir(out)) == ["再送.txt", "再送.txt.cdr.json", "再送.txt.報告.txt", "再送_テキスト.txt"]
    assert json.loads(job["delivered"]) == [f["name"] for f in plan["files"]]
    n = len(_events(a, "deliver.retry"))
    events = _audit_events(a, job["id"])
    assert events.count("delivery.failed") == 1 and events.count("delivery.resumed") == 1
    assert events.count("delivery") == 1 and events.count("verdict") == 1
    assert len(_events(a, "deliver.resumed")) == 1
    status, text = a.get("/metrics")
    assert "transfer_delivery_retry_waiting 0.0" in text
    status, health = a.get("/healthz")
    assert status == 200 and json.loads(health)["status"] == "ok" and "notes" not in json.loads(health)

    # A delivery that keeps failing does not hold up SIGTERM; the plan stays committed.
    blocker2 = data / "inbox" / "soumu"
    blocker2.write_bytes(b"")
    drop(data / "dropbox" / "soumu" / "会議録.txt", "会議録\n".encode())
    _until(lambda: len(_events(a, "deliver.retry")) >= n + 4 and a.rows()[-1]["status"] == "delivering",
           "soumu delivery not failing")
    t0 = time.monotonic()
    assert a.term() == 0
    assert time.monotonic() - t0 < 10
    assert _events(a, "deliver.retry_abandoned")
    last = a.rows()[-1]
    assert last["status"] == "delivering" and last["name"] == "会議録.txt"
    # Restarted while still broken: the replay at start fails and the running service keeps retrying.
    a.start()
    _until(lambda: len(_events(a, "deliver.retry")) >= 2, "no retries after restart")
    assert _events(a, "recover.failed") and a.rows()[-1]["status"] == "delivering"
    blocker2.unlink()
    a.wait_final(3)
    assert a.term() == 0
    assert _audit_events(a, last["id"]).count("delivery.resumed") == 1
    jobs = check_consistency(data)  # includes `transfer-agent audit verify`
    assert [j["attempts"] for j in jobs] == [1, 1, 1]


def test_identical_content_does_not_wait_for_another_channels_broken_inbox(tmp_path: Path) -> None:
    """A job waiting for a delivery retry holds its result cache, but identical content dropped on a
    healthy channel reuses the committed result instead of waiting for the broken inbox."""
    data = tmp_path / "var"
    a = Agent(data, stable=0.3, extra=RETRY_FAST).start()
    try:
        (data / "inbox" / "kokuho").write_bytes(b"not a folder")
        body = "同じ内容の申請書\n".encode()
        buf = io.BytesIO()  # a PPAP zip without its password: blocked, and never answered from the cache
        with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as z:
            z.setpassword(b"pw")
            z.writestr("x.txt", "秘密\n")
        drop(data / "dropbox" / "kokuho" / "a.txt", body)
        drop(data / "dropbox" / "kokuho" / "a.zip", buf.getvalue())
        _until(lambda: len({r["job_id"] for r in _events(a, "deliver.retry")}) >= 2, "no delivery retries logged")
        drop(data / "dropbox" / "soumu" / "b.txt", body)
        drop(data / "dropbox" / "soumu" / "b.zip", buf.getvalue())
        drop(data / "dropbox" / "soumu" / "c.txt", b"different\n")
        _until(lambda: {r["name"]: r["status"] for r in a.rows() if r["name"].startswith(("b.", "c."))}
               == {"b.txt": "delivered", "b.zip": "blocked", "c.txt": "delivered"},
               "identical content waited for the other channel's inbox", timeout=20)
        rows = {r["name"]: r for r in a.rows()}
        assert rows["a.txt"]["status"] == rows["a.zip"]["status"] == "delivering"
        assert rows["b.txt"]["reused_from"] == rows["a.txt"]["id"] and rows["b.zip"]["reused_from"] is None
        [day] = (data / "inbox" / "soumu").iterdir()
        assert (day / "b.txt").read_bytes() == body and (day / "b.zip.blocked.json").is_file()
        (data / "inbox" / "kokuho").unlink()
        a.wait_final(5)
    finally:
        a.term()
    jobs = check_consistency(data)
    assert {j["name"]: j["status"] for j in jobs} == {"a.txt": "delivered", "a.zip": "blocked", "b.txt": "delivered",
                                                      "b.zip": "blocked", "c.txt": "delivered"}

