"""Renderer fidelity: the sanitizer and the page around the SVG change nothing a legitimate SVG draws.

Each legitimate-feature SVG is rendered through the full path (extraction, validation, the hosting page,
the capture) and, in the same browser, as its raw markup in a bare HTML page (no sanitizing, no page CSS):
the pixels must be identical. Only references that leave the document may differ. Separate tests pin the
cases the fidelity comparison cannot see on its own (a fixed browser language, prefixed roots, which only
an XML document understands) and the validator's href rules.
"""

from __future__ import annotations

import base64

import pytest

from svgrft.core.extract import extract_svg
from svgrft.core.pngutil import decode_png, pixel
from svgrft.core.svgsafe import validate_svg

NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
W, H = 120, 90

LEGIT = {
    "fe_image_in_document": f'''<svg {NS} width="{W}" height="{H}"><defs>
<circle id="dot" cx="20" cy="20" r="15" fill="#c00"/>
<filter id="f" x="0" y="0" width="1" height="1"><feImage xlink:href="#dot" result="img"/>
<feOffset in="img" dx="30" dy="20" result="off"/><feFlood flood-color="#39f" result="bg"/>
<feMerge><feMergeNode in="bg"/><feMergeNode in="img"/><feMergeNode in="off"/></feMerge></filter>
<filter id="g"><feImage href="#dot"/><feGaussianBlur stdDeviation="2"/></filter></defs>
<rect width="80" height="60" filter="url(#f)"/><rect x="80" y="40" width="40" height="50" filter="url(#g)"/></svg>''',
    "patterns_href_chain": f'''<svg {NS} width="{W}" height="{H}"><defs>
<pattern id="p0" width="10" height="10" patternUnits="userSpaceOnUse"><rect width="5" height="5" fill="#093"/>
<circle cx="7" cy="7" r="2" fill="#f90"/></pattern>
<pattern id="p1" xlink:href="#p0" patternTransform="rotate(30)"/><pattern id="p2" href="#p1" x="3"/></defs>
<rect width="60" height="90" fill="url(#p0)"/><rect x="60" width="60" height="45" fill="url(#p2)"/>
<circle cx="90" cy="70" r="18" fill="url(#p1)" stroke="#000"/></svg>''',
    "masks_and_clips": f'''<svg {NS} width="{W}" height="{H}"><defs>
<linearGradient id="fade"><stop offset="0" stop-color="#fff"/><stop offset="1" stop-color="#000"/></linearGradient>
<mask id="m"><rect width="{W}" height="{H}" fill="url(#fade)"/><circle cx="60" cy="45" r="20" fill="#000"/></mask>
<clipPath id="c" clipPathUnits="objectBoundingBox"><circle cx=".5" cy=".5" r=".4"/></clipPath></defs>
<rect width="{W}" height="{H}" fill="#36c" mask="url(#m)"/><rect x="10" y="10" width="50" height="50" fill="#e33"
clip-path="url(#c)"/></svg>''',
    "markers": f'''<svg {NS} width="{W}" height="{H}"><defs>
<marker id="arrow" viewBox="0 0 10 10" refX="5" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
<path d="M0 0L10 5L0 10z" fill="#a0f"/></marker><marker id="dot" markerWidth="4" markerHeight="4" refX="2" refY="2">
<circle cx="2" cy="2" r="2" fill="#f60"/></marker></defs>
<polyline points="10,80 40,20 70,70 110,15" fill="none" stroke="#000" stroke-width="2" marker-start="url(#arrow)"
marker-mid="url(#dot)" marker-end="url(#arrow)"/></svg>''',
    "gradients_href_chain": f'''<svg {NS} width="{W}" height="{H}"><defs>
<linearGradient id="base"><stop offset="0" stop-color="#f00"/><stop offset=".5" stop-color="#ff0"/>
<stop offset="1" stop-color="#00f"/></linearGradient>
<linearGradient id="tilted" xlink:href="#base" x2="0" y2="1"/>
<linearGradient id="tilted2" href="#tilted" gradientTransform="rotate(20)" spreadMethod="reflect" x2=".3"/>
<radialGradient id="rad" xlink:href="#base" fx=".3" fy=".3"/></defs>
<rect width="40" height="90" fill="url(#base)"/><rect x="40" width="40" height="90" fill="url(#tilted2)"/>
<circle cx="100" cy="45" r="20" fill="url(#rad)"/></svg>''',
    "text": f'''<svg {NS} width="{W}" height="{H}"><defs><path id="arc" d="M10 80 Q60 10 110 80"/></defs>
<text x="5" y="20" font-family="sans-serif" font-size="14" fill="#234">Hi <tspan font-weight="bold"
fill="#c30">there</tspan></text><text font-family="serif" font-size="11"><textPath href="#arc">along a
curve</textPath></text><text x="60" y="60" text-anchor="middle" font-size="9" letter-spacing="1">mid</text></svg>''',
    "switch_and_nested_svg": f'''<svg {NS} width="{W}" height="{H}"><switch>
<rect systemLanguage="fr" width="60" height="45" fill="#f00"/><rect systemLanguage="en" width="60" height="45"
fill="#0a0"/><rect width="60" height="45" fill="#00f"/></switch>
<svg x="60" width="60" height="45" viewBox="0 0 10 10" preserveAspectRatio="xMaxYMid slice"><circle cx="5" cy="5"
r="5" fill="#fc0"/></svg><svg y="45" width="60" height="45" viewBox="0 0 20 10" overflow="visible"><rect width="30"
height="5" fill="#909"/></svg></svg>''',
    "use_symbols": f'''<svg {NS} width="{W}" height="{H}"><defs><symbol id="s" viewBox="0 0 10 10">
<path d="M5 0L10 10H0z" fill="#080"/></symbol><g id="row"><use href="#s" width="20" height="20"/>
<use xlink:href="#s" x="25" width="20" height="20" fill="#f00"/></g></defs><use href="#row" y="5"/>
<use href="#row" x="50" y="40" transform="rotate(10 60 45)"/><use href="#row" x="60" style="opacity:.5"/></svg>''',
    "style_sheet_and_data_image": f'''<svg {NS} width="{W}" height="{H}"><style>.a{{fill:#0cc}} g > .b{{stroke:#333;
stroke-width:3}}</style><rect class="a" width="50" height="50"/><g><circle class="b" cx="80" cy="40" r="20"
fill="none"/></g><image x="10" y="60" width="24" height="24" href="data:image/svg+xml;base64,{
        base64.b64encode(
            f'<svg {NS} width="8" height="8"><rect width="8" height="8" fill="#f0f"/></svg>'.encode()
        ).decode()
    }"/></svg>''',
    "foreign_object_and_links": f'''<svg {NS} width="{W}" height="{H}"><foreignObject x="5" y="5" width="110"
height="40"><div xmlns="http://www.w3.org/1999/xhtml" style="font:12px sans-serif;color:#036;background:#eef">HTML
<b>inside</b> SVG</div></foreignObject><a href="https://example.com/"><rect y="50" width="40" height="40"
fill="#c60"/></a><a xlink:href="#top"><circle cx="80" cy="70" r="15" fill="#06c"/></a></svg>''',
    "root_transform_and_overflow": f'''<svg {NS} width="{W}" height="{H}" overflow="visible"
transform="rotate(5)"><rect x="-20" y="-20" width="80" height="60" fill="#4a4"/><circle cx="110" cy="80" r="30"
fill="#a44" opacity=".7"/></svg>''',
    "root_display_none": f'<svg {NS} width="{W}" height="{H}" display="none"><rect width="{W}" height="{H}"/></svg>',
    "root_visibility_and_background": f'''<svg {NS} width="{W}" height="{H}" style="background:#fd8"
visibility="hidden"><rect width="50" height="50" fill="#00f"/><rect x="60" width="50" height="50" fill="#0f0"
visibility="visible"/></svg>''',
}


