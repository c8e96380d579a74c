"""Keys never print, not even in debug tracebacks or inside URLs (issue #15, findings 5 and 6): credentials in
a configured URL are refused before anything is baked, uploaded or printed; every traceback is redacted."""

from __future__ import annotations

import io
import json

import pytest

from tests.conftest import FW_KEY, OPENAI_KEY

UNREGISTERED = "sk-proj-notregistered-0123456789abcdef"  # a key svgrft was never told about
CRED_URLS = [
    "https://judge-user:s3cr3t-pass-word@proxy.example.com/v1",
    f"https://proxy.example.com/v1?api-key={UNREGISTERED}",
    f"https://proxy.example.com/v1?api-version=2024-06-01&access_token={UNREGISTERED}",
]


def _leaks(text: str) -> list[str]:
    return [s for s in (UNREGISTERED, "s3cr3t-pass-word", FW_KEY, OPENAI_KEY) if s in text]


@pytest.mark.parametrize(
    "text",
    [
        f"upstream 400: {{'headers': {{'Authorization': 'Bearer {UNREGISTERED}'}}}}",
        f'{{"request": {{"headers": {{"authorization": "Basic {UNREGISTERED}"}}}}}}',
        f"error calling {CRED_URLS[0]}",
        f"error calling {CRED_URLS[1]}",
        f"POST {CRED_URLS[2]} failed",
        f"'x-api-key': '{UNREGISTERED}'",
    ],
)
def test_debug_tracebacks_are_redacted(text):
    from svgrft.redact import format_exception

    def upstream():
        raise RuntimeError(text)

    try:
        try:
            upstream()
        except RuntimeError as e:
            raise ValueError("wrapped") from e
    except ValueError as e:
        out = format_exception(e)
    assert "RuntimeError" in out and "wrapped" in out  # still a traceback
    assert _leaks(out) == []


def test_uncaught_exception_hook_redacts(capsys):
    from svgrft.cli.main import _redacted_excepthook

    try:
        raise RuntimeError(f"boom at {CRED_URLS[0]} with Authorization: Bearer {UNREGISTERED}")
    except RuntimeError as e:
        _redacted_excepthook(type(e), e, e.__traceback__)
    err = capsys.readouterr().err
    assert "RuntimeError: boom" in err and _leaks(err) == []


def test_redaction_keeps_ordinary_text():
    from svgrft.redact import redact

    text = (
        "max_tokens=4096 token_budget=10 basic settings https://api.fireworks.ai/inference/v1?api-version=2 "
        "user@example.com"
    )
    assert redact(text) == text


@pytest.mark.parametrize("url", CRED_URLS)
def test_url_credentials_are_refused_before_anything_is_baked_or_printed(cli, fw, oai, monkeypatch, url):
    monkeypatch.setenv("SVGRFT_DEBUG", "1")
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    for args in (("doctor",), ("evaluator", "stage", "out"), ("evaluator", "build", "--json")):
        r = cli(*args)
        assert r.exit_code == 1, (args, r)
        assert "carries credentials in the URL" in r.stderr and "hint:" in r.stderr
        assert _leaks(r.stdout + r.stderr) == [], args
    assert fw.requests == []  # nothing uploaded


def test_tarball_scan_refuses_a_config_with_a_credential_url(tmp_path):
    from svgrft.errors import SvgrftError
    from svgrft.evaluator import CONFIG_FILE
    from svgrft.workflow.evaluator_bundle import check_no_secrets

    (tmp_path / CONFIG_FILE).write_text(json.dumps({"settings": {"judge.base_url": CRED_URLS[1]}}))
    with pytest.raises(SvgrftError) as e:
        check_no_secrets(tmp_path, [CONFIG_FILE], [])
    assert "credentials" in str(e.value) and UNREGISTERED not in str(e.value)
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"settings": {"judge.base_url": "https://proxy.example.com/v1"}}))
    check_no_secrets(tmp_path, [CONFIG_FILE], [])


def test_printed_urls_lose_their_credentials():
    from svgrft.cli import _common

    buf = io.StringIO()
    import sys

    old, sys.stdout = sys.stdout, buf
    try:
        _common.out(f"judge endpoint {CRED_URLS[0]}, fallback {CRED_URLS[1]}")
    finally:
        sys.stdout = old
    assert _leaks(buf.getvalue()) == [] and "proxy.example.com" in buf.getvalue()


# --- mask and redact (folded from test_foundation.py) ---


def test_mask_and_redact():
    from svgrft import redact

    key = "fw-supersecretvalue-98765"
    assert key not in redact.mask(key) and redact.mask(key).endswith("8765")
    redact.register(key)
    assert key not in redact.redact(f"header Authorization: Bearer {key} and {key}")
    assert key not in redact.redact("Bearer abcdefghijklmnopqrstuvwxyz")  # unknown bearer tokens masked too
