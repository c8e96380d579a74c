"""The hardened pooled renderer (svgrft.core.render + svgrft.core.svgsafe), with a real headless Chromium.

The hostile cases are the probes of docs/reference/rendering.md §7: each must end in bounded time with a PNG
or a typed error, leave no trace of its payload in the picture, make zero requests to a canary HTTP server
on 127.0.0.1, and leave the renderer able to render a normal SVG afterwards. A control test renders the
same probes in a plain (unhardened) Playwright page to show that the probes really do fire there."""

from __future__ import annotations

import asyncio
import http.server
import os
import struct
import threading
import time
import zlib
from pathlib import Path

import psutil
import pytest

from svgrft.core.extract import extract_svg
from svgrft.core.pngutil import count_color, decode_png, is_near_uniform, pixel
from svgrft.core.render import Renderer, RenderResult, SyncRenderer, chromium_version, find_chromium
from svgrft.core.svgsafe import SvgRejected, canvas_size, validate_svg
from svgrft.errors import BrowserNotFoundError
from tests.conftest import TEST_RENDER_TIMEOUT_MS

CORPUS = Path(__file__).resolve().parent / "data" / "svg-corpus"
NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
NORMAL = f'<svg {NS} width="64" height="48"><rect width="64" height="48" fill="#3366cc"/><circle cx="32" cy="24" r="10" fill="#fc0"/></svg>'
RED = (255, 0, 0)
MAGENTA = (255, 0, 255)


def _png(w: int, h: int, rgb: tuple[int, int, int]) -> bytes:
    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + bytes(rgb) * w for _ in range(h))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


MAGENTA_PNG = _png(8, 8, MAGENTA)


class Canary:
    """A loopback HTTP server that records every request and answers with magenta content."""

    def __init__(self):
        self.hits: list[str] = []
        canary = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                canary.hits.append(self.path)
                if self.path.endswith(".css"):
                    body, ctype = b"*{fill:magenta!important;background:magenta!important}", "text/css"
                elif ".svg" in self.path:
                    body = (
                        f'<svg {NS}><rect id="a" width="500" height="500" fill="magenta"/>'
                        '<pattern id="p" width="9" height="9"><rect width="9" height="9" fill="magenta"/></pattern>'
                        "</svg>"
                    ).encode()
                    ctype = "image/svg+xml"
                elif "frame" in self.path or "html" in self.path:
                    body, ctype = b"<body style='background:magenta'>CANARY</body>", "text/html"
                else:
                    body, ctype = MAGENTA_PNG, "image/png"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def canary():
    c = Canary()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def r():
    rr = SyncRenderer(pool_size=2, timeout_ms=TEST_RENDER_TIMEOUT_MS)
    yield rr
    rr.close()


@pytest.fixture(scope="module")
def baseline(r):
    res = r.render(NORMAL)
    assert res.ok, res
    return res.sha256


@pytest.fixture(scope="module")
def file_canaries(tmp_path_factory):
    d = tmp_path_factory.mktemp("canary")
    (d / "canary.png").write_bytes(MAGENTA_PNG)
    (d / "canary.html").write_text("<body style='background:magenta'>CANARY-SECRET</body>")
    return d


def _healthy(r, baseline):
    res = r.render(NORMAL)
    assert res.ok and res.sha256 == baseline, res


# ---------------------------------------------------------------- browser discovery


def test_find_chromium_and_version():
    path = find_chromium()
    assert os.access(path, os.X_OK)
    assert (chromium_version(path) or "").lower().startswith(("chromium", "google chrome", "headless"))


def test_find_chromium_explicit_and_env(monkeypatch, tmp_path):
    fake = tmp_path / "my-chrome"
    fake.write_text("#!/bin/sh\necho 'Chromium 1.2.3'\n")
    fake.chmod(0o755)
    assert find_chromium(str(fake)) == str(fake)
    monkeypatch.setenv("SVGRFT_CHROMIUM", str(fake))
    assert find_chromium() == str(fake)
    assert chromium_version(str(fake)) == "Chromium 1.2.3"
    monkeypatch.setenv("SVGRFT_CHROMIUM", str(tmp_path / "missing"))
    with pytest.raises(BrowserNotFoundError) as ei:
        find_chromium()
    assert "SVGRFT_CHROMIUM" in ei.value.message and "apt-get install" in ei.value.hint


