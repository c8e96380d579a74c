"""Calling the policy model for one rollout, and what its failures mean.

``build_completion_kwargs`` turns an InitRequest's completion params and messages into the
keyword arguments of ``AsyncOpenAI.chat.completions.create``; ``classify_error`` maps an
exception of that call to (HTTP status, Eval Protocol status code, message, Retry-After).
The openai SDK is imported inside functions only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

# Keys of completion_params that go to chat.completions.create as they are.
NATIVE_PARAMS = frozenset({
    "frequency_penalty", "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "n",
    "parallel_tool_calls", "presence_penalty", "reasoning_effort", "response_format", "seed", "stop",
    "temperature", "tool_choice", "top_logprobs", "top_p", "user",
})

# Never forwarded: transport, credentials, streaming, and LiteLLM-only switches.
DROPPED_PARAMS = frozenset({
    "model", "messages", "tools", "api_key", "api_base", "base_url", "headers", "extra_headers",
    "extra_query", "timeout", "request_timeout", "stream", "stream_options", "functions", "function_call",
    "drop_params", "num_retries", "max_retries", "custom_llm_provider", "mock_response", "caching", "cache",
    "api_version", "organization", "metadata", "store", "user_api_key", "aws_secret_access_key",
    "vertex_credentials", "azure_ad_token",
})

MESSAGE_FIELDS = ("role", "content", "tool_calls", "tool_call_id", "name")
MESSAGE_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})

_TRACING_PATH = re.compile(r"/rollout_id/[^/]+/")


def is_tracing_url(model_base_url: str) -> bool:
    """A tracing-gateway URL carries the rollout metadata in its path."""
    return bool(_TRACING_PATH.search(model_base_url + "/"))


def gateway_base(model_base_url: str | None) -> str | None:
    """``https://gw/x/rollout_id/r/…/row_id/w`` → ``https://gw/x``; None when not a tracing URL."""
    if not model_base_url:
        return None
    i = (model_base_url + "/").find("/rollout_id/")
    if i < 0:
        return None
    return model_base_url[:i].rstrip("/") or None


class RequestInvalid(ValueError):
    """The rollout request cannot be sent (bad messages or params)."""


def clean_messages(messages: list[Any]) -> list[dict[str, Any]]:
    """Keep only the fields the chat API accepts; reject unknown roles and empty lists."""
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages or []):
        d = m.model_dump(exclude_none=True) if hasattr(m, "model_dump") else dict(m)
        role = d.get("role")
        if role not in MESSAGE_ROLES:
            raise RequestInvalid(f"messages[{i}].role must be one of {', '.join(sorted(MESSAGE_ROLES))}")
        out.append({k: d[k] for k in MESSAGE_FIELDS if k in d and d[k] is not None})
    if not out:
        raise RequestInvalid("messages is required and must not be empty")
    return out


def build_completion_kwargs(completion_params: dict[str, Any], messages: list[Any], tools: list | None,
                            *, via_gateway: bool) -> dict[str, Any]:
    """Keyword arguments for ``chat.completions.create`` (non-streaming).

    The model name goes to a tracing gateway unchanged (it routes LiteLLM-style names such as
    ``fireworks_ai/accounts/…``); a direct OpenAI-compatible endpoint gets it without the
    ``fireworks_ai/`` prefix. Native params pass as they are, other params go in ``extra_body``
    (``top_k``, ``min_p``, …), transport/credential params are dropped.
    """
    params = dict(completion_params or {})
    model = params.get("model")
    if not isinstance(model, str) or not model.strip():
        raise RequestInvalid("completion_params.model is required")
    model = model.strip()
    if not via_gateway and model.startswith("fireworks_ai/"):
        model = model[len("fireworks_ai/"):]
    kwargs: dict[str, Any] = {"model": model, "messages": clean_messages(messages), "stream": False}
    extra: dict[str, Any] = {}
    given_extra = params.get("extra_body")
    if given_extra is not None and not isinstance(given_extra, dict):
        raise RequestInvalid("completion_params.extra_body must be an object")
    for key, value in params.items():
        if key == "extra_body" or key in DROPPED_PARAMS or value is None:
            continue
        if not isinstance(key, str) or key.startswith(("litellm", "aws_", "vertex_", "azure_")):
            continue
        if key in NATIVE_PARAMS:
            kwargs[key] = value
        else:
            extra[key] = value
    for key, value in (given_extra or {}).items():
        if isinstance(key, str) and key not in DROPPED_PARAMS:
            extra[key] = value
    if extra:
        kwargs["extra_body"] = extra
    if tools:
        kwargs["tools"] = tools
    return kwargs


@dataclass(frozen=True)
class Failure:
    """How one failed rollout is answered over HTTP and reported to the tracing gateway."""

    http_status: int
    grpc_code: int  # eval_protocol Status.Code value
    kind: str  # short machine name
    message: str  # one line, secrets removed
    retry_after: str | None = None
    hint: str | None = None


