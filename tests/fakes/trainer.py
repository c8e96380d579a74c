"""The fake RFT launcher: runs the job's uploaded evaluator once per epoch, as Fireworks does.

Used by :class:`~tests.fakes.fireworks.FakeFireworks` when ``job_runs_evaluator=True``. For epoch ``e``
of a job it:

1. unpacks the evaluator tarball that was uploaded (the files at the root or under one top directory)
   into a fresh temp directory and finds the entry point (``entryPoint``, e.g.
   ``test_svgrft_eval.py::test_svgrft_eval``);
2. writes the job's dataset rows (the uploaded dataset file, as is) to ``rows.jsonl``;
3. runs ``python -m pytest <entry file>`` in that directory — eval-protocol's pytest plugin is loaded as
   it is in any environment where eval-protocol is installed — with an environment that holds **only**
   the account's Fireworks secrets (``keyName`` → value) and the launcher's own variables:
   ``EP_JSONL_PATH`` (the rows), ``EP_NUM_RUNS`` (the job's ``responseCandidatesCount``),
   ``EP_INPUT_PARAMS_JSON`` = ``{"model": <the epoch's policy>, "api_base": <the fake's inference URL>}``
   (deep-merged into the evaluator's completion params by eval-protocol), ``EP_NO_UPLOAD=1``,
   ``EP_OUTPUT_DIR``, ``HOME``, ``PATH``, ``PYTHONPATH`` (the unpacked directory),
   ``LITELLM_LOCAL_MODEL_COST_MAP=True``. Nothing else of the caller's environment reaches it: what the
   evaluator needs beyond its secrets (judge endpoint, gateway URL) must be baked into the tarball;
4. reads the rows' rewards back from ``EP_OUTPUT_DIR/experiment_results/*.jsonl``.

The policy of epoch ``e`` is named ``accounts/<account>/models/<job>-epoch-<e>``; the fake serves
those names with :class:`EpochPolicy`, which draws better in later epochs (all in code, no corpus).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .policy import fenced

# a palette of 8 well-separated colours: the fake judge counts distinct coarse colours
PALETTE = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6")


def epoch_model(account: str, job_id: str, epoch: int) -> str:
    return f"accounts/{account}/models/{job_id}-epoch-{epoch}"


def epoch_of_model(model: str) -> Optional[int]:
    """The epoch of a policy name made by :func:`epoch_model` (with or without ``fireworks_ai/``), else None."""
    import re

    m = re.fullmatch(r"(?:fireworks_ai/)?accounts/[^/]+/models/[a-z0-9-]+-epoch-(\d{1,3})", model.strip())
    return int(m.group(1)) if m else None


def epoch_svg(epoch: int, epochs: int, choice: int = 0) -> str:
    """Epoch 0: one small grey dot. Then more shapes, colours and coverage each epoch; the last epoch
    fills the canvas with all 8 palette colours (the fake judge's full marks)."""
    w, h = 200, 150
    if epoch <= 0 or epochs <= 1:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
            f'<circle cx="{100 + choice}" cy="75" r="10" fill="#888888"/></svg>'
        )
    frac = min(1.0, epoch / max(1, epochs - 1))
    n = max(2, round(8 * frac))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">']
    band = w / n
    for i in range(n):
        hgt = round(h * (0.3 + 0.7 * frac))
        parts.append(
            f'<rect x="{round(i * band)}" y="{h - hgt}" width="{round(band) + 1}" height="{hgt}" fill="{PALETTE[i]}"/>'
        )
    parts.append(f'<circle cx="{30 + 5 * choice}" cy="25" r="{8 + 4 * epoch}" fill="#ffe119"/>')
    parts.append("</svg>")
    return "".join(parts)


