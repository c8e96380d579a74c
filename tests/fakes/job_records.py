"""Seed a FakeFireworks with an RFT job and the rollout records its evaluator would have written.

A thin layer over the fake's public helpers (``add_dataset``, ``add_evaluator``, ``run_job``,
``job_epochs``, ``add_log``); it does not touch the fake's internals. The end-to-end tests
(tests/test_compare_records.py) let the fake run the real evaluator instead; these seeded records are
for the many cases a real run cannot be steered into cheaply (a missing rollout, a running job, junk).

What :func:`seed_job_records` writes, per epoch window of the job (``fake.job_epochs``):

* every row × ``samples`` records in svgrft's format (:mod:`svgrft.core.records`: same tags, same
  ``extras.svgrft_record``, built by the same function), rows in a shuffled order across the window,
  the samples of one row close together, timestamps strictly inside the window;
* the policy model of the epoch (``<job>-epoch-<e>``) unless ``policy_model=False`` (then epochs must be
  split by time); ``rollout_id`` / ``invocation_id`` / ``run_id`` as eval-protocol would give them;
* the SVG is drawn in code (:func:`tests.fakes.trainer.epoch_svg`: richer each epoch) and the score is
  :func:`score_for` (rising with the epoch), so tests know every reward;
* optional: ``skip`` {(row_index, epoch, sample)} left out, ``partial_rows`` = how many rows the open
  (running) epoch has reached, ``unique_svgs`` makes every SVG distinct (benchmarks: no render dedup).

Returns ``truth``: rollout_id → (epoch, score), for the tests to compare against.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.fakes.trainer import epoch_svg

EVAL_KEY = "0123456789abcdef"  # the record key of the evaluator create_job makes (its commitHash)
BASE_SVG = epoch_svg(0, 2)

_ADJ = ("ancient", "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "lucky", "proud", "quiet", "strong")
_NOUN = ("phone", "idea", "work", "concert", "river", "pencil", "garden", "planet", "window", "rocket", "meadow")


def word_id(rng: random.Random) -> str:
    return f"{rng.choice(_ADJ)}-{rng.choice(_NOUN)}-{rng.randrange(10**6):06d}"


def svg_for(epoch: int, epochs: int, choice: int) -> str:
    """Epoch 0: a grey dot; later epochs: more colours and coverage (drawn in code)."""
    return epoch_svg(epoch, epochs, choice % 3)


def score_for(epoch: int, epochs: int, row_index: int, sample: int) -> float:
    """The reward a seeded record carries: rises with the epoch, a little spread by row and sample."""
    base = 0.1 + 0.8 * epoch / max(1, epochs - 1)
    return round(min(1.0, base + 0.02 * ((row_index + sample) % 3)), 4)


def reply_for(svg: str) -> str:
    return f"Here is the drawing.\n\n```svg\n{svg}\n```\n"


def dataset_lines(rows: Sequence[Any]) -> bytes:
    """DatasetRow objects (svgrft.core.dataset) → JSONL bytes for ``fake.add_dataset``."""
    return ("\n".join(r.to_line() for r in rows) + "\n").encode()


def create_job(
    fake,
    job_id: str,
    rows: Sequence[Any],
    *,
    epochs: int,
    samples: int,
    api_key: str,
    dataset_id: str = "svg-ds",
    evaluator_id: str = "svg-eval",
    base_model: str = "qwen3-0p6b",
    eval_key: str | None = EVAL_KEY,
) -> dict:
    """A dataset + evaluator + RFT job in the fake, created through its HTTP API (as the CLI would).
    The evaluator's commitHash names ``eval_key`` as svgrft's would (None: an evaluator not built by svgrft)."""
    import httpx

    account = fake.default_account
    if fake.resource("datasets", dataset_id) is None:
        fake.add_dataset(dataset_id, content=dataset_lines(rows))
    if fake.resource("evaluators", evaluator_id) is None:
        fields = {"commitHash": f"svgrft-0.1.0+sha256.{eval_key}"} if eval_key else {"commitHash": "abc123"}
        fake.add_evaluator(evaluator_id, entryPoint="test_svgrft_eval.py::test_svgrft_eval", **fields)
    body = {
        "dataset": f"accounts/{account}/datasets/{dataset_id}",
        "evaluator": f"accounts/{account}/evaluators/{evaluator_id}",
        "inferenceParameters": {"temperature": 0.8, "responseCandidatesCount": samples, "maxOutputTokens": 2048},
        "trainingConfig": {
            "baseModel": f"accounts/fireworks/models/{base_model}",
            "epochs": epochs,
            "outputModel": f"accounts/{account}/models/{job_id}-out",
        },
    }
    r = httpx.post(
        f"{fake.url}/v1/accounts/{account}/reinforcementFineTuningJobs",
        params={"reinforcementFineTuningJobId": job_id},
        json=body,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=10,
    )
    r.raise_for_status()
    return r.json()


def _ts(t: datetime | float) -> datetime:
    if isinstance(t, datetime):
        return t
    return datetime.fromtimestamp(t, timezone.utc)


def seed_job_records(
    fake,
    job_id: str,
    rows: Sequence[Any],
    *,
    samples: int,
    epochs: int | None = None,
    seed: int = 0,
    skip: Iterable[tuple] = (),
    partial_rows: int | None = None,
    policy_model: bool = True,
    eval_key: str = EVAL_KEY,
    unique_svgs: bool = False,
) -> dict[str, tuple[int, float]]:
    """Records for every epoch window the job has had so far (see module docstring)."""
    from svgrft.core import records as rec

    rng = random.Random(seed)
    skip = set(skip)
    windows = fake.job_epochs(job_id)
    if not windows:
        raise ValueError(f"job {job_id} has no epoch windows yet: advance or run it first")
    total_epochs = epochs or len(windows)
    truth: dict[str, tuple[int, float]] = {}
    now = fake.clock.peek()
    for w in windows:
        e = w["epoch"]
        start = _ts(w["start"])
        end = _ts(w["end"]) if w["end"] is not None else None
        open_epoch = end is None
        if open_epoch:
            end = max(now, start + timedelta(seconds=30))
        span = (end - start).total_seconds()
        order = list(range(len(rows)))
        rng.shuffle(order)
        if open_epoch and partial_rows is not None:
            order = order[:partial_rows]
        invocation = word_id(rng)
        for pos, ri in enumerate(order):
            row = rows[ri]
            t_row = start + timedelta(seconds=span * (0.05 + 0.9 * pos / max(1, len(order))))
            for s in range(samples):
                if (ri, e, s) in skip:
                    continue
                rid = word_id(rng)
                score = score_for(e, total_epochs, ri, s)
                truth[rid] = (e, score)
                t = t_row + timedelta(seconds=0.3 * s + rng.random() * 0.2)
                n = len(row.requirements)
                k = round(score * n)
                body = rec.build_record(
                    row_id=row.row_id,
                    rollout_id=rid,
                    time_s=t.timestamp(),
                    policy_model=f"accounts/{fake.default_account}/models/{job_id}-epoch-{e}" if policy_model else None,
                    svg=(
                        svg_for(e, total_epochs, s)
                        if not unique_svgs
                        else svg_for(e, total_epochs, s).replace("</svg>", f"<!-- {rid} --></svg>")
                    ),
                    score=score,
                    is_valid=True,
                    gate=None,
                    reason=f"{k}/{n} fulfilled",
                    verdicts=[{"index": i, "fulfilled": i <= k, "evidence": "seen"} for i in range(1, n + 1)],
                    judge_model="gpt-4.1-2025-04-14",
                    judge_mode="checklist",
                    fulfilled=k,
                    total=n,
                    ids={"invocation_id": invocation, "experiment_id": f"exp-{e}", "run_id": f"run-{s}"},
                )
                fake.add_log(
                    tags=rec.record_tags(eval_key, row.row_id, rid),
                    message=f"svgrft rollout {row.row_id}",
                    extras={"svgrft_record": body},
                    program=rec.PROGRAM,
                    timestamp=t,
                )
    return truth


def store_run(store, renderer, rows: Sequence[Any], model: str, svg: str, score: float) -> str:
    """A finished local run (as `svgrft eval` would store it): every row drew ``svg`` and scored ``score``."""
    from svgrft.core.store import SampleRecord

    run = store.create_run(model=model, judge_model="gpt-4.1-2025-04-14", judge_mode="checklist")
    png = renderer.render(svg).png
    for row in rows:
        n = len(row.requirements)
        store.add_sample(
            run.id,
            SampleRecord(
                row_id=row.row_id,
                sample_index=0,
                prompt=row.prompt,
                requirements=row.requirements,
                reply=reply_for(svg),
                svg=svg,
                png=png,
                score=score,
                is_valid=True,
                reason="ok",
                fulfilled=round(score * n),
                total=n,
                verdicts=[
                    {"index": i, "requirement": q, "fulfilled": i <= round(score * n), "evidence": "e"}
                    for i, q in enumerate(row.requirements, 1)
                ],
            ),
        )
    store.set_run_status(run.id, "done")
    return run.id
