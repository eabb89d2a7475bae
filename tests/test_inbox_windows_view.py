"""The inbox as a clerk sees it on the Windows share, with extensions hidden (Explorer's default): no two
entries look alike, a text rendition never passes for the document, and each file has a Japanese report
that Notepad opens (UTF-8 with a BOM, CRLF)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from cdr.names import shown_name, text_rendition_name
from tests.test_appliance import EXE, Agent, drop
from transfer_agent import clock
from transfer_agent.report_text import WIDTH, _cols

# What Explorer shows as the type of a name (the icon and the 種類 column), by its last extension.
_TYPES = {".docx": "Word", ".docm": "Word", ".pdf": "PDF", ".txt": "テキスト", ".json": "JSON", ".csv": "CSV",
          ".xlsx": "Excel", ".exe": "アプリケーション", ".zip": "圧縮"}
_DOCUMENT = tuple(k for k in _TYPES if k not in (".txt", ".json"))


def _explorer(folder: Path) -> list[tuple[str, str]]:
    """(name shown, type) of every entry Explorer lists: dot-names are hidden on the share (Samba)."""
    out = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        ext = p.suffix.lower() if p.is_file() else ""
        out.append((shown_name(p.name) if p.is_file() else p.name.casefold(), _TYPES.get(ext, "ファイル")))
    return out


def test_inbox_entries_never_look_alike(tmp_path, corpus):
    base, ooxml = corpus("ooxml")
    docm = base / next(rel for rel in ooxml if rel.endswith("hostile/vba.docm"))
    ibase, images = corpus("image")
    cut_png = ibase / next(rel for rel in images if rel.endswith("hostile/idat_cut.png"))
    abase, archives = corpus("archive")
    exe_zip = abase / next(rel for rel in archives if rel.endswith("hostile/exe_member.zip"))
    text_only = tmp_path / "text-only.toml"
    shutil.copy(Path(__file__).resolve().parent.parent / "rules" / "text-only.toml", text_only)
    data = tmp_path / "var"
    a = Agent(data, extra=f'[channels."テキスト課"]\npolicy = "{text_only}"\n').start()
    try:
        box = data / "dropbox" / "kokuho"
        # A sender's names that would collide with ours, and one document in three formats.
        drop(box / "申請書.docm", docm.read_bytes())
        drop(box / "申請書.txt", "本文です。\n".encode())
        drop(box / "申請書.csv", "氏名,金額\n山田,=1+1\n".encode())
        drop(box / "申請書_テキスト.txt", "送信者が付けた名前です。\n".encode())
        drop(box / "申請書.docx.報告.txt", "偽の報告です。\n".encode())
        drop(box / "REPORT.txt", b"upper\n")
        drop(box / "report.txt", b"lower\n")
        drop(box / "請求書.exe", EXE)
        drop(box / "写真.png", cut_png.read_bytes())  # blocked with a long reason holding English words
        drop(box / "資料.rar", b"Rar!\x1a\x07\x00" + b"\0" * 64)
        drop(data / "dropbox" / "テキスト課" / "通知.docm", docm.read_bytes())
        drop(box / "添付一式.zip", exe_zip.read_bytes())  # members listed in the report, one blocked
        a.wait_final(12)
        folders = [data / "inbox" / "kokuho" / clock.day(), data / "inbox" / "テキスト課" / clock.day()]
        for folder in folders:
            view = _explorer(folder)
            names = [n for n, _t in view]
            assert len(names) == len(set(names)), f"entries that look alike in {folder}: {view}"
            # Nothing of ours shows as a document it is not: a text rendition is 申請書_テキスト, never 申請書.docx.
            for p in folder.iterdir():
                if p.suffix == ".txt":
                    assert not shown_name(p.name).endswith(_DOCUMENT), p.name
        kokuho = folders[0]
        listing = sorted(p.name for p in kokuho.iterdir())
        # The .docm arrives as a Word document without macros; its reports and text rendition beside it.
        [docx] = [n for n in listing if n.endswith(".docx")]
        assert docx.startswith("申請書")
        assert {docx + ".cdr.json", docx + ".報告.txt", text_rendition_name(docx)} <= set(listing), listing
        # The sender's fake report keeps its text but cannot pass for ours.
        assert "申請書.docx.報告.txt" not in [n for n in listing if (kokuho / n).read_bytes() == "偽の報告です。\n".encode()]
        assert not (kokuho / "請求書.exe").exists() and (kokuho / "請求書.exe.報告.txt").is_file()
        # A program's original is never released ([release] never): its report does not invite a request.
        exe_report = (kokuho / "請求書.exe.報告.txt").read_text("utf-8-sig")
        assert "原本を取り出せません" in exe_report and "原本の取り出しを申請" not in exe_report, exe_report
        assert "原本の取り出しを申請" in (kokuho / (docx + ".報告.txt")).read_text("utf-8-sig")
        # Every report opens in Notepad: UTF-8 with a BOM and CRLF only.
        reports = [p for p in kokuho.iterdir() if p.name.endswith(".報告.txt")]
        assert len(reports) >= 8
        for p in reports:
            raw = p.read_bytes()
            assert raw.startswith(b"\xef\xbb\xbf") and b"\n" not in raw.replace(b"\r\n", b""), p.name
            lines = raw.decode("utf-8-sig").split("\r\n")
            # Notepad without word wrap: lines of about 40 full-width characters, never one that begins
            # with 。、） (kinsoku), and English words of a reason never split across lines.
            for line in lines:
                assert _cols(line) <= 2 * WIDTH + 2 or p.stem in line, (p.name, line)
                first = line.lstrip("　 ")[:1]
                assert not first or first not in "。、，．）」』】！？：", (p.name, line)
            notice = p.with_name(p.name.replace(".報告.txt", ".blocked.json"))
            if notice.exists():
                reason = json.loads(notice.read_text("utf-8")).get("reason_ja") or ""
                for word in re.findall(r"[!-~]+", reason):
                    assert any(word in line for line in lines), (p.name, word, lines)
        assert "■ 中身" in (kokuho / "添付一式.zip.報告.txt").read_text("utf-8-sig")
        assert any(re.search(r"[A-Za-z]{4,} [a-z]{4,}", json.loads(n.read_text("utf-8")).get("reason_ja") or "")
                   for n in kokuho.glob("写真*.blocked.json")), "the PNG's reason should hold English words"
        # Text only: the findings are said to be the original's, the delivered file being text alone.
        [text_report] = [p for p in folders[1].iterdir() if p.name.endswith(".報告.txt")]
        assert "配送したのは文字だけのファイル" in text_report.read_text("utf-8-sig")
        # Text only: the delivered file itself is named as a text rendition.
        assert sorted(p.name for p in folders[1].iterdir() if not p.name.endswith((".json", ".報告.txt"))) == \
            ["通知_テキスト.txt"]
        print("\n" + "\n".join(f"  {n}  [{t}]" for n, t in _explorer(kokuho)), file=sys.stderr)
    finally:
        if a.proc.poll() is None:
            a.kill()


def test_cli_text_renditions_are_named_the_same_way(tmp_path):
    src = tmp_path / "in"
    drop(src / "申請書.txt", "本文です。\n".encode())
    drop(src / "sub" / "議事録.csv", b"a,b\n1,2\n")
    out, text = tmp_path / "out", tmp_path / "text"
    r = subprocess.run([str(Path(sys.executable).parent / "cdr"), "sanitize", str(src), "-o", str(out), "--text",
                        str(text)], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    assert sorted(p.relative_to(text).as_posix() for p in text.rglob("*.txt")) == \
        ["sub/議事録_テキスト.txt", "申請書_テキスト.txt"]
