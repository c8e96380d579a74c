"""Local evaluation: generate → render → judge → score, as one overlapping async pipeline.

Every (row, sample) is one asyncio task. Generation is bounded by the policy client's semaphore
(``--concurrency``), rendering by the shared Renderer's page pool, judging by the judge client's
semaphore (``judge.concurrency``), so the slowest stage sets the pace while the others keep working.
Each finished sample is committed to the local store in its own transaction; ``--resume RUN_ID``
skips samples whose status is ``done`` and redoes the rest (including infrastructure failures).

Fatal conditions (bad key, unknown model, a request the endpoint always refuses) cancel the run and
raise; Ctrl-C (task cancellation) marks the run ``interrupted`` and re-raises.

The judge is configured by one carrier, the ``[judge]`` section of the settings (``--judge-model`` and
friends arrive there as flag overrides); a resumed run takes its judge from the run's stored config.
This module composes the judge client (:func:`svgrft.clients.judge.judge_from_settings`) with the scorer
(:func:`svgrft.core.scoring.scorer_for`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svgrft.core.failure import FailureKind
from svgrft.errors import ConfigError, SvgrftError

if TYPE_CHECKING:
    from svgrft.config import JudgeSettings, Settings
    from svgrft.core.judge import Judge
    from svgrft.core.scoring import Scorer

__all__ = [
    "EvalOptions",
    "EvalOutcome",
    "run_eval",
    "load_rows",
    "default_dataset",
    "scorer_from_settings",
    "judge_of_run",
]


@dataclass
class EvalOptions:
    """What ``svgrft eval`` asks for beyond the settings (None = the ``[eval]`` setting). The judge is not
    here: it is ``settings.judge``."""

    model: str | None = None
    base_url: str | None = None
    dataset: str | None = None
    rows: int | None = None  # 0 / None = all rows
    samples: int | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    concurrency: int | None = None
    use_cache: bool = True
    resume: str | None = None
    api_key_env: str | None = None
    note: str = ""


@dataclass
class EvalOutcome:
    run_id: str
    status: str
    summary: dict[str, Any]
    processed: int = 0  # samples processed by this invocation
    skipped: int = 0  # samples already done (resume)
    invocation: dict[str, Any] = field(default_factory=dict)


async def scorer_from_settings(
    settings: Settings, *, judge: Judge | None = None, renderer: Any = None, use_cache: bool = True, store: Any = None
) -> Scorer:
    """A ready Scorer (:func:`svgrft.core.scoring.scorer_for`) whose judge is ``judge`` or, by default, the
    client of ``settings.judge`` (key from the environment)."""
    from svgrft.clients.judge import judge_from_settings
    from svgrft.core.scoring import scorer_for

    return await scorer_for(
        settings,
        judge if judge is not None else judge_from_settings(settings),
        renderer=renderer,
        use_cache=use_cache,
        store=store,
    )


def judge_of_run(settings: Settings, cfg: dict[str, Any]) -> JudgeSettings:
    """The ``[judge]`` section a run was started with (its stored config), over today's for the rest."""
    return dataclasses.replace(
        settings.judge,
        model=cfg["judge_model"],
        mode=cfg["judge_mode"],
        base_url=cfg.get("judge_base_url") or settings.judge.base_url,
        text_penalty=float(cfg["text_penalty"]),
    )


def default_dataset(settings: Settings) -> Path:
    from svgrft.core.dataset import BUNDLED_DATASET, resolve_path

    configured = settings.eval.dataset
    return resolve_path(configured) if configured else BUNDLED_DATASET


def load_rows(path: str | Path, limit: int | None = None) -> list[Any]:
    from svgrft.core.dataset import load_dataset, resolve_path

    p = resolve_path(path)
    if not p.is_file():
        raise ConfigError(
            f"dataset {path} not found",
            hint="pass --dataset PATH to a JSONL file, or build one with `svgrft dataset build`",
        )
    rows = load_dataset(p)
    if limit:
        rows = rows[: int(limit)]
    if not rows:
        raise ConfigError(f"dataset {p} has no rows", hint="check the file, or pass another --dataset")
    return rows


