"""compare-epochs' default source: the rollouts the job's own evaluator recorded while it trained.

The records (svgrft.core.records) hold the replies and the rewards the model was trained on, so no judge
call is needed (``--rejudge`` scores again). Epochs are split by the policy model the records name, else by
time (:mod:`svgrft.core.epochs`); the reward curve is over every recorded rollout. The job's dataset (row
ids → prompts and requirements) is downloaded from Fireworks unless ``--dataset`` is given.

Over 400 lines on purpose: :class:`RecordsSource` is one source of compare-epochs (the job's dataset, its
time window, the records, their epochs and the warnings about all of them); the other sources are in
:mod:`svgrft.workflow.compare_sources`.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svgrft.core.compare_report import Sample
from svgrft.core.plural import plural, plural_word
from svgrft.errors import DatasetError, SvgrftError
from svgrft.workflow.compare_model import (
    Collected,
    Progress,
    RawSample,
    job_epoch_status,
    load_rows,
    n_samples,
    quiet,
    row_info,
)

if TYPE_CHECKING:
    from svgrft.clients.fireworks import FireworksClient
    from svgrft.clients.fireworks_records import JobRecord
    from svgrft.config import Settings

RECORD_LIMIT = 1000  # entries asked for per row (one query per row); a full answer is reported, not hidden
SVG_FENCE = "```svg\n{}\n```"


def _eval_key(fw: FireworksClient, job: JobRecord, jid: str) -> tuple[str, str]:
    """(record key, evaluator id) of the job's evaluator, from its ``commitHash`` (svgrft-built only)."""
    from svgrft.core.records import eval_key_from_commit

    ev_id = (job.evaluator or "").rsplit("/", 1)[-1]
    if not ev_id:
        raise SvgrftError(
            f"job {jid} names no evaluator, so it has no rollout records",
            hint="compare models instead: --source replay (or two local runs with --runs)",
        )
    ev = fw.get_evaluator(ev_id)
    if ev is None:
        raise SvgrftError(
            f"the evaluator of job {jid} ({ev_id}) no longer exists, so its rollout records cannot be found",
            hint="compare models instead: --source replay (or --runs)",
        )
    key = eval_key_from_commit(ev.commit_hash)
    if key is None:
        raise SvgrftError(
            f"job {jid} was not scored by an svgrft evaluator that records its rollouts (evaluator {ev_id})",
            hint="compare models instead: --source replay (see `svgrft compare-epochs --help`), "
            "or two local runs with --runs",
        )
    return key, ev_id


def download_job_dataset(
    fw: FireworksClient, job: JobRecord, dest: Path, *, max_bytes: int = 200 * 1024 * 1024
) -> Path:
    """Download the job's dataset (its ``.jsonl``/``.json`` files, else every file) into ``dest``."""
    from svgrft.clients.fireworks_errors import NoDatasetFileError
    from svgrft.errors import NotFoundError

    did = (job.dataset or "").rsplit("/", 1)[-1]
    if not did:
        raise DatasetError("the job names no dataset", hint="pass the job's JSONL with --dataset")
    try:
        data = fw.download_dataset(did, prefer=(".jsonl", ".json"), max_bytes=max_bytes, timeout=120.0)
    except NotFoundError:
        raise DatasetError(
            f"the job's dataset {did} no longer exists on Fireworks",
            hint="pass the JSONL that was uploaded for the job with --dataset",
        ) from None
    except NoDatasetFileError:
        raise DatasetError(
            f"Fireworks has no downloadable file for dataset {did}",
            hint="pass the JSONL that was uploaded for the job with --dataset",
        ) from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest


def _window(job: JobRecord, st: dict) -> tuple[float | None, float | None, float]:
    """(from, to, hours_back) of a job's records: creation − 1 min to completion + 2 min (the margins allow
    for clock skew and the evaluator's last flush; a later job reusing the evaluator starts after that)."""
    import time as _time

    from svgrft.core import epochs as ep

    created = ep.parse_time(job.create_time)
    ended = (
        ep.parse_time(job.completed_time)
        if st["state"] in ("JOB_STATE_COMPLETED", "JOB_STATE_EARLY_STOPPED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED")
        else None
    )
    hours_back = max(24.0, ((_time.time() - created) / 3600.0 + 2.0) if created else 24.0)
    return (created - 60 if created else None), (ended + 120 if ended else None), hours_back


def fetch_records(
    tracing: Any, key: str, job: JobRecord, st: dict, row_ids: list[str] | None, *, workers: int = 8
) -> tuple[list, dict[str, int], int, list[str]]:
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


