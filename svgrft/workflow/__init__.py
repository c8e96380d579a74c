"""Multi-step flows (dataset upload, jobs, train) built on clients and core."""

from __future__ import annotations

from svgrft.errors import ApiError, NetworkError

# Polls of a Fireworks resource (dataset, evaluator, job) tolerate this many transient failures in a row.
MAX_POLL_ERRORS = 5


def is_transient(e: Exception) -> bool:
    """A failure worth polling again after: network errors, 408, 429 and 5xx (left after the SDK's own retries)."""
    if isinstance(e, NetworkError):
        return True
    return isinstance(e, ApiError) and e.status is not None and (e.status in (408, 429) or e.status >= 500)