def _resolved_config(settings: Settings, opts: EvalOptions) -> dict[str, Any]:
    """The run's stored config: every input resolved (the judge's from ``settings.judge``)."""
    from svgrft.clients.policy import is_fireworks_url
    from svgrft.config import expand_model
    from svgrft.core.dataset import content_hash, resolve_path
    from svgrft.core.judge import PROMPT_VERSION

    base = (opts.base_url or settings.fireworks.inference_base_url).rstrip("/")
    model = (opts.model or settings.eval.model).strip()
    if not model:
        raise ConfigError("no model to evaluate", hint="pass --model, e.g. --model qwen3-0p6b")
    if is_fireworks_url(base, settings):
        model = expand_model(model)
    dataset = resolve_path(opts.dataset) if opts.dataset else default_dataset(settings)
    if not Path(dataset).is_file():
        raise ConfigError(
            f"dataset {opts.dataset or dataset} not found",
            hint="pass --dataset PATH to a JSONL file, or build one with `svgrft dataset build`",
        )
    samples = opts.samples if opts.samples is not None else settings.eval.samples
    if samples < 1:
        raise ConfigError("--samples must be at least 1", hint="pass --samples 1 or more")
    judge = settings.judge
    return {
        "model": model,
        "base_url": base,
        "dataset": str(dataset),
        "dataset_hash": content_hash(dataset),
        "rows": (opts.rows if opts.rows is not None else settings.eval.rows) or 0,
        "samples": samples,
        "temperature": opts.temperature if opts.temperature is not None else settings.eval.temperature,
        "max_tokens": opts.max_tokens if opts.max_tokens is not None else settings.eval.max_tokens,
        "judge_model": judge.model,
        "judge_mode": judge.mode,
        "judge_base_url": judge.base_url,
        "text_penalty": judge.text_penalty,
        "prompt_version": PROMPT_VERSION,
        "api_key_env": opts.api_key_env or "",
    }


