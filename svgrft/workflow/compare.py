"""compare-epochs: collect two sides of rollouts, score them with the training scorer, report.

Flow: a :class:`RolloutSource` collects raw samples (reply text, optional training reward) for a
"before" and an "after" side → :func:`score_collected` scores every reply with the same
:class:`~svgrft.core.scoring.Scorer` the evaluator uses (judge cache on, so numbers are comparable
and reruns are cheap) → :func:`build_comparison` → :func:`write_outputs` (``index.html``,
``before_after.png``, ``comparison.json``).

Sources:

``TracingSource``  the rollouts Fireworks recorded for the job on the tracing gateway; epochs are
                   assigned by :mod:`svgrft.core.epochs` (timing, not tags).
``ReplaySource``   fresh replies from the job's base model and its output model, same prompts.
``RunsSource``     two local runs of the run store (``svgrft eval``), already scored.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from svgrft.core.compare_report import Comparison, PromptRow, Sample
from svgrft.errors import ApiError, ConfigError, DatasetError, JudgeError, NotFoundError, SvgrftError

__all__ = ["RawSample", "RowInfo", "Collected", "RolloutSource", "TracingSource", "ReplaySource", "RunsSource",
           "job_epoch_status", "load_rows", "score_async", "build_comparison", "write_outputs_async", "finish",
           "finish_async", "run_compare"]

Progress = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


# --------------------------------------------------------------------------------------- model
@dataclass
class RawSample:
    row_id: str
    reply: str | None
    ref: str = ""
    reward: float | None = None
    timestamp: float | None = None
    scored: Sample | None = None  # already scored (runs source)


@dataclass
class RowInfo:
    row_id: str
    prompt: str
    requirements: list[str]
    note: str = ""


@dataclass
class Collected:
    source: str
    title: str
    before_label: str
    after_label: str
    before: dict[str, list[RawSample]]
    after: dict[str, list[RawSample]]
    rows: dict[str, RowInfo]
    job_id: str | None = None
    findings: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


class RolloutSource(Protocol):
    name: str

    def collect(self, progress: Progress = _quiet) -> Collected: ...


# --------------------------------------------------------------------------------------- helpers
def load_rows(settings: Any, dataset: str | None) -> tuple[dict[str, Any], Path]:
    """DatasetRows by id from ``--dataset``, else the config's ``dataset.train``, else the bundled file."""
    from svgrft.core.dataset import BUNDLED_DATASET, load_dataset, resolve_path

    if dataset:
        path = Path(dataset).expanduser()
        if not path.is_file():
            raise DatasetError(f"dataset file {path} not found",
                               hint="pass the JSONL file that was uploaded for the job with --dataset")
    else:
        path = resolve_path(settings["dataset.train"])
        if not path.is_file():
            path = BUNDLED_DATASET
    rows = load_dataset(path)
    return {r.row_id: r for r in rows}, path


def _epoch_int(v: Any) -> int | None:
    try:
        return int(float(v)) if v is not None and v != "" else None
    except (TypeError, ValueError):
        return None


def job_epoch_status(job: dict) -> dict[str, Any]:
    """total epochs, epoch slots with rollouts, finished epochs, state — from a job's wire dict."""
    state = str(job.get("state") or "JOB_STATE_UNSPECIFIED")
    tc = job.get("trainingConfig") or {}
    prog = job.get("jobProgress") or {}
    total = _epoch_int(tc.get("epochs"))
    cur = _epoch_int(prog.get("epoch"))
    percent = _epoch_int(prog.get("percent")) or 0
    if state == "JOB_STATE_COMPLETED":
        finished = total if total else (cur + 1 if cur is not None else 1)
        slots = finished
    elif state == "JOB_STATE_EARLY_STOPPED":
        finished = cur + 1 if cur is not None else (total or 1)
        slots = finished
    elif state in ("JOB_STATE_PENDING", "JOB_STATE_CREATING", "JOB_STATE_VALIDATING") or cur is None:
        finished, slots = 0, 0
    elif state == "JOB_STATE_RUNNING":
        finished = cur + (1 if percent >= 100 else 0)
        slots = cur + 1
    else:  # failed, cancelled, paused…: the epoch it stopped in is incomplete
        finished = cur
        slots = cur + 1
    total = total or slots
    return {"state": state, "total": total, "slots": slots, "finished": min(finished, total),
            "current": cur, "percent": percent}


