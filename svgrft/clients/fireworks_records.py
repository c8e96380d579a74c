"""Small frozen records of Fireworks resources: the one translation from what the SDK returns.

Every SDK object is first turned into its wire dict (camelCase names, unset fields omitted, times as
strings) by :func:`wire`; each record's ``from_wire`` reads only that dict, defensively (a field of the
wrong type reads as missing), so no caller probes ``commit_hash`` and ``commitHash`` or SDK attributes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def wire(obj: Any) -> dict:
    """An SDK object as its wire dict (camelCase, unset fields omitted); dicts pass through, junk is {}."""
    if isinstance(obj, dict):
        return obj
    to_dict = getattr(obj, "to_dict", None)
    out = to_dict(mode="json") if callable(to_dict) else {}
    return out if isinstance(out, dict) else {}


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


def _int(v: Any) -> int | None:
    f = _num(v)
    return int(f) if f is not None else None


def _last(name: str) -> str:
    return name.rsplit("/", 1)[-1] if name else ""


@dataclass(frozen=True)
class DatasetRecord:
    name: str  # accounts/<a>/datasets/<id>
    dataset_id: str
    state: str  # READY, UPLOADING, … (STATE_UNSPECIFIED when absent)
    example_count: int | None
    display_name: str = ""
    status_code: str | None = None
    status_message: str = ""

    @property
    def failed(self) -> bool:
        """The dataset's status names an error (processing the upload failed)."""
        return self.status_code not in (None, "OK", "0")

    @classmethod
    def from_wire(cls, obj: Any) -> DatasetRecord:
        d = wire(obj)
        status = _obj(d.get("status"))
        name = _str(d.get("name")) or ""
        return cls(
            name=name,
            dataset_id=_last(name),
            state=_str(d.get("state")) or "STATE_UNSPECIFIED",
            example_count=_int(d.get("exampleCount")),
            display_name=_str(d.get("displayName")) or "",
            status_code=_str(status.get("code")),
            status_message=_str(status.get("message")) or "",
        )


@dataclass(frozen=True)
class EvaluatorRecord:
    name: str
    evaluator_id: str
    state: str  # ACTIVE, BUILDING, BUILD_FAILED, … (STATE_UNSPECIFIED when absent)
    commit_hash: str = ""  # svgrft writes ``svgrft-<version>+sha256.<hash>`` here
    status_message: str = ""

    @classmethod
    def from_wire(cls, obj: Any) -> EvaluatorRecord:
        d = wire(obj)
        name = _str(d.get("name")) or ""
        return cls(
            name=name,
            evaluator_id=_last(name),
            state=_str(d.get("state")) or "STATE_UNSPECIFIED",
            commit_hash=_str(d.get("commitHash")) or "",
            status_message=_str(_obj(d.get("status")).get("message")) or "",
        )


@dataclass(frozen=True)
class JobRecord:
    """A reinforcement fine-tuning job. ``wire`` keeps the job as the API sent it, to compare it field by
    field with a payload (svgrft.workflow.train); everything else reads the typed fields."""

    name: str  # accounts/<a>/reinforcementFineTuningJobs/<id>, or "" when absent
    job_id: str
    state: str  # JOB_STATE_… (JOB_STATE_UNSPECIFIED when absent)
    display_name: str = ""
    epoch: int | None = None  # 0-based, as the API reports it
    epochs: int | None = None
    percent: float | None = None
    status_code: str | None = None
    status_message: str | None = None
    base_model: str | None = None
    output_model: str | None = None
    dataset: str | None = None
    evaluation_dataset: str | None = None
    evaluator: str | None = None
    create_time: str | None = None
    completed_time: str | None = None
    eval_auto_carveout: bool = False
    candidates: int | None = None  # inferenceParameters.responseCandidatesCount (rollouts per prompt)
    wire: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, obj: Any, account_id: str) -> JobRecord:
        d = wire(obj)
        name = _str(d.get("name")) or ""
        if name and not name.startswith("accounts/"):
            name = f"accounts/{account_id}/reinforcementFineTuningJobs/{name}"
        tc, prog, status = _obj(d.get("trainingConfig")), _obj(d.get("jobProgress")), _obj(d.get("status"))
        return cls(
            name=name,
            job_id=_last(name),
            state=_str(d.get("state")) or "JOB_STATE_UNSPECIFIED",
            display_name=_str(d.get("displayName")) or "",
            epoch=_int(prog.get("epoch")),
            epochs=_int(tc.get("epochs")),
            percent=_num(prog.get("percent")),
            status_code=_str(status.get("code")),
            status_message=_str(status.get("message")),
            base_model=_str(tc.get("baseModel")) or _str(tc.get("warmStartFrom")),
            output_model=_str(tc.get("outputModel")),
            dataset=_str(d.get("dataset")),
            evaluation_dataset=_str(d.get("evaluationDataset")),
            evaluator=_str(d.get("evaluator")),
            create_time=_str(d.get("createTime")),
            completed_time=_str(d.get("completedTime")),
            eval_auto_carveout=bool(d.get("evalAutoCarveout")),
            candidates=_int(_obj(d.get("inferenceParameters")).get("responseCandidatesCount")),
            wire=d,
        )


@dataclass(frozen=True)
class ModelRecord:
    name: str
    state: str | None  # READY, … (None when absent)
    kind: str | None = None  # HF_PEFT_ADDON for a LoRA
    base_model: str | None = None  # peftDetails.baseModel of a LoRA

    @classmethod
    def from_wire(cls, obj: Any) -> ModelRecord:
        d = wire(obj)
        return cls(
            name=_str(d.get("name")) or "",
            state=_str(d.get("state")),
            kind=_str(d.get("kind")),
            base_model=_str(_obj(d.get("peftDetails")).get("baseModel")),
        )


@dataclass(frozen=True)
class DeploymentRecord:
    name: str  # accounts/<a>/deployments/<id>
    state: str  # CREATING, READY, FAILED, DELETED, … (STATE_UNSPECIFIED when absent)
    base_model: str | None = None
    replica_count: int | None = None
    accelerator: str | None = None  # acceleratorType, else deploymentShape
    create_time: str | None = None
    status_message: str | None = None

    @property
    def deployment_id(self) -> str:
        return _last(self.name)

    @classmethod
    def from_wire(cls, obj: Any) -> DeploymentRecord:
        d = wire(obj)
        return cls(
            name=_str(d.get("name")) or "",
            state=_str(d.get("state")) or "STATE_UNSPECIFIED",
            base_model=_str(d.get("baseModel")),
            replica_count=_int(d.get("replicaCount")),
            accelerator=_str(d.get("acceleratorType")) or _str(d.get("deploymentShape")),
            create_time=_str(d.get("createTime")),
            status_message=_str(_obj(d.get("status")).get("message")),
        )


@dataclass(frozen=True)
class DeployedModelRecord:
    """A LoRA loaded onto a deployment (``lora.load``)."""

    name: str  # accounts/<a>/deployedModels/<id>
    model: str | None
    deployment: str | None
    state: str | None  # DEPLOYING, DEPLOYED, …

    @classmethod
    def from_wire(cls, obj: Any) -> DeployedModelRecord:
        d = wire(obj)
        return cls(
            name=_str(d.get("name")) or "",
            model=_str(d.get("model")),
            deployment=_str(d.get("deployment")),
            state=_str(d.get("state")),
        )
