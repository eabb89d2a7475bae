"""HTML: remote references hidden by URL-parser quirks (tabs, C0 controls, backslashes, //host) are removed."""
from __future__ import annotations

from pathlib import Path

import pytest

from cdr.formats.html import scan_active
from cdr.pipeline import process

_PAGE = '<html><head><title>t</title></head><body><p>本文</p>{}</body></html>'
_HOST = "203.0.113.5"

# Each of these makes a browser call out when the page is opened (pictures) or clicked (links).
REPROS = {
    "tab": f'<img src="ht&#x09;tp://{_HOST}/t.png">',
    "newline": f'<img src="h&#x0a;ttp://{_HOST}/t.png">',
    "c0": f'<img src="&#x01;http://{_HOST}/t.png">',
    "unc": f'<img src="\\\\{_HOST}\\s\\a.png">',
    "slash_backslash": f'<img src="/\\{_HOST}/a.png">',
    "backslash_slash": f'<img src="\\/{_HOST}/a.png">',
    "srcset": f'<img srcset="a.png 1x, //{_HOST}/b.png 2x">',
    "poster": f'<video poster="//{_HOST}/p.png"></video>',
    "background": f'<table background="\\\\{_HOST}\\s\\b.png"><tr><td>x</td></tr></table>',
    "css_url": f'<p style="color: red; background: url(//{_HOST}/c.png)">s</p>',
    "link_unc": f'<a href="\\\\{_HOST}\\share\\x">x</a>',
    "link_three_slashes": f'<a href="///{_HOST}/x">x</a>',
    "link_file": f'<a href="fi&#x09;le://{_HOST}/s/x">x</a>',
}


def _run(tmp_path: Path, policy, fragment: str):
    src = tmp_path / "p.html"
    src.write_text(_PAGE.format(fragment), "utf-8")
    r = process(src, "p.html", tmp_path / "out", policy)
    return r, Path(r.output).read_text("utf-8") if r.output else ""


@pytest.mark.parametrize("name", sorted(REPROS))
def test_hidden_remote_reference_removed(name, default_policy, tmp_path):
    r, out = _run(tmp_path, default_policy, REPROS[name])
    assert r.verdict == "sanitized", r.reason
    assert [t.id for t in r.threats] == ["html.external_ref"]
    assert all(t.action == "removed" for t in r.threats)
    assert _HOST not in out and "本文" in out
    assert scan_active(out) == []  # the verify step agrees


def test_protocol_relative_link_becomes_https(default_policy, tmp_path):
    # Opened from disk, //host means file://host (an SMB fetch); the policy keeps web links, so make it https.
    r, out = _run(tmp_path, default_policy, f'<a href=" //{_HOST}/x.exe">dl</a>')
    assert r.verdict == "sanitized", r.reason
    assert [(t.id, t.action) for t in r.threats] == [("html.external_ref", "neutralized")]
    assert f'href="https://{_HOST}/x.exe"' in out and 'href=" //' not in out
    assert scan_active(out) == []


def test_script_url_hidden_by_tab_reported(default_policy, tmp_path):
    r, out = _run(tmp_path, default_policy, '<a href="java&#x09;script:alert(1)">x</a>')
    assert [t.id for t in r.threats] == ["html.active_content"]
    assert "alert" not in out and scan_active(out) == []


def test_data_pictures_removed(default_policy, tmp_path):
    """Inline pictures would reach the browser's decoder without the image rebuild: removed."""
    for src in ("data:image/svg+xml;base64,PHN2Zz4=", "data:image/png;base64,iVBORw0KGgo="):
        r, out = _run(tmp_path, default_policy, f'<p>x<img src="{src}"></p>')
        assert r.verdict == "sanitized" and "data:image" not in out and scan_active(out) == []


def test_benign_pictures_and_links_unchanged(default_policy, tmp_path):
    body = ('<p><img src="img/a.png" alt="a"><img src="./a.png">'
            '<a href="https://www.example.lg.jp/x">web</a><a href="mailto:info@example.lg.jp">mail</a>'
            '<a href="#top">top</a><a href="docs/b.html">rel</a></p>')
    r, out = _run(tmp_path, default_policy, body)
    assert r.verdict == "clean" and r.threats == [], r.reason
    for kept in ('src="img/a.png"', 'src="./a.png"',
                 'href="https://www.example.lg.jp/x"', 'href="mailto:info@example.lg.jp"', 'href="#top"',
                 'href="docs/b.html"'):
        assert kept in out
    assert scan_active(out) == []


