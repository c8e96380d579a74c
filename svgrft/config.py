"""Configuration resolved in one place.

Precedence (highest first): command-line flag > environment variable > config file
(``configs/default.toml`` unless ``--config`` names another) > built-in default.

``.env`` is loaded with python-dotenv from an explicit path (default ``./.env``) and never
overrides variables that are already set. API keys are read from the environment only:
they are secrets, so a config file that holds one is rejected.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svgrft.errors import ConfigError, UsageError

FIREWORKS_API = "https://api.fireworks.ai"
FIREWORKS_INFERENCE = "https://api.fireworks.ai/inference/v1"
FIREWORKS_TRACING = "https://tracing.fireworks.ai"
DEFAULT_JUDGE_MODEL = "gpt-4.1-2025-04-14"

# dotted key -> built-in default. The type of the default is the type of the setting.
DEFAULTS: dict[str, Any] = {
    "fireworks.base_url": FIREWORKS_API,
    "fireworks.account_id": "",
    "fireworks.inference_base_url": FIREWORKS_INFERENCE,
    "fireworks.tracing_base_url": FIREWORKS_TRACING,
    "fireworks.max_retries": 2,
    "fireworks.timeout": 60.0,
    "judge.model": DEFAULT_JUDGE_MODEL,
    "judge.mode": "checklist",
    "judge.base_url": "",
    "judge.concurrency": 8,
    "judge.timeout": 60.0,
    "judge.max_retries": 4,
    "judge.text_penalty": 1.0,
    "judge.backoff_base": 1.0,
    "judge.cache": True,
    "render.pool_size": 2,
    "render.size": 512,
    "render.max_side": 2048,
    "render.timeout_ms": 5000,
    "render.chromium": "",
    "dataset.train": "datasets/svgbench_train.jsonl",
    "dataset.eval": "datasets/svgbench_eval.jsonl",
    "dataset.id": "",
    "secrets.keys": ["OPENAI_API_KEY", "FIREWORKS_API_KEY"],
    "evaluator.id": "svgrft-svg-evaluator",
    "evaluator.timeout": 900.0,
    "evaluator.poll_interval": 5.0,
    "rollout.mode": "local",
    "rollout.server_url": "",
    "rollout.timeout": 300.0,
    "train.base_model": "accounts/fireworks/models/qwen3-0p6b",
    "train.output_model": "",
    "train.job_id": "",
    "train.display_name": "",
    "train.epochs": 4,
    "train.learning_rate": 1e-4,
    "train.lora_rank": 16,
    "train.batch_size": 65536,
    "train.max_context_length": 8192,
    "train.chunk_size": 100,
    "train.temperature": 0.8,
    "train.top_p": 1.0,
    "train.n": 4,
    "train.max_tokens": 4096,
    "train.eval_dataset": "",
    "train.eval_auto_carveout": False,
    "train.poll_interval": 10.0,
    "wandb.enabled": False,
    "wandb.project": "",
    "wandb.entity": "",
    "wandb.run_id": "",
    "eval.model": "qwen3-0p6b",
    "eval.samples": 1,
    "eval.rows": 0,
    "eval.temperature": 0.8,
    "eval.max_tokens": 4096,
    "eval.concurrency": 8,
    "eval.timeout": 300.0,
    "eval.dataset": "",
    "serve.host": "127.0.0.1",
    "serve.port": 8000,
    "serve.workers": 1,
    "serve.allow_model_hosts": [],
    "serve.max_concurrent": 256,
    "serve.rate_limit": 20.0,
    "serve.rate_burst": 400,
    "serve.rollout_timeout": 300.0,
    "serve.max_body": 2097152,
    "serve.policy_retries": 2,
    "serve.background": False,
    "serve.read_timeout": 15.0,
    "serve.max_connections_per_client": 0,
    "serve.trust_proxy_headers": False,
    "deploy.mode": "merge",
    "deploy.accelerator_type": "NVIDIA_A100_80GB",
    "deploy.accelerator_count": 1,
    "deploy.ttl": "2h",
    "deploy.scale_to_zero": "15m",
    "deploy.timeout": 1800.0,
    "deploy.poll_interval": 10.0,
    "deploy.price_per_hour": 0.0,
}

# environment variable -> dotted key
ENV_VARS: dict[str, str] = {
    "FIREWORKS_BASE_URL": "fireworks.base_url",
    "FIREWORKS_ACCOUNT_ID": "fireworks.account_id",
    "FIREWORKS_INFERENCE_BASE_URL": "fireworks.inference_base_url",
    "FIREWORKS_TRACING_BASE_URL": "fireworks.tracing_base_url",
    "OPENAI_BASE_URL": "judge.base_url",
    "SVGRFT_JUDGE_MODEL": "judge.model",
    "SVGRFT_CHROMIUM": "render.chromium",
    "SVGRFT_RENDER_TIMEOUT_MS": "render.timeout_ms",
    "SVGRFT_ROLLOUT_MODE": "rollout.mode",
    "SVGRFT_ROLLOUT_SERVER_URL": "rollout.server_url",
}

SECRET_ENV = ("FIREWORKS_API_KEY", "OPENAI_API_KEY", "SVGRFT_SERVE_TOKEN", "WANDB_API_KEY")

CHOICES: dict[str, tuple[str, ...]] = {
    "judge.mode": ("checklist", "count"),
    "rollout.mode": ("local", "remote"),
    "deploy.mode": ("merge", "addons"),
}

DEFAULT_CONFIG = Path("configs/default.toml")


@dataclass
class Settings:
    values: dict[str, Any]
    sources: dict[str, str]
    config_path: Path | None = None
    env_file: Path | None = None
    env_file_loaded: bool = False
    env: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def source(self, key: str) -> str:
        return self.sources.get(key, "default")

    def secret(self, name: str) -> str | None:
        """An API key from the environment (after .env), or None when unset/empty."""
        value = self.env.get(name) or os.environ.get(name)
        return value or None

    def section(self, prefix: str) -> dict[str, Any]:
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.values.items() if k.startswith(p)}

    def with_overrides(self, overrides: dict[str, Any]) -> "Settings":
        values = dict(self.values)
        sources = dict(self.sources)
        for key, raw in overrides.items():
            if raw is None:
                continue
            values[key] = _coerce(key, raw, FLAG_SOURCE)
            sources[key] = "flag"
        return Settings(values, sources, self.config_path, self.env_file, self.env_file_loaded, self.env)


FLAG_SOURCE = "the command line"


def _fix(source: str) -> str:
    return "fix the flag's value" if source == FLAG_SOURCE else f"fix {source}"


def _invalid(source: str) -> type[ConfigError]:
    """The error class of a bad value: a usage error (exit 2) when it was a flag, else a config error (exit 1)."""
    return UsageError if source == FLAG_SOURCE else ConfigError


def _coerce(key: str, raw: Any, source: str) -> Any:
    if key not in DEFAULTS:
        raise ConfigError(f"unknown setting '{key}' (from {source})",
                          hint="see configs/default.toml for the settings svgrft knows")
    default = DEFAULTS[key]
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                value: Any = raw
            elif isinstance(raw, str) and raw.strip().lower() in ("1", "true", "yes", "on"):
                value = True
            elif isinstance(raw, str) and raw.strip().lower() in ("0", "false", "no", "off", ""):
                value = False
            else:
                raise ValueError(raw)
        elif isinstance(default, int):
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            value = int(raw)
        elif isinstance(default, float):
            if isinstance(raw, bool):
                raise ValueError(raw)
            value = float(raw)
        elif isinstance(default, list):
            if isinstance(raw, str):
                value = [p.strip() for p in raw.split(",") if p.strip()]
            elif isinstance(raw, list) and all(isinstance(x, str) for x in raw):
                value = list(raw)
            else:
                raise ValueError(raw)
        else:
            if not isinstance(raw, str):
                raise ValueError(raw)
            value = raw
    except (TypeError, ValueError):
        kind = type(default).__name__
        raise _invalid(source)(f"invalid value {raw!r} for '{key}' (from {source}): expected {kind}",
                          hint=_fix(source)) from None
    choices = CHOICES.get(key)
    if choices and value not in choices:
        raise _invalid(source)(f"invalid value {value!r} for '{key}' (from {source}): expected one of {', '.join(choices)}",
                          hint=f"use one of: {', '.join(choices)} ({_fix(source)})")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise _invalid(source)(f"invalid value {value!r} for '{key}' (from {source}): must not be negative",
                          hint=_fix(source))
    if key.endswith("base_url") or key == "rollout.server_url":
        from svgrft.secrets import redact_url, url_credentials

        what = url_credentials(value)
        if what:  # it would be baked into the evaluator, uploaded and printed: keys belong in secrets
            raise ConfigError(f"'{key}' (from {source}) carries credentials in the URL ({what}): "
                              f"{redact_url(value)}",
                              hint="put the key in its environment variable (e.g. OPENAI_API_KEY; `svgrft secrets "
                                   "push` stores it as a Fireworks secret) and use the URL without it")
        if value and not value.startswith(("http://", "https://")):
            raise _invalid(source)(f"invalid URL {redact_url(value)!r} for '{key}' (from {source})",
                              hint="URLs start with http:// or https://")
        value = value.rstrip("/")
    return value


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}",
                          hint="pass an existing file with --config, e.g. configs/default.toml") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text", hint="pass a TOML file, e.g. configs/default.toml") \
            from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}", hint=f"fix the syntax in {path}") from None
    flat = _flatten(data)
    for key, value in flat.items():
        if key.split(".")[-1].lower() in ("api_key", "apikey", "token") or (
                isinstance(value, str) and key.upper() in SECRET_ENV):
            raise ConfigError(f"config file {path} holds a secret ('{key}')",
                              hint="put API keys in the environment or .env, never in configs/")
    return flat


def load_settings(config_path: str | Path | None = None, env_file: str | Path | None = None,
                  overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Resolve every setting with its source. ``overrides`` are flag values (None = not given)."""
    from dotenv import dotenv_values

    env_path = Path(env_file) if env_file else Path(".env")
    env_loaded = False
    if env_path.is_file():
        try:
            loaded = {k: v for k, v in dotenv_values(env_path, encoding="utf-8").items() if v is not None}
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) else "it is not UTF-8 text"
            raise ConfigError(f"cannot read env file {env_path}: {why}",
                              hint="a .env file holds NAME=value lines; fix it or pass another with --env-file") \
                from None
        for k, v in loaded.items():
            os.environ.setdefault(k, v)  # never override what is already set
        env_loaded = True
    elif env_file:
        what = "is not a file" if env_path.exists() else "not found"
        raise ConfigError(f"env file {env_path} {what}", hint="pass an existing file with --env-file")
    environ = dict(os.environ if environ is None else environ)

    values: dict[str, Any] = dict(DEFAULTS)
    sources: dict[str, str] = {k: "default" for k in DEFAULTS}

    cfg: Path | None
    if config_path:
        cfg = Path(config_path)
        if not cfg.is_file():
            what = "is not a file" if cfg.exists() else "not found"
            raise ConfigError(f"config file {cfg} {what}",
                              hint="pass an existing file with --config (see configs/)")
    else:
        cfg = DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None
    if cfg is not None:
        for key, raw in read_config_file(cfg).items():
            src = f"config {cfg}"
            values[key] = _coerce(key, raw, src)
            sources[key] = src

    for var, key in ENV_VARS.items():
        raw = environ.get(var)
        if raw is not None and raw != "":
            src = f"env {var}"
            values[key] = _coerce(key, raw, src)
            sources[key] = src

    settings = Settings(values, sources, cfg, env_path, env_loaded,
                        {k: environ[k] for k in SECRET_ENV if environ.get(k)})
    if overrides:
        settings = settings.with_overrides(overrides)
    return settings


def expand_model(name: str, account: str = "fireworks") -> str:
    """``qwen3-0p6b`` → ``accounts/fireworks/models/qwen3-0p6b``; full names pass through."""
    name = name.strip()
    if not name:
        raise ConfigError("model name is empty", hint="pass e.g. --base-model qwen3-0p6b")
    if name.startswith("accounts/") or "/" in name:
        return name
    return f"accounts/{account}/models/{name}"
