"""`svgrft compare-epochs` end to end against the fakes: tracing gateway, jobs, judge, real Chromium.

The fake job's rollouts are seeded by tests/fakes_traces.py: rows × epochs × samples with realistic
eval-protocol tags and timestamps inside the job's epoch windows, *no epoch tag*, and drawings that
get richer with every epoch (the fake judge scores coverage × colours).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from svgrft.core.dataset import BUNDLED_DATASET, load_dataset
from tests import fakes_traces as ft
from tests.conftest import FW_KEY, OPENAI_KEY, free_port

N_ROWS = 4


# ----------------------------------------------------------------------------------- fixtures
@pytest.fixture
def fwx(monkeypatch):
    """FakeFireworks that records no traces by itself (the tests seed them), env pointing at it."""
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
    truth = ft.seed_job_traces(fake, job_id, rows, samples=samples, **seed_kw)
    return job_id, truth


def refs(data: dict, side: str) -> set[str]:
    return {s["ref"] for r in data["rows"] for s in r[side]}


def error_lines(r) -> list[str]:
    """The error part of stderr: exactly ``Error: …`` and ``hint: …`` (progress lines may come before)."""
    lines = r.stderr.strip().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("Error: "))
    return lines[i:]


# ----------------------------------------------------------------------------------- tracing client
def _seed_many(fake, n, row_id="row_x", start=None):
    t0 = start or datetime(2025, 1, 1, tzinfo=timezone.utc)
    for i in range(n):
        fake.add_trace(tags=[f"row_id:{row_id}", f"rollout_id:r{i}"], messages=[{"role": "user", "content": "u"}],
                       output={"role": "assistant", "content": f"a{i}"}, timestamp=t0 + timedelta(seconds=10 * i))


def test_tracing_client_pages_through_everything(fwx):
    from svgrft.clients.tracing import TracingClient

    _seed_many(fwx, 23)
    with TracingClient(fwx.localhost_url, FW_KEY, page_size=5) as tc:
        res = tc.fetch(["row_id:row_x"])
    assert sorted(t["output"]["content"] for t in res.traces) == sorted(f"a{i}" for i in range(23))
    assert res.requests == 5 and not res.truncated
    calls = fwx.calls("GET", "/v1/traces/pointwise")
    assert [c.query.get("page") for c in calls] == ["1", "2", "3", "4", "5"]
    assert all(c.headers["authorization"] != f"Bearer {FW_KEY}" for c in calls)  # the fake redacts: key was sent
    assert all(c.query["tags"] == "row_id:row_x" for c in calls)


def test_tracing_client_window_and_cap(fwx):
    from svgrft.clients.tracing import TracingClient
    from svgrft.core.epochs import parse_time

    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    _seed_many(fwx, 20, start=t0)
    with TracingClient(fwx.localhost_url, FW_KEY, page_size=4, max_traces=6) as tc:
        inside = tc.fetch(["row_id:row_x"], from_ts=t0.timestamp() + 45, to_ts=t0.timestamp() + 95)
        capped = tc.fetch(["row_id:row_x"])
    assert sorted(t["output"]["content"] for t in inside.traces) == ["a5", "a6", "a7", "a8", "a9"]
    assert all(t0.timestamp() + 45 <= parse_time(t["timestamp"]) <= t0.timestamp() + 95 for t in inside.traces)
    assert len(capped.traces) == 6 and capped.truncated


def test_tracing_client_splits_the_window_when_the_gateway_ignores_page():
    """A gateway without paging: full pages make the client bisect the time window instead."""
    from svgrft.clients.tracing import TracingClient
    from svgrft.core.epochs import parse_time
    from tests.fakes import FakeServer
    from tests.fakes._http import json_response

    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()
    traces = [{"id": f"t{i}", "tags": ["row_id:r"], "timestamp": datetime.fromtimestamp(t0 + 7 * i, timezone.utc)
               .isoformat()} for i in range(40)]

    class NoPaging(FakeServer):
        def handle(self, req):
            lo, hi = req.q("from_timestamp"), req.q("to_timestamp")
            out = [t for t in traces if (not lo or parse_time(t["timestamp"]) >= parse_time(lo))
                   and (not hi or parse_time(t["timestamp"]) <= parse_time(hi))]
            return json_response(200, {"traces": out[: int(req.q("limit", "100"))]})  # no meta, page ignored

    with NoPaging().start() as gw:
        with TracingClient(gw.url, "k" * 20, page_size=8) as tc:
            res = tc.fetch(["row_id:r"], from_ts=t0 - 1, to_ts=t0 + 7 * 40)
    assert sorted(t["id"] for t in res.traces) == sorted(t["id"] for t in traces)
    assert not res.truncated


@pytest.mark.parametrize("kind, expect", [("401", "rejected the API key"), ("503", "answered 503"),
                                          ("malformed", "not JSON")])
def test_tracing_client_errors_are_typed(fwx, kind, expect):
    from svgrft.clients.tracing import TracingClient
    from svgrft.errors import ApiError

    fwx.faults.add(method="GET", path=r"traces/pointwise", kind=kind, times=None)
    with TracingClient(fwx.localhost_url, FW_KEY, retries=2, backoff=0.01) as tc:
        with pytest.raises(ApiError) as e:
            tc.fetch(["row_id:r"])
    assert expect in e.value.message and e.value.hint
    n = len(fwx.calls("GET", "/v1/traces/pointwise"))
    assert n == (1 if kind == "401" else 3)  # 401 is not retried; the others twice


def test_tracing_client_retries_a_429_then_succeeds(fwx):
    from svgrft.clients.tracing import TracingClient

    _seed_many(fwx, 3)
    fwx.faults.add(method="GET", path=r"traces/pointwise", kind="429", times=1, retry_after=0.01)
    with TracingClient(fwx.localhost_url, FW_KEY, backoff=0.01) as tc:
        assert len(tc.fetch(["row_id:row_x"]).traces) == 3


def test_tracing_client_unreachable_and_bad_key(fwx):
    from svgrft.clients.tracing import TracingClient
    from svgrft.errors import AuthError, NetworkError

    with TracingClient(f"http://127.0.0.1:{free_port()}", FW_KEY, retries=0) as tc:
        with pytest.raises(NetworkError) as e:
            tc.fetch(["row_id:r"])
    assert "cannot reach the tracing gateway" in e.value.message and "FIREWORKS_TRACING_BASE_URL" in e.value.hint
    with TracingClient(fwx.localhost_url, "wrong-key-0123456789") as tc:
        with pytest.raises(AuthError):
            tc.fetch(["row_id:r"])


# ----------------------------------------------------------------------------------- end to end (CLI)
def test_compare_epochs_end_to_end(cli, fwx, oai, rows, ds, tmp_path):
    job, truth = finished_job(fwx, rows, epochs=3, samples=2, rewards=True)
    out = tmp_path / "rep"
    r = cli("compare-epochs", job, "--dataset", ds, "--out", out, "--rows", "3")
    assert r.exit_code == 0, r
    # what was found, said clearly on stderr
    assert f"{N_ROWS * 3 * 2} traces → {N_ROWS * 3 * 2} rollouts for {N_ROWS} rows (of {N_ROWS} in the dataset)" \
        in r.stderr
    assert "epochs: 3" in r.stderr and "rollouts per row per epoch: 2" in r.stderr
    assert "no epoch/step tag" in r.stderr
    # the table on stdout: one line per prompt, the summary, the files
    for row in rows:
        assert row.row_id in r.stdout
    assert "epoch 0" in r.stdout and "epoch 2" in r.stdout and "wins / ties / losses" in r.stdout
    assert (out / "index.html").is_file() and (out / "before_after.png").is_file()
    data = json.loads((out / "comparison.json").read_text())
    # epochs were recovered exactly: the "before" rollouts are epoch 0's, the "after" ones epoch 2's
    assert refs(data, "before") == {rid for rid, e in truth.items() if e == 0}
    assert refs(data, "after") == {rid for rid, e in truth.items() if e == 2}
    # the improving policy scores higher after training, on every prompt
    s = data["summary"]
    assert s["after"]["mean"] > s["before"]["mean"] + 0.3
    assert s["wins"] == N_ROWS and s["losses"] == 0
    assert s["delta"]["low"] > 0  # the 95% interval excludes "no change"
    # recorded training rewards are shown next to the judge's scores
    assert s["training_reward_before"] < s["training_reward_after"]
    assert oai.judge_calls > 0
    for text in (r.stdout, r.stderr, (out / "index.html").read_text()):
        assert FW_KEY not in text and OPENAI_KEY not in text

    # every number is in comparison.json (the same document --json prints)
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

    # index.html opens in headless Chromium (JS on, as a user's browser) with every image present
    from playwright.sync_api import sync_playwright

    from svgrft.core.render import find_chromium

    n_samples = sum(len(x["before"]) + len(x["after"]) for x in data["rows"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium())
        try:
            page = browser.new_page()
            page.goto((out / "index.html").as_uri())
            images = page.evaluate("() => Array.from(document.images).map(i => [i.complete, i.naturalWidth, "
                                   "i.naturalHeight])")
            title = page.title()
            sections = page.evaluate("() => document.querySelectorAll('section.row').length")
            folded = page.evaluate("() => document.querySelectorAll('details > pre').length")
        finally:
            browser.close()
    assert title.startswith("svgrft compare-epochs")
    assert sections == N_ROWS and folded == 2 * N_ROWS  # one folded SVG source per side and prompt
    assert len(images) == n_samples  # every sample has its picture
    assert all(done and w > 0 and h > 0 for done, w, h in images), images


def test_judge_cache_makes_a_rerun_free_and_no_cache_asks_again(cli, fwx, oai, rows, ds, tmp_path):
    job, _ = finished_job(fwx, rows[:2], epochs=2, samples=1)
    r1 = cli("compare-epochs", job, "--dataset", ds, "--out", tmp_path / "a", "--json")
    assert r1.exit_code == 0, r1
    first = oai.judge_calls
    assert first > 0
    r2 = cli("compare-epochs", job, "--dataset", ds, "--out", tmp_path / "b", "--json")
    assert r2.exit_code == 0, r2
    assert oai.judge_calls == first  # every image was judged before: cache hits only
    assert r2.json()["summary"]["after"]["mean"] == r1.json()["summary"]["after"]["mean"]
    assert all(s["judge_cached"] for row in r2.json()["rows"] for s in row["before"] + row["after"]
               if s["total"] and s["is_valid"] and s["fulfilled"] is not None and s["has_image"])
    r3 = cli("compare-epochs", job, "--dataset", ds, "--out", tmp_path / "c", "--no-cache", "--json")
    assert r3.exit_code == 0, r3
    assert oai.judge_calls > first


def test_uneven_samples_and_a_missing_row(cli, fwx, oai, rows, ds, tmp_path):
    # row index 1 lost one rollout in epoch 1; row index 3 has no traces at all
    skip = {(1, 1, 0)} | {(3, e, s) for e in range(3) for s in range(2)}
    job, truth = finished_job(fwx, rows, epochs=3, samples=2, skip=skip)
    r = cli("compare-epochs", job, "--dataset", ds, "--out", tmp_path / "o", "--epochs", "1,2", "--json")
    assert r.exit_code == 0, r
    data = r.json()
    g = data["meta"]["grouping"]
    assert g["missing_rows"] == [rows[3].row_id]
    assert g["methods"] == {"equal": 2, "windows": 1}
    assert f"row {rows[1].row_id}: 5 rollouts, expected 3×2" in r.stderr
    assert "1 dataset rows have no traces: " + rows[3].row_id in r.stderr
    assert refs(data, "before") == {rid for rid, e in truth.items() if e == 1}
    assert refs(data, "after") == {rid for rid, e in truth.items() if e == 2}
    assert {row["row_id"] for row in data["rows"]} == {r_.row_id for r_ in rows[:3]}


def test_other_runs_on_the_same_rows_are_flagged(cli, fwx, oai, rows, ds, tmp_path):
    job, _ = finished_job(fwx, rows[:2], epochs=2, samples=1)
    ft.seed_job_traces(fwx, job, rows[:2], samples=2, seed=99)  # another run on the same rows, same window
    r = cli("compare-epochs", job, "--dataset", ds, "--out", tmp_path / "o", "--json")
    assert r.exit_code == 0, r
    assert "rows have ~6 rollouts, expected 2×1: other runs on the same rows may be mixed in" in r.stderr
    assert "--tag, e.g. invocation_id:" in r.stderr


def test_running_job_compares_first_with_latest_finished_epoch(cli, fwx, oai, rows, ds, tmp_path):
    job = "running-job"
    ft.create_job(fwx, job, rows, epochs=4, samples=2, api_key=FW_KEY)
    for _ in range(100):  # advance to the middle of epoch 2
        j = fwx.advance_job(job)
        if (j.get("jobProgress") or {}).get("epoch") == 2:
            break
    fwx.set_job_state(job, "RUNNING", epoch=2, hold=True)
    truth = ft.seed_job_traces(fwx, job, rows, samples=2, epochs=4, partial_rows=2)
    assert sorted(set(truth.values())) == [0, 1, 2]
    r = cli("compare-epochs", job, "--dataset", ds, "--out", tmp_path / "o", "--json")
    assert r.exit_code == 0, r
    assert "still running: comparing epoch 0 with the latest finished epoch 1 (of 4)" in r.stderr
    data = r.json()
    assert data["after_label"] == "epoch 1"
    assert refs(data, "after") == {rid for rid, e in truth.items() if e == 1}
    assert data["meta"]["grouping"]["finished_epochs"] == 2
    assert fwx.job(job)["state"] == "JOB_STATE_RUNNING"


def test_one_epoch_job_is_a_one_line_error(cli, fwx, rows, ds):
    job, _ = finished_job(fwx, rows, job_id="single", epochs=1, samples=2)
    r = cli("compare-epochs", job, "--dataset", ds)
    assert r.exit_code == 1
    err = error_lines(r)
    assert len(err) == 2 and err[0].startswith("Error: this job ran one epoch only")
    assert err[1].startswith("hint:") and "--source replay" in err[1]
    assert not fwx.calls("GET", "/v1/traces/pointwise")  # decided before any gateway traffic


def test_unknown_job_is_a_one_line_error(cli, fwx, ds):
    r = cli("compare-epochs", "no-such-job", "--dataset", ds)
    assert r.exit_code == 1
    lines = error_lines(r)
    assert lines[0].startswith("Error: RFT job 'no-such-job' not found") and lines[1].startswith("hint:")
    assert len(lines) == 2


def test_job_without_traces_is_a_one_line_error(cli, fwx, rows, ds):
    ft.create_job(fwx, "quiet-job", rows, epochs=2, samples=2, api_key=FW_KEY)
    fwx.run_job("quiet-job")
    r = cli("compare-epochs", "quiet-job", "--dataset", ds)
    assert r.exit_code == 1
    lines = error_lines(r)
    assert lines[0].startswith("Error: no traces for job quiet-job on the tracing gateway")
    assert lines[1].startswith("hint:") and "--dataset" in lines[1] and len(lines) == 2
    assert len(fwx.calls("GET", "/v1/traces/pointwise")) == N_ROWS  # one query per dataset row


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


def test_the_fakes_own_epoch_tag_is_used_and_agrees(cli, oai, rows, ds, tmp_path, monkeypatch):
    """The FakeFireworks job writer tags epoch:<e>: the tag is used and cross-checked with timing."""
    from tests.fakes import start_fireworks

    with start_fireworks(api_keys={FW_KEY: "acct"}, job_traces=True, job_epoch_tag=True) as fake:
        monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
        monkeypatch.setenv("FIREWORKS_BASE_URL", fake.url)
        monkeypatch.setenv("FIREWORKS_TRACING_BASE_URL", fake.localhost_url)
        ft.create_job(fake, "tagged", rows[:2], epochs=2, samples=2, api_key=FW_KEY)
        fake.run_job("tagged")
        r = cli("compare-epochs", "tagged", "--dataset", ds, "--out", tmp_path / "o", "--json")
    assert r.exit_code == 0, r
    g = r.json()["meta"]["grouping"]
    assert g["tag"] == "epoch" and g["tag_agreement"] == [8, 8]
    assert "epoch tag present: used; agrees with timing for 8 of 8 rollouts" in r.stderr
    assert r.json()["summary"]["after"]["mean"] > r.json()["summary"]["before"]["mean"]


# ----------------------------------------------------------------------------------- report files
def test_hostile_replies_score_zero_with_a_reason_and_are_escaped(cli, fwx, oai, rows, ds, tmp_path):
    job, _ = finished_job(fwx, rows[:2], epochs=2, samples=1)
    windows = fwx.job_epochs(job)
    t = windows[-1]["start"] + (windows[-1]["end"] - windows[-1]["start"]) / 2
    # an extra rollout of row 0 in the last epoch: prose with markup, and a huge junk reply for row 1
    hostile = "<script>alert('x')</script> I cannot draw that. <img src=x onerror=alert(1)>"
    fwx.add_trace(tags=["rollout_id:evil-1", f"row_id:{rows[0].row_id}"], messages=[{"role": "user", "content": "u"}],
                  output={"role": "assistant", "content": hostile}, timestamp=t)
    fwx.add_trace(tags=["rollout_id:evil-2", f"row_id:{rows[1].row_id}"], messages=[{"role": "user", "content": "u"}],
                  output={"role": "assistant", "content": "<svg" + "<g>" * 100_000}, timestamp=t)
    fwx.add_trace(tags=["rollout_id:evil-3"], messages=[], timestamp=t)  # no row id: dropped, counted
    out = tmp_path / "o"
    r = cli("compare-epochs", job, "--dataset", ds, "--out", out, "--json")
    assert r.exit_code == 0, r
    data = r.json()
    after = {s["ref"]: s for row in data["rows"] for s in row["after"]}
    assert after["evil-1"]["score"] == 0 and after["evil-1"]["reason"].startswith("no SVG")
    assert after["evil-2"]["score"] == 0 and after["evil-2"]["reason"]
    assert "expected 2×1" in r.stderr  # the extra rollouts made those rows irregular, and it says so
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
    assert {c.json["model"] for c in gens} == {"accounts/fireworks/models/tiny-base-model",
                                               f"accounts/acct/models/{job}-out"}


# ----------------------------------------------------------------------------------- report model (pure)
def _cmp(deltas, samples=1):
    from svgrft.core.compare_report import Comparison, PromptRow, Sample

    rows = []
    for i, d in enumerate(deltas):
        b = 0.5 - d / 2 if d is not None else 0.5
        a = 0.5 + d / 2 if d is not None else None
        rows.append(PromptRow(f"row_{i}", f"Write `svg` code to draw an image of thing {i}.", ["r1", "r2"],
                              before=[Sample(b, True, ref=f"b{i}-{k}") for k in range(samples)],
                              after=[] if a is None else [Sample(a, True, ref=f"a{i}-{k}") for k in range(samples)]))
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

    row = PromptRow("r", "p", ["a"], before=[Sample(0.2, True), Sample(None, False, reason="judge: rate_limit")],
                    after=[Sample(0.6, True)])
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

    row = PromptRow("r", "p", ["a"], before=[Sample(0.0, True, ref="x"), Sample(0.4, True, ref="y"),
                                             Sample(1.0, True, ref="z")])
    assert row.representative("before").ref == "y"  # mean 0.47: neither the best nor the worst draw


def test_html_escapes_everything_model_written():
    from svgrft.core.compare_report import Comparison, PromptRow, Sample, contact_sheet_html, index_html

    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    row = PromptRow(evil, evil, [evil], before=[Sample(0.1, True, svg=evil, reason=evil,
                                                      verdicts=[{"index": 1, "fulfilled": False, "evidence": evil}])],
                    after=[Sample(0.9, True, svg=evil, reason=evil)])
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