def test_find_chromium_none_found(monkeypatch, tmp_path):
    import svgrft.core.render as render_mod

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "pw"))
    monkeypatch.setattr(render_mod, "_SYSTEM_CANDIDATES", ["chromium", str(tmp_path / "nope")])
    with pytest.raises(BrowserNotFoundError) as ei:
        find_chromium()
    hint = ei.value.hint
    assert "chromium-headless-shell" in hint and "playwright install chromium" in hint and "brew" in hint


def test_find_chromium_prefers_playwright_download(monkeypatch, tmp_path):
    exe = tmp_path / "pw" / "chromium_headless_shell-1255" / "chrome-linux" / "headless_shell"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "pw"))
    assert find_chromium() == str(exe)
    exe.chmod(0o644)  # present but not executable: skipped, the system browser is used
    assert find_chromium() != str(exe)


@pytest.mark.timeout(60)
def test_broken_chromium_gives_render_error(tmp_path):
    from svgrft.errors import RenderError

    fake = tmp_path / "broken-chrome"
    fake.write_text("#!/bin/sh\necho 'cannot start' >&2\nexit 3\n")
    fake.chmod(0o755)
    rr = SyncRenderer(chromium_path=str(fake))
    try:
        with pytest.raises(RenderError) as ei:
            rr.render(NORMAL)
        assert str(fake) in ei.value.message and ei.value.hint
    finally:
        rr.close()


# ---------------------------------------------------------------- validation (no browser)


def test_validate_rejects_dtd_and_entities():
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        f"<svg {NS}><text>&lol2;</text></svg>"
    )
    xxe = f'<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg {NS}><text>&x;</text></svg>'
    for s in (laughs, xxe, f"<svg {NS}><!ENTITY x 'y'></svg>"):
        with pytest.raises(SvgRejected) as ei:
            validate_svg(s)
        assert ei.value.kind == "invalid"


def test_validate_tolerates_llm_malformed_xml_but_keeps_caps():
    sloppy = f'<svg {NS} width="10" height="10"><text>Tom &amp; Jerry & friends&nbsp;&copy;</text><rect width="5" height="5"></svg>'
    safe = validate_svg(sloppy)
    assert safe.parser == "tolerant" and safe.elements == 3
    deep = f"<svg {NS}>" + "<g>" * 100 + "&nbsp;" + "</svg>"  # malformed AND too deep
    with pytest.raises(SvgRejected) as ei:
        validate_svg(deep)
    assert ei.value.kind == "invalid" and "depth" in ei.value.reason
    many = f"<svg {NS}>" + "<rect>" * 30 + " & </svg>"
    with pytest.raises(SvgRejected) as ei:
        validate_svg(many, max_elements=20)
    assert ei.value.kind == "too_large"


def test_validate_removes_external_image_hrefs():
    s = (
        f'<svg {NS}><image href="http://127.0.0.1:1/a.png"/><image xlink:href=" FILE:///etc/passwd"/>'
        '<image href="&#104;ttp://x/y.png"/><image href="data:image/png;base64,AAAA"/>'
        '<filter id="f"><feImage xlink:href="https://x/y.svg"/></filter><a href="http://ok/link">t</a></svg>'
    )
    safe = validate_svg(s)
    assert len(safe.warnings) == 1 and safe.warnings[0].startswith("removed 4 external image hrefs (")
    assert "http://127" not in safe.svg and "file:" not in safe.svg.lower() and "https://x" not in safe.svg
    assert "&#104;ttp" not in safe.svg
    assert "data:image/png;base64,AAAA" in safe.svg and 'href="http://ok/link"' in safe.svg


def test_validate_byte_cap_and_no_svg():
    with pytest.raises(SvgRejected) as ei:
        validate_svg("<svg>" + "x" * 600 + "</svg>", max_bytes=500)
    assert ei.value.kind == "too_large"
    with pytest.raises(SvgRejected) as ei:
        validate_svg("<svg>" + "é" * 300 + "</svg>", max_bytes=500)  # 311 chars, 611 bytes
    assert ei.value.kind == "too_large"
    with pytest.raises(SvgRejected) as ei:
        validate_svg("just text")
    assert ei.value.kind == "no_svg"
    with pytest.raises(SvgRejected) as ei:
        validate_svg('<svg width="10" height="1')
    assert ei.value.kind == "invalid" and "truncated" in ei.value.reason


