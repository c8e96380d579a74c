"""Load test of `svgrft serve`: N concurrent POST /init against a real server process, the fake
Fireworks tracing gateway and policy on loopback (the fake policy sleeps --policy-latency seconds).

Prints throughput (rollouts/s), the latency the server adds over the policy call it makes
(client-observed /init time minus the policy-call time the server measured: parsing, validation,
scheduling, the status log POST to the gateway), and checks that no rollout was lost (every
rollout id has a terminal status log and a trace on the gateway).

Usage: python benchmarks/serve_load.py [--n 200] [--policy-latency 0.2] [--workers 1] [--rounds 1]
tests/test_serve_e2e.py imports the functions below for its bounded load test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH_KEY = "fw-bench-key-0123456789abcdef"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without keys/endpoints of svgrft, Fireworks, OpenAI or eval-protocol."""
    prefixes = ("FIREWORKS_", "OPENAI_", "SVGRFT_", "EP_", "FW_TRACING", "GATEWAY_URL", "WANDB_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def start_server(
    args: list[str], env: dict[str, str], cwd: str | Path, log_path: str | Path, timeout: float = 120.0
) -> tuple[subprocess.Popen, str]:
    """``svgrft serve ARGS`` in a subprocess (stderr → log_path); returns once GET / answers."""
    import httpx

    port = free_port()
    log = open(log_path, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "svgrft", "serve", "--port", str(port), *args],
        env=env,
        cwd=str(cwd),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"svgrft serve exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(url + "/", timeout=1.0).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError(f"svgrft serve did not become healthy in {timeout:g}s; see {log_path}")


