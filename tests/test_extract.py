"""SVG extraction from model replies (svgrft.core.extract)."""

from __future__ import annotations

import pytest

from svgrft.core.extract import extract_svg, find_svg_spans, strip_reasoning

RED = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect fill="red"/></svg>'
BLUE = '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><rect fill="blue"/></svg>'


def test_fenced_svg_block():
    text = f"Here is the drawing:\n```svg\n{RED}\n```\nHope you like it."
    ex = extract_svg(text)
    assert (ex.svg, ex.method, ex.reason) == (RED, "fenced_svg", None)
    assert ex.ok


def test_generic_fence_with_svg():
    for fence in ("```", "```xml", "```html"):
        ex = extract_svg(f"Sure.\n{fence}\n{BLUE}\n```\n")
        assert ex.svg == BLUE and ex.method == "fenced", fence


def test_svg_fence_beats_generic_fence_and_bare():
    text = f"draft:\n```xml\n{BLUE}\n```\nfinal:\n```svg\n{RED}\n```\nand inline {BLUE}"
    ex = extract_svg(text)
    assert ex.svg == RED and ex.method == "fenced_svg"


def test_bare_svg():
    ex = extract_svg(f"The answer is {RED} -- done")
    assert ex.svg == RED and ex.method == "bare"


def test_case_insensitive_tags():
    svg = '<SVG width="5" height="5"><RECT/></Svg >'
    ex = extract_svg("x " + svg + " y")
    assert ex.svg == svg and ex.method == "bare"


def test_think_block_is_dropped_even_with_svg_inside():
    text = f"<think>maybe {BLUE} would work</think>\n{RED}"
    ex = extract_svg(text)
    assert ex.svg == RED


def test_svg_only_inside_think_is_ignored():
    ex = extract_svg(f"<think>draft: {RED}</think>\nI cannot draw that.")
    assert ex.svg is None and ex.reason == "no <svg> element in reply"


def test_unclosed_think_hides_everything_after_it():
    ex = extract_svg(f"<think>I will draw {RED} and then")
    assert ex.svg is None and "reasoning" in ex.reason
    assert strip_reasoning("before <THINK> after") == "before "


def test_stray_closing_think_drops_the_reasoning_before_it():
    # templates that open <think> in the prompt: the reply starts inside the reasoning
    ex = extract_svg(f"thinking about {BLUE} ...</think>\n```svg\n{RED}\n```")
    assert ex.svg == RED
    ex = extract_svg(f"reasoning {BLUE}</think> no drawing, sorry")
    assert ex.svg is None


def test_multiple_svgs_last_complete_one_wins():
    text = f"First try: {BLUE}\nBetter: {RED}"
    assert extract_svg(text).svg == RED
    fenced = f"```svg\n{BLUE}\n```\ntext\n```svg\n{RED}\n```"
    assert extract_svg(fenced).svg == RED
    # a complete SVG followed by a truncated retry: the complete one is used
    assert extract_svg(f"{BLUE} oops let me redo <svg width='3'><rect").svg == BLUE


def test_nested_svg_returns_the_outer_element():
    outer = '<svg width="30" height="30"><svg x="5" width="10" height="10"><rect/></svg><circle r="3"/></svg>'
    ex = extract_svg("here: " + outer + " end")
    assert ex.svg == outer


def test_truncated_svg():
    ex = extract_svg('```svg\n<svg width="100" height="100"><rect width="10" height="10"/><circ')
    assert ex.svg is None and "truncated" in ex.reason and ex.method is None
    ex = extract_svg('<svg width="100"')  # cut inside the start tag
    assert ex.svg is None and "truncated" in ex.reason


def test_no_svg():
    for text in ("I can't draw.", "<svgfoo></svgfoo>", "```python\nprint(1)\n```"):
        ex = extract_svg(text)
        assert ex.svg is None and ex.reason == "no <svg> element in reply" and not ex.ok, text


def test_xml_prologue_and_doctype_are_stripped():
    text = '<?xml version="1.0" encoding="UTF-8"?>\n<!-- c -->\n' + RED
    ex = extract_svg(text)
    assert ex.svg == RED
    assert extract_svg('<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd">' + RED).svg == RED


@pytest.mark.parametrize("text", [None, "", "   \n\t"])
def test_none_and_empty(text):
    ex = extract_svg(text)
    assert ex.svg is None and ex.reason == "empty reply" and ex.method is None


