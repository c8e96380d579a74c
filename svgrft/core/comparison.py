"""Before/after comparison: the data model and its statistics, and how its numbers are written.

Units: a *sample* is one scored reply (a rollout, or a fresh generation); a *prompt row* holds
the samples of one dataset row on each side. Statistics use the prompt as the unit (a row's
score on a side is the mean of its samples), so k samples of one prompt do not pass for k
independent observations. Pure logic; the HTML pages are :mod:`svgrft.core.compare_report`.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Sample",
    "PromptRow",
    "Comparison",
    "pick_rows",
    "PICKS",
    "TIE_EPS",
    "fmt_score",
    "fmt_delta",
    "fmt_ci",
    "short_prompt",
]

PICKS = ("best", "worst", "random", "all")
TIE_EPS = 1e-9


# --------------------------------------------------------------------------------------- model
@dataclass
class Sample:
    """One scored reply."""

    score: float | None  # 0..1 (invalid SVG → 0); None when scoring itself failed
    is_valid: bool = False
    reason: str = ""  # why invalid / why not scored
    fulfilled: int | None = None
    total: int | None = None
    verdicts: list[dict] = field(default_factory=list)  # {index, requirement, fulfilled, evidence}
    svg: str | None = None
    png: bytes | None = None
    reward: float | None = None  # training reward carried by the rollout, if any
    ref: str = ""  # rollout id / sample index
    judge_cached: bool = False
    timestamp: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "score": self.score,
            "is_valid": self.is_valid,
            "reason": self.reason,
            "fulfilled": self.fulfilled,
            "total": self.total,
            "training_reward": self.reward,
            "judge_cached": self.judge_cached,
            "verdicts": list(self.verdicts),
            "has_image": self.png is not None,
        }


def _mean(xs: Sequence[float]) -> float | None:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return math.fsum(xs) / len(xs) if xs else None


@dataclass
class PromptRow:
    row_id: str
    prompt: str
    requirements: list[str]
    before: list[Sample] = field(default_factory=list)
    after: list[Sample] = field(default_factory=list)
    note: str = ""

    def mean(self, side: str) -> float | None:
        return _mean([s.score for s in getattr(self, side) if s.score is not None])

    def reward_mean(self, side: str) -> float | None:
        return _mean([s.reward for s in getattr(self, side) if s.reward is not None])

    @property
    def delta(self) -> float | None:
        b, a = self.mean("before"), self.mean("after")
        return None if a is None or b is None else a - b

    @property
    def outcome(self) -> str | None:
        d = self.delta
        if d is None:
            return None
        return "win" if d > TIE_EPS else "loss" if d < -TIE_EPS else "tie"

    def representative(self, side: str) -> Sample | None:
        """The sample closest to the side's mean (honest: neither the best nor the worst draw)."""
        samples = [s for s in getattr(self, side)]
        if not samples:
            return None
        m = self.mean(side)
        scored = [s for s in samples if s.score is not None]
        if m is None or not scored:
            return samples[0]
        return min(scored, key=lambda s: (abs(s.score - m), -(s.png is not None)))

    def to_json(self) -> dict[str, Any]:
        return {
            "row_id": self.row_id,
            "prompt": self.prompt,
            "requirements": list(self.requirements),
            "before_mean": self.mean("before"),
            "after_mean": self.mean("after"),
            "delta": self.delta,
            "outcome": self.outcome,
            "before_reward_mean": self.reward_mean("before"),
            "after_reward_mean": self.reward_mean("after"),
            "note": self.note,
            "before": [s.to_json() for s in self.before],
            "after": [s.to_json() for s in self.after],
        }


