"""True-type detection by content: libmagic plus the structural checks it cannot make.

The name is only used to say what the sender claimed; the type comes from the bytes.
"""
from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from .model import Detection, Threat

HEAD = 65536


@dataclass(frozen=True)
class Kind:
    mime: str
    family: str
    label: str
    extensions: tuple[str, ...]  # acceptable extensions; the first is canonical


def _k(mime: str, family: str, label: str, *exts: str) -> Kind:
    return Kind(mime, family, label, exts)


W = "application/vnd.openxmlformats-officedocument.wordprocessingml"
S = "application/vnd.openxmlformats-officedocument.spreadsheetml"
P = "application/vnd.openxmlformats-officedocument.presentationml"
KINDS: dict[str, Kind] = {k.mime: k for k in [
    _k("application/pdf", "pdf", "PDF document", ".pdf"),
    _k(f"{W}.document", "ooxml", "Word document", ".docx"),
    _k("application/vnd.ms-word.document.macroEnabled.12", "ooxml", "Word document (macro-enabled)", ".docm"),
    _k(f"{W}.template", "ooxml", "Word template", ".dotx"),
    _k("application/vnd.ms-word.template.macroEnabled.12", "ooxml", "Word template (macro-enabled)", ".dotm"),
    _k(f"{S}.sheet", "ooxml", "Excel workbook", ".xlsx"),
    _k("application/vnd.ms-excel.sheet.macroEnabled.12", "ooxml", "Excel workbook (macro-enabled)", ".xlsm"),
    _k(f"{S}.template", "ooxml", "Excel template", ".xltx"),
    _k("application/vnd.ms-excel.template.macroEnabled.12", "ooxml", "Excel template (macro-enabled)", ".xltm"),
    _k("application/vnd.ms-excel.sheet.binary.macroEnabled.12", "ooxml", "Excel binary workbook", ".xlsb"),
    _k(f"{P}.presentation", "ooxml", "PowerPoint presentation", ".pptx"),
    _k("application/vnd.ms-powerpoint.presentation.macroEnabled.12", "ooxml",
       "PowerPoint presentation (macro-enabled)", ".pptm"),
    _k(f"{P}.template", "ooxml", "PowerPoint template", ".potx"),
    _k("application/vnd.ms-powerpoint.template.macroEnabled.12", "ooxml",
       "PowerPoint template (macro-enabled)", ".potm"),
    _k(f"{P}.slideshow", "ooxml", "PowerPoint slide show", ".ppsx"),
    _k("application/vnd.ms-powerpoint.slideshow.macroEnabled.12", "ooxml",
       "PowerPoint slide show (macro-enabled)", ".ppsm"),
    _k("application/x-ooxml-encrypted", "ooxml", "password-protected Office document",
       ".docx", ".xlsx", ".pptx", ".docm", ".xlsm", ".pptm"),
    _k("application/msword", "legacy_office", "Word 97-2003 document", ".doc", ".dot"),
    _k("application/vnd.ms-excel", "legacy_office", "Excel 97-2003 workbook", ".xls", ".xlt"),
    _k("application/vnd.ms-powerpoint", "legacy_office", "PowerPoint 97-2003 presentation",
       ".ppt", ".pot", ".pps"),
    _k("application/rtf", "rtf", "Rich Text Format document", ".rtf", ".doc"),
    _k("application/vnd.oasis.opendocument.text", "odf", "OpenDocument text", ".odt"),
    _k("application/vnd.oasis.opendocument.spreadsheet", "odf", "OpenDocument spreadsheet", ".ods"),
    _k("application/vnd.oasis.opendocument.presentation", "odf", "OpenDocument presentation", ".odp"),
    _k("application/x-js-taro", "ichitaro", "Ichitaro document (一太郎)", ".jtd", ".jtdc", ".jtt"),
    _k("application/vnd.fujixerox.docuworks", "docuworks", "DocuWorks document", ".xdw", ".xbd"),
    _k("image/jpeg", "image", "JPEG image", ".jpg", ".jpeg", ".jpe", ".jfif"),
    _k("image/png", "image", "PNG image", ".png"),
    _k("image/gif", "image", "GIF image", ".gif"),
    _k("image/bmp", "image", "BMP image", ".bmp", ".dib"),
    _k("image/tiff", "image", "TIFF image", ".tif", ".tiff"),
    _k("image/webp", "image", "WebP image", ".webp"),
    _k("image/svg+xml", "svg", "SVG image", ".svg"),
    _k("application/zip", "archive", "ZIP archive", ".zip"),
    _k("application/x-tar", "archive", "tar archive", ".tar"),
    _k("application/gzip", "archive", "gzip archive", ".gz", ".tgz", ".tar.gz"),
    _k("application/x-bzip2", "archive", "bzip2 archive", ".bz2", ".tbz2", ".tar.bz2"),
    _k("application/x-xz", "archive", "xz archive", ".xz", ".txz", ".tar.xz"),
    _k("application/x-7z-compressed", "archive", "7-Zip archive", ".7z"),
    _k("application/vnd.rar", "archive", "RAR archive", ".rar"),
    # Not ".xml": Office opens Word/Excel 2003 XML (macros, remote templates) by that name; as .txt it is inert.
    _k("text/plain", "text", "plain text", ".txt", ".text", ".log", ".md", ".ini", ".cfg", ".conf", ".json",
       ".csv", ".tsv"),
    _k("text/csv", "csv", "CSV text", ".csv", ".tsv", ".txt"),
    _k("text/html", "html", "HTML document", ".html", ".htm", ".xhtml"),
    _k("application/vnd.microsoft.portable-executable", "executable", "Windows executable", ".exe"),
    _k("application/x-elf", "executable", "ELF executable", ""),
    _k("application/x-mach-binary", "executable", "Mach-O executable", ""),
    _k("application/java-vm", "executable", "Java class file", ".class"),
    _k("application/x-msi", "executable", "Windows Installer package", ".msi"),
    _k("application/x-ms-shortcut", "executable", "Windows shortcut", ".lnk"),
    _k("application/x-mswinurl", "executable", "Internet shortcut", ".url"),
    _k("application/x-iso9660-image", "executable", "disk image (ISO)", ".iso"),
    _k("application/x-vhd", "executable", "virtual disk image (VHD/VHDX)", ".vhd", ".vhdx"),
    _k("application/x-raw-disk-image", "executable", "disk image", ".img"),
    _k("application/x-apple-diskimage", "executable", "disk image (DMG)", ".dmg"),
    _k("application/onenote", "executable", "OneNote section", ".one"),
    _k("application/vnd.ms-htmlhelp", "executable", "compiled HTML help", ".chm"),
    _k("application/hta", "executable", "HTML application", ".hta"),
    _k("text/x-script", "executable", "script", ".js", ".vbs", ".ps1", ".bat", ".cmd", ".wsf", ".sh"),
    _k("message/rfc822", "mail", "e-mail message", ".eml"),
    _k("application/vnd.ms-outlook", "mail", "Outlook message", ".msg"),
    _k("application/vnd.ms-tnef", "mail", "Outlook TNEF attachment (winmail.dat)", ".dat", ".tnef"),
    _k("application/octet-stream", "unknown", "unknown data", ""),
]}

