"""compare-epochs' other sources: fresh replies of the job's base and output models, or two local runs.

``ReplaySource`` replays the same prompts on the job's base model (before) and its output model (after),
through :mod:`svgrft.clients.policy`, and says which split the prompts are (:mod:`svgrft.workflow.heldout`).
``RunsSource`` compares two local runs of the run store (``svgrft eval``), already scored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from svgrft.config import SCHEMA
from svgrft.core.compare_report import Sample
from svgrft.core.plural import plural, plural_word
from svgrft.errors import NotFoundError, SvgrftError
from svgrft.workflow.compare_model import Collected, Progress, RawSample, RowInfo, load_rows, quiet, row_info

if TYPE_CHECKING:
    from svgrft.clients.fireworks import FireworksClient
    from svgrft.config import Settings


class ReplaySource:
    """Fresh replies from the job's base model (before) and output model (after) for the same prompts."""

    name = "replay"

    def __init__(
        self,
        settings: Settings,
        job_id: str,
        *,
        dataset: str | None = None,
        samples: int = 1,
        max_rows: int | None = None,
        fw_client: FireworksClient | None = None,
        generate: Callable | None = None,
        after_model: str | None = None,
    ):
        self.settings = settings
        self.after_model = after_model  # the model string to call for "after" (e.g. <model>#<deployment>)
        self.job_id = job_id
        self.dataset = dataset
        self.samples = max(1, samples)
        self.max_rows = max_rows
        self._fw = fw_client
        self._generate = generate  # async (model, messages, n) -> list[str|None]; default: svgrft.clients.policy

    def collect(self, progress: Progress = quiet) -> Collected:
        from svgrft.clients.fireworks import make_client
        from svgrft.workflow.jobs import get_job, job_id_of, job_summary

        jid = job_id_of(self.job_id)
        fw = self._fw or make_client(self.settings)
        job = get_job(fw, jid)
        summary = job_summary(job, fw.account_id)
        base, out = summary["base_model"], summary["output_model"]
        if not base or not out:
            raise SvgrftError(
                f"job {jid} names no {'base' if not base else 'output'} model",
                hint="replay needs both; compare the recorded rollouts instead (--source tracing)",
            )
        if not summary["succeeded"]:
            raise SvgrftError(
                f"job {jid} has not produced its output model yet ({summary['state_label'].lower()})",
                hint="wait for it to complete (`svgrft jobs watch`), or use --source tracing",
            )
        rows, path = load_rows(self.settings.dataset, self.dataset)
        chosen = list(rows.values())
        if self.max_rows:
            chosen = chosen[: self.max_rows]
        from svgrft.workflow.heldout import split_info

        split = split_info(fw, job, self.settings.dataset, chosen, path)
        served = self.after_model or out
        progress(f"split: {split['text']}")
        progress(f"replaying {plural(len(chosen), 'prompt')} × {self.samples} on {base} and {served}")
        before, after = asyncio.run(self._both(base, served, chosen))
        infos = {r.row_id: row_info(r) for r in chosen}
        meta = {
            "job": summary,
            "base_model": base,
            "output_model": out,
            "dataset": str(path),
            "samples": self.samples,
            "split": split,
            "after_model_string": served,
        }
        return Collected(
            source=self.name,
            title=f"svgrft compare-epochs · job {jid} (replay, {split['split']} prompts)",
            before_label="base model",
            after_label="trained model",
            before=before,
            after=after,
            rows=infos,
            job_id=jid,
            findings=[
                f"dataset: {path} ({plural(len(chosen), 'prompt')})",
                f"split: {split['text']}",
                f"before: {base}",
                f"after: {served}",
                f"{plural(self.samples, 'fresh reply', 'fresh replies')} per prompt and model",
            ],
            meta=meta,
        )

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
        sem = asyncio.Semaphore(max(1, self.settings.eval.concurrency or SCHEMA["eval.concurrency"].default))

        async def one(row):
            async with sem:
                try:
                    replies = await gen(model, [m for m in row.messages if m.get("role") != "assistant"], self.samples)
                except NotFoundError as e:
                    raise NotFoundError(
                        f"the {what} {model} cannot be served: {e.message}",
                        hint="a fine-tuned (LoRA) model needs an on-demand deployment: rerun "
                        "with --deploy (svgrft deploys it for the replay and deletes it "
                        "after), or `svgrft deploy " + model.split("#", 1)[0] + "` first",
                        status=404,
                    ) from None
            return row.row_id, [RawSample(row.row_id, rep, ref=f"{what} #{i}") for i, rep in enumerate(replies)]

        pairs = await asyncio.gather(*(one(r) for r in rows))
        return dict(pairs)


