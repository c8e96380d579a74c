"""``svgrft jobs list/status/watch/cancel/resume``: reinforcement fine-tuning jobs on Fireworks.

``render_watch`` is the progress display shared with ``svgrft train``.
"""

from __future__ import annotations

from typing import Optional

import typer

from svgrft.cli import _common as c


def _e(value) -> str:
    """Server text shown through Rich: escape markup so '[...]' in it cannot break or restyle output."""
    from rich.markup import escape

    return escape(str(value))


app = typer.Typer(no_args_is_help=True, help="List, inspect, watch, cancel and resume RFT jobs.")

JOB_ARG = typer.Argument(..., metavar="JOB_ID", help="Job id (or accounts/…/reinforcementFineTuningJobs/<id>).")
EXIT_DETACHED = 130


def _client():
    from svgrft.clients.fireworks import make_client

    return make_client(c.settings())


def _epoch_text(s: dict) -> str:
    if s.get("epoch") is None:
        return "-"
    total = s.get("epochs")
    return f"{s['epoch'] + 1}/{total}" if total else str(s["epoch"] + 1)


def _overall_percent(s: dict) -> float | None:
    """Progress over the whole job: (epoch + percent-in-epoch) / epochs."""
    if s.get("succeeded"):
        return 100.0
    pct, epoch, epochs = s.get("percent"), s.get("epoch"), s.get("epochs")
    if pct is None and epoch is None:
        return None
    pct = pct or 0.0
    if epochs and epoch is not None:
        return max(0.0, min(100.0, (epoch * 100.0 + pct) / epochs))
    return max(0.0, min(100.0, pct))


def _state_style(state: str) -> str:
    if state in ("JOB_STATE_COMPLETED", "JOB_STATE_EARLY_STOPPED"):
        return "green"
    if state in ("JOB_STATE_FAILED", "JOB_STATE_EXPIRED"):
        return "red"
    if state in ("JOB_STATE_CANCELLED", "JOB_STATE_CANCELLING", "JOB_STATE_PAUSED"):
        return "yellow"
    return "cyan"


def _line(s: dict) -> str:
    parts = [f"job {s.get('id')}: {s.get('state_label')}"]
    if s.get("epoch") is not None:
        parts.append(f"epoch {_epoch_text(s)}")
    overall = _overall_percent(s)
    if overall is not None and not s.get("terminal"):
        parts.append(f"{overall:.0f}%")
    return ", ".join(parts)


def render_watch(
    client, job_id: str, poll_interval: float = 10.0, json_out: bool = False, timeout: float | None = None
) -> dict:
    """Watch a job with a Rich progress bar on stderr until it ends; returns the final summary.

    With ``json_out`` (or -q) there is no live bar, only one stderr line per state change; the caller
    prints the JSON. Ctrl-C detaches: the job keeps running, the summary comes back with
    ``detached=True``. Transient API errors are retried (see ``watch_job``).
    """
    from svgrft.workflow.jobs import job_id_of, watch_job

    jid = job_id_of(job_id)
    last: dict = {"id": jid, "state": None, "state_label": "UNKNOWN", "terminal": False, "succeeded": False}
    seen_state: list[str | None] = [None]
    live = not json_out and not c.state.quiet

    def log_change(s: dict, printer) -> None:
        if s["state"] != seen_state[0]:
            seen_state[0] = s["state"]
            msg = _line(s)
            if s.get("status_message") and s.get("state") != "JOB_STATE_COMPLETED":
                msg += f" - {s['status_message']}"
            printer(_e(msg))

    def on_error(e) -> None:
        c.warn(f"polling job {jid}: {e.message}; retrying")

    try:
        if not live:

            def quiet_update(s: dict) -> None:
                last.update(s)
                log_change(s, c.info)

            c.info(f"watching job {jid} (Ctrl-C detaches; the job keeps running)")
            return watch_job(
                client, jid, poll_interval=poll_interval, timeout=timeout, on_update=quiet_update, on_error=on_error
            )

        from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn

        console = c.err_console()
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        task = progress.add_task(f"job {jid}", total=100.0, start=True)
        console.print(f"Watching RFT job [bold]{jid}[/bold] (Ctrl-C detaches; the job keeps running)")

        def update(s: dict) -> None:
            last.update(s)
            log_change(s, lambda m: progress.console.print(f"[{_state_style(s['state'])}]{m}[/]"))
            overall = _overall_percent(s)
            desc = _e(s["state_label"]) + (f" epoch {_epoch_text(s)}" if s.get("epoch") is not None else "")
            progress.update(task, description=desc, completed=overall if overall is not None else 0.0)

        with progress:
            return watch_job(
                client, jid, poll_interval=poll_interval, timeout=timeout, on_update=update, on_error=on_error
            )
    except KeyboardInterrupt:
        c.err_console().print(f"Detached: job keeps running; re-attach with: svgrft jobs watch {jid}")
        out = dict(last)
        out["detached"] = True
        return out


