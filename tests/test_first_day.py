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


# ---------------------------------------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    "args", [["--epochs", "0"], ["--epochs", "abc"], ["--n", "-1"], ["--temperature", "9"], ["--max-tokens", "x"]]
)
def test_a_bad_train_flag_is_a_usage_error(cli, args):
    """`--epochs abc` exited 2 but `--epochs 0` exited 1: both are usage errors (README: exit 2)."""
    r = cli("train", "--base-model", "qwen3-0p6b", "--dry-run", *args)
    assert r.exit_code == 2, r
    assert r.stderr.startswith("Error: ") and "\nhint: " in r.stderr


def test_a_bad_value_in_the_config_file_stays_a_config_error(cli, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[train]\nepochs = 0\n")
    r = cli("train", "--base-model", "qwen3-0p6b", "--dry-run", "--config", cfg)
    assert r.exit_code == 1 and "train.epochs" in r.stderr, r


@pytest.mark.browser
def test_render_exits_1_when_some_inputs_fail(cli, tmp_path):
    """2 of 5 inputs failing exited 0: CI could not notice. The PNGs of the others are still written."""
    good = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><rect width="20" height="20" fill="red"/></svg>'
    )
    files = []
    for i in range(3):
        files.append(tmp_path / f"ok{i}.svg")
        files[-1].write_text(good)
    for i, bad in enumerate(["no svg at all", "<svg><rect"]):
        files.append(tmp_path / f"bad{i}.svg")
        files[-1].write_text(bad)
    r = cli("render", *files, "-o", tmp_path / "out", "--json")
    assert r.exit_code == 1, r
    assert r.json()["rendered"] == 3 and sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "ok0.svg.png",
        "ok1.svg.png",
        "ok2.svg.png",
    ]
    assert "Error: 2 of 5 inputs did not render" in r.stderr
    ok = cli("render", *files[:3], "-o", tmp_path / "out2")
    assert ok.exit_code == 0, ok


def test_secrets_push_dry_run_without_keys_shows_the_plan(cli, monkeypatch):
    """`secrets push --dry-run` with no keys exited 1: it now shows what would be pushed, and what is not set."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("FIREWORKS_API_KEY", raising=False)
    r = cli("secrets", "push", "--dry-run", "--json")
    assert r.exit_code == 0, r
    rows = {x["key"]: x for x in r.json()["secrets"]}
    assert set(rows) == {"OPENAI_API_KEY", "FIREWORKS_API_KEY"}
    assert all(x["value"] == "(not set)" for x in rows.values())
    assert "not set" in r.stderr and "Error" not in r.stderr
    real = cli("secrets", "push")  # the real push still refuses
    assert real.exit_code == 1 and real.stderr.startswith("Error: ")


def test_eval_against_another_endpoint_names_openai_key(cli, monkeypatch, tmp_path):
    """Non-Fireworks --base-url uses OPENAI_API_KEY (per --help): with no keys, that is the key named."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("FIREWORKS_API_KEY", raising=False)
    monkeypatch.setenv("SVGRFT_HOME", str(tmp_path / "home"))
    r = cli("eval", "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--rows", "1")
    assert r.exit_code == 1, r
    first = r.stderr.strip().splitlines()[0]
    assert first.startswith("Error: OPENAI_API_KEY is not set"), r.stderr