# What a clerk reads in Japanese reasons; KINDS labels stay English for the report and the logs.
_LABEL_JA = {
    "pdf": "PDF", "legacy_office": "旧形式のOffice文書", "rtf": "RTF文書", "odf": "OpenDocument文書",
    "ichitaro": "一太郎文書", "docuworks": "DocuWorks文書", "image": "画像", "svg": "SVG画像", "archive": "圧縮ファイル",
    "text": "テキスト", "csv": "CSV", "html": "HTML文書", "ooxml": "Office文書", "mail": "メール",
}
_MIME_JA = {
    f"{W}.document": "Word文書", "application/vnd.ms-word.document.macroEnabled.12": "マクロ付きWord文書",
    f"{S}.sheet": "Excelブック", "application/vnd.ms-excel.sheet.macroEnabled.12": "マクロ付きExcelブック",
    "application/vnd.ms-excel.sheet.binary.macroEnabled.12": "Excelバイナリブック（xlsb）",
    f"{P}.presentation": "PowerPointプレゼンテーション", "application/x-ooxml-encrypted": "パスワード付きOffice文書",
    "application/msword": "Word 97-2003文書", "application/vnd.ms-excel": "Excel 97-2003ブック",
    "application/vnd.ms-powerpoint": "PowerPoint 97-2003プレゼンテーション", "application/vnd.rar": "RAR圧縮ファイル",
    "application/vnd.microsoft.portable-executable": "Windowsの実行ファイル", "application/x-elf": "実行ファイル（ELF）",
    "application/x-mach-binary": "実行ファイル（Mach-O）", "application/java-vm": "Javaのプログラム",
    "application/x-msi": "Windowsのインストーラー", "application/x-ms-shortcut": "Windowsのショートカット",
    "application/x-mswinurl": "インターネットショートカット", "application/x-iso9660-image": "ディスクイメージ（ISO）",
    "application/x-vhd": "仮想ディスク（VHD）", "application/x-raw-disk-image": "ディスクイメージ",
    "application/x-apple-diskimage": "ディスクイメージ（DMG）", "application/onenote": "OneNoteのセクション",
    "application/vnd.ms-htmlhelp": "HTMLヘルプ（CHM）", "application/hta": "HTMLアプリケーション（HTA）",
    "text/x-script": "スクリプト", "application/vnd.ms-outlook": "Outlookのメッセージ",
    "application/vnd.ms-tnef": "Outlookの添付形式（winmail.dat）",
    "application/octet-stream": "不明なデータ",
}


