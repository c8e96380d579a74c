"""A fresh clone installs and passes its tests on a stock machine (issue #13): the repo carries its own
test data, the README's set-up command makes a virtual environment, `.ci/run` runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import CORPUS, REPO, SEED

# `../shared`, `"shared" / "svg-corpus"`, `parent / "shared"`: a path that leaves the repository for the
# workspace's shared folder (prose such as "shared secret" does not match)
_OUTSIDE = re.compile(r"""\.\./shared\b|["']shared["']\s*/|/\s*["']shared["']|\bshared/(svg-corpus|seed-data)""")


def _sources() -> list[Path]:
    files = [p for top in ("svgrft", "tests", "benchmarks", "configs", ".ci") for p in (REPO / top).rglob("*")
             if p.is_file() and p.suffix in (".py", ".toml", ".txt", ".md", "") and "__pycache__" not in p.parts
             and "data" not in p.relative_to(REPO).parts[:2]]
    return files + [REPO / "pyproject.toml", REPO / "README.md", REPO / "Dockerfile.serve"]


def test_nothing_reads_outside_the_repository():
    here = Path(__file__).resolve()
    hits = [f"{p.relative_to(REPO)}:{n}: {line.strip()[:100]}" for p in _sources() if p.resolve() != here
            for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if _OUTSIDE.search(line)]
    assert hits == []


def test_test_data_is_in_the_repository_and_small():
    for d in (CORPUS, SEED):
        assert d.is_dir() and d.resolve().is_relative_to(REPO.resolve()), d
    assert len(list(CORPUS.glob("*.svg"))) >= 100 and (CORPUS / "features_gen.json").is_file()
    total = sum(p.stat().st_size for p in (REPO / "tests" / "data").rglob("*") if p.is_file())
    assert total < 1_200_000, f"tests/data is {total} bytes: keep the test data small"
