"""Runtime of the packaged evaluator: configuration, rollout processor, scoring of one row.

Used by ``test_svgrft_eval.py`` (the ``@evaluation_test`` entry point) inside the evaluator that
Fireworks builds, and by ``svgrft evaluator test`` (the same module, run by eval-protocol's pytest
harness in a subprocess). Everything here reads the generated ``svgrft_evaluator_config.json``
(written by :func:`svgrft.workflow.evaluator.evaluator_config`) so the completion parameters used for
rollouts are the ones the RFT job was created with.

eval-protocol, litellm and aiohttp are imported inside functions only.
"""

import asyncio
import atexit
import json
import os
from pathlib import Path
from typing import Any

from svgrft.evaluator import CONFIG_FILE, CONFIG_SCHEMA, SAMPLE_DATASET, TOKEN_ENV

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
        raise RuntimeError(f"svgrft evaluator config {path} is missing: stage the evaluator with "
                           f"`svgrft evaluator build` (or `svgrft evaluator stage DIR`)") from None
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
            from svgrft.core.scoring import renderer_from_settings, scorer_from_settings

            settings = make_settings(cfg)
            renderer = renderer_from_settings(settings)
            await renderer.start()
            _RENDERERS.append(renderer)
            state.renderer = renderer
            state.scorer = await scorer_from_settings(settings, renderer=renderer)
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
        row.evaluation_result = EvaluateResult(
            score=0.0, is_score_valid=False,
            reason="dataset row has no input_metadata.dataset_info.requirements")
        return row
    if problem is not None:
        row.evaluation_result = EvaluateResult(score=0.0, is_score_valid=False, reason=problem)
        return row
    scorer = await get_scorer(cfg)
    r = await scorer.score_reply(reply, requirements, prompt)
    metrics = {
        "requirements": MetricResult(score=float(r.score), is_score_valid=bool(r.is_valid),
                                     reason=f"{r.fulfilled}/{r.total} fulfilled"),
        "rendered": MetricResult(score=1.0 if r.png else 0.0, reason=r.render_error or ("ok" if r.png else "no image")),
    }
    reason = r.reason if not r.gate else f"[{r.gate}] {r.reason}"
    row.evaluation_result = EvaluateResult(score=float(r.score), is_score_valid=bool(r.is_valid),
                                           reason=reason, metrics=metrics)
    return row
