"""Local SQLite store (stdlib): evaluation runs, their samples, and the judge cache.

Location: ``$SVGRFT_HOME/svgrft.db`` (default ``~/.svgrft/svgrft.db``). WAL journal, so a
reader (``svgrft runs show``) never blocks a running evaluation. Every sample is committed in
its own transaction the moment it is finished: an interrupted run loses nothing that finished,
and ``--resume`` skips exactly the samples whose ``status`` is ``done``.

Tables
    runs(id, created_at, updated_at, status, model, base_url, dataset, judge_model, judge_mode, config JSON, note)
    samples(run_id, row_id, sample_index, status, prompt, requirements JSON, reply, svg, png, png_sha256,
            score, is_valid, reason, gate, flags JSON, fulfilled, total, verdicts JSON, judge_cached,
            timings JSON, usage JSON, extra JSON, created_at)          -- PK (run_id, row_id, sample_index)
    judge_cache(key, png_sha256, judge_model, mode, prompt_version, requirements_hash, result JSON,
                created_at, hits)

Somewhat over 400 lines on purpose: one SQLite schema and the one class that reads and writes it (the
three tables share the connection, its write lock and the schema version); the record types and the
judge-cache view are thin layers over it.
"""

from __future__ import annotations

import hashlib
import json
import secrets as _rand
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svgrft.config import home_dir
from svgrft.errors import StoreError

