"""``svgrft train``: validate → secrets push → dataset upload → evaluator build → create job (→ watch, in the CLI).

Every step reuses what already exists:
- secrets are created or updated (never duplicated);
- the dataset id carries its content hash (:mod:`svgrft.workflow.datasets`), the evaluator id its content hash
  (:mod:`svgrft.workflow.evaluator`), so unchanged inputs are one GET each;
- the job id is ``--job-id`` or derived from everything that defines the job (base model, dataset and
  evaluator content hashes, training and inference parameters, eval dataset, W&B settings), so a second
  identical run finds the existing job (GET) instead of creating one. An existing job with a different
  payload is an error with a hint to pass another ``--job-id``.

:func:`make_plan` and :func:`dry_run_report` never touch the network (no client, no account lookup).
The job payload mirrors the wire format of ``POST …/reinforcementFineTuningJobs`` (reference/fireworks.md §2.4).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from svgrft.config import expand_model
from svgrft.core.plural import plural
from svgrft.errors import ConfigError, ConflictError, DatasetError, SvgrftError, UsageError
from svgrft.workflow.jobs import guarded

JOB_DASHBOARD = "https://app.fireworks.ai/dashboard/fine-tuning/reinforcement/"
DATASET_DASHBOARD = "https://app.fireworks.ai/dashboard/datasets/"
EVALUATOR_DASHBOARD = "https://app.fireworks.ai/dashboard/evaluators/"
ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
ACCOUNT_PLACEHOLDER = "<account>"
MASK = "****"

# USD per 1M tokens (input, output) for common judge models — an ESTIMATE, check current pricing.
JUDGE_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
}
IMAGE_TOKENS = 255          # one 512×512 image at high detail: 85 base + 170 per 512-px tile
PROMPT_OVERHEAD_TOKENS = 350  # judge instructions + schema
CHECKLIST_TOKENS_PER_REQ = 30
COUNT_OUTPUT_TOKENS = 200

# Dataset-free SVGs rendered by the dry run to prove Chromium works (shapes, gradient + text, paths).
SAMPLE_SVGS: dict[str, str] = {
    "shapes": ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 200" width="200" height="200">'
               '<rect x="10" y="10" width="180" height="180" fill="#87ceeb"/>'
               '<circle cx="100" cy="90" r="45" fill="#ffd700" stroke="#e69500" stroke-width="6"/>'
               '<rect x="0" y="150" width="200" height="50" fill="#3a7d2c"/></svg>'),
    "gradient_text": ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 300 120" width="300" height="120">'
                      '<defs><linearGradient id="g" x1="0" x2="1"><stop offset="0" stop-color="#ff6b6b"/>'
                      '<stop offset="1" stop-color="#4d96ff"/></linearGradient></defs>'
                      '<rect width="300" height="120" rx="16" fill="url(#g)"/>'
                      '<text x="150" y="72" font-size="36" text-anchor="middle" fill="#fff" '
                      'font-family="DejaVu Sans, sans-serif">svgrft</text></svg>'),
    "paths": ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">'
              '<path d="M10 80 Q 50 10 90 80 Z" fill="#8e44ad"/>'
              '<polyline points="10,90 30,70 50,85 70,60 90,75" fill="none" stroke="#16a085" stroke-width="4"/>'
              '</svg>'),
}


def dashboard_links(job_id: str | None, dataset_id: str | None, evaluator_id: str | None) -> dict[str, str]:
    links = {}
    if job_id:
        links["job"] = JOB_DASHBOARD + job_id
    if dataset_id:
        links["dataset"] = DATASET_DASHBOARD + dataset_id
    if evaluator_id:
        links["evaluator"] = EVALUATOR_DASHBOARD + evaluator_id
    return links


# ------------------------------------------------------------------------------------------- plan

@dataclass
class EvalDatasetRef:
    kind: str                 # "file" (uploaded like the training set) or "resource" (an existing dataset)
    value: str                # path or dataset id / resource name
    rows: int = 0
    content_hash: str = ""
    dataset_id: str = ""


@dataclass
class TrainPlan:
    settings: Any
    base_model: str
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
    evaluator_hash: str
    evaluator_id: str
    evaluator_files: int
    evaluator_bytes: int
    job_id: str
    job_id_explicit: bool
    output_model: str
    display_name: str
    warnings: list[str] = field(default_factory=list)

    # convenient views of the settings
    def __getitem__(self, key: str) -> Any:
        return self.settings[key]


def _check_ranges(s: Any) -> None:
    def bad(key: str, flag: str, what: str) -> None:
        cls = UsageError if s.source(key) == "flag" else ConfigError  # a bad flag is a usage error: exit 2
        raise cls(f"invalid {key} = {s[key]!r}: {what}", hint=f"fix {flag} (or {key} in your config)")

    if not 1 <= int(s["train.epochs"]) <= 100:
        bad("train.epochs", "--epochs", "must be between 1 and 100")
    if not 1 <= int(s["train.n"]) <= 64:
        bad("train.n", "--n", "must be between 1 and 64")
    if not 1 <= int(s["train.chunk_size"]) <= 10_000:
        bad("train.chunk_size", "--chunk-size", "must be between 1 and 10000")
    if not 0 < float(s["train.learning_rate"]) < 1:
        bad("train.learning_rate", "--learning-rate", "must be in (0, 1)")
    if int(s["train.lora_rank"]) < 1:
        bad("train.lora_rank", "--lora-rank", "must be at least 1")
    if int(s["train.batch_size"]) < 1:
        bad("train.batch_size", "--batch-size", "must be at least 1 (tokens per batch)")
    if not 0 <= float(s["train.temperature"]) <= 2:
        bad("train.temperature", "--temperature", "must be between 0 and 2")
    if not 0 < float(s["train.top_p"]) <= 1:
        bad("train.top_p", "--top-p", "must be in (0, 1]")
    if int(s["train.max_tokens"]) < 1:
        bad("train.max_tokens", "--max-tokens", "must be at least 1")
    if int(s["train.max_context_length"]) <= int(s["train.max_tokens"]):
        bad("train.max_context_length", "--max-context-length",
            f"must be larger than --max-tokens ({s['train.max_tokens']}) to leave room for the prompt")
    if float(s["train.poll_interval"]) <= 0:
        bad("train.poll_interval", "--poll-interval", "must be positive")


def _check_id(value: str, what: str, flag: str) -> str:
    v = value.rsplit("/", 1)[-1] if value.startswith("accounts/") else value
    if not ID_RE.match(v):
        raise ConfigError(f"invalid {what} {value[:80]!r}",
                          hint=f"{flag}: lowercase letters, digits and '-', start with a letter, at most 63 characters")
    return v


def _dataset_facts(path_setting: str, what: str, flag: str) -> tuple[Path, int, str, float]:
    from svgrft.core.dataset import content_hash, load_dataset, resolve_path, validate_file

    path = resolve_path(path_setting)
    if not path.is_file():
        raise DatasetError(f"{what} {path_setting} not found",
                           hint=f"pass {flag} PATH (a JSONL file; `svgrft dataset build` writes the SVGBench ones)")
    report = validate_file(path)
    if not report.ok:
        shown = "; ".join(report.format_errors(3))
        raise DatasetError(f"{path} is not a valid dataset: {shown}",
                           hint=f"run `svgrft dataset validate {path}` to see every problem")
    rows = load_dataset(path)
    avg = sum(len(r.requirements) for r in rows) / len(rows) if rows else 0.0
    return path, len(rows), content_hash(path), avg


def secret_keys_for(settings: Any) -> list[str]:
    keys = [k.strip() for k in settings["secrets.keys"] if k.strip()]
    if settings["rollout.mode"] == "remote" and settings.secret("SVGRFT_SERVE_TOKEN") and "SVGRFT_SERVE_TOKEN" not in keys:
        keys.append("SVGRFT_SERVE_TOKEN")
    return keys


def make_plan(settings: Any) -> TrainPlan:
    """Validate everything locally and work out names and ids. No network."""
    from svgrft.workflow import evaluator as evw
    from svgrft.workflow.datasets import dataset_id_for

    _check_ranges(settings)
    base_model = expand_model(str(settings["train.base_model"]))
    mode = str(settings["rollout.mode"])
    server_url = evw.require_server_url(settings) if mode == "remote" else ""
    warnings: list[str] = []

    path, rows, digest, avg_reqs = _dataset_facts(settings["dataset.train"], "training dataset", "--dataset")
    explicit_ds = bool(settings["dataset.id"])
    ds_id = _check_id(settings["dataset.id"], "dataset id", "--dataset-id") if explicit_ds else dataset_id_for(path, digest)

    eval_ref: EvalDatasetRef | None = None
    ev_value = str(settings["train.eval_dataset"] or "").strip()
    if ev_value:
        from svgrft.core.dataset import resolve_path

        if ev_value.endswith(".jsonl") or resolve_path(ev_value).is_file():
            ep, erows, edigest, _ = _dataset_facts(ev_value, "evaluation dataset", "--eval-dataset")
            eval_ref = EvalDatasetRef("file", str(ep), erows, edigest, dataset_id_for(ep, edigest))
        else:
            eval_ref = EvalDatasetRef("resource", ev_value, dataset_id=_check_id(ev_value, "evaluation dataset id",
                                                                                   "--eval-dataset"))
    carveout = bool(settings["train.eval_auto_carveout"])
    if eval_ref is not None and carveout:
        warnings.append("--eval-dataset is set, so --eval-auto-carveout is ignored")
        carveout = False

    tmp = tempfile.mkdtemp(prefix="svgrft-plan-")
    try:
        staged = evw.stage(settings, Path(tmp) / "evaluator")
        tar_size = len(evw.tarball_bytes(staged))
        ev_hash = staged.content_hash
        ev_id = evw.evaluator_id_for(settings, staged)
        n_files = len(staged.files)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    output_model = str(settings["train.output_model"] or "").strip()
    if output_model:
        _check_id(output_model, "output model id", "--output-model")
    plan = TrainPlan(
        settings=settings, base_model=base_model, mode=mode, server_url=server_url,
        dataset_path=path, dataset_rows=rows, dataset_hash=digest, dataset_id=ds_id, dataset_id_explicit=explicit_ds,
        avg_requirements=avg_reqs, eval_dataset=eval_ref, eval_auto_carveout=carveout,
        secret_keys=secret_keys_for(settings), evaluator_hash=ev_hash, evaluator_id=ev_id,
        evaluator_files=n_files, evaluator_bytes=tar_size, job_id="", job_id_explicit=False,
        output_model=output_model, display_name="", warnings=warnings)
    explicit_job = str(settings["train.job_id"] or "").strip()
    if explicit_job:
        plan.job_id = _check_id(explicit_job, "job id", "--job-id")
        plan.job_id_explicit = True
    else:
        plan.job_id = derive_job_id(plan)
    plan.display_name = str(settings["train.display_name"] or "").strip() or \
        f"svgrft {base_model.rsplit('/', 1)[-1]} ({mode} rollouts)"
    if settings["wandb.enabled"] and not settings.secret("WANDB_API_KEY"):
        warnings.append("W&B is enabled but WANDB_API_KEY is not set: Fireworks will use the account's W&B "
                        "integration, if any")
    return plan


def _job_identity(plan: TrainPlan) -> dict[str, Any]:
    s = plan.settings
    return {
        "base_model": plan.base_model,
        "dataset": plan.dataset_id if plan.dataset_id_explicit else plan.dataset_hash,
        "evaluator": plan.evaluator_hash,
        "eval_dataset": (plan.eval_dataset.content_hash or plan.eval_dataset.dataset_id) if plan.eval_dataset else "",
        "carveout": plan.eval_auto_carveout,
        "epochs": int(s["train.epochs"]), "learning_rate": float(s["train.learning_rate"]),
        "lora_rank": int(s["train.lora_rank"]), "batch_size": int(s["train.batch_size"]),
        "max_context_length": int(s["train.max_context_length"]), "chunk_size": int(s["train.chunk_size"]),
        "temperature": float(s["train.temperature"]), "top_p": float(s["train.top_p"]), "n": int(s["train.n"]),
        "max_tokens": int(s["train.max_tokens"]), "output_model": plan.output_model,
        "wandb": [bool(s["wandb.enabled"]), s["wandb.project"], s["wandb.entity"], s["wandb.run_id"]],
    }


def derive_job_id(plan: TrainPlan) -> str:
    """``svgrft-<model>-<hash>``: the same config + dataset + evaluator gives the same id."""
    digest = hashlib.sha256(json.dumps(_job_identity(plan), sort_keys=True).encode()).hexdigest()[:12]
    model = re.sub(r"[^a-z0-9-]+", "-", plan.base_model.rsplit("/", 1)[-1].lower()).strip("-")[:30].rstrip("-")
    return f"svgrft-{model}-{digest}" if model else f"svgrft-{digest}"


# ---------------------------------------------------------------------------------------- payload

def job_payload(plan: TrainPlan, *, account: str, dataset: str, evaluator: str, eval_dataset: str | None = None,
                include_secrets: bool = False) -> dict[str, Any]:
    """The wire body of ``POST …/reinforcementFineTuningJobs?reinforcementFineTuningJobId=<job_id>``.

    With ``include_secrets`` False a W&B key is shown masked (what is printed); True is what is sent."""
    s = plan.settings
    tc: dict[str, Any] = {
        "baseModel": plan.base_model,
        "epochs": int(s["train.epochs"]),
        "learningRate": float(s["train.learning_rate"]),
        "loraRank": int(s["train.lora_rank"]),
        "batchSize": int(s["train.batch_size"]),
        "maxContextLength": int(s["train.max_context_length"]),
    }
    if plan.output_model:
        tc["outputModel"] = plan.output_model if plan.output_model.startswith("accounts/") else \
            f"accounts/{account}/models/{plan.output_model}"
    body: dict[str, Any] = {
        "dataset": dataset,
        "evaluator": evaluator,
        "displayName": plan.display_name,
        "trainingConfig": tc,
        "inferenceParameters": {
            "temperature": float(s["train.temperature"]),
            "topP": float(s["train.top_p"]),
            "maxOutputTokens": int(s["train.max_tokens"]),
            "responseCandidatesCount": int(s["train.n"]),
        },
        "chunkSize": int(s["train.chunk_size"]),
    }
    if eval_dataset:
        body["evaluationDataset"] = eval_dataset
    else:
        body["evalAutoCarveout"] = bool(plan.eval_auto_carveout)
    wandb: dict[str, Any] = {"enabled": bool(s["wandb.enabled"])}
    if s["wandb.enabled"]:
        for key, wire in (("wandb.project", "project"), ("wandb.entity", "entity"), ("wandb.run_id", "runId")):
            if s[key]:
                wandb[wire] = s[key]
        key = s.secret("WANDB_API_KEY")
        if key:
            wandb["apiKey"] = key if include_secrets else MASK
    body["wandbConfig"] = wandb
    return body


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def sdk_kwargs(payload: dict[str, Any]) -> dict[str, Any]:
    """camelCase wire body → keyword arguments of ``reinforcement_fine_tuning_jobs.create``."""
    def conv(v: Any) -> Any:
        if isinstance(v, dict):
            return {_snake(k): conv(x) for k, x in v.items()}
        return v

    return {_snake(k): conv(v) for k, v in payload.items()}


def payload_mismatches(expected: dict[str, Any], actual: dict[str, Any], prefix: str = "") -> list[str]:
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


# -------------------------------------------------------------------------------------- estimates

def judge_price(model: str) -> tuple[float, float] | None:
    m = model.lower().rsplit("/", 1)[-1]
    best = None
    for name, price in JUDGE_PRICES.items():
        if m == name or m.startswith(name + "-2") or m.startswith(name + "-"):
            if best is None or len(name) > len(best[0]):
                best = (name, price)
    return best[1] if best else None


def estimate(plan: TrainPlan) -> dict[str, Any]:
    """Judge calls (rows × n × epochs) and their token cost — an upper bound: the judge cache may save some."""
    s = plan.settings
    epochs, n = int(s["train.epochs"]), int(s["train.n"])
    train_calls = plan.dataset_rows * n * epochs
    eval_rows = plan.eval_dataset.rows if plan.eval_dataset and plan.eval_dataset.kind == "file" else 0
    eval_calls = eval_rows * epochs
    reqs = plan.avg_requirements or 10.0
    in_tokens = IMAGE_TOKENS + PROMPT_OVERHEAD_TOKENS + int(reqs * 25)
    out_tokens = int(20 + CHECKLIST_TOKENS_PER_REQ * reqs) if s["judge.mode"] == "checklist" else COUNT_OUTPUT_TOKENS
    calls = train_calls + eval_calls
    price = judge_price(str(s["judge.model"]))
    cost = None
    if price is not None:
        cost = round(calls * (in_tokens * price[0] + out_tokens * price[1]) / 1_000_000, 2)
    return {
        "judge_model": s["judge.model"], "judge_mode": s["judge.mode"],
        "formula": f"rows {plan.dataset_rows} × n {n} × epochs {epochs}",
        "judge_calls_train": train_calls, "judge_calls_eval": eval_calls, "judge_calls": calls,
        "tokens_per_call": {"input": in_tokens, "output": out_tokens},
        "tokens_total": {"input": calls * in_tokens, "output": calls * out_tokens},
        "usd_estimate": cost,
        "price_per_million": list(price) if price else None,
        "rollouts": plan.dataset_rows * n * epochs,
        "note": "upper bound; the judge cache skips pictures already judged. Check current OpenAI pricing.",
    }


# ------------------------------------------------------------------------------------------ dry run

def sample_renders(settings: Any) -> list[dict[str, Any]]:
    """Render the built-in sample SVGs in headless Chromium (local; proves the renderer works)."""
    from svgrft.core.render import SyncRenderer

    r = SyncRenderer(pool_size=1, chromium_path=settings["render.chromium"] or None,
                     timeout_ms=int(settings["render.timeout_ms"]), max_side=int(settings["render.max_side"]))
    out = []
    try:
        for name, svg in SAMPLE_SVGS.items():
            t0 = time.perf_counter()
            res = r.render(svg)
            out.append({"name": name, "ok": bool(res.ok), "width": res.width, "height": res.height,
                        "png_bytes": len(res.png or b""), "ms": round((time.perf_counter() - t0) * 1000, 1),
                        "error": None if res.ok else f"{res.error_kind}: {res.reason}"})
    finally:
        r.close()
    return out


def plan_steps(plan: TrainPlan) -> list[dict[str, str]]:
    steps = [
        {"step": "validate", "detail": f"dataset {plan.dataset_path} ({plural(plan.dataset_rows, 'row')}), settings, "
                                       f"rollout mode {plan.mode}"},
        {"step": "secrets", "detail": "create or update " + ", ".join(plan.secret_keys)},
        {"step": "dataset", "detail": f"{plan.dataset_id} (reused when it exists and is READY)"},
    ]
    if plan.eval_dataset is not None:
        steps.append({"step": "eval dataset", "detail": plan.eval_dataset.dataset_id + (
            " (uploaded from " + plan.eval_dataset.value + ")" if plan.eval_dataset.kind == "file" else " (existing)")})
    steps += [
        {"step": "evaluator", "detail": f"{plan.evaluator_id} ({plural(plan.evaluator_files, 'file')}, "
                                        f"{plural(plan.evaluator_bytes, 'byte', spec=',')}; reused when ACTIVE)"},
        {"step": "job", "detail": f"{plan.job_id} (" + ("--job-id" if plan.job_id_explicit else
                                                          "derived; an identical re-run reuses it") + ")"},
        {"step": "watch", "detail": "state changes and progress until the job ends (Ctrl-C detaches)"},
    ]
    return steps


def dry_run_report(plan: TrainPlan, *, renders: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything ``train --dry-run`` shows. No network."""
    s = plan.settings
    account = str(s["fireworks.account_id"] or "") or ACCOUNT_PLACEHOLDER
    ds_name = f"accounts/{account}/datasets/{plan.dataset_id}"
    ev_name = f"accounts/{account}/evaluators/{plan.evaluator_id}"
    eval_name = None
    if plan.eval_dataset is not None:
        eval_name = f"accounts/{account}/datasets/{plan.eval_dataset.dataset_id}" \
            if not plan.eval_dataset.value.startswith("accounts/") else plan.eval_dataset.value
    payload = job_payload(plan, account=account, dataset=ds_name, evaluator=ev_name, eval_dataset=eval_name)
    secrets = [{"key": k, "set": bool(s.secret(k))} for k in plan.secret_keys]
    rollout: dict[str, Any] = {"mode": plan.mode}
    if plan.mode == "remote":
        rollout["server_url"] = plan.server_url
        rollout["token"] = "set" if s.secret("SVGRFT_SERVE_TOKEN") else "not set (server must run without --token)"
    return {
        "dry_run": True,
        "base_model": plan.base_model,
        "rollout": rollout,
        "steps": plan_steps(plan),
        "job_id": plan.job_id,
        "request": f"POST /v1/accounts/{account}/reinforcementFineTuningJobs?reinforcementFineTuningJobId={plan.job_id}",
        "payload": payload,
        "dataset": {"path": str(plan.dataset_path), "rows": plan.dataset_rows, "id": plan.dataset_id,
                    "content_hash": plan.dataset_hash},
        "evaluator": {"id": plan.evaluator_id, "content_hash": plan.evaluator_hash, "files": plan.evaluator_files,
                      "tarball_bytes": plan.evaluator_bytes, "judge_model": s["judge.model"],
                      "judge_mode": s["judge.mode"]},
        "secrets": secrets,
        "estimate": estimate(plan),
        "renders": renders or [],
        "links": dashboard_links(plan.job_id, plan.dataset_id, plan.evaluator_id),
        "warnings": list(plan.warnings),
    }


