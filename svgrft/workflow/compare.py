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
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from svgrft.core.compare_report import Comparison, PromptRow, Sample
from svgrft.core.plural import plural, plural_word
from svgrft.errors import ApiError, ConfigError, DatasetError, JudgeError, NotFoundError, SvgrftError

__all__ = ["RawSample", "RowInfo", "Collected", "RolloutSource", "RecordsSource", "ReplaySource", "RunsSource",
           "job_epoch_status", "load_rows", "score_async", "render_missing", "build_comparison",
           "write_outputs_async", "finish", "finish_async", "run_compare", "download_job_dataset"]

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


# --------------------------------------------------------------------------------------- records
RECORD_LIMIT = 1000  # entries asked for per row (one query per row); a full answer is reported, not hidden
SVG_FENCE = "```svg\n{}\n```"


def _eval_key(fw: Any, job: dict, jid: str) -> tuple[str, str]:
    """(record key, evaluator id) of the job's evaluator, from its ``commitHash`` (svgrft-built only)."""
    from svgrft.core.records import eval_key_from_commit
    from svgrft.workflow.jobs import guarded

    ev_name = str(job.get("evaluator") or "")
    ev_id = ev_name.rsplit("/", 1)[-1]
    if not ev_id:
        raise SvgrftError(f"job {jid} names no evaluator, so it has no rollout records",
                          hint="compare models instead: --source replay (or two local runs with --runs)")
    try:
        with guarded(fw, f"getting evaluator {ev_id}"):
            ev = fw.sdk.evaluators.get(ev_id, account_id=fw.account_id)
    except NotFoundError:
        raise SvgrftError(f"the evaluator of job {jid} ({ev_id}) no longer exists, so its rollout records cannot "
                          f"be found", hint="compare models instead: --source replay (or --runs)") from None
    commit = getattr(ev, "commit_hash", None)
    if commit is None and isinstance(ev, dict):
        commit = ev.get("commitHash")
    key = eval_key_from_commit(commit)
    if key is None:
        raise SvgrftError(f"job {jid} was not scored by an svgrft evaluator that records its rollouts "
                          f"(evaluator {ev_id})",
                          hint="compare models instead: --source replay (see `svgrft compare-epochs --help`), "
                               "or two local runs with --runs")
    return key, ev_id


def download_job_dataset(fw: Any, job: dict, dest: Path, *, max_bytes: int = 200 * 1024 * 1024) -> Path:
    """Download the job's dataset (``datasets:getDownloadEndpoint`` + signed GET) into ``dest``."""
    from svgrft.clients.download import fetch_signed
    from svgrft.workflow.jobs import guarded

    name = str(job.get("dataset") or "")
    did = name.rsplit("/", 1)[-1]
    if not did:
        raise DatasetError("the job names no dataset", hint="pass the job's JSONL with --dataset")
    try:
        with guarded(fw, f"getting the download URL of dataset {did}"):
            resp = fw.sdk.datasets.get_download_endpoint(did, account_id=fw.account_id)
    except NotFoundError:
        raise DatasetError(f"the job's dataset {did} no longer exists on Fireworks",
                           hint="pass the JSONL that was uploaded for the job with --dataset") from None
    urls = getattr(resp, "filename_to_signed_urls", None)
    if urls is None and isinstance(resp, dict):
        urls = resp.get("filenameToSignedUrls")
    urls = dict(urls or {})
    files = [u for f, u in sorted(urls.items()) if str(f).endswith((".jsonl", ".json"))] or list(urls.values())
    if not files:
        raise DatasetError(f"Fireworks has no downloadable file for dataset {did}",
                           hint="pass the JSONL that was uploaded for the job with --dataset")
    dest.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(fetch_signed(u, max_bytes=max_bytes) for u in files)
    dest.write_bytes(data)
    return dest


def _window(job: dict, st: dict) -> tuple[float | None, float | None, float]:
    """(from, to, hours_back) of a job's records: creation − 1 min to completion + 2 min (the margins allow
    for clock skew and the evaluator's last flush; a later job reusing the evaluator starts after that)."""
    import time as _time

    from svgrft.core import epochs as ep

    created = ep.parse_time(job.get("createTime"))
    ended = ep.parse_time(job.get("completedTime")) if st["state"] in (
        "JOB_STATE_COMPLETED", "JOB_STATE_EARLY_STOPPED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED") else None
    hours_back = max(24.0, ((_time.time() - created) / 3600.0 + 2.0) if created else 24.0)
    return (created - 60 if created else None), (ended + 120 if ended else None), hours_back


