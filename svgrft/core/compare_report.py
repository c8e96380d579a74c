"""Before/after comparison pages: ``index.html``, the reward curve and the contact sheet.

Pure and local: no network, no browser here. The contact-sheet PNG is made by the caller, by
rendering :func:`contact_sheet_html` with ``Renderer.screenshot_html`` (no Pillow). The data model
and its statistics are :mod:`svgrft.core.comparison` (its names are re-exported here for existing
importers).

Over 400 lines on purpose: the three pages of one comparison (index, reward curve, contact sheet) share
their HTML helpers and escaping; the data model and statistics are in :mod:`svgrft.core.comparison`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from svgrft.core.comparison import (  # noqa: F401  (re-exported: compare_report.Comparison predates the split)
    PICKS,
    TIE_EPS,
    Comparison,
    PromptRow,
    Sample,
    fmt_ci,
    fmt_delta,
    fmt_score,
    pick_rows,
    short_prompt,
)
from svgrft.core.plural import plural

__all__ = [
    "Sample",
    "PromptRow",
    "Comparison",
    "pick_rows",
    "index_html",
    "contact_sheet_html",
    "PICKS",
    "TIE_EPS",
    "reward_curve_svg",
    "reward_curve_html",
]


# --------------------------------------------------------------------------------------- helpers
def esc(text: Any) -> str:
    """HTML-escape anything (shared with svgrft.core.report)."""
    from svgrft.core.report import escape

    return escape(text)


def data_uri(png: bytes | None) -> str | None:
    from svgrft.core.report import png_data_uri

    return png_data_uri(png) or None


def _sample_caption(s: Sample | None) -> str:
    if s is None:
        return "no sample"
    if s.score is None:
        return f"not scored: {s.reason or 'error'}"
    frac = f" ({s.fulfilled}/{s.total})" if s.fulfilled is not None and s.total else ""
    bad = "" if s.is_valid else f" — {s.reason or 'invalid'}"
    return f"{s.score:.2f}{frac}{bad}"


# --------------------------------------------------------------------------------------- index.html
_CSS = """
:root{--ok:#1a7f37;--bad:#cf222e;--mute:#57606a;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 -apple-system,'Segoe UI','DejaVu Sans',Helvetica,Arial,sans-serif;margin:0;color:#1f2328;background:#fff}
main{max-width:1240px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px} h3{font-size:15px;margin:0}
.sub{color:var(--mute);margin:0 0 16px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:200px;background:var(--bg)}
.card .k{color:var(--mute);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:20px;font-weight:600}
.card .ci{color:var(--mute);font-size:12px}
.win{color:var(--ok)} .loss{color:var(--bad)} .tie{color:var(--mute)}
ul.notes{margin:4px 0 0 18px;padding:0} ul.notes li{margin:2px 0}
.warn{color:#9a6700}
table.list{border-collapse:collapse;margin:6px 0} table.list td,table.list th{padding:3px 10px;border-bottom:1px solid var(--line);text-align:left}
section.row{border-top:2px solid var(--line);padding:16px 0}
.rowhead{display:flex;justify-content:space-between;align-items:baseline;gap:12px}
.prompt{color:var(--mute);margin:4px 0 10px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.side{border:1px solid var(--line);border-radius:8px;padding:10px;background:#fff}
.side .lbl{font-weight:600;margin-bottom:6px}
.frame{width:100%;height:340px;display:flex;align-items:center;justify-content:center;background:var(--bg);border-radius:4px;overflow:hidden}
.frame img{max-width:100%;max-height:100%;object-fit:contain;background:#fff}
.frame .none{color:var(--mute);padding:12px;text-align:center}
.score{font-size:16px;font-weight:600;margin-top:6px}
.others{display:flex;gap:6px;flex-wrap:wrap;margin-top:6px}
.others figure{margin:0;width:96px;text-align:center;font-size:11px;color:var(--mute)}
.others img{width:96px;height:72px;object-fit:contain;background:var(--bg);border:1px solid var(--line)}
table.ticks{border-collapse:collapse;width:100%;margin-top:10px;font-size:13px}
table.ticks th,table.ticks td{border-bottom:1px solid var(--line);padding:4px 6px;vertical-align:top;text-align:left}
table.ticks td.t{width:56px;text-align:center;font-weight:700}
.y{color:var(--ok)} .n{color:var(--bad)} .q{color:var(--mute)}
.ev{color:var(--mute);font-size:12px}
details{margin-top:8px} summary{cursor:pointer;color:var(--mute)}
pre{white-space:pre-wrap;word-break:break-all;max-height:360px;overflow:auto;background:var(--bg);padding:8px;border-radius:4px;font-size:12px}
"""


def _img(s: Sample | None, alt: str) -> str:
    uri = data_uri(s.png) if s else None
    if uri:
        return f'<img src="{uri}" alt="{esc(alt)}">'
    why = "no sample" if s is None else (s.reason or "no image")
    return f'<div class="none">no image: {esc(why)}</div>'


def _side_html(row: PromptRow, side: str, label: str) -> str:
    samples = getattr(row, side)
    rep = row.representative(side)
    mean = row.mean(side)
    reward = row.reward_mean(side)
    out = [
        f'<div class="side"><div class="lbl">{esc(label)}</div>',
        f'<div class="frame">{_img(rep, f"{row.row_id} {label}")}</div>',
        f'<div class="score">score {fmt_score(mean)}'
        + (f' <span class="ev">mean of {len(samples)}</span>' if len(samples) > 1 else "")
        + "</div>",
    ]
    if rep is not None:
        out.append(
            f'<div class="ev">shown: {esc(rep.ref or "sample")} — {esc(_sample_caption(rep))}'
            + (" (judge cache)" if rep.judge_cached else "")
            + "</div>"
        )
    if reward is not None:
        out.append(f'<div class="ev">training reward (recorded): {fmt_score(reward)}</div>')
    others = [s for s in samples if s is not rep]
    if others:
        out.append('<div class="others">')
        for s in others:
            uri = data_uri(s.png)
            img = f'<img src="{uri}" alt="{esc(s.ref)}">' if uri else '<div class="q">—</div>'
            out.append(
                f"<figure>{img}<figcaption>{esc(fmt_score(s.score))}"
                + (f" · r {fmt_score(s.reward)}" if s.reward is not None else "")
                + "</figcaption></figure>"
            )
        out.append("</div>")
    if rep is not None and rep.svg:
        out.append(
            f"<details><summary>SVG source ({plural(len(rep.svg), 'char', spec=',')})</summary><pre>{esc(rep.svg[:200_000])}"
            f"</pre></details>"
        )
    elif rep is not None:
        out.append(f'<div class="ev">no SVG: {esc(rep.reason)}</div>')
    out.append("</div>")
    return "".join(out)


def _tick(v: dict | None) -> str:
    if v is None:
        return '<span class="q">·</span>'
    return '<span class="y">✓</span>' if v.get("fulfilled") else '<span class="n">✗</span>'


def _ticks_html(row: PromptRow, before_label: str, after_label: str) -> str:
    rb, ra = row.representative("before"), row.representative("after")
    vb = {int(v["index"]): v for v in (rb.verdicts if rb else []) if isinstance(v, dict) and "index" in v}
    va = {int(v["index"]): v for v in (ra.verdicts if ra else []) if isinstance(v, dict) and "index" in v}
    reqs = list(row.requirements)
    n = max([len(reqs)] + list(vb) + list(va))
    if not n:
        return ""
    out = [
        '<table class="ticks"><tr><th>#</th><th>requirement</th>'
        f"<th>{esc(before_label)}</th><th>{esc(after_label)}</th><th>judge evidence</th></tr>"
    ]
    for i in range(1, n + 1):
        req = reqs[i - 1] if i <= len(reqs) else (va.get(i) or vb.get(i) or {}).get("requirement", "")
        b, a = vb.get(i), va.get(i)
        ev = []
        if b and b.get("evidence"):
            ev.append(f"before: {esc(b['evidence'])}")
        if a and a.get("evidence"):
            ev.append(f"after: {esc(a['evidence'])}")
        out.append(
            f'<tr><td>{i}</td><td>{esc(req)}</td><td class="t">{_tick(b)}</td><td class="t">{_tick(a)}'
            f'</td><td class="ev">{"<br>".join(ev)}</td></tr>'
        )
    out.append("</table>")
    return "".join(out)


def _row_html(row: PromptRow, cmp: Comparison) -> str:
    outcome = row.outcome or "incomplete"
    cls = {"win": "win", "loss": "loss", "tie": "tie"}.get(outcome, "q")
    head = (
        f'<div class="rowhead"><h3>{esc(row.row_id)}</h3><div class="{cls}"><b>{esc(outcome)}</b> '
        f"{fmt_score(row.mean('before'))} → {fmt_score(row.mean('after'))} ({fmt_delta(row.delta)})</div></div>"
    )
    parts = [
        f'<section class="row" id="{esc(_anchor(row.row_id))}">',
        head,
        f'<div class="prompt">{esc(short_prompt(row.prompt, 400))}</div>',
    ]
    if row.note:
        parts.append(f'<div class="ev warn">{esc(row.note)}</div>')
    parts.append(
        '<div class="pair">'
        + _side_html(row, "before", cmp.before_label)
        + _side_html(row, "after", cmp.after_label)
        + "</div>"
    )
    parts.append(_ticks_html(row, cmp.before_label, cmp.after_label))
    parts.append("</section>")
    return "".join(parts)


def _anchor(row_id: str) -> str:
    return "row-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in row_id)


def _brief_table(items: list[dict], title: str) -> str:
    if not items:
        return f"<p class='sub'>{esc(title)}: none</p>"
    out = [
        f"<h2>{esc(title)}</h2><table class='list'><tr><th>row</th><th>prompt</th><th>before</th><th>after</th>"
        "<th>change</th></tr>"
    ]
    for b in items:
        out.append(
            f'<tr><td><a href="#{esc(_anchor(b["row_id"]))}">{esc(b["row_id"])}</a></td>'
            f"<td>{esc(b['prompt'])}</td><td>{fmt_score(b['before'])}</td><td>{fmt_score(b['after'])}</td>"
            f"<td>{fmt_delta(b['delta'])}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def index_html(cmp: Comparison) -> str:
    """The self-contained report: summary first, then one section per prompt."""
    st = cmp.stats()
    sub = f"{esc(cmp.before_label)} vs {esc(cmp.after_label)} · source: {esc(cmp.source)}"
    if cmp.meta.get("judge_model"):
        sub += f" · judge: {esc(cmp.meta['judge_model'])}"
    cards = [
        ("mean score, " + cmp.before_label, fmt_score(st["before"]["mean"], 3), _ci_line(st["before"])),
        ("mean score, " + cmp.after_label, fmt_score(st["after"]["mean"], 3), _ci_line(st["after"])),
        ("change (paired)", fmt_delta(st["delta"]["mean"], 3), _ci_line(st["delta"])),
        (
            "wins / ties / losses",
            f'<span class="win">{st["wins"]}</span> / <span class="tie">{st["ties"]}</span> / '
            f'<span class="loss">{st["losses"]}</span>',
            f"{plural(st['paired_prompts'], 'prompt')} with both sides",
        ),
    ]
    if st["training_reward_before"] is not None or st["training_reward_after"] is not None:
        cards.append(
            (
                "training reward (recorded)",
                f"{fmt_score(st['training_reward_before'])} → {fmt_score(st['training_reward_after'])}",
                "as Fireworks recorded it, for reference",
            )
        )
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">",
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{esc(cmp.title)}</title>'
        f"<style>{_CSS}</style></head><body><main>",
        f'<h1>{esc(cmp.title)}</h1><p class="sub">{sub}</p>',
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{v}</div><div class="ci">{esc(ci)}</div>'
            f"</div>"
            for k, v, ci in cards
        )
        + "</div>",
        f'<p class="sub">Valid SVG: {_pct(st["valid_before"])} → {_pct(st["valid_after"])} · '
        f"samples: {st['samples_before']} → {st['samples_after']} · means over prompts with 95% t-intervals</p>",
    ]
    if cmp.findings:
        parts.append(
            "<h2>What was found</h2><ul class='notes'>" + "".join(f"<li>{esc(f)}</li>" for f in cmp.findings) + "</ul>"
        )
    if cmp.warnings:
        parts.append("<ul class='notes warn'>" + "".join(f"<li>{esc(w)}</li>" for w in cmp.warnings) + "</ul>")
    curve = cmp.meta.get("reward_curve")
    if curve:
        parts.append(
            "<h2>Training reward per epoch</h2>"
            '<p class="sub">Mean reward the evaluator gave, over every recorded rollout of each epoch '
            "(bars: ±1 standard deviation; dots: steps, where the records tell them apart).</p>"
            + reward_curve_svg(curve)
            + _curve_table(curve)
        )
    parts.append(_brief_table(st["biggest_gains"], "Biggest gains"))
    parts.append(_brief_table(st["biggest_regressions"], "Biggest regressions"))
    parts.append(f"<h2>Every prompt ({len(cmp.rows)})</h2>")
    for row in cmp.rows:
        parts.append(_row_html(row, cmp))
    parts.append("</main></body></html>")
    return "".join(parts)


# --------------------------------------------------------------------------------------- reward curve
def _curve_table(curve: list[dict]) -> str:
    head = "<tr><th>epoch</th><th>rollouts</th><th>mean reward</th><th>std</th><th>min – max</th></tr>"
    body = []
    for c in curve:
        rng = "" if c.get("min") is None else f"{c['min']:.3f} – {c['max']:.3f}"
        body.append(
            f"<tr><td>{esc(c.get('epoch'))}</td><td>{esc(c.get('n'))}</td>"
            f"<td>{fmt_score(c.get('mean'), 3)}</td><td>{fmt_score(c.get('std'), 3)}</td><td>{rng}</td></tr>"
        )
    return f'<table class="brief">{head}{"".join(body)}</table>'


def reward_curve_svg(curve: list[dict], width: int = 720, height: int = 320) -> str:
    """A line chart of the mean reward per epoch (0..1 axis), ±1 std bars, step dots. Pure SVG text."""
    pts = [c for c in curve if c.get("mean") is not None]
    left, right, top, bottom = 56, 20, 20, 44
    pw, ph = width - left - right, height - top - bottom
    n = max(1, len(curve))

    def x(i: float) -> float:
        return left + (pw * (i + 0.5) / n)

    def y(v: float) -> float:
        return top + ph * (1.0 - max(0.0, min(1.0, float(v))))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="curve" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="mean reward per epoch">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#eaeef2"/>'
            f'<text x="{left - 8}" y="{y(t) + 4:.1f}" font-size="12" text-anchor="end" fill="#57606a" '
            f'font-family="DejaVu Sans, Arial, sans-serif">{t:.2f}</text>'
        )
    for i, c in enumerate(curve):
        out.append(
            f'<text x="{x(i):.1f}" y="{height - bottom + 18}" font-size="12" text-anchor="middle" '
            f'fill="#57606a" font-family="DejaVu Sans, Arial, sans-serif">epoch {esc(c.get("epoch"))}</text>'
        )
        steps = c.get("steps") or []
        for j, st in enumerate(steps):
            if st.get("mean") is None:
                continue
            sx = x(i) - 0.35 * pw / n + (0.7 * pw / n) * (j + 0.5) / len(steps)
            out.append(f'<circle cx="{sx:.1f}" cy="{y(st["mean"]):.1f}" r="3" fill="#8c959f"/>')
        if c.get("mean") is not None and c.get("std") is not None:
            lo, hi = c["mean"] - c["std"], c["mean"] + c["std"]
            out.append(
                f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{y(lo):.1f}" y2="{y(hi):.1f}" stroke="#0969da" '
                f'stroke-width="2"/>'
            )
    if pts:
        path = " ".join(
            f"{'M' if k == 0 else 'L'}{x(curve.index(c)):.1f},{y(c['mean']):.1f}" for k, c in enumerate(pts)
        )
        out.append(f'<path d="{path}" fill="none" stroke="#0969da" stroke-width="3"/>')
        for c in pts:
            out.append(
                f'<circle cx="{x(curve.index(c)):.1f}" cy="{y(c["mean"]):.1f}" r="5" fill="#0969da"/>'
                f'<text x="{x(curve.index(c)) + 8:.1f}" y="{y(c["mean"]) - 8:.1f}" font-size="13" '
                f'fill="#1f2328" font-family="DejaVu Sans, Arial, sans-serif">{c["mean"]:.3f}</text>'
            )
    out.append(
        f'<text x="14" y="{top + ph / 2:.1f}" font-size="12" fill="#57606a" transform="rotate(-90 14 '
        f'{top + ph / 2:.1f})" text-anchor="middle" font-family="DejaVu Sans, Arial, sans-serif">'
        f"mean reward</text></svg>"
    )
    return "".join(out)


def reward_curve_html(curve: list[dict], title: str) -> tuple[str, int, int]:
    """(html, width, height) of a page holding only the chart, for ``Renderer.screenshot_html``."""
    w, h = 760, 390
    page = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{margin:0;background:#fff;'
        "font-family:'DejaVu Sans',Arial,sans-serif}h1{font-size:17px;margin:12px 20px 0;color:#1f2328}"
        "</style></head><body>"
        + f'<h1>{esc(title)}</h1><div style="padding:8px 20px">'
        + reward_curve_svg(curve)
        + "</div></body></html>"
    )
    return page, w, h


def _ci_line(d: dict) -> str:
    if d.get("mean") is None:
        return "no data"
    if d.get("low") is None:
        return f"n={d.get('n')}"
    return f"95% CI [{d['low']:.3f}, {d['high']:.3f}], n={d['n']}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


# --------------------------------------------------------------------------------------- contact sheet
_SHEET_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#fff;color:#1f2328;font-family:'DejaVu Sans','Liberation Sans',Arial,sans-serif}
.sheet{padding:20px 24px}
.head{font-size:22px;font-weight:700;margin:0 0 4px}
.meta{font-size:15px;color:#57606a;margin:0 0 14px}
.grid{display:grid;gap:14px 24px}
.item{border:1px solid #d0d7de;border-radius:8px;padding:10px 12px}
.cap{font-size:15px;font-weight:600;line-height:1.3;height:2.6em;margin:0 0 8px;overflow:hidden;display:-webkit-box;
     -webkit-line-clamp:2;-webkit-box-orient:vertical}
.cap .id{color:#57606a;font-weight:400}
.pair{display:flex;gap:12px}
.cell{flex:1;text-align:center}
.box{display:flex;align-items:center;justify-content:center;background:#f6f8fa;border:1px solid #eaeef2;border-radius:4px;overflow:hidden}
.box img{max-width:100%;max-height:100%;object-fit:contain;background:#fff}
.none{color:#57606a;font-size:13px;padding:8px}
.sc{font-size:16px;margin-top:6px}
.sc b{font-size:18px}
.lab{color:#57606a;font-size:13px}
.up{color:#1a7f37} .down{color:#cf222e} .same{color:#57606a}
"""

MAX_SHEET_HEIGHT = 16000


def contact_sheet_html(
    cmp: Comparison, rows: Sequence[PromptRow], *, pick: str = "best", width: int | None = None
) -> tuple[str, int, int]:
    """(html, width, height) of the contact sheet; the height estimate is for the screenshot."""
    rows = list(rows)
    n = max(1, len(rows))
    cols = 1 if n <= 3 else 2
    width = width or (1000 if cols == 1 else 1500)
    header_h = 100
    lines = math.ceil(n / cols)
    # image side: as large as fits (≤ 400 px), so the sheet stays under the screenshot cap
    cell_w = (width - 48 - (cols - 1) * 24) // cols
    img_w = (cell_w - 24 - 12) // 2
    img_h = min(int(img_w * 0.78), 400)
    block_extra = 130  # caption + scores + padding
    while header_h + lines * (img_h + block_extra + 14) > MAX_SHEET_HEIGHT and img_h > 80:
        img_h -= 10
    st = cmp.stats()
    picked = {
        "best": "biggest gains",
        "worst": "biggest regressions",
        "random": "random draw",
        "all": "every prompt",
    }.get(pick, pick)
    head = (
        f"<p class='head'>{esc(cmp.title)}</p>"
        f"<p class='meta'>{esc(cmp.before_label)} {fmt_score(st['before']['mean'])} → "
        f"{esc(cmp.after_label)} {fmt_score(st['after']['mean'])} mean score over "
        f"{plural(st['paired_prompts'], 'prompt')} ({fmt_delta(st['delta']['mean'])}; wins/ties/losses {st['wins']}/{st['ties']}/{st['losses']})"
        f" · shown: {plural(len(rows), 'prompt')}, {esc(picked)}</p>"
    )
    items = []
    for r in rows:
        cells = []
        for side, label in (("before", cmp.before_label), ("after", cmp.after_label)):
            rep = r.representative(side)
            uri = data_uri(rep.png) if rep else None
            inner = (
                f'<img src="{uri}" alt="{esc(label)}">'
                if uri
                else f'<div class="none">{esc("no image: " + ((rep.reason if rep else "") or "no sample"))}</div>'
            )
            mean = r.mean(side)
            k = len(getattr(r, side))
            extra = ""
            if k > 1:
                extra = f' <span class="lab">(mean of {k}; shown {fmt_score(rep.score if rep else None)})</span>'
            cells.append(
                f'<div class="cell"><div class="box" style="height:{img_h}px">{inner}</div>'
                f'<div class="sc"><span class="lab">{esc(label)}</span> <b>{fmt_score(mean)}</b>'
                + extra
                + "</div></div>"
            )
        d = r.delta
        cls = "same" if d is None or abs(d) <= TIE_EPS else ("up" if d > 0 else "down")
        items.append(
            f'<div class="item"><p class="cap"><span class="id">{esc(r.row_id)}</span> '
            f'{esc(short_prompt(r.prompt, 160))} <span class="{cls}">{fmt_delta(d)}</span></p>'
            f'<div class="pair">{"".join(cells)}</div></div>'
        )
    body = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{_SHEET_CSS}</style></head><body>"
        f"<div class='sheet' style='width:{width}px'>{head}"
        f"<div class='grid' style='grid-template-columns:repeat({cols},1fr)'>{''.join(items)}</div>"
        f"</div></body></html>"
    )
    height = header_h + lines * (img_h + block_extra + 14) + 20
    return body, width, min(height, MAX_SHEET_HEIGHT)