# -------------------------------------------------------------------------------------- real run

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
    payload: dict[str, Any]
    mode: str
    server_url: str = ""

    def links(self) -> dict[str, str]:
        return dashboard_links(self.job_id, self.dataset.rsplit("/", 1)[-1], self.evaluator.rsplit("/", 1)[-1])


def _job_dict(job: Any) -> dict[str, Any]:
    from svgrft.workflow.jobs import _to_dict

    return _to_dict(job)


def ensure_job(client: Any, job_id: str, payload: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """GET the job: exists with the same payload → reuse; missing → create. Returns (job wire dict, created)."""
    import fireworks

    sdk, acct = client.sdk, client.account_id

    def lookup() -> dict[str, Any] | None:
        with guarded(client, f"looking up RFT job {job_id}"):
            try:
                return _job_dict(sdk.reinforcement_fine_tuning_jobs.get(job_id, account_id=acct))
            except fireworks.NotFoundError:
                return None

    def check_same(existing: dict[str, Any]) -> None:
        diffs = payload_mismatches(payload, existing)
        if diffs:
            shown = "; ".join(diffs[:3]) + (f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else "")
            raise ConflictError(f"RFT job {job_id} already exists with a different configuration: {shown}",
                                hint="pass another --job-id (or drop --job-id to derive one from the config), "
                                     f"or inspect it with `svgrft jobs status {job_id}`", status=409)

    from svgrft.workflow.evaluator import retry_transient

    existing = retry_transient(lookup, pause=1.0)
    if existing is not None:
        check_same(existing)
        return existing, False
    try:
        with guarded(client, f"creating RFT job {job_id}"):
            job = sdk.reinforcement_fine_tuning_jobs.create(account_id=acct, reinforcement_fine_tuning_job_id=job_id,
                                                            **sdk_kwargs(payload))
        return _job_dict(job), True
    except ConflictError as e:
        existing = lookup()
        if existing is None:  # the conflict is about something else (e.g. the output model exists)
            raise ConflictError(f"creating RFT job {job_id} conflicts with an existing resource: {e.message}",
                                hint="if the output model already exists, choose another --output-model",
                                status=409) from None
        check_same(existing)
        return existing, False


def run(plan: TrainPlan, client: Any, *, on_step: Callable[[str], None] | None = None,
        on_evaluator_state: Callable[[str, float], None] | None = None,
        force_evaluator: bool = False, put_backoff: float = 1.0) -> TrainResult:
    """secrets → dataset → evaluator → job. The caller watches (CLI: ``render_watch``)."""
    from svgrft.secrets import mask
    from svgrft.workflow import evaluator as evw
    from svgrft.workflow.datasets import ensure_dataset

    say = on_step or (lambda _m: None)
    s = plan.settings
    poll = float(s["evaluator.poll_interval"])

    if plan.mode == "remote":
        evw.check_rollout_server(s)
        say(f"✓ rollout server {plan.server_url} is healthy")

    require_keys(plan)
    rows = []
    for key in plan.secret_keys:  # the same upsert as `svgrft secrets push`
        secret_name, action = client.upsert_secret(key, s.secret(key))
        rows.append({"key": key, "secret": secret_name, "value": mask(s.secret(key)), "action": action})
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["action"]] = counts.get(r["action"], 0) + 1
    say("✓ secrets: " + ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) +
        f" ({', '.join(r['key'] for r in rows)})")

    ds = ensure_dataset(client, plan.dataset_path, plan.dataset_id if plan.dataset_id_explicit else None,
                        poll_interval=min(poll, 2.0))
    say(f"✓ dataset {ds.name} ({plural(ds.example_count, 'row')}, {'uploaded' if ds.created else 'reused'})")

    eval_name = None
    if plan.eval_dataset is not None:
        if plan.eval_dataset.kind == "file":
            eds = ensure_dataset(client, plan.eval_dataset.value, None, poll_interval=min(poll, 2.0))
            eval_name = eds.name
            say(f"✓ eval dataset {eds.name} ({plural(eds.example_count, 'row')}, {'uploaded' if eds.created else 'reused'})")
        else:
            eval_name = client.name("datasets", plan.eval_dataset.dataset_id)
            say(f"✓ eval dataset {eval_name} (existing)")

    built = evw.ensure_evaluator(client, s, force=force_evaluator, on_status=lambda m: say(f"  evaluator: {m}"),
                                 on_state=on_evaluator_state, put_backoff=put_backoff)
    if built.content_hash != plan.evaluator_hash:  # the code changed between plan and run
        raise SvgrftError("the evaluator changed while training was being set up",
                          hint="run the same command again")
    say(f"✓ evaluator {built.name} ({built.mode} rollouts, {'built' if built.created else 'reused'})")

    payload = job_payload(plan, account=client.account_id, dataset=ds.name, evaluator=built.name,
                          eval_dataset=eval_name, include_secrets=True)
    job, created = ensure_job(client, plan.job_id, payload)
    name = str(job.get("name") or client.name("reinforcementFineTuningJobs", plan.job_id))
    tc = job.get("trainingConfig") or {}
    say(f"✓ job {name} ({'created' if created else 'reused: an identical job exists'}, "
        f"{str(job.get('state') or '').removeprefix('JOB_STATE_')})")
    return TrainResult(
        job_id=plan.job_id, job_name=name, state=str(job.get("state") or "JOB_STATE_UNSPECIFIED"), created=created,
        dataset=ds.name, dataset_created=ds.created, evaluator=built.name, evaluator_created=built.created,
        eval_dataset=eval_name, output_model=tc.get("outputModel") or None, secrets=rows,
        payload=job_payload(plan, account=client.account_id, dataset=ds.name, evaluator=built.name,
                            eval_dataset=eval_name),
        mode=plan.mode, server_url=plan.server_url)


def require_keys(plan: TrainPlan) -> None:
    """Before any network call: the keys the real run needs."""
    s = plan.settings
    if not s.secret("FIREWORKS_API_KEY"):
        raise ConfigError("FIREWORKS_API_KEY is not set",
                          hint="export FIREWORKS_API_KEY=... or put it in .env; `svgrft train --dry-run` works without keys")
    missing = [k for k in plan.secret_keys if not s.secret(k)]
    if missing:
        raise ConfigError(f"{', '.join(missing)} not set: the evaluator needs it as a Fireworks secret",
                          hint=f"set {missing[0]} in the environment or .env (or change secrets.keys)")


__all__ = ["TrainPlan", "TrainResult", "make_plan", "job_payload", "sdk_kwargs", "payload_mismatches", "estimate",
           "derive_job_id", "dry_run_report", "sample_renders", "run", "ensure_job", "require_keys",
           "secret_keys_for", "dashboard_links"]
