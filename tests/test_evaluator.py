"""`svgrft evaluator stage|build|test`: packaging, content hash, upload to the fake Fireworks, build
failures, transient errors, and the staged evaluator run by Eval Protocol's own pytest harness against
the fakes in local mode (fake policy) and remote mode (`svgrft serve` on loopback + fake tracing gateway)."""

from __future__ import annotations

import ast
import gzip
import io
import json
import re
import socket
import tarfile
import threading
import time

import pytest

from tests.conftest import FW_KEY, OPENAI_KEY, free_port, write_config
from tests.fakes.health import HealthServer

SERVE_TOKEN = "serve-token-0123456789abcdef"


# ------------------------------------------------------------------------------------------- helpers


@pytest.fixture
def fast_config():
    """./configs/default.toml (auto-loaded from the test's cwd) with short poll intervals."""
    return write_config("[evaluator]\npoll_interval = 0.01\n[train]\npoll_interval = 0.01\n")


def settings(**overrides):
    from svgrft.config import load_settings

    return load_settings(overrides={k.replace("__", "."): v for k, v in overrides.items()})


def tar_members(blob: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tf:
        for m in tf.getmembers():
            if m.isfile():
                out[m.name] = tf.extractfile(m).read()
    return out


def staged_config(blob: bytes) -> dict:
    return json.loads(tar_members(blob)["svgrft-evaluator/svgrft_evaluator_config.json"])


def assert_no_secrets(blob: bytes, *secrets: str) -> None:
    raw = gzip.decompress(blob)
    for s in secrets:
        assert s.encode() not in blob and s.encode() not in raw


def only_evaluator(fw) -> dict:
    evs = fw._items("evaluators", "acct")
    assert len(evs) == 1, [e["name"] for e in evs]
    return evs[0]


class ServeThread:
    """`svgrft serve`'s ASGI app under uvicorn on 127.0.0.1, in a daemon thread."""

    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None, access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServeThread:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "svgrft serve did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


# ------------------------------------------------------------------------------------------- staging


def test_stage_layout_config_and_no_excluded_code(tmp_path):
    from svgrft.workflow.evaluator_bundle import stage

    s = settings(
        judge__model="gpt-4.1-mini",
        judge__mode="count",
        train__temperature=0.3,
        train__n=3,
        train__max_tokens=1234,
        train__base_model="qwen3-8b",
    )
    st = stage(s, tmp_path / "ev")
    files = set(st.files)
    assert {
        "test_svgrft_eval.py",
        "requirements.txt",
        "Dockerfile",
        "svgrft_evaluator_config.json",
        "svgrft/core/scoring.py",
        "svgrft/evaluator/runtime.py",
    } <= files
    assert not [f for f in files if f.startswith(("svgrft/cli/", "svgrft/server/", "svgrft/workflow/"))]
    assert not [f for f in files if "__pycache__" in f or f.endswith((".pyc", ".env"))]
    cfg = json.loads((tmp_path / "ev" / "svgrft_evaluator_config.json").read_text())
    assert cfg["settings"]["judge.model"] == "gpt-4.1-mini" and cfg["settings"]["judge.mode"] == "count"
    assert cfg["rollout"] == {"mode": "local"}
    cp = cfg["completion_params"]
    assert cp["model"] == "accounts/fireworks/models/qwen3-8b"
    assert (cp["temperature"], cp["max_tokens"], cfg["num_runs"]) == (0.3, 1234, 3)
    assert cp["api_base"] == s.fireworks.inference_base_url
    reqs = (tmp_path / "ev" / "requirements.txt").read_text()
    assert re.search(r"^eval-protocol==0\.3\.33$", reqs, re.M)
    assert all("==" in line for line in reqs.splitlines() if line and not line.startswith("#"))
    assert "chromium-headless-shell" in (tmp_path / "ev" / "Dockerfile").read_text()
    # eval-protocol checks annotations by identity: the entry point must not postpone them
    tree = ast.parse((tmp_path / "ev" / "test_svgrft_eval.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "__future__"]


def test_every_staged_module_imports_only_staged_svgrft_code(tmp_path):
    """The import closure is complete: every `svgrft.*` import in the staged code resolves inside the stage."""
    from svgrft.workflow.evaluator_bundle import stage

    root = tmp_path / "ev"
    st = stage(settings(), root)
    for rel in st.files:
        if not rel.endswith(".py"):
            continue
        for node in ast.walk(ast.parse((root / rel).read_text())):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module]
            for m in mods:
                if m.split(".")[0] != "svgrft":
                    continue
                p = root.joinpath(*m.split("."))
                assert (p / "__init__.py").is_file() or p.with_suffix(".py").is_file(), f"{rel} imports {m}"


def test_content_hash_and_tarball_are_deterministic_and_track_every_change(tmp_path):
    from svgrft.workflow.evaluator_bundle import evaluator_id_for, stage, tarball_bytes

    base = stage(settings(), tmp_path / "a")
    again = stage(settings(), tmp_path / "b")
    assert base.content_hash == again.content_hash
    assert tarball_bytes(base) == tarball_bytes(again)
    ids = {evaluator_id_for(settings(), base)}
    hashes = {base.content_hash}
    for i, change in enumerate(
        [
            dict(judge__mode="count"),
            dict(judge__model="gpt-4o"),
            dict(train__temperature=0.5),
            dict(train__max_tokens=2048),
            dict(rollout__mode="remote", rollout__server_url="https://rollouts.example.com"),
        ]
    ):
        st = stage(settings(**change), tmp_path / f"c{i}")
        hashes.add(st.content_hash)
        ids.add(evaluator_id_for(settings(**change), st))
    assert len(hashes) == 6 and len(ids) == 6
    members = tarfile.open(fileobj=io.BytesIO(tarball_bytes(base)), mode="r:gz").getmembers()
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
    names = [m.name for m in members if m.isfile()]
    assert names == sorted(names) and all(n.startswith("svgrft-evaluator/") for n in names)


def test_env_files_and_keys_never_reach_the_package(tmp_path, monkeypatch):
    from svgrft.workflow.evaluator_bundle import stage, tarball_bytes

    monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY={OPENAI_KEY}\nFIREWORKS_API_KEY={FW_KEY}\n")
    st = stage(settings(), tmp_path / "ev")
    blob = tarball_bytes(st)
    assert_no_secrets(blob, FW_KEY, OPENAI_KEY)
    assert not [n for n in tar_members(blob) if n.endswith(".env") or "/.env" in n]


def test_a_key_in_a_baked_setting_is_refused(tmp_path, monkeypatch):
    from svgrft.errors import SvgrftError
    from svgrft.workflow.evaluator_bundle import stage

    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    with pytest.raises(SvgrftError, match="contains an API key"):
        stage(settings(judge__base_url=f"https://proxy.example.com/{OPENAI_KEY}/v1"), tmp_path / "ev")


def test_stage_command_writes_the_directory_without_network(fw, cli, tmp_path):
    r = cli("evaluator", "stage", str(tmp_path / "out"), "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert (tmp_path / "out" / "test_svgrft_eval.py").is_file()
    assert data["entry_point"] == "test_svgrft_eval.py::test_svgrft_eval"
    assert fw.requests == []


# --------------------------------------------------------------------------------------------- build


def test_build_uploads_and_waits_until_active(fw, cli, fast_config, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    r = cli("evaluator", "build", "--json")
    assert r.exit_code == 0, r
    out = r.json()
    assert out["state"] == "ACTIVE" and out["created"] is True
    ev = only_evaluator(fw)
    assert ev["state"] == "ACTIVE" and ev["name"] == out["name"]
    assert ev["entryPoint"] == "test_svgrft_eval.py::test_svgrft_eval"
    assert out["content_hash"][:16] in ev["commitHash"]
    blob = fw.evaluator_tarball(out["evaluator_id"])
    assert "svgrft-evaluator/test_svgrft_eval.py" in tar_members(blob)
    assert_no_secrets(blob, FW_KEY, OPENAI_KEY)
    paths = [(q.method, q.path) for q in fw.requests if "/evaluator" in q.path or q.path.startswith("/upload")]
    kinds = [p for p in paths if p[0] != "GET"]
    assert [m for m, _ in kinds] == ["POST", "POST", "PUT", "POST"]
    assert kinds[0][1].endswith("/evaluatorsV2") and kinds[1][1].endswith(":getUploadEndpoint")
    assert kinds[3][1].endswith(":validateUpload")


def test_rebuild_is_a_noop_and_any_change_builds_a_new_evaluator(fw, cli, fast_config, monkeypatch):
    first = cli("evaluator", "build", "--json")
    assert first.exit_code == 0, first
    before = len(fw.requests)
    again = cli("evaluator", "build", "--json")
    assert again.exit_code == 0, again
    assert again.json()["created"] is False and again.json()["name"] == first.json()["name"]
    later = [q for q in fw.requests[before:] if q.path != "/verifyApiKey"]
    assert [(q.method, q.path.rsplit("/", 1)[-1]) for q in later] == [("GET", first.json()["evaluator_id"])]

    monkeypatch.setenv("SVGRFT_JUDGE_MODEL", "gpt-4.1-mini")
    changed = cli("evaluator", "build", "--json")
    assert changed.exit_code == 0, changed
    assert changed.json()["created"] is True and changed.json()["name"] != first.json()["name"]
    assert len(fw._items("evaluators", "acct")) == 2
    assert (
        staged_config(fw.evaluator_tarball(changed.json()["evaluator_id"]))["settings"]["judge.model"] == "gpt-4.1-mini"
    )


def test_pinned_id_with_changed_content_needs_force(fw, cli, fast_config, monkeypatch):
    assert cli("evaluator", "build", "--id", "my-svg-eval").exit_code == 0
    old = fw.resource("evaluators", "my-svg-eval")["commitHash"]
    monkeypatch.setenv("SVGRFT_JUDGE_MODEL", "gpt-4o")
    r = cli("evaluator", "build", "--id", "my-svg-eval")
    assert r.exit_code == 1
    assert "different content" in r.stderr and "--force" in r.stderr
    assert fw.resource("evaluators", "my-svg-eval")["commitHash"] == old
    forced = cli("evaluator", "build", "--id", "my-svg-eval", "--force", "--json")
    assert forced.exit_code == 0, forced
    ev = fw.resource("evaluators", "my-svg-eval")
    assert ev["state"] == "ACTIVE" and ev["commitHash"] != old
    assert staged_config(fw.evaluator_tarball("my-svg-eval"))["settings"]["judge.model"] == "gpt-4o"


def test_build_failed_prints_the_build_log(cli, fast_config, monkeypatch):
    from tests.fakes import start_fireworks

    fake = start_fireworks(
        api_keys={FW_KEY: "acct"},
        evaluator_build_fails=lambda blob: "pip: no matching distribution for svgrft-nonexistent",
    )
    try:
        monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
        monkeypatch.setenv("FIREWORKS_BASE_URL", fake.url)
        r = cli("evaluator", "build")
        assert r.exit_code == 1
        assert "failed to build" in r.stderr and "no matching distribution" in r.stderr
        assert "build log" in r.stderr and "[build] BUILD FAILED" in r.stderr
        assert "--force" in r.stderr
        # re-running without --force reports the failure again (with the log) instead of waiting forever
        again = cli("evaluator", "build")
        assert again.exit_code == 1 and "[build] BUILD FAILED" in again.stderr
    finally:
        fake.stop()


def test_bad_key_is_401_with_hint(fw, cli, monkeypatch):
    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-wrong-key-0000000000")
    r = cli("evaluator", "build")
    assert r.exit_code == 1
    assert "FIREWORKS_API_KEY" in r.stderr and "fw-wrong-key-0000000000" not in r.stderr + r.stdout


def test_transient_errors_during_upload_and_polling_are_retried(fw, cli, fast_config):
    fw.faults.add(method="POST", path=r":getUploadEndpoint$", kind="429", times=1, retry_after=0.01)
    fw.faults.add(method="PUT", path=r"^/upload/", kind="503", times=1)
    fw.faults.add(method="GET", path=r"/evaluators/[^/:]+$", kind="500", times=4)
    r = cli("evaluator", "build", "--json")
    assert r.exit_code == 0, r
    assert r.json()["state"] == "ACTIVE"
    kinds = sorted({k for _, _, k in fw.faults.log})
    assert kinds == ["429", "500", "503"]
    assert len(fw.calls("PUT")) == 2


def test_a_failed_upload_leaves_no_half_built_evaluator(fw, cli, fast_config):
    fw.faults.add(method="PUT", path=r"^/upload/", kind="403", times=1)
    r = cli("evaluator", "build")
    assert r.exit_code == 1 and "tarball" in r.stderr
    assert fw._items("evaluators", "acct") == []
    ok = cli("evaluator", "build", "--json")
    assert ok.exit_code == 0 and ok.json()["state"] == "ACTIVE"


def test_no_wait_returns_while_building(fw, cli, fast_config):
    r = cli("evaluator", "build", "--no-wait", "--json")
    assert r.exit_code == 0, r
    assert r.json()["state"] == "BUILDING"
    assert not [
        q
        for q in fw.requests
        if q.method == "GET" and "/evaluators/" in q.path and q.path.endswith(r.json()["evaluator_id"])
    ][1:]


def test_remote_mode_without_server_url_fails_before_any_request(fw, cli):
    r = cli("evaluator", "build", "--rollout-mode", "remote")
    assert r.exit_code == 1
    assert "rollout.server_url" in r.stderr and "--rollout-server-url" in r.stderr
    assert fw.requests == []


def test_remote_mode_with_unreachable_server_fails_early(fw, cli, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    port = free_port()  # nothing listens there
    r = cli("evaluator", "test", "--rollout-mode", "remote", "--rollout-server-url", f"http://127.0.0.1:{port}")
    assert r.exit_code == 1
    assert "not reachable" in r.stderr and "svgrft serve" in r.stderr


def test_remote_build_checks_the_server_then_bakes_url_and_processor(fw, cli, fast_config, monkeypatch):
    monkeypatch.setenv("SVGRFT_SERVE_TOKEN", SERVE_TOKEN)
    with HealthServer(503) as sick:
        bad = cli("evaluator", "build", "--rollout-mode", "remote", "--rollout-server-url", sick.url)
    assert bad.exit_code == 1 and "unhealthy" in bad.stderr and fw.requests == []
    with HealthServer() as srv:
        r = cli("evaluator", "build", "--rollout-mode", "remote", "--rollout-server-url", srv.url + "/", "--json")
    assert r.exit_code == 0, r
    cfg = staged_config(fw.evaluator_tarball(r.json()["evaluator_id"]))
    assert cfg["rollout"]["mode"] == "remote"
    assert cfg["rollout"]["server_url"] == srv.url
    assert cfg["rollout"]["model_base_url"] == fw.localhost_url
    assert "api_base" not in cfg["completion_params"]
    blob = fw.evaluator_tarball(r.json()["evaluator_id"])
    assert b"RemoteRolloutProcessor" in tar_members(blob)["svgrft-evaluator/svgrft/evaluator/runtime.py"]
    assert_no_secrets(blob, SERVE_TOKEN, FW_KEY)  # the token reaches the evaluator as a Fireworks secret only


# ------------------------------------------------------------- the staged evaluator, run by eval-protocol


@pytest.mark.slow
@pytest.mark.browser
def test_evaluator_test_local_mode_against_the_fakes(fw, oai, cli, tmp_path):
    cfg = tmp_path / "t.toml"
    cfg.write_text("[train]\ntemperature = 0.3\nmax_tokens = 1500\n", encoding="utf-8")
    r = cli("evaluator", "test", "--rows", "2", "--config", str(cfg), "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert data["ok"] is True and data["rollout_mode"] == "local"
    assert len(data["rows"]) == 2 and all(row["is_score_valid"] for row in data["rows"])
    assert all(0.0 <= row["score"] <= 1.0 for row in data["rows"])
    chats = fw.calls("POST", "/inference/v1/chat/completions")
    assert len(chats) == 2  # the single-turn processor called the policy endpoint once per row
    body = chats[0].json
    assert body["model"] == "accounts/fireworks/models/qwen3-0p6b"
    assert body["temperature"] == 0.3 and body["max_tokens"] == 1500
    assert oai.judge_calls >= 1
    # EP_NO_UPLOAD: nothing was written to the control plane
    assert not [q for q in fw.requests if q.path.startswith("/v1/accounts") and q.method != "GET"]


@pytest.mark.slow
@pytest.mark.browser
def test_evaluator_test_remote_mode_through_svgrft_serve_with_token(fw, oai, cli, monkeypatch):
    from svgrft.config import load_settings
    from svgrft.server.app import create_app

    monkeypatch.setenv("SVGRFT_SERVE_TOKEN", SERVE_TOKEN)
    app = create_app(load_settings(), token=SERVE_TOKEN, allow_model_hosts=("localhost",), rate_limit=0)
    with ServeThread(app) as srv:
        r = cli(
            "evaluator", "test", "--rows", "2", "--rollout-mode", "remote", "--rollout-server-url", srv.url, "--json"
        )
    assert r.exit_code == 0, r
    data = r.json()
    assert data["ok"] is True and data["rollout_mode"] == "remote"
    assert len(data["rows"]) == 2 and all(row["is_score_valid"] for row in data["rows"])
    # the policy was called through the tagged tracing proxy (not the plain inference route)...
    proxied = [
        q for q in fw.calls("POST") if q.path.startswith("/rollout_id/") and q.path.endswith("/chat/completions")
    ]
    assert len(proxied) == 2
    assert not fw.calls("POST", "/inference/v1/chat/completions")
    # ...and both rollouts were reported finished (status 100) on the gateway
    finished = {
        t
        for e in fw.logs
        if (e.get("status") or {}).get("code") == 100
        for t in e.get("tags", [])
        if str(t).startswith("rollout_id:")
    }
    assert len(finished) == 2


def test_staged_config_selects_eval_protocols_processor_for_each_mode(tmp_path):
    """In a fresh interpreter (eval-protocol is slow to import and has global side effects): the staged
    evaluator's config gives SingleTurnRolloutProcessor in local mode and a RemoteRolloutProcessor whose
    session carries the serve token in remote mode."""
    import os
    import subprocess
    import sys

    from svgrft.workflow.evaluator_bundle import stage

    stage(settings(), tmp_path / "local")
    stage(settings(rollout__mode="remote", rollout__server_url="https://rollouts.example.com"), tmp_path / "remote")
    script = r"""
import asyncio, json, os, sys
from svgrft.evaluator import runtime
out = {}
for mode in ("local", "remote"):
    cfg = runtime.load_config(os.path.join(sys.argv[1], mode))
    proc = runtime.make_rollout_processor(cfg)
    out[mode] = {"classes": [c.__name__ for c in type(proc).__mro__],
                 "completion_params": runtime.completion_params(cfg)}
    if mode == "remote":
        async def check():
            s = proc._get_or_create_session()
            try:
                return s.headers.get("Authorization") == "Bearer " + os.environ["SVGRFT_SERVE_TOKEN"], proc._remote_base_url
            finally:
                await s.close()
        out[mode]["token_header"], out[mode]["remote_base_url"] = asyncio.run(check())
print(json.dumps(out))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EP_", "FIREWORKS_", "OPENAI_"))}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", SVGRFT_SERVE_TOKEN=SERVE_TOKEN, PYTHONPATH=str(tmp_path / "local"))
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path / "local",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "SingleTurnRolloutProcessor" in out["local"]["classes"]
    assert "RemoteRolloutProcessor" in out["remote"]["classes"]
    assert out["remote"]["token_header"] is True
    assert out["remote"]["remote_base_url"] == "https://rollouts.example.com"
    assert out["local"]["completion_params"]["model"] == "accounts/fireworks/models/qwen3-0p6b"
    assert SERVE_TOKEN not in proc.stdout + proc.stderr


def _row(messages, info, status_message=""):
    from types import SimpleNamespace as NS

    return NS(
        messages=[NS(role=r, content=c) for r, c in messages],
        input_metadata=NS(dataset_info=info),
        rollout_status=NS(message=status_message),
    )


@pytest.mark.parametrize(
    "messages, info, expect",
    [
        (
            [("user", "draw"), ("assistant", "```svg\n<svg/>\n```")],
            {"requirements": ["a", "b"], "original_prompt": "p"},
            ("```svg\n<svg/>\n```", ["a", "b"], "p", None),
        ),
        (
            [("user", "draw"), ("assistant", [{"type": "text", "text": "x"}, {"type": "text", "text": "<svg/>"}])],
            {"requirements": ["a"]},
            ("x\n<svg/>", ["a"], "", None),
        ),
        ([("user", "draw"), ("assistant", None)], {"requirements": ["a"]}, (None, ["a"], "", None)),
        ([("user", "draw")], {"requirements": ["a"]}, (None, ["a"], "", "no assistant reply (rollout: boom)")),
        ([], None, (None, [], "", "no assistant reply (rollout: boom)")),
        ([("user", "draw"), ("assistant", "hi")], {"requirements": "not a list"}, ("hi", [], "", None)),
    ],
)
def test_row_inputs_tolerate_hostile_rows(messages, info, expect):
    from svgrft.evaluator.runtime import row_inputs

    assert row_inputs(_row(messages, info, "boom")) == expect


def test_evaluator_test_without_keys_fails_before_running_anything(fw, cli, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    r = cli("evaluator", "test", "--rows", "1")
    assert r.exit_code == 1 and "OPENAI_API_KEY" in r.stderr
    assert fw.requests == []


# --- stage never wipes a user's folder; the tarball is self-contained (folded from test_qa_cli/test_qa_core) ---

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from tests.helpers import one_error  # noqa: E402


def test_stage_refuses_to_wipe_a_folder_that_is_not_a_staged_evaluator(cli, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious", encoding="utf-8")
    line = one_error(cli("evaluator", "stage", mine))
    assert "refusing to write into it or delete" in line
    line = one_error(cli("evaluator", "stage", mine, "--overwrite"))  # --overwrite replaces a stage only
    assert "refusing to write into it or delete" in line
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "precious"

    Path("keep.txt").write_text("cwd file", encoding="utf-8")  # the cwd is a temp dir
    one_error(cli("evaluator", "stage", "."))
    assert Path("keep.txt").exists()

    out = tmp_path / "staged"
    first = cli("evaluator", "stage", out, "--json")
    assert first.exit_code == 0, first
    again = cli("evaluator", "stage", out, "--overwrite", "--json")  # an earlier stage is replaced on request
    assert again.exit_code == 0 and again.json()["files"] == first.json()["files"]
    (out / "notes.txt").write_text("added by the user", encoding="utf-8")
    one_error(cli("evaluator", "stage", out, "--overwrite"))
    assert (out / "notes.txt").exists()

    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    assert "is not a folder" in one_error(cli("evaluator", "stage", afile))


_UNPACKED_SCRIPT = r"""
import asyncio, json, os, sys
root = os.path.realpath(sys.argv[1])
assert sys.flags.no_site, "must run with -S: the editable install's finder would hide missing modules"
from eval_protocol.models import EvaluationRow, InputMetadata, Message
import svgrft
from svgrft.evaluator import runtime
cfg = runtime.load_config(root)
row = json.loads(open(os.path.join(root, "sample_dataset.jsonl")).readline())
svg = open(sys.argv[2]).read()
ev_row = EvaluationRow(messages=[Message(**m) for m in row["messages"]]
                       + [Message(role="assistant", content="```svg\n" + svg + "\n```")],
                       input_metadata=InputMetadata(**row["input_metadata"]))
async def main():
    out = await runtime.score_row(ev_row, cfg)
    scorer = await runtime.get_scorer(cfg)
    await scorer.aclose()
    return out
res = asyncio.run(main()).evaluation_result
outside = sorted(name for name, m in list(sys.modules.items())
                 if name.split(".")[0] == "svgrft"
                 and not os.path.realpath(getattr(m, "__file__", None) or root).startswith(root + os.sep))
print(json.dumps({"score": res.score, "valid": res.is_score_valid, "reason": res.reason,
                  "svgrft_file": svgrft.__file__, "outside": outside,
                  "loaded": sorted(n for n in sys.modules if n.split(".")[0] == "svgrft")}))
"""


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_evaluator_tarball_is_self_contained(tmp_path, oai):
    """Stage → tarball → unpack; score one sample row with only the unpacked tree (and site-packages, but
    no .pth files: the editable install of svgrft is invisible) on sys.path, against the fake judge."""
    import io
    import os
    import sysconfig
    import tarfile

    from svgrft.config import load_settings
    from svgrft.workflow.evaluator_bundle import stage, tarball_bytes
    from tests.conftest import CORPUS

    staged = stage(load_settings(), tmp_path / "stage")
    with tarfile.open(fileobj=io.BytesIO(tarball_bytes(staged)), mode="r:gz") as tf:
        tf.extractall(tmp_path / "unpacked", filter="data")
    roots = [p for p in (tmp_path / "unpacked").iterdir() if p.is_dir()]
    assert len(roots) == 1
    root = roots[0]
    assert (root / "test_svgrft_eval.py").is_file() and (root / "svgrft" / "core" / "scoring.py").is_file()
    assert not (root / "svgrft" / "cli").exists() and not (root / "svgrft" / "server").exists()
    site = sysconfig.get_paths()["purelib"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EP_", "FIREWORKS_", "PYTHON"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(root), site]),
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        SVGRFT_HOME=str(tmp_path / "home"),
        PYTHONNOUSERSITE="1",
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", _UNPACKED_SCRIPT, str(root), str(CORPUS / "gen_000.svg")],
        env=env,
        cwd=str(root),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["outside"] == [] and out["svgrft_file"].startswith(str(root.resolve()))
    assert {"svgrft.core.scoring", "svgrft.core.render", "svgrft.clients.judge"} <= set(out["loaded"])
    assert not [
        m
        for m in out["loaded"]
        if m.split(".")[:2] in (["svgrft", "cli"], ["svgrft", "server"], ["svgrft", "workflow"])
    ], out
    assert out["valid"] is True and 0.0 < out["score"] <= 1.0, out
    assert oai.judge_calls == 1 and oai.last_judge["fulfilled"] == round(
        out["score"] * oai.last_judge["n_requirements"]
    )
