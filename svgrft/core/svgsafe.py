"""Pre-browser validation of untrusted SVG (rendering.md §7, mitigation 4).

:func:`validate_svg` runs in Python before any browser sees the markup:

* byte cap → ``too_large``;
* any ``<!DOCTYPE`` / ``<!ENTITY`` → ``invalid`` (no DTDs, so no entity bombs and no XXE);
* a strict parse with defusedxml (``forbid_dtd``, ``forbid_entities``, ``forbid_external``);
  LLM SVG is often not well-formed XML (bare ``&``, ``&nbsp;``, unclosed tags) although Chromium's HTML
  parser draws it fine, so a parse error alone does **not** reject: a tolerant linear tag scanner then
  enforces the same caps;
* the tolerant scanner follows the HTML tokenizer (Chromium parses the SVG inline in an HTML page): comments
  end at ``-->``, ``--!>`` or right after ``<!-->``, quotes open a value only after ``=``, and CDATA and
  ``<style>``/``<title>``/… are raw text in HTML content (foreignObject, after a "breakout" tag), so it sees
  the elements Chromium builds even where an XML reading hides them;
* nesting depth cap → ``invalid``; element count cap → ``too_large`` (both on the XML and the HTML reading);
* ``<use>`` expansion cap → ``too_large``: the element instances after expanding every ``<use>`` (nested
  ``<use>`` of groups of ``<use>`` is a billion laughs without entities);
* ``href``/``xlink:href`` of ``<image>`` and ``<feImage>`` (and ``src``/``srcset`` of ``<img>`` in HTML
  content) that would fetch are removed, with a warning that says why: the browser would fetch nothing anyway
  (requests are aborted) but would draw a broken-image icon that reaches the judge. Kept: ``data:`` URIs and
  same-document references ``#id`` on ``<feImage>`` (the filter draws that element; nothing is fetched);
  ``#id`` on ``<image>`` is removed (it loads the page itself as a picture: a broken-image icon);
* SVG written with namespace prefixes (``<svg:svg xmlns:svg="http://www.w3.org/2000/svg">``, an XLink
  prefix other than ``xlink:``) is written without them (HTML has no XML namespaces; see :func:`_unprefix`);
* ``autofocus`` and ``http-equiv`` attributes (HTML in ``<foreignObject>``) are removed: a page focuses
  only once, so a focus ring would make the first render on a page differ from the next ones, and a
  ``<meta http-equiv="refresh">`` would navigate the page away at a racy moment;
* markup that runs on its own clock, which the renderer cannot freeze, is neutralised with a warning, so the
  same SVG gives the same PNG: ``<video>``/``<audio>`` are removed with their content, a ``<marquee>`` is
  replaced by its content, an indeterminate ``<progress>`` gets ``value="0"``, ``srcdoc`` (a document inside
  the picture) is removed; an SVG image embedded as ``data:`` that has any of these or CSS animations or
  transitions is rejected (``invalid``): it cannot be rewritten or frozen inside an image;
* SMIL animation elements whose ``attributeName`` is ``href`` (any prefix) are removed: an ``href`` set while
  the picture is drawn would bypass the reference checks made here;
* the canvas size is derived from ``width``/``height``/``viewBox`` of the root (see :func:`canvas_size`).

No typer/rich imports here; heavy work is linear in the input size.

Over 400 lines on purpose: one pass over one parse of untrusted markup. The tag scan, the browser-like
reference and ``<use>`` expansion count, the nested ``data:`` SVG checks and the time-dependent markup rules
share the same tokens, counters and budget; split apart, a check could see other markup than the count.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from typing import Any

from svgrft.core.extract import SVG_TAG_PREFIX, find_svg_spans
from svgrft.core.plural import plural

__all__ = ["SvgRejected", "SafeSvg", "validate_svg", "canvas_size", "parse_length", "parse_viewbox", "decoded_text"]


class SvgRejected(Exception):
    """The SVG must not be rendered. ``kind`` is a RenderResult error kind; ``reason`` one line."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass
class SafeSvg:
    svg: str  # root <svg …>…</svg> markup, hostile hrefs removed, prologue stripped
    root_attrs: dict[str, str]  # attributes of the root <svg> (names lower-cased, values unescaped)
    elements: int
    depth: int
    parser: str  # "xml" (well-formed) or "tolerant"
    warnings: list[str] = field(default_factory=list)
    expanded: int = 0  # element instances after reference expansion, embedded SVG images included
    # what in the markup runs on its own clock ("<marquee>", "CSS animation/transition", …): neutralised here
    # or frozen by the renderer; an embedded SVG image with any of it is rejected
    time_dependent: list[str] = field(default_factory=list)


