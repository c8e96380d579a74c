"""Start-up cost (issue #13): `svgrft serve` listens before eval_protocol (which imports litellm, seconds)
is imported; `GET /` answers during the import and `/init` waits for it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import httpx

from tests.conftest import free_port
from tests.test_serve import ServeThread, chat_calls, init_body

_HEAVY = ("eval_protocol", "litellm")

_CLI_SCRIPT = r"""
import json, sys
import uvicorn
def fake_run(app, **kw):
    heavy = sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in %r})
    print("AT_LISTEN=" + json.dumps(heavy))
uvicorn.run = fake_run
from svgrft.cli.main import main
sys.argv = ["svgrft", "serve", "--host", "127.0.0.1", "--port", sys.argv[1], "-q"]
try:
    main()
except SystemExit as e:
    sys.exit(e.code)
""" % (_HEAVY,)


def test_serve_starts_listening_without_importing_eval_protocol(tmp_path):
    """The CLI hands over to uvicorn before any eval_protocol/litellm import (it used to pre-import them)."""
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("SVGRFT_SERVE", "FIREWORKS_"))}
    env["SVGRFT_HOME"] = str(tmp_path / "home")
    proc = subprocess.run([sys.executable, "-c", _CLI_SCRIPT, str(free_port())], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("AT_LISTEN=")]
    assert line and json.loads(line[0].split("=", 1)[1]) == [], proc.stdout


def test_health_answers_while_eval_protocol_loads_and_init_waits_for_it(fw, monkeypatch):
    """Hold the eval_protocol import: GET / is 200 meanwhile; an /init sent meanwhile completes once it lands."""
    from svgrft.config import load_settings
    from svgrft.server import app as app_mod

    real = app_mod.load_init_request
    release = threading.Event()
    entered = threading.Event()

    def held():
        entered.set()
        assert release.wait(60), "test never released the import"
        return real()

    monkeypatch.setattr(app_mod, "load_init_request", held)
    st = ServeThread(app_mod.create_app(load_settings(), rate_limit=0)).start()
    try:
        assert entered.wait(30)  # the warm-up started in a thread at start-up, and is held
        r = httpx.get(st.url + "/", timeout=30)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        result: dict = {}
        body = init_body(fw)
        t = threading.Thread(target=lambda: result.update(r=httpx.post(st.url + "/init", json=body, timeout=60)))
        t.start()
        assert not chat_calls(fw, body["metadata"]["rollout_id"])  # nothing called before the model is there
        release.set()
        t.join(90)
        assert result["r"].status_code == 200, result["r"].text
        assert result["r"].json()["status"] == "finished"
        assert len(chat_calls(fw, body["metadata"]["rollout_id"])) == 1
    finally:
        release.set()
        st.stop()