@pytest.mark.parametrize(
    "attrs,expected",
    [
        ({"width": "300", "height": "200"}, (300, 200)),
        ({"width": "300px", "height": "150.4"}, (300, 150)),
        ({"width": "2in", "height": "1in"}, (192, 96)),
        ({"viewbox": "0 0 800 500"}, (512, 320)),
        ({"width": "100%", "height": "100%", "viewbox": "0,0,400,800"}, (256, 512)),
        ({"width": "400", "viewbox": "0 0 800 200"}, (400, 100)),
        ({"width": "50em", "height": "auto"}, (512, 512)),
        ({}, (512, 512)),
        ({"width": "-5", "height": "NaN", "viewbox": "0 0 0 0"}, (512, 512)),
        ({"width": "100000", "height": "100000"}, (2048, 2048)),
        ({"width": "100000", "height": "10"}, (2048, 16)),
        ({"width": "1", "height": "1"}, (16, 16)),
        ({"width": "1e400", "height": "20"}, (512, 20)),
    ],
)
def test_canvas_size(attrs, expected):
    w, h, _, _ = canvas_size(attrs)
    assert (w, h) == expected


def test_canvas_size_scaling_and_warning():
    assert canvas_size({"width": "700", "height": "500"}, size=256)[:2] == (256, 183)
    w, h, _, warn = canvas_size({"width": "100000", "height": "100000"})
    assert warn == ["canvas clamped from 100000x100000 to 2048x2048"]


# ---------------------------------------------------------------- rendering basics


@pytest.mark.browser
def test_normal_render(r):
    res = r.render(NORMAL)
    assert isinstance(res, RenderResult) and res.ok and res.error_kind is None and res.reason is None
    assert (res.width, res.height) == (64, 48)
    w, h, rows = decode_png(res.png)
    assert (w, h) == (64, 48)  # the full canvas, no crop
    assert pixel((w, h, rows), 1, 1) == (0x33, 0x66, 0xCC)
    assert pixel((w, h, rows), 32, 24) == (0xFF, 0xCC, 0x00)
    assert pixel((w, h, rows), 63, 47) == (0x33, 0x66, 0xCC)
    assert set(res.timings) >= {"validate", "render", "total"}
    import hashlib

    assert res.sha256 == hashlib.sha256(res.png).hexdigest()


@pytest.mark.browser
def test_white_background_and_viewbox_scaling(r):
    res = r.render(f'<svg {NS} viewBox="0 0 800 500"><rect x="700" y="400" width="100" height="100" fill="red"/></svg>')
    assert (res.width, res.height) == (512, 320)
    assert pixel(res.png, 5, 5) == (255, 255, 255)
    assert pixel(res.png, 508, 316) == RED  # bottom-right corner is drawn: scaled, not cropped


@pytest.mark.browser
def test_size_option_scales_svg_without_viewbox(r):
    svg = f'<svg {NS} width="200" height="100"><rect x="180" y="0" width="20" height="100" fill="red"/></svg>'
    r.renderer.size = 100
    try:
        res = r.render(svg)
    finally:
        r.renderer.size = None
    assert (res.width, res.height) == (100, 50)
    assert pixel(res.png, 95, 25) == RED and pixel(res.png, 80, 25) == (255, 255, 255)


@pytest.mark.browser
def test_malformed_llm_svg_still_renders(r):
    svg = (
        f'<svg {NS} width="100" height="50"><rect width="100" height="50" fill="#0a0"/>'
        '<text x="5" y="30">Tom & Jerry&nbsp;&copy;</text></svg>'
    )
    res = r.render(svg)
    assert res.ok and pixel(res.png, 95, 45) == (0, 0xAA, 0)
    truncated = f'<svg {NS} width="40" height="40"><rect width="40" height="40" fill="blue"/><circle'
    res = r.render(truncated)
    assert res.ok and any("no closing" in w for w in res.warnings) and pixel(res.png, 20, 20) == (0, 0, 255)


@pytest.mark.browser
def test_render_reply(r):
    ex, res = r.render_reply(f"<think>{NORMAL.replace('#3366cc', 'red')}</think>\n```svg\n{NORMAL}\n```")
    assert ex.method == "fenced_svg" and res.ok and pixel(res.png, 1, 1) == (0x33, 0x66, 0xCC)
    ex, res = r.render_reply("no drawing today")
    assert ex.svg is None and not res.ok and res.error_kind == "no_svg" and res.reason == ex.reason
    ex, res = r.render_reply(None)
    assert res.error_kind == "no_svg" and res.png is None


