"""`svgrft doctor` against the fakes: all green, missing keys, rejected key, offline."""

from __future__ import annotations

from tests.conftest import FW_KEY, OPENAI_KEY, free_port


def _by_check(data):
    return {row["check"]: row for row in data["checks"]}


def test_doctor_all_green_against_fakes(cli, fw, oai, tmp_path):
    (tmp_path / ".env").write_text("# keys come from the environment in this test\n")
    r = cli("doctor", "--json")
    assert r.exit_code == 0, r
    data = r.json()
    assert data["ok"] is True
    checks = _by_check(data)
    assert checks["headless Chromium"]["status"] == "ok"
    assert checks["Fireworks API"]["status"] == "ok" and fw.url in checks["Fireworks API"]["detail"]
    assert checks["judge endpoint"]["status"] == "ok"
    assert checks["key FIREWORKS_API_KEY"]["status"] == "ok"
    assert FW_KEY not in r.stdout and OPENAI_KEY not in r.stdout


def test_doctor_missing_keys_exit_1_with_hint(cli):
    r = cli("doctor", "--no-network")
    assert r.exit_code == 1
    assert "key FIREWORKS_API_KEY" in r.stdout and "not set" in r.stdout
    assert r.stderr.startswith("Error: 2 checks failed") and "hint: export FIREWORKS_API_KEY" in r.stderr


def test_doctor_rejected_key(cli, fw, oai, monkeypatch):
    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-not-a-valid-key-12345")
    r = cli("doctor", "--json")
    assert r.exit_code == 1
    row = _by_check(r.json())["Fireworks API"]
    assert row["status"] == "fail" and "401" in row["detail"]


def test_doctor_offline_is_a_row_not_a_traceback(cli, monkeypatch):
    port = free_port()
    monkeypatch.setenv("FIREWORKS_API_KEY", FW_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("FIREWORKS_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    r = cli("doctor", "--json", "--timeout", "1")
    assert r.exit_code == 1
    checks = _by_check(r.json())
    assert checks["Fireworks API"]["status"] == "fail" and "unreachable" in checks["Fireworks API"]["detail"]
    assert checks["judge endpoint"]["status"] == "fail"
    assert "Traceback" not in r.stderr


def test_doctor_missing_browser(cli, fw, oai, monkeypatch, tmp_path):
    monkeypatch.setenv("SVGRFT_CHROMIUM", str(tmp_path / "no-such-chromium"))
    r = cli("doctor", "--json", "--no-network")
    assert r.exit_code == 1
    row = _by_check(r.json())["headless Chromium"]
    assert row["status"] == "fail"
    assert "apt-get install" in row["hint"] or "playwright install" in row["hint"]