_DTD = re.compile(r"<!\s*(doctype|entity)", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z_][\w:.\-]*")
_QUOTE_OR_GT = re.compile(r"[\"'>]")
_ATTR = re.compile(r"""([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_HTML_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_IMAGE_TAGS = frozenset(("image", "feimage"))
# autofocus: a page focuses only once, so a focus ring would make the first render differ from the next;
# http-equiv: <meta http-equiv="refresh"> in foreignObject would navigate the page at a racy moment.
# srcdoc: a document inside the picture, out of reach of these checks and of the renderer's freezing.
_STRIP_ATTRS = ("autofocus", "http-equiv", "srcdoc")
_MEDIA = frozenset(("video", "audio"))  # load and play on their own clock: removed with their content
_MOTION = re.compile(r"animation|transition", re.IGNORECASE)  # CSS that changes the picture over time
# why markup was neutralised for determinism: (name in SafeSvg.time_dependent, warning with {n} and {s})
_TIME_DEPENDENT = {
    "media": (
        "<video>/<audio>",
        "removed {n} <video>/<audio> element{s} (media loads and plays on its own clock: "
        "every render would catch another moment)",
    ),
    "marquee": (
        "<marquee>",
        "replaced {n} <marquee> element{s} by the content (a marquee scrolls: every render "
        "would catch it somewhere else)",
    ),
    "progress": (
        "indeterminate <progress>",
        'gave {n} indeterminate <progress> element{s} value="0" (the browser animates an indeterminate progress bar)',
    ),
    "srcdoc": (
        "srcdoc",
        "removed {n} srcdoc attribute{s} (a document inside the picture is out of reach of these "
        "checks and of the renderer's freezing of animations)",
    ),
}


def decoded_text(s: str) -> str:
    """``s`` with HTML character references, then CSS escapes, resolved: what a keyword scan of markup must read
    (``anim&#97;tion`` and ``anim\\61tion`` are ``animation`` to the browser). ``s`` itself when it has neither."""
    if "&" in s:
        s = html.unescape(s)
    return _css_unescape(s)


def _sets_href(attrs: list[tuple[str, str | None, int, int]]) -> bool:
    """An animation element's ``attributeName`` names ``href`` (``xlink:href``, any prefix, any case)."""
    return any(
        aname.lower() == "attributename" and val is not None and _local(html.unescape(val).strip()) == "href"
        for aname, val, _a, _b in attrs
    )


def _local(name: str) -> str:
    return name.rsplit(":", 1)[-1].lower()


# HTML tokenizer pieces (https://html.spec.whatwg.org/#tokenization). Chromium parses the SVG inline in an HTML
# page, so the scanner must see the tags the HTML parser sees, not the ones an XML reading suggests: quotes
# only open a value right after "=", "<!-->" and "--!>" end comments, CDATA and raw-text elements depend on
# whether the parser is in SVG or HTML content.
_HTML_WS = "\t\n\f\r "
_SKIP_BEFORE_ATTR = re.compile(r"[\t\n\f\r /]*")
_ATTR_NAME_RE = re.compile(r"[^\t\n\f\r />][^\t\n\f\r />=]*")
_WS_RE = re.compile(r"[\t\n\f\r ]*")
_UNQUOTED = re.compile(r"[^\t\n\f\r >]*")
_TAG_NAME = re.compile(r"[A-Za-z][^\t\n\f\r />]*")
# in HTML content: elements whose content is text up to their end tag (JS is off, so <noscript> is markup)
_RAW_TEXT = frozenset("style script xmp iframe noembed noframes textarea title".split())
# HTML start tags that end SVG content (the parser pops back to HTML: "breakout")
_BREAKOUT = frozenset(
    """b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 h6 head hr i img
li listing menu meta nobr ol p pre ruby s small span strong strike sub sup table tt u ul var""".split()
)
_INTEGRATION = frozenset(("foreignobject", "desc", "title"))  # SVG elements whose children are HTML


def _parse_attrs(s: str) -> list[tuple[str, str | None, int, int]]:
    """``(name, value, start, end)`` per attribute in a tag's attribute text, by HTML tokenizer rules."""
    return _tokenize_attrs(s, 0, len(s))[0]


def _tokenize_attrs(s: str, p: int, limit: int) -> tuple[list[tuple[str, str | None, int, int]], int, bool]:
    """Attributes of a tag from ``p`` up to its ">": ``(attrs, index of ">" or -1 if the tag never ends,
    self_closing)``. Offsets are absolute. Linear: every step consumes input."""
    attrs: list[tuple[str, str | None, int, int]] = []
    while True:
        q = _SKIP_BEFORE_ATTR.match(s, p, limit).end()
        if q >= limit:
            return attrs, -1, False
        if s[q] == ">":
            return attrs, q, q > p and s[q - 1] == "/"
        m = _ATTR_NAME_RE.match(s, q, limit)
        name, a = m.group(), q
        p = _WS_RE.match(s, m.end(), limit).end()
        if p < limit and s[p] == "=":
            v = _WS_RE.match(s, p + 1, limit).end()
            if v >= limit:
                return attrs, -1, False
            ch = s[v]
            if ch in "\"'":
                close = s.find(ch, v + 1, limit)
                if close < 0:
                    return attrs, -1, False  # EOF inside a quoted value: the browser drops the tag
                attrs.append((name, s[v + 1 : close], a, close + 1))
                p = close + 1
            elif ch == ">":
                attrs.append((name, "", a, v))
                p = v
            else:
                e = _UNQUOTED.match(s, v, limit).end()
                attrs.append((name, s[v:e], a, e))
                p = e
        else:  # no value: whitespace, "/" or ">" follow, or the next attribute starts
            attrs.append((name, None, a, m.end()))


@dataclass
class _Tag:
    start: int  # index of "<"
    end: int  # index after ">"
    name: str  # lower-case HTML tag name (prefix included, as the HTML parser sees it)
    attrs: list[tuple[str, str | None, int, int]]  # (name, raw value or None, start, end), absolute
    closing: bool
    self_closing: bool


_COMMENT_END = re.compile(r"--!?>")


def _skip_comment(s: str, lt: int) -> int:
    """Index after a comment starting at ``lt`` ("<!--"), by HTML rules; -1 if it runs to the end."""
    if s.startswith(">", lt + 4):
        return lt + 5  # "<!-->"
    if s.startswith("->", lt + 4):
        return lt + 6  # "<!--->"
    c = _COMMENT_END.search(s, lt + 4)  # one search for both endings: two finds were quadratic
    return c.end() if c else -1


def _scan_tags(s: str, html_context: Any = None):
    """Yield start/end tags of ``s`` as Chromium's HTML tokenizer would see them (comments, CDATA, bogus
    comments and the content of raw-text elements skipped). ``html_context()`` tells whether the parser is
    in HTML content (raw-text elements, CDATA as a bogus comment) or in SVG content; default: SVG.
    Linear: every step moves forward."""
    n = len(s)
    pos = 0
    while True:
        lt = s.find("<", pos)
        if lt < 0 or lt + 1 >= n:
            return
        c = s[lt + 1]
        if c == "!":
            if s.startswith("<!--", lt):
                e = _skip_comment(s, lt)
                if e < 0:
                    return
                pos = e
                continue
            if s.startswith("<![CDATA[", lt) and not (html_context and html_context()):
                e = s.find("]]>", lt + 9)
                if e < 0:
                    return
                pos = e + 3
                continue
            e = s.find(">", lt + 2)  # bogus comment (also CDATA in HTML content)
            if e < 0:
                return
            pos = e + 1
            continue
        if c == "?":
            e = s.find(">", lt + 2)
            if e < 0:
                return
            pos = e + 1
            continue
        closing = c == "/"
        m = _TAG_NAME.match(s, lt + 2 if closing else lt + 1)
        if m is None:
            if closing:  # "</>" is dropped, "</ x" is a bogus comment
                e = s.find(">", lt + 2)
                if e < 0:
                    return
                pos = e + 1
            else:
                pos = lt + 1  # "<" followed by a non-letter is text
            continue
        attrs, gt, self_closing = _tokenize_attrs(s, m.end(), n)
        if gt < 0:
            return  # cut off inside a tag: the browser drops it
        name = m.group().lower()
        raw = not closing and name in _RAW_TEXT and html_context is not None and html_context()
        yield _Tag(lt, gt + 1, name, attrs, closing, self_closing and not closing)
        pos = gt + 1
        if raw:  # the content is text up to "</name" followed by whitespace, "/" or ">"
            low_name = "</" + name
            q = gt + 1
            while True:
                e = _find_ci(s, low_name, q)
                if e < 0:
                    return
                after = s[e + len(low_name) : e + len(low_name) + 1]
                if not after or after in _HTML_WS + "/>":
                    pos = e
                    break
                q = e + 1


def _find_ci(s: str, needle: str, start: int) -> int:
    """Case-insensitive ``find`` of an ASCII ``needle`` (lower case) without lower-casing all of ``s``."""
    first = needle[:2]  # "</"
    rest = needle[2:]
    p = start
    while True:
        i = s.find(first, p)
        if i < 0:
            return -1
        if s[i + 2 : i + 2 + len(rest)].lower() == rest:
            return i
        p = i + 1


SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"


_NS_DECL = re.compile(r"""xmlns:([^\s=/>"':]+)\s*=\s*["']?\s*(http://www\.w3\.org/(?:2000/svg|1999/xlink))""")


def _unprefix(svg: str) -> str:
    """``svg`` written without the XML namespace prefixes HTML does not know: the page parses the SVG as
    HTML, which has no XML namespaces, so ``<svg:svg xmlns:svg="http://www.w3.org/2000/svg">`` or an
    ``<svg:rect>`` would be an unknown element and nothing would be drawn, and ``x:href`` (``x`` bound to
    XLink) would not be a link. Prefixes bound (anywhere in the markup) to the SVG namespace are dropped from
    element names; attributes with a prefix bound to the XLink namespace are renamed ``xlink:…`` (the one
    XLink prefix HTML knows). Anything else is left as it is; markup without such a declaration is
    returned unchanged. Linear."""
    if not any(m.group(1) != "xlink" or m.group(2) != XLINK_NS for m in _NS_DECL.finditer(svg)):
        return svg  # the common case (no declaration, or only xmlns:xlink): no second scan
    svg_prefixes: set[str] = set()
    xlink_prefixes: set[str] = set()
    tags = list(_scan_tags(svg))
    for tag in tags:
        for aname, val, _a, _b in tag.attrs:
            if aname.startswith("xmlns:") and val is not None:
                uri = html.unescape(val).strip()
                if uri == SVG_NS:
                    svg_prefixes.add(aname[6:])
                elif uri == XLINK_NS and aname[6:] != "xlink":
                    xlink_prefixes.add(aname[6:])
    if not svg_prefixes and not xlink_prefixes:
        return svg
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement)
    for tag in tags:
        at = tag.start + (2 if tag.closing else 1)
        colon = svg.find(":", at, at + len(tag.name))
        if colon > 0 and svg[at:colon] in svg_prefixes:
            edits.append((at, colon + 1, ""))
        for aname, _val, a, _b in tag.attrs:
            prefix, sep, _rest = aname.partition(":")
            if sep and prefix in xlink_prefixes:
                edits.append((a, a + len(prefix), "xlink"))
    parts = []
    pos = 0
    for a, b, rep in sorted(edits):
        parts.append(svg[pos:a])
        parts.append(rep)
        pos = b
    parts.append(svg[pos:])
    return "".join(parts)


# Why an image reference is removed (the warning names it). Only references that would fetch are removed:
# the browser fetches nothing (every request is aborted) but draws a broken-image icon that reaches the judge.
_REF_EXTERNAL = "external"  # http:, file:, a relative URL, …: leaves the document
_REF_SELF = "self"  # "#id" on <image>/<img>: loads the page itself as a picture (an element is never shown)
_URL_STRIP = re.compile(r"[\t\n\r]+")  # the URL parser removes these anywhere
_C0_SPACE = "".join(map(chr, range(0x21)))  # … and strips C0 controls and spaces at both ends


def _image_ref_removal(tag: str, value: str | None) -> str | None:
    """Why the ``href``/``src``/``srcset`` ``value`` of image element ``tag`` (local name, lower case) must be
    removed, or None to keep it. Kept: ``data:`` URIs (no fetch) and, on ``<feImage>``, same-document
    references ``#id`` (the filter draws that element of this document; nothing is fetched). URL parsing
    rules: surrounding spaces/control characters and inner tabs/newlines do not count, schemes are
    case-insensitive."""
    ref = _URL_STRIP.sub("", html.unescape(value or "")).strip(_C0_SPACE)
    if ref[:5].lower() == "data:":
        return None
    if ref.startswith("#"):
        return None if tag == "feimage" else _REF_SELF
    return _REF_EXTERNAL


def _ref_warnings(removed: dict[str, int]) -> list[str]:
    """One warning per removal reason, saying what was removed and why."""
    out = []
    n = removed.get(_REF_EXTERNAL, 0)
    if n:
        out.append(
            f"removed {plural(n, 'external image href')} (a reference that leaves the document "
            "is not fetched and would draw a broken-image icon; only data: URIs and #id on feImage are kept)"
        )
    n = removed.get(_REF_SELF, 0)
    if n:
        out.append(
            f"removed {plural(n, '#id href')} on <image>/<img> (an image element cannot show an "
            "element; the browser would load the page itself and draw a broken-image icon)"
        )
    return out


def _xml_check(svg: str, max_depth: int, max_elements: int) -> tuple[bool, int, int]:
    """Strict parse with defusedxml. Returns (well_formed, elements, depth); raises SvgRejected for
    DTD/entity/external constructs or exceeded caps."""
    import io
    import xml.etree.ElementTree as ET

    import defusedxml
    from defusedxml.ElementTree import iterparse

    depth = max_d = count = 0
    try:
        for ev, _el in iterparse(
            io.BytesIO(svg.encode("utf-8", "surrogatepass")),
            events=("start", "end"),
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        ):
            if ev == "start":
                depth += 1
                count += 1
                max_d = max(max_d, depth)
                if max_d > max_depth:
                    raise SvgRejected("invalid", f"SVG nesting depth exceeds {max_depth}")
                if count > max_elements:
                    raise SvgRejected("too_large", f"SVG has more than {plural(max_elements, 'element')}")
            else:
                depth -= 1
    except defusedxml.DefusedXmlException as e:
        raise SvgRejected("invalid", f"DTD/entity declarations are not allowed ({type(e).__name__})") from None
    except (ET.ParseError, UnicodeError, ValueError):
        return False, count, max_d
    return True, count, max_d


# url(#id) in presentation attributes, style attributes and animation values (fill, stroke, filter, mask,
# clip-path, marker-*: each referencing element paints its own copy of the target's content).
_URL_REF = re.compile(r"url\(\s*[\"']?\s*([^\"')\s]*)", re.IGNORECASE)
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6}[ \t\n\r\f]?|[^\n\r\f0-9a-fA-F])")
_HREF_EXPANDING = frozenset(("use", "pattern", "feimage", "filter", "tref"))  # href pulls in the target's content
_ANIMATION = frozenset(("set", "animate", "animatetransform", "animatemotion", "discard"))
_ANIM_VALUES = frozenset(("to", "from", "by", "values"))
_MARKER_ATTRS = frozenset(("marker", "marker-start", "marker-mid", "marker-end"))
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
MAX_NESTED = 2  # levels of data: SVG images inside data: SVG images
MAX_CYCLE_REFS = 4  # reference edges a cycle may have: its simple paths stay few (the browser never closes one)


