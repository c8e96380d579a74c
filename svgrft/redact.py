"""Masking of API keys (redaction). Every place that may show a key goes through here."""

from __future__ import annotations

import re

_KNOWN: set[str] = set()  # registered secret values (svgrft.config.register_secrets registers the env's keys)


def mask(value: str | None) -> str:
    """A display form that never reveals a usable part of the key."""
    if not value:
        return "(not set)"
    if len(value) < 12:
        return "****"
    return f"{value[:3]}…{value[-4:]}"


def register(value: str | None) -> None:
    if value and len(value) >= 6:
        _KNOWN.add(value)


def _redact_known(text: str) -> str:
    """Replace every known secret value (and bearer tokens) in ``text`` with its mask."""
    for value in sorted(_KNOWN, key=len, reverse=True):
        if value in text:
            text = text.replace(value, mask(value))
    return re.sub(r"(?i)(bearer\s+)([A-Za-z0-9+/=._~\-]{8,})", lambda m: m.group(1) + mask(m.group(2)), text)


# ---------------------------------------------------------------- credentials inside URLs and tracebacks

# query parameters that carry a credential (api-key=, access_token=, sig=, …); api-version= and the like do not
_SECRET_WORD = r"(?:key|token|secret|password|passwd|pwd|sig|signature|auth|credentials?)"
_SECRET_PARAM = re.compile(r"(?i)^(?:[a-z0-9_.\-]*[-_.])?" + _SECRET_WORD + "$")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/\s?#@'\"<>]*@)")
_QUERY_SECRET = re.compile(r"(?i)([?&;](?:[a-z0-9_.\-]*[-_.])?" + _SECRET_WORD + r"=)([^&#\s'\"<>]+)")
# an echoed header: "Authorization: Basic …", 'api-key': '…', x-api-key=…
_HEADER_SECRET = re.compile(
    r"(?i)((?:x-api-key|api-key|apikey|authorization)[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?:bearer|basic|token)\s+)?)(?!\*\*\*)([^\s\"',}&;…]{8,})"
)


def url_credentials(url: str | None) -> str | None:
    """What credentials a URL carries (``"user-info"``, ``"query parameter 'api-key'"``), or None."""
    if not url or not isinstance(url, str):
        return None
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "an unparsable URL" if "@" in url else None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "user-info (user:password@)"
    for name, _value in parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_PARAM.match(name):
            return f"query parameter {name!r}"
    return None


def redact_url(url: str) -> str:
    """``url`` without user-info and with credential query parameters masked (``***``)."""
    return redact(url)


def redact(text: str) -> str:
    """Replace every known secret value (and bearer/basic tokens, credentials in URLs and in echoed
    ``Authorization``/``api-key`` headers) in ``text`` with a mask."""
    text = _redact_known(text)
    if "://" in text and "@" in text:
        text = _URL_USERINFO.sub(lambda m: m.group(1) + "***@", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: m.group(1) + "***", text)
    return _HEADER_SECRET.sub(lambda m: m.group(1) + mask(m.group(2)), text)


def format_exception(exc: BaseException | None = None) -> str:
    """The current (or given) exception's traceback, redacted: exception messages and the reprs of
    upstream errors may echo keys (an error body that repeats the Authorization header, a URL with
    credentials)."""
    import traceback

    if exc is None:
        lines = traceback.format_exc()
    else:
        lines = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return redact(lines)


def print_exception(exc: BaseException | None = None, stream=None) -> None:
    """Print :func:`format_exception` to ``stream`` (stderr)."""
    import sys

    (stream or sys.stderr).write(format_exception(exc))
