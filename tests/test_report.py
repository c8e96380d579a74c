"""`svgrft report RUN_ID`: one self-contained HTML file that opens in headless Chromium and shows
every sample (image, score, verdicts, SVG source), sortable by score, with hostile content inert."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from svgrft.core.render import find_chromium
from svgrft.core.report import escape, page, png_data_uri, sample_card_html, verdict_list_html
from svgrft.core.store import SampleRecord, Store
from tests.conftest import CORPUS

HOSTILE = (
    '<svg width="120" height="90"><rect width="120" height="90" fill="#c33"/>'
    "<script>document.title='PWNED'</script></svg>"
)
EVIL_EVIDENCE = "</li></ol><img src=x onerror=\"document.title='PWNED2'\"><script>document.title='PWNED3'</script>"


def make_run(renderer) -> tuple[str, list[SampleRecord]]:
    svgs = [f.read_text() for f in sorted(CORPUS.glob("gen_0*.svg"))[:3]] + [HOSTILE]
    renders = renderer.render_many(svgs)
    recs = []
    for i, (svg, res) in enumerate(zip(svgs, renders)):
        assert res.ok, res.reason
        score = [0.25, 1.0, 0.5, 0.75][i]
        reqs = ["A red barn.", "A yellow sun.", "Three trees.", "A blue sky."]
        verdicts = [
            {
                "index": k + 1,
                "requirement": r,
                "fulfilled": k < score * 4,
                "evidence": EVIL_EVIDENCE if i == 3 else f"seen {k}",
            }
            for k, r in enumerate(reqs)
        ]
        recs.append(
            SampleRecord(
                row_id=f"row_{i}",
                sample_index=0,
                prompt=f"Draw scene {i} <b>bold?</b>",
                requirements=reqs,
                reply=f"```svg\n{svg}\n```",
                svg=svg,
                png=res.png,
                score=score,
                is_valid=True,
                reason=f"{int(score * 4)}/4 requirements fulfilled",
                fulfilled=int(score * 4),
                total=4,
                verdicts=verdicts,
            )
        )
    recs.append(
        SampleRecord(
            row_id="row_9",
            sample_index=1,
            prompt="Draw nothing",
            requirements=["x"],
            reply="no svg here <script>alert(1)</script>",
            score=0.0,
            is_valid=True,
            reason="no SVG: no <svg> element in reply",
            gate="no_svg",
            total=1,
        )
    )
    with Store() as s:
        run = s.create_run(
            model="accounts/fireworks/models/qwen3-0p6b",
            dataset="rows.jsonl",
            judge_model="gpt-4.1-2025-04-14",
            judge_mode="checklist",
            config={"samples": 1},
        )
        for r in recs:
            s.add_sample(run.id, r)
        s.set_run_status(run.id, "finished")
    return run.id, recs


async def inspect(path: Path) -> dict:
    from playwright.async_api import async_playwright

    requests: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=find_chromium(), headless=True)
        try:
            page_ = await browser.new_page()
            page_.on("request", lambda r: requests.append(r.url))
            await page_.goto(path.resolve().as_uri())
            info = await page_.evaluate("""() => ({
                title: document.title,
                samples: Array.from(document.querySelectorAll('#samples > .sample')).map(e => ({
                    row: e.dataset.row, score: parseFloat(e.dataset.score),
                    img: (e.querySelector('img') || {}).naturalWidth || 0,
                    ticks: e.querySelectorAll('li.ok').length, crosses: e.querySelectorAll('li.no').length,
                    source: !!e.querySelector('details pre')})),
                scripts: document.querySelectorAll('script').length,
                injected: document.querySelectorAll('img[src="x"], #samples script').length,
            })""")
            await page_.click("button[data-key=score][data-dir='-1']")
            info["desc"] = await page_.evaluate(
                "() => Array.from(document.querySelectorAll('#samples > .sample')).map(e => e.dataset.row)"
            )
            await page_.click("button[data-key=row]")
            info["by_row"] = await page_.evaluate(
                "() => Array.from(document.querySelectorAll('#samples > .sample')).map(e => e.dataset.row)"
            )
            info["title_after"] = await page_.title()
        finally:
            await browser.close()
    info["requests"] = requests
    return info


def test_report_opens_in_chromium_and_shows_every_sample(renderer, cli, tmp_path):
    run_id, recs = make_run(renderer)
    r = cli("report", run_id[:-1], "--json")
    assert r.exit_code == 0, r
    out = r.json()
    path = Path(out["path"])
    assert path == Path("reports") / f"{run_id}.html" and path.is_file() and out["samples"] == 5
    html = path.read_text()
    assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?\s*(https?:|//|file:)""", html)  # nothing to fetch

    info = asyncio.run(inspect(path))
    assert info["title"].startswith("svgrft eval") and info["title_after"] == info["title"]
    rows = [s["row"] for s in info["samples"]]
    assert rows == ["row_0", "row_1", "row_2", "row_3", "row_9"]
    for s, rec in zip(info["samples"], recs):
        if rec.png:
            assert s["img"] > 0, s  # the inline PNG decoded and laid out
            assert s["ticks"] == rec.fulfilled and s["ticks"] + s["crosses"] == 4
            assert s["source"]
    assert info["samples"][-1]["img"] == 0  # no picture for the no_svg sample
    # hostile SVG/evidence/reply shown as text only: one script (ours), no injected elements
    assert info["scripts"] == 1 and info["injected"] == 0
    assert "PWNED" not in info["title_after"]
    assert info["desc"] == ["row_1", "row_3", "row_2", "row_0", "row_9"]
    assert info["by_row"] == rows
    assert all(u.startswith(("file:", "data:")) for u in info["requests"]), info["requests"]


