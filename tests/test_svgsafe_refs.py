"""Reference expansion is counted the way the browser resolves references (issue #15, finding 2): decoy ids,
``about:blank#id``, %-encoded fragments, ids in ``<template>``, bombs inside ``data:`` SVG images (``<image>``,
CSS ``background-image``, ``<feImage>``) and nested pattern fills are all refused by the validator, before any
browser sees them; ordinary reuse still passes."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from svgrft.core.svgsafe import SvgRejected, validate_svg

NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
XH = 'xmlns="http://www.w3.org/1999/xhtml"'


def laughs_defs(fan: int = 10, levels: int = 9, ref: str = "#l{}") -> str:
    """``<g id="l0">`` … ``<g id="l{levels}">``, each level ``fan`` uses of the previous one (10^9 instances);
    ``ref`` spells the reference to level i."""
    return '<g id="l0"><rect width="1" height="1"/></g>' + "".join(
        f'<g id="l{i}">' + f'<use href="{ref.format(i - 1)}"/>' * fan + "</g>" for i in range(1, levels + 1)
    )


def bomb(ref: str = "#l{}", decoy: str = "", levels: int = 9) -> str:
    """The bomb with every reference spelled ``ref`` and ``decoy`` (formatted per level) before it."""
    decoys = "".join(decoy.format(i) for i in range(levels + 1))
    return (
        f'<svg {NS} width="100" height="100">{decoys}<defs>{laughs_defs(ref=ref, levels=levels)}</defs>'
        f'<use href="{ref.format(levels)}"/></svg>'
    )


def b64(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


INNER = bomb()
IMAGE_IN_IMAGE = f'<svg {NS}><image href="{b64(INNER)}"/></svg>'
SMALL = f'<svg {NS}><circle r="3"/></svg>'
FO = '<foreignObject width="100" height="100">{}</foreignObject>'


@pytest.mark.parametrize(
    "svg",
    [
        bomb(decoy='<rect id="d{0}" id="l{0}"/>'),  # a second id attribute: the HTML parser keeps the first only
        bomb(ref="about:blank#l{}"),  # the page is about:blank: the same document
        bomb(ref="#l%3{}"),  # Chromium decodes the fragment ("#l%31" is "#l1")
        bomb(decoy=FO.format(f'<div {XH}><template><g id="l{{0}}"/></template></div>')),  # not in the document
        bomb(decoy='<rect id="l{0}"/>'),  # a plain duplicate id earlier in the document
        f'<svg {NS}><image width="10" height="10" href="{b64(INNER)}"/></svg>',
        f'<svg {NS}><image width="10" height="10" href="data:image/svg+xml,{quote(INNER)}"/></svg>',
        f"<svg {NS}>"
        + FO.format(f'<div {XH} style="width:9px;height:9px;background-image:url(&quot;{b64(INNER)}&quot;)"></div>')
        + "</svg>",
        f"<svg {NS}><style>rect {{ fill: red; }} div {{ background: url({b64(INNER)}) }}</style>"
        + FO.format(f"<div {XH}>x</div>")
        + "</svg>",
        f'<svg {NS}><filter id="f"><feImage href="{b64(INNER)}"/></filter><rect width="9" height="9" '
        'filter="url(#f)"/></svg>',
        f'<svg {NS}><image width="10" height="10" href="{b64(IMAGE_IN_IMAGE)}"/></svg>',
        # nested pattern fills: every rect painted with a pattern paints its content again
        f'<svg {NS}><defs><pattern id="p0" width="1" height="1"><rect width="1" height="1"/></pattern>'
        + "".join(
            f'<pattern id="p{i}" width="1" height="1">'
            + f'<rect width="1" height="1" fill="url(#p{i - 1})"/>' * 10
            + "</pattern>"
            for i in range(1, 9)
        )
        + '</defs><rect width="9" height="9" fill="url(#p8)"/></svg>',
        # the same through a style sheet and a style attribute
        f'<svg {NS}><defs><pattern id="p0" width="1" height="1"><rect width="1" height="1"/></pattern>'
        + "".join(
            f'<pattern id="p{i}" width="1" height="1">'
            + f'<rect width="1" height="1" style="fill:url(#p{i - 1})"/>' * 10
            + "</pattern>"
            for i in range(1, 9)
        )
        + "</defs><rect style=\"fill: url('#p8')\"/></svg>",
        # SMIL would set the href after validation
        bomb(ref='#l0"><set attributeName="href" to="#l{}"/></use><use href="#l0'),
        # a cycle that is not drawn but whose simple paths are walked
        f"<svg {NS}>"
        + "".join(
            f'<g id="c{i}">' + "".join(f'<use href="#c{j}"/>' for j in range(8) if j != i) + "</g>" for i in range(8)
        )
        + "</svg>",
    ],
    ids=[
        "duplicate_id_attribute",
        "about_blank_base",
        "percent_encoded_fragment",
        "template_decoy",
        "duplicate_id",
        "data_image_base64",
        "data_image_percent",
        "css_background_image",
        "style_sheet_data_url",
        "feimage",
        "image_in_image",
        "nested_patterns",
        "nested_patterns_style",
        "smil_set_href",
        "cycle_clique",
    ],
)
def test_expansion_bypasses_are_rejected_by_the_validator(svg):
    with pytest.raises(SvgRejected) as e:
        validate_svg(svg)
    assert e.value.kind == "too_large", e.value.reason


def test_embedded_images_nest_only_so_deep():
    svg = f"<svg {NS}><rect/></svg>"
    for _ in range(4):
        svg = f'<svg {NS}><image href="{b64(svg)}"/></svg>'
    with pytest.raises(SvgRejected) as e:
        validate_svg(svg)
    assert "nested" in e.value.reason


@pytest.mark.parametrize(
    "svg",
    [
        f'<svg {NS} width="40" height="40"><defs>{laughs_defs(10, 3)}</defs><use href="#l3"/></svg>',  # 10^3 is fine
        f'<svg {NS}><defs><linearGradient id="g"><stop offset="0"/><stop offset="1"/></linearGradient></defs>'
        + '<rect width="9" height="9" fill="url(#g)"/>' * 2000
        + "</svg>",
        f'<svg {NS}><style>.a {{ fill: url(#g) }} .b {{ fill: url(#dots) }}</style><defs><linearGradient id="g">'
        '<stop offset="0"/><stop offset="1"/></linearGradient><pattern id="dots" width="4" height="4">'
        + '<circle r="1"/>' * 10
        + "</pattern></defs>"
        + '<rect class="a" width="9" height="9"/>' * 500
        + "</svg>",
        f'<svg {NS} width="40" height="40"><rect width="40" height="40" fill="#0c0"/><use id="a" href="#a"/>'
        '<g id="b"><use href="#b"/></g><use id="c" href="#d"/><use id="d" href="#c"/></svg>',
        f'<svg {NS}><marker id="m"><circle r="1"/></marker><path d="M0 0 L1 1 L2 2 L3 3" marker-mid="url(#m)"/></svg>',
        f'<svg {NS}><image width="10" height="10" href="{b64(SMALL)}"/></svg>',
        f'<svg {NS}><image width="10" height="10" href="data:image/png;base64,iVBORw0KGgo="/></svg>',
    ],
    ids=[
        "use_10_cubed",
        "gradient_2000_times",
        "style_sheet_gradient_and_pattern",
        "small_cycles",
        "marker",
        "small_svg_image",
        "png_image",
    ],
)
def test_ordinary_reuse_still_passes(svg):
    safe = validate_svg(svg)
    assert safe.expanded >= safe.elements


# --- <use> billion laughs are refused before the browser; ordinary and cyclic <use> render (folded from test_qa_render.py) ---

SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'


def _use_laughs(fan: int, levels: int) -> str:
    return (
        f'<svg {SVG_NS} width="100" height="100"><defs><g id="l0"><rect width="1" height="1"/></g>'
        + "".join(f'<g id="l{i}">' + f'<use href="#l{i - 1}" x="{i}"/>' * fan + "</g>" for i in range(1, levels + 1))
        + f'</defs><use href="#l{levels}"/></svg>'
    )


@pytest.mark.browser
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "svg",
    [
        _use_laughs(10, 9),  # 10^9 instances from 1 KB: the browser spent its whole timeout on it
        _use_laughs(400, 2),
        f'<svg {SVG_NS}><g id="u0"><rect/></g>'
        + "".join(f'<g id="u{i}"><use href="#u{i - 1}"/><use xlink:href="#u{i - 1}" x="1"/></g>' for i in range(1, 40))
        + '<use href="#u39"/></svg>',
        f'<svg {SVG_NS}><rect id="u0" width="5" height="5"/>'  # a chain: quadratic
        + "".join(f'<use id="u{i}" href="#u{i - 1}"/>' for i in range(1, 9000))
        + "</svg>",
    ],
    ids=["fan10_depth9", "fan400_depth2", "binary_depth39", "chain_9000"],
)
def test_use_billion_laughs_is_rejected_before_the_browser(renderer, svg):
    res = renderer.render(svg)
    assert (res.ok, res.error_kind) == (False, "too_large") and "<use>" in res.reason
    assert "render" not in res.timings  # never reached Chromium


@pytest.mark.browser
def test_ordinary_and_cyclic_use_still_render(renderer):
    symbols = _use_laughs(10, 3)  # 10^3 instances: a normal amount of reuse
    cyclic = (
        f'<svg {SVG_NS} width="40" height="40"><rect width="40" height="40" fill="#0c0"/><use id="a" href="#a"/>'
        '<g id="b"><use href="#b"/></g><use id="c" href="#d"/><use id="d" href="#c"/></svg>'
    )
    for svg in (symbols, cyclic):
        res = renderer.render(svg)
        assert res.ok, res.reason
