"""Helpers shared by several test files: the documented one-error shape of a failed command, a hang guard
that runs code in a fresh interpreter, and the farm requirements the injection tests use."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

FARM = ["A red barn.", "A yellow sun.", "Three green trees.", "A blue sky.", "A brown fence."]


def one_error(r, code: int = 1) -> str:
    """The command failed the documented way: exit ``code``, an ``Error:`` and a ``hint:`` line, no traceback."""
    assert r.exit_code == code, r
    err = r.stderr
    assert "Traceback" not in err, r
    errors = [ln for ln in err.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1, r
    assert any(ln.startswith("hint: ") for ln in err.splitlines()), r
    return errors[0]


def finishes(code: str, deadline: float = 60.0) -> str:
    """Run ``code`` in a fresh interpreter; fail the test if it does not finish within ``deadline``
    seconds (a hang guard for catastrophic regex backtracking, not a timing assertion). Returns stdout."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=deadline,
            cwd=str(REPO),
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"did not finish within {deadline} s (catastrophic backtracking?)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout
