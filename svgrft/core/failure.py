"""How a call to a remote model (the judge, the policy) failed, as a type.

:class:`FailureKind` is a ``StrEnum``: its members compare equal to (and format as) the short names
that records, reports and error bodies have always carried (``"auth"``, ``"timeout"``, …).
``kind.fatal`` says whether every later request would fail the same way (bad key, unknown model, a
request the endpoint always refuses): a run should then stop instead of recording the failure per
sample.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["FailureKind"]


class FailureKind(StrEnum):
    INVALID_REPLY = "invalid_reply"  # the judge answered, but not usably (after a repair request)
    AUTH = "auth"  # 401/403
    NOT_FOUND = "not_found"  # 404: model or endpoint
    BAD_REQUEST = "bad_request"  # 400/422
    CONFIG = "config"  # our own configuration makes the request impossible
    RATE_LIMIT = "rate_limit"  # 429 after retries
    SERVER = "server"  # 5xx after retries
    HTTP = "http"  # any other HTTP error status
    TIMEOUT = "timeout"
    NETWORK = "network"  # unreachable, connection dropped
    MALFORMED = "malformed"  # a 2xx body that is not a chat completion
    ERROR = "error"  # anything else

    @property
    def fatal(self) -> bool:
        """Every later request will fail the same way."""
        return self in _FATAL

    @classmethod
    def parse(cls, value: object) -> FailureKind | None:
        """The member named ``value`` (a member or its string), else None."""
        try:
            return cls(value)
        except ValueError:
            return None


_FATAL = frozenset({FailureKind.AUTH, FailureKind.NOT_FOUND, FailureKind.BAD_REQUEST, FailureKind.CONFIG})