def job_reward_curve(
    settings: Settings, fw: FireworksClient, job: JobRecord, *, tracing_client: Any = None
) -> dict[str, Any]:
    """Mean reward per epoch of a job from its records, for ``svgrft jobs status``: one gateway query for the
    whole evaluator (per-row queries over the downloaded dataset only when that answer is full).
    Raises SvgrftError when the job has no records (the caller shows that as a note)."""
    from svgrft.clients.tracing import TracingClient

    jid = job.job_id
    st = job_epoch_status(job)
    key, ev_id = _eval_key(fw, job, jid)
    tracing = tracing_client or TracingClient.from_settings(settings)
    try:
        records, dropped, outside, full = fetch_records(tracing, key, job, st, None)
        if full:
            src = RecordsSource(settings, jid, fw_client=fw)
            rows, _path, _origin = src._rows(fw, job, jid, quiet)
            records, dropped, outside, full = fetch_records(tracing, key, job, st, list(rows))
    finally:
        if tracing_client is None:
            tracing.close()
    if not records:
        raise SvgrftError(
            f"no rollout records of job {jid} (evaluator {ev_id})",
            hint="see `svgrft compare-epochs --help` for what works instead",
        )
    src = RecordsSource(settings, jid, fw_client=fw)
    g, how = src._group(records, st, n_samples(job), sorted({r.row_id for r in records}), dropped)
    return {
        "epochs": src._curve(g, records),
        "records": len(records),
        "epoch_split": how,
        "evaluator": ev_id,
        "records_outside_window": outside,
    }


