"""Two tiny loopback OpenAI-compatible endpoints for hostile-body tests (stdlib only):

* :class:`CannedServer` answers every request with one canned body/status/headers (``answer(...)``);
* :class:`TrickleServer` answers 200 with a big Content-Length, then trickles a byte every 0.2 s.

The ``canned`` and ``trickle`` fixtures in tests/conftest.py start and stop them; :func:`completion` builds a
chat-completion body for ``canned.answer``.
"""

from __future__ import annotations

import json


class CannedServer:
    """A loopback OpenAI-compatible endpoint that answers every POST with ``self.body`` (status 200)."""

    def __init__(self):
        import http.server
        import threading

        self.body, self.ctype, self.hits, self.status, self.headers = b"{}", "application/json", 0, 200, {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length") or 0))
                outer.hits += 1
                self.send_response(outer.status)
                for k, v in outer.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", outer.ctype)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            do_GET = do_POST

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, body, ctype="application/json", status=200, headers=None):
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.ctype, self.hits, self.status, self.headers = ctype, 0, status, dict(headers or {})

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class TrickleServer:
    """Answers 200 with a big Content-Length, then one byte every 0.2 s until stopped: the SDK's timeout
    is per read, so without a total deadline a client waits forever."""

    def __init__(self):
        import http.server
        import threading
        import time

        self.stop_event = threading.Event()
        self.hits = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length") or 0))
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                try:
                    while not outer.stop_event.wait(0.2):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                except OSError:
                    pass

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self._time = time

    def stop(self):
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()


def completion(content, usage=None):
    body = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
    }
    if usage is not None:
        body["usage"] = usage
    return body
