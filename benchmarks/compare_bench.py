"""Benchmark of ``svgrft compare-epochs`` on a finished job: wall time, requests, judge calls.

    python benchmarks/compare_bench.py                         # 84 rows x 4 samples x 4 epochs, 150 ms per request
    python benchmarks/compare_bench.py --rows 20 --latency 0.3 --json

Set-up (not timed): a fake Fireworks (control plane + tracing gateway, tests/fakes) with ``--latency``
seconds slept per control-plane and gateway request, and a fake judge; a job of ``--rows`` rows of the
bundled training set, ``--samples`` rollouts per row, ``--epochs`` epochs, run to completion; the
rollout records its evaluator would have written (tests/fakes/job_records.py, svgrft's own record format),
every SVG distinct so no render is saved by de-duplication.

Timed: ``svgrft compare-epochs JOB --out DIR --json`` in this process, without ``--dataset`` (the job's
dataset is downloaded) and without ``--rejudge``. Printed: wall time, requests the fake received (by
kind), judge calls (must be 0), rollouts read, renders, and whether it met the 60 s target.
The fakes run in this process: their CPU shares it (they do little per request).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FW_KEY = "fw-bench-key-0123456789abcdef"
OAI_KEY = "sk-bench-0123456789abcdef"
TARGET_S = 60.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=84)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--latency", type=float, default=0.15, help="seconds per control-plane / gateway request")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args()

    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    work = Path(tempfile.mkdtemp(prefix="svgrft-compare-bench-"))
    os.environ["SVGRFT_HOME"] = str(work / "home")
    os.environ["NO_COLOR"] = "1"
    os.chdir(work)

    from svgrft.core.dataset import BUNDLED_TRAIN, load_dataset
    from tests.fakes import job_records as ft
    from tests.fakes import start_fireworks, start_openai

    rows = load_dataset(BUNDLED_TRAIN)[: args.rows]
    fw = start_fireworks(api_keys={FW_KEY: "acct"}, request_latency=args.latency)
    oai = start_openai(api_key=OAI_KEY)
    try:
        os.environ.update(
            {
                "FIREWORKS_API_KEY": FW_KEY,
                "FIREWORKS_BASE_URL": fw.url,
                "FIREWORKS_ACCOUNT_ID": "acct",
                "FIREWORKS_TRACING_BASE_URL": fw.localhost_url,
                "FIREWORKS_INFERENCE_BASE_URL": fw.url + "/inference/v1",
                "OPENAI_API_KEY": OAI_KEY,
                "OPENAI_BASE_URL": oai.url + "/v1",
            }
        )
        ft.create_job(fw, "bench-job", rows, epochs=args.epochs, samples=args.samples, api_key=FW_KEY)
        fw.run_job("bench-job")
        truth = ft.seed_job_records(fw, "bench-job", rows, samples=args.samples, unique_svgs=True)
        before_requests = len(fw.requests)

        from typer.testing import CliRunner

        from svgrft.cli.main import app

        out = work / "report"
        t0 = time.monotonic()
        res = CliRunner().invoke(app, ["compare-epochs", "bench-job", "--out", str(out), "--json"])
        wall = time.monotonic() - t0
        if res.exit_code != 0:
            print(res.stdout, res.stderr, file=sys.stderr)
            return 1
        data = json.loads(res.stdout)
        reqs = fw.requests[before_requests:]
        kinds = Counter(
            "gateway /logs"
            if q.path.endswith("/logs")
            else "dataset download"
            if q.path.startswith("/download/") or "getDownloadEndpoint" in q.path
            else "control plane"
            for q in reqs
        )
        result = {
            "rows": args.rows,
            "samples": args.samples,
            "epochs": args.epochs,
            "latency_s": args.latency,
            "records_seeded": len(truth),
            "records_read": data["meta"]["records"],
            "compared_samples": data["summary"]["samples_before"] + data["summary"]["samples_after"],
            "renders": data["meta"].get("scoring", {}).get("rendered_from_records"),
            "wall_s": round(wall, 2),
            "requests": len(reqs),
            "requests_by_kind": dict(kinds),
            "judge_calls": oai.judge_calls,
            "target_s": TARGET_S,
            "ok": wall < TARGET_S and oai.judge_calls == 0,
            "epoch_means": [round(c["mean"], 4) for c in data["reward_curve"]],
        }
    finally:
        fw.stop()
        oai.stop()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"compare-epochs on {args.rows} rows x {args.samples} samples x {args.epochs} epochs "
            f"({result['records_read']} records, {args.latency * 1000:.0f} ms per request):"
        )
        print(
            f"  wall time     {result['wall_s']:.1f} s (target < {TARGET_S:.0f} s: {'ok' if wall < TARGET_S else 'MISSED'})"
        )
        print(f"  requests      {result['requests']} ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))})")
        print(f"  judge calls   {result['judge_calls']}")
        print(f"  renders       {result['renders']} (the {result['compared_samples']} compared samples)")
        print(f"  epoch means   {result['epoch_means']}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
