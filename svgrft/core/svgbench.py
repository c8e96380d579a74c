"""SVGBench questions → Eval Protocol rows, and their deterministic train/eval split.

The formatted prompt is SVGBench's generation prompt: the task, an instruction to answer in a
fenced ``svg`` block with a tiny example, and the numbered requirements. It reproduces the
Fireworks SVG quickstart dataset byte for byte.

Row ids: ``row_<i>`` where ``i`` is the 0-based position of the question in the source file
(``svgbench_questions.json``), unless the question carries its own ``"id"``. The quickstart file
numbers its 50 rows the same way, so the quickstart prompts keep their ids (``row_0`` … ``row_49``).
Ids never change when a file is split into train/eval: a row is the same row everywhere.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from svgrft.core.dataset import MAX_REQUIREMENTS, MAX_SOURCE_BYTES, ROW_ID_RE, DatasetRow, one_line_error
from svgrft.core.plural import plural
from svgrft.errors import DatasetError

__all__ = ["format_prompt", "build_rows", "load_questions", "split_rows"]

# --- the SVGBench generation prompt ------------------------------------------------------------

_EXAMPLE = (
    '```svg\n<svg viewBox="0 0 100 100" width="100" height="100">\n'
    '    <circle cx="50" cy="50" r="40" fill="red" />\n</svg>\n```'
)


def format_prompt(prompt: str, requirements: list[str]) -> str:
    """SVGBench's prompt: task + fenced-svg instruction and example + numbered requirements."""
    numbered = "\n".join(f"{i}. {r}" for i, r in enumerate(requirements, 1))
    return (
        f"{prompt} Wrap the SVG code in an SVG code block following the example below.\n\n"
        f"Example:\n{_EXAMPLE}\n\nRequirements:\n{numbered}"
    )


# --- build -------------------------------------------------------------------------------------


def _question_id(q: dict, index: int) -> str:
    raw = q.get("id")
    if raw is None or raw == "":
        return f"row_{index}"
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise DatasetError(
            f"question {index}: 'id' must be a string or an integer",
            hint="remove the id to get row_<index>, or make it a string",
        )
    rid = str(raw) if isinstance(raw, str) else f"row_{raw}"
    if not ROW_ID_RE.match(rid):
        raise DatasetError(
            f"question {index}: id {rid[:60]!r} is not a valid row id",
            hint="use 1-128 letters, digits, '.', '_' or '-' (ids appear in tracing URLs)",
        )
    return rid


def build_rows(questions: list[dict]) -> list[DatasetRow]:
    """One row per SVGBench question (``{"prompt", "requirements"[, "id"]}``), ids ``row_<index>``."""
    if not isinstance(questions, list):
        raise DatasetError(
            "questions must be a JSON list of {prompt, requirements}",
            hint="use the SVGBench format, e.g. datasets/svgbench_questions.json",
        )
    rows: list[DatasetRow] = []
    seen: dict[str, int] = {}
    for i, q in enumerate(questions):
        if not isinstance(q, dict):
            raise DatasetError(
                f"question {i}: expected an object, got {type(q).__name__}",
                hint='each question is {"prompt": str, "requirements": [str, ...]}',
            )
        prompt = q.get("prompt")
        reqs = q.get("requirements")
        if not isinstance(prompt, str) or not prompt.strip():
            raise DatasetError(f"question {i}: 'prompt' must be a non-empty string", hint="fix the source file")
        if not isinstance(reqs, list) or not reqs:
            raise DatasetError(f"question {i}: 'requirements' must be a non-empty list", hint="fix the source file")
        if len(reqs) > MAX_REQUIREMENTS:
            raise DatasetError(
                f"question {i}: {plural(len(reqs), 'requirement')} (limit {MAX_REQUIREMENTS})",
                hint="split the question or drop requirements",
            )
        for j, r in enumerate(reqs):
            if not isinstance(r, str) or not r.strip():
                raise DatasetError(
                    f"question {i}: requirement {j + 1} must be a non-empty string", hint="fix the source file"
                )
        rid = _question_id(q, i)
        if rid in seen:
            raise DatasetError(
                f"question {i}: duplicate id {rid!r} (also question {seen[rid]})", hint="ids must be unique"
            )
        seen[rid] = i
        formatted = format_prompt(prompt, reqs)
        rows.append(
            DatasetRow(
                row_id=rid,
                messages=[{"role": "user", "content": formatted}],
                prompt=formatted,
                requirements=list(reqs),
                original_prompt=prompt,
            )
        )
    return rows


def load_questions(path: str | Path) -> list[dict]:
    """SVGBench questions from a JSON file (a list, or ``{"questions": [...]}``)."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise DatasetError(
            f"cannot read questions file {p}: {e.strerror or e}",
            hint="pass an existing SVGBench questions JSON with --source",
        ) from None
    if size > MAX_SOURCE_BYTES:
        raise DatasetError(
            f"questions file {p} is {plural(size, 'byte')} (limit {MAX_SOURCE_BYTES})", hint="is this the right file?"
        )
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DatasetError(f"questions file {p} is not UTF-8 text", hint="pass a JSON file") from None
    except json.JSONDecodeError as e:
        raise DatasetError(
            f"questions file {p} is not valid JSON (line {e.lineno}: {e.msg})", hint="fix the JSON syntax"
        ) from None
    except (ValueError, RecursionError) as e:  # a 5000-digit number, or nesting deeper than Python's stack
        what = "nested too deeply" if isinstance(e, RecursionError) else one_line_error(e)
        raise DatasetError(f"questions file {p} is not valid JSON ({what})", hint="fix the JSON") from None
    if isinstance(data, dict) and isinstance(data.get("questions"), list):
        data = data["questions"]
    if not isinstance(data, list):
        raise DatasetError(
            f"questions file {p} must hold a JSON list of questions",
            hint='each question is {"prompt": str, "requirements": [str, ...]}',
        )
    return data


def split_rows(
    rows: list[DatasetRow], eval_fraction: float, seed: int = 0
) -> tuple[list[DatasetRow], list[DatasetRow]]:
    """Deterministic train/eval split (same rows, seed and fraction → same split).

    Rows sharing an ``original_prompt`` stay on the same side, so no prompt is in both sets.
    Each side keeps the source order. The eval side gets ``round(n * fraction)`` rows (give or
    take a group), at least one when the fraction is > 0 and there are ≥ 2 groups.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise DatasetError(f"eval fraction {eval_fraction} must be in [0, 1)", hint="e.g. --split eval=0.2")
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(r.original_prompt, []).append(i)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    target = round(len(rows) * eval_fraction)
    if eval_fraction > 0 and target == 0 and len(keys) >= 2:
        target = 1
    eval_idx: set[int] = set()
    for k in keys:
        if len(eval_idx) >= target:
            break
        if len(eval_idx) + len(groups[k]) > target and eval_idx and len(keys) > 1:
            continue  # a group that would overshoot: try smaller ones
        eval_idx.update(groups[k])
    if len(eval_idx) == len(rows) and rows:
        raise DatasetError("the eval split would take every row", hint="use a smaller eval fraction")
    train = [r for i, r in enumerate(rows) if i not in eval_idx]
    ev = [r for i, r in enumerate(rows) if i in eval_idx]
    return train, ev