def _css_unescape(s: str) -> str:
    """CSS escapes resolved (``\\23 a`` is ``#a``, ``\\64 ata:`` is ``data:``); cheap when there is no ``\\``."""
    if "\\" not in s:
        return s

    def one(m: re.Match) -> str:
        g = m.group(1)
        if g[0] in "0123456789abcdefABCDEF":
            try:
                return chr(int(g.strip(), 16))
            except (ValueError, OverflowError):
                return "\ufffd"
        return g

    return _CSS_ESCAPE.sub(one, s)


def _fragment_ids(url: str) -> list[str]:
    """The ids a reference may resolve to. Conservative: whatever comes before ``#`` is ignored (the page is
    ``about:blank``, so ``about:blank#id`` is the document itself; other bases are blocked anyway), and both the
    raw and the %-decoded fragment count (Chromium decodes it)."""
    from urllib.parse import unquote

    url = url.strip()
    if "#" not in url:
        return []
    frag = url.split("#", 1)[1]
    if not frag:
        return []
    decoded = unquote(frag, errors="replace")
    return [frag] if decoded == frag else [frag, decoded]


def _tag_refs(local: str, html_here: bool, attrs: list[tuple[str, str | None, int, int]]) -> list[tuple[str, int]]:
    """``(id, multiplier)`` for every reference of one element that makes the browser draw the target's content:
    any ``href`` of ``<use>``/``<pattern>``/``<feImage>``/``<filter>``, any ``url(#id)`` in any attribute (a
    marker is drawn once per vertex, hence the multiplier), and ``#id`` values SMIL could set after validation."""
    refs: list[tuple[str, int]] = []
    vertices = 0
    for aname, val, _a, _b in attrs:
        if not val:
            continue
        lname = aname.lower()
        value = html.unescape(val) if "&" in val else val
        if not html_here and _local(lname) == "href" and (local in _HREF_EXPANDING or local in _ANIMATION):
            refs.extend((i, 1) for i in _fragment_ids(value))
        if not html_here and local in _ANIMATION and lname in _ANIM_VALUES:
            for part in value.split(";"):
                if part.strip().startswith("#") or "url(" in part.lower():
                    refs.extend((i, 1) for i in _fragment_ids(part.replace(")", " ")))
        if "(" in value and ("url(" in value.lower() or "\\" in value) or "\\" in value:
            v = _css_unescape(value)
            marker = lname in _MARKER_ATTRS or (lname == "style" and "marker" in v.lower())
            for m in _URL_REF.finditer(v):
                if marker and not vertices:
                    vertices = max(
                        2, sum(len(_NUMBER.findall(x or "")) for n, x, _c, _d in attrs if n.lower() in ("d", "points"))
                    )
                refs.extend((i, vertices if marker else 1) for i in _fragment_ids(m.group(1)))
    return refs


