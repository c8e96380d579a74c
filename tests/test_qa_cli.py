"""QA pass A (CLI surface): regression tests for bugs a user hit, one block per bug.

Each test runs the real command (in-process with ``cli`` or as a subprocess where a TTY/environment
matters) and checks what the user sees: one ``Error:``/``hint:`` pair, exit codes, stdout/stderr split.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port

ANSI = "\x1b["


def _one_error(r, code: int = 1) -> str:
    """The command failed the documented way: exit ``code``, an ``Error:`` and a ``hint:`` line, no traceback."""
    assert r.exit_code == code, r
    err = r.stderr
    assert "Traceback" not in err, r
    errors = [ln for ln in err.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1, r
    assert any(ln.startswith("hint: ") for ln in err.splitlines()), r
    return errors[0]


# --- global options are accepted after the command too (`svgrft doctor --json -q`) ----------------------

def test_quiet_after_the_command_keeps_json_alone_on_stdout(cli):
    r = cli("doctor", "--no-network", "--json", "-q")
    assert r.exit_code in (0, 1), r          # keys are not set here: doctor may fail, but it ran
    data = json.loads(r.stdout)
    assert {c["check"] for c in data["checks"]} >= {"headless Chromium", "config file"}


def test_config_after_the_command_is_used(cli, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[train]\nbogus = 1\n", encoding="utf-8")
    r = cli("doctor", "--no-network", "--config", cfg)
    line = _one_error(r)
    assert "train.bogus" in line and str(cfg) in line


def test_verbose_and_env_file_after_the_command(cli, tmp_path):
    env = tmp_path / "keys.env"
    env.write_text("OPENAI_API_KEY=sk-from-env-file-0123456789\n", encoding="utf-8")
    r = cli("doctor", "--no-network", "--json", "-v", "--env-file", env)
    checks = {c["check"]: c for c in r.json()["checks"]}
    assert checks["key OPENAI_API_KEY"]["status"] == "ok"
    assert checks[".env file"]["detail"] == f"{env} loaded"
    assert "sk-from-env-file-0123456789" not in r.stdout + r.stderr


# --- file-system failures are one Error line, never a traceback --------------------------------------------

def test_unwritable_output_paths_are_one_error_line(cli, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder", encoding="utf-8")
    line = _one_error(cli("dataset", "build", "--out", blocker / "x.jsonl"))
    assert "afile" in line
    svg = tmp_path / "a.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>', encoding="utf-8")
    line = _one_error(cli("render", svg, "--out", blocker / "pngs"))
    assert "afile" in line


# --- usage errors look like every other error: `Error:` + `hint:`, exit 2, no boxed panel ----------------

@pytest.mark.parametrize("args, message", [
    (("doctor", "--bogus"), "No such option: --bogus"),
    (("dataset", "validate"), "Missing argument"),
    (("render", "x.svg", "--size", "5"), "--size"),
    (("no-such-command",), "No such command"),
    (("jobs", "watch", "j1", "--interval", "soon"), "--interval"),
])
def test_usage_errors_are_one_error_line_with_a_usage_hint(cli, args, message):
    r = cli(*args)
    line = _one_error(r, code=2)
    assert message in line
    assert "╭" not in r.stderr and "│" not in r.stderr
    assert "hint: usage: svgrft" in r.stderr


def _run(args, **env):
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("FIREWORKS_", "OPENAI_", "SVGRFT_")) and k not in ("NO_COLOR", "FORCE_COLOR")}
    full.update({"COLUMNS": "100", **env})
    return subprocess.run([sys.executable, "-m", "svgrft", *args], capture_output=True, text=True, env=full,
                          cwd=os.getcwd(), timeout=120)


def test_no_color_means_no_escape_codes_even_on_a_forced_terminal(tmp_path):
    """FORCE_COLOR makes Rich treat the pipe as a terminal (like a real TTY); NO_COLOR must still win,
    for bold/italic too (Rich's own NO_COLOR only drops colours)."""
    home = str(tmp_path / "home")
    styled = _run(["dataset", "validate", "missing.jsonl"], FORCE_COLOR="1", SVGRFT_HOME=home)
    assert ANSI in styled.stderr  # the check can see escape codes when they are there
    for args in (["dataset", "validate", "missing.jsonl"], ["doctor", "--bogus"], ["doctor", "--help"],
                 ["runs", "list"]):
        p = _run(args, FORCE_COLOR="1", NO_COLOR="1", SVGRFT_HOME=home)
        assert ANSI not in p.stdout + p.stderr, (args, p.stdout[:300], p.stderr[:300])


def test_command_help_shows_the_full_docstring_not_only_the_one_liner(cli):
    r = cli("doctor", "--help")
    assert r.exit_code == 0 and "Exit 1 when something required fails" in r.stdout
    r = cli("compare-epochs", "--help")
    assert "before_after.png" in r.stdout
    top = cli("--help").stdout
    assert "Check that everything the workflow needs is in place." in top  # the listing keeps the one-liner


# --- broken config / .env files -----------------------------------------------------------------------------

def test_binary_config_and_env_files_are_config_errors(cli, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(128, 256)) * 4)
    line = _one_error(cli("--config", junk, "doctor", "--no-network"))
    assert "junk.bin" in line and "not UTF-8" in line
    line = _one_error(cli("--env-file", junk, "doctor", "--no-network"))
    assert "junk.bin" in line and "not UTF-8" in line
    line = _one_error(cli("--env-file", tmp_path, "doctor", "--no-network"))
    assert "is not a file" in line
    line = _one_error(cli("--config", tmp_path, "doctor", "--no-network"))
    assert "is not a file" in line