def fetch_records(tracing: Any, key: str, job: dict, st: dict, row_ids: list[str] | None, *,
                  workers: int = 8) -> tuple[list, dict[str, int], int, list[str]]:
    """The job's records: one ``GET /logs`` per row (``row_ids``), or one for the whole evaluator
    (``row_ids=None``; the answer may be cut at :data:`RECORD_LIMIT`). Returns (records inside the job's
    time window, reasons entries were left out, records outside the window, rows whose answer was full)."""
    from svgrft.core import records as rec

    from_ts, to_ts, hours_back = _window(job, st)

    def one(row_id: str | None):
        tags = rec.query_tags(key, row_id) if row_id is not None else [f"{rec.EVAL_TAG}:{key}"]
        return row_id, tracing.logs(tags, limit=RECORD_LIMIT, hours_back=hours_back, program=rec.PROGRAM)

    answers: list = []
    if row_ids is None:
        answers.append(one(None))
    else:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            answers.extend(pool.map(one, row_ids))
    records: list = []
    dropped: dict[str, int] = {}
    outside = 0
    full: list[str] = []
    for row_id, entries in answers:
        if len(entries) >= RECORD_LIMIT:
            full.append(row_id or "*")
        got, why = rec.parse_entries(entries, key=key)
        for k, v in why.items():
            dropped[k] = dropped.get(k, 0) + v
        for r in got:
            if row_id is not None and r.row_id != row_id:
                dropped["row id differs from its tag"] = dropped.get("row id differs from its tag", 0) + 1
            elif (from_ts is not None and r.time < from_ts) or (to_ts is not None and r.time > to_ts):
                outside += 1
            else:
                records.append(r)
    return records, dropped, outside, full


def job_reward_curve(settings: Any, fw: Any, job: dict, *, tracing_client: Any = None) -> dict[str, Any]:
    """Mean reward per epoch of a job from its records, for ``svgrft jobs status``: one gateway query for the
    whole evaluator (per-row queries over the downloaded dataset only when that answer is full).
    Raises SvgrftError when the job has no records (the caller shows that as a note)."""
    from svgrft.clients.tracing import TracingClient

    jid = str(job.get("name") or "").rsplit("/", 1)[-1]
    st = job_epoch_status(job)
    key, ev_id = _eval_key(fw, job, jid)
    tracing = tracing_client or TracingClient.from_settings(settings)
    try:
        records, dropped, outside, full = fetch_records(tracing, key, job, st, None)
        if full:
            src = RecordsSource(settings, jid, fw_client=fw)
            rows, _path, _origin = src._rows(fw, job, jid, _quiet)
            records, dropped, outside, full = fetch_records(tracing, key, job, st, list(rows))
    finally:
        if tracing_client is None:
            tracing.close()
    if not records:
        raise SvgrftError(f"no rollout records of job {jid} (evaluator {ev_id})",
                          hint="see `svgrft compare-epochs --help` for what works instead")
    src = RecordsSource(settings, jid, fw_client=fw)
    g, how = src._group(records, st, _n_samples(job), sorted({r.row_id for r in records}), dropped)
    return {"epochs": src._curve(g, records), "records": len(records), "epoch_split": how, "evaluator": ev_id,
            "records_outside_window": outside}