def finish_watch(summary: dict, json_out: bool = False) -> int:
    """Print the end of a watch (JSON on stdout with ``json_out``; result/failure on stderr).
    Returns the exit code: 0 succeeded, 1 failed/cancelled/expired/still running, 130 detached."""
    from svgrft.errors import SvgrftError
    from svgrft.workflow.jobs import failure_hint

    if json_out:
        c.emit_json(summary)
    jid = summary.get("id")
    if summary.get("detached"):
        return EXIT_DETACHED
    if summary.get("succeeded"):
        model = summary.get("output_model")
        c.info(
            f"[green]job {jid} {_e(summary['state_label'])}[/green]" + (f": output model {_e(model)}" if model else ""),
            markup=True,
        )
        if not json_out and model:
            c.out(model)
        return 0
    if not summary.get("terminal"):
        c.report_error(
            SvgrftError(
                f"stopped watching: job {jid} is still {_e(summary.get('state_label'))}",
                hint=f"re-attach with: svgrft jobs watch {jid}",
            )
        )
        return 1
    msg = f"job {jid} {summary.get('state_label')}"
    if summary.get("status_message"):
        msg += f": {summary['status_message']}"
    c.report_error(SvgrftError(_e(msg), hint=_e(failure_hint(summary))))
    return 1


def _fmt_pct(s: dict) -> str:
    p = _overall_percent(s)
    return "-" if p is None else f"{p:.0f}%"


@app.command("list")
@c.command
def list_cmd(
    state: Optional[str] = typer.Option(None, "--state", "-s", help="Only jobs in this state (running, failed, …)."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=1000, help="At most this many jobs."),
    json_out: bool = c.JSON_OPT,
) -> None:
    """List reinforcement fine-tuning jobs, newest first."""
    from svgrft.workflow.jobs import job_summary, list_jobs, normalize_state

    if state:
        normalize_state(state)  # fail on a typo before any network call
    client = _client()
    summaries = [job_summary(j, client.account_id) for j in list_jobs(client, state=state, limit=limit)]
    if json_out:
        c.emit_json({"jobs": summaries})
        return
    if not summaries:
        c.info("No RFT jobs" + (f" in state {state}" if state else "") + f" in account {client.account_id}.")
        return
    from rich.table import Table

    # the job id is what a user copies: it never wraps or gets cut; free text folds instead
    t = Table(title=f"RFT jobs ({client.account_id})", pad_edge=False)
    t.add_column("id", no_wrap=True, min_width=max(len(str(s["id"])) for s in summaries))
    t.add_column("state", no_wrap=True)
    t.add_column("epoch", no_wrap=True, justify="right")
    t.add_column("base model", overflow="fold", min_width=10)
    t.add_column("created", no_wrap=True)
    with_message = any(s.get("status_message") for s in summaries)
    if with_message:
        t.add_column("message", overflow="fold", min_width=10)
    for s in summaries:
        pct = _fmt_pct(s)
        progress = _epoch_text(s) + ("" if pct == "-" or s.get("succeeded") else f" {pct}")
        created = str(s.get("create_time") or "-").replace("T", " ")
        cells = [
            _e(s["id"]),
            f"[{_state_style(s['state'])}]{_e(s['state_label'])}[/]",
            progress,
            _e((s.get("base_model") or "-").removeprefix("accounts/fireworks/models/")),
            _e(created[5:16] if len(created) >= 16 else created),
        ]
        if with_message:
            cells.append(_e((s.get("status_message") or "")[:80]))
        t.add_row(*cells)
    c.print_table(t)


def _reward_curve(client, job: dict) -> tuple[list | None, str | None]:
    """(per-epoch reward means, None) from the job's rollout records, or (None, why there are none).
    Never fails the command: the records are extra information."""
    from svgrft.errors import SvgrftError
    from svgrft.workflow.compare import job_epoch_status, job_reward_curve

    if not job_epoch_status(job)["slots"]:
        return None, "no epoch has started"
    try:
        curve = job_reward_curve(c.settings(), client, job)
    except SvgrftError as e:
        return None, f"not available: {e.message}"
    return curve["epochs"], None


