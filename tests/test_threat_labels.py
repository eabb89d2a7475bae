"""The message catalogue (transfer_agent/threat_labels.py) has an entry, in Japanese and English, for
every verdict, every threat id and action the code can emit, every kind of block reason and every file
type. Ids are gathered from the code itself, so an id added later fails here until it is labelled."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import cdr.errors
from cdr.detect import KINDS
from cdr.model import VERDICTS
from transfer_agent import threat_labels as tl

_ROOT = Path(__file__).resolve().parent.parent
_ID = re.compile(r"[a-z][a-z0-9]*\.[a-z][a-z0-9_]*\Z")
_JA = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
_ERRORS = {n for n, c in vars(cdr.errors).items() if isinstance(c, type) and issubclass(c, cdr.errors.CdrError)}


def _trees():
    for top in ("cdr", "transfer_agent"):
        for p in sorted((_ROOT / top).rglob("*.py")):
            if "fuzz" not in p.parts:
                yield p, ast.parse(p.read_text("utf-8"))


def _name(call: ast.Call) -> str | None:
    return getattr(call.func, "id", None) or getattr(call.func, "attr", None)


def _str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _scan() -> dict[str, set[str]]:
    """What the code emits: threat ids by the calls that name them, their families, actions, blocking ids."""
    fams, blocking, actions, literals = set(), set(), set(), set()
    for _p, tree in _trees():
        # Log event names ({"event": "worker.start"}) and crash points are dotted too, but are no threat ids.
        skip = {id(v) for n in ast.walk(tree) if isinstance(n, ast.Dict)
                for k, v in zip(n.keys, n.values, strict=True) if _str(k) == "event"}
        skip |= {id(a) for n in ast.walk(tree) if isinstance(n, ast.Call) and _name(n) == "crashpoint" for a in n.args}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _ID.match(node.value) \
                    and id(node) not in skip:
                literals.add(node.value)
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "threat_id" for t in node.targets):
                if _str(node.value):
                    fams.add(_str(node.value).split(".")[0])
                    blocking.add(_str(node.value))
            if not isinstance(node, ast.Call):
                continue
            name = _name(node)
            kw = {k.arg: k.value for k in node.keywords}
            if name == "Threat":
                tid = _str(node.args[0]) if node.args else None
                act = _str(node.args[2]) if len(node.args) > 2 else _str(kw.get("action"))
                if tid:
                    fams.add(tid.split(".")[0])
                    if act == "blocked":
                        blocking.add(tid)
                if act:
                    actions.add(act)
            elif name in _ERRORS or name in ("_refused",):
                tid = _str(kw.get("threat_id")) or next(
                    (_str(a) for a in node.args if _str(a) and _ID.match(_str(a))), None)
                if tid:
                    fams.add(tid.split(".")[0])
                    blocking.add(tid)
            if _str(kw.get("action")) and name != "add_argument":
                actions.add(_str(kw["action"]))
    ids = {i for i in literals if i.split(".")[0] in fams}
    return {"ids": ids, "families": fams, "blocking": blocking & ids, "actions": actions}


@pytest.fixture(scope="module")
def scan():
    found = _scan()
    assert len(found["ids"]) > 140 and {"pdf", "ooxml", "ole", "mail", "archive"} <= found["families"]
    return found


def test_every_threat_id_has_japanese_and_english(scan):
    missing = sorted(i for i in scan["ids"] if i not in tl.THREATS)
    assert missing == [], f"add these to transfer_agent/threat_labels.py: {missing}"
    for tid in scan["ids"]:
        entry = tl.THREATS[tid]
        assert len(entry) == 4, f"{tid}: (ja label, ja explanation, en label, en explanation)"
        assert _JA.search(entry[0]) or entry[0].isascii(), tid  # a label may be a name (PDF, XFA)
        assert _JA.search(entry[1]), tid
        assert entry[2] and entry[3] and not _JA.search(entry[2] + entry[3]), tid
        for action in scan["actions"]:
            assert _JA.search(tl.explain(tid, action)) and tl.explain(tid, action, "en"), (tid, action)


def test_every_action_and_verdict_has_both_languages(scan):
    assert scan["actions"] >= {"removed", "reported", "blocked", "found"}
    for action in scan["actions"]:
        assert action in tl.ACTIONS, action
        assert _JA.search(tl.action_label(action)) and tl.action_label(action, "en").isascii()
    for verdict in VERDICTS:
        assert _JA.search(tl.verdict_label(verdict)) and tl.verdict_label(verdict, "en") == verdict
        assert _JA.search(tl.verdict_sentence({"verdict": verdict, "threats": []}))
        assert tl.verdict_sentence({"verdict": verdict, "threats": []}, "en").isascii()


def test_every_blocking_id_has_a_reason_kind(scan):
    """A blocked file's notice says why in the words of its kind (password, size, policy, ...)."""
    assert {"file.encrypted", "file.limit", "policy.blocked", "file.malformed"} <= scan["blocking"]
    missing = sorted(i for i in scan["blocking"] if i not in tl.BLOCK_KIND)
    assert missing == [], f"give these a kind in BLOCK_KIND: {missing}"
    for tid, kind in tl.BLOCK_KIND.items():
        assert kind in tl.BLOCK_KINDS, tid
        ja, en = tl.BLOCK_KINDS[kind]
        assert _JA.search(ja) and en.isascii()
    sentences = {tl.verdict_sentence({"verdict": "blocked", "threats": [{"id": i, "action": "blocked"}]})
                 for i in ("file.encrypted", "file.limit", "policy.blocked", "file.malformed")}
    assert len(sentences) == 4  # distinct sentences for password, size, policy and malformed blocks


