"""Chromium's sandbox (#15 finding 8): the decision is a pure function of the effective user and the
environment, and a renderer that runs without the sandbox says so in one log line per process, however many
renderers and renders there are; a sandboxed launch says nothing."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from svgrft.core import render
from svgrft.core.render import Renderer, SyncRenderer, unsandboxed_reason
from tests.conftest import TEST_RENDER_TIMEOUT_MS

NORMAL = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><rect width="20" height="20" fill="#36c"/></svg>'
)


def sandbox_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "svgrft.render" and "sandbox" in r.getMessage()]


@pytest.fixture
def fresh_guard(monkeypatch, caplog):
    """The once-per-process guard as if nothing had been logged yet (other tests may have rendered as root)."""
    monkeypatch.setattr(render, "_unsandboxed_noted", False)
    caplog.set_level(logging.WARNING, logger="svgrft.render")
    return caplog


@pytest.mark.parametrize(
    "euid, env, expect",
    [
        (0, {}, "root"),
        (0, {"SVGRFT_NO_SANDBOX": "1"}, "root"),
        (1000, {"SVGRFT_NO_SANDBOX": "1"}, "SVGRFT_NO_SANDBOX"),
        (1000, {}, None),
        (1000, {"SVGRFT_NO_SANDBOX": ""}, None),  # set but empty: not asked for
        (None, {}, None),  # no POSIX user ids (Windows): try the sandbox, fall back if it cannot start
    ],
)
def test_sandbox_decision(euid, env, expect):
    why = unsandboxed_reason(euid, env)
    if expect is None:
        assert why is None
    else:
        assert why is not None and expect in why


def test_the_line_is_logged_once_across_threads(fresh_guard):
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(render._note_unsandboxed("because"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    lines = sandbox_lines(fresh_guard)
    assert len(lines) == 1
    assert "without its sandbox (because)" in lines[0] and "hostile SVG" in lines[0]


@pytest.mark.browser
def test_unsandboxed_renderers_log_one_line_per_process(fresh_guard, monkeypatch):
    monkeypatch.setenv("SVGRFT_NO_SANDBOX", "1")
    for _ in range(2):  # two renderers, two browsers, several renders each
        with SyncRenderer(pool_size=1, timeout_ms=TEST_RENDER_TIMEOUT_MS) as r:
            assert r.renderer._sandbox is False
            for _ in range(3):
                assert r.render(NORMAL).ok
            assert r.renderer.launches == 1
    lines = sandbox_lines(fresh_guard)
    assert len(lines) == 1, lines
    reason = unsandboxed_reason(render.os.geteuid(), render.os.environ)
    assert f"({reason})" in lines[0]


# A stand-in for Playwright's browser launcher, so that the real Renderer._launch runs with a sandboxed decision
# (this suite may run as root, where no real Chromium starts sandboxed).


class _FakeBrowser:
    version = "fake"

    def is_connected(self) -> bool:
        return True

    async def close(self) -> None:
        pass


class _FakeChromium:
    def __init__(self, sandbox_works: bool):
        self.sandbox_works = sandbox_works
        self.launches: list[dict] = []

    async def launch(self, **kwargs):
        from playwright.async_api import Error as PwError

        self.launches.append(kwargs)
        if kwargs["chromium_sandbox"] and not self.sandbox_works:
            raise PwError("No usable sandbox!")
        return _FakeBrowser()


class _FakePlaywright:
    def __init__(self, sandbox_works: bool):
        self.chromium = _FakeChromium(sandbox_works)


def _launch_as_unprivileged(monkeypatch, sandbox_works: bool) -> tuple[Renderer, _FakeChromium]:
    monkeypatch.setattr(render.os, "geteuid", lambda: 1000)
    monkeypatch.delenv("SVGRFT_NO_SANDBOX", raising=False)
    r = Renderer()
    assert r._sandbox is True  # decided by unsandboxed_reason, as in production
    r._pw = _FakePlaywright(sandbox_works)
    r.executable = "/nonexistent/chromium"
    for _ in range(3):  # first launch, then relaunches/recycles
        asyncio.run(r._launch())
    return r, r._pw.chromium


def test_a_sandboxed_launch_logs_nothing(fresh_guard, monkeypatch):
    r, chromium = _launch_as_unprivileged(monkeypatch, sandbox_works=True)
    assert [k["chromium_sandbox"] for k in chromium.launches] == [True] * 3
    assert not any("--no-zygote" in k["args"] for k in chromium.launches)
    assert sandbox_lines(fresh_guard) == []


def test_a_sandbox_that_cannot_start_falls_back_and_logs_once(fresh_guard, monkeypatch):
    r, chromium = _launch_as_unprivileged(monkeypatch, sandbox_works=False)
    # tried once with the sandbox, then without it from then on
    assert [k["chromium_sandbox"] for k in chromium.launches] == [True, False, False, False]
    assert r._sandbox is False and r.launches == 3
    lines = sandbox_lines(fresh_guard)
    assert len(lines) == 1 and "could not start" in lines[0]


def test_the_cli_shows_the_note_as_one_warning_line(tmp_path):
    """`svgrft render` as an unsandboxed process: the note is one `warning:` line on stderr, even for several
    files, and stdout (the data) stays clean."""
    import os
    import subprocess
    import sys

    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.svg").write_text(NORMAL, encoding="utf-8")
    env = {
        **os.environ,
        "SVGRFT_NO_SANDBOX": "1",
        "SVGRFT_RENDER_TIMEOUT_MS": str(TEST_RENDER_TIMEOUT_MS),
        "COLUMNS": "200",
    }
    r = subprocess.run(
        [sys.executable, "-m", "svgrft", "render", "a.svg", "b.svg", "c.svg", "--out", "png"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "sandbox" in ln]
    assert len(lines) == 1 and lines[0].startswith("warning: Chromium renders without its sandbox ("), r.stderr
    assert "sandbox" not in r.stdout