def _links_drop(base):
    from cdr.policy import Policy

    d = base.to_dict()
    d["families"]["html"]["links"] = "drop"
    return Policy.from_dict(d, "test-links-drop")


def test_links_drop_keeps_text_and_in_page_links(default_policy, tmp_path):
    """links = "drop": every link out of the page goes (web, mail, relative), its text and #anchors stay."""
    body = ('<p><a href="https://www.example.lg.jp/x">ウェブ</a> <a href="mailto:info@example.lg.jp">メール</a> '
            '<a href="docs/b.html">関連資料</a> <a href=" #top">先頭へ</a><img src="img/a.png" alt="図"></p>')
    r, out = _run(tmp_path, _links_drop(default_policy), body)
    assert r.verdict == "sanitized", r.reason
    assert {(t.id, t.action) for t in r.threats} == {("html.hyperlink", "removed")}
    assert "3 link(s)" in r.threats[0].detail
    for gone in ("example.lg.jp", "docs/b.html"):
        assert gone not in out
    for kept in ("ウェブ", "メール", "関連資料", "先頭へ", 'href=" #top"', 'src="img/a.png"'):
        assert kept in out
    assert scan_active(out, "drop") == []  # the verify step agrees


def test_links_drop_bad_value_refused(default_policy):
    from cdr.policy import Policy, PolicyError

    d = default_policy.to_dict()
    d["families"]["html"]["links"] = "none"
    with pytest.raises(PolicyError, match="links"):
        Policy.from_dict(d, "bad")


def test_style_sheet_rebuilt_and_language_kept(default_policy, tmp_path):
    """A saved municipal page keeps its table borders, shading and lang="ja"; the style sheet is rebuilt
    from plain rules (no @import, url(), expression(), escapes, and nothing that closes the element)."""
    page = ('<html lang="ja"><head><title>ごみ収集日程</title><style>'
            '@import url(http://203.0.113.5/a.css); td, th { border: 1px solid #999; background: #eef }'
            ' .x { background: url(//203.0.113.5/t.png) } .y { width: expression(alert(1)) }'
            ' p { font-family: "ＭＳ ゴシック", sans-serif; color: rgb(10, 20, 30) }</style></head>'
            '<body><table><tr><th>地区</th><td style="background:#ffe;border-left:2px solid red">北</td></tr>'
            '</table><p>本文</p></body></html>')
    src = tmp_path / "gomi.html"
    src.write_text(page, "utf-8")
    r = process(src, src.name, tmp_path / "o", default_policy)
    out = Path(r.output).read_text("utf-8")
    assert '<html lang="ja">' in out and "td, th { border: 1px solid #999; background: #eef }" in out
    assert 'font-family: "ＭＳ ゴシック", sans-serif; color: rgb(10, 20, 30)' in out
    assert "background:#ffe" in out and "border-left:2px solid red" in out
    for gone in ("203.0.113.5", "@import", "expression", "url("):
        assert gone not in out
    assert scan_active(out) == []


def test_css_escapes_cannot_close_the_style_element(default_policy, tmp_path):
    """An escaped "<" in a CSS value comes back from the CSS serializer as "\\<", which an HTML parser
    reads as "</style": the declaration is dropped, and verify reports markup in any style body."""
    css = (r'td { font-family: \3c/style \3e \3cimg "a/src=x" '
           r""""b/onerror=document.body.setAttribute('data-pwned','1')//" \3e ; color: red }""")
    src = tmp_path / "xss.html"
    src.write_text(f"<html lang=ja><head><style>{css}</style></head><body><p>本文</p></body></html>", "utf-8")
    r = process(src, src.name, tmp_path / "o", default_policy)
    out = Path(r.output).read_text("utf-8")
    assert "td { color: red }" in out and "onerror" not in out and "<img" not in out
    assert scan_active(out) == []
    assert [t.location for t in scan_active("<style>td{color:red}</style x><img src=x onerror=alert(1)>")]


def test_damaged_marked_section_is_blocked_with_a_readable_reason(default_policy, tmp_path):
    """Fuzzer find: Python's HTML parser asserts on "<![l..."; the clerk read "could not be parsed
    (AssertionError)"."""
    src = tmp_path / "page.html"
    src.write_text("<html><body><p>お知らせ</p><![lx[ x ]]></body></html>", "utf-8")
    (tmp_path / "out").mkdir()
    r = process(src, src.name, tmp_path / "out", default_policy)
    assert r.verdict == "blocked" and r.output is None
    assert "AssertionError" not in r.reason_en and "HTML" in r.reason_ja, (r.reason_en, r.reason_ja)