def label_ja(mime: str, label: str) -> str:
    """The Japanese name of a detected type, for reasons a clerk reads; the English label otherwise."""
    if mime in _MIME_JA:
        return _MIME_JA[mime]
    kind = KINDS.get(mime)
    return _LABEL_JA.get(kind.family, label) if kind else label


# Extensions Windows runs or mounts: a file claiming one is blocked whatever it holds.
DANGEROUS_EXTENSIONS = {
    ".exe", ".dll", ".com", ".scr", ".pif", ".cpl", ".msi", ".msp", ".msc", ".sys", ".drv", ".ocx",
    ".js", ".jse", ".vbs", ".vbe", ".wsf", ".wsh", ".wsc", ".ps1", ".psm1", ".psd1", ".bat", ".cmd",
    ".hta", ".lnk", ".url", ".scf", ".iso", ".img", ".vhd", ".vhdx", ".dmg", ".one", ".onepkg",
    ".chm", ".jar", ".reg", ".inf", ".application", ".appref-ms", ".gadget", ".settingcontent-ms",
    ".library-ms", ".sh", ".py", ".pyw", ".pl", ".rb", ".apk", ".xll", ".xlam", ".ppam", ".iqy",
    ".slk", ".sct", ".msix", ".appx", ".appinstaller",
}

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_TNEF = b"\x78\x9f\x3e\x22"
_ONENOTE = bytes.fromhex("e4525c7b8cd8a74daeb15378d02996d3")
_LNK = bytes.fromhex("4c0000000114020000000000c000000000000046")
_MACHO = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
# (leading bytes, MIME type, reason), tried in order. Programs come first, whatever else the file holds;
# media signatures only after the container checks (OLE, ZIP, RTF, PDF) in detect().
_PROGRAMS = (
    (b"MZ", "application/vnd.microsoft.portable-executable", "MZ header (DOS/PE executable)"),
    (b"\x7fELF", "application/x-elf", "ELF header"),
    (_MACHO, "application/x-mach-binary", "Mach-O header"),
    (b"\xca\xfe\xba\xbe", "application/java-vm", "Java class / Mach-O fat header (CAFEBABE)"),
    (_LNK, "application/x-ms-shortcut", "Shell link header"),
    (_ONENOTE, "application/onenote", "OneNote section GUID"),
    (b"ITSF", "application/vnd.ms-htmlhelp", "CHM header (ITSF)"),
)
_MEDIA = (
    (b"Rar!\x1a\x07", "application/vnd.rar", "RAR signature"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed", "7-Zip signature"),
    (b"\xff\xd8\xff", "image/jpeg", "JPEG SOI marker"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "PNG signature"),
    ((b"GIF87a", b"GIF89a"), "image/gif", "GIF signature"),
    ((b"II*\x00", b"MM\x00*"), "image/tiff", "TIFF header"),
)


def _signature(head: bytes, table: tuple, reasons: list[str]) -> str | None:
    for prefix, mime, why in table:
        if head.startswith(prefix):
            reasons.append(why)
            return mime
    return None


# (literals, pattern, reason): every match of a pattern holds one of its literals (lower-cased), so a probe
# holding none is not searched. The case-insensitive patterns without a literal prefix scan 8 KB in about a
# millisecond; the `in` tests take microseconds. Tried in order: the first pattern that matches names the reason.
_SCRIPT_PATTERNS = [
    ((b"hta:application",), re.compile(rb"(?i)<\s*hta:application"),
     "HTML application markup (<hta:application>)"),
    ((b"job",), re.compile(rb"(?i)<\s*job[\s>][\s\S]{0,400}<\s*script\s+language"),
     "Windows Script File (<job><script>)"),
    ((b"wscript.", b"createobject"),
     re.compile(rb"(?i)\bwscript\.(shell|createobject|echo|sleep)|createobject\s*\(\s*\"(wscript|scripting|"
                rb"msxml2|adodb|shell\.application)"), "Windows Script Host calls"),
    ((b"invoke-expression", b"iex", b"-encodedcommand", b"new-object", b"downloadstring", b"start-process"),
     re.compile(rb"(?i)(invoke-expression|\biex\s*\(|-encodedcommand|new-object\s+net\.webclient|"
                rb"downloadstring\s*\(|start-process\s)"), "PowerShell commands"),
    ((b"echo",), re.compile(rb"(?i)^\s*@?echo\s+off\b"), "batch file (@echo off)"),
]
_OOXML_MAIN = {
    f"{W}.document.main+xml": f"{W}.document",
    "application/vnd.ms-word.document.macroEnabled.main+xml": "application/vnd.ms-word.document.macroEnabled.12",
    f"{W}.template.main+xml": f"{W}.template",
    "application/vnd.ms-word.template.macroEnabledTemplate.main+xml":
        "application/vnd.ms-word.template.macroEnabled.12",
    f"{S}.sheet.main+xml": f"{S}.sheet",
    "application/vnd.ms-excel.sheet.macroEnabled.main+xml": "application/vnd.ms-excel.sheet.macroEnabled.12",
    f"{S}.template.main+xml": f"{S}.template",
    "application/vnd.ms-excel.template.macroEnabled.main+xml":
        "application/vnd.ms-excel.template.macroEnabled.12",
    "application/vnd.ms-excel.sheet.binary.macroEnabled.main":
        "application/vnd.ms-excel.sheet.binary.macroEnabled.12",
    f"{P}.presentation.main+xml": f"{P}.presentation",
    "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml":
        "application/vnd.ms-powerpoint.presentation.macroEnabled.12",
    f"{P}.template.main+xml": f"{P}.template",
    "application/vnd.ms-powerpoint.template.macroEnabled.main+xml":
        "application/vnd.ms-powerpoint.template.macroEnabled.12",
    f"{P}.slideshow.main+xml": f"{P}.slideshow",
    "application/vnd.ms-powerpoint.slideshow.macroEnabled.main+xml":
        "application/vnd.ms-powerpoint.slideshow.macroEnabled.12",
}
_MAGIC_MAP = {
    "application/x-dosexec": "application/vnd.microsoft.portable-executable",
    "application/x-msdownload": "application/vnd.microsoft.portable-executable",
    "application/x-executable": "application/x-elf",
    "application/x-sharedlib": "application/x-elf",
    "application/x-pie-executable": "application/x-elf",
    "application/x-object": "application/x-elf",
    "application/x-mach-binary": "application/x-mach-binary",
    "image/x-ms-bmp": "image/bmp",
    "application/x-gzip": "application/gzip",
    "application/x-rar": "application/vnd.rar",
    "application/x-rar-compressed": "application/vnd.rar",
    "text/rtf": "application/rtf",
    "application/x-iso9660-image": "application/x-iso9660-image",
    "application/x-ms-shortcut": "application/x-ms-shortcut",
    "text/x-shellscript": "text/x-script",
    "text/x-python": "text/x-script",
    "text/x-perl": "text/x-script",
    "text/x-ruby": "text/x-script",
    "application/x-shellscript": "text/x-script",
    "application/javascript": "text/x-script",
    "text/javascript": "text/x-script",
    "application/x-msi": "application/x-msi",
    "application/vnd.ms-htmlhelp": "application/vnd.ms-htmlhelp",
    "application/x-chm": "application/vnd.ms-htmlhelp",
    "image/svg": "image/svg+xml",
    "text/xml": "text/plain",
    "application/xml": "text/plain",
    "application/json": "text/plain",
    "text/x-c": "text/plain",
    "text/x-c++": "text/plain",
    "text/x-java": "text/plain",
    "text/x-makefile": "text/plain",
    "text/x-tex": "text/plain",
    "text/x-diff": "text/plain",
    "text/x-asm": "text/plain",
    "text/x-msdos-batch": "text/x-script",
    "application/x-bat": "text/x-script",
    "message/rfc822": "text/plain",  # our own header check (formats._mailsniff) decides what is a mail
    "message/news": "text/plain",
}


def _suffix(name: str) -> str:
    n = name.lower()
    for double in (".tar.gz", ".tar.bz2", ".tar.xz"):
        if n.endswith(double):
            return double
    return Path(n).suffix


def _libmagic(head: bytes) -> tuple[str, str]:
    """MIME type and description; the description (a second libmagic pass) only when the MIME
    type alone says nothing (it tells boot sectors and the like apart)."""
    try:
        import magic
    except ImportError:  # pragma: no cover - libmagic is a hard dependency
        return "application/octet-stream", "libmagic unavailable"
    try:
        mime = magic.from_buffer(head, mime=True)
        desc = magic.from_buffer(head) if mime == "application/octet-stream" else mime
        return mime, desc
    except Exception as exc:  # libmagic can choke on odd input; structure checks still run
        return "application/octet-stream", f"libmagic error: {exc}"


def _ooxml_or_odf(path: Path, reasons: list[str]) -> str | None:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if "[Content_Types].xml" in names:
                with zf.open("[Content_Types].xml") as m:  # only what is needed: the member may be a bomb
                    ct = m.read(2_000_000).decode("utf-8", "replace")
                for main, mime in _OOXML_MAIN.items():
                    if f'ContentType="{main}"' in ct or f"ContentType='{main}'" in ct:
                        reasons.append(f"OOXML package; main part content type {main}")
                        return mime
                reasons.append("OOXML package without a known main part")
                return "application/zip"
            if names and names[0] == "mimetype":
                with zf.open("mimetype") as m:
                    declared = m.read(200).decode("ascii", "replace").strip()
                if declared in KINDS and KINDS[declared].family == "odf":
                    reasons.append(f"ODF package; mimetype member says {declared}")
                    return declared
                reasons.append(f"ODF-like package with unsupported mimetype {declared!r}")
                return "application/zip"
            lower = [n.lower() for n in names]
            if "meta-inf/manifest.mf" in lower and any(n.endswith(".class") for n in lower):
                reasons.append("Java archive (META-INF/MANIFEST.MF and .class members)")
                return "application/java-vm"
            if "androidmanifest.xml" in lower and "classes.dex" in lower:
                reasons.append("Android package")
                return "application/java-vm"
            if any(n.endswith(".one") or n == "appxmanifest.xml" for n in lower):
                reasons.append("ZIP holding OneNote or app package content")
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError, NotImplementedError, EOFError, zlib.error) as exc:
        reasons.append(f"ZIP signature but unreadable directory ({exc.__class__.__name__})")
    return "application/zip"


