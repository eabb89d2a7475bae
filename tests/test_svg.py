"""SVG: script, handlers, foreign content, external references, entities and CSS are removed."""
from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lxml import etree
from PIL import Image

from cdr.detect import detect
from cdr.formats._tools import memory_cap, run_tool
from cdr.formats.svg import clean_css
from cdr.handler import Context, handler_for
from cdr.pipeline import process
from cdr.policy import Policy
from samples.image_samples import exif_gps
from tests.conftest import all_threat_ids, sanitize_report

SVG = "{http://www.w3.org/2000/svg}"


def _policy(base: Policy, **opts) -> Policy:
    d = base.to_dict()
    d["families"]["svg"].update(opts)
    return Policy.from_dict(d, "test")


def _inspect(path: Path, policy: Policy, tmp: Path) -> list:
    det = detect(path)
    ctx = Context(name=path.name, options=dict(policy.family(det.family).options), limits=policy.limits,
                  workdir=tmp)
    return handler_for(det.mime).inspect(ctx, path, det)


@pytest.fixture(scope="module")
def svgs(corpus):
    return corpus("svg")


def test_every_sample_verdict_threats_and_clean_output(svgs, default_policy, tmp_path):
    base, samples = svgs
    for rel, s in samples.items():
        r = process(base / rel, Path(rel).name, tmp_path, default_policy)
        ids = {t.id for t in r.threats}
        assert r.verdict == s.verdict, (rel, r.reason, ids)
        assert set(s.threats) <= ids, (rel, ids)
        if r.verdict == "blocked":
            continue
        out = Path(r.output)
        text = out.read_text("utf-8")
        assert _inspect(out, default_policy, tmp_path) == [], rel
        etree.fromstring(out.read_bytes())  # well-formed without any DTD
        for bad in ("<script", "onload", "onmouseover", "evil.example", "javascript", "foreignObject",
                    "<!DOCTYPE", "<!ENTITY", "@import", "xml-stylesheet", "iframe", "data:text"):
            assert bad not in text, (rel, bad)


