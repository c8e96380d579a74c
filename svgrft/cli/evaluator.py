"""``svgrft evaluator build|test|stage``: the Eval Protocol evaluator Fireworks runs for every rollout."""

from __future__ import annotations

from typing import Any, Optional

import typer

from svgrft.cli import _common as c
from svgrft.core.plural import plural

app = typer.Typer(no_args_is_help=True, help="Build, test and upload the Eval Protocol evaluator.")

CONFIG_OPT = c.CONFIG_OPT


def _e(value: Any) -> str:
    from rich.markup import escape

    return escape(str(value))


def state_printer(prefix: str = "evaluator"):
    """An ``on_state(state, elapsed)`` callback: one stderr line per state change."""
    seen: list[str] = []

    def on_state(state: str, elapsed: float) -> None:
        if not seen or seen[-1] != state:
            seen.append(state)
            c.info(f"  {prefix}: {state} ({elapsed:.0f}s)")

    return on_state


def print_build_log(log: str) -> None:
    if not log:
        c.warn("no build log is available")
        return
    con = c.err_console()
    con.print("[bold]build log (tail):[/bold]")
    for line in log.strip().splitlines()[-60:]:
        con.print("  " + _e(line), highlight=False)


@app.command("build")
@c.command
def build(
    evaluator_id: Optional[str] = typer.Option(
        None, "--id", help="Exact evaluator id (default: evaluator.id + content hash)."
    ),
    force: bool = typer.Option(False, "--force", help="Delete and rebuild even if an evaluator with this id exists."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Return after the upload; do not wait for ACTIVE."),
    timeout: Optional[float] = c.setting_option("evaluator.timeout"),
    rollout_mode: Optional[str] = c.setting_option("rollout.mode"),
    rollout_server_url: Optional[str] = c.setting_option("rollout.server_url"),
    base_model: Optional[str] = c.setting_option("train.base_model", note="Policy model of the rollouts."),
    config: Optional[str] = CONFIG_OPT,
    json_out: bool = c.JSON_OPT,
) -> None:
    """Package the evaluator (scoring core + Eval Protocol test), upload it and wait until it is ACTIVE.

    Re-running with nothing changed is a no-op (one GET); any change (code, judge, rollout mode or
    parameters) builds a new evaluator. On BUILD_FAILED the build log is printed.
    """
    from svgrft.clients.fireworks import make_client
    from svgrft.workflow import evaluator_build as evw
    from svgrft.workflow.evaluator_bundle import check_rollout_server, require_server_url

    s = c.settings(config=config)
    require_server_url(s)
    if s.rollout.mode == "remote":
        check_rollout_server(s)
        c.info(f"✓ rollout server {s.rollout.server_url} is healthy")
    client = make_client(s)
    c.info(f"evaluator: {s.rollout.mode} rollouts, judge {s.judge.model} ({s.judge.mode})")
    try:
        built = evw.ensure_evaluator(
            client,
            s,
            evaluator_id=evaluator_id,
            force=force,
            wait=not no_wait,
            timeout=s.evaluator.timeout,
            on_status=lambda m: c.info(f"  {m}"),
            on_state=state_printer(),
        )
    except evw.EvaluatorBuildError as e:
        print_build_log(e.build_log)
        raise
    verb = "built" if built.created else "reused (unchanged)"
    c.info(f"✓ evaluator {built.name} {built.state}, {verb}")
    if json_out:
        c.emit_json(built.to_json())
    else:
        c.out(built.name)


@app.command("stage")
@c.command
def stage_cmd(
    directory: str = typer.Argument(
        ...,
        metavar="DIR",
        help="New folder (inside an existing one) or empty folder to write the "
        "evaluator into; a folder holding anything else is refused.",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an earlier staged evaluator in DIR (nothing else is ever deleted)."
    ),
    rollout_mode: Optional[str] = c.setting_option("rollout.mode"),
    rollout_server_url: Optional[str] = c.setting_option("rollout.server_url"),
    config: Optional[str] = CONFIG_OPT,
    json_out: bool = c.JSON_OPT,
) -> None:
    """Write the evaluator directory (what `build` uploads) without any network call, to inspect it."""
    from svgrft.workflow import evaluator_bundle as evw

    s = c.settings(config=config)
    staged = evw.stage(s, directory, overwrite=overwrite)
    info = {
        "path": str(staged.path),
        "files": staged.files,
        "content_hash": staged.content_hash,
        "evaluator_id": evw.evaluator_id_for(s, staged),
        "entry_point": staged.config["entry_point"],
        "rollout_mode": staged.mode,
    }
    if json_out:
        c.emit_json(info)
        return
    c.info(f"staged {plural(len(staged.files), 'file')} in {staged.path}, content sha256 {staged.content_hash[:16]}…")
    for f in staged.files:
        c.out(f)


@app.command("test")
@c.command
def test_cmd(
    rows: int = typer.Option(2, "--rows", "-n", help="Dataset rows to roll out and score (0 = all)."),
    runs: int = typer.Option(1, "--runs", help="Rollouts per row (the job uses train.n)."),
    dataset: Optional[str] = c.setting_option("dataset.train", note="Rows to roll out and score:"),
    min_score: float = typer.Option(
        0.0, "--min-score", help="Fail when the mean score is below this (0 = only require valid scores)."
    ),
    rollout_mode: Optional[str] = c.setting_option("rollout.mode"),
    rollout_server_url: Optional[str] = c.setting_option("rollout.server_url"),
    base_model: Optional[str] = c.setting_option("train.base_model", note="Policy model of the rollouts."),
    keep: Optional[str] = typer.Option(
        None,
        "--keep",
        help="Keep the staged evaluator in this new or empty directory (an evaluator kept there before is replaced).",
    ),
    timeout: Optional[float] = c.setting_option("evaluator.timeout"),
    config: Optional[str] = CONFIG_OPT,
    json_out: bool = c.JSON_OPT,
) -> None:
    """Run the staged evaluator through Eval Protocol's own pytest harness (a subprocess, no Docker).

    The pre-flight `ep local-test` does: real rollouts against the configured policy endpoint (local
    mode) or rollout server (remote mode), real rendering and judge calls, nothing uploaded.
    """
    from svgrft.workflow import evaluator_harness as evw
    from svgrft.workflow.evaluator_bundle import require_server_url

    if rows < 0 or runs < 1:
        raise typer.BadParameter("--rows must be >= 0 and --runs >= 1")
    s = c.settings(config=config)
    require_server_url(s)
    where = s.rollout.server_url if s.rollout.mode == "remote" else s.fireworks.inference_base_url
    c.info(
        f"evaluator test: {s.rollout.mode} rollouts via {where}, "
        f"{plural(rows, 'row') if rows else 'all rows'} × {plural(runs, 'run')}, "
        f"judge {s.judge.model} ({s.judge.mode})"
    )
    result = evw.run_local_test(
        s,
        rows=rows,
        runs=runs,
        dataset=s.dataset.train,
        timeout=s.evaluator.timeout,
        keep_dir=keep,
        threshold=min_score if min_score > 0 else None,
    )
    valid = [r for r in result.rows if r.get("is_score_valid")]
    problem = None
    if not result.ok:
        problem = f"the evaluator test failed (pytest exit {result.returncode})"
    elif not result.rows:
        problem = "the evaluator test produced no scored rows"
    elif not valid:
        problem = (
            "no rollout got a valid score: " + "; ".join(sorted({str(r.get("reason")) for r in result.rows}))[:300]
        )
    if json_out:
        data = result.to_json()
        data["ok"] = problem is None
        data["problem"] = problem
        c.emit_json(data)
    else:
        _print_rows(result)
    if problem:
        tail = "\n".join(result.output_tail.strip().splitlines()[-40:])
        if tail and not json_out:
            c.err_console().print("[bold]harness output (tail):[/bold]")
            c.err_console().print(_e(tail), highlight=False)
        from svgrft.errors import SvgrftError

        raise SvgrftError(
            problem,
            hint="fix the cause shown above; `--keep DIR` keeps the staged evaluator to rerun "
            "`python -m pytest test_svgrft_eval.py` there",
        )
    agg = (result.summary or {}).get("agg_score")
    c.info(
        f"✓ evaluator test passed: {len(valid)}/{len(result.rows)} valid scores"
        + (f", mean {agg:.3f}" if isinstance(agg, (int, float)) else "")
        + f" ({result.duration_s:.1f}s)"
    )


def _print_rows(result) -> None:
    from rich.table import Table

    t = Table(title=f"evaluator test ({result.mode} rollouts)")
    for col in ("row", "run", "score", "valid", "reason"):
        t.add_column(col, overflow="fold")
    for r in result.rows:
        score = r.get("score")
        t.add_row(
            _e(r.get("row_id") or "-"),
            _e(r.get("run_id") or "-"),
            f"{score:.3f}" if isinstance(score, (int, float)) else "-",
            "yes" if r.get("is_score_valid") else "no",
            _e(r.get("reason") or ""),
        )
    c.print_table(t)
