"""``svgrft train``: validate → secrets push → dataset upload → evaluator build → create job (→ watch, in the CLI).

Every step reuses what already exists:
- secrets are created or updated (never duplicated);
- the dataset id carries its content hash (:mod:`svgrft.workflow.datasets`), the evaluator id its content hash
  (:mod:`svgrft.workflow.evaluator_build`), so unchanged inputs are one GET each;
- the job id is ``--job-id`` or derived from the plan (:mod:`svgrft.workflow.train_plan`), so a second
  identical run finds the existing job (GET) instead of creating one. An existing job with a different
  payload is an error with a hint to pass another ``--job-id``.

The plan (:func:`make_plan`, no network) packs the evaluator once; :func:`run` uploads that bundle and
builds the job payload once, handing it to the client as it is. :func:`dry_run_report` and
:func:`sample_renders` (:mod:`svgrft.workflow.train_report`) are what ``--dry-run`` shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from svgrft.clients.fireworks_records import JobRecord
from svgrft.clients.poll import poll
from svgrft.core.plural import plural
from svgrft.errors import ConfigError, ConflictError
from svgrft.workflow.train_plan import (
    TrainPlan,
    derive_job_id,
    job_payload,
    make_plan,
    payload_mismatches,
    secret_keys_for,
)
from svgrft.workflow.train_report import dashboard_links, dry_run_report, estimate, sample_renders

if TYPE_CHECKING:
    from svgrft.clients.fireworks import FireworksClient


@dataclass
class TrainResult:
    job_id: str
    job_name: str
    state: str
    created: bool
    dataset: str
    dataset_created: bool
    evaluator: str
    evaluator_created: bool
    eval_dataset: str | None
    output_model: str | None
    secrets: list[dict[str, Any]]
    mode: str
    server_url: str = ""

    def links(self) -> dict[str, str]:
        return dashboard_links(self.job_id, self.dataset.rsplit("/", 1)[-1], self.evaluator.rsplit("/", 1)[-1])


def ensure_job(client: FireworksClient, job_id: str, payload: dict[str, Any]) -> tuple[JobRecord, bool]:
    """GET the job: exists with the same payload → reuse; missing → create. Returns (job, created)."""

    def check_same(existing: JobRecord) -> None:
        diffs = payload_mismatches(payload, existing.wire)
        if diffs:
            shown = "; ".join(diffs[:3]) + (f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else "")
            raise ConflictError(
                f"RFT job {job_id} already exists with a different configuration: {shown}",
                hint="pass another --job-id (or drop --job-id to derive one from the config), "
                f"or inspect it with `svgrft jobs status {job_id}`",
                status=409,
            )

    existing = poll(lambda: client.get_job(job_id), done=lambda _v: True, interval=1.0)
    if existing is not None:
        check_same(existing)
        return existing, False
    try:
        return client.create_job(job_id, payload), True
    except ConflictError as e:
        existing = client.get_job(job_id)
        if existing is None:  # the conflict is about something else (e.g. the output model exists)
            raise ConflictError(
                f"creating RFT job {job_id} conflicts with an existing resource: {e.message}",
                hint="if the output model already exists, choose another --output-model",
                status=409,
            ) from None
        check_same(existing)
        return existing, False


def run(
    plan: TrainPlan,
    client: FireworksClient,
    *,
    on_step: Callable[[str], None] | None = None,
    on_evaluator_state: Callable[[str, float], None] | None = None,
    force_evaluator: bool = False,
    put_backoff: float = 1.0,
) -> TrainResult:
    """secrets → dataset → evaluator → job. The caller watches (CLI: ``render_watch``)."""
    from svgrft.redact import mask
    from svgrft.workflow.datasets import ensure_dataset
    from svgrft.workflow.evaluator_build import ensure_evaluator
    from svgrft.workflow.evaluator_bundle import check_rollout_server

    say = on_step or (lambda _m: None)
    s = plan.settings
    ds_poll = min(s.evaluator.poll_interval, 2.0)

    if plan.mode == "remote":
        check_rollout_server(s)
        say(f"✓ rollout server {plan.server_url} is healthy")

    require_keys(plan)
    rows = []
    for key in plan.secret_keys:  # the same upsert as `svgrft secrets push`
        secret_name, action = client.upsert_secret(key, s.secret(key))
        rows.append({"key": key, "secret": secret_name, "value": mask(s.secret(key)), "action": action})
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["action"]] = counts.get(r["action"], 0) + 1
    say(
        "✓ secrets: "
        + ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))
        + f" ({', '.join(r['key'] for r in rows)})"
    )

    ds = ensure_dataset(
        client, plan.dataset_path, plan.dataset_id if plan.dataset_id_explicit else None, poll_interval=ds_poll
    )
    say(f"✓ dataset {ds.name} ({plural(ds.example_count, 'row')}, {'uploaded' if ds.created else 'reused'})")

    eval_name = None
    if plan.eval_dataset is not None:
        if plan.eval_dataset.kind == "file":
            eds = ensure_dataset(client, plan.eval_dataset.value, None, poll_interval=ds_poll)
            eval_name = eds.name
            say(
                f"✓ eval dataset {eds.name} ({plural(eds.example_count, 'row')}, {'uploaded' if eds.created else 'reused'})"
            )
        else:
            eval_name = client.name("datasets", plan.eval_dataset.dataset_id)
            say(f"✓ eval dataset {eval_name} (existing)")

    built = ensure_evaluator(
        client,
        s,
        bundle=plan.evaluator,
        force=force_evaluator,
        on_status=lambda m: say(f"  evaluator: {m}"),
        on_state=on_evaluator_state,
        put_backoff=put_backoff,
    )
    say(f"✓ evaluator {built.name} ({built.mode} rollouts, {'built' if built.created else 'reused'})")

    payload = job_payload(
        plan,
        account=client.account_id,
        dataset=ds.name,
        evaluator=built.name,
        eval_dataset=eval_name,
        include_secrets=True,
    )
    job, created = ensure_job(client, plan.job_id, payload)
    name = job.name or client.name("reinforcementFineTuningJobs", plan.job_id)
    say(
        f"✓ job {name} ({'created' if created else 'reused: an identical job exists'}, "
        f"{job.state.removeprefix('JOB_STATE_') if job.state != 'JOB_STATE_UNSPECIFIED' else ''})"
    )
    return TrainResult(
        job_id=plan.job_id,
        job_name=name,
        state=job.state,
        created=created,
        dataset=ds.name,
        dataset_created=ds.created,
        evaluator=built.name,
        evaluator_created=built.created,
        eval_dataset=eval_name,
        output_model=job.output_model,
        secrets=rows,
        mode=plan.mode,
        server_url=plan.server_url,
    )


def require_keys(plan: TrainPlan) -> None:
    """Before any network call: the keys the real run needs."""
    s = plan.settings
    if not s.secret("FIREWORKS_API_KEY"):
        raise ConfigError(
            "FIREWORKS_API_KEY is not set",
            hint="export FIREWORKS_API_KEY=... or put it in .env; `svgrft train --dry-run` works without keys",
        )
    missing = [k for k in plan.secret_keys if not s.secret(k)]
    if missing:
        raise ConfigError(
            f"{', '.join(missing)} not set: the evaluator needs it as a Fireworks secret",
            hint=f"set {missing[0]} in the environment or .env (or change secrets.keys)",
        )


__all__ = [
    "TrainPlan",
    "TrainResult",
    "make_plan",
    "job_payload",
    "payload_mismatches",
    "estimate",
    "derive_job_id",
    "dry_run_report",
    "sample_renders",
    "run",
    "ensure_job",
    "require_keys",
    "secret_keys_for",
    "dashboard_links",
]
