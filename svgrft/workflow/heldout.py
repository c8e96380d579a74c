"""Which split a replay compared on: did the job train on these prompts?

The job's training rows are read from its uploaded dataset (downloaded through the SDK); if that fails,
from the local ``dataset.train`` file, and the report says which was used. Rows are matched by the text of
their user prompt (ids can repeat across datasets), so a renamed copy of a training row still counts as
trained-on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svgrft.core.plural import plural, plural_word
from svgrft.errors import SvgrftError

if TYPE_CHECKING:
    from svgrft.clients.fireworks import FireworksClient
    from svgrft.clients.fireworks_records import JobRecord
    from svgrft.config import DatasetSettings

__all__ = ["prompt_key", "training_prompts", "split_info"]


def prompt_key(messages: Any) -> str | None:
    """A hash of the user turns of a row (whitespace-normalized), or None without any."""
    if not isinstance(messages, list):
        return None
    parts = [
        " ".join(str(m.get("content") or "").split())
        for m in messages
        if isinstance(m, dict) and m.get("role") == "user"
    ]
    if not any(parts):
        return None
    return hashlib.sha256("\n".join(parts).encode("utf-8", "replace")).hexdigest()


def _keys_from_jsonl(data: bytes) -> set[str]:
    keys: set[str] = set()
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            continue
        k = prompt_key(obj.get("messages")) if isinstance(obj, dict) else None
        if k:
            keys.add(k)
    return keys


def training_prompts(fw: FireworksClient, job: JobRecord, dataset_settings: DatasetSettings) -> tuple[set[str], str]:
    """(prompt keys the job trained on, where they came from)."""
    dataset = job.dataset
    problem = "the job names no dataset"
    if dataset:
        try:
            keys = _keys_from_jsonl(fw.download_dataset(str(dataset)))
            if keys:
                return keys, f"the job's dataset {str(dataset).rsplit('/', 1)[-1]}"
            problem = "its file has no rows"
        except SvgrftError as e:
            problem = e.message
    from svgrft.core.dataset import resolve_path

    local = resolve_path(dataset_settings.train)
    if Path(local).is_file():
        return _keys_from_jsonl(
            Path(local).read_bytes()
        ), f"local {local} (the job's dataset could not be read: {problem})"
    return set(), f"nothing (the job's dataset could not be read: {problem})"


def split_info(
    fw: FireworksClient, job: JobRecord, dataset_settings: DatasetSettings, rows: list, dataset_path: Path
) -> dict[str, Any]:
    """``{"split": "held-out"|"training"|"mixed"|"unknown", "trained_on": k, "prompts": n, "compared_with",
    "text"}`` for the rows about to be replayed."""
    trained, source = training_prompts(fw, job, dataset_settings)
    keys = [prompt_key(r.messages) for r in rows]
    n = len(keys)
    k = sum(1 for x in keys if x and x in trained)
    if not trained:
        split = "unknown"
    elif k == 0:
        split = "held-out"
    elif k == n:
        split = "training"
    else:
        split = "mixed"
    name = Path(dataset_path).name
    if split == "held-out":
        text = f"held-out: none of the {plural(n, 'prompt')} of {name} is in {source}"
    elif split == "training":
        text = (
            f"training: all {plural(n, 'prompt')} of {name} {plural_word(n, 'is', 'are')} in {source} "
            f"(not a held-out test)"
        )
    elif split == "mixed":
        text = f"mixed: {k} of {plural(n, 'prompt')} of {name} {plural_word(k, 'is', 'are')} in {source}"
    else:
        text = f"unknown: could not tell whether the job trained on {name} (compared with {source})"
    auto = job.eval_auto_carveout
    if auto and split in ("training", "mixed"):
        text += "; the job also carved out an evaluation part of its dataset (which rows is not known)"
    return {"split": split, "trained_on": k, "prompts": n, "compared_with": source, "text": text}