class RecordsSource:
    """The job's own rollouts, as its evaluator recorded them (:mod:`svgrft.core.records`): the replies
    and the rewards the model was trained on. First vs last finished epoch; no judge call unless
    ``rejudge``. Also computes the reward curve (mean reward per epoch over every recorded rollout)."""

    name = "records"

    def __init__(self, settings: Any, job_id: str, *, dataset: str | None = None, epochs: Sequence[int] | None = None,
                 fw_client: Any = None, tracing_client: Any = None, workers: int = 8, rejudge: bool = False,
                 download_dir: Path | None = None):
        self.settings = settings
        self.job_id = job_id
        self.dataset = dataset
        self.epochs = list(epochs) if epochs else None
        self._fw = fw_client
        self._tracing = tracing_client
        self.workers = max(1, workers)
        self.rejudge = rejudge
        self.download_dir = download_dir
        self.grouping: Any = None

    # ---------------------------------------------------------------------------------- rows
    def _rows(self, fw: Any, job: dict, jid: str, progress: Progress) -> tuple[dict[str, Any], Path, str]:
        if self.dataset:
            rows, path = load_rows(self.settings, self.dataset)
            return rows, path, "given with --dataset"
        from svgrft.core.dataset import load_dataset
        from svgrft.core.store import home_dir

        base = self.download_dir or (home_dir() / "datasets")
        did = str(job.get("dataset") or "").rsplit("/", 1)[-1] or "dataset"
        path = base / f"{did}.jsonl"
        progress(f"downloading the job's dataset {did} from Fireworks")
        download_job_dataset(fw, job, path)
        try:
            rows = load_dataset(path)
        except SvgrftError as e:
            raise DatasetError(f"the job's dataset {did} (downloaded to {path}) cannot be read: {e.message}",
                               hint="pass the JSONL that was uploaded for the job with --dataset") from None
        return {r.row_id: r for r in rows}, path, f"downloaded from Fireworks ({did})"

    # ---------------------------------------------------------------------------------- collect
    def collect(self, progress: Progress = _quiet) -> Collected:
        from svgrft.clients.fireworks import make_client
        from svgrft.clients.tracing import TracingClient
        from svgrft.core import epochs as ep
        from svgrft.core import records as rec
        from svgrft.workflow.jobs import get_job, job_id_of, job_summary

        jid = job_id_of(self.job_id)
        fw = self._fw or make_client(self.settings)
        job = get_job(fw, jid)
        summary = job_summary(job, fw.account_id)
        st = job_epoch_status(job)
        progress(f"job {jid}: {summary['state_label'].lower()}, epochs {st['finished']}/{st['total']} finished"
                 f", dataset {summary['dataset'] or '?'}")
        choice = ep.choose_epochs(st["total"], st["finished"], self.epochs, st["state"])
        key, ev_id = _eval_key(fw, job, jid)
        rows, path, origin = self._rows(fw, job, jid, progress)
        tracing = self._tracing or TracingClient.from_settings(self.settings)
        progress(f"reading the rollout records of {plural(len(rows), 'row')} (evaluator {ev_id}) from {tracing.base_url}")
        try:
            records, dropped, outside, full = fetch_records(tracing, key, job, st, list(rows), workers=self.workers)
            requests = getattr(tracing, "requests", None)
        finally:
            if self._tracing is None:
                tracing.close()
        if not records:
            extra = (f" ({plural(outside, 'record')} of evaluator {ev_id} {plural_word(outside, 'falls', 'fall')} outside "
                     f"the job's time window)") if outside else ""
            raise SvgrftError(
                f"no rollout records of job {jid} on the tracing gateway{extra}: its evaluator ({ev_id}) recorded "
                f"none for the {plural(len(rows), 'row')} of its dataset",
                hint="a job trained by another tool or before svgrft recorded rollouts has none: compare the base "
                     "and the trained model with --source replay, or two local runs with --runs")
        g, how = self._group(records, st, _n_samples(job), list(rows), dropped)
        self.grouping = g
        curve = self._curve(g, records)
        before, after = choice.before, choice.after
        findings = [f"dataset: {path} ({plural(len(rows), 'row')}, {origin})",
                    f"{plural(len(records), 'rollout record')} of evaluator {ev_id} (key {key}) for "
                    f"{len({r.row_id for r in records})} of {plural(len(rows), 'row')}; epochs split {how}",
                    "rollouts per epoch: " + ", ".join(f"epoch {c['epoch']}: {c['n']}" for c in curve)]
        findings += [f.replace("traces", "records") for f in g.findings[2:]
                     if not f.startswith(("no epoch/step tag", "epoch tag present"))]
        warnings = [w.replace("no traces", "no records").replace("in the traces", "in the records")
                    for w in g.warnings]
        if outside:
            warnings.append(f"{plural(outside, 'record')} of this evaluator {plural_word(outside, 'falls', 'fall')} outside "
                            f"the job's time window (another job "
                            f"with the same evaluator?): left out")
        if full:
            warnings.append(f"{plural(len(full), 'row')} filled the {RECORD_LIMIT}-entry answer of the gateway "
                            f"({', '.join(full[:5])}): older records may be missing")
        cut = sum(1 for r in records if r.svg_cut)
        if cut:
            warnings.append(f"{plural(cut, 'recorded SVG')} {plural_word(cut, 'was', 'were')} cut at {rec.SVG_CAP} characters "
                            f"by the evaluator")
        if choice.note:
            warnings.insert(0, choice.note)

        by_id = self._by_id

        def side(e: int) -> dict[str, list[RawSample]]:
            out: dict[str, list[RawSample]] = {}
            for row_id, rs in g.epoch(e).items():
                for ro in rs:
                    r = by_id[ro.trace.trace_id]
                    ref = r.rollout_id or f"record {ro.trace.trace_id}"
                    raw = RawSample(row_id, SVG_FENCE.format(r.svg) if r.svg is not None else None, ref=ref,
                                    reward=r.score, timestamp=r.time)
                    if not self.rejudge:
                        raw.scored = _sample_from_record(r, ref)
                    out.setdefault(row_id, []).append(raw)
            return out

        b, a = side(before), side(after)
        if not b or not a:
            empty = before if not b else after
            raise SvgrftError(f"epoch {empty} of job {jid} has no recorded rollouts",
                              hint="pick other epochs with --epochs A,B (0-based), or use --source replay")
        infos = {rid: _row_info(rows[rid]) for rid in rows if rid in b or rid in a}
        for rid, re_ in g.rows.items():
            if re_.note and rid in infos:
                infos[rid].note = re_.note.replace("rollouts", "records")
        judge_models = sorted({r.judge_model for r in records if r.judge_model})
        meta = {"job": summary, "epochs": {"before": before, "after": after, "total": st["total"],
                                           "finished": st["finished"], "state": st["state"]},
                "grouping": g.summary(), "dataset": str(path), "dataset_origin": origin,
                "evaluator": ev_id, "record_key": key, "epoch_split": how, "reward_curve": curve,
                "records": len(records), "records_dropped": dropped, "records_outside_window": outside,
                "rows_without_records": sorted(set(rows) - {r.row_id for r in records}),
                "gateway_requests": requests, "rejudged": self.rejudge}
        if judge_models and not self.rejudge:
            meta["judge_model"] = ", ".join(judge_models)
        return Collected(source=self.name, title=f"svgrft compare-epochs · job {jid}",
                         before_label=f"epoch {before}", after_label=f"epoch {after}", before=b, after=a,
                         rows=infos, job_id=jid, findings=findings, warnings=warnings, meta=meta)

    def _group(self, records: list, st: dict, per_row: int | None, expected: list[str],
               dropped: dict[str, int]) -> tuple[Any, str]:
        """Epochs by the policy model the records name (one model per epoch), else by time."""
        from svgrft.core import epochs as ep

        first: dict[str, float] = {}
        for r in records:
            if r.policy_model:
                first[r.policy_model] = min(first.get(r.policy_model, r.time), r.time)
        models = sorted(first, key=lambda m: first[m])
        named = sum(1 for r in records if r.policy_model)
        by_model = len(models) >= 2 and named >= 0.5 * len(records) and (not st["slots"] or len(models) <= st["slots"])
        index = {m: i for i, m in enumerate(models)}
        self._by_id = {}
        traces = []
        for i, r in enumerate(records):
            tid = f"r{i}"
            self._by_id[tid] = r
            tags = {"row_id": r.row_id}
            if r.rollout_id:
                tags["rollout_id"] = r.rollout_id
            traces.append(ep.Trace(trace_id=tid, row_id=r.row_id, rollout_id=f"{r.rollout_id or ''}#{tid}",
                                   timestamp=r.time, tags=tags, messages=(), reward=r.score,
                                   epoch_tag=index.get(r.policy_model) if by_model else None))
        g = ep.group_epochs(traces, epochs=st["slots"] or (len(models) if by_model else None), per_row=per_row,
                            finished_epochs=st["finished"], expected_rows=expected, dropped=dict(dropped))
        how = (f"by the policy model the records name ({plural(len(models), 'model')})" if by_model
               else "by time (the records name no policy model per epoch)")
        return g, how

    def _curve(self, g: Any, records: list) -> list[dict]:
        from svgrft.core.records import epoch_curve

        groups: list[list] = []
        steps: dict[int, list] = {}
        for e in range(g.epochs):
            recs = [self._by_id[ro.trace.trace_id] for rs in g.epoch(e).values() for ro in rs]
            groups.append(recs)
            inv: dict[str, list] = {}
            for r in sorted(recs, key=lambda r: r.time):
                if r.invocation_id:
                    inv.setdefault(r.invocation_id, []).append(r.score)
            if len(inv) > 1:
                steps[e] = list(inv.items())
        return epoch_curve(groups, steps)


