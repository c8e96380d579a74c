"""Runtime of the packaged evaluator: configuration, rollout processor, scoring of one row.

Used by ``test_svgrft_eval.py`` (the ``@evaluation_test`` entry point) inside the evaluator that
Fireworks builds, and by ``svgrft evaluator test`` (the same module, run by eval-protocol's pytest
harness in a subprocess). Everything here reads the generated ``svgrft_evaluator_config.json``
(written by :func:`svgrft.workflow.evaluator_bundle.evaluator_config`) so the completion parameters used for
rollouts are the ones the RFT job was created with.

eval-protocol, litellm and aiohttp are imported inside functions only.
"""

import asyncio
import atexit
import json
import os
from pathlib import Path
from typing import Any

from svgrft.evaluator import CONFIG_FILE, CONFIG_SCHEMA, MANIFEST_FILE, SAMPLE_DATASET, TOKEN_ENV

HERE = Path(__file__).resolve().parent


def config_path(base_dir: str | Path | None = None) -> Path:
    """Where the generated config lives: ``$SVGRFT_EVALUATOR_CONFIG``, else next to the entry point."""
    explicit = os.environ.get("SVGRFT_EVALUATOR_CONFIG")
    if explicit:
        return Path(explicit)
    if base_dir is not None:
        return Path(base_dir) / CONFIG_FILE
    # staged layout: <root>/svgrft/evaluator/runtime.py and <root>/svgrft_evaluator_config.json
    return HERE.parent.parent / CONFIG_FILE


def load_config(base_dir: str | Path | None = None) -> dict[str, Any]:
    path = config_path(base_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuntimeError(
            f"svgrft evaluator config {path} is missing: stage the evaluator with "
            f"`svgrft evaluator build` (or `svgrft evaluator stage DIR`)"
        ) from None
    except (OSError, ValueError) as e:
        raise RuntimeError(f"svgrft evaluator config {path} is unreadable: {e}") from None
    if not isinstance(data, dict) or data.get("schema") != CONFIG_SCHEMA:
        raise RuntimeError(f"svgrft evaluator config {path} has an unknown schema; rebuild the evaluator")
    return data


def dataset_paths(cfg: dict[str, Any], base_dir: str | Path | None = None) -> list[str]:
    """The default input dataset (a small sample shipped in the tarball). EP_JSONL_PATH replaces it."""
    root = Path(base_dir) if base_dir is not None else config_path().parent
    return [str(root / cfg.get("sample_dataset", SAMPLE_DATASET))]


def completion_params(cfg: dict[str, Any]) -> dict[str, Any]:
    """Completion params for the rollout processor: the same values as the job's inferenceParameters."""
    return dict(cfg["completion_params"])


def num_runs(cfg: dict[str, Any]) -> int:
    """Rollouts per row (= the job's responseCandidatesCount); EP_NUM_RUNS overrides."""
    return max(1, int(cfg.get("num_runs", 1)))


def make_rollout_processor(cfg: dict[str, Any]):
    """local → eval-protocol's SingleTurnRolloutProcessor (litellm against the policy endpoint in the
    completion params); remote → RemoteRolloutProcessor pointed at ``rollout.server_url`` that sends
    ``Authorization: Bearer $SVGRFT_SERVE_TOKEN`` to the rollout server when the token is set."""
    rollout = cfg.get("rollout", {})
    mode = rollout.get("mode", "local")
    if mode == "local":
        from eval_protocol.pytest import SingleTurnRolloutProcessor

        return SingleTurnRolloutProcessor()
    if mode == "remote":
        return _token_remote_processor_class()(
            remote_base_url=rollout["server_url"],
            model_base_url=rollout.get("model_base_url") or "https://tracing.fireworks.ai",
            poll_interval=float(rollout.get("poll_interval", 1.0)),
            timeout_seconds=float(rollout.get("timeout_seconds", 300.0)),
        )
    raise RuntimeError(f"unknown rollout mode {mode!r} in the svgrft evaluator config")


def _token_remote_processor_class():
    from eval_protocol.pytest import RemoteRolloutProcessor

    class TokenRemoteRolloutProcessor(RemoteRolloutProcessor):
        """RemoteRolloutProcessor whose HTTP session carries the rollout server's shared secret.

        eval-protocol 0.3.33 has no option for extra /init headers; its aiohttp session is created in
        ``_get_or_create_session`` and every /init POST goes through it. Session default headers are sent
        with every request of that session, but the tracing-gateway calls (status/logs) set their own
        ``Authorization`` per request, which replaces the default, so the token only reaches /init.
        """

        def _get_or_create_session(self):  # noqa: D401 - eval-protocol hook
            import aiohttp

            if self._session is None or self._session.closed:
                token = os.environ.get(TOKEN_ENV, "").strip()
                headers = {"Authorization": f"Bearer {token}"} if token else None
                self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), headers=headers)
            return self._session

    return TokenRemoteRolloutProcessor


