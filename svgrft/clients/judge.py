"""The vision judge over the ``openai`` SDK (any OpenAI-compatible endpoint, Fireworks included).

* ``base_url`` / key from settings: ``judge.base_url`` (env ``OPENAI_BASE_URL``; empty = OpenAI) and
  ``OPENAI_API_KEY``; a Fireworks-hosted judge (base URL on ``fireworks.ai``) falls back to
  ``FIREWORKS_API_KEY`` when ``OPENAI_API_KEY`` is unset.
* The SDK's own retries are off (``max_retries=0``): :func:`call_with_retries` retries 429, 408, 409,
  5xx, timeouts, dropped connections and malformed bodies with exponential backoff that honours
  ``Retry-After`` / ``retry-after-ms``, so the behaviour is visible and testable.
* A semaphore bounds concurrent judge requests (``judge.concurrency``) to protect rate limits.
* A reply that does not parse (see :mod:`svgrft.core.judge`) gets one repair request; if that fails
  too, the outcome is invalid with the reason -- never silently 0 or 1.

:meth:`JudgeClient.judge` never raises for per-request trouble: it returns a :class:`JudgeOutcome`
with ``ok=False``, ``error_kind`` and a one-line ``reason``. ``openai`` is imported lazily.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from svgrft.core.judge import (JudgeReply, JudgeReplyError, build_messages, parse_reply, repair_messages,
                               response_format)
from svgrft.clients.retry import retry_after_seconds
from svgrft.errors import ApiError, AuthError, ConfigError, NetworkError, NotFoundError, SvgrftError

__all__ = ["JudgeClient", "JudgeOutcome", "judge_from_settings", "call_with_retries", "retry_after_seconds",
           "map_openai_error", "FATAL_KINDS", "OPENAI_DEFAULT_BASE"]

OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"
RETRY_STATUSES = {408, 409, 429}
# error kinds that will fail every later request the same way: a run should stop, not record them per sample
FATAL_KINDS = ("auth", "not_found", "bad_request", "config")


_SSL_CONTEXT: Any = None
_SSL_LOCK = threading.Lock()


def http_client() -> Any:
    """An httpx client for an ``AsyncOpenAI`` (openai's defaults), sharing one SSL context per process:
    loading the CA bundle costs ~0.1 s per client otherwise, and every event loop needs new clients."""
    global _SSL_CONTEXT
    import httpx
    import openai

    with _SSL_LOCK:
        if _SSL_CONTEXT is None:
            _SSL_CONTEXT = httpx.create_ssl_context()
    return openai.DefaultAsyncHttpxClient(verify=_SSL_CONTEXT)


class _Malformed(Exception):
    """A 2xx answer whose body could not be used (not JSON, no choices)."""


class _Deadline(Exception):
    """The whole request took longer than the client's timeout (the SDK's timeout is per read, so a server
    that trickles bytes never trips it)."""


async def bounded(coro: Awaitable[Any], seconds: float) -> Any:
    """``await coro`` with a total deadline; raises :class:`_Deadline` (retryable, kind "timeout")."""
    try:
        return await asyncio.wait_for(coro, timeout=seconds)
    except asyncio.TimeoutError:
        raise _Deadline(f"no complete answer within {seconds:g} s") from None


def _status_kind(status: int) -> str:
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status == 429:
        return "rate_limit"
    if status >= 500:
        return "server"
    if status in (400, 422):
        return "bad_request"
    return "http"


def _err_message(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return " ".join(str(inner["message"]).split())[:200]
        if isinstance(inner, str):
            return " ".join(inner.split())[:200]
    msg = getattr(e, "message", None) or str(e) or type(e).__name__
    return " ".join(str(msg).split())[:200]


def map_openai_error(e: BaseException, *, service: str, what: str, base_url: str, key_name: str,
                     model: str = "") -> SvgrftError:
    """An openai SDK exception (after retries) → an svgrft error with a hint; ``.kind`` is set."""
    import openai

    where = f" at {base_url}" if base_url else ""
    err: SvgrftError
    if isinstance(e, openai.APIStatusError):
        status = e.status_code
        kind = _status_kind(status)
        if kind == "auth":
            err = AuthError(f"the {service}{where} rejected the API key ({status}) while {what}",
                            hint=f"check {key_name} (environment or .env); `svgrft doctor` shows which key is used",
                            status=status)
        elif kind == "not_found":
            err = NotFoundError(f"{service} model '{model}' not found or not deployed{where} (404)",
                                hint="check the model name and base URL; on Fireworks, serverless models are "
                                     "accounts/fireworks/models/<name>, your own need a deployment",
                                status=status)
        elif kind == "rate_limit":
            err = ApiError(f"rate limited by the {service}{where} (429) while {what}, after retries",
                           hint="lower --concurrency or wait a minute; rerun with --resume to continue",
                           status=status)
        elif kind == "server":
            err = ApiError(f"the {service}{where} answered {status} while {what}, after retries",
                           hint="the service may be degraded; rerun later with --resume", status=status)
        elif kind == "bad_request":
            err = ApiError(f"the {service}{where} refused the request ({status}) while {what}: {_err_message(e)}",
                           hint="check the model supports this request (images and JSON output for a judge)",
                           status=status)
        else:
            err = ApiError(f"the {service}{where} answered {status} while {what}: {_err_message(e)}",
                           hint="rerun later with --resume", status=status)
    elif isinstance(e, (openai.APITimeoutError, _Deadline)):
        kind = "timeout"
        err = NetworkError(f"timed out waiting for the {service}{where} while {what}, after retries",
                           hint="check the network/base URL, or raise the timeout")
    elif isinstance(e, openai.APIConnectionError):
        kind = "network"
        err = NetworkError(f"cannot reach the {service}{where} while {what}, after retries",
                           hint="check the network and the base URL")
    elif isinstance(e, _Malformed):
        kind = "malformed"
        err = ApiError(f"the {service}{where} sent an unusable response while {what}, after retries: {e}",
                       hint="check the base URL points at an OpenAI-compatible /v1 endpoint")
    else:
        kind = "error"
        err = ApiError(f"{service} request failed while {what}: {type(e).__name__}: {_err_message(e)}",
                       hint="rerun with --resume; report a bug if it persists")
    err.kind = kind  # type: ignore[attr-defined]
    return err


def _retryable(e: BaseException) -> tuple[bool, float | None]:
    import openai

    if isinstance(e, openai.APIStatusError):
        retry = e.status_code in RETRY_STATUSES or e.status_code >= 500
        return retry, retry_after_seconds(getattr(e.response, "headers", None)) if retry else None
    if isinstance(e, (openai.APIConnectionError, _Malformed, _Deadline, openai.APIResponseValidationError)):
        return True, None
    return False, None


async def call_with_retries(fn: Callable[[], Awaitable[Any]], *, max_retries: int, backoff_base: float,
                            backoff_max: float = 30.0, semaphore: asyncio.Semaphore | None = None,
                            on_attempt: Callable[[], None] | None = None,
                            sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> Any:
    """Run ``fn`` (one HTTP call) with retries on transient failures.

    Backoff before retry k (0-based) is ``backoff_base * 2**k`` plus up to 25 % jitter, capped at
    ``backoff_max``; a ``Retry-After`` from the server replaces it (capped at 120 s). The semaphore is
    held only during the call, never while sleeping."""
    attempt = 0
    while True:
        if on_attempt is not None:
            on_attempt()
        try:
            if semaphore is not None:
                async with semaphore:
                    return await fn()
            return await fn()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            retry, after = _retryable(e)
            if not retry or attempt >= max_retries:
                raise
            delay = after if after is not None else min(backoff_max, backoff_base * (2 ** attempt))
            if after is None:
                delay += random.uniform(0, 0.25 * delay)
            attempt += 1
            await sleep(delay)


def _field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``: the SDK leaves unexpected shapes as plain dicts/lists."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _token_count(value: Any) -> int:
    """A usage count as a non-negative int; NaN, negative, huge or non-numeric values count as 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if isinstance(value, float) and not (value == value and abs(value) < 1e12):
        return 0
    return int(value) if 0 <= value < 10**12 else 0


