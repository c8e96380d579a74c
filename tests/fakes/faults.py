"""Per-route fault injection shared by every fake server.

Usage::

    fake.faults.add(method="POST", path=r"/secrets$", kind="429", times=2, retry_after=0.01)
    fake.faults.add(path=r"chat/completions", kind="drop")            # one dropped connection
    fake.faults.add(kind="slow", delay=0.5, times=None)                # every request, forever

Kinds
    ``"429"``        429 with ``Retry-After`` (whole seconds, rounded up, as the HTTP spec wants) and
                     ``retry-after-ms`` (exact) headers, server-flavoured error body.
    ``"500"``, ``"503"`` (any 3-digit status)
                     that status with a server-flavoured error body (google.rpc Status for Fireworks,
                     ``{"error": {...}}`` for OpenAI).
    ``"drop"``       the connection is closed without any response bytes.
    ``"slow"``       sleep ``delay`` seconds, then answer normally.
    ``"malformed"``  200 with ``Content-Type: application/json`` and a body that is not JSON.

Faults are matched (first added first) before any normal handling, including auth, and every
request that hit one is still in ``fake.requests``; ``fake.faults.log`` lists
``(method, path, kind)`` of each fault served.  ``times`` counts down; ``times=None`` never
expires.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Optional

KINDS = ("429", "drop", "slow", "malformed")


@dataclass
class Fault:
    method: Optional[str]
    path: re.Pattern[str]
    kind: str
    times: Optional[int] = 1
    retry_after: float = 1.0
    delay: float = 2.0
    hits: int = 0
    status: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method is not None and self.method != method.upper():
            return False
        return self.path.search(path) is not None


@dataclass
class FaultSet:
    _faults: list = field(default_factory=list)
    log: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(
        self,
        method: Optional[str] = None,
        path: str = r".*",
        kind: str = "500",
        times: Optional[int] = 1,
        retry_after: float = 1.0,
        delay: float = 2.0,
    ) -> Fault:
        kind = str(kind).lower()
        status = 0
        if kind.isdigit() and len(kind) == 3:
            status = int(kind)
        elif kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use a 3-digit status or one of {KINDS}")
        if times is not None and times < 0:
            raise ValueError("times must be >= 0 or None")
        fault = Fault(
            method=method.upper() if method else None,
            path=re.compile(path),
            kind=kind,
            times=times,
            retry_after=float(retry_after),
            delay=float(delay),
            status=status,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Optional[Fault]:
        """Return (and count down) the first fault matching this request, or None."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                    fault.hits += 1
                    self.log.append((method.upper(), path, fault.kind))
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending(self) -> list:
        """Faults that can still fire."""
        with self._lock:
            return [f for f in self._faults if f.times is None or f.times > 0]
