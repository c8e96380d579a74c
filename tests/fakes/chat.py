"""OpenAI chat-completions wire helpers shared by the fakes (validation, replies, SSE)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Optional, Union

from .policy import approx_tokens, message_text

ROLES = {"system", "user", "assistant", "tool", "developer", "function"}


def validate_chat_body(body: Any) -> Optional[str]:
    """Return an error message for an invalid chat-completions body, or None."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return f"invalid message at messages[{i}]: needs a valid 'role'"
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            return f"invalid content at messages[{i}]"
    n = body.get("n", 1)
    if n is None:
        n = 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 16:
        return "'n' must be an integer between 1 and 16"
    for key in ("max_tokens", "max_completion_tokens"):
        v = body.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            return f"'{key}' must be a positive integer"
    t = body.get("temperature")
    if t is not None and (not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 <= t <= 2):
        return "'temperature' must be a number between 0 and 2"
    return None


def prompt_tokens(messages: list) -> int:
    return sum(approx_tokens(message_text(m)) + 4 for m in messages if isinstance(m, dict))


Reply = Union[str, None, dict]  # str content / None (null content) / {"refusal": "..."} / {"content": ...}


def build_completion(model: str, replies: list, messages: list, body: dict) -> dict:
    """An OpenAI ``chat.completion`` object; long contents are cut at ``max_tokens`` (finish 'length')."""
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    choices = []
    completion_tokens = 0
    for i, reply in enumerate(replies):
        refusal = None
        content: Optional[str]
        if isinstance(reply, dict):
            refusal = reply.get("refusal")
            content = reply.get("content")
        else:
            content = reply
        finish = "stop"
        if content is not None and max_tokens and approx_tokens(content) > max_tokens:
            content = content[: max_tokens * 4]
            finish = "length"
        message: dict = {"role": "assistant", "content": None if refusal else content}
        if refusal:
            message["refusal"] = refusal
        completion_tokens += approx_tokens(content) if content else approx_tokens(refusal)
        choices.append({"index": i, "message": message, "finish_reason": finish, "logprobs": None})
    pt = prompt_tokens(messages)
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": pt, "completion_tokens": completion_tokens, "total_tokens": pt + completion_tokens},
    }


def sse_chunks(completion: dict) -> list:
    """The same completion as ``chat.completion.chunk`` server-sent events."""
    out = []
    base = {
        "id": completion["id"],
        "object": "chat.completion.chunk",
        "created": completion["created"],
        "model": completion["model"],
    }
    for ch in completion["choices"]:
        msg = ch["message"]
        first = {"role": "assistant", "content": ""}
        out.append({**base, "choices": [{"index": ch["index"], "delta": first, "finish_reason": None}]})
        text = msg.get("content") or ""
        for j in range(0, len(text), 200):
            out.append(
                {
                    **base,
                    "choices": [{"index": ch["index"], "delta": {"content": text[j : j + 200]}, "finish_reason": None}],
                }
            )
        if msg.get("refusal"):
            out.append(
                {
                    **base,
                    "choices": [{"index": ch["index"], "delta": {"refusal": msg["refusal"]}, "finish_reason": None}],
                }
            )
        out.append({**base, "choices": [{"index": ch["index"], "delta": {}, "finish_reason": ch["finish_reason"]}]})
    out.append({**base, "choices": [], "usage": completion["usage"]})
    return [b"data: " + json.dumps(c).encode() + b"\n\n" for c in out] + [b"data: [DONE]\n\n"]
