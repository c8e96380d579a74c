"""The rollout server's own copy of Eval Protocol's wire format (svgrft.server.wire) against the installed
eval-protocol: an InitRequest eval-protocol builds parses with ours to the same data, invalid ones fail in
the same places, and the status entry we POST is byte-for-byte the one eval-protocol's log handler builds
and is read back as terminal by eval-protocol's own status reader."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.conftest import FW_KEY


def _ep_request(**over):
    from eval_protocol.models import Message
    from eval_protocol.types.remote_rollout_processor import InitRequest, RolloutMetadata

    meta = RolloutMetadata(
        invocation_id="inv-1", experiment_id="exp-1", rollout_id="r-wire", run_id="run-0", row_id="row-1"
    )
    messages = [
        Message(role="system", content="You draw SVG."),
        Message(
            role="user",
            content=[
                {"type": "text", "text": "Draw a barn."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
            ],
        ),
        Message(
            role="assistant",
            content=None,
            tool_calls=[{"id": "call-1", "type": "function", "function": {"name": "draw", "arguments": "{}"}}],
        ),
        Message(role="tool", content="ok", tool_call_id="call-1", name="draw", weight=1),
    ]
    args = dict(
        completion_params={
            "model": "fireworks_ai/accounts/fireworks/models/qwen3-0p6b",
            "temperature": 0.8,
            "max_tokens": 4096,
            "extra_body": {"top_k": 40},
        },
        messages=messages,
        tools=[{"type": "function", "function": {"name": "draw", "parameters": {}}}],
        model_base_url="https://tracing.fireworks.ai/rollout_id/r-wire/invocation_id/inv-1",
        metadata=meta,
        api_key="fw-wire-key-0123456789",
    )
    args.update(over)
    return InitRequest(**args)


def test_an_eval_protocol_init_request_parses_with_ours_to_the_same_data():
    import json

    from svgrft.server.wire import InitRequest

    for ep in (
        _ep_request(),
        _ep_request(messages=None, tools=None, model_base_url=None, api_key=None, completion_params={}),
    ):
        payload = json.loads(json.dumps(ep.model_dump()))  # what RemoteRolloutProcessor POSTs (as JSON)
        ours = InitRequest.model_validate(payload)
        assert json.loads(ours.model_dump_json()) == json.loads(ep.model_dump_json())
        assert set(InitRequest.model_fields) == set(type(ep).model_fields)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["metadata"].pop("row_id"),
        lambda d: d.pop("metadata"),
        lambda d: d["messages"][0].pop("role"),
        lambda d: d["messages"][1]["content"].append({"type": "input_audio", "input_audio": {}}),
        lambda d: d["messages"][2]["tool_calls"][0].pop("id"),
        lambda d: d["messages"][2]["tool_calls"][0].update(type="custom"),
        lambda d: d["messages"][3].update(weight="heavy"),
        lambda d: d.update(tools={"not": "a list"}),
        lambda d: d["metadata"].update(rollout_id=7),
    ],
    ids=[
        "no-row-id",
        "no-metadata",
        "no-role",
        "bad-part",
        "tool-call-no-id",
        "tool-call-type",
        "bad-weight",
        "tools-not-list",
        "int-rollout-id",
    ],
)
def test_invalid_requests_fail_in_the_same_places(mutate):
    from eval_protocol.types.remote_rollout_processor import InitRequest as EPInitRequest
    from pydantic import ValidationError

    from svgrft.server.wire import InitRequest

    payload = _ep_request().model_dump()
    mutate(payload)
    with pytest.raises(ValidationError) as theirs:
        EPInitRequest.model_validate(payload)
    with pytest.raises(ValidationError) as ours:
        InitRequest.model_validate(payload)
    assert [e["loc"] for e in ours.value.errors()] == [e["loc"] for e in theirs.value.errors()]


def _ep_status(code: int, message: str):
    from eval_protocol.models import Status

    if code == 100:
        return Status.rollout_finished()
    makers = {
        3: Status.rollout_invalid_argument_error,
        4: Status.rollout_deadline_exceeded_error,
        5: Status.rollout_not_found_error,
        7: Status.rollout_permission_denied_error,
        8: Status.rollout_resource_exhausted_error,
        13: Status.rollout_internal_error,
        14: Status.rollout_unavailable_error,
        16: Status.rollout_unauthenticated_error,
    }
    return makers.get(code, Status.rollout_internal_error)(message)


@pytest.mark.parametrize("code", [100, 3, 4, 5, 7, 8, 13, 14, 16, 9])
def test_status_entry_is_the_one_eval_protocols_handler_builds(code):
    from eval_protocol.log_utils.fireworks_tracing_http_handler import FireworksTracingHttpHandler
    from eval_protocol.log_utils.rollout_id_filter import RolloutIdFilter

    from svgrft.server.wire import GATEWAY_LOGGER, status_entry

    message = "Rollout r-7 finished" if code == 100 else f"Rollout r-7 failed: code {code}"
    extras = {"svgrft_server": "x", "usage": {"prompt_tokens": 3}, "level": "overridden"}
    level = logging.INFO if code == 100 else logging.ERROR
    record = logging.getLogger(GATEWAY_LOGGER).makeRecord(
        GATEWAY_LOGGER,
        level,
        __file__,
        0,
        message,
        (),
        None,
        extra={
            "status": _ep_status(code, message),
            "extras": dict(extras),
            "experiment_id": "exp-1",
            "run_id": "run-0",
        },
    )
    RolloutIdFilter("r-7").filter(record)
    theirs = FireworksTracingHttpHandler(gateway_base_url="http://127.0.0.1:9")._build_payload(record, "r-7")
    ours = status_entry(
        rollout_id="r-7",
        code=code,
        message=message,
        extras=extras,
        experiment_id="exp-1",
        run_id="run-0",
        created=record.created,
    )
    assert ours == theirs


@pytest.mark.parametrize("code,message", [(100, "Rollout r-ep finished"), (8, "Rollout r-ep failed: busy")])
def test_what_our_reporter_posts_is_read_as_terminal_by_eval_protocol(fw, code, message):
    """Our reporter → the fake gateway → eval-protocol's FireworksTracingAdapter, read as RemoteRolloutProcessor
    does (the code from /v1/status, message and extras from /logs)."""
    import aiohttp
    from eval_protocol.adapters.fireworks_tracing import FireworksTracingAdapter
    from eval_protocol.exceptions import exception_for_status_code
    from eval_protocol.models import Status

    from svgrft.server.status_report import GatewayReporter

    rid = f"r-ep-{code}"
    reporter = GatewayReporter(threads=2, deadline=30)

    async def go():
        ok = await reporter.report(
            gateway=fw.localhost_url,
            api_key=FW_KEY,
            rollout_id=rid,
            code=code,
            message=message,
            extras={"svg_found": True},
            experiment_id="exp-1",
            run_id="run-0",
        )
        adapter = FireworksTracingAdapter(base_url=fw.localhost_url, api_key=FW_KEY)
        async with aiohttp.ClientSession() as session:
            status = await adapter.async_get_status(session, rollout_id=rid)
            logs = await adapter.async_search_logs(session, tags=[f"rollout_id:{rid}"])
        return ok, status, logs

    try:
        ok, status, logs = asyncio.run(go())
    finally:
        reporter.close()
    assert ok is True
    got = status["status"]["code"]
    assert got == code and got != Status.Code.RUNNING
    entry = next(e for e in logs if isinstance(e.get("status"), dict) and e["status"].get("code") == got)
    read = Status(code=Status.Code(got), message=entry["status"]["message"], details=entry["status"]["details"])
    if code == 100:
        assert read.code == Status.Code.FINISHED and read.message == "Rollout finished"
        assert exception_for_status_code(got, read.message) is None
    else:
        assert read.message == message
        assert type(exception_for_status_code(got, read.message)).__name__ == "ResourceExhaustedError"
    assert entry["extras"]["svg_found"] is True
