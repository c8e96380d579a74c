"""Offline fake servers for svgrft's tests (real HTTP on 127.0.0.1, stdlib only).

Ready-made starters the conftest can wire as fixtures::

    from tests.fakes import start_fireworks, start_openai

    @pytest.fixture
    def fireworks():
        with start_fireworks() as fake:       # FakeFireworks, api key "fw-test-key" -> account "acct"
            yield fake

    @pytest.fixture
    def openai_fake():
        with start_openai() as fake:          # FakeOpenAI, api key "sk-test"
            yield fake

Every fake has ``.url`` (``http://127.0.0.1:PORT``), ``.stop()``, context-manager support,
``.requests`` / ``.calls(method, path)`` (credentials redacted), ``.faults.add(...)`` and
``.errors`` (tracebacks of bugs in the fake itself; assert it is empty).  FakeFireworks also has
``.localhost_url`` (``http://localhost:PORT``) for eval-protocol's tracing gateway.
See each module's docstring for the exact behaviour.
"""

from __future__ import annotations

from ._http import FakeServer, RecordedRequest, key_fingerprint
from .faults import Fault, FaultSet
from .fireworks import FakeClock, FakeFireworks
from .openai_fake import FakeOpenAI, judge_rule
from .png import PngError, decode_png, encode_png, image_stats, solid_png, stripes_png

FW_KEY = "fw-test-key"
FW_ACCOUNT = "acct"
OPENAI_KEY = "sk-test"

__all__ = [
    "FW_ACCOUNT",
    "FW_KEY",
    "OPENAI_KEY",
    "FakeClock",
    "FakeFireworks",
    "FakeOpenAI",
    "FakeServer",
    "Fault",
    "FaultSet",
    "PngError",
    "RecordedRequest",
    "decode_png",
    "encode_png",
    "image_stats",
    "judge_rule",
    "key_fingerprint",
    "solid_png",
    "start_fireworks",
    "start_openai",
    "stripes_png",
]


def start_fireworks(*, api_key: str | None = None, account: str = FW_ACCOUNT, **opts) -> FakeFireworks:
    """Start a :class:`FakeFireworks`.  Keys: ``api_keys={key: account}``, or ``api_key=`` (+ ``account=``);
    default ``{"fw-test-key": "acct"}``."""
    if api_key:
        opts.setdefault("api_keys", {})
        opts["api_keys"] = {**opts["api_keys"], api_key: account}
    opts.setdefault("api_keys", {FW_KEY: account})
    return FakeFireworks(**opts).start()


def start_openai(*, api_key: str | None = None, **opts) -> FakeOpenAI:
    """Start a :class:`FakeOpenAI`.  Keys: ``api_keys=[...]`` and/or ``api_key=``; default ``{"sk-test"}``."""
    if api_key:
        opts["api_key"] = api_key
    elif "api_keys" not in opts:
        opts["api_keys"] = {OPENAI_KEY}
    return FakeOpenAI(**opts).start()