def test_bad_flag_value_names_the_command_line_and_the_choices(cli):
    r = cli("evaluator", "stage", "out", "--rollout-mode", "bogus")
    line = _one_error(r, code=2)  # a bad flag value is a usage error
    assert "(from the command line)" in line
    assert "hint: use one of: local, remote" in r.stderr and "fix flag" not in r.stderr


# --- dataset commands: a missing file or a folder is one clear error, not "1 problem … fix the lines" ---------

@pytest.mark.parametrize("sub", ["validate", "upload"])
def test_dataset_file_that_is_missing_or_a_folder(cli, tmp_path, sub):
    line = _one_error(cli("dataset", sub, tmp_path / "nope.jsonl"))
    assert "nope.jsonl (dataset): no such file" in line
    line = _one_error(cli("dataset", sub, tmp_path))
    assert "is a folder" in line
    r = cli("dataset", sub, tmp_path / "nope.jsonl", "--json")
    assert r.stdout == "" and r.exit_code == 1          # no half-result on stdout


def test_dataset_build_source_folder_and_out_folder(cli, tmp_path):
    line = _one_error(cli("dataset", "build", "--source", tmp_path))
    assert "--source" in line and "is a folder" in line
    (tmp_path / "d_train.jsonl").mkdir()
    line = _one_error(cli("dataset", "build", "--out", tmp_path / "d.jsonl", "--split", "eval=0.2"), code=2)
    assert "d_train.jsonl is a folder" in line
    assert not (tmp_path / "d.jsonl").exists()           # checked before anything was written


# --- `evaluator stage DIR` empties DIR first: it must never delete a user's folder --------------------------

