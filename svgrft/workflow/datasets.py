"""Upload a JSONL dataset to Fireworks, idempotently.

The dataset id carries a content hash (``<file-stem>-<sha256[:10]>``), so uploading the same file
again reuses the dataset (one GET, nothing else), and a changed file gets a new dataset. With an
explicit id the hash is kept in the display name (``… sha256:<hash[:10]>``) and compared.

Flow: validate locally → GET → (missing) create → ``:upload`` (multipart, ≤ 150 MB) → poll READY.
A dataset left in UPLOADING by an interrupted run is uploaded again (same id, same bytes).
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from svgrft.core.dataset import content_hash, validate_file
from svgrft.core.plural import plural
from svgrft.errors import ApiError, ConflictError, DatasetError, NotFoundError, UsageError
from svgrft.workflow import MAX_POLL_ERRORS, is_transient
from svgrft.workflow.jobs import guarded

DATASET_ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
HASH_LEN = 10
_HASH_TAG = re.compile(r"sha256:([0-9a-f]{10,64})")


@dataclass
class UploadedDataset:
    name: str               # accounts/<a>/datasets/<id>
    dataset_id: str
    created: bool           # False when an existing READY dataset was reused
    example_count: int
    content_hash: str       # full sha256 hex of the normalized content

    def to_json(self) -> dict:
        return asdict(self)


def dataset_id_for(path: str | Path, digest: str, prefix: str | None = None) -> str:
    """``datasets/svgbench_train.jsonl`` + hash → ``svgbench-train-<hash[:10]>`` (a valid Fireworks id)."""
    stem = (prefix or Path(path).stem).lower()
    stem = re.sub(r"[^a-z0-9-]+", "-", stem).strip("-")
    stem = re.sub(r"-{2,}", "-", stem)
    if not stem or not stem[0].isalpha():
        stem = ("ds-" + stem).strip("-")
    stem = stem[: 63 - HASH_LEN - 1].rstrip("-")
    return f"{stem}-{digest[:HASH_LEN]}"


def check_dataset_id(dataset_id: str) -> str:
    if dataset_id.startswith("accounts/"):
        dataset_id = dataset_id.rsplit("/", 1)[-1]
    if not DATASET_ID_RE.match(dataset_id):
        raise UsageError(f"invalid dataset id {dataset_id[:80]!r}",
                         hint="use lowercase letters, digits and '-', start with a letter, at most 63 characters")
    return dataset_id


def _field(obj: Any, *names: str) -> Any:
    for n in names:
        if isinstance(obj, dict):
            if n in obj:
                return obj[n]
        elif getattr(obj, n, None) is not None:
            return getattr(obj, n)
    return None


def _state(ds: Any) -> str:
    return str(_field(ds, "state") or "STATE_UNSPECIFIED")


def _count(ds: Any) -> int | None:
    raw = _field(ds, "example_count", "exampleCount")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None



def ensure_dataset(client, path: str | Path, dataset_id: str | None = None, *, timeout: float = 600,
                   poll_interval: float = 2.0, on_status: Callable[[str], None] | None = None) -> UploadedDataset:
    """Make sure the file is a READY Fireworks dataset; returns its name. See the module docstring."""
    import fireworks

    say = on_status or (lambda _msg: None)
    path = Path(path)
    report = validate_file(path)
    if not report.ok:
        shown = "; ".join(report.format_errors(3))
        more = f" (+{report.error_count - 3} more)" if report.error_count > 3 else ""
        raise DatasetError(f"{path} is not a valid dataset: {shown}{more}",
                           hint=f"run `svgrft dataset validate {path}` to see every problem; nothing was uploaded")
    digest = content_hash(path)
    explicit = dataset_id is not None
    ds_id = check_dataset_id(dataset_id) if explicit else dataset_id_for(path, digest)
    name = client.name("datasets", ds_id)
    sdk, acct = client.sdk, client.account_id

    existing = None
    with guarded(client, f"looking up dataset {ds_id}"):
        try:
            existing = sdk.datasets.get(ds_id, account_id=acct)
        except fireworks.NotFoundError:
            existing = None

    created = False
    if existing is not None:
        state = _state(existing)
        if explicit:
            display = str(_field(existing, "display_name", "displayName") or "")
            m = _HASH_TAG.search(display)
            if not m or not digest.startswith(m.group(1)):
                raise ConflictError(
                    f"dataset {ds_id} already exists with other content"
                    + (f" (sha256:{m.group(1)}, this file sha256:{digest[:HASH_LEN]})" if m else " (no content hash)"),
                    hint="omit --id to get a content-addressed id, or choose a new id", status=409)
        if state == "READY":
            say(f"dataset {ds_id} already uploaded (READY), reusing it")
            return UploadedDataset(name=str(_field(existing, "name") or name), dataset_id=ds_id, created=False,
                                   example_count=_count(existing) or report.rows, content_hash=digest)
        say(f"dataset {ds_id} exists in state {state}: uploading its file again")
    else:
        display = f"{path.stem} sha256:{digest[:HASH_LEN]}"
        body = {"display_name": display[:200], "example_count": str(report.rows), "format": "FORMAT_UNSPECIFIED",
                "eval_protocol": {}}
        say(f"creating dataset {ds_id} ({plural(report.rows, 'row')})")
        try:
            with guarded(client, f"creating dataset {ds_id}"):
                sdk.datasets.create(dataset_id=ds_id, dataset=body, account_id=acct)
            created = True
        except ConflictError:
            say(f"dataset {ds_id} was created concurrently, uploading into it")

    data = path.read_bytes()
    say(f"uploading {path.name} ({plural(len(data), 'byte', spec=',')})")
    with guarded(client, f"uploading {path.name} to dataset {ds_id}"):
        sdk.datasets.upload(ds_id, account_id=acct, file=(path.name, data, "application/jsonl"))

    ds = _wait_ready(client, ds_id, timeout=timeout, poll_interval=poll_interval, say=say)
    count = _count(ds)
    if count is not None and count != report.rows:
        raise ApiError(f"dataset {ds_id} is READY with {plural(count, 'example')}, but {path} has {plural(report.rows, 'row')}",
                       hint="re-upload with a new id (--id) and check the file")
    return UploadedDataset(name=str(_field(ds, "name") or name), dataset_id=ds_id, created=created,
                           example_count=count if count is not None else report.rows, content_hash=digest)


def _wait_ready(client, ds_id: str, *, timeout: float, poll_interval: float, say) -> Any:
    deadline = time.monotonic() + timeout
    errors = 0
    last_state = None
    while True:
        try:
            with guarded(client, f"waiting for dataset {ds_id}"):
                ds = client.sdk.datasets.get(ds_id, account_id=client.account_id)
            errors = 0
        except NotFoundError:
            raise
        except ApiError as e:
            if not is_transient(e):
                raise
            errors += 1
            if errors > MAX_POLL_ERRORS:
                raise
            say(f"transient error while polling dataset {ds_id} ({e.status or 'network'}); retrying")
            ds = None
        if ds is not None:
            state = _state(ds)
            if state != last_state:
                say(f"dataset {ds_id}: {state}")
                last_state = state
            if state == "READY":
                return ds
            status = _field(ds, "status")
            code = _field(status, "code") if status is not None else None
            if code not in (None, "", "OK", 0):
                msg = _field(status, "message") or ""
                raise ApiError(f"dataset {ds_id} failed to process: {code} {msg}".strip(),
                               hint="fix the file (svgrft dataset validate) and upload again with a new id")
        if time.monotonic() >= deadline:
            raise ApiError(f"dataset {ds_id} is still {last_state or 'not READY'} after {timeout:g}s",
                           hint="run the same command again: it reuses the dataset and resumes waiting")
        time.sleep(poll_interval)
