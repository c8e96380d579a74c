"""Traces of an RFT job's rollouts, as the tracing gateway returns them — parsed, normalised, collapsed.

``parse_trace`` turns one gateway dict into a :class:`Trace`; hostile dicts (wrong types, junk timestamps,
huge strings) are dropped with a counted reason, never raised. Several traces with the same
``rollout_id`` (retries, multi-turn) collapse into one :class:`Rollout`: the longest conversation wins, as
in eval-protocol. :mod:`svgrft.core.epochs` then puts rollouts into epochs. Pure logic, no I/O.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "Trace",
    "Rollout",
    "parse_trace",
    "parse_traces",
    "parse_time",
    "format_time",
    "collapse_rollouts",
    "requirements_from_prompt",
]

ID_TAGS = ("rollout_id", "invocation_id", "experiment_id", "run_id", "row_id")
EPOCH_TAGS = ("epoch",)
STEP_TAGS = ("step", "train_step", "global_step")
MAX_TEXT = 2_000_000  # characters of one message kept (a reply longer than this is junk anyway)
MAX_MESSAGES = 200


# --------------------------------------------------------------------------------------- parsing
@dataclass(frozen=True)
class Trace:
    """One trace from ``/v1/traces/pointwise``, normalised."""

    trace_id: str
    row_id: str | None
    rollout_id: str | None
    timestamp: float | None  # seconds since the epoch (UTC)
    tags: dict[str, str]  # "key:value" tags, first value per key
    messages: tuple[dict, ...]  # [{"role", "content"(str)}]
    reward: float | None = None  # a training reward recorded with the trace, if any
    epoch_tag: int | None = None
    step_tag: int | None = None

    @property
    def reply(self) -> str | None:
        """Text of the last assistant message (where the SVG is)."""
        for m in reversed(self.messages):
            if m.get("role") == "assistant":
                return m.get("content") or ""
        return None

    @property
    def prompt(self) -> str | None:
        """Text of the first user message."""
        for m in self.messages:
            if m.get("role") == "user":
                return m.get("content") or ""
        return None


def parse_time(value: Any) -> float | None:
    """RFC 3339 / ISO 8601 string, or a number of seconds (or milliseconds) → epoch seconds; junk → None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        v = float(value)
        if not math.isfinite(v) or v <= 0:
            return None
        if v > 1e14:  # microseconds
            v /= 1e6
        elif v > 1e11:  # milliseconds
            v /= 1e3
        return v
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    s = value.strip()
    try:
        return parse_time(float(s))
    except ValueError:
        pass
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    # Python 3.11 accepts up to 6 fractional digits; trim nanoseconds.
    s = re.sub(r"(\.\d{6})\d+", r"\1", s)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def format_time(ts: float | None) -> str:
    if ts is None:
        return "?"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content[:MAX_TEXT]
    if isinstance(content, list):  # OpenAI content parts
        parts = []
        for p in content[:MAX_MESSAGES]:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and isinstance(p.get("text"), str):
                parts.append(p["text"])
        return "".join(parts)[:MAX_TEXT]
    return ""


def _messages(data: Any) -> list[dict]:
    """Messages out of a trace input/output in the shapes the gateway uses."""
    if isinstance(data, dict):
        if isinstance(data.get("messages"), list):
            return _messages(data["messages"])
        if isinstance(data.get("choices"), list):
            out = []
            for ch in data["choices"][:1]:
                if isinstance(ch, dict) and isinstance(ch.get("message"), dict):
                    out += _messages([ch["message"]])
            return out
        if isinstance(data.get("role"), str):
            return _messages([data])
        return []
    if isinstance(data, list):
        out = []
        for m in data[:MAX_MESSAGES]:
            if isinstance(m, dict) and isinstance(m.get("role"), str):
                out.append({"role": m["role"][:32], "content": _text(m.get("content"))})
        return out
    return []


def _tags(raw: Any) -> tuple[dict[str, str], list[str]]:
    tags: dict[str, str] = {}
    plain: list[str] = []
    if not isinstance(raw, list):
        return tags, plain
    for t in raw[:500]:
        if not isinstance(t, str) or len(t) > 1000:
            continue
        plain.append(t)
        if ":" in t:
            k, v = t.split(":", 1)
            tags.setdefault(k.strip(), v.strip())
    return tags, plain


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,9}\s*", value):
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    if isinstance(value, str):
        try:
            v = float(value)
        except ValueError:
            return None
        return v if math.isfinite(v) else None
    return None


def _reward(d: dict) -> float | None:
    scores = d.get("scores")
    if isinstance(scores, list):
        for s in scores:
            if isinstance(s, dict) and str(s.get("name", "")).lower() in ("reward", "score", "evaluation_result"):
                v = _float(s.get("value"))
                if v is not None:
                    return v
    elif isinstance(scores, dict):
        for k in ("reward", "score"):
            v = _float(scores.get(k))
            if v is not None:
                return v
    for holder in (d.get("metadata"), d.get("output") if isinstance(d.get("output"), dict) else None):
        if isinstance(holder, dict):
            for k in ("reward", "score"):
                v = _float(holder.get(k))
                if v is not None:
                    return v
            ev = holder.get("evaluation_result")
            if isinstance(ev, dict):
                v = _float(ev.get("score"))
                if v is not None:
                    return v
    return None


