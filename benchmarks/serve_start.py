"""Start-up time of `svgrft serve`: from process start to the first answer of ``GET /`` (issue #13, point 3).

Two variants, measured in the same run, each ``--rounds`` times (the median is printed):

* **now**: ``python -m svgrft serve`` as it is (the server has its own wire models; no eval_protocol);
* **with eval_protocol**: the same command in an interpreter that first imports what ``svgrft serve``
  imported before (``eval_protocol.models`` and ``eval_protocol.types.remote_rollout_processor``, which
  pull in litellm) -- the old start path.

It also prints the bare ``python -c "import eval_protocol.models"`` cost. Nothing leaves the machine
(``LITELLM_LOCAL_MODEL_COST_MAP=True``; the server only binds loopback).

Usage: python benchmarks/serve_start.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

OLD_IMPORTS = "import eval_protocol.models, eval_protocol.types.remote_rollout_processor"
SERVE = "import sys; from svgrft.cli.main import main; sys.argv = ['svgrft', 'serve', '--port', sys.argv[1]]; main()"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict[str, str]:
    prefixes = ("FIREWORKS_", "OPENAI_", "SVGRFT_", "EP_", "FW_TRACING", "WANDB_")
    out = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    out.update(LITELLM_LOCAL_MODEL_COST_MAP="True", NO_COLOR="1")
    return out


def time_to_first_health(code: str, cwd: str, timeout: float = 120.0) -> float:
    """Seconds from spawning ``python -c code PORT`` to the first 200 on ``GET /``."""
    import httpx

    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(port)],
        cwd=cwd,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode} before answering")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"no answer on GET / within {timeout:g}s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def import_cost(cwd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", OLD_IMPORTS], cwd=cwd, env=env(), check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="svgrft-serve-start-") as cwd:  # no .env, no configs/
        now, before, imports = [], [], []
        for _ in range(max(1, args.rounds)):  # interleaved: both see the same machine load
            now.append(time_to_first_health(SERVE, cwd))
            before.append(time_to_first_health(f"{OLD_IMPORTS}; {SERVE}", cwd))
            imports.append(import_cost(cwd))
    med = statistics.median
    print(
        f"svgrft serve, process start → first GET / answer (median of {len(now)}): "
        f"now {med(now):.2f} s; with eval_protocol imported as before {med(before):.2f} s "
        f'(saved {med(before) - med(now):.2f} s; `python -c "{OLD_IMPORTS}"` alone takes {med(imports):.2f} s)'
    )


if __name__ == "__main__":
    main()