def _n_samples(job: dict) -> int | None:
    n = _epoch_int((job.get("inferenceParameters") or {}).get("responseCandidatesCount"))
    return n if n and n > 0 else None


def _row_info(row: Any) -> RowInfo:
    return RowInfo(row.row_id, row.prompt, list(row.requirements))


# --------------------------------------------------------------------------------------- tracing
class TracingSource:
    """The job's own rollouts, from the tracing gateway, first vs last (finished) epoch."""

    name = "tracing"

    def __init__(self, settings: Any, job_id: str, *, dataset: str | None = None, tags: Sequence[str] = (),
                 epochs: Sequence[int] | None = None, fw_client: Any = None, tracing_client: Any = None,
                 workers: int = 4):
        self.settings = settings
        self.job_id = job_id
        self.dataset = dataset
        self.tags = [t.strip() for t in tags if t and t.strip()]
        for t in self.tags:
            if ":" not in t:
                raise ConfigError(f"--tag {t!r} is not KEY:VALUE", hint="e.g. --tag invocation_id:ancient-phone-322664")
        self.epochs = list(epochs) if epochs else None
        self._fw = fw_client
        self._tracing = tracing_client
        self.workers = max(1, workers)
        self.grouping: Any = None

    def collect(self, progress: Progress = _quiet) -> Collected:
        from svgrft.clients.fireworks import make_client
        from svgrft.clients.tracing import TracingClient
        from svgrft.core import epochs as ep
        from svgrft.workflow.jobs import get_job, job_id_of, job_summary

        jid = job_id_of(self.job_id)
        fw = self._fw or make_client(self.settings)
        job = get_job(fw, jid)
        summary = job_summary(job, fw.account_id)
        st = job_epoch_status(job)
        progress(f"job {jid}: {summary['state_label'].lower()}, epochs {st['finished']}/{st['total']} finished"
                 f", dataset {summary['dataset'] or '?'}")
        # fail early (before any gateway traffic) when the job cannot have two epochs to compare
        choice = ep.choose_epochs(st["total"], st["finished"], self.epochs, st["state"])
        rows, path = load_rows(self.settings, self.dataset)
        created = ep.parse_time(job.get("createTime"))
        ended = ep.parse_time(job.get("completedTime")) if st["state"] in (
            "JOB_STATE_COMPLETED", "JOB_STATE_EARLY_STOPPED") else None
        from_ts = created - 300 if created else None
        to_ts = ended + 900 if ended else None
        tracing = self._tracing or TracingClient.from_settings(self.settings)
        progress(f"reading traces of {len(rows)} dataset rows from {tracing.base_url}"
                 + (f" (tags {', '.join(self.tags)})" if self.tags else ""))
        raw: list = []
        truncated: list[str] = []
        try:
            def one(row_id: str):
                return row_id, tracing.fetch([f"row_id:{row_id}", *self.tags], from_ts=from_ts, to_ts=to_ts)

            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                for row_id, res in pool.map(one, list(rows)):
                    raw.extend(res.traces)
                    if res.truncated:
                        truncated.append(row_id)
        finally:
            if self._tracing is None:
                tracing.close()
        traces, dropped = ep.parse_traces(raw)
        if not traces:
            why = f"{sum(dropped.values())} unusable traces" if dropped else "no traces"
            raise SvgrftError(
                f"{why} for job {jid} on the tracing gateway ({len(rows)} row ids of {path.name} queried"
                + (f", tags {', '.join(self.tags)}" if self.tags else "") + ")",
                hint=f"the rows must be those of the job's dataset ({summary['dataset'] or 'unknown'}): pass its "
                     f"JSONL with --dataset; or compare models instead with --source replay")
        self.grouping = g = ep.group_epochs(traces, epochs=st["slots"] or None, per_row=_n_samples(job),
                                            finished_epochs=st["finished"], expected_rows=list(rows),
                                            dropped=dict(dropped))
        if g.epochs != st["slots"] and st["slots"]:
            g.warnings.append(f"the traces suggest {g.epochs} epochs, the job reports {st['slots']}")
        crowd = _crowding(traces, g, st["slots"])
        if crowd:
            g.warnings.append(crowd)
        if truncated:
            g.warnings.append(f"trace listing was cut at the client limit for {len(truncated)} rows "
                              f"({', '.join(truncated[:5])}): narrow with --tag")
        before, after = choice.before, choice.after
        findings = [f"dataset: {path} ({len(rows)} rows)", *g.findings]
        warnings = list(g.warnings)
        if choice.note:
            warnings.insert(0, choice.note)

        def side(e: int) -> dict[str, list[RawSample]]:
            out = {}
            for row_id, rs in g.epoch(e).items():
                out[row_id] = [RawSample(row_id, r.reply, ref=r.rollout_id, reward=r.reward, timestamp=r.timestamp)
                               for r in rs]
            return out

        b, a = side(before), side(after)
        if not b or not a:
            empty = before if not b else after
            raise SvgrftError(f"epoch {empty} of job {jid} has no rollouts among the traces found",
                              hint="pick other epochs with --epochs A,B (0-based), or use --source replay")
        infos = {rid: _row_info(rows[rid]) for rid in rows if rid in b or rid in a}
        for rid in set(b) | set(a):
            if rid not in infos:  # a row the local dataset does not have: read it from the trace
                t = next((r.trace for r in g.rows[rid].groups[after] + g.rows[rid].groups[before]), None)
                prompt = (t.prompt if t else "") or ""
                infos[rid] = RowInfo(rid, prompt, ep.requirements_from_prompt(prompt),
                                     note="row not in the local dataset: requirements read from the prompt")
        for rid, re_ in g.rows.items():
            if re_.note and rid in infos:
                infos[rid].note = (infos[rid].note + "; " if infos[rid].note else "") + re_.note
        meta = {"job": summary, "epochs": {"before": before, "after": after, "total": st["total"],
                                           "finished": st["finished"], "state": st["state"]},
                "grouping": g.summary(), "dataset": str(path), "gateway_requests": getattr(tracing, "requests", None)}
        return Collected(source=self.name, title=f"svgrft compare-epochs · job {jid}",
                         before_label=f"epoch {before}", after_label=f"epoch {after}", before=b, after=a,
                         rows=infos, job_id=jid, findings=findings, warnings=warnings, meta=meta)


