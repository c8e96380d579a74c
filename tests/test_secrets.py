"""`svgrft secrets push` through the real fireworks-ai SDK against the fake control plane."""

from __future__ import annotations

from tests.conftest import FW_KEY, OPENAI_KEY, free_port


def _secret_calls(fw, method):
    return [r for r in fw.requests if r[0] == method and "/secrets" in r[1]]


def test_push_creates_then_updates(cli, fw, oai):
    r = cli("secrets", "push", "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert [row["action"] for row in data["secrets"]] == ["created", "created"]
    assert {row["secret"] for row in data["secrets"]} == {
        "accounts/acct/secrets/openai-api-key",
        "accounts/acct/secrets/fireworks-api-key",
    }
    assert fw.secret_value("openai-api-key") == OPENAI_KEY
    assert fw.secret_value("fireworks-api-key") == FW_KEY
    # values never printed, not even in JSON
    for text in (r.stdout, r.stderr):
        assert OPENAI_KEY not in text and FW_KEY not in text

    r2 = cli("secrets", "push", "--json")
    assert r2.exit_code == 0, r2
    assert [row["action"] for row in r2.json()["secrets"]] == ["updated", "updated"]
    assert len(_secret_calls(fw, "PATCH")) == 2
    assert len(_secret_calls(fw, "POST")) == 2  # nothing re-created


def test_push_only_named_keys_never_all_of_dotenv(cli, fw, tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("UNRELATED_TOKEN=should-never-be-pushed-123\nMY_KEY=value-of-my-key-123\n")
    monkeypatch.delenv("MY_KEY", raising=False)
    monkeypatch.delenv("UNRELATED_TOKEN", raising=False)
    r = cli("secrets", "push", "--key", "MY_KEY")
    assert r.exit_code == 0, r
    assert fw.secret_value("my-key") == "value-of-my-key-123"
    bodies = [str(req[4]) for req in fw.requests]
    assert not any("should-never-be-pushed" in b for b in bodies)
    assert "value-of-my-key-123" not in r.stdout + r.stderr


def test_dry_run_sends_nothing_and_masks(cli, fw, oai):
    r = cli("secrets", "push", "--dry-run")
    assert r.exit_code == 0, r
    assert "dry run" in r.stdout
    assert OPENAI_KEY not in r.stdout and FW_KEY not in r.stdout
    assert fw.requests == []


def test_missing_key_is_one_line_error(cli, fw):
    r = cli("secrets", "push")  # OPENAI_API_KEY not set (oai fixture not used)
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: OPENAI_API_KEY not set")
    assert "hint:" in r.stderr
    assert _secret_calls(fw, "POST") == []


def test_rejected_key_401(cli, fw, oai, monkeypatch):
    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-wrong-key-000000000000")
    monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "acct")
    r = cli("secrets", "push")
    assert r.exit_code == 1
    assert "401" in r.stderr and "FIREWORKS_API_KEY" in r.stderr
    assert "fw-wrong-key-000000000000" not in r.stderr
    assert "Traceback" not in r.stderr


def test_server_error_is_retried(cli, fw, oai):
    fw.faults.add(method="POST", path=r"/secrets$", kind="500", times=1)
    fw.faults.add(method="GET", path=r"/secrets/", kind="429", times=1, retry_after=0.01)
    r = cli("secrets", "push", "--key", "OPENAI_API_KEY")
    assert r.exit_code == 0, r
    assert fw.secret_value("openai-api-key") == OPENAI_KEY


def test_persistent_server_error_gives_hint(cli, fw, oai):
    fw.faults.add(method="GET", path=r"/secrets/", kind="503", times=None)
    r = cli("secrets", "push", "--key", "OPENAI_API_KEY")
    assert r.exit_code == 1
    assert "server error" in r.stderr and "hint:" in r.stderr


def test_offline(cli, oai, monkeypatch):
    port = free_port()
    monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
    monkeypatch.setenv("FIREWORKS_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", "acct")
    r = cli("secrets", "push")
    assert r.exit_code == 1
    assert "cannot reach Fireworks" in r.stderr and "hint:" in r.stderr


def test_account_resolved_from_verify_api_key(cli, fw, oai):
    r = cli("secrets", "push", "--key", "OPENAI_API_KEY")
    assert r.exit_code == 0, r
    assert any(req[1] == "/verifyApiKey" for req in fw.requests)
