"""``svgrft render``: SVG files, folders of them, or JSONL model replies → PNG files (headless Chromium).

Parses options and prints; collecting the inputs, naming the outputs and rendering them is
:mod:`svgrft.workflow.render_files` (its docstring states the naming and overwrite contract).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from svgrft.cli import _common as c
from svgrft.core.plural import plural, plural_word


@c.command
def cmd(
    inputs: list[Path] = typer.Argument(
        ...,
        help="SVG files, folders of SVG files, or JSONL files of model replies "
        "(reply/text/content field or EvaluationRow messages).",
        show_default=False,
    ),
    out: Path = typer.Option(Path("renders"), "--out", "-o", help="Output folder for the PNG files."),
    size: Optional[int] = typer.Option(
        None,
        "--size",
        min=16,
        max=4096,
        help="Scale so the longest side is SIZE px (default: the SVG's own size, clamped to render.max_side).",
    ),
    concurrency: Optional[int] = c.setting_option("render.pool_size", "-j", min=1, max=16),
    chromium: Optional[str] = c.setting_option("render.chromium"),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace PNGs left in --out by an earlier run (default: stop if any target exists)."
    ),
    json_out: bool = c.JSON_OPT,
) -> None:
    """Render SVG files or model replies to PNG with the same hardened renderer the reward uses.

    Output names mirror the input tree under --out and keep each input's file name (a/x.svg →
    OUT/a/x.svg.png, line 12 of r.jsonl → OUT/r.jsonl-00012.png), so they never collide."""
    import asyncio
    import time

    from svgrft.core.render import Renderer
    from svgrft.errors import UsageError
    from svgrft.workflow import render_files as rf

    settings = c.settings()
    c.check_chromium_setting(settings)
    files = rf.collect(list(inputs), c.warn)
    if not files:
        raise UsageError("nothing to render", hint="the folders given contain no .svg files")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder", hint="choose another --out")
    targets = rf.plan_targets(files, out)
    rf.check_targets(targets, out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    r = settings.render
    pool = r.pool_size
    renderer = Renderer(
        pool_size=pool,
        size=size,
        default_size=r.size,
        max_side=r.max_side,
        timeout_ms=r.timeout_ms,
        chromium_path=r.chromium or None,
    )
    total = len(targets)

    progress = None
    task = None
    if not c.state.quiet:
        progress = c.counted_progress("render")
    counts = {"ok": 0, "failed": 0}

    def on_done(row: dict) -> None:
        counts["ok" if row["ok"] else "failed"] += 1
        if row["error_kind"] == "bad_line":
            c.warn(f"{row['source']}: skipped: {row['reason']}")
        else:
            c.debug(f"{row['source']}: {'ok' if row['ok'] else row['error_kind'] + ': ' + str(row['reason'])}")
        if progress is not None and task is not None:
            progress.update(task, advance=1, info=f"{counts['ok']} ok, {counts['failed']} failed")

    async def run() -> tuple[list[dict], float]:
        await renderer.start()
        try:
            t0 = time.perf_counter()
            rows = await rf.render_items(
                rf.read_items(files, renderer.max_bytes), out, renderer, pool, on_done, overwrite
            )
            return rows, time.perf_counter() - t0
        finally:
            await renderer.close()

    if progress is not None:
        progress.start()
        task = progress.add_task("render", total=total, info="")
    try:
        rows, seconds = asyncio.run(run())
    finally:
        if progress is not None:
            progress.stop()

    rows.sort(key=lambda r: r["name"])
    summary = rf.summarize(rows, seconds, out)
    if json_out:
        c.emit_json({**summary, "results": rows})
    else:
        from rich.table import Table

        t = Table(title=f"svgrft render → {out}")
        t.add_column("result")
        t.add_column("count", justify="right")
        t.add_row("rendered", str(summary["rendered"]))
        for kind, n in summary["failed"].items():
            t.add_row(f"failed: {kind}", str(n))
        rps = summary["renders_per_second"]
        t.add_row("renders per second", f"{rps:.1f}" if rps is not None else "-")
        c.print_table(t)
        for r in rows:
            if not r["ok"] and r["error_kind"] != "bad_line":
                c.info(f"{r['source']}: {r['error_kind']}: {r['reason']}")
    if rows and summary["rendered"] == 0:
        from svgrft.errors import SvgrftError

        raise SvgrftError(
            "the input did not render" if len(rows) == 1 else f"none of the {plural(len(rows), 'input')} rendered",
            hint="see the reasons above (no_svg: the reply has no complete <svg>…</svg>)",
        )
    failed = sum(1 for r in rows if not r["ok"])
    if failed:  # a partial failure exits 1 (as `svgrft eval` does), after the results are out
        from svgrft.errors import SvgrftError

        raise SvgrftError(
            f"{failed} of {plural(len(rows), 'input')} did not render; "
            f"{plural(summary['rendered'], 'PNG')} {plural_word(summary['rendered'], 'is', 'are')} in {out}",
            hint="see the reasons above (no_svg: the reply has no complete <svg>…</svg>)",
        )
