"""Eval Protocol JSONL rows: the row model, writing, validation and loading of such files.

Row format (one JSON object per line, the shape of eval-protocol's ``EvaluationRow``)::

    {"messages": [{"role": "user", "content": <formatted prompt>}],
     "input_metadata": {"row_id": "row_0",
                        "dataset_info": {"original_prompt", "requirements", "total_requirements",
                                         "formatted_prompt"}}}

Rows are built from SVGBench questions (and split into train/eval) by :mod:`svgrft.core.svgbench`.

Validation never imports eval-protocol (seconds of import time); it checks the row shape itself
and is at least as strict as ``EvaluationRow.model_validate`` (a test keeps the two in agreement).

Over 400 lines on purpose: the row model, its validation (every field of a hostile row, line by line) and
loading share one notion of a valid row; SVGBench-specific building is in :mod:`svgrft.core.svgbench`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svgrft.core.plural import plural, plural_word
from svgrft.errors import DatasetError

# --- locations ---------------------------------------------------------------------------------

# The bundled SVGBench files have one copy: datasets/ of the repository. An installed package carries them
# as svgrft/data/ (pyproject.toml maps the package ``svgrft.data`` to datasets/).
_PKG_DATA = Path(__file__).resolve().parents[1] / "data"
_CHECKOUT = Path(__file__).resolve().parents[2]
_REPO_DATASETS = _CHECKOUT / "datasets"


def _bundled(name: str) -> Path:
    """``datasets/<name>`` of the source checkout svgrft runs from (an editable install), else the copy the
    installed package carries in ``svgrft/data/``."""
    repo = _REPO_DATASETS / name
    if (_CHECKOUT / "pyproject.toml").is_file() and repo.is_file():
        return repo
    return _PKG_DATA / name


BUNDLED_DATASET: Path = _bundled("svgbench.jsonl")
BUNDLED_QUESTIONS: Path = _bundled("svgbench_questions.json")
BUNDLED_TRAIN: Path = _bundled("svgbench_train.jsonl")
BUNDLED_EVAL: Path = _bundled("svgbench_eval.jsonl")


def resolve_path(path: str | Path) -> Path:
    """A dataset path as given; a relative path missing from the cwd falls back to the bundled copy
    of the same name (so ``datasets/svgbench_train.jsonl`` works from any directory)."""
    p = Path(path).expanduser()
    if p.is_file() or p.is_absolute():
        return p
    bundled = _bundled(p.name)
    if p.parent in (Path("."), Path("datasets")) and bundled.is_file():
        return bundled
    return p


# --- limits ------------------------------------------------------------------------------------

MAX_FILE_BYTES = 150 * 1024 * 1024  # Fireworks dataset upload cap (:upload, multipart)
MAX_LINE_BYTES = 1024 * 1024  # one row; SVGBench rows are ~2-6 kB
MAX_REQUIREMENTS = 64  # SVGBench has 7-15; the judge prompt grows with each one
MAX_REQUIREMENT_CHARS = 2000
MAX_ERRORS = 1000  # errors kept in a report (the count is always exact)
MAX_SOURCE_BYTES = 50 * 1024 * 1024

ROW_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # it ends up in tracing URLs and tags
VALID_ROLES = frozenset({"system", "user", "assistant", "tool", "developer", "function"})
DATASET_INFO_FIELDS = ("original_prompt", "requirements", "total_requirements", "formatted_prompt")


@dataclass
class DatasetRow:
    row_id: str
    messages: list[dict]
    prompt: str  # the formatted prompt (content of the last user message)
    requirements: list[str]
    original_prompt: str
    extra: dict = field(default_factory=dict, repr=False)  # other top-level keys, kept on round trips

    @property
    def total_requirements(self) -> int:
        return len(self.requirements)

    def to_json(self) -> dict:
        """The Eval Protocol row (key order as in the quickstart file)."""
        row: dict[str, Any] = {
            "messages": self.messages,
            "input_metadata": {
                "row_id": self.row_id,
                "dataset_info": {
                    "original_prompt": self.original_prompt,
                    "requirements": list(self.requirements),
                    "total_requirements": len(self.requirements),
                    "formatted_prompt": self.prompt,
                },
            },
        }
        for k, v in self.extra.items():
            row.setdefault(k, v)
        return row

    def to_line(self) -> str:
        return dumps_row(self.to_json())


def dumps_row(row: dict) -> str:
    """One JSONL line, formatted like the quickstart file (``json.dumps`` defaults, UTF-8 kept)."""
    return json.dumps(row, ensure_ascii=False)


# --- write -------------------------------------------------------------------------------------


def write_rows(rows: list[DatasetRow], path: str | Path) -> Path:
    """Write rows as JSONL (UTF-8, ``\\n`` line ends, trailing newline), atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(r.to_line() + "\n")
    tmp.replace(p)
    return p


