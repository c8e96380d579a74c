"""``svgrft report RUN_ID``: one self-contained HTML file for a local run."""

from __future__ import annotations

from typing import Optional

import typer

from svgrft.cli import _common as c
from svgrft.core.plural import plural


@c.command
def cmd(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix or 'latest' works)."),
    output: Optional[str] = typer.Option(
        None, "--output", "-o", help="HTML file (or directory) to write. Default: reports/RUN_ID.html."
    ),
    json_out: bool = c.JSON_OPT,
) -> None:
    """Write a self-contained HTML report (images inline, sortable by score, verdicts and SVG source)."""
    from svgrft.core.store import Store
    from svgrft.workflow.run_summary import write_run_report

    with Store() as store:
        run = store.get_run(run_id)
        path = write_run_report(store, run.id, output)
        n = len(store.done_keys(run.id))
    if json_out:
        c.emit_json({"run_id": run.id, "path": str(path), "samples": n, "bytes": path.stat().st_size})
        return
    c.info(f"Wrote the report of {run.id} ({plural(n, 'sample')}).")
    c.out(str(path))