@pytest.mark.browser
@pytest.mark.parametrize("bad", [None, b"<svg></svg>", 12])
def test_non_string_input_is_typed(r, bad):
    res = r.render(bad)
    assert not res.ok and res.error_kind == "invalid" and res.png is None


@pytest.mark.browser
def test_corpus_renders_deterministically(r):
    every = sorted(CORPUS.glob("*.svg"))
    assert len(every) >= 100
    # the 7 hand-written complex ones (mask, filters, foreignObject, textPath, …) + every 4th generated one
    files = [f for i, f in enumerate(every) if f.name.startswith("hand_") or i % 4 == 0]
    svgs = [f.read_text() for f in files]
    first = r.render_many(svgs)
    second = r.render_many(svgs)
    bad = [(f.name, x.error_kind, x.reason) for f, x in zip(files, first) if not x.ok]
    assert not bad
    assert [x.sha256 for x in first] == [x.sha256 for x in second]
    assert len({x.sha256 for x in first}) == len(files)  # distinct pictures, not one blank
    meta = {f.name: (x.width, x.height) for f, x in zip(files, first)}
    assert meta["gen_000.svg"] == (700, 500)
    assert not any(is_near_uniform(x.png) for x in first[:10])


# ---------------------------------------------------------------- hostile inputs (rendering.md §7)


def _hostile_cases(u: str, files: Path) -> dict[str, str]:
    fill_red = "<rect width='300' height='200' fill='red'/>"
    return {
        "script_rewrites_dom": f'<svg {NS} width="300" height="200"><script>document.documentElement.innerHTML='
        f'"{fill_red}";document.body.style.background="red"</script><circle r="5"/></svg>',
        "onload_handler": f'<svg {NS} width="300" height="200" onload="document.body.innerHTML=\'{fill_red}\'">'
        f'<rect width="10" height="10" fill="blue" onclick="x()"/>'
        f'<image href="data:," onerror="document.body.style.background=\'red\'"/></svg>',
        "js_beacon": f'<svg {NS} width="100" height="100"><script>new Image().src="{u}/beacon.png";'
        f'fetch("{u}/fetch");navigator.sendBeacon("{u}/sb","x")</script></svg>',
        "js_infinite_loop": f'<svg {NS} width="100" height="100"><script>while(true){{}}</script></svg>',
        "js_loop_after_load": f'<svg {NS} width="100" height="100"><script>setTimeout(()=>{{while(true){{}}}},0)'
        "</script></svg>",
        "js_memory_bomb": f'<svg {NS} width="100" height="100"><script>let a=[];while(true)a.push(new Array(1e7)'
        ".fill(1))</script></svg>",
        "file_image": f'<svg {NS} width="100" height="100"><image href="file://{files}/canary.png" width="100" '
        f'height="100"/><image href="{files}/canary.png" width="100" height="100"/></svg>',
        "file_iframe": f'<svg {NS} width="300" height="200"><foreignObject width="300" height="200">'
        f'<iframe xmlns="http://www.w3.org/1999/xhtml" src="file://{files}/canary.html" width="300" '
        'height="200"></iframe></foreignObject></svg>',
        "loopback_everything": f'''<svg {NS} width="300" height="200">
<style>@import url("{u}/import.css"); @font-face {{font-family: X; src: url("{u}/font.woff");}}
text {{font-family: X}} .c {{fill: url({u}/paint.svg#p); cursor: url({u}/cursor.png), auto}}</style>
<image href="{u}/img.png" width="300" height="200"/><image xlink:href="{u}/img2.png" width="300" height="200"/>
<filter id="f"><feImage href="{u}/feimage.png" width="300" height="200"/></filter>
<rect class="c" width="300" height="200" filter="url(#f)"/><use href="{u}/use.svg#a"/>
<text y="100" fill="url({u}/fill.svg#p)">x</text>
<foreignObject width="300" height="200"><div xmlns="http://www.w3.org/1999/xhtml"><img src="{u}/fo.png"/>
<iframe src="{u}/frame.html"></iframe><link rel="stylesheet" href="{u}/link.css"/>
<object data="{u}/object.html"></object><video poster="{u}/poster.png"></video>
<div style="background:url({u}/bg.png);width:50px;height:50px"></div></div></foreignObject></svg>''',
        "stalling_server": f'<svg {NS} width="100" height="100"><image href="{u}/stall.png" width="100" '
        f'height="100"/><style>@import url("{u}/stall.css");</style></svg>',
    }


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_hostile_probes_are_neutralised(r, baseline, canary, file_canaries):
    canary.hits.clear()
    for name, svg in _hostile_cases(canary.url, file_canaries).items():
        res = r.render(svg)
        assert res.ok, (name, res.error_kind, res.reason)
        assert count_color(res.png, RED, tol=60) == 0, f"{name}: script effect drawn"
        assert count_color(res.png, MAGENTA, tol=60) == 0, f"{name}: external/local content drawn"
        _healthy(r, baseline)
    assert canary.hits == []


