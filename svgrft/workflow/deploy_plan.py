"""Planning a deployment of a trained model: durations, the target, the request and its price. No network.

:func:`plan_deployment` and :meth:`DeployPlan.request` are what ``svgrft deploy --dry-run`` shows;
:meth:`DeployPlan.body` is the one wire body :mod:`svgrft.workflow.deploy` sends. Prices are an estimate
to show before starting a GPU (``deploy.price_per_hour`` overrides the table); the bill is Fireworks'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from svgrft.errors import ConfigError, SvgrftError, UsageError

if TYPE_CHECKING:
    from svgrft.config import Settings

ACCELERATORS = (
    "NVIDIA_A100_80GB",
    "NVIDIA_H100_80GB",
    "NVIDIA_H200_141GB",
    "NVIDIA_B200_180GB",
    "AMD_MI300X_192GB",
    "AMD_MI325X_256GB",
    "AMD_MI350X_288GB",
    "NVIDIA_A10G_24GB",
    "NVIDIA_A100_40GB",
    "NVIDIA_L4_24GB",
)
# On-demand list prices in USD per GPU-hour (fireworks.ai/pricing, late 2025). An estimate to show before
# starting a GPU: `deploy.price_per_hour` overrides it; the bill is Fireworks'.
PRICE_PER_GPU_HOUR = {
    "NVIDIA_A100_80GB": 2.90,
    "NVIDIA_H100_80GB": 4.00,
    "NVIDIA_H200_141GB": 6.00,
    "NVIDIA_B200_180GB": 9.00,
    "AMD_MI300X_192GB": 4.99,
}
PRICING_URL = "https://fireworks.ai/pricing"
ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
MODES = ("merge", "addons")


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
            raise UsageError(
                f"{what} {str(text)[:40]!r} is not a duration", hint=f"e.g. {what} 2h, 90m or 1h30m"
            ) from None
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


def rfc3339(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> datetime | None:
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
    looked_up: bool = True  # False in a dry run: the names are svgrft's assumptions

    @property
    def is_lora(self) -> bool:
        return self.kind in (None, "HF_PEFT_ADDON")


def is_model_name(ref: str) -> bool:
    return bool(re.fullmatch(r"accounts/[^/]+/models/[^/#]+", ref.strip()))


def assumed_target(settings: Settings, ref: str) -> Target:
    """The target without a network call (dry run): a model name as given; a JOB_ID's output model is
    assumed to be the job's default, ``accounts/<account>/models/<JOB_ID>``."""
    from svgrft.workflow.jobs import job_id_of

    ref = ref.strip()
    if is_model_name(ref):
        return Target(model=ref, looked_up=False)
    account = settings.fireworks.account_id or "<account>"
    return Target(model=f"accounts/{account}/models/{job_id_of(ref)}", job_id=job_id_of(ref), looked_up=False)


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
    mode: str  # "merge" | "addons"
    account: str
    accelerator_type: str
    accelerator_count: int
    max_replicas: int
    ttl_seconds: float
    expire_time: str
    scale_to_zero: str  # protobuf Duration, e.g. "900s"
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

    def body(self) -> dict[str, Any]:
        """The wire body of ``POST …/deployments?deploymentId=<id>`` (sent as it is)."""
        body: dict[str, Any] = {
            "baseModel": self.deployed_base,
            "displayName": f"svgrft {self.target.model.rsplit('/', 1)[-1]}"[:63],
            "minReplicaCount": 0,
            "maxReplicaCount": self.max_replicas,
            "autoscalingPolicy": {"scaleToZeroWindow": self.scale_to_zero},
            "expireTime": self.expire_time,
        }
        if self.shape:
            body["deploymentShape"] = self.shape
        else:
            body["acceleratorType"] = self.accelerator_type
            body["acceleratorCount"] = self.accelerator_count
        if self.mode == "addons":
            body["enableAddons"] = True
        return body

    def request(self) -> dict[str, Any]:
        """The HTTP requests this plan sends, in wire form (what `deploy --dry-run` prints)."""
        reqs = [
            {
                "method": "POST",
                "path": f"/v1/accounts/{self.account}/deployments?deploymentId={self.deployment_id}",
                "body": self.body(),
            }
        ]
        if self.mode == "addons":
            reqs.append(
                {
                    "method": "POST",
                    "path": f"/v1/accounts/{self.account}/deployedModels",
                    "body": {"model": self.target.model, "deployment": self.deployment_name},
                }
            )
        return {"requests": reqs}

    def describe(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "deployment": self.deployment_name,
            "mode": self.mode,
            "model": self.target.model,
            "base_model": self.target.base_model,
            "job_id": self.target.job_id,
            "looked_up": self.target.looked_up,
            "model_string": self.model_string,
            "accelerator_type": self.accelerator_type if not self.shape else None,
            "accelerator_count": self.accelerator_count if not self.shape else None,
            "deployment_shape": self.shape,
            "max_replicas": self.max_replicas,
            "price_per_gpu_hour": self.price_per_gpu_hour,
            "cost_per_hour": self.cost_per_hour,
            "ttl_seconds": self.ttl_seconds,
            "ttl": fmt_duration(self.ttl_seconds),
            "expire_time": self.expire_time,
            "scale_to_zero_window": self.scale_to_zero,
            "notes": list(self.notes),
            **self.request(),
        }


