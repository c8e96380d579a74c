"""Shared fixtures: every test runs isolated (no real keys, no repo .env, temp SVGRFT_HOME),
and the fake servers stand in for Fireworks, the tracing gateway and OpenAI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"  # the test data lives in the repo: tests never read outside the tree
CORPUS = DATA / "svg-corpus"
SEED = DATA / "seed"

FW_KEY = "fw-test-key-0123456789abcdef"
OPENAI_KEY = "sk-test-openai-0123456789abcdef"
# The render budget of the tests. The product's 5 s per browser step is about hostile SVG; on a CI box
# shared by several test runs a benign corpus drawing can take longer, and a timed-out render is a sample
# without a picture (test_compare_epochs_end_to_end once saw 15 of 16 images). Tests that are about
# timeouts set their own (tiny) budget.
TEST_RENDER_TIMEOUT_MS = 60_000

try:  # the loopback-only guard: any other connection fails the test run
    from tests.fakes import netguard

    netguard.install()
except ImportError:  # pragma: no cover - fakes not present
    pass


def pytest_configure(config):
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


_PREFIXES = ("FIREWORKS_", "OPENAI_", "SVGRFT_", "EP_", "FW_TRACING", "GATEWAY_URL", "WANDB_")


@pytest.fixture(autouse=True)
def _sigint_deliverable():
    """Ctrl-C tests work when the runner ignores SIGINT (a script started with `&`, some CI runners): then
    ``_thread.interrupt_main()`` does nothing and children inherit the ignored signal, and such a test waited
    for its timeout. Python's own handler is installed for the test (exec resets a handled signal to the
    default, so child interpreters get theirs too) and the runner's disposition is restored after."""
    import signal
    import threading

    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    ):
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(autouse=True)
def _isolate(monkeypatch, tmp_path):
    """No real keys or endpoints leak in; cwd is a temp dir (no repo .env); SVGRFT_HOME is temp."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "svgrft-home"
    monkeypatch.setenv("SVGRFT_HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("SVGRFT_RENDER_TIMEOUT_MS", str(TEST_RENDER_TIMEOUT_MS))
    monkeypatch.chdir(tmp_path)
    from svgrft import redact as _secrets

    _secrets._KNOWN.clear()
    from svgrft.cli import _common

    _common.state.quiet = _common.state.verbose = False
    _common.state.config = _common.state.env_file = None
    yield


@pytest.fixture
def make_fw(monkeypatch):
    """Start a fake Fireworks (control plane + inference + tracing gateway) with custom options;
    the environment points at the last one started."""
    from tests.fakes import start_fireworks

    fakes = []

    def make(**opts):
        fake = start_fireworks(api_keys={FW_KEY: "acct"}, **opts)
        fakes.append(fake)
        monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
        monkeypatch.setenv("FIREWORKS_BASE_URL", fake.url)
        monkeypatch.setenv("FIREWORKS_INFERENCE_BASE_URL", fake.url + "/inference/v1")
        monkeypatch.setenv("FIREWORKS_TRACING_BASE_URL", fake.localhost_url)
        return fake

    yield make
    for fake in fakes:
        fake.stop()
    for fake in fakes:
        assert not fake.errors, f"bug inside the fake Fireworks server: {fake.errors[:1]}"


@pytest.fixture
def fw(make_fw):
    """A fake Fireworks with default options; env points at it."""
    return make_fw()


def free_port() -> int:
    """A loopback port nothing listens on (for "unreachable endpoint" tests)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(text: str) -> Path:
    """Write ./configs/default.toml in the (temp) cwd, which svgrft loads automatically."""
    path = Path("configs/default.toml")
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def no_sdk_retries() -> None:
    """The Fireworks SDK gives up at once, so svgrft's own error handling is what a test sees."""
    write_config("[fireworks]\nmax_retries = 0\n")


@pytest.fixture
def oai(monkeypatch):
    """A fake OpenAI-compatible policy + vision judge; env points at it."""
    from tests.fakes import start_openai

    fake = start_openai(api_key=OPENAI_KEY, corpus_dir=CORPUS)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.url + "/v1")
    yield fake
    fake.stop()
    assert not fake.errors, f"bug inside the fake OpenAI server: {fake.errors[:1]}"


class CliResult:
    def __init__(self, result):
        self.exit_code = result.exit_code
        self.stdout = result.stdout
        self.stderr = result.stderr
        self.exception = result.exception

    def json(self):
        import json

        return json.loads(self.stdout)

    def __repr__(self):
        return f"<CliResult exit={self.exit_code}\n--stdout--\n{self.stdout}\n--stderr--\n{self.stderr}>"


@pytest.fixture
def cli():
    """Run ``svgrft ARGS…`` in-process; stdout and stderr captured separately."""
    from typer.testing import CliRunner

    from svgrft.cli.main import app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> CliResult:
        res = runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=True)
        if res.exception and not isinstance(res.exception, SystemExit):
            raise res.exception
        return CliResult(res)

    return invoke


@pytest.fixture(scope="session")
def renderer():
    """One real headless-Chromium renderer for the whole session (pool of 1)."""
    from svgrft.core.render import SyncRenderer

    r = SyncRenderer(pool_size=1, timeout_ms=TEST_RENDER_TIMEOUT_MS)
    yield r
    r.close()


# -- hostile OpenAI-compatible endpoints (tests/fakes/canned.py), shared by the judge, policy and serve tests --


@pytest.fixture
def canned():
    """A loopback endpoint that answers every request with one canned body (``canned.answer(...)``)."""
    from tests.fakes.canned import CannedServer

    srv = CannedServer()
    yield srv
    srv.stop()


@pytest.fixture
def trickle():
    """A loopback endpoint that answers 200 and then trickles one byte every 0.2 s until stopped."""
    from tests.fakes.canned import TrickleServer

    srv = TrickleServer()
    yield srv
    srv.stop()
