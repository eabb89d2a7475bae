"""Legacy binary Office: oletools findings, LibreOffice conversion to OOXML, encryption handling.

The corpus (made with LibreOffice from python-docx/openpyxl/python-pptx output, hostile variants
rebuilt with a small compound-file writer) is generated once per session: about 4 s. Each
conversion through the pipeline costs about 1 s of LibreOffice.
"""
from __future__ import annotations

import importlib
import shutil
import zipfile
from pathlib import Path

import pytest

from cdr.detect import detect
from cdr.errors import ToolMissing
from cdr.formats import legacy_office
from cdr.handler import Context, handler_for
from cdr.pipeline import process
from cdr.policy import Limits
from samples.legacy_samples import ENC_PASSWORD, JA_BODY, JA_TITLE

from .conftest import all_threat_ids

pytestmark = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice not installed")


def _ooxml_ready() -> bool:
    try:
        mod = importlib.import_module("cdr.formats.ooxml")
    except ImportError:
        return False
    return hasattr(mod, "rebuild_ooxml") and hasattr(mod, "ooxml_text")


needs_ooxml = pytest.mark.skipif(not _ooxml_ready(), reason="OOXML rebuild (cdr.formats.ooxml) not available yet")


@pytest.fixture(scope="module")
def legacy(corpus):
    return corpus("legacy_office")


def _ctx(tmp_path: Path, password: str | None = None) -> Context:
    return Context(name="t", options={}, limits=Limits(), workdir=tmp_path, password=password)


def _reinspect(path: Path) -> list:
    det = detect(path, path.name)
    return handler_for(det.mime).inspect(_ctx(path.parent), path, det)


def _convert_policy(policy):
    from cdr.policy import Policy

    data = policy.to_dict()
    data["families"]["legacy_office"]["mode"] = "convert"
    return Policy.from_dict(data)


def test_findings_with_oletools(legacy):
    base, samples = legacy
    for rel, s in samples.items():
        p = base / rel
        assert detect(p, p.name).family == "legacy_office", rel
        if "encrypted" in rel:
            assert legacy_office.is_encrypted(p)
            continue
        ids = {t.id for t in legacy_office.findings(p)}
        assert ids == {t for t in s.threats if t in ("ole.vba", "ole.xlm", "ole.object")}, (rel, ids)
    xlm = legacy_office.findings(base / "legacy_office/hostile/xlm_macrosheet.xls")
    assert any(t.id == "ole.xlm" and t.location == "sheet 集計" for t in xlm)


def test_encrypted_blocked_without_password(legacy, default_policy, tmp_path):
    base, _ = legacy
    src = base / "legacy_office/hostile/encrypted.doc"
    res = process(src, src.name, tmp_path, default_policy)
    assert res.verdict == "blocked" and res.output is None
    assert "ole.encrypted" in all_threat_ids(res.to_dict())
    assert "パスワード" in res.reason_ja and "password" in res.reason_en
    res = process(src, src.name, tmp_path, default_policy, password="wrong")
    assert res.verdict == "blocked" and "correct password" in res.reason_en


@needs_ooxml
def test_doc_to_docx_keeps_japanese_text(legacy, default_policy, tmp_path):
    from cdr.formats.ooxml import ooxml_text

    base, _ = legacy
    src = base / "legacy_office/benign/申請書.doc"
    res = process(src, src.name, tmp_path, _convert_policy(default_policy), want_text=True)
    assert res.verdict == "clean", res.reason
    out = Path(res.output)
    assert out.name == "申請書.docx"
    assert _reinspect(out) == []
    text = ooxml_text(out)
    assert JA_TITLE in text and JA_BODY in text and "交付枚数" in text
    assert Path(res.text_output).read_text("utf-8") == text
    with zipfile.ZipFile(out) as z:
        assert any(n.startswith("word/media/") for n in z.namelist()), "picture lost"


@needs_ooxml
def test_hostile_legacy_sanitized(legacy, default_policy, tmp_path):
    base, samples = legacy
    for rel in ("legacy_office/hostile/vba_autoopen.doc", "legacy_office/hostile/ole_object.doc",
                "legacy_office/hostile/embedded_document.doc"):
        res = process(base / rel, Path(rel).name, tmp_path / Path(rel).stem, _convert_policy(default_policy))
        assert res.verdict == "sanitized", (rel, res.reason)
        assert set(samples[rel].threats) | {"ole.converted"} <= all_threat_ids(res.to_dict())
        out = Path(res.output)
        assert out.suffix in (".docx", ".xlsx") and _reinspect(out) == []
        with zipfile.ZipFile(out) as z:
            assert not any("vba" in n.lower() or "macrosheet" in n.lower() or n.endswith(".bin")
                           for n in z.namelist()), z.namelist()


