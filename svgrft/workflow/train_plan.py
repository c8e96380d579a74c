"""The plan of ``svgrft train``: validated settings, names and ids, the packed evaluator and the job payload.

:func:`make_plan` never touches the network (no client, no account lookup). It expands ``--base-model``
(``train.base_model``) once with :func:`svgrft.config.expand_model`; the expanded name goes into the
evaluator's completion parameters and the job payload from here. The evaluator is staged and packed
once (:func:`svgrft.workflow.evaluator_bundle.build_bundle`) and the run uploads that same bundle.

The job id is ``--job-id`` or derived from everything that defines the job (base model, dataset and
evaluator content hashes, training and inference parameters, eval dataset, W&B settings), so a second
identical run finds the existing job. :func:`job_payload` is the job in the wire format of
``POST …/reinforcementFineTuningJobs`` (reference/fireworks.md §2.4), sent as it is.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svgrft.config import SCHEMA, expand_model
from svgrft.errors import ConfigError, DatasetError, UsageError
from svgrft.workflow.evaluator_bundle import Bundle, build_bundle, evaluator_id_for, require_server_url

if TYPE_CHECKING:
    from svgrft.config import Settings

ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
MASK = "****"


@dataclass
class EvalDatasetRef:
    kind: str  # "file" (uploaded like the training set) or "resource" (an existing dataset)
    value: str  # path or dataset id / resource name
    rows: int = 0
    content_hash: str = ""
    dataset_id: str = ""


@dataclass
class TrainPlan:
    settings: Settings
    base_model: str  # expanded (accounts/<a>/models/<id>)
    mode: str
    server_url: str
    dataset_path: Path
    dataset_rows: int
    dataset_hash: str
    dataset_id: str
    dataset_id_explicit: bool
    avg_requirements: float
    eval_dataset: EvalDatasetRef | None
    eval_auto_carveout: bool
    secret_keys: list[str]
    evaluator: Bundle  # the packed evaluator: what the run uploads
    evaluator_id: str
    job_id: str
    job_id_explicit: bool
    output_model: str
    display_name: str
    warnings: list[str] = field(default_factory=list)

    @property
    def evaluator_hash(self) -> str:
        return self.evaluator.content_hash

    @property
    def evaluator_files(self) -> int:
        return len(self.evaluator.files)

    @property
    def evaluator_bytes(self) -> int:
        return len(self.evaluator.tarball)


_RANGES: tuple[tuple[str, Any, str], ...] = (
    ("epochs", lambda v, t: 1 <= v <= 100, "must be between 1 and 100"),
    ("n", lambda v, t: 1 <= v <= 64, "must be between 1 and 64"),
    ("chunk_size", lambda v, t: 1 <= v <= 10_000, "must be between 1 and 10000"),
    ("learning_rate", lambda v, t: 0 < v < 1, "must be in (0, 1)"),
    ("lora_rank", lambda v, t: v >= 1, "must be at least 1"),
    ("batch_size", lambda v, t: v >= 1, "must be at least 1 (tokens per batch)"),
    ("temperature", lambda v, t: 0 <= v <= 2, "must be between 0 and 2"),
    ("top_p", lambda v, t: 0 < v <= 1, "must be in (0, 1]"),
    ("max_tokens", lambda v, t: v >= 1, "must be at least 1"),
    (
        "max_context_length",
        lambda v, t: v > t.max_tokens,
        "must be larger than --max-tokens ({max_tokens}) to leave room for the prompt",
    ),
    ("poll_interval", lambda v, t: v > 0, "must be positive"),
)


def _check_ranges(s: Settings) -> None:
    t = s.train
    for name, ok, what in _RANGES:
        value = getattr(t, name)
        if not ok(value, t):
            key = f"train.{name}"
            cls = UsageError if s.source(key) == "flag" else ConfigError  # a bad flag is a usage error: exit 2
            raise cls(
                f"invalid {key} = {value!r}: {what.format(max_tokens=t.max_tokens)}",
                hint=f"fix {SCHEMA[key].flag_name} (or {key} in your config)",
            )


def _check_id(value: str, what: str, flag: str) -> str:
    v = value.rsplit("/", 1)[-1] if value.startswith("accounts/") else value
    if not ID_RE.match(v):
        raise ConfigError(
            f"invalid {what} {value[:80]!r}",
            hint=f"{flag}: lowercase letters, digits and '-', start with a letter, at most 63 characters",
        )
    return v


def _dataset_facts(path_setting: str, what: str, flag: str) -> tuple[Path, int, str, float]:
    from svgrft.core.dataset import content_hash, load_dataset, resolve_path, validate_file

    path = resolve_path(path_setting)
    if not path.is_file():
        raise DatasetError(
            f"{what} {path_setting} not found",
            hint=f"pass {flag} PATH (a JSONL file; `svgrft dataset build` writes the SVGBench ones)",
        )
    report = validate_file(path)
    if not report.ok:
        shown = "; ".join(report.format_errors(3))
        raise DatasetError(
            f"{path} is not a valid dataset: {shown}", hint=f"run `svgrft dataset validate {path}` to see every problem"
        )
    rows = load_dataset(path)
    avg = sum(len(r.requirements) for r in rows) / len(rows) if rows else 0.0
    return path, len(rows), content_hash(path), avg


def secret_keys_for(settings: Settings) -> list[str]:
    keys = [k.strip() for k in settings.secrets.keys if k.strip()]
    if settings.rollout.mode == "remote" and settings.secret("SVGRFT_SERVE_TOKEN") and "SVGRFT_SERVE_TOKEN" not in keys:
        keys.append("SVGRFT_SERVE_TOKEN")
    return keys


def make_plan(settings: Settings) -> TrainPlan:
    """Validate everything locally, work out names and ids, pack the evaluator. No network."""
    from svgrft.workflow.datasets import dataset_id_for

    _check_ranges(settings)
    t = settings.train
    base_model = expand_model(t.base_model)
    mode = settings.rollout.mode
    server_url = require_server_url(settings) if mode == "remote" else ""
    warnings: list[str] = []

    path, rows, digest, avg_reqs = _dataset_facts(settings.dataset.train, "training dataset", "--dataset")
    explicit_ds = bool(settings.dataset.id)
    ds_id = (
        _check_id(settings.dataset.id, "dataset id", "--dataset-id") if explicit_ds else dataset_id_for(path, digest)
    )

    eval_ref: EvalDatasetRef | None = None
    ev_value = t.eval_dataset.strip()
    if ev_value:
        from svgrft.core.dataset import resolve_path

        if ev_value.endswith(".jsonl") or resolve_path(ev_value).is_file():
            ep, erows, edigest, _ = _dataset_facts(ev_value, "evaluation dataset", "--eval-dataset")
            eval_ref = EvalDatasetRef("file", str(ep), erows, edigest, dataset_id_for(ep, edigest))
        else:
            eval_ref = EvalDatasetRef(
                "resource", ev_value, dataset_id=_check_id(ev_value, "evaluation dataset id", "--eval-dataset")
            )
    carveout = t.eval_auto_carveout
    if eval_ref is not None and carveout:
        warnings.append("--eval-dataset is set, so --eval-auto-carveout is ignored")
        carveout = False

    bundle = build_bundle(settings, model=base_model)
    output_model = t.output_model.strip()
    if output_model:
        _check_id(output_model, "output model id", "--output-model")
    plan = TrainPlan(
        settings=settings,
        base_model=base_model,
        mode=mode,
        server_url=server_url,
        dataset_path=path,
        dataset_rows=rows,
        dataset_hash=digest,
        dataset_id=ds_id,
        dataset_id_explicit=explicit_ds,
        avg_requirements=avg_reqs,
        eval_dataset=eval_ref,
        eval_auto_carveout=carveout,
        secret_keys=secret_keys_for(settings),
        evaluator=bundle,
        evaluator_id=evaluator_id_for(settings, bundle),
        job_id="",
        job_id_explicit=False,
        output_model=output_model,
        display_name="",
        warnings=warnings,
    )
    explicit_job = t.job_id.strip()
    if explicit_job:
        plan.job_id = _check_id(explicit_job, "job id", "--job-id")
        plan.job_id_explicit = True
    else:
        plan.job_id = derive_job_id(plan)
    plan.display_name = t.display_name.strip() or f"svgrft {base_model.rsplit('/', 1)[-1]} ({mode} rollouts)"
    if settings.wandb.enabled and not settings.secret("WANDB_API_KEY"):
        warnings.append(
            "W&B is enabled but WANDB_API_KEY is not set: Fireworks will use the account's W&B integration, if any"
        )
    return plan


def _job_identity(plan: TrainPlan) -> dict[str, Any]:
    t, w = plan.settings.train, plan.settings.wandb
    return {
        "base_model": plan.base_model,
        "dataset": plan.dataset_id if plan.dataset_id_explicit else plan.dataset_hash,
        "evaluator": plan.evaluator_hash,
        "eval_dataset": (plan.eval_dataset.content_hash or plan.eval_dataset.dataset_id) if plan.eval_dataset else "",
        "carveout": plan.eval_auto_carveout,
        "epochs": t.epochs,
        "learning_rate": t.learning_rate,
        "lora_rank": t.lora_rank,
        "batch_size": t.batch_size,
        "max_context_length": t.max_context_length,
        "chunk_size": t.chunk_size,
        "temperature": t.temperature,
        "top_p": t.top_p,
        "n": t.n,
        "max_tokens": t.max_tokens,
        "output_model": plan.output_model,
        "wandb": [w.enabled, w.project, w.entity, w.run_id],
    }


def derive_job_id(plan: TrainPlan) -> str:
    """``svgrft-<model>-<hash>``: the same config + dataset + evaluator gives the same id."""
    digest = hashlib.sha256(json.dumps(_job_identity(plan), sort_keys=True).encode()).hexdigest()[:12]
    model = re.sub(r"[^a-z0-9-]+", "-", plan.base_model.rsplit("/", 1)[-1].lower()).strip("-")[:30].rstrip("-")
    return f"svgrft-{model}-{digest}" if model else f"svgrft-{digest}"


def job_payload(
    plan: TrainPlan,
    *,
    account: str,
    dataset: str,
    evaluator: str,
    eval_dataset: str | None = None,
    include_secrets: bool = False,
) -> dict[str, Any]:
    """The wire body of ``POST …/reinforcementFineTuningJobs?reinforcementFineTuningJobId=<job_id>``.

    With ``include_secrets`` False a W&B key is shown masked (what is printed); True is what is sent."""
    t, w = plan.settings.train, plan.settings.wandb
    tc: dict[str, Any] = {
        "baseModel": plan.base_model,
        "epochs": t.epochs,
        "learningRate": t.learning_rate,
        "loraRank": t.lora_rank,
        "batchSize": t.batch_size,
        "maxContextLength": t.max_context_length,
    }
    if plan.output_model:
        tc["outputModel"] = (
            plan.output_model
            if plan.output_model.startswith("accounts/")
            else f"accounts/{account}/models/{plan.output_model}"
        )
    body: dict[str, Any] = {
        "dataset": dataset,
        "evaluator": evaluator,
        "displayName": plan.display_name,
        "trainingConfig": tc,
        "inferenceParameters": {
            "temperature": t.temperature,
            "topP": t.top_p,
            "maxOutputTokens": t.max_tokens,
            "responseCandidatesCount": t.n,
        },
        "chunkSize": t.chunk_size,
    }
    if eval_dataset:
        body["evaluationDataset"] = eval_dataset
    else:
        body["evalAutoCarveout"] = plan.eval_auto_carveout
    wandb: dict[str, Any] = {"enabled": w.enabled}
    if w.enabled:
        for value, wire in ((w.project, "project"), (w.entity, "entity"), (w.run_id, "runId")):
            if value:
                wandb[wire] = value
        key = plan.settings.secret("WANDB_API_KEY")
        if key:
            wandb["apiKey"] = key if include_secrets else MASK
    body["wandbConfig"] = wandb
    return body


def payload_mismatches(expected: dict[str, Any], actual: Any, prefix: str = "") -> list[str]:
    """Fields we would send that the existing job has with another value (resource names compared by id)."""
    out: list[str] = []
    for key, want in expected.items():
        path = f"{prefix}{key}"
        if key in ("displayName", "apiKey"):
            continue
        have = actual.get(key) if isinstance(actual, dict) else None
        if isinstance(want, dict):
            out.extend(payload_mismatches(want, have if isinstance(have, dict) else {}, path + "."))
            continue
        if have is None:
            if want in (False, "", None, 0):
                continue  # the server omits defaults
            out.append(f"{path}: missing (want {want!r})")
            continue
        if isinstance(want, bool) or isinstance(have, bool):
            same = bool(want) == bool(have) if isinstance(have, bool) else str(have).lower() == str(want).lower()
        elif isinstance(want, (int, float)):
            try:
                same = abs(float(have) - float(want)) <= 1e-9 * max(1.0, abs(float(want)))
            except (TypeError, ValueError):
                same = False
        else:
            same = str(have).rsplit("/", 1)[-1] == str(want).rsplit("/", 1)[-1]
        if not same:
            out.append(f"{path}: existing {have!r}, want {want!r}")
    return out