@pytest.mark.browser
def test_foreign_object_html_still_renders(r, baseline):
    res = r.render(
        f'<svg {NS} width="100" height="100"><foreignObject width="100" height="100">'
        '<div xmlns="http://www.w3.org/1999/xhtml" style="width:100px;height:100px;background:#0f0">'
        "hi</div></foreignObject></svg>"
    )
    assert res.ok and pixel(res.png, 90, 90) == (0, 255, 0)
    _healthy(r, baseline)


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_huge_canvas_is_clamped(r, baseline):
    res = r.render(f'<svg {NS} width="100000" height="100000"><rect width="100000" height="100000" fill="#0f0"/></svg>')
    assert res.ok and (res.width, res.height) == (2048, 2048)
    assert decode_png(res.png)[:2] == (2048, 2048)
    assert "canvas clamped from 100000x100000 to 2048x2048" in res.warnings
    assert pixel(res.png, 2047, 2047) == (0, 255, 0)
    _healthy(r, baseline)


@pytest.mark.browser
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "case,kind",
    [
        ("deep_nesting", "invalid"),
        ("twenty_mb", "too_large"),
        ("many_elements", "too_large"),
        ("billion_laughs", "invalid"),
        ("quadratic_blowup", "invalid"),
        ("xxe", "invalid"),
    ],
)
def test_rejected_before_the_browser(r, baseline, case, kind):
    svgs = {
        "deep_nesting": f"<svg {NS}>" + "<g>" * 10_000 + "<rect/>" + "</g>" * 10_000 + "</svg>",
        "twenty_mb": f"<svg {NS}>" + '<rect x="1" y="1" width="1" height="1" fill="#123456"/>' * 400_000 + "</svg>",
        "many_elements": f"<svg {NS}>" + "<rect/>" * 25_000 + "</svg>",
        "billion_laughs": '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(
            f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10)
        )
        + f"]><svg {NS}><text>&lol9;</text></svg>",
        "quadratic_blowup": f'<!DOCTYPE svg [<!ENTITY a "{"x" * 50_000}">]><svg {NS}><text>'
        + "&a;" * 1000
        + "</text></svg>",
        "xxe": f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><svg {NS}>'
        "<text>&xxe;</text></svg>",
    }
    res = r.render(svgs[case])
    assert not res.ok and res.error_kind == kind and res.png is None and res.reason
    assert "render" not in res.timings  # never reached the browser
    _healthy(r, baseline)


@pytest.mark.browser
@pytest.mark.parametrize(
    "anim",
    [
        '<rect width="10" height="10" fill="red"><animate attributeName="x" from="0" to="90" dur="0.2s" '
        'repeatCount="indefinite"/></rect>',
        "<style>@keyframes k{from{transform:translateX(0)}to{transform:translateX(90px)}}"
        'rect{animation:k .2s linear infinite}</style><rect width="10" height="10" fill="red"/>',
        "<style>svg{animation:k .2s infinite}@keyframes k{from{opacity:1}to{opacity:0}}</style>"
        '<rect width="10" height="10" fill="red"/>',
        '<rect width="10" height="10" fill="red" style="transition:fill .2s"/>'
        '<rect x="50" width="10" height="10" fill="blue"><set attributeName="fill" to="red" begin="0.1s"/></rect>',
    ],
)
def test_infinite_animations_are_frozen_at_t0(r, anim):
    svg = f'<svg {NS} width="100" height="20">{anim}</svg>'
    shas = set()
    for _ in range(4):
        res = r.render(svg)
        assert res.ok
        shas.add(res.sha256)
        time.sleep(0.03)
    assert len(shas) == 1
    assert pixel(res.png, 5, 5) == RED and pixel(res.png, 30, 5) == (255, 255, 255)
    if "<set" in anim:
        assert pixel(res.png, 55, 5) == (0, 0, 255)  # the <set> at 0.1 s has not happened at t=0


