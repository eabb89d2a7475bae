"""Plain-text renditions of Word, Excel and PowerPoint packages, in reading order."""
from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

from ...numfmt import builtin, format_number
from .const import A_NS, MACRO_MAIN, MAIN, MC_NS, OD, P_NS, R_NS, S_NS, W_NS, tags

_MC_ALT = f"{{{MC_NS}}}AlternateContent"
_MC_CHOICE = f"{{{MC_NS}}}Choice"
_MC_FALLBACK = f"{{{MC_NS}}}Fallback"

_W = {k: tags(W_NS, k) for k in ("p", "tbl", "tr", "tc", "t", "tab", "br", "cr", "noBreakHyphen", "del",
                                 "delText", "instrText", "delInstrText", "rt", "txbxContent", "body", "sdt",
                                 "sdtContent", "customXml", "footnote", "endnote", "comment", "hdr", "ftr",
                                 "moveFrom")}
_W_WRAP = _W["sdt"] | _W["sdtContent"] | _W["customXml"]
_W_SKIP = _W["del"] | _W["delText"] | _W["instrText"] | _W["delInstrText"] | _W["rt"] | _W["moveFrom"]


def _rid(el: etree._Element) -> str | None:
    for ns in R_NS:
        v = el.get(f"{{{ns}}}id")
        if v is not None:
            return v
    return None


# ---------------------------------------------------------------- Word

def _w_para(p: etree._Element, out: list[str]) -> None:
    parts: list[str] = []
    boxes: list[etree._Element] = []

    def walk(e: etree._Element) -> None:
        for c in e:
            t = c.tag
            if t in _W["t"]:
                parts.append(c.text or "")
            elif t in _W["tab"]:
                parts.append("\t")
            elif t in _W["br"] or t in _W["cr"]:
                parts.append("\n")
            elif t in _W["noBreakHyphen"]:
                parts.append("-")
            elif t in _W_SKIP or t == _MC_FALLBACK:
                continue
            elif t in _W["txbxContent"]:
                boxes.append(c)
            elif t == _MC_ALT:
                choice = next(c.iterchildren(_MC_CHOICE), None)
                if choice is not None:
                    walk(choice)
            else:
                walk(c)

    walk(p)
    out.append("".join(parts))
    for box in boxes:
        _w_blocks(box, out)


def _w_rows(tbl: etree._Element):
    for c in tbl:
        if c.tag in _W["tr"]:
            yield c
        elif c.tag in _W_WRAP:
            yield from _w_rows(c)


def _w_cells(tr: etree._Element):
    for c in tr:
        if c.tag in _W["tc"]:
            yield c
        elif c.tag in _W_WRAP:
            yield from _w_cells(c)


def _w_blocks(el: etree._Element, out: list[str]) -> None:
    for c in el:
        t = c.tag
        if t in _W["p"]:
            _w_para(c, out)
        elif t in _W["tbl"]:
            for tr in _w_rows(c):
                cells = []
                for tc in _w_cells(tr):
                    sub: list[str] = []
                    _w_blocks(tc, sub)
                    cells.append(" ".join(s.replace("\t", " ").replace("\n", " ") for s in sub if s).strip())
                out.append("\t".join(cells))
        elif t == _MC_ALT:
            choice = next(c.iterchildren(_MC_CHOICE), None)
            if choice is not None:
                _w_blocks(choice, out)
        elif t in _W_WRAP or t in _W["body"]:
            _w_blocks(c, out)


