"""Run the staged evaluator through eval-protocol's own pytest harness (``svgrft evaluator test``).

A subprocess with a curated environment (keys passed through by name only), no Docker: real rollouts
against the configured policy endpoint (local mode) or rollout server (remote mode), real rendering and
judge calls, nothing uploaded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svgrft import evaluator as ev
from svgrft.errors import ConfigError, SvgrftError
from svgrft.workflow.evaluator_bundle import check_rollout_server, stage

if TYPE_CHECKING:
    from svgrft.config import Settings


@dataclass
class LocalTestResult:
    ok: bool
    returncode: int
    mode: str
    rows: list[dict[str, Any]]
    summary: dict[str, Any] | None
    output_tail: str
    content_hash: str
    duration_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "returncode": self.returncode,
            "rollout_mode": self.mode,
            "summary": self.summary,
            "rows": self.rows,
            "content_hash": self.content_hash,
            "duration_s": round(self.duration_s, 2),
        }


_PASS_ENV = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SYSTEMROOT",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "SVGRFT_HOME",
    "SVGRFT_NO_SANDBOX",
    "PLAYWRIGHT_BROWSERS_PATH",
)


def harness_env(
    settings: Settings,
    *,
    home: Path,
    out_dir: Path,
    stage_dir: Path,
    rows: int,
    runs: int,
    dataset: Path | None,
    threshold: float | None,
) -> dict[str, str]:
    """The curated environment of the harness subprocess (keys passed through by name only)."""
    from svgrft.config import passthrough_env

    env = passthrough_env(_PASS_ENV)
    for key in ("FIREWORKS_API_KEY", "OPENAI_API_KEY", "SVGRFT_SERVE_TOKEN"):
        v = settings.secret(key)
        if v:
            env[key] = v
    fw = settings.fireworks
    env.update(
        {
            "HOME": str(home),
            "PYTHONPATH": str(stage_dir),
            "PYTHONDONTWRITEBYTECODE": "1",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            "EP_NO_UPLOAD": "1",
            "EP_DISABLE_AUTO_BROWSER": "1",
            "EP_OUTPUT_DIR": str(out_dir),
            "EP_SUMMARY_JSON": str(out_dir / "summary.json"),
            "EP_MAX_DATASET_ROWS": str(rows) if rows > 0 else "None",
            "EP_NUM_RUNS": str(max(1, runs)),
            # the endpoints come from svgrft's settings (flag > env > config), never from a .env file
            "FIREWORKS_API_BASE": fw.base_url,
            "FIREWORKS_BASE_URL": fw.base_url,
            "FW_TRACING_GATEWAY_BASE_URL": fw.tracing_base_url,
        }
    )
    if fw.account_id:
        env["FIREWORKS_ACCOUNT_ID"] = fw.account_id
    if settings.judge.base_url:
        env["OPENAI_BASE_URL"] = settings.judge.base_url
    if settings.render.chromium:
        env["SVGRFT_CHROMIUM"] = settings.render.chromium
    if dataset is not None:
        env["EP_JSONL_PATH"] = str(dataset)
    if threshold is not None:
        env["EP_PASSED_THRESHOLD"] = str(float(threshold))
    return env


def _read_rows(out_dir: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in sorted((out_dir / "experiment_results").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            details = obj.get("eval_details") or {}
            meta = obj.get("input_metadata") or {}
            ex = obj.get("execution_metadata") or {}
            status = obj.get("rollout_status") or {}
            rows.append(
                {
                    "row_id": meta.get("row_id"),
                    "run_id": ex.get("run_id"),
                    "score": details.get("score"),
                    "is_score_valid": details.get("is_score_valid"),
                    "reason": (details.get("reason") or "")[:300],
                    "rollout_status": status.get("message") or status.get("code"),
                }
            )
    return rows


def run_local_test(
    settings: Settings,
    *,
    rows: int = 2,
    runs: int = 1,
    dataset: str | Path | None = None,
    threshold: float | None = None,
    timeout: float | None = None,
    keep_dir: str | Path | None = None,
) -> LocalTestResult:
    """Stage the evaluator and run it through eval-protocol's pytest harness in a subprocess."""
    from svgrft.redact import redact

    mode = settings.rollout.mode
    for key, why in (("FIREWORKS_API_KEY", "the policy rollouts"), ("OPENAI_API_KEY", "the vision judge")):
        if not settings.secret(key):
            raise ConfigError(
                f"{key} is not set: the evaluator test needs it for {why}", hint=f"export {key}=... or put it in .env"
            )
    if mode == "remote":
        check_rollout_server(settings)
    ds_path: Path | None = None
    if dataset is not None:
        from svgrft.core.dataset import resolve_path, validate_file

        ds_path = resolve_path(dataset).resolve()
        report = validate_file(ds_path)
        if not report.ok:
            raise SvgrftError(
                f"{ds_path} is not a valid dataset: {'; '.join(report.format_errors(3))}",
                hint=f"run `svgrft dataset validate {dataset}` to see every problem",
            )
    work = Path(tempfile.mkdtemp(prefix="svgrft-evaltest-"))
    try:
        stage_dir = Path(keep_dir) if keep_dir else work / "evaluator"
        staged = stage(settings, stage_dir, overwrite=True)  # --keep DIR again replaces the stage kept there
        home, out_dir = work / "home", work / "out"
        home.mkdir()
        out_dir.mkdir()
        env = harness_env(
            settings,
            home=home,
            out_dir=out_dir,
            stage_dir=staged.path,
            rows=rows,
            runs=runs,
            dataset=ds_path,
            threshold=threshold,
        )
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            ev.ENTRY_FILE,
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::DeprecationWarning",
        ]
        t0 = time.monotonic()
        limit = settings.evaluator.timeout if timeout is None else timeout
        for attempt in range(2):
            try:
                proc = subprocess.run(
                    cmd,
                    cwd=staged.path,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    errors="replace",
                    timeout=limit,
                )
            except subprocess.TimeoutExpired as e:
                tail = ((e.stdout or "") if isinstance(e.stdout, str) else "")[-3000:]
                raise SvgrftError(
                    f"the evaluator test did not finish within {e.timeout:.0f}s",
                    hint="run with fewer --rows, or raise evaluator.timeout; output tail:\n" + redact(tail),
                ) from None
            # litellm (imported by eval-protocol) sometimes fails to import with a circular-import error
            # (reference/fireworks.md §8); that is not the evaluator's fault: run it once more.
            flaky = "partially initialized module" in (proc.stdout or "") + (proc.stderr or "")
            if proc.returncode == 0 or not flaky or attempt:
                break
        duration = time.monotonic() - t0
        summary = None
        sp = out_dir / "summary.json"
        if sp.is_file():
            try:
                summary = json.loads(sp.read_text(encoding="utf-8"))
            except ValueError:
                summary = None
        output = redact((proc.stdout or "") + ("\n" + proc.stderr if proc.stderr else ""))
        return LocalTestResult(
            ok=proc.returncode == 0,
            returncode=proc.returncode,
            mode=mode,
            rows=_read_rows(out_dir),
            summary=summary,
            output_tail=output[-6000:],
            content_hash=staged.content_hash,
            duration_s=duration,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
