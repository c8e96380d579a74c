"""``svgrft compare-epochs JOB_ID``: first vs last epoch, side by side, scored — HTML, PNG and a table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from svgrft.cli import _common as c

SOURCES = ("records", "replay", "runs")
ALIASES = {"tracing": "records"}  # the name of the default source before the evaluator recorded rollouts
ROW_WARNINGS_SHOWN = 3  # per-row warnings beyond this are counted, not printed one by one


def _parse_epochs(raw: str | None) -> list[int] | None:
    from svgrft.errors import UsageError

    if raw is None or not raw.strip():
        return None
    parts = [p.strip() for p in raw.split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise UsageError(
            f"--epochs {raw!r} is not two numbers", hint="e.g. --epochs 0,3 (0-based; -1 = last)"
        ) from None
    if len(values) != 2:
        raise UsageError(f"--epochs takes two epochs, got {len(values)}", hint="e.g. --epochs 0,3 (0-based; -1 = last)")
    return values


def _summary_rows(st: dict, before: str, after: str) -> list[tuple[str, str, str, str]]:
    from svgrft.core.comparison import fmt_ci, fmt_delta, fmt_score

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.0f}%"

    def ci(d):  # mean on one line, the interval under it: the table fits 80 columns
        return fmt_ci(d).replace(" [", "\n[")

    rows = [
        ("mean score", ci(st["before"]), ci(st["after"]), ci(st["delta"])),
        ("wins / ties / losses", "", "", f"{st['wins']} / {st['ties']} / {st['losses']}"),
        ("valid SVG", pct(st["valid_before"]), pct(st["valid_after"]), ""),
        ("samples", str(st["samples_before"]), str(st["samples_after"]), ""),
    ]
    if st["training_reward_before"] is not None or st["training_reward_after"] is not None:
        b, a = st["training_reward_before"], st["training_reward_after"]
        rows.append(
            (
                "training reward (recorded)",
                fmt_score(b, 3),
                fmt_score(a, 3),
                fmt_delta(a - b, 3) if a is not None and b is not None else "",
            )
        )
    return rows


def _print_tables(cmp, files: dict) -> None:
    from rich.table import Table

    from svgrft.core.comparison import fmt_delta, fmt_score, short_prompt

    st = cmp.stats()
    has_reward = any(s.reward is not None for r in cmp.rows for s in r.before + r.after)
    # Row ids, scores and outcomes are never cut; only the prompt (in index.html in full) gives way. Column
    # heads are short ("before"/"after"): the labels (long run ids with --runs) are in the title.
    outcomes = [r.outcome or "incomplete" for r in cmp.rows]
    fixed = [max([len(r.row_id) for r in cmp.rows] + [3]), 6, 5, 6, max([len(o) for o in outcomes] + [6])]
    if has_reward:
        fixed.append(11)
    # Rich would shrink every no_wrap column evenly: give the prompt exactly the width that is left
    room = c.out_console().width - sum(fixed) - 3 * (len(fixed) + 1) - 1
    t = Table(title=f"{cmp.title}\nbefore = {cmp.before_label}, after = {cmp.after_label}")
    t.add_column("row", no_wrap=True, min_width=fixed[0])
    t.add_column("prompt", overflow="ellipsis", no_wrap=True, max_width=max(8, min(40, room)))
    t.add_column("before", justify="right", no_wrap=True, min_width=fixed[1])
    t.add_column("after", justify="right", no_wrap=True, min_width=fixed[2])
    t.add_column("change", justify="right", no_wrap=True, min_width=fixed[3])
    t.add_column("result", no_wrap=True, min_width=fixed[4])
    if has_reward:
        t.add_column("reward", justify="right", no_wrap=True, min_width=fixed[5])
    for r, outcome in zip(cmp.rows, outcomes):
        style = {"win": "green", "loss": "red"}.get(outcome, "")
        cells = [
            r.row_id,
            short_prompt(r.prompt, 40),
            fmt_score(r.mean("before")),
            fmt_score(r.mean("after")),
            fmt_delta(r.delta),
            f"[{style}]{outcome}[/{style}]" if style else outcome,
        ]
        if has_reward:
            rb, ra = r.reward_mean("before"), r.reward_mean("after")
            cells.append(f"{fmt_score(rb)} → {fmt_score(ra)}" if rb is not None or ra is not None else "")
        t.add_row(*cells)
    c.print_table(t)
    s = Table(title="summary (means over prompts, 95% t-intervals)")
    s.add_column("", min_width=10)
    for col in ("before", "after", "change"):
        s.add_column(col, justify="right", no_wrap=True, min_width=len("[0.000, 0.000]"))
    for row in _summary_rows(st, cmp.before_label, cmp.after_label):
        s.add_row(*row)
    c.print_table(s)
    curve = cmp.meta.get("reward_curve")
    if curve:
        t2 = Table(title="training reward per epoch (every recorded rollout)")
        for col, just in (
            ("epoch", "right"),
            ("rollouts", "right"),
            ("mean", "right"),
            ("std", "right"),
            ("min – max", "right"),
        ):
            t2.add_column(col, justify=just, no_wrap=True)
        for e in curve:
            rng = "" if e.get("min") is None else f"{e['min']:.3f} – {e['max']:.3f}"
            t2.add_row(str(e["epoch"]), str(e["n"]), fmt_score(e.get("mean"), 3), fmt_score(e.get("std"), 3), rng)
        c.print_table(t2)
    for kind, path in files.items():
        c.out(f"{kind}: {path}")


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def _replay_deployment(settings, job_id: str, source_obj, *, yes: bool, problems: list):
    """Deploy the job's output model around the replay; the source calls it through the deployment."""
    import contextlib

    from svgrft.cli.deploy import StateDisplay
    from svgrft.workflow.deploy import deployment_for

    @contextlib.contextmanager
    def run():
        shown: list = []  # the live status line, once the deployment is confirmed

        def stop() -> None:
            for d in shown:
                d.stop()

        def confirm(plan) -> None:
            cost = f" (about ${plan.cost_per_hour:.2f}/hour while running)" if plan.cost_per_hour is not None else ""
            c.confirm(f"start an on-demand deployment {plan.deployment_id} for this replay{cost}", yes)
            shown.append(StateDisplay(f"deployment {plan.deployment_id}"))

        def on_update(d: dict) -> None:
            for disp in shown:
                disp(d)

        def failed(message: str, command: str) -> None:
            stop()
            problems.append((message, command))
            c.warn(f"the deployment could NOT be deleted ({message}); it keeps billing until you run: {command}")

        def say(msg: str) -> None:
            stop()
            c.info(msg)

        try:
            with deployment_for(
                settings, job_id, confirm=confirm, progress=say, on_update=on_update, on_cleanup_failed=failed
            ) as served:
                stop()
                source_obj.after_model = served
                yield served
        finally:
            stop()

    return run()


