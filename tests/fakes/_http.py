"""A small real HTTP/1.1 server base for the fakes (stdlib only).

* binds 127.0.0.1 on an ephemeral port and serves from a daemon thread, so clients in this
  process and in subprocesses can reach it;
* HTTP/1.1 keep-alive with exact ``Content-Length`` (httpx, requests and aiohttp all reuse
  connections), ``Transfer-Encoding: chunked`` request bodies and ``Expect: 100-continue``;
* every request is appended to ``server.requests`` as a :class:`RecordedRequest`
  ``(method, path, query, headers, json)`` with credentials redacted;
* faults (:mod:`tests.fakes.faults`) are applied before normal handling;
* an exception inside a handler becomes a 500 and is kept in ``server.errors`` (a fake bug must
  be visible, never a hang).
"""

from __future__ import annotations

import hashlib
import json
import math
import socket
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Optional, Union
from urllib.parse import parse_qs, unquote, urlsplit

from .faults import FaultSet

MAX_BODY = 200 * 1024 * 1024
_SENSITIVE_HEADERS = {"authorization", "x-api-key", "api-key", "cookie", "proxy-authorization"}
_SENSITIVE_BODY_KEYS = {"apikey", "api_key", "password", "secret_key"}


def key_fingerprint(key: str) -> str:
    """Short, non-reversible tag for an API key (what the request log shows instead of it)."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:10]


class RecordedRequest(NamedTuple):
    method: str
    path: str
    query: dict  # name -> str, or list[str] when the parameter was repeated
    headers: dict  # lower-cased names; credential values replaced by a fingerprint
    json: Any  # parsed JSON body (secrets redacted) or None


class Request:
    """An incoming request as the fake's handlers see it."""

    def __init__(self, method: str, target: str, headers: dict, body: bytes):
        self.method = method.upper()
        parts = urlsplit(target)
        self.raw_path = parts.path
        self.path = unquote(parts.path)
        self.query_multi: dict[str, list[str]] = parse_qs(parts.query, keep_blank_values=True)
        self.headers = headers  # lower-cased
        self.body = body
        self._json: Any = _UNSET

    def q(self, name: str, default: Optional[str] = None) -> Optional[str]:
        values = self.query_multi.get(name)
        return values[0] if values else default

    def q_all(self, name: str) -> list[str]:
        return list(self.query_multi.get(name, []))

    @property
    def query(self) -> dict:
        return {k: (v[0] if len(v) == 1 else list(v)) for k, v in self.query_multi.items()}

    @property
    def bearer(self) -> Optional[str]:
        value = self.headers.get("authorization", "")
        if value[:7].lower() == "bearer ":
            token = value[7:].strip()
            return token or None
        return None

    def json(self) -> Any:
        """Parsed JSON body; raises ValueError on invalid JSON; None for an empty body."""
        if self._json is _UNSET:
            if not self.body.strip():
                self._json = None
            else:
                try:
                    value = json.loads(self.body.decode("utf-8"))
                except RecursionError:
                    raise ValueError("JSON nested too deeply") from None
                if _too_deep(value, MAX_JSON_DEPTH):
                    raise ValueError("JSON nested too deeply")
                self._json = value
        return self._json

    def json_or_none(self) -> Any:
        try:
            return self.json()
        except (ValueError, UnicodeDecodeError):
            return None


MAX_JSON_DEPTH = 64


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            if d > limit:
                return True
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            if d > limit:
                return True
            stack.extend((x, d + 1) for x in v)
    return False


class _Unset:
    pass


_UNSET = _Unset()


class Response:
    def __init__(
        self,
        status: int = 200,
        body: Union[bytes, str, None] = b"",
        headers: Optional[dict] = None,
        content_type: str = "application/json",
    ):
        self.status = status
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.body = body or b""
        self.headers = dict(headers or {})
        self.headers.setdefault("Content-Type", content_type)
        self.stream: Optional[list[bytes]] = None  # chunks written with small pauses (SSE)


def json_response(status: int, obj: Any, headers: Optional[dict] = None) -> Response:
    return Response(status, json.dumps(obj, separators=(",", ":")).encode(), headers)


class _Drop(Exception):
    """Close the connection without answering."""


def _redact_json(obj: Any, secret_path: bool, depth: int = 0) -> Any:
    if depth > 50:
        return obj
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            lk = str(k).lower()
            if lk in _SENSITIVE_BODY_KEYS or (secret_path and lk == "value"):
                out[k] = "<redacted>" if v not in (None, "") else v
            else:
                out[k] = _redact_json(v, secret_path, depth + 1)
        return out
    if isinstance(obj, list):
        return [_redact_json(v, secret_path, depth + 1) for v in obj]
    return obj