def _expanded_size(
    parents: list[int],
    id_nodes: dict[str, list[int]],
    refs: list[tuple[int, str, int]],
    limit: int,
    style_refs: list[str] = (),
) -> int:
    """How many element instances the browser may build once every reference that copies content is expanded:
    ``<use>`` of a ``<use>`` of … (a "billion laughs" without entities: 2 KB took Chromium past any timeout),
    patterns filled with patterns, markers, ``<feImage>``. Conservative where the browser's choice is subtle:
    an id stands for the heaviest element carrying it (so duplicate ids, ids in ``<template>`` content or a
    second ``id`` attribute cannot make a light decoy stand in for the real target), and a ``url(#id)`` in a
    style sheet (``style_refs``) may paint every element, its targets' content included, nested once per target. A cycle renders nothing in Chromium but its simple paths are still
    walked: one with more than :data:`MAX_CYCLE_REFS` references counts as over the limit. Stops past
    ``limit``. Iterative and linear (Tarjan's SCCs, then sums over the condensation)."""
    n = len(parents)
    names = sorted({r for _, r, _ in refs if r in id_nodes} | {r for r in style_refs if r in id_nodes})
    vid = {name: n + k for k, name in enumerate(names)}  # one virtual node per referenced id
    total_nodes = n + len(names)
    # edges: (target, multiplier, is_reference)
    edges: list[list[tuple[int, int, bool]]] = [[] for _ in range(total_nodes)]
    for i, p in enumerate(parents):
        if p >= 0:
            edges[p].append((i, 1, False))
    for node, ref, mult in refs:
        if ref in vid:
            edges[node].append((vid[ref], max(1, mult), True))
    style_targets = sorted({vid[r] for r in style_refs if r in vid})
    for name, v in vid.items():
        edges[v].extend((c, 1, False) for c in id_nodes[name])

    # Tarjan's strongly connected components, iterative
    index = [-1] * total_nodes
    low = [0] * total_nodes
    on_stack = [False] * total_nodes
    comp = [-1] * total_nodes
    stack: list[int] = []
    order: list[list[int]] = []  # components in reverse topological order (sinks first)
    counter = 0
    for start in range(total_nodes):
        if index[start] != -1:
            continue
        work = [(start, 0)]
        while work:
            v, ei = work.pop()
            if ei == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack[v] = True
            recurse = False
            while ei < len(edges[v]):
                w = edges[v][ei][0]
                ei += 1
                if index[w] == -1:
                    work.append((v, ei))
                    work.append((w, 0))
                    recurse = True
                    break
                if on_stack[w]:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                members = []
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    comp[w] = len(order)
                    members.append(w)
                    if w == v:
                        break
                order.append(members)
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])

    weight = [0] * len(order)
    cap = limit + 1
    for c, members in enumerate(order):  # sinks first: every other component is already weighed
        own = sum(1 for v in members if v < n)
        outside = 0
        inner_refs = 0
        for v in members:
            for w, mult, is_ref in edges[v]:
                if comp[w] == c:
                    if is_ref:
                        inner_refs += mult
                    continue
                outside += weight[comp[w]] * mult
                if outside > cap:
                    break
        if len(members) == 1 and not inner_refs:
            w_c = own + outside
            if members[0] >= n:  # an id: the heaviest element carrying it (not the sum)
                w_c = max((weight[comp[x]] for x, _m, _r in edges[members[0]]), default=0)
        elif inner_refs > MAX_CYCLE_REFS:
            w_c = cap
        else:  # a cycle: each simple path through it uses its references at most once
            paths = sum(math.perm(inner_refs, k) for k in range(inner_refs + 1))
            w_c = (own + outside) * paths
        weight[c] = min(w_c, cap)
    roots = [i for i, p in enumerate(parents) if p < 0]
    total = 0
    for r in roots:
        total += weight[comp[r]]
        if total > limit:
            return total
    if style_targets:  # any element may be painted with any of them, and their content with the others …
        w0 = min(cap, sum(weight[comp[t]] for t in style_targets))
        extra, term = 0, 1
        for _ in style_targets:  # … nested at most once per target (a target inside itself is a cycle)
            term = min(cap, term * w0)
            extra = min(cap, extra + term)
        total += min(cap, n * extra)
    return total


