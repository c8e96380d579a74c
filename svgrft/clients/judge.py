"""The vision judge over the ``openai`` SDK (any OpenAI-compatible endpoint, Fireworks included).

* ``base_url`` / key from settings: ``judge.base_url`` (env ``OPENAI_BASE_URL``; empty = OpenAI) and
  ``OPENAI_API_KEY``; a Fireworks-hosted judge (base URL on ``fireworks.ai``) falls back to
  ``FIREWORKS_API_KEY`` when ``OPENAI_API_KEY`` is unset.
* The SDK's own retries are off (``max_retries=0``): :func:`~svgrft.clients.openai_base.call_with_retries`
  retries 429, 408, 409, 5xx, timeouts, dropped connections and malformed bodies with exponential backoff
  that honours ``Retry-After`` / ``retry-after-ms``, so the behaviour is visible and testable (the shared
  SDK plumbing is :mod:`svgrft.clients.openai_base`).
* A semaphore bounds concurrent judge requests (``judge.concurrency``) to protect rate limits.
* A reply that does not parse (see :mod:`svgrft.core.judge`) gets one repair request; if that fails
  too, the outcome is invalid with the reason -- never silently 0 or 1.

:meth:`JudgeClient.judge` never raises for per-request trouble: it returns a :class:`JudgeOutcome`
with ``ok=False``, ``error_kind`` and a one-line ``reason``. ``openai`` is imported lazily.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from svgrft.clients.openai_base import (
    LoopBoundOpenAI,
    Malformed,
    bounded,
    call_with_retries,
    map_openai_error,
    message_of,
    token_count,
)
from svgrft.clients.openai_base import field as field_of
from svgrft.clients.retry import retry_after_seconds
from svgrft.config import JudgeSettings
from svgrft.core.failure import FailureKind
from svgrft.core.judge import (
    JudgeOutcome,
    JudgeReplyError,
    build_messages,
    parse_reply,
    repair_messages,
    response_format,
)
from svgrft.errors import ConfigError, SvgrftError

if TYPE_CHECKING:
    from svgrft.config import Settings

__all__ = [
    "JudgeClient",
    "JudgeOutcome",
    "judge_from_settings",
    "judge_api_key",
    "call_with_retries",
    "retry_after_seconds",
    "map_openai_error",
    "OPENAI_DEFAULT_BASE",
]

OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"
_D = JudgeSettings()  # the schema's defaults: declared once, in svgrft.config


class JudgeClient(LoopBoundOpenAI):
    """Async judge; safe for concurrent use. ``await judge(png, requirements, prompt)``.

    ``mode`` is one of :data:`svgrft.core.judge.MODES` (checked where settings are read: the schema's
    choices). Defaults are the schema's (:class:`svgrft.config.JudgeSettings`)."""

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        mode: str = _D.mode,
        base_url: str | None = None,
        timeout: float = _D.timeout,
        max_retries: int = _D.max_retries,
        concurrency: int = _D.concurrency,
        backoff_base: float = _D.backoff_base,
        backoff_max: float = 30.0,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        key_name: str = "OPENAI_API_KEY",
    ):
        if not model:
            raise ConfigError("no judge model configured", hint="pass --judge-model or set judge.model")
        self.model = model
        self.mode = mode
        self.base_url = (base_url or OPENAI_DEFAULT_BASE).rstrip("/")
        self._api_key = api_key
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.concurrency = max(1, int(concurrency))
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.temperature = float(temperature)
        self.max_tokens = max_tokens
        self.key_name = key_name
        self.requests_sent = 0

    def __repr__(self) -> str:  # never show the key
        return f"JudgeClient(model={self.model!r}, mode={self.mode!r}, base_url={self.base_url!r})"

    async def _complete(self, messages: list[dict[str, Any]], outcome: JudgeOutcome) -> tuple[str | None, str | None]:
        """One logical request (with transport retries) → (content, refusal)."""
        client, sem = self._bind()
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "response_format": response_format(self.mode),
        }
        if self.max_tokens:
            kwargs["max_tokens"] = self.max_tokens

        async def once() -> Any:
            try:
                resp = await bounded(client.chat.completions.create(**kwargs), self.timeout)
            except (ValueError, RecursionError) as e:  # a 2xx body that is not JSON / too deeply nested JSON
                raise Malformed(f"{type(e).__name__}: {' '.join(str(e).split())[:120]}") from None
            return resp, message_of(resp)  # Malformed (retried) when it is not a chat completion

        def count() -> None:
            outcome.calls += 1
            self.requests_sent += 1

        resp, (content, refusal) = await call_with_retries(
            once,
            max_retries=self.max_retries,
            backoff_base=self.backoff_base,
            backoff_max=self.backoff_max,
            semaphore=sem,
            on_attempt=count,
        )
        usage = field_of(resp, "usage")
        if usage is not None:  # token counts are bookkeeping: garbage there must not cost the verdict
            outcome.usage["prompt_tokens"] += token_count(field_of(usage, "prompt_tokens"))
            outcome.usage["completion_tokens"] += token_count(field_of(usage, "completion_tokens"))
        return content, refusal

    async def judge(self, png: bytes, requirements: list[str], prompt: str = "") -> JudgeOutcome:
        t0 = time.perf_counter()
        outcome = JudgeOutcome(ok=False)
        reqs = [str(r) for r in requirements]
        try:
            if not reqs:
                outcome.error_kind, outcome.reason = FailureKind.INVALID_REPLY, "no requirements to judge"
                return outcome
            messages = build_messages(self.mode, reqs, png, prompt)
            last_reason = ""
            for attempt in range(2):  # the request, then at most one repair request
                content, refusal = await self._complete(messages, outcome)
                outcome.raw = (content or refusal or "")[:2000]
                try:
                    if refusal:
                        raise JudgeReplyError(f"judge refused: {' '.join(str(refusal).split())[:160]}")
                    outcome.reply = parse_reply(self.mode, content, reqs)
                    outcome.ok = True
                    outcome.reason = ""
                    return outcome
                except JudgeReplyError as e:
                    last_reason = e.reason
                    if attempt == 0:
                        messages = repair_messages(messages, content or refusal, e.reason, self.mode, len(reqs))
            outcome.error_kind = FailureKind.INVALID_REPLY
            outcome.reason = f"judge reply invalid after a repair retry: {last_reason}"
            return outcome
        except asyncio.CancelledError:
            raise
        except Exception as e:
            err = (
                e
                if isinstance(e, SvgrftError)
                else map_openai_error(
                    e,
                    service="judge",
                    what="judging an image",
                    base_url=self.base_url,
                    key_name=self.key_name,
                    model=self.model,
                )
            )
            outcome.error_kind = FailureKind.parse(getattr(err, "kind", None)) or FailureKind.ERROR
            outcome.reason = err.message
            outcome.ok = False
            return outcome
        finally:
            outcome.latency_ms = (time.perf_counter() - t0) * 1000

    @classmethod
    def from_section(cls, judge: JudgeSettings, *, api_key: str, key_name: str) -> JudgeClient:
        """The client the ``[judge]`` settings describe (``base_url`` empty = OpenAI)."""
        return cls(
            model=judge.model,
            mode=judge.mode,
            base_url=judge.base_url or None,
            api_key=api_key,
            timeout=judge.timeout,
            max_retries=judge.max_retries,
            concurrency=judge.concurrency,
            backoff_base=judge.backoff_base,
            key_name=key_name,
        )


