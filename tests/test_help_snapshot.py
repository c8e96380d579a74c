"""`--help` of every command, snapshotted: a Typer/Click/Rich upgrade or an unnoticed option change shows up here.

Regenerate after an intended change with:  SVGRFT_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_help_snapshot.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

SNAPSHOT = Path(__file__).parent / "snapshots" / "help.txt"
UPDATE = os.environ.get("SVGRFT_UPDATE_SNAPSHOTS") == "1"  # read at import: the autouse fixture clears SVGRFT_*
COMMANDS = [
    [],
    ["doctor"],
    ["secrets", "push"],
    ["dataset", "build"],
    ["dataset", "validate"],
    ["dataset", "upload"],
    ["render"],
    ["eval"],
    ["runs", "list"],
    ["runs", "show"],
    ["report"],
    ["evaluator", "build"],
    ["evaluator", "stage"],
    ["evaluator", "test"],
    ["train"],
    ["jobs", "list"],
    ["jobs", "status"],
    ["jobs", "watch"],
    ["jobs", "cancel"],
    ["jobs", "resume"],
    ["compare-epochs"],
    ["serve"],
    ["deploy"],
    ["deployments", "list"],
    ["undeploy"],
]


def _render_all(cli) -> str:
    parts = []
    for args in COMMANDS:
        r = cli(*args, "--help")
        assert r.exit_code == 0, (args, r)
        text = "\n".join(line.rstrip() for line in r.stdout.splitlines())
        parts.append(f"$ svgrft {' '.join(args)} --help\n{text}\n")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(parts))


def test_help_matches_snapshot(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("TERMINAL_WIDTH", "120")
    text = _render_all(cli)
    if UPDATE or not SNAPSHOT.exists():
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"snapshot {SNAPSHOT} was missing and has been written; review and commit it")
    assert text == SNAPSHOT.read_text(encoding="utf-8"), (
        "`--help` output changed; if intended, regenerate: SVGRFT_UPDATE_SNAPSHOTS=1 python -m pytest "
        "tests/test_help_snapshot.py"
    )
