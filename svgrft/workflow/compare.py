"""compare-epochs: collect two sides of rollouts, score them with the training scorer, report.

Flow: a :class:`RolloutSource` collects samples for a "before" and an "after" side → unscored replies
are scored by :func:`score_async` with the same :class:`~svgrft.core.scoring.Scorer` the evaluator uses
(judge cache on) → recorded samples get their picture from :func:`render_missing` → :func:`build_comparison`
→ :func:`write_outputs_async` (``index.html``, ``before_after.png``, ``reward_curve.png``, ``comparison.json``).

Sources:

``RecordsSource``  the rollouts the job's own evaluator recorded while it trained (svgrft.core.records):
                   the replies and the rewards the model was trained on, so no judge call (``--rejudge``
                   scores again); epochs split by the policy model the records name, else by time
                   (:mod:`svgrft.core.epochs`); the reward curve over every recorded rollout.
``ReplaySource``   fresh replies from the job's base model and its output model, same prompts.
``RunsSource``     two local runs of the run store (``svgrft eval``), already scored.

Modules: :mod:`~svgrft.workflow.compare_model` (what is collected) → :mod:`~svgrft.workflow.compare_records`
and :mod:`~svgrft.workflow.compare_sources` (the sources) → this one (scoring, report, outputs). The sources'
names are imported here, so ``svgrft.workflow.compare`` is the one module the commands use.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svgrft.config import SCHEMA
from svgrft.core.compare_report import Comparison, PromptRow, Sample
from svgrft.core.plural import plural
from svgrft.errors import ConfigError, JudgeError
from svgrft.workflow.compare_model import (
    Collected,
    Progress,
    RawSample,
    RolloutSource,
    RowInfo,
    job_epoch_status,
    load_rows,
    quiet,
)
from svgrft.workflow.compare_records import RecordsSource, download_job_dataset, fetch_records, job_reward_curve
from svgrft.workflow.compare_sources import ReplaySource, RunsSource

if TYPE_CHECKING:
    from svgrft.config import Settings

__all__ = [
    "RawSample",
    "RowInfo",
    "Collected",
    "RolloutSource",
    "RecordsSource",
    "ReplaySource",
    "RunsSource",
    "job_epoch_status",
    "load_rows",
    "score_async",
    "render_missing",
    "build_comparison",
    "write_outputs_async",
    "finish",
    "finish_async",
    "run_compare",
    "download_job_dataset",
    "fetch_records",
    "job_reward_curve",
]


# --------------------------------------------------------------------------------------- scoring
def _sample_from(res: Any, raw: RawSample) -> Sample:
    verdicts = []
    for v in getattr(res, "verdicts", []) or []:
        verdicts.append(v.to_dict() if hasattr(v, "to_dict") else dict(v))
    score = res.score
    if getattr(res, "infra_error", None):
        score = None  # not a measurement of the model: leave it out of the means
    return Sample(
        score=score,
        is_valid=bool(res.is_valid),
        reason=res.reason or "",
        fulfilled=res.fulfilled,
        total=res.total,
        verdicts=verdicts,
        svg=res.svg,
        png=res.png,
        reward=raw.reward,
        ref=raw.ref,
        judge_cached=bool(getattr(res, "cached", False)),
        timestamp=raw.timestamp,
    )


async def _start_renderer(renderer: Any, settings: Settings) -> tuple[Any, bool]:
    """(started renderer, owned). A given SyncRenderer is started here, once, before concurrent use."""
    import inspect

    if renderer is None:
        from svgrft.core.scoring import renderer_from_settings

        renderer = renderer_from_settings(settings)
        await renderer.start()
        return renderer, True
    start = getattr(renderer, "start", None)
    if start is not None:
        if inspect.iscoroutinefunction(start):
            await start()
        else:
            await asyncio.to_thread(start)
    return renderer, False


async def _close_renderer(renderer: Any) -> None:
    res = renderer.close()
    if asyncio.iscoroutine(res):
        await res


async def score_async(
    settings: Settings,
    col: Collected,
    *,
    renderer: Any,
    use_cache: bool = True,
    progress: Progress = quiet,
    judge: Any = None,
) -> dict:
    """Score every unscored sample in place (``RawSample.scored``); returns scorer statistics.

    A judge failure that every sample would repeat (bad key, unknown model) raises JudgeError."""
    from svgrft.workflow.model_eval import scorer_from_settings

    todo: list[tuple[RawSample, RowInfo]] = []
    for side in ("before", "after"):
        for row_id, samples in getattr(col, side).items():
            info = col.rows.get(row_id)
            if info is None:
                continue
            todo.extend((s, info) for s in samples if s.scored is None)
    stats: dict[str, Any] = {"to_score": len(todo)}
    if not todo:
        return stats
    scorer = await scorer_from_settings(settings, renderer=renderer, use_cache=use_cache, judge=judge)
    try:
        progress(
            f"scoring {plural(len(todo), 'reply', 'replies')} (judge {scorer.judge_model}, {scorer.judge_mode}, "
            f"cache {'on' if use_cache else 'off'})"
        )
        sem = asyncio.Semaphore(max(2, 2 * (settings.judge.concurrency or SCHEMA["judge.concurrency"].default)))
        fatal: list[Any] = []
        done = [0]
        last = [time.monotonic()]

        async def one(raw: RawSample, info: RowInfo) -> None:
            async with sem:
                if fatal:
                    return
                res = await scorer.score_reply(raw.reply, info.requirements, info.prompt)
                if res.fatal and not fatal:
                    fatal.append(res)
                raw.scored = _sample_from(res, raw)
                done[0] += 1
                if time.monotonic() - last[0] > 5:
                    last[0] = time.monotonic()
                    progress(f"scored {done[0]}/{len(todo)}")

        await asyncio.gather(*(one(raw, info) for raw, info in todo))
        if fatal:
            raise JudgeError(
                f"the judge failed: {fatal[0].reason}",
                hint="check OPENAI_API_KEY / OPENAI_BASE_URL and the judge model (`svgrft doctor`)",
            )
        stats.update(dict(scorer.stats))
        stats["judge_model"] = scorer.judge_model
        stats["judge_mode"] = scorer.judge_mode
    finally:
        await scorer.aclose()
    return stats


async def render_missing(col: Collected, renderer: Any, *, progress: Progress = quiet, concurrency: int = 8) -> int:
    """Render the image of every scored sample that has an SVG but no PNG (records: the score is the
    recorded reward, only the picture is made here). Identical SVGs are rendered once. Returns the count."""
    import inspect

    todo = [
        s.scored
        for side in (col.before, col.after)
        for ss in side.values()
        for s in ss
        if s.scored is not None and s.scored.png is None and s.scored.svg
    ]
    if not todo:
        return 0
    progress(f"rendering {len(todo)} recorded SVGs (no judge calls)")
    by_svg: dict[str, list] = {}
    for sm in todo:
        by_svg.setdefault(sm.svg, []).append(sm)
    sem = asyncio.Semaphore(max(1, concurrency))
    render = renderer.render

    async def one(svg: str, samples: list) -> None:
        async with sem:
            if inspect.iscoroutinefunction(render):
                res = await render(svg)
            else:
                res = await asyncio.to_thread(render, svg)
        for sm in samples:
            if res.ok:
                sm.png = res.png
            elif not sm.reason:
                sm.reason = f"not rendered here: {res.reason}"

    await asyncio.gather(*(one(svg, ss) for svg, ss in by_svg.items()))
    return len(by_svg)


def build_comparison(col: Collected, score_stats: dict | None = None) -> Comparison:
    rows = []
    for row_id in sorted(set(col.before) | set(col.after), key=_natural):
        info = col.rows.get(row_id) or RowInfo(row_id, "", [])
        b = [s.scored for s in col.before.get(row_id, []) if s.scored is not None]
        a = [s.scored for s in col.after.get(row_id, []) if s.scored is not None]
        rows.append(PromptRow(row_id, info.prompt, info.requirements, before=b, after=a, note=info.note))
    meta = dict(col.meta)
    if score_stats:
        meta["scoring"] = score_stats
        if score_stats.get("judge_model"):
            meta["judge_model"] = score_stats["judge_model"]
    return Comparison(
        title=col.title,
        source=col.source,
        before_label=col.before_label,
        after_label=col.after_label,
        rows=rows,
        job_id=col.job_id,
        findings=list(col.findings),
        warnings=list(col.warnings),
        meta=meta,
    )


def _natural(row_id: str) -> tuple:
    import re

    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", row_id))


# --------------------------------------------------------------------------------------- outputs
def _mkdir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot create the output directory {out_dir}: {e.strerror or e}",
            hint="pass a writable directory with --out",
        ) from None


async def write_outputs_async(
    cmp: Comparison, out_dir: Path, *, renderer: Any, rows: int = 6, pick: str = "best", seed: int = 0
) -> dict[str, str]:
    """index.html, before_after.png (the contact sheet, screenshotted by headless Chromium), comparison.json."""
    import json

    from svgrft.core.compare_report import contact_sheet_html, index_html, pick_rows

    _mkdir(out_dir)
    files: dict[str, str] = {}
    index = out_dir / "index.html"
    index.write_text(index_html(cmp), encoding="utf-8")
    files["html"] = str(index)
    picked = pick_rows(cmp, rows, pick, seed)
    if picked:
        html, width, _height = contact_sheet_html(cmp, picked, pick=pick)
        shot = renderer.screenshot_html
        import inspect

        if inspect.iscoroutinefunction(shot):
            png = await shot(html, width)
        else:
            png = await asyncio.to_thread(shot, html, width)
        sheet = out_dir / "before_after.png"
        sheet.write_bytes(png)
        files["png"] = str(sheet)
    curve = cmp.meta.get("reward_curve")
    if curve:
        from svgrft.core.compare_report import reward_curve_html

        html, width, height = reward_curve_html(curve, f"{cmp.title}: mean training reward per epoch")
        shot = renderer.screenshot_html
        import inspect

        if inspect.iscoroutinefunction(shot):
            png = await shot(html, width, height)
        else:
            png = await asyncio.to_thread(shot, html, width, height)
        (out_dir / "reward_curve.png").write_bytes(png)
        files["reward_curve"] = str(out_dir / "reward_curve.png")
    data = cmp.to_json()
    data["contact_sheet_rows"] = [r.row_id for r in picked]
    (out_dir / "comparison.json").write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    files["json"] = str(out_dir / "comparison.json")
    return files


async def finish_async(
    settings: Settings,
    col: Collected,
    out_dir: Path,
    *,
    use_cache: bool = True,
    rows: int = 6,
    pick: str = "best",
    seed: int = 0,
    progress: Progress = quiet,
    renderer: Any = None,
    judge: Any = None,
) -> tuple[Comparison, dict[str, str]]:
    """Score, build and write, with one browser for both the scoring renders and the contact sheet."""
    renderer, owned = await _start_renderer(renderer, settings)
    try:
        stats = await score_async(settings, col, renderer=renderer, use_cache=use_cache, progress=progress, judge=judge)
        rendered = await render_missing(col, renderer, progress=progress)
        if rendered:
            stats["rendered_from_records"] = rendered
        cmp = build_comparison(col, stats)
        progress(f"writing {out_dir}/index.html and before_after.png")
        files = await write_outputs_async(cmp, out_dir, renderer=renderer, rows=rows, pick=pick, seed=seed)
    finally:
        if owned:
            await _close_renderer(renderer)
    return cmp, files


def finish(settings: Settings, col: Collected, out_dir: Path, **kw: Any) -> tuple[Comparison, dict[str, str]]:
    """Synchronous :func:`finish_async`."""
    return asyncio.run(finish_async(settings, col, out_dir, **kw))


def run_compare(
    settings: Settings, source: RolloutSource, *, out_dir: Path, progress: Progress = quiet, **kw: Any
) -> tuple[Comparison, dict[str, str]]:
    """The whole command: collect → score → build → write. Returns the comparison and the files written."""
    col = source.collect(progress)
    return finish(settings, col, out_dir, progress=progress, **kw)
