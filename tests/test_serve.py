"""`svgrft serve`: the rollout server over real HTTP on loopback, against the fake Fireworks
(policy behind the tracing gateway's tagged path, /logs, /v1/status).

The app runs in a uvicorn thread (``ServeThread``); requests are plain httpx calls shaped like
eval-protocol's InitRequest. The end-to-end run through eval-protocol's RemoteRolloutProcessor
is in test_serve_e2e.py; the access-control rules are in test_serve_security.py.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
import uuid

import httpx
import pytest

from tests.conftest import FW_KEY, free_port
from tests.fakes import key_fingerprint

# ------------------------------------------------------------------------------------------ helpers


class ServeThread:
    """A real uvicorn server for an app, on 127.0.0.1, in a daemon thread, with the settings `svgrft serve`
    gives uvicorn (guarded protocol, keep-alive, proxy headers)."""

    def __init__(self, app):
        import uvicorn

        from svgrft.server.runner import uvicorn_options

        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            lifespan="on",
            log_config=None,
            access_log=False,
            **{**uvicorn_options(app.state.options), "timeout_graceful_shutdown": 60},
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> ServeThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the rollout server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.sock.close()


@pytest.fixture
def serve():
    """``serve(**create_app_kwargs)`` → a started ServeThread (stopped after the test)."""
    from svgrft.config import load_settings
    from svgrft.server.app import create_app

    started: list[ServeThread] = []

    def start(**kwargs) -> ServeThread:
        kwargs.setdefault("rate_limit", 0)
        st = ServeThread(create_app(load_settings(), **kwargs)).start()
        started.append(st)
        return st

    yield start
    for st in started:
        st.stop()


def init_body(
    fw,
    rollout_id: str | None = None,
    *,
    model: str = "fireworks_ai/accounts/fireworks/models/qwen3-0p6b",
    api_key: str | None = FW_KEY,
    prompt: str = "Draw a red apple on a wooden table.",
    base: str | None = None,
    **params,
) -> dict:
    """An InitRequest exactly as eval-protocol's build_init_request makes it (tagged gateway URL)."""
    rid = rollout_id or "r-" + uuid.uuid4().hex[:10]
    meta = {"invocation_id": "inv-1", "experiment_id": "exp-1", "rollout_id": rid, "run_id": "run-0", "row_id": "row-1"}
    base = base if base is not None else fw.localhost_url
    url = f"{base}/rollout_id/{rid}/invocation_id/inv-1/experiment_id/exp-1/run_id/run-0/row_id/row-1"
    cp = {"model": model, "temperature": 0.8, "max_tokens": 4096}
    cp.update(params)
    return {
        "completion_params": cp,
        "messages": [{"role": "user", "content": prompt}],
        "tools": None,
        "model_base_url": url,
        "metadata": meta,
        "api_key": api_key,
    }


def chat_calls(fw, rollout_id: str | None = None):
    pat = re.compile(r"/chat/completions$")
    calls = fw.calls("POST", pat)
    if rollout_id is not None:
        calls = [c for c in calls if f"/rollout_id/{rollout_id}/" in c.path]
    return calls


def gateway_logs(fw, rollout_id: str) -> list[dict]:
    return [e for e in fw.logs if f"rollout_id:{rollout_id}" in e["tags"]]


def gateway_status(fw, rollout_id: str) -> dict:
    r = httpx.get(
        fw.url + "/v1/status", params={"rollout_id": rollout_id}, headers={"Authorization": f"Bearer {FW_KEY}"}
    )
    assert r.status_code == 200, r.text
    return r.json()


# ------------------------------------------------------------------------------------------ health


def test_health_reports_service_and_versions(fw, serve):
    st = serve()
    r = httpx.get(st.url + "/")
    assert r.status_code == 200
    data = r.json()
    from importlib.metadata import version

    from svgrft import __version__

    assert data["status"] == "ok" and data["service"] == "svgrft-serve"
    assert data["version"] == __version__
    assert data["eval_protocol"] == version("eval-protocol")
    assert data["mode"] == "sync" and data["auth"] == "none"
    assert data["rollouts"]["in_flight"] == 0