@dataclass
class Comparison:
    title: str
    source: str  # tracing | replay | runs
    before_label: str  # "epoch 0", "base model qwen3-0p6b", "run r2025…"
    after_label: str
    rows: list[PromptRow]
    job_id: str | None = None
    findings: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # judge model, epochs, counts…

    def paired(self) -> list[PromptRow]:
        return [r for r in self.rows if r.delta is not None]

    def stats(self) -> dict[str, Any]:
        from svgrft.core.stats import mean_ci

        paired = self.paired()
        before = mean_ci([r.mean("before") for r in paired])
        after = mean_ci([r.mean("after") for r in paired])
        delta = mean_ci([r.delta for r in paired], clamp=(-1.0, 1.0))
        outcomes = [r.outcome for r in paired]
        rb = [r.reward_mean("before") for r in paired if r.reward_mean("before") is not None]
        ra = [r.reward_mean("after") for r in paired if r.reward_mean("after") is not None]
        ranked = sorted(paired, key=lambda r: (-(r.delta or 0.0), r.row_id))
        gains = [_brief(r) for r in ranked if (r.delta or 0) > TIE_EPS][:5]
        regress = [
            _brief(r) for r in sorted(paired, key=lambda r: ((r.delta or 0.0), r.row_id)) if (r.delta or 0) < -TIE_EPS
        ][:5]
        samples_b = [s for r in self.rows for s in r.before]
        samples_a = [s for r in self.rows for s in r.after]
        return {
            "prompts": len(self.rows),
            "paired_prompts": len(paired),
            "samples_before": len(samples_b),
            "samples_after": len(samples_a),
            "before": before.to_dict(),
            "after": after.to_dict(),
            "delta": delta.to_dict(),
            "wins": outcomes.count("win"),
            "ties": outcomes.count("tie"),
            "losses": outcomes.count("loss"),
            "valid_before": _frac([s.is_valid for s in samples_b]),
            "valid_after": _frac([s.is_valid for s in samples_a]),
            "unscored": sum(1 for s in samples_b + samples_a if s.score is None),
            "training_reward_before": _mean(rb),
            "training_reward_after": _mean(ra),
            "biggest_gains": gains,
            "biggest_regressions": regress,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "source": self.source,
            "job_id": self.job_id,
            "before_label": self.before_label,
            "after_label": self.after_label,
            "summary": self.stats(),
            "findings": list(self.findings),
            "warnings": list(self.warnings),
            "meta": dict(self.meta),
            "rows": [r.to_json() for r in self.rows],
        }


def _frac(flags: list[bool]) -> float | None:
    return sum(1 for f in flags if f) / len(flags) if flags else None


def _brief(r: PromptRow) -> dict[str, Any]:
    return {
        "row_id": r.row_id,
        "before": r.mean("before"),
        "after": r.mean("after"),
        "delta": r.delta,
        "prompt": short_prompt(r.prompt, 90),
    }


def pick_rows(cmp: Comparison, n: int, pick: str = "best", seed: int = 0) -> list[PromptRow]:
    """Rows for the contact sheet: biggest gains, biggest regressions, a seeded random draw, or all."""
    if pick not in PICKS:
        from svgrft.errors import UsageError

        raise UsageError(f"unknown --pick {pick!r}", hint="use one of: " + ", ".join(PICKS))
    paired = cmp.paired()
    if pick == "all":
        return list(cmp.rows)
    n = max(1, n)
    if pick == "best":
        return sorted(paired, key=lambda r: (-(r.delta or 0.0), -(r.mean("after") or 0.0), r.row_id))[:n]
    if pick == "worst":
        return sorted(paired, key=lambda r: ((r.delta or 0.0), (r.mean("after") or 0.0), r.row_id))[:n]
    rows = sorted(paired, key=lambda r: r.row_id)
    return sorted(random.Random(seed).sample(rows, min(n, len(rows))), key=lambda r: r.row_id)


# --------------------------------------------------------------------------------------- text
def fmt_score(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def fmt_delta(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:+.{digits}f}"


def fmt_ci(d: dict) -> str:
    if d.get("mean") is None:
        return "n/a"
    if d.get("low") is None:
        return f"{d['mean']:.3f} (n={d.get('n')})"
    return f"{d['mean']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"


_BOILERPLATE = re.compile(
    r"^write\s+`?svg`?\s+code\s+(?:to\s+draw|for|of|that\s+draws)\s+"
    r"(?:(?:an?\s+)?(?:image|picture|drawing|illustration|screenshot)\s+of\s+)?",
    re.IGNORECASE,
)


def short_prompt(prompt: str, limit: int = 140) -> str:
    """The first sentence of an SVGBench prompt without the boilerplate."""
    p = (prompt or "").strip()
    for cut in ("Wrap the SVG code", "\n\nExample", "\n\nRequirements"):
        i = p.find(cut)
        if i > 0:
            p = p[:i]
    p = " ".join(p.split())
    m = _BOILERPLATE.match(p)
    if m and m.end() < len(p):
        p = p[m.end() :]
        p = p[:1].upper() + p[1:]
    return p if len(p) <= limit else p[: limit - 1].rstrip() + "…"