# ---------------------------------------------------------------------------------------------- scoring


def make_settings(cfg: dict[str, Any]):
    """svgrft settings for scoring: built-in defaults < baked config values < environment variables.

    Keys (API keys) come from the environment only (Fireworks secrets become env vars)."""
    from svgrft.config import load_settings

    settings = load_settings()
    baked = {k: v for k, v in (cfg.get("settings") or {}).items() if not settings.source(k).startswith("env ")}
    return settings.with_overrides(baked) if baked else settings


class _LoopState:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.scorer: Any = None
        self.renderer: Any = None


_STATES: dict[int, tuple[Any, _LoopState]] = {}
_RENDERERS: list[Any] = []


@atexit.register
def _kill_renderers() -> None:  # pragma: no cover - process exit
    import signal

    for r in _RENDERERS:
        try:
            for pid in r.process_ids():
                os.kill(pid, signal.SIGKILL)
        except Exception:
            pass


async def get_scorer(cfg: dict[str, Any]):
    """One Scorer (and one pooled renderer) per event loop, created on first use."""
    loop = asyncio.get_running_loop()
    entry = _STATES.get(id(loop))
    if entry is None or entry[0] is not loop:
        entry = (loop, _LoopState())
        _STATES[id(loop)] = entry
    state = entry[1]
    if state.scorer is not None:
        return state.scorer
    async with state.lock:
        if state.scorer is None:
            from svgrft.clients.judge import judge_from_settings
            from svgrft.core.scoring import renderer_from_settings, scorer_for

            settings = make_settings(cfg)
            judge = judge_from_settings(settings)  # composition: the judge client of settings.judge
            renderer = renderer_from_settings(settings)
            await renderer.start()
            _RENDERERS.append(renderer)
            state.renderer = renderer
            state.scorer = await scorer_for(settings, judge, renderer=renderer)
    return state.scorer


def _text_of(content: Any) -> str | None:
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        parts = []
        for p in content:
            text = p.get("text") if isinstance(p, dict) else getattr(p, "text", None)
            if isinstance(text, str):
                parts.append(text)
        return "\n".join(parts)
    return str(content)


def row_inputs(row: Any) -> tuple[str | None, list[str], str, str | None]:
    """(reply, requirements, prompt, problem) of an EvaluationRow. ``problem`` explains a missing reply."""
    info = (row.input_metadata.dataset_info if row.input_metadata is not None else None) or {}
    raw_reqs = info.get("requirements") if isinstance(info, dict) else None
    requirements = [str(r) for r in raw_reqs] if isinstance(raw_reqs, list) else []
    prompt = str(info.get("original_prompt") or "") if isinstance(info, dict) else ""
    last = row.messages[-1] if row.messages else None
    if last is None or last.role != "assistant":
        status = getattr(row, "rollout_status", None)
        msg = getattr(status, "message", "") if status is not None else ""
        return None, requirements, prompt, "no assistant reply" + (f" (rollout: {msg})" if msg else "")
    return _text_of(last.content), requirements, prompt, None


async def score_row(row: Any, cfg: dict[str, Any]) -> Any:
    """Render → judge → score one rollout and attach ``row.evaluation_result``."""
    from eval_protocol.models import EvaluateResult, MetricResult

    reply, requirements, prompt, problem = row_inputs(row)
    if not requirements:
        reason = "dataset row has no input_metadata.dataset_info.requirements"
        row.evaluation_result = EvaluateResult(score=0.0, is_score_valid=False, reason=reason)
        record_rollout(row, cfg, score=0.0, is_valid=False, reason=reason)
        return row
    if problem is not None:
        row.evaluation_result = EvaluateResult(score=0.0, is_score_valid=False, reason=problem)
        record_rollout(row, cfg, score=0.0, is_valid=False, reason=problem)
        return row
    scorer = await get_scorer(cfg)
    r = await scorer.score_reply(reply, requirements, prompt)
    metrics = {
        "requirements": MetricResult(
            score=float(r.score), is_score_valid=bool(r.is_valid), reason=f"{r.fulfilled}/{r.total} fulfilled"
        ),
        "rendered": MetricResult(score=1.0 if r.png else 0.0, reason=r.render_error or ("ok" if r.png else "no image")),
    }
    reason = r.reason if not r.gate else f"[{r.gate}] {r.reason}"
    row.evaluation_result = EvaluateResult(
        score=float(r.score), is_score_valid=bool(r.is_valid), reason=reason, metrics=metrics
    )
    record_rollout(
        row,
        cfg,
        score=float(r.score),
        is_valid=bool(r.is_valid),
        reason=r.reason or "",
        gate=r.gate,
        svg=r.svg,
        verdicts=[v.to_dict() for v in r.verdicts],
        judge_model=r.judge_model,
        judge_mode=r.judge_mode,
        fulfilled=r.fulfilled,
        total=r.total,
    )
    return row


# ---------------------------------------------------------------------------------------------- recording

