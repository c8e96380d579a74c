#!/usr/bin/env python
"""Render benchmark: svgrft's pooled renderer vs the reference approach vs resvg-py, in ONE run.

    python benchmarks/render_bench.py [--corpus DIR] [--pool 2] [--ref-count 10] [--json out.json]

(a) svgrft ``Renderer`` (hardened, one long-lived headless Chromium, pool of reused pages);
(b) the reference approach of the original example: a new browser per SVG (here via Playwright with the same
    Chromium binary, file-less: ``set_content`` + body screenshot), on a subset (``--ref-count``) to keep time sane;
(c) resvg-py (if installed: ``pip install resvg-py``; not a project dependency) after svgrft's validation,
    in a worker process (it can crash its process on hostile input), one render at a time (= in-process,
    single-threaded throughput) and with 2 worker processes.

Printed: renders/s (count ÷ wall time), per-SVG latency median (min–max), peak summed RSS (and PSS) of the
Chromium processes below this process (psutil, sampled every 100 ms), and the ratios a/b and a/c.
Targets (issue #3): a/b ≥ 30, a/c ≥ 1.0, peak RSS ≤ 600 MB with the default pool.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class MemSampler:
    """Peak summed RSS/PSS (MB) of Chromium processes below this process while active."""

    def __init__(self, interval: float = 0.1, pss_every: int = 3):
        import psutil

        self.psutil = psutil
        self.interval = interval
        self.pss_every = pss_every
        self.peak_rss = 0.0
        self.peak_pss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _procs(self):
        out = []
        for p in self.psutil.Process().children(recursive=True):
            try:
                if "chrom" in p.name().lower() or "headless" in p.name().lower():
                    out.append(p)
            except self.psutil.Error:
                pass
        return out

    def _run(self):
        i = 0
        while not self._stop.is_set():
            procs = self._procs()
            rss = pss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                    if i % self.pss_every == 0:
                        pss += p.memory_full_info().pss
                except self.psutil.Error:
                    pass
            self.peak_rss = max(self.peak_rss, rss / 2**20)
            if i % self.pss_every == 0:
                self.peak_pss = max(self.peak_pss, pss / 2**20)
            i += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _summary(name, n, wall, lat_ms, fails, mem=None, setup_ms=None, note=""):
    lat = sorted(lat_ms) or [0.0]
    return {"approach": name, "n": n, "wall_s": round(wall, 3), "renders_per_s": round(n / wall, 2) if wall else 0,
            "median_ms": round(statistics.median(lat), 1), "min_ms": round(lat[0], 1), "max_ms": round(lat[-1], 1),
            "failures": fails, "peak_rss_mb": round(mem.peak_rss) if mem else None,
            "peak_pss_mb": round(mem.peak_pss) if mem else None,
            "setup_ms": round(setup_ms) if setup_ms is not None else None, "note": note}


# ---------------------------------------------------------------- (a) svgrft

async def bench_svgrft(svgs, pool: int):
    from svgrft.core.render import Renderer

    with MemSampler() as mem:
        t0 = time.perf_counter()
        r = Renderer(pool_size=pool)
        await r.start()
        setup = (time.perf_counter() - t0) * 1000
        sem = asyncio.Semaphore(pool)  # measure latency without time spent queueing for a page
        lat: list[float] = []

        async def one(svg):
            async with sem:
                t = time.perf_counter()
                res = await r.render(svg)
                lat.append((time.perf_counter() - t) * 1000)
                return res

        t1 = time.perf_counter()
        results = await asyncio.gather(*(one(s) for (_, s) in svgs))
        wall = time.perf_counter() - t1
        version = r.version
        await r.close()
    fails = [f"{name}: {res.error_kind}" for (name, _), res in zip(svgs, results) if not res.ok]
    return _summary(f"a svgrft Renderer (pool {pool}, Chromium {version})", len(svgs), wall, lat, fails, mem, setup), \
        {name: res for (name, _), res in zip(svgs, results)}


# ---------------------------------------------------------------- (b) reference: new browser per SVG

_REF_HTML = ("<html><head><style>body {{ margin: 0; padding: 0; }}</style></head>"
             "<body>{svg}</body></html>")


async def bench_reference(svgs):
    from playwright.async_api import async_playwright

    from svgrft.core.render import LAUNCH_ARGS, find_chromium
    from svgrft.core.svgsafe import canvas_size, validate_svg

    exe = find_chromium()
    lat: list[float] = []
    fails = []
    with MemSampler() as mem:
        async with async_playwright() as pw:
            t1 = time.perf_counter()
            for name, svg in svgs:
                t = time.perf_counter()
                try:
                    attrs = validate_svg(svg).root_attrs
                    w, h, _, _ = canvas_size(attrs, max_side=4096)
                    browser = await pw.chromium.launch(executable_path=exe, args=LAUNCH_ARGS)
                    page = await browser.new_page(viewport={"width": w, "height": h})
                    await page.set_content(_REF_HTML.format(svg=svg), timeout=30_000)
                    await page.locator("body").screenshot(timeout=30_000)
                    await browser.close()
                except Exception as e:  # noqa: BLE001 - report and go on
                    fails.append(f"{name}: {type(e).__name__}")
                lat.append((time.perf_counter() - t) * 1000)
            wall = time.perf_counter() - t1
    return _summary("b reference: new browser per SVG (Playwright, set_content, body screenshot)", len(svgs), wall,
                    lat, fails, mem, note=f"subset of {len(svgs)} SVGs, sequential")


# ---------------------------------------------------------------- (c) resvg-py in worker processes

def _resvg_render(svg: str, w: int, h: int) -> int:
    import resvg_py

    png = resvg_py.svg_to_bytes(svg_string=svg, width=w, height=h, background="#ffffff")
    return len(png)


def _resvg_warm() -> bool:
    import resvg_py  # noqa: F401

    return True


def bench_resvg(svgs, workers: int):
    import multiprocessing as mp

    from svgrft.core.svgsafe import SvgRejected, canvas_size, validate_svg

    lat: list[float] = []
    fails = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
        for f in [ex.submit(_resvg_warm) for _ in range(workers)]:
            f.result()

        def job(item):
            name, svg = item
            t = time.perf_counter()
            try:
                safe = validate_svg(svg)  # byte/depth caps, no DTD, no external image hrefs
                w, h, _, _ = canvas_size(safe.root_attrs)
                ex.submit(_resvg_render, safe.svg, w, h).result(timeout=30)
            except SvgRejected as e:
                fails.append(f"{name}: {e.kind}")
            except Exception as e:  # noqa: BLE001 - resvg rejects malformed XML; a crash breaks the pool
                fails.append(f"{name}: {type(e).__name__}: {str(e)[:60]}")
            lat.append((time.perf_counter() - t) * 1000)

        t1 = time.perf_counter()
        if workers == 1:
            for item in svgs:
                job(item)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers) as tp:
                list(tp.map(job, svgs))
        wall = time.perf_counter() - t1
    label = "in a worker process, one at a time" if workers == 1 else f"{workers} worker processes"
    return _summary(f"c resvg-py ({label})", len(svgs), wall, lat, fails)


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(REPO.parent / "shared" / "svg-corpus"))
    ap.add_argument("--pool", type=int, default=2, help="svgrft pool size (default 2, the production default)")
    ap.add_argument("--ref-count", type=int, default=10, help="SVGs for the new-browser-per-SVG reference")
    ap.add_argument("--skip-ref", action="store_true")
    ap.add_argument("--skip-resvg", action="store_true")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    files = sorted(Path(args.corpus).glob("*.svg"))
    if not files:
        print(f"no .svg files in {args.corpus}", file=sys.stderr)
        return 2
    svgs = [(f.name, f.read_text(encoding="utf-8", errors="replace")) for f in files]
    print(f"corpus: {len(svgs)} SVGs from {args.corpus}; {os.cpu_count()} CPUs", flush=True)

    rows = []
    a, _ = asyncio.run(bench_svgrft(svgs, args.pool))
    rows.append(a)
    print(f"  done: {a['approach']}", flush=True)
    b = None
    if not args.skip_ref and args.ref_count > 0:
        step = max(1, len(svgs) // args.ref_count)
        subset = svgs[::step][: args.ref_count]
        b = asyncio.run(bench_reference(subset))
        rows.append(b)
        print(f"  done: {b['approach']}", flush=True)
    c1 = c2 = None
    if not args.skip_resvg:
        try:
            import resvg_py  # noqa: F401
        except ImportError:
            print("  resvg-py not installed: (c) skipped (pip install resvg-py)", flush=True)
        else:
            c1 = bench_resvg(svgs, 1)
            c2 = bench_resvg(svgs, 2)
            rows += [c1, c2]
            print("  done: resvg-py", flush=True)

    print()
    hdr = f"{'approach':<78} {'n':>4} {'renders/s':>9} {'median ms (min-max)':>22} {'peak RSS/PSS MB':>16} {'fail':>4}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        mem = f"{r['peak_rss_mb']}/{r['peak_pss_mb']}" if r["peak_rss_mb"] is not None else "-"
        lat = f"{r['median_ms']} ({r['min_ms']}-{r['max_ms']})"
        print(f"{r['approach'][:78]:<78} {r['n']:>4} {r['renders_per_s']:>9} {lat:>22} {mem:>16} {len(r['failures']):>4}")
        if r["note"]:
            print(f"    note: {r['note']}")
        if r["setup_ms"] is not None:
            print(f"    one-off setup (launch + {args.pool} pages): {r['setup_ms']} ms")
        for f in r["failures"][:8]:
            print(f"    failed: {f}")
        if len(r["failures"]) > 8:
            print(f"    … and {len(r['failures']) - 8} more failures")
    ratios = {}
    print()
    if b:
        ratios["a/b"] = round(a["renders_per_s"] / b["renders_per_s"], 1)
        print(f"a/b (renders/s) = {ratios['a/b']}   target >= 30: {'PASS' if ratios['a/b'] >= 30 else 'FAIL'}")
    if c1:
        ratios["a/c"] = round(a["renders_per_s"] / c1["renders_per_s"], 2)
        ratios["a/c_2proc"] = round(a["renders_per_s"] / c2["renders_per_s"], 2)
        print(f"a/c (renders/s, resvg one at a time) = {ratios['a/c']}   target >= 1.0: "
              f"{'PASS' if ratios['a/c'] >= 1.0 else 'FAIL'}")
        print(f"a/c (resvg with 2 worker processes) = {ratios['a/c_2proc']}   (informational)")
        print("    resvg renders fewer SVGs (it rejects malformed XML) and differs on CSS/foreignObject/fonts: "
              "see docs/reference/rendering.md §6")
    rss_ok = a["peak_rss_mb"] is not None and a["peak_rss_mb"] <= 600
    print(f"peak RSS (a, pool {args.pool}) = {a['peak_rss_mb']} MB   target <= 600 MB: {'PASS' if rss_ok else 'FAIL'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
