"""Eval Protocol's wire format, as the rollout server speaks it, without importing eval_protocol.

Importing ``eval_protocol`` pulls in litellm (~7 s at start, issue #13). These pydantic models and the
status-log entry are copies of what eval-protocol 0.3.33 defines and sends, field for field:

* :class:`InitRequest` (``eval_protocol.types.remote_rollout_processor.InitRequest``) with its
  :class:`RolloutMetadata` and :class:`Message` (``eval_protocol.models.Message``, whose tool calls are
  the openai SDK's ``ChatCompletionMessageFunctionToolCall``). Model and field names are the same, so a
  validation error names the same locations.
* :func:`status_entry`: the body ``FireworksTracingHttpHandler`` POSTs to ``<gateway>/logs`` for a
  ``logging.LogRecord`` tagged by ``RolloutIdFilter`` that carries an ``eval_protocol.models.Status``
  (``Status.rollout_finished()`` or the ``rollout_*_error(message)`` of the code) -- what
  ``RemoteRolloutProcessor`` reads back through ``/v1/status`` and ``/logs``.

``tests/test_serve_wire.py`` checks both directions against the installed eval-protocol.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import IntEnum
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["InitRequest", "RolloutMetadata", "Message", "StatusCode", "status_entry", "GATEWAY_LOGGER", "PROGRAM"]

GATEWAY_LOGGER = "svgrft.server.rollout"  # the entry's extras.logger_name (the logger eval-protocol's handler saw)
PROGRAM = "eval_protocol"  # the handler's default program: RemoteRolloutProcessor searches /logs for it


class StatusCode(IntEnum):
    """``eval_protocol.models.Status.Code`` values the server reports (gRPC codes + EP's own)."""

    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16
    FINISHED = 100


# --- InitRequest ---------------------------------------------------------------------------------------


class ChatCompletionContentPartTextParam(BaseModel):
    text: str = Field(..., description="The text content.")
    type: Literal["text"] = Field("text", description="The type of the content part.")


class ChatCompletionContentPartImageParam(BaseModel):
    type: Literal["image_url"] = Field("image_url", description="The type of the content part.")
    image_url: dict[str, Any] = Field(..., description="Image descriptor.")


ChatCompletionContentPartParam = Union[ChatCompletionContentPartTextParam, ChatCompletionContentPartImageParam]


class Function(BaseModel):
    """openai's tool-call function (extra fields kept, as the SDK's models do)."""

    model_config = ConfigDict(extra="allow")
    arguments: str
    name: str


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="allow")
    arguments: str
    name: str


class ChatCompletionMessageFunctionToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    function: Function
    type: Literal["function"]


class Message(BaseModel):
    role: str
    content: Optional[Union[str, list[ChatCompletionContentPartParam]]] = Field(default="")
    reasoning_content: Optional[str] = None
    name: Optional[str] = None
    tool_call_id: Optional[str] = None
    tool_calls: Optional[list[ChatCompletionMessageFunctionToolCall]] = None
    function_call: Optional[FunctionCall] = None
    control_plane_step: Optional[dict[str, Any]] = None
    weight: Optional[int] = None
    logprobs: Optional[Any] = None


class RolloutMetadata(BaseModel):
    invocation_id: str
    experiment_id: str
    rollout_id: str
    run_id: str
    row_id: str


class InitRequest(BaseModel):
    """The body of ``POST /init``."""

    completion_params: dict[str, Any] = Field(default_factory=dict)
    messages: Optional[list[Message]] = None
    tools: Optional[list[dict[str, Any]]] = None
    model_base_url: Optional[str] = None
    metadata: RolloutMetadata
    api_key: Optional[str] = None


# --- the status log entry ------------------------------------------------------------------------------

_ERROR_CODES = frozenset(int(c) for c in StatusCode if c is not StatusCode.FINISHED)


def status_entry(
    *,
    rollout_id: str,
    code: int,
    message: str,
    extras: dict | None = None,
    experiment_id: str | None = None,
    run_id: str | None = None,
    created: float | None = None,
) -> dict[str, Any]:
    """The ``/logs`` body that ends rollout ``rollout_id`` with status ``code`` (100 = finished).

    As eval-protocol builds it: the status message is "Rollout finished" for 100, else ``message``; a code
    eval-protocol has no maker for is reported as INTERNAL (13); the entry's own message is ``message``.
    """
    import time

    if code == StatusCode.FINISHED:
        status = {"code": int(StatusCode.FINISHED), "message": "Rollout finished", "details": []}
    else:
        status = {
            "code": int(code) if int(code) in _ERROR_CODES else int(StatusCode.INTERNAL),
            "message": message,
            "details": [],
        }
    tags = [f"rollout_id:{rollout_id}"]
    if experiment_id:
        tags.append(f"experiment_id:{experiment_id}")
    if run_id:
        tags.append(f"run_id:{run_id}")
    stamp = datetime.fromtimestamp(time.time() if created is None else created, tz=timezone.utc)
    body_extras = dict(extras or {})
    body_extras.update(
        logger_name=GATEWAY_LOGGER,
        level="INFO" if code == StatusCode.FINISHED else "ERROR",
        timestamp=stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )
    return {"program": PROGRAM, "status": status, "message": str(message), "tags": tags, "extras": body_extras}