def test_every_reason_the_engine_gives_is_bilingual():
    """Reasons are ja/en pairs at the source: an error raised with a Japanese text gives the English one
    too, and `.block(ja, en)` always both (an error given neither uses its class's bilingual default)."""
    checked = 0
    for p, tree in _trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node)
            kw = {k.arg: k.value for k in node.keywords}
            if name in _ERRORS:
                en = node.args[0] if node.args else kw.get("en")
                ja = node.args[1] if len(node.args) > 1 else kw.get("ja")
            elif name == "block" and len(node.args) + len(kw) == 2:
                ja, en = (node.args + [None, None])[:2]
            else:
                continue
            checked += 1
            assert en is not None or ja is None, f"{p}:{node.lineno}: a Japanese reason without the English"
            text = _str(ja) or "".join(_str(v) or "" for v in getattr(ja, "values", []))
            if ja is not None and text:
                assert _JA.search(text), f"{p}:{node.lineno}: the Japanese reason is not Japanese: {text!r}"
    assert checked > 150
    for name in _ERRORS:
        cls = getattr(cdr.errors, name)
        assert _JA.search(cls.default_ja) and cls.default_en.isascii() and cls.threat_id in tl.BLOCK_KIND, name


def test_every_policy_family_has_a_name_in_both_languages():
    """Families appear in [release] never, which the report and the console name to a clerk."""
    from cdr.handler import family_options
    from cdr.policy import ALWAYS_BLOCKED

    for fam in set(family_options()) | set(ALWAYS_BLOCKED):
        assert _JA.search(tl.family_label(fam)) or fam in ("pdf", "csv", "html"), fam
        assert tl.family_label(fam, "en").isascii() and tl.family_label(fam, "en") != "", fam
    assert tl.family_label("executable") == "実行ファイル（プログラム）"


def test_every_detected_type_has_a_japanese_name():
    for mime in KINDS:
        assert mime in tl.TYPES, mime
        assert _JA.search(tl.type_label(mime)) or tl.type_label(mime).isascii(), mime
    assert tl.type_label("application/vnd.ms-word.document.macroEnabled.12") == "Word文書（マクロ付き）"


def test_wording_follows_what_happened():
    # A password that opened the file is not "ask the sender for the password".
    assert "送信者" not in tl.explain("archive.encrypted", "converted")
    assert "送信者" in tl.explain("archive.encrypted", "blocked")
    # A finding that was only found is not said to be removed.
    assert "削除しました" not in tl.explain("ole.vba", "found")
    # "reported" is a note, never "報告のみ" beside a sentence saying it was dropped.
    assert tl.action_label("reported") == "お知らせ"
    text_only = {"verdict": "sanitized", "threats": [{"id": "policy.text_only", "action": "converted"}]}
    assert "画像" in tl.verdict_sentence(text_only) and "含まれません" in tl.verdict_sentence(text_only)
    # A ZIP opened with the clerk's password: nothing was removed, so the sentence does not say so...
    opened = {"verdict": "sanitized", "threats": [{"id": "archive.encrypted", "action": "converted"}],
              "children": [{"verdict": "clean", "threats": [{"id": "archive.encrypted", "action": "converted"}]}]}
    assert "パスワードのかからないファイル" in tl.verdict_sentence(opened) and "取り除いて" not in tl.verdict_sentence(opened)
    # ...unless a member lost its macro.
    opened["children"][0]["threats"].append({"id": "ooxml.vba", "action": "removed"})
    assert "取り除いて" in tl.verdict_sentence(opened)


def test_unknown_id_falls_back_to_its_family():
    assert tl.label("pdf.something_new").startswith("PDF") and "pdf.something_new" in tl.label("pdf.something_new")
    assert tl.explain("zzz.unknown") and tl.explain("zzz.unknown", lang="en").isascii()
