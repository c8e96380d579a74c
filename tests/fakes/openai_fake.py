"""FakeOpenAI: an OpenAI-compatible policy model *and* vision judge on a loopback HTTP server.

Routes: ``POST <any prefix>/chat/completions`` (``/v1/chat/completions``,
``/openai/v1/chat/completions``, ``/chat/completions``...) and ``GET <prefix>/models``.
Auth: ``Authorization: Bearer <key>`` with a key in ``api_keys`` (default ``{"sk-test"}``), else 401
``{"error": {"message", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}``.
Other errors use the same OpenAI envelope (400 ``invalid_request_error``, 404 unknown route).

**Policy** (a request whose messages carry no image part): each of the ``n`` choices is
``policy(model, messages, params)`` (see :mod:`tests.fakes.policy`; default: a corpus SVG picked by
a hash of the prompt; models named ``*base*`` draw one grey circle).  ``latency`` seconds are slept
per request; ``usage`` is filled (~4 characters per token); ``max_tokens`` truncates
(``finish_reason="length"``); ``stream=True`` answers with SSE chunks.

**Judge** (a user message with an ``image_url`` part holding ``data:image/png;base64,...``).
The rule, deterministic and documented for tests:

1. decode the PNG (:mod:`tests.fakes.png`); undecodable / non-PNG / non-data URL -> 400
   ``invalid_image_format``;
2. ``coverage`` = fraction of non-near-white pixels, ``colours`` = distinct coarse colours
   (:func:`tests.fakes.png.image_stats`);
3. ``N`` = number of lines matching ``^\\s*\\d+[.)]\\s`` in the text parts of the **user**
   message(s);
4. blank (``coverage < 0.005``) or ``N == 0`` -> ``k = 0``; otherwise
   ``q = min(1, colours / 8) * min(1, coverage / 0.15)`` and ``k = clamp(round(N * q), 1, N)``;
5. answer format chosen from ``response_format``:
   * ``json_schema`` whose name contains ``count`` (any case) or whose schema mentions
     ``number_of_fulfilled_requirements`` -> ``{"reasoning": "...", "number_of_fulfilled_requirements": k}``
   * anything else (checklist) -> ``{"verdicts": [{"index": i, "fulfilled": i <= k, "evidence": "..."}
     for i in 1..N]}``.

**Gullible judge** (``FakeOpenAI(gullible=True)`` or ``fake.gullible = True``): step 4 becomes ``k = N`` for
every decodable image, blank or not -- the worst-case judge that any text or token shape fools, so that only
svgrft's own gates stand between a reward hack and a score of 1.0.

``fake.judge_calls`` counts judge requests; ``fake.judge_stats`` holds one dict per call
(``width, height, coverage, colours, n_requirements, fulfilled, format, scripted``).

**Scripts**: ``fake.script_judge([...])`` / ``fake.script_policy([...])`` queue replies consumed
before the default behaviour, one per request: a ``str`` is the content verbatim (e.g. ``"not json"``),
``None`` is null content, ``{"refusal": "..."}`` sets ``message.refusal`` with null content,
``{"content": "..."}`` is the content, ``{"status": 500, "message": "..."}`` answers with that HTTP error.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, Optional, Union

from ._http import FakeServer, Request, Response, json_response
from .chat import build_completion, sse_chunks, validate_chat_body
from .png import PngError, decode_png, image_stats
from .policy import DEFAULT_CORPUS, Policy, make_policy, message_text

REQ_LINE = re.compile(r"^\s*\d+[.)]\s", re.MULTILINE)
BLANK_COVERAGE = 0.005


def judge_rule(n: int, coverage: float, colours: int) -> int:
    """Number of fulfilled requirements the fake judge reports (see module docstring)."""
    if n <= 0 or coverage < BLANK_COVERAGE:
        return 0
    q = min(1.0, colours / 8) * min(1.0, coverage / 0.15)
    return max(1, min(n, round(n * q)))


def _image_urls(message: dict) -> list:
    content = message.get("content")
    urls = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "image_url":
                iu = part.get("image_url")
                url = iu.get("url") if isinstance(iu, dict) else iu
                urls.append(url if isinstance(url, str) else "")
    return urls


def _wants_count(response_format: Any) -> bool:
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return False
    js = response_format.get("json_schema") or {}
    if not isinstance(js, dict):
        return False
    if "count" in str(js.get("name", "")).lower():
        return True
    return "number_of_fulfilled_requirements" in json.dumps(js.get("schema", {}))


class FakeOpenAI(FakeServer):
    name = "openai"

    def __init__(
        self,
        api_keys: Union[Iterable[str], str, None] = None,
        *,
        api_key: Optional[str] = None,
        policy: Union[str, Policy, None] = "corpus",
        corpus_dir: Any = DEFAULT_CORPUS,
        latency: float = 0.0,
        gullible: bool = False,
    ):
        super().__init__()
        self.gullible = gullible
        if isinstance(api_keys, str):
            api_keys = [api_keys]
        keys = set(api_keys or ())
        if api_key:
            keys.add(api_key)
        self.api_keys = keys or {"sk-test"}
        self.policy = make_policy(policy, corpus_dir)
        self.latency = latency
        self.judge_calls = 0
        self.policy_calls = 0
        self.judge_stats: list[dict] = []
        self._judge_script: deque = deque()
        self._policy_script: deque = deque()
        self._script_lock = threading.Lock()

    # ------------------------------------------------------------------ test API
    def script_judge(self, replies: list) -> None:
        with self._script_lock:
            self._judge_script.extend(replies)

    def script_policy(self, replies: list) -> None:
        with self._script_lock:
            self._policy_script.extend(replies)

    @property
    def last_judge(self) -> Optional[dict]:
        with self.lock:
            return dict(self.judge_stats[-1]) if self.judge_stats else None

    # ------------------------------------------------------------------ plumbing
    def error_response(self, status: int, message: str, kind: str = "") -> Response:
        etype = {401: "invalid_request_error", 404: "invalid_request_error", 429: "rate_limit_exceeded"}.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        )
        code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
        return json_response(status, {"error": {"message": message, "type": etype, "param": None, "code": code}})

    def _oerr(self, status: int, message: str, code: Optional[str] = None, param: Optional[str] = None) -> Response:
        r = self.error_response(status, message)
        body = json.loads(r.body)
        body["error"]["code"] = code or body["error"]["code"]
        body["error"]["param"] = param
        return json_response(status, body)

    def handle(self, req: Request) -> Response:
        path = req.path.rstrip("/")
        is_chat = path.endswith("/chat/completions")
        is_models = path.endswith("/models")
        if not (is_chat or is_models):
            return self._oerr(404, f"Unknown request URL: {req.method} {req.path}.", "unknown_url")
        token = req.bearer
        if token is None or token not in self.api_keys:
            shown = (token[:3] + "*" * 4 + token[-2:]) if token and len(token) > 6 else "<none>"
            return self._oerr(401, f"Incorrect API key provided: {shown}.", "invalid_api_key")
        if is_models:
            if req.method != "GET":
                return self._oerr(405, "Method not allowed")
            return json_response(
                200, {"object": "list", "data": [{"id": "gpt-4.1", "object": "model", "owned_by": "fake"}]}
            )
        if req.method != "POST":
            return self._oerr(405, "Method not allowed")
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            return self._oerr(400, "We could not parse the JSON body of your request.")
        problem = validate_chat_body(body)
        if problem:
            return self._oerr(400, problem)
        if self.latency:
            time.sleep(self.latency)
        messages = body["messages"]
        urls = [u for m in messages if isinstance(m, dict) for u in _image_urls(m)]
        if urls:
            return self._judge(body, messages, urls)
        return self._policy(body, messages)

    def _scripted(self, queue: deque) -> tuple:
        with self._script_lock:
            if queue:
                return True, queue.popleft()
        return False, None

    def _reply(self, body: dict, replies: list, messages: list) -> Response:
        completion = build_completion(body["model"], replies, messages, body)
        if body.get("stream"):
            resp = Response(200, b"", content_type="text/event-stream")
            resp.stream = sse_chunks(completion)
            return resp
        return json_response(200, completion)

    def _policy(self, body: dict, messages: list) -> Response:
        n = body.get("n") or 1
        replies = []
        params = {k: v for k, v in body.items() if k not in ("messages", "model")}
        for i in range(n):
            found, item = self._scripted(self._policy_script)
            if found:
                if isinstance(item, dict) and "status" in item:
                    return self._oerr(int(item["status"]), str(item.get("message", "scripted error")))
                replies.append(item)
                continue
            try:
                replies.append(self.policy(body["model"], messages, {**params, "choice_index": i}))
            except Exception as e:
                return self._oerr(500, f"policy error: {e}")
        with self.lock:
            self.policy_calls += 1
        return self._reply(body, replies, messages)

    def _judge(self, body: dict, messages: list, urls: list) -> Response:
        url = urls[-1]
        m = re.match(r"data:image/png;base64,(.*)$", url, re.DOTALL)
        if not m:
            return self._oerr(
                400, "Invalid image: only data:image/png;base64 URLs are supported by the fake.", "invalid_image_format"
            )
        try:
            png = base64.b64decode(m.group(1), validate=False)
            stats = image_stats(decode_png(png))
        except (binascii.Error, PngError, ValueError) as e:
            return self._oerr(400, f"Invalid image: {e}", "invalid_image_format")
        text = "\n".join(message_text(x) for x in messages if isinstance(x, dict) and x.get("role") == "user")
        n = len(REQ_LINE.findall(text))
        k = n if self.gullible else judge_rule(n, stats["coverage"], stats["colours"])
        count_mode = _wants_count(body.get("response_format"))
        found, item = self._scripted(self._judge_script)
        record = {
            **stats,
            "n_requirements": n,
            "fulfilled": k,
            "format": "count" if count_mode else "checklist",
            "scripted": found,
        }
        with self.lock:
            self.judge_calls += 1
            self.judge_stats.append(record)
        if found:
            if isinstance(item, dict) and "status" in item:
                return self._oerr(int(item["status"]), str(item.get("message", "scripted error")))
            return self._reply(body, [item], messages)
        desc = f"coverage {stats['coverage']:.3f}, {stats['colours']} colour(s)"
        if count_mode:
            content = json.dumps(
                {
                    "reasoning": f"Fake judge: {desc}; {k} of {n} requirements met.",
                    "number_of_fulfilled_requirements": k,
                }
            )
        else:
            content = json.dumps(
                {
                    "verdicts": [
                        {
                            "index": i,
                            "fulfilled": i <= k,
                            "evidence": f"fake judge ({desc})" if i <= k else "not visible in the image",
                        }
                        for i in range(1, n + 1)
                    ]
                }
            )
        return self._reply(body, [content], messages)
