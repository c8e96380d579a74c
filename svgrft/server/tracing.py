"""Reporting a rollout's outcome to the Fireworks tracing gateway with Eval Protocol's helpers.

Eval Protocol's ``RemoteRolloutProcessor`` learns that a rollout ended only from the tracing
gateway: it polls ``/v1/status`` and reads ``/logs`` for the entry tagged ``rollout_id:<id>`` whose
``status`` is terminal. This module writes that entry: a ``logging.LogRecord`` tagged by
``RolloutIdFilter`` and carrying ``Status.rollout_finished()`` or the matching error status,
emitted through ``FireworksTracingHttpHandler`` (which POSTs ``{program, status, message, tags,
extras}`` to ``<gateway>/logs``).

The handler is synchronous (``requests``, 5 s timeout, one lock per handler), so records are
emitted on a dedicated thread pool, and handlers are pooled per (gateway, API key): parallel
rollouts never wait on each other's log POST and connections are reused. The handler
authenticates with the rollout's own API key, never with a key that was not meant for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger("svgrft.server")

GATEWAY_LOGGER = "svgrft.server.rollout"


def status_for(code: int, message: str, extra_info: dict | None = None):
    """An eval_protocol ``Status`` for a gRPC/EP code (100 = finished)."""
    from eval_protocol.models import Status

    if code == 100:
        return Status.rollout_finished(extra_info=extra_info or None)
    makers = {
        3: Status.rollout_invalid_argument_error,
        4: Status.rollout_deadline_exceeded_error,
        5: Status.rollout_not_found_error,
        7: Status.rollout_permission_denied_error,
        8: Status.rollout_resource_exhausted_error,
        13: Status.rollout_internal_error,
        14: Status.rollout_unavailable_error,
        16: Status.rollout_unauthenticated_error,
    }
    maker = makers.get(code, Status.rollout_internal_error)
    return maker(message, extra_info=extra_info or None)


class GatewayReporter:
    """Sends terminal rollout logs to a tracing gateway; safe to call from many coroutines."""

    def __init__(self, threads: int = 32, max_idle_per_key: int = 16, max_keys: int = 16, deadline: float = 15.0):
        # eval-protocol's handler only has a per-read timeout: a gateway that trickles bytes would hold the
        # rollout forever. The deadline bounds the wait (the POST's thread is left to finish on its own).
        self.deadline = float(deadline)
        self._executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="svgrft-trace")
        self._idle: "OrderedDict[tuple[str, str], list[Any]]" = OrderedDict()
        self._lock = threading.Lock()
        self._max_idle = max_idle_per_key
        self._max_keys = max_keys
        self.sent = 0
        self.failed = 0
        self.timed_out = 0
        self._logger = logging.getLogger(GATEWAY_LOGGER)

    # ---------------------------------------------------------------- handler pool
    def _checkout(self, gateway: str, api_key: str):
        from eval_protocol.log_utils.fireworks_tracing_http_handler import FireworksTracingHttpHandler

        pool_key = (gateway, hashlib.sha256(api_key.encode()).hexdigest())
        with self._lock:
            idle = self._idle.get(pool_key)
            if idle:
                self._idle.move_to_end(pool_key)
                return pool_key, idle.pop()
        handler = FireworksTracingHttpHandler(gateway_base_url=gateway)
        # The handler picks FIREWORKS_API_KEY from the environment; a rollout is logged with its own key.
        handler._session.headers["Authorization"] = f"Bearer {api_key}"
        # requests follows a 307 with the same POST: an allow-listed gateway could point the server at any
        # address (a blind internal request). Zero redirects: the first 3xx fails the report instead.
        handler._session.max_redirects = 0
        return pool_key, handler

    def _checkin(self, pool_key, handler) -> None:
        evicted = []
        with self._lock:
            idle = self._idle.setdefault(pool_key, [])
            self._idle.move_to_end(pool_key)
            if len(idle) < self._max_idle:
                idle.append(handler)
            else:
                evicted.append(handler)
            while len(self._idle) > self._max_keys:
                _, old = self._idle.popitem(last=False)
                evicted.extend(old)
        for h in evicted:
            h.close()
            h._session.close()

    # ---------------------------------------------------------------- emitting
    def _emit_blocking(self, gateway: str, api_key: str, record: logging.LogRecord) -> bool:
        pool_key, handler = self._checkout(gateway, api_key)
        ok = False
        try:
            ok = self._post(handler, record)
        finally:
            self._checkin(pool_key, handler)
        with self._lock:
            if ok:
                self.sent += 1
            else:
                self.failed += 1
        return ok

    @staticmethod
    def _post(handler, record: logging.LogRecord) -> bool:
        """Emit through the handler and tell whether the gateway accepted it."""
        failed: list[bool] = []
        original = handler.handleError
        handler.handleError = lambda rec: failed.append(True)  # never a traceback per failed POST
        session = handler._session
        statuses: list[int] = []
        hook = lambda r, *a, **k: statuses.append(r.status_code)  # noqa: E731
        session.hooks["response"].append(hook)
        try:
            handler.handle(record)
        finally:
            session.hooks["response"].remove(hook)
            handler.handleError = original
        return not failed and bool(statuses) and statuses[-1] < 400

    def make_record(self, *, rollout_id: str, level: int, message: str, status: Any,
                    extras: dict | None = None, experiment_id: str | None = None,
                    run_id: str | None = None) -> logging.LogRecord:
        from eval_protocol.log_utils.rollout_id_filter import RolloutIdFilter

        record = self._logger.makeRecord(GATEWAY_LOGGER, level, __file__, 0, message, (), None,
                                         extra={"status": status, "extras": dict(extras or {}),
                                                "experiment_id": experiment_id, "run_id": run_id})
        RolloutIdFilter(rollout_id).filter(record)  # tags the record rollout_id:<id>
        return record

    async def report(self, *, gateway: str, api_key: str, rollout_id: str, code: int, message: str,
                     extras: dict | None = None, experiment_id: str | None = None,
                     run_id: str | None = None) -> bool:
        """POST one terminal log entry (status ``code``) for ``rollout_id``; False if the gateway refused."""
        status = status_for(code, message)
        level = logging.INFO if code == 100 else logging.ERROR
        record = self.make_record(rollout_id=rollout_id, level=level, message=message, status=status,
                                  extras=extras, experiment_id=experiment_id, run_id=run_id)
        loop = asyncio.get_running_loop()
        try:
            fut = loop.run_in_executor(self._executor, self._emit_blocking, gateway, api_key, record)
            return await asyncio.wait_for(fut, timeout=self.deadline)
        except asyncio.TimeoutError:
            with self._lock:
                self.failed += 1
                self.timed_out += 1
            return False
        except RuntimeError:  # executor already shut down (server stopping)
            return False

    def close(self) -> None:
        # a POST stuck on a trickling gateway must not hold the server's shutdown
        self._executor.shutdown(wait=not self.timed_out)
        with self._lock:
            pools = list(self._idle.values())
            self._idle.clear()
        for idle in pools:
            for h in idle:
                h.close()
                h._session.close()
