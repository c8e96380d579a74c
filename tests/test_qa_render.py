"""QA pass B: the renderer's Python-side checks must see the SVG the way Chromium's HTML parser does.

The SVG is rendered inline in an HTML page, so "what is an element" is decided by the HTML tokenizer and
tree builder, not by an XML reading. Each case below was a parser differential: the validator's scanner
missed elements (or hrefs) that Chromium then built. The differential test loads the sanitized page in a
real Chromium (JS off, network off) and compares the DOM with what the validator counted and cleaned.
"""

from __future__ import annotations

import asyncio

import pytest

from svgrft.core.render import _page_html, find_chromium
from svgrft.core.svgsafe import SvgRejected, validate_svg

U = "http://127.0.0.1:9/x.png"  # never fetched (requests are aborted); only its presence is checked
NS = 'xmlns="http://www.w3.org/2000/svg"'
XH = 'xmlns="http://www.w3.org/1999/xhtml"'
IMG = f'<image href="{U}" width="50" height="50"/>'
HIMG = f'<img src="{U}" width="50" height="50"/>'

DIFFERENTIALS = {
    # "<!-->" and "<!--->" are complete comments to HTML; XML (and the old scanner) read on to the next "-->"
    "empty_comment": f'<svg {NS} width="100" height="100"><!-->{IMG}<g><g><rect width="5" height="5"/></g></g>--></svg>',
    "empty_comment_dash": f'<svg {NS} width="100" height="100"><!--->{IMG}--></svg>',
    # "--!>" ends a comment in HTML
    "bang_comment": f'<svg {NS} width="100" height="100"><!-- --!>{IMG}<!-- --></svg>',
    # a quote inside an unquoted value (or an attribute name) does not start a quoted value in HTML
    "unquoted_value_quote": f'<svg {NS} width="100" height="100"><rect x=a"b/>{IMG}<rect y="z"/></svg>',
    "attribute_name_quote": f'<svg {NS} width="100" height="100"><rect "a=\'b/>{IMG}<rect y=\'z\'/></svg>',
    # CDATA inside HTML content (foreignObject) is a bogus comment that ends at the first ">"
    "cdata_in_html": f'<svg {NS} width="100" height="100"><foreignObject width="100" height="100"><div {XH}>'
                     f'<![CDATA[>{HIMG}]]></div></foreignObject></svg>',
    # <style>/<title> in HTML content are raw text: a fake tag inside them swallowed the real <img> after them
    "style_raw_text": f'<svg {NS} width="100" height="100"><foreignObject width="100" height="100"><div {XH}>'
                      f'<style><b a="</style>{HIMG}<i b="</style></div></foreignObject></svg>',
    "title_raw_text": f'<svg {NS} width="100" height="100"><foreignObject width="100" height="100"><div {XH}>'
                      f'<title><b a="</title>{HIMG}<i b="</title></div></foreignObject></svg>',
    # an HTML tag in SVG content breaks out to HTML content, where <style> is raw text
    "breakout_then_style": f'<svg {NS} width="100" height="100"><p></p><style><b a="</style>{IMG}<i b="</style></svg>',
    # "/>" after an unquoted value is not self-closing; "<div/>" in HTML content is not self-closing either
    "unquoted_slash_nesting": f'<svg {NS} width="100" height="100">' + "<g x=a/>" * 30 + "<rect/></svg>",
    "html_self_closing_nesting": f'<svg {NS} width="100" height="100"><foreignObject width="100" height="100">'
                                 + f"<div {XH}/>" * 30 + "</foreignObject></svg>",
    # <img> (and <image>, which HTML turns into <img>) in foreignObject draw broken-image icons too
    "img_in_foreign_object": f'<svg {NS} width="100" height="100"><foreignObject width="100" height="100">'
                             f'<img {XH} src="{U}" width="50" height="50"/><image {XH} src="{U}"/></foreignObject></svg>',
}

_DOM_JS = """() => {
  const root = document.getElementById('svgrft-canvas');
  let n = 0, depth = 0; const ext = [];
  const walk = (el, d) => { for (const c of el.children) { n++; depth = Math.max(depth, d);
      const name = c.localName.toLowerCase();
      if (['image', 'feimage', 'img'].includes(name)) for (const a of ['href', 'xlink:href', 'src', 'srcset']) {
        const v = c.getAttribute(a); if (v && !v.trim().toLowerCase().startsWith('data:')) ext.push(name + ' ' + a); }
      walk(c, d + 1); } };
  walk(root, 1);
  return {n, depth, ext};
}"""


