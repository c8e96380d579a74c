"""The fake servers, driven by the REAL clients (fireworks SDK, openai SDK, requests, eval-protocol).

Each test asserts observable behaviour of the wire contract (reference/fireworks.md §9,
reference/eval_protocol.md §4) and the fake's recorded state afterwards.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import textwrap
import zlib
from pathlib import Path

import httpx
import pytest
import requests

from tests.fakes import (
    FakeFireworks,
    PngError,
    decode_png,
    encode_png,
    image_stats,
    judge_rule,
    netguard,
    solid_png,
    start_fireworks,
    start_openai,
    stripes_png,
)

KEY = "fw-test-key"
OTHER_KEY = "fw-other-key"
OAI_KEY = "sk-test-judge"
REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "data" / "svg-corpus"
CHROMIUM = "/usr/bin/chromium-headless-shell"
ROWS = (
    b'{"messages":[{"role":"user","content":"draw a cow"}],"input_metadata":{"row_id":"cow"}}\n\n'
    b'{"messages":[{"role":"user","content":"draw a horse"}],"input_metadata":{"row_id":"horse"}}\n'
)


@pytest.fixture
def fake():
    f = start_fireworks(api_keys={KEY: "acct", OTHER_KEY: "other"}, corpus_dir=CORPUS)
    yield f
    f.stop()
    assert not f.errors, f.errors[0]


@pytest.fixture
def oai():
    f = start_openai(api_key=OAI_KEY, corpus_dir=CORPUS)
    yield f
    f.stop()
    assert not f.errors, f.errors[0]


def sdk(fake, key=KEY, account="acct", retries=0, **kw):
    import fireworks

    return fireworks.Fireworks(api_key=key, account_id=account, base_url=fake.url, max_retries=retries, **kw)


def tarball(files: dict, top: str = "proj") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ready_dataset_and_evaluator(c, fake, ds="svg-ds", ev="svg-eval"):
    c.datasets.create(dataset_id=ds, dataset={"displayName": "svg"})
    c.datasets.upload(ds, file=("train.jsonl", ROWS, "application/jsonl"))
    fake.add_evaluator(ev, entryPoint="test_eval.py::test_svg")


# ====================================================================== Fireworks control plane
def test_secrets_value_is_kept_but_never_returned(fake):
    c = sdk(fake)
    created = c.secrets.create(key_name="OPENAI_API_KEY", name="openai-api-key", value="s3cr3t-one")
    assert created.name == "accounts/acct/secrets/openai-api-key"
    # a full resource name is accepted too
    c.secrets.create(key_name="WANDB_API_KEY", name="accounts/acct/secrets/wandb-api-key", value="s3cr3t-two")
    c.secrets.update("openai-api-key", key_name="OPENAI_API_KEY", value="s3cr3t-new")

    raw = c.secrets.with_raw_response.get("openai-api-key")
    got = json.loads(raw.http_response.text)
    assert got == {k: got[k] for k in got if k != "value"} and "value" not in got
    assert got["keyName"] == "OPENAI_API_KEY" and got["createTime"].endswith("Z")
    listed = json.loads(c.secrets.with_raw_response.list().http_response.text)
    assert [s["name"].rsplit("/", 1)[1] for s in listed["secrets"]] == ["openai-api-key", "wandb-api-key"]
    assert all("value" not in s for s in listed["secrets"]) and listed["totalSize"] == 2

    assert fake.secret_value("openai-api-key") == "s3cr3t-new"
    assert fake.secret_value("wandb-api-key") == "s3cr3t-two"
    log = repr(fake.requests)
    assert "s3cr3t" not in log and KEY not in log  # bodies and Authorization are redacted
    assert fake.calls("PATCH", "/v1/accounts/acct/secrets/openai-api-key")[0].json["value"] == "<redacted>"

    c.secrets.delete("wandb-api-key")
    assert fake.secret_value("wandb-api-key") is None


def test_dataset_create_upload_ready_and_rejections(fake):
    import fireworks

    c = sdk(fake)
    ds = c.datasets.create(dataset_id="svg-ds", dataset={"displayName": "SVG", "format": "CHAT"})
    assert ds.state == "UPLOADING" and ds.name == "accounts/acct/datasets/svg-ds"
    with pytest.raises(fireworks.BadRequestError) as e:
        c.datasets.upload("svg-ds", file=("train.jsonl", b"\n\n", "application/jsonl"))
    assert e.value.body["code"] == 3
    up = c.datasets.upload("svg-ds", file=("train.jsonl", ROWS, "application/jsonl"))
    assert up.bytes == len(ROWS) and up.filename == "train.jsonl"
    got = c.datasets.get("svg-ds")
    assert got.state == "READY" and got.example_count == "2"  # non-empty lines, int64 as string
    assert fake.dataset_file("svg-ds") == ROWS

    with pytest.raises(fireworks.NotFoundError) as e:
        c.datasets.upload("nope", file=("t.jsonl", ROWS, "application/jsonl"))
    assert e.value.body["code"] == 5
    with pytest.raises(fireworks.BadRequestError) as e:
        c.datasets.create(dataset_id="Bad_ID", dataset={})
    assert e.value.body["code"] == 3
    with pytest.raises(fireworks.ConflictError) as e:
        c.datasets.create(dataset_id="svg-ds", dataset={})
    assert e.value.body == {"code": 6, "message": 'dataset "svg-ds" already exists', "details": []}
    r = httpx.post(
        f"{fake.url}/v1/accounts/acct/datasets", json={"dataset": {}}, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert r.status_code == 400 and r.json()["code"] == 3 and r.headers["x-should-retry"] == "false"
    c.datasets.create(dataset_id="bad-lines", dataset={})
    with pytest.raises(fireworks.BadRequestError, match="line 2"):
        c.datasets.upload("bad-lines", file=("t.jsonl", b'{"a":1}\nnot json\n', "application/jsonl"))

    # signed-URL flow: getUploadEndpoint -> PUT (no auth) -> validateUpload
    c.datasets.create(dataset_id="via-put", dataset={})
    urls = c.datasets.get_upload_endpoint(
        "via-put", filename_to_size={"a.jsonl": str(len(ROWS))}
    ).filename_to_signed_urls
    assert (
        httpx.put(urls["a.jsonl"], content=ROWS, headers={"Content-Type": "application/octet-stream"}).status_code
        == 200
    )
    c.datasets.validate_upload("via-put", body={})
    assert c.datasets.get("via-put").state == "READY" and fake.dataset_file("via-put") == ROWS


def test_evaluator_upload_validate_active(fake):
    c = sdk(fake)
    ev = c.evaluators.create(
        evaluator_id="svg-eval",
        evaluator={"displayName": "svg", "entryPoint": "evaluator/test_svg.py::test_svg", "requirements": "svgrft\n"},
    )
    assert ev.state == "BUILDING" and ev.name == "accounts/acct/evaluators/svg-eval"
    assert c.evaluators.get("svg-eval").state == "BUILDING"  # nothing uploaded: stays BUILDING
    blob = tarball({"requirements.txt": b"svgrft\n", "evaluator/test_svg.py": b"def test_svg(): pass\n"})
    urls = c.evaluators.get_upload_endpoint(
        "svg-eval", filename_to_size={"proj.tar.gz": str(len(blob))}
    ).filename_to_signed_urls
    url = urls["proj.tar.gz"]
    assert url.startswith(fake.url + "/upload/evaluators/")
    assert httpx.put(url.split("?")[0], content=blob).status_code == 403  # signature required
    put = httpx.put(
        url,
        content=blob,
        headers={"Content-Type": "application/octet-stream", "X-Goog-Content-Length-Range": f"{len(blob)},{len(blob)}"},
    )
    assert put.status_code == 200
    c.evaluators.validate_upload("svg-eval", body={})
    assert c.evaluators.get("svg-eval").state == "BUILDING"  # evaluator_polls_building=1
    done = c.evaluators.get("svg-eval")
    assert done.state == "ACTIVE" and done.status.code == "OK"
    assert fake.evaluator_tarball("svg-eval") == blob
    log_url = c.evaluators.get_build_log_endpoint("svg-eval").build_log_signed_uri
    log = httpx.get(log_url)
    assert log.status_code == 200 and "entry point evaluator/test_svg.py::test_svg found" in log.text


def test_evaluator_build_failed_with_message_and_log(fake):
    c = sdk(fake)
    c.evaluators.create(evaluator_id="no-entry", evaluator={"entryPoint": "evaluator/test_svg.py::test_svg"})
    url = c.evaluators.get_upload_endpoint("no-entry", filename_to_size={"p.tar.gz": "1"}).filename_to_signed_urls[
        "p.tar.gz"
    ]
    httpx.put(url, content=tarball({"requirements.txt": b"x\n", "other.py": b""}))
    c.evaluators.validate_upload("no-entry", body={})
    c.evaluators.get("no-entry")
    ev = c.evaluators.get("no-entry")
    assert ev.state == "BUILD_FAILED" and "evaluator/test_svg.py" in ev.status.message
    text = httpx.get(c.evaluators.get_build_log_endpoint("no-entry").build_log_signed_uri).text
    assert "ERROR:" in text and "BUILD FAILED" in text

    # validateUpload without any upload, and a garbage archive
    c.evaluators.create(evaluator_id="no-code", evaluator={})
    c.evaluators.validate_upload("no-code", body={})
    c.evaluators.get("no-code")
    assert c.evaluators.get("no-code").state == "BUILD_FAILED"
    c.evaluators.create(evaluator_id="garbage", evaluator={})
    url = c.evaluators.get_upload_endpoint("garbage", filename_to_size={"g.tar.gz": "3"}).filename_to_signed_urls[
        "g.tar.gz"
    ]
    httpx.put(url, content=b"\x1f\x8b not a tarball")
    c.evaluators.validate_upload("garbage", body={})
    c.evaluators.get("garbage")
    assert "not a valid tar.gz" in c.evaluators.get("garbage").status.message


def test_evaluator_build_fails_hook_sees_the_tarball():
    seen = []

    def judge(blob: bytes):
        seen.append(blob)
        return "pip failed: no matching distribution for svgrft==99"

    with start_fireworks(api_keys={KEY: "acct"}, evaluator_build_fails=judge, evaluator_polls_building=0) as f:
        c = sdk(f)
        c.evaluators.create(evaluator_id="hooked", evaluator={})
        url = c.evaluators.get_upload_endpoint("hooked", filename_to_size={"p.tar.gz": "1"}).filename_to_signed_urls[
            "p.tar.gz"
        ]
        blob = tarball({"requirements.txt": b"svgrft==99\n"})
        httpx.put(url, content=blob)
        c.evaluators.validate_upload("hooked", body={})
        ev = c.evaluators.get("hooked")
        assert ev.state == "BUILD_FAILED" and ev.status.message.startswith("pip failed")
        assert seen == [blob]


def test_rft_job_runs_to_completion_with_model_epochs_and_traces(fake):
    fake.job_traces = True  # synthetic traces (off by default: local-mode jobs leave none)
    c = sdk(fake)
    ready_dataset_and_evaluator(c, fake)
    job = c.reinforcement_fine_tuning_jobs.create(
        dataset="svg-ds",  # bare ids are accepted
        evaluator="accounts/acct/evaluators/svg-eval",
        reinforcement_fine_tuning_job_id="svg-rft-1",
        training_config={"base_model": "accounts/fireworks/models/qwen3-0p6b", "epochs": 2, "lora_rank": 16},
        inference_parameters={"response_candidates_count": 2, "temperature": 0.8},
    )
    assert job.state == "JOB_STATE_PENDING" and job.dataset == "accounts/acct/datasets/svg-ds"
    payload = fake.job_payload("svg-rft-1")
    assert payload["trainingConfig"] == {
        "baseModel": "accounts/fireworks/models/qwen3-0p6b",
        "epochs": 2,
        "loraRank": 16,
    }

    seen = []
    for _ in range(20):
        j = c.reinforcement_fine_tuning_jobs.get("svg-rft-1")
        p = j.job_progress
        seen.append((j.state, p.epoch if p else None, p.percent if p else None))
        if j.state == "JOB_STATE_COMPLETED":
            break
    states = [s for s, _, _ in seen]
    assert states[:2] == ["JOB_STATE_PENDING", "JOB_STATE_VALIDATING"] and states[-1] == "JOB_STATE_COMPLETED"
    running = [(e, pc) for s, e, pc in seen if s == "JOB_STATE_RUNNING"]
    assert [e for e, _ in running] == sorted(e for e, _ in running) and {e for e, _ in running} == {0, 1}
    assert all(a < b for (e1, a), (e2, b) in zip(running, running[1:]) if e1 == e2)  # percent rises per epoch
    assert j.completed_time is not None and j.completed_time >= j.create_time

    model = c.models.get("svg-rft-1")  # outputModel defaults to the job id
    assert model.kind == "HF_PEFT_ADDON" and model.state == "READY"
    assert model.peft_details.base_model == "accounts/fireworks/models/qwen3-0p6b"
    assert model.fine_tuning_job == "accounts/acct/reinforcementFineTuningJobs/svg-rft-1"

    windows = fake.job_epochs("svg-rft-1")
    assert [w["epoch"] for w in windows] == [0, 1]
    assert (
        fake.job_create_time("svg-rft-1")
        < windows[0]["start"]
        < windows[0]["end"]
        <= windows[1]["start"]
        < windows[1]["end"]
    )
    for w in windows:  # rows x responseCandidatesCount traces, inside the epoch window
        traces = [t for t in fake.traces if f"epoch:{w['epoch']}" in t["tags"]]
        assert len(traces) == 2 * 2
        assert {t["tags"][4] for t in traces} == {"row_id:cow", "row_id:horse"}
        assert all("invocation_id:svg-rft-1" in t["tags"] for t in traces)
        from tests.fakes.tracing import parse_time

        assert all(w["start"] < parse_time(t["timestamp"]) < w["end"] for t in traces)
    first = [t["output"]["content"] for t in fake.traces if "epoch:0" in t["tags"]]
    last = [t["output"]["content"] for t in fake.traces if "epoch:1" in t["tags"]]
    assert all("<circle" in x and "<path" not in x for x in first)  # epoch 0 drawn "base" quality
    assert all(x not in first for x in last)


def test_rft_job_validation_and_conflicts(fake):
    import fireworks

    c = sdk(fake, retries=2)  # x-should-retry: false keeps 4xx to one attempt
    c.datasets.create(dataset_id="uploading", dataset={})
    fake.add_evaluator("ev")
    fake.add_dataset("ready")
    base = {"base_model": "accounts/fireworks/models/qwen3-0p6b"}
    with pytest.raises(fireworks.BadRequestError) as e:
        c.reinforcement_fine_tuning_jobs.create(dataset="uploading", evaluator="ev", training_config=base)
    assert e.value.body["code"] == 9
    with pytest.raises(fireworks.NotFoundError):
        c.reinforcement_fine_tuning_jobs.create(dataset="ready", evaluator="missing", training_config=base)
    fake.add_evaluator("building", state="BUILDING")
    with pytest.raises(fireworks.BadRequestError) as e:
        c.reinforcement_fine_tuning_jobs.create(dataset="ready", evaluator="building", training_config=base)
    assert e.value.body["code"] == 9
    both = {**base, "warm_start_from": "accounts/acct/models/x"}
    with pytest.raises(fireworks.BadRequestError, match="exactly one"):
        c.reinforcement_fine_tuning_jobs.create(dataset="ready", evaluator="ev", training_config=both)
    with pytest.raises(fireworks.BadRequestError, match="exactly one"):
        c.reinforcement_fine_tuning_jobs.create(dataset="ready", evaluator="ev", training_config={})
    j = c.reinforcement_fine_tuning_jobs.create(dataset="ready", evaluator="ev", training_config=base)
    assert j.name.startswith("accounts/acct/reinforcementFineTuningJobs/")  # random id when none given
    c.reinforcement_fine_tuning_jobs.create(
        dataset="ready", evaluator="ev", training_config=base, reinforcement_fine_tuning_job_id="dup"
    )
    before = len(fake.calls("POST", "/v1/accounts/acct/reinforcementFineTuningJobs"))
    with pytest.raises(fireworks.ConflictError):
        c.reinforcement_fine_tuning_jobs.create(
            dataset="ready", evaluator="ev", training_config=base, reinforcement_fine_tuning_job_id="dup"
        )
    assert len(fake.calls("POST", "/v1/accounts/acct/reinforcementFineTuningJobs")) == before + 1
    with pytest.raises(fireworks.NotFoundError) as e:
        c.reinforcement_fine_tuning_jobs.get("never-created")
    assert e.value.body["code"] == 5


def test_rft_job_cancel_resume_fail_and_list_filter(fake):
    c = sdk(fake)
    fake.add_dataset("ds")
    fake.add_evaluator("ev")
    mk = lambda jid: c.reinforcement_fine_tuning_jobs.create(  # noqa: E731
        dataset="ds",
        evaluator="ev",
        reinforcement_fine_tuning_job_id=jid,
        training_config={"base_model": "accounts/fireworks/models/qwen3-0p6b", "epochs": 3},
    )
    for jid in ("job-a", "job-b", "job-c"):
        mk(jid)
    c.reinforcement_fine_tuning_jobs.cancel("job-a", body={})
    assert c.reinforcement_fine_tuning_jobs.get("job-a").state == "JOB_STATE_CANCELLED"
    resumed = c.reinforcement_fine_tuning_jobs.resume("job-a", body={})
    assert resumed.state == "JOB_STATE_RUNNING"

    fake.set_job_state("job-b", "RUNNING", epoch=1, percent=40, hold=True)
    jb = c.reinforcement_fine_tuning_jobs.get("job-b")
    assert (jb.state, jb.job_progress.epoch, jb.job_progress.percent) == ("JOB_STATE_RUNNING", 1, 40)
    assert c.reinforcement_fine_tuning_jobs.get("job-b").job_progress.percent == 40  # held

    running = list(
        c.reinforcement_fine_tuning_jobs.list(filter='state="JOB_STATE_RUNNING"', order_by="create_time desc")
    )
    assert [j.name.rsplit("/", 1)[1] for j in running] == ["job-b", "job-a"]

    fake.fail_job("job-c", "OOM on trainer")
    jc = c.reinforcement_fine_tuning_jobs.get("job-c")
    assert jc.state == "JOB_STATE_FAILED" and jc.status.code == "INTERNAL" and jc.status.message == "OOM on trainer"
    c.reinforcement_fine_tuning_jobs.delete("job-c")
    assert fake.job("job-c") is None

    with start_fireworks(api_keys={KEY: "acct"}, job_fails_with="reward function crashed") as f2:
        c2 = sdk(f2)
        f2.add_dataset("ds")
        f2.add_evaluator("ev")
        c2.reinforcement_fine_tuning_jobs.create(
            dataset="ds",
            evaluator="ev",
            reinforcement_fine_tuning_job_id="doomed",
            training_config={"base_model": "accounts/fireworks/models/qwen3-0p6b"},
        )
        states = [c2.reinforcement_fine_tuning_jobs.get("doomed") for _ in range(6)]
        assert states[-1].state == "JOB_STATE_FAILED" and states[-1].status.message == "reward function crashed"
        assert "JOB_STATE_RUNNING" in [s.state for s in states]


def test_auth_401_403_unknown_route_and_accounts(fake):
    import fireworks

    with pytest.raises(fireworks.AuthenticationError) as e:
        sdk(fake, key="wrong-key").secrets.list()
    assert e.value.body["code"] == 16
    with pytest.raises(fireworks.PermissionDeniedError) as e:
        sdk(fake, key=OTHER_KEY, account="acct").secrets.list()
    assert e.value.body["code"] == 7
    r = requests.get(f"{fake.url}/v1/accounts/acct/noSuchThings", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 404 and r.json()["code"] == 5
    r = requests.get(f"{fake.url}/verifyApiKey", headers={"Authorization": f"Bearer {OTHER_KEY}"})
    assert r.status_code == 200 and r.headers["x-fireworks-account-id"] == "other"
    assert requests.get(f"{fake.url}/verifyApiKey").status_code == 401
    accounts = [a.name for a in sdk(fake).accounts.list(page_size=2)]
    assert accounts == ["accounts/acct"]


def test_pagination_over_several_pages(fake):
    c = sdk(fake)
    for i in range(5):
        c.secrets.create(key_name=f"K{i}", name=f"key-{i}", value="v")
    names = [s.name.rsplit("/", 1)[1] for s in c.secrets.list(page_size=2)]
    assert names == [f"key-{i}" for i in range(5)]
    lists = fake.calls("GET", "/v1/accounts/acct/secrets")
    assert len(lists) == 3 and "pageToken" not in lists[0].query and all(r.query["pageSize"] == "2" for r in lists)
    first = json.loads(c.secrets.with_raw_response.list(page_size=2).http_response.text)
    assert first["totalSize"] == 5 and first["nextPageToken"]
    last = json.loads(
        c.secrets.with_raw_response.list(page_size=2, page_token=lists[2].query["pageToken"]).http_response.text
    )
    assert "nextPageToken" not in last and len(last["secrets"]) == 1
    big = json.loads(c.secrets.with_raw_response.list(page_size=5000).http_response.text)
    assert len(big["secrets"]) == 5
    import fireworks

    with pytest.raises(fireworks.BadRequestError, match="page token"):
        c.secrets.list(page_token="garbage!")


def test_faults_429_then_success_drop_500_slow_malformed(fake):
    import fireworks

    fake.faults.add(method="POST", path=r"/secrets$", kind="429", times=2, retry_after=0.01)
    c = sdk(fake, retries=2)
    c.secrets.create(key_name="K", name="k", value="v")
    posts = fake.calls("POST", "/v1/accounts/acct/secrets")
    assert len(posts) == 3 and [r.headers.get("x-stainless-retry-count") for r in posts] == ["0", "1", "2"]
    assert fake.faults.log == [("POST", "/v1/accounts/acct/secrets", "429")] * 2
    r = httpx.get(f"{fake.url}/v1/accounts/acct/secrets", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200  # fault used up

    fake.faults.add(path=r"/secrets/k$", kind="drop")
    assert c.secrets.get("k").key_name == "K"  # SDK retried the dropped connection
    fake.faults.add(path=r"/secrets/k$", kind="drop")
    with pytest.raises(fireworks.APIConnectionError):
        sdk(fake, retries=0).secrets.get("k")

    fake.faults.add(path=r"/secrets/k$", kind="500", times=None)
    with pytest.raises(fireworks.InternalServerError) as e:
        sdk(fake, retries=1).secrets.get("k")
    assert e.value.body["code"] == 13
    fake.faults.clear()

    fake.faults.add(path=r"/secrets/k$", kind="slow", delay=1.0)
    with pytest.raises(fireworks.APITimeoutError):
        sdk(fake, retries=0, timeout=0.2).secrets.get("k")
    fake.faults.add(path=r"/secrets/k$", kind="malformed")
    r = requests.get(f"{fake.url}/v1/accounts/acct/secrets/k", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    fake.faults.add(path=r"/secrets/k$", kind="503")
    assert (
        requests.get(f"{fake.url}/v1/accounts/acct/secrets/k", headers={"Authorization": f"Bearer {KEY}"}).json()[
            "code"
        ]
        == 14
    )


def test_inference_serverless_finetuned_and_both_paths(fake):
    import fireworks
    import openai

    c = sdk(fake)
    out = c.chat.completions.create(
        model="accounts/fireworks/models/qwen3-8b", messages=[{"role": "user", "content": "draw a cow"}]
    )
    assert "```svg" in out.choices[0].message.content and out.usage.completion_tokens > 0
    assert fake.calls("POST", "/v1/chat/completions")

    ft = "accounts/acct/models/my-lora"
    fake.add_model("my-lora", peftDetails={"baseModel": "accounts/fireworks/models/qwen3-8b"})
    o = openai.OpenAI(api_key=KEY, base_url=fake.url + "/inference/v1", max_retries=0)
    with pytest.raises(openai.NotFoundError) as e:
        o.chat.completions.create(model=ft, messages=[{"role": "user", "content": "x"}])
    assert e.value.body == {
        "message": "Model not found, inaccessible, and/or not deployed",
        "param": "model",
        "code": "NOT_FOUND",
        "type": "error",
    }
    dep = c.deployments.create(base_model=ft, deployment_id="dep-1")
    assert dep.state == "CREATING"
    assert c.deployments.get("dep-1").state == "READY"
    reply = o.chat.completions.create(
        model=ft + "#accounts/acct/deployments/dep-1", n=2, messages=[{"role": "user", "content": "draw a horse"}]
    )
    assert len(reply.choices) == 2 and all("<svg" in ch.message.content for ch in reply.choices)
    with pytest.raises(fireworks.NotFoundError):  # another account's model is inaccessible
        c.chat.completions.create(model="accounts/other/models/x", messages=[{"role": "user", "content": "x"}])


# ====================================================================== tracing gateway
def test_tracing_proxy_logs_status_and_traces(fake):
    import openai

    base = f"{fake.localhost_url}/rollout_id/r1/invocation_id/inv/experiment_id/exp/run_id/run/row_id/row-7"
    o = openai.OpenAI(api_key=KEY, base_url=base, max_retries=0)
    msgs = [{"role": "user", "content": "draw a cow plowing"}]
    reply = o.chat.completions.create(model="fireworks_ai/accounts/fireworks/models/qwen3-8b", messages=msgs)
    enc = base64.urlsafe_b64encode(b"http://127.0.0.1:9/v1").decode()
    o2 = openai.OpenAI(
        api_key=KEY,
        base_url=f"{fake.localhost_url}/v1/rollout_id/r1/invocation_id/inv/experiment_id/exp"
        f"/run_id/run/row_id/row-7/encoded_base_url/{enc}",
        max_retries=0,
    )
    o2.chat.completions.create(
        model="any-upstream-model",
        messages=msgs + [{"role": "assistant", "content": "hm"}, {"role": "user", "content": "again"}],
    )
    hdr = {"Authorization": f"Bearer {KEY}"}
    r = requests.get(f"{fake.localhost_url}/v1/traces/pointwise", params={"tags": "rollout_id:r1"}, headers=hdr).json()
    assert len(r["traces"]) == 1  # pointwise + rollout_id: only the newest trace
    t = r["traces"][0]
    assert {"rollout_id:r1", "invocation_id:inv", "experiment_id:exp", "run_id:run", "row_id:row-7"} <= set(t["tags"])
    assert len(t["input"]["messages"]) == 3 and t["output"]["role"] == "assistant"
    allr = requests.get(
        f"{fake.url}/v1/traces", params={"tags": ["invocation_id:inv", "run_id:run"], "limit": 2}, headers=hdr
    ).json()
    assert allr["total_traces"] == 2 and "meta" not in allr  # limit is a total: no pages (§5.2b)
    assert allr["traces"][1]["output"]["content"] == reply.choices[0].message.content  # newest first
    assert (
        requests.get(f"{fake.url}/v1/traces", params={"tags": "run_id:run", "page": 2}, headers=hdr).status_code == 400
    )
    # pointwise needs a rollout_id tag, and an unknown rollout is a 500 (the OSS gateway's behaviour)
    assert (
        requests.get(f"{fake.url}/v1/traces/pointwise", params={"tags": "row_id:row-7"}, headers=hdr).status_code == 500
    )
    assert (
        requests.get(f"{fake.url}/v1/traces/pointwise", params={"tags": "rollout_id:zz"}, headers=hdr).status_code
        == 500
    )
    assert requests.get(f"{fake.url}/v1/traces/pointwise", params={"tags": "rollout_id:r1"}).status_code == 401

    st = requests.get(f"{fake.url}/v1/status", params={"rollout_id": "r1"}, headers=hdr).json()
    assert st == {"rollout_id": "r1", "status": None, "extras": None}
    for code in (101, 100):
        body = {
            "program": "eval_protocol",
            "status": {"code": code, "message": f"c{code}", "details": []},
            "message": "m",
            "tags": ["rollout_id:r1"],
            "extras": {"level": "INFO", "n": code},
        }
        assert requests.post(f"{fake.url}/logs", json=body, headers=hdr).status_code == 200
    assert requests.post(f"{fake.url}/v1/logs", json={"tags": "not-a-list"}, headers=hdr).status_code == 422
    st = requests.get(f"{fake.url}/status", params={"rollout_id": "r1"}, headers=hdr).json()
    assert st["status"] == {"code": 100} and st["extras"]["n"] == 100
    entries = requests.get(
        f"{fake.url}/logs",
        params={"tags": "rollout_id:r1", "program": "eval_protocol", "limit": 5, "hours_back": 24},
        headers=hdr,
    ).json()["entries"]
    assert [e["status"]["code"] for e in entries] == [100, 101]  # newest first
    # traces seeded by a test, filtered by a time window
    t0 = fake.clock.peek()
    fake.add_trace(tags=["invocation_id:job", "epoch:0"], messages=msgs + [{"role": "assistant", "content": "<svg/>"}])
    fake.clock.advance(3600)
    fake.add_trace(
        tags=["invocation_id:job", "epoch:1"], messages=msgs, output={"role": "assistant", "content": "<svg/>"}
    )
    window = {"tags": "invocation_id:job", "from_timestamp": (t0 + (fake.clock.peek() - t0) / 2).isoformat()}
    got = requests.get(f"{fake.url}/v1/traces", params=window, headers=hdr).json()["traces"]
    assert [x["tags"][1] for x in got] == ["epoch:1"]


def test_eval_protocol_clients_against_the_fake(fake, tmp_path):
    """eval-protocol's own verifyApiKey, FireworksTracingAdapter (sync + aiohttp) and log handler,
    in a subprocess (import costs seconds; litellm's import is known to fail intermittently)."""
    script = textwrap.dedent(
        """
        import asyncio, json, logging, os, sys
        sys.path.insert(0, os.environ["REPO"])
        from tests.fakes import netguard; netguard.install()
        import aiohttp
        from eval_protocol.auth import verify_api_key_and_get_account_id
        from eval_protocol.adapters.fireworks_tracing import FireworksTracingAdapter
        from eval_protocol.log_utils.fireworks_tracing_http_handler import FireworksTracingHttpHandler
        from eval_protocol.models import Status
        base = os.environ["GATEWAY"]
        out = {"account": verify_api_key_and_get_account_id(api_key=os.environ["FIREWORKS_API_KEY"], api_base=os.environ["API"])}
        out["bad_account"] = verify_api_key_and_get_account_id(api_key="nope", api_base=os.environ["API"])
        log = logging.getLogger("ep.rollout.r9"); log.setLevel(logging.INFO)
        log.addHandler(FireworksTracingHttpHandler(gateway_base_url=base))
        log.info("done", extra={"rollout_id": "r9", "status": Status.rollout_finished()})
        ad = FireworksTracingAdapter(base_url=base)
        rows = ad.get_evaluation_rows(tags=["rollout_id:r9"], max_retries=5)
        out["rows"] = [[m.role for m in r.messages] for r in rows]
        out["row_ids"] = [r.input_metadata.row_id for r in rows]
        out["rollout_ids"] = [r.execution_metadata.rollout_id for r in rows]
        out["last"] = rows[0].messages[-1].content if rows else None
        out["logs"] = [e["status"]["code"] for e in ad.search_logs(tags=["rollout_id:r9"])]
        async def poll():
            async with aiohttp.ClientSession() as s:
                return await ad.async_get_status(s, "r9"), await ad.async_search_logs(s, ["rollout_id:r9"])
        st, lg = asyncio.run(poll())
        out["status"] = st; out["alogs"] = len(lg)
        # the control-plane flows of reference/fireworks.md section 9, with eval-protocol's own code
        from eval_protocol.platform_api import create_or_update_fireworks_secret
        from eval_protocol.fireworks_rft import create_dataset_from_jsonl
        from eval_protocol.evaluation import create_evaluation
        api, key = os.environ["API"], os.environ["FIREWORKS_API_KEY"]
        out["secret"] = [create_or_update_fireworks_secret("acct", "OPENAI_API_KEY", v, api_key=key, api_base=api)
                         for v in ("one", "two")]
        open("rows.jsonl", "w").write('{"messages":[{"role":"user","content":"a cow"}]}\\n')
        out["dataset"] = create_dataset_from_jsonl("acct", key, api, "ep-ds", "EP", "rows.jsonl")[0]
        os.makedirs("proj/evaluator"); os.chdir("proj")
        open("requirements.txt", "w").write("eval-protocol\\n"); open("evaluator/test_e.py", "w").write("def test_e(): pass\\n")
        ev = create_evaluation("ep-eval", entry_point="evaluator/test_e.py::test_e", api_key=key, account_id="acct")
        out["evaluator"] = ev.get("name") if isinstance(ev, dict) else getattr(ev, "name", None)
        print("RESULT " + json.dumps(out))
        """
    )
    fake.add_trace(
        tags=["rollout_id:r9", "invocation_id:i", "experiment_id:e", "run_id:u", "row_id:row-9"],
        messages=[{"role": "user", "content": "draw"}, {"role": "assistant", "content": "```svg\n<svg/>\n```"}],
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIREWORKS_", "EP_", "FW_", "OPENAI_"))}
    env.update(
        REPO=str(REPO),
        GATEWAY=fake.localhost_url,
        API=fake.url,
        FIREWORKS_API_KEY=KEY,
        FIREWORKS_API_BASE=fake.url,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        HOME=str(tmp_path),
        PYTHONDONTWRITEBYTECODE="1",
    )
    for attempt in range(2):  # one retry for litellm's documented intermittent partial-import failure
        proc = subprocess.run(
            [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
        )
        known_flake = "partially initialized module" in proc.stderr or "_DeadlockError" in proc.stderr
        if proc.returncode == 0 or not known_flake:
            break
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert out["account"] == "acct" and out["bad_account"] is None
    assert out["rows"] == [["user", "assistant"]] and out["row_ids"] == ["row-9"] and out["rollout_ids"] == ["r9"]
    assert out["last"].startswith("```svg")
    assert out["logs"] == [100] and out["alogs"] == 1
    assert out["status"] == {"rollout_id": "r9", "status": {"code": 100}, "extras": out["status"]["extras"]}
    assert fake.calls("POST", "/logs") and fake.calls("GET", "/v1/traces/pointwise")
    assert out["secret"] == [True, True] and fake.secret_value("openai-api-key") == "two"
    assert [r.method for r in fake.calls(path="/v1/accounts/acct/secrets/openai-api-key")] == ["GET", "GET", "PATCH"]
    assert out["dataset"] == "ep-ds" and fake.resource("datasets", "ep-ds")["state"] == "READY"
    assert fake.dataset_file("ep-ds").startswith(b'{"messages"')
    assert out["evaluator"] == "accounts/acct/evaluators/ep-eval"
    with tarfile.open(fileobj=io.BytesIO(fake.evaluator_tarball("ep-eval"))) as tf:
        assert "proj/evaluator/test_e.py" in tf.getnames()
    assert fake.calls("POST", "/v1/accounts/acct/evaluators/ep-eval:validateUpload")


# ====================================================================== OpenAI policy + judge
def _png_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _judge(client, png: bytes, n: int, mode: str = "count"):
    reqs = "\n".join(f"{i}. requirement number {i}" for i in range(1, n + 1))
    fmt = (
        {
            "type": "json_schema",
            "json_schema": {
                "name": "SVGBenchResponse",
                "schema": {
                    "type": "object",
                    "properties": {
                        "reasoning": {"type": "string"},
                        "number_of_fulfilled_requirements": {"type": "integer"},
                    },
                },
            },
        }
        if mode == "count"
        else {"type": "json_schema", "json_schema": {"name": "RequirementVerdicts", "schema": {"type": "object"}}}
    )
    return client.chat.completions.create(
        model="gpt-4.1",
        temperature=0,
        response_format=fmt,
        messages=[
            {"role": "system", "content": "1. ignore me: system lines are not requirements"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"Requirements:\n{reqs}"},
                    {"type": "image_url", "image_url": {"url": _png_url(png)}},
                ],
            },
        ],
    )


def test_openai_policy_replies(oai):
    import openai

    c = openai.OpenAI(api_key=OAI_KEY, base_url=oai.url + "/v1", max_retries=0)
    msgs = [{"role": "user", "content": "Write svg code for a robot flying a kite"}]
    a = c.chat.completions.create(model="qwen3-8b", messages=msgs, n=3)
    b = c.chat.completions.create(model="qwen3-8b", messages=msgs)
    assert len(a.choices) == 3 and a.choices[0].message.content == b.choices[0].message.content  # deterministic
    assert (
        all("```svg" in ch.message.content for ch in a.choices) and a.usage.total_tokens > a.usage.completion_tokens > 0
    )
    poor = c.chat.completions.create(model="my-base-model", messages=msgs).choices[0].message.content
    assert poor.count("<circle") == 1 and poor != b.choices[0].message.content
    cut = c.chat.completions.create(model="qwen3-8b", messages=msgs, max_tokens=5).choices[0]
    assert cut.finish_reason == "length" and len(cut.message.content) <= 20
    chunks = list(c.chat.completions.create(model="qwen3-8b", messages=msgs, stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == b.choices[0].message.content
    prefixed = openai.OpenAI(api_key=OAI_KEY, base_url=oai.url + "/openai/v1", max_retries=0)
    assert prefixed.chat.completions.create(model="m", messages=msgs).choices[0].message.content
    with pytest.raises(openai.AuthenticationError) as e:
        openai.OpenAI(api_key="sk-wrong-key", base_url=oai.url + "/v1", max_retries=0).chat.completions.create(
            model="m", messages=msgs
        )
    assert e.value.body["code"] == "invalid_api_key" and "sk-wrong-key" not in str(e.value)
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="m", messages=[])
    for name, check in (
        ("blank", lambda s: "<rect" in s and "<circle" not in s),
        ("text", lambda s: "<svg" not in s),
        ("none", lambda s: s is None),
    ):
        with start_openai(api_key=OAI_KEY, policy=name) as f:
            got = (
                openai.OpenAI(api_key=OAI_KEY, base_url=f.url + "/v1", max_retries=0)
                .chat.completions.create(model="m", messages=msgs)
                .choices[0]
                .message.content
            )
            assert check(got), (name, got)
    assert oai.policy_calls >= 5


def test_judge_counts_blank_zero_and_colourful_positive(oai):
    import openai

    c = openai.OpenAI(api_key=OAI_KEY, base_url=oai.url + "/v1", max_retries=0)
    blank = solid_png(64, 48, (255, 255, 255))
    colourful = stripes_png(
        64,
        48,
        [(255, 0, 0), (0, 160, 0), (0, 0, 255), (255, 200, 0), (128, 0, 128), (0, 200, 200), (90, 50, 10), (0, 0, 0)],
    )
    r0 = json.loads(_judge(c, blank, 6).choices[0].message.content)
    assert r0["number_of_fulfilled_requirements"] == 0
    r1 = json.loads(_judge(c, colourful, 6).choices[0].message.content)
    assert r1["number_of_fulfilled_requirements"] == 6  # 8 colours, full coverage -> q = 1
    grey = solid_png(64, 48, (120, 120, 120))  # one colour -> q = 1/8 -> round(0.75) = 1
    assert json.loads(_judge(c, grey, 6).choices[0].message.content)["number_of_fulfilled_requirements"] == 1
    chk = json.loads(_judge(c, grey, 4, mode="checklist").choices[0].message.content)
    assert [v["index"] for v in chk["verdicts"]] == [1, 2, 3, 4]
    assert [v["fulfilled"] for v in chk["verdicts"]] == [True, False, False, False]
    assert oai.judge_calls == 4
    assert [s["n_requirements"] for s in oai.judge_stats] == [6, 6, 6, 4]  # system line not counted
    assert oai.judge_stats[0]["coverage"] == 0 and oai.judge_stats[1]["colours"] == 8
    with pytest.raises(openai.BadRequestError) as e:
        _judge(c, b"\x89PNG\r\n\x1a\nbroken", 3)
    assert e.value.body["code"] == "invalid_image_format"


def test_judge_on_a_real_chromium_screenshot(oai, tmp_path):
    import openai

    svg = tmp_path / "in.svg"
    shutil.copy(CORPUS / "gen_000.svg", svg)
    png_path = tmp_path / "out.png"
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={png_path}",
            "--window-size=400,300",
            svg.as_uri(),
        ],
        capture_output=True,
        timeout=60,
    )
    assert png_path.exists(), proc.stderr[-2000:]
    png = png_path.read_bytes()
    img = decode_png(png)
    assert (img.width, img.height) == (400, 300)
    stats = image_stats(img)
    assert stats["coverage"] > 0.1 and stats["colours"] >= 2
    c = openai.OpenAI(api_key=OAI_KEY, base_url=oai.url + "/v1", max_retries=0)
    k = json.loads(_judge(c, png, 10).choices[0].message.content)["number_of_fulfilled_requirements"]
    assert k == judge_rule(10, stats["coverage"], stats["colours"]) and 1 <= k <= 10