def test_report_default_and_explicit_paths(renderer, cli, tmp_path):
    run_id, _ = make_run(renderer)
    r = cli("report", run_id, "-o", tmp_path / "mine.html")
    assert r.exit_code == 0 and r.stdout.strip() == str(tmp_path / "mine.html")
    assert (tmp_path / "mine.html").read_text().count('class="sample"') == 5
    (tmp_path / "out").mkdir()
    r = cli("report", run_id, "-o", tmp_path / "out")
    assert r.stdout.strip() == str(tmp_path / "out" / f"{run_id}.html")
    r = cli("report", "no-such-run")
    assert r.exit_code == 1 and "no run" in r.stderr


def test_helpers_escape_everything():
    assert escape('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert escape(None) == ""
    assert png_data_uri(b"\x89PNG") == "data:image/png;base64,iVBORw==" and png_data_uri(None) == ""
    html = verdict_list_html(
        [
            {"index": 2, "requirement": "<b>sun</b>", "fulfilled": True, "evidence": "<i>x</i>"},
            {"index": 1, "requirement": "tree", "fulfilled": False, "evidence": ""},
        ]
    )
    assert "<b>" not in html and "&lt;b&gt;sun&lt;/b&gt;" in html and "&lt;i&gt;x&lt;/i&gt;" in html
    assert html.count('class="ok"') == 1 and html.count('class="no"') == 1 and 'value="2"' in html
    card = sample_card_html(
        {"row_id": "r<1>", "sample_index": 0, "score": None, "svg": "<svg onload=x>", "requirements": ["a"]}
    )
    assert "<svg onload" not in card and "r&lt;1&gt;" in card
    doc = page("t", "<p>x</p>")
    assert doc.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in doc
    assert not re.search(r"<(link|img)[^>]+(src|href)=\"https?:", doc)


@pytest.mark.parametrize("n", [0])
def test_empty_run_report(cli, n):
    with Store() as s:
        run = s.create_run(model="m")
    r = cli("report", run.id)
    assert r.exit_code == 0 and Path(r.stdout.strip()).read_text().count('class="sample"') == n
