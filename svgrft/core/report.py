"""Self-contained HTML reports (images inline as data: URIs, no external resources).

Reusable pieces for other reports (compare-epochs builds a before/after page from them):
:func:`escape`, :func:`png_data_uri`, :func:`verdict_list_html`, :func:`score_badge`,
:func:`sample_card_html`, :func:`page`. :func:`run_report_html` assembles a local-eval report.

Model-written content (replies, SVG source, judge evidence) is always escaped and shown as text;
the picture is the rendered PNG, never the SVG markup, so a hostile SVG cannot run in the report.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from collections.abc import Iterable, Mapping
from typing import Any

from svgrft.core.judge import request_summary
from svgrft.core.plural import plural, plural_word

__all__ = [
    "escape",
    "png_data_uri",
    "verdict_list_html",
    "score_badge",
    "sample_card_html",
    "page",
    "run_report_html",
    "sort_controls_html",
    "BASE_CSS",
    "SORT_JS",
]

MAX_SOURCE_CHARS = 60_000  # SVG/reply source shown per sample (the rest is cut with a note)


def escape(value: Any) -> str:
    """HTML-escape any value (None → empty string)."""
    return "" if value is None else html.escape(str(value), quote=True)


def png_data_uri(png: bytes | None) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii") if png else ""


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def verdict_list_html(verdicts: Iterable[Any]) -> str:
    """Requirements ticked/crossed with the judge's evidence (Verdict objects or dicts)."""
    items = []
    for v in verdicts or []:
        ok = bool(_get(v, "fulfilled"))
        mark = "✓" if ok else "✗"
        ev = _get(v, "evidence") or ""
        items.append(
            f'<li class="{"ok" if ok else "no"}" value="{int(_get(v, "index", 0) or 0)}">'
            f'<span class="mark" aria-label="{"fulfilled" if ok else "not fulfilled"}">{mark}</span> '
            f'<span class="req">{escape(_get(v, "requirement"))}</span>'
            + (f'<div class="evidence">{escape(ev)}</div>' if ev else "")
            + "</li>"
        )
    if not items:
        return '<p class="muted">No per-requirement verdicts.</p>'
    return '<ol class="verdicts">' + "".join(items) + "</ol>"


def score_badge(score: float | None, valid: bool = True) -> str:
    if score is None:
        return '<span class="badge none">–</span>'
    if not valid:
        return '<span class="badge invalid" title="invalid score">invalid</span>'
    hue = int(max(0.0, min(1.0, float(score))) * 120)
    return f'<span class="badge" style="background:hsl({hue},65%,40%)">{float(score):.2f}</span>'


def _source(text: str | None, label: str) -> str:
    if not text:
        return ""
    shown = text if len(text) <= MAX_SOURCE_CHARS else text[:MAX_SOURCE_CHARS]
    more = f"\n… ({plural(len(text) - MAX_SOURCE_CHARS, 'more character')})" if len(text) > MAX_SOURCE_CHARS else ""
    return (
        f"<details><summary>{escape(label)} ({plural(len(text), 'character')})</summary>"
        f"<pre>{escape(shown)}{escape(more)}</pre></details>"
    )


