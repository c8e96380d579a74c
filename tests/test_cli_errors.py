"""Errors the way the user sees them: one `Error:` line and a `hint:` line, exit 1 (2 for a usage error), never
a traceback or a boxed panel; file-system failures, bad flag values and a bad Chromium path named by its source."""

from __future__ import annotations

import pytest

from tests.helpers import one_error


def test_usage_error_exits_2(cli):
    r = cli("secrets", "push", "--no-such-flag")
    assert r.exit_code == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (("doctor", "--bogus"), "No such option: --bogus"),
        (("dataset", "validate"), "Missing argument"),
        (("render", "x.svg", "--size", "5"), "--size"),
        (("no-such-command",), "No such command"),
        (("jobs", "watch", "j1", "--interval", "soon"), "--interval"),
    ],
)
def test_usage_errors_are_one_error_line_with_a_usage_hint(cli, args, message):
    r = cli(*args)
    line = one_error(r, code=2)
    assert message in line
    assert "╭" not in r.stderr and "│" not in r.stderr
    assert "hint: usage: svgrft" in r.stderr


def test_unwritable_output_paths_are_one_error_line(cli, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder", encoding="utf-8")
    line = one_error(cli("dataset", "build", "--out", blocker / "x.jsonl"))
    assert "afile" in line
    svg = tmp_path / "a.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>', encoding="utf-8")
    line = one_error(cli("render", svg, "--out", blocker / "pngs"))
    assert "afile" in line


def test_bad_flag_value_names_the_command_line_and_the_choices(cli):
    r = cli("evaluator", "stage", "out", "--rollout-mode", "bogus")
    line = one_error(r, code=2)  # a bad flag value is a usage error
    assert "(from the command line)" in line
    assert "hint: use one of: local, remote" in r.stderr and "fix flag" not in r.stderr


def test_bad_chromium_path_names_its_real_source(cli, monkeypatch, tmp_path):
    svg = tmp_path / "a.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>', encoding="utf-8")
    monkeypatch.setenv("SVGRFT_CHROMIUM", str(tmp_path / "no-browser"))
    line = one_error(cli("render", svg, "--out", tmp_path / "png"))
    assert line.startswith("Error: SVGRFT_CHROMIUM names") and "--chromium" not in line
    line = one_error(cli("train", "--dry-run"))
    assert line.startswith("Error: SVGRFT_CHROMIUM names")
    monkeypatch.delenv("SVGRFT_CHROMIUM")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[render]\nchromium = "{tmp_path / "other"}"\n', encoding="utf-8")
    line = one_error(cli("render", svg, "--out", tmp_path / "png", "--config", cfg))
    assert line.startswith(f"Error: render.chromium in {cfg} names")
    line = one_error(cli("render", svg, "--out", tmp_path / "png", "--chromium", tmp_path / "third"))
    assert line.startswith("Error: --chromium names")
