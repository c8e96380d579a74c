"""Upload a JSONL dataset to Fireworks, idempotently.

The dataset id carries a content hash (``<file-stem>-<sha256[:10]>``), so uploading the same file
again reuses the dataset (one GET, nothing else), and a changed file gets a new dataset. With an
explicit id the hash is kept in the display name (``… sha256:<hash[:10]>``) and compared.

Flow: validate locally → GET → (missing) create → ``:upload`` (multipart, ≤ 150 MB) → poll READY.
A dataset left in UPLOADING by an interrupted run is uploaded again (same id, same bytes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from svgrft.clients.fireworks_records import DatasetRecord
from svgrft.clients.poll import poll
from svgrft.core.dataset import content_hash, validate_file
from svgrft.core.plural import plural
from svgrft.errors import ApiError, ConflictError, DatasetError, NotFoundError, UsageError

if TYPE_CHECKING:
    from svgrft.clients.fireworks import FireworksClient

DATASET_ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
HASH_LEN = 10
_HASH_TAG = re.compile(r"sha256:([0-9a-f]{10,64})")


@dataclass
class UploadedDataset:
    name: str  # accounts/<a>/datasets/<id>
    dataset_id: str
    created: bool  # False when an existing READY dataset was reused
    example_count: int
    content_hash: str  # full sha256 hex of the normalized content

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
        raise UsageError(
            f"invalid dataset id {dataset_id[:80]!r}",
            hint="use lowercase letters, digits and '-', start with a letter, at most 63 characters",
        )
    return dataset_id


def ensure_dataset(
    client: FireworksClient,
    path: str | Path,
    dataset_id: str | None = None,
    *,
    timeout: float = 600,
    poll_interval: float = 2.0,
    on_status: Callable[[str], None] | None = None,
) -> UploadedDataset:
    """Make sure the file is a READY Fireworks dataset; returns its name. See the module docstring."""
    say = on_status or (lambda _msg: None)
    path = Path(path)
    report = validate_file(path)
    if not report.ok:
        shown = "; ".join(report.format_errors(3))
        more = f" (+{report.error_count - 3} more)" if report.error_count > 3 else ""
        raise DatasetError(
            f"{path} is not a valid dataset: {shown}{more}",
            hint=f"run `svgrft dataset validate {path}` to see every problem; nothing was uploaded",
        )
    digest = content_hash(path)
    explicit = dataset_id is not None
    ds_id = check_dataset_id(dataset_id) if explicit else dataset_id_for(path, digest)
    name = client.name("datasets", ds_id)

    existing = client.get_dataset(ds_id)
    created = False
    if existing is not None:
        if explicit:
            m = _HASH_TAG.search(existing.display_name)
            if not m or not digest.startswith(m.group(1)):
                raise ConflictError(
                    f"dataset {ds_id} already exists with other content"
                    + (f" (sha256:{m.group(1)}, this file sha256:{digest[:HASH_LEN]})" if m else " (no content hash)"),
                    hint="omit --id to get a content-addressed id, or choose a new id",
                    status=409,
                )
        if existing.state == "READY":
            say(f"dataset {ds_id} already uploaded (READY), reusing it")
            return UploadedDataset(
                name=existing.name or name,
                dataset_id=ds_id,
                created=False,
                example_count=existing.example_count or report.rows,
                content_hash=digest,
            )
        say(f"dataset {ds_id} exists in state {existing.state}: uploading its file again")
    else:
        say(f"creating dataset {ds_id} ({plural(report.rows, 'row')})")
        try:
            client.create_dataset(
                ds_id, display_name=f"{path.stem} sha256:{digest[:HASH_LEN]}", example_count=report.rows
            )
            created = True
        except ConflictError:
            say(f"dataset {ds_id} was created concurrently, uploading into it")

    data = path.read_bytes()
    say(f"uploading {path.name} ({plural(len(data), 'byte', spec=',')})")
    client.upload_dataset(ds_id, path.name, data)

    ds = _wait_ready(client, ds_id, timeout=timeout, poll_interval=poll_interval, say=say)
    count = ds.example_count
    if count is not None and count != report.rows:
        raise ApiError(
            f"dataset {ds_id} is READY with {plural(count, 'example')}, but {path} has {plural(report.rows, 'row')}",
            hint="re-upload with a new id (--id) and check the file",
        )
    return UploadedDataset(
        name=ds.name or name,
        dataset_id=ds_id,
        created=created,
        example_count=count if count is not None else report.rows,
        content_hash=digest,
    )


def _wait_ready(
    client: FireworksClient, ds_id: str, *, timeout: float, poll_interval: float, say: Callable[[str], None]
) -> DatasetRecord:
    seen: list[str] = []

    def fetch() -> DatasetRecord:
        ds = client.get_dataset(ds_id)
        if ds is None:
            raise NotFoundError(
                f"dataset {ds_id} disappeared while it was processed",
                hint="it was deleted by someone else; run the same command again",
                status=404,
            )
        return ds

    def check(ds: DatasetRecord) -> None:
        if not seen or seen[-1] != ds.state:
            say(f"dataset {ds_id}: {ds.state}")
            seen.append(ds.state)
        if ds.state != "READY" and ds.failed:
            raise ApiError(
                f"dataset {ds_id} failed to process: {ds.status_code} {ds.status_message}".strip(),
                hint="fix the file (svgrft dataset validate) and upload again with a new id",
            )

    def timed_out(_last: DatasetRecord | None) -> DatasetRecord:
        raise ApiError(
            f"dataset {ds_id} is still {seen[-1] if seen else 'not READY'} after {timeout:g}s",
            hint="run the same command again: it reuses the dataset and resumes waiting",
        )

    def transient(e: ApiError) -> None:
        say(f"transient error while polling dataset {ds_id} ({e.status or 'network'}); retrying")

    return poll(
        fetch,
        done=lambda ds: ds.state == "READY",
        interval=poll_interval,
        timeout=timeout,
        on_value=check,
        on_error=transient,
        on_timeout=timed_out,
    )