def test_non_string_input_is_a_reason_not_a_crash():
    assert extract_svg(123).svg is None  # type: ignore[arg-type]


def test_self_closing_svg():
    assert extract_svg('x <svg width="4" height="4"/> y').svg == '<svg width="4" height="4"/>'


def test_stray_closing_tag_is_ignored():
    assert extract_svg("</svg> junk " + RED).svg == RED


@pytest.mark.parametrize(
    "junk",
    [
        "a" * 1_000_000,
        "<svg " * 200_000,  # 1 MB of unclosed openers, no ">"
        "<svg" * 250_000 + ">",  # one ">" at the very end
        "```" * 333_333,
        "<think>" * 150_000,
        "</svg>" * 170_000,
        ("<svg>" * 100_000) + ("</svg>" * 1),
    ],
)
@pytest.mark.timeout(20)  # a quadratic (or catastrophic-regex) scan of 1 MB would take minutes
def test_one_megabyte_of_junk_ends(junk):
    ex = extract_svg(junk)
    assert ex.svg is None or ex.svg.startswith("<svg")
    assert ex.svg is not None or ex.reason


def test_find_svg_spans_reports_truncation():
    spans, truncated = find_svg_spans("<svg></svg> <svg><g>")
    assert spans == [(0, 11)] and truncated


# --- a closing tag in a comment or CDATA; hostile markup in linear time (folded from test_qa_core.py) ---

from tests.helpers import finishes  # noqa: E402


@pytest.mark.parametrize(
    "svg",
    [
        '<svg xmlns="http://www.w3.org/2000/svg" width="9"><!-- closes with </svg> --><rect width="9" height="9"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><style><![CDATA[ /* </svg> */ rect{fill:red} ]]></style><rect/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><!-- a --><g><svg><!-- </svg> --></svg><rect/></g></svg>',
    ],
    ids=["comment", "cdata", "nested"],
)
def test_closing_tag_inside_a_comment_or_cdata_does_not_cut_the_svg(svg):
    # The browser reads "</svg>" in a comment/CDATA as text; extraction ended the SVG there and the
    # drawing after it was lost (rendered blank → a zero for a correct drawing).
    from svgrft.core.extract import extract_svg
    from svgrft.core.svgsafe import validate_svg

    ex = extract_svg(f"Here:\n```svg\n{svg}\n```")
    assert ex.svg == svg
    safe = validate_svg(f"{svg}\ntrailing prose")
    assert safe.svg == svg and safe.warnings == ["ignored content after the closing </svg>"]


def test_hostile_markup_is_scanned_in_linear_time():
    out = finishes("""
        from svgrft.core.extract import extract_svg
        from svgrft.core.svgsafe import validate_svg, canvas_size, SvgRejected
        from svgrft.core.gates import check_text_heavy, check_injection
        N = 490_000
        H = '<svg xmlns="http://www.w3.org/2000/svg">'
        cases = [H + "<!---->" * (N // 7) + "</svg>", H + "<!-- --!>" * (N // 9) + "</svg>",
                 H + "<![CDATA[]]>" * (N // 12) + "</svg>", H + "<!--" * (N // 4), "<svg " * (N // 5) + ">",
                 H + "<" * N + "</svg>", H + '<rect a="' + '"' * N + "/></svg>", H + "<rect " + "a='b' " * (N // 6) + "/>",
                 H + "<foreignObject><style>" + "</st" * (N // 4), H + "<foreignObject><p>" + "<style>" * (N // 7),
                 H + "<text>" + "<tspan>" * (N // 7), "<svg>" * (N // 11) + "</svg>" * (N // 11),
                 H + "<rect x=a" + '"' * (N // 2) + ">", H + "<text>" + "data:image/svg+xml," * (N // 20) + "</text>",
                 H + '<image href="data:image/svg+xml;base64,' + "PHN2Zz48dGV4dD5h" * (N // 17) + '"/></svg>']
        for s in cases:
            ex = extract_svg(s)
            try:
                canvas_size(validate_svg(ex.svg or s).root_attrs)
            except SvgRejected:
                pass
            check_text_heavy(s, ["a red apple", "a wooden table"])
            check_injection(s, ["a red apple", "a wooden table"], "Draw")
            print("ok")
    """)
    assert out.count("ok") == 15