# the SVG's style sheet applies to the hosting page as well: rules meant for HTML in a foreignObject must not
# move the picture or change what the root inherits (currentColor, font size), as in an SVG document
PAGE_STYLE_LEAK = f'''<svg {NS} width="{W}" height="{H}"><style>div{{padding:10px;color:#c00}}
body,html{{font-size:40px;color:#0c0;margin:7px}} *{{line-height:3}}</style><rect width="40" height="40"
fill="currentColor"/><text x="50" y="30" font-size="1em">Aa</text><foreignObject x="0" y="50" width="120"
height="40"><div xmlns="http://www.w3.org/1999/xhtml">fo</div></foreignObject></svg>'''


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    w, h, rows = decode_png(png)
    return w, h, [bytes(r) for r in rows]


def _raw_shots(renderer, pages: list[tuple[str, str]], w: int, h: int) -> list[bytes]:
    """Screenshots of ``(kind, markup)`` in the renderer's own browser without sanitizing or page CSS on the
    SVG: kind ``html`` puts the markup in a bare HTML page, in a box of the canvas size that clips (without
    the clip, content past the root's box, as ``overflow="visible"`` draws it, makes the page scrollable and
    Chromium's anti-aliasing differs by a few levels); ``svg`` opens it as an SVG document (XML)."""
    r = renderer.renderer

    async def shoot() -> list[bytes]:
        ctx = await r._browser.new_context(
            java_script_enabled=False,
            offline=True,
            device_scale_factor=1,
            viewport={"width": w, "height": h},
            color_scheme="light",
        )
        try:
            await ctx.route("**/*", lambda route: route.abort())
            page = await ctx.new_page()
            out = []
            for kind, markup in pages:
                if kind == "html":
                    await page.set_content(
                        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
                        f'<body style="margin:0"><div style="width:{w}px;height:{h}px;'
                        f'overflow:hidden">{markup}</div></body></html>',
                        timeout=10_000,
                    )
                else:
                    await page.goto(
                        "data:image/svg+xml;base64," + base64.b64encode(markup.encode()).decode(), timeout=10_000
                    )
                out.append(await page.screenshot(clip={"x": 0, "y": 0, "width": w, "height": h}, timeout=10_000))
            return out
        finally:
            await ctx.close()

    renderer.start()
    return renderer._call(shoot())


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_legit_features_render_pixel_identical_to_the_raw_markup(renderer):
    names = list(LEGIT)
    raw = _raw_shots(renderer, [("html", LEGIT[n]) for n in names], W, H)
    problems = []
    for name, raw_png in zip(names, raw):
        res = renderer.render(LEGIT[name])
        if not res.ok:
            problems.append(f"{name}: {res.error_kind}: {res.reason}")
            continue
        if res.warnings:
            problems.append(f"{name}: warnings {res.warnings}")
        ours, theirs = _pixels(res.png), _pixels(raw_png)
        if ours != theirs:
            diff = sum(a != b for ra, rb in zip(ours[2], theirs[2]) for a, b in zip(ra, rb))
            problems.append(f"{name}: {diff} bytes of the picture differ from the raw markup")
    assert problems == []
    # the comparison is not vacuous: the pictures are different and not blank
    shas = {renderer.render(LEGIT[n]).sha256 for n in names if n != "root_display_none"}
    assert len(shas) == len(names) - 1
    blank = renderer.render(LEGIT["root_display_none"]).png
    assert {pixel(blank, x, y) for x in (0, W - 1) for y in (0, H - 1)} == {(255, 255, 255)}