# --- validation --------------------------------------------------------------------------------


@dataclass
class ValidationReport:
    path: str
    rows: int = 0  # rows that passed
    lines: int = 0  # lines read
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, message); line 0 = whole file
    warnings: list[tuple[int, str]] = field(default_factory=list)
    row_ids: list[str] = field(default_factory=list)
    error_count: int = 0  # exact, even when ``errors`` was capped
    size_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def add_error(self, line: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((line, message))

    def format_errors(self, limit: int | None = None) -> list[str]:
        items = self.errors if limit is None else self.errors[:limit]
        return [f"{self.path}:{line}: {msg}" if line else f"{self.path}: {msg}" for line, msg in items]

    def to_json(self) -> dict:
        return {
            "file": self.path,
            "ok": self.ok,
            "rows": self.rows,
            "lines": self.lines,
            "size_bytes": self.size_bytes,
            "error_count": self.error_count,
            "errors": [{"line": ln, "message": m} for ln, m in self.errors],
            "warnings": [{"line": ln, "message": m} for ln, m in self.warnings],
        }


def _short(v: Any, n: int = 40) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def check_row(obj: Any) -> tuple[list[str], list[str], DatasetRow | None]:
    """Check one parsed row. Returns (errors, warnings, row or None)."""
    errs: list[str] = []
    warns: list[str] = []
    if not isinstance(obj, dict):
        return [f"a row must be a JSON object, got {type(obj).__name__}"], warns, None

    msgs = obj.get("messages")
    last_user: str | None = None
    if not isinstance(msgs, list) or not msgs:
        errs.append("'messages' must be a non-empty list" if "messages" in obj else "missing 'messages'")
    else:
        for i, m in enumerate(msgs):
            where = f"messages[{i}]"
            if not isinstance(m, dict):
                errs.append(f"{where} must be an object with 'role' and 'content'")
                continue
            role = m.get("role")
            if not isinstance(role, str):
                errs.append(f"{where}: missing 'role'" if role is None else f"{where}: 'role' must be a string")
            elif role not in VALID_ROLES:
                errs.append(f"{where}: unknown role {_short(role)} (expected one of {', '.join(sorted(VALID_ROLES))})")
            content = m.get("content")
            if "content" not in m:
                errs.append(f"{where}: missing 'content'")
            elif isinstance(content, list):
                for j, part in enumerate(content):
                    if not (isinstance(part, dict) and isinstance(part.get("type"), str)):
                        errs.append(f"{where}.content[{j}] must be a content part object with a 'type'")
                        break
            elif content is not None and not isinstance(content, str):
                errs.append(f"{where}: 'content' must be a string")
        last = msgs[-1]
        if isinstance(last, dict):
            if last.get("role") != "user":
                errs.append(
                    f"the last message must be from the user (got role {_short(last.get('role'))}): "
                    "the policy model answers it"
                )
            elif not isinstance(last.get("content"), str) or not last["content"].strip():
                errs.append("the last (user) message must have non-empty text 'content'")
            else:
                last_user = last["content"]

    meta = obj.get("input_metadata")
    row_id: str | None = None
    info: Any = None
    if not isinstance(meta, dict):
        errs.append("missing 'input_metadata'" if meta is None else "'input_metadata' must be an object")
    else:
        rid = meta.get("row_id")
        if not isinstance(rid, str):
            errs.append(
                "missing 'input_metadata.row_id'" if rid is None else "'input_metadata.row_id' must be a string"
            )
        elif not ROW_ID_RE.match(rid):
            errs.append(
                f"row_id {_short(rid)} is invalid: use 1-128 letters, digits, '.', '_' or '-' "
                "(starting with a letter or digit; ids appear in tracing URLs)"
            )
        else:
            row_id = rid
        for key in ("completion_params", "session_data"):
            if meta.get(key) is not None and not isinstance(meta.get(key), dict):
                errs.append(f"'input_metadata.{key}' must be an object")
        info = meta.get("dataset_info")
        if not isinstance(info, dict):
            errs.append(
                "missing 'input_metadata.dataset_info'"
                if info is None
                else "'input_metadata.dataset_info' must be an object"
            )
            info = None

    reqs: list[str] | None = None
    orig: str | None = None
    if info is not None:
        r = info.get("requirements")
        if not isinstance(r, list):
            errs.append(
                "missing 'dataset_info.requirements'"
                if r is None
                else "'dataset_info.requirements' must be a list of strings"
            )
        elif not r:
            errs.append("'dataset_info.requirements' is empty: the judge needs at least one requirement")
        elif len(r) > MAX_REQUIREMENTS:
            errs.append(f"{plural(len(r), 'requirement')} (limit {MAX_REQUIREMENTS})")
        else:
            bad = [j + 1 for j, x in enumerate(r) if not isinstance(x, str) or not x.strip()]
            long_ = [j + 1 for j, x in enumerate(r) if isinstance(x, str) and len(x) > MAX_REQUIREMENT_CHARS]
            if bad:
                errs.append(f"requirement {bad[0]} is not a non-empty string")
            elif long_:
                errs.append(f"requirement {long_[0]} is longer than {MAX_REQUIREMENT_CHARS} characters")
            else:
                reqs = list(r)
        total = info.get("total_requirements")
        if total is None:
            errs.append("missing 'dataset_info.total_requirements'")
        elif isinstance(total, bool) or not isinstance(total, int):
            errs.append(f"'dataset_info.total_requirements' must be an integer, got {_short(total)}")
        elif isinstance(r, list) and total != len(r):
            errs.append(
                f"total_requirements is {total} but there {plural_word(len(r), 'is', 'are')} {plural(len(r), 'requirement')}"
            )
        o = info.get("original_prompt")
        if not isinstance(o, str) or not o.strip():
            errs.append(
                "missing 'dataset_info.original_prompt'"
                if o is None
                else "'dataset_info.original_prompt' must be a non-empty string"
            )
        else:
            orig = o
        fp = info.get("formatted_prompt")
        if fp is not None and not isinstance(fp, str):
            errs.append("'dataset_info.formatted_prompt' must be a string")
        elif isinstance(fp, str) and last_user is not None and fp != last_user:
            warns.append("formatted_prompt differs from the last user message (the model sees the message)")

    if errs or row_id is None or reqs is None or orig is None or last_user is None:
        return errs, warns, None
    extra = {k: v for k, v in obj.items() if k not in ("messages", "input_metadata")}
    return (
        errs,
        warns,
        DatasetRow(
            row_id=row_id, messages=msgs, prompt=last_user, requirements=reqs, original_prompt=orig, extra=extra
        ),
    )


def _iter_lines(f) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(line number, raw bytes or None, error or None); over-long lines are skipped, never held."""
    lineno = 0
    while True:
        chunk = f.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return
        lineno += 1
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            total = len(chunk)
            while True:  # drain the rest of this line without keeping it
                more = f.readline(1024 * 1024)
                total += len(more)
                if not more or more.endswith(b"\n"):
                    break
            yield lineno, None, f"line is longer than {MAX_LINE_BYTES} bytes ({plural(total, 'byte')})"
            continue
        yield lineno, chunk, None


def _scan(path: str | Path, stop_at_first: bool) -> tuple[ValidationReport, list[DatasetRow]]:
    p = Path(path)
    report = ValidationReport(path=str(path))
    rows: list[DatasetRow] = []
    try:
        st = p.stat()
    except OSError as e:
        report.add_error(0, f"cannot read file: {e.strerror or e}")
        return report, rows
    if not p.is_file():
        report.add_error(0, "not a regular file")
        return report, rows
    report.size_bytes = st.st_size
    if st.st_size > MAX_FILE_BYTES:
        report.add_error(
            0, f"file is {plural(st.st_size, 'byte')}; Fireworks accepts at most {MAX_FILE_BYTES} bytes (150 MB)"
        )
        if stop_at_first:
            return report, rows
    first_seen: dict[str, int] = {}
    prompts: dict[tuple, int] = {}
    try:
        f = open(p, "rb")
    except OSError as e:
        report.add_error(0, f"cannot read file: {e.strerror or e}")
        return report, rows
    with f:
        for lineno, raw, err in _iter_lines(f):
            report.lines = lineno
            if stop_at_first and report.error_count:
                break
            if err:
                report.add_error(lineno, err)
                continue
            assert raw is not None
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                report.add_error(lineno, f"not valid UTF-8 (byte {e.start + 1})")
                continue
            if not text.strip():
                report.add_error(lineno, "empty line (every line must be one JSON row)")
                continue
            try:
                obj = json.loads(text, parse_constant=_no_constant)
            except json.JSONDecodeError as e:
                report.add_error(lineno, f"invalid JSON: {e.msg} (column {e.colno})")
                continue
            except RecursionError:
                report.add_error(lineno, "invalid JSON: nested too deeply")
                continue
            except ValueError as e:  # NaN/Infinity, or an integer longer than Python's 4300-digit limit
                report.add_error(lineno, f"invalid JSON: {one_line_error(e)}")
                continue
            errs, warns, row = check_row(obj)
            for m in errs:
                report.add_error(lineno, m)
            for m in warns:
                report.warnings.append((lineno, m))
            rid = row.row_id if row else _row_id_of(obj)
            if rid is not None:
                if rid in first_seen:
                    report.add_error(lineno, f"duplicate row_id {_short(rid)} (first on line {first_seen[rid]})")
                    continue
                first_seen[rid] = lineno
            if row is not None and not errs:
                key = (row.prompt, tuple(row.requirements))
                if key in prompts:
                    report.warnings.append((lineno, f"same prompt and requirements as line {prompts[key]}"))
                else:
                    prompts[key] = lineno
                rows.append(row)
                report.rows += 1
                report.row_ids.append(row.row_id)
    if report.lines == 0 and not report.error_count:
        report.add_error(0, "file is empty (no rows)")
    return report, rows


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def one_line_error(e: BaseException, limit: int = 120) -> str:
    """A parse error's message on one line (Python's long-number message said plainly)."""
    text = " ".join(str(e).split())
    if "int_max_str_digits" in text or "integer string conversion" in text:
        return "a number has more than 4300 digits"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _row_id_of(obj: Any) -> str | None:
    if isinstance(obj, dict) and isinstance(obj.get("input_metadata"), dict):
        rid = obj["input_metadata"].get("row_id")
        if isinstance(rid, str):
            return rid
    return None


def validate_file(path: str | Path) -> ValidationReport:
    """Check every line; all problems in one pass (``report.errors`` = [(line, message)])."""
    return _scan(path, stop_at_first=False)[0]


def load_dataset(path: str | Path) -> list[DatasetRow]:
    """All rows of a dataset file; raises DatasetError ``file:line: problem`` on the first problem."""
    report, rows = _scan(path, stop_at_first=True)
    if not report.ok:
        first = report.format_errors(1)[0]
        raise DatasetError(first, hint=f"run `svgrft dataset validate {path}` to list every problem")
    return rows


def content_hash(path: str | Path) -> str:
    """SHA-256 (hex) of the normalized content: each JSON line re-serialized with sorted keys,
    blank lines and line-end/whitespace differences ignored. Ids use the first 10 hex digits."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for raw in f:
            line = raw.strip()
            if not line:
                continue
            try:
                norm = json.dumps(json.loads(line), sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
                    "utf-8"
                )
            except (ValueError, RecursionError):
                norm = line
            h.update(norm)
            h.update(b"\n")
    return h.hexdigest()