@pytest.mark.browser
def test_focused_input_caret_is_hidden(r):
    svg = (
        f'<svg {NS} width="120" height="40"><foreignObject width="120" height="40">'
        '<input xmlns="http://www.w3.org/1999/xhtml" autofocus="autofocus" value="abc"/></foreignObject></svg>'
    )
    results = [r.render(svg) for _ in range(4)]
    assert len({x.sha256 for x in results}) == 1
    assert results[0].warnings == ["removed 1 autofocus attribute"]


@pytest.mark.browser
def test_meta_refresh_is_neutralised(r):
    svg = (
        f'<svg {NS} width="100" height="100"><rect width="100" height="100" fill="#00f"/>'
        '<foreignObject width="10" height="10"><meta xmlns="http://www.w3.org/1999/xhtml" '
        'http-equiv="refresh" content="0;url=about:blank"/></foreignObject></svg>'
    )
    res = r.render(svg)
    assert res.ok and pixel(res.png, 50, 50) == (0, 0, 255)  # not navigated away to a blank page
    assert "removed 1 http-equiv attribute" in res.warnings


@pytest.mark.browser
def test_tiny_timeout_gives_timeout_and_recovers(r, baseline):
    big = (
        f'<svg {NS} width="500" height="500">'
        + "".join(
            f'<circle cx="{i % 500}" cy="{i // 2 % 500}" r="30" fill="#{i % 4096:03x}" filter="url(#b)"/>'
            for i in range(2000)
        )
        + '<filter id="b"><feGaussianBlur stdDeviation="5"/></filter></svg>'
    )
    r.renderer.timeout_ms = 1
    try:
        res = r.render(big)
    finally:
        r.renderer.timeout_ms = TEST_RENDER_TIMEOUT_MS
    assert not res.ok and res.error_kind == "timeout" and "timed out" in res.reason
    _healthy(r, baseline)
    assert r.render(big).ok


# ---------------------------------------------------------------- lifecycle: crash, recycle, close


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pids, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [p for p in pids if not _gone(p)]
        if not left:
            return []
        time.sleep(0.05)
    return left


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_killed_browser_is_relaunched_recycled_and_closed_cleanly(baseline):
    rr = SyncRenderer(pool_size=1, recycle_after=4)
    try:
        first = rr.render(NORMAL)
        assert first.ok and first.sha256 == baseline  # same bytes from a different browser instance
        pid = rr.browser_pid
        assert pid and psutil.Process(pid).is_running()
        old = rr.process_ids()
        assert pid in old and len(old) >= 2
        psutil.Process(pid).kill()
        results = [rr.render(NORMAL) for _ in range(2)]
        assert results[0].ok or results[0].error_kind == "browser_error"
        assert results[1].ok and results[1].sha256 == baseline
        assert rr.browser_pid != pid
        assert _wait_gone(old) == []
        # recycling: a fresh browser every 4 renders, old processes go away, output unchanged
        launches = rr.launches
        before = rr.process_ids()
        outs = [rr.render(NORMAL) for _ in range(8)]
        assert all(o.ok and o.sha256 == baseline for o in outs)
        assert rr.launches >= launches + 2
        assert _wait_gone([p for p in before if p not in rr.process_ids()]) == []
        alive = rr.process_ids()
        assert alive
    finally:
        rr.close()
    assert _wait_gone(alive) == []
    marker = rr.renderer._marker  # every browser this renderer launched carries it on its command line
    leftovers = []
    for c in psutil.Process().children(recursive=True):
        try:
            if not _gone(c.pid) and any(a.startswith(marker) for a in c.cmdline()):
                leftovers.append(c.pid)
        except psutil.NoSuchProcess:
            pass
    assert leftovers == []


@pytest.mark.browser
def test_async_renderer_concurrency_and_close():
    async def main():
        async with Renderer(pool_size=2) as ar:
            svgs = [NORMAL.replace("#3366cc", f"#{i:02x}{i:02x}{i:02x}") for i in range(6)]
            results = await asyncio.gather(*(ar.render(s) for s in svgs))
            pids = ar.process_ids()
        return results, pids

    results, pids = asyncio.run(main())
    assert all(x.ok for x in results)
    assert len(pids) >= 2
    assert [pixel(x.png, 1, 1) for x in results] == [(i, i, i) for i in range(6)]
    assert _wait_gone(pids) == []


