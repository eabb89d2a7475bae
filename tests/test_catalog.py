"""cdr.formats._catalog says, without importing a handler, which module registers each family and
what options the policy accepts for it: it must say what the handlers themselves say."""
from __future__ import annotations

import json
import subprocess
import sys

from cdr import handler as H
from cdr.detect import KINDS
from cdr.formats._catalog import MODULES, OPTIONS


def test_catalog_matches_the_handlers():
    H.load_handlers()
    assert set(MODULES) == set(OPTIONS) == set(H._BY_FAMILY), "a family was added or removed: update _catalog.py"
    for fam, cls in H._BY_FAMILY.items():
        assert cls.__module__ == MODULES[fam], fam
        assert cls.options == OPTIONS[fam], f"the {fam} handler's options differ from cdr/formats/_catalog.py"
    for mime, h in H._BY_MIME.items():
        # handler_for finds a module by the family detection gives the type: they must agree.
        assert mime in KINDS and KINDS[mime].family == h.family, mime


def _fresh(code: str) -> dict:
    """Run `code` in a new interpreter (nothing imported yet); it prints a JSON object."""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(p.stdout)


def test_policy_and_one_family_import_only_that_family():
    """What makes a one-file run start fast: loading the policy imports no handler, and a CSV
    brings in the text module and the stdlib-only per-file memo alone (not pikepdf, lxml, PIL or the mail stack)."""
    got = _fresh("import json, sys\n"
                 "from cdr.policy import load_policy\n"
                 "from cdr.handler import handler_for\n"
                 "load_policy('default')\n"
                 "before = sorted(m for m in sys.modules if m.startswith('cdr.formats.') and m != 'cdr.formats._catalog')\n"
                 "h = handler_for('text/csv')\n"
                 "after = sorted(m for m in sys.modules if m.startswith('cdr.formats.'))\n"
                 "heavy = sorted(m for m in ('pikepdf', 'lxml', 'PIL', 'olefile', 'oletools') if m in sys.modules)\n"
                 "print(json.dumps({'before': before, 'after': after, 'family': h.family, 'heavy': heavy}))\n")
    assert got["before"] == []
    # _memo: the per-file record of bytes proven clean (standard library only).
    assert got["after"] == ["cdr.formats._catalog", "cdr.formats._memo", "cdr.formats.text"] \
        and got["family"] == "csv"
    assert got["heavy"] == []


def test_lazy_lookup_finds_the_same_handler_as_loading_everything():
    got = _fresh("import json\n"
                 "from cdr.detect import KINDS\n"
                 "from cdr.handler import handler_for\n"
                 "print(json.dumps({m: type(h).__module__ + '.' + type(h).__name__\n"
                 "                  for m in KINDS if (h := handler_for(m)) is not None}))\n")
    H.load_handlers()
    assert got == {m: f"{type(h).__module__}.{type(h).__name__}" for m, h in H._BY_MIME.items()}
