"""Reading and validating one ``POST /init`` before any outbound call.

:func:`read_body` (size cap, body deadline) → :func:`parse_json` (strict JSON, bounded nesting) →
:meth:`RolloutValidator.prepare` (the InitRequest model, ids, the model-host allow-list, the key) → a
:class:`Rollout`, or a :class:`Rejection` that says how to answer. Input values are never echoed (they
may hold a key).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

from svgrft.core.plural import plural
from svgrft.server.guard import HostAllowList
from svgrft.server.wire import StatusCode

__all__ = [
    "Rejection",
    "Rollout",
    "RolloutValidator",
    "read_body",
    "parse_json",
    "rollout_id_of",
    "gateway_base",
    "is_tracing_url",
    "MAX_JSON_DEPTH",
]

MAX_ID_LEN = 256
MAX_KEY_LEN = 1024
MAX_JSON_DEPTH = 64  # an InitRequest nests about 6 deep (tools' JSON schemas a little more)
_HINT_INIT = "send an eval_protocol InitRequest as JSON"

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


class Rejection(Exception):
    """A request answered before any policy call."""

    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        hint: str | None = None,
        retry_after: str | None = None,
        code: int = StatusCode.INVALID_ARGUMENT,
    ):
        super().__init__(message)
        self.status, self.kind, self.message, self.hint = status, kind, message, hint
        self.retry_after, self.code = retry_after, code
        self.rollout: Rollout | None = None  # set when the refusal can be reported to the gateway


@dataclass
class Rollout:
    rollout_id: str
    experiment_id: str | None
    run_id: str | None
    model_base_url: str
    gateway: str
    api_key: str
    key_source: str  # "request" | "server"
    kwargs: dict[str, Any] = field(default_factory=dict)
    client: str = ""


async def read_body(request: Any, *, max_body: int, read_timeout: float) -> bytes:
    """The request body, at most ``max_body`` bytes, complete within ``read_timeout`` seconds (0 = no limit)."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            n = int(length)
        except ValueError:
            raise Rejection(400, "bad_request", "invalid Content-Length") from None
        if n > max_body:
            raise Rejection(
                413,
                "too_large",
                f"request body is {plural(n, 'byte')}; the limit is {max_body}",
                hint="send only the rollout messages; raise --max-body if needed",
            )
    chunks: list[bytes] = []

    async def collect() -> None:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_body:
                raise Rejection(
                    413,
                    "too_large",
                    f"request body exceeds {plural(max_body, 'byte')}",
                    hint="send only the rollout messages; raise --max-body if needed",
                )
            chunks.append(chunk)

    try:  # a body trickled byte by byte must not hold a connection (and its slot) for long
        await asyncio.wait_for(collect(), timeout=read_timeout if read_timeout > 0 else None)
    except asyncio.TimeoutError:
        raise Rejection(
            408,
            "body_timeout",
            f"the request body did not arrive within {read_timeout:g}s",
            hint="send the whole body at once; the operator can raise --read-timeout",
            code=StatusCode.DEADLINE_EXCEEDED,
        ) from None
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _too_deep(data: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when JSON ``data`` nests deeper than ``limit`` (iterative: no recursion on hostile input)."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def parse_json(body: bytes) -> Any:
    """The body as JSON; NaN/Infinity are not JSON (and break the policy request later), deep nesting → 400."""
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Rejection(400, "bad_request", "the body is not valid JSON", hint=_HINT_INIT) from None
    if _too_deep(data):
        raise Rejection(400, "bad_request", f"the body nests deeper than {MAX_JSON_DEPTH} levels", hint=_HINT_INIT)
    return data


def _plain_id(value: Any) -> bool:
    """Printable ASCII without spaces or slashes: ids end up in log lines, tags and trace paths, where
    U+2028, NEL or other Unicode line breaks would forge lines."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_LEN
        and all(0x21 <= ord(c) <= 0x7E and c not in "/\\" for c in value)
    )


def rollout_id_of(data: Any) -> str | None:
    """The rollout id of a (possibly invalid) request, for error bodies; None if absent/unusable."""
    if isinstance(data, dict) and isinstance(data.get("metadata"), dict):
        rid = data["metadata"].get("rollout_id")
        if _plain_id(rid):
            return rid
    return None


def _check_id(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Rejection(400, "bad_request", f"metadata.{name} must be a non-empty string")
    if not _plain_id(value):
        raise Rejection(
            400,
            "bad_request",
            f"metadata.{name} must be at most {MAX_ID_LEN} printable ASCII characters without spaces or slashes",
        )
    return value


def _check_api_key(value: str) -> str:
    """A key goes into an Authorization header: CR/LF, other control characters, non-ASCII or a huge
    value would fail there as a 5xx (retried) or split the header. Never echoes the value."""
    if len(value) > MAX_KEY_LEN or not all(0x21 <= ord(c) <= 0x7E for c in value):
        raise Rejection(
            400,
            "bad_api_key",
            f"api_key must be at most {MAX_KEY_LEN} printable ASCII characters without spaces",
            hint="send the Fireworks API key as it is",
            code=StatusCode.UNAUTHENTICATED,
        )
    return value


def _validation_message(e: Any) -> str:
    """Pydantic errors as 'field: problem' without echoing input values (they may hold a key)."""
    try:
        errors = e.errors(include_input=False, include_url=False)
    except TypeError:  # pragma: no cover - older pydantic
        errors = e.errors()
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid InitRequest: " + "; ".join(parts) + more


class RolloutValidator:
    """InitRequest dict → :class:`Rollout` (or :class:`Rejection`): which host may be called, with which key.

    ``model_url`` / ``gateway`` are used when the request names none (or no tracing URL); the server's own
    ``server_key`` only with ``allow_server_key``."""

    def __init__(
        self, allow: HostAllowList, *, model_url: str, gateway: str, server_key: str | None, allow_server_key: bool
    ):
        self.allow, self.model_url, self.gateway = allow, model_url, gateway
        self.server_key, self.allow_server_key = server_key, allow_server_key

    def prepare(self, data: Any) -> Rollout:
        from pydantic import ValidationError

        from svgrft.clients.policy_call import RequestInvalid, build_completion_kwargs
        from svgrft.server.wire import InitRequest

        if not isinstance(data, dict):
            raise Rejection(400, "bad_request", "the body must be a JSON object (an InitRequest)")
        try:
            req = InitRequest.model_validate(data)
        except ValidationError as e:
            raise Rejection(
                400, "bad_request", _validation_message(e), hint="send an eval_protocol InitRequest"
            ) from None
        except (TypeError, ValueError) as e:
            raise Rejection(400, "bad_request", f"invalid InitRequest: {type(e).__name__}") from None
        meta = req.metadata
        rid = _check_id("rollout_id", meta.rollout_id)
        for name in ("invocation_id", "experiment_id", "run_id", "row_id"):
            _check_id(name, getattr(meta, name))
        model_base_url = (req.model_base_url or "").strip() or self.model_url
        problem = self.allow.check(model_base_url)
        if problem:
            raise Rejection(
                400,
                "model_host_not_allowed",
                problem,
                hint="the server calls only allow-listed hosts; the operator can add one with --allow-model-host HOST",
            )
        via_gateway = is_tracing_url(model_base_url)
        gateway = gateway_base(model_base_url) or self.gateway
        if req.api_key and req.api_key.strip():
            api_key, source = _check_api_key(req.api_key.strip()), "request"
        elif self.allow_server_key and self.server_key:
            api_key, source = self.server_key, "server"
        else:
            hint = (
                "send api_key in the InitRequest (eval-protocol sends EP_REMOTE_API_KEY or FIREWORKS_API_KEY)"
                if self.allow_server_key
                else "send api_key in the InitRequest; the server uses its own FIREWORKS_API_KEY only when "
                "started with --allow-server-key"
            )
            raise Rejection(
                401, "no_api_key", "no API key: the request has no api_key", hint=hint, code=StatusCode.UNAUTHENTICATED
            )
        r = Rollout(rid, meta.experiment_id, meta.run_id, model_base_url, gateway, api_key, source)
        try:
            r.kwargs = build_completion_kwargs(
                req.completion_params, req.messages or [], req.tools, via_gateway=via_gateway
            )
        except RequestInvalid as e:
            rej = Rejection(400, "bad_request", str(e), hint="check the InitRequest's messages and completion_params")
            rej.rollout = r  # the host is allowed and there is a key: the gateway hears about it too
            raise rej from None
        return r
