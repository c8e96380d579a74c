"""Write entries to the tracing gateway's log endpoint: rollout records in the background (evaluator side),
and single status entries, each with its own key (the rollout server).

Both POST one JSON entry to ``{gateway}/logs``, falling back to ``/v1/logs`` on 404 as eval-protocol's own
log handler does (:func:`post_entry`), and never follow a redirect (issue #15: an allow-listed gateway that
answers 307 must not make us send a key elsewhere; a 3xx is a failure).

:class:`GatewayLogSender` (the rollout server's status reports): :meth:`GatewayLogSender.send` POSTs one
entry to any gateway with the key given for it, synchronously (call it from a worker thread), over one
pooled, thread-safe httpx client; True only for a 2xx answer; never raises for HTTP trouble.

:class:`LogRecorder` is what the packaged evaluator uses to record every rollout it scores
(:mod:`svgrft.core.records` says what a record holds and how it is tagged). Contract:

* :meth:`LogRecorder.submit` never blocks and never raises: it puts the entry on a bounded queue
  (full queue → the entry is dropped and counted);
* a few daemon threads ``POST {gateway}/logs`` (fallback ``/v1/logs`` on 404, as eval-protocol's
  own log handler) with ``Authorization: Bearer FIREWORKS_API_KEY``, a short timeout per request and
  one retry on 429/5xx/network errors; every failure is counted with its reason;
* :meth:`LogRecorder.close` waits for the queue at most ``flush_timeout`` seconds, then gives up
  (counted as "not sent before exit"); :meth:`LogRecorder.summary` is the one line the evaluator logs;
* the serialised body is scrubbed of every secret value given (``secrets``) before it is sent, so a
  record can never carry a key even if a model reply contained one.

Only the standard library and httpx (a pinned evaluator requirement) are imported.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterable
from typing import Any

from svgrft.core.plural import plural

__all__ = ["LogRecorder", "GatewayLogSender", "post_entry"]

_STOP = object()
_JSON = {"Content-Type": "application/json"}


def post_entry(
    http: Any, url: str, data: bytes, *, headers: dict[str, str] | None = None, path: str = "/logs"
) -> tuple[Any, str]:
    """POST serialised ``data`` to ``url + path`` with ``http`` (an ``httpx.Client``); a 404 at ``/logs`` is
    sent once more to ``/v1/logs``. Returns (the last response, the path that answered it); httpx errors
    propagate."""
    hdrs = {**_JSON, **(headers or {})}
    r = http.post(url + path, content=data, headers=hdrs)
    if r.status_code == 404 and path == "/logs":
        path = "/v1/logs"
        r = http.post(url + path, content=data, headers=hdrs)
    return r, path


class GatewayLogSender:
    """POSTs single log entries to any gateway, each with the key meant for it (see the module)."""

    def __init__(self, *, timeout: float = 5.0, max_connections: int = 64, user_agent: str = "svgrft-serve"):
        import httpx

        self._http = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            headers={"User-Agent": user_agent},
            limits=httpx.Limits(
                max_connections=max(1, max_connections), max_keepalive_connections=max(1, max_connections)
            ),
        )

    def send(self, gateway: str, api_key: str, entry: dict[str, Any]) -> bool:
        """POST ``entry`` to ``gateway``'s log endpoint with ``Authorization: Bearer api_key``; True on 2xx."""
        import httpx

        try:
            data = json.dumps(entry, allow_nan=False).encode("utf-8")
            r, _ = post_entry(self._http, gateway.rstrip("/"), data, headers={"Authorization": f"Bearer {api_key}"})
        except (httpx.HTTPError, ValueError, TypeError, RuntimeError):  # RuntimeError: closed while sending
            return False
        return 200 <= r.status_code < 300

    def close(self) -> None:
        self._http.close()