def _ole(path: Path, reasons: list[str]) -> str:
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            entries = {"/".join(e) for e in ole.listdir(streams=True, storages=True)}
            top = {e.split("/")[0] for e in entries}
            clsid = (ole.root.clsid or "").upper() if ole.root else ""
    except Exception as exc:
        reasons.append(f"OLE2 signature but unreadable ({exc.__class__.__name__})")
        return "application/octet-stream"
    reasons.append("OLE2 compound file; streams: " + ", ".join(sorted(top)[:8]))
    if "EncryptionInfo" in top and "EncryptedPackage" in top:
        return "application/x-ooxml-encrypted"
    if clsid in ("000C1084-0000-0000-C000-000000000046", "000C1086-0000-0000-C000-000000000046"):
        return "application/x-msi"
    if any(e.startswith("__substg1.0_") for e in top) or "__properties_version1.0" in top:
        return "application/vnd.ms-outlook"
    if "WordDocument" in top:
        return "application/msword"
    if "Workbook" in top or "Book" in top:
        return "application/vnd.ms-excel"
    if "PowerPoint Document" in top:
        return "application/vnd.ms-powerpoint"
    # Ichitaro 8+: DocumentText + \x04JSRV_* streams; .jtdc keeps the document in JSCompDocument.
    if any(e.startswith(("JSRV_", "\x04JSRV_", "DocumentText", "JSCompDocument", "JSDOC")) or "Ichitaro" in e
           or "Taro" in e for e in top) \
            or clsid.startswith(("90B2E3D7", "FCFE4D3A")):
        return "application/x-js-taro"
    if "\x05SummaryInformation" in top and len(top) <= 3:
        return "application/octet-stream"
    return "application/octet-stream"