def sample_card_html(s: Any, *, title: str | None = None, show_prompt: bool = True) -> str:
    """One sample: picture, score, gate/flags, requirements with verdicts, prompt and sources."""
    score = _get(s, "score")
    valid = bool(_get(s, "is_valid", True))
    png = _get(s, "png")
    row_id = _get(s, "row_id", "")
    idx = _get(s, "sample_index", 0)
    gate = _get(s, "gate")
    flags = list(_get(s, "flags", []) or [])
    status = _get(s, "status", "done")
    sort_score = -1.0 if score is None or not valid else float(score)
    img = (
        f'<img src="{png_data_uri(png)}" alt="render of {escape(row_id)} #{idx}" loading="eager">'
        if png
        else f'<div class="noimg">{escape(gate or "no image")}</div>'
    )
    tags = []
    if gate:
        tags.append(f'<span class="tag gate">gate: {escape(gate)}</span>')
    for f in flags:
        tags.append(f'<span class="tag flag">{escape(f)}</span>')
    if status != "done":
        tags.append(f'<span class="tag err">{escape(status)}</span>')
    if _get(s, "judge_cached"):
        tags.append('<span class="tag">cached verdict</span>')
    fulfilled, total = _get(s, "fulfilled"), _get(s, "total")
    reason = str(_get(s, "reason", "") or "")
    counts = (
        f"{fulfilled}/{plural(total, 'requirement')}"
        if fulfilled is not None and total and not reason.startswith(f"{fulfilled}/{total}")
        else ""
    )
    verdicts = _get(s, "verdicts", []) or []
    reqs = list(_get(s, "requirements", []) or [])
    if verdicts:
        req_html = verdict_list_html(verdicts)
    elif reqs:
        req_html = '<ol class="verdicts plain">' + "".join(f"<li>{escape(r)}</li>" for r in reqs) + "</ol>"
    else:
        req_html = ""
    extra = _get(s, "extra", {}) or {}
    reasoning = extra.get("judge_reasoning") if isinstance(extra, Mapping) else None
    prompt = _get(s, "prompt", "")
    head = title if title is not None else f"{row_id} · sample {idx}"
    return (
        f'<article class="sample" data-score="{sort_score:.6f}" data-row="{escape(row_id)}" data-idx="{int(idx)}">'
        f'<div class="pic">{img}</div><div class="info">'
        f"<h3>{escape(head)} {score_badge(score, valid)}</h3>"
        f'<p class="meta">{escape(counts)} {"".join(tags)}</p>'
        f'<p class="reason">{escape(reason)}</p>'
        + (
            f'<p class="prompt"><b>Prompt:</b> {escape(request_summary(prompt) or prompt[:300])}</p>'
            f'<details><summary>Full prompt</summary><p class="prompt">{escape(prompt)}</p></details>'
            if show_prompt and prompt
            else ""
        )
        + req_html
        + (f'<p class="reasoning"><b>Judge:</b> {escape(reasoning)}</p>' if reasoning else "")
        + _source(_get(s, "svg"), "SVG source")
        + (_source(_get(s, "reply"), "Model reply") if _get(s, "reply") and not _get(s, "svg") else "")
        + "</div></article>"
    )


BASE_CSS = """
:root{--fg:#1d232a;--muted:#5b6670;--line:#d9dee3;--ok:#1b7f3b;--no:#b3261e;--bg:#f6f7f9}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);
background:var(--bg);margin:0;padding:24px}h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px}
h3{font-size:15px;margin:0 0 6px;display:flex;gap:8px;align-items:center}.muted{color:var(--muted)}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid var(--line);padding:4px 8px;text-align:left;
vertical-align:top}th{background:#eef1f4}.controls{margin:16px 0;display:flex;gap:8px;align-items:center}
button{font:inherit;padding:4px 10px;border:1px solid var(--line);background:#fff;border-radius:6px;cursor:pointer}
button.active{background:#1d232a;color:#fff}.sample{display:grid;grid-template-columns:minmax(200px,360px) 1fr;gap:16px;
background:#fff;border:1px solid var(--line);border-radius:10px;padding:14px;margin:12px 0}
.pic img{width:100%;height:auto;border:1px solid var(--line);background:#fff;display:block}
.noimg{display:flex;align-items:center;justify-content:center;height:160px;border:1px dashed var(--line);color:var(--muted)}
.badge{color:#fff;border-radius:6px;padding:1px 8px;font-weight:600;font-size:13px}.badge.invalid{background:#6b7280}
.badge.none{background:#9ca3af}.tag{display:inline-block;border:1px solid var(--line);border-radius:10px;padding:0 8px;
margin-left:4px;font-size:12px}.tag.gate{border-color:#b45309;color:#b45309}.tag.flag{border-color:#7c3aed;color:#7c3aed}
.tag.err{border-color:var(--no);color:var(--no)}.reason{margin:4px 0 8px}.prompt{white-space:pre-wrap;margin:4px 0}
ol.verdicts{padding-left:22px;margin:6px 0}ol.verdicts li{margin:3px 0}li.ok .mark{color:var(--ok);font-weight:700}
li.no .mark{color:var(--no);font-weight:700}li.no .req{color:#444}.evidence{color:var(--muted);font-size:12.5px}
pre{white-space:pre-wrap;word-break:break-all;background:#f3f4f6;padding:8px;border-radius:6px;max-height:420px;overflow:auto;
font-size:12px}details{margin:6px 0}summary{cursor:pointer;color:var(--muted)}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px}
@media (max-width:800px){.sample,.pair{grid-template-columns:1fr}}
"""

