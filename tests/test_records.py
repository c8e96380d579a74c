"""Rollout records: the format (svgrft.core.records), the background recorder (svgrft.clients.gatewaylog)
against the fake gateway, and the evaluator's recording hook (never changes a reward, never fails a row)."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import FW_KEY, OPENAI_KEY


def _record(**kw):
    from svgrft.core import records as rec

    base = dict(
        row_id="row_1",
        rollout_id="r-1",
        time_s=1_700_000_000.0,
        policy_model="accounts/a/models/m",
        svg="<svg/>",
        score=0.5,
        is_valid=True,
        gate=None,
        reason="1/2 fulfilled",
        verdicts=[{"index": 1, "fulfilled": True, "evidence": "ok"}],
        judge_model="gpt-4.1",
        judge_mode="checklist",
    )
    base.update(kw)
    return rec.build_record(**base)


# ------------------------------------------------------------------------------------------- format
def test_a_record_round_trips_and_a_long_svg_is_cut_and_says_so():
    from svgrft.core import records as rec

    big = "<svg>" + "x" * (rec.SVG_CAP + 500) + "</svg>"
    body = _record(svg=big, ids={"invocation_id": "inv", "run_id": "run", "password": "nope"})
    assert body["svg_cut"] is True and body["svg_chars"] == len(big) and len(body["svg"]) == rec.SVG_CAP
    assert "password" not in body
    entry = {
        "timestamp": "2026-01-01T00:00:00.000Z",
        "tags": rec.record_tags("0" * 16, "row_1", "r-1"),
        "extras": {"svgrft_record": body},
    }
    r, why = rec.parse_entry(entry, key="0" * 16)
    assert why is None and r.row_id == "row_1" and r.rollout_id == "r-1" and r.score == 0.5
    assert r.svg_cut and r.invocation_id == "inv" and r.run_id == "run"
    assert r.time == pytest.approx(1767225600.0)  # the gateway's entry time wins over the record's own
    assert rec.parse_entry(entry, key="1" * 16) == (None, "another evaluator")


@pytest.mark.parametrize(
    "extras, why",
    [
        (None, "no svgrft record"),
        ({"svgrft_record": []}, "no svgrft record"),
        ({"svgrft_record": {"schema": 2}}, "unknown record schema"),
        ({"svgrft_record": {"schema": 1, "row_id": None, "score": 0.5}}, "no row id"),
        ({"svgrft_record": {"schema": 1, "row_id": "r", "score": float("nan")}}, "no usable score"),
        ({"svgrft_record": {"schema": 1, "row_id": "r", "score": True}}, "no usable score"),
        ({"svgrft_record": {"schema": 1, "row_id": "r", "score": 1.5}}, "no usable score"),
        ({"svgrft_record": {"schema": 1, "row_id": "r", "score": 0.5, "time": "x"}}, "no usable time"),
    ],
)
def test_hostile_entries_are_dropped_with_a_reason(extras, why):
    from svgrft.core import records as rec

    entry = {"tags": ["svgrft_eval:" + "0" * 16], "extras": extras, "timestamp": None}
    assert rec.parse_entry(entry) == (None, why)
    records, dropped = rec.parse_entries([entry, "junk", 7])
    assert records == [] and dropped[why] == 1 and dropped["not an object"] == 2


def test_the_record_key_is_the_evaluators_commit_hash(tmp_path):
    """The key the running evaluator tags with (from its manifest) is the one compare-epochs reads from
    the evaluator's commitHash."""
    from svgrft.config import load_settings
    from svgrft.core.records import eval_key_from_commit
    from svgrft.evaluator import runtime
    from svgrft.workflow.evaluator_bundle import commit_hash, hash_files, stage

    st = stage(load_settings(), tmp_path / "ev")
    assert "svgrft_manifest.json" in st.files
    manifest = json.loads((tmp_path / "ev" / "svgrft_manifest.json").read_text())
    assert manifest["content_hash"] == st.content_hash
    assert hash_files(st.path, manifest["files"]) == st.content_hash  # the manifest is not part of the hash
    assert runtime.record_key(tmp_path / "ev") == eval_key_from_commit(commit_hash(st)) == st.content_hash[:16]
    cfg = json.loads((tmp_path / "ev" / "svgrft_evaluator_config.json").read_text())
    assert cfg["record"]["enabled"] is True and cfg["record"]["gateway"].startswith("http")
    assert eval_key_from_commit("abc123") is None and eval_key_from_commit(None) is None


def test_epoch_curve_has_spread_and_steps():
    from types import SimpleNamespace as NS

    from svgrft.core.records import epoch_curve

    groups = [[NS(score=0.0, is_valid=True), NS(score=0.5, is_valid=True)], [NS(score=1.0, is_valid=False)], []]
    curve = epoch_curve(groups, {0: [("inv-a", [0.0]), ("inv-b", [0.5])]})
    assert [c["mean"] for c in curve] == [0.25, 1.0, None]
    assert curve[0]["std"] == pytest.approx(0.3535533906) and curve[0]["min"] == 0.0 and curve[0]["max"] == 0.5
    assert [s["step"] for s in curve[0]["steps"]] == ["inv-a", "inv-b"] and "steps" not in curve[1]
    assert curve[1]["valid"] == 0 and curve[2]["n"] == 0


