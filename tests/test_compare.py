"""`svgrft compare-epochs` against the fakes: the tracing client (§5.2b contract), the records source,
jobs, judge, real Chromium.

The fake job's rollout records are seeded by tests/fakes/job_records.py in svgrft's record format: rows ×
epochs × samples with timestamps inside the job's epoch windows, the epoch's policy model (or none),
drawings that get richer with every epoch and known rewards. tests/test_compare_records.py lets the fake
run the real evaluator instead.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from svgrft.core.dataset import BUNDLED_DATASET, load_dataset
from tests.conftest import FW_KEY, OPENAI_KEY, free_port
from tests.fakes import job_records as ft

N_ROWS = 4


# ----------------------------------------------------------------------------------- fixtures
@pytest.fixture
def fwx(monkeypatch):
    """FakeFireworks that records nothing by itself (the tests seed records), env pointing at it."""
    from tests.fakes import start_fireworks

    fake = start_fireworks(api_keys={FW_KEY: "acct"}, job_traces=False)
    monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
    monkeypatch.setenv("FIREWORKS_BASE_URL", fake.url)
    monkeypatch.setenv("FIREWORKS_INFERENCE_BASE_URL", fake.url + "/inference/v1")
    monkeypatch.setenv("FIREWORKS_TRACING_BASE_URL", fake.localhost_url)
    yield fake
    assert fake.errors == []
    fake.stop()


@pytest.fixture
def rows():
    return load_dataset(BUNDLED_DATASET)[:N_ROWS]


@pytest.fixture
def ds(rows, tmp_path) -> Path:
    """The job's dataset as a local JSONL file (what --dataset points at)."""
    p = tmp_path / "job-dataset.jsonl"
    p.write_bytes(ft.dataset_lines(rows))
    return p


def finished_job(fake, rows, job_id="svg-job", epochs=3, samples=2, **seed_kw):
    ft.create_job(fake, job_id, rows, epochs=epochs, samples=samples, api_key=FW_KEY)
    fake.run_job(job_id)
    truth = ft.seed_job_records(fake, job_id, rows, samples=samples, **seed_kw)
    return job_id, truth


def refs(data: dict, side: str) -> set[str]:
    return {s["ref"] for r in data["rows"] for s in r[side]}


def error_lines(r) -> list[str]:
    """The error part of stderr: exactly ``Error: …`` and ``hint: …`` (progress lines may come before)."""
    lines = r.stderr.strip().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("Error: "))
    return lines[i:]


# ----------------------------------------------------------------------------------- tracing client
def _trace(fake, rid, content, row_id="row_x", t=None):
    fake.add_trace(
        tags=[f"rollout_id:{rid}", f"row_id:{row_id}"],
        messages=[{"role": "user", "content": "u"}],
        output={"role": "assistant", "content": content},
        timestamp=t or datetime(2025, 1, 1, tzinfo=timezone.utc),
    )


def test_tracing_client_reads_one_rollout_and_an_unknown_one_is_none(fwx):
    """§5.2b: traces by rollout_id only; a 500 for an unknown rollout means 'no such rollout' (not retried)."""
    from svgrft.clients.tracing import TracingClient

    _trace(fwx, "r1", "old", t=datetime(2025, 1, 1, tzinfo=timezone.utc))
    _trace(fwx, "r1", "new", t=datetime(2025, 1, 1, 0, 1, tzinfo=timezone.utc))
    with TracingClient(fwx.localhost_url, FW_KEY, backoff=0.01) as tc:
        assert tc.trace("r1")["output"]["content"] == "new"  # the latest trace of the rollout
        assert tc.trace("never-seen") is None
    calls = fwx.calls("GET", "/v1/traces/pointwise")
    assert len(calls) == 2  # the unknown rollout's 500 was not retried as "busy"
    assert all(c.query["sleep_between_gets"] == "0.1" and c.query["max_retries"] == "5" for c in calls)
    assert fwx.tracing.sleeps == [0.1]  # what the gateway was asked to sleep per trace (the known rollout)


def test_tracing_client_lists_with_a_total_limit_and_no_page(fwx):
    from svgrft.clients.tracing import TracingClient
    from svgrft.errors import ConfigError

    for i in range(5):
        _trace(fwx, "r2", f"a{i}", t=datetime(2025, 1, 1, 0, i, tzinfo=timezone.utc))
    with TracingClient(fwx.localhost_url, FW_KEY) as tc:
        res = tc.traces(["rollout_id:r2"], limit=3)
        everything = tc.traces(["rollout_id:r2"], limit=10)
        with pytest.raises(ConfigError):  # no search without a rollout id: the gateway does not support it
            tc.traces(["row_id:row_x"])
    assert [t["output"]["content"] for t in res.traces] == ["a4", "a3", "a2"] and res.truncated
    assert len(everything.traces) == 5 and not everything.truncated
    calls = fwx.calls("GET", "/v1/traces")
    assert [c.query["limit"] for c in calls] == ["3", "10"] and all("page" not in c.query for c in calls)


