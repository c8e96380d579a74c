"""Use a trained model: deploy it on demand, find its deployment, tear it down.

A LoRA model is served only from an on-demand deployment (reference/fireworks.md §2.7, §5.2b). Two ways:

``merge``   (default) ``deployments.create(base_model=<the LoRA model>)``: Fireworks merges the addon
            into its base model on a deployment of its own; call it as ``<model>`` (or ``<model>#<dep>``).
``addons``  a deployment of the *base* model with ``enable_addons`` and ``lora.load`` of the addon
            onto it; worth it when several LoRAs of one base share the GPU.

SDK 1.2.30 documents ``expire_time`` as deprecated ("no longer causes auto-deletion"). So svgrft sends it
(it costs nothing) but enforces the time limit itself: every deployment it creates is recorded with its
TTL in ``$SVGRFT_HOME/deployments.json``; ``svgrft deployments list`` shows it and flags the expired
ones; ``svgrft undeploy --expired`` deletes them; :func:`temporary_deployment` deletes on exit, Ctrl-C,
error and timeout. The platform-side guard is ``min_replica_count=0`` with
``autoscaling_policy.scale_to_zero_window``: an idle deployment scales to zero replicas (no GPU billed).

:func:`plan_deployment` and :func:`DeployPlan.request` never touch the network (``deploy --dry-run``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from svgrft.errors import ApiError, ConfigError, NotFoundError, SvgrftError, UsageError
from svgrft.workflow import MAX_POLL_ERRORS, is_transient

ACCELERATORS = ("NVIDIA_A100_80GB", "NVIDIA_H100_80GB", "NVIDIA_H200_141GB", "NVIDIA_B200_180GB",
                "AMD_MI300X_192GB", "AMD_MI325X_256GB", "AMD_MI350X_288GB", "NVIDIA_A10G_24GB",
                "NVIDIA_A100_40GB", "NVIDIA_L4_24GB")
# On-demand list prices in USD per GPU-hour (fireworks.ai/pricing, late 2025). An estimate to show before
# starting a GPU: `deploy.price_per_hour` overrides it; the bill is Fireworks'.
PRICE_PER_GPU_HOUR = {"NVIDIA_A100_80GB": 2.90, "NVIDIA_H100_80GB": 4.00, "NVIDIA_H200_141GB": 6.00,
                      "NVIDIA_B200_180GB": 9.00, "AMD_MI300X_192GB": 4.99}
PRICING_URL = "https://fireworks.ai/pricing"
LIVE_STATES = frozenset({"CREATING", "READY", "UPDATING", "STATE_UNSPECIFIED"})
GONE_STATES = frozenset({"DELETED", "DELETING"})
ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
MODES = ("merge", "addons")

Progress = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


# --------------------------------------------------------------------------------------- durations
_DUR_RE = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_DUR_FULL = re.compile(r"(?:\d+(?:\.\d+)?[dhms])+")
_UNIT = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: Any, what: str = "--ttl") -> float:
    """``2h``, ``90m``, ``1h30m``, ``45s``, ``1d`` or plain seconds → seconds (1 s … 30 days)."""
    s = str(text).strip().lower().replace(" ", "")
    try:
        seconds = float(s)
    except ValueError:
        if not _DUR_FULL.fullmatch(s):
            raise UsageError(f"{what} {str(text)[:40]!r} is not a duration",
                             hint=f"e.g. {what} 2h, 90m or 1h30m") from None
        seconds = sum(float(n) * _UNIT[u] for n, u in _DUR_RE.findall(s))
    if not 1 <= seconds <= 30 * 86400:
        raise UsageError(f"{what} {str(text)[:40]!r} must be between 1 second and 30 days", hint=f"e.g. {what} 2h")
    return seconds


def fmt_duration(seconds: float) -> str:
    s = int(round(max(0.0, seconds)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h and m:
        return f"{h}h{m:02d}m"
    if h:
        return f"{h}h"
    if m:
        return f"{m}m" if not sec else f"{m}m{sec:02d}s"
    return f"{sec}s"


def _rfc3339(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------- target
@dataclass
class Target:
    """The model to serve: its full name, the base of the LoRA, and the job that trained it (if known)."""

    model: str
    base_model: str | None = None
    job_id: str | None = None
    kind: str | None = None
    looked_up: bool = True       # False in a dry run: the names are svgrft's assumptions

    @property
    def is_lora(self) -> bool:
        return self.kind in (None, "HF_PEFT_ADDON")


def _is_model_name(ref: str) -> bool:
    return bool(re.fullmatch(r"accounts/[^/]+/models/[^/#]+", ref.strip()))


def assumed_target(settings: Any, ref: str) -> Target:
    """The target without a network call (dry run): a model name as given; a JOB_ID's output model is
    assumed to be the job's default, ``accounts/<account>/models/<JOB_ID>``."""
    from svgrft.workflow.jobs import job_id_of

    ref = ref.strip()
    if _is_model_name(ref):
        return Target(model=ref, looked_up=False)
    account = settings["fireworks.account_id"] or "<account>"
    return Target(model=f"accounts/{account}/models/{job_id_of(ref)}", job_id=job_id_of(ref), looked_up=False)


