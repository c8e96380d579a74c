"""``svgrft jobs list/status/watch/cancel/resume`` against the fake Fireworks (real SDK, loopback)."""

from __future__ import annotations

import _thread
import re
import threading
import time

import httpx

from svgrft.workflow.jobs import TERMINAL_STATES, job_summary
from tests.conftest import FW_KEY, free_port, no_sdk_retries


def create_job(fake, job_id: str = "svg-job-1", epochs: int = 2) -> str:
    """Test setup: a READY dataset, an ACTIVE evaluator and a job, straight over HTTP."""
    if fake.resource("datasets", "svg-ds") is None:
        fake.add_dataset("svg-ds")
        fake.add_evaluator("svg-eval")
    r = httpx.post(
        f"{fake.url}/v1/accounts/acct/reinforcementFineTuningJobs",
        params={"reinforcementFineTuningJobId": job_id},
        headers={"Authorization": f"Bearer {FW_KEY}"},
        json={
            "dataset": "accounts/acct/datasets/svg-ds",
            "evaluator": "accounts/acct/evaluators/svg-eval",
            "trainingConfig": {"baseModel": "accounts/fireworks/models/qwen3-0p6b", "epochs": epochs},
        },
    )
    assert r.status_code == 200, r.text
    return job_id


def _job_gets(fake, job_id):
    return fake.calls("GET", f"/v1/accounts/acct/reinforcementFineTuningJobs/{job_id}")


# --- summary (pure) --------------------------------------------------------------------------------


def test_job_summary_fields_from_wire_dict():
    s = job_summary(
        {
            "name": "accounts/acct/reinforcementFineTuningJobs/j1",
            "state": "JOB_STATE_FAILED",
            "status": {"code": "INTERNAL", "message": "boom"},
            "jobProgress": {"epoch": 1, "percent": "40"},
            "trainingConfig": {
                "epochs": 3,
                "baseModel": "accounts/fireworks/models/qwen3-0p6b",
                "outputModel": "accounts/acct/models/out",
            },
            "dataset": "accounts/acct/datasets/d",
            "evaluator": "accounts/acct/evaluators/e",
            "createTime": "2025-01-01T00:00:00Z",
        },
        "acct",
    )
    assert s["id"] == "j1" and s["state_label"] == "FAILED" and s["terminal"] and not s["succeeded"]
    assert (s["epoch"], s["epochs"], s["percent"]) == (1, 3, 40.0)
    assert s["status_message"] == "boom" and s["status_code"] == "INTERNAL"
    assert s["dashboard_url"] == "https://app.fireworks.ai/dashboard/fine-tuning/reinforcement/j1"
    assert s["output_model"] == "accounts/acct/models/out" and s["dataset"].endswith("/d")
    assert "JOB_STATE_COMPLETED" in TERMINAL_STATES and "JOB_STATE_RUNNING" not in TERMINAL_STATES


def test_job_summary_tolerates_hostile_payloads():
    for junk in (
        {"jobProgress": "x", "trainingConfig": [1], "status": 5},
        {"jobProgress": {"epoch": float("nan"), "percent": "inf"}, "state": {"a": 1}},
        None,
        "junk",
    ):
        s = job_summary(junk, "acct")
        assert s["state"] == "JOB_STATE_UNSPECIFIED" and s["epoch"] is None and s["percent"] is None


# --- list / status ---------------------------------------------------------------------------------


def test_list_table_json_and_state_filter(cli, fw):
    create_job(fw, "job-a")
    create_job(fw, "job-b")
    fw.run_job("job-b")
    fw.fail_job("job-a", "evaluator crashed")
    r = cli("jobs", "list")
    assert r.exit_code == 0, r
    assert "job-a" in r.stdout and "job-b" in r.stdout and "FAILED" in r.stdout and "COMPLETED" in r.stdout
    assert "evaluator crashed" in r.stdout
    data = cli("jobs", "list", "--json").json()
    assert {j["id"]: j["state"] for j in data["jobs"]} == {"job-a": "JOB_STATE_FAILED", "job-b": "JOB_STATE_COMPLETED"}
    only = cli("jobs", "list", "--state", "completed", "--json").json()
    assert [j["id"] for j in only["jobs"]] == ["job-b"]
    assert any(q.query.get("filter") == 'state="JOB_STATE_COMPLETED"' for q in fw.calls("GET"))
    assert len(cli("jobs", "list", "--limit", "1", "--json").json()["jobs"]) == 1