@pytest.fixture(scope="module")
def dom_of():
    """``dom_of(list of page HTML)`` → what Chromium built for each (JS and network off, like the renderer)."""

    async def run(pages):
        from playwright.async_api import async_playwright

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
            try:
                ctx = await browser.new_context(java_script_enabled=False, offline=True)
                await ctx.route("**/*", lambda route: route.abort())
                page = await ctx.new_page()
                out = []
                for html in pages:
                    await page.set_content(html, timeout=10_000)
                    out.append(await page.evaluate(_DOM_JS))
                return out
            finally:
                await browser.close()

    return lambda pages: asyncio.run(run(pages))


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_validator_sees_every_element_and_href_that_chromium_builds(dom_of):
    safes = {name: validate_svg(svg) for name, svg in DIFFERENTIALS.items()}
    doms = dom_of([_page_html(s.svg, 100, 100) for s in safes.values()])
    problems = []
    for (name, safe), dom in zip(safes.items(), doms):
        if dom["ext"]:
            problems.append(f"{name}: external href left for Chromium: {dom['ext']}")
        if safe.elements < dom["n"]:
            problems.append(f"{name}: validator counted {safe.elements} elements, Chromium built {dom['n']}")
        if safe.depth + 1 < dom["depth"]:  # the DOM walk counts the root <svg> as level 1 as well
            problems.append(f"{name}: validator depth {safe.depth}, Chromium depth {dom['depth']}")
    assert problems == []
    assert doms[0]["n"] == 5  # the differential is real: Chromium did build the elements behind "<!-->"


@pytest.mark.parametrize("svg,kind", [
    # caps were enforced on the XML reading alone when the SVG was well-formed XML
    (f'<svg {NS}><!-->' + "<g/>" * 25_000 + "--></svg>", "too_large"),
    (f'<svg {NS}><!-->' + "<g>" * 100 + "</g>" * 100 + "--></svg>", "invalid"),
    (f'<svg {NS}><foreignObject>' + f"<div {XH}/>" * 100 + "</foreignObject></svg>", "invalid"),
], ids=["count_behind_empty_comment", "depth_behind_empty_comment", "depth_of_html_self_closing"])
def test_caps_apply_to_what_the_html_parser_builds(svg, kind):
    with pytest.raises(SvgRejected) as e:
        validate_svg(svg)
    assert e.value.kind == kind


def _use_laughs(fan: int, levels: int) -> str:
    return (f'<svg {NS} width="100" height="100"><defs><g id="l0"><rect width="1" height="1"/></g>'
            + "".join(f'<g id="l{i}">' + f'<use href="#l{i - 1}" x="{i}"/>' * fan + "</g>" for i in range(1, levels + 1))
            + f'</defs><use href="#l{levels}"/></svg>')


@pytest.mark.browser
@pytest.mark.timeout(120)
@pytest.mark.parametrize("svg", [
    _use_laughs(10, 9),  # 10^9 instances from 1 KB: the browser spent its whole timeout on it
    _use_laughs(400, 2),
    f'<svg {NS}><g id="u0"><rect/></g>' + "".join(f'<g id="u{i}"><use href="#u{i - 1}"/><use xlink:href="#u{i - 1}" '
                                                  'x="1"/></g>' for i in range(1, 40)) + '<use href="#u39"/></svg>',
    f'<svg {NS}><rect id="u0" width="5" height="5"/>'  # a chain: quadratic
    + "".join(f'<use id="u{i}" href="#u{i - 1}"/>' for i in range(1, 9000)) + "</svg>",
], ids=["fan10_depth9", "fan400_depth2", "binary_depth39", "chain_9000"])
def test_use_billion_laughs_is_rejected_before_the_browser(renderer, svg):
    res = renderer.render(svg)
    assert (res.ok, res.error_kind) == (False, "too_large") and "<use>" in res.reason
    assert "render" not in res.timings  # never reached Chromium


@pytest.mark.browser
def test_ordinary_and_cyclic_use_still_render(renderer):
    symbols = _use_laughs(10, 3)  # 10^3 instances: a normal amount of reuse
    cyclic = (f'<svg {NS} width="40" height="40"><rect width="40" height="40" fill="#0c0"/><use id="a" href="#a"/>'
              '<g id="b"><use href="#b"/></g><use id="c" href="#d"/><use id="d" href="#c"/></svg>')
    for svg in (symbols, cyclic):
        res = renderer.render(svg)
        assert res.ok, res.reason