def resolve_target(fw: Any, ref: str) -> Target:
    """JOB_ID (or its resource name) → the job's output model; a model name or id → that model.

    The model must exist and be READY; a job that has not finished is a clear error."""
    from svgrft.workflow.jobs import get_job, job_id_of, job_summary

    ref = ref.strip()
    if not ref:
        raise UsageError("missing JOB_ID or MODEL", hint="e.g. svgrft deploy <job-id> (see `svgrft jobs list`)")
    job_id = None
    if _is_model_name(ref):
        model = ref
    elif "/reinforcementFineTuningJobs/" in ref or "/" not in ref:
        jid = job_id_of(ref)
        try:
            summary = job_summary(get_job(fw, jid), fw.account_id)
        except NotFoundError:
            if "/" in ref:
                raise
            model = f"accounts/{fw.account_id}/models/{jid}"   # not a job: maybe a model id
        else:
            job_id = jid
            if not summary["succeeded"]:
                raise SvgrftError(f"job {jid} has no output model yet ({summary['state_label'].lower()})",
                                  hint=f"wait for it: `svgrft jobs watch {jid}`")
            model = summary["output_model"] or f"accounts/{fw.account_id}/models/{jid}"
    else:
        raise UsageError(f"{ref[:80]!r} is neither a job id nor a model name",
                         hint="pass a JOB_ID (svgrft jobs list) or accounts/<account>/models/<id>")
    try:
        m = fw.get_model(model)
    except NotFoundError:
        what = f"job {job_id}'s output model {model}" if job_id else f"no RFT job or model named {ref!r}: {model}"
        raise NotFoundError(f"{what} not found" if job_id else what,
                            hint="list jobs with `svgrft jobs list`; pass a JOB_ID or a full model name",
                            status=404) from None
    state = m.get("state")
    if state not in (None, "READY"):
        raise SvgrftError(f"model {model} is not ready ({state})", hint="wait a few minutes and run it again")
    base = (m.get("peftDetails") or {}).get("baseModel") if isinstance(m.get("peftDetails"), dict) else None
    return Target(model=model, base_model=base or None, job_id=job_id, kind=m.get("kind"))


# --------------------------------------------------------------------------------------- plan
def default_deployment_id(model: str) -> str:
    """``svgrft-<model id>``, cut to a valid Fireworks id (deterministic: a rerun finds it)."""
    mid = model.rsplit("/", 1)[-1].lower()
    mid = re.sub(r"[^a-z0-9-]+", "-", mid).strip("-") or "model"
    did = f"svgrft-{mid}"[:63].rstrip("-")
    return did