def judge_api_key(settings: Settings, base_url: str) -> tuple[str, str]:
    """(key, its env name) for the judge endpoint; raises ConfigError when none is set."""
    key = settings.secret("OPENAI_API_KEY")
    if key:
        return key, "OPENAI_API_KEY"
    if "fireworks.ai" in base_url or base_url.rstrip("/") == settings.fireworks.inference_base_url.rstrip("/"):
        fw = settings.secret("FIREWORKS_API_KEY")
        if fw:
            return fw, "FIREWORKS_API_KEY"
    raise ConfigError(
        "OPENAI_API_KEY is not set (the vision judge needs it)",
        hint="export OPENAI_API_KEY=... or put it in .env; for a judge on Fireworks set "
        "OPENAI_BASE_URL=https://api.fireworks.ai/inference/v1 and FIREWORKS_API_KEY",
    )


def judge_from_settings(settings: Settings, judge: JudgeSettings | None = None) -> JudgeClient:
    """The judge client of ``judge`` (default ``settings.judge``), with its key from ``settings``' environment."""
    judge = judge or settings.judge
    key, key_name = judge_api_key(settings, (judge.base_url or OPENAI_DEFAULT_BASE).rstrip("/"))
    return JudgeClient.from_section(judge, api_key=key, key_name=key_name)