def test_scripted_judge_replies_and_refusal(oai):
    import openai

    c = openai.OpenAI(api_key=OAI_KEY, base_url=oai.url + "/v1", max_retries=0)
    png = solid_png(8, 8, (10, 10, 10))
    oai.script_judge(["not json", {"refusal": "I can't help with that."}, '{"verdicts":[]}', {"status": 500}])
    assert _judge(c, png, 3).choices[0].message.content == "not json"
    ref = _judge(c, png, 3).choices[0].message
    assert ref.content is None and ref.refusal == "I can't help with that."
    assert _judge(c, png, 3).choices[0].message.content == '{"verdicts":[]}'
    with pytest.raises(openai.InternalServerError):
        _judge(c, png, 3)
    assert json.loads(_judge(c, png, 3).choices[0].message.content)["number_of_fulfilled_requirements"] >= 1
    assert [s["scripted"] for s in oai.judge_stats] == [True, True, True, True, False]


def test_openai_faults_retry_after_drop_500(oai):
    import openai

    msgs = [{"role": "user", "content": "draw"}]
    oai.faults.add(method="POST", path="chat/completions", kind="429", times=2, retry_after=0.01)
    c = openai.OpenAI(api_key=OAI_KEY, base_url=oai.url + "/v1", max_retries=2)
    assert c.chat.completions.create(model="m", messages=msgs).choices[0].message.content
    assert len(oai.calls("POST", "/v1/chat/completions")) == 3
    oai.faults.add(path="chat/completions", kind="drop")
    with pytest.raises(openai.APIConnectionError):
        c.with_options(max_retries=0).chat.completions.create(model="m", messages=msgs)
    oai.faults.add(path="chat/completions", kind="500")
    with pytest.raises(openai.InternalServerError):
        c.with_options(max_retries=0).chat.completions.create(model="m", messages=msgs)
    assert c.with_options(max_retries=0).chat.completions.create(model="m", messages=msgs).choices


