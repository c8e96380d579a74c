"""Find the SVG in a model reply.

Rules (applied in this order, first tier that yields a complete SVG wins):

1. Reasoning is dropped first: every ``<think>…</think>`` (also ``<thinking>``) block is removed;
   an unclosed ``<think>`` hides everything after it (the model never answered); a stray
   ``</think>`` with no opener (templates that open the block in the prompt) hides everything
   before it. An SVG inside reasoning is never used.
2. ```` ```svg ```` fenced blocks (info string ``svg``, ``xml`` + svg, ``svg+xml``, …) → method ``"fenced_svg"``.
3. Other fenced blocks that contain ``<svg`` → method ``"fenced"``.
4. Bare ``<svg …>…</svg>`` anywhere in the remaining text → method ``"bare"``.

Within a tier, when several complete SVGs exist, the **last complete one** is taken (models
often draft, then correct themselves; the final answer comes last). Nested ``<svg>`` elements
are matched by depth, so the outermost element is returned; a ``</svg>`` inside a comment or CDATA
section of the SVG is text, as it is to the browser.

The returned markup runs from ``<svg`` to its matching ``</svg>``: an ``<?xml …?>`` prologue,
a DOCTYPE or comments before the root are **stripped**. Tags match case-insensitively, with or without a
namespace prefix (``<svg:svg xmlns:svg="http://www.w3.org/2000/svg">…</svg:svg>``; the renderer's
validator rewrites such markup without prefixes, see :mod:`svgrft.core.svgsafe`).
An ``<svg`` with no closing ``</svg>`` (output cut at max_tokens) gives ``svg=None`` with a
"truncated" reason. Everything is a linear scan (``str.find`` and simple literal regexes),
so megabytes of junk cost milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Extraction", "extract_svg", "find_svg_spans"]


@dataclass(frozen=True)
class Extraction:
    svg: str | None  # markup from "<svg" to its matching "</svg>" (prologue stripped), or None
    reason: str | None  # why none was found (one line), None on success
    method: str | None  # "fenced_svg" | "fenced" | "bare", None on failure

    @property
    def ok(self) -> bool:
        return self.svg is not None


REASON_EMPTY = "empty reply"
REASON_ONLY_THINK = "reply has only a reasoning block (<think>) and no answer"
REASON_NONE = "no <svg> element in reply"
REASON_TRUNCATED = "SVG is truncated: no closing </svg>"

_THINK_OPEN = re.compile(r"<(think|thinking)\s*>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</(think|thinking)\s*>", re.IGNORECASE)
# an svg start or end tag, also with a namespace prefix ("<svg:svg xmlns:svg=…>"; the lookahead keeps
# "<svgfoo" out), or the start of a comment or CDATA section, whose "</svg>" is text to the browser.
# Linear: a prefix is a run of name characters after "<", and runs after different "<" never overlap.
SVG_TAG_PREFIX = r"(?:[A-Za-z_][\w.\-]*:)?"
_SVG_TAG = re.compile(r"<(?:(/?)" + SVG_TAG_PREFIX + r"svg(?=[\s/>])|(!--|!\[CDATA\[))", re.IGNORECASE)


_COMMENT_END = re.compile(r"--!?>")


def _skip_markup(text: str, m: re.Match, end: int) -> int:
    """Index after the comment (HTML rules: "-->", "--!>", or at once for "<!-->"/"<!--->") or CDATA section
    that starts at match ``m``; -1 when it never ends before ``end``."""
    p = m.end()
    if m.group(2).startswith("!["):
        e = text.find("]]>", p, end)
        return e + 3 if e >= 0 else -1
    if text.startswith(">", p):
        return p + 1
    if text.startswith("->", p):
        return p + 2
    c = _COMMENT_END.search(text, p, end)  # one search for both endings: two finds were quadratic
    return c.end() if c else -1


def strip_reasoning(text: str) -> str:
    """Remove reasoning blocks (see module docstring)."""
    out: list[str] = []
    pos = 0
    first_close = _THINK_CLOSE.search(text)
    first_open = _THINK_OPEN.search(text)
    if first_close and (first_open is None or first_close.start() < first_open.start()):
        pos = first_close.end()  # the opener was in the prompt template
    while True:
        m = _THINK_OPEN.search(text, pos)
        if m is None:
            out.append(text[pos:])
            break
        out.append(text[pos : m.start()])
        c = _THINK_CLOSE.search(text, m.end())
        if c is None:  # unclosed: nothing after it is an answer
            break
        pos = c.end()
    return "".join(out)


def find_svg_spans(text: str, start: int = 0, end: int | None = None) -> tuple[list[tuple[int, int]], bool]:
    """Spans ``(begin, end)`` of complete top-level ``<svg>…</svg>`` elements in ``text[start:end]``,
    and whether an unclosed ``<svg`` remains (truncation). Nested svg elements are matched by depth;
    a self-closing ``<svg …/>`` is complete by itself; a stray ``</svg>`` is ignored."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    depth = 0
    begin = -1
    gt = -1
    pos = start
    while True:
        m = _SVG_TAG.search(text, pos, end)
        if m is None:
            break
        pos = m.end()
        if m.group(2):  # a comment or CDATA section: skip it (an unclosed one runs to the end)
            if depth == 0:
                continue  # outside an <svg>: prose that mentions "<!--" is not markup that hides anything
            skip = _skip_markup(text, m, end)
            if skip < 0:
                break
            pos = skip
            continue
        if gt < m.end():  # else the cached ">" is still the first one after this tag (keeps it linear)
            gt = text.find(">", m.end(), end)
        if gt < 0:  # tag never closes: cut off mid-tag
            if not m.group(1) and depth == 0:
                begin = m.start()
                depth = 1
            break
        if m.group(1):  # </svg
            if depth == 0:
                continue
            depth -= 1
            if depth == 0:
                spans.append((begin, gt + 1))
        else:
            self_closing = text[gt - 1] == "/"
            if depth == 0:
                begin = m.start()
                if self_closing:
                    spans.append((begin, gt + 1))
                    continue
            if not self_closing:
                depth += 1
    return spans, depth > 0