def _is_disk_image(f, size: int, reasons: list[str]) -> str | None:
    for off in (0x8001, 0x8801, 0x9001):
        if size > off + 5:
            f.seek(off)
            if f.read(5) == b"CD001":
                reasons.append(f"ISO 9660 volume descriptor at 0x{off:x}")
                return "application/x-iso9660-image"
    f.seek(0)
    start = f.read(8)
    if start == b"conectix" or start == b"vhdxfile":
        reasons.append("virtual disk signature at start")
        return "application/x-vhd"
    if size >= 512:
        f.seek(size - 512)
        tail = f.read(512)
        if tail.startswith(b"conectix"):
            reasons.append("VHD footer")
            return "application/x-vhd"
        if tail.startswith(b"koly"):
            reasons.append("DMG trailer (koly)")
            return "application/x-apple-diskimage"
    return None


# Control bytes that make a sample binary: below 32 except tab, LF, VT, FF, CR, 26 (DOS end of file) and ESC.
# translate() deletes every other byte, so what is left is counted in C instead of a loop over 8 KB in Python.
_NOT_BAD_CONTROL = bytes(b for b in range(256) if not (b < 32 and b not in (9, 10, 11, 12, 13, 26, 27)))


def _looks_text(head: bytes) -> bool:
    if not head:
        return True
    if b"\x00" in head[:8192]:
        return head.startswith((b"\xff\xfe", b"\xfe\xff"))
    sample = head[:8192]
    ctrl = len(sample.translate(None, _NOT_BAD_CONTROL))
    return ctrl <= len(sample) * 0.01