def plan_deployment(
    settings: Settings,
    target: Target,
    *,
    deployment_id: str | None = None,
    ttl: str | None = None,
    accelerator_type: str | None = None,
    accelerator_count: int | None = None,
    shape: str | None = None,
    mode: str | None = None,
    account: str | None = None,
    now: datetime | None = None,
) -> DeployPlan:
    """Everything about the deployment to create, from flags and settings; no network."""
    dep = settings.deploy
    mode = (mode or dep.mode).strip().lower()
    if mode not in MODES:
        raise UsageError(f"unknown deployment mode {mode!r}", hint="use merge (default) or addons")
    if mode == "addons" and not target.base_model:
        if target.looked_up:
            raise SvgrftError(
                f"model {target.model} names no base model (not a LoRA addon?)", hint="deploy it with --mode merge"
            )
    did = (deployment_id or default_deployment_id(target.model)).strip()
    if not ID_RE.match(did):
        raise UsageError(
            f"invalid deployment id {did!r}",
            hint="lowercase letters, digits and '-', starting with a letter, at most 63 characters",
        )
    acc = (accelerator_type or dep.accelerator_type).strip().upper()
    if acc not in ACCELERATORS:
        raise UsageError(f"unknown accelerator type {acc!r}", hint="use one of: " + ", ".join(ACCELERATORS[:5]))
    count = accelerator_count or dep.accelerator_count
    if count < 1 or count > 8:
        raise UsageError(f"--accelerator-count {count} is out of range", hint="use 1 to 8")
    ttl_s = parse_duration(ttl or dep.ttl, "--ttl")
    idle = parse_duration(dep.scale_to_zero, "deploy.scale_to_zero")
    if idle < 300:
        raise ConfigError(
            "deploy.scale_to_zero must be at least 5m (a Fireworks limit)",
            hint='set deploy.scale_to_zero = "5m" or more',
        )
    configured = dep.price_per_hour
    price = configured if configured > 0 else PRICE_PER_GPU_HOUR.get(acc)
    notes = []
    if shape:
        notes.append(
            f"deployment shape {shape}: the accelerator comes from the shape; the cost shown assumes {count} × {acc}"
        )
    if not target.looked_up:
        notes.append(
            "not looked up (dry run): "
            + (
                f"job {target.job_id}'s output model is assumed to be {target.model}"
                if target.job_id
                else f"model {target.model} as given"
            )
        )
    start = now or datetime.now(timezone.utc)
    return DeployPlan(
        target=target,
        deployment_id=did,
        mode=mode,
        account=account or settings.fireworks.account_id or "<account>",
        accelerator_type=acc,
        accelerator_count=count,
        max_replicas=1,
        ttl_seconds=ttl_s,
        expire_time=rfc3339(start + timedelta(seconds=ttl_s)),
        scale_to_zero=f"{int(idle)}s",
        shape=shape or None,
        price_per_gpu_hour=price,
        notes=notes,
    )


def cost_line(plan: DeployPlan) -> str:
    hw = f"{plan.accelerator_count} × {plan.accelerator_type}" if not plan.shape else f"shape {plan.shape}"
    if plan.cost_per_hour is None:
        cost = f"cost per hour unknown for {plan.accelerator_type} (see {PRICING_URL})"
    else:
        cost = f"about ${plan.cost_per_hour:.2f}/hour while a replica runs ({PRICING_URL})"
    return (
        f"{hw}, up to {plan.max_replicas} replica: {cost}; scales to zero after "
        f"{fmt_duration(parse_duration(plan.scale_to_zero))} idle; TTL {fmt_duration(plan.ttl_seconds)} "
        f"(then `svgrft deployments list` flags it and `svgrft undeploy --expired` deletes it)"
    )