def validate_svg(
    svg: str,
    *,
    max_bytes: int = 500_000,
    max_depth: int = 64,
    max_elements: int = 20_000,
    max_expanded: int = 150_000,
    max_nested: int = MAX_NESTED,
) -> SafeSvg:
    """Check and clean untrusted SVG markup. Raises :class:`SvgRejected` (kind ``no_svg``,
    ``too_large`` or ``invalid``) instead of returning something unsafe to render. ``max_expanded`` bounds
    the element instances after reference expansion, summed over the SVG and every ``data:`` SVG image in it
    (``max_nested`` levels deep at most)."""
    if not isinstance(svg, str):
        raise SvgRejected("invalid", f"SVG must be text, not {type(svg).__name__}")
    if len(svg) > max_bytes:
        raise SvgRejected(
            "too_large", f"SVG is larger than {plural(max_bytes, 'byte')} ({plural(len(svg), 'character')})"
        )
    size = len(svg.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise SvgRejected("too_large", f"SVG is {plural(size, 'byte')}, the limit is {max_bytes}")
    if "\x00" in svg:
        raise SvgRejected("invalid", "SVG contains NUL characters")
    if _DTD.search(svg):
        raise SvgRejected("invalid", "DTD/entity declarations (<!DOCTYPE, <!ENTITY) are not allowed in SVG")

    spans, truncated = find_svg_spans(svg)
    warnings: list[str] = []
    if spans:
        b, e = spans[0]
        if e < len(svg) and svg[e:].strip():
            # a further root or trailing text would be drawn below the canvas; keep only the first root
            warnings.append("ignored content after the closing </svg>")
        svg = svg[b:e]
    elif truncated:
        m = re.search(r"<" + SVG_TAG_PREFIX + r"svg(?=[\s/>])", svg, re.IGNORECASE)
        svg = svg[m.start() :] if m else svg
        if svg.find(">") < 0:
            raise SvgRejected("invalid", "SVG is truncated inside the <svg> start tag")
        warnings.append("SVG has no closing </svg>; rendered what is there")
    else:
        raise SvgRejected("no_svg", "no <svg> element")

    well_formed, count, depth = _xml_check(svg, max_depth, max_elements)
    svg = _unprefix(svg)

    # tolerant scan with HTML tokenizer rules: caps (always: an XML reading can hide elements the HTML parser
    # sees, e.g. behind "<!-->"), root attributes, hostile hrefs
    root_attrs: dict[str, str] = {}
    # (tag name, are its children HTML content?, node index, removal: None/"drop"/"unwrap", index of "<")
    stack: list[tuple[str, bool, int, str | None, int]] = []
    parents: list[int] = []  # node index -> parent node index (-1 for the root)
    id_nodes: dict[str, list[int]] = {}  # id -> every node carrying it (in any of its id attributes)
    refs: list[tuple[int, str, int]] = []  # (node, referenced id, multiplier)
    style_refs: list[str] = []  # ids a style sheet references with url(#id)
    t_count = t_depth = 0
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement)
    removed_refs: dict[str, int] = {}  # why (a _REF_* key) -> how many image references were removed
    first = True
    low = svg.lower()
    strip_attrs = any(a in low for a in _STRIP_ATTRS)  # rare: only then look at every tag's attributes
    stripped: dict[str, int] = {}
    frozen: dict[str, int] = {}  # a _TIME_DEPENDENT key -> how many were neutralised
    smil_href = 0
    dropping = 0  # open elements being removed with their content (nothing inside them needs its own edit)
    motion = False  # CSS animation/transition in a style sheet, style attribute or animated value
    motion_probe = bool(_MOTION.search(svg)) or "\\" in svg or "&" in svg  # else no attribute can have it

    def in_html() -> bool:
        return stack[-1][1] if stack else not first  # before the root: HTML (the page's <div>)

    def end_removed(entry: tuple[str, bool, int, str | None, int], at: _Tag, own: bool) -> None:
        """A removed element ends at tag ``at`` (its own end tag when ``own``, else one that closes it)."""
        nonlocal dropping
        if entry[3] == "drop":
            edits.append((entry[4], at.end if own else at.start, ""))
            dropping -= 1
        elif entry[3] == "unwrap" and own:
            edits.append((at.start, at.end, ""))

    for tag in _scan_tags(svg, in_html):
        name = tag.name
        local = _local(name)
        if tag.closing:
            if any(entry[0] == name for entry in stack):
                while stack:
                    entry = stack.pop()
                    if entry[3]:
                        end_removed(entry, tag, entry[0] == name)
                    if entry[0] == name:
                        break
            continue
        t_count += 1
        if t_count > max_elements:
            raise SvgRejected("too_large", f"SVG has more than {plural(max_elements, 'element')}")
        html_here = in_html()
        if not html_here and (
            name in _BREAKOUT
            or (name == "font" and any(a.lower() in ("color", "face", "size") for a, _v, _s, _e in tag.attrs))
        ):
            while stack and not stack[-1][1]:  # an HTML tag in SVG content closes the SVG elements
                entry = stack.pop()
                if entry[3]:
                    end_removed(entry, tag, False)
            html_here = True
        if strip_attrs:
            for aname, _val, a, b in tag.attrs:
                if aname.lower() in _STRIP_ATTRS:
                    edits.append((a, b, ""))
                    stripped[aname.lower()] = stripped.get(aname.lower(), 0) + 1
        # determinism: markup on its own clock. "drop" removes the element with its content (also in SVG content,
        # where an unknown <video> draws nothing anyway), "unwrap" only its tags.
        removal = None
        if dropping:
            pass  # inside an element that goes with its content
        elif name in _MEDIA:
            removal = "drop"
            frozen["media"] = frozen.get("media", 0) + 1
        elif html_here and name == "marquee":
            removal = "unwrap"
            frozen["marquee"] = frozen.get("marquee", 0) + 1
            edits.append((tag.start, tag.end, ""))
        elif local in _ANIMATION and _sets_href(tag.attrs):
            removal = "drop"
            smil_href += 1
        elif html_here and name == "progress" and not any(a.lower() == "value" for a, _v, _s, _e in tag.attrs):
            at = tag.start + 1 + len(name)
            edits.append((at, at, ' value="0"'))
            frozen["progress"] = frozen.get("progress", 0) + 1
        if motion_probe and not motion:
            motion = any(
                val
                and (aname.lower() == "style" or (local in _ANIMATION and aname.lower() in _ANIM_VALUES))
                and _MOTION.search(decoded_text(val))
                for aname, val, _a, _b in tag.attrs
            )
        if first:
            for aname, val, _, _ in tag.attrs:
                root_attrs.setdefault(aname.lower(), html.unescape(val or ""))
        node = len(parents)
        parents.append(stack[-1][2] if stack else -1)
        for aname, val, _, _ in tag.attrs:
            if aname.lower() == "id" and val:
                id_nodes.setdefault(html.unescape(val), []).append(node)
        refs.extend((node, ref, mult) for ref, mult in _tag_refs(local, html_here, tag.attrs))
        if local == "style":
            end = _find_ci(svg, "</style", tag.end)
            sheet = _css_unescape(html.unescape(svg[tag.end : end if end >= 0 else len(svg)]))
            style_refs.extend(i for m in _URL_REF.finditer(sheet) for i in _fragment_ids(m.group(1)))
            motion = motion or bool(_MOTION.search(sheet))
        if local in _IMAGE_TAGS or (html_here and name == "img"):
            for aname, val, a, b in tag.attrs:
                if _local(aname) not in ("href", "src", "srcset"):
                    continue
                why = _image_ref_removal(local if not html_here else name, val)
                if why is not None:
                    edits.append((a, b, ""))
                    removed_refs[why] = removed_refs.get(why, 0) + 1
        first = False
        if html_here:
            if name in _HTML_VOID or name in _RAW_TEXT or name == "plaintext":
                if name == "plaintext":
                    break  # everything after it is text
                continue  # no children (raw text was skipped by the scanner)
            children_html = name not in ("svg", "math")
        else:
            if tag.self_closing:
                if removal == "drop":
                    edits.append((tag.start, tag.end, ""))
                continue
            children_html = name in _INTEGRATION
        stack.append((name, children_html, node, removal, tag.start))
        dropping += removal == "drop"
        t_depth = max(t_depth, len(stack))
        if t_depth > max_depth:
            raise SvgRejected("invalid", f"SVG nesting depth exceeds {max_depth}")
    edits.extend((entry[4], len(svg), "") for entry in stack if entry[3] == "drop")  # never closed
    count, depth = max(count, t_count), max(depth, t_depth)
    expanded = count
    if refs or style_refs:
        expanded = max(count, _expanded_size(parents, id_nodes, refs, max_expanded, style_refs))
        if expanded > max_expanded:
            raise SvgRejected(
                "too_large",
                f"<use>/pattern/marker/filter references expand the SVG to more than {plural(max_expanded, 'element')}",
            )
    expanded += _check_nested_images(
        svg,
        max_bytes=max_bytes,
        max_depth=max_depth,
        max_elements=max_elements,
        budget=max_expanded - expanded,
        max_nested=max_nested,
    )
    if edits:
        svg = _apply_edits(svg, edits)
    warnings.extend(_ref_warnings(removed_refs))
    if "srcdoc" in stripped:
        frozen["srcdoc"] = stripped.pop("srcdoc")
    for name, k in sorted(stripped.items()):
        warnings.append(f"removed {plural(k, name + ' attribute')}")
    time_dependent = []
    for key, (what, message) in _TIME_DEPENDENT.items():
        if frozen.get(key):
            time_dependent.append(what)
            warnings.append(message.format(n=frozen[key], s="s" if frozen[key] != 1 else ""))
    if motion:
        time_dependent.append("CSS animation/transition")
    if smil_href:
        warnings.append(
            f"removed {plural(smil_href, 'animation element')} that set href (an href set"
            " while the picture is drawn would bypass the reference checks made here)"
        )
    return SafeSvg(
        svg=svg,
        root_attrs=root_attrs,
        elements=count,
        depth=depth,
        parser="xml" if well_formed else "tolerant",
        warnings=warnings,
        expanded=expanded,
        time_dependent=time_dependent,
    )