_SVG_TAG = re.compile(rb"<svg[\s>]")
_HTML_TAG = re.compile(rb"<html[\s>]")
_HTML_MARKUP = re.compile(rb"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]|<script[\s>]|<iframe[\s>]")


def _text_kind(head: bytes, claimed: str, reasons: list[str]) -> str:
    probe = head[:8192]
    if probe.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Leniently, and whole code units only: whether the file ends on an odd byte or holds a broken
        # surrogate must not change what its markup says (a truncated UTF-16 page is still HTML).
        probe = probe[:len(probe) & ~1].decode("utf-16", "replace").encode("utf-8", "replace")
    stripped = probe.lstrip(b"\xef\xbb\xbf \t\r\n")
    low = stripped[:4096].lower()
    if stripped.startswith(b"#!"):
        reasons.append("script interpreter line (#!)")
        return "text/x-script"
    lowered = probe.lower()
    for literals, pattern, why in _SCRIPT_PATTERNS:
        if any(lit in lowered for lit in literals) and pattern.search(probe):
            reasons.append(f"script content: {why}")
            return "application/hta" if "hta" in why.lower() else "text/x-script"
    if low.startswith(b"[internetshortcut]") or b"\n[internetshortcut]" in low[:200]:
        reasons.append("Internet shortcut section [InternetShortcut]")
        return "application/x-mswinurl"
    if _SVG_TAG.search(low[:2048]) and (low.startswith(b"<?xml") or low.startswith(b"<svg")
                                        or low.startswith(b"<!doctype svg") or b"<svg" in low[:512]):
        if not _HTML_TAG.search(low[:2048]):
            reasons.append("XML document with an <svg> root")
            return "image/svg+xml"
    if _HTML_MARKUP.search(low):
        reasons.append("HTML markup in text")
        return "text/html"
    if claimed in (".csv", ".tsv"):
        reasons.append("text content with a CSV/TSV name")
        return "text/csv"
    return "text/plain"