@needs_ooxml
def test_xls_convert_mode_keeps_formulas_and_cached_values(legacy, default_policy, tmp_path):
    import openpyxl

    from cdr.policy import Policy

    base, _ = legacy
    src = base / "legacy_office/benign/集計.xls"
    data = default_policy.to_dict()
    data["families"]["legacy_office"]["mode"] = "convert"
    res = process(src, src.name, tmp_path, Policy.from_dict(data))
    assert res.verdict == "clean" and res.output.endswith("集計.xlsx")
    ws = openpyxl.load_workbook(res.output)["集計"]
    assert ws["B4"].value == "=SUM(B2:B3)" and ws["A2"].value == "住民票"
    assert openpyxl.load_workbook(res.output, data_only=True)["集計"]["C4"].value == 5100


@needs_ooxml
def test_ppt_template_password_and_text_only(legacy, default_policy, text_policy, tmp_path):
    from cdr.formats.ooxml import ooxml_text

    base, _ = legacy
    ppt = base / "legacy_office/benign/説明資料.ppt"
    res = process(ppt, ppt.name, tmp_path / "ppt", _convert_policy(default_policy))
    assert res.verdict == "clean" and res.output.endswith(".pptx")
    assert JA_TITLE in ooxml_text(Path(res.output))
    dot = base / "legacy_office/benign/様式.dot"
    res = process(dot, dot.name, tmp_path / "dot", default_policy)
    assert res.verdict == "clean" and Path(res.output).name == "様式.dot"  # rebuilt as a template
    enc = base / "legacy_office/hostile/encrypted.doc"
    res = process(enc, enc.name, tmp_path / "enc", default_policy, password=ENC_PASSWORD, want_text=True)
    assert res.verdict in ("clean", "sanitized") and res.output.endswith("encrypted.doc"), res.reason
    assert any(t.id == "ole.encrypted" and "decrypted" in t.detail for t in res.threats)
    assert not legacy_office.is_encrypted(Path(res.output))  # never delivered encrypted
    assert JA_BODY in Path(res.text_output).read_text("utf-8")
    res = process(base / "legacy_office/hostile/vba_autoopen.doc", "vba_autoopen.doc", tmp_path / "txt",
                  text_policy)
    assert res.verdict == "sanitized" and res.output.endswith("vba_autoopen.doc.txt")
    assert "ole.vba" in all_threat_ids(res.to_dict())
    assert JA_TITLE in Path(res.output).read_text("utf-8")


def test_convert_option_block_and_missing_soffice(legacy, default_policy, tmp_path, monkeypatch):
    from cdr.policy import Policy

    base, _ = legacy
    src = base / "legacy_office/benign/申請書.doc"
    data = default_policy.to_dict()
    data["families"]["legacy_office"].update(mode="convert", convert="block")
    res = process(src, src.name, tmp_path / "b", Policy.from_dict(data))
    assert res.verdict == "blocked" and "PDF" in res.reason_en
    # No LibreOffice on the box: a clear reason, never the original.
    from cdr.formats import _libreoffice

    monkeypatch.setattr(_libreoffice.shutil, "which", lambda name: None)
    monkeypatch.setattr(_libreoffice.os, "access", lambda path, mode: False)
    with pytest.raises(ToolMissing) as exc:
        _libreoffice.convert(_ctx(tmp_path), src, "docx")
    assert "LibreOffice" in exc.value.en and "LibreOffice" in exc.value.ja


@needs_ooxml
def test_cli_converts_legacy_in_worker(legacy, tmp_path):
    """Through the real CLI and worker process (RLIMIT_AS applies there; soffice must still start)."""
    from .conftest import sanitize_report

    base, _ = legacy
    rules = (Path(__file__).resolve().parent.parent / "rules" / "default.toml").read_text("utf-8")
    policy = tmp_path / "convert.toml"
    head, tail = rules.split("[families.legacy_office]", 1)
    policy.write_text(head + "[families.legacy_office]" + tail.replace('mode = "rebuild"', 'mode = "convert"', 1),
                      "utf-8")
    report = sanitize_report([base / "legacy_office/hostile/vba_autoopen.doc"], tmp_path / "out",
                             "--policy", str(policy))
    entry = report["files"][0]
    assert entry["verdict"] == "sanitized", entry.get("reason")
    assert "ole.vba" in all_threat_ids(entry) and entry["output"].endswith("vba_autoopen.docx")


def test_damaged_encryption_header_is_not_a_password_problem(default_policy, tmp_path):
    """A Word header marked encrypted with no encryption information: the clerk must not be sent to ask
    the sender for a password that does not exist (test_encrypted_blocked_without_password: a real one does)."""
    import struct

    from samples.legacy_samples import write_cfb

    fib = bytearray(4096)
    struct.pack_into("<HH", fib, 0, 0xA5EC, 0x00C1)  # wIdent, nFib (Word 97)
    struct.pack_into("<H", fib, 0x0A, 0x0100)  # fEncrypted, and no encryption header in 0Table
    src = tmp_path / "壊れた.doc"
    src.write_bytes(write_cfb({"WordDocument": bytes(fib), "1Table": b"\0" * 512}))
    for pw in (None, "anything"):
        r = process(src, src.name, tmp_path / f"out{pw}", default_policy, password=pw)
        assert r.verdict == "blocked" and "damaged" in r.reason_en and "壊れ" in r.reason_ja, r
        assert "ole.encrypted" not in {t.id for t in r.threats}
