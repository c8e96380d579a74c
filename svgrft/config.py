"""Configuration: every setting declared once, resolved in one place.

Each setting is a field of a frozen section dataclass below (``JudgeSettings.model`` is the TOML key
``[judge] model``): its type, default, help text, environment variable, choices and flag name are
declared on the field with :func:`setting`. ``SCHEMA`` is derived from those declarations.

Precedence (highest first): command-line flag > environment variable > config file
(``configs/default.toml`` unless ``--config`` names another) > built-in default.

``.env`` is loaded with python-dotenv from an explicit path (default ``./.env``) and never
overrides variables that are already set. API keys are read from the environment only:
they are secrets, so a config file that holds one is rejected.

Every environment variable svgrft reads is read here: the settings' variables (``Spec.env``, by
:func:`load_settings`), the API keys (:data:`SECRET_ENV`, :func:`secret_env`) and the process-level
switches of :data:`PROCESS_ENV` (:func:`process_env`), which code needs before or without resolved settings.
(The packaged evaluator, ``svgrft/evaluator/``, runs inside Fireworks and reads its own.)

Over 400 lines on purpose: this is the one place every setting (about 80 field declarations) and every
environment variable is declared, and where values from all sources are checked.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from svgrft.errors import ConfigError, UsageError

FIREWORKS_API = "https://api.fireworks.ai"
FIREWORKS_INFERENCE = "https://api.fireworks.ai/inference/v1"
FIREWORKS_TRACING = "https://tracing.fireworks.ai"
DEFAULT_JUDGE_MODEL = "gpt-4.1-2025-04-14"


@dataclass(frozen=True)
class Spec:
    """The declaration of one setting (``key`` is ``section.name``, the TOML key)."""

    key: str
    kind: type  # bool, int, float, str or tuple (a list of strings)
    default: Any
    help: str
    env: str | None = None
    choices: tuple[str, ...] = ()
    flag: str = ""  # the command-line flag; "" = --<name with dashes>
    minimum: float | None = 0  # numbers below are rejected

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]

    @property
    def flag_name(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


def setting(
    default: Any,
    help: str,
    *,
    env: str | None = None,
    choices: tuple[str, ...] = (),
    flag: str = "",
    minimum: float | None = 0,
) -> Any:
    """Declare one setting as a dataclass field (see :class:`Spec`)."""
    meta = {"svgrft": {"help": help, "env": env, "choices": choices, "flag": flag, "minimum": minimum}}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class FireworksSettings:
    """[fireworks]"""

    base_url: str = setting("https://api.fireworks.ai", "Control-plane API base URL.", env="FIREWORKS_BASE_URL")
    account_id: str = setting(
        "", "Your Fireworks account id; empty = looked up from the API key.", env="FIREWORKS_ACCOUNT_ID"
    )
    inference_base_url: str = setting(
        "https://api.fireworks.ai/inference/v1",
        "OpenAI-compatible inference endpoint used for rollouts in local mode.",
        env="FIREWORKS_INFERENCE_BASE_URL",
    )
    tracing_base_url: str = setting(
        "https://tracing.fireworks.ai",
        "Tracing gateway: remote-mode rollouts and compare-epochs traces.",
        env="FIREWORKS_TRACING_BASE_URL",
    )
    max_retries: int = setting(2, "Retries of the Fireworks SDK on 408/409/429/5xx and network errors.")
    timeout: float = setting(60.0, "Timeout of one Fireworks API request, seconds.")


@dataclass(frozen=True)
class JudgeSettings:
    """[judge]"""

    model: str = setting(
        "gpt-4.1-2025-04-14",
        "Vision judge model (OpenAI-compatible; a pinned snapshot keeps rewards comparable).",
        env="SVGRFT_JUDGE_MODEL",
        flag="--judge-model",
    )
    mode: str = setting(
        "checklist",
        '"checklist" = one verdict per requirement, score computed in code; "count" = the original SVGBench prompt.',
        choices=("checklist", "count"),
        flag="--judge-mode",
    )
    base_url: str = setting(
        "", "Judge endpoint (OpenAI-compatible); empty = OpenAI.", env="OPENAI_BASE_URL", flag="--judge-base-url"
    )
    concurrency: int = setting(
        8, "Judge requests in flight at once (protects the judge's rate limits).", flag="--judge-concurrency"
    )
    timeout: float = setting(60.0, "Timeout of one judge request, seconds.")
    max_retries: int = setting(4, "Retries of a judge request on 429/5xx/timeouts (Retry-After honoured).")
    text_penalty: float = setting(
        1.0,
        "Score penalty (0–1) for text-heavy drawings (mostly text restating the requirements, or text with at most 2 shapes; words the request asks to be written do not count): 1 = score 0 without a judge call; 0 = only flag.",
    )
    backoff_base: float = setting(1.0, "Base of the judge's exponential backoff between retries, seconds.")
    cache: bool = setting(
        True,
        "Cache judge verdicts by (image, requirements, model, mode, prompt version) so a picture is paid for once; --no-cache neither reads nor writes the cache.",
    )


@dataclass(frozen=True)
class RenderSettings:
    """[render]"""

    pool_size: int = setting(
        2, "Pages rendering in parallel: the headless-Chromium pool (2 suits 2 cores).", flag="--concurrency"
    )
    size: int = setting(512, "Canvas side (px) used when an SVG gives no usable size.")
    max_side: int = setting(2048, "Largest canvas side (px); bigger SVG sizes are clamped.")
    timeout_ms: int = setting(5000, "Timeout of one render, milliseconds.", env="SVGRFT_RENDER_TIMEOUT_MS")
    chromium: str = setting("", "Explicit Chromium executable; empty = found automatically.", env="SVGRFT_CHROMIUM")


@dataclass(frozen=True)
class DatasetSettings:
    """[dataset]"""

    train: str = setting(
        "datasets/svgbench_train.jsonl", "Training dataset (JSONL of Eval Protocol rows).", flag="--dataset"
    )
    eval: str = setting("datasets/svgbench_eval.jsonl", "Held-out split written by `svgrft dataset build --split`.")
    id: str = setting(
        "",
        'Fireworks dataset id to use; empty = "<file-stem>-<content hash>" (re-uploads are no-ops).',
        flag="--dataset-id",
    )


@dataclass(frozen=True)
class SecretsSettings:
    """[secrets]"""

    keys: tuple[str, ...] = setting(
        ("OPENAI_API_KEY", "FIREWORKS_API_KEY"),
        "Environment variables pushed as Fireworks secrets for the evaluator (only these names, never all of .env). In remote rollout mode SVGRFT_SERVE_TOKEN is added when it is set.",
        flag="--key",
    )


@dataclass(frozen=True)
class EvaluatorSettings:
    """[evaluator]"""

    id: str = setting(
        "svgrft-svg-evaluator",
        "Evaluator id prefix; the content hash is appended, so any change builds a new evaluator.",
        flag="--evaluator-id",
    )
    timeout: float = setting(900.0, "How long to wait for the evaluator build (and `evaluator test`), seconds.")
    poll_interval: float = setting(5.0, "Seconds between evaluator build status checks.")


@dataclass(frozen=True)
class RolloutSettings:
    """[rollout]"""

    mode: str = setting(
        "local",
        '"local": Eval Protocol\'s single-turn processor calls the policy directly (nothing to deploy); "remote": rollouts go to your `svgrft serve` at server_url.',
        env="SVGRFT_ROLLOUT_MODE",
        choices=("local", "remote"),
        flag="--rollout-mode",
    )
    server_url: str = setting(
        "", "Rollout server URL for remote mode.", env="SVGRFT_ROLLOUT_SERVER_URL", flag="--rollout-server-url"
    )
    timeout: float = setting(300.0, "Remote mode: seconds the evaluator waits for one rollout to finish after /init.")


@dataclass(frozen=True)
class TrainSettings:
    """[train]"""

    base_model: str = setting(
        "accounts/fireworks/models/qwen3-0p6b",
        "Base model to fine-tune; short names expand to accounts/fireworks/models/<name>.",
        flag="--base-model",
    )
    output_model: str = setting("", "Name of the fine-tuned model; empty = the job id.", flag="--output-model")
    job_id: str = setting(
        "",
        "RFT job id; empty = derived from the config + dataset + evaluator (a re-run finds the same job).",
        flag="--job-id",
    )
    display_name: str = setting("", "Job display name in the dashboard; empty = generated.", flag="--display-name")
    epochs: int = setting(4, "Passes over the training dataset.", flag="--epochs")
    learning_rate: float = setting(0.0001, "LoRA learning rate.", flag="--learning-rate")
    lora_rank: int = setting(16, "LoRA rank.", flag="--lora-rank")
    batch_size: int = setting(65536, "Max packed TOKENS per training batch (not samples).", flag="--batch-size")
    max_context_length: int = setting(
        8192, "Max tokens of prompt + reply seen in training.", flag="--max-context-length"
    )
    chunk_size: int = setting(100, "Rows per rollout chunk (1–10000).", flag="--chunk-size")
    temperature: float = setting(0.8, "Sampling temperature of the rollouts.", flag="--temperature")
    top_p: float = setting(1.0, "Nucleus sampling of the rollouts.", flag="--top-p")
    n: int = setting(
        4, "Response candidates (rollouts) per prompt; the judge is called rows × n × epochs times.", flag="--n"
    )
    max_tokens: int = setting(4096, "Max tokens of one reply.", flag="--max-tokens")
    eval_dataset: str = setting(
        "",
        "Separate evaluation dataset: a JSONL path (uploaded) or a Fireworks dataset id; empty = none.",
        flag="--eval-dataset",
    )
    eval_auto_carveout: bool = setting(
        False, "Let Fireworks carve an evaluation split out of the training dataset.", flag="--eval-auto-carveout"
    )
    poll_interval: float = setting(10.0, "Seconds between job status checks while watching.", flag="--poll-interval")


@dataclass(frozen=True)
class WandbSettings:
    """[wandb]"""

    enabled: bool = setting(False, "Send training curves to Weights & Biases (key from WANDB_API_KEY).", flag="--wandb")
    project: str = setting("", "W&B project.", flag="--wandb-project")
    entity: str = setting("", "W&B entity (user or team).", flag="--wandb-entity")
    run_id: str = setting("", "W&B run id; empty = generated.", flag="--wandb-run-id")


@dataclass(frozen=True)
class EvalSettings:
    """[eval]"""

    model: str = setting(
        "qwen3-0p6b",
        "Policy model evaluated by `svgrft eval`. Short Fireworks names (qwen3-0p6b) expand to accounts/fireworks/models/NAME; a trained model or a JOB_ID given as --model is called through its deployment (`svgrft deploy`).",
    )
    samples: int = setting(1, "Replies generated per prompt.")
    rows: int = setting(0, "Rows evaluated; 0 = all.")
    temperature: float = setting(0.8, "Sampling temperature of `svgrft eval`.")
    max_tokens: int = setting(4096, "Max tokens of one reply in `svgrft eval`.")
    concurrency: int = setting(8, "Prompts processed at once by `svgrft eval`.")
    timeout: float = setting(300.0, "Timeout of one policy request in `svgrft eval`, seconds.")
    dataset: str = setting(
        "", "Dataset JSONL evaluated by `svgrft eval`; empty = the bundled datasets/svgbench.jsonl (all 105 prompts)."
    )


@dataclass(frozen=True)
class ServeSettings:
    """[serve]"""

    host: str = setting("127.0.0.1", "`svgrft serve`: interface to bind (use 0.0.0.0 in a container).", flag="--host")
    port: int = setting(8000, "Port of the rollout server.", flag="--port")
    workers: int = setting(1, "Worker processes; limits below apply per worker.", flag="--workers")
    allow_model_hosts: tuple[str, ...] = setting(
        (),
        "Extra hosts accepted in model_base_url (host, host:port or *.domain) besides tracing.fireworks.ai, api.fireworks.ai and the configured Fireworks URLs.",
        flag="--allow-model-host",
    )
    max_concurrent: int = setting(
        256, "Cap on concurrent rollouts; more get 429 with Retry-After (0 = no cap).", flag="--max-concurrent"
    )
    rate_limit: float = setting(20.0, "Requests per second per client (0 = off).", flag="--rate-limit")
    rate_burst: int = setting(
        400, "Requests a client may send at once before the rate limit applies.", flag="--rate-burst"
    )
    rollout_timeout: float = setting(300.0, "Seconds one rollout may take.", flag="--rollout-timeout")
    max_body: int = setting(2097152, "Largest /init body in bytes.", flag="--max-body")
    policy_retries: int = setting(
        2, "Retries of a failed policy call (429/5xx/network) inside one rollout.", flag="--policy-retries"
    )
    background: bool = setting(
        False,
        "Answer /init at once and run the policy call in the background (errors then only via the tracing log).",
        flag="--background",
    )
    read_timeout: float = setting(
        15.0,
        "Seconds a client has to send a request's headers, and then its body, before the connection is closed (idle and trickling connections)",
        flag="--read-timeout",
    )
    max_connections_per_client: int = setting(
        0,
        "Connections one client address may hold; an idle one is closed to make room (0 = max_concurrent + 64).",
        flag="--conns-per-client",
    )
    trust_proxy_headers: bool = setting(
        False,
        "Take the client address from X-Forwarded-For / X-Forwarded-Proto sent by a proxy on this machine, or on the hosts in FORWARDED_ALLOW_IPS (only behind a reverse proxy that sets them).",
        flag="--trust-proxy-headers",
    )


@dataclass(frozen=True)
class DeploySettings:
    """[deploy]"""

    mode: str = setting(
        "merge",
        "`svgrft deploy`: merge (a deployment of the LoRA itself) or addons (base model + lora.load).",
        choices=("merge", "addons"),
        flag="--mode",
    )
    accelerator_type: str = setting("NVIDIA_A100_80GB", "GPU type of the on-demand deployment.", flag="--accelerator")
    accelerator_count: int = setting(1, "GPUs per replica.", flag="--accelerator-count")
    ttl: str = setting(
        "2h",
        "Time to live of a deployment svgrft creates (e.g. 2h, 90m; d/h/m/s): then `svgrft deployments list` flags it and `svgrft undeploy --expired` deletes it.",
        flag="--ttl",
    )
    scale_to_zero: str = setting(
        "15m", "An idle deployment scales to zero replicas (no GPU billed) after this long; at least 5m."
    )
    timeout: float = setting(1800.0, "Seconds to wait for a deployment to become READY.", flag="--timeout")
    poll_interval: float = setting(10.0, "Seconds between status polls while waiting.")
    price_per_hour: float = setting(
        0.0, "USD per GPU-hour shown before deploying; 0 = svgrft's list-price table (fireworks.ai/pricing)."
    )


SECTIONS: dict[str, type] = {
    "fireworks": FireworksSettings,
    "judge": JudgeSettings,
    "render": RenderSettings,
    "dataset": DatasetSettings,
    "secrets": SecretsSettings,
    "evaluator": EvaluatorSettings,
    "rollout": RolloutSettings,
    "train": TrainSettings,
    "wandb": WandbSettings,
    "eval": EvalSettings,
    "serve": ServeSettings,
    "deploy": DeploySettings,
}

_KINDS = {"str": str, "int": int, "float": float, "bool": bool, "tuple[str, ...]": tuple}


def _schema() -> dict[str, Spec]:
    out: dict[str, Spec] = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            m = f.metadata["svgrft"]
            out[f"{section}.{f.name}"] = Spec(
                f"{section}.{f.name}",
                _KINDS[str(f.type)],
                f.default,
                m["help"],
                m["env"],
                m["choices"],
                m["flag"],
                m["minimum"],
            )
    return out


SCHEMA: dict[str, Spec] = _schema()
# derived views (read-only by convention): built-in defaults, environment variable -> key, choices
DEFAULTS: dict[str, Any] = {k: (list(s.default) if s.kind is tuple else s.default) for k, s in SCHEMA.items()}
ENV_VARS: dict[str, str] = {s.env: k for k, s in SCHEMA.items() if s.env}
CHOICES: dict[str, tuple[str, ...]] = {k: s.choices for k, s in SCHEMA.items() if s.choices}

SECRET_ENV = ("FIREWORKS_API_KEY", "OPENAI_API_KEY", "SVGRFT_SERVE_TOKEN", "WANDB_API_KEY")
MASKED_ENV = SECRET_ENV + ("EP_REMOTE_API_KEY",)  # values masked in every output (see register_secrets)

# The variables that are not settings: process-level switches, read where settings are not resolved (yet),
# e.g. by the renderer or the store, and the config file's own.
PROCESS_ENV: dict[str, str] = {
    "SVGRFT_HOME": "folder of the local run store, judge cache and deployment records (default ~/.svgrft)",
    "SVGRFT_CONFIG": "config file used when --config is not given",
    "SVGRFT_DEBUG": "1 = print the (redacted) traceback of an expected error too",
    "NO_COLOR": "any value = plain output: no colours, no bold/dim/italic",
    "SVGRFT_NO_SANDBOX": "any value = launch Chromium without its sandbox",
    "PLAYWRIGHT_BROWSERS_PATH": "Playwright's browser folder (its own convention; 0 = inside the package)",
    "PLAYWRIGHT_LEGACY_SCREENSHOT": "any value = Playwright's legacy screenshot path (no CDPScreenshotNewSurface)",
    "XDG_CACHE_HOME": "the user's cache folder, where Playwright keeps its browsers (Linux)",
    "LOCALAPPDATA": "the user's local app-data folder, where Playwright keeps its browsers (Windows)",
    "SVGRFT_SERVE_OPTIONS": "internal: the options `svgrft serve --workers N` hands its worker processes (JSON)",
}


def process_env(name: str, default: str | None = None) -> str | None:
    """The process-level variable ``name`` (one of :data:`PROCESS_ENV`; another name is a bug: KeyError)."""
    if name not in PROCESS_ENV:
        raise KeyError(f"{name} is not a declared process-level variable (config.PROCESS_ENV)")
    return os.environ.get(name, default)


def setting_env(key: str) -> str | None:
    """The raw value of setting ``key``'s environment variable (None when it has none or it is unset/empty),
    for code that runs without resolved settings (the renderer's own Chromium lookup)."""
    var = SCHEMA[key].env
    return (os.environ.get(var) or None) if var else None


def process_environ() -> dict[str, str]:
    """The declared process-level variables (:data:`PROCESS_ENV`) that are set, as a mapping."""
    return {k: os.environ[k] for k in PROCESS_ENV if k in os.environ}


def secret_env(name: str) -> str | None:
    """An API key straight from the process environment (after .env), or None when unset/empty; code that
    has resolved settings uses :meth:`Settings.secret`."""
    return os.environ.get(name) or None


def register_secrets() -> None:
    """Register the value of every key of :data:`MASKED_ENV` that is set, so output masks it."""
    from svgrft.redact import register

    for name in MASKED_ENV:
        register(os.environ.get(name))


def passthrough_env(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The variables among ``names`` that are set (non-empty): the curated environment of a subprocess."""
    return {k: os.environ[k] for k in names if os.environ.get(k)}


def home_dir() -> Path:
    """``$SVGRFT_HOME`` or ``~/.svgrft``: the local run store, judge cache and deployment records."""
    env = process_env("SVGRFT_HOME")
    return Path(env).expanduser() if env else Path.home() / ".svgrft"


def debug() -> bool:
    """``SVGRFT_DEBUG=1``: expected errors print their (redacted) traceback too."""
    return process_env("SVGRFT_DEBUG") == "1"


def no_color() -> bool:
    """``NO_COLOR`` (any non-empty value): plain text, no colours and no bold/dim/italic escape codes."""
    return bool(process_env("NO_COLOR"))


DEFAULT_CONFIG = Path("configs/default.toml")


@dataclass(frozen=True)
class Settings:
    """Every resolved setting, one frozen object per section (``settings.judge.model``), with its source."""

    fireworks: FireworksSettings
    judge: JudgeSettings
    render: RenderSettings
    dataset: DatasetSettings
    secrets: SecretsSettings
    evaluator: EvaluatorSettings
    rollout: RolloutSettings
    train: TrainSettings
    wandb: WandbSettings
    eval: EvalSettings
    serve: ServeSettings
    deploy: DeploySettings
    sources: Mapping[str, str] = field(default_factory=dict)
    config_path: Path | None = None
    env_file: Path | None = None
    env_file_loaded: bool = False
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_values(cls, values: Mapping[str, Any], **extra: Any) -> Settings:
        """Build from coerced ``section.name`` values (missing keys take their default)."""
        sections = {}
        for section, scls in SECTIONS.items():
            p = section + "."
            sections[section] = scls(**{k[len(p) :]: v for k, v in values.items() if k.startswith(p)})
        return cls(**sections, **extra)

    def value(self, key: str) -> Any:
        """One setting by its ``section.name`` key (for generic code: doctor, reports, tests)."""
        if key not in SCHEMA:
            raise KeyError(key)
        section, name = key.split(".", 1)
        return getattr(getattr(self, section), name)

    def values(self) -> dict[str, Any]:
        return {k: self.value(k) for k in SCHEMA}

    def source(self, key: str) -> str:
        return self.sources.get(key, "default")

    def secret(self, name: str) -> str | None:
        """An API key from the environment (after .env), or None when unset/empty."""
        return self.env.get(name) or secret_env(name)

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        """A copy with flag values applied (``None`` = flag not given); values are checked like any source."""
        values = self.values()
        sources = dict(self.sources)
        for key, raw in overrides.items():
            if raw is None:
                continue
            values[key] = _coerce(key, raw, FLAG_SOURCE)
            sources[key] = "flag"
        return Settings.from_values(
            values,
            sources=sources,
            config_path=self.config_path,
            env_file=self.env_file,
            env_file_loaded=self.env_file_loaded,
            env=self.env,
        )


FLAG_SOURCE = "the command line"


def _fix(source: str) -> str:
    return "fix the flag's value" if source == FLAG_SOURCE else f"fix {source}"


def _invalid(source: str) -> type[ConfigError]:
    """The error class of a bad value: a usage error (exit 2) when it was a flag, else a config error (exit 1)."""
    return UsageError if source == FLAG_SOURCE else ConfigError


def _coerce(key: str, raw: Any, source: str) -> Any:
    """``raw`` (from TOML, the environment or a flag) as the setting's type, checked against its declaration."""
    spec = SCHEMA.get(key)
    if spec is None:
        raise ConfigError(
            f"unknown setting '{key}' (from {source})", hint="see configs/default.toml for the settings svgrft knows"
        )
    try:
        if spec.kind is bool:
            if isinstance(raw, bool):
                value: Any = raw
            elif isinstance(raw, str) and raw.strip().lower() in ("1", "true", "yes", "on"):
                value = True
            elif isinstance(raw, str) and raw.strip().lower() in ("0", "false", "no", "off", ""):
                value = False
            else:
                raise ValueError(raw)
        elif spec.kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            value = int(raw)
        elif spec.kind is float:
            if isinstance(raw, bool):
                raise ValueError(raw)
            value = float(raw)
        elif spec.kind is tuple:
            if isinstance(raw, str):
                value = tuple(p.strip() for p in raw.split(",") if p.strip())
            elif isinstance(raw, (list, tuple)) and all(isinstance(x, str) for x in raw):
                value = tuple(raw)
            else:
                raise ValueError(raw)
        else:
            if not isinstance(raw, str):
                raise ValueError(raw)
            value = raw
    except (TypeError, ValueError):
        kind = "list" if spec.kind is tuple else spec.kind.__name__
        raise _invalid(source)(
            f"invalid value {raw!r} for '{key}' (from {source}): expected {kind}", hint=_fix(source)
        ) from None
    choices = spec.choices
    if choices and isinstance(value, str) and value not in choices and value.strip().lower() in choices:
        value = value.strip().lower()  # `--mode MERGE` means merge, as it did before the schema
    if choices and value not in choices:
        raise _invalid(source)(
            f"invalid value {value!r} for '{key}' (from {source}): expected one of {', '.join(choices)}",
            hint=f"use one of: {', '.join(choices)} ({_fix(source)})",
        )
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and spec.minimum is not None
        and value < spec.minimum
    ):
        need = "must not be negative" if spec.minimum == 0 else f"must be at least {spec.minimum:g}"
        raise _invalid(source)(f"invalid value {value!r} for '{key}' (from {source}): {need}", hint=_fix(source))
    if key.endswith("base_url") or key == "rollout.server_url":
        from svgrft.redact import redact_url, url_credentials

        what = url_credentials(value)
        if what:  # it would be baked into the evaluator, uploaded and printed: keys belong in secrets
            raise ConfigError(
                f"'{key}' (from {source}) carries credentials in the URL ({what}): {redact_url(value)}",
                hint="put the key in its environment variable (e.g. OPENAI_API_KEY; `svgrft secrets "
                "push` stores it as a Fireworks secret) and use the URL without it",
            )
        if value and not value.startswith(("http://", "https://")):
            raise _invalid(source)(
                f"invalid URL {redact_url(value)!r} for '{key}' (from {source})",
                hint="URLs start with http:// or https://",
            )
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
        raise ConfigError(
            f"cannot read config file {path}: {e.strerror or e}",
            hint="pass an existing file with --config, e.g. configs/default.toml",
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"config file {path} is not UTF-8 text", hint="pass a TOML file, e.g. configs/default.toml"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}", hint=f"fix the syntax in {path}") from None
    flat = _flatten(data)
    for key, value in flat.items():
        if key.split(".")[-1].lower() in ("api_key", "apikey", "token") or (
            isinstance(value, str) and key.upper() in SECRET_ENV
        ):
            raise ConfigError(
                f"config file {path} holds a secret ('{key}')",
                hint="put API keys in the environment or .env, never in configs/",
            )
    return flat


def load_settings(
    config_path: str | Path | None = None,
    env_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Resolve every setting with its source. ``overrides`` are flag values (None = not given); the config
    file is ``config_path``, else ``$SVGRFT_CONFIG``, else ``configs/default.toml`` when it exists."""
    from dotenv import dotenv_values

    env_path = Path(env_file) if env_file else Path(".env")
    env_loaded = False
    if env_path.is_file():
        try:
            loaded = {k: v for k, v in dotenv_values(env_path, encoding="utf-8").items() if v is not None}
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) else "it is not UTF-8 text"
            raise ConfigError(
                f"cannot read env file {env_path}: {why}",
                hint="a .env file holds NAME=value lines; fix it or pass another with --env-file",
            ) from None
        for k, v in loaded.items():
            os.environ.setdefault(k, v)  # never override what is already set
        env_loaded = True
    elif env_file:
        what = "is not a file" if env_path.exists() else "not found"
        raise ConfigError(f"env file {env_path} {what}", hint="pass an existing file with --env-file")
    environ = dict(os.environ if environ is None else environ)

    values: dict[str, Any] = {k: spec.default for k, spec in SCHEMA.items()}
    sources: dict[str, str] = {k: "default" for k in SCHEMA}

    cfg: Path | None
    config_path = config_path or environ.get("SVGRFT_CONFIG")
    if config_path:
        cfg = Path(config_path)
        if not cfg.is_file():
            what = "is not a file" if cfg.exists() else "not found"
            raise ConfigError(f"config file {cfg} {what}", hint="pass an existing file with --config (see configs/)")
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

    settings = Settings.from_values(
        values,
        sources=sources,
        config_path=cfg,
        env_file=env_path,
        env_file_loaded=env_loaded,
        env={k: environ[k] for k in SECRET_ENV if environ.get(k)},
    )
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