_TIME_FIELDS = ("timestamp", "start_time", "startTime", "createdAt", "created_at", "time")


def _timestamp(d: dict) -> float | None:
    for k in _TIME_FIELDS:
        if k in d:
            ts = parse_time(d.get(k))
            if ts is not None:
                return ts
    obs = d.get("observations")
    if isinstance(obs, list):
        times = [
            parse_time(o.get("start_time") or o.get("startTime")) for o in obs[:MAX_MESSAGES] if isinstance(o, dict)
        ]
        times = [t for t in times if t is not None]
        if times:
            return min(times)
    return None


def parse_trace(d: Any) -> tuple[Trace | None, str | None]:
    """One raw trace dict → (Trace, None) or (None, reason it was dropped)."""
    if not isinstance(d, dict):
        return None, "not an object"
    tags, _plain = _tags(d.get("tags"))
    msgs = _messages(d.get("input")) + _messages(d.get("output"))
    if not msgs:  # fallback as eval-protocol: the last GENERATION observation
        obs = d.get("observations")
        if isinstance(obs, list):
            gens = [o for o in obs[:MAX_MESSAGES] if isinstance(o, dict) and o.get("type") == "GENERATION"]
            gens.sort(key=lambda o: parse_time(o.get("start_time")) or 0.0)
            if gens:
                msgs = _messages(gens[-1].get("input")) + _messages(gens[-1].get("output"))
    trace_id = d.get("id")
    trace_id = str(trace_id)[:200] if isinstance(trace_id, (str, int)) and not isinstance(trace_id, bool) else ""
    row_id = tags.get("row_id") or None
    if not row_id:
        return None, "no row_id tag"
    ts = _timestamp(d)
    if ts is None:
        return None, "no usable timestamp"
    epoch = next((_int(tags[k]) for k in EPOCH_TAGS if k in tags), None)
    step = next((_int(tags[k]) for k in STEP_TAGS if k in tags), None)
    return Trace(
        trace_id=trace_id or f"{row_id}@{ts}",
        row_id=row_id[:200],
        rollout_id=(tags.get("rollout_id") or None),
        timestamp=ts,
        tags=tags,
        messages=tuple(msgs),
        reward=_reward(d),
        epoch_tag=epoch,
        step_tag=step,
    ), None


def parse_traces(raw: Iterable[Any]) -> tuple[list[Trace], Counter]:
    """Parse many; returns the traces (duplicates by id removed) and a Counter of drop reasons."""
    out: list[Trace] = []
    dropped: Counter = Counter()
    seen: set[str] = set()
    for d in raw:
        t, why = parse_trace(d)
        if t is None:
            dropped[why or "unparsable"] += 1
            continue
        if t.trace_id in seen:
            continue
        seen.add(t.trace_id)
        out.append(t)
    return out, dropped


# matched against stripped lines: "\s*…\s*$" around lazy groups backtracked quadratically on long blank runs
_REQ_HEADER = re.compile(r"requirements\s*:?", re.IGNORECASE)
_REQ_ITEM = re.compile(r"(\d{1,3})[.)]\s+(.+)")


def requirements_from_prompt(prompt: str | None) -> list[str]:
    """The numbered requirements of an SVGBench-style prompt ("Requirements:\\n1. …")."""
    if not prompt or not isinstance(prompt, str):
        return []
    lines = prompt[:200_000].splitlines()
    start = None
    for i, line in enumerate(lines):
        if _REQ_HEADER.fullmatch(line.strip()):
            start = i + 1
    if start is None:
        return []
    reqs = []
    for line in lines[start:]:
        m = _REQ_ITEM.fullmatch(line.strip())
        if m:
            reqs.append(m.group(2))
        elif line.strip() and reqs:
            break
    return reqs


# --------------------------------------------------------------------------------------- rollouts
@dataclass
class Rollout:
    """One rollout (row × sample × epoch): its final trace and where it was put."""

    rollout_id: str
    row_id: str
    timestamp: float  # of its first trace
    trace: Trace  # the longest conversation among its traces
    n_traces: int = 1
    epoch: int | None = None  # assigned epoch (0-based)
    time_epoch: int | None = None  # what timing alone said (cross-check)

    @property
    def reply(self) -> str | None:
        return self.trace.reply

    @property
    def reward(self) -> float | None:
        return self.trace.reward


def collapse_rollouts(traces: Sequence[Trace]) -> list[Rollout]:
    """Traces with the same (row_id, rollout_id) → one rollout; the longest conversation wins."""
    by_key: dict[tuple[str, str], list[Trace]] = defaultdict(list)
    for t in traces:
        key = (t.row_id or "", t.rollout_id or f"trace:{t.trace_id}")
        by_key[key].append(t)
    out = []
    for (row, rid), ts in by_key.items():
        best = max(ts, key=lambda t: (len(t.messages), t.reply is not None, t.timestamp or 0.0))
        first = min(t.timestamp for t in ts if t.timestamp is not None)
        out.append(Rollout(rollout_id=rid, row_id=row, timestamp=first, trace=best, n_traces=len(ts)))
    out.sort(key=lambda r: (r.row_id, r.timestamp, r.rollout_id))
    return out
