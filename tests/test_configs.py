"""configs/*.toml and the schema: every key is a known setting, commented, with its default and env var; every
flag that sets a setting is declared from the schema and shown in some command's --help."""

from __future__ import annotations

import inspect
import re
from typing import Optional

import pytest
import tomllib

from tests.conftest import REPO

CONFIGS = sorted((REPO / "configs").glob("*.toml"))
REPO_DEFAULT = REPO / "configs" / "default.toml"
KEY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=")


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_both_shipped_configs_exist():
    names = {p.name for p in CONFIGS}
    assert {"default.toml", "qwen3-0p6b.toml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_key_is_a_known_setting_and_loads(path, monkeypatch):
    from svgrft.config import DEFAULTS, load_settings

    monkeypatch.delenv("SVGRFT_RENDER_TIMEOUT_MS")  # conftest's test render budget would win over the file

    flat = _flat(tomllib.loads(path.read_text(encoding="utf-8")))
    unknown = sorted(set(flat) - set(DEFAULTS))
    assert not unknown, f"{path.name}: unknown settings {unknown}"
    s = load_settings(config_path=path)  # type checks, choices, no secrets
    for key in flat:
        assert s.source(key) == f"config {path}", key


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_key_is_commented(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if KEY_LINE.match(line):
            prev = lines[i - 1].strip() if i else ""
            assert prev.startswith("#") or "#" in line, f"{path.name}:{i + 1} `{line}` has no comment"


def test_default_toml_matches_builtin_defaults():
    """The shipped default.toml documents the defaults; it must not silently change them."""
    from svgrft.config import DEFAULTS

    flat = _flat(tomllib.loads((REPO / "configs" / "default.toml").read_text(encoding="utf-8")))
    drift = {k: (v, DEFAULTS[k]) for k, v in flat.items() if k in DEFAULTS and v != DEFAULTS[k]}
    assert not drift
    for section in ("train", "rollout", "evaluator", "wandb"):
        missing = [k for k in DEFAULTS if k.startswith(section + ".") and k not in flat]
        assert not missing, f"default.toml does not document {missing}"


def _commands():
    """(command path, the function under @c.command, its Click command) of every svgrft command."""
    from typer.main import get_command

    from svgrft.cli.main import app

    root = get_command(app)
    out = []
    for info in app.registered_commands:
        out.append(((info.name,), info.callback, root.commands[info.name]))
    for group in app.registered_groups:
        sub = root.commands[group.name]
        for info in group.typer_instance.registered_commands:
            out.append(((group.name, info.name), info.callback, sub.commands[info.name]))
    return out


def _setting_options():
    """(command path, Click option, setting key) of every option declared with c.setting_option."""
    from svgrft.cli._common import setting_params

    out = []
    for path, func, cmd in _commands():
        by_name = {p.name: p for p in cmd.params}
        annotations = {n: p.annotation for n, p in inspect.signature(func).parameters.items()}
        for param, key in setting_params(func).items():
            out.append((path, by_name[param], key, annotations[param]))
    return out


# options of `svgrft train` that steer the command itself, not the job (everything else is a setting)
TRAIN_CONTROLS = {"config", "dry_run", "no_watch", "yes", "json_out", "force_evaluator"}


def test_every_train_option_is_a_setting():
    from svgrft.cli._common import GLOBAL_OPTION_PARAMS, setting_params
    from svgrft.cli.train import cmd

    params = set(inspect.signature(cmd).parameters) - set(GLOBAL_OPTION_PARAMS)
    settings = setting_params(cmd)
    assert len(settings) > 20, "train declares its knobs with c.setting_option"
    assert params - set(settings) == TRAIN_CONTROLS


def test_every_setting_option_is_declared_by_the_schema():
    """A flag that sets a setting takes the schema's name, type, choices and help; its env var is named."""
    from svgrft.cli._common import setting_help
    from svgrft.config import SCHEMA

    options = _setting_options()
    assert len(options) > 40
    for path, opt, key, annotation in options:
        spec = SCHEMA[key]
        where = f"svgrft {' '.join(path)} {opt.opts[0]}"
        assert opt.help == setting_help(spec) or opt.help.endswith(" " + setting_help(spec)), where
        assert opt.default is None, where  # not given = the env, config file or built-in default decides
        assert annotation == (Optional[list[str]] if spec.kind is tuple else Optional[spec.kind]), where
        assert (spec.kind is bool) == bool(opt.secondary_opts), where  # --x/--no-x
        assert opt.multiple == (spec.kind is tuple), where
        for choice in spec.choices:
            assert choice in opt.help, (where, choice)
        if spec.env:
            assert f"env {spec.env}" in opt.help, where


def test_every_settings_flag_is_in_some_commands_help(cli):
    """The schema's flag of a setting (Spec.flag_name) is an option of some command, shown in its --help; a
    declared flag that no command has is stale."""
    from svgrft.config import SCHEMA

    by_key: dict[str, set] = {}
    for path, opt, key, _ in _setting_options():
        by_key.setdefault(key, set()).update((path, o) for o in opt.opts)
    stale = [k for k, s in SCHEMA.items() if s.flag and k not in by_key]
    assert not stale, f"settings declare a flag that no command has: {stale}"
    for key, seen in by_key.items():
        flag = SCHEMA[key].flag_name
        paths = [path for path, o in seen if o == flag]
        assert paths, f"{key}: no command spells its flag {flag}"
        assert flag in cli(*paths[0], "--help").stdout, (key, paths[0])


def test_every_env_var_is_named_in_default_toml():
    """default.toml's comment on a setting names its environment variable."""
    from svgrft.config import SCHEMA

    comments: dict[str, str] = {}
    section, block = "", []
    for line in REPO_DEFAULT.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            section, block = stripped.strip("[]"), []
        elif stripped.startswith("#"):
            block.append(stripped)
        elif KEY_LINE.match(stripped):
            comments[f"{section}.{KEY_LINE.match(stripped).group(1)}"] = " ".join(block) + line
            block = []
        else:
            block = []
    for key, spec in SCHEMA.items():
        if spec.env:
            assert f"env {spec.env}" in comments[key], f"default.toml: {key} does not name {spec.env}"


def test_qwen_config_reaches_the_job_payload(tmp_path):
    from svgrft.config import load_settings
    from svgrft.workflow.train import dry_run_report, make_plan

    cfg = REPO / "configs" / "qwen3-0p6b.toml"
    flat = _flat(tomllib.loads(cfg.read_text(encoding="utf-8")))
    s = load_settings(config_path=cfg)
    payload = dry_run_report(make_plan(s))["payload"]
    assert payload["trainingConfig"]["baseModel"] == "accounts/fireworks/models/" + flat["train.base_model"]
    assert payload["trainingConfig"]["epochs"] == flat["train.epochs"]
    assert payload["trainingConfig"]["outputModel"].endswith("/models/" + flat["train.output_model"])
    assert payload["inferenceParameters"]["responseCandidatesCount"] == flat["train.n"]
    assert payload["displayName"] == flat["train.display_name"]


def test_default_toml_documents_every_setting():
    """Every setting svgrft knows appears (commented) in configs/default.toml, so the file is the full reference."""
    from svgrft.config import DEFAULTS, read_config_file

    documented = set(read_config_file(REPO_DEFAULT))
    assert sorted(set(DEFAULTS) - documented) == []


# --- settings loading: precedence, .env, invalid values, broken files (folded from the review-round files) ---

from tests.helpers import one_error  # noqa: E402


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_precedence_flag_env_config_default(tmp_path, monkeypatch):
    from svgrft.config import DEFAULTS, load_settings

    cfg = _write(
        tmp_path / "configs" / "default.toml", '[judge]\nmodel = "from-config"\nconcurrency = 3\n[train]\nepochs = 7\n'
    )
    s = load_settings()
    assert s.config_path == cfg.relative_to(tmp_path) or s.config_path.resolve() == cfg
    assert s.judge.model == "from-config" and s.source("judge.model").startswith("config")
    assert s.train.epochs == 7
    assert s.train.lora_rank == DEFAULTS["train.lora_rank"] and s.source("train.lora_rank") == "default"
    monkeypatch.setenv("SVGRFT_JUDGE_MODEL", "from-env")
    s = load_settings()
    assert s.judge.model == "from-env" and s.source("judge.model") == "env SVGRFT_JUDGE_MODEL"
    s = load_settings(overrides={"judge.model": "from-flag", "train.epochs": None})
    assert s.judge.model == "from-flag" and s.source("judge.model") == "flag"
    assert s.train.epochs == 7  # None = flag not given


def test_dotenv_does_not_override_environment(tmp_path, monkeypatch):
    from svgrft.config import load_settings

    _write(tmp_path / ".env", "FIREWORKS_API_KEY=fw-from-dotenv-123456\nOPENAI_API_KEY=sk-from-dotenv-123456\n")
    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-from-environment-1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    s = load_settings()
    assert s.env_file_loaded
    assert s.secret("FIREWORKS_API_KEY") == "fw-from-environment-1"
    assert s.secret("OPENAI_API_KEY") == "sk-from-dotenv-123456"


def test_explicit_env_file_must_exist(tmp_path):
    from svgrft.config import load_settings
    from svgrft.errors import ConfigError

    with pytest.raises(ConfigError, match="not found"):
        load_settings(env_file=tmp_path / "nope.env")


@pytest.mark.parametrize(
    "text, key",
    [
        ('[train]\nepochs = "many"\n', "train.epochs"),
        ('[judge]\nmode = "vibes"\n', "judge.mode"),
        ('[fireworks]\nbase_url = "ftp://x"\n', "fireworks.base_url"),
        ("[train]\nno_such_knob = 1\n", "train.no_such_knob"),
    ],
)
def test_invalid_config_names_key_and_source(tmp_path, text, key):
    from svgrft.config import load_settings
    from svgrft.errors import ConfigError

    cfg = _write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as ei:
        load_settings(config_path=cfg)
    assert key in ei.value.message and "bad.toml" in ei.value.message


def test_invalid_env_value_names_variable(monkeypatch):
    from svgrft.config import load_settings
    from svgrft.errors import ConfigError

    monkeypatch.setenv("FIREWORKS_BASE_URL", "not-a-url")
    with pytest.raises(ConfigError) as ei:
        load_settings()
    assert "FIREWORKS_BASE_URL" in ei.value.message


def test_config_file_with_secret_is_rejected(tmp_path):
    from svgrft.config import load_settings
    from svgrft.errors import ConfigError

    cfg = _write(tmp_path / "s.toml", '[fireworks]\napi_key = "fw-oops"\n')
    with pytest.raises(ConfigError, match="secret"):
        load_settings(config_path=cfg)


def test_bad_toml_is_one_line_error(cli, tmp_path):
    _write(tmp_path / "broken.toml", "[train\nepochs = 1\n")
    r = cli("--config", str(tmp_path / "broken.toml"), "secrets", "push", "--dry-run")
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: config file") and "hint:" in r.stderr
    assert "Traceback" not in r.stderr


def test_expand_model():
    from svgrft.config import expand_model

    assert expand_model("qwen3-0p6b") == "accounts/fireworks/models/qwen3-0p6b"
    assert expand_model("accounts/me/models/x") == "accounts/me/models/x"


def test_binary_config_and_env_files_are_config_errors(cli, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(128, 256)) * 4)
    line = one_error(cli("--config", junk, "doctor", "--no-network"))
    assert "junk.bin" in line and "not UTF-8" in line
    line = one_error(cli("--env-file", junk, "doctor", "--no-network"))
    assert "junk.bin" in line and "not UTF-8" in line
    line = one_error(cli("--env-file", tmp_path, "doctor", "--no-network"))
    assert "is not a file" in line
    line = one_error(cli("--config", tmp_path, "doctor", "--no-network"))
    assert "is not a file" in line


def test_a_choice_is_case_insensitive_and_still_checked():
    from svgrft.config import load_settings
    from svgrft.errors import UsageError

    s = load_settings().with_overrides({"deploy.mode": "MERGE", "judge.mode": " Count"})
    assert s.deploy.mode == "merge" and s.judge.mode == "count"
    with pytest.raises(UsageError, match="expected one of merge, addons"):
        load_settings().with_overrides({"deploy.mode": "mergee"})
