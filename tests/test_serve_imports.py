"""`svgrft serve` starts without eval_protocol (issue #13, point 3): importing it pulls in litellm (~7 s).

Each check runs in a fresh interpreter and lists the eval_protocol / litellm modules loaded by then.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import CORPUS, REPO, free_port

HEAVY = ("eval_protocol", "litellm")

_LOADED = f"sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})"


def _run(code: str, *args: str, timeout: float = 180) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, timeout=timeout
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT=")]
    assert lines, f"no result (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(lines[-1][len("RESULT=") :])


def test_building_the_app_and_answering_health_loads_no_eval_protocol():
    code = (
        "import json, sys\n"
        "from starlette.testclient import TestClient\n"
        "from svgrft.config import load_settings\n"
        "from svgrft.server.app import create_app\n"
        "app = create_app(load_settings(), rate_limit=0, warn_unauthenticated=False)\n"
        "with TestClient(app) as client:\n"
        "    r = client.get('/')\n"
        f"print('RESULT=' + json.dumps({{'status': r.status_code, 'service': r.json().get('service'), "
        f"'loaded': {_LOADED}}}))\n"
    )
    out = _run(code)
    assert (out["status"], out["service"]) == (200, "svgrft-serve")
    assert out["loaded"] == [], f"the rollout server imported {out['loaded'][:10]}"


def test_svgrft_serve_answers_its_first_health_check_without_eval_protocol():
    """The real start path (CLI → runner → uvicorn): a probe thread in the server process waits for the first
    `GET /` answer, then reports what is loaded and ends the process."""
    code = (
        "import json, os, sys, threading, time\n"
        "import httpx\n"
        "port = int(sys.argv[1])\n"
        "def probe():\n"
        "    status = None\n"
        "    deadline = time.monotonic() + 120\n"
        "    while status is None and time.monotonic() < deadline:\n"
        "        try:\n"
        "            status = httpx.get(f'http://127.0.0.1:{port}/', timeout=2).status_code\n"
        "        except httpx.HTTPError:\n"
        "            time.sleep(0.05)\n"
        f"    print('RESULT=' + json.dumps({{'status': status, 'loaded': {_LOADED}}}), flush=True)\n"
        "    os._exit(0)\n"
        "threading.Thread(target=probe, daemon=True).start()\n"
        "sys.argv = ['svgrft', 'serve', '--port', str(port)]\n"
        "from svgrft.cli.main import main\n"
        "main()\n"
    )
    out = _run(code, str(free_port()))
    assert out["status"] == 200
    assert out["loaded"] == [], f"`svgrft serve` imported {out['loaded'][:10]} before answering GET /"


@pytest.mark.parametrize(
    "args", [["--help"], ["serve", "--help"], ["render", "{svg}", "-o", "{out}"]], ids=["help", "serve-help", "render"]
)
def test_cli_paths_load_no_eval_protocol(args, tmp_path):
    argv = [a.format(svg=CORPUS / "gen_000.svg", out=tmp_path / "png") for a in args]
    code = (
        "import json, sys\n"
        "from svgrft.cli.main import main\n"
        "sys.argv = ['svgrft', *json.loads(sys.argv[1])]\n"
        "try:\n"
        "    main()\n"
        "    code = 0\n"
        "except SystemExit as e:\n"
        "    code = e.code or 0\n"
        f"print('RESULT=' + json.dumps({{'exit': code, 'loaded': {_LOADED}}}))\n"
    )
    out = _run(code, json.dumps(argv))
    assert out["exit"] == 0
    assert out["loaded"] == [], f"svgrft {' '.join(args)} imported {out['loaded'][:10]}"
    if args[0] == "render":
        assert (tmp_path / "png" / "gen_000.svg.png").is_file()
