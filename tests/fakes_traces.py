"""Seed a FakeFireworks with an RFT job and the traces its rollouts would leave (for compare-epochs).

A thin layer over the fake's public helpers (``add_dataset``, ``add_evaluator``, ``run_job``,
``job_epochs``, ``add_trace``); it does not touch the fake's internals.

What :func:`seed_job_traces` writes, per epoch window of the job (``fake.job_epochs``):

* every row × ``samples`` rollouts; rows in a shuffled order across the window, the samples of one
  row close together (they are generated concurrently), timestamps strictly inside the window;
* realistic eval-protocol tags: ``rollout_id``, ``invocation_id`` (one per epoch chunk),
  ``experiment_id``, ``run_id`` (word-number ids like ``ancient-phone-322664``) and ``row_id`` —
  and **no epoch tag** (unless ``epoch_tag=True``), so grouping must work from timing;
* the assistant reply is a fenced SVG whose richness grows with the epoch: epoch 0 a single small
  grey circle, the last epoch the richest corpus drawings (``../shared/svg-corpus``), so the fake
  judge (coverage × colours) scores later epochs higher;
* optional: ``skip`` {(row_index, epoch, sample)} left out, ``retries`` {(row_index, epoch, sample)}
  that get an earlier, shorter duplicate trace with the same rollout_id, ``rewards=True`` puts the
  "training reward" in ``metadata.reward``, ``partial_rows`` = how many rows the open (running)
  epoch has reached.

Returns ``truth``: rollout_id → epoch, for the tests to compare against.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "svg-corpus"

BASE_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="200" height="150" viewBox="0 0 200 150">'
            '<circle cx="100" cy="75" r="12" fill="#888888"/></svg>')

_ADJ = ("ancient", "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "lucky", "proud", "quiet", "strong")
_NOUN = ("phone", "idea", "work", "concert", "river", "pencil", "garden", "planet", "window", "rocket", "meadow")


def word_id(rng: random.Random) -> str:
    return f"{rng.choice(_ADJ)}-{rng.choice(_NOUN)}-{rng.randrange(10**6):06d}"


def ranked_corpus(corpus: Path = CORPUS) -> list[Path]:
    """Corpus SVGs from plainest to richest (feature count, then size)."""
    feats = json.loads((corpus / "features_gen.json").read_text())
    files = [corpus / name for name in feats if (corpus / name).is_file()]
    return sorted(files, key=lambda p: (len(feats[p.name].get("features", [])), feats[p.name].get("bytes", 0), p.name))


def svg_for(epoch: int, epochs: int, choice: int, corpus: Path = CORPUS) -> str:
    """Epoch 0: a grey dot. Later epochs: corpus drawings, richer as training goes on."""
    if epoch == 0 or epochs <= 1:
        return BASE_SVG
    ranked = ranked_corpus(corpus)
    # epoch e of E-1 draws from the e-th band of the ranking (last epoch → the richest band)
    bands = max(1, epochs - 1)
    size = max(1, len(ranked) // bands)
    lo = min(len(ranked) - size, (epoch - 1) * size)
    band = ranked[lo:lo + size]
    return band[choice % len(band)].read_text()


def reply_for(svg: str) -> str:
    return f"Here is the drawing.\n\n```svg\n{svg}\n```\n"


def dataset_lines(rows: Sequence[Any]) -> bytes:
    """DatasetRow objects (svgrft.core.dataset) → JSONL bytes for ``fake.add_dataset``."""
    return ("\n".join(r.to_line() for r in rows) + "\n").encode()


def create_job(fake, job_id: str, rows: Sequence[Any], *, epochs: int, samples: int, api_key: str,
               dataset_id: str = "svg-ds", evaluator_id: str = "svg-eval", base_model: str = "qwen3-0p6b") -> dict:
    """A dataset + evaluator + RFT job in the fake, created through its HTTP API (as the CLI would)."""
    import httpx

    account = fake.default_account
    if fake.resource("datasets", dataset_id) is None:
        fake.add_dataset(dataset_id, content=dataset_lines(rows))
    if fake.resource("evaluators", evaluator_id) is None:
        fake.add_evaluator(evaluator_id)
    body = {
        "dataset": f"accounts/{account}/datasets/{dataset_id}",
        "evaluator": f"accounts/{account}/evaluators/{evaluator_id}",
        "inferenceParameters": {"temperature": 0.8, "responseCandidatesCount": samples, "maxOutputTokens": 2048},
        "trainingConfig": {"baseModel": f"accounts/fireworks/models/{base_model}", "epochs": epochs,
                           "outputModel": f"accounts/{account}/models/{job_id}-out"},
    }
    r = httpx.post(f"{fake.url}/v1/accounts/{account}/reinforcementFineTuningJobs",
                   params={"reinforcementFineTuningJobId": job_id}, json=body,
                   headers={"Authorization": f"Bearer {api_key}"}, timeout=10)
    r.raise_for_status()
    return r.json()


def _ts(t: datetime | float) -> datetime:
    if isinstance(t, datetime):
        return t
    return datetime.fromtimestamp(t, timezone.utc)


def seed_job_traces(fake, job_id: str, rows: Sequence[Any], *, samples: int, epochs: int | None = None,
                    seed: int = 0, skip: Iterable[tuple] = (), retries: Iterable[tuple] = (),
                    rewards: bool = False, epoch_tag: bool = False, partial_rows: int | None = None,
                    corpus: Path = CORPUS) -> dict[str, int]:
    """Traces for every epoch window the job has had so far (see module docstring)."""
    rng = random.Random(seed)
    skip, retries = set(skip), set(retries)
    windows = fake.job_epochs(job_id)
    if not windows:
        raise ValueError(f"job {job_id} has no epoch windows yet: advance or run it first")
    total_epochs = epochs or len(windows)
    truth: dict[str, int] = {}
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
        experiment = word_id(rng)
        for pos, ri in enumerate(order):
            row = rows[ri]
            row_id = row.row_id
            messages = [m for m in row.messages if m.get("role") != "assistant"]
            # leave 5 % of the window free at both ends; samples of a row within ~2 s of each other
            t_row = start + timedelta(seconds=span * (0.05 + 0.9 * pos / max(1, len(order))))
            for s in range(samples):
                if (ri, e, s) in skip:
                    continue
                rid = word_id(rng)
                truth[rid] = e
                tags = [f"rollout_id:{rid}", f"invocation_id:{invocation}", f"experiment_id:{experiment}",
                        f"run_id:{word_id(rng)}", f"row_id:{row_id}"]
                if epoch_tag:
                    tags.append(f"epoch:{e}")
                t = t_row + timedelta(seconds=0.3 * s + rng.random() * 0.2)
                svg = svg_for(e, total_epochs, ri * samples + s, corpus)
                meta: dict = {"source": "fakes_traces"}
                if rewards:
                    meta["reward"] = round(0.1 + 0.8 * e / max(1, total_epochs - 1), 3)
                if (ri, e, s) in retries:  # an earlier attempt of the same rollout, one message shorter
                    fake.add_trace(tags=tags, messages=messages, output=None, timestamp=t - timedelta(seconds=0.1),
                                   metadata=meta)
                fake.add_trace(tags=tags, messages=messages, output={"role": "assistant", "content": reply_for(svg)},
                               timestamp=t, metadata=meta)
    return truth


def store_run(store, renderer, rows: Sequence[Any], model: str, svg: str, score: float) -> str:
    """A finished local run (as `svgrft eval` would store it): every row drew ``svg`` and scored ``score``."""
    from svgrft.core.store import SampleRecord

    run = store.create_run(model=model, judge_model="gpt-4.1-2025-04-14", judge_mode="checklist")
    png = renderer.render(svg).png
    for row in rows:
        n = len(row.requirements)
        store.add_sample(run.id, SampleRecord(
            row_id=row.row_id, sample_index=0, prompt=row.prompt, requirements=row.requirements,
            reply=reply_for(svg), svg=svg, png=png, score=score, is_valid=True, reason="ok",
            fulfilled=round(score * n), total=n,
            verdicts=[{"index": i, "requirement": q, "fulfilled": i <= round(score * n), "evidence": "e"}
                      for i, q in enumerate(row.requirements, 1)]))
    store.set_run_status(run.id, "done")
    return run.id