@pytest.mark.browser
def test_pictures_match_the_svg_as_a_document_of_its_own(renderer):
    """Against the markup opened as an SVG document (no HTML page at all). The root_* cases are left out: a
    root's display/visibility/transform/background mean something else for the root of a document."""
    cases = {n: svg for n, svg in LEGIT.items() if not n.startswith("root_")}
    cases["page_style_leak"] = PAGE_STYLE_LEAK
    raw = _raw_shots(renderer, [("svg", svg) for svg in cases.values()], W, H)
    differ = [n for (n, svg), theirs in zip(cases.items(), raw) if _pixels(renderer.render(svg).png) != _pixels(theirs)]
    assert differ == []
    png = renderer.render(PAGE_STYLE_LEAK).png
    assert pixel(png, 0, 0) == pixel(png, 39, 39) == (0, 0, 0)  # not moved, currentColor is the root's own


@pytest.mark.browser
def test_only_references_that_leave_the_document_differ(renderer):
    ext = (
        f'<svg {NS} width="{W}" height="{H}"><rect width="40" height="40" fill="#c0c"/>'
        '<image x="40" width="80" height="90" href="http://127.0.0.1:9/x.png"/>'
        '<image x="0" y="40" width="40" height="50" xlink:href="elsewhere.png"/>'
        '<filter id="f"><feImage href="http://127.0.0.1:9/y.png"/></filter>'
        '<rect x="0" y="60" width="30" height="30" filter="url(#f)"/></svg>'
    )
    without = (
        ext.replace(' href="http://127.0.0.1:9/x.png"', "")
        .replace(' xlink:href="elsewhere.png"', "")
        .replace(' href="http://127.0.0.1:9/y.png"', "")
    )
    res = renderer.render(ext)
    assert res.ok and res.warnings == [
        "removed 3 external image hrefs (a reference that leaves the document is not fetched and would draw a "
        "broken-image icon; only data: URIs and #id on feImage are kept)"
    ]
    raw_ext, raw_without = _raw_shots(renderer, [("html", ext), ("html", without)], W, H)
    assert _pixels(res.png) == _pixels(raw_without)
    assert _pixels(raw_ext) != _pixels(raw_without)  # the raw page draws broken-image icons