def _apply_edits(s: str, edits: list[tuple[int, int, str]]) -> str:
    """``s`` with every ``(start, end, replacement)`` applied. An edit inside a span an earlier (enclosing) one
    already removed is dropped: an element removed with its content takes its tags' own edits with it."""
    parts = []
    pos = 0
    for a, b, rep in sorted(edits, key=lambda e: (e[0], -e[1])):
        if a < pos:
            pos = max(pos, b)
            continue
        parts.append(s[pos:a])
        parts.append(rep)
        pos = b
    parts.append(s[pos:])
    return "".join(parts)


# ---------------------------------------------------------------- SVG images inside the SVG

_DATA_URL = re.compile(r"data:([^,]{0,256}),", re.IGNORECASE)
_CSS_STRING_END = {'"': re.compile(r'(?:[^"\\]|\\.)*'), "'": re.compile(r"(?:[^'\\]|\\.)*")}
_UNQUOTED_END = re.compile(r"[^\s\"'()<>]*")


def _data_payloads(text: str) -> list[tuple[str, str]]:
    """``(header, payload)`` of every ``data:`` URL in ``text`` (an attribute value or a style sheet): up to the
    closing quote when it is quoted, else up to what ends an unquoted CSS ``url()`` or, for a whole attribute
    value that is the URL, its end."""
    out = []
    whole = text.strip().lower().startswith("data:")
    for m in _DATA_URL.finditer(text):
        before = text[: m.start()].rstrip()[-1:]
        if whole and m.start() == len(text) - len(text.lstrip()):
            payload = text[m.end() :]
        elif before in ("'", '"'):
            payload = _CSS_STRING_END[before].match(text, m.end()).group()
        else:
            payload = _UNQUOTED_END.match(text, m.end()).group()
        out.append((m.group(1), payload))
    return out