def test_list_empty_and_bad_state(cli, fw):
    r = cli("jobs", "list")
    assert r.exit_code == 0 and r.stdout == "" and "No RFT jobs" in r.stderr
    fw.clear_requests()
    bad = cli("jobs", "list", "--state", "sleeping")
    assert bad.exit_code == 2 and "unknown job state" in bad.stderr
    assert fw.requests == []


def test_status_running_and_json(cli, fw):
    create_job(fw, "job-s", epochs=3)
    fw.set_job_state("job-s", "RUNNING", epoch=1, percent=50, hold=True)
    r = cli("jobs", "status", "job-s")
    assert r.exit_code == 0, r
    assert "RUNNING" in r.stdout and "2/3" in r.stdout and "accounts/acct/models/job-s" in r.stdout
    s = cli("jobs", "status", "accounts/acct/reinforcementFineTuningJobs/job-s", "--json").json()
    assert s["state"] == "JOB_STATE_RUNNING" and s["epoch"] == 1 and s["epochs"] == 3 and s["percent"] == 50
    assert s["dataset"] == "accounts/acct/datasets/svg-ds" and s["evaluator"] == "accounts/acct/evaluators/svg-eval"
    assert s["base_model"] == "accounts/fireworks/models/qwen3-0p6b"


def test_status_failed_shows_message_and_hint(cli, fw):
    create_job(fw, "job-f")
    fw.fail_job("job-f", "reward function raised [/bold] ImportError: no module 'svgrft' [red]")
    r = cli("jobs", "status", "job-f")
    assert r.exit_code == 0, r
    assert "FAILED" in r.stdout
    assert "reward function raised [/bold] ImportError: no module 'svgrft' [red]" in " ".join(r.stdout.split())
    assert "svgrft jobs resume job-f" in r.stderr
    assert cli("jobs", "status", "job-f", "--json").json()["status_message"].startswith("reward function raised")


def test_status_unknown_job_404(cli, fw):
    r = cli("jobs", "status", "no-such-job")
    assert r.exit_code == 1, r
    assert "not found" in r.stderr and "svgrft jobs list" in r.stderr
    assert len(_job_gets(fw, "no-such-job")) == 1  # 404 is not retried


def test_invalid_job_id_is_rejected_before_any_request(cli, fw):
    r = cli("jobs", "status", "../../secrets/x?y")
    assert r.exit_code == 2 and "invalid job id" in r.stderr
    assert not any("reinforcementFineTuningJobs" in q.path for q in fw.requests)


def test_bad_key_401_hint(cli, fw, monkeypatch):
    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-not-a-real-key-123456")
    monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "acct")
    for args in (("jobs", "list"), ("jobs", "status", "x1"), ("jobs", "watch", "x1", "--interval", "0")):
        r = cli(*args)
        assert r.exit_code == 1, r
        assert "401" in r.stderr and "check FIREWORKS_API_KEY" in r.stderr
        assert "fw-not-a-real-key-123456" not in r.stdout + r.stderr


def test_unreachable_fireworks(cli, monkeypatch):
    port = free_port()
    monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
    monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "acct")
    monkeypatch.setenv("FIREWORKS_BASE_URL", f"http://127.0.0.1:{port}")
    no_sdk_retries()
    r = cli("jobs", "list")
    assert r.exit_code == 1 and "cannot reach Fireworks" in r.stderr


# --- watch -----------------------------------------------------------------------------------------


def test_watch_until_completed(cli, fw):
    create_job(fw, "job-w", epochs=2)
    r = cli("jobs", "watch", "job-w", "--interval", "0")
    assert r.exit_code == 0, r
    assert r.stdout.strip() == "accounts/acct/models/job-w"
    for word in ("PENDING", "VALIDATING", "RUNNING", "epoch 1/2", "epoch 2/2", "COMPLETED"):
        assert word in r.stderr, word
    assert fw.job("job-w")["state"] == "JOB_STATE_COMPLETED"
    j = cli("jobs", "watch", "job-w", "--interval", "0", "--json")
    assert j.exit_code == 0
    s = j.json()
    assert s["state"] == "JOB_STATE_COMPLETED" and s["succeeded"] and s["output_model"] == "accounts/acct/models/job-w"