def detect(path: str | Path, name: str | None = None) -> Detection:
    """Decide the true type of the file at `path`. `name` is what the sender called it."""
    path = Path(path)
    name = name or path.name
    claimed = _suffix(name)
    reasons: list[str] = []
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(HEAD)
        mime = _signature(head, _PROGRAMS, reasons)
        if mime is None:
            if head.startswith(_OLE):
                mime = _ole(path, reasons)
            elif head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
                mime = _ooxml_or_odf(path, reasons)
            elif head.lstrip()[:5].lower() == b"{\\rtf" or head[:5] == b"{\\rt0":
                mime = "application/rtf"
                reasons.append("RTF header {\\rtf")
            elif b"%PDF-" in head[:1024]:  # before the media signatures: a picture with a PDF inside is a PDF
                mime = "application/pdf"
                off = head.find(b"%PDF-")
                reasons.append("%PDF- header" + (f" after {off} bytes of leading junk" if off else ""))
            elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                mime = "image/webp"
                reasons.append("RIFF WEBP header")
            elif head[:4] in (b"XDW\x00", b"XDWF") or head.startswith((b"<XDW", b"%XDW")):
                mime = "application/vnd.fujixerox.docuworks"
                reasons.append("DocuWorks signature")
            elif head[:4] == _TNEF:
                mime = "application/vnd.ms-tnef"
                reasons.append("TNEF signature (winmail.dat)")
            else:
                mime = _signature(head, _MEDIA, reasons)
        if mime is None:
            mime = _is_disk_image(f, size, reasons)
    text = mime is None and _looks_text(head)  # asked twice below; the answer is the same
    if text:
        from .formats._mailsniff import sniff

        why = sniff(head)
        if why:
            mime = "message/rfc822"
            reasons.append(why)
    if mime is None:
        lm, desc = _libmagic(head)
        reasons.append(f"libmagic: {desc}")
        if lm == "application/x-dosexec":
            # No MZ header here (_PROGRAMS took those): a DOS .COM guess from the first bytes (0x8C is 見
            # in Shift_JIS). Judged as text or unknown instead; a real .COM is binary, and any name
            # ending in .com is refused anyway.
            lm = "application/octet-stream"
        lm = _MAGIC_MAP.get(lm, lm)
        if lm.startswith("text/") or lm in ("application/octet-stream", "inode/x-empty", "application/x-empty"):
            if text:
                lm = _text_kind(head, claimed, reasons)
            elif lm.startswith("text/"):
                lm = "application/octet-stream"
        if lm == "application/x-tar" or (len(head) > 262 and head[257:262] == b"ustar"):
            lm = "application/x-tar"
        if "boot sector" in desc.lower() and "DOS/MBR" in desc:
            lm = "application/x-raw-disk-image"
        mime = lm if lm in KINDS else "application/octet-stream"
        if mime == "application/octet-stream" and lm not in KINDS:
            reasons.append(f"no handler for {lm}")
    kind = KINDS[mime]
    threats: list[Threat] = []
    if claimed and claimed not in kind.extensions and kind.family not in ("unknown",):
        threats.append(Threat("file.type_mismatch", name,
                              "renamed" if kind.family != "executable" else "blocked",
                              f"name says {claimed}, content is {kind.label}"))
    if kind.family != "executable" and claimed in DANGEROUS_EXTENSIONS:
        reasons.append(f"the name ends in {claimed}, which Windows would run or mount")
        kind = Kind(kind.mime, "executable", f"{kind.label} named as {claimed}", kind.extensions)
    if kind.family == "executable":
        threats.append(Threat("file.executable", name, "blocked", kind.label))
    elif kind.family == "unknown":
        threats.append(Threat("file.unsupported", name, "blocked", kind.label))
    return Detection(mime=kind.mime, family=kind.family, label=kind.label,
                     extension=kind.extensions[0] if kind.extensions else "", claimed=claimed,
                     reasons=reasons, threats=threats)


def detect_bytes(data: bytes, name: str = "") -> Detection:
    """Convenience for tests: detect from bytes via a temporary file."""
    import tempfile

    with tempfile.NamedTemporaryFile() as tmp:
        tmp.write(data)
        tmp.flush()
        return detect(tmp.name, name or "data")


__all__ = ["detect", "detect_bytes", "KINDS", "DANGEROUS_EXTENSIONS"]
