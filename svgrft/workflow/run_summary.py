"""What a stored evaluation run amounts to: its summary (score with a confidence interval, counts, gates,
the requirements missed most, judge and token use) and its HTML report. Reads the local store only."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from svgrft.errors import SvgrftError

__all__ = ["summarize_run", "gate_counts", "write_run_report"]


def _row_count(path: str, limit: int | None) -> int | None:
    """Rows of the dataset a run used (its first ``limit``); None when the file is gone or has no rows."""
    from svgrft.core.dataset import load_dataset, resolve_path

    p = resolve_path(path)
    if not p.is_file():
        return None
    n = len(load_dataset(p))
    n = min(n, int(limit)) if limit else n
    return n or None


def gate_counts(samples: list[Any]) -> dict[str, dict[str, int]]:
    """Per gate, in scoring order (every gate, also those that never fired): ``stopped`` = samples it ended
    before the judge (score 0, no judge call), ``penalised`` = judged samples whose score it reduced
    (``text_heavy`` with ``judge.text_penalty`` below 1)."""
    from svgrft.core.gates import GATES

    out = {g: {"stopped": 0, "penalised": 0} for g in GATES}
    for s in samples:
        if not s.gate:
            continue
        slot = out.setdefault(s.gate, {"stopped": 0, "penalised": 0})
        judged = bool(s.judge_calls) or bool(s.judge_cached)
        slot["penalised" if judged else "stopped"] += 1
    return out


def summarize_run(store: Any, run_id: str, worst: int = 8) -> dict[str, Any]:
    """Summary of everything stored for a run (all invocations)."""
    from svgrft.core.stats import mean_ci

    run = store.get_run(run_id)
    samples = store.samples(run.id)
    cfg = run.config or {}
    rows_n = cfg.get("rows") or 0
    expected = None
    if cfg.get("samples"):
        try:
            n_rows = _row_count(cfg["dataset"], rows_n or None) if cfg.get("dataset") else 0
            expected = None if n_rows is None else n_rows * int(cfg["samples"])
        except SvgrftError:
            expected = None
    done = [s for s in samples if s.status == "done"]
    valid = [s for s in done if s.is_valid and s.score is not None]
    ci = mean_ci([s.score for s in valid])
    gates = Counter(s.gate for s in done if s.gate)
    gate_stops = gate_counts(done)
    flags = Counter(f for s in done for f in s.flags)
    # "kind: detail" → kind; split on ": " so that a URL in the reason ("… at http://host:1/v1") stays whole
    reasons_invalid = Counter((s.reason or "").split(": ")[0][:60] for s in samples if not s.is_valid)
    hits: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    texts: dict[tuple[str, int], str] = {}
    for s in valid:
        for v in s.verdicts:
            key = (s.row_id, int(v.get("index", 0)))
            hits[key][0] += 1 if v.get("fulfilled") else 0
            hits[key][1] += 1
            texts[key] = str(v.get("requirement", ""))
    per_req = [
        {"row_id": k[0], "index": k[1], "requirement": texts[k], "hits": h, "n": n, "rate": h / n if n else 0.0}
        for k, (h, n) in hits.items()
    ]
    per_req = [d for d in per_req if d["rate"] < 1.0]
    per_req.sort(key=lambda d: (d["rate"], -d["n"], d["row_id"], d["index"]))
    judged = sum(1 for s in done if s.judge_calls > 0 and not s.judge_cached)
    cached = sum(1 for s in done if s.judge_cached)

    def tok(part: str, key: str) -> int:
        return sum(int(((s.usage or {}).get(part) or {}).get(key, 0) or 0) for s in samples)

    by_row: dict[str, list[float]] = defaultdict(list)
    for s in valid:
        by_row[s.row_id].append(float(s.score))
    return {
        "run_id": run.id,
        "status": run.status,
        "model": run.model,
        "dataset": run.dataset,
        "judge_model": run.judge_model,
        "judge_mode": run.judge_mode,
        "created_at": run.created_at,
        "config": cfg,
        "score": {"mean": ci.mean, "ci95_low": ci.low, "ci95_high": ci.high, "n": ci.n, "std": ci.std},
        "counts": {
            "expected": expected,
            "stored": len(samples),
            "done": len(done),
            "valid": len(valid),
            "invalid": sum(1 for s in done if not s.is_valid),
            "error": sum(1 for s in samples if s.status != "done"),
            "missing": max(0, (expected or 0) - len(done)) if expected is not None else 0,
        },
        "gates": dict(gates),
        "gate_stops": gate_stops,
        "flags": dict(flags),
        "invalid_reasons": dict(reasons_invalid.most_common(5)),
        "worst_requirements": per_req[:worst],
        "judge": {
            "judged": judged,
            "cached": cached,
            "requests": sum(s.judge_calls for s in samples),
            "gated": sum(g["stopped"] for g in gate_stops.values()),
        },
        "tokens": {
            "policy_prompt": tok("policy", "prompt_tokens"),
            "policy_completion": tok("policy", "completion_tokens"),
            "judge_prompt": tok("judge", "prompt_tokens"),
            "judge_completion": tok("judge", "completion_tokens"),
        },
        "rows": {k: sum(v) / len(v) for k, v in by_row.items()},
    }


def write_run_report(store: Any, run_id: str, out: str | Path | None = None) -> Path:
    """Write the HTML report of ``run_id`` (default ``reports/<run_id>.html``); returns the path."""
    from svgrft.core.report import run_report_html
    from svgrft.errors import StoreError

    run = store.get_run(run_id)
    summary = summarize_run(store, run.id)
    samples = store.samples(run.id, include_png=True)
    path = Path(out) if out else Path("reports") / f"{run.id}.html"
    if path.is_dir():
        path = path / f"{run.id}.html"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(run_report_html(summary, samples), encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        raise StoreError(
            f"cannot write the report {path}: {e.strerror or e}", hint="pass --output with a writable path"
        ) from None
    return path
