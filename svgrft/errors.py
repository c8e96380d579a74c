"""The one exception family of svgrft.

Expected failures raise a subclass of :class:`SvgrftError`; the CLI prints
``Error: <message>`` and ``hint: <hint>`` on stderr and exits with ``exit_code``.
Anything else is a bug and gets a traceback.
"""

from __future__ import annotations


class SvgrftError(Exception):
    """An expected failure with a one-line message and an optional hint."""

    exit_code = 1
    default_hint: str | None = None

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return self.message


class ConfigError(SvgrftError):
    """Invalid or missing configuration (flag, env var, config file)."""


class UsageError(SvgrftError):
    """Bad command-line usage that Typer could not catch itself."""

    exit_code = 2


class NotBuiltError(SvgrftError):
    """A command group that is registered but not implemented yet."""


class ApiError(SvgrftError):
    """A remote API (Fireworks, judge, tracing gateway) failed or refused."""

    def __init__(self, message: str, hint: str | None = None, status: int | None = None):
        super().__init__(message, hint)
        self.status = status


class AuthError(ApiError):
    """The API key was missing, invalid or not allowed."""


class NotFoundError(ApiError):
    """A remote resource does not exist."""


class ConflictError(ApiError):
    """A remote resource already exists."""


class NetworkError(ApiError):
    """The endpoint could not be reached."""


class DatasetError(SvgrftError):
    """A dataset file is invalid."""


class RenderError(SvgrftError):
    """Rendering infrastructure failed (e.g. no browser). Bad SVG is not an error: it is a typed result."""


class BrowserNotFoundError(RenderError):
    """No usable headless Chromium was found."""


class JudgeError(ApiError):
    """The vision judge failed in a way that is not a per-sample invalid score."""


class StoreError(SvgrftError):
    """The local SQLite store failed or a run id is unknown."""
