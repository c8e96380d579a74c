"""`svgrft train`: the dry run (no keys, no network), the full flow against the fake Fireworks in both
rollout modes (asserting the fake's state afterwards), idempotent re-runs, and the failure paths."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from tests.conftest import FW_KEY, OPENAI_KEY, write_config
from tests.fakes.health import HealthServer

SERVE_TOKEN = "serve-token-0123456789abcdef"
WANDB_KEY = "wandb-key-0123456789abcdef"


@pytest.fixture
def fast():
    """./configs/default.toml (auto-loaded from the test's cwd) with short poll intervals."""
    return write_config("[evaluator]\npoll_interval = 0.01\n[train]\npoll_interval = 0.01\n")


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)


def dataset_lines(path) -> int:
    return sum(1 for line in open(path, encoding="utf-8") if line.strip())


def train_dataset():
    from svgrft.core.dataset import BUNDLED_TRAIN

    return BUNDLED_TRAIN


def tar_files(blob: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tf:
        return {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}


def creates(fw) -> list[str]:
    """Resource-creating requests (not secret updates, not uploads of an existing resource)."""
    out = []
    for q in fw.requests:
        if q.method == "POST" and (
            q.path.endswith(("/datasets", "/evaluatorsV2", "/reinforcementFineTuningJobs", "/secrets"))
        ):
            out.append(q.path.rsplit("/", 1)[-1])
    return out


# ------------------------------------------------------------------------------------------- dry run


def test_dry_run_needs_no_keys_and_makes_no_network_call(fw, cli, monkeypatch):
    monkeypatch.delenv("FIREWORKS_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    r = cli(
        "train",
        "--base-model",
        "qwen3-0p6b",
        "--dry-run",
        "--epochs",
        "3",
        "--n",
        "2",
        "--learning-rate",
        "3e-5",
        "--lora-rank",
        "8",
        "--batch-size",
        "32768",
        "--max-context-length",
        "6000",
        "--chunk-size",
        "20",
        "--temperature",
        "0.6",
        "--max-tokens",
        "2500",
        "--output-model",
        "svg-qwen",
        "--json",
    )
    assert r.exit_code == 0, r
    assert fw.requests == []  # not even the account lookup
    d = r.json()
    p = d["payload"]
    assert p["trainingConfig"] == {
        "baseModel": "accounts/fireworks/models/qwen3-0p6b",
        "epochs": 3,
        "learningRate": 3e-5,
        "loraRank": 8,
        "batchSize": 32768,
        "maxContextLength": 6000,
        "outputModel": "accounts/<account>/models/svg-qwen",
    }
    assert p["inferenceParameters"] == {
        "temperature": 0.6,
        "topP": 1.0,
        "maxOutputTokens": 2500,
        "responseCandidatesCount": 2,
    }
    assert p["chunkSize"] == 20 and p["evalAutoCarveout"] is False and p["wandbConfig"] == {"enabled": False}
    assert p["dataset"].startswith("accounts/<account>/datasets/svgbench-train-")
    rows = dataset_lines(train_dataset())
    assert d["estimate"]["judge_calls"] == rows * 2 * 3
    assert d["estimate"]["usd_estimate"] > 0
    assert [x["ok"] for x in d["renders"]] == [True, True, True]
    assert all(x["png_bytes"] > 100 for x in d["renders"])
    assert {s["key"]: s["set"] for s in d["secrets"]} == {"OPENAI_API_KEY": False, "FIREWORKS_API_KEY": False}
    assert d["rollout"] == {"mode": "local"}
    assert d["job_id"] in d["request"]


def test_dry_run_human_output_shows_plan_payload_and_estimate(fw, cli, monkeypatch):
    monkeypatch.delenv("FIREWORKS_API_KEY")
    r = cli("train", "--base-model", "qwen3-0p6b", "--dry-run")
    assert r.exit_code == 0, r
    assert "nothing was sent" in r.stdout
    assert '"responseCandidatesCount": 4' in r.stdout
    assert "judge calls:" in r.stdout and "sample renders" in r.stdout
    assert fw.requests == []


def test_dry_run_remote_shows_server_url_and_missing_url_fails(fw, cli, monkeypatch):
    monkeypatch.delenv("FIREWORKS_API_KEY")
    r = cli(
        "train", "--dry-run", "--rollout-mode", "remote", "--rollout-server-url", "https://svg.example.com", "--json"
    )
    assert r.exit_code == 0, r
    assert r.json()["rollout"]["mode"] == "remote"
    assert r.json()["rollout"]["server_url"] == "https://svg.example.com"
    missing = cli("train", "--dry-run", "--rollout-mode", "remote")
    assert missing.exit_code == 1
    assert "--rollout-server-url" in missing.stderr
    assert fw.requests == []


def test_dry_run_job_id_is_the_one_the_real_run_uses(fw, cli, fast, keys):
    dry = cli("train", "--dry-run", "--epochs", "1", "--json")
    real = cli("train", "--epochs", "1", "--yes", "--no-watch", "--json")
    assert dry.exit_code == 0 and real.exit_code == 0, real
    assert real.json()["job_id"] == dry.json()["job_id"]
    assert real.json()["evaluator"].endswith(dry.json()["evaluator"]["id"])
    assert real.json()["dataset"].endswith(dry.json()["dataset"]["id"])


def test_invalid_values_fail_before_anything(fw, cli, keys):
    r = cli("train", "--n", "0", "--yes")
    assert r.exit_code == 2 and "--n" in r.stderr  # a bad flag is a usage error
    r = cli("train", "--max-tokens", "9000", "--max-context-length", "8192", "--yes")
    assert r.exit_code == 2 and "--max-context-length" in r.stderr
    r = cli("train", "--dataset", "nope/missing.jsonl", "--yes")
    assert r.exit_code == 1 and "missing.jsonl" in r.stderr
    assert fw.requests == []


def test_without_yes_and_without_terminal_nothing_happens(fw, cli, keys):
    r = cli("train")
    assert r.exit_code == 1 and "--yes" in r.stderr
    assert fw.requests == []


# ------------------------------------------------------------------------------------------ end to end


def test_train_end_to_end_local_mode_then_rerun_creates_nothing(fw, cli, fast, keys):
    r = cli("train", "--base-model", "qwen3-0p6b", "--yes", "--json")
    assert r.exit_code == 0, r
    out = r.json()
    assert out["state"] == "JOB_STATE_COMPLETED" and out["created"] is True
    assert out["rollout_mode"] == "local"
    assert out["dashboard_url"].endswith("/" + out["job_id"])
    assert out["output_model"] == f"accounts/acct/models/{out['job_id']}"
    assert "COMPLETED" in r.stderr and "✓ secrets" in r.stderr

    # secrets: exactly the two keys, with their values
    assert fw.secret_value("openai-api-key") == OPENAI_KEY
    assert fw.secret_value("fireworks-api-key") == FW_KEY
    assert len(fw._items("secrets", "acct")) == 2
    # one dataset, READY, with every row
    dss = fw._items("datasets", "acct")
    assert len(dss) == 1 and dss[0]["state"] == "READY"
    assert int(dss[0]["exampleCount"]) == dataset_lines(train_dataset())
    assert dss[0]["name"] == out["dataset"]
    # one ACTIVE evaluator with the entry point, local processor, the job's parameters, no secrets
    evs = fw._items("evaluators", "acct")
    assert len(evs) == 1 and evs[0]["state"] == "ACTIVE" and evs[0]["name"] == out["evaluator"]
    blob = fw.evaluator_tarball(evs[0]["name"].rsplit("/", 1)[-1])
    files = tar_files(blob)
    assert "svgrft-evaluator/" + evs[0]["entryPoint"].split("::")[0] in files
    for secret in (FW_KEY, OPENAI_KEY):
        assert secret.encode() not in blob and all(secret.encode() not in v for v in files.values())
    cfg = json.loads(files["svgrft-evaluator/svgrft_evaluator_config.json"])
    # one job whose payload carries the config values
    jobs = fw._items("reinforcementFineTuningJobs", "acct")
    assert len(jobs) == 1
    payload = fw.job_payload(out["job_id"])
    assert payload["dataset"] == out["dataset"] and payload["evaluator"] == out["evaluator"]
    assert payload["trainingConfig"]["baseModel"] == "accounts/fireworks/models/qwen3-0p6b"
    assert payload["trainingConfig"]["epochs"] == 4 and payload["inferenceParameters"]["responseCandidatesCount"] == 4
    assert cfg["rollout"] == {"mode": "local"}
    ip = payload["inferenceParameters"]
    cp = cfg["completion_params"]
    assert (cp["model"], cp["temperature"], cp["top_p"], cp["max_tokens"], cfg["num_runs"]) == (
        payload["trainingConfig"]["baseModel"],
        ip["temperature"],
        ip["topP"],
        ip["maxOutputTokens"],
        ip["responseCandidatesCount"],
    )

    # a second identical run creates nothing new
    before = creates(fw)
    again = cli("train", "--base-model", "qwen3-0p6b", "--yes", "--json")
    assert again.exit_code == 0, again
    assert again.json()["created"] is False and again.json()["job"] == out["job"]
    assert creates(fw) == before
    assert not [q for q in fw.requests if q.method == "PUT" or q.path.endswith(":upload")][2:]  # only the 1st run's
    assert len(fw._items("datasets", "acct")) == 1 and len(fw._items("evaluators", "acct")) == 1
    assert len(fw._items("reinforcementFineTuningJobs", "acct")) == 1


def test_train_end_to_end_remote_mode_with_token(fw, cli, fast, keys, monkeypatch):
    monkeypatch.setenv("SVGRFT_SERVE_TOKEN", SERVE_TOKEN)
    server = HealthServer()
    try:
        r = cli(
            "train",
            "--yes",
            "--json",
            "--no-watch",
            "--rollout-mode",
            "remote",
            "--rollout-server-url",
            server.url,
            "--temperature",
            "0.7",
            "--max-tokens",
            "3000",
        )
    finally:
        server.stop()
    assert r.exit_code == 0, r
    out = r.json()
    assert out["rollout_mode"] == "remote" and out["rollout_server_url"] == server.url
    assert fw.secret_value("svgrft-serve-token") == SERVE_TOKEN
    ev = fw._items("evaluators", "acct")[0]
    files = tar_files(fw.evaluator_tarball(ev["name"].rsplit("/", 1)[-1]))
    cfg = json.loads(files["svgrft-evaluator/svgrft_evaluator_config.json"])
    assert cfg["rollout"]["mode"] == "remote" and cfg["rollout"]["server_url"] == server.url
    assert cfg["rollout"]["model_base_url"] == fw.localhost_url
    assert cfg["completion_params"]["temperature"] == 0.7 and cfg["completion_params"]["max_tokens"] == 3000
    assert all(SERVE_TOKEN.encode() not in v for v in files.values())
    payload = fw.job_payload(out["job_id"])
    assert payload["inferenceParameters"]["temperature"] == 0.7
    assert payload["inferenceParameters"]["maxOutputTokens"] == 3000


def test_remote_mode_with_unhealthy_server_stops_before_any_change(fw, cli, fast, keys):
    server = HealthServer(status=503)
    try:
        r = cli("train", "--yes", "--rollout-mode", "remote", "--rollout-server-url", server.url)
    finally:
        server.stop()
    assert r.exit_code == 1 and "unhealthy" in r.stderr
    assert creates(fw) == []


def test_flags_and_config_file_values_reach_the_job(fw, cli, fast, keys, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", WANDB_KEY)
    cfg = tmp_path / "mine.toml"
    cfg.write_text(
        '[train]\nepochs = 2\nlora_rank = 32\ndisplay_name = "from config"\n[evaluator]\npoll_interval = 0.01\n',
        encoding="utf-8",
    )
    r = cli(
        "train",
        "--config",
        str(cfg),
        "--base-model",
        "llama-v3p1-8b-instruct",
        "--learning-rate",
        "2e-5",
        "--n",
        "2",
        "--chunk-size",
        "10",
        "--output-model",
        "svg-llama",
        "--job-id",
        "my-svg-job",
        "--eval-auto-carveout",
        "--wandb",
        "--wandb-project",
        "svg",
        "--wandb-entity",
        "me",
        "--poll-interval",
        "0.01",
        "--yes",
        "--json",
    )
    assert r.exit_code == 0, r
    assert r.json()["job_id"] == "my-svg-job"
    p = fw.job_payload("my-svg-job")
    tc = p["trainingConfig"]
    assert (tc["epochs"], tc["loraRank"], tc["learningRate"]) == (2, 32, 2e-5)  # config, config, flag
    assert tc["baseModel"] == "accounts/fireworks/models/llama-v3p1-8b-instruct"
    assert tc["outputModel"] == "accounts/acct/models/svg-llama"
    assert p["displayName"] == "from config"
    assert p["inferenceParameters"]["responseCandidatesCount"] == 2 and p["chunkSize"] == 10
    assert p["evalAutoCarveout"] is True
    assert p["wandbConfig"] == {"enabled": True, "project": "svg", "entity": "me", "apiKey": WANDB_KEY}
    assert WANDB_KEY not in r.stdout + r.stderr
    assert r.json()["output_model"] == "accounts/acct/models/svg-llama"


def test_the_job_is_sent_exactly_as_the_dry_run_shows_it(fw, cli, fast, keys, monkeypatch):
    """One payload shape: the body Fireworks receives is the dry run's payload (W&B key unmasked), key for key."""
    monkeypatch.setenv("WANDB_API_KEY", WANDB_KEY)
    monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "acct")  # the dry run names resources in this account
    args = (
        "train",
        "--base-model",
        "qwen3-0p6b",
        "--epochs",
        "1",
        "--output-model",
        "svg-out",
        "--wandb",
        "--wandb-project",
        "svg",
        "--wandb-run-id",
        "run-7",
        "--json",
    )
    dry = cli(*args, "--dry-run")
    assert dry.exit_code == 0, dry
    shown = dry.json()["payload"]
    assert shown["wandbConfig"]["apiKey"] == "****"
    r = cli(*args, "--yes", "--no-watch")
    assert r.exit_code == 0, r
    assert r.json()["job_id"] == dry.json()["job_id"]
    sent = fw.job_payload(r.json()["job_id"])
    assert sent["wandbConfig"].pop("apiKey") == WANDB_KEY
    shown["wandbConfig"].pop("apiKey")
    assert sent == shown


def test_eval_dataset_file_is_uploaded_and_referenced(fw, cli, fast, keys):
    from svgrft.core.dataset import BUNDLED_EVAL

    r = cli("train", "--eval-dataset", str(BUNDLED_EVAL), "--yes", "--no-watch", "--json")
    assert r.exit_code == 0, r
    dss = {d["name"]: d for d in fw._items("datasets", "acct")}
    assert len(dss) == 2
    p = fw.job_payload(r.json()["job_id"])
    assert p["evaluationDataset"] == r.json()["eval_dataset"] and "evalAutoCarveout" not in p
    assert int(dss[p["evaluationDataset"]]["exampleCount"]) == dataset_lines(BUNDLED_EVAL)


# ------------------------------------------------------------------------------------------ failures


def test_bad_fireworks_key_is_401_with_hint(fw, cli, fast, keys, monkeypatch):
    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-bogus-key-000000000000")
    r = cli("train", "--yes")
    assert r.exit_code == 1
    assert "FIREWORKS_API_KEY" in r.stderr
    assert "fw-bogus-key-000000000000" not in r.stderr + r.stdout


def test_missing_openai_key_fails_before_any_request(fw, cli, fast):
    r = cli("train", "--yes")
    assert r.exit_code == 1 and "OPENAI_API_KEY" in r.stderr
    assert fw.requests == []


def test_unknown_base_model_is_a_404_with_hint(cli, fast, keys, monkeypatch):
    from tests.fakes import start_fireworks

    fake = start_fireworks(api_keys={FW_KEY: "acct"}, serverless_models=("qwen3-0p6b",))
    try:
        monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
        monkeypatch.setenv("FIREWORKS_BASE_URL", fake.url)
        r = cli("train", "--base-model", "no-such-model", "--yes", "--no-watch")
        assert r.exit_code == 1
        assert "404" in r.stderr and "no-such-model" in r.stderr and "hint:" in r.stderr
        assert fake._items("reinforcementFineTuningJobs", "acct") == []
    finally:
        fake.stop()


def test_existing_job_id_with_other_settings_is_a_conflict(fw, cli, fast, keys):
    first = cli("train", "--job-id", "svg-job-1", "--epochs", "1", "--yes", "--no-watch")
    assert first.exit_code == 0, first
    same = cli("train", "--job-id", "svg-job-1", "--epochs", "1", "--yes", "--no-watch", "--json")
    assert same.exit_code == 0 and same.json()["created"] is False
    other = cli("train", "--job-id", "svg-job-1", "--epochs", "2", "--yes", "--no-watch")
    assert other.exit_code == 1
    assert "already exists" in other.stderr and "epochs" in other.stderr and "--job-id" in other.stderr
    assert fw.job_payload("svg-job-1")["trainingConfig"]["epochs"] == 1
    assert len(fw._items("reinforcementFineTuningJobs", "acct")) == 1


def test_output_model_that_exists_is_a_clear_conflict(fw, cli, fast, keys):
    fw.add_model("taken-model")
    r = cli("train", "--output-model", "taken-model", "--yes", "--no-watch")
    assert r.exit_code == 1
    assert "--output-model" in r.stderr


def test_transient_errors_during_upload_and_polling(fw, cli, fast, keys):
    fw.faults.add(method="POST", path=r"/datasets/[^/]+:upload$", kind="429", times=1, retry_after=0.01)
    fw.faults.add(method="PUT", path=r"^/upload/", kind="503", times=1)
    fw.faults.add(method="GET", path=r"/evaluators/[^/:]+$", kind="500", times=3)
    fw.faults.add(method="GET", path=r"/evaluators/[^/:]+$", kind="malformed", times=1)
    fw.faults.add(method="GET", path=r"/reinforcementFineTuningJobs/[^/:]+$", kind="503", times=4)
    fw.faults.add(method="GET", path=r"/reinforcementFineTuningJobs/[^/:]+$", kind="malformed", times=1)
    r = cli("train", "--epochs", "1", "--yes", "--json")
    assert r.exit_code == 0, r
    assert r.json()["state"] == "JOB_STATE_COMPLETED"
    assert sorted({k for _, _, k in fw.faults.log}) == ["429", "500", "503", "malformed"]


def test_build_failed_shows_the_log_and_creates_no_job(cli, fast, keys, monkeypatch):
    from tests.fakes import start_fireworks

    fake = start_fireworks(
        api_keys={FW_KEY: "acct"}, evaluator_build_fails=lambda blob: "ImportError: libnss3.so missing in image"
    )
    try:
        monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
        monkeypatch.setenv("FIREWORKS_BASE_URL", fake.url)
        r = cli("train", "--yes")
        assert r.exit_code == 1
        assert "libnss3.so missing" in r.stderr and "[build] BUILD FAILED" in r.stderr
        assert fake._items("reinforcementFineTuningJobs", "acct") == []
    finally:
        fake.stop()


def test_failed_job_ends_with_its_message(cli, fast, keys, monkeypatch):
    from tests.fakes import start_fireworks

    fake = start_fireworks(api_keys={FW_KEY: "acct"}, job_fails_with="reward is NaN for 100% of rollouts")
    try:
        monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
        monkeypatch.setenv("FIREWORKS_BASE_URL", fake.url)
        r = cli("train", "--epochs", "1", "--yes", "--json")
        assert r.exit_code == 1
        assert r.json()["state"] == "JOB_STATE_FAILED"
        assert "reward is NaN" in r.stderr and "svgrft jobs resume" in r.stderr
    finally:
        fake.stop()


def test_no_watch_returns_right_after_creating(fw, cli, fast, keys):
    r = cli("train", "--yes", "--no-watch", "--json")
    assert r.exit_code == 0, r
    out = r.json()
    assert out["created"] is True and out["watched"] is False
    assert out["state"] in ("JOB_STATE_PENDING", "JOB_STATE_CREATING")
    assert len(fw.calls("GET", f"/v1/accounts/acct/reinforcementFineTuningJobs/{out['job_id']}")) == 1  # the lookup


def test_ctrl_c_while_watching_detaches_and_says_how_to_reattach(fw, cli, fast, keys, monkeypatch):
    import svgrft.workflow.jobs as jobs

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs, "watch_job", interrupted)
    r = cli("train", "--yes", "--json")
    assert r.exit_code == 130
    out = r.json()
    assert out["detached"] is True and out["created"] is True
    assert f"svgrft jobs watch {out['job_id']}" in r.stderr
    # the job keeps running on the server
    assert fw.job(out["job_id"])["state"] not in ("JOB_STATE_CANCELLED", "JOB_STATE_CANCELLING")
