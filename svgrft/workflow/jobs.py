"""Reinforcement fine-tuning jobs: get, list, watch, cancel, resume (through the Fireworks SDK).

Jobs are plain resources that are polled. ``state`` values are the API's enum strings
(``JOB_STATE_RUNNING``…); summaries carry both ``state`` (full) and ``state_label`` (``RUNNING``).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from typing import Any, Callable, Iterator

from svgrft.errors import ApiError, NotFoundError, SvgrftError, UsageError
from svgrft.workflow import MAX_POLL_ERRORS, is_transient

DASHBOARD = "https://app.fireworks.ai/dashboard/fine-tuning/reinforcement/"
TERMINAL_STATES = frozenset({"JOB_STATE_COMPLETED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED",
                             "JOB_STATE_EARLY_STOPPED", "JOB_STATE_EXPIRED"})
SUCCESS_STATES = frozenset({"JOB_STATE_COMPLETED", "JOB_STATE_EARLY_STOPPED"})   # a model was written
RESUMABLE_STATES = frozenset({"JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_PAUSED"})
CANCELLED_STATES = frozenset({"JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED"})

JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")

_STATE_NAMES = ("CREATING", "PENDING", "VALIDATING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CANCELLING",
                "EXPIRED", "EARLY_STOPPED", "PAUSED", "WRITING_RESULTS", "DELETING", "RE_QUEUEING", "IDLE",
                "CREATING_INPUT_DATASET", "DELETING_CLEANING_UP")


@contextlib.contextmanager
def guarded(client, what: str) -> Iterator[None]:
    """``client.errors(what)`` plus: a response body that is not JSON becomes an ApiError (status 502)."""
    try:
        with client.errors(what):
            yield
    except json.JSONDecodeError:
        raise ApiError(f"Fireworks sent a malformed (non-JSON) response while {what}",
                       hint="the service may be degraded; run the same command again", status=502) from None


def normalize_state(state: str) -> str:
    """``running`` / ``RUNNING`` / ``JOB_STATE_RUNNING`` → ``JOB_STATE_RUNNING``."""
    s = state.strip().upper().replace("-", "_")
    if not s.startswith("JOB_STATE_"):
        s = "JOB_STATE_" + s
    if s[len("JOB_STATE_"):] not in _STATE_NAMES:
        raise UsageError(f"unknown job state {state!r}",
                         hint="use one of: " + ", ".join(n.lower() for n in _STATE_NAMES[:11]))
    return s


def job_id_of(job_or_id: str) -> str:
    """Short id from ``accounts/a/reinforcementFineTuningJobs/<id>`` or a dashboard URL; validates it."""
    s = job_or_id.strip().rstrip("/")
    if "/" in s:
        s = s.rsplit("/", 1)[-1]
    if not JOB_ID_RE.match(s):
        raise UsageError(f"invalid job id {job_or_id[:80]!r}",
                         hint="pass the id shown by `svgrft jobs list` (or the full resource name)")
    return s


def _to_dict(job: Any) -> dict:
    if isinstance(job, dict):
        return job
    to_dict = getattr(job, "to_dict", None)
    if callable(to_dict):
        return to_dict(mode="json")     # wire names (camelCase), unset fields omitted, times as strings
    return {}


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _obj(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _str(v: Any) -> str | None:
    return str(v) if v not in (None, "") and isinstance(v, (str, int, float)) else None


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        f = float(v) if v is not None and v != "" else None
    except (TypeError, ValueError):
        return None
    return f if f is not None and math.isfinite(f) and abs(f) < 1e12 else None


def job_summary(job: Any, account_id: str) -> dict:
    """The fields people look at, from an SDK job or its wire dict."""
    j = _to_dict(job)
    if not isinstance(j, dict):
        j = {}
    name = str(j.get("name") or "")
    jid = name.rsplit("/", 1)[-1] if name else ""
    if name and not name.startswith("accounts/"):
        name = f"accounts/{account_id}/reinforcementFineTuningJobs/{name}"
    state = _str(j.get("state")) or "JOB_STATE_UNSPECIFIED"
    tc = _obj(j.get("trainingConfig"))
    prog = _obj(j.get("jobProgress"))
    status = _obj(j.get("status"))
    code = _str(status.get("code"))
    message = _str(status.get("message"))
    epoch = _num(prog.get("epoch"))
    percent = _num(prog.get("percent"))
    epochs = _num(tc.get("epochs"))
    return {
        "name": name,
        "id": jid,
        "display_name": _str(j.get("displayName")) or "",
        "state": state,
        "state_label": state.removeprefix("JOB_STATE_"),
        "terminal": state in TERMINAL_STATES,
        "succeeded": state in SUCCESS_STATES,
        "epoch": int(epoch) if epoch is not None else None,          # 0-based, as the API reports it
        "epochs": int(epochs) if epochs is not None else None,
        "percent": percent,
        "status_code": code if code not in (None, "", "OK") else None,
        "status_message": str(message) if message else None,
        "output_model": _str(tc.get("outputModel")),
        "base_model": _str(tc.get("baseModel")) or _str(tc.get("warmStartFrom")),
        "dataset": _str(j.get("dataset")),
        "evaluation_dataset": _str(j.get("evaluationDataset")),
        "evaluator": _str(j.get("evaluator")),
        "create_time": _str(j.get("createTime")),
        "completed_time": _str(j.get("completedTime")),
        "dashboard_url": DASHBOARD + jid if jid else None,
    }


def get_job(client, job_id: str) -> dict:
    """The job as its wire dict (camelCase). 404 → NotFoundError with a hint."""
    jid = job_id_of(job_id)
    try:
        with guarded(client, f"getting RFT job {jid}"):
            job = client.sdk.reinforcement_fine_tuning_jobs.get(jid, account_id=client.account_id)
    except NotFoundError:
        raise NotFoundError(f"RFT job {jid!r} not found in account {client.account_id}",
                            hint="list your jobs with `svgrft jobs list` (check FIREWORKS_ACCOUNT_ID too)",
                            status=404) from None
    return _to_dict(job)


def list_jobs(client, state: str | None = None, limit: int = 50) -> list[dict]:
    """Up to ``limit`` jobs (wire dicts), newest first; ``state`` filters (``running``, ``failed``…)."""
    if limit <= 0:
        return []
    kwargs: dict[str, Any] = {"account_id": client.account_id, "page_size": min(limit, 200)}
    if state:
        kwargs["filter"] = f'state="{normalize_state(state)}"'
    out: list[dict] = []
    with guarded(client, "listing RFT jobs"):
        for job in client.sdk.reinforcement_fine_tuning_jobs.list(**kwargs):
            out.append(_to_dict(job))
            if len(out) >= limit:
                break
    if state:  # in case the server ignores the filter
        want = normalize_state(state)
        out = [j for j in out if j.get("state") == want]
    out.sort(key=lambda j: str(j.get("createTime") or ""), reverse=True)
    return out



def watch_job(client, job_id: str, *, poll_interval: float = 10.0, timeout: float | None = None,
              on_update: Callable[[dict], None] | None = None,
              on_error: Callable[[SvgrftError], None] | None = None) -> dict:
    """Poll until the job reaches a terminal state; returns the final summary.

    ``on_update(summary)`` is called after every successful poll. Transient errors (429, 5xx,
    network) are retried up to MAX_POLL_ERRORS polls in a row (``on_error`` hears about them).
    With ``timeout`` the last summary is returned when it runs out (``summary["terminal"]`` False).
    """
    jid = job_id_of(job_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    errors = 0
    summary: dict | None = None
    while True:
        try:
            summary = job_summary(get_job(client, jid), client.account_id)
            errors = 0
        except NotFoundError:
            raise
        except ApiError as e:
            if not is_transient(e):
                raise
            errors += 1
            if errors > MAX_POLL_ERRORS:
                raise
            if on_error:
                on_error(e)
        if summary is not None and errors == 0:
            if on_update:
                on_update(summary)
            if summary["terminal"]:
                return summary
        if deadline is not None and time.monotonic() >= deadline:
            if summary is None:
                raise ApiError(f"could not read RFT job {jid} before the watch timeout",
                               hint="run `svgrft jobs status` later")
            return summary
        time.sleep(poll_interval)


def cancel_job(client, job_id: str) -> dict:
    """Cancel a job; returns its summary afterwards. Cancelling a cancelled job is a no-op."""
    jid = job_id_of(job_id)
    current = job_summary(get_job(client, jid), client.account_id)
    if current["state"] in CANCELLED_STATES:
        return current
    if current["terminal"]:
        raise SvgrftError(f"job {jid} already finished ({current['state_label']}); nothing to cancel",
                          hint="`svgrft jobs status " + jid + "` shows the result")
    with guarded(client, f"cancelling RFT job {jid}"):
        client.sdk.reinforcement_fine_tuning_jobs.cancel(jid, account_id=client.account_id, body={})
    return job_summary(get_job(client, jid), client.account_id)


def resume_job(client, job_id: str) -> dict:
    """Resume a FAILED, CANCELLED or PAUSED job; returns its summary afterwards."""
    jid = job_id_of(job_id)
    current = job_summary(get_job(client, jid), client.account_id)
    if current["state"] not in RESUMABLE_STATES:
        raise SvgrftError(f"job {jid} is {current['state_label']}; only FAILED, CANCELLED or PAUSED jobs can be resumed",
                          hint=f"watch it with `svgrft jobs watch {jid}`" if not current["terminal"]
                          else "start a new job with `svgrft train`")
    with guarded(client, f"resuming RFT job {jid}"):
        job = client.sdk.reinforcement_fine_tuning_jobs.resume(jid, account_id=client.account_id, body={})
    summary = job_summary(job, client.account_id)
    if not summary["id"]:
        summary = job_summary(get_job(client, jid), client.account_id)
    return summary


def failure_hint(summary: dict) -> str:
    """An actionable hint for a job that did not succeed."""
    jid = summary.get("id") or "<job-id>"
    state = summary.get("state")
    if state == "JOB_STATE_FAILED":
        return (f"read the status message above and the dashboard ({summary.get('dashboard_url')}); "
                f"after fixing the cause, `svgrft jobs resume {jid}` continues the job")
    if state == "JOB_STATE_CANCELLED":
        return f"`svgrft jobs resume {jid}` continues it, or start a new one with `svgrft train`"
    if state == "JOB_STATE_EXPIRED":
        return "the job expired before it could run; start a new one with `svgrft train`"
    return f"see {summary.get('dashboard_url')}"
