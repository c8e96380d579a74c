"""The rollout server (``svgrft serve``): Eval Protocol's remote ``POST /init`` endpoint.

Modules: ``app`` (the ASGI app, ``create_app``), ``policy`` (policy call arguments and error
mapping), ``tracing`` (status logs to the Fireworks tracing gateway), ``guard`` (token, host
allow-list, rate limit, concurrency cap), ``runner`` (uvicorn). Importing this package is cheap;
``create_app`` imports eval_protocol, FastAPI and openai when called.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "ServeOptions", "options_from_settings"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from svgrft.server import app

        return getattr(app, name)
    raise AttributeError(name)
