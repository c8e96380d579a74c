"""compare-epochs on a job that was really trained: `svgrft train` → the fake Fireworks trains it by running
OUR uploaded evaluator once per epoch (eval-protocol's pytest plugin, in a subprocess, only the Fireworks
secrets as environment) → the evaluator records every rollout it scores on the fake gateway's /logs →
`svgrft compare-epochs JOB` reads those records. Nothing is seeded by hand."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.conftest import FW_KEY, OPENAI_KEY, write_config


def six_rows(path) -> None:
    from svgrft.core.dataset import BUNDLED_TRAIN

    lines = [ln for ln in open(BUNDLED_TRAIN, encoding="utf-8") if ln.strip()][:6]
    path.write_text("".join(lines), encoding="utf-8")


@pytest.fixture
def trained(make_fw, oai, cli, tmp_path, monkeypatch):
    """A 6-row, 3-epoch, n=2 job trained by the fake, which ran our evaluator for each epoch."""
    fw = make_fw(job_runs_evaluator=True, job_polls_per_epoch=1)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    write_config("[evaluator]\npoll_interval = 0.01\n[train]\npoll_interval = 0.05\n")
    ds = tmp_path / "six.jsonl"
    six_rows(ds)
    r = cli("train", "--base-model", "qwen3-0p6b", "--dataset", str(ds), "--epochs", "3", "--n", "2", "--yes", "--json")
    assert r.exit_code == 0, r
    job = r.json()
    runs = fw.epoch_runs[job["job_id"]]
    assert [x.epoch for x in runs] == [0, 1, 2], [(x.epoch, x.error, x.output[-2000:]) for x in runs]
    assert all(x.returncode == 0 for x in runs), [x.output[-3000:] for x in runs]
    return fw, job, runs, ds


def _means(runs) -> list[float]:
    out = []
    for x in runs:
        scores = [row["score"] for row in x.rewards]
        assert len(scores) == 12  # 6 rows x n=2
        out.append(sum(scores) / len(scores))
    return out


@pytest.mark.slow
@pytest.mark.browser
def test_trained_job_compare_epochs_shows_the_rewards_the_evaluator_gave(trained, cli, oai, tmp_path):
    fw, job, runs, ds = trained
    jid = job["job_id"]
    # the launcher called the epoch's policy; local mode leaves no traces on the gateway
    assert {m for m in fw.inference_models if "-epoch-" in m} >= {
        f"accounts/acct/models/{jid}-epoch-{e}" for e in range(3)
    }
    assert fw.traces == []
    records = [e for e in fw.logs if "svgrft:rollout" in e["tags"]]
    assert len(records) == 36  # 6 rows x 2 samples x 3 epochs, every one recorded
    for e in records:
        blob = json.dumps(e)
        assert FW_KEY not in blob and OPENAI_KEY not in blob
    truth = _means(runs)
    assert truth[-1] > truth[0]

    judge_before = oai.judge_calls
    out = tmp_path / "report"
    r = cli("compare-epochs", jid, "--out", str(out), "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert oai.judge_calls == judge_before  # the rewards are the recorded ones: no judge call
    curve = data["reward_curve"]
    assert [c["epoch"] for c in curve] == [0, 1, 2]
    assert [c["n"] for c in curve] == [12, 12, 12]
    for c, want in zip(curve, truth):
        assert c["mean"] == pytest.approx(want, abs=1e-9)
    assert data["before_label"] == "epoch 0" and data["after_label"] == "epoch 2"
    assert data["summary"]["after"]["mean"] > data["summary"]["before"]["mean"]
    assert data["summary"]["before"]["mean"] == pytest.approx(truth[0], abs=1e-9)
    assert data["summary"]["after"]["mean"] == pytest.approx(truth[-1], abs=1e-9)
    assert data["meta"]["dataset_origin"].startswith("downloaded from Fireworks")
    assert "by the policy model" in data["meta"]["epoch_split"]
    assert data["meta"]["rows_without_records"] == []
    # every file, every image embedded
    html = (out / "index.html").read_text(encoding="utf-8")
    imgs = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert len(imgs) >= 24 and all(src.startswith("data:image/png;base64,") for src in imgs)
    assert "Training reward per epoch" in html
    for name in ("before_after.png", "reward_curve.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert base64.b64decode(imgs[0].split(",", 1)[1])[:4] == b"\x89PNG"
    # `jobs status` shows the per-epoch means too
    st = cli("jobs", "status", jid, "--json")
    assert st.exit_code == 0, st
    sd = st.json()
    assert [round(c["mean"], 9) for c in sd["reward_curve"]] == [round(m, 9) for m in truth]


@pytest.mark.slow
@pytest.mark.browser
def test_a_job_trained_in_remote_mode_through_svgrft_serve(make_fw, oai, cli, tmp_path, monkeypatch):
    """Remote mode: the evaluator's RemoteRolloutProcessor sends every rollout to `svgrft serve`, which asks
    the epoch's policy through the gateway's tagged proxy (so traces exist, by rollout id); the records name
    those rollout ids, and a trace read back by one of them holds the same reply."""
    from svgrft.clients.tracing import TracingClient
    from svgrft.config import load_settings
    from svgrft.server.app import create_app
    from tests.test_evaluator import SERVE_TOKEN, ServeThread

    fw = make_fw(job_runs_evaluator=True, job_polls_per_epoch=1)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("SVGRFT_SERVE_TOKEN", SERVE_TOKEN)
    write_config("[evaluator]\npoll_interval = 0.01\n[train]\npoll_interval = 0.05\n")
    ds = tmp_path / "six.jsonl"
    six_rows(ds)
    app = create_app(load_settings(), token=SERVE_TOKEN, allow_model_hosts=("localhost",), rate_limit=0)
    with ServeThread(app) as srv:
        r = cli(
            "train",
            "--base-model",
            "qwen3-0p6b",
            "--dataset",
            str(ds),
            "--epochs",
            "2",
            "--n",
            "2",
            "--yes",
            "--json",
            "--rollout-mode",
            "remote",
            "--rollout-server-url",
            srv.url,
        )
        assert r.exit_code == 0, r
        jid = r.json()["job_id"]
        runs = fw.epoch_runs[jid]
        assert [x.returncode for x in runs] == [0, 0], [x.output[-3000:] for x in runs]
        out = tmp_path / "report"
        c = cli("compare-epochs", jid, "--out", str(out), "--json")
    assert c.exit_code == 0, c
    data = c.json()
    truth = _means(runs)
    assert [x["mean"] for x in data["reward_curve"]] == pytest.approx(truth, abs=1e-9)
    assert truth[1] > truth[0]
    assert data["summary"]["after"]["mean"] > data["summary"]["before"]["mean"]
    # the policy went through the tracing proxy (remote mode), so traces exist -- readable by rollout id only
    proxied = [q for q in fw.calls("POST") if q.path.startswith("/rollout_id/")]
    assert len(proxied) == 24  # 6 rows x 2 samples x 2 epochs
    ref = data["rows"][0]["after"][0]["ref"]
    with TracingClient(fw.localhost_url, FW_KEY) as tc:
        trace = tc.trace(ref)
    assert trace is not None and "<svg" in trace["output"]["content"]
    assert (out / "reward_curve.png").is_file() and (out / "before_after.png").is_file()
