"""End to end: eval-protocol's real RemoteRolloutProcessor (as the svgrft evaluator builds it in
remote mode, with the serve token) → `svgrft serve` (the real CLI, a subprocess on loopback) → the
fake Fireworks tracing gateway and policy; rows come back with the SVG and are scored by the svgrft
evaluator (render in Chromium + fake vision judge). Also: error paths through the processor, a
bounded load test (≥ 200 concurrent /init) and a graceful SIGTERM stop.

One server process for the module (importing eval-protocol costs seconds); it is started with
``--allow-model-host localhost`` because eval-protocol only tags model_base_url for
``http://localhost…`` bases.
"""

from __future__ import annotations

import asyncio
import importlib.util
import signal
import sys
import threading
import time
import types
import uuid

import httpx
import pytest

from tests.conftest import CORPUS, FW_KEY, OPENAI_KEY, REPO, SEED

TOKEN = "e2e-serve-token-0123456789abcdef"
ROWS = 4


def _bench():
    spec = importlib.util.spec_from_file_location("svgrft_serve_load", REPO / "benchmarks" / "serve_load.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look the module up
    spec.loader.exec_module(mod)
    return mod


bench = _bench()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.fakes import start_fireworks, start_openai

    tmp = tmp_path_factory.mktemp("serve-e2e")
    fw = start_fireworks(api_keys={FW_KEY: "acct"})  # the fakes listen with a backlog of 1024
    oai = start_openai(api_key=OPENAI_KEY, corpus_dir=CORPUS)
    log_path = tmp / "serve.log"
    env = bench.clean_env(SVGRFT_SERVE_TOKEN=TOKEN)
    proc, url = bench.start_server(
        ["--allow-model-host", "localhost", "--policy-retries", "0", "--rollout-timeout", "60"], env, tmp, log_path
    )
    ns = types.SimpleNamespace(fw=fw, oai=oai, proc=proc, url=url, log_path=log_path, tmp=tmp)
    yield ns
    bench.stop_server(proc)
    fw.stop()
    oai.stop()


@pytest.fixture
def ep_env(stack, monkeypatch):
    """The evaluator side's environment: its Fireworks key, the serve token, the judge endpoint."""
    monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
    monkeypatch.setenv("SVGRFT_SERVE_TOKEN", TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", stack.oai.url + "/v1")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    stack.fw.faults.clear()
    return stack


def evaluator_cfg(stack) -> dict:
    return {
        "rollout": {
            "mode": "remote",
            "server_url": stack.url,
            "model_base_url": stack.fw.localhost_url,
            "poll_interval": 0.05,
            "timeout_seconds": 30,
        }
    }


def make_rows(n: int, tag: str):
    """EvaluationRows from the SVGBench quickstart file, with the ids eval-protocol assigns."""
    from eval_protocol.models import EvaluationRow, ExecutionMetadata

    from svgrft.core.dataset import load_dataset

    rows = []
    for i, d in enumerate(load_dataset(SEED / "quickstart_svgbench_dataset.jsonl")[:n]):
        row = EvaluationRow(**d.to_json())
        row.execution_metadata = ExecutionMetadata(
            invocation_id="inv-e2e",
            experiment_id=f"exp-{tag}",
            rollout_id=f"{tag}-{i}-{uuid.uuid4().hex[:8]}",
            run_id="run-0",
        )
        rows.append(row)
    return rows


def run_processor(processor, rows, max_tries: int = 3):
    """eval-protocol's own rollout loop (rollout_processor_with_retry) with fast backoff."""
    from eval_protocol.dataset_logger.dataset_logger import DatasetLogger
    from eval_protocol.pytest.evaluation_test_utils import rollout_processor_with_retry
    from eval_protocol.pytest.exception_config import BackoffConfig, ExceptionHandlerConfig
    from eval_protocol.pytest.types import RolloutProcessorConfig

    class NullLogger(DatasetLogger):
        def log(self, row):
            return None

        def read(self, row_id=None):
            return []

    async def go():
        config = RolloutProcessorConfig(
            completion_params={"model": "accounts/fireworks/models/qwen3-0p6b", "temperature": 0.8, "max_tokens": 4096},
            mcp_config_path="",
            semaphore=asyncio.Semaphore(16),
            logger=NullLogger(),
            exception_handler_config=ExceptionHandlerConfig(
                backoff_config=BackoffConfig(base_delay=0.05, max_delay=0.2, max_tries=max_tries)
            ),
        )
        try:
            return [r async for r in rollout_processor_with_retry(processor, rows, config, disable_tqdm=True)]
        finally:
            await processor.acleanup()

    return {r.execution_metadata.rollout_id: r for r in asyncio.run(go())}


def remote_processor(stack):
    from svgrft.evaluator import runtime

    return runtime.make_rollout_processor(evaluator_cfg(stack))


def server_log(stack) -> str:
    return stack.log_path.read_text(encoding="utf-8", errors="replace")


# ------------------------------------------------------------------------------------------ the happy path


def test_remote_processor_gets_svg_rows_and_the_evaluator_scores_them(ep_env):
    from eval_protocol.models import Status

    from svgrft.core.extract import extract_svg
    from svgrft.evaluator import runtime

    stack = ep_env
    rows = make_rows(ROWS, "ok")
    ids = [r.execution_metadata.rollout_id for r in rows]
    out = run_processor(remote_processor(stack), rows)
    assert sorted(out) == sorted(ids)
    for rid, row in out.items():
        assert row.rollout_status.code == Status.Code.FINISHED, (rid, row.rollout_status)
        last = row.messages[-1]
        assert last.role == "assistant"
        assert extract_svg(last.content).svg is not None
        assert row.messages[0].role == "user" and "Requirements" in row.messages[0].content
        meta = row.execution_metadata
        assert meta.rollout_id == rid and meta.experiment_id == "exp-ok" and meta.invocation_id == "inv-e2e"
        # the server's status-log extras reach the row
        assert meta.extra["svgrft_server"] and meta.extra["svg_found"] is True
        assert meta.extra["policy_latency_s"] >= 0
        assert row.input_metadata.dataset_info["requirements"]
    # one policy call per rollout, through the tagged gateway path, with the evaluator's key
    for rid in ids:
        calls = [c for c in stack.fw.calls("POST") if f"/rollout_id/{rid}/" in c.path]
        assert len(calls) == 1 and calls[0].json["model"] == "fireworks_ai/accounts/fireworks/models/qwen3-0p6b"

    async def score_all():
        try:
            return [await runtime.score_row(row, {}) for row in out.values()]
        finally:
            for _, st in list(runtime._STATES.values()):
                if st.scorer is not None:
                    await st.scorer.aclose()
                if st.renderer is not None:
                    await st.renderer.close()
            runtime._STATES.clear()

    scored = asyncio.run(score_all())
    for row in scored:
        res = row.evaluation_result
        assert res.is_score_valid, res.reason
        assert 0.0 < res.score <= 1.0, res.reason
    assert len([c for c in stack.oai.requests if c.path.endswith("/chat/completions")]) >= ROWS  # judge calls


def test_without_the_token_the_server_refuses(ep_env, monkeypatch):
    from eval_protocol.models import Status

    stack = ep_env
    monkeypatch.delenv("SVGRFT_SERVE_TOKEN")
    rows = make_rows(1, "notoken")
    out = run_processor(remote_processor(stack), rows)
    row = out[rows[0].execution_metadata.rollout_id]
    assert row.rollout_status.code == Status.Code.INTERNAL  # eval-protocol's rollout_error
    assert "HTTP 401" in row.rollout_status.message
    assert [c for c in stack.fw.requests if rows[0].execution_metadata.rollout_id in c.path] == []


# ------------------------------------------------------------------------------------------ error paths


def test_policy_errors_through_the_processor(ep_env):
    from eval_protocol.models import Status

    stack = ep_env
    rows = make_rows(3, "err")
    limited, broken, missing = (r.execution_metadata.rollout_id for r in rows)
    fw = stack.fw
    fw.faults.add("POST", rf"/rollout_id/{limited}/.*chat/completions$", kind="429", times=None, retry_after=2)
    fw.faults.add("POST", rf"/rollout_id/{broken}/.*chat/completions$", kind="500", times=None)
    fw.faults.add("POST", rf"/rollout_id/{missing}/.*chat/completions$", kind="404", times=None)
    out = run_processor(remote_processor(stack), rows)

    def chat_calls(rid):
        return [c for c in fw.calls("POST") if f"/rollout_id/{rid}/" in c.path]

    def codes(rid):
        return [e["status"]["code"] for e in fw.logs if f"rollout_id:{rid}" in e["tags"] and e.get("status")]

    # 429 → HTTP 429: eval-protocol does not retry a 4xx /init; the gateway has RESOURCE_EXHAUSTED
    assert out[limited].rollout_status.code == Status.Code.INTERNAL
    assert "HTTP 429" in out[limited].rollout_status.message and limited in out[limited].rollout_status.message
    assert len(chat_calls(limited)) == 1 and codes(limited) == [8]
    # 500 → HTTP 502: retried by eval-protocol (same rollout id), every attempt logged UNAVAILABLE
    assert out[broken].rollout_status.code == Status.Code.INTERNAL
    assert "HTTP 502" in out[broken].rollout_status.message
    assert len(chat_calls(broken)) >= 2 and set(codes(broken)) == {14}
    # 404 → HTTP 404 NOT_FOUND
    assert "HTTP 404" in out[missing].rollout_status.message and codes(missing) == [5]
    # failed rows carry no assistant message: the evaluator scores them invalid, not as a crash
    from svgrft.evaluator.runtime import row_inputs

    for rid in (limited, broken, missing):
        reply, _, _, problem = row_inputs(out[rid])
        assert reply is None and "no assistant reply" in problem
    log = server_log(stack)
    assert f"rollout {limited} failed: 429" in log and f"rollout {missing} failed: 404" in log


# ------------------------------------------------------------------------------------------ load


def test_load_200_concurrent_inits_lose_no_rollout(ep_env, capsys):
    stack = ep_env
    n = 200
    stack.fw.latency = 0.2  # the fake policy's own latency
    try:
        bodies = [bench.init_body(stack.fw.localhost_url, f"load-{i}-{uuid.uuid4().hex[:8]}", FW_KEY) for i in range(n)]
        health0 = httpx.get(stack.url + "/").json()["rollouts"]
        res = asyncio.run(bench.run_load(stack.url, bodies, headers={"Authorization": f"Bearer {TOKEN}"}))
    finally:
        stack.fw.latency = 0.0
    with capsys.disabled():
        print(f"\nsvgrft serve load test (fake policy latency 200 ms): {res.summary()}")
    assert res.statuses == {200: n}, res.errors[:5]
    assert len(res.added_s) == n
    assert bench.lost_rollouts(stack.fw, res.rollout_ids) == []
    health = httpx.get(stack.url + "/").json()["rollouts"]
    assert health["finished"] - health0["finished"] == n and health["in_flight"] == 0
    # the request key and the token never reach the server's log
    log = server_log(stack)
    assert FW_KEY not in log and TOKEN not in log
    assert log.count("finished in") >= n


# ------------------------------------------------------------------------------------------ shutdown


def test_sigterm_finishes_in_flight_rollouts(ep_env):
    """Runs last: it stops the module's server."""
    stack = ep_env
    gate = threading.Event()
    original = stack.fw.policy
    stack.fw.policy = lambda model, messages, params: (gate.wait(30), original(model, messages, params))[1]
    body = bench.init_body(stack.fw.localhost_url, f"term-{uuid.uuid4().hex[:8]}", FW_KEY)
    rid = body["metadata"]["rollout_id"]
    out: dict = {}

    def call():
        out["r"] = httpx.post(stack.url + "/init", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)

    def refuses() -> bool:
        try:
            httpx.get(stack.url + "/", timeout=1)
        except httpx.TransportError:
            return True
        return False

    t = threading.Thread(target=call)
    try:
        t.start()
        deadline = time.monotonic() + 30
        while not [c for c in stack.fw.requests if f"/rollout_id/{rid}/" in c.path]:
            assert time.monotonic() < deadline, "the policy call never started"
            time.sleep(0.01)
        stack.proc.send_signal(signal.SIGTERM)
        while not refuses():
            assert time.monotonic() < deadline, "the server kept accepting connections after SIGTERM"
            time.sleep(0.02)
        assert stack.proc.poll() is None and "r" not in out  # stopped listening, still finishing the rollout
    finally:
        gate.set()
        t.join(timeout=60)
        stack.fw.policy = original
    stack.proc.wait(timeout=60)
    assert out["r"].status_code == 200 and out["r"].json()["status"] == "finished"
    assert [e["status"]["code"] for e in stack.fw.logs if f"rollout_id:{rid}" in e["tags"]] == [100]
    assert stack.proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop
    assert "Application shutdown complete" in server_log(stack)