@pytest.mark.browser
def test_concurrent_first_renders_start_one_browser(baseline):
    async def main():
        ar = Renderer(pool_size=2)
        try:
            results = await asyncio.gather(*(ar.render(NORMAL) for _ in range(4)))  # no explicit start()
            return results, ar.launches
        finally:
            await ar.close()

    results, launches = asyncio.run(main())
    assert [x.sha256 for x in results] == [baseline] * 4
    assert launches == 1


@pytest.mark.browser
def test_sync_renderer_inside_a_running_event_loop(r, baseline):
    async def inside():
        return r.render(NORMAL)

    assert asyncio.run(inside()).sha256 == baseline


# ---------------------------------------------------------------- screenshot_html


@pytest.mark.browser
def test_screenshot_html_is_hardened(r, canary):
    import base64

    canary.hits.clear()
    data_uri = "data:image/png;base64," + base64.b64encode(_png(10, 10, (0, 0, 255))).decode()
    html = (
        f"<html><body style='margin:0;background:#fff'><img src='{data_uri}' width='100' height='100'>"
        f"<img src='{canary.url}/x.png' width='50' height='50'>"
        "<script>document.body.style.background='red'</script>"
        "<div style='height:1400px'></div></body></html>"
    )
    png = r.screenshot_html(html, 300)
    w, h, rows = decode_png(png)
    assert w == 300 and h > 1400  # full page height
    assert pixel((w, h, rows), 50, 50) == (0, 0, 255)  # data: image drawn
    assert count_color((w, h, rows), RED, 60) == 0 and count_color((w, h, rows), MAGENTA, 60) == 0
    assert canary.hits == []
    fixed = r.screenshot_html(html, 200, 120)
    assert decode_png(fixed)[:2] == (200, 120)


# ---------------------------------------------------------------- control: the probes do fire unhardened


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_control_probes_fire_in_an_unhardened_page(canary, file_canaries):
    """Without the hardening, the same probes paint red / hit the canary: the assertions above can fail."""
    cases = _hostile_cases(canary.url, file_canaries)

    async def naive():
        from playwright.async_api import async_playwright

        async with async_playwright() as pw:
            b = await pw.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
            page = await b.new_page(viewport={"width": 300, "height": 200})
            shots = {}
            for name in ("script_rewrites_dom", "loopback_everything"):
                await page.set_content(f"<body style='margin:0'>{cases[name]}</body>", timeout=10_000)
                shots[name] = await page.screenshot(clip={"x": 0, "y": 0, "width": 300, "height": 200})
            await b.close()
            return shots

    canary.hits.clear()
    shots = asyncio.run(naive())
    assert count_color(shots["script_rewrites_dom"], RED, 60) > 1000
    assert count_color(shots["loopback_everything"], MAGENTA, 60) > 100
    assert len(canary.hits) >= 5


def test_extract_then_validate_keeps_hostile_prologue_out():
    # the DOCTYPE before the root is dropped by extraction, so the entity refs are inert text
    text = (
        '<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        f'<svg {NS} width="10" height="10"><text>&x;</text></svg>'
    )
    ex = extract_svg(text)
    safe = validate_svg(ex.svg)
    assert "DOCTYPE" not in safe.svg and safe.parser == "tolerant"


# --- hostile lengths; the validator sees what Chromium's HTML parser builds (folded from test_qa_core/test_qa_render) ---

from svgrft.core.render import _page_html  # noqa: E402
from tests.helpers import finishes  # noqa: E402


def test_hostile_width_attribute_does_not_hang_canvas_sizing():
    # width="111…1!" (400 KB): the length regex backtracked quadratically (hours) inside
    # Renderer.render, on the event loop, before any browser timeout could fire.
    out = finishes("""
        from svgrft.core.svgsafe import validate_svg, canvas_size
        for w in ("1" * 400_000 + "!", "1" + " " * 400_000 + "!", "1" * 200_000 + "e" + "1" * 190_000 + "!"):
            safe = validate_svg('<svg xmlns="http://www.w3.org/2000/svg" width="' + w + '" height="70"/>')
            print(canvas_size(safe.root_attrs)[:2])
    """)
    assert out.split("\n")[:3] == ["(512, 70)"] * 3  # garbage width: the default, like before