def test_watch_failed_job_exits_1_with_message(cli, make_fw):
    fake = make_fw(job_fails_with="trainer OOM at step 12", job_fail_epoch=1)
    create_job(fake, "job-x", epochs=3)
    r = cli("jobs", "watch", "job-x", "--interval", "0", "--json")
    assert r.exit_code == 1, r
    s = r.json()
    assert s["state"] == "JOB_STATE_FAILED" and s["status_message"] == "trainer OOM at step 12" and s["epoch"] == 1
    assert "Error: job job-x FAILED: trainer OOM at step 12" in r.stderr
    assert "svgrft jobs resume job-x" in r.stderr


def test_watch_survives_429_5xx_and_malformed_while_polling(cli, fw):
    no_sdk_retries()
    create_job(fw, "job-t")
    path = r"reinforcementFineTuningJobs/job-t$"
    fw.faults.add(method="GET", path=path, kind="503", times=2)
    fw.faults.add(method="GET", path=path, kind="429", times=1, retry_after=0.01)
    fw.faults.add(method="GET", path=path, kind="malformed", times=1)
    fw.faults.add(method="GET", path=path, kind="500", times=1)
    r = cli("jobs", "watch", "job-t", "--interval", "0", "--json")
    assert r.exit_code == 0, r
    assert r.json()["state"] == "JOB_STATE_COMPLETED"
    assert [k for _, _, k in fw.faults.log] == ["503", "503", "429", "malformed", "500"]
    assert r.stderr.count("retrying") == 5


def test_watch_gives_up_after_persistent_server_errors(cli, fw):
    no_sdk_retries()
    create_job(fw, "job-p")
    fw.faults.add(method="GET", path=r"reinforcementFineTuningJobs/job-p$", kind="500", times=None)
    r = cli("jobs", "watch", "job-p", "--interval", "0")
    assert r.exit_code == 1, r
    assert "server error (500)" in r.stderr and "hint:" in r.stderr
    assert len(_job_gets(fw, "job-p")) == 6  # MAX_POLL_ERRORS + 1 polls, then it stops


def test_watch_unknown_job(cli, fw):
    r = cli("jobs", "watch", "ghost-job", "--interval", "0")
    assert r.exit_code == 1 and "not found" in r.stderr and "svgrft jobs list" in r.stderr


def test_watch_timeout_leaves_job_running(cli, fw):
    create_job(fw, "job-h")
    fw.set_job_state("job-h", "RUNNING", epoch=0, percent=50, hold=True)
    r = cli("jobs", "watch", "job-h", "--interval", "0", "--timeout", "0")
    assert r.exit_code == 1, r
    assert "still RUNNING" in r.stderr and "svgrft jobs watch job-h" in r.stderr
    assert fw.job("job-h")["state"] == "JOB_STATE_RUNNING"


def test_watch_ctrl_c_detaches_and_job_keeps_running(cli, fw):
    create_job(fw, "job-c")
    fw.set_job_state("job-c", "RUNNING", epoch=0, percent=10, hold=True)
    stop = threading.Event()

    def interrupt_after_polls():
        while not stop.is_set():
            if len(_job_gets(fw, "job-c")) >= 3:  # the watch loop is running
                _thread.interrupt_main()
                return
            time.sleep(0.01)

    t = threading.Thread(target=interrupt_after_polls, daemon=True)
    t.start()
    try:
        r = cli("jobs", "watch", "job-c", "--interval", "0.02")
    finally:
        stop.set()
        t.join(5)
    assert r.exit_code == 130, r
    assert "Detached: job keeps running; re-attach with: svgrft jobs watch job-c" in r.stderr
    assert fw.job("job-c")["state"] == "JOB_STATE_RUNNING"
    assert not fw.calls("POST", re.compile(r":cancel$"))


# --- cancel / resume -------------------------------------------------------------------------------


def test_cancel_needs_confirmation_then_cancels(cli, fw):
    create_job(fw, "job-k")
    fw.set_job_state("job-k", "RUNNING", epoch=0, percent=20)
    r = cli("jobs", "cancel", "job-k")
    assert r.exit_code == 1 and "--yes" in r.stderr
    assert not fw.calls("POST", re.compile(r":cancel$"))
    ok = cli("jobs", "cancel", "job-k", "--yes")
    assert ok.exit_code == 0, ok
    assert ok.stdout.strip() == "accounts/acct/reinforcementFineTuningJobs/job-k"
    assert len(fw.calls("POST", re.compile(r"job-k:cancel$"))) == 1
    assert fw.job("job-k")["state"] in ("JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED")
    again = cli("jobs", "cancel", "job-k", "--yes", "--json")  # idempotent, no second :cancel
    assert again.exit_code == 0 and again.json()["state"] == "JOB_STATE_CANCELLED"
    assert len(fw.calls("POST", re.compile(r"job-k:cancel$"))) == 1
    w = cli("jobs", "watch", "job-k", "--interval", "0")
    assert w.exit_code == 1 and "CANCELLED" in w.stderr and "resume" in w.stderr


