"""The rollout server is not an open relay for the owner's API key (issue #9): shared-secret token,
no silent use of the server's key, model-host allow-list, rate limit and concurrency cap.
Assertions on "no outbound call" read the fakes' request logs."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest

from tests.conftest import FW_KEY
from tests.fakes import key_fingerprint
from tests.test_serve import chat_calls, gated_policy, gateway_logs, init_body, serve  # noqa: F401 (fixture)

TOKEN = "serve-token-0123456789abcdefXYZ"


# ------------------------------------------------------------------------------------------ token


def test_token_required_when_set(fw, serve, caplog):
    caplog.set_level(logging.INFO, logger="svgrft")
    st = serve(token=TOKEN)
    body = init_body(fw)

    r = httpx.post(st.url + "/init", json=body)
    assert r.status_code == 401 and r.json()["kind"] == "unauthorized" and "missing" in r.json()["error"]
    assert r.headers["www-authenticate"] == "Bearer"
    r = httpx.post(st.url + "/init", json=body, headers={"Authorization": "Bearer wrong-token-123456789"})
    assert r.status_code == 401 and "wrong" in r.json()["error"]
    r = httpx.post(st.url + "/init", json=body, headers={"Authorization": TOKEN})  # no scheme
    assert r.status_code == 401
    assert fw.requests == []  # nothing left the server for refused requests

    r = httpx.post(st.url + "/init", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert r.status_code == 200, r.text
    assert len(chat_calls(fw)) == 1
    assert httpx.get(st.url + "/").json()["auth"] == "token"
    # the token never shows up in answers or logs
    assert all(TOKEN not in rec.getMessage() for rec in caplog.records)
    assert not any("unauthenticated" in rec.getMessage() for rec in caplog.records)


def test_token_from_environment(fw, serve, monkeypatch):
    monkeypatch.setenv("SVGRFT_SERVE_TOKEN", TOKEN)
    st = serve()  # token=None: taken from SVGRFT_SERVE_TOKEN via settings
    assert httpx.post(st.url + "/init", json=init_body(fw)).status_code == 401
    r = httpx.post(st.url + "/init", json=init_body(fw), headers={"Authorization": f"bearer {TOKEN}"}, timeout=60)
    assert r.status_code == 200, r.text


def test_unauthenticated_server_warns_once_at_startup(fw, serve, caplog):
    caplog.set_level(logging.INFO, logger="svgrft")
    st = serve()
    for _ in range(3):
        assert httpx.post(st.url + "/init", json=init_body(fw), timeout=60).status_code == 200
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "unauthenticated" in r.getMessage()]
    assert len(warnings) == 1


# ------------------------------------------------------------------------------------------ server key


def test_request_without_api_key_is_401_and_makes_no_outbound_call(fw, serve):
    st = serve()
    body = init_body(fw, api_key=None)
    r = httpx.post(st.url + "/init", json=body)
    assert r.status_code == 401
    data = r.json()
    assert data["kind"] == "no_api_key" and data["rollout_id"] == body["metadata"]["rollout_id"]
    assert "--allow-server-key" in data["hint"]
    assert fw.requests == []  # not the policy, not even a gateway log
    body["api_key"] = "   "
    assert httpx.post(st.url + "/init", json=body).status_code == 401
    assert fw.requests == []


def test_server_key_only_with_allow_server_key(fw, serve):
    st = serve(allow_server_key=True)  # FIREWORKS_API_KEY is set by the fw fixture
    body = init_body(fw, api_key=None)
    r = httpx.post(st.url + "/init", json=body, timeout=60)
    assert r.status_code == 200, r.text
    calls = chat_calls(fw, body["metadata"]["rollout_id"])
    assert len(calls) == 1 and calls[0].headers["authorization"].endswith(f"{key_fingerprint(FW_KEY)}>")


def test_request_key_wins_over_server_key(fw, serve):
    other = "fw-second-key-abcdefghijklmnop"
    fw.api_keys[other] = "acct"
    st = serve(allow_server_key=True)
    body = init_body(fw, api_key=other)
    assert httpx.post(st.url + "/init", json=body, timeout=60).status_code == 200
    calls = chat_calls(fw, body["metadata"]["rollout_id"])
    assert calls[0].headers["authorization"].endswith(f"{key_fingerprint(other)}>")


def test_request_key_never_in_answers_or_logs(fw, serve, caplog):
    caplog.set_level(logging.DEBUG)
    st = serve()
    key = "fw-leaky-key-ZZZZ0123456789"
    answers = []
    for body in (
        init_body(fw, api_key=key),  # refused upstream: 403
        {**init_body(fw, api_key=key), "messages": []},  # 400
        {**init_body(fw, api_key=key), "model_base_url": "https://evil.example/v1"},  # 400 host
        {"api_key": key, "metadata": {"rollout_id": "x"}},
    ):  # 400 invalid
        answers.append(httpx.post(st.url + "/init", json=body, timeout=60))
    assert [a.status_code for a in answers] == [403, 400, 400, 400]
    for a in answers:
        assert key not in a.text and key[:-4] not in a.text
    for rec in caplog.records:
        assert key not in rec.getMessage()
    # a key of the wrong type is not echoed by the validation error either
    r = httpx.post(st.url + "/init", json={**init_body(fw), "api_key": {"k": key}})
    assert r.status_code == 400 and key not in r.text


# ------------------------------------------------------------------------------------------ model host allow-list


@pytest.mark.parametrize(
    "url",
    [
        "{oai}/v1",  # a loopback host:port that is not allowed
        "https://evil.example.com/v1",  # an arbitrary host
        "http://localhost:{dead}/rollout_id/r/x",  # right host name, other port
        "http://localhost:1@evil.example.com/v1",  # credentials trick
        "ftp://tracing.fireworks.ai/x",  # wrong scheme
        "http://tracing.fireworks.ai/rollout_id/r/x",  # allowed host but plain http
        "https://tracing.fireworks.ai.evil.com/x",  # suffix trick
        "https://tracing.fireworks.ai/x?redirect=1",  # query
        "https://tracing.fireworks.ai\r\n/x",  # header injection attempt
    ],
)
def test_model_base_url_outside_allow_list_is_400_without_outbound_call(fw, oai, serve, url):
    st = serve()
    body = init_body(fw)
    body["model_base_url"] = url.format(oai=oai.url, dead=oai.port)
    r = httpx.post(st.url + "/init", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["kind"] == "model_host_not_allowed" and r.json()["rollout_id"] == body["metadata"]["rollout_id"]
    assert fw.requests == [] and oai.requests == []


def test_allow_model_host_adds_hosts(fw, serve, monkeypatch):
    monkeypatch.delenv("FIREWORKS_TRACING_BASE_URL")  # the configured gateway is allowed by default
    monkeypatch.delenv("FIREWORKS_INFERENCE_BASE_URL")
    body = init_body(fw)
    st = serve()
    assert httpx.post(st.url + "/init", json=body).status_code == 400
    assert fw.requests == []
    st2 = serve(allow_model_hosts=["localhost"])
    r = httpx.post(st2.url + "/init", json=body, timeout=60)
    assert r.status_code == 200, r.text
    # the status went to the gateway named by the tagged model_base_url
    assert [e["status"]["code"] for e in gateway_logs(fw, body["metadata"]["rollout_id"])] == [100]


def test_host_allow_list_rules():
    from svgrft.server.guard import HostAllowList

    allow = HostAllowList(["tracing.fireworks.ai", "*.example.org", "localhost:8080", "http://10.0.0.5"])
    ok = [
        "https://tracing.fireworks.ai/rollout_id/r",
        "https://a.example.org/v1",
        "https://a.b.example.org",
        "http://localhost:8080/x",
        "https://10.0.0.5/v1",
        "https://TRACING.fireworks.ai./x",
    ]
    bad = [
        "https://example.org/v1",
        "http://localhost:8081/x",
        "http://localhost/x",
        "http://10.0.0.5/v1",
        "https://u:p@tracing.fireworks.ai/x",
        "https://tracing.fireworks.ai:99999/x",
        "tracing.fireworks.ai",
        "https://tracing.fireworks.ai/x#frag",
        "",
        "https:///x",
    ]
    assert [u for u in ok if allow.check(u) is not None] == []
    assert [u for u in bad if allow.check(u) is None] == []
    for entry in ("", "a b", "x/y", "user@host"):
        with pytest.raises(ValueError):
            HostAllowList([entry])


# ------------------------------------------------------------------------------------------ rate limit & cap


def test_rate_limit_per_client_is_429_with_retry_after(fw, serve):
    st = serve(rate_limit=0.01, rate_burst=2)  # 2 at once, then one per 100 s
    codes = [httpx.post(st.url + "/init", json=init_body(fw), timeout=60) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    r = codes[2]
    assert r.json()["kind"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1
    assert len(chat_calls(fw)) == 2


def test_rate_limiter_refills_and_bounds_clients():
    from svgrft.server.guard import RateLimiter

    now = [0.0]
    rl = RateLimiter(2.0, 2, max_clients=3, clock=lambda: now[0])
    assert [rl.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.5]
    now[0] += 0.5
    assert rl.acquire("a") == 0.0 and rl.acquire("a") > 0
    assert rl.acquire("b") == 0.0  # clients are independent
    for c in "cdef":
        rl.acquire(c)
    assert len(rl._buckets) == 3
    assert RateLimiter(0, 5).acquire("x") == 0.0  # disabled


def test_concurrency_cap_is_429_with_retry_after(fw, serve):
    gate = threading.Event()
    gated_policy(fw, gate=gate)
    st = serve(max_concurrent=1)
    out: dict = {}

    def first() -> None:
        out["r"] = httpx.post(st.url + "/init", json=init_body(fw), timeout=60)

    t = threading.Thread(target=first)
    t.start()
    deadline = time.monotonic() + 30
    while st.app.state.cap.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    body = init_body(fw)
    r = httpx.post(st.url + "/init", json=body, timeout=60)
    gate.set()
    t.join()
    assert out["r"].status_code == 200
    assert r.status_code == 429 and r.json()["kind"] == "too_many_rollouts"
    assert r.json()["rollout_id"] == body["metadata"]["rollout_id"] and r.headers["retry-after"] == "1"
    assert chat_calls(fw, body["metadata"]["rollout_id"]) == []
    # the slot is free again
    assert httpx.post(st.url + "/init", json=init_body(fw), timeout=60).status_code == 200


# --- the allow-list compares only plain hosts (folded from test_qa_core.py) ---


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.com\\.fireworks.ai/v1",  # "\\" is a path separator to WHATWG parsers; yarl refuses it (502)
        "https://evil.com%2f.fireworks.ai/v1",  # percent-escapes in a host
        "https://evil.com;.fireworks.ai/v1",
        "https://evil.com\uff0e.fireworks.ai/v1",  # fullwidth dot: IDNA maps it to "."
        "https://evil\u3002x.fireworks.ai/v1",  # ideographic full stop
        "https://\uff54racing.fireworks.ai/v1",  # fullwidth letter
        "https://a..fireworks.ai/v1",  # empty label
    ],
)
def test_allow_list_compares_only_plain_hosts(url):
    from svgrft.server.guard import HostAllowList

    allow = HostAllowList(["tracing.fireworks.ai", "*.fireworks.ai"])
    assert allow.check(url) is not None
    for ok in (
        "https://tracing.fireworks.ai/v1",
        "https://TRACING.fireworks.ai./v1",
        "https://a-b.c_d.fireworks.ai",
        "https://xn--e1afmkfd.fireworks.ai/v1",
    ):
        assert allow.check(ok) is None, ok
    assert HostAllowList(["127.0.0.1", "::1"]).check("http://[0:0::1]:9/v1") is None  # a bare IPv6 rule works
