"""The operator's command line as a new user meets it: every `transfer-agent` subcommand's --help says
what it does and shows an example, and account commands take the name the same way (--name)."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from transfer_agent.cli import build_parser

BIN = Path(sys.executable).parent / "transfer-agent"


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """(command words, its --help text) of every subcommand, as argparse prints them."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sp in action.choices.items():
                out.append(((*path, name), sp.format_help()))
                out += _commands(sp, (*path, name))
    return out


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=60, input=stdin)


def test_every_subcommand_help_says_what_it_does_with_an_example():
    commands = _commands(build_parser())
    names = [c for c, _h in commands]
    assert ("user", "unlock") in names and ("exchange", "revoke") in names and len(names) > 20
    for cmd, text in commands:
        paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
        # usage, then a sentence of what the command does (not straight into the option list)
        assert len(paragraphs) > 2 and not paragraphs[1].startswith(("options:", "positional arguments:")), \
            (cmd, text)
        assert "example" in text and ".venv/bin/transfer-agent " + cmd[0] in text, (cmd, text)
    # The installed command prints the same.
    r = _run("user", "unlock", "--help")
    assert r.returncode == 0 and "Clear a lockout" in r.stdout and "user unlock --data-dir var --name" in r.stdout


def test_account_commands_take_the_name_like_user_add(tmp_path):
    data = str(tmp_path / "var")
    r = _run("user", "add", "--data-dir", data, "--name", "yamada", "--role", "clerk", stdin="a long password 1\n")
    assert r.returncode == 0, r.stderr
    for cmd in (["unlock"], ["disable"], ["enable"], ["channels", "--channels", "国保課"]):
        r = _run("user", cmd[0], "--data-dir", data, "--name", "yamada", *cmd[1:])
        assert r.returncode == 0, (cmd, r.stderr)
        # The positional form of earlier versions still works; both at once must agree.
        r = _run("user", cmd[0], "--data-dir", data, "yamada", *cmd[1:])
        assert r.returncode == 0, (cmd, r.stderr)
        r = _run("user", cmd[0], "--data-dir", data, "--name", "yamada", "sato", *cmd[1:])
        assert r.returncode == 2 and "once" in r.stderr, (cmd, r.stderr)
    r = _run("user", "passwd", "--data-dir", data, "--name", "yamada", stdin="another long password\n")
    assert r.returncode == 0, r.stderr
    listed = _run("user", "list", "--data-dir", data).stdout
    assert "yamada" in listed and "国保課" in listed, listed
    header, row = listed.splitlines()[:2]
    assert row[header.index("channels"):].startswith("国保課"), listed
    # Times carry their zone, and the columns stay aligned with it.
    assert _run("apikey", "create", "--data-dir", data, "--client", "egov", "--channels", "kokuho").returncode == 0
    keys = _run("apikey", "list", "--data-dir", data).stdout
    header, row = keys.splitlines()[:2]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d JST -", row), keys
    assert row[header.index("status"):].startswith("active") and row[header.index("channels"):].startswith("kokuho"), keys
