"""Shared plumbing of every ``openai`` SDK client here (the judge, the policy for ``eval`` and for the
rollout server): the loop-bound SDK client, the total deadline, the retry loop, the SDK-error mapping and
the readers of a chat completion's loose shapes.

Contracts:

* :class:`LoopBoundOpenAI` re-makes its ``AsyncOpenAI`` and semaphore for each event loop (both are
  loop-bound); the SDK's own retries are off there, :func:`call_with_retries` does them visibly.
* :func:`bounded` puts a total deadline on one call (the SDK's timeout is per read); it raises
  :class:`Deadline`, which is retried like a timeout.
* :func:`call_with_retries` retries 408/409/429/5xx, dropped connections, timeouts and
  :class:`Malformed` bodies with exponential backoff; ``Retry-After`` (:mod:`svgrft.clients.retry`) wins.
* :func:`map_openai_error` turns what is left into an svgrft error whose ``.kind`` is a
  :class:`~svgrft.core.failure.FailureKind`.
* :func:`field`, :func:`text`, :func:`token_count`, :func:`message_of` read a completion that may be
  SDK objects or plain dicts/lists, never raising on garbage (only :class:`Malformed` when it is not a
  chat completion at all).

``openai`` and ``httpx`` are imported inside functions only.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from svgrft.clients.retry import retry_after_seconds
from svgrft.core.failure import FailureKind
from svgrft.errors import ApiError, AuthError, NetworkError, NotFoundError, SvgrftError

__all__ = [
    "LoopBoundOpenAI",
    "Malformed",
    "Deadline",
    "bounded",
    "call_with_retries",
    "map_openai_error",
    "status_kind",
    "http_client",
    "field",
    "text",
    "token_count",
    "message_of",
    "one_line",
    "upstream_message",
    "RETRY_STATUSES",
    "MAX_RAW",
]

RETRY_STATUSES = {408, 409, 429}
MAX_RAW = 2000  # characters of a raw reply kept for debugging

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


class Malformed(Exception):
    """A 2xx answer whose body could not be used (not JSON, no choices)."""


class Deadline(Exception):
    """The whole request took longer than the client's timeout (the SDK's timeout is per read, so a server
    that trickles bytes never trips it)."""


async def bounded(coro: Awaitable[Any], seconds: float) -> Any:
    """``await coro`` with a total deadline; raises :class:`Deadline` (retryable, kind "timeout")."""
    try:
        return await asyncio.wait_for(coro, timeout=seconds)
    except asyncio.TimeoutError:
        raise Deadline(f"no complete answer within {seconds:g} s") from None


def status_kind(status: int) -> FailureKind:
    """What an HTTP error status means for a client."""
    if status in (401, 403):
        return FailureKind.AUTH
    if status == 404:
        return FailureKind.NOT_FOUND
    if status == 429:
        return FailureKind.RATE_LIMIT
    if status >= 500:
        return FailureKind.SERVER
    if status in (400, 422):
        return FailureKind.BAD_REQUEST
    return FailureKind.HTTP


def one_line(value: Any, limit: int = 200) -> str:
    """``value`` as one line of at most ``limit`` characters (an ellipsis marks a cut)."""
    s = " ".join(str(value).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def upstream_message(e: Any, limit: int = 200) -> str:
    """The error message an endpoint put in its body (OpenAI's ``{"error": {"message"}}`` shape or a
    string), else the exception's own message; one line."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return one_line(inner["message"], limit)
        if isinstance(inner, str):
            return one_line(inner, limit)
    return one_line(getattr(e, "message", None) or str(e) or type(e).__name__, limit)


def _err_message(e: Any) -> str:
    return " ".join(upstream_message(e, 10**6).split())[:200]