class RecordsSource:
    """The job's own rollouts, as its evaluator recorded them (:mod:`svgrft.core.records`): the replies
    and the rewards the model was trained on. First vs last finished epoch; no judge call unless
    ``rejudge``. Also computes the reward curve (mean reward per epoch over every recorded rollout)."""

    name = "records"

    def __init__(
        self,
        settings: Settings,
        job_id: str,
        *,
        dataset: str | None = None,
        epochs: Sequence[int] | None = None,
        fw_client: FireworksClient | None = None,
        tracing_client: Any = None,
        workers: int = 8,
        rejudge: bool = False,
        download_dir: Path | None = None,
    ):
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
    def _rows(
        self, fw: FireworksClient, job: JobRecord, jid: str, progress: Progress
    ) -> tuple[dict[str, Any], Path, str]:
        if self.dataset:
            rows, path = load_rows(self.settings.dataset, self.dataset)
            return rows, path, "given with --dataset"
        from svgrft.core.dataset import load_dataset
        from svgrft.core.store import home_dir

        base = self.download_dir or (home_dir() / "datasets")
        did = (job.dataset or "").rsplit("/", 1)[-1] or "dataset"
        path = base / f"{did}.jsonl"
        progress(f"downloading the job's dataset {did} from Fireworks")
        download_job_dataset(fw, job, path)
        try:
            rows = load_dataset(path)
        except SvgrftError as e:
            raise DatasetError(
                f"the job's dataset {did} (downloaded to {path}) cannot be read: {e.message}",
                hint="pass the JSONL that was uploaded for the job with --dataset",
            ) from None
        return {r.row_id: r for r in rows}, path, f"downloaded from Fireworks ({did})"

    # ---------------------------------------------------------------------------------- collect
    def collect(self, progress: Progress = quiet) -> Collected:
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
        progress(
            f"job {jid}: {summary['state_label'].lower()}, epochs {st['finished']}/{st['total']} finished"
            f", dataset {summary['dataset'] or '?'}"
        )
        choice = ep.choose_epochs(st["total"], st["finished"], self.epochs, st["state"])
        key, ev_id = _eval_key(fw, job, jid)
        rows, path, origin = self._rows(fw, job, jid, progress)
        tracing = self._tracing or TracingClient.from_settings(self.settings)
        progress(
            f"reading the rollout records of {plural(len(rows), 'row')} (evaluator {ev_id}) from {tracing.base_url}"
        )
        try:
            records, dropped, outside, full = fetch_records(tracing, key, job, st, list(rows), workers=self.workers)
            requests = getattr(tracing, "requests", None)
        finally:
            if self._tracing is None:
                tracing.close()
        if not records:
            extra = (
                (
                    f" ({plural(outside, 'record')} of evaluator {ev_id} {plural_word(outside, 'falls', 'fall')} outside "
                    f"the job's time window)"
                )
                if outside
                else ""
            )
            raise SvgrftError(
                f"no rollout records of job {jid} on the tracing gateway{extra}: its evaluator ({ev_id}) recorded "
                f"none for the {plural(len(rows), 'row')} of its dataset",
                hint="a job trained by another tool or before svgrft recorded rollouts has none: compare the base "
                "and the trained model with --source replay, or two local runs with --runs",
            )
        g, how = self._group(records, st, n_samples(job), list(rows), dropped)
        self.grouping = g
        curve = self._curve(g, records)
        before, after = choice.before, choice.after
        findings = [
            f"dataset: {path} ({plural(len(rows), 'row')}, {origin})",
            f"{plural(len(records), 'rollout record')} of evaluator {ev_id} (key {key}) for "
            f"{len({r.row_id for r in records})} of {plural(len(rows), 'row')}; epochs split {how}",
            "rollouts per epoch: " + ", ".join(f"epoch {c['epoch']}: {c['n']}" for c in curve),
        ]
        findings += [
            f.replace("traces", "records")
            for f in g.findings[2:]
            if not f.startswith(("no epoch/step tag", "epoch tag present"))
        ]
        warnings = [w.replace("no traces", "no records").replace("in the traces", "in the records") for w in g.warnings]
        if outside:
            warnings.append(
                f"{plural(outside, 'record')} of this evaluator {plural_word(outside, 'falls', 'fall')} outside "
                f"the job's time window (another job "
                f"with the same evaluator?): left out"
            )
        if full:
            warnings.append(
                f"{plural(len(full), 'row')} filled the {RECORD_LIMIT}-entry answer of the gateway "
                f"({', '.join(full[:5])}): older records may be missing"
            )
        cut = sum(1 for r in records if r.svg_cut)
        if cut:
            warnings.append(
                f"{plural(cut, 'recorded SVG')} {plural_word(cut, 'was', 'were')} cut at {rec.SVG_CAP} characters "
                f"by the evaluator"
            )
        if choice.note:
            warnings.insert(0, choice.note)

        by_id = self._by_id

        def side(e: int) -> dict[str, list[RawSample]]:
            out: dict[str, list[RawSample]] = {}
            for row_id, rs in g.epoch(e).items():
                for ro in rs:
                    r = by_id[ro.trace.trace_id]
                    ref = r.rollout_id or f"record {ro.trace.trace_id}"
                    raw = RawSample(
                        row_id,
                        SVG_FENCE.format(r.svg) if r.svg is not None else None,
                        ref=ref,
                        reward=r.score,
                        timestamp=r.time,
                    )
                    if not self.rejudge:
                        raw.scored = _sample_from_record(r, ref)
                    out.setdefault(row_id, []).append(raw)
            return out

        b, a = side(before), side(after)
        if not b or not a:
            empty = before if not b else after
            raise SvgrftError(
                f"epoch {empty} of job {jid} has no recorded rollouts",
                hint="pick other epochs with --epochs A,B (0-based), or use --source replay",
            )
        infos = {rid: row_info(rows[rid]) for rid in rows if rid in b or rid in a}
        for rid, re_ in g.rows.items():
            if re_.note and rid in infos:
                infos[rid].note = re_.note.replace("rollouts", "records")
        judge_models = sorted({r.judge_model for r in records if r.judge_model})
        meta = {
            "job": summary,
            "epochs": {
                "before": before,
                "after": after,
                "total": st["total"],
                "finished": st["finished"],
                "state": st["state"],
            },
            "grouping": g.summary(),
            "dataset": str(path),
            "dataset_origin": origin,
            "evaluator": ev_id,
            "record_key": key,
            "epoch_split": how,
            "reward_curve": curve,
            "records": len(records),
            "records_dropped": dropped,
            "records_outside_window": outside,
            "rows_without_records": sorted(set(rows) - {r.row_id for r in records}),
            "gateway_requests": requests,
            "rejudged": self.rejudge,
        }
        if judge_models and not self.rejudge:
            meta["judge_model"] = ", ".join(judge_models)
        return Collected(
            source=self.name,
            title=f"svgrft compare-epochs · job {jid}",
            before_label=f"epoch {before}",
            after_label=f"epoch {after}",
            before=b,
            after=a,
            rows=infos,
            job_id=jid,
            findings=findings,
            warnings=warnings,
            meta=meta,
        )

    def _group(
        self, records: list, st: dict, per_row: int | None, expected: list[str], dropped: dict[str, int]
    ) -> tuple[Any, str]:
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
            traces.append(
                ep.Trace(
                    trace_id=tid,
                    row_id=r.row_id,
                    rollout_id=f"{r.rollout_id or ''}#{tid}",
                    timestamp=r.time,
                    tags=tags,
                    messages=(),
                    reward=r.score,
                    epoch_tag=index.get(r.policy_model) if by_model else None,
                )
            )
        g = ep.group_epochs(
            traces,
            epochs=st["slots"] or (len(models) if by_model else None),
            per_row=per_row,
            finished_epochs=st["finished"],
            expected_rows=expected,
            dropped=dict(dropped),
        )
        how = (
            f"by the policy model the records name ({plural(len(models), 'model')})"
            if by_model
            else "by time (the records name no policy model per epoch)"
        )
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
    return Sample(
        score=r.score,
        is_valid=r.is_valid,
        reason=r.reason,
        fulfilled=r.fulfilled,
        total=r.total,
        verdicts=list(r.verdicts),
        svg=r.svg,
        png=None,
        reward=r.score,
        ref=ref,
        timestamp=r.time,
    )
