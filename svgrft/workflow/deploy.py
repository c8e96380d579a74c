"""Use a trained model: deploy it on demand, find its deployment, tear it down.

A LoRA model is served only from an on-demand deployment (reference/fireworks.md §2.7, §5.2b). Two ways:

``merge``   (default) ``deployments.create(base_model=<the LoRA model>)``: Fireworks merges the addon
            into its base model on a deployment of its own; call it as ``<model>`` (or ``<model>#<dep>``).
``addons``  a deployment of the *base* model with ``enable_addons`` and ``lora.load`` of the addon
            onto it; worth it when several LoRAs of one base share the GPU.

SDK 1.2.30 documents ``expire_time`` as deprecated ("no longer causes auto-deletion"). So svgrft sends it
(it costs nothing) but enforces the time limit itself: every deployment it creates is recorded with its
TTL (:mod:`svgrft.workflow.deploy_registry`); ``svgrft deployments list`` shows it and flags the expired
ones; ``svgrft undeploy --expired`` deletes them; :func:`temporary_deployment` deletes on exit, Ctrl-C,
error and timeout. The platform-side guard is ``min_replica_count=0`` with
``autoscaling_policy.scale_to_zero_window``: an idle deployment scales to zero replicas (no GPU billed).

Layers: :mod:`~svgrft.workflow.deploy_plan` (no network: ``deploy --dry-run``) →
:mod:`~svgrft.workflow.deploy_registry` (the TTL records) → :mod:`~svgrft.workflow.deploy_lifecycle` (one
deployment) → this module (find, list, undeploy, use for a run). The names of the lower modules the commands
use are imported here, so ``svgrft.workflow.deploy`` is the one module they import.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from svgrft.errors import NotFoundError, SvgrftError, UsageError
from svgrft.workflow.deploy_lifecycle import (
    GONE_STATES,
    LIVE_STATES,
    Deployed,
    DeployTimeout,
    Progress,
    deploy,
    quiet,
    resolve_target,
    safe_list_dms,
    teardown,
    temporary_deployment,
    wait_ready,
)
from svgrft.workflow.deploy_plan import (
    ACCELERATORS,
    MODES,
    PRICE_PER_GPU_HOUR,
    DeployPlan,
    Target,
    assumed_target,
    cost_line,
    default_deployment_id,
    fmt_duration,
    is_model_name,
    parse_duration,
    parse_time,
    plan_deployment,
)
from svgrft.workflow.deploy_registry import is_expired, load_records, registry_path, save_records

if TYPE_CHECKING:
    from svgrft.clients.fireworks import FireworksClient
    from svgrft.clients.fireworks_records import DeploymentRecord
    from svgrft.config import Settings


def serving_string(fw: FireworksClient, model: str) -> str | None:
    """How to call ``model`` right now: ``<model>#<deployment>`` of a READY deployment that serves it (a
    live merge of it, or a DEPLOYED LoRA load), else None."""
    deps = {d.name: d for d in fw.list_deployments()}
    ready = {n for n, d in deps.items() if d.state == "READY"}
    for name, d in sorted(deps.items()):
        if name in ready and d.base_model == model:
            return f"{model}#{name}"
    for dm in safe_list_dms(fw):
        if dm.model == model and dm.state == "DEPLOYED" and dm.deployment in ready:
            return f"{model}#{dm.deployment}"
    return None


def list_deployments(fw: FireworksClient, now: datetime | None = None) -> list[dict]:
    """Live deployments of the account, each with the models it serves and svgrft's TTL record."""
    now = now or datetime.now(timezone.utc)
    records = load_records()
    dms = safe_list_dms(fw)
    out = []
    for d in fw.list_deployments():
        name = d.name
        if d.state in GONE_STATES:
            continue
        rec = records.get(name)
        loaded_dms = {dm.model: dm.name for dm in dms if dm.deployment == name and dm.model}
        loaded = list(loaded_dms)
        exp = parse_time((rec or {}).get("expires"))
        out.append(
            {
                "name": name,
                "id": name.rsplit("/", 1)[-1],
                "base_model": d.base_model,
                "state": d.state,
                "replicas": d.replica_count,
                "loras": loaded,
                "lora_names": loaded_dms,
                "record_model": (rec or {}).get("model"),
                "accelerator": d.accelerator,
                "create_time": d.create_time,
                "svgrft": rec is not None,
                "expires": rec.get("expires") if rec else None,
                "expires_in": (exp - now).total_seconds() if exp else None,
                "expired": bool(exp and now >= exp),
                "job_id": (rec or {}).get("job_id"),
            }
        )
    live = {d["name"] for d in out}
    stale = [name for name in records if name not in live and name.startswith(f"accounts/{fw.account_id}/")]
    if stale:  # deleted elsewhere (dashboard, firectl): nothing left to expire
        save_records({k: v for k, v in records.items() if k not in stale})
    return out


