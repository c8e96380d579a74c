"""``svgrft runs list|show``: local evaluation runs stored under SVGRFT_HOME."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import typer

from svgrft.cli import _common as c
from svgrft.core.plural import plural, plural_word

app = typer.Typer(no_args_is_help=True, help="List and show local evaluation runs.")


def _when(ts: float | None) -> str:
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else ""


def _f(x: Any, d: int = 3) -> str:
    return "–" if x is None else f"{float(x):.{d}f}"


def gate_stops_text(stops: dict[str, Any]) -> str:
    """``no_svg 3 · render_failed 0 · blank 1 · injection 0 · text_heavy 2 (+1 penalised)``."""
    parts = []
    for gate, n in stops.items():
        pen = int(n.get("penalised", 0)) if isinstance(n, dict) else 0
        stopped = int(n.get("stopped", 0)) if isinstance(n, dict) else int(n)
        parts.append(f"{gate} {stopped}" + (f" (+{pen} penalised)" if pen else ""))
    return " · ".join(parts)


def print_summary(summary: dict[str, Any], *, title: str | None = None) -> None:
    """The end-of-eval summary (stdout): score with CI, counts, gates, judge calls, tokens, worst requirements."""
    from rich.table import Table

    sc, n, j, tk = summary["score"], summary["counts"], summary["judge"], summary["tokens"]
    t = Table(title=title or f"Run {summary['run_id']}", show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    t.add_row("model", str(summary.get("model")))
    t.add_row("dataset", str(summary.get("dataset")))
    t.add_row("judge", f"{summary.get('judge_model')} ({summary.get('judge_mode')})")
    t.add_row("status", str(summary.get("status")))
    t.add_row(
        "mean score",
        f"{_f(sc['mean'])}  95% CI [{_f(sc['ci95_low'])}, {_f(sc['ci95_high'])}]  "
        f"(n={sc['n']} valid {plural_word(sc['n'], 'sample')})",
    )
    expected = n.get("expected")
    t.add_row(
        "samples",
        f"{n['done']} done{f' of {expected}' if expected is not None else ''}: "
        f"{n['valid']} valid, {n['invalid']} invalid; {plural(n['error'], 'error')}",
    )
    stops = summary.get("gate_stops")
    if stops:
        t.add_row("stopped by gate", gate_stops_text(stops))
    else:  # a summary from before per-gate counts
        gates = summary.get("gates") or {}
        t.add_row("gates", ", ".join(f"{k} {v}" for k, v in sorted(gates.items())) or "none fired")
    flags = summary.get("flags") or {}
    if flags:
        t.add_row("flags", ", ".join(f"{k} {v}" for k, v in sorted(flags.items())))
    if summary.get("invalid_reasons"):
        t.add_row("invalid", "; ".join(f"{k} ×{v}" for k, v in summary["invalid_reasons"].items()))
    t.add_row(
        "judge calls",
        f"{j['judged']} judged, {j['cached']} from cache, {j['gated']} gated ({j['requests']} HTTP requests)",
    )
    t.add_row(
        "tokens",
        f"policy {tk['policy_prompt']:,} in / {tk['policy_completion']:,} out; "
        f"judge {tk['judge_prompt']:,} in / {tk['judge_completion']:,} out",
    )
    inv = summary.get("invocation")
    if inv:
        t.add_row("this run", f"{plural(inv.get('processed', 0), 'sample')} in {inv.get('wall_s', 0):.1f} s")
    c.print_table(t)
    worst = summary.get("worst_requirements") or []
    if worst:
        w = Table(title="Least fulfilled requirements")
        for col in ("row", "#", "requirement", "hits"):
            w.add_column(col)
        for r in worst:
            req = r["requirement"]
            w.add_row(r["row_id"], str(r["index"]), req if len(req) <= 90 else req[:89] + "…", f"{r['hits']}/{r['n']}")
        c.print_table(w)


@app.command("list")
@c.command
def list_runs(
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="Show at most this many runs (newest first)."),
    json_out: bool = c.JSON_OPT,
) -> None:
    """List local evaluation runs, newest first."""
    from svgrft.core.store import Store

    with Store() as store:
        runs = store.list_runs(limit)
    if json_out:
        c.emit_json({"runs": [r.to_dict() for r in runs]})
        return
    if not runs:
        c.info("No runs yet: start one with `svgrft eval --model qwen3-0p6b`.")
        return
    from rich.table import Table

    # ids, dates, states and numbers are never cut (a user copies the run id); the model name folds instead.
    # The judge column only shows when the runs used different judges (it is in `svgrft runs show`).
    judges = {f"{r.judge_model} ({r.judge_mode})" for r in runs}
    t = Table(
        title="Local evaluation runs" + (f" (judge {next(iter(judges))})" if len(judges) == 1 else ""), pad_edge=False
    )
    t.add_column("run", no_wrap=True, min_width=max(len(r.id) for r in runs))
    t.add_column("created", no_wrap=True, min_width=11)
    t.add_column("status", no_wrap=True, min_width=max(len(r.status) for r in runs))
    t.add_column("model", overflow="fold", min_width=10)
    if len(judges) > 1:
        t.add_column("judge", overflow="fold", min_width=10)
    t.add_column("valid", no_wrap=True, justify="right", min_width=5)
    t.add_column("mean", no_wrap=True, justify="right", min_width=5)
    for r in runs:
        cells = [
            r.id,
            _dt.datetime.fromtimestamp(r.created_at).strftime("%m-%d %H:%M") if r.created_at else "",
            r.status,
            r.model.removeprefix("accounts/fireworks/models/"),
        ]
        if len(judges) > 1:
            cells.append(f"{r.judge_model} ({r.judge_mode})")
        t.add_row(*cells, f"{r.n_valid}/{r.n_done}", _f(r.mean_score))
    c.print_table(t)


@app.command("show")
@c.command
def show(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix or 'latest' works)."),
    samples: bool = typer.Option(False, "--samples", help="Also list every sample."),
    json_out: bool = c.JSON_OPT,
) -> None:
    """Show a run's summary (and optionally its samples)."""
    from svgrft.core.store import Store
    from svgrft.workflow.run_summary import summarize_run

    with Store() as store:
        run = store.get_run(run_id)
        summary = summarize_run(store, run.id)
        rows = store.samples(run.id) if samples or json_out else []
    if json_out:
        data = dict(summary)
        if samples:
            data["samples"] = [s.to_dict() for s in rows]
        c.emit_json(data)
        return
    print_summary(summary)
    if samples:
        from rich.table import Table

        t = Table(title="Samples")
        for col in ("row", "#", "status", "score", "valid", "gate", "flags", "reason"):
            t.add_column(col)
        for s in rows:
            reason = s.reason if len(s.reason) <= 80 else s.reason[:79] + "…"
            t.add_row(
                s.row_id,
                str(s.sample_index),
                s.status,
                _f(s.score, 2),
                "yes" if s.is_valid else "no",
                s.gate or "",
                ",".join(s.flags),
                reason,
            )
        c.print_table(t)