def test_the_fake_gateway_refuses_what_the_real_one_refuses(fwx):
    """Pointwise without a rollout_id tag → 500 (OSS gateway: max() of nothing); page → 400."""
    import httpx

    hdr = {"Authorization": f"Bearer {FW_KEY}"}
    r = httpx.get(f"{fwx.localhost_url}/v1/traces/pointwise", params={"tags": "row_id:row_x"}, headers=hdr)
    assert r.status_code == 500
    r = httpx.get(f"{fwx.localhost_url}/v1/traces", params={"tags": "rollout_id:nope"}, headers=hdr)
    assert r.status_code == 500 and "No insertion_ids" in r.json()["detail"]
    _trace(fwx, "r3", "x")
    r = httpx.get(f"{fwx.localhost_url}/v1/traces", params={"tags": "rollout_id:r3", "page": "2"}, headers=hdr)
    assert r.status_code == 400


@pytest.mark.parametrize(
    "kind, expect", [("401", "rejected the API key"), ("503", "answered 503"), ("malformed", "not JSON")]
)
def test_tracing_client_errors_are_typed(fwx, kind, expect):
    from svgrft.clients.tracing import TracingClient
    from svgrft.errors import ApiError

    fwx.faults.add(method="GET", path=r"traces/pointwise", kind=kind, times=None)
    with TracingClient(fwx.localhost_url, FW_KEY, retries=2, backoff=0.01) as tc:
        with pytest.raises(ApiError) as e:
            tc.trace("r")
    assert expect in e.value.message and e.value.hint
    n = len(fwx.calls("GET", "/v1/traces/pointwise"))
    assert n == (1 if kind == "401" else 3)  # 401 is not retried; the others twice


def test_tracing_client_retries_a_429_then_succeeds(fwx):
    from svgrft.clients.tracing import TracingClient

    _trace(fwx, "r4", "ok")
    fwx.faults.add(method="GET", path=r"traces/pointwise", kind="429", times=1, retry_after=0.01)
    with TracingClient(fwx.localhost_url, FW_KEY, backoff=0.01) as tc:
        assert tc.trace("r4")["output"]["content"] == "ok"


def test_tracing_client_unreachable_and_bad_key(fwx):
    from svgrft.clients.tracing import TracingClient
    from svgrft.errors import AuthError, NetworkError

    with TracingClient(f"http://127.0.0.1:{free_port()}", FW_KEY, retries=0) as tc:
        with pytest.raises(NetworkError) as e:
            tc.logs(["svgrft_eval:x"])
    assert "cannot reach the tracing gateway" in e.value.message and "FIREWORKS_TRACING_BASE_URL" in e.value.hint
    with TracingClient(fwx.localhost_url, "wrong-key-0123456789") as tc:
        with pytest.raises(AuthError):
            tc.logs(["svgrft_eval:x"])


def test_tracing_client_logs_need_every_tag_and_fall_back_to_v1(fwx):
    from svgrft.clients.tracing import TracingClient

    fwx.add_log(tags=["a:1", "b:2"], message="both")
    fwx.add_log(tags=["a:1"], message="one")
    with TracingClient(fwx.localhost_url, FW_KEY) as tc:
        assert [e["message"] for e in tc.logs(["a:1", "b:2"])] == ["both"]
    fwx.faults.add(method="GET", path=r"^/logs$", kind="404", times=None)
    with TracingClient(fwx.localhost_url, FW_KEY) as tc:
        assert [e["message"] for e in tc.logs(["a:1"])] == ["one", "both"]
    assert fwx.calls("GET", "/v1/logs")


