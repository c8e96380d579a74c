"""Using the trained model: `svgrft deploy / deployments list / undeploy`, `eval --model JOB_ID`, and
`compare-epochs --source replay --deploy` (held-out split, clean-up on success, error, timeout and Ctrl-C),
against the fake Fireworks driven by the real SDK. Every clean-up test asserts the fake's state: no
deployment is left that could bill."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from svgrft.core.dataset import BUNDLED_EVAL, BUNDLED_TRAIN, load_dataset
from tests.conftest import FW_KEY, REPO, write_config
from tests.fakes import job_records as ft

JOB = "svg-job"
OUT = f"accounts/acct/models/{JOB}-out"


@pytest.fixture
def fast():
    return write_config("[deploy]\npoll_interval = 0.01\n[fireworks]\nmax_retries = 0\n")


@pytest.fixture
def job(fw):
    """A finished job whose output model is a LoRA of a serverless base (its dataset = 3 training rows)."""
    rows = load_dataset(BUNDLED_TRAIN)[:3]
    ft.create_job(fw, JOB, rows, epochs=2, samples=1, api_key=FW_KEY, base_model="tiny-base-model")
    fw.run_job(JOB)
    return JOB


def error_lines(r) -> list[str]:
    lines = r.stderr.strip().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("Error: "))
    return lines[i:]


def chats(fake) -> list:
    return [c for c in fake.calls("POST") if c.path.endswith("/chat/completions")]


def sdk(fake):
    import fireworks

    return fireworks.Fireworks(api_key=FW_KEY, account_id="acct", base_url=fake.url, max_retries=0)


def write_rows(path: Path, source: Path, n: int) -> Path:
    lines = [ln for ln in source.read_text(encoding="utf-8").splitlines() if ln.strip()][:n]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------- the fake's contract
def test_fake_deployment_lifecycle_is_strict_like_the_api(fw):
    import fireworks

    c = sdk(fw)
    fw.add_model("lora", peftDetails={"baseModel": "accounts/fireworks/models/qwen3-8b"})
    with pytest.raises(fireworks.BadRequestError, match="unknown field"):
        c.deployments.create(base_model="accounts/acct/models/lora", deployment_id="d1", extra_body={"gpus": 1})
    with pytest.raises(fireworks.BadRequestError, match="scaleToZeroWindow"):
        c.deployments.create(
            base_model="accounts/acct/models/lora",
            deployment_id="d1",
            autoscaling_policy={"scale_to_zero_window": "60s"},
        )
    with pytest.raises(fireworks.BadRequestError, match="expireTime"):
        c.deployments.create(base_model="accounts/acct/models/lora", deployment_id="d1", expire_time="tomorrow")
    with pytest.raises(fireworks.BadRequestError, match="enableAddons"):
        c.deployments.create(base_model="accounts/acct/models/lora", deployment_id="d1", enable_addons=True)
    with pytest.raises(fireworks.NotFoundError):
        c.deployments.create(base_model="accounts/acct/models/nope", deployment_id="d1")
    v = c.deployments.create(base_model="accounts/acct/models/lora", deployment_id="d1", validate_only=True)
    assert v.name.endswith("/d1") and fw.live_deployments() == []

    d = c.deployments.create(
        base_model="accounts/acct/models/lora",
        deployment_id="d1",
        expire_time="2030-01-01T00:00:00Z",
        min_replica_count=0,
        max_replica_count=1,
    )
    assert d.state == "CREATING"
    assert not fw.servable("accounts/acct/models/lora", "acct")  # not READY yet: inference 404
    assert c.deployments.get("d1").state == "READY"
    assert fw.servable("accounts/acct/models/lora#accounts/acct/deployments/d1", "acct")
    c.deployments.delete("d1")
    assert c.deployments.get("d1").state == "DELETED"  # soft-deleted: still readable
    assert [x.name for x in c.deployments.list()] == []
    assert [x.state for x in c.deployments.list(show_deleted=True)] == ["DELETED"]
    with pytest.raises(fireworks.NotFoundError):
        c.deployments.delete("d1")
    assert fw.live_deployments() == [] and not fw.servable("accounts/acct/models/lora", "acct")
    # expire_time is stored but, as SDK 1.2.30 documents, deletes nothing (svgrft enforces its TTL itself)
    c.deployments.create(base_model="accounts/acct/models/lora", deployment_id="d2", expire_time="2001-01-01T00:00:00Z")
    d2 = c.deployments.get("d2")
    assert d2.state == "READY" and d2.expire_time.year == 2001


def test_fake_lora_load_needs_an_addons_deployment_of_its_base(fw):
    import fireworks

    c = sdk(fw)
    fw.add_model("lora", peftDetails={"baseModel": "accounts/fireworks/models/qwen3-8b"})
    c.deployments.create(base_model="accounts/fireworks/models/qwen3-8b", deployment_id="plain")
    c.deployments.create(base_model="accounts/fireworks/models/qwen3-8b", deployment_id="multi", enable_addons=True)
    with pytest.raises(fireworks.BadRequestError, match="not READY"):
        c.lora.load(model="accounts/acct/models/lora", deployment="accounts/acct/deployments/multi")
    c.deployments.get("plain"), c.deployments.get("multi")
    with pytest.raises(fireworks.BadRequestError, match="enableAddons"):
        c.lora.load(model="accounts/acct/models/lora", deployment="accounts/acct/deployments/plain")
    dm = c.lora.load(model="accounts/acct/models/lora", deployment="accounts/acct/deployments/multi")
    assert dm.state == "DEPLOYING" and not fw.servable("accounts/acct/models/lora", "acct")
    assert c.lora.get(dm.name.rsplit("/", 1)[-1]).state == "DEPLOYED"
    assert fw.servable("accounts/acct/models/lora#accounts/acct/deployments/multi", "acct")
    assert not fw.servable("accounts/acct/models/lora#accounts/acct/deployments/plain", "acct")
    with pytest.raises(fireworks.BadRequestError, match="unload"):
        c.deployments.delete("multi")
    c.lora.unload(dm.name.rsplit("/", 1)[-1])
    c.deployments.delete("multi")
    c.deployments.delete("plain")
    assert fw.live_deployments() == []


# ----------------------------------------------------------------------------------- deploy
def test_dry_run_needs_no_key_and_no_network(fw, cli, monkeypatch):
    monkeypatch.delenv("FIREWORKS_API_KEY")
    r = cli("deploy", JOB, "--dry-run", "--ttl", "90m")
    assert r.exit_code == 0, r
    assert fw.requests == []
    assert r.stdout.startswith("POST /v1/accounts/<account>/deployments?deploymentId=svgrft-svg-job\n")
    body = json.loads(r.stdout.split("\n", 1)[1])
    assert body["baseModel"] == f"accounts/<account>/models/{JOB}"
    assert body["minReplicaCount"] == 0 and body["autoscalingPolicy"] == {"scaleToZeroWindow": "900s"}
    assert body["acceleratorType"] == "NVIDIA_A100_80GB" and "expireTime" in body
    assert "$2.90/hour" in r.stderr and "TTL 1h30m" in r.stderr and "assumed" in r.stderr

    r = cli(
        "deploy",
        "accounts/acct/models/m",
        "--dry-run",
        "--json",
        "--accelerator",
        "NVIDIA_H100_80GB",
        "--accelerator-count",
        "2",
    )
    d = r.json()
    assert d["cost_per_hour"] == 8.0 and d["requests"][0]["body"]["acceleratorCount"] == 2
    assert d["model_string"] == "accounts/acct/models/m#accounts/<account>/deployments/svgrft-m"
    assert fw.requests == []
    for bad in (["--ttl", "soon"], ["--accelerator", "TPU"], ["--id", "Bad_Id"]):
        r = cli("deploy", JOB, "--dry-run", *bad)
        assert r.exit_code == 2 and error_lines(r)[1].startswith("hint:"), r


def test_deploy_a_job_then_eval_uses_it_then_undeploy(fw, oai, cli, job, fast, tmp_path):
    r = cli("deploy", job)  # no terminal, no --yes: refuses before creating anything
    assert r.exit_code == 1 and "--yes" in r.stderr and fw.live_deployments() == []

    r = cli("deploy", job, "--yes")
    assert r.exit_code == 0, r
    dep = "accounts/acct/deployments/svgrft-svg-job-out"
    assert r.stdout == f"{OUT}#{dep}\n"
    assert "curl" in r.stderr and "OpenAI(" in r.stderr and FW_KEY not in r.stderr + r.stdout
    assert "READY" in r.stderr and "$2.90/hour" in r.stderr
    live = fw.live_deployments()
    assert [(d["name"], d["state"], d["baseModel"]) for d in live] == [(dep, "READY", OUT)]
    sent = [q for q in fw.calls("POST") if q.path.endswith("/deployments")][0]
    assert sent.query["deploymentId"] == "svgrft-svg-job-out" and sent.json["expireTime"].endswith("Z")

    r = cli("deploy", job, "--yes")  # already served: nothing new
    assert r.exit_code == 0 and "already deployed" in r.stderr and len(fw.live_deployments()) == 1

    data = write_rows(tmp_path / "two.jsonl", BUNDLED_EVAL, 2)
    before = len(chats(fw))
    r = cli("eval", "--model", job, "--dataset", data, "--json")
    assert r.exit_code == 0, r
    assert {c.json["model"] for c in chats(fw)[before:]} == {f"{OUT}#{dep}"}
    before = len(chats(fw))
    assert cli("eval", "--model", OUT, "--dataset", data, "--rows", "1").exit_code == 0  # the model name works too
    assert {c.json["model"] for c in chats(fw)[before:]} == {f"{OUT}#{dep}"}

    r = cli("deployments", "list", "--json")
    (item,) = r.json()["deployments"]
    assert item["svgrft"] is True and item["expired"] is False and 0 < item["expires_in"] <= 7200

    r = cli("undeploy", job)
    assert r.exit_code == 0, r
    assert r.stdout == dep + "\n" and fw.live_deployments() == []
    r = cli("eval", "--model", job, "--dataset", data)
    assert r.exit_code == 1
    err = error_lines(r)
    assert "not deployed" in err[0] and f"svgrft deploy {job}" in err[1]


def test_addons_mode_loads_the_lora_onto_a_base_deployment(fw, cli, job, fast):
    r = cli("deploy", job, "--mode", "addons", "--yes", "--json")
    assert r.exit_code == 0, r
    out = r.json()
    (d,) = fw.live_deployments()
    assert d["baseModel"] == "accounts/fireworks/models/tiny-base-model" and d["enableAddons"] is True
    (dm,) = fw.deployed_models()
    assert dm["model"] == OUT and dm["state"] == "DEPLOYED" and out["model_string"] == f"{OUT}#{d['name']}"
    assert fw.servable(out["model_string"], "acct")
    r = cli("undeploy", d["name"].rsplit("/", 1)[-1])
    assert r.exit_code == 0, r
    assert fw.live_deployments() == [] and fw.deployed_models() == []


def test_failed_or_slow_deployment_is_deleted_again(fw, cli, job, fast):
    fw.deployment_fails_with = "no capacity for NVIDIA_A100_80GB"
    r = cli("deploy", job, "--yes")
    assert r.exit_code == 1
    assert "no capacity" in error_lines(r)[0] and "deleted deployment svgrft-svg-job-out again" in r.stderr
    assert fw.live_deployments() == []

    fw.deployment_fails_with = None
    fw.deployment_polls_creating = 10**6
    r = cli("deploy", job, "--yes", "--timeout", "1")
    assert r.exit_code == 1 and "not READY after 1s" in error_lines(r)[0]
    assert fw.live_deployments() == []


def test_interrupt_while_waiting_deletes_the_deployment(fw, job, fast):
    from svgrft.clients.fireworks import make_client
    from svgrft.config import load_settings
    from svgrft.workflow import deploy as wf

    fw.deployment_polls_creating = 10**6
    settings = load_settings()
    client = make_client(settings)
    plan = wf.plan_deployment(settings, wf.resolve_target(client, job), account=client.account_id)
    seen = []

    def interrupt(d):
        seen.append(d.state)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wf.deploy(client, plan, timeout=60, poll_interval=0.01, on_update=interrupt)
    assert seen == ["CREATING"] and fw.live_deployments() == []
    assert wf.load_records() == {}


def test_expired_deployments_are_flagged_and_deleted(fw, cli, job, fast):
    from svgrft.workflow.deploy import registry_path

    fw.add_deployment("someone-elses", OUT)
    assert cli("deploy", job, "--yes", "--id", "mine").exit_code == 0
    recs = json.loads(registry_path().read_text())
    recs["accounts/acct/deployments/mine"]["expires"] = "2001-01-01T00:00:00Z"
    registry_path().write_text(json.dumps(recs))

    r = cli("deployments", "list")
    assert r.exit_code == 0 and "EXPIRED" in r.stdout and "someone-elses" in r.stdout
    assert "svgrft undeploy --expired" in r.stderr
    r = cli("undeploy", "--expired")
    assert r.exit_code == 0 and r.stdout == "accounts/acct/deployments/mine\n"
    assert [d["name"] for d in fw.live_deployments()] == ["accounts/acct/deployments/someone-elses"]
    r = cli("undeploy", "someone-elses")  # not svgrft's: asks, and without a terminal needs --yes
    assert r.exit_code == 1 and "--yes" in r.stderr and len(fw.live_deployments()) == 1
    assert cli("undeploy", "someone-elses", "--yes").exit_code == 0 and fw.live_deployments() == []
    r = cli("undeploy", "nothing-here")
    assert r.exit_code == 1 and error_lines(r)[0].startswith("Error: no deployment, RFT job or model")


# ----------------------------------------------------------------------------------- compare --deploy
def test_train_then_replay_with_deploy_on_held_out_prompts(make_fw, oai, cli, fast, tmp_path, monkeypatch):
    fw = make_fw()
    write_config("[deploy]\npoll_interval = 0.01\n[evaluator]\npoll_interval = 0.01\n[train]\npoll_interval = 0.01\n")
    r = cli("train", "--base-model", "qwen3-0p6b", "--yes", "--json")
    assert r.exit_code == 0, r
    job_id, out_model = r.json()["job_id"], r.json()["output_model"]
    held_out = write_rows(tmp_path / "heldout.jsonl", BUNDLED_EVAL, 3)

    r = cli(
        "compare-epochs",
        job_id,
        "--source",
        "replay",
        "--deploy",
        "--yes",
        "--dataset",
        held_out,
        "--out",
        tmp_path / "rep",
        "--json",
    )
    assert r.exit_code == 0, r
    data = r.json()
    creates = [q for q in fw.calls("POST") if q.path.endswith("/deployments")]
    assert len(creates) == 1
    dep = f"accounts/acct/deployments/{creates[0].query['deploymentId']}"
    assert f"deployment {dep.rsplit('/', 1)[-1]}: READY" in r.stderr
    models = {c.json["model"] for c in chats(fw) if c.json.get("model", "").startswith("accounts/acct/")}
    assert models == {f"{out_model}#{dep}"}  # the trained model was called through the deployment
    assert "accounts/fireworks/models/qwen3-0p6b" in {c.json["model"] for c in chats(fw)}  # base: serverless
    assert fw.live_deployments() == []
    split = data["meta"]["split"]
    assert split["split"] == "held-out" and split["prompts"] == 3 and "the job's dataset" in split["compared_with"]
    assert any(f.startswith("split: held-out") for f in data["findings"])
    for side in ("before", "after"):
        ci = data["summary"][side]
        assert ci["n"] == 3 and ci["low"] <= ci["mean"] <= ci["high"] and ci["confidence"] == 0.95
    assert {"better_rows", "worse_rows"} <= set(data)

    trained = write_rows(tmp_path / "trained.jsonl", BUNDLED_TRAIN, 2)
    r = cli(
        "compare-epochs",
        job_id,
        "--source",
        "replay",
        "--deploy",
        "--yes",
        "--dataset",
        trained,
        "--out",
        tmp_path / "rep2",
    )
    assert r.exit_code == 0, r
    assert "split: training: all 2 prompts" in r.stdout and re.search(r"^(better|worse)", r.stdout, re.M)
    assert fw.live_deployments() == []


def test_replay_without_deploy_says_how_to_get_one(fw, oai, cli, job, fast, tmp_path):
    r = cli("compare-epochs", job, "--source", "replay", "--dataset", write_rows(tmp_path / "d.jsonl", BUNDLED_EVAL, 1))
    assert r.exit_code == 1
    err = error_lines(r)
    assert "cannot be served" in err[0] and "--deploy" in err[1] and "firectl" not in err[1]
    r = cli("compare-epochs", job, "--deploy")
    assert r.exit_code == 2 and "--source replay" in r.stderr
    r = cli("compare-epochs", job, "--source", "replay", "--deploy", "--dataset", tmp_path / "d.jsonl")
    assert r.exit_code == 1 and "--yes" in error_lines(r)[1] and "$2.90/hour" in r.stderr  # cost shown, not started
    assert fw.live_deployments() == [] and not [q for q in fw.calls("POST") if q.path.endswith("/deployments")]


def test_replay_error_and_failed_cleanup_are_reported(fw, oai, cli, job, fast, tmp_path):
    data = write_rows(tmp_path / "d.jsonl", BUNDLED_EVAL, 1)
    fw.faults.add("POST", r"chat/completions", kind="400", times=None)  # generation fails outright
    r = cli(
        "compare-epochs", job, "--source", "replay", "--deploy", "--yes", "--dataset", data, "--out", tmp_path / "o"
    )
    assert r.exit_code == 1 and fw.live_deployments() == []
    fw.faults.clear()

    fw.faults.add("DELETE", r"/deployments/", kind="503", times=None)
    r = cli(
        "compare-epochs", job, "--source", "replay", "--deploy", "--yes", "--dataset", data, "--out", tmp_path / "o"
    )
    assert r.exit_code == 1, r
    err = error_lines(r)
    assert "could not be deleted" in err[0] and "svgrft undeploy svgrft-svg-job-out" in err[1]
    assert (tmp_path / "o" / "index.html").is_file()  # the report itself was written
    fw.faults.clear()
    assert cli("undeploy", "svgrft-svg-job-out").exit_code == 0 and fw.live_deployments() == []


def test_ctrl_c_mid_replay_leaves_no_deployment(fw, oai, job, tmp_path):
    write_config("[deploy]\npoll_interval = 0.01\n")
    data = write_rows(tmp_path / "d.jsonl", BUNDLED_EVAL, 2)
    fw.faults.add("POST", r"chat/completions", kind="slow", delay=20, times=None)  # generation hangs
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "svgrft",
            "compare-epochs",
            job,
            "--source",
            "replay",
            "--deploy",
            "--yes",
            "--dataset",
            str(data),
            "--out",
            str(tmp_path / "o"),
        ],
        cwd=os.getcwd(),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None and not chats(fw):
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        assert [d["state"] for d in fw.live_deployments()] == ["READY"]  # mid-way: deployed, generating
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert fw.live_deployments() == []
    assert "deleting deployment svgrft-svg-job-out" in err and "Traceback" not in err


def test_undeploy_by_job_only_unloads_from_a_shared_host(fw, cli, job, fast):
    import fireworks

    c = sdk(fw)
    fw.add_deployment("shared", "accounts/fireworks/models/tiny-base-model", enableAddons=True)
    fw.add_model("other-lora", peftDetails={"baseModel": "accounts/fireworks/models/tiny-base-model"})
    for m in (OUT, "accounts/acct/models/other-lora"):
        dm = c.lora.load(model=m, deployment="accounts/acct/deployments/shared")
        c.lora.get(dm.name.rsplit("/", 1)[-1])
    r = cli("undeploy", job)
    assert r.exit_code == 0, r
    assert r.stdout == f"accounts/acct/deployments/shared (unloaded {OUT})\n"
    assert [d["name"] for d in fw.live_deployments()] == ["accounts/acct/deployments/shared"]
    assert [d["model"] for d in fw.deployed_models()] == ["accounts/acct/models/other-lora"]
    with pytest.raises(fireworks.NotFoundError):  # the unloaded LoRA is no longer served there
        c.chat.completions.create(
            model=f"{OUT}#accounts/acct/deployments/shared", messages=[{"role": "user", "content": "x"}]
        )


def test_no_wait_returns_at_once_and_list_shows_it_starting(fw, cli, job, fast):
    fw.deployment_polls_creating = 3
    r = cli("deploy", job, "--yes", "--no-wait", "--json")
    assert r.exit_code == 0, r
    out = r.json()
    assert out["created"] is True and out["state"] == "CREATING" and out["ttl"] == "2h"
    r = cli("deployments", "list", "--json")
    assert [d["state"] for d in r.json()["deployments"]] == ["CREATING"]
    assert cli("undeploy", job).exit_code == 0 and fw.live_deployments() == []