def test_stage_refuses_to_wipe_a_folder_that_is_not_a_staged_evaluator(cli, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious", encoding="utf-8")
    line = _one_error(cli("evaluator", "stage", mine))
    assert "refusing to write into it or delete" in line
    line = _one_error(cli("evaluator", "stage", mine, "--overwrite"))   # --overwrite replaces a stage only
    assert "refusing to write into it or delete" in line
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "precious"

    Path("keep.txt").write_text("cwd file", encoding="utf-8")       # the cwd is a temp dir
    _one_error(cli("evaluator", "stage", "."))
    assert Path("keep.txt").exists()

    out = tmp_path / "staged"
    first = cli("evaluator", "stage", out, "--json")
    assert first.exit_code == 0, first
    again = cli("evaluator", "stage", out, "--overwrite", "--json")  # an earlier stage is replaced on request
    assert again.exit_code == 0 and again.json()["files"] == first.json()["files"]
    (out / "notes.txt").write_text("added by the user", encoding="utf-8")
    _one_error(cli("evaluator", "stage", out, "--overwrite"))
    assert (out / "notes.txt").exists()

    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    assert "is not a folder" in _one_error(cli("evaluator", "stage", afile))


# --- `svgrft serve`: a busy port / bad address is one Error line before start-up; no library warnings ------

def test_serve_on_a_busy_port_is_one_error(cli):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = cli("serve", "--port", port)
    line = _one_error(r)
    assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "svgrft serve on" not in r.stderr          # nothing claimed to be serving


def test_serve_bad_port_in_config_or_flag(cli, tmp_path):
    cfg = tmp_path / "serve.toml"
    cfg.write_text("[serve]\nport = 70000\n", encoding="utf-8")
    assert "invalid port 70000" in _one_error(cli("serve", "--config", cfg))
    _one_error(cli("serve", "--port", "99999"), code=2)


def test_serve_starts_without_a_pydantic_deprecation_warning(tmp_path):
    import signal

    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIREWORKS_", "OPENAI_", "SVGRFT_"))}
    env["SVGRFT_HOME"] = str(tmp_path / "home")
    p = subprocess.Popen([sys.executable, "-m", "svgrft", "serve", "--port", str(port)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        for _ in range(600):
            if p.poll() is not None:
                break
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            import time

            time.sleep(0.1)
        assert p.poll() is None, p.communicate()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert "ready" in err
    assert "Deprecat" not in err and "Traceback" not in err, err[-2000:]


# --- tables on an 80-column terminal (or a pipe): ids, states and scores are never cut or dropped ----------

def test_runs_list_keeps_ids_and_states_whole_at_80_columns(cli, monkeypatch):
    from svgrft.core.store import Store

    monkeypatch.setenv("COLUMNS", "80")
    with Store() as store:
        ids = []
        for status in ("interrupted", "finished"):
            run = store.create_run(model="accounts/fireworks/models/qwen3-0p6b", judge_model="gpt-4.1-2025-04-14",
                                   judge_mode="checklist")
            store.set_run_status(run.id, status)
            ids.append(run.id)
    r = cli("runs", "list")
    assert r.exit_code == 0, r
    assert all(len(line) <= 80 for line in r.stdout.splitlines()), r.stdout
    for rid in ids:
        assert rid in r.stdout
    assert "interrupted" in r.stdout and "finished" in r.stdout and "qwen3-0p6b" in r.stdout
    assert "…" not in r.stdout


def test_jobs_list_keeps_the_job_id_on_one_line_at_80_columns(cli, fw, monkeypatch):
    from tests.test_jobs import create_job

    monkeypatch.setenv("COLUMNS", "80")
    create_job(fw, "svgrft-qwen3-0p6b-794eff93882d")
    create_job(fw, "svgrft-qwen3-0p6b-0123456789ab")
    fw.run_job("svgrft-qwen3-0p6b-794eff93882d")
    r = cli("jobs", "list")
    assert r.exit_code == 0, r
    assert all(len(line) <= 80 for line in r.stdout.splitlines()), r.stdout
    assert "svgrft-qwen3-0p6b-794eff93882d" in r.stdout and "svgrft-qwen3-0p6b-0123456789ab" in r.stdout
    assert "COMPLETED" in r.stdout


def test_compare_runs_table_keeps_scores_at_80_columns(cli, renderer, monkeypatch, tmp_path):
    from svgrft.core.dataset import BUNDLED_DATASET, load_dataset
    from svgrft.core.store import Store
    from tests import fakes_traces as ft

    monkeypatch.setenv("COLUMNS", "80")
    rows = load_dataset(BUNDLED_DATASET)[:3]

    with Store() as store:
        a = ft.store_run(store, renderer, rows, "accounts/fireworks/models/qwen3-0p6b", ft.BASE_SVG, 0.25)
        b = ft.store_run(store, renderer, rows, "accounts/acct/models/a-rather-long-fine-tuned-model-name", ft.svg_for(2, 3, 0), 0.75)
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


# --- an eval that could not finish says why, not only "generation, browser or judge errors" -----------------

def test_incomplete_eval_warning_names_the_cause(cli, fw, oai):
    fw.faults.add("POST", r"chat/completions", kind="500", times=None)
    r = cli("eval", "--model", "qwen3-0p6b", "--rows", "1", "--json", "--concurrency", "1")
    assert r.exit_code == 1, r                       # an outage leaves samples to --resume; CI sees exit 1
    assert json.loads(r.stdout)["status"] == "incomplete"
    warning = " ".join(r.stderr.split())
    assert "1 of 1 sample failed: generation failed" in warning, r.stderr
    assert "--resume" in warning


# --- a bad Chromium path is reported under the name the user set it with ----------------------------------

def test_bad_chromium_path_names_its_real_source(cli, monkeypatch, tmp_path):
    svg = tmp_path / "a.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>', encoding="utf-8")
    monkeypatch.setenv("SVGRFT_CHROMIUM", str(tmp_path / "no-browser"))
    line = _one_error(cli("render", svg, "--out", tmp_path / "png"))
    assert line.startswith("Error: SVGRFT_CHROMIUM names") and "--chromium" not in line
    line = _one_error(cli("train", "--dry-run"))
    assert line.startswith("Error: SVGRFT_CHROMIUM names")
    monkeypatch.delenv("SVGRFT_CHROMIUM")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[render]\nchromium = "{tmp_path / "other"}"\n', encoding="utf-8")
    line = _one_error(cli("render", svg, "--out", tmp_path / "png", "--config", cfg))
    assert line.startswith(f"Error: render.chromium in {cfg} names")
    line = _one_error(cli("render", svg, "--out", tmp_path / "png", "--chromium", tmp_path / "third"))
    assert line.startswith("Error: --chromium names")


def test_eval_summary_keeps_urls_in_failure_reasons(cli, fw, oai, monkeypatch):
    dead = free_port()
    Path("configs").mkdir()
    Path("configs/default.toml").write_text("[judge]\nmax_retries = 0\nbackoff_base = 0.0\n", encoding="utf-8")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{dead}/v1")
    r = cli("eval", "--model", "qwen3-0p6b", "--rows", "1", "--json", "--no-cache")
    assert r.exit_code == 1, r                       # the judge outage leaves the sample to --resume
    reasons = json.loads(r.stdout)["invalid_reasons"]
    assert any(f"http://127.0.0.1:{dead}/v1" in k for k in reasons), reasons


# --- answering "no" at a confirmation says that nothing happened -------------------------------------------

def test_declined_confirmation_says_nothing_was_done(cli, fw, monkeypatch):
    from svgrft.cli import _common
    from tests.test_jobs import create_job

    create_job(fw, "job-keep")
    fw.set_job_state("job-keep", "RUNNING", epoch=0, percent=10, hold=True)
    monkeypatch.setattr(_common, "is_interactive", lambda: True)
    r = cli("jobs", "cancel", "job-keep", input="n\n")
    assert r.exit_code == 1, r
    assert "nothing was done" in r.stderr
    assert fw.job("job-keep")["state"] == "JOB_STATE_RUNNING"


# --- compare-epochs: many per-row warnings are summarised, not printed 60 times ---------------------------

def test_many_row_warnings_are_collapsed(cli, oai, monkeypatch, tmp_path):
    from svgrft.core.dataset import BUNDLED_DATASET, load_dataset
    from tests import fakes_traces as ft
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
        skip = {(i, 1, 0) for i in range(6)}             # every row lost one rollout in epoch 1
        ft.seed_job_records(fake, "svg-job", rows, samples=2, skip=skip, policy_model=False)
        r = cli("compare-epochs", "svg-job", "--dataset", ds, "--out", tmp_path / "o", "--json")
    finally:
        fake.stop()
    assert r.exit_code == 0, r
    per_row = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: row ")]
    assert len(per_row) == 3, r.stderr
    assert "… and 3 more rows like these" in " ".join(r.stderr.split())
    assert sum(w.startswith("row ") for w in r.json()["warnings"]) == 6      # all of them in the JSON
