"""What shapes the rollout server: :class:`ServeOptions`, from the ``[serve]`` settings and flags, or -- in
``--workers`` processes -- from the environment (``SVGRFT_SERVE_OPTIONS``, no secrets; the token travels
as ``SVGRFT_SERVE_TOKEN``).

Defaults are the schema's (:class:`svgrft.config.ServeSettings`); imported by the app and the runner
alike (no import between those two).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from svgrft.config import ServeSettings, process_env
from svgrft.server.guard import DEFAULT_MODEL_HOSTS

if TYPE_CHECKING:
    from svgrft.config import Settings

__all__ = ["ServeOptions", "options_from_settings", "options_from_env", "export_options", "OPTIONS_ENV"]

OPTIONS_ENV = "SVGRFT_SERVE_OPTIONS"  # JSON ServeOptions (no secrets) for --workers > 1
TOKEN_ENV = "SVGRFT_SERVE_TOKEN"
_D = ServeSettings()


@dataclass
class ServeOptions:
    """Everything that shapes the server's behaviour (secrets excluded from ``public()``)."""

    token: str | None = None
    allow_server_key: bool = False
    allow_model_hosts: tuple[str, ...] = _D.allow_model_hosts  # added to the default Fireworks hosts
    max_concurrent: int = _D.max_concurrent  # 0 = unlimited
    rate_limit: float = _D.rate_limit  # requests/s per client, 0 = off
    rate_burst: int = _D.rate_burst
    rollout_timeout: float = _D.rollout_timeout
    max_body: int = _D.max_body
    policy_retries: int = _D.policy_retries
    background: bool = _D.background
    read_timeout: float = _D.read_timeout  # headers, then the body, must arrive within this many seconds
    max_connections_per_client: int = _D.max_connections_per_client  # 0 = max_concurrent + 64
    trust_proxy_headers: bool = _D.trust_proxy_headers  # client address from X-Forwarded-For of a loopback proxy
    default_hosts: tuple[str, ...] = field(default=DEFAULT_MODEL_HOSTS)

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("token")
        d["auth"] = "token" if self.token else "none"
        return d


def options_from_settings(settings: Settings, **given: Any) -> ServeOptions:
    """ServeOptions from ``settings.serve``, overridden by the keyword arguments that are not None
    (``allow_model_hosts`` adds to the configured ones). The configured Fireworks endpoints count as
    Fireworks hosts; the token defaults to ``SVGRFT_SERVE_TOKEN``, ``""`` means none."""
    hosts = list(DEFAULT_MODEL_HOSTS)
    for url in (settings.fireworks.tracing_base_url, settings.fireworks.inference_base_url):
        host = urlsplit(url).hostname if url else None
        if host:
            port = urlsplit(url).port
            hosts.append(host + (f":{port}" if port else ""))
    serve = settings.serve
    opts = ServeOptions(
        token=settings.secret(TOKEN_ENV),
        allow_model_hosts=serve.allow_model_hosts,
        max_concurrent=serve.max_concurrent,
        rate_limit=serve.rate_limit,
        rate_burst=serve.rate_burst,
        rollout_timeout=serve.rollout_timeout,
        max_body=serve.max_body,
        policy_retries=serve.policy_retries,
        background=serve.background,
        read_timeout=serve.read_timeout,
        max_connections_per_client=serve.max_connections_per_client,
        trust_proxy_headers=serve.trust_proxy_headers,
        default_hosts=tuple(dict.fromkeys(hosts)),
    )
    for key, value in given.items():
        if value is None:
            continue
        if key == "allow_model_hosts":
            value = tuple(dict.fromkeys([*opts.allow_model_hosts, *value]))
        setattr(opts, key, value)
    if opts.token == "":
        opts.token = None
    return opts


def export_options(options: ServeOptions) -> None:
    """Put ``options`` in this process's environment for worker processes (:func:`options_from_env`)."""
    os.environ[OPTIONS_ENV] = json.dumps(options.public())
    if options.token:
        os.environ[TOKEN_ENV] = options.token
    else:
        os.environ.pop(TOKEN_ENV, None)


def options_from_env(settings: Settings) -> ServeOptions | None:
    """The options a parent ``svgrft serve`` exported, or None when there are none."""
    raw = process_env(OPTIONS_ENV)
    if not raw:
        return None
    d = json.loads(raw)
    d.pop("auth", None)
    d["allow_model_hosts"] = tuple(d.get("allow_model_hosts") or ())
    d["default_hosts"] = tuple(d.get("default_hosts") or DEFAULT_MODEL_HOSTS)
    return ServeOptions(token=settings.secret(TOKEN_ENV), **d)
