"""Benchmark of the local evaluation pipeline (``svgrft eval``) against the fake policy and judge.

    python benchmarks/eval_bench.py                 # 50 rows, judge latency 0 s then 0.5 s
    python benchmarks/eval_bench.py --rows 20 --judge-latency 1.0 --concurrency 16 --json

What it measures (fresh SVGRFT_HOME per cold run, so the judge cache starts empty):

1. **pipeline, zero-latency fakes** -- wall time of the whole ``run_eval`` (browser start included)
   versus **render-only**: the same SVGs rendered alone by a fresh Renderer with the same pool
   (browser start included). Their ratio is the pipeline overhead (target ≤ 1.25×).
2. **rerun** of the same evaluation: judge requests received by the fake (must be 0: cache).
3. **slow judge** (``--judge-latency``, default 0.5 s; policy and judge concurrency ``--concurrency``,
   default 16): wall time versus the bound ``1.5 × (render-only + rows × latency / concurrency)`` and
   the speed-up versus not overlapping (render-only + rows × latency, i.e. judging one by one).

The fakes run in a **separate process** (like real remote endpoints), so their CPU does not share
this process's GIL. By default the fake judge answers without decoding the PNG (the test fake decodes
it in pure Python, ~0.1 s of CPU per image, which would measure the fake, not the pipeline);
``--decoding-judge`` uses the test fake's image rule unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

KEY = "sk-bench-0123456789abcdef"


# ----------------------------------------------------------------------------- fake server process


def serve(judge_latency: float, policy_latency: float, decoding: bool) -> None:
    from tests.fakes._http import json_response
    from tests.fakes.openai_fake import REQ_LINE, FakeOpenAI
    from tests.fakes.policy import message_text

    class BenchFake(FakeOpenAI):
        def handle(self, req):
            if req.path.rstrip("/").endswith("/stats"):
                with self.lock:
                    return json_response(200, {"judge_calls": self.judge_calls, "policy_calls": self.policy_calls})
            return super().handle(req)

        def _policy(self, body, messages):
            if policy_latency:
                time.sleep(policy_latency)
            return super()._policy(body, messages)

        def _judge(self, body, messages, urls):
            if judge_latency:
                time.sleep(judge_latency)
            if decoding:
                return super()._judge(body, messages, urls)
            text = "\n".join(message_text(x) for x in messages if isinstance(x, dict) and x.get("role") == "user")
            n = len(REQ_LINE.findall(text))
            k = len(urls[-1]) % (n + 1) if n else 0  # deterministic per picture, no decoding
            with self.lock:
                self.judge_calls += 1
            content = json.dumps(
                {"verdicts": [{"index": i, "fulfilled": i <= k, "evidence": "bench"} for i in range(1, n + 1)]}
            )
            if "number_of_fulfilled_requirements" in json.dumps(body.get("response_format") or {}):
                content = json.dumps({"reasoning": "bench", "number_of_fulfilled_requirements": k})
            return self._reply(body, [content], messages)

    fake = BenchFake(
        api_keys=[KEY], corpus_dir=str(Path(os.environ.get("SVGRFT_CORPUS", REPO / "tests" / "data" / "svg-corpus")))
    ).start()
    print(fake.port, flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        fake.stop()


class FakeProcess:
    def __init__(self, judge_latency: float, decoding: bool, policy_latency: float = 0.0):
        args = [
            sys.executable,
            __file__,
            "--serve",
            "--judge-latency",
            str(judge_latency),
            "--policy-latency",
            str(policy_latency),
        ] + (["--decoding-judge"] if decoding else [])
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.close()
            raise RuntimeError(f"fake server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line)}"

    def stats(self) -> dict:
        import httpx

        return httpx.get(self.url + "/v1/stats", headers={"Authorization": f"Bearer {KEY}"}, timeout=10).json()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()


# ----------------------------------------------------------------------------- measurements


def write_rows(n: int, path: Path) -> Path:
    from svgrft.core.dataset import BUNDLED_DATASET

    lines = [ln for ln in BUNDLED_DATASET.read_text().splitlines() if ln.strip()]
    if len(lines) < n:
        raise SystemExit(f"the bundled dataset has only {len(lines)} rows")
    path.write_text("\n".join(lines[:n]) + "\n")
    return path


def pipeline(
    fake: FakeProcess, dataset: Path, home: Path, concurrency: int, judge_concurrency: int, pool: int
) -> tuple[float, dict]:
    from svgrft.config import load_settings
    from svgrft.workflow.model_eval import EvalOptions, run_eval

    os.environ.update(SVGRFT_HOME=str(home), OPENAI_API_KEY=KEY, OPENAI_BASE_URL=fake.url + "/v1")
    settings = load_settings(
        overrides={"judge.concurrency": judge_concurrency, "render.pool_size": pool, "eval.concurrency": concurrency}
    )
    opts = EvalOptions(
        model="qwen3-0p6b", base_url=fake.url + "/v1", dataset=str(dataset), samples=1, concurrency=concurrency
    )
    t0 = time.perf_counter()
    outcome = asyncio.run(run_eval(settings, opts))
    return time.perf_counter() - t0, outcome.summary


def render_only(svgs: list[str], pool: int) -> float:
    from svgrft.config import load_settings
    from svgrft.core.scoring import renderer_from_settings

    settings = load_settings(overrides={"render.pool_size": pool})

    async def go() -> float:
        t0 = time.perf_counter()
        r = renderer_from_settings(settings)
        await r.start()
        try:
            results = await asyncio.gather(*(r.render(s) for s in svgs))
        finally:
            await r.close()
        bad = [x.reason for x in results if not x.ok]
        if bad:
            print(f"warning: {len(bad)} renders failed: {bad[:2]}", file=sys.stderr)
        return time.perf_counter() - t0

    return asyncio.run(go())


def stored_svgs(home: Path, run_id: str) -> list[str]:
    from svgrft.core.store import Store

    os.environ["SVGRFT_HOME"] = str(home)
    with Store() as s:
        return [x.svg for x in s.samples(run_id) if x.svg]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=50)
    ap.add_argument("--judge-latency", type=float, default=0.5)
    ap.add_argument("--policy-latency", type=float, default=0.0)
    ap.add_argument("--concurrency", type=int, default=16, help="policy and judge concurrency of the slow-judge run")
    ap.add_argument("--pool", type=int, default=2, help="renderer pages (render.pool_size)")
    ap.add_argument("--decoding-judge", action="store_true", help="use the test fake's PNG-decoding judge rule")
    ap.add_argument("--repeat", type=int, default=3, help="cold runs per measurement (medians are reported)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        serve(a.judge_latency, a.policy_latency, a.decoding_judge)
        return

    for k in [k for k in os.environ if k.startswith(("FIREWORKS_", "OPENAI_", "SVGRFT_"))]:
        os.environ.pop(k)
    tmp = Path(tempfile.mkdtemp(prefix="svgrft-bench-"))
    os.chdir(tmp)
    dataset = write_rows(a.rows, tmp / "rows.jsonl")
    res: dict = {
        "rows": a.rows,
        "pool": a.pool,
        "cpus": os.cpu_count(),
        "decoding_judge": a.decoding_judge,
        "load_average": round(os.getloadavg()[0], 2),
    }

    # 1 + 2: zero-latency fakes, cold runs interleaved with render-only runs (medians: shared boxes are noisy)
    walls, renders, cold_calls = [], [], []
    fake = FakeProcess(0.0, a.decoding_judge, a.policy_latency)
    try:
        pipeline(fake, write_rows(4, tmp / "warm.jsonl"), tmp / "home-warmup", 8, 8, a.pool)  # imports, caches
        for i in range(a.repeat):
            before = fake.stats()["judge_calls"]
            wall, s0 = pipeline(fake, dataset, tmp / f"home-a{i}", 8, 8, a.pool)
            cold_calls.append(fake.stats()["judge_calls"] - before)
            svgs = stored_svgs(tmp / f"home-a{i}", s0["run_id"])
            walls.append(wall)
            renders.append(render_only(svgs, a.pool))
        before = fake.stats()["judge_calls"]
        wall_rerun, s1 = pipeline(fake, dataset, tmp / "home-a0", 8, 8, a.pool)
        rerun_calls = fake.stats()["judge_calls"] - before
    finally:
        fake.close()
    wall0, render_s = statistics.median(walls), statistics.median(renders)
    ratios = [w / r for w, r in zip(walls, renders)]
    res.update(
        repeat=a.repeat,
        render_only_s=round(render_s, 3),
        pipeline_s=round(wall0, 3),
        pipeline_over_render=round(statistics.median(ratios), 3),
        pipeline_over_render_each=[round(x, 2) for x in ratios],
        samples=s0["counts"]["done"],
        gated=s0["judge"]["gated"],
        judge_calls_cold=cold_calls[0],
        rerun_s=round(wall_rerun, 3),
        rerun_judge_calls=rerun_calls,
        rerun_cached=s1["judge"]["cached"],
    )

    # 3: slow judge, overlapped
    slow, judged = [], 0
    fake = FakeProcess(a.judge_latency, a.decoding_judge, a.policy_latency)
    try:
        for i in range(a.repeat):
            before = fake.stats()["judge_calls"]
            wall, s2 = pipeline(fake, dataset, tmp / f"home-b{i}", a.concurrency, a.concurrency, a.pool)
            slow.append(wall)
            judged = fake.stats()["judge_calls"] - before
    finally:
        fake.close()
    wall_slow = statistics.median(slow)
    bound = 1.5 * (render_s + a.rows * a.judge_latency / a.concurrency)
    serial = render_s + judged * a.judge_latency
    res.update(
        judge_latency_s=a.judge_latency,
        concurrency=a.concurrency,
        slow_judge_s=round(wall_slow, 3),
        slow_judge_each_s=[round(x, 2) for x in slow],
        slow_judge_calls=judged,
        slow_bound_s=round(bound, 3),
        slow_within_bound=wall_slow <= bound,
        not_overlapped_s=round(serial, 3),
        overlap_speedup=round(serial / wall_slow, 2),
        pipeline_target_met=res["pipeline_over_render"] <= 1.25,
        rerun_zero_judge_calls=rerun_calls == 0,
    )

    if a.json:
        print(json.dumps(res, indent=2))
        return
    print(
        f"eval pipeline benchmark: {a.rows} rows × 1 sample, renderer pool {a.pool}, {os.cpu_count()} CPUs, "
        f"{'decoding' if a.decoding_judge else 'non-decoding'} fake judge in a separate process"
    )
    print(f"  (medians of {a.repeat} runs; load average at start {res['load_average']:.1f})")
    print(f"  render-only (same {len(svgs)} SVGs, browser start included) : {render_s:7.2f} s")
    print(
        f"  pipeline, zero-latency fakes                          : {wall0:7.2f} s  "
        f"= {res['pipeline_over_render']:.2f}× render-only {res['pipeline_over_render_each']} "
        f"(target ≤ 1.25×: {'met' if res['pipeline_target_met'] else 'MISSED'})"
        f"; {cold_calls[0]} judge calls, {s0['judge']['gated']} gated"
    )
    print(
        f"  rerun (judge cache)                                   : {wall_rerun:7.2f} s  "
        f"judge calls {rerun_calls} (must be 0), {s1['judge']['cached']} cached"
    )
    print(
        f"  slow judge {a.judge_latency:.2f} s, concurrency {a.concurrency:<2}                   : {wall_slow:7.2f} s  "
        f"bound 1.5×(render + {a.rows}×{a.judge_latency}/{a.concurrency}) = {bound:.2f} s "
        f"({'met' if wall_slow <= bound else 'MISSED'})"
    )
    print(
        f"  not overlapped (render-only + {judged} × {a.judge_latency:.2f} s)         : {serial:7.2f} s  "
        f"→ overlap speed-up {serial / wall_slow:.1f}×"
    )


if __name__ == "__main__":
    main()
