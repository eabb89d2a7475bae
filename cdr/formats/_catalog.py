"""What the policy and the registry know about each built-in format family without importing it.

Importing every handler (pikepdf, lxml, PIL, the mail stack...) costs a third of a second; a policy
check, the command line's parent process and a worker about to sanitize one CSV need none of it. So
the module of each family and its policy options are listed here, and `cdr.handler` imports a
family's module only when a file of that family arrives (tests/test_catalog.py keeps this table and
the handlers in step). Site plugins (CDR_PLUGINS) may add or override families: then every handler
is imported, as before.
"""
from __future__ import annotations

from ..handler import Option

# The module that registers each family's handler (several families may share one module).
MODULES: dict[str, str] = {
    "pdf": "cdr.formats.pdf",
    "ooxml": "cdr.formats.ooxml",
    "legacy_office": "cdr.formats.legacy_office",
    "rtf": "cdr.formats.rtf",
    "odf": "cdr.formats.odf",
    "ichitaro": "cdr.formats.japanese_wp",
    "docuworks": "cdr.formats.japanese_wp",
    "image": "cdr.formats.image",
    "svg": "cdr.formats.svg",
    "archive": "cdr.formats.archive",
    "text": "cdr.formats.text",
    "csv": "cdr.formats.text",
    "html": "cdr.formats.html",
    "mail": "cdr.formats.mail",
}

MAIL_ORIGINAL_REQUEST = "原本が必要な場合は、職員用コンソールから原本取り出しを申請してください（上長の承認が必要です）。"

# Each family's policy options (Handler.options): every handler takes its own from here, so that a
# policy is checked without importing one (tests/test_catalog.py checks the modules agree).
OPTIONS: dict[str, dict[str, Option]] = {
    "pdf": {
        "embedded_files": Option("drop", ("drop", "sanitize"),
                                 "attachments: drop them, or sanitize each through the pipeline and re-attach"),
        "metadata": Option("drop", ("drop", "keep"), "document Info and XMP metadata"),
        "links": Option("web", ("web", "drop"), "web: keep http/https/mailto links; drop: remove every URI"),
        "malformed": Option("deliver", ("deliver", "block"), "a damaged file repaired by the parser"),
        "render": Option("none", ("none", "images"), "images: render pages to images (画像化)"),
        "dpi": Option(150, None, "resolution for render = images"),
    },
    "ooxml": {
        "metadata": Option("keep", ("keep", "drop"),
                           help="document properties (author, company, custom properties): keep or drop"),
        "hyperlinks": Option("web", ("web", "drop"),
                             help="web: keep http/https/mailto links, drop the rest; drop: remove all links"),
    },
    "legacy_office": {
        "mode": Option("rebuild", ("rebuild", "convert"),
                       help="rebuild: a new file of the same format from the records understood; "
                            "convert: LibreOffice to OOXML, then the OOXML rebuild"),
        "convert": Option("ooxml", ("ooxml", "block"),
                          help="when a file is converted (mode = convert, or too damaged to rebuild): "
                               "ooxml: convert with LibreOffice; block: refuse it"),
        "metadata": Option("drop", ("drop", "keep"),
                           help="drop: keep only the properties that change display (code page, application); "
                                "keep: also title, author, company, dates"),
        "hyperlinks": Option("web", ("web", "drop"),
                             help="web: keep http/https/mailto links, drop the rest; drop: remove all links"),
    },
    "odf": {
        "metadata": Option("keep", ("keep", "drop"),
                           help="document properties (author, dates, statistics): keep, or drop all but the "
                                "generator (the application that wrote the file)"),
    },
    "image": {
        "mode": Option("rebuild", ("rebuild", "reencode", "lossless"),
                       "rebuild: JPEG on its DCT coefficients, others from pixels; reencode: everything from "
                       "decoded pixels; lossless: JPEG on its coefficients, PNG chunk-level rewrite"),
        "icc": Option("srgb", ("srgb", "keep"),
                      "srgb: convert colour-managed images to sRGB; keep: keep a profile that parses"),
    },
    "svg": {
        "mode": Option("sanitize", ("sanitize", "rasterize"),
                       "sanitize: deliver cleaned SVG; rasterize: deliver a PNG rendering of it"),
        "keep_hyperlinks": Option(False, help="keep http(s)/mailto links on <a> elements"),
        "raster_scale": Option(1.0, help="pixels per CSS pixel when rasterising"),
    },
    "archive": {
        "ratio_floor_mb": Option(1.0, help="the expansion-ratio limit applies once this many MB are expanded "
                                           "(a small, very repetitive text file is not a bomb)"),
        "member_text": Option(True, help="the text rendition includes each member's text, not only the list"),
    },
    "csv": {
        "formulas": Option("neutralize", ("neutralize", "block"),
                           "cells that a spreadsheet would evaluate: prefix an apostrophe, or block the file"),
    },
    "html": {
        "title": Option(True, help="keep the document title"),
        "links": Option("web", ("web", "drop"),
                        "web: keep http/https/mailto and relative links; drop: keep only links within the page"),
    },
    "mail": {
        "html": Option("text", ("text", "sanitize"),
                       "text: HTML bodies become readable text (tables, lists kept); sanitize: cleaned HTML kept "
                       "next to the text, with its own pictures only"),
        "links": Option("defang", ("keep", "defang", "drop"),
                        "keep: links as sent; defang: hxxps://example[.]jp/... as text; drop: link removed"),
        "dns": Option(True, help="look up DKIM keys and DMARC records (results are 'none' without DNS)"),
        "authserv_id": Option("lgwan-cdr", help="the name in our Authentication-Results header"),
        "trusted_authserv_ids": Option([], help="receivers whose Authentication-Results (SPF) we take over"),
        "dmarc_fail": Option("report", ("report", "block"),
                             "block: a mail failing DMARC whose domain says reject or quarantine is blocked"),
        "original_request": Option(MAIL_ORIGINAL_REQUEST, help="the banner's sentence on how to ask for the original"),
        "ratio_floor_mb": Option(1.0, help="mail_ratio applies once this many MB have been decoded"),
    },
    "rtf": {},
    "ichitaro": {},
    "docuworks": {},
    "text": {},
}
