"""``svgrft dataset build/validate/upload``: SVGBench questions → Eval Protocol JSONL → Fireworks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from svgrft.cli import _common as c
from svgrft.core.plural import plural

app = typer.Typer(no_args_is_help=True, help="Build, validate and upload SVGBench datasets.")


def _e(value) -> str:
    from rich.markup import escape

    return escape(str(value))


def parse_split(text: str) -> float:
    """``eval=0.2`` (or ``0.2``, ``20%``) → 0.2."""
    from svgrft.errors import UsageError

    raw = text.strip()
    if "=" in raw:
        key, _, raw = raw.partition("=")
        if key.strip().lower() not in ("eval", "test"):
            raise UsageError(f"--split {text!r}: expected eval=<fraction>", hint="e.g. --split eval=0.2")
    try:
        value = float(raw.rstrip("%")) / (100.0 if raw.endswith("%") else 1.0)
    except ValueError:
        raise UsageError(f"--split {text!r}: {raw!r} is not a number", hint="e.g. --split eval=0.2") from None
    if not 0.0 < value < 1.0:
        raise UsageError(f"--split {text!r}: the eval fraction must be between 0 and 1", hint="e.g. --split eval=0.2")
    return value


def split_paths(out: Path) -> tuple[Path, Path]:
    """``datasets/svgbench.jsonl`` → ``datasets/svgbench_train.jsonl``, ``datasets/svgbench_eval.jsonl``."""
    return out.with_name(f"{out.stem}_train{out.suffix}"), out.with_name(f"{out.stem}_eval{out.suffix}")


@app.command("build")
@c.command
def build(
    source: Optional[Path] = typer.Option(
        None, "--source", "-s", help="SVGBench questions JSON (default: the bundled svgbench_questions.json)."
    ),
    out: Path = typer.Option(Path("datasets/svgbench.jsonl"), "--out", "-o", help="JSONL file to write (all rows)."),
    split: Optional[str] = typer.Option(
        None, "--split", help="Also write <out>_train/<out>_eval files, e.g. eval=0.2."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the deterministic train/eval split."),
    json_out: bool = c.JSON_OPT,
) -> None:
    """Write Eval Protocol rows (SVGBench generation prompt + requirements) from SVGBench questions.

    Row ids are row_<index in the questions file>, the numbering of the Fireworks quickstart dataset."""
    from svgrft.core.dataset import BUNDLED_QUESTIONS, content_hash, write_rows
    from svgrft.core.svgbench import build_rows, load_questions, split_rows
    from svgrft.errors import UsageError

    fraction = parse_split(split) if split else None
    src = source or BUNDLED_QUESTIONS
    if source is not None:
        c.require_file(source, "--source", "pass the SVGBench questions JSON (or drop --source for the bundled copy)")
    targets = [out, *split_paths(out)] if fraction is not None else [out]
    for t in targets:
        if t.is_dir():
            raise UsageError(
                f"--out {out}: {t} is a folder", hint="give a file path, e.g. --out datasets/svgbench.jsonl"
            )
    rows = build_rows(load_questions(src))
    outputs = [(out, rows)]
    if fraction is not None:
        train, ev = split_rows(rows, fraction, seed)
        tr_path, ev_path = split_paths(out)
        outputs += [(tr_path, train), (ev_path, ev)]
    files = []
    for path, rs in outputs:
        write_rows(rs, path)
        files.append({"path": str(path), "rows": len(rs), "sha256": content_hash(path)})
        c.info(f"wrote {path} ({plural(len(rs), 'row')})")
    result = {
        "source": str(src),
        "files": files,
        "split": None if fraction is None else {"eval_fraction": fraction, "seed": seed},
    }
    if json_out:
        c.emit_json(result)
        return
    from rich.table import Table

    t = Table(title=f"dataset build ({plural(len(rows), 'question')} from {_e(Path(src).name)})")
    for col in ("file", "rows", "sha256"):
        t.add_column(col)
    for f in files:
        t.add_row(_e(f["path"]), str(f["rows"]), f["sha256"][:12])
    c.print_table(t)


@app.command("validate")
@c.command
def validate(
    file: Path = typer.Argument(..., metavar="FILE", help="JSONL dataset to check."),
    max_errors: int = typer.Option(50, "--max-errors", min=1, help="Print at most this many problems."),
    json_out: bool = c.JSON_OPT,
) -> None:
    """Check every line: JSON, Eval Protocol row shape, requirements, duplicate row ids, size limits.

    Every problem is reported (file:line: what) in one pass; exit 1 if there is any."""
    from svgrft.core.dataset import content_hash, resolve_path, validate_file
    from svgrft.errors import DatasetError

    path = resolve_path(file)
    c.require_file(path, "dataset", "check the path (build the SVGBench files with `svgrft dataset build`)")
    report = validate_file(path)
    if json_out:
        data = report.to_json()
        if report.ok:
            data["sha256"] = content_hash(path)
        c.emit_json(data)
    else:
        con = c.err_console()
        for line in report.format_errors(max_errors):
            con.print(_e(line), soft_wrap=True)
        if report.error_count > max_errors:
            con.print(f"… and {report.error_count - max_errors} more")
        for ln, msg in report.warnings[:max_errors]:
            c.warn(f"{path}:{ln}: {msg}")
    if not report.ok:
        raise DatasetError(
            f"{plural(report.error_count, 'problem')} in {path} "
            f"({report.rows} valid of {plural(report.lines, 'line')})",
            hint="fix the lines listed above (rebuild SVGBench files with `svgrft dataset build`)",
        )
    if not json_out:
        c.out(f"{path}: OK, {plural(report.rows, 'row')}, {plural(report.size_bytes, 'byte')}")


@app.command("upload")
@c.command
def upload(
    file: Path = typer.Argument(..., metavar="FILE", help="JSONL dataset to upload (validated first)."),
    dataset_id: Optional[str] = typer.Option(
        None,
        "--id",
        help="Dataset id (default: <file stem>-<content hash>, reused if the same content was uploaded before).",
    ),
    timeout: float = typer.Option(600.0, "--timeout", min=0.0, help="Seconds to wait for the dataset to be READY."),
    poll_interval: float = typer.Option(2.0, "--poll-interval", min=0.0, help="Seconds between status polls."),
    json_out: bool = c.JSON_OPT,
) -> None:
    """Upload a dataset to Fireworks and wait until it is READY; prints its resource name.

    Idempotent: the same content maps to the same dataset (nothing is uploaded twice)."""
    from svgrft.clients.fireworks import make_client
    from svgrft.core.dataset import resolve_path, validate_file
    from svgrft.errors import DatasetError
    from svgrft.workflow.datasets import check_dataset_id, ensure_dataset

    path = resolve_path(file)
    c.require_file(path, "dataset", "check the path (build the SVGBench files with `svgrft dataset build`)")
    s = c.settings()
    ds_id = check_dataset_id(dataset_id) if dataset_id else None
    report = validate_file(path)  # before any network call
    if not report.ok:
        for line in report.format_errors(10):
            c.err_console().print(_e(line), soft_wrap=True)
        raise DatasetError(
            f"{path} is not a valid dataset ({plural(report.error_count, 'problem')}); nothing was uploaded",
            hint=f"run `svgrft dataset validate {path}` and fix the lines it lists",
        )
    client = make_client(s)
    result = ensure_dataset(
        client, path, ds_id, timeout=timeout, poll_interval=poll_interval, on_status=lambda m: c.info(m)
    )
    if json_out:
        c.emit_json(result.to_json())
        return
    c.info(
        ("created" if result.created else "reused") + f" dataset {result.dataset_id} "
        f"({plural(result.example_count, 'row')})"
    )
    c.out(result.name)
