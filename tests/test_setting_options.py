"""c.setting_option / c.command / c.settings: a flag declared from the schema reaches the resolved settings
(flag > env > config > default), with the schema's type, choices and list semantics."""

from __future__ import annotations

import json
from typing import Optional

import pytest
import typer
from typer.testing import CliRunner

from svgrft.cli import _common as c
from tests.conftest import write_config


def _app():
    app = typer.Typer()

    @app.command()
    @c.command
    def show(
        epochs: Optional[int] = c.setting_option("train.epochs", "-e"),
        wandb: Optional[bool] = c.setting_option("wandb.enabled"),
        mode: Optional[str] = c.setting_option("judge.mode"),
        keys: Optional[list[str]] = c.setting_option("secrets.keys"),
        hosts: Optional[list[str]] = c.setting_option("serve.allow_model_hosts", extend=True),
        model=c.setting_option("judge.model"),  # no annotation: the schema's type is used
    ) -> None:
        s = c.settings()
        print(
            json.dumps(
                {
                    "epochs": s.train.epochs,
                    "epochs_from": s.source("train.epochs"),
                    "wandb": s.wandb.enabled,
                    "mode": s.judge.mode,
                    "keys": list(s.secrets.keys),
                    "hosts": list(s.serve.allow_model_hosts),
                    "model": s.judge.model,
                    "model_from": s.source("judge.model"),
                }
            )
        )

    return app


def _run(*args: str):
    r = CliRunner().invoke(_app(), list(args))
    return r, (json.loads(r.stdout) if r.exit_code == 0 else None)


def test_flag_beats_env_beats_config_beats_default(monkeypatch):
    _, d = _run()
    assert d["epochs"] == 4 and d["epochs_from"] == "default"
    write_config('[train]\nepochs = 6\n[judge]\nmodel = "from-config"\n')
    _, d = _run()
    assert d["epochs"] == 6 and d["epochs_from"].startswith("config ")
    monkeypatch.setenv("SVGRFT_JUDGE_MODEL", "from-env")
    _, d = _run()
    assert d["model"] == "from-env" and d["model_from"] == "env SVGRFT_JUDGE_MODEL"
    _, d = _run("-e", "9", "--judge-model", "from-flag")
    assert (d["epochs"], d["epochs_from"], d["model"], d["model_from"]) == (9, "flag", "from-flag", "flag")


def test_bool_settings_get_a_negative_flag():
    write_config("[wandb]\nenabled = true\n")
    assert _run()[1]["wandb"] is True
    assert _run("--no-wandb")[1]["wandb"] is False


def test_a_list_flag_replaces_the_list_and_an_extending_one_adds_to_it():
    write_config('[secrets]\nkeys = ["A_KEY"]\n[serve]\nallow_model_hosts = ["a.example"]\n')
    _, d = _run()
    assert d["keys"] == ["A_KEY"] and d["hosts"] == ["a.example"]
    _, d = _run(
        "--key", "B_KEY", "--key", "C_KEY", "--allow-model-host", "b.example", "--allow-model-host", "a.example"
    )
    assert d["keys"] == ["B_KEY", "C_KEY"]
    assert d["hosts"] == ["a.example", "b.example"]  # the configured list, then the flag's new items


def test_a_bad_flag_value_is_a_usage_error_naming_the_setting():
    r, _ = _run("--judge-mode", "vibes")
    assert r.exit_code == 2
    assert "Error:" in r.stderr and "judge.mode" in r.stderr and "checklist, count" in r.stderr


def test_flags_do_not_leak_into_the_next_command():
    _run("-e", "9")
    assert c.state.flags == {}
    assert c.settings().train.epochs == 4


def test_a_parameter_annotated_against_the_schema_is_refused():
    with pytest.raises(TypeError, match="train.epochs"):

        @c.command
        def bad(epochs: Optional[str] = c.setting_option("train.epochs")) -> None:
            pass


def test_only_list_settings_extend():
    with pytest.raises(TypeError):
        c.setting_option("train.epochs", extend=True)
