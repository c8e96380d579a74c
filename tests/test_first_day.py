"""First-day friction (issue #13): help readable at 80 columns, usage errors exit 2, partial failures exit
non-zero, the right key is named, small output details."""

from __future__ import annotations

import re

import pytest

from tests.test_help_snapshot import COMMANDS


def _params(args: list[str]):
    """The Click parameters of `svgrft ARGS`."""
    from typer.main import get_command

    from svgrft.cli.main import app

    cmd = get_command(app)
    for name in args:
        cmd = cmd.commands[name]
    return cmd.params


@pytest.mark.parametrize("width", [80, 99])
def test_every_option_name_is_readable_in_a_narrow_terminal(cli, monkeypatch, width):
    """Rich's option tables cut names at 80 columns (`--eval-auto-carveo…`, `--rollout-server-u…`); under 100
    columns the help uses Click's plain layout: every name whole, no line wider than the terminal."""
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.delenv("TERMINAL_WIDTH", raising=False)
    for args in COMMANDS:
        r = cli(*args, "--help")
        assert r.exit_code == 0, (args, r)
        text = r.stdout
        assert "…" not in re.sub(r"accounts/…/|running, failed, …|invocation_id:…", "", text), (args, text)
        assert max(len(line) for line in text.splitlines()) <= width, (args, text)
        words = set(re.findall(r"(?<![\w-])-{1,2}[\w][\w-]*", text))
        for p in _params(args):
            if getattr(p, "hidden", False):  # the global options repeated after a command
                continue
            for opt in [*p.opts, *p.secondary_opts]:
                if opt.startswith("-"):
                    assert opt in words, (args, opt)


def test_wide_terminals_keep_the_rich_panels(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    r = cli("train", "--help")
    assert "╭─ Options" in r.stdout and "--eval-auto-carveout" in r.stdout and "--rollout-server-url" in r.stdout