def undeploy_targets(fw: FireworksClient, ref: str | None, *, expired: bool = False) -> list[dict]:
    """Which deployments ``svgrft undeploy`` deletes: by id/name; by JOB_ID or model (every live deployment
    serving its model); or (``expired``) every svgrft deployment past its TTL."""
    live = list_deployments(fw)
    if expired:
        return [d for d in live if d["expired"]]
    if not ref:
        raise UsageError(
            "missing NAME or JOB_ID", hint="svgrft undeploy NAME|JOB_ID (see `svgrft deployments list`), or --expired"
        )
    ref = ref.strip()
    by_name = [d for d in live if ref in (d["name"], d["id"])]
    if by_name:
        return by_name
    try:
        target = resolve_target(fw, ref)
    except NotFoundError:
        raise NotFoundError(
            f"no deployment, RFT job or model named {ref!r}", hint="see `svgrft deployments list`", status=404
        ) from None
    out = []
    for d in live:
        if d["base_model"] == target.model:
            out.append(d)
        elif target.model in d["loras"]:
            # svgrft's own host for this LoRA goes; a shared or foreign host only loses this LoRA
            own = d["svgrft"] and d["record_model"] == target.model and d["loras"] == [target.model]
            out.append(d if own else {**d, "unload": target.model})
    return out


def undeploy(
    fw: FireworksClient, items: list[dict], progress: Progress = quiet
) -> tuple[list[str], list[tuple[str, str]]]:
    """Delete each (or, for items with ``unload``, only unload that LoRA from it); returns (names done,
    [(name, error message)])."""
    done, failed = [], []
    for d in items:
        try:
            if d.get("unload"):
                fw.unload_lora(d["lora_names"][d["unload"]])
                done.append(f"{d['name']} (unloaded {d['unload']})")
                progress(f"unloaded {d['unload']} from deployment {d['id']} (the deployment stays)")
                continue
            teardown(fw, d["name"])
            done.append(d["name"])
            progress(f"deleted deployment {d['id']}")
        except SvgrftError as e:
            failed.append((d["name"], e.message))
    return done, failed


def snippet(model_string: str, settings: Settings) -> dict[str, str]:
    """Ready-to-run curl and openai snippets (the key stays in $FIREWORKS_API_KEY)."""
    base = settings.fireworks.inference_base_url.rstrip("/")
    body = json.dumps(
        {"model": model_string, "messages": [{"role": "user", "content": "Write `svg` code for a red circle."}]}
    )
    curl = (
        f'curl -s {base}/chat/completions -H "Authorization: Bearer $FIREWORKS_API_KEY" '
        f"-H 'Content-Type: application/json' -d '{body}'"
    )
    py = (
        "from openai import OpenAI\n"
        f'client = OpenAI(base_url={base!r}, api_key=os.environ["FIREWORKS_API_KEY"])\n'
        f"reply = client.chat.completions.create(model={model_string!r},\n"
        '    messages=[{"role": "user", "content": "Write `svg` code for a red circle."}])\n'
        "print(reply.choices[0].message.content)"
    )
    return {"curl": curl, "python": "import os\n" + py}


__all__ = [
    "Target",
    "DeployPlan",
    "Deployed",
    "DeployTimeout",
    "parse_duration",
    "fmt_duration",
    "resolve_target",
    "assumed_target",
    "plan_deployment",
    "cost_line",
    "deploy",
    "wait_ready",
    "temporary_deployment",
    "teardown",
    "serving_string",
    "list_deployments",
    "undeploy_targets",
    "undeploy",
    "snippet",
    "load_records",
    "registry_path",
    "is_expired",
    "default_deployment_id",
    "deployment_for",
    "resolve_eval_model",
    "ACCELERATORS",
    "MODES",
    "PRICE_PER_GPU_HOUR",
    "LIVE_STATES",
    "GONE_STATES",
]