# ====================================================================== PNG codec
@pytest.mark.parametrize("ftype", [0, 1, 2, 3, 4, "cycle"])
def test_png_roundtrip_every_filter(ftype):
    w, h = 23, 7
    px = bytes((x * 37 + y * 91 + c * 53) % 256 for y in range(h) for x in range(w) for c in range(4))
    img = decode_png(encode_png(w, h, px, alpha=True, filter_type=ftype))
    assert (img.width, img.height, img.channels) == (w, h, 4) and img.pixels == px
    rgb = bytes(b for i, b in enumerate(px) if i % 4 != 3)
    assert decode_png(encode_png(w, h, rgb, filter_type=ftype)).pixels == rgb


def test_png_hostile_inputs_raise_pngerror():
    good = solid_png(4, 4, (1, 2, 3))
    bad_crc = bytearray(good)
    bad_crc[20] ^= 0xFF
    ihdr_end = 8 + 8 + 13 + 4
    interlaced = bytearray(good)
    interlaced[8 + 8 + 12] = 1  # interlace byte of IHDR; fix its CRC
    interlaced[8 + 8 + 13 : ihdr_end] = zlib.crc32(bytes(interlaced[12 : 8 + 8 + 13])).to_bytes(4, "big")
    for blob in (b"", b"GIF89a", bytes(bad_crc), good[:40], bytes(interlaced)):
        with pytest.raises(PngError):
            decode_png(blob)


