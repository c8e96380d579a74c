"""No outbound call of the rollout server follows a redirect (issue #15, finding 3): an allow-listed gateway
that answers 307 must not make the server POST its status (and the rollout's key) somewhere else."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import FW_KEY


class Redirector:
    """A loopback HTTP server that answers every request with ``status`` and ``Location: target``."""

    def __init__(self, target: str, status: int = 307):
        self.hits: list[str] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                outer.hits.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Location", target + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST  # noqa: N815

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("status", [307, 308, 302])
def test_status_report_does_not_follow_redirects(fw, status):
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from svgrft.server.status_report import GatewayReporter

    redirector = Redirector(fw.localhost_url, status)  # "elsewhere": the fake gateway on another port
    reporter = GatewayReporter(threads=2, deadline=30)
    try:
        ok = asyncio.run(
            reporter.report(
                gateway=redirector.url,
                api_key=FW_KEY,
                rollout_id="r-redir",
                code=100,
                message="Rollout r-redir finished",
            )
        )
    finally:
        reporter.close()
        redirector.stop()
    assert ok is False
    assert redirector.hits == ["/logs"]
    assert [r for r in fw.requests if "logs" in r.path] == []  # nothing reached the redirect target


def test_init_through_a_redirecting_gateway_fails_without_reaching_the_target(fw, serve):
    import httpx

    from tests.test_serve import init_body

    redirector = Redirector(fw.localhost_url)
    try:
        st = serve(allow_model_hosts=["127.0.0.1"])
        r = httpx.post(st.url + "/init", json=init_body(fw, base=redirector.url), timeout=60)
    finally:
        redirector.stop()
    assert r.status_code >= 400  # the policy call was refused a redirect too
    assert fw.requests == []  # neither the policy call nor the status log followed it


from tests.test_serve import serve  # noqa: E402,F401 (fixture)