def _fenced_blocks(text: str) -> list[tuple[str, int, int]]:
    """``(info, body_start, body_end)`` for every closed ``` fence, in order (linear scan)."""
    blocks = []
    pos = 0
    n = len(text)
    while True:
        o = text.find("```", pos)
        if o < 0:
            break
        nl = text.find("\n", o + 3)
        if nl < 0:
            break
        info = text[o + 3 : nl].strip().strip("`").strip()
        c = text.find("```", nl + 1)
        if c < 0:
            break  # unclosed fence: the bare scan will look at it
        blocks.append((info, nl + 1, c))
        pos = c + 3
        # skip the rest of a longer closing fence (````)
        while pos < n and text[pos] == "`":
            pos += 1
    return blocks


def extract_svg(text: str | None) -> Extraction:
    """Extract the SVG from a model reply. Never raises; see the module docstring for the rules."""
    if text is None or not isinstance(text, str) or not text.strip():
        return Extraction(None, REASON_EMPTY, None)
    body = strip_reasoning(text)
    if not body.strip():
        return Extraction(None, REASON_ONLY_THINK, None)

    truncated = False
    fenced_svg: list[tuple[int, int]] = []
    fenced_other: list[tuple[int, int]] = []
    for info, b, e in _fenced_blocks(body):
        spans, trunc = find_svg_spans(body, b, e)
        if not spans:
            truncated = truncated or trunc
            continue
        lang = info.split()[0].lower() if info.split() else ""
        if lang.startswith("svg") or lang == "image/svg+xml":
            fenced_svg.extend(spans)
        else:
            fenced_other.extend(spans)
    for method, spans in (("fenced_svg", fenced_svg), ("fenced", fenced_other)):
        if spans:
            b, e = spans[-1]
            return Extraction(body[b:e], None, method)

    spans, trunc = find_svg_spans(body)
    if spans:
        b, e = spans[-1]
        return Extraction(body[b:e], None, "bare")
    if trunc or truncated:
        return Extraction(None, REASON_TRUNCATED, None)
    return Extraction(None, REASON_NONE, None)