class LogRecorder:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        secrets: Iterable[str] = (),
        timeout: float = 5.0,
        workers: int = 2,
        max_queue: int = 10_000,
        flush_timeout: float = 30.0,
        retries: int = 1,
        backoff: float = 0.2,
        program: str = "svgrft",
    ):
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._secrets = sorted({s for s in [api_key, *secrets] if s and len(s) >= 6}, key=len, reverse=True)
        self.timeout = float(timeout)
        self.flush_timeout = float(flush_timeout)
        self.retries = max(0, int(retries))
        self.backoff = float(backoff)
        self.program = program
        self._q: queue.Queue = queue.Queue(maxsize=max(1, int(max_queue)))
        self._lock = threading.Lock()
        self.submitted = 0
        self.sent = 0
        self.failed: dict[str, int] = {}
        self._threads: list[threading.Thread] = []
        self._n_workers = max(1, int(workers))
        self._closed = False
        self._path = "/logs"
        self._http: Any = None

    # ------------------------------------------------------------------------------- public
    def submit(self, tags: list[str], message: str, record: dict[str, Any]) -> bool:
        """Queue one record; False (and counted) when it cannot be queued. Never raises, never blocks."""
        try:
            with self._lock:
                if self._closed:
                    self._count("recorder closed")
                    return False
                self.submitted += 1
                self._start()
            body = {
                "program": self.program,
                "status": None,
                "message": message,
                "tags": list(tags),
                "extras": {
                    "logger_name": "svgrft.records",
                    "level": "INFO",
                    "timestamp": time.time(),
                    "svgrft_record": record,
                },
            }
            self._q.put_nowait(body)
            return True
        except queue.Full:
            self._count("queue full")
        except Exception as e:  # never let recording fail a row
            self._count(f"submit: {type(e).__name__}")
        return False

    def close(self) -> None:
        """Send what is queued, waiting at most ``flush_timeout`` seconds in total; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            try:
                self._q.put(_STOP, timeout=0.1)
            except queue.Full:
                pass
        deadline = time.monotonic() + self.flush_timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        left = 0
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                left += 1
        if left or any(t.is_alive() for t in threads):
            self._count("not sent before exit", max(left, 1) if left else 0)
        if self._http is not None and not any(t.is_alive() for t in threads):
            try:
                self._http.close()
            except Exception:
                pass

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    def summary(self) -> str:
        """One line for the evaluator's log, e.g. ``recorded 12 of 12 rollouts``."""
        line = f"svgrft: recorded {self.sent} of {plural(self.submitted, 'rollout')} on {self.base_url}"
        if self.failed:
            line += " (not recorded: " + ", ".join(f"{n} {why}" for why, n in sorted(self.failed.items())) + ")"
        return line

    # ------------------------------------------------------------------------------- internals
    def _count(self, why: str, n: int = 1) -> None:
        if n:
            self.failed[why] = self.failed.get(why, 0) + n

    def _start(self) -> None:
        if self._threads:
            return
        import httpx

        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=self.timeout,
            headers={"Authorization": f"Bearer {self._key}", "User-Agent": "svgrft-evaluator"},
        )
        for i in range(self._n_workers):
            t = threading.Thread(target=self._work, name=f"svgrft-records-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def _scrub(self, data: bytes) -> bytes:
        text = data.decode("utf-8")
        for s in self._secrets:
            if s in text:
                text = text.replace(s, "[redacted]")
        return text.encode("utf-8")

    def _work(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            try:
                why = self._send(item)
            except Exception as e:  # pragma: no cover - defensive
                why = f"error: {type(e).__name__}"
            with self._lock:
                if why is None:
                    self.sent += 1
                else:
                    self._count(why)

    def _send(self, body: dict) -> str | None:
        """POST one entry; None when sent, else why not."""
        import httpx

        data = self._scrub(json.dumps(body, ensure_ascii=False, allow_nan=False, default=str).encode("utf-8"))
        why = "unknown"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * attempt)
            try:
                r, self._path = post_entry(self._http, "", data, path=self._path)  # /v1/logs after a 404
            except httpx.TimeoutException:
                why = "timeout"
                continue
            except httpx.HTTPError as e:
                why = f"network: {type(e).__name__}"
                continue
            if 200 <= r.status_code < 300:
                return None
            why = f"HTTP {r.status_code}"
            if r.status_code not in (408, 429, 500, 502, 503, 504):
                return why
        return why