@dataclass
class DeployPlan:
    target: Target
    deployment_id: str
    mode: str                       # "merge" | "addons"
    account: str
    accelerator_type: str
    accelerator_count: int
    max_replicas: int
    ttl_seconds: float
    expire_time: str
    scale_to_zero: str              # protobuf Duration, e.g. "900s"
    shape: str | None = None
    price_per_gpu_hour: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def deployed_base(self) -> str:
        """What the deployment is created for: the LoRA itself (merge) or its base model (addons)."""
        return self.target.model if self.mode == "merge" else (self.target.base_model or "<base model>")

    @property
    def deployment_name(self) -> str:
        return f"accounts/{self.account}/deployments/{self.deployment_id}"

    @property
    def model_string(self) -> str:
        """The ``model`` to put in a chat completion request."""
        return f"{self.target.model}#{self.deployment_name}"

    @property
    def cost_per_hour(self) -> float | None:
        if self.price_per_gpu_hour is None:
            return None
        return round(self.price_per_gpu_hour * self.accelerator_count * self.max_replicas, 2)

    def sdk_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "deployment_id": self.deployment_id, "base_model": self.deployed_base,
            "display_name": f"svgrft {self.target.model.rsplit('/', 1)[-1]}"[:63],
            "min_replica_count": 0, "max_replica_count": self.max_replicas,
            "autoscaling_policy": {"scale_to_zero_window": self.scale_to_zero},
            "expire_time": self.expire_time,
        }
        if self.shape:
            kw["deployment_shape"] = self.shape
        else:
            kw["accelerator_type"] = self.accelerator_type
            kw["accelerator_count"] = self.accelerator_count
        if self.mode == "addons":
            kw["enable_addons"] = True
        return kw

    def request(self) -> dict[str, Any]:
        """The HTTP requests this plan sends, in wire form (what `deploy --dry-run` prints)."""
        kw = self.sdk_kwargs()
        body: dict[str, Any] = {"baseModel": kw["base_model"], "displayName": kw["display_name"],
                                "minReplicaCount": 0, "maxReplicaCount": self.max_replicas,
                                "autoscalingPolicy": {"scaleToZeroWindow": self.scale_to_zero},
                                "expireTime": self.expire_time}
        if self.shape:
            body["deploymentShape"] = self.shape
        else:
            body["acceleratorType"] = self.accelerator_type
            body["acceleratorCount"] = self.accelerator_count
        if self.mode == "addons":
            body["enableAddons"] = True
        reqs = [{"method": "POST", "path": f"/v1/accounts/{self.account}/deployments?deploymentId={self.deployment_id}",
                 "body": body}]
        if self.mode == "addons":
            reqs.append({"method": "POST", "path": f"/v1/accounts/{self.account}/deployedModels",
                         "body": {"model": self.target.model, "deployment": self.deployment_name}})
        return {"requests": reqs}

    def describe(self) -> dict[str, Any]:
        return {"deployment_id": self.deployment_id, "deployment": self.deployment_name, "mode": self.mode,
                "model": self.target.model, "base_model": self.target.base_model, "job_id": self.target.job_id,
                "looked_up": self.target.looked_up, "model_string": self.model_string,
                "accelerator_type": self.accelerator_type if not self.shape else None,
                "accelerator_count": self.accelerator_count if not self.shape else None,
                "deployment_shape": self.shape, "max_replicas": self.max_replicas,
                "price_per_gpu_hour": self.price_per_gpu_hour, "cost_per_hour": self.cost_per_hour,
                "ttl_seconds": self.ttl_seconds, "ttl": fmt_duration(self.ttl_seconds),
                "expire_time": self.expire_time, "scale_to_zero_window": self.scale_to_zero,
                "notes": list(self.notes), **self.request()}


