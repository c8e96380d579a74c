"""The lifecycle of one on-demand deployment: resolve the target, create, wait until READY, load the LoRA,
tear down — deleting what was created on any failure, Ctrl-C or timeout (:func:`temporary_deployment`).

Used through :mod:`svgrft.workflow.deploy` (which also finds, lists and undeploys).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from svgrft.clients.fireworks_records import DeployedModelRecord, DeploymentRecord
from svgrft.clients.poll import poll
from svgrft.errors import ApiError, ConflictError, NotFoundError, SvgrftError, UsageError
from svgrft.workflow.deploy_plan import DeployPlan, Target, fmt_duration, is_model_name
from svgrft.workflow.deploy_registry import forget, load_records, record, save_records

if TYPE_CHECKING:
    from svgrft.clients.fireworks import FireworksClient

LIVE_STATES = frozenset({"CREATING", "READY", "UPDATING", "STATE_UNSPECIFIED"})
GONE_STATES = frozenset({"DELETED", "DELETING"})

Progress = Callable[[str], None]


def quiet(_msg: str) -> None:
    pass


def resolve_target(fw: FireworksClient, ref: str) -> Target:
    """JOB_ID (or its resource name) → the job's output model; a model name or id → that model.

    The model must exist and be READY; a job that has not finished is a clear error."""
    from svgrft.workflow.jobs import get_job, job_id_of, job_summary

    ref = ref.strip()
    if not ref:
        raise UsageError("missing JOB_ID or MODEL", hint="e.g. svgrft deploy <job-id> (see `svgrft jobs list`)")
    job_id = None
    if is_model_name(ref):
        model = ref
    elif "/reinforcementFineTuningJobs/" in ref or "/" not in ref:
        jid = job_id_of(ref)
        try:
            summary = job_summary(get_job(fw, jid), fw.account_id)
        except NotFoundError:
            if "/" in ref:
                raise
            model = f"accounts/{fw.account_id}/models/{jid}"  # not a job: maybe a model id
        else:
            job_id = jid
            if not summary["succeeded"]:
                raise SvgrftError(
                    f"job {jid} has no output model yet ({summary['state_label'].lower()})",
                    hint=f"wait for it: `svgrft jobs watch {jid}`",
                )
            model = summary["output_model"] or f"accounts/{fw.account_id}/models/{jid}"
    else:
        raise UsageError(
            f"{ref[:80]!r} is neither a job id nor a model name",
            hint="pass a JOB_ID (svgrft jobs list) or accounts/<account>/models/<id>",
        )
    m = fw.get_model(model)
    if m is None:
        what = f"job {job_id}'s output model {model}" if job_id else f"no RFT job or model named {ref!r}: {model}"
        raise NotFoundError(
            f"{what} not found" if job_id else what,
            hint="list jobs with `svgrft jobs list`; pass a JOB_ID or a full model name",
            status=404,
        )
    if m.state not in (None, "READY"):
        raise SvgrftError(f"model {model} is not ready ({m.state})", hint="wait a few minutes and run it again")
    return Target(model=model, base_model=m.base_model, job_id=job_id, kind=m.kind)


# --------------------------------------------------------------------------------------- deploy / wait
class DeployTimeout(ApiError):
    """The deployment did not become READY in time."""


def wait_ready(
    fw: FireworksClient,
    deployment_id: str,
    *,
    timeout: float,
    poll_interval: float,
    on_update: Callable[[DeploymentRecord], None] | None = None,
) -> DeploymentRecord:
    """Poll until READY; FAILED/DELETED → error; transient errors tolerated; ``timeout`` → DeployTimeout."""

    def fetch() -> DeploymentRecord:
        d = fw.get_deployment(deployment_id)
        if d is None:
            raise NotFoundError(
                f"deployment {deployment_id} was deleted while it was starting",
                hint="run the command again",
                status=404,
            )
        return d

    def check(d: DeploymentRecord) -> None:
        if on_update:
            on_update(d)
        if d.state == "FAILED":
            raise ApiError(
                f"deployment {deployment_id} failed: {str(d.status_message or 'no reason given')[:300]}",
                hint="try another --accelerator or --shape, or later (capacity changes)",
            )
        if d.state in GONE_STATES:
            raise ApiError(
                f"deployment {deployment_id} was deleted while it was starting", hint="run the command again"
            )

    def timed_out(_last: DeploymentRecord | None) -> DeploymentRecord:
        raise DeployTimeout(
            f"deployment {deployment_id} was not READY after {fmt_duration(timeout)}",
            hint="raise deploy.timeout (or --timeout), or try again later",
        )

    return poll(
        fetch,
        done=lambda d: d.state == "READY",
        interval=poll_interval,
        timeout=timeout,
        on_value=check,
        on_timeout=timed_out,
    )


def _wait_lora(fw: FireworksClient, dm_name: str, *, timeout: float, poll_interval: float) -> DeployedModelRecord:
    def fetch() -> DeployedModelRecord:
        dm = fw.get_deployed_model(dm_name)
        if dm is None:
            raise NotFoundError(
                f"the LoRA load {dm_name} disappeared while it was loading", hint="run the command again", status=404
            )
        return dm

    def timed_out(last: DeployedModelRecord | None) -> DeployedModelRecord:
        raise DeployTimeout(
            f"LoRA {last.model if last else dm_name} was not loaded after {fmt_duration(timeout)}",
            hint="raise deploy.timeout (or --timeout), or try again later",
        )

    return poll(
        fetch, done=lambda dm: dm.state == "DEPLOYED", interval=poll_interval, timeout=timeout, on_timeout=timed_out
    )


@dataclass
class Deployed:
    deployment: DeploymentRecord
    model_string: str
    created: bool  # False: an existing deployment was reused
    deployed_model: str | None = None
    record: dict | None = None

    def to_json(self) -> dict:
        return {
            "deployment": self.deployment.name,
            "state": self.deployment.state,
            "model_string": self.model_string,
            "created": self.created,
            "deployed_model": self.deployed_model,
            "expires": (self.record or {}).get("expires"),
        }


def deploy(
    fw: FireworksClient,
    plan: DeployPlan,
    *,
    timeout: float,
    poll_interval: float,
    wait: bool = True,
    temporary: bool = False,
    on_update: Callable[[DeploymentRecord], None] | None = None,
    progress: Progress = quiet,
) -> Deployed:
    """Create the deployment of ``plan`` (or reuse a live one with the same id and model), record its TTL,
    wait until READY and (addons mode) load the LoRA. On any failure or interrupt after the create, a
    deployment this call created is deleted again before the exception propagates."""
    created = False
    existing = fw.get_deployment(plan.deployment_id)
    if existing is not None and existing.state not in GONE_STATES:
        if existing.base_model != plan.deployed_base:
            raise SvgrftError(
                f"deployment {plan.deployment_id} exists and serves {existing.base_model}",
                hint="pass another --id, or `svgrft undeploy " + plan.deployment_id + "` first",
            )
        if existing.state == "FAILED":
            raise SvgrftError(
                f"deployment {plan.deployment_id} exists and has FAILED",
                hint=f"delete it with `svgrft undeploy {plan.deployment_id}`, then rerun",
            )
        progress(f"reusing deployment {plan.deployment_id} ({existing.state.lower()})")
        d = existing
    else:
        try:
            d = fw.create_deployment(plan.deployment_id, plan.body())
            created = True
        except ConflictError:  # created concurrently (or by a retried request): use it
            found = fw.get_deployment(plan.deployment_id)
            if found is None:
                raise
            d = found
        except BaseException as e:
            if isinstance(e, (KeyboardInterrupt, ApiError)) and not isinstance(e, NotFoundError):
                # interrupted (or failed) while the create was in flight: it may exist now, nobody to delete it
                cleanup_quietly(fw, plan.deployment_name, None)
            raise
    rec = None
    dm_name = None
    try:
        if created:
            rec = record(plan, temporary=temporary)
            progress(f"created deployment {plan.deployment_id} ({d.state.lower()})")
        else:
            rec = load_records().get(plan.deployment_name)
        if wait:
            d = wait_ready(fw, plan.deployment_id, timeout=timeout, poll_interval=poll_interval, on_update=on_update)
            if plan.mode == "addons":
                dm_name = _ensure_lora(fw, plan, timeout=timeout, poll_interval=poll_interval, progress=progress)
                if rec is not None:
                    rec["deployed_model"] = dm_name
                    records = load_records()
                    records[plan.deployment_name] = rec
                    save_records(records)
    except BaseException as e:
        if created:
            why = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            problem = cleanup_quietly(fw, plan.deployment_name, dm_name)
            if problem is None:
                progress(f"{why}: deleted deployment {plan.deployment_id} again (nothing keeps billing)")
            else:
                progress(
                    f"{why}, and deployment {plan.deployment_id} could NOT be deleted ({problem}): run "
                    f"`svgrft undeploy {plan.deployment_id}`"
                )
        raise
    return Deployed(deployment=d, model_string=plan.model_string, created=created, deployed_model=dm_name, record=rec)


def _ensure_lora(
    fw: FireworksClient, plan: DeployPlan, *, timeout: float, poll_interval: float, progress: Progress
) -> str:
    for dm in fw.list_deployed_models():
        if dm.model == plan.target.model and dm.deployment == plan.deployment_name:
            name = dm.name
            break
    else:
        progress(f"loading {plan.target.model} onto {plan.deployment_id}")
        name = fw.load_lora(model=plan.target.model, deployment=plan.deployment_name).name
    _wait_lora(fw, name, timeout=timeout, poll_interval=poll_interval)
    return name


def cleanup_quietly(fw: FireworksClient, deployment_name: str, dm_name: str | None) -> str | None:
    """Delete (unload first); returns an error message instead of raising."""
    try:
        teardown(fw, deployment_name, deployed_model=dm_name)
        return None
    except KeyboardInterrupt:
        return "interrupted while deleting"
    except Exception as e:  # noqa: BLE001 - reported to the user with the command to run
        return getattr(e, "message", None) or f"{type(e).__name__}: {e}"


def teardown(fw: FireworksClient, deployment: str, *, deployed_model: str | None = None) -> bool:
    """Unload the LoRA (if any) and delete the deployment; forget its TTL record. False if already gone."""
    name = deployment if deployment.startswith("accounts/") else f"accounts/{fw.account_id}/deployments/{deployment}"
    if deployed_model:
        fw.unload_lora(deployed_model)
    else:
        for dm in safe_list_dms(fw):
            if dm.deployment == name and dm.name:
                fw.unload_lora(dm.name)
    gone = not fw.delete_deployment(name)
    forget(name)
    return not gone


def safe_list_dms(fw: FireworksClient) -> list[DeployedModelRecord]:
    """The account's LoRA loads; none when the listing answers 404."""
    try:
        return fw.list_deployed_models()
    except NotFoundError:
        return []


@contextlib.contextmanager
def temporary_deployment(
    fw: FireworksClient,
    plan: DeployPlan,
    *,
    timeout: float,
    poll_interval: float,
    on_update: Callable[[DeploymentRecord], None] | None = None,
    progress: Progress = quiet,
    on_cleanup_failed: Callable[[str, str], None] | None = None,
) -> Iterator[Deployed]:
    """Deploy for the duration of the ``with`` block and delete afterwards: on success, an error, Ctrl-C
    or a READY timeout. A deployment that already existed is used and left alone. If the deletion fails,
    ``on_cleanup_failed(message, command)`` is told (the command deletes it by hand)."""
    dep = deploy(
        fw, plan, timeout=timeout, poll_interval=poll_interval, temporary=True, on_update=on_update, progress=progress
    )
    try:
        yield dep
    finally:
        if dep.created:
            progress(f"deleting deployment {plan.deployment_id}")
            problem = cleanup_quietly(fw, plan.deployment_name, dep.deployed_model)
            if problem is not None and on_cleanup_failed is not None:
                on_cleanup_failed(problem, f"svgrft undeploy {plan.deployment_id}")