def _decode_data(header: str, payload: str) -> str:
    from urllib.parse import unquote_to_bytes

    if header.lower().replace(" ", "").endswith(";base64"):
        clean = re.sub(r"[^A-Za-z0-9+/]", "", unquote_to_bytes(payload).decode("latin-1"))
        try:
            raw = base64.b64decode(clean + "=" * (-len(clean) % 4))
        except ValueError:
            return ""
    else:
        raw = unquote_to_bytes(payload)
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16", "replace")
    return raw.decode("utf-8", "replace")


def _check_nested_images(
    svg: str, *, max_bytes: int, max_depth: int, max_elements: int, budget: int, max_nested: int
) -> int:
    """Validate every SVG document the markup embeds as a ``data:`` URL (``<image>``, ``<feImage>``, ``<img>``,
    CSS ``background-image``/``image-set``, any attribute or style sheet; ``srcdoc`` markup too), whatever its
    declared type, with the same caps: a ``<use>`` bomb inside an image costs the browser as much as one in the
    page. Returns the element instances they add; raises SvgRejected when their sum leaves ``budget``."""
    low = svg.lower()
    if "data:" not in low and "\\" not in svg and "srcdoc" not in low:
        return 0
    texts: list[tuple[str, str]] = []
    for tag in _scan_tags(svg, lambda: False):
        for aname, val, _a, _b in tag.attrs:
            if val:
                texts.append((aname.lower(), html.unescape(val)))
        if tag.name.rsplit(":", 1)[-1] == "style" and not tag.closing:
            end = _find_ci(svg, "</style", tag.end)
            texts.append(("style", html.unescape(svg[tag.end : end if end >= 0 else len(svg)])))
    docs: list[str] = []
    for aname, text in texts:
        if aname == "srcdoc" and "<svg" in text.lower():
            docs.append(text)
        variants = {text, _css_unescape(text)}
        for variant in variants:
            if "data:" not in variant.lower():
                continue
            for header, payload in _data_payloads(variant):
                doc = _decode_data(header, _css_unescape(payload))
                if "<svg" in doc.lower():
                    docs.append(doc)
    used = 0
    for doc in dict.fromkeys(docs):
        if max_nested <= 0:
            raise SvgRejected("too_large", "SVG images nested in SVG images are too deep")
        try:
            inner = validate_svg(
                doc,
                max_bytes=max_bytes,
                max_depth=max_depth,
                max_elements=max_elements,
                max_expanded=max(0, budget - used),
                max_nested=max_nested - 1,
            )
        except SvgRejected as e:
            if e.kind == "no_svg":
                continue
            raise SvgRejected(e.kind, f"an embedded SVG image: {e.reason}") from None
        if inner.time_dependent:
            raise SvgRejected(
                "invalid",
                f"an embedded SVG image has {', '.join(inner.time_dependent)}: inside an "
                "image it cannot be frozen, so every render would differ",
            )
        used += inner.expanded
        if used > budget:
            raise SvgRejected("too_large", "embedded SVG images expand to too many elements")
    return used


