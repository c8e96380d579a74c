"""What ``svgrft train --dry-run`` shows: the plan's steps, the payload, sample renders and the judge cost.

No network: the account in resource names is ``fireworks.account_id`` or a placeholder.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from svgrft.core.plural import plural
from svgrft.workflow.train_plan import TrainPlan, job_payload

if TYPE_CHECKING:
    from svgrft.config import Settings

JOB_DASHBOARD = "https://app.fireworks.ai/dashboard/fine-tuning/reinforcement/"
DATASET_DASHBOARD = "https://app.fireworks.ai/dashboard/datasets/"
EVALUATOR_DASHBOARD = "https://app.fireworks.ai/dashboard/evaluators/"
ACCOUNT_PLACEHOLDER = "<account>"

# USD per 1M tokens (input, output) for common judge models — an ESTIMATE, check current pricing.
JUDGE_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
}
IMAGE_TOKENS = 255  # one 512×512 image at high detail: 85 base + 170 per 512-px tile
PROMPT_OVERHEAD_TOKENS = 350  # judge instructions + schema
CHECKLIST_TOKENS_PER_REQ = 30
COUNT_OUTPUT_TOKENS = 200

# Dataset-free SVGs rendered by the dry run to prove Chromium works (shapes, gradient + text, paths).
SAMPLE_SVGS: dict[str, str] = {
    "shapes": (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 200" width="200" height="200">'
        '<rect x="10" y="10" width="180" height="180" fill="#87ceeb"/>'
        '<circle cx="100" cy="90" r="45" fill="#ffd700" stroke="#e69500" stroke-width="6"/>'
        '<rect x="0" y="150" width="200" height="50" fill="#3a7d2c"/></svg>'
    ),
    "gradient_text": (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 300 120" width="300" height="120">'
        '<defs><linearGradient id="g" x1="0" x2="1"><stop offset="0" stop-color="#ff6b6b"/>'
        '<stop offset="1" stop-color="#4d96ff"/></linearGradient></defs>'
        '<rect width="300" height="120" rx="16" fill="url(#g)"/>'
        '<text x="150" y="72" font-size="36" text-anchor="middle" fill="#fff" '
        'font-family="DejaVu Sans, sans-serif">svgrft</text></svg>'
    ),
    "paths": (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">'
        '<path d="M10 80 Q 50 10 90 80 Z" fill="#8e44ad"/>'
        '<polyline points="10,90 30,70 50,85 70,60 90,75" fill="none" stroke="#16a085" stroke-width="4"/>'
        "</svg>"
    ),
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
    judge = plan.settings.judge
    epochs, n = plan.settings.train.epochs, plan.settings.train.n
    train_calls = plan.dataset_rows * n * epochs
    eval_rows = plan.eval_dataset.rows if plan.eval_dataset and plan.eval_dataset.kind == "file" else 0
    eval_calls = eval_rows * epochs
    reqs = plan.avg_requirements or 10.0
    in_tokens = IMAGE_TOKENS + PROMPT_OVERHEAD_TOKENS + int(reqs * 25)
    out_tokens = int(20 + CHECKLIST_TOKENS_PER_REQ * reqs) if judge.mode == "checklist" else COUNT_OUTPUT_TOKENS
    calls = train_calls + eval_calls
    price = judge_price(judge.model)
    cost = None
    if price is not None:
        cost = round(calls * (in_tokens * price[0] + out_tokens * price[1]) / 1_000_000, 2)
    return {
        "judge_model": judge.model,
        "judge_mode": judge.mode,
        "formula": f"rows {plan.dataset_rows} × n {n} × epochs {epochs}",
        "judge_calls_train": train_calls,
        "judge_calls_eval": eval_calls,
        "judge_calls": calls,
        "tokens_per_call": {"input": in_tokens, "output": out_tokens},
        "tokens_total": {"input": calls * in_tokens, "output": calls * out_tokens},
        "usd_estimate": cost,
        "price_per_million": list(price) if price else None,
        "rollouts": plan.dataset_rows * n * epochs,
        "note": "upper bound; the judge cache skips pictures already judged. Check current OpenAI pricing.",
    }


# ------------------------------------------------------------------------------------------ dry run


def sample_renders(settings: Settings) -> list[dict[str, Any]]:
    """Render the built-in sample SVGs in headless Chromium (local; proves the renderer works)."""
    from svgrft.core.render import SyncRenderer

    render = settings.render
    r = SyncRenderer(
        pool_size=1, chromium_path=render.chromium or None, timeout_ms=render.timeout_ms, max_side=render.max_side
    )
    out = []
    try:
        for name, svg in SAMPLE_SVGS.items():
            t0 = time.perf_counter()
            res = r.render(svg)
            out.append(
                {
                    "name": name,
                    "ok": bool(res.ok),
                    "width": res.width,
                    "height": res.height,
                    "png_bytes": len(res.png or b""),
                    "ms": round((time.perf_counter() - t0) * 1000, 1),
                    "error": None if res.ok else f"{res.error_kind}: {res.reason}",
                }
            )
    finally:
        r.close()
    return out


def plan_steps(plan: TrainPlan) -> list[dict[str, str]]:
    steps = [
        {
            "step": "validate",
            "detail": f"dataset {plan.dataset_path} ({plural(plan.dataset_rows, 'row')}), settings, "
            f"rollout mode {plan.mode}",
        },
        {"step": "secrets", "detail": "create or update " + ", ".join(plan.secret_keys)},
        {"step": "dataset", "detail": f"{plan.dataset_id} (reused when it exists and is READY)"},
    ]
    if plan.eval_dataset is not None:
        steps.append(
            {
                "step": "eval dataset",
                "detail": plan.eval_dataset.dataset_id
                + (
                    " (uploaded from " + plan.eval_dataset.value + ")"
                    if plan.eval_dataset.kind == "file"
                    else " (existing)"
                ),
            }
        )
    steps += [
        {
            "step": "evaluator",
            "detail": f"{plan.evaluator_id} ({plural(plan.evaluator_files, 'file')}, "
            f"{plural(plan.evaluator_bytes, 'byte', spec=',')}; reused when ACTIVE)",
        },
        {
            "step": "job",
            "detail": f"{plan.job_id} ("
            + ("--job-id" if plan.job_id_explicit else "derived; an identical re-run reuses it")
            + ")",
        },
        {"step": "watch", "detail": "state changes and progress until the job ends (Ctrl-C detaches)"},
    ]
    return steps


def dry_run_report(plan: TrainPlan, *, renders: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything ``train --dry-run`` shows. No network."""
    s = plan.settings
    account = s.fireworks.account_id or ACCOUNT_PLACEHOLDER
    ds_name = f"accounts/{account}/datasets/{plan.dataset_id}"
    ev_name = f"accounts/{account}/evaluators/{plan.evaluator_id}"
    eval_name = None
    if plan.eval_dataset is not None:
        eval_name = (
            f"accounts/{account}/datasets/{plan.eval_dataset.dataset_id}"
            if not plan.eval_dataset.value.startswith("accounts/")
            else plan.eval_dataset.value
        )
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
        "dataset": {
            "path": str(plan.dataset_path),
            "rows": plan.dataset_rows,
            "id": plan.dataset_id,
            "content_hash": plan.dataset_hash,
        },
        "evaluator": {
            "id": plan.evaluator_id,
            "content_hash": plan.evaluator_hash,
            "files": plan.evaluator_files,
            "tarball_bytes": plan.evaluator_bytes,
            "judge_model": s.judge.model,
            "judge_mode": s.judge.mode,
        },
        "secrets": secrets,
        "estimate": estimate(plan),
        "renders": renders or [],
        "links": dashboard_links(plan.job_id, plan.dataset_id, plan.evaluator_id),
        "warnings": list(plan.warnings),
    }
