"""``svgrft train``: validate → secrets push → dataset upload → evaluator build → create job → watch.

Every knob is a flag named like its setting ([train] epochs ↔ --epochs), declared with
:func:`svgrft.cli._common.setting_option`. ``--dry-run`` makes no network call at all.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from svgrft.cli import _common as c
from svgrft.core.plural import plural


def _e(value: Any) -> str:
    from rich.markup import escape

    return escape(str(value))


@c.command
def cmd(
    base_model: Optional[str] = c.setting_option("train.base_model", "-m"),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Config file, e.g. configs/qwen3-0p6b.toml."),
    dataset: Optional[str] = c.setting_option("dataset.train"),
    dataset_id: Optional[str] = c.setting_option("dataset.id"),
    eval_dataset: Optional[str] = c.setting_option("train.eval_dataset"),
    eval_auto_carveout: Optional[bool] = c.setting_option("train.eval_auto_carveout"),
    epochs: Optional[int] = c.setting_option("train.epochs"),
    learning_rate: Optional[float] = c.setting_option("train.learning_rate"),
    lora_rank: Optional[int] = c.setting_option("train.lora_rank"),
    batch_size: Optional[int] = c.setting_option("train.batch_size"),
    max_context_length: Optional[int] = c.setting_option("train.max_context_length"),
    chunk_size: Optional[int] = c.setting_option("train.chunk_size"),
    temperature: Optional[float] = c.setting_option("train.temperature"),
    top_p: Optional[float] = c.setting_option("train.top_p"),
    n: Optional[int] = c.setting_option("train.n"),
    max_tokens: Optional[int] = c.setting_option("train.max_tokens"),
    output_model: Optional[str] = c.setting_option("train.output_model"),
    job_id: Optional[str] = c.setting_option("train.job_id"),
    display_name: Optional[str] = c.setting_option("train.display_name"),
    evaluator_id: Optional[str] = c.setting_option("evaluator.id"),
    judge_model: Optional[str] = c.setting_option("judge.model"),
    judge_mode: Optional[str] = c.setting_option("judge.mode"),
    rollout_mode: Optional[str] = c.setting_option("rollout.mode"),
    rollout_server_url: Optional[str] = c.setting_option("rollout.server_url"),
    wandb: Optional[bool] = c.setting_option("wandb.enabled"),
    wandb_project: Optional[str] = c.setting_option("wandb.project"),
    wandb_entity: Optional[str] = c.setting_option("wandb.entity"),
    wandb_run_id: Optional[str] = c.setting_option("wandb.run_id"),
    poll_interval: Optional[float] = c.setting_option("train.poll_interval"),
    force_evaluator: bool = typer.Option(False, "--force-evaluator", help="Rebuild the evaluator even if it exists."),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Validate locally, render sample SVGs, print the plan, payload and cost estimate. "
        "No network call, no keys needed.",
    ),
    no_watch: bool = typer.Option(False, "--no-watch", help="Return once the job is created (CI)."),
    yes: bool = c.YES_OPT,
    json_out: bool = c.JSON_OPT,
) -> None:
    """Launch (and watch) a reinforcement fine-tuning job; re-running the same command reuses everything."""
    from svgrft.workflow import train as tw

    s = c.settings(config=config)
    plan = tw.make_plan(s)
    for w in plan.warnings:
        c.warn(w)
    if dry_run:
        c.check_chromium_setting(s)
        _dry_run(plan, json_out)
        return

    tw.require_keys(plan)
    c.confirm(
        f"launch RFT job {plan.job_id} on {plan.base_model} ({plural(plan.dataset_rows, 'row')} × n "
        f"{s.train.n} × {plural(s.train.epochs, 'epoch')}; this costs money)",
        yes,
    )
    from svgrft.cli.evaluator import state_printer
    from svgrft.clients.fireworks import make_client

    c.info(
        f"✓ validated: {plan.dataset_path} ({plural(plan.dataset_rows, 'row')}), {plan.mode} rollouts"
        + (f" via {plan.server_url}" if plan.server_url else "")
    )
    client = make_client(s)
    from svgrft.workflow.evaluator_build import EvaluatorBuildError

    try:
        result = tw.run(
            plan, client, on_step=c.info, on_evaluator_state=state_printer(), force_evaluator=force_evaluator
        )
    except EvaluatorBuildError as e:
        from svgrft.cli.evaluator import print_build_log

        print_build_log(e.build_log)
        raise

    summary: dict[str, Any] = {"state": result.state, "output_model": result.output_model}
    detached = False
    if not no_watch:
        from svgrft.cli.jobs import render_watch

        summary = render_watch(client, result.job_id, s.train.poll_interval, json_out)
        detached = bool(summary.get("detached"))
    state = summary.get("state") or result.state
    output_model = summary.get("output_model") or result.output_model
    links = result.links()
    data = {
        "job": result.job_name,
        "job_id": result.job_id,
        "state": state,
        "created": result.created,
        "dashboard_url": links.get("job"),
        "output_model": output_model,
        "dataset": result.dataset,
        "evaluator": result.evaluator,
        "eval_dataset": result.eval_dataset,
        "rollout_mode": result.mode,
        "links": links,
        "watched": not no_watch,
        "detached": detached,
    }
    if result.server_url:
        data["rollout_server_url"] = result.server_url
    if json_out:
        c.emit_json(data)
    else:
        c.info("")
        for what, url in links.items():
            c.info(f"  {what:<10} {url}")
        if output_model:
            c.info(f"  {'model':<10} {output_model}")
        c.out(result.job_name)
    if detached:
        raise typer.Exit(130)
    from svgrft.workflow.jobs import SUCCESS_STATES, TERMINAL_STATES

    if state in TERMINAL_STATES and state not in SUCCESS_STATES:
        from svgrft.errors import ApiError
        from svgrft.workflow.jobs import failure_hint

        msg = summary.get("status_message")
        raise ApiError(
            f"job {result.job_id} ended {str(state).removeprefix('JOB_STATE_')}" + (f": {msg}" if msg else ""),
            hint=failure_hint({**summary, "id": result.job_id, "dashboard_url": links.get("job")}),
        )
    if no_watch:
        c.info(f"not watching; follow it with: svgrft jobs watch {result.job_id}")


def _dry_run(plan: Any, json_out: bool) -> None:
    from svgrft.workflow import train as tw

    renders = tw.sample_renders(plan.settings)
    report = tw.dry_run_report(plan, renders=renders)
    bad = [r for r in renders if not r["ok"]]
    if json_out:
        c.emit_json(report)
    else:
        _print_dry_run(report)
    if bad:
        from svgrft.errors import RenderError

        raise RenderError(
            f"the renderer failed on {plural(len(bad), 'sample SVG')}: {bad[0]['error']}",
            hint="run `svgrft doctor`; check Chromium (SVGRFT_CHROMIUM / render.chromium)",
        )


def _print_dry_run(r: dict) -> None:
    import json

    from rich.table import Table

    c.out(
        f"Dry run: nothing was sent. Base model {r['base_model']}, rollout mode {r['rollout']['mode']}"
        + (f" (server {r['rollout']['server_url']})" if r["rollout"].get("server_url") else "")
    )
    t = Table(title="plan")
    t.add_column("step")
    t.add_column("what would happen", overflow="fold")
    for step in r["steps"]:
        t.add_row(step["step"], _e(step["detail"]))
    c.print_table(t)

    st = Table(title="secrets (values never shown)")
    st.add_column("key")
    st.add_column("in environment")
    for sec in r["secrets"]:
        st.add_row(sec["key"], "yes" if sec["set"] else "NO (needed for the real run)")
    c.print_table(st)

    rt = Table(title="sample renders (headless Chromium)")
    for col in ("svg", "ok", "size", "png bytes", "ms"):
        rt.add_column(col)
    for x in r["renders"]:
        rt.add_row(
            x["name"],
            "yes" if x["ok"] else _e(x["error"] or "no"),
            f"{x['width']}×{x['height']}",
            str(x["png_bytes"]),
            str(x["ms"]),
        )
    c.print_table(rt)

    c.out(r["request"])
    c.out(json.dumps(r["payload"], indent=2))

    e = r["estimate"]
    cost = f"≈ ${e['usd_estimate']:.2f}" if e["usd_estimate"] is not None else "price unknown for this model"
    c.out(
        f"judge calls: {e['judge_calls']:,} ({e['formula']}"
        + (f" + eval {e['judge_calls_eval']:,}" if e["judge_calls_eval"] else "")
        + ")"
    )
    c.out(
        f"judge tokens: {e['tokens_total']['input']:,} in + {e['tokens_total']['output']:,} out "
        f"({e['tokens_per_call']['input']} + {e['tokens_per_call']['output']} per call), {cost} "
        f"with {e['judge_model']} ({e['judge_mode']}); {e['note']}"
    )