# ---------------------------------------------------------------- canvas size

_UNITS = {"": 1.0, "px": 1.0, "pt": 96 / 72, "pc": 16.0, "in": 96.0, "cm": 96 / 2.54, "mm": 96 / 25.4, "q": 96 / 101.6}
# Unambiguous (no two quantifiers compete for the same characters): `\d+\.?\d*` and `\s*…\s*` around an
# empty unit backtracked quadratically on a hostile 400 KB width="111…1!" (hours of CPU on the event loop).
_LEN = re.compile(r"([+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?:\s*([a-zA-Z]+))?")
_MAX_LEN_CHARS = 256  # a usable length is a few characters; longer values are garbage
_NUM = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def parse_length(value: str | None) -> float | None:
    """An absolute length in CSS px (unitless, px, pt, pc, in, cm, mm, Q), or None for
    percentages, em/ex, ``auto``, garbage, zero, negative or non-finite values."""
    if not value:
        return None
    value = value.strip()
    if not value or len(value) > _MAX_LEN_CHARS:
        return None
    m = _LEN.fullmatch(value)
    if not m:
        return None
    unit = (m.group(2) or "").lower()
    if unit not in _UNITS:
        return None
    try:
        v = float(m.group(1)) * _UNITS[unit]
    except (ValueError, OverflowError):
        return None
    if not (v > 0) or v == float("inf"):
        return None
    return v


def parse_viewbox(value: str | None) -> tuple[float, float, float, float] | None:
    if not value:
        return None
    nums = _NUM.findall(value[:200])
    if len(nums) != 4:
        return None
    try:
        x, y, w, h = (float(n) for n in nums)
    except ValueError:
        return None
    if not (w > 0 and h > 0) or w == float("inf") or h == float("inf"):
        return None
    return x, y, w, h


def canvas_size(
    attrs: dict[str, str], *, default_size: int = 512, size: int | None = None, min_side: int = 16, max_side: int = 2048
) -> tuple[int, int, tuple[float, float] | None, list[str]]:
    """Canvas ``(width, height, intrinsic, warnings)`` for a root with these attributes.

    Intrinsic size: ``width``/``height`` in absolute units; a missing or relative side is derived from the
    other side and the viewBox aspect, else ``default_size`` on the longest side with the viewBox aspect,
    else ``default_size`` square. ``size`` (if set) scales so the longest side equals it. The result is
    clamped to ``[min_side, max_side]`` per side, keeping the aspect ratio where possible.
    ``intrinsic`` is the size from absolute width/height (None when either is missing/relative).
    """
    warnings: list[str] = []
    w = parse_length(attrs.get("width"))
    h = parse_length(attrs.get("height"))
    vb = parse_viewbox(attrs.get("viewbox"))
    intrinsic = (w, h) if (w and h) else None
    if w and h:
        pass
    elif w and vb:
        h = w * vb[3] / vb[2]
    elif h and vb:
        w = h * vb[2] / vb[3]
    elif vb:
        k = default_size / max(vb[2], vb[3])
        w, h = vb[2] * k, vb[3] * k
    else:
        w = w or float(default_size)
        h = h or float(default_size)
    if size:
        k = size / max(w, h)
        w, h = w * k, h * k
    cw, ch = w, h
    if max(cw, ch) > max_side:
        k = max_side / max(cw, ch)
        cw, ch = cw * k, ch * k
    cw = min(max_side, max(min_side, int(round(cw))))
    ch = min(max_side, max(min_side, int(round(ch))))
    if not size and (cw, ch) != (int(round(w)), int(round(h))):
        warnings.append(f"canvas clamped from {_fmt(w)}x{_fmt(h)} to {cw}x{ch}")
    return cw, ch, intrinsic, warnings


def _fmt(v: float) -> str:
    return str(int(round(v))) if abs(v) < 1e12 else f"{v:.3g}"