def _text(content: Any) -> str | None:
    """Message content as text: a string, OpenAI-style content parts joined, or an object as JSON."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [_field(p, "text") for p in content]
        return "\n".join(p for p in parts if isinstance(p, str))
    if isinstance(content, dict):
        try:
            return json.dumps(content)
        except (TypeError, ValueError, RecursionError):
            return str(content)[:MAX_RAW]
    return str(content)


def _message_of(resp: Any) -> tuple[str | None, str | None]:
    """(content, refusal) of a chat completion; raises _Malformed when ``resp`` is not one."""
    choices = _field(resp, "choices")
    if choices is None or not isinstance(choices, list):
        raise _Malformed("response body is not a chat completion")
    if not choices:
        return None, None
    msg = _field(choices[0], "message")
    if msg is None:
        if not hasattr(choices[0], "message") and not isinstance(choices[0], dict):
            raise _Malformed("response body is not a chat completion")
        return None, None
    refusal = _field(msg, "refusal")
    return _text(_field(msg, "content")), (None if refusal is None else _text(refusal))


MAX_RAW = 2000


@dataclass
class JudgeOutcome:
    ok: bool
    reply: JudgeReply | None = None
    reason: str = ""
    error_kind: str | None = None   # invalid_reply | auth | not_found | bad_request | rate_limit | server | ...
    calls: int = 0                  # HTTP requests sent (including retries and the repair request)
    usage: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0})
    latency_ms: float = 0.0
    raw: str | None = None          # the last raw reply (truncated), for debugging invalid ones

    @property
    def fatal(self) -> bool:
        return self.error_kind in FATAL_KINDS


class LoopBoundOpenAI:
    """An ``AsyncOpenAI`` client and a concurrency semaphore, re-made for each event loop (both are
    loop-bound). Subclasses set ``_api_key``, ``base_url``, ``timeout`` and ``concurrency``."""

    _api_key: str
    base_url: str
    timeout: float
    concurrency: int
    _loop: Any = None
    _client: Any = None
    _sem: asyncio.Semaphore | None = None

    def _bind(self) -> tuple[Any, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._client is None or self._sem is None:
            import openai

            self._client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, max_retries=0,
                                              timeout=self.timeout, http_client=http_client())
            self._sem = asyncio.Semaphore(self.concurrency)
            self._loop = loop
        return self._client, self._sem

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except Exception:
                pass


class JudgeClient(LoopBoundOpenAI):
    """Async judge; safe for concurrent use. ``await judge(png, requirements, prompt)``."""

    def __init__(self, *, model: str, api_key: str, mode: str = "checklist", base_url: str | None = None,
                 timeout: float = 60.0, max_retries: int = 4, concurrency: int = 8, backoff_base: float = 1.0,
                 backoff_max: float = 30.0, temperature: float = 0.0, max_tokens: int | None = None,
                 key_name: str = "OPENAI_API_KEY"):
        from svgrft.core.judge import MODES

        if mode not in MODES:
            raise ConfigError(f"unknown judge mode '{mode}'", hint=f"use one of {', '.join(MODES)}")
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
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": self.temperature,
                                  "response_format": response_format(self.mode)}
        if self.max_tokens:
            kwargs["max_tokens"] = self.max_tokens

        async def once() -> Any:
            try:
                resp = await bounded(client.chat.completions.create(**kwargs), self.timeout)
            except (ValueError, RecursionError) as e:  # a 2xx body that is not JSON / too deeply nested JSON
                raise _Malformed(f"{type(e).__name__}: {' '.join(str(e).split())[:120]}") from None
            return resp, _message_of(resp)  # _Malformed (retried) when it is not a chat completion

        def count() -> None:
            outcome.calls += 1
            self.requests_sent += 1

        resp, (content, refusal) = await call_with_retries(
            once, max_retries=self.max_retries, backoff_base=self.backoff_base, backoff_max=self.backoff_max,
            semaphore=sem, on_attempt=count)
        usage = _field(resp, "usage")
        if usage is not None:  # token counts are bookkeeping: garbage there must not cost the verdict
            outcome.usage["prompt_tokens"] += _token_count(_field(usage, "prompt_tokens"))
            outcome.usage["completion_tokens"] += _token_count(_field(usage, "completion_tokens"))
        return content, refusal

    async def judge(self, png: bytes, requirements: list[str], prompt: str = "") -> JudgeOutcome:
        t0 = time.perf_counter()
        outcome = JudgeOutcome(ok=False)
        reqs = [str(r) for r in requirements]
        try:
            if not reqs:
                outcome.error_kind, outcome.reason = "invalid_reply", "no requirements to judge"
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
            outcome.error_kind = "invalid_reply"
            outcome.reason = f"judge reply invalid after a repair retry: {last_reason}"
            return outcome
        except asyncio.CancelledError:
            raise
        except Exception as e:
            err = e if isinstance(e, SvgrftError) else map_openai_error(
                e, service="judge", what="judging an image", base_url=self.base_url, key_name=self.key_name,
                model=self.model)
            outcome.error_kind = getattr(err, "kind", "error")
            outcome.reason = err.message
            outcome.ok = False
            return outcome
        finally:
            outcome.latency_ms = (time.perf_counter() - t0) * 1000


def judge_api_key(settings: Any, base_url: str) -> tuple[str, str]:
    """(key, its env name) for the judge endpoint; raises ConfigError when none is set."""
    key = settings.secret("OPENAI_API_KEY")
    if key:
        return key, "OPENAI_API_KEY"
    if "fireworks.ai" in base_url or base_url.rstrip("/") == str(settings["fireworks.inference_base_url"]).rstrip("/"):
        fw = settings.secret("FIREWORKS_API_KEY")
        if fw:
            return fw, "FIREWORKS_API_KEY"
    raise ConfigError("OPENAI_API_KEY is not set (the vision judge needs it)",
                      hint="export OPENAI_API_KEY=... or put it in .env; for a judge on Fireworks set "
                           "OPENAI_BASE_URL=https://api.fireworks.ai/inference/v1 and FIREWORKS_API_KEY")


def judge_from_settings(settings: Any, *, model: str | None = None, mode: str | None = None,
                        base_url: str | None = None, concurrency: int | None = None) -> JudgeClient:
    base = (base_url or settings["judge.base_url"] or OPENAI_DEFAULT_BASE).rstrip("/")
    key, key_name = judge_api_key(settings, base)
    return JudgeClient(
        model=model or settings["judge.model"], mode=mode or settings["judge.mode"], base_url=base, api_key=key,
        timeout=settings["judge.timeout"], max_retries=settings["judge.max_retries"],
        concurrency=concurrency or settings["judge.concurrency"],
        backoff_base=settings.get("judge.backoff_base", 1.0), key_name=key_name)
