"""The Docker images run as an unprivileged user (#15 finding 8): Chromium renders untrusted SVG, and without
its sandbox (the usual case in a container) the user is what bounds a browser exploit. Static checks of the
Dockerfiles: a non-root USER, declared after every package install, created in the image, owning the
directory it works in."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = [REPO / "Dockerfile.serve", REPO / "svgrft" / "evaluator" / "Dockerfile"]
_INSTALL = re.compile(r"\b(?:apt-get|apt|pip|pip3|uv)\b[^&;|]*\binstall\b")


def instructions(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, comments dropped, ``\\`` continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = " ".join((pending + stripped).split())
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, f"{path.name} ends inside a continued line"
    return out


def test_parser_reads_continuations(tmp_path):
    f = tmp_path / "Dockerfile"
    f.write_text("FROM x\n# c\nRUN a \\\n  # inner\n && pip install y\nuser bob\n")
    assert instructions(f) == [("FROM", "x"), ("RUN", "a && pip install y"), ("USER", "bob")]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_image_runs_as_an_unprivileged_user_after_the_installs(path):
    steps = instructions(path)
    users = [(i, arg) for i, (word, arg) in enumerate(steps) if word == "USER"]
    assert users, f"{path.name} declares no USER: the image runs as root"
    last_user_at, user = users[-1]
    name = user.split(":")[0]
    assert name not in ("root", "0"), f"{path.name} runs as {user}"
    installs = [i for i, (word, arg) in enumerate(steps) if word == "RUN" and _INSTALL.search(arg)]
    assert installs, f"no package install found in {path.name}"  # the parse saw the RUN steps
    assert last_user_at > max(installs), f"{path.name}: USER {user} comes before an install"
    # the user is created in the image (useradd/adduser before the USER line), unless it is a bare uid
    created = [
        arg for word, arg in steps[:last_user_at] if word == "RUN" and re.search(r"\b(?:useradd|adduser)\b", arg)
    ]
    if not name.isdigit():
        assert any(name in shlex.split(arg.replace("&&", " ")) for arg in created), (
            f"{path.name}: {name} is never created"
        )


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_user_owns_its_working_directory(path):
    steps = instructions(path)
    last_user_at = max(i for i, (word, _a) in enumerate(steps) if word == "USER")
    name = steps[last_user_at][1].split(":")[0]
    workdirs = [arg for word, arg in steps if word == "WORKDIR"]
    workdir = workdirs[-1] if workdirs else "/"
    if workdir == f"/home/{name}":
        created = " ".join(arg for word, arg in steps if word == "RUN")
        assert re.search(r"(?:useradd|adduser)\b[^&]*(?:--create-home|-m)\b", created), "the home is never created"
        return
    before_user = [arg for word, arg in steps[:last_user_at] if word == "RUN"]
    assert any(
        re.search(rf"\bchown\b[^&]*\b{re.escape(name)}\b[^&]*\s{re.escape(workdir)}(?:\s|$)", arg)
        for arg in before_user
    ), f"{path.name}: {workdir} is not chowned to {name} (it is root's)"