def plan_deployment(settings: Any, target: Target, *, deployment_id: str | None = None, ttl: str | None = None,
                    accelerator_type: str | None = None, accelerator_count: int | None = None,
                    shape: str | None = None, mode: str | None = None, account: str | None = None,
                    now: datetime | None = None) -> DeployPlan:
    """Everything about the deployment to create, from flags and settings; no network."""
    mode = (mode or settings["deploy.mode"]).strip().lower()
    if mode not in MODES:
        raise UsageError(f"unknown deployment mode {mode!r}", hint="use merge (default) or addons")
    if mode == "addons" and not target.base_model:
        if target.looked_up:
            raise SvgrftError(f"model {target.model} names no base model (not a LoRA addon?)",
                              hint="deploy it with --mode merge")
    did = (deployment_id or default_deployment_id(target.model)).strip()
    if not ID_RE.match(did):
        raise UsageError(f"invalid deployment id {did!r}",
                         hint="lowercase letters, digits and '-', starting with a letter, at most 63 characters")
    acc = (accelerator_type or settings["deploy.accelerator_type"]).strip().upper()
    if acc not in ACCELERATORS:
        raise UsageError(f"unknown accelerator type {acc!r}", hint="use one of: " + ", ".join(ACCELERATORS[:5]))
    count = int(accelerator_count or settings["deploy.accelerator_count"])
    if count < 1 or count > 8:
        raise UsageError(f"--accelerator-count {count} is out of range", hint="use 1 to 8")
    ttl_s = parse_duration(ttl or settings["deploy.ttl"], "--ttl")
    idle = parse_duration(settings["deploy.scale_to_zero"], "deploy.scale_to_zero")
    if idle < 300:
        raise ConfigError("deploy.scale_to_zero must be at least 5m (a Fireworks limit)",
                          hint="set deploy.scale_to_zero = \"5m\" or more")
    configured = float(settings["deploy.price_per_hour"] or 0)
    price = configured if configured > 0 else PRICE_PER_GPU_HOUR.get(acc)
    notes = []
    if shape:
        notes.append(f"deployment shape {shape}: the accelerator comes from the shape; the cost shown assumes "
                     f"{count} × {acc}")
    if not target.looked_up:
        notes.append("not looked up (dry run): "
                     + (f"job {target.job_id}'s output model is assumed to be {target.model}" if target.job_id
                        else f"model {target.model} as given"))
    start = (now or datetime.now(timezone.utc))
    return DeployPlan(target=target, deployment_id=did, mode=mode,
                      account=account or settings["fireworks.account_id"] or "<account>",
                      accelerator_type=acc, accelerator_count=count, max_replicas=1, ttl_seconds=ttl_s,
                      expire_time=_rfc3339(start + timedelta(seconds=ttl_s)), scale_to_zero=f"{int(idle)}s",
                      shape=shape or None, price_per_gpu_hour=price, notes=notes)


def cost_line(plan: DeployPlan) -> str:
    hw = f"{plan.accelerator_count} × {plan.accelerator_type}" if not plan.shape else f"shape {plan.shape}"
    if plan.cost_per_hour is None:
        cost = f"cost per hour unknown for {plan.accelerator_type} (see {PRICING_URL})"
    else:
        cost = f"about ${plan.cost_per_hour:.2f}/hour while a replica runs ({PRICING_URL})"
    return (f"{hw}, up to {plan.max_replicas} replica: {cost}; scales to zero after "
            f"{fmt_duration(parse_duration(plan.scale_to_zero))} idle; TTL {fmt_duration(plan.ttl_seconds)} "
            f"(then `svgrft deployments list` flags it and `svgrft undeploy --expired` deletes it)")


# --------------------------------------------------------------------------------------- local TTL records
def registry_path() -> Path:
    from svgrft.core.store import home_dir

    return home_dir() / "deployments.json"


def load_records() -> dict[str, dict]:
    """Deployments svgrft created, by full deployment name (a broken file reads as empty)."""
    p = registry_path()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def _save_records(records: dict[str, dict]) -> None:
    p = registry_path()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(records, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, p)
    except OSError as e:
        raise ConfigError(f"cannot write {p}: {e.strerror or e}", hint="check SVGRFT_HOME is writable") from None


def record(plan: DeployPlan, *, temporary: bool = False, deployed_model: str | None = None) -> dict:
    rec = {"deployment": plan.deployment_name, "deployment_id": plan.deployment_id, "model": plan.target.model,
           "mode": plan.mode, "job_id": plan.target.job_id, "created": _rfc3339(datetime.now(timezone.utc)),
           "expires": plan.expire_time, "ttl_seconds": plan.ttl_seconds, "temporary": temporary,
           "deployed_model": deployed_model, "model_string": plan.model_string}
    records = load_records()
    records[plan.deployment_name] = rec
    _save_records(records)
    return rec


def forget(deployment_name: str) -> None:
    records = load_records()
    if records.pop(deployment_name, None) is not None:
        _save_records(records)