def map_openai_error(
    e: BaseException, *, service: str, what: str, base_url: str, key_name: str, model: str = ""
) -> SvgrftError:
    """An openai SDK exception (after retries) → an svgrft error with a hint; ``.kind`` is a FailureKind."""
    import openai

    where = f" at {base_url}" if base_url else ""
    err: SvgrftError
    if isinstance(e, openai.APIStatusError):
        status = e.status_code
        kind = status_kind(status)
        if kind is FailureKind.AUTH:
            err = AuthError(
                f"the {service}{where} rejected the API key ({status}) while {what}",
                hint=f"check {key_name} (environment or .env); `svgrft doctor` shows which key is used",
                status=status,
            )
        elif kind is FailureKind.NOT_FOUND:
            err = NotFoundError(
                f"{service} model '{model}' not found or not deployed{where} (404)",
                hint="check the model name and base URL; on Fireworks, serverless models are "
                "accounts/fireworks/models/<name>, your own need a deployment",
                status=status,
            )
        elif kind is FailureKind.RATE_LIMIT:
            err = ApiError(
                f"rate limited by the {service}{where} (429) while {what}, after retries",
                hint="lower --concurrency or wait a minute; rerun with --resume to continue",
                status=status,
            )
        elif kind is FailureKind.SERVER:
            err = ApiError(
                f"the {service}{where} answered {status} while {what}, after retries",
                hint="the service may be degraded; rerun later with --resume",
                status=status,
            )
        elif kind is FailureKind.BAD_REQUEST:
            err = ApiError(
                f"the {service}{where} refused the request ({status}) while {what}: {_err_message(e)}",
                hint="check the model supports this request (images and JSON output for a judge)",
                status=status,
            )
        else:
            err = ApiError(
                f"the {service}{where} answered {status} while {what}: {_err_message(e)}",
                hint="rerun later with --resume",
                status=status,
            )
    elif isinstance(e, (openai.APITimeoutError, Deadline)):
        kind = FailureKind.TIMEOUT
        err = NetworkError(
            f"timed out waiting for the {service}{where} while {what}, after retries",
            hint="check the network/base URL, or raise the timeout",
        )
    elif isinstance(e, openai.APIConnectionError):
        kind = FailureKind.NETWORK
        err = NetworkError(
            f"cannot reach the {service}{where} while {what}, after retries", hint="check the network and the base URL"
        )
    elif isinstance(e, Malformed):
        kind = FailureKind.MALFORMED
        err = ApiError(
            f"the {service}{where} sent an unusable response while {what}, after retries: {e}",
            hint="check the base URL points at an OpenAI-compatible /v1 endpoint",
        )
    else:
        kind = FailureKind.ERROR
        err = ApiError(
            f"{service} request failed while {what}: {type(e).__name__}: {_err_message(e)}",
            hint="rerun with --resume; report a bug if it persists",
        )
    err.kind = kind  # type: ignore[attr-defined]
    return err


def _retryable(e: BaseException) -> tuple[bool, float | None]:
    import openai

    if isinstance(e, openai.APIStatusError):
        retry = e.status_code in RETRY_STATUSES or e.status_code >= 500
        return retry, retry_after_seconds(getattr(e.response, "headers", None)) if retry else None
    if isinstance(e, (openai.APIConnectionError, Malformed, Deadline, openai.APIResponseValidationError)):
        return True, None
    return False, None


async def call_with_retries(
    fn: Callable[[], Awaitable[Any]],
    *,
    max_retries: int,
    backoff_base: float,
    backoff_max: float = 30.0,
    semaphore: asyncio.Semaphore | None = None,
    on_attempt: Callable[[], None] | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> Any:
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
            delay = after if after is not None else min(backoff_max, backoff_base * (2**attempt))
            if after is None:
                delay += random.uniform(0, 0.25 * delay)
            attempt += 1
            await sleep(delay)


def field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``: the SDK leaves unexpected shapes as plain dicts/lists."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def token_count(value: Any) -> int:
    """A usage count as a non-negative int; NaN, negative, huge or non-numeric values count as 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if isinstance(value, float) and not (value == value and abs(value) < 1e12):
        return 0
    return int(value) if 0 <= value < 10**12 else 0


def text(content: Any) -> str | None:
    """Message content as text: a string, OpenAI-style content parts joined, or an object as JSON."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [field(p, "text") for p in content]
        return "\n".join(p for p in parts if isinstance(p, str))
    if isinstance(content, dict):
        try:
            return json.dumps(content)
        except (TypeError, ValueError, RecursionError):
            return str(content)[:MAX_RAW]
    return str(content)


def message_of(resp: Any) -> tuple[str | None, str | None]:
    """(content, refusal) of a chat completion's first choice; raises Malformed when ``resp`` is not one."""
    choices = field(resp, "choices")
    if choices is None or not isinstance(choices, list):
        raise Malformed("response body is not a chat completion")
    if not choices:
        return None, None
    msg = field(choices[0], "message")
    if msg is None:
        if not hasattr(choices[0], "message") and not isinstance(choices[0], dict):
            raise Malformed("response body is not a chat completion")
        return None, None
    refusal = field(msg, "refusal")
    return text(field(msg, "content")), (None if refusal is None else text(refusal))


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

            self._client = openai.AsyncOpenAI(
                api_key=self._api_key,
                base_url=self.base_url,
                max_retries=0,
                timeout=self.timeout,
                http_client=http_client(),
            )
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
