"""Counted words in messages, in one place: ``plural(1, "row")`` is ``1 row``, ``plural(2, "row")`` ``2 rows``.

Every message that prints a count next to a noun (progress, errors, findings, reports) goes through
:func:`plural`; a verb or noun that agrees with a count printed elsewhere goes through :func:`plural_word`
(``f"{k} of {plural(n, 'prompt')} {plural_word(k, 'is', 'are')} in …"``). ``tests/test_first_day_details.py``
fails on a hand-written ``f"{n} rows"``.
"""

from __future__ import annotations

_VOWELS = frozenset("aeiou")


def plural_word(n: float, singular: str, many: str | None = None) -> str:
    """``singular`` when ``n`` is 1, else ``many`` (default: the regular English plural of ``singular``)."""
    if n == 1:
        return singular
    if many is not None:
        return many
    if singular.endswith("y") and len(singular) > 1 and singular[-2].lower() not in _VOWELS:
        return singular[:-1] + "ies"
    if singular.endswith(("s", "x", "ch", "sh")):
        return singular + "es"
    return singular + "s"


def plural(n: float, singular: str, many: str | None = None, *, spec: str = "") -> str:
    """``n`` (formatted with the format ``spec``, e.g. ``","``) and the word that agrees with it."""
    return f"{n:{spec}} {plural_word(n, singular, many)}"