def _docx(rb, main: str) -> str:
    out: list[str] = []
    _w_blocks(rb.parse(main), out)
    extras: dict[str, list[str]] = {"footnotes": [], "endnotes": [], "comments": [], "header": [], "footer": []}
    for rel in rb.rels(main):
        key = rel.ntype[len(OD):] if rel.ntype.startswith(OD) else ""
        if key in extras and not rel.external:
            part = rb.resolve(main, rel.target)
            if part:
                sub: list[str] = []
                root = rb.parse(part)
                for note in root:
                    if note.get(f"{{{W_NS[0]}}}type") in ("separator", "continuationSeparator"):
                        continue
                    if note.tag in _W["p"] or note.tag in _W["tbl"]:
                        _w_blocks(root, sub)
                        break
                    _w_blocks(note, sub)
                text = "\n".join(s for s in sub if s.strip())
                if text and text not in extras[key]:
                    extras[key].append(text)
    labels = {"footnotes": "脚注", "endnotes": "文末脚注", "comments": "コメント", "header": "ヘッダー",
              "footer": "フッター"}
    for key, texts in extras.items():
        for text in texts:
            out.append(f"\n--- {labels[key]} ---")
            out.append(text)
    return "\n".join(out)


# ---------------------------------------------------------------- Excel

_S = {k: tags(S_NS, k) for k in ("sheet", "si", "t", "rPh", "row", "c", "v", "is", "numFmts", "numFmt", "cellXfs",
                                 "xf", "workbookPr")}
_COL = re.compile(r"^([A-Za-z]{1,3})")


def _s_string(si: etree._Element) -> str:
    parts = []
    for t in si.iter(*_S["t"]):
        anc = t.getparent()
        if anc is not None and anc.tag in _S["rPh"]:
            continue  # furigana reading, not the text
        parts.append(t.text or "")
    return "".join(parts)


def _col(ref: str) -> int:
    m = _COL.match(ref or "")
    if not m:
        return -1
    n = 0
    for ch in m.group(1).upper():
        n = n * 26 + ord(ch) - 64
    return n - 1


def _cell_formats(styles: etree._Element) -> list[str]:
    """The number format code of each cell style (cellXfs index), custom codes over built-in ones."""
    custom: dict[int, str] = {}
    for nf in styles.iter(*_S["numFmt"]):
        try:
            custom[int(nf.get("numFmtId", ""))] = nf.get("formatCode") or "General"
        except ValueError:
            continue
    out: list[str] = []
    for xfs in styles.iterchildren(*_S["cellXfs"]):
        for xf in xfs.iterchildren(*_S["xf"]):
            try:
                fid = int(xf.get("numFmtId", "0"))
            except ValueError:
                fid = 0
            out.append(custom.get(fid) or builtin(fid))
    return out


def _xlsx(rb, main: str) -> str:
    wb = rb.parse(main)
    targets = {r.id: rb.resolve(main, r.target) for r in rb.rels(main) if not r.external}
    strings: list[str] = []
    formats: list[str] = []
    for r in rb.rels(main):
        if r.ntype == OD + "sharedStrings" and targets.get(r.id):
            strings = [_s_string(si) for si in rb.parse(targets[r.id]).iterchildren(*_S["si"])]
        elif r.ntype == OD + "styles" and targets.get(r.id):
            formats = _cell_formats(rb.parse(targets[r.id]))
    pr = next(wb.iterchildren(*_S["workbookPr"]), None)
    date1904 = pr is not None and pr.get("date1904", "").lower() in ("1", "true")
    out: list[str] = []
    for sh in wb.iter(*_S["sheet"]):
        part = targets.get(_rid(sh) or "")
        out.append(f"--- シート: {sh.get('name', '')} ---")
        if not part or not part.lower().endswith(".xml") or "worksheet" not in rb.ct_of(part):
            continue
        root = rb.parse(part)
        for row in root.iter(*_S["row"]):
            vals: list[str] = []
            for c in row.iterchildren(*_S["c"]):
                i = _col(c.get("r", ""))
                if i < 0:
                    i = len(vals)
                t = c.get("t")
                v = next(c.iterchildren(*_S["v"]), None)
                text = v.text or "" if v is not None else ""
                if t == "s":
                    try:
                        text = strings[int(text)]
                    except (ValueError, IndexError):
                        text = ""
                elif t == "inlineStr":
                    is_ = next(c.iterchildren(*_S["is"]), None)
                    text = _s_string(is_) if is_ is not None else ""
                elif t == "b":
                    text = "TRUE" if text == "1" else "FALSE"
                elif t in (None, "n") and text:
                    # What the cell shows (its number format), not the stored float.
                    try:
                        code = formats[int(c.get("s", "0"))]
                    except (ValueError, IndexError):
                        code = "General"
                    text = format_number(text, code, date1904)
                if not text or i > 16384:
                    continue
                while len(vals) < i:
                    vals.append("")
                vals.append(text.replace("\t", " ").replace("\n", " "))
            if vals:
                out.append("\t".join(vals))
    return "\n".join(out)