@pytest.mark.browser
def test_switch_system_language_matches_like_an_english_browser(renderer):
    svg = (
        f'<svg {NS} width="40" height="40"><switch><rect systemLanguage="de" width="40" height="40" fill="#f00"/>'
        '<rect systemLanguage="en" width="40" height="40" fill="#0f0"/><rect width="40" height="40" fill="#00f"/>'
        '</switch><switch><rect systemLanguage="en-US" width="10" height="10" fill="#ff0"/></switch></svg>'
    )
    png = renderer.render(svg).png
    assert pixel(png, 30, 30) == (0, 255, 0) and pixel(png, 5, 5) == (255, 255, 0)


@pytest.mark.browser
def test_root_display_none_draws_nothing(renderer):
    svg = f'<svg {NS} width="40" height="40" display="none"><rect width="40" height="40" fill="#f00"/></svg>'
    res = renderer.render(svg)
    assert res.ok and (res.width, res.height) == (40, 40) and pixel(res.png, 20, 20) == (255, 255, 255)
    styled = svg.replace(' display="none"', ' style="display:none"')
    assert pixel(renderer.render(styled).png, 20, 20) == (255, 255, 255)
    # a root that is drawn still fills the canvas from its top-left corner (no baseline gap, no offset)
    shown = svg.replace(' display="none"', ' display="inline"')
    png = renderer.render(shown).png
    assert pixel(png, 0, 0) == pixel(png, 39, 39) == (255, 0, 0)


