"""The rollout server's policy call through the ``openai`` SDK.

:class:`PolicyCaller` (``svgrft serve``): one chat completion per rollout with the base URL and key
that came with the rollout request, over one shared HTTP client that never follows a redirect (a key
must not travel to a host that was not allow-listed), with the SDK's own retries (``serve.policy_retries``)
and a total deadline. The reply comes back as a :class:`Completion`; a failure as a
:class:`PolicyCallError` (a :class:`~svgrft.core.failure.FailureKind` plus the upstream status, message
and Retry-After); anything else is a bug and propagates. :func:`build_completion_kwargs` turns a
rollout's completion params and messages into the keyword arguments of that call.

``openai`` (and aiohttp) are imported lazily.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from svgrft.clients.openai_base import (
    Malformed,
    field,
    one_line,
    status_kind,
    text,
    token_count,
    upstream_message,
)
from svgrft.clients.retry import retry_after_seconds
from svgrft.core.failure import FailureKind

if TYPE_CHECKING:
    pass

__all__ = ["Completion", "PolicyCaller", "PolicyCallError", "RequestInvalid", "build_completion_kwargs"]


# Keys of completion_params that go to chat.completions.create as they are.
NATIVE_PARAMS = frozenset(
    {
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "n",
        "parallel_tool_calls",
        "presence_penalty",
        "reasoning_effort",
        "response_format",
        "seed",
        "stop",
        "temperature",
        "tool_choice",
        "top_logprobs",
        "top_p",
        "user",
    }
)

# Never forwarded: transport, credentials, streaming, and LiteLLM-only switches.
DROPPED_PARAMS = frozenset(
    {
        "model",
        "messages",
        "tools",
        "api_key",
        "api_base",
        "base_url",
        "headers",
        "extra_headers",
        "extra_query",
        "timeout",
        "request_timeout",
        "stream",
        "stream_options",
        "functions",
        "function_call",
        "drop_params",
        "num_retries",
        "max_retries",
        "custom_llm_provider",
        "mock_response",
        "caching",
        "cache",
        "api_version",
        "organization",
        "metadata",
        "store",
        "user_api_key",
        "aws_secret_access_key",
        "vertex_credentials",
        "azure_ad_token",
    }
)

MESSAGE_FIELDS = ("role", "content", "tool_calls", "tool_call_id", "name")
MESSAGE_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


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


def build_completion_kwargs(
    completion_params: dict[str, Any], messages: list[Any], tools: list | None, *, via_gateway: bool
) -> dict[str, Any]:
    """Keyword arguments for ``chat.completions.create`` (non-streaming); raises :class:`RequestInvalid`.

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
        model = model[len("fireworks_ai/") :]
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
class Completion:
    """The first choice of one chat completion (``has_choice`` False: the reply had no choices)."""

    has_choice: bool
    text: str | None
    finish_reason: str | None
    usage: dict[str, int] | None  # prompt/completion/total tokens (clean counts); None when the reply had none


class PolicyCallError(Exception):
    """A failed policy call: ``kind``; for an HTTP error its ``status``, the endpoint's one-line ``detail`` and
    ``retry_after`` seconds; ``refused`` when the connection was closed or refused (not slow)."""

    def __init__(
        self,
        kind: FailureKind,
        detail: str = "",
        *,
        status: int | None = None,
        retry_after: float | None = None,
        refused: bool = False,
    ):
        super().__init__(detail or str(kind))
        self.kind, self.detail, self.status = kind, detail, status
        self.retry_after, self.refused = retry_after, refused


def _completion_of(resp: Any) -> Completion:
    choices = field(resp, "choices")
    if choices is not None and not isinstance(choices, list):
        raise Malformed("choices is not a list")
    choice = choices[0] if choices else None
    if choice is not None and not (isinstance(choice, dict) or hasattr(choice, "message")):
        raise Malformed("a choice without a message")
    msg = field(choice, "message") if choice is not None else None
    reason = field(choice, "finish_reason") if choice is not None else None
    usage = field(resp, "usage")
    return Completion(
        has_choice=choice is not None,
        text=text(field(msg, "content")) if msg is not None else None,
        finish_reason=reason if isinstance(reason, str) else None,
        usage=None
        if usage is None
        else {k: token_count(field(usage, k)) for k in ("prompt_tokens", "completion_tokens", "total_tokens")},
    )


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


def classify_policy_error(e: BaseException) -> PolicyCallError | None:
    """What went wrong in a policy call (``e`` from the SDK, the deadline or the reply's shape); None when
    ``e`` is none of those (a bug)."""
    import openai

    if isinstance(e, openai.APITimeoutError) and _disconnected(e):
        # httpx-aiohttp reports every aiohttp connection error (refused, reset, closed without an
        # answer) as a connect *timeout*; the cause chain tells them apart.
        return PolicyCallError(FailureKind.NETWORK, refused=True)
    if isinstance(e, (TimeoutError, openai.APITimeoutError)):
        return PolicyCallError(FailureKind.TIMEOUT)
    if isinstance(e, openai.APIConnectionError):
        return PolicyCallError(FailureKind.NETWORK)
    if isinstance(e, openai.APIStatusError):
        headers = getattr(getattr(e, "response", None), "headers", None)
        return PolicyCallError(
            status_kind(e.status_code),
            upstream_message(e, 300),
            status=e.status_code,
            retry_after=retry_after_seconds(headers, 3600.0) if e.status_code == 429 else None,
        )
    if isinstance(e, (openai.APIResponseValidationError, ValueError, Malformed)):
        return PolicyCallError(FailureKind.MALFORMED)
    if isinstance(e, openai.APIError):
        return PolicyCallError(FailureKind.ERROR, one_line(e, 300))
    return None


class PolicyCaller:
    """Policy calls of the rollout server (see the module). :meth:`open` inside the serving event loop,
    :meth:`aclose` at shutdown."""

    def __init__(self, *, retries: int, timeout: float):
        self.retries = retries
        self.timeout = timeout
        self._http: Any = None

    def open(self) -> None:
        """The shared HTTP client: openai's aiohttp transport when available (httpcore's pool costs
        O(connections x waiting requests) CPU per scheduling step, which dominates at hundreds of
        concurrent rollouts; aiohttp's does not), else plain httpx; redirects never followed."""
        import openai

        try:
            self._http = openai.DefaultAioHttpClient(follow_redirects=False)
        except Exception:  # httpx-aiohttp missing (it comes with fireworks-ai): plain httpx
            self._http = openai.DefaultAsyncHttpxClient(follow_redirects=False)

    async def complete(self, *, base_url: str, api_key: str, kwargs: dict[str, Any]) -> Completion:
        """One chat completion at ``base_url`` with ``api_key``; raises :class:`PolicyCallError`."""
        import openai

        if self._http is None:
            self.open()
        client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key, http_client=self._http, max_retries=self.retries, timeout=self.timeout
        )
        try:
            resp = await asyncio.wait_for(client.chat.completions.create(**kwargs), timeout=self.timeout)
            return _completion_of(resp)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            err = classify_policy_error(e)
            if err is None:
                raise
            raise err from None

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