class EpochPolicy:
    """``policy(model, messages, params)`` for the per-epoch policy names; ``None`` for other models."""

    def __init__(self, epochs_of: dict):
        self.epochs_of = epochs_of  # job id -> number of epochs

    def __call__(self, model: str, messages: list, params: dict) -> Optional[str]:
        import re

        e = epoch_of_model(model)
        if e is None:
            return None
        m = re.search(r"/models/([a-z0-9-]+)-epoch-\d+$", model)
        epochs = self.epochs_of.get(m.group(1) if m else "", e + 1)
        return fenced(epoch_svg(e, epochs, int(params.get("choice_index", 0) or 0)))


@dataclass
class EpochRun:
    epoch: int
    returncode: Optional[int] = None
    output: str = ""
    rewards: list = field(default_factory=list)  # [{"row_id", "score", "is_score_valid"}] from the results
    error: Optional[str] = None


def _unpack(tarball: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:*") as tf:
        tf.extractall(dest, filter="data")


def _entry_dir(root: Path, entry_file: str) -> Optional[Path]:
    if (root / entry_file).is_file():
        return root
    for child in sorted(root.iterdir()):
        if child.is_dir() and (child / entry_file).is_file():
            return child
    return None


def read_rewards(out_dir: Path) -> list:
    rows = []
    for f in sorted((out_dir / "experiment_results").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            d = obj.get("eval_details") or obj.get("evaluation_result") or {}
            rows.append(
                {
                    "row_id": (obj.get("input_metadata") or {}).get("row_id"),
                    "score": d.get("score"),
                    "is_score_valid": d.get("is_score_valid"),
                    "rollout_id": (obj.get("execution_metadata") or {}).get("rollout_id"),
                }
            )
    return rows


def run_evaluator_epoch(
    *,
    tarball: bytes,
    entry_point: str,
    dataset: bytes,
    epoch: int,
    num_runs: int,
    policy_model: str,
    inference_url: str,
    secrets: dict,
    timeout: float = 600.0,
) -> EpochRun:
    """Run the evaluator for one epoch (see the module docstring). Never raises: errors go in the result."""
    run = EpochRun(epoch)
    work = Path(tempfile.mkdtemp(prefix="fake-rft-epoch-"))
    try:
        src = work / "src"
        src.mkdir()
        try:
            _unpack(tarball, src)
        except (tarfile.TarError, OSError, ValueError) as e:
            run.error = f"cannot unpack the evaluator: {e}"
            return run
        entry_file = (entry_point or "").split("::", 1)[0] or "test_svgrft_eval.py"
        root = _entry_dir(src, entry_file)
        if root is None:
            run.error = f"entry point {entry_file} not in the evaluator"
            return run
        rows = work / "rows.jsonl"
        rows.write_bytes(dataset)
        out, home = work / "out", work / "home"
        out.mkdir()
        home.mkdir()
        env = {str(k): str(v) for k, v in secrets.items() if v}
        env.update(
            {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(home),
                "PYTHONPATH": str(root),
                "PYTHONDONTWRITEBYTECODE": "1",
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "EP_NO_UPLOAD": "1",
                "EP_OUTPUT_DIR": str(out),
                "EP_JSONL_PATH": str(rows),
                "EP_NUM_RUNS": str(max(1, int(num_runs))),
                "EP_INPUT_PARAMS_JSON": json.dumps({"model": policy_model, "api_base": inference_url}),
            }
        )
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            entry_file,
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::DeprecationWarning",
        ]
        for attempt in range(2):
            try:
                proc = subprocess.run(
                    cmd,
                    cwd=root,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    errors="replace",
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                run.error = f"the evaluator did not finish within {timeout:.0f}s"
                return run
            # litellm sometimes fails to import with a circular-import error (reference/fireworks.md §8)
            if proc.returncode == 0 or "partially initialized module" not in proc.stdout + proc.stderr or attempt:
                break
        run.returncode = proc.returncode
        run.output = (proc.stdout + "\n" + proc.stderr)[-8000:]
        run.rewards = read_rewards(out)
        if proc.returncode != 0:
            run.error = f"the evaluator exited {proc.returncode}"
        return run
    finally:
        shutil.rmtree(work, ignore_errors=True)
