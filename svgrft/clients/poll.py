"""The one poll loop: read a resource until it is done, failed or out of time, with one error budget.

Used for every Fireworks resource svgrft waits on (datasets, evaluators, jobs, deployments, LoRA loads)
and for a single read that should survive a passing failure (``done=lambda _v: True``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from svgrft.clients.fireworks_errors import is_transient
from svgrft.errors import ApiError

T = TypeVar("T")

# Transient failures (svgrft.clients.fireworks_errors.is_transient) tolerated in a row; the next one is raised.
MAX_POLL_ERRORS = 5


def poll(
    fetch: Callable[[], T],
    *,
    done: Callable[[T], bool],
    interval: float,
    timeout: float | None = None,
    on_value: Callable[[T], None] | None = None,
    on_error: Callable[[ApiError], None] | None = None,
    on_timeout: Callable[[T | None], T] | None = None,
    budget: int = MAX_POLL_ERRORS,
) -> T | None:
    """Call ``fetch()`` every ``interval`` seconds until ``done(value)``; returns that value.

    ``on_value(value)`` sees every value read (it raises to end the poll as failed). A transient error is
    told to ``on_error`` and polled again, up to ``budget`` in a row (a success resets the count); any
    other error propagates at once. After ``timeout`` seconds (None = never) the result is
    ``on_timeout(last value or None)``, which usually raises; without ``on_timeout`` it is the last value
    read (None when none was).
    """
    start = time.monotonic()
    errors = 0
    last: T | None = None
    while True:
        try:
            value = fetch()
        except ApiError as e:
            if not is_transient(e) or errors >= budget:
                raise
            errors += 1
            if on_error is not None:
                on_error(e)
        else:
            errors = 0
            last = value
            if on_value is not None:
                on_value(value)
            if done(value):
                return value
        if timeout is not None and time.monotonic() - start >= timeout:
            if on_timeout is not None:
                return on_timeout(last)
            return last
        time.sleep(interval)
