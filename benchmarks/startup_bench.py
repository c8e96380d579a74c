"""How fast does `svgrft --help` start compared with `ep --help`? Prints median wall times and the ratio.

Usage: python benchmarks/startup_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def _time(cmd: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=120)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", FIREWORKS_API_KEY="fw-bench-dummy-key")
    ours = _time([sys.executable, "-m", "svgrft", "--help"], env, args.runs)
    print(f"svgrft --help   median {ours * 1000:7.0f} ms over {args.runs} runs")
    ep = shutil.which("ep")
    if not ep:
        print("ep not found (pip install eval-protocol) - no ratio")
        return
    theirs = _time([ep, "--help"], env, args.runs)
    print(f"ep --help       median {theirs * 1000:7.0f} ms over {args.runs} runs")
    print(f"ratio svgrft/ep = {ours / theirs:.3f}  (svgrft starts {theirs / ours:.1f}x faster)")


if __name__ == "__main__":
    main()
