"""The one poll loop (svgrft.clients.poll) and the one test of transient-ness (by error type)."""

from __future__ import annotations

import pytest

from svgrft.clients.fireworks_errors import TransientApiError, is_transient
from svgrft.clients.poll import MAX_POLL_ERRORS, poll
from svgrft.errors import ApiError, AuthError, NetworkError, NotFoundError


def script(*steps):
    """A fetch that plays ``steps`` in order: an exception is raised, anything else returned; records the calls."""
    calls = []

    def fetch():
        step = steps[len(calls)]
        calls.append(step)
        if isinstance(step, BaseException):
            raise step
        return step

    return fetch, calls


def flaky(n: int) -> list:
    return [TransientApiError(f"503 #{i}", status=503) for i in range(n)]


def test_transient_is_decided_by_type_not_by_status():
    assert is_transient(TransientApiError("x", status=429)) and is_transient(NetworkError("down"))
    assert not is_transient(ApiError("x", status=503))  # a status code alone decides nothing
    assert not is_transient(NotFoundError("gone", status=404)) and not is_transient(AuthError("no", status=401))


def test_transient_errors_up_to_the_budget_are_polled_through():
    fetch, calls = script(*flaky(MAX_POLL_ERRORS), "READY")
    heard = []
    assert poll(fetch, done=lambda v: v == "READY", interval=0, on_error=heard.append) == "READY"
    assert len(calls) == MAX_POLL_ERRORS + 1 and len(heard) == MAX_POLL_ERRORS


def test_one_more_transient_error_than_the_budget_is_raised():
    errors = flaky(MAX_POLL_ERRORS + 1)
    fetch, calls = script(*errors, "READY")
    with pytest.raises(TransientApiError) as e:
        poll(fetch, done=lambda v: v == "READY", interval=0)
    assert e.value is errors[-1] and len(calls) == MAX_POLL_ERRORS + 1


def test_a_success_resets_the_budget():
    fetch, calls = script(*flaky(MAX_POLL_ERRORS), "BUILDING", *flaky(MAX_POLL_ERRORS), "ACTIVE")
    seen = []
    assert poll(fetch, done=lambda v: v == "ACTIVE", interval=0, on_value=seen.append) == "ACTIVE"
    assert seen == ["BUILDING", "ACTIVE"] and len(calls) == 2 * MAX_POLL_ERRORS + 2


@pytest.mark.parametrize(
    "error",
    [
        ApiError("bad request", status=400),
        NotFoundError("gone", status=404),
        AuthError("bad key", status=401),
        ApiError("no status"),
    ],
)
def test_other_errors_end_the_poll_at_once(error):
    fetch, calls = script(error, "READY")
    with pytest.raises(type(error)):
        poll(fetch, done=lambda v: v == "READY", interval=0)
    assert len(calls) == 1


def test_on_value_raising_ends_the_poll_as_failed():
    def check(v):
        if v == "BUILD_FAILED":
            raise ApiError("build failed")

    fetch, calls = script("BUILDING", "BUILD_FAILED", "ACTIVE")
    with pytest.raises(ApiError, match="build failed"):
        poll(fetch, done=lambda v: v == "ACTIVE", interval=0, on_value=check)
    assert calls == ["BUILDING", "BUILD_FAILED"]


def test_out_of_time_hands_the_last_value_to_on_timeout():
    fetch, calls = script("RUNNING", "RUNNING")
    got = poll(fetch, done=lambda v: v == "DONE", interval=0, timeout=0, on_timeout=lambda last: f"last={last}")
    assert got == "last=RUNNING" and len(calls) == 1
    fetch, _ = script(NetworkError("down"), "RUNNING")
    assert poll(fetch, done=lambda v: v == "DONE", interval=0, timeout=0, on_timeout=lambda last: last) is None


def test_a_single_read_survives_a_passing_failure():
    fetch, calls = script(NetworkError("reset"), None)  # e.g. a lookup answering "does not exist"
    assert poll(fetch, done=lambda _v: True, interval=0) is None and len(calls) == 2