def _crowding(traces: Sequence[Any], g: Any, slots: int) -> str | None:
    """A warning when rows have far more rollouts than epochs × k: other runs on the same dataset rows
    (another job, an eval) inside the job's time window. Names the invocation ids to narrow with --tag."""
    from collections import Counter

    if not g.per_row or not slots or not g.rows:
        return None
    counts = sorted(re_.count for re_ in g.rows.values())
    median = counts[len(counts) // 2]
    if median <= 1.5 * slots * g.per_row:
        return None
    inv = Counter(t.tags.get("invocation_id") for t in traces if t.tags.get("invocation_id"))
    top = ", ".join(f"invocation_id:{k} ({n})" for k, n in inv.most_common(3))
    return (f"rows have ~{median} rollouts, expected {slots}×{g.per_row}: other runs on the same rows may be mixed "
            f"in" + (f"; narrow with --tag, e.g. {top}" if top else "; narrow with --tag"))


# --------------------------------------------------------------------------------------- replay
class ReplaySource:
    """Fresh replies from the job's base model (before) and output model (after) for the same prompts."""

    name = "replay"

    def __init__(self, settings: Any, job_id: str, *, dataset: str | None = None, samples: int = 1,
                 max_rows: int | None = None, fw_client: Any = None, generate: Callable | None = None,
                 after_model: str | None = None):
        self.settings = settings
        self.after_model = after_model  # the model string to call for "after" (e.g. <model>#<deployment>)
        self.job_id = job_id
        self.dataset = dataset
        self.samples = max(1, samples)
        self.max_rows = max_rows
        self._fw = fw_client
        self._generate = generate  # async (model, messages, n) -> list[str|None]; default: svgrft.clients.policy

    def collect(self, progress: Progress = _quiet) -> Collected:
        from svgrft.clients.fireworks import make_client
        from svgrft.workflow.jobs import get_job, job_id_of, job_summary

        jid = job_id_of(self.job_id)
        fw = self._fw or make_client(self.settings)
        job = get_job(fw, jid)
        summary = job_summary(job, fw.account_id)
        base, out = summary["base_model"], summary["output_model"]
        if not base or not out:
            raise SvgrftError(f"job {jid} names no {'base' if not base else 'output'} model",
                              hint="replay needs both; compare the recorded rollouts instead (--source tracing)")
        if not summary["succeeded"]:
            raise SvgrftError(f"job {jid} has not produced its output model yet ({summary['state_label'].lower()})",
                              hint="wait for it to complete (`svgrft jobs watch`), or use --source tracing")
        rows, path = load_rows(self.settings, self.dataset)
        chosen = list(rows.values())
        if self.max_rows:
            chosen = chosen[:self.max_rows]
        from svgrft.workflow.heldout import split_info

        split = split_info(fw, job, self.settings, chosen, path)
        served = self.after_model or out
        progress(f"split: {split['text']}")
        progress(f"replaying {len(chosen)} prompts × {self.samples} on {base} and {served}")
        before, after = asyncio.run(self._both(base, served, chosen))
        infos = {r.row_id: _row_info(r) for r in chosen}
        meta = {"job": summary, "base_model": base, "output_model": out, "dataset": str(path),
                "samples": self.samples, "split": split, "after_model_string": served}
        return Collected(source=self.name, title=f"svgrft compare-epochs · job {jid} (replay, {split['split']} "
                                                 f"prompts)",
                         before_label="base model", after_label="trained model", before=before, after=after,
                         rows=infos, job_id=jid,
                         findings=[f"dataset: {path} ({len(chosen)} prompts)", f"split: {split['text']}",
                                   f"before: {base}", f"after: {served}",
                                   f"{self.samples} fresh replies per prompt and model"], meta=meta)

    async def _both(self, base: str, out: str, rows: list) -> tuple[dict, dict]:
        gen = self._generate or _policy_generate(self.settings)
        try:
            before = await self._gen_all(gen, base, rows, "base model")
            after = await self._gen_all(gen, out, rows, "output model")
        finally:
            closer = getattr(gen, "aclose", None)
            if closer is not None:
                await closer()
        return before, after

    async def _gen_all(self, gen: Callable, model: str, rows: list, what: str) -> dict[str, list[RawSample]]:
        sem = asyncio.Semaphore(max(1, int(self.settings.get("eval.concurrency", 8) or 8)))

        async def one(row):
            async with sem:
                try:
                    replies = await gen(model, [m for m in row.messages if m.get("role") != "assistant"],
                                        self.samples)
                except NotFoundError as e:
                    raise NotFoundError(f"the {what} {model} cannot be served: {e.message}",
                                        hint="a fine-tuned (LoRA) model needs an on-demand deployment: rerun "
                                             "with --deploy (svgrft deploys it for the replay and deletes it "
                                             "after), or `svgrft deploy " + model.split("#", 1)[0] + "` first",
                                        status=404) from None
            return row.row_id, [RawSample(row.row_id, rep, ref=f"{what} #{i}") for i, rep in enumerate(replies)]

        pairs = await asyncio.gather(*(one(r) for r in rows))
        return dict(pairs)


class _PolicyGenerate:
    """``await gen(model, messages, n) -> [text|None]`` over :mod:`svgrft.clients.policy` (Fireworks inference,
    FIREWORKS_API_KEY), with the evaluation's sampling settings; one client per model."""

    def __init__(self, settings: Any):
        self.settings = settings
        self._clients: dict[str, Any] = {}

    async def __call__(self, model: str, messages: list, n: int) -> list[str | None]:
        from svgrft.clients.policy import policy_from_settings

        client = self._clients.get(model)
        if client is None:
            client = self._clients[model] = policy_from_settings(self.settings, model=model)
        gens = await client.generate(messages, n=n, temperature=float(self.settings["eval.temperature"]),
                                     max_tokens=int(self.settings["eval.max_tokens"]))
        return [g.text for g in gens]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def _policy_generate(settings: Any) -> Callable:
    return _PolicyGenerate(settings)


# --------------------------------------------------------------------------------------- runs
class RunsSource:
    """Two local runs from the run store, already scored by `svgrft eval`."""

    name = "runs"

    def __init__(self, settings: Any, run_a: str, run_b: str, *, store: Any = None):
        self.settings = settings
        self.run_a, self.run_b = run_a, run_b
        self._store = store

    def collect(self, progress: Progress = _quiet) -> Collected:
        from svgrft.core.store import Store

        store = self._store or Store()
        try:
            ra, rb = store.get_run(self.run_a), store.get_run(self.run_b)
            if ra.id == rb.id:
                raise SvgrftError(f"--runs names run {ra.id} twice", hint="pass two different run ids")
            sa = store.samples(ra.id, include_png=True, status="done")
            sb = store.samples(rb.id, include_png=True, status="done")
        finally:
            if self._store is None:
                store.close()
        if not sa or not sb:
            empty = ra.id if not sa else rb.id
            raise SvgrftError(f"run {empty} has no scored samples", hint="finish it with `svgrft eval --resume`")
        progress(f"run {ra.id}: {len(sa)} samples ({ra.model}); run {rb.id}: {len(sb)} samples ({rb.model})")

        def side(samples) -> tuple[dict[str, list[RawSample]], dict[str, RowInfo]]:
            out: dict[str, list[RawSample]] = {}
            infos: dict[str, RowInfo] = {}
            for s in samples:
                verdicts = [v if isinstance(v, dict) else {} for v in (s.verdicts or [])]
                scored = Sample(score=s.score, is_valid=s.is_valid, reason=s.reason, fulfilled=s.fulfilled,
                                total=s.total, verdicts=verdicts, svg=s.svg, png=s.png,
                                ref=f"sample {s.sample_index}", judge_cached=s.judge_cached)
                out.setdefault(s.row_id, []).append(RawSample(s.row_id, s.reply, ref=scored.ref, scored=scored))
                infos.setdefault(s.row_id, RowInfo(s.row_id, s.prompt, list(s.requirements)))
            return out, infos

        before, ia = side(sa)
        after, ib = side(sb)
        infos = {**ib, **ia}
        common = set(before) & set(after)
        warnings = []
        if ra.judge_model != rb.judge_model or ra.judge_mode != rb.judge_mode:
            warnings.append(f"the runs were judged differently ({ra.judge_model}/{ra.judge_mode} vs "
                            f"{rb.judge_model}/{rb.judge_mode}): scores are not strictly comparable")
        only = (set(before) | set(after)) - common
        if only:
            warnings.append(f"{len(only)} prompts are in one run only (left out of the paired statistics)")
        for rid in common:
            if ia[rid].requirements != ib[rid].requirements:
                warnings.append(f"row {rid}: the two runs have different requirements")
        la = f"{ra.id} ({_short_model(ra.model)})"
        lb = f"{rb.id} ({_short_model(rb.model)})"
        return Collected(source=self.name, title=f"svgrft compare · {ra.id} vs {rb.id}", before_label=la,
                         after_label=lb, before=before, after=after, rows=infos,
                         findings=[f"{len(common)} prompts in both runs", f"before: run {ra.id}, model {ra.model}",
                                   f"after: run {rb.id}, model {rb.model}"],
                         warnings=warnings, meta={"runs": [ra.to_dict(), rb.to_dict()]})


def _short_model(model: str) -> str:
    return model.rsplit("/", 1)[-1] if model else "?"


# --------------------------------------------------------------------------------------- scoring
def _sample_from(res: Any, raw: RawSample) -> Sample:
    verdicts = []
    for v in getattr(res, "verdicts", []) or []:
        verdicts.append(v.to_dict() if hasattr(v, "to_dict") else dict(v))
    score = res.score
    if getattr(res, "infra_error", None):
        score = None  # not a measurement of the model: leave it out of the means
    return Sample(score=score, is_valid=bool(res.is_valid), reason=res.reason or "", fulfilled=res.fulfilled,
                  total=res.total, verdicts=verdicts, svg=res.svg, png=res.png, reward=raw.reward, ref=raw.ref,
                  judge_cached=bool(getattr(res, "cached", False)), timestamp=raw.timestamp)


async def _start_renderer(renderer: Any, settings: Any) -> tuple[Any, bool]:
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


async def score_async(settings: Any, col: Collected, *, renderer: Any, use_cache: bool = True,
                      progress: Progress = _quiet, judge: Any = None) -> dict:
    """Score every unscored sample in place (``RawSample.scored``); returns scorer statistics.

    A judge failure that every sample would repeat (bad key, unknown model) raises JudgeError."""
    from svgrft.core.scoring import scorer_from_settings

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
        progress(f"scoring {len(todo)} replies (judge {scorer.judge_model}, {scorer.judge_mode}, "
                 f"cache {'on' if use_cache else 'off'})")
        sem = asyncio.Semaphore(max(2, 2 * int(settings.get("judge.concurrency", 8) or 8)))
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
            raise JudgeError(f"the judge failed: {fatal[0].reason}",
                             hint="check OPENAI_API_KEY / OPENAI_BASE_URL and the judge model (`svgrft doctor`)")
        stats.update(dict(scorer.stats))
        stats["judge_model"] = scorer.judge_model
        stats["judge_mode"] = scorer.judge_mode
    finally:
        await scorer.aclose()
    return stats


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
    return Comparison(title=col.title, source=col.source, before_label=col.before_label,
                      after_label=col.after_label, rows=rows, job_id=col.job_id, findings=list(col.findings),
                      warnings=list(col.warnings), meta=meta)


def _natural(row_id: str) -> tuple:
    import re

    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", row_id))


# --------------------------------------------------------------------------------------- outputs
def _mkdir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the output directory {out_dir}: {e.strerror or e}",
                          hint="pass a writable directory with --out") from None


