"""Policies load into typed objects; every error names the file, the key and the value."""
from __future__ import annotations

import pytest

from cdr.policy import PolicyError, load_policy
from tests.conftest import ROOT


def write(tmp_path, body: str):
    p = tmp_path / "p.toml"
    p.write_text(body, "utf-8")
    return p


def test_shipped_policies_load():
    d = load_policy(ROOT / "rules" / "default.toml")
    t = load_policy("text-only")
    assert d.name == "default" and d.version and t.name == "text-only"
    assert d.family("text").action == "sanitize" and t.family("text").action == "text"
    assert d.family("executable").action == "block" and d.family("unknown").action == "block"
    assert d.limits.seconds_per_file > 0 and d.limits.archive_depth >= 1


@pytest.mark.parametrize("body, needle", [
    ('name = "x"\nversion = "1"\n[limits]\nseconds_per_file = -1\n', "limits.seconds_per_file = -1"),
    ('name = "x"\nversion = "1"\n[limits]\nsecs = 1\n', "limits.secs"),
    ('name = "x"\nversion = "1"\n[families.nosuch]\naction = "sanitize"\n', "families.nosuch"),
    ('name = "x"\nversion = "1"\n[families.csv]\naction = "sanitize"\nformulas = "keep"\n',
     "families.csv.formulas = 'keep'"),
    ('name = "x"\nversion = "1"\n[families.executable]\naction = "sanitize"\n', "always blocked"),
    ('version = "1"\n', "name = None"),
    ('name = "x"\nversion = "1"\nbogus = 3\n', "bogus = 3"),
    ('name = "x"\nversion = [1\n', "not valid TOML"),
])
def test_errors_name_file_key_value(tmp_path, body, needle):
    with pytest.raises(PolicyError) as err:
        load_policy(write(tmp_path, body))
    assert "p.toml" in str(err.value) and needle in str(err.value)


def test_unlisted_family_is_blocked(tmp_path):
    p = load_policy(write(tmp_path, 'name = "x"\nversion = "1"\n'))
    assert p.family("pdf").action == "block"


def test_roundtrip_through_dict():
    from cdr.policy import Policy

    d = load_policy("default")
    again = Policy.from_dict(d.to_dict())
    assert again.to_dict() == d.to_dict()