SORT_JS = """
(function(){
  var box=document.getElementById('samples'); if(!box) return;
  function sortBy(key, dir, btn){
    var items=Array.prototype.slice.call(box.querySelectorAll(':scope > .sample'));
    items.sort(function(a,b){
      if(key==='score'){var d=(parseFloat(a.dataset.score)-parseFloat(b.dataset.score))*dir; if(d) return d;}
      var r=a.dataset.row.localeCompare(b.dataset.row, undefined, {numeric:true}); if(r) return r;
      return (parseInt(a.dataset.idx)-parseInt(b.dataset.idx));
    });
    items.forEach(function(el){box.appendChild(el);});
    document.querySelectorAll('.controls button').forEach(function(b){b.classList.remove('active');});
    if(btn) btn.classList.add('active');
  }
  document.querySelectorAll('.controls button').forEach(function(b){
    b.addEventListener('click', function(){ sortBy(b.dataset.key, parseInt(b.dataset.dir||'1'), b); });
  });
})();
"""


def page(title: str, body: str, *, extra_css: str = "", script: str = SORT_JS) -> str:
    """A complete, self-contained HTML document."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>{escape(title)}</title><style>{BASE_CSS}{extra_css}</style></head><body>"
        f"{body}<script>{script}</script></body></html>"
    )


def _fmt(x: Any, digits: int = 3) -> str:
    return "–" if x is None else f"{float(x):.{digits}f}"


def sort_controls_html() -> str:
    return (
        '<div class="controls"><span class="muted">Sort:</span>'
        '<button type="button" data-key="score" data-dir="-1">score ↓</button>'
        '<button type="button" data-key="score" data-dir="1">score ↑</button>'
        '<button type="button" data-key="row" data-dir="1" class="active">row</button></div>'
    )


def _gate_stops(summary: Mapping[str, Any]) -> str:
    """Per gate how many samples it stopped (and penalised), every gate listed; older summaries: gates fired."""
    stops = summary.get("gate_stops")
    if not isinstance(stops, Mapping) or not stops:
        return ", ".join(f"{k}: {v}" for k, v in (summary.get("gates") or {}).items()) or "none"
    parts = []
    for gate, n in stops.items():
        n = n if isinstance(n, Mapping) else {"stopped": n}
        pen = int(n.get("penalised", 0) or 0)
        parts.append(f"{gate}: {int(n.get('stopped', 0) or 0)}" + (f" (+{pen} penalised)" if pen else ""))
    return " · ".join(parts)


def run_report_html(summary: Mapping[str, Any], samples: list[Any]) -> str:
    """The report of a local evaluation run (``summary`` from ``summarize_run``; samples with PNGs)."""
    sc = summary.get("score", {})
    counts = summary.get("counts", {})
    created = summary.get("created_at")
    when = _dt.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M") if created else ""
    facts = [
        ("Model", summary.get("model")),
        ("Dataset", summary.get("dataset")),
        ("Judge", f"{summary.get('judge_model')} ({summary.get('judge_mode')})"),
        (
            "Mean score",
            f"{_fmt(sc.get('mean'))}  95% CI [{_fmt(sc.get('ci95_low'))}, {_fmt(sc.get('ci95_high'))}]"
            f"  over {sc.get('n', 0)} valid {plural_word(sc.get('n', 0), 'sample')}",
        ),
        (
            "Samples",
            f"{counts.get('done', 0)} done, {counts.get('valid', 0)} valid, {counts.get('invalid', 0)} "
            f"invalid, {plural(counts.get('error', 0), 'error')}",
        ),
        ("Stopped by gate", _gate_stops(summary)),
        ("Flags", ", ".join(f"{k}: {v}" for k, v in (summary.get("flags") or {}).items()) or "none"),
        ("Status", f"{summary.get('status')} · {when}"),
    ]
    facts_html = (
        "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts) + "</table>"
    )
    worst = summary.get("worst_requirements") or []
    worst_html = ""
    if worst:
        worst_html = (
            "<h2>Least fulfilled requirements</h2><table><tr><th>row</th><th>#</th><th>requirement</th>"
            "<th>hit rate</th></tr>"
            + "".join(
                f"<tr><td>{escape(w['row_id'])}</td><td>{int(w['index'])}</td><td>{escape(w['requirement'])}"
                f"</td><td>{w['hits']}/{w['n']}</td></tr>"
                for w in worst
            )
            + "</table>"
        )
    cards = "".join(sample_card_html(s) for s in samples)
    body = (
        f"<h1>svgrft eval · {escape(summary.get('run_id'))}</h1>"
        f'<p class="muted">{plural(len(samples), "sample")}</p>{facts_html}{worst_html}'
        f'<h2>Samples</h2>{sort_controls_html()}<div id="samples">{cards}</div>'
    )
    return page(f"svgrft eval {summary.get('run_id')}", body)
