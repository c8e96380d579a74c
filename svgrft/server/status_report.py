"""Reporting a rollout's outcome to the Fireworks tracing gateway, as Eval Protocol expects it.

Eval Protocol's ``RemoteRolloutProcessor`` learns that a rollout ended only from the tracing gateway: it
polls ``/v1/status`` and reads ``/logs`` for the entry tagged ``rollout_id:<id>`` whose ``status`` is
terminal. :class:`GatewayReporter` writes that entry (:func:`svgrft.server.wire.status_entry`: the body
eval-protocol's own log handler would send) through :class:`svgrft.clients.gatewaylog.GatewayLogSender`.

The POST is synchronous (httpx, 5 s per read, redirects never followed), so entries are sent on a
dedicated thread pool: parallel rollouts never wait on each other's log POST and connections are reused.
A total ``deadline`` bounds each report (a gateway that trickles bytes would hold the rollout forever;
the POST's thread is left to finish on its own). An entry is authenticated with the rollout's own API
key, never with a key that was not meant for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from svgrft.server.wire import GATEWAY_LOGGER, status_entry

__all__ = ["GatewayReporter", "GATEWAY_LOGGER"]

log = logging.getLogger("svgrft.server")


class GatewayReporter:
    """Sends terminal rollout logs to a tracing gateway; safe to call from many coroutines."""

    def __init__(self, threads: int = 32, deadline: float = 15.0, sender: Any = None):
        from svgrft.clients.gatewaylog import GatewayLogSender

        self.deadline = float(deadline)
        self._executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="svgrft-trace")
        self._sender = sender if sender is not None else GatewayLogSender(max_connections=max(1, threads))
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0
        self.timed_out = 0

    def _send_blocking(self, gateway: str, api_key: str, entry: dict) -> bool:
        ok = self._sender.send(gateway, api_key, entry)
        with self._lock:
            if ok:
                self.sent += 1
            else:
                self.failed += 1
        return ok

    async def report(
        self,
        *,
        gateway: str,
        api_key: str,
        rollout_id: str,
        code: int,
        message: str,
        extras: dict | None = None,
        experiment_id: str | None = None,
        run_id: str | None = None,
    ) -> bool:
        """POST one terminal log entry (status ``code``) for ``rollout_id``; False if the gateway refused."""
        entry = status_entry(
            rollout_id=rollout_id, code=code, message=message, extras=extras, experiment_id=experiment_id, run_id=run_id
        )
        loop = asyncio.get_running_loop()
        try:
            fut = loop.run_in_executor(self._executor, self._send_blocking, gateway, api_key, entry)
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
        if not self.timed_out:
            self._sender.close()