# ====================================================================== netguard
def test_netguard_blocks_non_loopback_but_not_loopback_or_unix():
    netguard.install()  # idempotent (conftest installs it too)
    assert netguard.is_installed()
    with pytest.raises(netguard.NetguardError):
        socket.create_connection(("10.255.255.1", 80), timeout=1)
    with pytest.raises(OSError):
        socket.getaddrinfo("example.com", 443)
    with pytest.raises(netguard.NetguardError):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            s.connect(("2001:db8::1", 80))
        finally:
            s.close()
    a, b = socket.socketpair()
    a.sendall(b"ok")
    assert b.recv(2) == b"ok"
    a.close()
    b.close()
    with start_openai(api_key=OAI_KEY) as f:  # loopback by IP and by name
        assert httpx.get(f.url + "/v1/models", headers={"Authorization": f"Bearer {OAI_KEY}"}).status_code == 200
        assert httpx.get(f"http://localhost:{f.port}/v1/models").status_code == 401
    assert netguard.allowed(("127.0.0.5", 1)) and netguard.allowed(("::1", 1, 0, 0)) and netguard.allowed("/tmp/sock")
    assert not netguard.allowed(("8.8.8.8", 53))


def test_server_stops_cleanly_and_requests_are_recorded():
    f = FakeFireworks(api_keys={KEY: "acct"}).start()
    url = f.url
    with httpx.Client() as client:  # keep-alive connection open while stopping
        assert client.get(url + "/verifyApiKey", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        f.stop()
        with pytest.raises(httpx.TransportError):
            client.get(url + "/verifyApiKey")
    rec = f.requests[0]
    method, path, query, headers, body = rec
    assert (method, path, query, body) == ("GET", "/verifyApiKey", {}, None)
    assert headers["authorization"].startswith("Bearer <redacted sha256:")


def test_hostile_requests_get_4xx_never_a_crash(fake, oai):
    deep = b"[" * 3000 + b"]" * 3000
    cases = [
        ("POST", "/v1/accounts/acct/secrets", b"\xff\xfe"),
        ("POST", "/v1/accounts/acct/secrets", b'{"name": null, "keyName": 3, "value": {}}'),
        ("POST", "/v1/accounts/acct/datasets", deep),
        ("POST", "/v1/accounts/acct/datasets", b'{"datasetId":"d","dataset":[1]}'),
        ("POST", "/v1/accounts/acct/evaluatorsV2", b'{"evaluatorId":"e","evaluator":"x"}'),
        (
            "POST",
            "/v1/accounts/acct/reinforcementFineTuningJobs",
            b'{"dataset":"accounts/acct/datasets/../x","evaluator":1}',
        ),
        ("POST", "/v1/accounts/acct/datasets/d:upload", b"--zz\r\nbroken"),
        ("GET", "/v1/accounts/acct/secrets?pageSize=abc", b""),
        ("GET", "/v1/accounts/acct/secrets?filter=name%3D%22x%22%20OR%20y", b""),
        (
            "POST",
            "/v1/chat/completions",
            b'{"model":"accounts/fireworks/models/q","messages":[{"role":"user","content":"hi"}],"n":1000}',
        ),
        (
            "POST",
            "/rollout_id/a/invocation_id/b/experiment_id/c/run_id/d/row_id/e/encoded_base_url/!!!/chat/completions",
            b"{}",
        ),
        ("POST", "/logs", b'{"tags":[1,2],"status":{"code":"x"}}'),
        ("GET", "/v1/traces/pointwise?tags=a&from_timestamp=garbage", b""),
        ("GET", "/v1/status", b""),
    ]
    fake.add_dataset("d", state="UPLOADING")
    with httpx.Client() as client:
        for method, path, body in cases:
            for base, key in ((fake.url, KEY), (oai.url, OAI_KEY)):
                r = client.request(
                    method,
                    base + path,
                    content=body,
                    headers={
                        "Authorization": f"Bearer {key}",
                        "Content-Type": "multipart/form-data; boundary=zz" if ":upload" in path else "application/json",
                    },
                )
                assert 400 <= r.status_code < 500, (base, method, path, r.status_code, r.text[:200])
        judge = {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "1. a"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,####"}},
                    ],
                }
            ],
        }
        r = client.post(oai.url + "/v1/chat/completions", json=judge, headers={"Authorization": f"Bearer {OAI_KEY}"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_image_format"