_RECORDER: list[Any] = []  # [LogRecorder] once created; [None] when recording is off or impossible
_RECORD_PROBLEMS: dict[str, int] = {}


def record_key(base_dir: str | Path | None = None) -> str | None:
    """The evaluator's record key: the first 16 hex digits of its content hash (``svgrft_manifest.json``,
    written by staging; the same hash is the evaluator's ``commitHash``). None when there is no manifest."""
    root = Path(base_dir) if base_dir is not None else config_path().parent
    try:
        data = json.loads((root / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    h = data.get("content_hash") if isinstance(data, dict) else None
    if isinstance(h, str) and len(h) >= 16 and all(c in "0123456789abcdef" for c in h[:16]):
        return h[:16]
    return None


def _recorder(cfg: dict[str, Any]) -> Any:
    """The process's LogRecorder (created on first use), or None when records cannot be written."""
    if _RECORDER:
        return _RECORDER[0]
    rec_cfg = cfg.get("record") or {}
    rec = None
    why = None
    if not rec_cfg.get("enabled", False):
        why = "recording is off in the evaluator config"
    elif not rec_cfg.get("gateway"):
        why = "no gateway URL in the evaluator config"
    elif record_key() is None:
        why = f"no {MANIFEST_FILE} (stage the evaluator with svgrft)"
    elif not os.environ.get("FIREWORKS_API_KEY", "").strip():
        why = "FIREWORKS_API_KEY is not set"
    else:
        from svgrft.clients.gatewaylog import LogRecorder

        secrets = [
            os.environ.get(k, "")
            for k in ("FIREWORKS_API_KEY", "OPENAI_API_KEY", TOKEN_ENV, "EP_REMOTE_API_KEY", "WANDB_API_KEY")
        ]
        rec = LogRecorder(
            str(rec_cfg["gateway"]),
            os.environ["FIREWORKS_API_KEY"].strip(),
            secrets=secrets,
            timeout=float(rec_cfg.get("timeout", 5.0)),
            flush_timeout=float(rec_cfg.get("flush_timeout", 30.0)),
        )
        atexit.register(_close_recorder)
    if why:
        _log(f"svgrft: rollouts are not recorded ({why}); compare-epochs will not find this job's rollouts")
    _RECORDER.append(rec)
    return rec


def _log(line: str) -> None:
    import logging
    import sys

    try:
        print(line, file=sys.stderr, flush=True)
        logging.getLogger("svgrft.records").warning(line)
    except Exception:
        pass


def _close_recorder() -> None:
    rec = _RECORDER[0] if _RECORDER else None
    if rec is None:
        return
    rec.close()
    for why, n in _RECORD_PROBLEMS.items():
        rec.failed[why] = rec.failed.get(why, 0) + n
    _log(rec.summary())


def record_rollout(
    row: Any,
    cfg: dict[str, Any],
    *,
    score: float,
    is_valid: bool,
    reason: str,
    gate: str | None = None,
    svg: str | None = None,
    verdicts: list | None = None,
    judge_model: str = "",
    judge_mode: str = "",
    fulfilled: int = 0,
    total: int = 0,
) -> None:
    """Queue the record of one scored rollout (:mod:`svgrft.core.records`). Never raises, never blocks,
    never changes the row: a failure is counted and reported in the evaluator's log at exit."""
    try:
        import time

        from svgrft.core import records

        rec = _recorder(cfg)
        if rec is None:
            return
        im = getattr(row, "input_metadata", None)
        ex = getattr(row, "execution_metadata", None)
        row_id = str(getattr(im, "row_id", None) or "")
        if not row_id:
            _RECORD_PROBLEMS["row without row_id"] = _RECORD_PROBLEMS.get("row without row_id", 0) + 1
            return
        params = getattr(im, "completion_params", None) or {}
        model = params.get("model") if isinstance(params, dict) else getattr(params, "model", None)
        ids = {k: str(getattr(ex, k, None) or "") for k in ("invocation_id", "experiment_id", "run_id")}
        rollout_id = str(getattr(ex, "rollout_id", None) or "") or None
        settings = cfg.get("settings") or {}
        body = records.build_record(
            row_id=row_id,
            rollout_id=rollout_id,
            time_s=time.time(),
            policy_model=str(model) if model else None,
            svg=svg,
            score=score,
            is_valid=is_valid,
            gate=gate,
            reason=reason,
            verdicts=verdicts or [],
            judge_model=judge_model or str(settings.get("judge.model", "")),
            judge_mode=judge_mode or str(settings.get("judge.mode", "")),
            ids=ids,
            fulfilled=fulfilled,
            total=total,
        )
        key = record_key()
        rec.submit(records.record_tags(key, row_id, rollout_id), f"svgrft rollout {row_id} score {score:.3f}", body)
    except Exception as e:  # recording must never fail a row
        why = f"record: {type(e).__name__}"
        _RECORD_PROBLEMS[why] = _RECORD_PROBLEMS.get(why, 0) + 1
