"""The local SQLite store: runs, samples (one transaction each), the judge cache, and its location."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading

import pytest

from svgrft.core.store import JudgeCache, SampleRecord, Store, default_db_path, judge_cache_key
from svgrft.errors import StoreError
from tests.conftest import REPO


def sample(row, idx, score=0.5, **kw):
    base = dict(
        row_id=row,
        sample_index=idx,
        prompt="p",
        requirements=["a", "b"],
        reply="r",
        svg="<svg/>",
        png=b"\x89PNG fake",
        score=score,
        is_valid=True,
        reason="1/2",
        fulfilled=1,
        total=2,
        verdicts=[{"index": 1, "requirement": "a", "fulfilled": True, "evidence": "e"}],
        timings={"render": 1.5},
        usage={"policy": {"prompt_tokens": 3}},
    )
    base.update(kw)
    return SampleRecord(**base)


def test_location_follows_svgrft_home(tmp_path):
    assert default_db_path() == tmp_path / "svgrft-home" / "svgrft.db"
    with Store() as s:
        assert s.path == default_db_path()
        assert s.list_runs() == [] and s.cache_get("k") is None and s.cache_stats() == {"entries": 0, "hits": 0}
        assert not (tmp_path / "svgrft-home").exists()  # reading creates nothing
        s.create_run(model="m", run_id="r1")
        assert s.path.exists()  # the first write does
        mode = s._conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode.lower() == "wal"


def test_runs_and_samples_round_trip():
    with Store() as s:
        run = s.create_run(
            model="m",
            base_url="u",
            dataset="d.jsonl",
            judge_model="j",
            judge_mode="checklist",
            config={"samples": 2, "rows": 3},
        )
        assert run.status == "running" and run.config == {"samples": 2, "rows": 3}
        for row, idx, score in (("row_10", 0, 1.0), ("row_2", 1, 0.0), ("row_2", 0, 0.5)):
            s.add_sample(run.id, sample(row, idx, score))
        s.add_sample(run.id, sample("row_3", 0, None, status="error", is_valid=False, reason="generation failed"))
        assert s.done_keys(run.id) == {("row_10", 0), ("row_2", 1), ("row_2", 0)}
        got = s.samples(run.id, include_png=True)
        assert [(x.row_id, x.sample_index) for x in got] == [("row_2", 0), ("row_2", 1), ("row_3", 0), ("row_10", 0)]
        x = got[0]
        assert (x.png, x.score, x.verdicts[0]["evidence"], x.timings, x.requirements) == (
            b"\x89PNG fake",
            0.5,
            "e",
            {"render": 1.5},
            ["a", "b"],
        )
        assert x.png_sha256 and len(x.png_sha256) == 64
        assert s.samples(run.id)[0].png is None  # PNGs only when asked for
        info = s.get_run(run.id)
        assert (info.n_samples, info.n_done, info.n_valid) == (4, 3, 3)
        assert info.mean_score == pytest.approx(0.5)
        # a redone sample replaces the failed one
        s.add_sample(run.id, sample("row_3", 0, 0.25))
        assert ("row_3", 0) in s.done_keys(run.id) and len(s.samples(run.id)) == 4
        s.set_run_status(run.id, "finished")
        assert s.list_runs()[0].status == "finished"


def test_run_ids_resolve_by_prefix_and_latest():
    with Store() as s:
        a = s.create_run(model="m", run_id="r20250101-000000-aaaa")
        b = s.create_run(model="m", run_id="r20250101-000000-aabb")
        assert s.resolve_run_id("r20250101-000000-aaa") == a.id
        assert s.resolve_run_id("latest") == b.id
        with pytest.raises(StoreError) as ei:
            s.resolve_run_id("r20250101-000000-aa")
        assert "ambiguous" in ei.value.message
        with pytest.raises(StoreError) as ei:
            s.get_run("nope")
        assert "no run 'nope'" in ei.value.message and "svgrft runs list" in ei.value.hint
        with pytest.raises(StoreError):
            s.resolve_run_id("%")  # LIKE wildcards are literal


def test_a_failed_write_leaves_nothing_behind():
    with Store() as s:
        with pytest.raises(StoreError):
            s.add_sample("no-such-run", sample("row_0", 0))  # foreign key: the run must exist
        assert s._conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 0
        assert not s._conn.in_transaction


def test_finished_samples_survive_a_killed_process():
    """Each sample is committed on its own: a process that dies without closing keeps them all."""
    code = (
        "import os\n"
        "from svgrft.core.store import Store, SampleRecord\n"
        "s = Store()\n"
        "run = s.create_run(model='m', run_id='r-killed')\n"
        "for i in range(5):\n"
        "    s.add_sample(run.id, SampleRecord(row_id=f'row_{i}', sample_index=0, score=0.1 * i, is_valid=True))\n"
        "os._exit(9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert proc.returncode == 9
    with Store() as s:
        assert len(s.done_keys("r-killed")) == 5
        assert s.get_run("r-killed").status == "running"


def test_readers_do_not_block_a_writer():
    with Store() as w:
        run = w.create_run(model="m")
        errors = []

        def read():
            try:
                with Store() as r:
                    for _ in range(50):
                        r.samples(run.id)
            except Exception as e:  # pragma: no cover - the assertion below shows it
                errors.append(e)

        t = threading.Thread(target=read)
        t.start()
        for i in range(50):
            w.add_sample(run.id, sample(f"row_{i}", 0))
        t.join()
        assert errors == [] and len(w.done_keys(run.id)) == 50


def test_judge_cache_keys_on_every_component():
    with Store() as s:
        cache = JudgeCache(s)
        key = dict(
            png_sha256="abc", requirements_hash="r1", judge_model="gpt-4.1", mode="checklist", prompt_version="v1"
        )
        assert cache.get(**key) is None
        cache.put({"mode": "checklist", "fulfilled": 1, "total": 2, "verdicts": []}, **key)
        assert cache.get(**key)["fulfilled"] == 1
        for field, other in (
            ("png_sha256", "abd"),
            ("requirements_hash", "r2"),
            ("judge_model", "gpt-4o"),
            ("mode", "count"),
            ("prompt_version", "v2"),
        ):
            assert cache.get(**{**key, field: other}) is None, field
        assert s.cache_stats() == {"entries": 1, "hits": 1}
        assert judge_cache_key("a", "b", "c", "d", "e") != judge_cache_key("a", "b", "c", "de", "")
        assert s.cache_clear() == 1 and cache.get(**key) is None


def test_a_corrupt_database_is_a_typed_error(tmp_path):
    bad = tmp_path / "broken.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as ei:
        Store(bad)
    assert "cannot open the local store" in ei.value.message and ei.value.hint


def test_unwritable_home_is_a_typed_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("SVGRFT_HOME", str(blocker / "sub"))
    with pytest.raises(StoreError) as ei:
        Store().create_run(model="m")
    assert "SVGRFT_HOME" in ei.value.hint


def test_schema_is_plain_sqlite(tmp_path):
    with Store() as s:
        s.create_run(model="m", run_id="r1")
    con = sqlite3.connect(default_db_path())
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "samples", "judge_cache"} <= tables
    con.close()
