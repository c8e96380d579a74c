"""The CLI skeleton: help without SDK imports, config precedence, errors, doctor."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

SDKS = ("fireworks", "openai", "eval_protocol", "playwright", "litellm")


def test_help_imports_no_sdk():
    """A fresh interpreter runs `svgrft --help` (and each group's --help) without importing any SDK."""
    code = (
        "import sys\n"
        "from svgrft.cli.main import app\n"
        "from typer.main import get_command\n"
        "cmd = get_command(app)\n"
        "for args in (['--help'], ['secrets', '--help'], ['train', '--help'], ['dataset', '--help']):\n"
        "    try:\n"
        "        cmd.main(args, prog_name='svgrft', standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {SDKS!r})\n"
        "print('LOADED=' + ','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = proc.stdout.strip().splitlines()[-1]
    assert loaded == "LOADED=", f"--help imported SDK modules: {loaded[:300]}"
    assert "Usage" in proc.stdout


def test_version(cli):
    r = cli("--version")
    assert r.exit_code == 0
    from svgrft import __version__

    assert r.stdout.strip() == f"svgrft {__version__}"


def test_every_group_is_registered(cli):
    r = cli("--help")
    for name in ("secrets", "dataset", "evaluator", "train", "compare-epochs", "jobs", "eval", "render", "serve",
                 "doctor"):
        assert name in r.stdout, name


def test_usage_error_exits_2(cli):
    r = cli("secrets", "push", "--no-such-flag")
    assert r.exit_code == 2


# -- configuration precedence ---------------------------------------------------------------


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_precedence_flag_env_config_default(tmp_path, monkeypatch):
    from svgrft.config import DEFAULTS, load_settings

    cfg = _write(tmp_path / "configs" / "default.toml", '[judge]\nmodel = "from-config"\nconcurrency = 3\n'
                                                       '[train]\nepochs = 7\n')
    s = load_settings()
    assert s.config_path == cfg.relative_to(tmp_path) or s.config_path.resolve() == cfg
    assert s["judge.model"] == "from-config" and s.source("judge.model").startswith("config")
    assert s["train.epochs"] == 7
    assert s["train.lora_rank"] == DEFAULTS["train.lora_rank"] and s.source("train.lora_rank") == "default"
    monkeypatch.setenv("SVGRFT_JUDGE_MODEL", "from-env")
    s = load_settings()
    assert s["judge.model"] == "from-env" and s.source("judge.model") == "env SVGRFT_JUDGE_MODEL"
    s = load_settings(overrides={"judge.model": "from-flag", "train.epochs": None})
    assert s["judge.model"] == "from-flag" and s.source("judge.model") == "flag"
    assert s["train.epochs"] == 7  # None = flag not given


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


@pytest.mark.parametrize("text, key", [
    ('[train]\nepochs = "many"\n', "train.epochs"),
    ('[judge]\nmode = "vibes"\n', "judge.mode"),
    ('[fireworks]\nbase_url = "ftp://x"\n', "fireworks.base_url"),
    ('[train]\nno_such_knob = 1\n', "train.no_such_knob"),
])
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


def test_mask_and_redact():
    from svgrft import secrets

    key = "fw-supersecretvalue-98765"
    assert key not in secrets.mask(key) and secrets.mask(key).endswith("8765")
    secrets.register(key)
    assert key not in secrets.redact(f"header Authorization: Bearer {key} and {key}")
    assert key not in secrets.redact("Bearer abcdefghijklmnopqrstuvwxyz")  # unknown bearer tokens masked too


def test_only_public_typer_api_is_used():
    """typer._click is private (it has broken other CLIs on upgrade): svgrft must not import it."""
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "svgrft").rglob("*.py")
                 if "typer._click" in p.read_text(encoding="utf-8")]
    assert offenders == []
