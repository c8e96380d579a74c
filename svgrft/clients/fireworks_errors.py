"""Fireworks SDK exceptions → svgrft errors: the one mapping, and the one answer to "worth trying again?".

:func:`api_errors` wraps every SDK call of :class:`~svgrft.clients.fireworks.FireworksClient`. A failure
that may pass on its own (408, 429, 5xx, a malformed answer, left after the SDK's own retries) is raised as
:class:`TransientApiError`; the endpoint not answering at all is a :class:`~svgrft.errors.NetworkError`.
:func:`is_transient` decides by type alone, for every poll and retry (:mod:`svgrft.clients.poll`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from svgrft.errors import ApiError, AuthError, ConflictError, NetworkError, NotFoundError

KEY_HINT = "check FIREWORKS_API_KEY (in the environment or .env); `svgrft doctor` shows which key is used"


class TransientApiError(ApiError):
    """The API failed in a way that may pass: trying again after a pause is worth it."""


class NoDatasetFileError(ApiError):
    """A dataset exists but has no file to download."""


def is_transient(e: BaseException) -> bool:
    """True for failures worth polling or retrying after: :class:`TransientApiError` and network errors."""
    return isinstance(e, (TransientApiError, NetworkError))


@contextlib.contextmanager
def api_errors(what: str, base_url: str = "") -> Iterator[None]:
    """Translate Fireworks SDK exceptions raised while doing ``what`` into svgrft errors (with hints)."""
    import json

    import fireworks

    try:
        yield
    except (json.JSONDecodeError, fireworks.APIResponseValidationError) as e:
        raise TransientApiError(
            f"Fireworks sent a malformed response{_at(base_url)} while {what}",
            hint="run the same command again; if it persists, check FIREWORKS_BASE_URL",
            status=502,
        ) from e
    except fireworks.AuthenticationError as e:
        raise AuthError(f"Fireworks rejected the API key (401) while {what}", hint=KEY_HINT, status=401) from e
    except fireworks.PermissionDeniedError as e:
        raise AuthError(
            f"permission denied (403) while {what}: {_msg(e)}",
            hint="the key may belong to another account: check FIREWORKS_ACCOUNT_ID and FIREWORKS_API_KEY",
            status=403,
        ) from e
    except fireworks.NotFoundError as e:
        raise NotFoundError(
            f"not found (404) while {what}: {_msg(e)}",
            hint="check the id/name and the account (FIREWORKS_ACCOUNT_ID)",
            status=404,
        ) from e
    except fireworks.ConflictError as e:
        raise ConflictError(
            f"already exists (409) while {what}: {_msg(e)}",
            hint="choose another id, or reuse the existing resource",
            status=409,
        ) from e
    except fireworks.RateLimitError as e:
        raise TransientApiError(
            f"rate limited by Fireworks (429) while {what}, after retries",
            hint="wait a minute and run the same command again; finished steps are reused",
            status=429,
        ) from e
    except fireworks.BadRequestError as e:
        raise ApiError(
            f"Fireworks refused the request (400) while {what}: {_msg(e)}",
            hint="check the values named in the message",
            status=400,
        ) from e
    except fireworks.InternalServerError as e:
        raise TransientApiError(
            f"Fireworks server error ({e.status_code}) while {what}, after retries",
            hint="the service may be degraded; run the same command again later",
            status=e.status_code,
        ) from e
    except fireworks.APITimeoutError as e:
        raise NetworkError(
            f"timed out talking to Fireworks{_at(base_url)} while {what}",
            hint="check your network or FIREWORKS_BASE_URL; run the command again",
        ) from e
    except fireworks.APIConnectionError as e:
        raise NetworkError(
            f"cannot reach Fireworks{_at(base_url)} while {what}",
            hint="check your network connection or FIREWORKS_BASE_URL",
        ) from e
    except fireworks.APIStatusError as e:
        cls = TransientApiError if e.status_code == 408 or e.status_code >= 500 else ApiError
        raise cls(
            f"Fireworks answered {e.status_code} while {what}: {_msg(e)}",
            hint="run the same command again; if it persists, check status.fireworks.ai",
            status=e.status_code,
        ) from e


def _at(base_url: str) -> str:
    return f" at {base_url}" if base_url else ""


def _msg(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(getattr(e, "message", e))[:300]
