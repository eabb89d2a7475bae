"""What a reader of the rebuilt PDF runs and loads: content streams and the fonts their resources name.

Pages' contents, forms (annotation appearances included), tiling patterns and Type 3 glyphs, and the fonts
in the resources of all of those. Looking fonts up through resources spares a look into every dictionary of
the file (a file of 5,000 annotations); what no resource reaches, the allow-list's sweep has emptied.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pikepdf
from pikepdf import Name


@dataclass
class Reached:
    contents: list[Any] = field(default_factory=list)
    fonts: list[Any] = field(default_factory=list)


def reached(pdf: pikepdf.Pdf, objects: list[Any]) -> Reached:
    out = Reached()
    resources = []
    for page in pdf.pages:
        c = page.obj.get("/Contents")
        out.contents += [x for x in (c if isinstance(c, pikepdf.Array) else [c]) if isinstance(x, pikepdf.Stream)]
        resources.append(page.resources if "/Resources" in page.obj else None)
    for obj in objects:
        if isinstance(obj, pikepdf.Stream) and (obj.get("/Subtype") == Name.Form or obj.get("/PatternType") == 1):
            out.contents.append(obj)
            resources.append(obj.get("/Resources"))
    seen: set[tuple[int, int]] = set()
    while resources:
        res = resources.pop()
        fonts = res.get("/Font") if isinstance(res, pikepdf.Dictionary) else None
        if not isinstance(fonts, pikepdf.Dictionary):
            continue
        for font in fonts.values():
            if not isinstance(font, pikepdf.Dictionary):
                continue
            if font.objgen != (0, 0):
                if font.objgen in seen:
                    continue
                seen.add(font.objgen)
            out.fonts.append(font)
            if font.get("/Subtype") == Name.Type3:
                procs = font.get("/CharProcs")
                if isinstance(procs, pikepdf.Dictionary):
                    out.contents += [v for v in procs.values() if isinstance(v, pikepdf.Stream)]
                resources.append(font.get("/Resources"))
    return out