__all__ = ["home_dir", "default_db_path", "Store", "RunRecord", "SampleRecord", "JudgeCache", "judge_cache_key"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    status TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    base_url TEXT NOT NULL DEFAULT '',
    dataset TEXT NOT NULL DEFAULT '',
    judge_model TEXT NOT NULL DEFAULT '',
    judge_mode TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL DEFAULT '{}',
    note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS samples (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    row_id TEXT NOT NULL,
    sample_index INTEGER NOT NULL,
    status TEXT NOT NULL,
    prompt TEXT NOT NULL DEFAULT '',
    requirements TEXT NOT NULL DEFAULT '[]',
    reply TEXT,
    svg TEXT,
    png BLOB,
    png_sha256 TEXT,
    score REAL,
    is_valid INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    gate TEXT,
    flags TEXT NOT NULL DEFAULT '[]',
    fulfilled INTEGER,
    total INTEGER,
    verdicts TEXT NOT NULL DEFAULT '[]',
    judge_cached INTEGER NOT NULL DEFAULT 0,
    judge_calls INTEGER NOT NULL DEFAULT 0,
    timings TEXT NOT NULL DEFAULT '{}',
    usage TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, row_id, sample_index)
);
CREATE TABLE IF NOT EXISTS judge_cache (
    key TEXT PRIMARY KEY,
    png_sha256 TEXT NOT NULL,
    judge_model TEXT NOT NULL,
    mode TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    requirements_hash TEXT NOT NULL,
    result TEXT NOT NULL,
    created_at REAL NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS samples_run ON samples(run_id, status);
"""


def default_db_path() -> Path:
    return home_dir() / "svgrft.db"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _loads(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return default


def new_run_id(now: float | None = None) -> str:
    """Sortable, short and unique: ``r20250101-120000-a1b2``."""
    t = time.localtime(now if now is not None else time.time())
    return time.strftime("r%Y%m%d-%H%M%S", t) + "-" + _rand.token_hex(2)


@dataclass
class RunRecord:
    id: str
    created_at: float
    updated_at: float
    status: str
    model: str = ""
    base_url: str = ""
    dataset: str = ""
    judge_model: str = ""
    judge_mode: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    # aggregates filled by list_runs/get_run
    n_samples: int = 0
    n_done: int = 0
    n_valid: int = 0
    mean_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class SampleRecord:
    row_id: str
    sample_index: int
    status: str = "done"  # "done" (scored, possibly invalid) | "error" (redo on --resume)
    prompt: str = ""
    requirements: list[str] = field(default_factory=list)
    reply: str | None = None
    svg: str | None = None
    png: bytes | None = None
    png_sha256: str | None = None
    score: float | None = None
    is_valid: bool = False
    reason: str = ""
    gate: str | None = None
    flags: list[str] = field(default_factory=list)
    fulfilled: int | None = None
    total: int | None = None
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    judge_cached: bool = False
    judge_calls: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # judge reasoning, finish reason, warnings, …
    created_at: float = 0.0
    run_id: str = ""

    def to_dict(self, include_png: bool = False) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "png"}
        if include_png:
            import base64

            d["png_base64"] = base64.b64encode(self.png).decode("ascii") if self.png else None
        return d


_SAMPLE_COLS = (
    "run_id",
    "row_id",
    "sample_index",
    "status",
    "prompt",
    "requirements",
    "reply",
    "svg",
    "png",
    "png_sha256",
    "score",
    "is_valid",
    "reason",
    "gate",
    "flags",
    "fulfilled",
    "total",
    "verdicts",
    "judge_cached",
    "judge_calls",
    "timings",
    "usage",
    "extra",
    "created_at",
)


class Store:
    """One SQLite database; safe to share between threads and asyncio tasks of one process.

    Nothing is created on disk before the first write: reading a store that does not exist yet finds
    nothing, and a command that fails before it has a run or a verdict to keep leaves no ``SVGRFT_HOME``
    behind. An existing file is opened at once (a corrupt one is a :class:`StoreError` here)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_db_path()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        if self.path.exists():
            self._db(create=False)

    def _db(self, create: bool) -> sqlite3.Connection | None:
        """The connection; opened on first use, and the file (and its folder) made only when ``create``."""
        with self._lock:
            if self._conn is None and (create or self.path.exists()):
                self._conn = self._connect()
            return self._conn

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None
            )  # autocommit; explicit BEGIN per transaction
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            return conn
        except sqlite3.DatabaseError as e:
            raise StoreError(
                f"cannot open the local store {self.path}: {e}",
                hint="check SVGRFT_HOME and disk space; move a corrupt file aside to start afresh",
            ) from None
        except OSError as e:
            raise StoreError(
                f"cannot create the local store directory {self.path.parent}: {e.strerror or e}",
                hint="set SVGRFT_HOME to a writable directory",
            ) from None

    # -- plumbing ------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._conn is None:
                return
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _write(self, sql: str, params: tuple | list = ()) -> sqlite3.Cursor:
        with self._lock:
            conn = self._db(create=True)
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    cur = conn.execute(sql, params)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return cur
            except sqlite3.Error as e:
                raise StoreError(
                    f"writing to the local store {self.path} failed: {e}",
                    hint="check disk space and that no other tool locked the file",
                ) from None

    def _read(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        """Rows of a query; none while the store does not exist."""
        with self._lock:
            conn = self._db(create=False)
            if conn is None:
                return []
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                raise StoreError(
                    f"reading the local store {self.path} failed: {e}",
                    hint="check SVGRFT_HOME; move a corrupt file aside to start afresh",
                ) from None

    # -- runs ----------------------------------------------------------------------------------
    def create_run(
        self,
        *,
        model: str,
        base_url: str = "",
        dataset: str = "",
        judge_model: str = "",
        judge_mode: str = "",
        config: dict[str, Any] | None = None,
        note: str = "",
        run_id: str | None = None,
    ) -> RunRecord:
        now = time.time()
        rid = run_id or new_run_id(now)
        self._write(
            "INSERT INTO runs(id, created_at, updated_at, status, model, base_url, dataset, judge_model, "
            "judge_mode, config, note) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (rid, now, now, "running", model, base_url, dataset, judge_model, judge_mode, _dumps(config or {}), note),
        )
        return self.get_run(rid)

    def set_run_status(self, run_id: str, status: str) -> None:
        self._write("UPDATE runs SET status=?, updated_at=? WHERE id=?", (status, time.time(), run_id))

    def update_run_config(self, run_id: str, config: dict[str, Any]) -> None:
        self._write("UPDATE runs SET config=?, updated_at=? WHERE id=?", (_dumps(config), time.time(), run_id))

    def resolve_run_id(self, run_id: str) -> str:
        """Exact id, or a unique prefix of one, or ``latest``."""
        rid = (run_id or "").strip()
        if not rid:
            raise StoreError("no run id given", hint="list runs with `svgrft runs list`")
        if rid == "latest":
            rows = self._read("SELECT id FROM runs ORDER BY created_at DESC LIMIT 1")
            if not rows:
                raise StoreError("there are no runs yet", hint="run `svgrft eval` first")
            return rows[0]["id"]
        if self._read("SELECT 1 FROM runs WHERE id=?", (rid,)):
            return rid
        like = rid.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._read("SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY created_at DESC LIMIT 3", (like,))
        if len(rows) == 1:
            return rows[0]["id"]
        if len(rows) > 1:
            raise StoreError(
                f"run id '{rid}' is ambiguous ({', '.join(r['id'] for r in rows)}, …)",
                hint="give more characters of the id",
            )
        raise StoreError(
            f"no run '{rid}' in {self.path}", hint="list runs with `svgrft runs list` (runs live under SVGRFT_HOME)"
        )

    def _run_from_row(self, r: sqlite3.Row) -> RunRecord:
        keys = r.keys()
        return RunRecord(
            id=r["id"],
            created_at=r["created_at"],
            updated_at=r["updated_at"],
            status=r["status"],
            model=r["model"],
            base_url=r["base_url"],
            dataset=r["dataset"],
            judge_model=r["judge_model"],
            judge_mode=r["judge_mode"],
            config=_loads(r["config"], {}),
            note=r["note"],
            n_samples=r["n_samples"] if "n_samples" in keys else 0,
            n_done=r["n_done"] if "n_done" in keys else 0,
            n_valid=r["n_valid"] if "n_valid" in keys else 0,
            mean_score=r["mean_score"] if "mean_score" in keys else None,
        )

    _RUN_AGG = (
        "SELECT runs.*, "
        "(SELECT COUNT(*) FROM samples s WHERE s.run_id = runs.id) AS n_samples, "
        "(SELECT COUNT(*) FROM samples s WHERE s.run_id = runs.id AND s.status='done') AS n_done, "
        "(SELECT COUNT(*) FROM samples s WHERE s.run_id = runs.id AND s.status='done' AND s.is_valid=1) "
        "AS n_valid, "
        "(SELECT AVG(score) FROM samples s WHERE s.run_id = runs.id AND s.status='done' AND s.is_valid=1) "
        "AS mean_score FROM runs"
    )

    def get_run(self, run_id: str) -> RunRecord:
        rid = self.resolve_run_id(run_id)
        rows = self._read(self._RUN_AGG + " WHERE id=?", (rid,))
        return self._run_from_row(rows[0])

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self._read(self._RUN_AGG + " ORDER BY created_at DESC LIMIT ?", (int(limit),))
        return [self._run_from_row(r) for r in rows]

    def delete_run(self, run_id: str) -> None:
        rid = self.resolve_run_id(run_id)
        with self._lock:
            conn = self._db(create=True)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM samples WHERE run_id=?", (rid,))
            conn.execute("DELETE FROM runs WHERE id=?", (rid,))
            conn.execute("COMMIT")

    # -- samples -------------------------------------------------------------------------------
    def add_sample(self, run_id: str, s: SampleRecord) -> None:
        """Insert (or replace a redone) sample in one transaction."""
        if s.png is not None and not s.png_sha256:
            s.png_sha256 = hashlib.sha256(s.png).hexdigest()
        s.created_at = s.created_at or time.time()
        s.run_id = run_id
        values = (
            run_id,
            str(s.row_id),
            int(s.sample_index),
            s.status,
            s.prompt or "",
            _dumps(list(s.requirements)),
            s.reply,
            s.svg,
            s.png,
            s.png_sha256,
            s.score,
            1 if s.is_valid else 0,
            s.reason or "",
            s.gate,
            _dumps(list(s.flags)),
            s.fulfilled,
            s.total,
            _dumps(list(s.verdicts)),
            1 if s.judge_cached else 0,
            int(s.judge_calls),
            _dumps(s.timings),
            _dumps(s.usage),
            _dumps(s.extra),
            s.created_at,
        )
        placeholders = ",".join("?" * len(_SAMPLE_COLS))
        with self._lock:
            conn = self._db(create=True)
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(
                        f"INSERT OR REPLACE INTO samples({','.join(_SAMPLE_COLS)}) VALUES ({placeholders})", values
                    )
                    conn.execute("UPDATE runs SET updated_at=? WHERE id=?", (time.time(), run_id))
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                raise StoreError(
                    f"saving a sample to {self.path} failed: {e}",
                    hint="check disk space; rerun with --resume to continue",
                ) from None

    def done_keys(self, run_id: str) -> set[tuple[str, int]]:
        rows = self._read("SELECT row_id, sample_index FROM samples WHERE run_id=? AND status='done'", (run_id,))
        return {(r["row_id"], int(r["sample_index"])) for r in rows}

    def _sample_from_row(self, r: sqlite3.Row, include_png: bool) -> SampleRecord:
        return SampleRecord(
            run_id=r["run_id"],
            row_id=r["row_id"],
            sample_index=int(r["sample_index"]),
            status=r["status"],
            prompt=r["prompt"],
            requirements=_loads(r["requirements"], []),
            reply=r["reply"],
            svg=r["svg"],
            png=bytes(r["png"]) if include_png and r["png"] is not None else None,
            png_sha256=r["png_sha256"],
            score=r["score"],
            is_valid=bool(r["is_valid"]),
            reason=r["reason"],
            gate=r["gate"],
            flags=_loads(r["flags"], []),
            fulfilled=r["fulfilled"],
            total=r["total"],
            verdicts=_loads(r["verdicts"], []),
            judge_cached=bool(r["judge_cached"]),
            judge_calls=int(r["judge_calls"]),
            timings=_loads(r["timings"], {}),
            usage=_loads(r["usage"], {}),
            extra=_loads(r["extra"], {}),
            created_at=r["created_at"],
        )

    def samples(self, run_id: str, *, include_png: bool = False, status: str | None = None) -> list[SampleRecord]:
        cols = "*" if include_png else ", ".join(c for c in _SAMPLE_COLS if c != "png") + ", NULL AS png"
        sql = f"SELECT {cols} FROM samples WHERE run_id=?"
        params: list[Any] = [run_id]
        if status:
            sql += " AND status=?"
            params.append(status)
        sql += " ORDER BY row_id, sample_index"
        rows = self._read(sql, params)
        out = [self._sample_from_row(r, include_png) for r in rows]
        out.sort(key=lambda s: (_natural(s.row_id), s.sample_index))
        return out

    def iter_samples(self, run_id: str, include_png: bool = False) -> Iterator[SampleRecord]:
        yield from self.samples(run_id, include_png=include_png)

    # -- judge cache ---------------------------------------------------------------------------
    def cache_get(self, key: str) -> dict[str, Any] | None:
        rows = self._read("SELECT result FROM judge_cache WHERE key=?", (key,))
        if not rows:
            return None
        try:
            self._write("UPDATE judge_cache SET hits = hits + 1 WHERE key=?", (key,))
        except StoreError:
            pass  # a hit counter is not worth failing a score for
        return _loads(rows[0]["result"], None)

    def cache_put(
        self,
        key: str,
        *,
        png_sha256: str,
        judge_model: str,
        mode: str,
        prompt_version: str,
        requirements_hash: str,
        result: dict[str, Any],
    ) -> None:
        self._write(
            "INSERT OR REPLACE INTO judge_cache(key, png_sha256, judge_model, mode, prompt_version, "
            "requirements_hash, result, created_at, hits) VALUES (?,?,?,?,?,?,?,?,0)",
            (key, png_sha256, judge_model, mode, prompt_version, requirements_hash, _dumps(result), time.time()),
        )

    def cache_stats(self) -> dict[str, int]:
        rows = self._read("SELECT COUNT(*) AS n, COALESCE(SUM(hits), 0) AS hits FROM judge_cache")
        if not rows:
            return {"entries": 0, "hits": 0}
        return {"entries": int(rows[0]["n"]), "hits": int(rows[0]["hits"])}

    def cache_clear(self) -> int:
        if self._db(create=False) is None:
            return 0
        cur = self._write("DELETE FROM judge_cache")
        return cur.rowcount


def _natural(row_id: str) -> tuple:
    """row_2 < row_10."""
    import re

    parts = re.split(r"(\d+)", str(row_id))
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def judge_cache_key(png_sha256: str, requirements_hash: str, judge_model: str, mode: str, prompt_version: str) -> str:
    blob = "\x1f".join((png_sha256, requirements_hash, judge_model, mode, prompt_version))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JudgeCache:
    """Judge verdicts keyed by (PNG hash, requirements, judge model, mode, prompt version)."""

    def __init__(self, store: Store):
        self.store = store

    @classmethod
    def open(cls, path: str | Path | None = None) -> JudgeCache:
        return cls(Store(path))

    def get(
        self, *, png_sha256: str, requirements_hash: str, judge_model: str, mode: str, prompt_version: str
    ) -> dict[str, Any] | None:
        return self.store.cache_get(judge_cache_key(png_sha256, requirements_hash, judge_model, mode, prompt_version))

    def put(
        self,
        result: dict[str, Any],
        *,
        png_sha256: str,
        requirements_hash: str,
        judge_model: str,
        mode: str,
        prompt_version: str,
    ) -> None:
        self.store.cache_put(
            judge_cache_key(png_sha256, requirements_hash, judge_model, mode, prompt_version),
            png_sha256=png_sha256,
            judge_model=judge_model,
            mode=mode,
            prompt_version=prompt_version,
            requirements_hash=requirements_hash,
            result=result,
        )