def _better_worse(cmp) -> dict:
    """Rows whose mean score rose / fell (paired rows only), biggest change first."""
    paired = [r for r in cmp.rows if r.delta is not None]
    better = sorted((r for r in paired if r.outcome == "win"), key=lambda r: -r.delta)
    worse = sorted((r for r in paired if r.outcome == "loss"), key=lambda r: r.delta)
    return {
        "better_rows": [{"row_id": r.row_id, "delta": r.delta} for r in better],
        "worse_rows": [{"row_id": r.row_id, "delta": r.delta} for r in worse],
    }


def _print_changed(cmp, changed: dict) -> None:
    from svgrft.core.comparison import fmt_delta

    split = (cmp.meta.get("split") or {}).get("text")
    if split:
        c.out(f"split: {split}")
    for key, word in (("better_rows", "better"), ("worse_rows", "worse")):
        items = changed[key]
        shown = ", ".join(f"{i['row_id']} ({fmt_delta(i['delta'])})" for i in items[:12])
        more = f", … {len(items) - 12} more" if len(items) > 12 else ""
        c.out(f"{word} ({len(items)}): {shown}{more}" if items else f"{word}: none")


@c.command
def cmd(
    job_id: Optional[str] = typer.Argument(
        None, metavar="JOB_ID", help="RFT job id (or full resource name). Not needed with --runs."
    ),
    source: Optional[str] = typer.Option(
        None,
        "--source",
        "-s",
        help="Where the rollouts come from: records (the rollouts the job's "
        "evaluator recorded while it trained, with their rewards; default), "
        "replay (fresh replies from the base and the output model), "
        "runs (two local runs, with --runs).",
    ),
    runs: Optional[tuple[str, str]] = typer.Option(
        None, "--runs", metavar="RUN_A RUN_B", help="Compare two local runs of `svgrft eval` instead of a job."
    ),
    epochs: Optional[str] = typer.Option(
        None,
        "--epochs",
        metavar="A,B",
        help="Epochs to compare, 0-based (-1 = last finished). Default: first vs last finished.",
    ),
    rejudge: bool = typer.Option(
        False,
        "--rejudge",
        help="Score the recorded replies again with the configured judge (default: show "
        "the rewards the job trained on, no judge call).",
    ),
    dataset: Optional[str] = typer.Option(
        None,
        "--dataset",
        help="The job's dataset JSONL (row ids → prompts and requirements). "
        "Default: the job's dataset, downloaded from Fireworks "
        "(--source replay: dataset.train, then the bundled file).",
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output directory. Default: reports/<job>/."),
    rows: int = typer.Option(6, "--rows", min=1, help="Prompts on the contact sheet (before_after.png)."),
    pick: str = typer.Option(
        "best",
        "--pick",
        help="Which prompts go on the contact sheet: best (biggest gains), worst (biggest regressions), random, all.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for --pick random."),
    samples: int = typer.Option(1, "--samples", min=1, max=16, help="Replies per prompt and model (--source replay)."),
    cache: Optional[bool] = c.setting_option("judge.cache"),
    deploy: bool = typer.Option(
        False,
        "--deploy",
        help="--source replay: deploy the output model for the replay "
        "and delete it afterwards (also on Ctrl-C or an error).",
    ),
    ttl: Optional[str] = c.setting_option("deploy.ttl", note="With --deploy:"),
    yes: bool = c.YES_OPT,
    json_out: bool = c.JSON_OPT,
) -> None:
    """Compare the first and the last epoch of an RFT job: rendered side by side, with the rewards it trained on.

    Reads the rollouts the job's evaluator recorded (one gateway query per dataset row). Writes index.html
    (every prompt: requirements, before/after images, scores, the judge's ticks and evidence, SVG
    sources, the reward curve), before_after.png (a contact sheet) and reward_curve.png (mean reward per
    epoch) to --out, prints a table, and with --json every number.

    --source replay scores the base model (serverless) against the trained model on the prompts of
    --dataset (e.g. datasets/svgbench_eval.jsonl, which the job never trained on: the report names the
    split); --deploy serves the trained model for the duration of the replay.
    """
    from svgrft.core.comparison import PICKS
    from svgrft.errors import UsageError
    from svgrft.workflow import compare as wf
    from svgrft.workflow.jobs import job_id_of

    src = (source or ("runs" if runs else "records")).strip().lower()
    src = ALIASES.get(src, src)
    if src not in SOURCES:
        raise UsageError(f"unknown --source {source!r}", hint="use one of: " + ", ".join(SOURCES))
    if pick not in PICKS:
        raise UsageError(f"unknown --pick {pick!r}", hint="use one of: " + ", ".join(PICKS))
    requested = _parse_epochs(epochs)
    if src == "runs":
        if not runs:
            raise UsageError("--source runs needs --runs RUN_A RUN_B", hint="list runs with `svgrft runs list`")
        if job_id:
            raise UsageError("give either a JOB_ID or --runs, not both", hint="e.g. svgrft compare-epochs --runs A B")
        if requested or rejudge:
            raise UsageError("--epochs and --rejudge apply to a job, not to --runs", hint="drop them")
    elif not job_id:
        raise UsageError(
            "missing JOB_ID", hint="svgrft compare-epochs JOB_ID (see `svgrft jobs list`), or --runs RUN_A RUN_B"
        )
    elif runs:
        raise UsageError("--runs only works with --source runs", hint="drop --source, or drop --runs")

    settings = c.settings()
    c.check_chromium_setting(settings)
    if src == "records":
        source_obj = wf.RecordsSource(settings, job_id, dataset=dataset, epochs=requested, rejudge=rejudge)
        default_out = Path("reports") / job_id_of(job_id)
    elif src == "replay":
        if requested or rejudge:
            raise UsageError("--epochs and --rejudge apply to --source records", hint="drop them for --source replay")
        source_obj = wf.ReplaySource(settings, job_id, dataset=dataset, samples=samples)
        default_out = Path("reports") / f"{job_id_of(job_id)}-replay"
    else:
        source_obj = wf.RunsSource(settings, runs[0], runs[1])
        default_out = Path("reports") / f"{runs[0]}-vs-{runs[1]}"
    out_dir = out or default_out
    if (deploy or ttl) and src != "replay":
        raise UsageError("--deploy and --ttl apply to --source replay", hint="add --source replay, or drop them")

    problems: list = []  # a deployment that could not be deleted: the command fails after the report
    with _replay_deployment(settings, job_id, source_obj, yes=yes, problems=problems) if deploy else _nothing():
        col = source_obj.collect(c.info)
    for f in col.findings:
        c.info(f"found: {f}")
    row_warnings = [w for w in col.warnings if w.startswith("row ")]
    shown = 0
    for w in col.warnings:
        if w.startswith("row ") and len(row_warnings) > ROW_WARNINGS_SHOWN:
            if shown == ROW_WARNINGS_SHOWN:
                c.warn(f"… and {len(row_warnings) - shown} more rows like these (all listed in comparison.json)")
            shown += 1
            if shown > ROW_WARNINGS_SHOWN:
                continue
        c.warn(w)
    cmp, files = wf.finish(
        settings, col, out_dir, use_cache=settings.judge.cache, rows=rows, pick=pick, seed=seed, progress=c.info
    )
    changed = _better_worse(cmp)
    if json_out:
        data = cmp.to_json()
        data["files"] = files
        data.update(changed)
        if cmp.meta.get("reward_curve"):
            data["reward_curve"] = cmp.meta["reward_curve"]
        c.emit_json(data)
    else:
        _print_tables(cmp, files)
        if src == "replay":
            _print_changed(cmp, changed)
    if problems:
        message, command = problems[0]
        raise c.SvgrftError(
            f"the report is written, but the deployment could not be deleted: {message}",
            hint=f"it bills until deleted: run `{command}`",
        )