PREFIXED = (
    '<?xml version="1.0"?>\n<svg:svg xmlns:svg="http://www.w3.org/2000/svg" '
    'xmlns:l="http://www.w3.org/1999/xlink" width="60" height="40" viewBox="0 0 30 20"><svg:defs>'
    '<svg:linearGradient id="g"><svg:stop offset="0" stop-color="#f00"/>'
    '<svg:stop offset="1" stop-color="#00f"/>'
    '</svg:linearGradient><svg:rect id="r" width="10" height="10"/></svg:defs>'
    '<svg:rect width="30" height="20" fill="url(#g)"/><svg:use l:href="#r" x="10" y="5" fill="#0f0"/>'
    "</svg:svg>"
)


def test_prefixed_root_is_extracted_and_unprefixed():
    ex = extract_svg("Here:\n" + PREFIXED + "\nDone.")
    assert ex.ok and ex.method == "bare" and ex.svg.startswith("<svg:svg") and ex.svg.endswith("</svg:svg>")
    safe = validate_svg(ex.svg)
    assert safe.parser == "xml" and safe.warnings == []
    assert "<svg:" not in safe.svg and "</svg:" not in safe.svg and '<use xlink:href="#r"' in safe.svg
    assert safe.svg.startswith("<svg xmlns:svg=") and safe.svg.endswith("</svg>")
    assert safe.root_attrs["width"] == "60" and safe.root_attrs["viewbox"] == "0 0 30 20"
    # nested in a fence, and next to an ordinary root: the last complete one wins, as for <svg>
    fenced = extract_svg(f"```svg\n{PREFIXED}\n```")
    assert fenced.method == "fenced_svg" and fenced.svg.startswith("<svg:svg")
    # a prefix that is not bound to the SVG namespace is not rewritten (no browser draws it as SVG)
    other = '<x:svg xmlns:x="urn:other"><x:rect/></x:svg>'
    assert validate_svg(other).svg == other


# an unprefixed root with prefixed children and an XLink prefix of its own: also XML-only spellings
MIXED = (
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:s="http://www.w3.org/2000/svg" '
    'xmlns:xl="http://www.w3.org/1999/xlink" width="60" height="40"><s:defs><s:circle id="c" r="8"/>'
    '</s:defs><s:rect width="30" height="40" fill="#00f"/><use xl:href="#c" x="45" y="20" fill="#f0f"/></svg>'
)


@pytest.mark.browser
def test_prefixed_root_renders_like_the_svg_document(renderer):
    res = renderer.render(extract_svg(PREFIXED).svg)
    assert res.ok and (res.width, res.height) == (60, 40)
    mixed = renderer.render(MIXED)
    raw, raw_mixed = _raw_shots(renderer, [("svg", PREFIXED), ("svg", MIXED)], 60, 40)
    assert _pixels(res.png) == _pixels(raw) and _pixels(mixed.png) == _pixels(raw_mixed)
    assert pixel(res.png, 2, 2)[0] > 200 and pixel(res.png, 30, 20) == (0, 255, 0)
    assert pixel(mixed.png, 10, 10) == (0, 0, 255) and pixel(mixed.png, 45, 20) == (255, 0, 255)


def test_validator_keeps_in_document_feimage_refs_and_says_why_it_removes():
    s = (
        f'<svg {NS}><rect id="a" width="5" height="5"/><filter id="f"><feImage xlink:href="#a"/>'
        '<feImage href=" #a"/><feImage href="http://x/y.png"/></filter>'
        '<image href="#a"/><image href="data:image/png;base64,AAAA"/><image xlink:href="y.png"/></svg>'
    )
    safe = validate_svg(s)
    assert safe.svg.count('href="#a"') == 1 and 'href=" #a"' in safe.svg and "data:image/png" in safe.svg
    assert "http://x" not in safe.svg and "y.png" not in safe.svg and "<image/>" in safe.svg.replace(" ", "")
    assert safe.warnings == [
        "removed 2 external image hrefs (a reference that leaves the document is not fetched and would draw a "
        "broken-image icon; only data: URIs and #id on feImage are kept)",
        "removed 1 #id href on <image>/<img> (an image element cannot show an element; the browser would load "
        "the page itself and draw a broken-image icon)",
    ]