def _curve_text(curve: list | None) -> str:
    if not curve:
        return ""
    return " · ".join(
        f"epoch {e['epoch']}: {e['mean']:.3f} (n={e['n']})" if e.get("mean") is not None else f"epoch {e['epoch']}: -"
        for e in curve
    )


@app.command("status")
@c.command
def status_cmd(job_id: str = JOB_ARG, json_out: bool = c.JSON_OPT) -> None:
    """Show one job: state, progress, models, dataset, evaluator, the mean reward per epoch (from the
    rollouts its evaluator recorded) and (if it failed) why."""
    from svgrft.workflow.jobs import failure_hint, get_job, job_summary

    client = _client()
    job = get_job(client, job_id)
    s = job_summary(job, client.account_id)
    s["reward_curve"], s["reward_curve_note"] = _reward_curve(client, job)
    if json_out:
        c.emit_json(s)
        return
    from rich.table import Table

    t = Table(title=f"RFT job {s['id']}", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    rows = [
        ("state", f"[{_state_style(s['state'])}]{_e(s['state_label'])}[/]"),
        ("epoch", _epoch_text(s)),
        ("progress", _fmt_pct(s)),
        ("status", s.get("status_message") or "-"),
        ("base model", s.get("base_model")),
        ("output model", s.get("output_model")),
        ("dataset", s.get("dataset")),
        ("eval dataset", s.get("evaluation_dataset")),
        ("evaluator", s.get("evaluator")),
        ("created", s.get("create_time")),
        ("completed", s.get("completed_time")),
        ("dashboard", s.get("dashboard_url")),
        ("mean reward", _curve_text(s["reward_curve"]) or s["reward_curve_note"]),
    ]
    for k, v in rows:
        if v:
            t.add_row(k, v if k == "state" else _e(v))
    c.print_table(t)
    if s["terminal"] and not s["succeeded"]:
        c.warn(f"job {s['id']} {s['state_label']}" + (f": {s['status_message']}" if s.get("status_message") else ""))
        c.info(f"hint: {failure_hint(s)}")


@app.command("watch")
@c.command
def watch_cmd(
    job_id: str = JOB_ARG,
    interval: Optional[float] = c.setting_option("train.poll_interval", "--interval", "-i", min=0.0),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0.0, help="Stop watching after this many seconds."),
    json_out: bool = c.JSON_OPT,
) -> None:
    """Follow a job with a progress bar until it ends.

    Exit 0 when it COMPLETED, 1 when it failed, was cancelled or expired (the status message and a
    hint are printed), 130 when you detach with Ctrl-C (the job keeps running)."""
    s = c.settings()
    from svgrft.clients.fireworks import make_client

    client = make_client(s)
    summary = render_watch(client, job_id, poll_interval=s.train.poll_interval, json_out=json_out, timeout=timeout)
    code = finish_watch(summary, json_out=json_out)
    if code:
        raise typer.Exit(code)


@app.command("cancel")
@c.command
def cancel_cmd(job_id: str = JOB_ARG, yes: bool = c.YES_OPT, json_out: bool = c.JSON_OPT) -> None:
    """Cancel a running job (asks first; --yes without a terminal)."""
    from svgrft.workflow.jobs import cancel_job, job_id_of

    jid = job_id_of(job_id)
    client = _client()
    c.confirm(f"cancel RFT job {jid}", yes)
    s = cancel_job(client, jid)
    if json_out:
        c.emit_json(s)
        return
    c.info(f"job {jid}: {s['state_label']}")
    c.out(s["name"] or jid)


@app.command("resume")
@c.command
def resume_cmd(
    job_id: str = JOB_ARG,
    watch: bool = typer.Option(False, "--watch", "-w", help="Watch the job after resuming it."),
    interval: Optional[float] = c.setting_option(
        "train.poll_interval", "--interval", "-i", min=0.0, note="With --watch:"
    ),
    json_out: bool = c.JSON_OPT,
) -> None:
    """Resume a FAILED, CANCELLED or PAUSED job."""
    from svgrft.workflow.jobs import resume_job

    s = c.settings()
    from svgrft.clients.fireworks import make_client

    client = make_client(s)
    summary = resume_job(client, job_id)
    if watch:
        summary = render_watch(client, summary["id"] or job_id, poll_interval=s.train.poll_interval, json_out=json_out)
        code = finish_watch(summary, json_out=json_out)
        if code:
            raise typer.Exit(code)
        return
    if json_out:
        c.emit_json(summary)
        return
    c.info(f"job {summary['id']}: {summary['state_label']} (follow it with `svgrft jobs watch {summary['id']}`)")
    c.out(summary["name"])