def test_benign_drawing_is_kept(svgs, default_policy, tmp_path):
    base, _ = svgs
    src = base / "svg/benign/map.svg"
    r = process(src, "map.svg", tmp_path, default_policy, want_text=True)
    assert r.verdict == "clean" and r.threats == []
    root = etree.fromstring(Path(r.output).read_bytes())
    assert root.get("viewBox") == "0 0 200 120" and root.get("width") == "200"
    uses = root.findall(f"{SVG}use")
    assert [u.get("{http://www.w3.org/1999/xlink}href") or u.get("href") for u in uses] == ["#box", "#box"]
    assert "url(#g)" in root.find(f"{SVG}style").text
    assert root.find(f"{SVG}a").get("href") == "#box"
    assert len(root.findall(f".//{SVG}stop")) == 2
    href = root.find(f"{SVG}image").get("href")
    png = base64.b64decode(href.split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (8, 8)
    text = Path(r.text_output).read_text("utf-8")
    assert "庁舎案内図" in text and "住民課 1番窓口 受付" in text


def test_removed_elements_and_attributes(svgs, default_policy, tmp_path):
    base, _ = svgs
    r = process(base / "svg/hostile/onload.svg", "onload.svg", tmp_path, default_policy)
    root = etree.fromstring(Path(r.output).read_bytes())
    assert root.get("onload") is None and root.find(f"{SVG}rect").get("width") == "5"
    r = process(base / "svg/hostile/external_href.svg", "x.svg", tmp_path, default_policy)
    root = etree.fromstring(Path(r.output).read_bytes())
    assert root.find(f"{SVG}image") is None and root.find(f"{SVG}use") is None
    a = root.find(f"{SVG}a")
    assert a.get("href") is None and a.find(f"{SVG}text").text == "click"  # the link text stays
    r = process(base / "svg/hostile/javascript_href.svg", "j.svg", tmp_path, default_policy)
    assert {"svg.script"} <= {t.id for t in r.threats}
    assert "<set" not in Path(r.output).read_text("utf-8")


def test_entities(svgs, default_policy, tmp_path):
    base, _ = svgs
    r = process(base / "svg/hostile/billion_laughs.svg", "lol.svg", tmp_path, default_policy)
    assert r.verdict == "blocked" and "svg.entity" in {t.id for t in r.threats} and r.elapsed_ms < 2000
    r = process(base / "svg/hostile/xxe.svg", "xxe.svg", tmp_path, default_policy)
    text = Path(r.output).read_text("utf-8")
    assert "root:" not in text and "&xxe;" not in text
    r = process(base / "svg/hostile/illustrator_entities.svg", "ai.svg", tmp_path, default_policy)
    root = etree.fromstring(Path(r.output).read_bytes())
    assert root.tag == f"{SVG}svg" and root.find(f"{SVG}rect").get("style") == "fill:#C33"


@pytest.mark.parametrize("css,tid", [
    ("a{background:url(http://x.example/a)}", "svg.external_ref"),
    ("a{background:\\75 rl(http://x.example/a)}", "svg.external_ref"),
    ("@import 'http://x.example/a.css'; a{fill:red}", "svg.external_ref"),
    ("@im\\70 ort 'x.css';", "svg.external_ref"),
    ("a{fill:url( 'javascript:alert(1)' )}", "svg.script"),
    ("a{width:expression(alert(1))}", "svg.script"),
    ("a{-moz-binding:url(#x)}", "svg.script"),
    ("a{background-image:image-set('https://x.example/a.png' 1x)}", "svg.external_ref"),
])
def test_css_cleaning(css, tid):
    out, found = clean_css(css)
    assert tid in {f[0] for f in found}
    assert clean_css(out)[1] == []  # idempotent: the cleaned CSS has nothing left
    assert "x.example" not in out and "javascript" not in out


def test_css_left_alone_when_safe():
    css = '.a { fill: url(#g); font-family: "Noto Sans CJK JP"; content: "\\201C" } /* note */'
    assert clean_css(css) == (css, [])


def test_embedded_image_metadata_is_removed(default_policy, tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(buf, "JPEG", exif=exif_gps(1), comment=b"Yamada")
    b64 = base64.b64encode(buf.getvalue()).decode()
    src = tmp_path / "embed.svg"
    src.write_text(f'<svg xmlns="http://www.w3.org/2000/svg"><image width="16" height="16" '
                   f'href="data:image/jpeg;base64,{b64}"/></svg>', "utf-8")
    r = process(src, src.name, tmp_path / "out", default_policy)
    assert r.verdict == "sanitized" and "image.metadata" in {t.id for t in r.threats}
    href = etree.fromstring(Path(r.output).read_bytes()).find(f"{SVG}image").get("href")
    data = base64.b64decode(href.split(",", 1)[1])
    assert b"Yamada" not in data and b"PhoneMaker" not in data
    assert Image.open(io.BytesIO(data)).size == (16, 16)


def test_keep_hyperlinks_option(svgs, default_policy, tmp_path):
    base, _ = svgs
    pol = _policy(default_policy, keep_hyperlinks=True)
    r = process(base / "svg/hostile/external_href.svg", "x.svg", tmp_path, pol)
    root = etree.fromstring(Path(r.output).read_bytes())
    assert root.find(f"{SVG}a").get("href") == "https://evil.example/phish"
    assert root.find(f"{SVG}image") is None  # loading resources stays forbidden


def test_text_only_policy_extracts_svg_text(svgs, text_policy, tmp_path):
    base, _ = svgs
    r = process(base / "svg/benign/map.svg", "map.svg", tmp_path, text_policy)
    assert r.verdict == "sanitized" and r.output.endswith("map.svg.txt")
    text = Path(r.output).read_text("utf-8")
    assert "一階の窓口の配置" in text and "<" not in text


def test_rasterize(svgs, default_policy, tmp_path):
    pytest.importorskip("cairosvg")
    base, _ = svgs
    pol = _policy(default_policy, mode="rasterize")
    r = process(base / "svg/benign/map.svg", "map.svg", tmp_path, pol)
    assert r.verdict == "sanitized" and r.output.endswith("map.png"), r.reason
    assert [t.id for t in r.threats] == ["svg.rasterized"]
    with Image.open(r.output) as im:
        assert im.size == (200, 120)
        assert im.convert("RGB").getpixel((30, 20)) == (204, 51, 51)  # the red <use> box
    r = process(base / "svg/hostile/script.svg", "s.svg", tmp_path, pol)
    assert r.verdict == "sanitized" and {"svg.script", "svg.rasterized"} <= {t.id for t in r.threats}
    big = tmp_path / "huge.svg"
    big.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="200000" height="100000"><rect width="10" '
                   'height="10"/></svg>', "utf-8")
    r = process(big, big.name, tmp_path, pol)
    with Image.open(r.output) as im:  # shrunk to the cap, aspect kept
        assert im.size[0] * im.size[1] <= 40_000_000 and abs(im.size[0] / im.size[1] - 2) < 0.01


def test_not_svg_or_broken(default_policy, tmp_path):
    src = tmp_path / "broken.svg"
    src.write_text('<svg xmlns="http://www.w3.org/2000/svg"><rect></svg>', "utf-8")
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "blocked" and "file.malformed" in {t.id for t in r.threats}


def test_cli_end_to_end(svgs, tmp_path):
    if not (Path(__file__).resolve().parent.parent / "cdr" / "cli.py").exists():
        pytest.skip("CLI not written yet")
    base, _ = svgs
    rep = sanitize_report([base / "svg/hostile/script.svg", base / "svg/hostile/billion_laughs.svg"],
                          tmp_path / "out")
    by = {Path(f["source"]).name: f for f in rep["files"]}
    assert by["script.svg"]["verdict"] == "sanitized" and "svg.script" in all_threat_ids(by["script.svg"])
    assert not re.search("<script", Path(by["script.svg"]["output"]).read_text("utf-8"))
    assert by["billion_laughs.svg"]["verdict"] == "blocked"


def _fake_rsvg(tmp_path: Path, body: str) -> Path:
    """A stand-in rsvg-convert (the real one is not installed here): a shell script first on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "rsvg-convert"
    exe.write_text("#!/bin/sh\n" + body, "utf-8")
    exe.chmod(0o755)
    return bindir


def test_rsvg_fallback_runs_under_the_policy_memory_cap(svgs, default_policy, tmp_path, monkeypatch):
    base, _ = svgs
    png = tmp_path / "fake.png"
    Image.new("RGB", (200, 120), (255, 255, 255)).save(png)
    seen = tmp_path / "ulimit.txt"
    bindir = _fake_rsvg(tmp_path, f'ulimit -v > {seen}\nwhile [ "$1" != -o ]; do shift; done\ncp {png} "$2"\n')
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setitem(sys.modules, "cairosvg.surface", None)  # force the fallback
    d = _policy(default_policy, mode="rasterize").to_dict()
    d["limits"]["worker_memory_mb"] = 700
    r = process(base / "svg/benign/map.svg", "map.svg", tmp_path / "o", Policy.from_dict(d, "test"))
    assert r.verdict == "sanitized" and r.output.endswith("map.png"), r.reason
    assert seen.read_text().strip() == str(700 * 1024)  # ulimit -v counts KiB


def test_tool_timeout_kills_the_whole_process_group(tmp_path):
    """The runner shared by rsvg-convert, poppler and LibreOffice: a helper the tool starts dies with it."""
    pidfile = tmp_path / "pid"
    t = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_tool(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; sleep 60"], 1.0, memory_cap(512 << 20), tmp_path)
    assert time.monotonic() - t < 10
    grandchild = int(pidfile.read_text())
    for _ in range(50):  # SIGKILLed; gone once init reaps it
        try:
            state = Path(f"/proc/{grandchild}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            break
        if state == "Z":
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the rasteriser's child survived the timeout")


def test_duplicate_namespaced_attribute_blocks_even_after_a_warning(tmp_path, default_policy):
    src = tmp_path / "dup.svg"
    src.write_bytes(b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:a="http://www.w3.org/1999/xlink" '
                    b'xmlns:b="http://www.w3.org/1999/xlink" width="10" height="10">'
                    b'<a a:href="#x" b:href="javascript:alert(1)"><rect width="5" height="5"/></a>'
                    b'<text xml:space="bogus">t</text></svg>')
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "blocked" and "file.malformed" in {t.id for t in r.threats}


def test_css_addresses_hidden_from_the_url_scan_and_prefixed_animation_targets(tmp_path, default_policy):
    head = (b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/1999/xlink" '
            b'width="10" height="10">')
    cases = [
        b'<rect width="5" height="5" style="cursor:url(http://203.0.113.5/*.png),auto"/>',  # "/*" inside url(
        b'<style>@font-face{font-family:q;src:url(http://203.0.113.5/*f.woff)}</style>',
        b'<style>svg{background:url(http://203.0.113.5/b.png</style>',  # left unclosed at the end
        b'<rect style="cursor:url(\'http://203.0.113.5/c.png"/>',
        b'<image width="5" height="5"><set attributeName="x:href" to="http://203.0.113.5/d.png"/></image>',
    ]
    for i, body in enumerate(cases):
        src = tmp_path / f"c{i}.svg"
        src.write_bytes(head + body + b"</svg>")
        r = process(src, src.name, tmp_path / f"o{i}", default_policy)
        assert r.verdict == "sanitized" and "svg.external_ref" in {t.id for t in r.threats}, (body, r.threats)
        assert b"203.0.113.5" not in Path(r.output).read_bytes(), body
    src = tmp_path / "ok.svg"
    src.write_bytes(head + b'<rect width="5" height="5" style="fill:url(#g);stroke:red /* note */"/></svg>')
    r = process(src, src.name, tmp_path / "ok", default_policy)
    assert r.verdict == "clean" and b"fill:url(#g);stroke:red" in Path(r.output).read_bytes()


def test_use_expansion_bomb_is_blocked(tmp_path, default_policy):
    body = ['<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><defs><rect id="l0" width="1" height="1"/>']
    for i in range(1, 11):  # each level draws the one below four times: 4^10 rectangles
        body.append(f'<g id="l{i}">' + "".join(f'<use href="#l{i - 1}"/>' for _ in range(4)) + "</g>")
    body.append('</defs><use href="#l10"/></svg>')
    src = tmp_path / "bomb.svg"
    src.write_text("".join(body), "utf-8")
    r = process(src, src.name, tmp_path / "o", default_policy)
    assert r.verdict == "blocked" and "file.limit" in {t.id for t in r.threats}
    ok = tmp_path / "ok.svg"  # ordinary reuse stays
    ok.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><defs><circle id="c" r="1"/>'
                  '</defs>' + '<use href="#c"/>' * 50 + "</svg>", "utf-8")
    assert process(ok, ok.name, tmp_path / "o2", default_policy).verdict == "clean"


def test_attributes_are_an_allow_list(default_policy, tmp_path):
    """Issue 20: an attribute SVG does not define is dropped (it was kept unless it looked dangerous);
    geometry, presentation, accessibility and xlink:title stay."""
    from cdr.pipeline import process

    src = tmp_path / "a.svg"
    src.write_text('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
                   'width="100" height="50" viewBox="0 0 100 50"><rect x="1" y="2" width="30" height="20" '
                   'fill="#336699" stroke-width="2" aria-label="区画" data-payload="javascript:alert(1)" '
                   'formtarget="x" ping="http://203.0.113.5/"/><a xlink:title="説明" xlink:foo="bar"><text x="5" '
                   'y="40" font-family="IPAexGothic">地図</text></a></svg>', "utf-8")
    r = process(src, src.name, tmp_path / "out", default_policy)
    assert r.verdict != "blocked", r.reason
    out = Path(r.output).read_text("utf-8")
    for kept in ('width="30"', 'fill="#336699"', 'stroke-width="2"', 'aria-label="区画"', 'xlink:title="説明"',
                 'font-family="IPAexGothic"', "地図"):
        assert kept in out, kept
    for gone in ("data-payload", "formtarget", "ping", "203.0.113.5", "xlink:foo"):
        assert gone not in out, gone