class FakeServer:
    """Base class: subclasses implement :meth:`handle` and :meth:`error_response`."""

    name = "fake"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []
        self.faults = FaultSet()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._conns: set = set()
        self._conns_lock = threading.Lock()
        self.port: int = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def localhost_url(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self) -> FakeServer:
        if self._httpd is not None:
            return self
        handler = _make_handler(self)

        class _Server(ThreadingHTTPServer):
            request_queue_size = 1024  # load tests open hundreds of connections at once

        httpd = _Server(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"{self.name}-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        with self._conns_lock:
            conns = list(self._conns)
            self._conns.clear()
        for sock in conns:  # wake handler threads blocked on idle keep-alive reads
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ assertions
    def calls(self, method: Optional[str] = None, path: Any = None) -> list[RecordedRequest]:
        """Recorded requests filtered by method and path (exact string, or a compiled regex)."""
        with self.lock:
            out = list(self.requests)
        if method:
            out = [r for r in out if r.method == method.upper()]
        if path is not None:
            if hasattr(path, "search"):
                out = [r for r in out if path.search(r.path)]
            else:
                out = [r for r in out if r.path == path]
        return out

    def clear_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    # ------------------------------------------------------------------ to override
    def handle(self, req: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    def error_response(self, status: int, message: str, kind: str = "") -> Response:
        return json_response(status, {"error": {"message": message, "code": status}})

    def is_secret_path(self, path: str) -> bool:
        return False

    # ------------------------------------------------------------------ plumbing
    def _record(self, req: Request) -> None:
        headers = {}
        for k, v in req.headers.items():
            if k in _SENSITIVE_HEADERS:
                parts = v.split(None, 1)
                token = parts[-1] if parts else ""
                scheme = parts[0] + " " if len(parts) == 2 else ""
                v = f"{scheme}<redacted {key_fingerprint(token)}>"
            headers[k] = v
        body = req.json_or_none()
        if body is not None:
            body = _redact_json(body, self.is_secret_path(req.path))
        with self.lock:
            self.requests.append(RecordedRequest(req.method, req.path, req.query, headers, body))

    def _apply_fault(self, req: Request) -> Optional[Response]:
        fault = self.faults.take(req.method, req.path)
        if fault is None:
            return None
        if fault.kind == "drop":
            raise _Drop()
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return None
        if fault.kind == "malformed":
            return Response(200, b'{"truncated": [1, 2, <html>not json', content_type="application/json")
        status = 429 if fault.kind == "429" else fault.status
        resp = self.error_response(status, f"injected fault {status}", kind="fault")
        if status == 429:
            resp.headers["Retry-After"] = str(max(0, math.ceil(fault.retry_after)))
            resp.headers["retry-after-ms"] = str(int(round(fault.retry_after * 1000)))
        return resp

    def _dispatch(self, req: Request) -> Response:
        try:
            self._record(req)
            resp = self._apply_fault(req)
            if resp is not None:
                return resp
            return self.handle(req)
        except _Drop:
            raise
        except Exception:  # a bug in the fake: answer 500 and keep the traceback
            tb = traceback.format_exc()
            with self.lock:
                self.errors.append(tb)
            return self.error_response(500, "fake server error (see fake.errors)", kind="bug")


def _make_handler(server: FakeServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"Fake{server.name.title()}/1.0"
        sys_version = ""
        timeout = 60  # idle keep-alive connections end by themselves

        def setup(self) -> None:
            super().setup()
            try:  # no Nagle/delayed-ACK stalls (~40 ms per keep-alive request otherwise)
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            with server._conns_lock:
                server._conns.add(self.connection)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                with server._conns_lock:
                    server._conns.discard(self.connection)

        def log_message(self, format: str, *args: Any) -> None:  # silence stderr
            pass

        def _read_body(self) -> bytes:
            te = (self.headers.get("Transfer-Encoding") or "").lower()
            if "chunked" in te:
                chunks, total = [], 0
                while True:
                    line = self.rfile.readline(65537)
                    if not line:
                        raise ValueError("truncated chunked body")
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while True:  # trailers
                            t = self.rfile.readline(65537)
                            if t in (b"\r\n", b"\n", b""):
                                break
                        break
                    total += size
                    if total > MAX_BODY:
                        raise OverflowError("body too large")
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline(3)
                return b"".join(chunks)
            length = self.headers.get("Content-Length")
            if not length:
                return b""
            n = int(length)
            if n < 0:
                raise ValueError("negative Content-Length")
            if n > MAX_BODY:
                raise OverflowError("body too large")
            return self.rfile.read(n)

        def _handle_any(self) -> None:
            try:
                body = self._read_body()
            except OverflowError:
                self._write(server.error_response(413, "request body too large", kind="http"))
                self.close_connection = True
                return
            except ValueError:
                self._write(server.error_response(400, "malformed request body framing", kind="http"))
                self.close_connection = True
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            req = Request(self.command, self.path, headers, body)
            try:
                resp = server._dispatch(req)
            except _Drop:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            self._write(resp, head_only=self.command == "HEAD")

        def _write(self, resp: Response, head_only: bool = False) -> None:
            try:
                self.send_response(resp.status)
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                if resp.stream is not None:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.send_header("Cache-Control", "no-cache")
                    self.end_headers()
                    for chunk in resp.stream:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()  # flushes the header block
                if not head_only and resp.body:
                    self.wfile.write(resp.body)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle_any

    return Handler
