"""Rollout records: what the evaluator writes for every rollout it scores, and how it is read back.

Pure logic, no I/O (the gateway calls are in :mod:`svgrft.clients.gatewaylog`).

The convention (documented in the README, "compare-epochs"):

* channel: the tracing gateway's log endpoint, ``POST /logs`` (eval-protocol's own channel from
  inside evaluators), read back with ``GET /logs?tags=…&tags=…`` (all tags must match);
* ``program`` = ``svgrft``; tags ``svgrft:rollout``, ``svgrft_eval:<key>`` and ``svgrft_row:<row id>``,
  where ``<key>`` is the first 16 hex digits of the evaluator's content hash (the same hash svgrft
  stores as the evaluator's ``commitHash``, so compare-epochs finds the key from the job's evaluator),
  plus ``rollout_id:<id>`` when eval-protocol gave the row one;
* ``extras.svgrft_record`` holds the record (:func:`build_record`): schema, row id, rollout id,
  invocation/experiment/run ids, time, policy model (the row's completion params, where the launcher
  names the policy of the moment), the extracted SVG (cut at :data:`SVG_CAP` characters, with
  ``svg_cut`` and ``svg_chars`` saying so), score, validity, gate, reason, per-requirement verdicts,
  judge model and mode.

One query per dataset row (``tags=svgrft_eval:<key>&tags=svgrft_row:<row>``) finds that row's
rollouts of every epoch. Records never hold a key: :func:`build_record` takes no credentials and the
recorder scrubs known secret values from the serialised body before sending.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PROGRAM",
    "SCHEMA",
    "SVG_CAP",
    "Record",
    "record_tags",
    "query_tags",
    "eval_key_from_commit",
    "build_record",
    "parse_entry",
    "parse_entries",
    "epoch_curve",
]

PROGRAM = "svgrft"
SCHEMA = 1
SVG_CAP = 32_000  # characters of SVG kept in one record (gateway log entries are not meant to be large)
KIND_TAG = "svgrft:rollout"
EVAL_TAG = "svgrft_eval"
ROW_TAG = "svgrft_row"
MAX_VERDICTS = 64
MAX_FIELD = 400
_KEY_RE = re.compile(r"^[0-9a-f]{16}$")
_COMMIT_RE = re.compile(r"sha256\.([0-9a-f]{16})")


def _clip(v: Any, n: int = MAX_FIELD) -> str | None:
    if v is None:
        return None
    s = v if isinstance(v, str) else str(v)
    return s[:n]


def eval_key_from_commit(commit_hash: str | None) -> str | None:
    """The record key (16 hex digits) in an svgrft ``commitHash`` (``svgrft-<ver>+sha256.<16 hex>``)."""
    if not isinstance(commit_hash, str):
        return None
    m = _COMMIT_RE.search(commit_hash)
    return m.group(1) if m else None


def record_tags(key: str, row_id: str, rollout_id: str | None = None) -> list[str]:
    tags = [KIND_TAG, f"{EVAL_TAG}:{key}", f"{ROW_TAG}:{row_id}"]
    if rollout_id:
        tags.append(f"rollout_id:{rollout_id}")
    return tags


def query_tags(key: str, row_id: str) -> list[str]:
    """The tags of the one query that finds every record of ``row_id`` written by evaluator ``key``."""
    return [f"{EVAL_TAG}:{key}", f"{ROW_TAG}:{row_id}"]


def build_record(
    *,
    row_id: str,
    rollout_id: str | None,
    time_s: float,
    policy_model: str | None,
    svg: str | None,
    score: float,
    is_valid: bool,
    gate: str | None,
    reason: str,
    verdicts: list[dict],
    judge_model: str,
    judge_mode: str,
    ids: dict[str, str] | None = None,
    fulfilled: int = 0,
    total: int = 0,
) -> dict[str, Any]:
    """The record of one scored rollout (JSON-ready). The SVG is cut at :data:`SVG_CAP` characters."""
    svg_chars = len(svg) if isinstance(svg, str) else 0
    cut = svg_chars > SVG_CAP
    vs = []
    for v in (verdicts or [])[:MAX_VERDICTS]:
        if isinstance(v, dict):
            vs.append(
                {
                    "index": v.get("index"),
                    "fulfilled": bool(v.get("fulfilled")),
                    "evidence": _clip(v.get("evidence"), 300) or "",
                }
            )
    rec: dict[str, Any] = {
        "schema": SCHEMA,
        "row_id": _clip(row_id, 200),
        "rollout_id": _clip(rollout_id, 200),
        "time": float(time_s),
        "policy_model": _clip(policy_model, 300),
        "score": float(score),
        "is_valid": bool(is_valid),
        "gate": _clip(gate, 40),
        "reason": _clip(reason),
        "fulfilled": int(fulfilled),
        "total": int(total),
        "verdicts": vs,
        "judge_model": _clip(judge_model, 200),
        "judge_mode": _clip(judge_mode, 40),
        "svg": svg[:SVG_CAP] if isinstance(svg, str) else None,
        "svg_cut": cut,
        "svg_chars": svg_chars,
    }
    for k, v in (ids or {}).items():
        if k in ("invocation_id", "experiment_id", "run_id") and v:
            rec[k] = _clip(v, 200)
    return rec


# --------------------------------------------------------------------------------------- reading
@dataclass
class Record:
    """One record read back from the gateway, validated."""

    row_id: str
    rollout_id: str | None
    time: float  # seconds since the epoch: the gateway's entry time when it has one, else the record's
    policy_model: str | None
    score: float
    is_valid: bool
    gate: str | None
    reason: str
    verdicts: list[dict]
    judge_model: str
    judge_mode: str
    svg: str | None
    svg_cut: bool = False
    svg_chars: int = 0
    fulfilled: int = 0
    total: int = 0
    invocation_id: str | None = None
    experiment_id: str | None = None
    run_id: str | None = None
    extra: dict = field(default_factory=dict)


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _int(v: Any, default: int = 0) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**9 else default


def _str(v: Any, n: int = MAX_FIELD) -> str | None:
    return v[:n] if isinstance(v, str) else None


def parse_entry(entry: Any, *, key: str | None = None) -> tuple[Record | None, str | None]:
    """One ``GET /logs`` entry → (Record, None) or (None, why it was left out). Never raises."""
    from svgrft.core.traces import parse_time

    if not isinstance(entry, dict):
        return None, "not an object"
    tags = entry.get("tags") if isinstance(entry.get("tags"), list) else []
    if key and f"{EVAL_TAG}:{key}" not in tags:
        return None, "another evaluator"
    extras = entry.get("extras") if isinstance(entry.get("extras"), dict) else {}
    rec = extras.get("svgrft_record")
    if not isinstance(rec, dict):
        return None, "no svgrft record"
    if rec.get("schema") != SCHEMA:
        return None, "unknown record schema"
    row_id = _str(rec.get("row_id"), 200)
    score = _num(rec.get("score"))
    if not row_id:
        return None, "no row id"
    if score is None or not 0.0 <= score <= 1.0:
        return None, "no usable score"
    ts = parse_time(entry.get("timestamp"))
    if ts is None:
        ts = _num(rec.get("time"))
    if ts is None or ts <= 0:
        return None, "no usable time"
    verdicts = []
    raw_v = rec.get("verdicts")
    for v in (raw_v if isinstance(raw_v, list) else [])[:MAX_VERDICTS]:
        if isinstance(v, dict):
            verdicts.append(
                {
                    "index": _int(v.get("index"), 0),
                    "fulfilled": v.get("fulfilled") is True,
                    "evidence": _str(v.get("evidence"), 300) or "",
                }
            )
    svg = rec.get("svg") if isinstance(rec.get("svg"), str) else None
    if svg is not None and len(svg) > SVG_CAP:
        svg = svg[:SVG_CAP]
    return Record(
        row_id=row_id,
        rollout_id=_str(rec.get("rollout_id"), 200),
        time=float(ts),
        policy_model=_str(rec.get("policy_model"), 300),
        score=score,
        is_valid=rec.get("is_valid") is True,
        gate=_str(rec.get("gate"), 40),
        reason=_str(rec.get("reason")) or "",
        verdicts=verdicts,
        judge_model=_str(rec.get("judge_model"), 200) or "",
        judge_mode=_str(rec.get("judge_mode"), 40) or "",
        svg=svg,
        svg_cut=rec.get("svg_cut") is True,
        svg_chars=_int(rec.get("svg_chars"), len(svg or "")),
        fulfilled=_int(rec.get("fulfilled")),
        total=_int(rec.get("total")),
        invocation_id=_str(rec.get("invocation_id"), 200),
        experiment_id=_str(rec.get("experiment_id"), 200),
        run_id=_str(rec.get("run_id"), 200),
    ), None


def parse_entries(entries: Any, *, key: str | None = None) -> tuple[list[Record], dict[str, int]]:
    """Many entries → (records, reasons left out). Duplicates (same rollout id, same time) collapse."""
    out: list[Record] = []
    dropped: dict[str, int] = {}
    seen: set[tuple] = set()
    for e in entries if isinstance(entries, list) else []:
        r, why = parse_entry(e, key=key)
        if r is None:
            dropped[why or "unusable"] = dropped.get(why or "unusable", 0) + 1
            continue
        ident = (r.row_id, r.rollout_id, r.time) if r.rollout_id else (r.row_id, r.time, r.score, r.svg)
        if ident in seen:
            continue
        seen.add(ident)
        out.append(r)
    return out, dropped


# --------------------------------------------------------------------------------------- curve
def _stats(values: list[float]) -> dict[str, Any]:
    n = len(values)
    if not n:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None, "ci95": None}
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    std = math.sqrt(var)
    half = 1.96 * std / math.sqrt(n) if n > 1 else 0.0
    return {
        "n": n,
        "mean": mean,
        "std": std,
        "min": min(values),
        "max": max(values),
        "ci95": [max(0.0, mean - half), min(1.0, mean + half)],
    }


def epoch_curve(
    groups: list[list[Any]],
    steps: dict[int, list[tuple[str, list[float]]]] | None = None,
) -> list[dict[str, Any]]:
    """Mean reward per epoch (with spread) from ``groups[e]`` = the epoch's records (``.score``).

    ``steps[e]`` optionally lists (step label, rewards) inside epoch ``e``; each becomes
    ``{"step", "n", "mean"}`` under the epoch's ``steps``."""
    out = []
    for e, recs in enumerate(groups):
        d = {"epoch": e, **_stats([float(r.score) for r in recs])}
        d["valid"] = sum(1 for r in recs if getattr(r, "is_valid", True))
        if steps and steps.get(e) and len(steps[e]) > 1:
            d["steps"] = [
                {"step": label, **{k: v for k, v in _stats(vals).items() if k in ("n", "mean", "std")}}
                for label, vals in steps[e]
            ]
        out.append(d)
    return out