# ------------------------------------------------------------------------------------------- recorder
def test_recorder_sends_in_the_background_and_scrubs_keys(fw):
    from svgrft.clients.gatewaylog import LogRecorder

    rec = LogRecorder(fw.localhost_url, FW_KEY, secrets=[OPENAI_KEY])
    for i in range(20):
        assert rec.submit(["svgrft:rollout", f"svgrft_row:r{i}"], "m", _record(reason=f"leak {OPENAI_KEY} {FW_KEY}"))
    rec.close()
    assert rec.sent == 20 and rec.failures == 0
    assert rec.summary().startswith("svgrft: recorded 20 of 20 rollouts")
    entries = [e for e in fw.logs if "svgrft:rollout" in e["tags"]]
    assert len(entries) == 20 and all(e["program"] == "svgrft" for e in entries)
    blob = json.dumps(entries)
    assert OPENAI_KEY not in blob and FW_KEY not in blob and "[redacted]" in blob
    assert entries[0]["extras"]["svgrft_record"]["score"] == 0.5


def test_recorder_falls_back_to_v1_logs_and_counts_what_it_cannot_send(fw):
    from svgrft.clients.gatewaylog import LogRecorder

    fw.faults.add(method="POST", path=r"^/logs$", kind="404", times=None)
    rec = LogRecorder(fw.localhost_url, FW_KEY)
    rec.submit(["svgrft:rollout"], "m", _record())
    rec.close()
    assert rec.sent == 1 and fw.calls("POST", "/v1/logs")

    fw.faults.add(method="POST", path=r"logs$", kind="503", times=None)
    bad = LogRecorder(fw.localhost_url, FW_KEY, backoff=0.01)
    bad.submit(["svgrft:rollout"], "m", _record())
    bad.close()
    assert bad.sent == 0 and bad.failed == {"HTTP 503": 1}
    assert "(not recorded: 1 HTTP 503)" in bad.summary()


def test_recorder_never_blocks_and_its_wait_at_exit_is_bounded():
    """A gateway that never answers: submit returns at once, a full queue drops (counted), close gives up
    after flush_timeout."""
    import socket

    from svgrft.clients.gatewaylog import LogRecorder

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)  # accepts connections, never answers
    try:
        rec = LogRecorder(
            f"http://127.0.0.1:{srv.getsockname()[1]}", FW_KEY, timeout=30.0, max_queue=3, flush_timeout=0.5, workers=1
        )
        t0 = time.monotonic()
        results = [rec.submit(["t"], "m", _record()) for _ in range(10)]
        assert time.monotonic() - t0 < 1.0
        assert results.count(False) >= 6  # the queue holds 3, one is in flight
        t1 = time.monotonic()
        rec.close()
        assert time.monotonic() - t1 < 3.0
        assert rec.failed.get("queue full", 0) >= 6 and rec.sent == 0
        assert rec.submit(["t"], "m", _record()) is False  # closed: counted, no exception
    finally:
        srv.close()


# ------------------------------------------------------------------------------------------- evaluator hook
class _Row:
    def __init__(self, row_id="row_1"):
        from types import SimpleNamespace as NS

        self.input_metadata = NS(
            row_id=row_id, completion_params={"model": "accounts/a/models/m-epoch-1"}, dataset_info={}
        )
        self.execution_metadata = NS(rollout_id="ro-1", invocation_id="inv", experiment_id="exp", run_id="run")


def test_record_rollout_never_raises_and_reports_why_it_cannot_record(monkeypatch, capsys, tmp_path):
    from svgrft.evaluator import runtime

    monkeypatch.setattr(runtime, "_RECORDER", [])
    monkeypatch.setenv("SVGRFT_EVALUATOR_CONFIG", str(tmp_path / "svgrft_evaluator_config.json"))  # no manifest
    cfg = {"record": {"enabled": True, "gateway": "http://127.0.0.1:9"}}
    runtime.record_rollout(_Row(), cfg, score=1.0, is_valid=True, reason="ok")
    assert "rollouts are not recorded (no svgrft_manifest.json" in capsys.readouterr().err
    runtime.record_rollout(object(), cfg, score=1.0, is_valid=True, reason="ok")  # junk row: no exception


def test_record_rollout_tags_with_the_manifest_key(fw, monkeypatch, tmp_path):
    from svgrft.core import records as rec
    from svgrft.evaluator import runtime

    (tmp_path / "svgrft_manifest.json").write_text(json.dumps({"content_hash": "ab" * 32, "files": []}))
    monkeypatch.setenv("SVGRFT_EVALUATOR_CONFIG", str(tmp_path / "svgrft_evaluator_config.json"))
    monkeypatch.setattr(runtime, "_RECORDER", [])
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    cfg = {"record": {"enabled": True, "gateway": fw.localhost_url}, "settings": {"judge.model": "gpt-4.1"}}
    runtime.record_rollout(
        _Row(),
        cfg,
        score=0.75,
        is_valid=True,
        reason="3/4",
        svg="<svg/>",
        gate=None,
        verdicts=[{"index": 1, "fulfilled": True, "evidence": "e"}],
    )
    runtime._RECORDER[0].close()
    entries = [e for e in fw.logs if "svgrft:rollout" in e["tags"]]
    assert len(entries) == 1
    e = entries[0]
    assert set(rec.query_tags("ab" * 8, "row_1")) <= set(e["tags"]) and "rollout_id:ro-1" in e["tags"]
    body = e["extras"]["svgrft_record"]
    assert body["policy_model"] == "accounts/a/models/m-epoch-1" and body["score"] == 0.75
    assert body["judge_model"] == "gpt-4.1" and body["invocation_id"] == "inv"