def is_expired(rec: dict | None, now: datetime | None = None) -> bool:
    exp = _parse_time((rec or {}).get("expires"))
    return exp is not None and (now or datetime.now(timezone.utc)) >= exp


# --------------------------------------------------------------------------------------- deploy / wait
def _state(d: dict) -> str:
    return str(d.get("state") or "STATE_UNSPECIFIED")


def wait_ready(fw: Any, deployment_id: str, *, timeout: float, poll_interval: float,
               on_update: Callable[[dict], None] | None = None) -> dict:
    """Poll until READY; FAILED/DELETED → error; transient errors tolerated; ``timeout`` → ApiError."""
    deadline = time.monotonic() + timeout
    errors = 0
    while True:
        try:
            d = fw.get_deployment(deployment_id)
            errors = 0
        except ApiError as e:
            if not is_transient(e) or errors >= MAX_POLL_ERRORS:
                raise
            errors += 1
            d = None
        if d is not None:
            if on_update:
                on_update(d)
            st = _state(d)
            if st == "READY":
                return d
            if st == "FAILED":
                msg = (d.get("status") or {}).get("message") if isinstance(d.get("status"), dict) else None
                raise ApiError(f"deployment {deployment_id} failed: {str(msg or 'no reason given')[:300]}",
                               hint="try another --accelerator or --shape, or later (capacity changes)")
            if st in GONE_STATES:
                raise ApiError(f"deployment {deployment_id} was deleted while it was starting",
                               hint="run the command again")
        if time.monotonic() >= deadline:
            raise DeployTimeout(f"deployment {deployment_id} was not READY after {fmt_duration(timeout)}",
                                hint="raise deploy.timeout (or --timeout), or try again later")
        time.sleep(poll_interval)


class DeployTimeout(ApiError):
    """The deployment did not become READY in time."""