# ------------------------------------------------------------------------------------------ happy path


def test_init_calls_policy_through_gateway_and_reports_finished(fw, serve):
    st = serve()
    body = init_body(
        fw,
        top_p=0.9,
        stop=["</svg>x"],
        top_k=40,
        api_base="http://evil.invalid",
        base_url="x",
        seed=7,
        extra_body={"reasoning_effort": "low"},
    )
    body["messages"] = [
        {"role": "system", "content": "You draw SVG.", "weight": 0},
        {"role": "user", "content": "Draw a red apple.", "reasoning_content": "hidden"},
    ]
    rid = body["metadata"]["rollout_id"]
    r = httpx.post(st.url + "/init", json=body, timeout=60)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["status"] == "finished" and data["rollout_id"] == rid
    assert data["svg_found"] is True

    # the policy was called once, through the tagged gateway path, with the request's key
    calls = chat_calls(fw, rid)
    assert len(calls) == 1
    sent = calls[0].json
    assert calls[0].path.startswith(f"/rollout_id/{rid}/invocation_id/inv-1/")
    assert calls[0].headers["authorization"] == f"Bearer <redacted {key_fingerprint(FW_KEY)}>"
    assert sent["model"] == "fireworks_ai/accounts/fireworks/models/qwen3-0p6b"  # unchanged for the gateway
    assert sent["temperature"] == 0.8 and sent["max_tokens"] == 4096 and sent["top_p"] == 0.9
    assert sent["stop"] == ["</svg>x"] and sent["seed"] == 7
    assert sent["top_k"] == 40 and sent["reasoning_effort"] == "low"  # extra_body params arrive top-level
    assert "api_base" not in sent and "base_url" not in sent and sent.get("stream") in (None, False)
    assert sent["messages"] == [
        {"role": "system", "content": "You draw SVG."},
        {"role": "user", "content": "Draw a red apple."},
    ]

    # the trace is tagged with the rollout and the terminal status is on the gateway
    traces = [t for t in fw.traces if f"rollout_id:{rid}" in t["tags"]]
    assert len(traces) == 1 and "<svg" in json.dumps(traces[0]["output"])
    logs = gateway_logs(fw, rid)
    assert len(logs) == 1
    entry = logs[0]
    assert entry["status"]["code"] == 100 and entry["program"] == "eval_protocol"
    assert {"rollout_id:" + rid, "experiment_id:exp-1", "run_id:run-0"} <= set(entry["tags"])
    assert entry["extras"]["svg_found"] is True and entry["extras"]["finish_reason"] == "stop"
    assert entry["extras"]["usage"]["completion_tokens"] > 0
    assert gateway_status(fw, rid)["status"] == {"code": 100}
    # the gateway log was authenticated with the rollout's key
    log_posts = [c for c in fw.calls("POST", "/logs")]
    assert log_posts and log_posts[-1].headers["authorization"].endswith(f"{key_fingerprint(FW_KEY)}>")


def test_direct_inference_url_strips_litellm_prefix(fw, serve):
    st = serve()
    body = init_body(fw)
    body["model_base_url"] = fw.localhost_url + "/inference/v1"
    r = httpx.post(st.url + "/init", json=body, timeout=60)
    assert r.status_code == 200, r.text
    calls = fw.calls("POST", "/inference/v1/chat/completions")
    assert len(calls) == 1 and calls[0].json["model"] == "accounts/fireworks/models/qwen3-0p6b"
    # no tagged URL: the status goes to the configured tracing gateway
    assert gateway_status(fw, body["metadata"]["rollout_id"])["status"] == {"code": 100}


