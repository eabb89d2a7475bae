"""RTF field and linked-picture bypasses: split keywords, missing active fields, pibName links."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from cdr.formats import rtf
from cdr.pipeline import inspect as inspect_file
from cdr.pipeline import process

HEAD = rb"{\rtf1\ansi\ansicpg932\deff0{\fonttbl{\f0\fnil\fcharset128 \'82\'6c\'82\'72 \'96\'be\'92\'a9;}}"
JA = rb"\f0 \'8f\'5a\'96\'af\'95\'5b \uc1\u20013?\u25991?\par "  # 住民票 + 中文 via \uN


def _doc(body: bytes) -> bytes:
    return HEAD + JA + body + rb"\par}"


def _sanitize(tmp_path: Path, policy, body: bytes, name: str = "f.rtf"):
    src = tmp_path / name
    src.write_bytes(_doc(body))
    r = process(src, name, tmp_path / "out", policy)
    out = Path(r.output).read_bytes() if r.output else b""
    return r, out


def _assert_clean_after(r, policy) -> None:
    # VERIFY already ran inside process; inspecting the output again through the pipeline must agree.
    assert inspect_file(r.output, "f.rtf", policy)["threats"] == []


@pytest.mark.parametrize("body, gone", [
    # a bookmark end (ignorable destination) splits DDE|AUTO: Word reads DDEAUTO
    (rb'{\field{\*\fldinst DDE{\*\bkmkend a}AUTO c:\\windows\\system32\\cmd.exe "/c calc"}{\fldrslt x}}',
     [b"DDE", b"cmd.exe"]),
    # an unknown ignorable destination splits INCLUDE|PICTURE
    (rb'{\field{\*\fldinst INCLUDE{\*\xyzzy junk}PICTURE "http://203.0.113.5/x.png" \\d}{\fldrslt x}}',
     [b"INCLUDE", b"203.0.113.5"]),
    # the same split with a non-starred (known) destination
    (rb'{\field{\*\fldinst DDE{\bkmkstart a}AUTO c:\\x.exe}{\fldrslt x}}', [b"DDE", b"x.exe"]),
    # \uN with its fallback: a reader sees DDEAUTO, a byte-reader sees DDEA?UTO
    (rb'{\field{\*\fldinst DDE\u65 ?UTO c:\\x.exe}{\fldrslt x}}', [b"DDE", b"x.exe"]),
    # a second instruction group: which one a reader uses is not ours to guess
    (rb'{\field{\*\fldinst PAGE}{\*\fldinst DDEAUTO c:\\x.exe}{\fldrslt x}}', [b"DDE", b"x.exe"]),
    # the keyword in quotes
    (rb'{\field{\*\fldinst "INCLUDEPICTURE" "http://203.0.113.5/q.png"}{\fldrslt x}}', [b"203.0.113.5"]),
])
def test_split_or_hidden_keywords_are_neutralised(default_policy, tmp_path, body, gone):
    r, out = _sanitize(tmp_path, default_policy, body)
    assert r.verdict == "sanitized", (r.reason, r.threats)
    assert [t.id for t in r.threats] == ["rtf.field"]
    assert out == _doc(b"{x}")  # the field is gone, its result text kept, the rest byte for byte
    for g in gone:
        assert g not in out
    _assert_clean_after(r, default_policy)


def test_repro_inspected_as_threat_before_rebuild():
    body = rb'{\field{\*\fldinst DDE{\*\bkmkend a}AUTO c:\\windows\\system32\\cmd.exe "/c calc"}{\fldrslt x}}'
    found = rtf.findings(_doc(body))
    assert [(t.id, t.action) for t in found] == [("rtf.field", "found")]


@pytest.mark.parametrize("inst, kw", [
    (rb'MACROBUTTON AcceptAllChangesInDoc "Double-click here"', "MACROBUTTON"),
    (rb'DATABASE \\d "\\\\\\\\203.0.113.5\\\\share\\\\data.mdb" \\s "select * from t"', "DATABASE"),
    (rb'RD "\\\\\\\\203.0.113.5\\\\share\\\\chapter.docx"', "RD"),
])
def test_active_fields_added(default_policy, tmp_path, inst, kw):
    r, out = _sanitize(tmp_path, default_policy, rb"{\field{\*\fldinst " + inst + rb"}{\fldrslt \'8c\'8b\'89\'ca}}")
    assert r.verdict == "sanitized"
    assert [(t.id, t.location) for t in r.threats] == [("rtf.field", f"{kw} field")]
    assert kw.encode() not in out and out == _doc(rb"{\'8c\'8b\'89\'ca}")  # 結果 kept
    _assert_clean_after(r, default_policy)


def _png_hex() -> bytes:
    """A PNG as the rebuild writes one (png_write): rewriting it gives the same bytes, so the picture
    stays as written and the document byte for byte (a PNG from elsewhere is written anew: test_rtf_allowlist)."""
    from cdr.formats.image import png_write

    return png_write.encode(Image.new("RGB", (1, 1), (30, 90, 200))).hex().encode()


# A real PNG: picture data that is not the image its type names is dropped (tests/test_rtf_allowlist.py).
SHAPE = (rb"{\shp{\*\shpinst\shpleft0\shptop0\shpright2000\shpbottom1000\shpwr3"
         rb"{\sp{\sn shapeType}{\sv 75}}%s{\sp{\sn pibFlags}{\sv 10}}"
         rb"{\sp{\sn pib}{\sv {\pict\pngblip\picw1\pich1 " + _png_hex() + rb"}}}}}")


@pytest.mark.parametrize("link", [rb"http://203.0.113.5/x.png", rb"\\\\203.0.113.5\\pics\\x.png",
                                  rb"file:///C:/x.png", rb"HTTPS://203.0.113.5/x.png"])
def test_linked_shape_picture_loses_its_link(default_policy, tmp_path, link):
    prop = rb"{\sp{\sn pibName}{\sv " + link + rb"}}"
    r, out = _sanitize(tmp_path, default_policy, SHAPE % prop)
    assert r.verdict == "sanitized", (r.reason, r.threats)
    assert [t.id for t in r.threats] == ["rtf.remote_template"]
    assert out == _doc(SHAPE % b"")  # only the link property went; the embedded picture stays
    assert b"203.0.113.5" not in out
    _assert_clean_after(r, default_policy)


BENIGN = [
    rb"{\field{\*\fldinst PAGE }{\fldrslt 1}}",
    rb"{\field{\*\fldinst  DATE \\@ " + rb'"yyyy/MM/dd"' + rb" }{\fldrslt 2024/04/01}}",
    rb'{\field{\*\fldinst HYPERLINK "https://www.city.example.lg.jp/" }{\fldrslt \'8e\'73}}',
    # Word style: formatting subgroups, a hex \datafield, a \l bookmark link and a TOC with nested fields
    rb"{\field\fldedit{\*\fldinst {\rtlch\fcs1 \af0 \ltrch\fcs0 \insrsid1 \hich\af0\dbch\af13\loch\f0  HYPERLINK "
    rb'"https://example.jp/a" }{\rtlch\fcs1 \af0 \ltrch\fcs0 \insrsid1 {\*\datafield 00d0c9ea79f9bace}}}'
    rb"{\fldrslt {\cs15\ul\cf2 link}}}",
    rb"{\field\fldedit{\*\fldinst {\rtlch\fcs1 \ltrch\fcs0 \lang1024\langfe1024\noproof TOC \\o " + rb'"1-3"'
    rb" \\h \\z \\u }}{\fldrslt {\field{\*\fldinst {\webhidden HYPERLINK \\l " + rb'"_Toc1"'
    rb" }}{\fldrslt \'91\'e6\'31\'8f\'cd{\field{\*\fldinst {\webhidden  PAGEREF _Toc1 \\h }}"
    rb"{\fldrslt 1}}}}}}",
    rb"{\field{\*\fldinst {\f0 FORMTEXT }{{\*\datafield 800100000000}{\*\formfield{\fftype0\ffownhelp"
    rb"{\*\ffname Text1}{\*\ffdeftext abc}}}}}{\fldrslt abc}}",
    rb"{\field{\*\fldinst \u25991?\u20214? NUMPAGES}{\fldrslt 3}}",  # a local field name
    rb'{\field{\*\fldinst HYPERLINK "#b" }{\fldrslt b}}',  # LibreOffice's in-document link
    rb"{\shp{\*\shpinst{\sp{\sn pibName}{\sv image1.png}}{\sp{\sn shapeType}{\sv 75}}}}",
    rb"{\pict\pngblip\picw1\pich1 " + _png_hex() + b"}",
]


@pytest.mark.parametrize("body", BENIGN)
def test_benign_fields_and_pictures_kept_byte_for_byte(default_policy, tmp_path, body):
    assert rtf.findings(_doc(body)) == []
    r, out = _sanitize(tmp_path, default_policy, body)
    assert r.verdict == "clean", (r.reason, r.threats)
    assert out == _doc(body)


def test_reader_text_skips_destinations_and_unicode_fallback():
    root, _ = rtf.parse(rb"{\rtf1{\*\fldinst A{\*\bkmkend z}B{\bkmkstart y}C\uc2\u68 ??E{\b F}\'47}}")
    inst = root.children[1]
    assert rtf._reader_text(inst) == "ABCDEFG"
    assert rtf._plain(inst) == "AzByCD??EFG"


@pytest.mark.parametrize("body", [
    # the fuzzer's case: \* damaged into text; a reader still switches the group to \fldinst
    rb'{\field{^*\fldinst INCLUDEPICTURE "http://203.0.113.5/t.png" \\d}{\fldrslt x}}',
    rb'{\field{\x*\fldinst INCLUDEPICTURE "http://203.0.113.5/t.png" \\d}{\fldrslt x}}',
    # the instruction word after formatting, and a second \*\fldinst inside the first one
    rb'{\field{\b \fldinst DDEAUTO c:\\windows\\system32\\cmd.exe "/c calc"}{\fldrslt x}}',
    rb'{\field{\*\fldinst PAGE \*\fldinst DDEAUTO c:\\windows\\system32\\cmd.exe}{\fldrslt x}}',
    # a web address cut short (truncated file) or split by a control character: no reader agrees on its end
    rb'{\field{\*\fldinst HYPERLINK "https://www.city.example.lg.jp/203.0.113.5}{\fldrslt x}}',
    rb'{\field{\*\fldinst HYPERLINK "https://w\'1dw.203.0.113.5/"}{\fldrslt x}}',
    # keywords outside the allow-list, and one spelt in full-width letters
    rb"{\field{\*\fldinst EMBED Package}{\fldrslt x}}",
    rb'{\field{\*\fldinst PRINT "\\\\203.0.113.5\\p"}{\fldrslt x}}',
    rb"{\field{\*\fldinst \uc0\u65321\u65326\u65315\u65324\u65333\u65316\u65317\u65328\u65321\u65315\u65332\u65333"
    rb'\u65330\u65317  "http://203.0.113.5/t.png"}{\fldrslt x}}',
])
def test_damaged_or_unlisted_field_instructions_become_their_result(default_policy, tmp_path, body):
    from cdr.fuzz import oracle

    r, out = _sanitize(tmp_path, default_policy, body)
    assert r.verdict == "sanitized", (r.reason, r.threats)
    assert "rtf.field" in [t.id for t in r.threats]
    assert b"fldinst" not in out and b"203.0.113.5" not in out and b"cmd.exe" not in out, out
    assert b"{x}" in out and oracle.scan_bytes(out, "f.rtf") == []
    _assert_clean_after(r, default_policy)


def test_object_data_after_the_start_of_a_group_is_an_object(default_policy, tmp_path):
    r, out = _sanitize(tmp_path, default_policy, rb"{\b keep\*\objdata 01050000020000000b000000}")
    assert [t.id for t in r.threats] == ["rtf.object"] and out == _doc(rb"{\b keep}")


def test_words_outside_the_allow_list_are_dropped_and_counted_once(default_policy, tmp_path):
    body = (rb"{\*\foo hidden}\zzz \fs20\qq4 0 {\*\themedata 504b0304}{\xmlnstbl{\xmlns1 http://x.example/}}"
            rb"\bin3 abc{\zzz shown}{\*\zzz gone}\^ end")
    r, out = _sanitize(tmp_path, default_policy, body)
    assert r.verdict == "clean", (r.reason, r.threats)  # nothing a reader would act on: reported only
    assert [(t.id, t.action) for t in r.threats] == [("rtf.unknown_control", "reported")]
    detail = r.threats[0].detail
    assert detail.startswith("9 control words") and "\\*\\foo (1)" in detail and "\\zzz (2)" in detail, detail
    # the text a reader shows is kept (\bin data is not text); a space keeps 0 from joining \fs20
    assert out == _doc(rb"\fs20 0 {shown} end")
    assert "0 shown end" in rtf.rtf_text(out)
    _assert_clean_after(r, default_policy)


def test_canonicalize_leaves_written_files_alone_and_splits_switched_groups():
    doc = _doc(rb"{\field{\*\fldinst PAGE}{\fldrslt 1}}{\*\cs15 x}")
    root, _ = rtf.parse(doc)
    rtf.canonicalize(root)
    assert rtf.serialize(root) == doc
    root, _ = rtf.parse(rb"{\rtf1{A\fldinst B\*\zzz C}}")
    rtf.canonicalize(root)
    assert rtf.serialize(root) == rb"{\rtf1{A{\fldinst B}{\*\zzz C}}}"


def test_rebuild_is_a_fixpoint_on_damaged_samples(corpus):
    """What the rebuild writes rebuilds to itself with nothing found (else VERIFY would block it): 400
    mutants of the RTF samples (the fuzzer's mutators, fixed seed)."""
    import random

    from cdr.errors import CdrError
    from cdr.fuzz import mutators

    base, samples = corpus("rtf")
    seeds = [(base / rel).read_bytes() for rel in sorted(samples)]
    rng, checked = random.Random(7), 0
    for _ in range(400):
        data, steps = mutators.mutate(rng.choice(seeds), rng)
        try:
            root, _, _ = rtf.rebuild_tree(data)
        except CdrError:
            continue  # not RTF any more: blocked
        out = rtf.serialize(root)
        again, found, _ = rtf.rebuild_tree(out)
        assert rtf.serialize(again) == out and found == [], (steps, found)
        checked += 1
    assert checked > 350


def test_a_field_does_not_borrow_the_instruction_of_a_field_inside_it(default_policy, tmp_path):
    # \fldinst damaged into \fldins5: the group holds a whole (harmless) field; the outer field has no
    # instruction of its own, whatever text it carries
    body = rb"{\field{\*\fldins5 {\field{\*\fldinst PAGE}{\fldrslt 1}}} DDEAUTO c:\\x.exe {\fldrslt x}}"
    r, out = _sanitize(tmp_path, default_policy, body)
    assert [t.id for t in r.threats] == ["rtf.field"] and out == _doc(b"{x}"), (r.threats, out)
    _assert_clean_after(r, default_policy)