class _PolicyGenerate:
    """``await gen(model, messages, n) -> [text|None]`` over :mod:`svgrft.clients.policy` (Fireworks inference,
    FIREWORKS_API_KEY), with the evaluation's sampling settings; one client per model."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._clients: dict[str, Any] = {}

    async def __call__(self, model: str, messages: list, n: int) -> list[str | None]:
        from svgrft.clients.policy import policy_from_settings

        client = self._clients.get(model)
        if client is None:
            client = self._clients[model] = policy_from_settings(self.settings, model=model)
        gens = await client.generate(
            messages, n=n, temperature=self.settings.eval.temperature, max_tokens=self.settings.eval.max_tokens
        )
        return [g.text for g in gens]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def _policy_generate(settings: Settings) -> Callable:
    return _PolicyGenerate(settings)


# --------------------------------------------------------------------------------------- runs
class RunsSource:
    """Two local runs from the run store, already scored by `svgrft eval`."""

    name = "runs"

    def __init__(self, settings: Settings, run_a: str, run_b: str, *, store: Any = None):
        self.settings = settings
        self.run_a, self.run_b = run_a, run_b
        self._store = store

    def collect(self, progress: Progress = quiet) -> Collected:
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
        progress(
            f"run {ra.id}: {plural(len(sa), 'sample')} ({ra.model}); run {rb.id}: {plural(len(sb), 'sample')} "
            f"({rb.model})"
        )

        def side(samples) -> tuple[dict[str, list[RawSample]], dict[str, RowInfo]]:
            out: dict[str, list[RawSample]] = {}
            infos: dict[str, RowInfo] = {}
            for s in samples:
                verdicts = [v if isinstance(v, dict) else {} for v in (s.verdicts or [])]
                scored = Sample(
                    score=s.score,
                    is_valid=s.is_valid,
                    reason=s.reason,
                    fulfilled=s.fulfilled,
                    total=s.total,
                    verdicts=verdicts,
                    svg=s.svg,
                    png=s.png,
                    ref=f"sample {s.sample_index}",
                    judge_cached=s.judge_cached,
                )
                out.setdefault(s.row_id, []).append(RawSample(s.row_id, s.reply, ref=scored.ref, scored=scored))
                infos.setdefault(s.row_id, RowInfo(s.row_id, s.prompt, list(s.requirements)))
            return out, infos

        before, ia = side(sa)
        after, ib = side(sb)
        infos = {**ib, **ia}
        common = set(before) & set(after)
        warnings = []
        if ra.judge_model != rb.judge_model or ra.judge_mode != rb.judge_mode:
            warnings.append(
                f"the runs were judged differently ({ra.judge_model}/{ra.judge_mode} vs "
                f"{rb.judge_model}/{rb.judge_mode}): scores are not strictly comparable"
            )
        only = (set(before) | set(after)) - common
        if only:
            warnings.append(
                f"{plural(len(only), 'prompt')} {plural_word(len(only), 'is', 'are')} in one run only (left out of the paired statistics)"
            )
        for rid in common:
            if ia[rid].requirements != ib[rid].requirements:
                warnings.append(f"row {rid}: the two runs have different requirements")
        la = f"{ra.id} ({_short_model(ra.model)})"
        lb = f"{rb.id} ({_short_model(rb.model)})"
        return Collected(
            source=self.name,
            title=f"svgrft compare · {ra.id} vs {rb.id}",
            before_label=la,
            after_label=lb,
            before=before,
            after=after,
            rows=infos,
            findings=[
                f"{plural(len(common), 'prompt')} in both runs",
                f"before: run {ra.id}, model {ra.model}",
                f"after: run {rb.id}, model {rb.model}",
            ],
            warnings=warnings,
            meta={"runs": [ra.to_dict(), rb.to_dict()]},
        )


def _short_model(model: str) -> str:
    return model.rsplit("/", 1)[-1] if model else "?"