@contextlib.contextmanager
def deployment_for(
    settings: Settings,
    ref: str,
    *,
    fw: FireworksClient | None = None,
    ttl: str | None = None,
    confirm: Callable[[DeployPlan], None] | None = None,
    progress: Progress = quiet,
    on_update: Callable[[DeploymentRecord], None] | None = None,
    on_cleanup_failed: Callable[[str, str], None] | None = None,
) -> Iterator[str]:
    """Yield the model string to call for JOB_ID|MODEL ``ref``: an existing READY deployment is used (and kept);
    otherwise one is created for the ``with`` block (``confirm(plan)`` may refuse by raising) and deleted
    afterwards — also on an error, Ctrl-C or a READY timeout."""
    if fw is None:
        from svgrft.clients.fireworks import make_client

        fw = make_client(settings)
    target = resolve_target(fw, ref)
    served = serving_string(fw, target.model)
    if served:
        progress(f"using the existing deployment {served.split('#', 1)[1]} (it is left running)")
        yield served
        return
    plan = plan_deployment(settings, target, ttl=ttl, account=fw.account_id)
    progress(f"deploying {target.model} as {plan.deployment_id} for this run: {cost_line(plan)}")
    if confirm is not None:
        confirm(plan)
    with temporary_deployment(
        fw,
        plan,
        timeout=settings.deploy.timeout,
        poll_interval=settings.deploy.poll_interval,
        on_update=on_update,
        progress=progress,
        on_cleanup_failed=on_cleanup_failed,
    ) as dep:
        yield dep.model_string


def resolve_eval_model(
    settings: Settings, model: str, *, fw: FireworksClient | None = None, progress: Progress = quiet
) -> str:
    """``svgrft eval --model``: a trained model (``accounts/<own account>/models/…``) or a JOB_ID becomes the
    ``<model>#<deployment>`` string of a READY deployment serving it; anything else is returned unchanged.

    A short name is looked up as a job id first (one GET; 404 → a serverless model name). A trained model
    without a deployment is a NotFoundError that says how to deploy it."""
    name = model.strip()
    if not name or "#" in name or (name.startswith("accounts/fireworks/")):
        return model
    if "/" in name and not is_model_name(name) and "/reinforcementFineTuningJobs/" not in name:
        return model
    if not settings.secret("FIREWORKS_API_KEY"):
        return model
    if fw is None:
        from svgrft.clients.fireworks import make_client

        try:
            fw = make_client(settings, max_retries=0)
        except SvgrftError:
            return model
    if is_model_name(name):
        if name.split("/")[1] != fw.account_id:
            return model
        target = Target(model=name)
    else:
        from svgrft.workflow.jobs import get_job, job_id_of, job_summary

        try:
            jid = job_id_of(name)
            summary = job_summary(get_job(fw, jid), fw.account_id)
        except (NotFoundError, UsageError):
            return model  # not a job: a serverless model name
        except SvgrftError as e:
            progress(f"could not check whether {name} is a job ({e.message}); using it as a model name")
            return model
        if not summary["succeeded"] or not summary["output_model"]:
            raise SvgrftError(
                f"job {jid} has no output model yet ({summary['state_label'].lower()})",
                hint=f"wait for it: `svgrft jobs watch {jid}`",
            )
        target = Target(model=summary["output_model"], job_id=jid)
    try:
        served = serving_string(fw, target.model)
    except SvgrftError as e:
        progress(f"could not list deployments ({e.message}); calling {target.model} as is")
        return target.model
    if served is None:
        ref = target.job_id or target.model
        raise NotFoundError(
            f"model '{target.model}' not found or not deployed: no READY deployment serves it",
            hint=f"deploy it with `svgrft deploy {ref}` (LoRA models need an on-demand "
            f"deployment), then rerun; `svgrft undeploy {ref}` afterwards",
            status=404,
        )
    progress(f"using deployment {served.split('#', 1)[1]} for {target.model}")
    return served