def stop_server(proc: subprocess.Popen, timeout: float = 60.0) -> int | None:
    """SIGTERM (graceful: in-flight rollouts finish), then SIGKILL if it hangs; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def init_body(
    gateway_url: str,
    rollout_id: str,
    api_key: str,
    *,
    prompt: str = "Draw a red apple on a table.",
    model: str = "fireworks_ai/accounts/fireworks/models/qwen3-0p6b",
) -> dict:
    """An InitRequest as eval-protocol's RemoteRolloutProcessor builds it (tagged gateway URL)."""
    meta = {
        "invocation_id": "inv-load",
        "experiment_id": "exp-load",
        "rollout_id": rollout_id,
        "run_id": "run-0",
        "row_id": "row-" + rollout_id[-4:],
    }
    url = (
        f"{gateway_url}/rollout_id/{rollout_id}/invocation_id/inv-load/experiment_id/exp-load"
        f"/run_id/run-0/row_id/{meta['row_id']}"
    )
    return {
        "completion_params": {"model": model, "temperature": 0.8, "max_tokens": 4096},
        "messages": [{"role": "user", "content": prompt}],
        "tools": None,
        "model_base_url": url,
        "metadata": meta,
        "api_key": api_key,
    }


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    xs = sorted(values)
    k = max(0, min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


@dataclass
class LoadResult:
    n: int
    wall_s: float
    statuses: Counter
    added_s: list[float] = field(default_factory=list)
    policy_s: list[float] = field(default_factory=list)
    report_s: list[float] = field(default_factory=list)
    server_s: list[float] = field(default_factory=list)  # handler time minus policy call
    total_s: list[float] = field(default_factory=list)  # client-observed /init time
    errors: list[str] = field(default_factory=list)
    rollout_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def throughput(self) -> float:
        return self.ok / self.wall_s if self.wall_s > 0 else float("nan")

    def summary(self) -> str:
        return (
            f"{self.n} concurrent /init: {self.ok} ok, statuses {dict(self.statuses)}, "
            f"wall {self.wall_s:.2f}s, throughput {self.throughput:.1f} rollouts/s, "
            f"added latency over the policy call p50 {percentile(self.added_s, 50) * 1000:.0f} ms, "
            f"p95 {percentile(self.added_s, 95) * 1000:.0f} ms, max {max(self.added_s or [0]) * 1000:.0f} ms "
            f"(inside the /init handler p95 {percentile(self.server_s, 95) * 1000:.0f} ms, "
            f"of which the gateway status POST p95 {percentile(self.report_s, 95) * 1000:.0f} ms; "
            f"policy call as the server saw it p50 {percentile(self.policy_s, 50) * 1000:.0f} ms, "
            f"p95 {percentile(self.policy_s, 95) * 1000:.0f} ms)"
        )


async def run_load(
    server_url: str, bodies: list[dict], headers: dict | None = None, timeout: float = 600.0
) -> LoadResult:
    """POST every body at once, with aiohttp like eval-protocol's RemoteRolloutProcessor (one session,
    no connection limit); per request, added = client time − the server's policy-call time."""
    import aiohttp

    start = asyncio.Event()
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as session:

        async def one(body: dict):
            await start.wait()
            t0 = time.perf_counter()
            try:
                async with session.post(server_url + "/init", json=body) as resp:
                    raw = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                return None, time.perf_counter() - t0, None, f"{type(e).__name__}: {e}"
            took = time.perf_counter() - t0
            try:
                data = json.loads(raw)
            except ValueError:
                data = {}
            return status, took, data, None

        tasks = [asyncio.create_task(one(b)) for b in bodies]
        await asyncio.sleep(0)
        t_start = time.perf_counter()
        start.set()
        results = await asyncio.gather(*tasks)
        wall = time.perf_counter() - t_start
    res = LoadResult(
        n=len(bodies), wall_s=wall, statuses=Counter(), rollout_ids=[b["metadata"]["rollout_id"] for b in bodies]
    )
    for status, took, data, err in results:
        res.statuses[status] += 1
        if err:
            res.errors.append(err)
        elif status == 200 and isinstance(data, dict) and isinstance(data.get("latency_s"), (int, float)):
            res.policy_s.append(float(data["latency_s"]))
            res.total_s.append(took)
            res.added_s.append(max(0.0, took - float(data["latency_s"])))
            if isinstance(data.get("report_s"), (int, float)):
                res.report_s.append(float(data["report_s"]))
            if isinstance(data.get("server_s"), (int, float)):
                res.server_s.append(max(0.0, float(data["server_s"]) - float(data["latency_s"])))
        elif status != 200:
            res.errors.append(f"{status}: {str(data)[:200]}")
    return res


def lost_rollouts(fake, rollout_ids: list[str], code: int = 100) -> list[str]:
    """Rollout ids without a terminal status log ``code`` and a trace on the fake gateway."""
    with_status = set()
    for entry in fake.logs:
        st = entry.get("status") or {}
        if st.get("code") == code:
            for tag in entry["tags"]:
                if tag.startswith("rollout_id:"):
                    with_status.add(tag[len("rollout_id:") :])
    traced = set()
    for tr in fake.traces:
        for tag in tr["tags"]:
            if tag.startswith("rollout_id:"):
                traced.add(tag[len("rollout_id:") :])
    return [rid for rid in rollout_ids if rid not in with_status or rid not in traced]


FAKE_RUNNER = """
import sys, time
sys.path.insert(0, sys.argv[1])
# the fakes listen with a backlog of 1024, so hundreds of simultaneous connections are not dropped
from tests.fakes import start_fireworks
fw = start_fireworks(api_keys={sys.argv[2]: "acct"}, latency=float(sys.argv[3]))
print(fw.port, flush=True)
sys.stdin.read()  # until the parent closes stdin
fw.stop()
"""


def start_fake_process(latency: float, key: str = BENCH_KEY) -> tuple[subprocess.Popen, int]:
    """The fake Fireworks (policy + tracing gateway) in its own process, so it does not share the
    load generator's interpreter lock; returns (process, port)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", FAKE_RUNNER, str(REPO), key, str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=clean_env(),
        text=True,
    )
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise RuntimeError("the fake Fireworks process did not start")
    return proc, int(line)


async def lost_rollouts_http(gateway_url: str, key: str, rollout_ids: list[str], code: int = 100) -> list[str]:
    """Like :func:`lost_rollouts`, through the gateway's HTTP API (what eval-protocol reads)."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    sem = asyncio.Semaphore(16)
    async with httpx.AsyncClient(headers=headers, timeout=60) as client:

        async def check(rid: str) -> bool:
            async with sem:
                st = (await client.get(gateway_url + "/v1/status", params={"rollout_id": rid})).json()
                tr = (
                    await client.get(gateway_url + "/v1/traces/pointwise", params={"tags": f"rollout_id:{rid}"})
                ).json()
            return (st.get("status") or {}).get("code") == code and bool(tr.get("traces"))

        ok = await asyncio.gather(*(check(r) for r in rollout_ids))
    return [rid for rid, good in zip(rollout_ids, ok) if not good]


async def direct_baseline(gateway_url: str, key: str, n: int) -> list[float]:
    """Latencies of n concurrent policy calls made directly (no svgrft serve): the fake's own latency."""
    import aiohttp

    bodies = [init_body(gateway_url, f"direct-{i}-{uuid.uuid4().hex[:6]}", key) for i in range(n)]
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), headers={"Authorization": f"Bearer {key}"}
    ) as session:

        async def one(b: dict) -> float:
            t0 = time.perf_counter()
            async with session.post(
                b["model_base_url"] + "/chat/completions", json={**b["completion_params"], "messages": b["messages"]}
            ) as resp:
                await resp.read()
                resp.raise_for_status()
            return time.perf_counter() - t0

        return list(await asyncio.gather(*(one(b) for b in bodies)))


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its direct children (Linux /proc), 0.0 elsewhere."""

    def one(p: str) -> tuple[int, float]:
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    total = 0.0
    try:
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    ppid, cpu = one(p)
                except (OSError, IndexError, ValueError):
                    continue
                if int(p) == pid or ppid == pid:
                    total += cpu
    except OSError:
        return 0.0
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="concurrent /init requests per round")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--policy-latency", type=float, default=0.2, help="seconds the fake policy sleeps per call")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()

    import tempfile

    fake, port = start_fake_process(args.policy_latency)
    gateway = f"http://localhost:{port}"
    tmp = Path(tempfile.mkdtemp(prefix="svgrft-serve-load-"))
    log_path = tmp / "serve.log"
    proc = None
    try:
        proc, url = start_server(
            [
                "--allow-model-host",
                "localhost",
                "--rate-limit",
                "0",
                "--max-concurrent",
                str(max(256, args.n)),
                "--workers",
                str(args.workers),
            ],
            clean_env(),
            tmp,
            log_path,
        )
        warm = [init_body(gateway, f"warm-{i}-{uuid.uuid4().hex[:6]}", BENCH_KEY) for i in range(8)]
        asyncio.run(run_load(url, warm))
        print(
            f"svgrft serve load test: fake policy sleeps {args.policy_latency * 1000:.0f} ms per call, "
            f"{args.workers} server worker(s), {os.cpu_count()} CPUs shared by client, server and fake"
        )
        base = asyncio.run(direct_baseline(gateway, BENCH_KEY, args.n))
        print(
            f"baseline: {args.n} concurrent policy calls straight to the fake: p50 {percentile(base, 50) * 1000:.0f} ms, "
            f"p95 {percentile(base, 95) * 1000:.0f} ms"
        )
        for rnd in range(args.rounds):
            bodies = [init_body(gateway, f"load-{rnd}-{i}-{uuid.uuid4().hex[:6]}", BENCH_KEY) for i in range(args.n)]
            cpu0 = cpu_seconds(proc.pid)
            res = asyncio.run(run_load(url, bodies))
            cpu = cpu_seconds(proc.pid) - cpu0
            lost = asyncio.run(lost_rollouts_http(gateway, BENCH_KEY, res.rollout_ids))
            print(f"round {rnd + 1}: {res.summary()}; lost rollouts: {len(lost)}")
            print(
                f"  end to end /init p50 {percentile(res.total_s, 50) * 1000:.0f} ms, "
                f"p95 {percentile(res.total_s, 95) * 1000:.0f} ms = baseline p95 + "
                f"{(percentile(res.total_s, 95) - percentile(base, 95)) * 1000:.0f} ms; "
                f"server CPU {cpu * 1000 / max(1, res.ok):.1f} ms per rollout"
            )
            for e in res.errors[:5]:
                print("  error:", e)
    finally:
        code = stop_server(proc) if proc is not None else None
        fake.stdin.close()
        fake.wait(timeout=30)
    print(f"server stopped gracefully (exit {code}, -15 = re-raised SIGTERM after shutdown); log: {log_path}")


if __name__ == "__main__":
    main()
