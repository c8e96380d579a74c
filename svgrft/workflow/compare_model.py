"""What compare-epochs collects: the two sides of samples, the rows, and a job's epoch status.

The data model shared by the sources (:mod:`svgrft.workflow.compare_records`,
:mod:`svgrft.workflow.compare_sources`) and the orchestration (:mod:`svgrft.workflow.compare`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from svgrft.core.compare_report import Sample
from svgrft.errors import DatasetError

if TYPE_CHECKING:
    from svgrft.clients.fireworks_records import JobRecord
    from svgrft.config import DatasetSettings

Progress = Callable[[str], None]


def quiet(_msg: str) -> None:
    pass


@dataclass
class RawSample:
    row_id: str
    reply: str | None
    ref: str = ""
    reward: float | None = None
    timestamp: float | None = None
    scored: Sample | None = None  # already scored (runs source)


@dataclass
class RowInfo:
    row_id: str
    prompt: str
    requirements: list[str]
    note: str = ""


@dataclass
class Collected:
    source: str
    title: str
    before_label: str
    after_label: str
    before: dict[str, list[RawSample]]
    after: dict[str, list[RawSample]]
    rows: dict[str, RowInfo]
    job_id: str | None = None
    findings: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


class RolloutSource(Protocol):
    name: str

    def collect(self, progress: Progress = quiet) -> Collected: ...


def load_rows(dataset_settings: DatasetSettings, dataset: str | None) -> tuple[dict[str, Any], Path]:
    """DatasetRows by id from ``--dataset``, else the config's ``dataset.train``, else the bundled file."""
    from svgrft.core.dataset import BUNDLED_DATASET, load_dataset, resolve_path

    if dataset:
        path = Path(dataset).expanduser()
        if not path.is_file():
            raise DatasetError(
                f"dataset file {path} not found",
                hint="pass the JSONL file that was uploaded for the job with --dataset",
            )
    else:
        path = resolve_path(dataset_settings.train)
        if not path.is_file():
            path = BUNDLED_DATASET
    rows = load_dataset(path)
    return {r.row_id: r for r in rows}, path


def job_epoch_status(job: JobRecord) -> dict[str, Any]:
    """total epochs, epoch slots with rollouts, finished epochs, state — of a job."""
    state = job.state
    total = job.epochs
    cur = job.epoch
    percent = int(job.percent) if job.percent else 0
    if state == "JOB_STATE_COMPLETED":
        finished = total if total else (cur + 1 if cur is not None else 1)
        slots = finished
    elif state == "JOB_STATE_EARLY_STOPPED":
        finished = cur + 1 if cur is not None else (total or 1)
        slots = finished
    elif state in ("JOB_STATE_PENDING", "JOB_STATE_CREATING", "JOB_STATE_VALIDATING") or cur is None:
        finished, slots = 0, 0
    elif state == "JOB_STATE_RUNNING":
        finished = cur + (1 if percent >= 100 else 0)
        slots = cur + 1
    else:  # failed, cancelled, paused…: the epoch it stopped in is incomplete
        finished = cur
        slots = cur + 1
    total = total or slots
    return {
        "state": state,
        "total": total,
        "slots": slots,
        "finished": min(finished, total),
        "current": cur,
        "percent": percent,
    }


def n_samples(job: JobRecord) -> int | None:
    """Rollouts per prompt of the job (``responseCandidatesCount``), if it says."""
    return job.candidates if job.candidates and job.candidates > 0 else None


def row_info(row: Any) -> RowInfo:
    return RowInfo(row.row_id, row.prompt, list(row.requirements))
