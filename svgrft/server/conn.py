"""Connection guard of the rollout server: the HTTP/1.1 protocol uvicorn runs, with limits uvicorn lacks.

uvicorn's ``limit_concurrency`` counts idle sockets and applies before the app, so a few hundred TCP
connections that never send a byte made every request answer 503, token or not; uvicorn has no timeout for a
request's headers either. :class:`GuardedH11Protocol` (uvicorn's h11 protocol plus):

* a **header deadline**: a connection must deliver a request's complete headers within ``header_timeout``
  seconds of connecting (or of the previous answer on a keep-alive connection), else it is closed;
* a **per-client cap** (``max_per_client`` connections per peer address) and a **total cap**
  (``max_connections``): a new connection over a cap evicts the oldest *idle* connection (no request in
  progress) of that client, or of anyone for the total cap; only when every one of them is busy is the new
  connection refused (``503``, closed). Idle sockets can therefore never lock a valid request out;
* the body deadline is the app's (``read_timeout`` in :mod:`svgrft.server.app`); keep-alive idling is
  uvicorn's ``timeout_keep_alive``.

The peer address here is the TCP peer (never a forwarded header). Standard library + uvicorn only.
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("svgrft.server")

_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 37\r\n"
    b"connection: close\r\nretry-after: 1\r\n\r\ntoo many connections from this client\n"
)


class _Table:
    """The connections of one server (one uvicorn ``ServerState``), in arrival order."""

    def __init__(self) -> None:
        self.all: dict[Any, None] = {}
        self.by_client: dict[str, dict[Any, None]] = {}
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0

    def add(self, conn: GuardedH11Protocol, per_client: int, total: int) -> bool:
        """Register ``conn``; evict idle connections to make room. False when it must be refused."""
        mine = self.by_client.setdefault(conn.peer, {})
        if per_client and len(mine) >= per_client and not self._evict(mine):
            return False
        if total and len(self.all) >= total and not self._evict(self.all):
            return False
        mine[conn] = None
        self.all[conn] = None
        return True

    def _evict(self, conns: dict[Any, None]) -> bool:
        for victim in conns:  # oldest first
            if victim.idle():
                self.remove(victim)
                victim.close_quietly()
                self.evicted += 1
                return True
        return False

    def remove(self, conn: GuardedH11Protocol) -> None:
        self.all.pop(conn, None)
        mine = self.by_client.get(conn.peer)
        if mine is not None:
            mine.pop(conn, None)
            if not mine:
                del self.by_client[conn.peer]


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and per-client / total connection caps (see module)."""

    header_timeout: float = 15.0
    max_per_client: int = 320  # 0 = no cap
    max_connections: int = 4096  # 0 = no cap

    @classmethod
    def configured(cls, *, header_timeout: float, max_per_client: int, max_connections: int) -> type:
        """A subclass with these limits (one per server: the limits are class attributes)."""
        return type(
            cls.__name__,
            (cls,),
            {
                "header_timeout": float(header_timeout),
                "max_per_client": int(max_per_client),
                "max_connections": int(max_connections),
            },
        )

    @classmethod
    def configure(cls, *, header_timeout: float, max_per_client: int, max_connections: int) -> None:
        """Set the limits of this class in place (worker processes import it by name)."""
        cls.header_timeout = float(header_timeout)
        cls.max_per_client = int(max_per_client)
        cls.max_connections = int(max_connections)

    # -- state
    def _table(self) -> _Table:
        table = getattr(self.server_state, "_svgrft_connections", None)
        if table is None:
            table = _Table()
            self.server_state._svgrft_connections = table  # type: ignore[attr-defined]
        return table

    def idle(self) -> bool:
        """No request in progress (waiting for headers, or between keep-alive requests)."""
        return self.cycle is None or self.cycle.response_complete

    def close_quietly(self) -> None:
        self._cancel_header_timer()
        if not self.transport.is_closing():
            self.transport.close()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        if self.header_timeout > 0:
            self._header_timer = self.loop.call_later(self.header_timeout, self._header_deadline)

    def _cancel_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self.idle() and not self.transport.is_closing():
            self._table().timed_out += 1
            self.transport.close()

    # -- protocol
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.peer = self.client[0] if self.client else "?"
        self._header_timer = None
        if not self._table().add(self, self.max_per_client, self.max_connections):
            self._table().refused += 1
            self.connections.discard(self)
            transport.write(_REFUSED)
            transport.close()
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        self._table().remove(self)
        super().connection_lost(exc)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before and self.cycle is not None:  # a request's headers are complete
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        # armed first: a pipelined request handled inside super() cancels it again
        if not self.transport.is_closing():
            self._arm_header_timer()
        super().on_response_complete()


def connection_stats(server_state: Any) -> dict[str, int]:
    """Counters of a server's connection guard (for tests and logs)."""
    table = getattr(server_state, "_svgrft_connections", None)
    if table is None:
        return {"open": 0, "evicted": 0, "refused": 0, "timed_out": 0}
    return {"open": len(table.all), "evicted": table.evicted, "refused": table.refused, "timed_out": table.timed_out}


def auto_limits(max_concurrent: int, max_per_client: int = 0) -> tuple[int, int]:
    """``(per client, total)`` connection caps: a client may hold every allowed rollout plus 64 idle
    connections; the total stays below the process's open-file limit (outbound connections included)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft == resource.RLIM_INFINITY:
            soft = 65536
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        soft = 1024
    total = max(64, min(16384, soft - 2 * (max_concurrent or 256) - 64))
    per_client = max_per_client or ((max_concurrent + 64) if max_concurrent else 1024)
    return min(per_client, total), total


def raise_open_file_limit() -> None:
    """Raise the soft open-file limit to the hard one (at most 65536): sockets are files."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard if hard != resource.RLIM_INFINITY else 65536
        target = min(target, 65536)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ImportError, OSError, ValueError):  # pragma: no cover
        pass
