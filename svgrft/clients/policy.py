"""The policy model through the ``openai`` SDK (any OpenAI-compatible base URL), for ``svgrft eval``
(:class:`PolicyClient`); the rollout server's per-rollout call is :mod:`svgrft.clients.policy_call`.

:class:`PolicyClient` (``eval``, ``compare``): default endpoint: ``settings.fireworks.inference_base_url``
with ``FIREWORKS_API_KEY``; short Fireworks model names (``qwen3-0p6b``) expand to ``accounts/fireworks/models/qwen3-0p6b`` there.
Another ``--base-url`` uses ``OPENAI_API_KEY`` (falling back to ``FIREWORKS_API_KEY``) unless an
explicit key variable is named. Transient failures are retried like the judge's
(:func:`svgrft.clients.openai_base.call_with_retries`); what remains becomes an svgrft error with a hint
(404 → "model not found or not deployed").

``openai`` is imported lazily.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import TYPE_CHECKING, Any

from svgrft.clients.openai_base import (
    LoopBoundOpenAI,
    Malformed,
    bounded,
    call_with_retries,
    field,
    map_openai_error,
    text,
    token_count,
)
from svgrft.config import EvalSettings, FireworksSettings, JudgeSettings, expand_model
from svgrft.errors import ConfigError, SvgrftError

if TYPE_CHECKING:
    from svgrft.config import Settings

__all__ = [
    "Generation",
    "PolicyClient",
    "policy_from_settings",
    "is_fireworks_url",
]


_EVAL, _JUDGE, _FW = EvalSettings(), JudgeSettings(), FireworksSettings()  # the schema's defaults


@dataclass
class Generation:
    text: str | None
    finish_reason: str | None = None
    usage: dict[str, int] = dc_field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0})
    latency_ms: float = 0.0
    calls: int = 0  # HTTP requests (including retries) for the request this came from


def is_fireworks_url(base_url: str, settings: Settings | None = None) -> bool:
    b = (base_url or "").rstrip("/")
    if "fireworks.ai" in b:
        return True
    if settings is not None:
        return b == settings.fireworks.inference_base_url.rstrip("/")
    return False


class PolicyClient(LoopBoundOpenAI):
    """Async generation for ``eval``; safe for concurrent use (``concurrency`` requests in flight). Defaults
    are the schema's (``eval.timeout``, ``fireworks.max_retries`` + 1, ``judge.backoff_base``,
    ``eval.concurrency``)."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str,
        key_name: str = "FIREWORKS_API_KEY",
        timeout: float = _EVAL.timeout,
        max_retries: int = _FW.max_retries + 1,
        backoff_base: float = _JUDGE.backoff_base,
        concurrency: int = _EVAL.concurrency,
    ):
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.key_name = key_name
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.backoff_base = float(backoff_base)
        self.concurrency = max(1, int(concurrency))
        self.requests_sent = 0

    def __repr__(self) -> str:
        return f"PolicyClient(model={self.model!r}, base_url={self.base_url!r})"

    async def generate(
        self,
        messages: list[dict[str, Any]],
        *,
        n: int = 1,
        temperature: float | None = None,
        max_tokens: int | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> list[Generation]:
        """``n`` completions of ``messages``. Raises an :class:`SvgrftError` (with ``.kind``) on failure."""
        client, sem = self._bind()
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
        if n != 1:
            kwargs["n"] = int(n)
        if temperature is not None:
            kwargs["temperature"] = float(temperature)
        if max_tokens:
            kwargs["max_tokens"] = int(max_tokens)
        if extra_body:
            kwargs["extra_body"] = extra_body
        calls = 0

        def count() -> None:
            nonlocal calls
            calls += 1
            self.requests_sent += 1

        async def once() -> Any:
            try:
                resp = await bounded(client.chat.completions.create(**kwargs), self.timeout)
            except (ValueError, RecursionError) as e:
                raise Malformed(f"{type(e).__name__}: {' '.join(str(e).split())[:120]}") from None
            choices = field(resp, "choices")
            if not isinstance(choices, list) or not all(isinstance(c, dict) or hasattr(c, "message") for c in choices):
                raise Malformed("response body is not a chat completion")
            return resp

        t0 = time.perf_counter()
        try:
            resp = await call_with_retries(
                once, max_retries=self.max_retries, backoff_base=self.backoff_base, semaphore=sem, on_attempt=count
            )
        except asyncio.CancelledError:
            raise
        except SvgrftError:
            raise
        except Exception as e:
            raise map_openai_error(
                e,
                service="policy model",
                what=f"generating with {self.model}",
                base_url=self.base_url,
                key_name=self.key_name,
                model=self.model,
            ) from None
        latency = (time.perf_counter() - t0) * 1000
        usage = field(resp, "usage")  # bookkeeping: NaN/negative/garbage counts are 0, never an error
        pt = token_count(field(usage, "prompt_tokens")) if usage is not None else 0
        ct = token_count(field(usage, "completion_tokens")) if usage is not None else 0
        choices = sorted(field(resp, "choices") or [], key=lambda c: token_count(field(c, "index")))
        k = max(1, len(choices))
        out = []
        for ch in choices:
            msg = field(ch, "message")
            content = text(field(msg, "content")) if msg is not None else None
            reason = field(ch, "finish_reason")
            out.append(
                Generation(
                    text=content,
                    finish_reason=reason if isinstance(reason, str) else None,
                    usage={"prompt_tokens": pt // k, "completion_tokens": ct // k},
                    latency_ms=latency,
                    calls=calls,
                )
            )
        return out


def policy_from_settings(
    settings: Settings,
    *,
    model: str,
    base_url: str | None = None,
    api_key_env: str | None = None,
    concurrency: int | None = None,
    timeout: float | None = None,
) -> PolicyClient:
    """The ``eval`` policy client for ``model`` (default endpoint ``fireworks.inference_base_url``), its key
    from the environment (see the module)."""
    base = (base_url or settings.fireworks.inference_base_url).rstrip("/")
    fireworks = is_fireworks_url(base, settings)
    name = expand_model(model) if fireworks else model.strip()
    if not name:
        raise ConfigError("model name is empty", hint="pass e.g. --model qwen3-0p6b")
    if api_key_env:
        key, key_name = settings.secret(api_key_env), api_key_env
    elif fireworks:
        key, key_name = settings.secret("FIREWORKS_API_KEY"), "FIREWORKS_API_KEY"
    else:
        key, key_name = settings.secret("OPENAI_API_KEY"), "OPENAI_API_KEY"
        if not key and settings.secret("FIREWORKS_API_KEY"):  # the fallback; a missing key is named OPENAI_API_KEY
            key, key_name = settings.secret("FIREWORKS_API_KEY"), "FIREWORKS_API_KEY"
    if not key:
        raise ConfigError(
            f"{key_name} is not set (needed to generate with {name})",
            hint=f"export {key_name}=... or put it in .env"
            + ("" if api_key_env else "; or name another variable with --api-key-env"),
        )
    return PolicyClient(
        model=name,
        base_url=base,
        api_key=key,
        key_name=key_name,
        timeout=timeout or settings.eval.timeout,
        max_retries=settings.fireworks.max_retries + 1,
        backoff_base=settings.judge.backoff_base,
        concurrency=concurrency or settings.eval.concurrency,
    )


# ------------------------------------------------------------------------------------- the rollout server
