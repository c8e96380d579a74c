"""``svgrft dataset build/validate/upload`` as a user runs them; upload against the fake Fireworks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from svgrft.core import dataset as ds
from tests.conftest import FW_KEY, SEED, no_sdk_retries


def _dataset_paths(fake):
    return [r.path for r in fake.requests if "/datasets" in r.path]


# --- build -----------------------------------------------------------------------------------------


def test_build_default_source_with_split_is_deterministic(cli):
    r = cli("dataset", "build", "--out", "out/all.jsonl", "--split", "eval=0.2", "--seed", "3", "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert [Path(f["path"]).name for f in data["files"]] == ["all.jsonl", "all_train.jsonl", "all_eval.jsonl"]
    assert [f["rows"] for f in data["files"]][0] == 105
    assert data["files"][1]["rows"] + data["files"][2]["rows"] == 105
    assert data["split"] == {"eval_fraction": 0.2, "seed": 3}
    first = {n: Path("out", n).read_bytes() for n in ("all.jsonl", "all_train.jsonl", "all_eval.jsonl")}
    assert first["all.jsonl"] == ds.BUNDLED_DATASET.read_bytes()

    r2 = cli("dataset", "build", "--out", "out/all.jsonl", "--split", "eval=0.2", "--seed", "3")
    assert r2.exit_code == 0, r2
    assert "all_train.jsonl" in r2.stdout and "wrote" in r2.stderr
    assert {n: Path("out", n).read_bytes() for n in first} == first  # same seed → same bytes

    cli("dataset", "build", "--out", "other/all.jsonl", "--split", "eval=0.2", "--seed", "4")
    assert Path("other/all_eval.jsonl").read_bytes() != first["all_eval.jsonl"]

    ev = {json.loads(x)["input_metadata"]["row_id"] for x in first["all_eval.jsonl"].decode().splitlines()}
    tr = {json.loads(x)["input_metadata"]["row_id"] for x in first["all_train.jsonl"].decode().splitlines()}
    assert ev and tr and not ev & tr


def test_build_from_custom_source(cli, tmp_path):
    r = cli("dataset", "build", "--source", SEED / "svgbench_test_questions.json", "--out", "t.jsonl")
    assert r.exit_code == 0, r
    rows = ds.load_dataset("t.jsonl")
    assert [x.row_id for x in rows] == ["row_0", "row_1", "row_2"]
    assert not Path("t_train.jsonl").exists()


@pytest.mark.parametrize("split", ["eval=1.5", "train=0.2", "eval=abc", "0"])
def test_build_bad_split_is_a_usage_error(cli, split):
    r = cli("dataset", "build", "--out", "x.jsonl", "--split", split)
    assert r.exit_code == 2, r
    assert "--split" in r.stderr and "hint:" in r.stderr
    assert not Path("x.jsonl").exists()


def test_build_bad_source(cli, tmp_path):
    (tmp_path / "q.json").write_text('[{"prompt": "p"}]', encoding="utf-8")
    r = cli("dataset", "build", "--source", tmp_path / "q.json", "--out", "x.jsonl")
    assert r.exit_code == 1 and "question 0" in r.stderr and "requirements" in r.stderr
    r = cli("dataset", "build", "--source", tmp_path / "missing.json")
    assert r.exit_code == 1 and "cannot read" in r.stderr


# --- validate --------------------------------------------------------------------------------------


def test_validate_ok(cli):
    r = cli("dataset", "validate", ds.BUNDLED_DATASET)
    assert r.exit_code == 0, r
    assert "OK, 105 rows" in r.stdout
    j = cli("dataset", "validate", ds.BUNDLED_DATASET, "--json").json()
    assert j["ok"] and j["rows"] == 105 and j["errors"] == [] and j["sha256"] == ds.content_hash(ds.BUNDLED_DATASET)


def test_validate_lists_all_problems_in_one_pass(cli, tmp_path):
    lines = ds.BUNDLED_DATASET.read_text(encoding="utf-8").splitlines()[:4]
    broken = json.loads(lines[2])
    broken["input_metadata"]["dataset_info"]["total_requirements"] += 1
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join([lines[0], "{oops", json.dumps(broken), lines[0], lines[3]]) + "\n", encoding="utf-8")
    r = cli("dataset", "validate", path)
    assert r.exit_code == 1, r
    assert f"{path}:2: invalid JSON" in r.stderr
    assert f"{path}:3: total_requirements is" in r.stderr
    assert f"{path}:4: duplicate row_id 'row_0' (first on line 1)" in r.stderr
    assert "3 problems" in r.stderr and "hint:" in r.stderr
    assert r.stdout == ""
    j = cli("dataset", "validate", path, "--json")
    assert j.exit_code == 1
    data = j.json()
    assert not data["ok"] and data["rows"] == 2 and data["error_count"] == 3
    assert [e["line"] for e in data["errors"]] == [2, 3, 4]


def test_validate_missing_file(cli):
    r = cli("dataset", "validate", "nope.jsonl")
    assert r.exit_code == 1 and "cannot read file" in r.stderr


# --- upload ----------------------------------------------------------------------------------------


def test_upload_creates_then_reuses_then_new_id_for_changed_content(cli, fw, tmp_path):
    # relative path, no datasets/ in the cwd: the bundled file is used
    r = cli("dataset", "upload", "datasets/svgbench_eval.jsonl", "--poll-interval", "0")
    assert r.exit_code == 0, r
    digest = ds.content_hash(ds.BUNDLED_EVAL)
    name = f"accounts/acct/datasets/svgbench-eval-{digest[:10]}"
    assert r.stdout.strip() == name
    assert "created dataset" in r.stderr
    stored = fw.resource("datasets", name.rsplit("/", 1)[1])
    assert stored["state"] == "READY" and stored["exampleCount"] == "21"
    assert fw.dataset_file(name.rsplit("/", 1)[1]) == ds.BUNDLED_EVAL.read_bytes()
    assert f"sha256:{digest[:10]}" in stored["displayName"]

    fw.clear_requests()
    again = cli("dataset", "upload", ds.BUNDLED_EVAL, "--json")
    assert again.exit_code == 0, again
    assert again.json() == {
        "name": name,
        "dataset_id": name.rsplit("/", 1)[1],
        "created": False,
        "example_count": 21,
        "content_hash": digest,
    }
    assert [(q.method, q.path) for q in fw.requests if q.path != "/verifyApiKey"] == [
        ("GET", f"/v1/accounts/acct/datasets/{name.rsplit('/', 1)[1]}")
    ]  # nothing but one GET

    changed = tmp_path / "svgbench_eval.jsonl"
    rows = ds.load_dataset(ds.BUNDLED_EVAL)[:5]
    ds.write_rows(rows, changed)
    third = cli("dataset", "upload", changed, "--poll-interval", "0", "--json")
    assert third.exit_code == 0, third
    assert third.json()["created"] is True and third.json()["dataset_id"] != name.rsplit("/", 1)[1]
    assert third.json()["example_count"] == 5
    assert FW_KEY not in r.stdout + r.stderr + again.stdout + third.stdout


def test_upload_with_explicit_id_refuses_other_content(cli, fw, tmp_path):
    r = cli("dataset", "upload", ds.BUNDLED_EVAL, "--id", "my-svg-data", "--poll-interval", "0")
    assert r.exit_code == 0, r
    assert r.stdout.strip() == "accounts/acct/datasets/my-svg-data"
    same = cli("dataset", "upload", ds.BUNDLED_EVAL, "--id", "my-svg-data", "--json")
    assert same.exit_code == 0 and same.json()["created"] is False
    other = tmp_path / "o.jsonl"
    ds.write_rows(ds.load_dataset(ds.BUNDLED_EVAL)[:3], other)
    clash = cli("dataset", "upload", other, "--id", "my-svg-data")
    assert clash.exit_code == 1, clash
    assert "already exists with other content" in clash.stderr and "omit --id" in clash.stderr
    assert fw.dataset_file("my-svg-data") == ds.BUNDLED_EVAL.read_bytes()  # untouched
    bad = cli("dataset", "upload", other, "--id", "Bad_ID")
    assert bad.exit_code == 2 and "invalid dataset id" in bad.stderr


def test_upload_invalid_file_sends_nothing(cli, fw, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"messages": []}\nnot json\n', encoding="utf-8")
    r = cli("dataset", "upload", path)
    assert r.exit_code == 1, r
    assert f"{path}:1:" in r.stderr and f"{path}:2:" in r.stderr and "nothing was uploaded" in r.stderr
    assert fw.requests == []


def test_upload_bad_key_401_hint(cli, fw, monkeypatch):
    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-wrong-key-9876543210")
    r = cli("dataset", "upload", ds.BUNDLED_EVAL)
    assert r.exit_code == 1, r
    assert "401" in r.stderr and "check FIREWORKS_API_KEY" in r.stderr
    monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "acct")  # SDK path (no verifyApiKey)
    r2 = cli("dataset", "upload", ds.BUNDLED_EVAL)
    assert r2.exit_code == 1 and "401" in r2.stderr and "check FIREWORKS_API_KEY" in r2.stderr
    assert "fw-wrong-key-9876543210" not in r.stderr + r2.stderr + r.stdout + r2.stdout
    assert not any(q.method == "POST" for q in fw.requests)


def test_upload_survives_429_on_upload(cli, fw):
    fw.faults.add(method="POST", path=r":upload$", kind="429", times=2, retry_after=0.01)
    r = cli("dataset", "upload", ds.BUNDLED_EVAL, "--poll-interval", "0", "--json")
    assert r.exit_code == 0, r
    assert [k for _, p, k in fw.faults.log] == ["429", "429"]
    assert len(fw.calls("POST", __import__("re").compile(r":upload$"))) == 3
    assert fw.resource("datasets", r.json()["dataset_id"])["state"] == "READY"


def test_upload_5xx_fails_with_hint_then_rerun_resumes(cli, fw):
    no_sdk_retries()
    fw.faults.add(method="POST", path=r":upload$", kind="500", times=1)
    r = cli("dataset", "upload", ds.BUNDLED_EVAL, "--poll-interval", "0")
    assert r.exit_code == 1, r
    assert "server error (500)" in r.stderr and "run the same command again" in r.stderr
    ds_id = f"svgbench-eval-{ds.content_hash(ds.BUNDLED_EVAL)[:10]}"
    assert fw.resource("datasets", ds_id)["state"] == "UPLOADING"  # created, file missing

    r2 = cli("dataset", "upload", ds.BUNDLED_EVAL, "--poll-interval", "0", "--json")
    assert r2.exit_code == 0, r2
    assert r2.json()["created"] is False and r2.json()["dataset_id"] == ds_id
    assert fw.resource("datasets", ds_id)["state"] == "READY"
    assert fw.dataset_file(ds_id) == ds.BUNDLED_EVAL.read_bytes()
    assert len(fw.calls("POST", "/v1/accounts/acct/datasets")) == 1  # not created twice


def test_upload_polling_tolerates_transient_errors(make_fw):
    """503/429/malformed answers while polling for READY are retried by our loop (SDK retries off)."""
    from svgrft.clients.fireworks import make_client
    from svgrft.config import load_settings
    from svgrft.workflow.datasets import ensure_dataset

    fake = make_fw(dataset_polls_uploading=3)
    no_sdk_retries()
    client = make_client(load_settings())
    messages = []

    def on_status(msg):
        messages.append(msg)
        if msg.startswith("uploading"):  # from now on every GET is a poll
            fake.faults.add(method="GET", path=r"/datasets/", kind="503", times=1)
            fake.faults.add(method="GET", path=r"/datasets/", kind="429", times=1, retry_after=0.01)
            fake.faults.add(method="GET", path=r"/datasets/", kind="malformed", times=1)

    res = ensure_dataset(client, ds.BUNDLED_EVAL, poll_interval=0, on_status=on_status)
    assert res.created and res.example_count == 21
    assert [k for _, _, k in fake.faults.log] == ["503", "429", "malformed"]
    assert sum("transient error" in m for m in messages) == 3
    assert fake.resource("datasets", res.dataset_id)["state"] == "READY"


def test_upload_polling_gives_up_after_timeout(make_fw):
    from svgrft.clients.fireworks import make_client
    from svgrft.config import load_settings
    from svgrft.errors import ApiError
    from svgrft.workflow.datasets import ensure_dataset

    make_fw(dataset_polls_uploading=10_000)
    client = make_client(load_settings())
    with pytest.raises(ApiError) as e:
        ensure_dataset(client, ds.BUNDLED_EVAL, timeout=0, poll_interval=0)
    assert "still UPLOADING" in e.value.message and "run the same command again" in e.value.hint


def test_upload_server_side_rejection_is_reported(cli, make_fw):
    make_fw(dataset_upload_fails=lambda content: "row 3: unsupported format")
    no_sdk_retries()
    r = cli("dataset", "upload", ds.BUNDLED_EVAL)
    assert r.exit_code == 1, r
    assert "400" in r.stderr and "row 3: unsupported format" in r.stderr


# --- a missing dataset file or a folder is one clear error (folded from test_qa_cli.py) ---

from tests.helpers import one_error  # noqa: E402


@pytest.mark.parametrize("sub", ["validate", "upload"])
def test_dataset_file_that_is_missing_or_a_folder(cli, tmp_path, sub):
    line = one_error(cli("dataset", sub, tmp_path / "nope.jsonl"))
    assert "nope.jsonl (dataset): no such file" in line
    line = one_error(cli("dataset", sub, tmp_path))
    assert "is a folder" in line
    r = cli("dataset", sub, tmp_path / "nope.jsonl", "--json")
    assert r.stdout == "" and r.exit_code == 1  # no half-result on stdout


def test_dataset_build_source_folder_and_out_folder(cli, tmp_path):
    line = one_error(cli("dataset", "build", "--source", tmp_path))
    assert "--source" in line and "is a folder" in line
    (tmp_path / "d_train.jsonl").mkdir()
    line = one_error(cli("dataset", "build", "--out", tmp_path / "d.jsonl", "--split", "eval=0.2"), code=2)
    assert "d_train.jsonl is a folder" in line
    assert not (tmp_path / "d.jsonl").exists()  # checked before anything was written