async def write_outputs_async(cmp: Comparison, out_dir: Path, *, renderer: Any, rows: int = 6, pick: str = "best",
                              seed: int = 0) -> dict[str, str]:
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
    data = cmp.to_json()
    data["contact_sheet_rows"] = [r.row_id for r in picked]
    (out_dir / "comparison.json").write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    files["json"] = str(out_dir / "comparison.json")
    return files


async def finish_async(settings: Any, col: Collected, out_dir: Path, *, use_cache: bool = True, rows: int = 6,
                       pick: str = "best", seed: int = 0, progress: Progress = _quiet, renderer: Any = None,
                       judge: Any = None) -> tuple[Comparison, dict[str, str]]:
    """Score, build and write, with one browser for both the scoring renders and the contact sheet."""
    renderer, owned = await _start_renderer(renderer, settings)
    try:
        stats = await score_async(settings, col, renderer=renderer, use_cache=use_cache, progress=progress,
                                  judge=judge)
        cmp = build_comparison(col, stats)
        progress(f"writing {out_dir}/index.html and before_after.png")
        files = await write_outputs_async(cmp, out_dir, renderer=renderer, rows=rows, pick=pick, seed=seed)
    finally:
        if owned:
            await _close_renderer(renderer)
    return cmp, files


def finish(settings: Any, col: Collected, out_dir: Path, **kw: Any) -> tuple[Comparison, dict[str, str]]:
    """Synchronous :func:`finish_async`."""
    return asyncio.run(finish_async(settings, col, out_dir, **kw))


def run_compare(settings: Any, source: RolloutSource, *, out_dir: Path, progress: Progress = _quiet,
                **kw: Any) -> tuple[Comparison, dict[str, str]]:
    """The whole command: collect → score → build → write. Returns the comparison and the files written."""
    col = source.collect(progress)
    return finish(settings, col, out_dir, progress=progress, **kw)