# ---------------------------------------------------------------- PowerPoint

_A = {k: tags(A_NS, k) for k in ("p", "t", "br", "tbl", "tr", "tc", "txBody")}
_P = {k: tags(P_NS, k) for k in ("sldId", "sp", "grpSp", "graphicFrame", "txBody", "spTree", "ph", "cSld")}


def _a_paras(body: etree._Element) -> list[str]:
    lines = []
    for p in body.iterchildren(*_A["p"]):
        parts = []
        for e in p.iter(*_A["t"], *_A["br"]):
            parts.append("\n" if e.tag in _A["br"] else (e.text or ""))
        lines.append("".join(parts))
    return lines


def _p_shapes(tree: etree._Element, out: list[str], notes: bool = False) -> None:
    for c in tree:
        t = c.tag
        if t == _MC_ALT:
            choice = next(c.iterchildren(_MC_CHOICE), None)
            if choice is not None:
                _p_shapes(choice, out, notes)
        elif t in _P["grpSp"]:
            _p_shapes(c, out, notes)
        elif t in _P["sp"]:
            if notes:
                ph = next(c.iter(*_P["ph"]), None)
                if ph is None or ph.get("type") not in ("body", None) or ph.get("type") is None and \
                        ph.get("idx") is None:
                    continue
            body = next(c.iterchildren(*_P["txBody"]), None)
            if body is not None:
                out.extend(line for line in _a_paras(body) if line.strip())
        elif t in _P["graphicFrame"]:
            for tbl in c.iter(*_A["tbl"]):
                for tr in tbl.iterchildren(*_A["tr"]):
                    cells = []
                    for tc in tr.iterchildren(*_A["tc"]):
                        body = next(tc.iterchildren(*_A["txBody"]), None)
                        cells.append(" ".join(_a_paras(body)) if body is not None else "")
                    out.append("\t".join(cells))


def _pptx(rb, main: str) -> str:
    pres = rb.parse(main)
    targets = {r.id: rb.resolve(main, r.target) for r in rb.rels(main) if not r.external}
    out: list[str] = []
    for n, sld in enumerate(pres.iter(*_P["sldId"]), 1):
        part = targets.get(_rid(sld) or "")
        out.append(f"--- スライド {n} ---")
        if not part:
            continue
        root = rb.parse(part)
        for tree in root.iter(*_P["spTree"]):
            _p_shapes(tree, out)
            break
        for r in rb.rels(part):
            if r.ntype == OD + "notesSlide" and not r.external:
                npart = rb.resolve(part, r.target)
                if npart:
                    lines: list[str] = []
                    for tree in rb.parse(npart).iter(*_P["spTree"]):
                        _p_shapes(tree, lines, notes=True)
                        break
                    if lines:
                        out.append("[ノート] " + "\n".join(lines))
    return "\n".join(out)


def package_text(rb, path: Path) -> str:
    """Text of an opened package (`rb` is a package.Rebuild used only for reading)."""
    rb._content_types()
    mains = [r for r in rb.rels("") if r.ntype == OD + "officeDocument" and not r.external]
    main = rb.resolve("", mains[0].target) if mains else None
    if main is None:
        return ""
    ct = rb.ct_of(main).lower()
    kind = MAIN.get(MACRO_MAIN.get(ct, ct), ("",))[0]
    if kind == "docx":
        text = _docx(rb, main)
    elif kind == "xlsx":
        text = _xlsx(rb, main)
    elif kind == "pptx":
        text = _pptx(rb, main)
    else:
        return ""
    return text.strip("\n") + "\n"