def test_missing_model_base_url_uses_configured_inference(fw, serve, monkeypatch):
    st = serve()
    body = init_body(fw)
    body["model_base_url"] = None
    r = httpx.post(st.url + "/init", json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert len(fw.calls("POST", "/inference/v1/chat/completions")) == 1


# ------------------------------------------------------------------------------------------ error mapping


@pytest.mark.parametrize(
    "fault, http_status, grpc_code, kind",
    [
        ("429", 429, 8, "rate_limited"),
        ("500", 502, 14, "upstream_error"),
        ("503", 502, 14, "upstream_error"),
        ("drop", 502, 14, "upstream_unreachable"),
        ("malformed", 502, 14, "upstream_malformed"),
    ],
)
def test_policy_failures_map_to_http_status_and_gateway_status(fw, serve, fault, http_status, grpc_code, kind):
    st = serve(policy_retries=0)
    body = init_body(fw)
    rid = body["metadata"]["rollout_id"]
    fw.faults.add("POST", rf"/rollout_id/{rid}/.*chat/completions$", kind=fault, times=None, retry_after=3)
    r = httpx.post(st.url + "/init", json=body, timeout=60)
    assert r.status_code == http_status, r.text
    data = r.json()
    assert data["rollout_id"] == rid and data["kind"] == kind and data["error"]
    if http_status == 429:
        assert r.headers["retry-after"] == "3"
    logs = gateway_logs(fw, rid)
    assert [e["status"]["code"] for e in logs] == [grpc_code]
    assert logs[0]["severity"] == "ERROR" and logs[0]["extras"]["http_status"] == http_status
    assert gateway_status(fw, rid)["status"] == {"code": grpc_code}


def test_unknown_model_is_404_not_found(fw, serve):
    st = serve()
    fw.serverless_models = ("qwen3-0p6b",)
    body = init_body(fw, model="accounts/fireworks/models/no-such-model")
    rid = body["metadata"]["rollout_id"]
    r = httpx.post(st.url + "/init", json=body, timeout=60)
    assert r.status_code == 404 and r.json()["kind"] == "model_not_found" and r.json()["rollout_id"] == rid
    assert [e["status"]["code"] for e in gateway_logs(fw, rid)] == [5]


def test_rejected_key_is_403_and_never_echoed(fw, serve, caplog):
    st = serve()
    bad_key = "fw-wrong-key-9876543210zyxw"
    body = init_body(fw, api_key=bad_key)
    caplog.set_level(logging.INFO, logger="svgrft")
    r = httpx.post(st.url + "/init", json=body, timeout=60)
    assert r.status_code == 403 and r.json()["kind"] == "auth"
    assert bad_key not in r.text
    assert all(bad_key not in rec.getMessage() for rec in caplog.records)
    # the gateway refuses the log too (unknown key): no entry, and no crash
    assert gateway_logs(fw, body["metadata"]["rollout_id"]) == []


def test_policy_timeout_is_408_deadline_exceeded(fw, serve):
    st = serve(rollout_timeout=0.3, policy_retries=0)
    body = init_body(fw)
    rid = body["metadata"]["rollout_id"]
    fw.faults.add("POST", rf"/rollout_id/{rid}/.*chat/completions$", kind="slow", delay=1.5, times=1)
    r = httpx.post(st.url + "/init", json=body, timeout=60)
    assert r.status_code == 408 and r.json()["kind"] == "timeout"
    assert [e["status"]["code"] for e in gateway_logs(fw, rid)] == [4]


def test_policy_retries_transient_errors_before_answering(fw, serve):
    st = serve(policy_retries=2)
    body = init_body(fw)
    rid = body["metadata"]["rollout_id"]
    fw.faults.add("POST", rf"/rollout_id/{rid}/.*chat/completions$", kind="503", times=1)
    r = httpx.post(st.url + "/init", json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert len(chat_calls(fw, rid)) == 2
    assert [e["status"]["code"] for e in gateway_logs(fw, rid)] == [100]


def test_gateway_down_after_success_is_502(fw, serve):
    st = serve()
    body = init_body(fw)
    rid = body["metadata"]["rollout_id"]
    fw.faults.add("POST", r"^/(v1/)?logs$", kind="503", times=None)
    r = httpx.post(st.url + "/init", json=body, timeout=60)
    assert r.status_code == 502 and r.json()["kind"] == "gateway_unreachable"
    assert len(chat_calls(fw, rid)) == 1


# ------------------------------------------------------------------------------------------ malformed requests


@pytest.mark.parametrize(
    "mutate, expect_rid, fragment",
    [
        (lambda b: b.pop("metadata"), False, "metadata: Field required"),
        (lambda b: b["metadata"].pop("row_id"), True, "metadata.row_id"),
        (lambda b: b.__setitem__("messages", "draw"), True, "messages"),
        (lambda b: b["metadata"].__setitem__("rollout_id", "a b"), False, "rollout_id"),
        (lambda b: b.__setitem__("completion_params", {"temperature": 0.2}), True, "completion_params.model"),
    ],
)
def test_malformed_init_requests_are_400_without_policy_call(fw, serve, mutate, expect_rid, fragment):
    st = serve()
    body = init_body(fw)
    rid = body["metadata"]["rollout_id"]
    mutate(body)
    r = httpx.post(st.url + "/init", json=body, timeout=30)
    assert r.status_code == 400, r.text
    data = r.json()
    assert data["kind"] == "bad_request" and fragment in data["error"]
    assert data["rollout_id"] == (rid if expect_rid else None)
    assert chat_calls(fw) == []


def test_not_json_and_not_object_are_400(fw, serve):
    st = serve()
    for raw in (b"{not json", b"[1, 2]", b"\xff\xfe", b""):
        r = httpx.post(st.url + "/init", content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, raw
        assert r.json()["rollout_id"] is None
    assert fw.requests == []


def test_empty_messages_are_400_and_reported_to_gateway(fw, serve, caplog):
    st = serve()
    body = init_body(fw)
    rid = body["metadata"]["rollout_id"]
    body["messages"] = []
    caplog.set_level(logging.INFO, logger="svgrft")
    r = httpx.post(st.url + "/init", json=body, timeout=30)
    assert r.status_code == 400 and "messages" in r.json()["error"] and r.json()["rollout_id"] == rid
    assert chat_calls(fw) == []
    assert [e["status"]["code"] for e in gateway_logs(fw, rid)] == [3]  # INVALID_ARGUMENT
    assert any(rid in rec.getMessage() and "400" in rec.getMessage() for rec in caplog.records)


def test_unknown_role_is_400(fw, serve):
    st = serve()
    body = init_body(fw)
    body["messages"] = [{"role": "wizard", "content": "hi"}]
    r = httpx.post(st.url + "/init", json=body, timeout=30)
    assert r.status_code == 400 and "role" in r.json()["error"]
    assert chat_calls(fw) == []


def test_body_size_is_capped(fw, serve):
    st = serve(max_body=4096)
    body = init_body(fw, prompt="x" * 10_000)
    r = httpx.post(st.url + "/init", json=body, timeout=30)
    assert r.status_code == 413 and r.json()["kind"] == "too_large"

    def chunks():  # no Content-Length: the cap applies while reading
        raw = json.dumps(body).encode()
        for i in range(0, len(raw), 1000):
            yield raw[i : i + 1000]

    r = httpx.post(st.url + "/init", content=chunks(), timeout=30)
    assert r.status_code == 413
    assert fw.requests == []


def test_hostile_field_values_never_crash(fw, serve):
    st = serve()
    bodies = []
    b = init_body(fw)
    b["completion_params"]["extra_body"] = "not an object"
    bodies.append(b)
    b = init_body(fw)
    b["tools"] = "nope"
    bodies.append(b)
    b = init_body(fw)
    b["messages"] = [{"role": "user", "content": {"weird": True}}]
    bodies.append(b)
    b = init_body(fw)
    b["metadata"]["rollout_id"] = "x" * 5000
    bodies.append(b)
    b = init_body(fw)
    b["completion_params"]["temperature"] = "hot"  # upstream refuses it: 400, not a crash
    bodies.append(b)
    for body in bodies:
        r = httpx.post(st.url + "/init", json=body, timeout=30)
        assert r.status_code == 400, (body, r.text)
        assert "error" in r.json()
    assert httpx.get(st.url + "/").json()["status"] == "ok"


# ------------------------------------------------------------------------------------------ concurrency & lifecycle


def gated_policy(fw, *, barrier: threading.Barrier | None = None, gate: threading.Event | None = None):
    """Make the fake policy wait (at a barrier, or until ``gate`` is set) before answering."""
    original = fw.policy

    def policy(model, messages, params):
        if barrier is not None:
            barrier.wait(timeout=30)  # BrokenBarrierError (→ 500) if the calls were not concurrent
        if gate is not None:
            gate.wait(timeout=30)
        return original(model, messages, params)

    fw.policy = policy


def refuses_connections(url: str) -> bool:
    try:
        httpx.get(url + "/", timeout=1)
    except httpx.TransportError:
        return True
    return False


def test_concurrent_rollouts_do_not_block_each_other(fw, serve):
    n = 12
    gated_policy(fw, barrier=threading.Barrier(n))  # passes only when all n policy calls are in flight
    st = serve()
    results: list[int] = []

    def one() -> None:
        results.append(httpx.post(st.url + "/init", json=init_body(fw), timeout=60).status_code)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * n
    assert st.app.state.cap.peak == n
    assert len(fw.logs) == n


def test_graceful_shutdown_finishes_in_flight_rollouts(fw, serve):
    gate = threading.Event()
    gated_policy(fw, gate=gate)
    st = serve()
    body = init_body(fw)
    rid = body["metadata"]["rollout_id"]
    out: dict = {}

    def call() -> None:
        out["r"] = httpx.post(st.url + "/init", json=body, timeout=60)

    t = threading.Thread(target=call)
    t.start()
    deadline = time.monotonic() + 30
    while not chat_calls(fw, rid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert st.app.state.cap.in_flight == 1
    st.server.should_exit = True  # what SIGTERM/SIGINT do
    while not refuses_connections(st.url) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert refuses_connections(st.url)  # shutting down: no new connections ...
    assert st.thread.is_alive() and "r" not in out  # ... but the rollout is still running
    gate.set()
    t.join(timeout=60)
    st.thread.join(timeout=60)
    assert not st.thread.is_alive()
    assert out["r"].status_code == 200
    assert [e["status"]["code"] for e in gateway_logs(fw, rid)] == [100]


def test_background_mode_answers_then_reports(fw, serve):
    gate = threading.Event()
    gated_policy(fw, gate=gate)
    st = serve(background=True)
    good = init_body(fw)
    bad = init_body(fw)
    fw.faults.add("POST", rf"/rollout_id/{bad['metadata']['rollout_id']}/.*chat/completions$", kind="429", times=None)
    for body in (good, bad):
        r = httpx.post(st.url + "/init", json=body, timeout=30)
        assert r.status_code == 200 and r.json()["status"] == "accepted"
    # validation still answers synchronously
    r = httpx.post(st.url + "/init", json={**init_body(fw), "messages": []}, timeout=30)
    assert r.status_code == 400
    good_rid = good["metadata"]["rollout_id"]
    assert gateway_logs(fw, good_rid) == []  # answered before the policy call finished
    stopper = threading.Thread(target=st.stop)  # shutdown waits for the background rollouts
    stopper.start()
    deadline = time.monotonic() + 30
    while not refuses_connections(st.url) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stopper.is_alive() and gateway_logs(fw, good_rid) == []
    gate.set()
    stopper.join(timeout=60)
    assert [e["status"]["code"] for e in gateway_logs(fw, good["metadata"]["rollout_id"])] == [100]
    assert [e["status"]["code"] for e in gateway_logs(fw, bad["metadata"]["rollout_id"])] == [8]


# ------------------------------------------------------------------------------------------ pure helpers


def test_build_completion_kwargs_filters_params_and_messages():
    from svgrft.clients.policy_call import RequestInvalid, build_completion_kwargs

    kw = build_completion_kwargs(
        {
            "model": "fireworks_ai/accounts/a/models/m",
            "temperature": 0.5,
            "max_tokens": 10,
            "top_k": 5,
            "api_key": "k",
            "headers": {"x": 1},
            "stream": True,
            "litellm_logging": 1,
            "extra_body": {"min_p": 0.1, "api_key": "k2"},
        },
        [{"role": "user", "content": "hi", "weight": 3}],
        [{"type": "function"}],
        via_gateway=False,
    )
    assert kw == {
        "model": "accounts/a/models/m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": False,
        "temperature": 0.5,
        "max_tokens": 10,
        "extra_body": {"top_k": 5, "min_p": 0.1},
        "tools": [{"type": "function"}],
    }
    with pytest.raises(RequestInvalid):
        build_completion_kwargs({"model": "m"}, [], None, via_gateway=True)
    with pytest.raises(RequestInvalid):
        build_completion_kwargs({}, [{"role": "user", "content": "x"}], None, via_gateway=True)


def test_gateway_base_and_tracing_url():
    from svgrft.server.init_request import gateway_base, is_tracing_url

    url = "https://tracing.fireworks.ai/rollout_id/r/invocation_id/i/experiment_id/e/run_id/u/row_id/w"
    assert gateway_base(url) == "https://tracing.fireworks.ai" and is_tracing_url(url)
    assert gateway_base("http://localhost:9/tracing/rollout_id/r/x") == "http://localhost:9/tracing"
    assert gateway_base("https://api.fireworks.ai/inference/v1") is None
    assert not is_tracing_url("https://api.fireworks.ai/inference/v1")


def test_scrub_masks_keys_and_bearer_tokens():
    from svgrft.server.outcomes import scrub

    key = "fw-abcdefghijklmnopqrstuvwxyz"
    out = scrub(f"Incorrect API key {key}; header Bearer sometoken12345", key)
    assert key not in out and "sometoken12345" not in out and "fw-…wxyz" in out


# ------------------------------------------------------------------------------------------ CLI


def test_cli_check_reports_a_running_server(fw, serve, cli):
    st = serve()
    r = cli("serve", "--check", st.url, "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert data["ok"] is True and data["mode"] == "sync" and data["url"] == st.url
    r = cli("serve", "--check", st.url + "/")
    assert r.exit_code == 0 and "ok" in r.stdout


def test_cli_check_fails_with_hint(fw, cli):
    dead = f"http://127.0.0.1:{free_port()}"
    r = cli("serve", "--check", dead)
    assert r.exit_code == 1 and "cannot reach" in r.stderr and "hint:" in r.stderr
    r = cli("serve", "--check", fw.url)  # something that is not an svgrft server
    assert r.exit_code == 1 and "not a healthy svgrft rollout server" in r.stderr
    r = cli("serve", "--check", "ftp://x")
    assert r.exit_code == 2


def test_cli_refuses_open_relay_and_bad_hosts(cli, monkeypatch):
    monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
    r = cli("serve", "--host", "0.0.0.0", "--allow-server-key")
    assert r.exit_code == 1 and "SVGRFT_SERVE_TOKEN" in r.stderr
    r = cli("serve", "--allow-model-host", "bad host/x")
    assert r.exit_code == 1 and "--allow-model-host" in r.stderr
    monkeypatch.delenv("FIREWORKS_API_KEY")
    r = cli("serve", "--allow-server-key")
    assert r.exit_code == 1 and "needs FIREWORKS_API_KEY" in r.stderr


def test_app_factory_for_workers_reads_options_from_env(fw, monkeypatch):
    from svgrft.server.app import ServeOptions, app_from_env
    from svgrft.server.options import OPTIONS_ENV

    opts = ServeOptions(token="t" * 20, allow_model_hosts=("example.org",), max_concurrent=7, rate_limit=0)
    monkeypatch.setenv(OPTIONS_ENV, json.dumps(opts.public()))
    monkeypatch.setenv("SVGRFT_SERVE_TOKEN", "z" * 24)
    app = app_from_env()
    got = app.state.options
    assert got.max_concurrent == 7 and got.allow_model_hosts == ("example.org",) and got.token == "z" * 24
    assert "token" not in opts.public() and opts.public()["auth"] == "token"


# --- start-up errors, hostile bodies and keys, odd or endless upstreams (folded from test_qa_cli/test_qa_core) ---

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from tests.fakes.canned import completion  # noqa: E402
from tests.helpers import one_error  # noqa: E402


def test_serve_on_a_busy_port_is_one_error(cli):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = cli("serve", "--port", port)
    line = one_error(r)
    assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "svgrft serve on" not in r.stderr  # nothing claimed to be serving


def test_serve_bad_port_in_config_or_flag(cli, tmp_path):
    cfg = tmp_path / "serve.toml"
    cfg.write_text("[serve]\nport = 70000\n", encoding="utf-8")
    assert "invalid port 70000" in one_error(cli("serve", "--config", cfg))
    one_error(cli("serve", "--port", "99999"), code=2)


def test_serve_starts_without_a_pydantic_deprecation_warning(tmp_path):
    import signal

    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIREWORKS_", "OPENAI_", "SVGRFT_"))}
    env["SVGRFT_HOME"] = str(tmp_path / "home")
    p = subprocess.Popen(
        [sys.executable, "-m", "svgrft", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        for _ in range(600):
            if p.poll() is not None:
                break
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            import time

            time.sleep(0.1)
        assert p.poll() is None, p.communicate()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert "ready" in err
    assert "Deprecat" not in err and "Traceback" not in err, err[-2000:]


def _post(st, **kw):
    import httpx

    return httpx.post(st.url + "/init", timeout=60, **kw)


def test_deeply_nested_or_non_finite_json_is_400_not_a_retried_500(fw, serve):
    # A 500 tells eval-protocol to retry the same hopeless body; json.loads' RecursionError was a 500.
    st = serve()
    deep_list = b"[" * 100_000 + b"]" * 100_000
    deep_obj = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    body = init_body(fw)
    body["completion_params"]["extra_body"] = {"x": json.loads("[" * 500 + "]" * 500)}  # loads, but too deep
    nan = init_body(fw)
    nan["completion_params"]["temperature"] = float("nan")  # json.dumps writes NaN; the policy call broke (502)
    inf = init_body(fw)
    inf["completion_params"]["top_p"] = float("inf")
    for content in (deep_list, deep_obj, json.dumps(body).encode(), json.dumps(nan).encode(), json.dumps(inf).encode()):
        r = _post(st, content=content, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json()["kind"] == "bad_request"
    assert chat_calls(fw) == []
    ok = init_body(fw)  # a normal request still works, including a moderately nested tools schema
    ok["completion_params"]["extra_body"] = {"x": json.loads("[" * 40 + "]" * 40)}
    assert _post(st, json=ok).status_code == 200


@pytest.mark.parametrize(
    "key",
    ["fw-key\r\nX-Injected: 1", "fw-ключ-0123456789", "fw key with spaces", "k" * 5000, "fw-key\x00nul"],
    ids=["crlf", "non_ascii", "spaces", "huge", "nul"],
)
def test_malformed_api_key_is_400_without_outbound_call_or_echo(fw, serve, caplog, key):
    # Such keys failed inside the HTTP client as 502 "unreachable"/"malformed" (retried by
    # eval-protocol) after a policy attempt, and the gateway report was attempted with them too.
    import logging

    caplog.set_level(logging.DEBUG)
    st = serve()
    r = _post(st, json=init_body(fw, api_key=key))
    assert r.status_code == 400, r.text
    assert r.json()["kind"] == "bad_api_key"
    assert fw.requests == []  # neither the policy nor the gateway was called
    fragment = key.strip()[:12]
    assert fragment not in r.text
    assert all(fragment not in rec.getMessage() for rec in caplog.records)


@pytest.mark.parametrize(
    "rid", ["r\u2028forged", "r\x85forged", "r\u202eevil", "r\u00e9"], ids=["u2028", "nel", "rtl_override", "latin1"]
)
def test_non_ascii_ids_are_400(fw, serve, caplog, rid):
    # U+2028 / NEL passed the old check (ord >= 0x21) and were written into log lines.
    import logging

    caplog.set_level(logging.INFO, logger="svgrft")
    st = serve()
    r = _post(st, json=init_body(fw, rollout_id=rid))
    assert r.status_code == 400 and "rollout_id" in r.json()["error"], r.text
    assert r.json()["rollout_id"] is None
    assert chat_calls(fw) == []
    assert all(rid not in rec.getMessage() for rec in caplog.records)


def test_rollout_server_handles_odd_policy_bodies(fw, serve, canned):
    # choices that are not a list were an AttributeError → 500 "internal" (a server bug to Eval Protocol);
    # NaN usage went into the gateway log's JSON as-is.
    port = canned.url.split(":")[2].split("/")[0]
    st = serve(allow_model_hosts=[f"127.0.0.1:{port}"])

    body = init_body(fw)
    body["model_base_url"] = canned.url  # a direct (non-gateway) endpoint: the status goes to the default gateway
    canned.answer({"choices": "nope"})
    r = _post(st, json=body)
    assert r.status_code == 502 and r.json()["kind"] == "upstream_malformed", r.text

    body = init_body(fw)
    body["model_base_url"] = canned.url
    raw = json.dumps(completion("```svg\n<svg/>\n```", {"prompt_tokens": 1, "completion_tokens": 2}))
    canned.answer(raw.replace('"prompt_tokens": 1', '"prompt_tokens": NaN').encode())
    r = _post(st, json=body)
    assert r.status_code == 200 and r.json()["svg_found"] is True, r.text
    logs = gateway_logs(fw, body["metadata"]["rollout_id"])
    assert logs and logs[-1]["extras"]["usage"] == {"prompt_tokens": 0, "completion_tokens": 2, "total_tokens": 0}


@pytest.mark.parametrize("retry_after,expected", [("inf", "3600"), ("1e308", "3600"), ("nan", "1"), ("7", "7")])
def test_upstream_retry_after_is_clamped(fw, serve, canned, retry_after, expected):
    # Retry-After: inf raised OverflowError inside the error mapping: a 500 "internal" instead of a 429
    port = canned.url.split(":")[2].split("/")[0]
    st = serve(allow_model_hosts=[f"127.0.0.1:{port}"], policy_retries=0)
    canned.answer({"error": {"message": "slow down"}}, status=429, headers={"Retry-After": retry_after})
    body = init_body(fw)
    body["model_base_url"] = canned.url
    r = _post(st, json=body)
    assert r.status_code == 429 and r.json()["kind"] == "rate_limited", r.text
    assert r.headers["retry-after"] == expected


def test_rollout_server_bounds_a_policy_that_streams_forever(fw, serve, trickle, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    port = trickle.url.split(":")[2].split("/")[0]
    st = serve(allow_model_hosts=[f"127.0.0.1:{port}"], rollout_timeout=0.5, policy_retries=0)
    key = "fw-streams-forever-key-0123456789"
    body = init_body(fw, api_key=key)
    body["model_base_url"] = trickle.url
    r = _post(st, json=body)  # httpx's own 60 s timeout is the hang guard here
    assert r.status_code == 408 and r.json()["kind"] == "timeout", r.text
    assert trickle.hits == 1
    assert key not in r.text and all(key not in rec.getMessage() for rec in caplog.records)
    assert gateway_logs(fw, body["metadata"]["rollout_id"]) == []  # the fake gateway does not know this key


def test_status_report_to_a_trickling_gateway_is_bounded(trickle):
    """eval-protocol's log handler only has a per-read timeout: the reporter's own deadline must end the wait."""
    import asyncio
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from svgrft.server.status_report import GatewayReporter

    reporter = GatewayReporter(threads=2, deadline=0.5)

    async def go():
        return await asyncio.wait_for(
            reporter.report(
                gateway=trickle.url,
                api_key="fw-test-trickle-0123456789",
                rollout_id="r-1",
                code=100,
                message="Rollout r-1 finished",
            ),
            timeout=60,
        )  # a hang detector, not a timing assertion

    try:
        ok = asyncio.run(go())
    except asyncio.TimeoutError:
        pytest.fail("the status report waited for a trickling gateway forever")
    finally:
        trickle.stop_event.set()
        reporter.close()
    assert ok is False
    assert reporter.timed_out == 1 and reporter.failed == 1
    assert trickle.hits == 1
