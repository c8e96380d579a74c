"""One GET to see whether an endpoint answers (``svgrft doctor``), over httpx; never raises for network errors."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Reach:
    """What one GET found: the HTTP status, or the name of the network error (then ``status`` is None)."""

    status: int | None
    error: str | None
    ms: float


def reach(url: str, key: str | None, timeout: float) -> Reach:
    """GET ``url`` with the key as a bearer token (when given); no redirects are followed."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    t0 = time.perf_counter()
    try:
        r = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as e:
        return Reach(None, type(e).__name__, (time.perf_counter() - t0) * 1000)
    return Reach(r.status_code, None, (time.perf_counter() - t0) * 1000)
