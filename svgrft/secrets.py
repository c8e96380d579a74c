"""Masking of API keys. Every place that may show a key goes through here."""

from __future__ import annotations

import os
import re

_KNOWN: set[str] = set()
_SECRET_NAMES = ("FIREWORKS_API_KEY", "OPENAI_API_KEY", "SVGRFT_SERVE_TOKEN", "WANDB_API_KEY", "EP_REMOTE_API_KEY")


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


def register_env() -> None:
    for name in _SECRET_NAMES:
        register(os.environ.get(name))


def redact(text: str) -> str:
    """Replace every known secret value (and bearer tokens) in ``text`` with its mask."""
    for value in sorted(_KNOWN, key=len, reverse=True):
        if value in text:
            text = text.replace(value, mask(value))
    return re.sub(r"(?i)(bearer\s+)([A-Za-z0-9._\-]{8,})", lambda m: m.group(1) + mask(m.group(2)), text)
