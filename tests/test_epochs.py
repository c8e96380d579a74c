"""Epoch grouping of RFT traces (svgrft/core/epochs.py): pure logic, many edge cases."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from svgrft.core import epochs as ep
from svgrft.errors import SvgrftError, UsageError

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc).timestamp()
EPOCH_LEN = 600.0


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def make_raw(
    rows=4, epochs=3, k=2, seed=0, skip=(), extra=(), tags=None, epoch_len=EPOCH_LEN, shuffle_rows=True, reward=False
):
    """Raw gateway trace dicts: each epoch rolls every row out k times, rows in random order.

    ``skip`` = {(row, epoch, sample)} left out; ``extra`` = {(row, epoch)} get one more rollout.
    ``tags(row, epoch, sample)`` → extra tag strings. Returns (traces, truth) where truth maps
    rollout_id → epoch.
    """
    rng = random.Random(seed)
    out, truth = [], {}
    for e in range(epochs):
        order = list(range(rows))
        if shuffle_rows:
            rng.shuffle(order)
        for pos, r in enumerate(order):
            n = k + (1 if (r, e) in extra else 0)
            start = T0 + e * epoch_len + pos * (epoch_len * 0.8 / rows)
            for s in range(n):
                if (r, e, s) in skip:
                    continue
                rid = f"ro-{r}-{e}-{s}-{rng.randrange(10**6)}"
                truth[rid] = e
                t = [
                    f"rollout_id:{rid}",
                    "invocation_id:inv-1",
                    f"experiment_id:exp-{e}",
                    f"run_id:run-{s}",
                    f"row_id:row_{r}",
                ]
                if tags:
                    t += tags(r, e, s)
                trace = {
                    "id": f"tr-{rid}",
                    "tags": t,
                    "timestamp": iso(start + s * 1.5 + rng.random()),
                    "input": {"messages": [{"role": "user", "content": f"draw row {r}\n\nRequirements:\n1. a\n2. b"}]},
                    "output": {"role": "assistant", "content": f"```svg\n<svg>{r}-{e}-{s}</svg>\n```"},
                }
                if reward:
                    trace["scores"] = [{"name": "reward", "value": 0.1 * e}]
                out.append(trace)
    rng.shuffle(out)  # the gateway's order means nothing
    return out, truth


def group(raw, **kw):
    traces, dropped = ep.parse_traces(raw)
    return ep.group_epochs(traces, dropped=dict(dropped), **kw)


def assigned(g: ep.Grouping) -> dict[str, int]:
    return {r.rollout_id: e for re_ in g.rows.values() for e, grp in enumerate(re_.groups) for r in grp}


# ------------------------------------------------------------------------------------- parsing
def test_parse_time_formats():
    assert ep.parse_time("2025-03-01T12:00:00Z") == T0
    assert ep.parse_time("2025-03-01T12:00:00.123456789Z") == pytest.approx(T0 + 0.123456, abs=1e-6)
    assert ep.parse_time("2025-03-01T13:00:00+01:00") == T0
    assert ep.parse_time(T0) == T0
    assert ep.parse_time(T0 * 1000) == pytest.approx(T0)
    assert ep.parse_time(str(T0)) == T0
    for junk in (None, "", "yesterday", True, -5, float("nan"), float("inf"), {"a": 1}, "9" * 100):
        assert ep.parse_time(junk) is None


def test_parse_trace_shapes_and_reply():
    base = {"id": "t1", "tags": ["row_id:row_1", "rollout_id:r1"], "timestamp": "2025-03-01T12:00:00Z"}
    shapes = [
        {"input": {"messages": [{"role": "user", "content": "hi"}]}, "output": {"role": "assistant", "content": "A"}},
        {"input": [{"role": "user", "content": "hi"}], "output": [{"role": "assistant", "content": "A"}]},
        {
            "input": {"messages": [{"role": "user", "content": "hi"}]},
            "output": {"choices": [{"message": {"role": "assistant", "content": [{"type": "text", "text": "A"}]}}]},
        },
        {
            "observations": [
                {
                    "type": "GENERATION",
                    "start_time": "2025-03-01T12:00:01Z",
                    "input": [{"role": "user", "content": "hi"}],
                    "output": {"role": "assistant", "content": "old"},
                },
                {
                    "type": "GENERATION",
                    "start_time": "2025-03-01T12:00:05Z",
                    "input": [{"role": "user", "content": "hi"}],
                    "output": {"role": "assistant", "content": "A"},
                },
            ]
        },
    ]
    for extra in shapes:
        t, why = ep.parse_trace({**base, **extra})
        assert why is None and t is not None
        assert t.reply == "A" and t.prompt == "hi" and t.row_id == "row_1" and t.rollout_id == "r1"


def test_parse_trace_takes_the_last_assistant_message():
    t, _ = ep.parse_trace(
        {
            "id": "x",
            "tags": ["row_id:r"],
            "timestamp": T0,
            "input": {
                "messages": [
                    {"role": "user", "content": "u"},
                    {"role": "assistant", "content": "draft"},
                    {"role": "user", "content": "fix it"},
                ]
            },
            "output": {"role": "assistant", "content": "final"},
        }
    )
    assert t.reply == "final"


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("not a dict", "not an object"),
        ({"tags": ["rollout_id:r"], "timestamp": T0}, "no row_id tag"),
        ({"tags": "row_id:r", "timestamp": T0}, "no row_id tag"),
        ({"tags": ["row_id:r"], "timestamp": "soon"}, "no usable timestamp"),
        ({"tags": ["row_id:r"]}, "no usable timestamp"),
    ],
)
def test_hostile_traces_are_dropped_with_a_reason(raw, reason):
    t, why = ep.parse_trace(raw)
    assert t is None and why == reason


def test_hostile_fields_do_not_crash():
    raw = {
        "id": {"x": 1},
        "tags": ["row_id:r", 5, None, "x" * 5000, "epoch:banana"],
        "timestamp": T0,
        "input": {"messages": [{"role": "user", "content": None}, "junk", {"content": "no role"}]},
        "output": {"role": "assistant", "content": {"weird": True}},
        "scores": [{"name": "reward", "value": "nan"}],
    }
    t, why = ep.parse_trace(raw)
    assert why is None
    assert t.reply == "" and t.epoch_tag is None and t.reward is None and t.trace_id


def test_reward_is_read_when_present():
    for extra in (
        {"scores": [{"name": "reward", "value": 0.75}]},
        {"metadata": {"reward": 0.75}},
        {"output": {"role": "assistant", "content": "x", "evaluation_result": {"score": 0.75}}},
    ):
        t, _ = ep.parse_trace({"tags": ["row_id:r"], "timestamp": T0, **extra})
        assert t.reward == 0.75


def test_duplicate_trace_ids_are_counted_once():
    raw, _ = make_raw(rows=2, epochs=2, k=2)
    traces, dropped = ep.parse_traces(raw + raw[:3] + ["junk", {"tags": []}])
    assert len(traces) == len(raw)
    assert dropped == {"not an object": 1, "no row_id tag": 1}


def test_requirements_from_prompt():
    prompt = "Write svg.\n\nExample:\n1. not this\n\nRequirements:\n1. A red sun.\n2) Two trees.\n10. Sky.\n\nThanks"
    assert ep.requirements_from_prompt(prompt) == ["A red sun.", "Two trees.", "Sky."]
    assert ep.requirements_from_prompt("no list here") == []
    assert ep.requirements_from_prompt(None) == []


# ------------------------------------------------------------------------------------- grouping
def test_equal_split_recovers_every_epoch():
    raw, truth = make_raw(rows=5, epochs=4, k=3, seed=1)
    g = group(raw, epochs=4, per_row=3, expected_rows=[f"row_{i}" for i in range(5)])
    assert assigned(g) == truth
    assert g.epochs == 4 and g.per_row == 3 and g.per_row_source == "job"
    assert {r.method for r in g.rows.values()} == {"equal"}
    assert not g.warnings and not g.missing_rows
    assert all(len(g.epoch(e)) == 5 for e in range(4))
    assert any("no epoch/step tag" in f for f in g.findings)


def test_rollouts_per_row_is_inferred_when_the_job_does_not_say():
    raw, truth = make_raw(rows=4, epochs=3, k=4, seed=2)
    g = group(raw, epochs=3)
    assert g.per_row == 4 and g.per_row_source == "inferred"
    assert assigned(g) == truth


def test_epoch_count_is_inferred_from_timing():
    raw, truth = make_raw(rows=6, epochs=3, k=2, seed=3)
    g = group(raw, epochs=None)
    assert g.epochs == 3
    assert assigned(g) == truth
    assert any("inferred from timing" in f for f in g.findings)


def test_missing_rollout_uses_epoch_windows():
    skip = {(2, 1, 0)}  # row_2 lost one rollout in epoch 1
    raw, truth = make_raw(rows=5, epochs=3, k=2, seed=4, skip=skip)
    g = group(raw, epochs=3, per_row=2)
    assert assigned(g) == truth
    row = g.rows["row_2"]
    assert row.method == "windows" and row.sizes() == [2, 1, 2]
    assert any("row_2" in w and "5 rollouts" in w for w in g.warnings)
    assert any("epoch 1: fewer than 2 rollouts" in w and "row_2" in w for w in g.warnings)


def test_extra_rollout_uses_epoch_windows():
    raw, truth = make_raw(rows=4, epochs=3, k=2, seed=5, extra={(0, 2)})
    g = group(raw, epochs=3, per_row=2)
    assert assigned(g) == truth
    assert g.rows["row_0"].sizes() == [2, 2, 3]


def test_uneven_samples_everywhere_falls_back_to_gaps():
    # every row irregular: no windows to learn, the largest time gaps separate the epochs
    skip = {(r, r % 3, 0) for r in range(3)}
    raw, truth = make_raw(rows=3, epochs=3, k=3, seed=6, skip=skip)
    g = group(raw, epochs=3, per_row=3)
    assert {r.method for r in g.rows.values()} == {"gaps"}
    assert assigned(g) == truth
    assert any("ambiguous" in w for w in g.warnings)


def test_a_whole_epoch_missing_for_a_row_lands_in_the_right_epoch():
    skip = {(1, 1, s) for s in range(2)}
    raw, truth = make_raw(rows=4, epochs=3, k=2, seed=7, skip=skip)
    g = group(raw, epochs=3, per_row=2)
    assert assigned(g) == truth
    assert g.rows["row_1"].sizes() == [2, 0, 2]
    assert any("epoch 1: no rollouts for 1 row: row_1" in w for w in g.warnings)


def test_missing_and_unexpected_rows_are_reported():
    raw, _ = make_raw(rows=3, epochs=2, k=1, seed=8)
    g = group(raw, epochs=2, per_row=1, expected_rows=["row_0", "row_1", "row_7"])
    assert g.missing_rows == ["row_7"]
    assert g.unexpected_rows == ["row_2"]
    assert any("row_7" in w and "no traces" in w for w in g.warnings)
    assert "of 3 in the dataset" in g.findings[0]


def test_running_job_has_a_partial_last_epoch():
    # epoch 2 is under way: only rows 0 and 1 have been rolled out in it
    skip = {(r, 2, s) for r in (2, 3) for s in range(2)}
    raw, truth = make_raw(rows=4, epochs=3, k=2, seed=9, skip=skip, shuffle_rows=False)
    g = group(raw, epochs=3, per_row=2, finished_epochs=2)
    assert assigned(g) == truth
    assert g.finished_epochs == 2
    assert sorted(g.epoch(2)) == ["row_0", "row_1"]
    assert {r.method for r in g.rows.values()} == {"equal"}
    # incomplete current epoch is not a warning: only finished epochs are checked
    assert not any("epoch 2" in w for w in g.warnings)
    assert any("2 finished" in f for f in g.findings)


def test_running_job_with_a_row_half_way_through_an_epoch():
    skip = {(0, 2, 1)}
    raw, truth = make_raw(rows=3, epochs=3, k=2, seed=10, skip=skip)
    g = group(raw, epochs=3, per_row=2, finished_epochs=2)
    assert assigned(g) == truth
    assert g.rows["row_0"].sizes() == [2, 2, 1]


def test_one_epoch_job():
    raw, truth = make_raw(rows=3, epochs=1, k=4, seed=11)
    g = group(raw, epochs=1, per_row=4)
    assert g.epochs == 1 and assigned(g) == truth
    with pytest.raises(SvgrftError) as e:
        ep.choose_epochs(g.epochs, g.finished_epochs)
    assert "one epoch" in e.value.message and "--source replay" in e.value.hint


def test_retries_with_the_same_rollout_id_collapse_to_the_longest():
    raw, truth = make_raw(rows=2, epochs=2, k=1, seed=12)
    dup = dict(raw[0])
    dup["id"] = "retry"
    dup["timestamp"] = iso(ep.parse_time(raw[0]["timestamp"]) + 2)
    dup["input"] = {
        "messages": [
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "a"},
            {"role": "user", "content": "again"},
        ]
    }
    dup["output"] = {"role": "assistant", "content": "the longer one"}
    g = group(raw + [dup], epochs=2, per_row=1)
    assert assigned(g) == truth
    rid = [t for t in raw[0]["tags"] if t.startswith("rollout_id:")][0].split(":", 1)[1]
    r = [r for re_ in g.rows.values() for grp in re_.groups for r in grp if r.rollout_id == rid][0]
    assert r.reply == "the longer one" and r.n_traces == 2
    assert any("shared a rollout_id" in f for f in g.findings)


def test_epoch_tag_is_used_and_cross_checked():
    raw, truth = make_raw(rows=3, epochs=3, k=2, seed=13, tags=lambda r, e, s: [f"epoch:{e}"])
    g = group(raw, epochs=3, per_row=2)
    assert g.tag_kind == "epoch" and g.tag_agreement == (18, 18)
    assert assigned(g) == truth and {r.method for r in g.rows.values()} == {"tag"}


def test_one_based_epoch_tag():
    raw, truth = make_raw(rows=3, epochs=2, k=2, seed=14, tags=lambda r, e, s: [f"epoch:{e + 1}"])
    g = group(raw, epochs=2, per_row=2)
    assert assigned(g) == truth and g.tag_agreement == (12, 12)


def test_epoch_tag_disagreeing_with_timing_wins_and_is_reported():
    # the tag claims one rollout of row_0/epoch 0 belongs to epoch 1
    raw, truth = make_raw(
        rows=3, epochs=2, k=2, seed=15, tags=lambda r, e, s: [f"epoch:{1 if (r, e, s) == (0, 0, 0) else e}"]
    )
    g = group(raw, epochs=2, per_row=2)
    assert g.tag_agreement == (11, 12)
    assert any("disagrees with timing for 1 of 12" in w for w in g.warnings)
    assert g.rows["row_0"].sizes() == [1, 3]


def test_step_tag_maps_steps_to_epochs():
    # 2 steps per epoch: rows 0-1 in the first step, rows 2-3 in the second
    raw, truth = make_raw(
        rows=4, epochs=3, k=2, seed=16, shuffle_rows=False, tags=lambda r, e, s: [f"step:{e * 2 + (r >= 2)}"]
    )
    g = group(raw, epochs=3, per_row=2)
    assert g.tag_kind == "step" and g.tag_agreement == (24, 24)
    assert assigned(g) == truth


def test_choose_epochs_defaults_and_running_note():
    c = ep.choose_epochs(4, 4)
    assert (c.before, c.after, c.note) == (0, 3, None)
    c = ep.choose_epochs(4, 2, state="JOB_STATE_RUNNING")
    assert (c.before, c.after) == (0, 1)
    assert "running" in c.note and "latest finished epoch 1" in c.note


def test_choose_epochs_requested():
    assert (ep.choose_epochs(5, 5, [1, -1]).before, ep.choose_epochs(5, 5, [1, -1]).after) == (1, 4)
    with pytest.raises(UsageError) as e:
        ep.choose_epochs(3, 3, [0, 3])
    assert "0..2" in e.value.message
    with pytest.raises(UsageError):
        ep.choose_epochs(3, 3, [1, 1])
    with pytest.raises(UsageError):
        ep.choose_epochs(3, 3, [1])


def test_choose_epochs_nothing_finished():
    with pytest.raises(SvgrftError) as e:
        ep.choose_epochs(3, 0, state="JOB_STATE_RUNNING")
    assert "no epoch" in e.value.message
    with pytest.raises(SvgrftError) as e:
        ep.choose_epochs(3, 1, state="JOB_STATE_RUNNING")
    assert "only epoch 0" in e.value.message


def test_rewards_survive_grouping():
    raw, _ = make_raw(rows=2, epochs=3, k=1, seed=17, reward=True)
    g = group(raw, epochs=3, per_row=1)
    for e in range(3):
        assert all(r.reward == pytest.approx(0.1 * e) for rs in g.epoch(e).values() for r in rs)


def test_summary_is_json_ready():
    import json

    raw, _ = make_raw(rows=2, epochs=2, k=2, seed=18)
    g = group(raw, epochs=2, per_row=2, expected_rows=["row_0", "row_1"])
    s = json.loads(json.dumps(g.summary()))
    assert s["rows"] == 2 and s["epochs"] == 2 and s["rollouts_per_row_per_epoch"] == 2
    assert len(s["epoch_windows"]) == 2 and s["methods"] == {"equal": 2}


def test_many_random_layouts_recover_the_truth():
    """Property check: random sizes, random single losses — grouping stays exact."""
    for seed in range(40):
        rng = random.Random(seed)
        rows, epochs, k = rng.randint(3, 8), rng.randint(2, 5), rng.randint(1, 4)
        skip = set()
        if k > 1 and rng.random() < 0.7:
            skip.add((rng.randrange(rows), rng.randrange(epochs), rng.randrange(k)))
        raw, truth = make_raw(rows=rows, epochs=epochs, k=k, seed=seed, skip=skip)
        g = group(raw, epochs=epochs, per_row=k)
        assert assigned(g) == truth, (seed, rows, epochs, k, skip)


# --- requirements from a hostile prompt do not hang (folded from test_qa_core.py) ---

from tests.helpers import finishes  # noqa: E402


def test_requirements_from_a_hostile_prompt_do_not_hang():
    # a 190 KB run of spaces on a "1. …" line backtracked quadratically (minutes) in compare-epochs
    out = finishes("""
        from svgrft.core.epochs import requirements_from_prompt
        print(requirements_from_prompt("Draw.\\nRequirements:\\n1. a red" + " " * 190_000 + "apple\\n2)  a table  \\n"))
        print(requirements_from_prompt("Requirements" + " " * 190_000 + "x\\n1. y"))
        print(requirements_from_prompt("Requirements:\\n1.\\t \\n"))
    """)
    first, second, third = out.splitlines()
    assert first == "['a red" + " " * 190_000 + "apple', 'a table']"
    assert second == "[]" and third == "[]"
