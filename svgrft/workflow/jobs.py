"""Reinforcement fine-tuning jobs: get, list, watch, cancel, resume (through :class:`FireworksClient`).

Jobs are plain resources that are polled (:func:`svgrft.clients.poll.poll`). ``state`` values are the API's enum strings
(``JOB_STATE_RUNNING``…); summaries carry both ``state`` (full) and ``state_label`` (``RUNNING``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from svgrft.clients.fireworks_records import JobRecord
from svgrft.clients.poll import poll
from svgrft.errors import ApiError, NotFoundError, SvgrftError, UsageError

if TYPE_CHECKING:
    from svgrft.clients.fireworks import FireworksClient

DASHBOARD = "https://app.fireworks.ai/dashboard/fine-tuning/reinforcement/"
TERMINAL_STATES = frozenset(
    {"JOB_STATE_COMPLETED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EARLY_STOPPED", "JOB_STATE_EXPIRED"}
)
SUCCESS_STATES = frozenset({"JOB_STATE_COMPLETED", "JOB_STATE_EARLY_STOPPED"})  # a model was written
RESUMABLE_STATES = frozenset({"JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_PAUSED"})
CANCELLED_STATES = frozenset({"JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED"})

JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")

_STATE_NAMES = (
    "CREATING",
    "PENDING",
    "VALIDATING",
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "CANCELLING",
    "EXPIRED",
    "EARLY_STOPPED",
    "PAUSED",
    "WRITING_RESULTS",
    "DELETING",
    "RE_QUEUEING",
    "IDLE",
    "CREATING_INPUT_DATASET",
    "DELETING_CLEANING_UP",
)


def normalize_state(state: str) -> str:
    """``running`` / ``RUNNING`` / ``JOB_STATE_RUNNING`` → ``JOB_STATE_RUNNING``."""
    s = state.strip().upper().replace("-", "_")
    if not s.startswith("JOB_STATE_"):
        s = "JOB_STATE_" + s
    if s[len("JOB_STATE_") :] not in _STATE_NAMES:
        raise UsageError(
            f"unknown job state {state!r}", hint="use one of: " + ", ".join(n.lower() for n in _STATE_NAMES[:11])
        )
    return s


def job_id_of(job_or_id: str) -> str:
    """Short id from ``accounts/a/reinforcementFineTuningJobs/<id>`` or a dashboard URL; validates it."""
    s = job_or_id.strip().rstrip("/")
    if "/" in s:
        s = s.rsplit("/", 1)[-1]
    if not JOB_ID_RE.match(s):
        raise UsageError(
            f"invalid job id {job_or_id[:80]!r}",
            hint="pass the id shown by `svgrft jobs list` (or the full resource name)",
        )
    return s


def job_summary(job: JobRecord | dict, account_id: str) -> dict:
    """The fields people look at (the JSON of ``svgrft jobs status``), from a job record or its wire dict."""
    j = job if isinstance(job, JobRecord) else JobRecord.from_wire(job if isinstance(job, dict) else {}, account_id)
    return {
        "name": j.name,
        "id": j.job_id,
        "display_name": j.display_name,
        "state": j.state,
        "state_label": j.state.removeprefix("JOB_STATE_"),
        "terminal": j.state in TERMINAL_STATES,
        "succeeded": j.state in SUCCESS_STATES,
        "epoch": j.epoch,  # 0-based, as the API reports it
        "epochs": j.epochs,
        "percent": j.percent,
        "status_code": j.status_code if j.status_code not in (None, "", "OK") else None,
        "status_message": j.status_message or None,
        "output_model": j.output_model,
        "base_model": j.base_model,
        "dataset": j.dataset,
        "evaluation_dataset": j.evaluation_dataset,
        "evaluator": j.evaluator,
        "create_time": j.create_time,
        "completed_time": j.completed_time,
        "dashboard_url": DASHBOARD + j.job_id if j.job_id else None,
    }


def get_job(client: FireworksClient, job_id: str) -> JobRecord:
    """The job. A missing one is a NotFoundError with a hint."""
    jid = job_id_of(job_id)
    job = client.get_job(jid)
    if job is None:
        raise NotFoundError(
            f"RFT job {jid!r} not found in account {client.account_id}",
            hint="list your jobs with `svgrft jobs list` (check FIREWORKS_ACCOUNT_ID too)",
            status=404,
        )
    return job


def list_jobs(client: FireworksClient, state: str | None = None, limit: int = 50) -> list[JobRecord]:
    """Up to ``limit`` jobs, newest first; ``state`` filters (``running``, ``failed``…)."""
    if limit <= 0:
        return []
    want = normalize_state(state) if state else None
    out = client.list_jobs(state=want, limit=limit)
    if want:  # in case the server ignores the filter
        out = [j for j in out if j.state == want]
    out.sort(key=lambda j: j.create_time or "", reverse=True)
    return out


def watch_job(
    client: FireworksClient,
    job_id: str,
    *,
    poll_interval: float = 10.0,
    timeout: float | None = None,
    on_update: Callable[[dict], None] | None = None,
    on_error: Callable[[SvgrftError], None] | None = None,
) -> dict:
    """Poll until the job reaches a terminal state; returns the final summary.

    ``on_update(summary)`` is called after every successful poll. Transient errors (429, 5xx,
    network) count against the poll's error budget (:func:`svgrft.clients.poll.poll`; ``on_error`` hears
    about them). With ``timeout`` the last summary is returned when it runs out (``summary["terminal"]`` False).
    """
    jid = job_id_of(job_id)

    def timed_out(last: dict | None) -> dict:
        if last is None:
            raise ApiError(
                f"could not read RFT job {jid} before the watch timeout", hint="run `svgrft jobs status` later"
            )
        return last

    return poll(
        lambda: job_summary(get_job(client, jid), client.account_id),
        done=lambda s: s["terminal"],
        interval=poll_interval,
        timeout=timeout,
        on_value=on_update,
        on_error=on_error,
        on_timeout=timed_out,
    )


def cancel_job(client: FireworksClient, job_id: str) -> dict:
    """Cancel a job; returns its summary afterwards. Cancelling a cancelled job is a no-op."""
    jid = job_id_of(job_id)
    current = job_summary(get_job(client, jid), client.account_id)
    if current["state"] in CANCELLED_STATES:
        return current
    if current["terminal"]:
        raise SvgrftError(
            f"job {jid} already finished ({current['state_label']}); nothing to cancel",
            hint="`svgrft jobs status " + jid + "` shows the result",
        )
    client.cancel_job(jid)
    return job_summary(get_job(client, jid), client.account_id)


def resume_job(client: FireworksClient, job_id: str) -> dict:
    """Resume a FAILED, CANCELLED or PAUSED job; returns its summary afterwards."""
    jid = job_id_of(job_id)
    current = job_summary(get_job(client, jid), client.account_id)
    if current["state"] not in RESUMABLE_STATES:
        raise SvgrftError(
            f"job {jid} is {current['state_label']}; only FAILED, CANCELLED or PAUSED jobs can be resumed",
            hint=f"watch it with `svgrft jobs watch {jid}`"
            if not current["terminal"]
            else "start a new job with `svgrft train`",
        )
    summary = job_summary(client.resume_job(jid), client.account_id)
    if not summary["id"]:
        summary = job_summary(get_job(client, jid), client.account_id)
    return summary


def failure_hint(summary: dict) -> str:
    """An actionable hint for a job that did not succeed."""
    jid = summary.get("id") or "<job-id>"
    state = summary.get("state")
    if state == "JOB_STATE_FAILED":
        return (
            f"read the status message above and the dashboard ({summary.get('dashboard_url')}); "
            f"after fixing the cause, `svgrft jobs resume {jid}` continues the job"
        )
    if state == "JOB_STATE_CANCELLED":
        return f"`svgrft jobs resume {jid}` continues it, or start a new one with `svgrft train`"
    if state == "JOB_STATE_EXPIRED":
        return "the job expired before it could run; start a new one with `svgrft train`"
    return f"see {summary.get('dashboard_url')}"