def _wait_lora(fw: Any, dm_name: str, *, timeout: float, poll_interval: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        dm = fw.get_deployed_model(dm_name)
        if dm.get("state") == "DEPLOYED":
            return dm
        if time.monotonic() >= deadline:
            raise DeployTimeout(f"LoRA {dm.get('model')} was not loaded after {fmt_duration(timeout)}",
                                hint="raise deploy.timeout (or --timeout), or try again later")
        time.sleep(poll_interval)


@dataclass
class Deployed:
    deployment: dict
    model_string: str
    created: bool                 # False: an existing deployment was reused
    deployed_model: str | None = None
    record: dict | None = None

    def to_json(self) -> dict:
        return {"deployment": self.deployment.get("name"), "state": self.deployment.get("state"),
                "model_string": self.model_string, "created": self.created, "deployed_model": self.deployed_model,
                "expires": (self.record or {}).get("expires")}


def deploy(fw: Any, plan: DeployPlan, *, timeout: float, poll_interval: float, wait: bool = True,
           temporary: bool = False, on_update: Callable[[dict], None] | None = None,
           progress: Progress = _quiet) -> Deployed:
    """Create the deployment of ``plan`` (or reuse a live one with the same id and model), record its TTL,
    wait until READY and (addons mode) load the LoRA. On any failure or interrupt after the create, a
    deployment this call created is deleted again before the exception propagates."""
    from svgrft.errors import ConflictError

    created = False
    try:
        existing = fw.get_deployment(plan.deployment_id)
    except NotFoundError:
        existing = None
    if existing is not None and _state(existing) not in GONE_STATES:
        if existing.get("baseModel") != plan.deployed_base:
            raise SvgrftError(f"deployment {plan.deployment_id} exists and serves {existing.get('baseModel')}",
                              hint="pass another --id, or `svgrft undeploy " + plan.deployment_id + "` first")
        if _state(existing) == "FAILED":
            raise SvgrftError(f"deployment {plan.deployment_id} exists and has FAILED",
                              hint=f"delete it with `svgrft undeploy {plan.deployment_id}`, then rerun")
        progress(f"reusing deployment {plan.deployment_id} ({_state(existing).lower()})")
        d = existing
    else:
        try:
            d = fw.create_deployment(**plan.sdk_kwargs())
            created = True
        except ConflictError:  # created concurrently (or by a retried request): use it
            d = fw.get_deployment(plan.deployment_id)
        except BaseException as e:
            if isinstance(e, (KeyboardInterrupt, ApiError)) and not isinstance(e, NotFoundError):
                # interrupted (or failed) while the create was in flight: it may exist now, nobody to delete it
                _cleanup_quietly(fw, plan.deployment_name, None)
            raise
    rec = None
    dm_name = None
    try:
        if created:
            rec = record(plan, temporary=temporary)
            progress(f"created deployment {plan.deployment_id} ({_state(d).lower()})")
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
                    _save_records(records)
    except BaseException as e:
        if created:
            why = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            problem = _cleanup_quietly(fw, plan.deployment_name, dm_name)
            if problem is None:
                progress(f"{why}: deleted deployment {plan.deployment_id} again (nothing keeps billing)")
            else:
                progress(f"{why}, and deployment {plan.deployment_id} could NOT be deleted ({problem}): run "
                         f"`svgrft undeploy {plan.deployment_id}`")
        raise
    return Deployed(deployment=d, model_string=plan.model_string, created=created, deployed_model=dm_name,
                    record=rec)


def _ensure_lora(fw: Any, plan: DeployPlan, *, timeout: float, poll_interval: float, progress: Progress) -> str:
    for dm in fw.list_deployed_models():
        if dm.get("model") == plan.target.model and dm.get("deployment") == plan.deployment_name:
            name = dm.get("name") or ""
            break
    else:
        progress(f"loading {plan.target.model} onto {plan.deployment_id}")
        name = fw.load_lora(model=plan.target.model, deployment=plan.deployment_name).get("name") or ""
    _wait_lora(fw, name, timeout=timeout, poll_interval=poll_interval)
    return name


def _cleanup_quietly(fw: Any, deployment_name: str, dm_name: str | None) -> str | None:
    """Delete (unload first); returns an error message instead of raising."""
    try:
        teardown(fw, deployment_name, deployed_model=dm_name)
        return None
    except KeyboardInterrupt:
        return "interrupted while deleting"
    except Exception as e:  # noqa: BLE001 - reported to the user with the command to run
        return getattr(e, "message", None) or f"{type(e).__name__}: {e}"


def teardown(fw: Any, deployment: str, *, deployed_model: str | None = None) -> bool:
    """Unload the LoRA (if any) and delete the deployment; forget its TTL record. False if already gone."""
    name = deployment if deployment.startswith("accounts/") else f"accounts/{fw.account_id}/deployments/{deployment}"
    if deployed_model:
        fw.unload_lora(deployed_model)
    else:
        for dm in _safe_list_dms(fw):
            if dm.get("deployment") == name and dm.get("name"):
                fw.unload_lora(dm["name"])
    gone = not fw.delete_deployment(name)
    forget(name)
    return not gone


def _safe_list_dms(fw: Any) -> list[dict]:
    try:
        return fw.list_deployed_models()
    except NotFoundError:
        return []


@contextlib.contextmanager
def temporary_deployment(fw: Any, plan: DeployPlan, *, timeout: float, poll_interval: float,
                         on_update: Callable[[dict], None] | None = None, progress: Progress = _quiet,
                         on_cleanup_failed: Callable[[str, str], None] | None = None) -> Iterator[Deployed]:
    """Deploy for the duration of the ``with`` block and delete afterwards: on success, an error, Ctrl-C
    or a READY timeout. A deployment that already existed is used and left alone. If the deletion fails,
    ``on_cleanup_failed(message, command)`` is told (the command deletes it by hand)."""
    dep = deploy(fw, plan, timeout=timeout, poll_interval=poll_interval, temporary=True, on_update=on_update,
                 progress=progress)
    try:
        yield dep
    finally:
        if dep.created:
            progress(f"deleting deployment {plan.deployment_id}")
            problem = _cleanup_quietly(fw, plan.deployment_name, dep.deployed_model)
            if problem is not None and on_cleanup_failed is not None:
                on_cleanup_failed(problem, f"svgrft undeploy {plan.deployment_id}")


# --------------------------------------------------------------------------------------- find / list / undeploy
def serving_string(fw: Any, model: str) -> str | None:
    """How to call ``model`` right now: ``<model>#<deployment>`` of a READY deployment that serves it (a
    live merge of it, or a DEPLOYED LoRA load), else None."""
    deps = {d.get("name"): d for d in fw.list_deployments()}
    ready = {n for n, d in deps.items() if _state(d) == "READY"}
    for name, d in sorted(deps.items()):
        if name in ready and d.get("baseModel") == model:
            return f"{model}#{name}"
    for dm in _safe_list_dms(fw):
        if dm.get("model") == model and dm.get("state") == "DEPLOYED" and dm.get("deployment") in ready:
            return f"{model}#{dm['deployment']}"
    return None


def list_deployments(fw: Any, now: datetime | None = None) -> list[dict]:
    """Live deployments of the account, each with the models it serves and svgrft's TTL record."""
    now = now or datetime.now(timezone.utc)
    records = load_records()
    dms = _safe_list_dms(fw)
    out = []
    for d in fw.list_deployments():
        name = d.get("name") or ""
        if _state(d) in GONE_STATES:
            continue
        rec = records.get(name)
        loaded_dms = {dm.get("model"): dm.get("name") for dm in dms if dm.get("deployment") == name and dm.get("model")}
        loaded = list(loaded_dms)
        exp = _parse_time((rec or {}).get("expires"))
        out.append({"name": name, "id": name.rsplit("/", 1)[-1], "base_model": d.get("baseModel"),
                    "state": _state(d), "replicas": d.get("replicaCount"), "loras": loaded,
                    "lora_names": loaded_dms, "record_model": (rec or {}).get("model"),
                    "accelerator": d.get("acceleratorType") or d.get("deploymentShape"),
                    "create_time": d.get("createTime"), "svgrft": rec is not None,
                    "expires": rec.get("expires") if rec else None,
                    "expires_in": (exp - now).total_seconds() if exp else None,
                    "expired": bool(exp and now >= exp), "job_id": (rec or {}).get("job_id")})
    live = {d["name"] for d in out}
    stale = [name for name in records if name not in live and name.startswith(f"accounts/{fw.account_id}/")]
    if stale:  # deleted elsewhere (dashboard, firectl): nothing left to expire
        _save_records({k: v for k, v in records.items() if k not in stale})
    return out


def undeploy_targets(fw: Any, ref: str | None, *, expired: bool = False) -> list[dict]:
    """Which deployments ``svgrft undeploy`` deletes: by id/name; by JOB_ID or model (every live deployment
    serving its model); or (``expired``) every svgrft deployment past its TTL."""
    live = list_deployments(fw)
    if expired:
        return [d for d in live if d["expired"]]
    if not ref:
        raise UsageError("missing NAME or JOB_ID", hint="svgrft undeploy NAME|JOB_ID (see `svgrft deployments list`)"
                                                        ", or --expired")
    ref = ref.strip()
    by_name = [d for d in live if ref in (d["name"], d["id"])]
    if by_name:
        return by_name
    try:
        target = resolve_target(fw, ref)
    except NotFoundError:
        raise NotFoundError(f"no deployment, RFT job or model named {ref!r}",
                            hint="see `svgrft deployments list`", status=404) from None
    out = []
    for d in live:
        if d["base_model"] == target.model:
            out.append(d)
        elif target.model in d["loras"]:
            # svgrft's own host for this LoRA goes; a shared or foreign host only loses this LoRA
            own = d["svgrft"] and d["record_model"] == target.model and d["loras"] == [target.model]
            out.append(d if own else {**d, "unload": target.model})
    return out


def undeploy(fw: Any, items: list[dict], progress: Progress = _quiet) -> tuple[list[str], list[tuple[str, str]]]:
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


def snippet(model_string: str, settings: Any) -> dict[str, str]:
    """Ready-to-run curl and openai snippets (the key stays in $FIREWORKS_API_KEY)."""
    base = str(settings["fireworks.inference_base_url"]).rstrip("/")
    body = json.dumps({"model": model_string, "messages": [{"role": "user", "content": "Write `svg` code for a "
                                                                                      "red circle."}]})
    curl = (f"curl -s {base}/chat/completions -H \"Authorization: Bearer $FIREWORKS_API_KEY\" "
            f"-H 'Content-Type: application/json' -d '{body}'")
    py = ("from openai import OpenAI\n"
          f"client = OpenAI(base_url={base!r}, api_key=os.environ[\"FIREWORKS_API_KEY\"])\n"
          f"reply = client.chat.completions.create(model={model_string!r},\n"
          "    messages=[{\"role\": \"user\", \"content\": \"Write `svg` code for a red circle.\"}])\n"
          "print(reply.choices[0].message.content)")
    return {"curl": curl, "python": "import os\n" + py}


def plan_to_json(plan: DeployPlan) -> dict:
    return plan.describe()


__all__ = ["Target", "DeployPlan", "Deployed", "DeployTimeout", "parse_duration", "fmt_duration", "resolve_target",
           "assumed_target", "plan_deployment", "cost_line", "deploy", "wait_ready", "temporary_deployment",
           "teardown", "serving_string", "list_deployments", "undeploy_targets", "undeploy", "snippet",
           "load_records", "registry_path", "is_expired", "default_deployment_id", "deployment_for",
           "resolve_eval_model"]


@contextlib.contextmanager
def deployment_for(settings: Any, ref: str, *, fw: Any = None, ttl: str | None = None,
                   confirm: Callable[["DeployPlan"], None] | None = None, progress: Progress = _quiet,
                   on_update: Callable[[dict], None] | None = None,
                   on_cleanup_failed: Callable[[str, str], None] | None = None) -> Iterator[str]:
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
    with temporary_deployment(fw, plan, timeout=float(settings["deploy.timeout"]),
                              poll_interval=float(settings["deploy.poll_interval"]), on_update=on_update,
                              progress=progress, on_cleanup_failed=on_cleanup_failed) as dep:
        yield dep.model_string


def resolve_eval_model(settings: Any, model: str, *, fw: Any = None, progress: Progress = _quiet) -> str:
    """``svgrft eval --model``: a trained model (``accounts/<own account>/models/…``) or a JOB_ID becomes the
    ``<model>#<deployment>`` string of a READY deployment serving it; anything else is returned unchanged.

    A short name is looked up as a job id first (one GET; 404 → a serverless model name). A trained model
    without a deployment is a NotFoundError that says how to deploy it."""
    name = model.strip()
    if not name or "#" in name or (name.startswith("accounts/fireworks/")):
        return model
    if "/" in name and not _is_model_name(name) and "/reinforcementFineTuningJobs/" not in name:
        return model
    if not settings.secret("FIREWORKS_API_KEY"):
        return model
    if fw is None:
        from svgrft.clients.fireworks import make_client

        try:
            fw = make_client(settings, max_retries=0)
        except SvgrftError:
            return model
    if _is_model_name(name):
        if name.split("/")[1] != fw.account_id:
            return model
        target = Target(model=name)
    else:
        from svgrft.workflow.jobs import get_job, job_id_of, job_summary

        try:
            jid = job_id_of(name)
            summary = job_summary(get_job(fw, jid), fw.account_id)
        except (NotFoundError, UsageError):
            return model   # not a job: a serverless model name
        except SvgrftError as e:
            progress(f"could not check whether {name} is a job ({e.message}); using it as a model name")
            return model
        if not summary["succeeded"] or not summary["output_model"]:
            raise SvgrftError(f"job {jid} has no output model yet ({summary['state_label'].lower()})",
                              hint=f"wait for it: `svgrft jobs watch {jid}`")
        target = Target(model=summary["output_model"], job_id=jid)
    try:
        served = serving_string(fw, target.model)
    except SvgrftError as e:
        progress(f"could not list deployments ({e.message}); calling {target.model} as is")
        return target.model
    if served is None:
        ref = target.job_id or target.model
        raise NotFoundError(f"model '{target.model}' not found or not deployed: no READY deployment serves it",
                            hint=f"deploy it with `svgrft deploy {ref}` (LoRA models need an on-demand "
                                 f"deployment), then rerun; `svgrft undeploy {ref}` afterwards", status=404)
    progress(f"using deployment {served.split('#', 1)[1]} for {target.model}")
    return served
