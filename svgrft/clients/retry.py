"""Retry-After parsing: the one reading of a server's "wait this long" answer for every client.

``retry_after_seconds(headers, cap)`` understands ``retry-after-ms`` (OpenAI-style), ``Retry-After`` in
seconds and ``Retry-After`` as an HTTP date; it returns ``None`` when absent or unusable, never a negative
number, and never more than ``cap``.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

DEFAULT_CAP = 120.0


def retry_after_seconds(headers: Any, cap: float = DEFAULT_CAP) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), if present."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            v = float(ms) / 1000.0
            if v >= 0:
                return min(v, cap)
    except (TypeError, ValueError):
        pass
    raw = None
    try:
        raw = headers.get("retry-after")
    except (AttributeError, TypeError):
        return None
    if raw is None:
        return None
    try:
        v = float(raw)
        return min(max(v, 0.0), cap) if v == v else None
    except (TypeError, ValueError):
        pass
    try:
        dt = email.utils.parsedate_to_datetime(str(raw))
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    return min(max(dt.timestamp() - time.time(), 0.0), cap)
