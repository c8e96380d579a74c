"""The rollout server (``svgrft serve``): Eval Protocol's remote ``POST /init`` endpoint.

Modules: ``app`` (:class:`~svgrft.server.app.RolloutServer`, ``create_app``), ``options`` (ServeOptions
from settings or the environment), ``init_request`` (reading and validating ``/init``), ``outcomes`` (how
a failed rollout is answered), ``wire`` (Eval Protocol's InitRequest and status-log format, without
eval_protocol), ``status_report`` (status logs to the Fireworks tracing gateway), ``guard`` (token, host
allow-list, rate limit, concurrency cap), ``conn`` (the guarded HTTP protocol), ``runner`` (uvicorn).
The policy call itself is :class:`svgrft.clients.policy_call.PolicyCaller`. Importing this package is cheap;
``create_app`` imports FastAPI (and, when serving starts, openai) -- never eval_protocol or litellm.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "ServeOptions", "options_from_settings"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from svgrft.server import app

        return getattr(app, name)
    raise AttributeError(name)
