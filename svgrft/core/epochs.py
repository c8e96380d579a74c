"""Which rollout of an RFT job belongs to which epoch — pure logic, no I/O.

The public Fireworks API has no "rollouts of epoch N" call; the rollouts are traces on the
tracing gateway, tagged ``rollout_id``, ``invocation_id``, ``experiment_id``, ``run_id`` and
``row_id`` but (as far as anyone knows) not with the epoch. The fact this module relies on:

    in every epoch each dataset row is rolled out the same number of times (``k``, the job's
    ``responseCandidatesCount``), so one row's rollouts sorted by time split into equal groups —
    the first group is the first epoch, the last group the last epoch.

How a row is split (``RowEpochs.method``):

``equal``   the row has exactly ``k`` rollouts per epoch: cut every ``k`` (the normal case);
``windows`` the row is irregular (a rollout is missing, one is extra): each rollout goes to the
            epoch whose time window — learnt from the regular rows — contains it, or is nearest;
``gaps``    no windows to learn from: cut at the largest time gaps (ambiguous, says so);
``tag``     an ``epoch:N`` or ``step:N`` tag is present: it wins, and the time-based assignment is
            used as a cross-check (agreement is reported).

Traces are parsed and collapsed into rollouts by :mod:`svgrft.core.traces` (its names are re-exported
here for existing importers).

Over 400 lines on purpose: grouping rollouts into epochs (tags, time windows, gaps, equal splits) is one
decision with one set of fallbacks and warnings; trace parsing is in :mod:`svgrft.core.traces`.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from svgrft.core.plural import plural, plural_word
from svgrft.core.traces import (  # noqa: F401  (re-exported: epochs.parse_traces etc. predate the split)
    Rollout,
    Trace,
    collapse_rollouts,
    format_time,
    parse_time,
    parse_trace,
    parse_traces,
    requirements_from_prompt,
)

__all__ = [
    "Trace",
    "Rollout",
    "RowEpochs",
    "Grouping",
    "parse_trace",
    "parse_traces",
    "parse_time",
    "collapse_rollouts",
    "group_epochs",
    "choose_epochs",
    "requirements_from_prompt",
    "EpochChoice",
]


# --------------------------------------------------------------------------------------- grouping
@dataclass
class RowEpochs:
    row_id: str
    groups: list[list[Rollout]]  # index = epoch (0-based)
    method: str  # equal | windows | gaps | tag
    note: str | None = None

    @property
    def count(self) -> int:
        return sum(len(g) for g in self.groups)

    def sizes(self) -> list[int]:
        return [len(g) for g in self.groups]


@dataclass
class Grouping:
    """Result of :func:`group_epochs`: per row, per epoch, the rollouts — and what was found."""

    rows: dict[str, RowEpochs]
    epochs: int  # epoch slots that have (or should have) rollouts
    finished_epochs: int  # epochs known to be complete
    per_row: int | None  # rollouts per row per epoch (k)
    per_row_source: str  # "job" | "inferred" | "unknown"
    n_traces: int = 0
    n_rollouts: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    missing_rows: list[str] = field(default_factory=list)
    unexpected_rows: list[str] = field(default_factory=list)
    tag_kind: str | None = None  # "epoch" | "step" when such tags were used
    tag_agreement: tuple[int, int] | None = None  # (agree, compared)
    windows: list[tuple[float, float] | None] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def epoch(self, e: int) -> dict[str, list[Rollout]]:
        """row_id → rollouts of epoch ``e`` (rows without any rollout in that epoch left out)."""
        out = {}
        for row_id, re_ in self.rows.items():
            if 0 <= e < len(re_.groups) and re_.groups[e]:
                out[row_id] = re_.groups[e]
        return out

    def rows_in_epoch(self, e: int) -> list[str]:
        return sorted(self.epoch(e))

    def summary(self) -> dict[str, Any]:
        return {
            "traces": self.n_traces,
            "rollouts": self.n_rollouts,
            "rows": len(self.rows),
            "epochs": self.epochs,
            "finished_epochs": self.finished_epochs,
            "rollouts_per_row_per_epoch": self.per_row,
            "rollouts_per_row_source": self.per_row_source,
            "dropped_traces": dict(self.dropped),
            "missing_rows": list(self.missing_rows),
            "unexpected_rows": list(self.unexpected_rows),
            "tag": self.tag_kind,
            "tag_agreement": list(self.tag_agreement) if self.tag_agreement else None,
            "methods": dict(Counter(r.method for r in self.rows.values())),
            "epoch_windows": [[format_time(w[0]), format_time(w[1])] if w else None for w in self.windows],
            "findings": list(self.findings),
            "warnings": list(self.warnings),
        }


def _split_equal(rs: list[Rollout], k: int, n_groups: int) -> list[list[Rollout]]:
    groups = [rs[i * k : (i + 1) * k] for i in range(n_groups)]
    return groups


def _split_gaps(rs: list[Rollout], n_groups: int) -> list[list[Rollout]]:
    """Cut ``rs`` (time-sorted) into ``n_groups`` at the largest time gaps."""
    n_groups = max(1, min(n_groups, len(rs)))
    if n_groups == 1:
        return [list(rs)]
    gaps = sorted(range(1, len(rs)), key=lambda i: (-(rs[i].timestamp - rs[i - 1].timestamp), i))
    cuts = sorted(gaps[: n_groups - 1])
    out, prev = [], 0
    for c in cuts + [len(rs)]:
        out.append(list(rs[prev:c]))
        prev = c
    return out


def _nearest_window(ts: float, windows: list[tuple[float, float] | None]) -> int | None:
    best, best_d = None, math.inf
    for e, w in enumerate(windows):
        if w is None:
            continue
        lo, hi = w
        d = 0.0 if lo <= ts <= hi else min(abs(ts - lo), abs(ts - hi))
        if d < best_d:
            best, best_d = e, d
    return best


def _infer_per_row(counts: list[int], epochs: int, finished: int) -> int | None:
    """k from the rows' rollout counts: the most common count/epochs over rows that divide evenly."""
    if not counts or epochs <= 0:
        return None
    if finished >= epochs:  # all epochs complete: count = epochs × k
        cands = [c // epochs for c in counts if c % epochs == 0 and c >= epochs]
    else:  # running: a row has finished×k or (finished+1)×k
        cands = []
        for c in counts:
            for e in (finished + 1, finished):
                if e > 0 and c % e == 0 and c >= e:
                    cands.append(c // e)
                    break
    if not cands:
        return max(1, round(sorted(counts)[len(counts) // 2] / epochs))
    tally = Counter(cands)
    top = max(tally.values())
    return max(v for v, n in tally.items() if n == top)


def infer_epochs_from_gaps(rollouts_by_row: dict[str, list[Rollout]], factor: float = 8.0) -> int | None:
    """Number of epochs from timing alone: a row's rollouts come in bursts, one per epoch.

    A gap more than ``factor`` × the row's median gap starts a new burst; the most common burst count
    across rows wins. None when no row has two rollouts.
    """
    votes = []
    for rs in rollouts_by_row.values():
        if len(rs) < 2:
            continue
        gaps = [rs[i].timestamp - rs[i - 1].timestamp for i in range(1, len(rs))]
        med = sorted(gaps)[len(gaps) // 2]
        small = max(med, 1e-3)
        big = sum(1 for g in gaps if g > factor * small)
        votes.append(big + 1)
    if not votes:
        return None
    tally = Counter(votes)
    top = max(tally.values())
    return max(v for v, n in tally.items() if n == top)


def _tag_epochs(rollouts: list[Rollout], epochs: int) -> tuple[str | None, dict[int, int]]:
    """(kind, id(rollout) → epoch) from epoch:/step: tags, if most rollouts carry one."""
    tagged_e = [r for r in rollouts if r.trace.epoch_tag is not None]
    tagged_s = [r for r in rollouts if r.trace.step_tag is not None]
    out: dict[int, int] = {}
    if tagged_e and len(tagged_e) >= 0.5 * len(rollouts):
        values = sorted({r.trace.epoch_tag for r in tagged_e})
        if values[0] >= 0 and values[-1] <= epochs - 1:
            mapping = {v: v for v in values}  # 0-based, as jobProgress.epoch
        elif values[0] >= 1 and values[-1] <= epochs:
            mapping = {v: v - 1 for v in values}  # 1-based
        else:
            mapping = {v: i for i, v in enumerate(values)}
        for r in tagged_e:
            out[id(r)] = mapping[r.trace.epoch_tag]
        return "epoch", out
    if tagged_s and len(tagged_s) >= 0.5 * len(rollouts):
        # a step belongs to one epoch: the epoch where timing puts most of its rollouts
        votes: dict[int, Counter] = defaultdict(Counter)
        for r in tagged_s:
            if r.time_epoch is not None:
                votes[r.trace.step_tag][r.time_epoch] += 1
        step_epoch = {s: c.most_common(1)[0][0] for s, c in votes.items()}
        # steps are monotonic in time: a step never belongs to an earlier epoch than a lower step
        running = 0
        for s in sorted(step_epoch):
            running = max(running, step_epoch[s])
            step_epoch[s] = running
        for r in tagged_s:
            if r.trace.step_tag in step_epoch:
                out[id(r)] = step_epoch[r.trace.step_tag]
        return "step", out
    return None, out


def group_epochs(
    traces: Sequence[Trace],
    *,
    epochs: int | None,
    per_row: int | None = None,
    finished_epochs: int | None = None,
    expected_rows: Sequence[str] | None = None,
    dropped: dict[str, int] | None = None,
) -> Grouping:
    """Assign every rollout to an epoch without relying on an epoch tag.

    ``epochs``           epoch slots the traces cover (the job's ``trainingConfig.epochs``; for a
                         running job the current 0-based epoch + 1); None → inferred from timing.
    ``per_row``          rollouts per row per epoch (``inferenceParameters.responseCandidatesCount``);
                         None → inferred from the counts.
    ``finished_epochs``  how many of those epochs are complete (default: all).
    ``expected_rows``    the dataset's row ids, to say which rows have no trace.
    """
    rollouts = collapse_rollouts(traces)
    by_row: dict[str, list[Rollout]] = defaultdict(list)
    for r in rollouts:
        by_row[r.row_id].append(r)
    warnings: list[str] = []
    findings: list[str] = []

    epochs_source = "job"
    if epochs is None or epochs <= 0:
        epochs = infer_epochs_from_gaps(by_row) or 1
        epochs_source = "timing"
    finished = epochs if finished_epochs is None else max(0, min(finished_epochs, epochs))
    running = finished < epochs

    counts = [len(rs) for rs in by_row.values()]
    k_source = "job" if per_row else "unknown"
    k = per_row if per_row and per_row > 0 else None
    if k is None and counts:
        k = _infer_per_row(counts, epochs, finished)
        k_source = "inferred" if k else "unknown"

    rows: dict[str, RowEpochs] = {}
    # 1. regular rows: exactly k per epoch
    irregular: list[str] = []
    for row_id, rs in by_row.items():
        n = len(rs)
        if k and n % k == 0 and (n // k == epochs or (running and n // k in (finished, finished + 1))):
            groups = _split_equal(rs, k, epochs)
            rows[row_id] = RowEpochs(row_id, groups, "equal")
        else:
            irregular.append(row_id)
    for re_ in rows.values():
        for e, g in enumerate(re_.groups):
            for r in g:
                r.epoch = r.time_epoch = e

    # 2. epoch windows from the regular rows
    windows: list[tuple[float, float] | None] = []
    for e in range(epochs):
        ts = [r.timestamp for re_ in rows.values() for r in re_.groups[e]] if rows else []
        windows.append((min(ts), max(ts)) if ts else None)
    overlaps = [e for e in range(1, epochs) if windows[e] and windows[e - 1] and windows[e][0] < windows[e - 1][1]]
    if overlaps:
        warnings.append(
            "epoch time windows overlap (epochs "
            + ", ".join(f"{e - 1}/{e}" for e in overlaps)
            + "): rows were not rolled out in lock-step; per-row grouping still holds"
        )

    # 3. irregular rows: by window, else by gaps
    for row_id in sorted(irregular):
        rs = by_row[row_id]
        n = len(rs)
        expect = f"{epochs}×{k}" if k else plural(epochs, "epoch")
        if any(w is not None for w in windows):
            groups: list[list[Rollout]] = [[] for _ in range(epochs)]
            for r in rs:
                e = _nearest_window(r.timestamp, windows)
                groups[e if e is not None else 0].append(r)
            method = "windows"
        else:
            n_groups = epochs if not running else (min(epochs, math.ceil(n / k)) if k else epochs)
            cut = _split_gaps(rs, n_groups)
            groups = cut + [[] for _ in range(epochs - len(cut))]
            method = "gaps"
        for e, g in enumerate(groups):
            for r in g:
                r.epoch = r.time_epoch = e
        sizes = "/".join(str(len(g)) for g in groups)
        note = f"{plural(n, 'rollout')}, expected {expect}; split by {'epoch time windows' if method == 'windows' else 'time gaps'}: {sizes}"
        rows[row_id] = RowEpochs(row_id, groups, method, note)
        if method == "gaps":
            warnings.append(f"row {row_id}: {note} (ambiguous: no regular row to learn epoch windows from)")
        else:
            warnings.append(f"row {row_id}: {note}")

    # 4. epoch / step tags: use them, cross-check with timing
    tag_kind, tag_map = _tag_epochs(rollouts, epochs)
    agreement = None
    if tag_kind:
        agree = compared = 0
        for r in rollouts:
            te = tag_map.get(id(r))
            if te is None:
                continue
            if r.time_epoch is not None:
                compared += 1
                agree += int(te == r.time_epoch)
        agreement = (agree, compared)
        # regroup every row by tag (untagged rollouts keep their time epoch)
        max_e = max([epochs - 1] + list(tag_map.values()))
        if max_e + 1 > epochs:
            warnings.append(f"{tag_kind} tags name {plural(max_e + 1, 'epoch')}, the job {epochs}")
            epochs = max_e + 1
            windows += [None] * (epochs - len(windows))
        for re_ in rows.values():
            groups = [[] for _ in range(epochs)]
            for g in re_.groups:
                for r in g:
                    e = tag_map.get(id(r), r.time_epoch if r.time_epoch is not None else 0)
                    r.epoch = e
                    groups[e].append(r)
            for g in groups:
                g.sort(key=lambda r: r.timestamp)
            re_.groups = groups
            re_.method = "tag"
        if compared and agree < compared:
            warnings.append(
                f"the {tag_kind} tag disagrees with timing for {compared - agree} of "
                f"{plural(compared, 'rollout')}; using the tag"
            )

    # 5. findings
    missing = sorted(set(expected_rows or ()) - set(by_row))
    unexpected = sorted(set(by_row) - set(expected_rows)) if expected_rows is not None else []
    n_rows = len(by_row)
    findings.append(
        f"{plural(len(traces), 'trace')} → {plural(len(rollouts), 'rollout')} for {plural(n_rows, 'row')}"
        + (f" (of {len(set(expected_rows))} in the dataset)" if expected_rows is not None else "")
    )
    findings.append(
        f"epochs: {epochs}"
        + (" (inferred from timing)" if epochs_source == "timing" else "")
        + (f", {finished} finished" if running else "")
    )
    if k:
        findings.append(f"rollouts per row per epoch: {k}" + (" (inferred)" if k_source == "inferred" else ""))
    methods = Counter(r.method for r in rows.values())
    if methods:
        findings.append("grouping: " + ", ".join(f"{plural(v, 'row')} by {m}" for m, v in sorted(methods.items())))
    if tag_kind:
        a, c = agreement or (0, 0)
        findings.append(f"{tag_kind} tag present: used; agrees with timing for {a} of {plural(c, 'rollout')}")
    else:
        findings.append("no epoch/step tag: epochs assigned from timing alone")
    if missing:
        warnings.append(
            f"{plural(len(missing), 'dataset row')} {plural_word(len(missing), 'has', 'have')} no traces: "
            f"{_short_list(missing)}"
        )
    if unexpected:
        warnings.append(
            f"{plural(len(unexpected), 'row')} in the traces {plural_word(len(unexpected), 'is', 'are')} not in the "
            f"dataset: {_short_list(unexpected)}"
        )
    if dropped:
        warnings.append("dropped traces: " + ", ".join(f"{n} {why}" for why, n in sorted(dropped.items())))
    collapsed = len(traces) - len(rollouts)
    if collapsed:
        findings.append(f"{plural(collapsed, 'extra trace')} shared a rollout_id (retries/multi-turn): longest kept")
    for e in range(finished):
        short = [rid for rid, re_ in rows.items() if k and e < len(re_.groups) and 0 < len(re_.groups[e]) < k]
        empty = [rid for rid, re_ in rows.items() if e >= len(re_.groups) or not re_.groups[e]]
        if empty:
            warnings.append(f"epoch {e}: no rollouts for {plural(len(empty), 'row')}: {_short_list(sorted(empty))}")
        if short:
            warnings.append(
                f"epoch {e}: fewer than {plural(k, 'rollout')} for {plural(len(short), 'row')}: "
                f"{_short_list(sorted(short))}"
            )

    return Grouping(
        rows=dict(sorted(rows.items())),
        epochs=epochs,
        finished_epochs=finished,
        per_row=k,
        per_row_source=k_source,
        n_traces=len(traces),
        n_rollouts=len(rollouts),
        dropped=dict(dropped or {}),
        missing_rows=missing,
        unexpected_rows=unexpected,
        tag_kind=tag_kind,
        tag_agreement=agreement,
        windows=windows,
        findings=findings,
        warnings=warnings,
    )


def _short_list(items: Sequence[str], n: int = 6) -> str:
    items = list(items)
    return ", ".join(items[:n]) + (f", … (+{len(items) - n})" if len(items) > n else "")


# --------------------------------------------------------------------------------------- choosing
@dataclass(frozen=True)
class EpochChoice:
    before: int
    after: int
    note: str | None = None  # e.g. "job still running: …"


def choose_epochs(
    total_epochs: int, finished_epochs: int, requested: Sequence[int] | None = None, state: str | None = None
) -> EpochChoice:
    """Which two epochs to compare (0-based). Default: first vs last finished; negatives count from the end.

    Raises :class:`~svgrft.errors.UsageError` for out-of-range or equal epochs, and
    :class:`~svgrft.errors.SvgrftError` when fewer than two epochs are finished.
    """
    from svgrft.errors import SvgrftError, UsageError

    state_s = (state or "").replace("JOB_STATE_", "").lower() or "unknown"
    status = "still running" if state_s == "running" else state_s
    if finished_epochs < 1:
        raise SvgrftError(
            f"no epoch of this job has finished yet (state {state_s})",
            hint="wait for the first two epochs (`svgrft jobs watch JOB`), or compare models with --source replay",
        )
    if requested:
        if len(requested) != 2:
            raise UsageError("--epochs takes two epochs, e.g. --epochs 0,3", hint="epochs are 0-based; -1 = last")
        a, b = (x if x >= 0 else finished_epochs + x for x in requested)
        for x, raw in ((a, requested[0]), (b, requested[1])):
            if not 0 <= x < finished_epochs:
                raise UsageError(
                    f"epoch {raw} is not available: finished epochs are 0..{finished_epochs - 1}",
                    hint=f"pick two of 0..{finished_epochs - 1} (0-based), e.g. --epochs 0,{finished_epochs - 1}",
                )
        if a == b:
            raise UsageError(f"--epochs names epoch {a} twice", hint="pick two different epochs, e.g. --epochs 0,-1")
        note = None
        if finished_epochs < total_epochs:
            note = f"job {status}: {finished_epochs} of {plural(total_epochs, 'epoch')} finished"
        return EpochChoice(a, b, note)
    if total_epochs <= 1:
        raise SvgrftError(
            "this job ran one epoch only: its rollouts have no 'before' and 'after'",
            hint="compare the base model with the trained model: --source replay",
        )
    if finished_epochs < 2:
        raise SvgrftError(
            f"only epoch 0 has finished (job {state_s}, {plural(total_epochs, 'epoch')} planned)",
            hint="wait until epoch 1 has finished, or compare models with --source replay",
        )
    note = None
    if finished_epochs < total_epochs:
        note = (
            f"job {status}: comparing epoch 0 with the latest finished epoch {finished_epochs - 1} (of {total_epochs})"
        )
    return EpochChoice(0, finished_epochs - 1, note)