# ----------------------------------------------------------------------------------- end to end (CLI)
def test_compare_epochs_end_to_end(cli, fwx, oai, rows, ds, tmp_path):
    job, truth = finished_job(fwx, rows, epochs=3, samples=2)
    out = tmp_path / "rep"
    r = cli("compare-epochs", job, "--dataset", ds, "--out", out, "--rows", "3")
    assert r.exit_code == 0, r
    # what was found, said clearly on stderr
    assert f"{N_ROWS * 3 * 2} rollout records of evaluator svg-eval" in r.stderr
    assert "epochs split by the policy model the records name (3 models)" in r.stderr
    assert "rollouts per epoch: epoch 0: 8, epoch 1: 8, epoch 2: 8" in r.stderr
    # the table on stdout: one line per prompt, the summary, the reward curve, the files
    for row in rows:
        assert row.row_id in r.stdout
    assert "epoch 0" in r.stdout and "epoch 2" in r.stdout and "wins / ties / losses" in r.stdout
    assert "training reward per epoch" in r.stdout
    for name in ("index.html", "before_after.png", "reward_curve.png"):
        assert (out / name).is_file()
    data = json.loads((out / "comparison.json").read_text())
    # epochs were recovered exactly, and the scores are the recorded rewards: no judge call at all
    assert refs(data, "before") == {rid for rid, (e, _) in truth.items() if e == 0}
    assert refs(data, "after") == {rid for rid, (e, _) in truth.items() if e == 2}
    assert oai.judge_calls == 0
    for row in data["rows"]:
        for side in ("before", "after"):
            for smp in row[side]:
                assert smp["score"] == truth[smp["ref"]][1] == smp["training_reward"]
    curve = data["meta"]["reward_curve"]
    for e in range(3):
        want = [sc for (ee, sc) in truth.values() if ee == e]
        assert curve[e]["n"] == len(want) and curve[e]["mean"] == pytest.approx(sum(want) / len(want))
    s = data["summary"]
    assert s["after"]["mean"] > s["before"]["mean"] + 0.3
    assert s["wins"] == N_ROWS and s["losses"] == 0
    assert s["delta"]["low"] > 0  # the 95% interval excludes "no change"
    for text in (r.stdout, r.stderr, (out / "index.html").read_text()):
        assert FW_KEY not in text and OPENAI_KEY not in text
    # one gateway query per dataset row, with svgrft's own tags
    calls = fwx.calls("GET", "/logs")
    assert len(calls) == N_ROWS
    assert all(c.query["program"] == "svgrft" for c in calls)

    for key in ("before", "after", "delta"):
        assert set(s[key]) >= {"n", "mean", "low", "high"}
    row = data["rows"][0]
    assert {"before_mean", "after_mean", "delta", "outcome", "requirements"} <= set(row)
    sample = row["after"][0]
    assert {"score", "fulfilled", "total", "verdicts", "ref", "is_valid", "training_reward"} <= set(sample)
    assert sample["verdicts"] and {"index", "fulfilled", "evidence"} <= set(sample["verdicts"][0])
    assert data["meta"]["grouping"]["rollouts_per_row_per_epoch"] == 2

    # the contact sheet: the 3 prompts with the biggest gains, a real screenshot (one column)
    from svgrft.core.pngutil import decode_png, non_background_fraction

    deltas = sorted(data["rows"], key=lambda x: (-x["delta"], x["row_id"]))
    assert sorted(data["contact_sheet_rows"]) == sorted(x["row_id"] for x in deltas[:3])
    sheet = decode_png((out / "before_after.png").read_bytes())
    assert sheet[0] == 1000 and 900 < sheet[1] < 4000
    assert non_background_fraction(sheet) > 0.05
    assert non_background_fraction(decode_png((out / "reward_curve.png").read_bytes())) > 0.01

    # index.html opens in headless Chromium (JS on, as a user's browser) with every image present
    from playwright.sync_api import sync_playwright

    from svgrft.core.render import find_chromium

    n_samples = sum(len(x["before"]) + len(x["after"]) for x in data["rows"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium())
        try:
            page = browser.new_page()
            page.goto((out / "index.html").as_uri())
            images = page.evaluate(
                "() => Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
            )
            title = page.title()
            sections = page.evaluate("() => document.querySelectorAll('section.row').length")
            curves = page.evaluate("() => document.querySelectorAll('svg.curve').length")
        finally:
            browser.close()
    assert title.startswith("svgrft compare-epochs")
    assert sections == N_ROWS and curves == 1
    assert len(images) == n_samples  # every sample has its picture
    assert all(done and w > 0 and h > 0 for done, w, h in images), images


def test_rejudge_asks_the_judge_and_the_cache_makes_a_rerun_free(cli, fwx, oai, rows, ds, tmp_path):
    job, _ = finished_job(fwx, rows[:2], epochs=2, samples=1)
    r1 = cli("compare-epochs", job, "--dataset", ds, "--out", tmp_path / "a", "--rejudge", "--json")
    assert r1.exit_code == 0, r1
    first = oai.judge_calls
    assert first > 0
    assert r1.json()["meta"]["rejudged"] is True
    r2 = cli("compare-epochs", job, "--dataset", ds, "--out", tmp_path / "b", "--rejudge", "--json")
    assert r2.exit_code == 0, r2
    assert oai.judge_calls == first  # every image was judged before: cache hits only
    r3 = cli("compare-epochs", job, "--dataset", ds, "--out", tmp_path / "c", "--rejudge", "--no-cache", "--json")
    assert r3.exit_code == 0, r3
    assert oai.judge_calls > first


def test_without_dataset_the_jobs_own_dataset_is_downloaded(cli, fwx, rows, tmp_path):
    job, _ = finished_job(fwx, rows, epochs=2, samples=1)
    # a different local dataset.train must not be used silently
    (tmp_path / "other.jsonl").write_bytes(ft.dataset_lines(load_dataset(BUNDLED_DATASET)[10:12]))
    r = cli("compare-epochs", job, "--out", tmp_path / "o", "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert data["meta"]["dataset_origin"] == "downloaded from Fireworks (svg-ds)"
    assert {x["row_id"] for x in data["rows"]} == {x.row_id for x in rows}
    assert fwx.calls("GET", re.compile(r"datasets/svg-ds:getDownloadEndpoint$"))


def test_uneven_samples_and_a_missing_row(cli, fwx, oai, rows, ds, tmp_path):
    # row index 1 lost one rollout in epoch 1; row index 3 has no records at all; split by time
    skip = {(1, 1, 0)} | {(3, e, s) for e in range(3) for s in range(2)}
    job, truth = finished_job(fwx, rows, epochs=3, samples=2, skip=skip, policy_model=False)
    r = cli("compare-epochs", job, "--dataset", ds, "--out", tmp_path / "o", "--epochs", "1,2", "--json")
    assert r.exit_code == 0, r
    data = r.json()
    g = data["meta"]["grouping"]
    assert g["missing_rows"] == [rows[3].row_id]
    assert data["meta"]["rows_without_records"] == [rows[3].row_id]
    assert g["methods"] == {"equal": 2, "windows": 1}
    assert "by time" in data["meta"]["epoch_split"]
    assert f"row {rows[1].row_id}: 5 rollouts, expected 3×2" in r.stderr
    assert "1 dataset row has no records: " + rows[3].row_id in r.stderr
    assert refs(data, "before") == {rid for rid, (e, _) in truth.items() if e == 1}
    assert refs(data, "after") == {rid for rid, (e, _) in truth.items() if e == 2}
    assert {row["row_id"] for row in data["rows"]} == {r_.row_id for r_ in rows[:3]}
    assert [c["n"] for c in data["meta"]["reward_curve"]] == [6, 5, 6]


def test_records_of_another_job_outside_the_window_are_left_out(cli, fwx, rows, ds, tmp_path):
    job, truth = finished_job(fwx, rows[:2], epochs=2, samples=1)
    from svgrft.core import records as rec

    old = fwx.job_create_time(job) - timedelta(hours=2)  # an earlier job with the same evaluator
    fwx.add_log(
        tags=rec.record_tags(ft.EVAL_KEY, rows[0].row_id, "old-1"),
        program="svgrft",
        timestamp=old,
        extras={
            "svgrft_record": rec.build_record(
                row_id=rows[0].row_id,
                rollout_id="old-1",
                time_s=old.timestamp(),
                policy_model="x",
                svg=None,
                score=0.0,
                is_valid=True,
                gate="no_svg",
                reason="no SVG",
                verdicts=[],
                judge_model="j",
                judge_mode="checklist",
            )
        },
    )
    r = cli("compare-epochs", job, "--dataset", ds, "--out", tmp_path / "o", "--json")
    assert r.exit_code == 0, r
    assert "old-1" not in refs(r.json(), "before") | refs(r.json(), "after")
    assert "1 record of this evaluator falls outside the job's time window" in r.stderr


def test_running_job_compares_first_with_latest_finished_epoch(cli, fwx, oai, rows, ds, tmp_path):
    job = "running-job"
    ft.create_job(fwx, job, rows, epochs=4, samples=2, api_key=FW_KEY)
    for _ in range(100):  # advance to the middle of epoch 2
        j = fwx.advance_job(job)
        if (j.get("jobProgress") or {}).get("epoch") == 2:
            break
    fwx.set_job_state(job, "RUNNING", epoch=2, hold=True)
    truth = ft.seed_job_records(fwx, job, rows, samples=2, epochs=4, partial_rows=2)
    assert sorted({e for e, _ in truth.values()}) == [0, 1, 2]
    r = cli("compare-epochs", job, "--dataset", ds, "--out", tmp_path / "o", "--json")
    assert r.exit_code == 0, r
    assert "still running: comparing epoch 0 with the latest finished epoch 1 (of 4)" in r.stderr
    data = r.json()
    assert data["after_label"] == "epoch 1"
    assert refs(data, "after") == {rid for rid, (e, _) in truth.items() if e == 1}
    assert data["meta"]["grouping"]["finished_epochs"] == 2
    assert fwx.job(job)["state"] == "JOB_STATE_RUNNING"


def test_one_epoch_job_is_a_one_line_error(cli, fwx, rows, ds):
    job, _ = finished_job(fwx, rows, job_id="single", epochs=1, samples=2)
    r = cli("compare-epochs", job, "--dataset", ds)
    assert r.exit_code == 1
    err = error_lines(r)
    assert len(err) == 2 and err[0].startswith("Error: this job ran one epoch only")
    assert err[1].startswith("hint:") and "--source replay" in err[1]
    assert not fwx.calls("GET", "/logs")  # decided before any gateway traffic


def test_unknown_job_is_a_one_line_error(cli, fwx, ds):
    r = cli("compare-epochs", "no-such-job", "--dataset", ds)
    assert r.exit_code == 1
    lines = error_lines(r)
    assert lines[0].startswith("Error: RFT job 'no-such-job' not found") and lines[1].startswith("hint:")
    assert len(lines) == 2


def test_job_without_records_says_what_works_instead(cli, fwx, rows, ds):
    ft.create_job(fwx, "quiet-job", rows, epochs=2, samples=2, api_key=FW_KEY)
    fwx.run_job("quiet-job")
    r = cli("compare-epochs", "quiet-job", "--dataset", ds)
    assert r.exit_code == 1
    lines = error_lines(r)
    assert lines[0].startswith("Error: no rollout records of job quiet-job on the tracing gateway")
    assert lines[1].startswith("hint:") and "--source replay" in lines[1] and "--runs" in lines[1]
    assert len(lines) == 2
    assert len(fwx.calls("GET", "/logs")) == N_ROWS  # one query per dataset row


def test_job_scored_by_another_tools_evaluator_is_a_one_line_error(cli, fwx, rows, ds):
    ft.create_job(fwx, "foreign-job", rows, epochs=2, samples=1, api_key=FW_KEY, evaluator_id="ep-eval", eval_key=None)
    fwx.run_job("foreign-job")
    r = cli("compare-epochs", "foreign-job", "--dataset", ds)
    assert r.exit_code == 1
    lines = error_lines(r)
    assert lines[0].startswith("Error: job foreign-job was not scored by an svgrft evaluator that records")
    assert "--source replay" in lines[1] and "--runs" in lines[1] and len(lines) == 2
    assert not fwx.calls("GET", "/logs")


def test_unreachable_gateway_is_a_one_line_error(cli, fwx, rows, ds, monkeypatch):
    job, _ = finished_job(fwx, rows, epochs=2, samples=1)
    monkeypatch.setenv("FIREWORKS_TRACING_BASE_URL", f"http://127.0.0.1:{free_port()}")
    r = cli("compare-epochs", job, "--dataset", ds)
    assert r.exit_code == 1
    lines = error_lines(r)
    assert len(lines) == 2
    assert lines[0].startswith("Error: cannot reach the tracing gateway at http://127.0.0.1:")
    assert lines[1].startswith("hint:") and "FIREWORKS_TRACING_BASE_URL" in lines[1]


def test_bad_epochs_and_options_are_usage_errors(cli, fwx, rows, ds):
    job, _ = finished_job(fwx, rows, epochs=3, samples=1)
    r = cli("compare-epochs", job, "--dataset", ds, "--epochs", "0,7")
    assert r.exit_code == 2 and "epoch 7 is not available: finished epochs are 0..2" in r.stderr
    r = cli("compare-epochs", job, "--epochs", "zero,one")
    assert r.exit_code == 2 and "hint:" in r.stderr
    r = cli("compare-epochs", job, "--pick", "prettiest")
    assert r.exit_code == 2 and "best, worst, random, all" in r.stderr
    r = cli("compare-epochs")
    assert r.exit_code == 2 and "missing JOB_ID" in r.stderr
    r = cli("compare-epochs", job, "--source", "replay", "--rejudge")
    assert r.exit_code == 2 and "--rejudge" in r.stderr


def test_jobs_status_shows_the_mean_reward_per_epoch(cli, fwx, rows):
    job, truth = finished_job(fwx, rows, epochs=3, samples=2)
    r = cli("jobs", "status", job, "--json")
    assert r.exit_code == 0, r
    curve = r.json()["reward_curve"]
    for e in range(3):
        want = [sc for (ee, sc) in truth.values() if ee == e]
        assert curve[e]["mean"] == pytest.approx(sum(want) / len(want))
    assert len(fwx.calls("GET", "/logs")) == 1  # one query for the whole evaluator
    r = cli("jobs", "status", job)
    assert r.exit_code == 0 and "mean reward" in r.stdout and "epoch 2: " in r.stdout
    ft.create_job(
        fwx,
        "quiet-job",
        rows,
        epochs=2,
        samples=2,
        api_key=FW_KEY,
        evaluator_id="other-eval",
        eval_key="fedcba9876543210",
    )
    fwx.run_job("quiet-job")
    r = cli("jobs", "status", "quiet-job", "--json")
    assert r.exit_code == 0 and r.json()["reward_curve"] is None
    assert r.json()["reward_curve_note"].startswith("not available: no rollout records")


# ----------------------------------------------------------------------------------- report files
def test_hostile_records_are_dropped_or_escaped_and_never_crash(cli, fwx, oai, rows, ds, tmp_path):
    from svgrft.core import records as rec

    job, _ = finished_job(fwx, rows[:2], epochs=2, samples=1)
    windows = fwx.job_epochs(job)
    t = windows[-1]["start"] + (windows[-1]["end"] - windows[-1]["start"]) / 2
    hostile = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    good = rec.build_record(
        row_id=rows[0].row_id,
        rollout_id="evil-1",
        time_s=t.timestamp(),
        policy_model=f"accounts/acct/models/{job}-epoch-1",
        svg="<svg" + "<g>" * 100_000,
        score=0.0,
        is_valid=True,
        gate="render_failed",
        reason=hostile,
        verdicts=[],
        judge_model=hostile,
        judge_mode="checklist",
    )
    tags = rec.record_tags(ft.EVAL_KEY, rows[0].row_id, "evil-1")
    fwx.add_log(tags=tags, extras={"svgrft_record": good}, program="svgrft", timestamp=t)
    for junk in (
        {"svgrft_record": "nope"},
        {"svgrft_record": {**good, "score": 7}},
        {"svgrft_record": {**good, "schema": 99}},
        {"svgrft_record": {**good, "row_id": ["x"]}},
        None,
    ):
        fwx.add_log(tags=tags, extras=junk, program="svgrft", timestamp=t)
    out = tmp_path / "o"
    r = cli("compare-epochs", job, "--dataset", ds, "--out", out, "--json")
    assert r.exit_code == 0, r
    data = r.json()
    after = {s["ref"]: s for row in data["rows"] for s in row["after"]}
    assert after["evil-1"]["score"] == 0 and not after["evil-1"]["has_image"]
    assert sum(data["meta"]["records_dropped"].values()) == 5
    html = (out / "index.html").read_text()
    assert "<script>alert" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")


# ----------------------------------------------------------------------------------- other sources
def test_runs_source_compares_two_local_runs(cli, renderer, monkeypatch, tmp_path, rows):
    from svgrft.core.store import Store

    with Store() as store:
        a = ft.store_run(store, renderer, rows[:3], "accounts/fireworks/models/qwen3-0p6b", ft.BASE_SVG, 0.25)
        b = ft.store_run(store, renderer, rows[:3], "accounts/acct/models/svg-rft", ft.svg_for(2, 3, 0), 0.75)
    out = tmp_path / "runs"
    r = cli("compare-epochs", "--runs", a, b, "--out", out, "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert data["source"] == "runs" and data["before_label"].startswith(a)
    assert data["summary"]["before"]["mean"] == pytest.approx(0.25)
    assert data["summary"]["after"]["mean"] == pytest.approx(0.75)
    assert data["summary"]["wins"] == 3
    assert (out / "before_after.png").is_file() and (out / "index.html").is_file()
    r = cli("compare-epochs", "--runs", a, "nope")
    assert r.exit_code == 1 and "no run 'nope'" in r.stderr and "hint:" in r.stderr


def _replay_job(fake, rows, job_id="replay-job"):
    ft.create_job(fake, job_id, rows, epochs=2, samples=1, api_key=FW_KEY, base_model="tiny-base-model")
    fake.run_job(job_id)
    return job_id


def test_replay_needs_a_deployment_for_the_output_model(cli, fwx, oai, rows, ds):
    job = _replay_job(fwx, rows[:2])
    r = cli("compare-epochs", job, "--source", "replay", "--dataset", ds)
    assert r.exit_code == 1
    lines = error_lines(r)
    assert len(lines) == 2
    assert lines[0].startswith(f"Error: the output model accounts/acct/models/{job}-out cannot be served")
    assert "deployment" in lines[1]


def test_replay_compares_base_and_output_model(cli, fwx, oai, rows, ds, tmp_path):
    job = _replay_job(fwx, rows[:2])
    fwx.add_deployment("svg-dep", f"accounts/acct/models/{job}-out")
    r = cli("compare-epochs", job, "--source", "replay", "--dataset", ds, "--out", tmp_path / "o", "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert (data["before_label"], data["after_label"]) == ("base model", "trained model")
    assert data["summary"]["after"]["mean"] > data["summary"]["before"]["mean"]  # "*base*" models draw worse
    gens = [c for c in fwx.calls("POST", re.compile(r"chat/completions$"))]
    assert {c.json["model"] for c in gens} == {
        "accounts/fireworks/models/tiny-base-model",
        f"accounts/acct/models/{job}-out",
    }


# ----------------------------------------------------------------------------------- report model (pure)
def _cmp(deltas, samples=1):
    from svgrft.core.compare_report import Comparison, PromptRow, Sample

    rows = []
    for i, d in enumerate(deltas):
        b = 0.5 - d / 2 if d is not None else 0.5
        a = 0.5 + d / 2 if d is not None else None
        rows.append(
            PromptRow(
                f"row_{i}",
                f"Write `svg` code to draw an image of thing {i}.",
                ["r1", "r2"],
                before=[Sample(b, True, ref=f"b{i}-{k}") for k in range(samples)],
                after=[] if a is None else [Sample(a, True, ref=f"a{i}-{k}") for k in range(samples)],
            )
        )
    return Comparison("t", "tracing", "epoch 0", "epoch 3", rows)


def test_stats_count_wins_ties_losses_and_leave_out_unpaired_rows():
    cmp = _cmp([0.4, 0.0, -0.2, 0.1, None])
    st = cmp.stats()
    assert (st["wins"], st["ties"], st["losses"]) == (2, 1, 1)
    assert st["paired_prompts"] == 4 and st["prompts"] == 5
    assert st["delta"]["mean"] == pytest.approx((0.4 + 0.0 - 0.2 + 0.1) / 4)
    assert st["delta"]["low"] < st["delta"]["mean"] < st["delta"]["high"]
    assert [g["row_id"] for g in st["biggest_gains"]] == ["row_0", "row_3"]
    assert [g["row_id"] for g in st["biggest_regressions"]] == ["row_2"]


def test_unscored_samples_are_left_out_of_means():
    from svgrft.core.compare_report import PromptRow, Sample

    row = PromptRow(
        "r",
        "p",
        ["a"],
        before=[Sample(0.2, True), Sample(None, False, reason="judge: rate_limit")],
        after=[Sample(0.6, True)],
    )
    assert row.mean("before") == pytest.approx(0.2) and row.delta == pytest.approx(0.4)


def test_pick_rows():
    from svgrft.core.compare_report import pick_rows
    from svgrft.errors import UsageError

    cmp = _cmp([0.1, 0.5, -0.3, 0.2, -0.1, None])
    assert [r.row_id for r in pick_rows(cmp, 2, "best")] == ["row_1", "row_3"]
    assert [r.row_id for r in pick_rows(cmp, 2, "worst")] == ["row_2", "row_4"]
    assert len(pick_rows(cmp, 10, "all")) == 6
    r1 = [r.row_id for r in pick_rows(cmp, 3, "random", seed=7)]
    assert r1 == [r.row_id for r in pick_rows(cmp, 3, "random", seed=7)] and len(set(r1)) == 3
    assert "row_5" not in r1  # unpaired rows are never drawn
    with pytest.raises(UsageError):
        pick_rows(cmp, 2, "prettiest")


def test_representative_sample_is_the_one_closest_to_the_mean():
    from svgrft.core.compare_report import PromptRow, Sample

    row = PromptRow(
        "r", "p", ["a"], before=[Sample(0.0, True, ref="x"), Sample(0.4, True, ref="y"), Sample(1.0, True, ref="z")]
    )
    assert row.representative("before").ref == "y"  # mean 0.47: neither the best nor the worst draw


def test_html_escapes_everything_model_written():
    from svgrft.core.compare_report import Comparison, PromptRow, Sample, contact_sheet_html, index_html

    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    row = PromptRow(
        evil,
        evil,
        [evil],
        before=[
            Sample(0.1, True, svg=evil, reason=evil, verdicts=[{"index": 1, "fulfilled": False, "evidence": evil}])
        ],
        after=[Sample(0.9, True, svg=evil, reason=evil)],
    )
    cmp = Comparison(evil, "tracing", evil, evil, [row], findings=[evil], warnings=[evil])
    for html in (index_html(cmp), contact_sheet_html(cmp, [row])[0]):
        assert "<script>" not in html and "<img src=x" not in html
        assert "&lt;script&gt;" in html


def test_contact_sheet_layout_fits_the_screenshot_cap():
    from svgrft.core.compare_report import MAX_SHEET_HEIGHT, contact_sheet_html

    cmp = _cmp([0.1] * 120)
    html, width, height = contact_sheet_html(cmp, cmp.rows, pick="all")
    assert width == 1500 and height <= MAX_SHEET_HEIGHT and html.count('class="item"') == 120
    html, width, _ = contact_sheet_html(cmp, cmp.rows[:2])
    assert width == 1000 and "Thing 0." in html  # SVGBench boilerplate stripped from the caption


# --- 80-column table, collapsed row warnings, hostile tracing bodies (folded from test_qa_cli/test_qa_core) ---


def test_compare_runs_table_keeps_scores_at_80_columns(cli, renderer, monkeypatch, tmp_path):
    from svgrft.core.dataset import BUNDLED_DATASET, load_dataset
    from svgrft.core.store import Store

    monkeypatch.setenv("COLUMNS", "80")
    rows = load_dataset(BUNDLED_DATASET)[:3]

    with Store() as store:
        a = ft.store_run(store, renderer, rows, "accounts/fireworks/models/qwen3-0p6b", ft.BASE_SVG, 0.25)
        b = ft.store_run(
            store, renderer, rows, "accounts/acct/models/a-rather-long-fine-tuned-model-name", ft.svg_for(2, 3, 0), 0.75
        )
    r = cli("compare-epochs", "--runs", a, b, "--out", tmp_path / "cmp")
    assert r.exit_code == 0, r
    body = [ln for ln in r.stdout.splitlines() if ln.startswith("│")]
    for row in rows:
        line = next(ln for ln in body if f"│ {row.row_id} " in ln)
        cells = [c.strip() for c in line.strip("│").split("│")]
        assert cells[2:6] == ["0.25", "0.75", "+0.50", "win"], line
    summary = next(ln for ln in body if "wins / ties / losses" in ln)
    assert "3 / 0 / 0" in summary
    assert "0.250" in r.stdout and "0.750" in r.stdout and "0.500" in r.stdout
    assert all(len(line) <= 80 for line in r.stdout.splitlines() if line.startswith(("│", "┃", "┏", "└"))), r.stdout


def test_many_row_warnings_are_collapsed(cli, oai, monkeypatch, tmp_path):
    from svgrft.core.dataset import BUNDLED_DATASET, load_dataset
    from tests.conftest import FW_KEY
    from tests.fakes import start_fireworks

    fake = start_fireworks(api_keys={FW_KEY: "acct"}, job_traces=False)
    monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
    monkeypatch.setenv("FIREWORKS_BASE_URL", fake.url)
    monkeypatch.setenv("FIREWORKS_INFERENCE_BASE_URL", fake.url + "/inference/v1")
    monkeypatch.setenv("FIREWORKS_TRACING_BASE_URL", fake.localhost_url)
    try:
        rows = load_dataset(BUNDLED_DATASET)[:6]
        ds = tmp_path / "job.jsonl"
        ds.write_bytes(ft.dataset_lines(rows))
        ft.create_job(fake, "svg-job", rows, epochs=3, samples=2, api_key=FW_KEY)
        fake.run_job("svg-job")
        skip = {(i, 1, 0) for i in range(6)}  # every row lost one rollout in epoch 1
        ft.seed_job_records(fake, "svg-job", rows, samples=2, skip=skip, policy_model=False)
        r = cli("compare-epochs", "svg-job", "--dataset", ds, "--out", tmp_path / "o", "--json")
    finally:
        fake.stop()
    assert r.exit_code == 0, r
    per_row = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: row ")]
    assert len(per_row) == 3, r.stderr
    assert "… and 3 more rows like these" in " ".join(r.stderr.split())
    assert sum(w.startswith("row ") for w in r.json()["warnings"]) == 6  # all of them in the JSON


@pytest.mark.parametrize(
    "body,fragment",
    [
        (b"[" * 100_000, "not JSON"),  # RecursionError escaped the client
        (b'{"traces": [], "total_traces": ' + b"9" * 5000 + b"}", "not JSON"),
    ],
    ids=["deep", "giant_integer"],
)
def test_tracing_client_turns_hostile_bodies_into_typed_errors(canned, body, fragment):
    from svgrft.clients.tracing import TracingClient
    from svgrft.errors import ApiError

    canned.answer(body)
    with TracingClient(canned.url.rsplit("/v1", 1)[0], "fw-test-tracing-0123456789", retries=0) as tc:
        with pytest.raises(ApiError, match=fragment):
            tc.traces(["rollout_id:r"])


def test_tracing_client_ignores_non_ascii_digit_counts(canned):
    # "²".isdigit() is True but int("²") raises: a total "²" must not crash the client
    from svgrft.clients.tracing import TracingClient

    canned.answer({"traces": [{"id": "t1"}], "total_traces": "\u00b2"})
    with TracingClient(canned.url.rsplit("/v1", 1)[0], "fw-test-tracing-0123456789", retries=0) as tc:
        res = tc.traces(["rollout_id:r"], limit=5)
    assert [t["id"] for t in res.traces] == ["t1"] and not res.truncated
