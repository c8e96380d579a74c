"""How the rollout server answers a rollout that failed: the HTTP status, the Eval Protocol status code,
a short kind, a one-line message and hint (:class:`Failure`), and :func:`scrub`, which keeps secrets out
of every message.

:func:`failure_for` maps a classified policy-call failure (:class:`svgrft.clients.policy_call.PolicyCallError`)
to its answer. Eval Protocol retries a 5xx ``/init`` answer and treats 4xx as final for the row; through
the gateway status it retries codes 4/5/7/8/14/16 and treats 3/13 as final.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from svgrft.core.failure import FailureKind
from svgrft.server.guard import retry_after_header
from svgrft.server.wire import StatusCode

if TYPE_CHECKING:
    from svgrft.clients.policy_call import PolicyCallError

__all__ = [
    "Failure",
    "failure_for",
    "internal",
    "error_body",
    "scrub",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "INTERNAL",
    "UNAVAILABLE",
    "UNAUTHENTICATED",
]

INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND = (
    StatusCode.INVALID_ARGUMENT,
    StatusCode.DEADLINE_EXCEEDED,
    StatusCode.NOT_FOUND,
)
PERMISSION_DENIED, RESOURCE_EXHAUSTED = StatusCode.PERMISSION_DENIED, StatusCode.RESOURCE_EXHAUSTED
INTERNAL, UNAVAILABLE, UNAUTHENTICATED = StatusCode.INTERNAL, StatusCode.UNAVAILABLE, StatusCode.UNAUTHENTICATED

_NETWORK_HINT = "check model_base_url and the network from the server"


@dataclass(frozen=True)
class Failure:
    """How one failed rollout is answered over HTTP and reported to the tracing gateway."""

    http_status: int
    grpc_code: int  # eval_protocol Status.Code value
    kind: str  # short machine name
    message: str  # one line, secrets removed
    retry_after: str | None = None
    hint: str | None = None


INTERNAL_ERROR = "internal"


def internal(e: BaseException) -> Failure:
    """A bug (an exception nothing classified): 500, never the exception's text."""
    return Failure(500, INTERNAL, INTERNAL_ERROR, f"internal error: {type(e).__name__}")


def failure_for(err: PolicyCallError) -> Failure:
    """The answer to a failed policy call."""
    kind, status, msg = err.kind, err.status, err.detail
    if kind is FailureKind.NETWORK:
        text = (
            "the policy endpoint closed or refused the connection"
            if err.refused
            else "cannot reach the policy endpoint"
        )
        return Failure(502, UNAVAILABLE, "upstream_unreachable", text, hint=_NETWORK_HINT)
    if kind is FailureKind.TIMEOUT:
        return Failure(
            408,
            DEADLINE_EXCEEDED,
            "timeout",
            "the policy model did not answer in time",
            hint="raise --rollout-timeout, or lower max_tokens",
        )
    if status is not None:
        if status == 401:
            return Failure(
                403,
                PERMISSION_DENIED,
                "auth",
                f"the policy endpoint rejected the API key: {msg}",
                hint="send a valid Fireworks API key as api_key in the InitRequest",
            )
        if status == 403:
            return Failure(
                403,
                PERMISSION_DENIED,
                "forbidden",
                f"the API key may not use this model: {msg}",
                hint="check the key's account and the model's visibility",
            )
        if status == 404:
            return Failure(
                404,
                NOT_FOUND,
                "model_not_found",
                f"model or endpoint not found: {msg}",
                hint="check completion_params.model (e.g. accounts/fireworks/models/qwen3-0p6b)",
            )
        if status == 429:
            ra = retry_after_header(err.retry_after) if err.retry_after is not None else "1"
            return Failure(
                429,
                RESOURCE_EXHAUSTED,
                "rate_limited",
                f"the policy endpoint is rate limiting: {msg}",
                retry_after=ra,
                hint="retry later or lower the rollout concurrency",
            )
        if status in (400, 413, 422):
            return Failure(
                400,
                INVALID_ARGUMENT,
                "bad_request",
                f"the policy endpoint refused the request: {msg}",
                hint="check completion_params and messages",
            )
        if status in (408, 504):
            return Failure(408, DEADLINE_EXCEEDED, "timeout", f"the policy endpoint timed out ({status}): {msg}")
        return Failure(
            502,
            UNAVAILABLE,
            "upstream_error",
            f"the policy endpoint answered {status}: {msg}",
            hint="the model service may be degraded; the evaluator retries 5xx answers",
        )
    if kind is FailureKind.MALFORMED:
        return Failure(502, UNAVAILABLE, "upstream_malformed", "the policy endpoint sent an unreadable reply")
    return Failure(502, UNAVAILABLE, "upstream_error", f"policy call failed: {msg}")


def error_body(status: int, kind: str, message: str, rollout_id: str | None, hint: str | None) -> dict:
    """The JSON of an error answer (``message`` already scrubbed)."""
    body: dict = {"error": message, "kind": kind, "status": status, "rollout_id": rollout_id}
    if hint:
        body["hint"] = hint
    return body


def scrub(text: str, *secrets: str | None) -> str:
    """Replace every given secret value (and bearer tokens) in ``text`` by its mask."""
    from svgrft.redact import mask

    for value in secrets:
        if value and len(value) >= 4 and value in text:
            text = text.replace(value, mask(value))
    return re.sub(r"(?i)(bearer\s+)([A-Za-z0-9._\-]{8,})", lambda m: m.group(1) + mask(m.group(2)), text)