def _sample_from_record(r: Any, ref: str) -> Sample:
    """A Sample straight from a record: the reward the job trained on, no judge call (image rendered later)."""
    return Sample(score=r.score, is_valid=r.is_valid, reason=r.reason, fulfilled=r.fulfilled, total=r.total,
                  verdicts=list(r.verdicts), svg=r.svg, png=None, reward=r.score, ref=ref, timestamp=r.time)


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
        progress(f"replaying {plural(len(chosen), 'prompt')} × {self.samples} on {base} and {served}")
        before, after = asyncio.run(self._both(base, served, chosen))
        infos = {r.row_id: _row_info(r) for r in chosen}
        meta = {"job": summary, "base_model": base, "output_model": out, "dataset": str(path),
                "samples": self.samples, "split": split, "after_model_string": served}
        return Collected(source=self.name, title=f"svgrft compare-epochs · job {jid} (replay, {split['split']} "
                                                 f"prompts)",
                         before_label="base model", after_label="trained model", before=before, after=after,
                         rows=infos, job_id=jid,
                         findings=[f"dataset: {path} ({plural(len(chosen), 'prompt')})", f"split: {split['text']}",
                                   f"before: {base}", f"after: {served}",
                                   f"{plural(self.samples, 'fresh reply', 'fresh replies')} per prompt and model"], meta=meta)

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
        progress(f"run {ra.id}: {plural(len(sa), 'sample')} ({ra.model}); run {rb.id}: {plural(len(sb), 'sample')} "
                 f"({rb.model})")

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
            warnings.append(f"{plural(len(only), 'prompt')} {plural_word(len(only), 'is', 'are')} in one run only (left out of the paired statistics)")
        for rid in common:
            if ia[rid].requirements != ib[rid].requirements:
                warnings.append(f"row {rid}: the two runs have different requirements")
        la = f"{ra.id} ({_short_model(ra.model)})"
        lb = f"{rb.id} ({_short_model(rb.model)})"
        return Collected(source=self.name, title=f"svgrft compare · {ra.id} vs {rb.id}", before_label=la,
                         after_label=lb, before=before, after=after, rows=infos,
                         findings=[f"{plural(len(common), 'prompt')} in both runs", f"before: run {ra.id}, model {ra.model}",
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
    from svgrft.workflow.evaluate import scorer_from_settings

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
        progress(f"scoring {plural(len(todo), 'reply', 'replies')} (judge {scorer.judge_model}, {scorer.judge_mode}, "
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


async def render_missing(col: Collected, renderer: Any, *, progress: Progress = _quiet,
                         concurrency: int = 8) -> int:
    """Render the image of every scored sample that has an SVG but no PNG (records: the score is the
    recorded reward, only the picture is made here). Identical SVGs are rendered once. Returns the count."""
    import inspect

    todo = [s.scored for side in (col.before, col.after) for ss in side.values() for s in ss
            if s.scored is not None and s.scored.png is None and s.scored.svg]
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


async def finish_async(settings: Any, col: Collected, out_dir: Path, *, use_cache: bool = True, rows: int = 6,
                       pick: str = "best", seed: int = 0, progress: Progress = _quiet, renderer: Any = None,
                       judge: Any = None) -> tuple[Comparison, dict[str, str]]:
    """Score, build and write, with one browser for both the scoring renders and the contact sheet."""
    renderer, owned = await _start_renderer(renderer, settings)
    try:
        stats = await score_async(settings, col, renderer=renderer, use_cache=use_cache, progress=progress,
                                  judge=judge)
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


def finish(settings: Any, col: Collected, out_dir: Path, **kw: Any) -> tuple[Comparison, dict[str, str]]:
    """Synchronous :func:`finish_async`."""
    return asyncio.run(finish_async(settings, col, out_dir, **kw))


def run_compare(settings: Any, source: RolloutSource, *, out_dir: Path, progress: Progress = _quiet,
                **kw: Any) -> tuple[Comparison, dict[str, str]]:
    """The whole command: collect → score → build → write. Returns the comparison and the files written."""
    col = source.collect(progress)
    return finish(settings, col, out_dir, progress=progress, **kw)
