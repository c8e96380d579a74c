"""The fake policy model: what an SVG-drawing LLM "answers" in the fakes.

A policy is ``policy(model, messages, params) -> str | None`` (``None`` = no content).  Ready-made
ones are selected by name with :func:`make_policy`:

``"corpus"`` (default)
    a fenced ```svg block holding one SVG of the corpus directory, chosen deterministically by
    a SHA-256 of the last user prompt (plus the choice index for ``n > 1``).  Models whose name
    contains ``"base"`` (case-insensitive), or calls with ``params["quality"] == "base"`` (FakeFireworks
    job traces of epoch 0), draw worse: a single grey circle.  Without a corpus
    directory the built-in :data:`FALLBACK_SVG` is used.
``"blank"``   an SVG with only a white background rect (the judge scores it 0).
``"text"``    prose, no SVG at all.
``"none"``    no content (``message.content`` is null).
a callable    used as is.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, Union

Policy = Callable[[str, list, dict], Optional[str]]

DEFAULT_CORPUS = str(Path(__file__).resolve().parents[1] / "data" / "svg-corpus")  # tests/data/svg-corpus

FALLBACK_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="150" viewBox="0 0 200 150">'
    '<rect width="200" height="150" fill="#87ceeb"/>'
    '<rect y="100" width="200" height="50" fill="#3a7d2c"/>'
    '<circle cx="160" cy="35" r="20" fill="#ffd700"/>'
    '<ellipse cx="80" cy="95" rx="40" ry="20" fill="#8b4513"/>'
    '<rect x="50" y="105" width="8" height="25" fill="#5a3210"/>'
    '<rect x="100" y="105" width="8" height="25" fill="#5a3210"/>'
    '<circle cx="125" cy="80" r="12" fill="#d2691e"/>'
    '<path d="M10 140 Q 60 120 110 140" stroke="#654321" stroke-width="4" fill="none"/>'
    "</svg>"
)

BASE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="150" viewBox="0 0 200 150">'
    '<circle cx="100" cy="75" r="12" fill="#888888"/>'
    "</svg>"
)

BLANK_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="150" viewBox="0 0 200 150">'
    '<rect width="200" height="150" fill="#ffffff"/>'
    "</svg>"
)


def fenced(svg: str) -> str:
    return f"Here is the SVG:\n\n```svg\n{svg}\n```\n"


def message_text(message: Any) -> str:
    """Text of an OpenAI-style message (string content or a list of parts); '' if none."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                out.append(part["text"])
        return "\n".join(out)
    return ""


def last_user_prompt(messages: Any) -> str:
    if isinstance(messages, list):
        for m in reversed(messages):
            if isinstance(m, dict) and m.get("role") == "user":
                return message_text(m)
    return ""


class CorpusPolicy:
    def __init__(self, corpus_dir: Union[str, os.PathLike, None] = DEFAULT_CORPUS):
        self.files: list[Path] = []
        if corpus_dir:
            d = Path(corpus_dir)
            if d.is_dir():
                self.files = sorted(p for p in d.iterdir() if p.suffix == ".svg" and p.is_file())
        self._cache: dict[Path, str] = {}

    def pick(self, prompt: str, choice: int = 0) -> str:
        if not self.files:
            return FALLBACK_SVG
        key = prompt if choice == 0 else f"{prompt}\x00{choice}"
        h = int.from_bytes(hashlib.sha256(key.encode("utf-8", "replace")).digest()[:8], "big")
        path = self.files[h % len(self.files)]
        if path not in self._cache:
            try:
                self._cache[path] = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                self._cache[path] = FALLBACK_SVG
        return self._cache[path]

    def __call__(self, model: str, messages: list, params: dict) -> Optional[str]:
        if "base" in str(model).lower() or params.get("quality") == "base":
            return fenced(BASE_SVG)
        return fenced(self.pick(last_user_prompt(messages), int(params.get("choice_index", 0) or 0)))


def make_policy(
    policy: Union[str, Policy, None] = "corpus", corpus_dir: Union[str, os.PathLike, None] = DEFAULT_CORPUS
) -> Policy:
    if callable(policy):
        return policy
    name = (policy or "corpus").lower()
    if name in ("corpus", "default"):
        return CorpusPolicy(corpus_dir)
    if name == "blank":
        return lambda model, messages, params: fenced(BLANK_SVG)
    if name == "text":
        return lambda model, messages, params: "I would draw a lovely picture, but words will have to do."
    if name == "none":
        return lambda model, messages, params: None
    raise ValueError(f"unknown policy {policy!r}: use corpus|blank|text|none or a callable")


def approx_tokens(text: Optional[str]) -> int:
    return 0 if not text else max(1, len(text) // 4)
