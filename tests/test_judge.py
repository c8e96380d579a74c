"""The vision judge: prompts, strict reply parsing, and the client against the fake OpenAI judge
(both modes, malformed / out-of-range / refusing replies, 429 and 5xx with retry, timeouts)."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from svgrft.clients.judge import JudgeClient, call_with_retries, judge_from_settings, retry_after_seconds
from svgrft.config import load_settings
from svgrft.core.judge import (
    COUNT_SCHEMA,
    JudgeReplyError,
    build_messages,
    checklist_prompt,
    count_prompt,
    parse_reply,
    request_summary,
    response_format,
)
from tests.conftest import OPENAI_KEY
from tests.fakes import judge_rule, stripes_png

REQS = ["A red barn.", "A yellow sun.", "Three trees.", "A blue sky."]
COLOURFUL = stripes_png(64, 48, [(200, 30, 30), (30, 160, 40), (30, 60, 200), (240, 200, 20)])


def run(coro):
    return asyncio.run(coro)


def client(oai, **kw) -> JudgeClient:
    opts = dict(
        model="gpt-4.1-2025-04-14",
        api_key=OPENAI_KEY,
        base_url=oai.url + "/v1",
        backoff_base=0.01,
        max_retries=3,
        timeout=5.0,
    )
    opts.update(kw)
    return JudgeClient(**opts)


def judge_bodies(oai):
    return [r.json for r in oai.calls("POST") if r.path.endswith("/chat/completions")]


# -- prompts ---------------------------------------------------------------------------------


def test_count_prompt_is_the_original_svgbench_prompt():
    expected = (
        "Examine the generated image. How many of the following 2 requirements were fulfilled?\n\n"
        "Be strict about the requirements and respond ONLY with a JSON object in this exact format:\n"
        '{"reasoning": <reasoning_text>,\n"number_of_fulfilled_requirements": <count>}\n\n'
        "Where <count> is a number between 0 and 2.\n\n"
        "Requirements:\n1. A red barn.\n2. A yellow sun."
    )
    assert count_prompt(REQS[:2]) == expected
    fmt = response_format("count")
    assert fmt["json_schema"]["name"] == "SVGBenchResponse"
    assert set(COUNT_SCHEMA["required"]) == {"reasoning", "number_of_fulfilled_requirements"}


def test_checklist_prompt_lists_requirements_once_without_the_answer_boilerplate():
    formatted = (
        "Write `svg` code to draw an image of a barn. Wrap the SVG code in an SVG code block following "
        "the example below.\n\nExample:\n```svg\n<svg/>\n```\n\nRequirements:\n1. A red barn.\n2. A sun."
    )
    assert request_summary(formatted) == "Write `svg` code to draw an image of a barn."
    text = checklist_prompt(REQS, formatted)
    assert text.count("A red barn.") == 1
    assert "```" not in text
    for i, r in enumerate(REQS, 1):
        assert f"{i}. {r}" in text
    msgs = build_messages("checklist", REQS, b"\x89PNGxx", formatted)
    parts = msgs[0]["content"]
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")


# -- strict parsing --------------------------------------------------------------------------


def verdicts(n, k, base=1):
    return json.dumps({"verdicts": [{"index": i + base, "fulfilled": i < k, "evidence": f"e{i}"} for i in range(n)]})


def test_parse_checklist_orders_by_index_and_counts_in_code():
    shuffled = json.dumps(
        {
            "verdicts": [
                {"index": 3, "fulfilled": True, "evidence": "three trees"},
                {"index": 1, "fulfilled": False, "evidence": "no barn"},
                {"index": 4, "fulfilled": True, "evidence": "sky"},
                {"index": 2, "fulfilled": True, "evidence": "sun"},
            ]
        }
    )
    rep = parse_reply("checklist", shuffled, REQS)
    assert [v.index for v in rep.verdicts] == [1, 2, 3, 4]
    assert [v.fulfilled for v in rep.verdicts] == [False, True, True, True]
    assert rep.verdicts[0].requirement == REQS[0] and rep.verdicts[0].evidence == "no barn"
    assert (rep.fulfilled, rep.total, rep.score) == (3, 4, 0.75)
    # a consistent 0-based numbering is unambiguous; a ```json fence around the object is tolerated
    rep0 = parse_reply("checklist", "```json\n" + verdicts(4, 1, base=0) + "\n```", REQS)
    assert [v.fulfilled for v in rep0.verdicts] == [True, False, False, False]


@pytest.mark.parametrize(
    "reply, fragment",
    [
        ("", "empty"),
        (None, "empty"),
        ("The image shows a barn.", "not JSON"),
        ("[1, 2]", "expected an object"),
        ('{"verdicts": "yes"}', "'verdicts' list"),
        (verdicts(3, 3), "3 verdicts for 4"),
        (verdicts(5, 3), "5 verdicts for 4"),
        (json.dumps({"verdicts": [{"index": 1, "fulfilled": True, "evidence": ""}] * 4}), "not 1..4"),
        (
            json.dumps({"verdicts": [{"index": i, "fulfilled": "yes", "evidence": ""} for i in range(1, 5)]}),
            "expected true/false",
        ),
        (json.dumps({"verdicts": [{"index": i, "evidence": ""} for i in range(1, 5)]}), "lacks"),
        (
            json.dumps({"verdicts": [{"index": i + 10, "fulfilled": True, "evidence": ""} for i in range(4)]}),
            "not 1..4",
        ),
        ("[" * 100_000, "not JSON"),
        ("x" * 300_000, "too long"),
    ],
)
def test_parse_checklist_rejects_bad_replies(reply, fragment):
    with pytest.raises(JudgeReplyError) as ei:
        parse_reply("checklist", reply, REQS)
    assert fragment in ei.value.reason


@pytest.mark.parametrize(
    "value, ok",
    [
        (0, 0),
        (4, 4),
        (2.0, 2),
        ("3", 3),
        (5, None),
        (-1, None),
        (True, None),
        (2.5, None),
        ("many", None),
        (None, None),
    ],
)
def test_parse_count_range(value, ok):
    text = json.dumps({"reasoning": "r", "number_of_fulfilled_requirements": value})
    if ok is None:
        with pytest.raises(JudgeReplyError):
            parse_reply("count", text, REQS)
    else:
        rep = parse_reply("count", text, REQS)
        assert rep.fulfilled == ok and rep.total == 4 and rep.reasoning == "r"


def test_retry_after_parsing():
    assert retry_after_seconds({"retry-after-ms": "50", "retry-after": "1"}) == pytest.approx(0.05)
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({"retry-after": "100000"}) == 120.0
    assert retry_after_seconds(None) is None


# -- the client against the fake judge --------------------------------------------------------


def test_checklist_mode_against_fake_judge(oai):
    j = client(oai)
    out = run(j.judge(COLOURFUL, REQS, "Draw a farm."))
    assert out.ok, out.reason
    stats = oai.last_judge
    assert stats["format"] == "checklist" and stats["n_requirements"] == 4
    expected = judge_rule(4, stats["coverage"], stats["colours"])
    assert out.reply.fulfilled == expected == stats["fulfilled"]
    assert [v.fulfilled for v in out.reply.verdicts] == [i < expected for i in range(4)]
    assert out.calls == 1 and out.usage["prompt_tokens"] > 0
    body = judge_bodies(oai)[-1]
    assert body["temperature"] == 0
    assert body["model"] == "gpt-4.1-2025-04-14"
    assert body["response_format"]["json_schema"]["name"] == "RequirementVerdicts"
    url = body["messages"][0]["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")


def test_count_mode_against_fake_judge(oai):
    j = client(oai, mode="count")
    out = run(j.judge(COLOURFUL, REQS))
    assert out.ok, out.reason
    stats = oai.last_judge
    assert stats["format"] == "count"
    assert out.reply.fulfilled == stats["fulfilled"] and out.reply.total == 4
    assert out.reply.verdicts == [] and "Fake judge" in out.reply.reasoning
    body = judge_bodies(oai)[-1]
    assert "How many of the following 4 requirements" in body["messages"][0]["content"][0]["text"]


@pytest.mark.parametrize("bad", ["this is not json", {"refusal": "I can't help with that."}, None, verdicts(2, 1)])
def test_one_repair_retry_then_valid(oai, bad):
    oai.script_judge([bad])
    j = client(oai)
    out = run(j.judge(COLOURFUL, REQS))
    assert out.ok, out.reason
    assert out.calls == 2 and oai.judge_calls == 2
    repair = judge_bodies(oai)[-1]["messages"]
    assert repair[-2]["role"] == "assistant"
    assert "could not be used" in repair[-1]["content"]


@pytest.mark.parametrize(
    "mode, bad, fragment",
    [
        ("checklist", "not json at all", "not JSON"),
        ("count", json.dumps({"reasoning": "r", "number_of_fulfilled_requirements": 9}), "out of range 0..4"),
        ("count", {"refusal": "I cannot evaluate images."}, "judge refused"),
    ],
)
def test_invalid_after_repair_is_marked_invalid_with_reason(oai, mode, bad, fragment):
    oai.script_judge([bad, bad])
    out = run(client(oai, mode=mode).judge(COLOURFUL, REQS))
    assert not out.ok and out.reply is None
    assert out.error_kind == "invalid_reply"
    assert fragment in out.reason and "after a repair retry" in out.reason
    assert out.calls == 2 and oai.judge_calls == 2  # exactly one repair, no more


@pytest.mark.parametrize("kind", ["429", "500", "503", "drop", "malformed"])
def test_transient_failures_are_retried(oai, kind):
    oai.faults.add("POST", r"chat/completions", kind=kind, times=2, retry_after=0.05)
    out = run(client(oai).judge(COLOURFUL, REQS))
    assert out.ok, out.reason
    assert out.calls == 3
    assert [f[2] for f in oai.faults.log] == [kind, kind]
    assert oai.judge_calls == 1  # the fake only judged the request that got through


def test_429_honours_retry_after_instead_of_backoff(oai):
    """A huge backoff base would stall the test for minutes: the 0.05 s Retry-After is what is used."""
    oai.faults.add("POST", r"chat/completions", kind="429", times=1, retry_after=0.05)
    delays = []

    async def go():
        j = client(oai, backoff_base=600.0)
        import svgrft.clients.judge as mod

        real = mod.call_with_retries

        async def spy(fn, **kw):
            async def sleep(d):
                delays.append(d)
                await asyncio.sleep(d)

            return await real(fn, **{**kw, "sleep": sleep})

        mod.call_with_retries = spy
        try:
            return await j.judge(COLOURFUL, REQS)
        finally:
            mod.call_with_retries = real

    out = run(go())
    assert out.ok
    assert delays == [pytest.approx(0.05)]


def test_timeouts_are_retried(oai):
    oai.faults.add("POST", r"chat/completions", kind="slow", delay=1.5, times=1)
    out = run(client(oai, timeout=0.3).judge(COLOURFUL, REQS))
    assert out.ok, out.reason
    assert out.calls == 2


def test_retries_exhausted_gives_a_typed_failure(oai):
    oai.faults.add("POST", r"chat/completions", kind="503", times=None)
    out = run(client(oai, max_retries=2).judge(COLOURFUL, REQS))
    assert not out.ok and out.error_kind == "server" and not out.fatal
    assert "503" in out.reason and "after retries" in out.reason
    assert out.calls == 3


def test_bad_key_is_fatal_and_never_shown(oai):
    out = run(client(oai, api_key="sk-wrong-key-0123456789").judge(COLOURFUL, REQS))
    assert not out.ok and out.error_kind == "auth" and out.fatal
    assert out.calls == 1  # 401 is not retried
    assert "sk-wrong-key-0123456789" not in out.reason and "sk-wrong" not in (out.raw or "")
    assert "rejected the API key" in out.reason


def test_settings_wiring(oai):
    s = load_settings()
    j = judge_from_settings(s)
    assert j.base_url == oai.url + "/v1" and j.model == "gpt-4.1-2025-04-14" and j.mode == "checklist"
    assert OPENAI_KEY not in repr(j)
    out = run(j.judge(COLOURFUL, REQS))
    assert out.ok


def test_missing_key_is_a_config_error(monkeypatch):
    from svgrft.errors import ConfigError

    with pytest.raises(ConfigError) as ei:
        judge_from_settings(load_settings())
    assert "OPENAI_API_KEY" in ei.value.message and ei.value.hint


# -- concurrency limit (a tiny real server that counts requests in flight) ------------------------


class _Counting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    inflight = 0
    peak = 0
    total = 0

    def log_message(self, *a):
        pass

    def do_POST(self):
        cls = type(self)
        self.rfile.read(int(self.headers.get("content-length", 0)))
        with cls.lock:
            cls.inflight += 1
            cls.total += 1
            cls.peak = max(cls.peak, cls.inflight)
        threading.Event().wait(0.1)
        with cls.lock:
            cls.inflight -= 1
        content = json.dumps({"reasoning": "ok", "number_of_fulfilled_requirements": 1})
        body = json.dumps(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_semaphore_bounds_requests_in_flight():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        j = JudgeClient(
            model="m",
            api_key="k-123456789",
            mode="count",
            concurrency=2,
            base_url=f"http://127.0.0.1:{srv.server_address[1]}/v1",
        )

        async def many():
            return await asyncio.gather(*(j.judge(COLOURFUL, REQS) for _ in range(6)))

        outs = run(many())
        assert all(o.ok for o in outs)
        assert _Counting.total == 6
        assert 1 <= _Counting.peak <= 2
    finally:
        srv.shutdown()
        srv.server_close()


def test_call_with_retries_does_not_retry_programming_errors():
    calls = []

    async def boom():
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run(call_with_retries(boom, max_retries=3, backoff_base=0.0))
    assert calls == [1]


def test_a_fireworks_hosted_judge_uses_the_fireworks_key(monkeypatch):
    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-judge-key-0123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.fireworks.ai/inference/v1")
    monkeypatch.setenv("SVGRFT_JUDGE_MODEL", "accounts/fireworks/models/qwen2p5-vl-32b-instruct")
    j = judge_from_settings(load_settings())
    assert (j.key_name, j.base_url, j.model) == (
        "FIREWORKS_API_KEY",
        "https://api.fireworks.ai/inference/v1",
        "accounts/fireworks/models/qwen2p5-vl-32b-instruct",
    )
    assert "fw-judge-key" not in repr(j)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)  # an explicit OpenAI key still wins
    assert judge_from_settings(load_settings()).key_name == "OPENAI_API_KEY"


# --- hostile judge replies and bodies: hang guards, giant integers, odd usage and content (folded from test_qa_core.py) ---

from tests.fakes.canned import completion  # noqa: E402
from tests.helpers import finishes  # noqa: E402

THREE_REQS = ["a red apple", "a wooden table", "a green leaf"]


def test_judge_reply_of_newlines_does_not_hang_the_parser():
    # A judge that degenerates into newlines inside a ``` fence: the fence regex backtracked
    # cubically (5,000 newlines took 250 s) on the scorer's event-loop thread.
    out = finishes("""
        from svgrft.core.judge import parse_reply, JudgeReplyError
        for text in ("```json\\n" + "\\n" * 150_000 + "x",
                     "```\\n" + " \\n\\t" * 50_000 + "}",
                     "```json\\n" + "\\n" * 150_000 + "{}\\n```"):
            try:
                parse_reply("checklist", text, ["a", "b"])
            except JudgeReplyError as e:
                print("invalid:", e.reason[:40])
    """)
    assert out.count("invalid:") == 3


def test_fenced_judge_reply_is_still_accepted():
    body = {"verdicts": [{"index": i, "fulfilled": i != 2, "evidence": "seen"} for i in (1, 2, 3)]}
    for text in (
        f"```json\n{json.dumps(body)}\n```",
        f"  ```\n{json.dumps(body)}```  ",
        f"```JSON \n\n{json.dumps(body, indent=2)}\n\n```",
    ):
        reply = parse_reply("checklist", text, THREE_REQS)
        assert (reply.fulfilled, reply.total) == (2, 3)
    for text in (
        f"```json {json.dumps(body)}```",  # no newline after the info string
        f"Here you go:\n```json\n{json.dumps(body)}\n```",  # prose around the fence
        f"```json\n{json.dumps(body)}\n```\nanything else?",
    ):
        with pytest.raises(JudgeReplyError):
            parse_reply("checklist", text, THREE_REQS)


@pytest.mark.parametrize(
    "mode,text",
    [
        ("count", '{"reasoning": "x", "number_of_fulfilled_requirements": ' + "1" * 5000 + "}"),
        ("checklist", '{"verdicts": [{"index": ' + "9" * 4400 + ', "fulfilled": true, "evidence": ""}]}'),
    ],
    ids=["count", "checklist"],
)
def test_judge_reply_with_a_giant_integer_literal_is_an_invalid_reply(mode, text):
    # json.loads raises a plain ValueError (not JSONDecodeError) past Python's 4300-digit limit:
    # it escaped the parser, and the client filed the sample as an infrastructure error.
    with pytest.raises(JudgeReplyError, match="not JSON"):
        parse_reply(mode, text, THREE_REQS)


GOOD_VERDICTS = {"verdicts": [{"index": i, "fulfilled": i < 3, "evidence": "seen"} for i in (1, 2, 3)]}


def _judge(canned):
    import asyncio

    from svgrft.clients.judge import JudgeClient

    async def run():
        j = JudgeClient(
            model="m",
            api_key="sk-test-canned-0123456789",
            base_url=canned.url,
            max_retries=1,
            backoff_base=0.01,
            timeout=10,
        )
        try:
            return await j.judge(b"\x89PNG\r\n\x1a\n", THREE_REQS, "")
        finally:
            await j.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": "NaN-ish", "completion_tokens": 7},
        {"prompt_tokens": -50, "completion_tokens": 7},
        {"prompt_tokens": 1e300, "completion_tokens": 7},
        {"prompt_tokens": None, "completion_tokens": 7},
    ],
    ids=["string", "negative", "huge_float", "null"],
)
def test_garbage_usage_counts_do_not_cost_a_valid_verdict(canned, usage):
    # int(usage.prompt_tokens) raised on NaN/strings: the verdict was dropped as an infrastructure error.
    canned.answer(completion(json.dumps(GOOD_VERDICTS), usage))
    out = _judge(canned)
    assert out.ok and (out.reply.fulfilled, out.reply.total) == (2, 3), out.reason
    assert out.usage == {"prompt_tokens": 0, "completion_tokens": 7}


def test_nan_usage_from_a_raw_body(canned):
    body = json.dumps(completion(json.dumps(GOOD_VERDICTS), {"prompt_tokens": 1, "completion_tokens": 2}))
    canned.answer(body.replace('"prompt_tokens": 1', '"prompt_tokens": NaN').encode())
    out = _judge(canned)
    assert out.ok and out.usage == {"prompt_tokens": 0, "completion_tokens": 2}, out.reason


@pytest.mark.parametrize(
    "content", [GOOD_VERDICTS, [{"type": "text", "text": json.dumps(GOOD_VERDICTS)}]], ids=["object", "content_parts"]
)
def test_structured_content_shapes_are_read(canned, content):
    # a dict content crashed with "unhashable type: 'slice'" (an infra error); content parts were not JSON
    canned.answer(completion(content))
    out = _judge(canned)
    assert out.ok and out.reply.fulfilled == 2, out.reason


@pytest.mark.parametrize(
    "body,ctype",
    [
        ({"choices": "nope"}, "application/json"),
        ({"choices": [1]}, "application/json"),
        (b"[" * 100_000, "application/json"),
        (b"<html><body>502 Bad Gateway</body></html>", "text/html"),
    ],
    ids=["choices_string", "choices_ints", "deep_json", "html_200"],
)
def test_a_body_that_is_not_a_completion_is_retried_then_malformed(canned, body, ctype):
    # these raised AttributeError/RecursionError inside the client: kind "error", never retried
    canned.answer(body, ctype)
    out = _judge(canned)
    assert not out.ok and out.error_kind == "malformed" and out.calls == 2 and canned.hits == 2, out.reason
    assert "sk-test-canned" not in out.reason