async def run_eval(
    settings: Settings,
    opts: EvalOptions,
    *,
    store: Any = None,
    on_start: Callable[[str, int, int], None] | None = None,
    on_sample: Callable[[Any], None] | None = None,
) -> EvalOutcome:
    """Run (or resume) an evaluation. ``on_start(run_id, total, already_done)`` and ``on_sample(record)``
    are called from the event loop (keep them cheap)."""
    from svgrft.clients.judge import judge_from_settings
    from svgrft.clients.policy import policy_from_settings
    from svgrft.core.dataset import content_hash
    from svgrft.core.scoring import renderer_from_settings, scorer_for
    from svgrft.core.store import SampleRecord, Store

    own_store = store is None
    store = store or Store()
    try:
        if opts.resume:
            run = store.get_run(opts.resume)
            cfg = dict(run.config)
            if not cfg.get("dataset") or not Path(cfg["dataset"]).is_file():
                raise ConfigError(
                    f"run {run.id}: its dataset {cfg.get('dataset')!r} is gone",
                    hint="restore the file, or start a new run",
                )
            if cfg.get("dataset_hash") and content_hash(cfg["dataset"]) != cfg["dataset_hash"]:
                raise ConfigError(
                    f"run {run.id}: the dataset {cfg['dataset']} changed since the run started",
                    hint="start a new run (without --resume) for the new data",
                )
            run_id = run.id
        else:
            cfg = _resolved_config(settings, opts)
            run_id = ""
        rows = load_rows(cfg["dataset"], cfg["rows"] or None)
        if opts.resume:  # the run's own judge; a new run's cfg was read from settings.judge
            settings = dataclasses.replace(settings, judge=judge_of_run(settings, cfg))

        policy = policy_from_settings(
            settings,
            model=cfg["model"],
            base_url=cfg["base_url"],
            api_key_env=cfg.get("api_key_env") or None,
            concurrency=opts.concurrency,
        )
        judge = judge_from_settings(settings)
        if not run_id:
            run = store.create_run(
                model=cfg["model"],
                base_url=cfg["base_url"],
                dataset=cfg["dataset"],
                judge_model=cfg["judge_model"],
                judge_mode=cfg["judge_mode"],
                config=cfg,
                note=opts.note,
            )
            run_id = run.id
        else:
            store.set_run_status(run_id, "running")
        done = store.done_keys(run_id)
        todo = [(row, i) for row in rows for i in range(int(cfg["samples"])) if (row.row_id, i) not in done]
        total = len(rows) * int(cfg["samples"])
        if on_start:
            on_start(run_id, total, total - len(todo))

        processed = 0
        fatal: list[SvgrftError] = []
        renderer = renderer_from_settings(settings)
        scorer = None
        t_start = time.perf_counter()
        started: asyncio.Future | None = None
        try:
            if todo:
                # the browser starts while the first replies are being generated
                started = asyncio.ensure_future(renderer.start())
                scorer = await scorer_for(settings, judge, renderer=renderer, use_cache=opts.use_cache, store=store)

            async def one(row: Any, idx: int) -> None:
                nonlocal processed
                t0 = time.perf_counter()
                rec = SampleRecord(
                    row_id=row.row_id, sample_index=idx, prompt=row.prompt, requirements=list(row.requirements)
                )
                try:
                    gens = await policy.generate(
                        row.messages, n=1, temperature=cfg["temperature"], max_tokens=cfg["max_tokens"]
                    )
                except SvgrftError as e:
                    kind = FailureKind.parse(getattr(e, "kind", None))
                    if kind is not None and kind.fatal:
                        fatal.append(e)
                        raise
                    rec.status, rec.reason = "error", f"generation failed: {e.message}"
                    rec.timings = {"generate": round((time.perf_counter() - t0) * 1000, 3)}
                    store.add_sample(run_id, rec)
                    processed += 1
                    if on_sample:
                        on_sample(rec)
                    return
                gen = gens[0] if gens else None
                t_gen = (time.perf_counter() - t0) * 1000
                text = gen.text if gen else None
                if started is not None:
                    await asyncio.shield(started)  # raises RenderError when no browser can start
                result = await scorer.score_reply(text, row.requirements, row.prompt)
                if result.fatal:
                    fatal.append(
                        SvgrftError(
                            result.reason,
                            hint="check the judge key, model and base URL (judge.*, OPENAI_API_KEY, OPENAI_BASE_URL)",
                        )
                    )
                    raise _Fatal()
                rec.reply = text
                rec.svg, rec.png, rec.png_sha256 = result.svg, result.png, result.png_sha256
                rec.score, rec.is_valid, rec.reason = result.score, result.is_valid, result.reason
                rec.gate, rec.flags = result.gate, list(result.flags)
                rec.fulfilled, rec.total = result.fulfilled, result.total
                rec.verdicts = [v.to_dict() for v in result.verdicts]
                rec.judge_cached, rec.judge_calls = result.cached, result.judge_calls
                rec.timings = {
                    "generate": round(t_gen, 3),
                    **result.timings,
                    "sample_total": round((time.perf_counter() - t0) * 1000, 3),
                }
                rec.usage = {"policy": dict(gen.usage) if gen else {}, "judge": dict(result.usage)}
                rec.extra = {
                    "finish_reason": gen.finish_reason if gen else None,
                    "judge_reasoning": result.reasoning or None,
                    "extraction_method": result.extraction_method,
                    "render_error": result.render_error,
                    "render_warnings": result.render_warnings[:10],
                    "infra_error": result.infra_error,
                }
                rec.status = "error" if result.infra_error else "done"
                store.add_sample(run_id, rec)
                processed += 1
                if on_sample:
                    on_sample(rec)

            tasks = [asyncio.ensure_future(one(row, i)) for row, i in todo]
            if tasks:
                await _gather_fail_fast(tasks)
            if started is not None:
                await started
        except (_Fatal, SvgrftError):
            store.set_run_status(run_id, "failed")
            if fatal:
                raise fatal[0] from None
            raise
        except asyncio.CancelledError:
            store.set_run_status(run_id, "interrupted")
            raise
        except BaseException:
            store.set_run_status(run_id, "failed")
            raise
        finally:
            if started is not None and not started.done():
                started.cancel()
            if started is not None:
                try:
                    await started
                except BaseException:
                    pass
            for closer in (scorer.judge.aclose() if scorer else judge.aclose(), policy.aclose(), renderer.close()):
                try:
                    await asyncio.shield(closer)
                except BaseException:
                    pass

        from svgrft.workflow.run_summary import summarize_run

        summary = summarize_run(store, run_id)
        status = "finished" if summary["counts"]["error"] == 0 and summary["counts"]["missing"] == 0 else "incomplete"
        store.set_run_status(run_id, status)
        summary["status"] = status
        inv = {
            "wall_s": round(time.perf_counter() - t_start, 3),
            "processed": processed,
            "judge": dict(scorer.stats) if scorer else {},
            "gates": dict(scorer.gate_counts) if scorer else {},
        }
        summary["invocation"] = inv
        return EvalOutcome(run_id, status, summary, processed, total - len(todo), inv)
    finally:
        if own_store:
            store.close()


class _Fatal(Exception):
    pass


async def _gather_fail_fast(tasks: list[asyncio.Future]) -> None:
    """Wait for all tasks; on the first exception cancel the rest and raise it."""
    try:
        pending = set(tasks)
        while pending:
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            for t in finished:
                if not t.cancelled() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
