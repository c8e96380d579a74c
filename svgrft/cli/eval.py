"""``svgrft eval``: evaluate a model locally (generate → render → judge → score), resumable."""

from __future__ import annotations

from typing import Optional

import typer

from svgrft.cli import _common as c
from svgrft.core.plural import plural, plural_word


@c.command
def cmd(
    model: Optional[str] = c.setting_option("eval.model", "-m"),
    base_url: Optional[str] = typer.Option(
        None,
        "--base-url",
        help="OpenAI-compatible endpoint of the policy (default: Fireworks inference, fireworks.inference_base_url).",
    ),
    api_key_env: Optional[str] = typer.Option(
        None,
        "--api-key-env",
        help="Environment variable holding the policy's key (default: "
        "FIREWORKS_API_KEY on Fireworks, else OPENAI_API_KEY).",
    ),
    dataset: Optional[str] = c.setting_option("eval.dataset", "-d"),
    rows: Optional[int] = c.setting_option("eval.rows", "-n", min=0),
    samples: Optional[int] = c.setting_option("eval.samples", "-s", min=1),
    temperature: Optional[float] = c.setting_option("eval.temperature", min=0.0, max=2.0),
    max_tokens: Optional[int] = c.setting_option("eval.max_tokens", min=1),
    concurrency: Optional[int] = c.setting_option("eval.concurrency", "-j", min=1),
    judge_model: Optional[str] = c.setting_option("judge.model"),
    judge_mode: Optional[str] = c.setting_option("judge.mode"),
    judge_base_url: Optional[str] = c.setting_option("judge.base_url"),
    judge_concurrency: Optional[int] = c.setting_option("judge.concurrency", min=1),
    cache: Optional[bool] = c.setting_option("judge.cache"),
    resume: Optional[str] = typer.Option(
        None,
        "--resume",
        help="Continue run RUN_ID: finished samples are skipped; model, dataset and judge are taken from the run.",
    ),
    note: str = typer.Option("", "--note", help="A note stored with the run."),
    json_out: bool = c.JSON_OPT,
) -> None:
    """Evaluate a model on SVGBench prompts locally; results go to the local store (see `svgrft runs`)."""
    import asyncio

    from svgrft.workflow.model_eval import EvalOptions, run_eval

    settings = c.settings()
    if resume:
        given = [
            name
            for name, v in (
                ("--model", model),
                ("--base-url", base_url),
                ("--dataset", dataset),
                ("--rows", rows),
                ("--samples", samples),
                ("--temperature", temperature),
                ("--max-tokens", max_tokens),
                ("--judge-model", judge_model),
                ("--judge-mode", judge_mode),
            )
            if v is not None
        ]
        if given:
            c.warn(f"--resume uses the run's own settings; ignoring {', '.join(given)}")
    if model and not resume:
        from svgrft.clients.policy import is_fireworks_url

        if base_url is None or is_fireworks_url(base_url, settings):
            from svgrft.workflow.deploy import resolve_eval_model

            model = resolve_eval_model(settings, model, progress=c.info)  # trained model / JOB_ID → its deployment
    # every other option is in ``settings``; the options carry what is not a setting
    opts = EvalOptions(
        model=model,
        base_url=base_url,
        use_cache=settings.judge.cache,
        resume=resume,
        api_key_env=api_key_env,
        note=note,
    )

    state = {"run_id": None, "done": 0, "total": 0}
    progress = None
    task = None
    show_bar = not c.state.quiet

    def on_start(run_id: str, total: int, already: int) -> None:
        nonlocal progress, task
        state.update(run_id=run_id, total=total, done=already)
        c.info(
            f"Run {run_id}: {plural(total - already, 'sample')} to do"
            + (f" ({already} already done)" if already else "")
        )
        if show_bar and total - already > 0:
            progress = c.counted_progress("eval")
            progress.start()
            task = progress.add_task("eval", total=total, completed=already, info="")

    scores: list[float] = []
    errors: dict[str, int] = {}

    def on_sample(rec) -> None:
        state["done"] += 1
        if getattr(rec, "status", None) == "error" and rec.reason:
            errors[rec.reason] = errors.get(rec.reason, 0) + 1
        if rec.is_valid and rec.score is not None:
            scores.append(rec.score)
        if progress is not None and task is not None:
            mean = f"mean {sum(scores) / len(scores):.3f}" if scores else ""
            progress.update(task, advance=1, info=mean)

    try:
        outcome = asyncio.run(run_eval(settings, opts, on_start=on_start, on_sample=on_sample))
    except KeyboardInterrupt:
        if progress is not None:
            progress.stop()
        rid = state["run_id"]
        if rid:
            c.err_console().print(
                f"Interrupted: {state['done']} of {plural(state['total'], 'sample')} "
                f"{plural_word(state['done'], 'is', 'are')} saved in run {rid}."
            )
            c.err_console().print(f"Resume with: svgrft eval --resume {rid}")
        else:
            c.err_console().print("Interrupted before the run started; nothing was saved.")
        raise typer.Exit(130) from None
    finally:
        if progress is not None:
            progress.stop()

    summary = outcome.summary
    if json_out:
        c.emit_json(summary)
    else:
        from svgrft.cli.runs import print_summary

        print_summary(summary)
        c.info(f"HTML report: svgrft report {outcome.run_id}")
    if outcome.status != "finished":
        n_err = summary["counts"]["error"]
        why = "generation, browser or judge errors"
        if errors:  # the most frequent cause, e.g. "cannot reach the policy model at http://…"
            reason, count = max(errors.items(), key=lambda kv: kv[1])
            why = reason + (f" (×{count})" if count > 1 else "") + (", and others" if len(errors) > 1 else "")
        # The data above is complete for what finished; the exit code tells CI that the run is not.
        raise c.SvgrftError(
            f"{n_err} of {plural(summary['counts'].get('expected', n_err), 'sample')} failed: {why}",
            hint=f"the finished samples are saved; retry the rest with: svgrft eval --resume {outcome.run_id}",
        )