@pytest.mark.parametrize(
    "value,expected",
    [
        ("100", 100.0),
        (" 100 px ", 100.0),
        ("1.5in", 144.0),
        ("1.e3", 1000.0),
        ("+3mm", 96 * 3 / 25.4),
        ("10%", None),
        ("-5", None),
        ("0", None),
        ("1e999", None),
        ("12em", None),
        ("1 00", None),
        ("", None),
    ],
)
def test_parse_length_semantics_unchanged(value, expected):
    from svgrft.core.svgsafe import parse_length

    assert parse_length(value) == pytest.approx(expected) if expected else parse_length(value) is None


U = "http://127.0.0.1:9/x.png"  # never fetched (requests are aborted); only its presence is checked
SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'
XH = 'xmlns="http://www.w3.org/1999/xhtml"'
IMG = f'<image href="{U}" width="50" height="50"/>'
HIMG = f'<img src="{U}" width="50" height="50"/>'


DIFFERENTIALS = {
    # "<!-->" and "<!--->" are complete comments to HTML; XML (and the old scanner) read on to the next "-->"
    "empty_comment": f'<svg {SVG_NS} width="100" height="100"><!-->{IMG}<g><g><rect width="5" height="5"/></g></g>--></svg>',
    "empty_comment_dash": f'<svg {SVG_NS} width="100" height="100"><!--->{IMG}--></svg>',
    # "--!>" ends a comment in HTML
    "bang_comment": f'<svg {SVG_NS} width="100" height="100"><!-- --!>{IMG}<!-- --></svg>',
    # a quote inside an unquoted value (or an attribute name) does not start a quoted value in HTML
    "unquoted_value_quote": f'<svg {SVG_NS} width="100" height="100"><rect x=a"b/>{IMG}<rect y="z"/></svg>',
    "attribute_name_quote": f'<svg {SVG_NS} width="100" height="100"><rect "a=\'b/>{IMG}<rect y=\'z\'/></svg>',
    # CDATA inside HTML content (foreignObject) is a bogus comment that ends at the first ">"
    "cdata_in_html": f'<svg {SVG_NS} width="100" height="100"><foreignObject width="100" height="100"><div {XH}>'
    f"<![CDATA[>{HIMG}]]></div></foreignObject></svg>",
    # <style>/<title> in HTML content are raw text: a fake tag inside them swallowed the real <img> after them
    "style_raw_text": f'<svg {SVG_NS} width="100" height="100"><foreignObject width="100" height="100"><div {XH}>'
    f'<style><b a="</style>{HIMG}<i b="</style></div></foreignObject></svg>',
    "title_raw_text": f'<svg {SVG_NS} width="100" height="100"><foreignObject width="100" height="100"><div {XH}>'
    f'<title><b a="</title>{HIMG}<i b="</title></div></foreignObject></svg>',
    # an HTML tag in SVG content breaks out to HTML content, where <style> is raw text
    "breakout_then_style": f'<svg {SVG_NS} width="100" height="100"><p></p><style><b a="</style>{IMG}<i b="</style></svg>',
    # "/>" after an unquoted value is not self-closing; "<div/>" in HTML content is not self-closing either
    "unquoted_slash_nesting": f'<svg {SVG_NS} width="100" height="100">' + "<g x=a/>" * 30 + "<rect/></svg>",
    "html_self_closing_nesting": f'<svg {SVG_NS} width="100" height="100"><foreignObject width="100" height="100">'
    + f"<div {XH}/>" * 30
    + "</foreignObject></svg>",
    # <img> (and <image>, which HTML turns into <img>) in foreignObject draw broken-image icons too
    "img_in_foreign_object": f'<svg {SVG_NS} width="100" height="100"><foreignObject width="100" height="100">'
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


@pytest.mark.parametrize(
    "svg,kind",
    [
        # caps were enforced on the XML reading alone when the SVG was well-formed XML
        (f"<svg {SVG_NS}><!-->" + "<g/>" * 25_000 + "--></svg>", "too_large"),
        (f"<svg {SVG_NS}><!-->" + "<g>" * 100 + "</g>" * 100 + "--></svg>", "invalid"),
        (f"<svg {SVG_NS}><foreignObject>" + f"<div {XH}/>" * 100 + "</foreignObject></svg>", "invalid"),
    ],
    ids=["count_behind_empty_comment", "depth_behind_empty_comment", "depth_of_html_self_closing"],
)
def test_caps_apply_to_what_the_html_parser_builds(svg, kind):
    with pytest.raises(SvgRejected) as e:
        validate_svg(svg)
    assert e.value.kind == kind
