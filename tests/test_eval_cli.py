"""`svgrft eval`, `svgrft runs`: a user session against the fake Fireworks policy and fake judge,
asserting what the fakes received (judge calls from cache, resume after Ctrl-C, fatal errors)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from svgrft.config import load_settings
from svgrft.core.store import Store
from svgrft.workflow.model_eval import EvalOptions, run_eval
from tests.conftest import FW_KEY, OPENAI_KEY, REPO

ROWS = [
    ("row_a", "Draw a red barn.", ["A red barn.", "A yellow sun.", "A blue sky."]),
    ("row_b", "Draw a sailboat.", ["A white sail.", "Blue waves.", "An orange sunset.", "Two birds."]),
    ("row_c", "Draw a robot.", ["A grey robot.", "Two antennas."]),
    ("row_d", "Draw a cow.", ["A cow.", "Black and white patches.", "Green grass."]),
]


def write_dataset(path: Path, rows=ROWS) -> Path:
    lines = []
    for rid, prompt, reqs in rows:
        formatted = (
            prompt
            + " Wrap the SVG code in an SVG code block.\n\nRequirements:\n"
            + "\n".join(f"{i}. {r}" for i, r in enumerate(reqs, 1))
        )
        lines.append(
            json.dumps(
                {
                    "messages": [{"role": "user", "content": formatted}],
                    "input_metadata": {
                        "row_id": rid,
                        "dataset_info": {
                            "original_prompt": prompt,
                            "requirements": reqs,
                            "total_requirements": len(reqs),
                            "formatted_prompt": formatted,
                        },
                    },
                }
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def data(tmp_path):
    Path("configs").mkdir(exist_ok=True)
    Path("configs/default.toml").write_text("[judge]\nbackoff_base = 0.01\n")  # fast retries in tests
    return write_dataset(tmp_path / "rows.jsonl")


def policy_calls(fw):
    return [r for r in fw.calls("POST") if r.path.endswith("/chat/completions")]


def judge_calls(oai):
    return [r for r in oai.calls("POST") if r.path.endswith("/chat/completions")]


def test_eval_end_to_end_then_cached_rerun(fw, oai, cli, data):
    r = cli("eval", "--model", "qwen3-0p6b", "--dataset", data, "--samples", "2", "--json")
    assert r.exit_code == 0, r
    s = r.json()
    assert s["status"] == "finished" and s["model"] == "accounts/fireworks/models/qwen3-0p6b"
    assert s["counts"] == {"expected": 8, "stored": 8, "done": 8, "valid": 8, "invalid": 0, "error": 0, "missing": 0}
    # the policy was asked once per sample, with the expanded model name, on Fireworks inference
    calls = policy_calls(fw)
    assert len(calls) == 8
    assert {c.json["model"] for c in calls} == {"accounts/fireworks/models/qwen3-0p6b"}
    assert all(c.path == "/inference/v1/chat/completions" for c in calls)
    assert {c.json["temperature"] for c in calls} == {0.8} and {c.json["max_tokens"] for c in calls} == {4096}
    # the fake policy draws the same picture for both samples of a row: judged once, the twin is cached
    first_judge = len(judge_calls(oai))
    assert first_judge == 4 == s["judge"]["judged"] and s["judge"]["cached"] == 4
    stats = oai.judge_stats
    assert sorted(x["n_requirements"] for x in stats) == [2, 3, 3, 4]
    assert s["score"]["n"] == 8 and 0 < s["score"]["mean"] <= 1
    assert s["score"]["ci95_low"] <= s["score"]["mean"] <= s["score"]["ci95_high"]
    assert s["tokens"]["policy_completion"] > 0 and s["tokens"]["judge_prompt"] > 0
    run1 = s["run_id"]

    # same evaluation again: zero judge requests (cache), asserted on the fake's request log
    r2 = cli("eval", "--model", "qwen3-0p6b", "--dataset", data, "--samples", "2", "--json")
    assert r2.exit_code == 0, r2
    s2 = r2.json()
    assert len(judge_calls(oai)) == first_judge
    assert s2["judge"] == {"judged": 0, "cached": 8, "requests": 0, "gated": 0}
    assert s2["score"]["mean"] == pytest.approx(s["score"]["mean"])
    assert s2["run_id"] != run1

    # --no-cache pays again
    r3 = cli("eval", "--model", "qwen3-0p6b", "--dataset", data, "--rows", "1", "--no-cache", "--json")
    assert r3.exit_code == 0, r3
    assert len(judge_calls(oai)) == first_judge + 1

    # runs list / show
    lst = cli("runs", "list", "--json").json()["runs"]
    assert [x["id"] for x in lst][:3] == [r3.json()["run_id"], s2["run_id"], run1]
    shown = cli("runs", "show", run1[:-1], "--samples", "--json").json()
    assert shown["run_id"] == run1 and len(shown["samples"]) == 8
    assert {(x["row_id"], x["sample_index"]) for x in shown["samples"]} == {
        (rid, i) for rid, _, _ in ROWS for i in (0, 1)
    }
    table = cli("runs", "show", run1)
    assert table.exit_code == 0 and "mean score" in table.stdout and run1 in table.stdout
    assert FW_KEY not in table.stdout + table.stderr and OPENAI_KEY not in r.stdout + r.stderr


def test_human_summary_and_count_mode(fw, oai, cli, data):
    r = cli("eval", "--model", "qwen3-0p6b", "--dataset", data, "--rows", "2", "--judge-mode", "count")
    assert r.exit_code == 0, r
    assert "mean score" in r.stdout and "95% CI" in r.stdout and "judge calls" in r.stdout
    assert "svgrft report" in r.stderr
    assert {x["format"] for x in oai.judge_stats} == {"count"}


def test_gates_are_counted_and_skip_the_judge(fw, oai, cli, data):
    fw_blank = '```svg\n<svg width="100" height="100"><rect width="100" height="100" fill="#fff"/></svg>\n```'
    fw.script_policy = getattr(fw, "script_policy", None)
    r = None
    # the Fireworks fake's policy is not scriptable: use the OpenAI fake as the policy endpoint here
    oai.script_policy(["I would rather describe it in words.", fw_blank, "```svg\n<svg><rect/>", None])
    r = cli("eval", "--model", "m-policy", "--base-url", oai.url + "/v1", "--dataset", data, "--json")
    assert r.exit_code == 0, r
    s = r.json()
    assert s["gates"] == {"no_svg": 3, "blank": 1}
    stop = {"no_svg": 3, "render_failed": 0, "blank": 1, "injection": 0, "text_heavy": 0}
    assert s["gate_stops"] == {g: {"stopped": n, "penalised": 0} for g, n in stop.items()}
    assert list(s["gate_stops"]) == list(stop)  # every gate, in scoring order
    assert s["counts"]["valid"] == 4 and s["score"]["mean"] == 0.0
    assert s["judge"]["judged"] == 0 and s["judge"]["gated"] == 4 and oai.judge_calls == 0
    assert [c.json["model"] for c in judge_calls(oai)] == ["m-policy"] * 4  # policy requests only


def test_interrupted_run_resumes_only_missing_samples(fw, oai, cli, data):
    settings = load_settings()
    opts = EvalOptions(model="qwen3-0p6b", dataset=str(data), samples=2, concurrency=1)
    seen = []

    async def interrupted():
        task = None

        def on_sample(rec):
            seen.append((rec.row_id, rec.sample_index))
            if len(seen) == 3:
                task.cancel()

        task = asyncio.ensure_future(run_eval(settings, opts, on_sample=on_sample))
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(interrupted())
    store = Store()
    run = store.list_runs()[0]
    assert run.status == "interrupted"
    done = store.done_keys(run.id)
    assert set(seen) <= done | set(seen) and len(done) >= 3 and len(done) < 8
    before = len(policy_calls(fw))

    r = cli("eval", "--resume", run.id[:-1], "--json")
    assert r.exit_code == 0, r
    s = r.json()
    assert s["run_id"] == run.id and s["status"] == "finished" and s["counts"]["done"] == 8
    assert len(policy_calls(fw)) - before == 8 - len(done)
    assert store.get_run(run.id).status == "finished"
    # nothing left to do: a second resume sends nothing
    n = len(policy_calls(fw)), len(judge_calls(oai))
    assert cli("eval", "--resume", run.id).exit_code == 0
    assert (len(policy_calls(fw)), len(judge_calls(oai))) == n


def test_ctrl_c_in_a_real_process_prints_how_to_resume(fw, oai, cli, data, tmp_path):
    oai.faults.add("POST", r"chat/completions", kind="slow", delay=0.4, times=None)  # a slow judge
    env = {k: v for k, v in os.environ.items()}
    env.update(PYTHONPATH=str(REPO), COLUMNS="200")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "svgrft",
            "eval",
            "--model",
            "qwen3-0p6b",
            "--dataset",
            str(data),
            "--samples",
            "2",
            "--judge-concurrency",
            "1",
            "--no-cache",
        ],
        cwd=os.getcwd(),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = Path(os.environ["SVGRFT_HOME"]) / "svgrft.db"
    deadline = time.monotonic() + 90
    n = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
                        n = con.execute("SELECT COUNT(*) FROM samples WHERE status='done'").fetchone()[0]
                except sqlite3.Error:
                    n = 0
                if n >= 2:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    store = Store()
    run = store.list_runs()[0]
    assert run.status == "interrupted"
    done = len(store.done_keys(run.id))
    assert 2 <= done < 8
    assert f"svgrft eval --resume {run.id}" in err
    assert "Traceback" not in err

    oai.faults.clear()
    before = len(policy_calls(fw))
    r = cli("eval", "--resume", run.id, "--json")
    assert r.exit_code == 0, r
    assert r.json()["counts"]["done"] == 8
    assert len(policy_calls(fw)) - before == 8 - done


def test_transient_policy_errors_are_retried(fw, oai, cli, data):
    fw.faults.add("POST", r"chat/completions", kind="429", times=2, retry_after=0.05)
    fw.faults.add("POST", r"chat/completions", kind="503", times=1)
    r = cli("eval", "--model", "qwen3-0p6b", "--dataset", data, "--rows", "2", "--json")
    assert r.exit_code == 0, r
    assert r.json()["counts"]["done"] == 2
    assert [f[2] for f in fw.faults.log] == ["429", "429", "503"]


def test_lasting_outage_leaves_samples_to_retry(fw, oai, cli, data):
    fw.faults.add("POST", r"chat/completions", kind="500", times=None)
    r = cli("eval", "--model", "qwen3-0p6b", "--dataset", data, "--rows", "2", "--json")
    assert r.exit_code == 1, r  # CI must notice an incomplete run; the JSON is still printed
    s = r.json()
    assert s["status"] == "incomplete" and s["counts"]["error"] == 2 and s["counts"]["done"] == 0
    assert "Error: 2 of 2 samples failed" in r.stderr and "hint:" in r.stderr and "--resume" in r.stderr
    fw.faults.clear()
    r2 = cli("eval", "--resume", s["run_id"], "--json")
    assert r2.json()["status"] == "finished" and r2.json()["counts"]["done"] == 2


def test_bad_policy_key_stops_the_run(fw, oai, cli, data, monkeypatch):
    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-wrong-key-000000000000")
    r = cli("eval", "--model", "qwen3-0p6b", "--dataset", data, "--concurrency", "1")
    assert r.exit_code == 1
    assert "Error:" in r.stderr and "rejected the API key (401)" in r.stderr and "FIREWORKS_API_KEY" in r.stderr
    assert "fw-wrong-key-000000000000" not in r.stderr + r.stdout
    assert len(policy_calls(fw)) == 1  # a 401 is not retried and the queued samples are never sent
    assert Store().list_runs()[0].status == "failed"


def test_unknown_model_is_reported_as_not_deployed(fw, oai, cli, data):
    r = cli("eval", "--model", "accounts/acct/models/never-trained", "--dataset", data, "--rows", "1")
    assert r.exit_code == 1
    assert "not found or not deployed" in r.stderr and "hint:" in r.stderr


def test_bad_judge_key_stops_the_run(fw, oai, cli, data, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-0000000000000000")
    r = cli("eval", "--model", "qwen3-0p6b", "--dataset", data, "--rows", "2")
    assert r.exit_code == 1
    assert "judge" in r.stderr and "rejected the API key" in r.stderr
    assert "sk-wrong-0000000000000000" not in r.stderr


def test_missing_keys_and_bad_input_are_typed_errors(fw, oai, cli, data, monkeypatch, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": "nope"}\n')
    r = cli("eval", "--model", "qwen3-0p6b", "--dataset", bad)
    assert r.exit_code == 1 and "Error:" in r.stderr and "hint:" in r.stderr
    r = cli("eval", "--model", "qwen3-0p6b", "--dataset", tmp_path / "missing.jsonl")
    assert r.exit_code == 1 and "not found" in r.stderr
    r = cli("eval", "--model", "qwen3-0p6b", "--dataset", data, "--judge-mode", "vibes")
    assert r.exit_code == 2
    r = cli("eval", "--resume", "r-no-such-run")
    assert r.exit_code == 1 and "no run" in r.stderr and "svgrft runs list" in r.stderr
    monkeypatch.delenv("OPENAI_API_KEY")
    r = cli("eval", "--model", "qwen3-0p6b", "--dataset", data)
    assert r.exit_code == 1 and "OPENAI_API_KEY is not set" in r.stderr
    assert len(policy_calls(fw)) == 0 and Store().list_runs() == []


def test_other_openai_compatible_policy_with_named_key(fw, oai, cli, data, monkeypatch):
    monkeypatch.setenv("MY_POLICY_KEY", OPENAI_KEY)
    monkeypatch.delenv("FIREWORKS_API_KEY")
    r = cli(
        "eval",
        "--model",
        "my-model",
        "--base-url",
        oai.url + "/v1",
        "--api-key-env",
        "MY_POLICY_KEY",
        "--dataset",
        data,
        "--rows",
        "1",
        "--json",
    )
    assert r.exit_code == 0, r
    assert r.json()["model"] == "my-model"  # not expanded: not a Fireworks endpoint
    assert oai.policy_calls == 1 and policy_calls(fw) == []
    monkeypatch.delenv("MY_POLICY_KEY")
    r = cli(
        "eval",
        "--model",
        "my-model",
        "--base-url",
        oai.url + "/v1",
        "--api-key-env",
        "MY_POLICY_KEY",
        "--dataset",
        data,
        "--rows",
        "1",
    )
    assert r.exit_code == 1 and "MY_POLICY_KEY is not set" in r.stderr


def test_no_browser_is_a_typed_error_and_the_run_is_marked_failed(fw, oai, cli, data, monkeypatch, tmp_path):
    monkeypatch.setenv("SVGRFT_CHROMIUM", str(tmp_path / "no-such-chromium"))
    r = cli("eval", "--model", "qwen3-0p6b", "--dataset", data, "--rows", "2")
    assert r.exit_code == 1
    assert "Error:" in r.stderr and "not an executable" in r.stderr and "hint:" in r.stderr
    assert "Traceback" not in r.stderr
    assert Store().list_runs()[0].status == "failed"
    assert oai.judge_calls == 0


# --- runs table at 80 columns, why an eval is incomplete, URLs in failure reasons (folded from test_qa_cli.py) ---

from tests.conftest import free_port  # noqa: E402


def test_runs_list_keeps_ids_and_states_whole_at_80_columns(cli, monkeypatch):
    from svgrft.core.store import Store

    monkeypatch.setenv("COLUMNS", "80")
    with Store() as store:
        ids = []
        for status in ("interrupted", "finished"):
            run = store.create_run(
                model="accounts/fireworks/models/qwen3-0p6b", judge_model="gpt-4.1-2025-04-14", judge_mode="checklist"
            )
            store.set_run_status(run.id, status)
            ids.append(run.id)
    r = cli("runs", "list")
    assert r.exit_code == 0, r
    assert all(len(line) <= 80 for line in r.stdout.splitlines()), r.stdout
    for rid in ids:
        assert rid in r.stdout
    assert "interrupted" in r.stdout and "finished" in r.stdout and "qwen3-0p6b" in r.stdout
    assert "…" not in r.stdout


def test_incomplete_eval_warning_names_the_cause(cli, fw, oai):
    fw.faults.add("POST", r"chat/completions", kind="500", times=None)
    r = cli("eval", "--model", "qwen3-0p6b", "--rows", "1", "--json", "--concurrency", "1")
    assert r.exit_code == 1, r  # an outage leaves samples to --resume; CI sees exit 1
    assert json.loads(r.stdout)["status"] == "incomplete"
    warning = " ".join(r.stderr.split())
    assert "1 of 1 sample failed: generation failed" in warning, r.stderr
    assert "--resume" in warning


def test_eval_summary_keeps_urls_in_failure_reasons(cli, fw, oai, monkeypatch):
    dead = free_port()
    Path("configs").mkdir()
    Path("configs/default.toml").write_text("[judge]\nmax_retries = 0\nbackoff_base = 0.0\n", encoding="utf-8")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{dead}/v1")
    r = cli("eval", "--model", "qwen3-0p6b", "--rows", "1", "--json", "--no-cache")
    assert r.exit_code == 1, r  # the judge outage leaves the sample to --resume
    reasons = json.loads(r.stdout)["invalid_reasons"]
    assert any(f"http://127.0.0.1:{dead}/v1" in k for k in reasons), reasons
