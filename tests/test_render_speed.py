"""The fast screenshot path (one raw CDP ``Page.captureScreenshot``) gives the same pixels as Playwright's
``page.screenshot``, is deterministic over the whole corpus, and is only used when the markup cannot animate."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

import svgrft.core.render as render_mod
from svgrft.core.pngutil import decode_png, pixel
from svgrft.core.render import Renderer
from tests.conftest import TEST_RENDER_TIMEOUT_MS

CORPUS = Path(__file__).resolve().parent / "data" / "svg-corpus"
_NEVER = re.compile(r"(?!x)x")  # matches nothing: every render takes the CDP path
_ALWAYS = re.compile(r"")  # matches everything: every render takes Playwright's screenshot


def _corpus() -> list[tuple[str, str]]:
    files = sorted(CORPUS.glob("*.svg"))
    assert files, f"no corpus at {CORPUS}"
    return [(f.name, f.read_text(encoding="utf-8", errors="replace")) for f in files]


async def _render_all(svgs: list[str]):
    async with Renderer(pool_size=2, timeout_ms=TEST_RENDER_TIMEOUT_MS) as r:
        res = await asyncio.gather(*[r.render(s) for s in svgs])
        used_cdp = any(s is not None and s.cdp is not None for s in list(r._free._queue))
    return res, used_cdp


def test_cdp_path_pixels_equal_playwright_path(monkeypatch):
    corpus = _corpus()
    picks = [svg for _, svg in corpus[:: max(1, len(corpus) // 6)]][:6]
    monkeypatch.setattr(render_mod, "_PW_SHOT", _NEVER)
    fast, used_fast = asyncio.run(_render_all(picks))
    monkeypatch.setattr(render_mod, "_PW_SHOT", _ALWAYS)
    slow, used_slow = asyncio.run(_render_all(picks))
    assert used_fast and not used_slow
    for a, b in zip(fast, slow):
        assert a.ok and b.ok, (a.reason, b.reason)
        assert (a.width, a.height) == (b.width, b.height)
        wa, ha, rows_a = decode_png(a.png)
        wb, hb, rows_b = decode_png(b.png)
        assert (wa, ha) == (wb, hb) == (a.width, a.height)
        assert rows_a == rows_b


def test_corpus_deterministic_across_renderers():
    svgs = [svg for _, svg in _corpus()]
    first, used = asyncio.run(_render_all(svgs))
    second, _ = asyncio.run(_render_all(svgs))
    assert used
    failed = [i for i, r in enumerate(first) if not r.ok]
    assert len(failed) < len(svgs) // 10, [first[i].reason for i in failed[:5]]
    for i, (a, b) in enumerate(zip(first, second)):
        assert a.ok == b.ok, i
        if a.ok:
            assert a.png == b.png, f"corpus file #{i} rendered differently"


@pytest.mark.parametrize(
    "markup",
    [
        # CSS animation: Playwright's animations="disabled" cancels an infinite one (the rect's own fill, black);
        # never a frame captured mid-way (a red/blue mix)
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><style>@keyframes k{from{fill:#f00}'
        'to{fill:#00f}} rect{animation:k 0.2s linear infinite}</style><rect width="64" height="64"/></svg>',
        # SMIL: paused at t=0 → red
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="#f00">'
        '<animate attributeName="fill" from="#f00" to="#00f" dur="0.2s" repeatCount="indefinite"/></rect></svg>',
    ],
)
def test_animated_markup_still_frozen(markup):
    async def go():
        async with Renderer(pool_size=1, timeout_ms=TEST_RENDER_TIMEOUT_MS) as r:
            out = []
            for _ in range(4):
                out.append(await r.render(markup))
                await asyncio.sleep(0.05)
            return out

    results = asyncio.run(go())
    for res in results:
        assert res.ok, res.reason
        assert pixel(decode_png(res.png), 32, 32) in ((255, 0, 0), (0, 0, 0))
    assert len({res.png for res in results}) == 1


def test_fast_path_only_for_static_markup():
    assert render_mod._PW_SHOT.search("<style>rect{animation:k 1s}</style>")
    assert render_mod._PW_SHOT.search("<style>@font-face{font-family:x;src:url(data:font/woff2;base64,AA)}</style>")
    assert render_mod._PW_SHOT.search("<foreignObject><input autofocus/></foreignObject>")
    assert not render_mod._PW_SHOT.search('<svg><rect width="4" height="4" fill="red"/></svg>')