def test_cancel_finished_job_is_refused(cli, fw):
    create_job(fw, "job-d")
    fw.run_job("job-d")
    r = cli("jobs", "cancel", "job-d", "--yes")
    assert r.exit_code == 1 and "already finished (COMPLETED)" in r.stderr
    assert not fw.calls("POST", re.compile(r":cancel$"))


def test_resume_failed_job_and_watch_it(cli, fw):
    create_job(fw, "job-r", epochs=2)
    fw.set_job_state("job-r", "RUNNING", epoch=1, percent=50)
    fw.fail_job("job-r", "preempted")
    r = cli("jobs", "resume", "job-r", "--json")
    assert r.exit_code == 0, r
    assert r.json()["state"] == "JOB_STATE_RUNNING" and r.json()["epoch"] == 1
    assert len(fw.calls("POST", re.compile(r"job-r:resume$"))) == 1
    w = cli("jobs", "watch", "job-r", "--interval", "0", "--json")
    assert w.exit_code == 0 and w.json()["state"] == "JOB_STATE_COMPLETED"


def test_resume_running_job_is_refused(cli, fw):
    create_job(fw, "job-q")
    fw.set_job_state("job-q", "RUNNING", epoch=0, percent=10, hold=True)
    r = cli("jobs", "resume", "job-q")
    assert r.exit_code == 1, r
    assert "only FAILED, CANCELLED or PAUSED" in r.stderr and "svgrft jobs watch job-q" in r.stderr
    assert not fw.calls("POST", re.compile(r":resume$"))


def test_resume_with_watch(cli, fw):
    create_job(fw, "job-v")
    fw.fail_job("job-v", "flaky node")
    r = cli("jobs", "resume", "job-v", "--watch", "--interval", "0", "--json")
    assert r.exit_code == 0, r
    assert r.json()["state"] == "JOB_STATE_COMPLETED"


def test_render_watch_is_reusable(fw):
    """The function ``svgrft train`` calls: returns the final summary, prints progress on stderr."""
    from svgrft.cli.jobs import finish_watch, render_watch
    from svgrft.clients.fireworks import make_client
    from svgrft.config import load_settings

    create_job(fw, "job-z")
    client = make_client(load_settings())
    s = render_watch(client, "job-z", poll_interval=0, json_out=False)
    assert s["state"] == "JOB_STATE_COMPLETED" and s["id"] == "job-z"
    assert finish_watch(s) == 0


# --- jobs table at 80 columns, a declined confirmation (folded from test_qa_cli.py) ---


def test_jobs_list_keeps_the_job_id_on_one_line_at_80_columns(cli, fw, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    create_job(fw, "svgrft-qwen3-0p6b-794eff93882d")
    create_job(fw, "svgrft-qwen3-0p6b-0123456789ab")
    fw.run_job("svgrft-qwen3-0p6b-794eff93882d")
    r = cli("jobs", "list")
    assert r.exit_code == 0, r
    assert all(len(line) <= 80 for line in r.stdout.splitlines()), r.stdout
    assert "svgrft-qwen3-0p6b-794eff93882d" in r.stdout and "svgrft-qwen3-0p6b-0123456789ab" in r.stdout
    assert "COMPLETED" in r.stdout


def test_declined_confirmation_says_nothing_was_done(cli, fw, monkeypatch):
    from svgrft.cli import _common

    create_job(fw, "job-keep")
    fw.set_job_state("job-keep", "RUNNING", epoch=0, percent=10, hold=True)
    monkeypatch.setattr(_common, "is_interactive", lambda: True)
    r = cli("jobs", "cancel", "job-keep", input="n\n")
    assert r.exit_code == 1, r
    assert "nothing was done" in r.stderr
    assert fw.job("job-keep")["state"] == "JOB_STATE_RUNNING"