# gRPC / Eval Protocol status codes used here
INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, PERMISSION_DENIED = 3, 4, 5, 7
RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE, UNAUTHENTICATED = 8, 13, 14, 16


def _one_line(text: Any, limit: int = 300) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _upstream_message(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return _one_line(inner["message"])
        if isinstance(inner, str):
            return _one_line(inner)
    return _one_line(getattr(e, "message", None) or e)


def classify_error(e: BaseException) -> Failure:
    """Map an exception of the policy call to the answer the server gives."""
    import openai

    if isinstance(e, openai.APITimeoutError) and _disconnected(e):
        # httpx-aiohttp reports every aiohttp connection error (refused, reset, closed without an
        # answer) as a connect *timeout*; the cause chain tells them apart.
        return Failure(502, UNAVAILABLE, "upstream_unreachable", "the policy endpoint closed or refused the "
                                                                  "connection", hint="check model_base_url and the "
                                                                                     "network from the server")
    if isinstance(e, TimeoutError) or isinstance(e, openai.APITimeoutError):
        return Failure(408, DEADLINE_EXCEEDED, "timeout", "the policy model did not answer in time",
                       hint="raise --rollout-timeout, or lower max_tokens")
    if isinstance(e, openai.APIConnectionError):
        return Failure(502, UNAVAILABLE, "upstream_unreachable", "cannot reach the policy endpoint",
                       hint="check model_base_url and the network from the server")
    if isinstance(e, openai.APIStatusError):
        status = e.status_code
        msg = _upstream_message(e)
        if status == 401:
            return Failure(403, PERMISSION_DENIED, "auth", f"the policy endpoint rejected the API key: {msg}",
                           hint="send a valid Fireworks API key as api_key in the InitRequest")
        if status == 403:
            return Failure(403, PERMISSION_DENIED, "forbidden", f"the API key may not use this model: {msg}",
                           hint="check the key's account and the model's visibility")
        if status == 404:
            return Failure(404, NOT_FOUND, "model_not_found", f"model or endpoint not found: {msg}",
                           hint="check completion_params.model (e.g. accounts/fireworks/models/qwen3-0p6b)")
        if status == 429:
            ra = None
            try:  # whole seconds in [1, 3600]: "inf"/"nan"/"1e308" must not break (or bloat) our own header
                raw = e.response.headers.get("retry-after")
                if raw is not None:
                    secs = float(raw)
                    if secs == secs:
                        ra = str(int(min(3600.0, max(1.0, math.ceil(min(secs, 3600.0))))))
            except (AttributeError, ValueError, TypeError, OverflowError):
                ra = None
            return Failure(429, RESOURCE_EXHAUSTED, "rate_limited", f"the policy endpoint is rate limiting: {msg}",
                           retry_after=ra or "1", hint="retry later or lower the rollout concurrency")
        if status in (400, 413, 422):
            return Failure(400, INVALID_ARGUMENT, "bad_request", f"the policy endpoint refused the request: {msg}",
                           hint="check completion_params and messages")
        if status in (408, 504):
            return Failure(408, DEADLINE_EXCEEDED, "timeout", f"the policy endpoint timed out ({status}): {msg}")
        return Failure(502, UNAVAILABLE, "upstream_error", f"the policy endpoint answered {status}: {msg}",
                       hint="the model service may be degraded; the evaluator retries 5xx answers")
    if isinstance(e, openai.APIResponseValidationError) or isinstance(e, ValueError):
        return Failure(502, UNAVAILABLE, "upstream_malformed", "the policy endpoint sent an unreadable reply")
    if isinstance(e, openai.APIError):
        return Failure(502, UNAVAILABLE, "upstream_error", f"policy call failed: {_one_line(e)}")
    return Failure(500, INTERNAL, "internal", f"internal error: {type(e).__name__}")


def _disconnected(e: BaseException) -> bool:
    """True when the cause chain holds a connection error that is not a timeout."""
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiohttp comes with eval-protocol and fireworks-ai
        return False
    seen = 0
    cur: BaseException | None = e
    while cur is not None and seen < 10:
        if isinstance(cur, (aiohttp.ServerTimeoutError, TimeoutError)):  # asyncio.TimeoutError is TimeoutError
            return False
        if isinstance(cur, aiohttp.ClientConnectionError):
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False


def scrub(text: str, *secrets: str | None) -> str:
    """Replace every given secret value (and bearer tokens) in ``text`` by its mask."""
    from svgrft.secrets import mask

    for value in secrets:
        if value and len(value) >= 4 and value in text:
            text = text.replace(value, mask(value))
    return re.sub(r"(?i)(bearer\s+)([A-Za-z0-9._\-]{8,})", lambda m: m.group(1) + mask(m.group(2)), text)
