#!/usr/bin/env python
"""Render benchmark: svgrft's pooled renderer vs the reference approach vs resvg-py, in ONE run.

    python benchmarks/render_bench.py [--corpus DIR] [--pool 2] [--ref-count 20] [--json out.json]

(a)  svgrft ``Renderer`` (hardened, one long-lived headless Chromium, pool of reused pages), whole corpus;
(b)  the reference approach of the original example (eval-protocol quickstart ``evaluator/utils.py``
     ``render_svg_to_png``, loaded from the installed eval_protocol package): a NEW FULL Chromium per SVG (Debian
     package ``chromium``), launched via Playwright with the original's flags, sizing (``calculate_svg_bounds``),
     HTML page, window resize and body screenshot; only ``set_content`` replaces its temp file + ``file://`` load;
(b2) the improved launcher: a new ``chromium-headless-shell`` per SVG (Playwright, svgrft's flags);
(b3) if selenium + Debian ``chromium-driver`` are installed: the literal original function, unchanged (Selenium
     Manager is bypassed via ``SE_CHROMEDRIVER``, nothing is downloaded);
     b, b2 and b3 render the same ``--ref-count`` SVGs, evenly spread over the corpus, sequentially;
(c)  resvg-py (if installed: ``pip install resvg-py``; not a project dependency) after svgrft's validation,
     in a worker process (it can crash its process on hostile input), one render at a time (= in-process,
     single-threaded throughput) and with 2 worker processes.

Printed: renders/s (count ÷ wall time), per-SVG latency median (min–max), peak summed RSS (and PSS) of the
Chromium processes below this process (psutil, sampled every 100 ms), and the ratios a/b, a/b2, a/b3, a/c.
When the references ran, (a) is measured a second time after them and a/b* use the mean of both passes (the
references take minutes and a shared machine's load drifts); a/c uses the second pass, run just before (c).
Targets (issue #3): a/b ≥ 30, a/c ≥ 1.0, peak RSS ≤ 600 MB with the default pool.
Needs for b: ``apt-get install -y chromium``; for b3 also ``apt-get install -y chromium-driver`` and
``pip install selenium`` (bench only; none of them is a project or CI dependency).
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
    return {
        "approach": name,
        "n": n,
        "wall_s": round(wall, 3),
        "renders_per_s": round(n / wall, 2) if wall else 0,
        "median_ms": round(statistics.median(lat), 1),
        "min_ms": round(lat[0], 1),
        "max_ms": round(lat[-1], 1),
        "failures": fails,
        "peak_rss_mb": round(mem.peak_rss) if mem else None,
        "peak_pss_mb": round(mem.peak_pss) if mem else None,
        "setup_ms": round(setup_ms) if setup_ms is not None else None,
        "note": note,
    }


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
    return _summary(f"a svgrft Renderer (pool {pool}, Chromium {version})", len(svgs), wall, lat, fails, mem, setup), {
        name: res for (name, _), res in zip(svgs, results)
    }


# ---------------------------------------------------------------- (b) reference: new browser per SVG


def load_reference_utils():
    """The original example's ``evaluator/utils.py`` as shipped inside the installed eval_protocol package, loaded
    from its file (it only imports the standard library; importing the eval_protocol package itself is slow).
    None if eval_protocol is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("eval_protocol")
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "quickstart" / "svg_agent" / "evaluator" / "utils.py"
    if not path.is_file():
        return None
    mspec = importlib.util.spec_from_file_location("_reference_svg_utils", path)
    mod = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(mod)
    mod.__bench_path__ = str(path)
    return mod


def reference_html(svg: str, width: int, height: int) -> str:
    """The HTML page the original ``render_svg_to_png`` builds around the SVG (same CSS)."""
    return f"""
        <!DOCTYPE html>
        <html>
        <head>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <style>
                * {{ margin: 0; padding: 0; box-sizing: border-box; }}
                body {{ background: white; width: {width}px; height: {height}px; overflow: hidden; }}
                svg {{ display: block; width: {width}px !important; height: {height}px !important; }}
            </style>
        </head>
        <body>
            {svg}
        </body>
        </html>
        """


def reference_flags(width: int, height: int) -> list[str]:
    """The original's Chrome options minus ``--headless`` (Playwright adds it: new headless, as with Selenium)."""
    return [
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--hide-scrollbars",
        "--disable-web-security",
        f"--window-size={width},{height}",
        "--force-device-scale-factor=1",
    ]


def find_full_chromium(explicit: str | None = None) -> str | None:
    """The full Chromium binary (Debian package ``chromium``), not the headless shell. The real binary is preferred
    over Debian's /usr/bin/chromium wrapper script (which adds ≈ 0.3 s per launch): the reference's best case."""
    import shutil

    if explicit:
        return shutil.which(explicit) or (explicit if os.access(explicit, os.X_OK) else None)
    for cand in ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(cand) if os.sep not in cand else (cand if os.access(cand, os.X_OK) else None)
        if path:
            return path
    return None


async def bench_reference_full(svgs, exe: str, ref, out_dir: Path):
    """(b) as the original example, via Playwright: a NEW full Chromium per SVG with the original's flags, its
    sizing (``calculate_svg_bounds``), its HTML, the window resized to (w, h + 139) as its
    ``driver.set_window_size`` does (CDP ``Browser.setWindowBounds``, which chromedriver uses too), wait for the
    ``<svg>``, body screenshot written to a file, close. Only the page load differs: ``set_content`` instead of a
    temp file + ``file://`` navigation."""
    from playwright.async_api import async_playwright

    lat: list[float] = []
    fails = []
    version = "?"
    with MemSampler() as mem:
        async with async_playwright() as pw:
            t1 = time.perf_counter()
            for i, (name, svg) in enumerate(svgs):
                t = time.perf_counter()
                browser = None
                try:
                    w, h = ref.calculate_svg_bounds(svg)
                    browser = await pw.chromium.launch(executable_path=exe, headless=True, args=reference_flags(w, h))
                    version = browser.version
                    page = await browser.new_page(no_viewport=True)  # the window size decides, as with Selenium
                    cdp = await page.context.new_cdp_session(page)
                    win = await cdp.send("Browser.getWindowForTarget")
                    await cdp.send(
                        "Browser.setWindowBounds",
                        {"windowId": win["windowId"], "bounds": {"width": w, "height": h + 139}},
                    )
                    await page.set_content(reference_html(svg, w, h), timeout=30_000)
                    await page.wait_for_selector("svg", state="attached", timeout=10_000)
                    await page.locator("body").screenshot(path=str(out_dir / f"b-{i}.png"), timeout=30_000)
                except Exception as e:  # noqa: BLE001 - report and go on
                    fails.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}")
                finally:
                    if browser is not None:
                        await browser.close()
                lat.append((time.perf_counter() - t) * 1000)
            wall = time.perf_counter() - t1
    return _summary(
        f"b reference as the original: new full Chromium {version} per SVG (Playwright)",
        len(svgs),
        wall,
        lat,
        fails,
        mem,
        note=f"{len(svgs)} SVGs, sequential; {exe}; original flags, sizing, HTML, window resize and body "
        "screenshot; set_content instead of file://",
    )


async def bench_reference_shell(svgs):
    """(b2) the improved launcher: a new headless shell per SVG with svgrft's flags and sizing."""
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
                browser = None
                try:
                    attrs = validate_svg(svg).root_attrs
                    w, h, _, _ = canvas_size(attrs, max_side=4096)
                    browser = await pw.chromium.launch(executable_path=exe, args=LAUNCH_ARGS)
                    page = await browser.new_page(viewport={"width": w, "height": h})
                    await page.set_content(_REF_HTML.format(svg=svg), timeout=30_000)
                    await page.locator("body").screenshot(timeout=30_000)
                except Exception as e:  # noqa: BLE001 - report and go on
                    fails.append(f"{name}: {type(e).__name__}")
                finally:
                    if browser is not None:
                        await browser.close()
                lat.append((time.perf_counter() - t) * 1000)
            wall = time.perf_counter() - t1
    return _summary(
        "b2 new headless shell per SVG (Playwright, svgrft flags, set_content, body screenshot)",
        len(svgs),
        wall,
        lat,
        fails,
        mem,
        note=f"{len(svgs)} SVGs, sequential; {exe}",
    )


_REF_HTML = "<html><head><style>body {{ margin: 0; padding: 0; }}</style></head><body>{svg}</body></html>"


def _chrome_descendants():
    import psutil

    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "chrom" in p.name().lower():
                out.append(p)
        except psutil.Error:
            pass
    return out


def _kill_pids(procs) -> int:
    """Kill the given (own, descendant) browser processes by pid; returns how many were still alive."""
    import psutil

    n = 0
    for p in procs:
        try:
            p.kill()
            n += 1
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=5)
    return n


def selenium_setup() -> tuple[str | None, str]:
    """(chromedriver path, reason). Selenium Manager (which may download drivers/browsers) is bypassed by naming the
    driver in ``SE_CHROMEDRIVER`` (read by selenium's ChromeService) and ``SE_OFFLINE=true`` as a second guard."""
    import shutil

    try:
        import selenium  # noqa: F401
    except ImportError:
        return None, "selenium not installed (pip install selenium)"
    drv = os.environ.get("SE_CHROMEDRIVER") or shutil.which("chromedriver")
    if not drv or not os.access(drv, os.X_OK):
        return None, "no chromedriver (apt-get install -y chromium-driver)"
    os.environ["SE_CHROMEDRIVER"] = drv
    os.environ["SE_OFFLINE"] = "true"
    return drv, ""


def bench_reference_selenium(svgs, ref, drv: str, out_dir: Path, timeout_s: float = 90.0):
    """(b3) the literal original ``render_svg_to_png`` (Selenium + chromedriver + full Chromium, temp file,
    ``file://``), unchanged. Each call runs in a thread with a timeout; the original does not ``driver.quit()`` when
    it raises, so browser processes left behind by a failed or timed-out call are killed by pid afterwards."""
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as FutTimeout

    lat: list[float] = []
    fails = []
    leaked = 0
    with MemSampler() as mem, ThreadPoolExecutor(1) as tp:
        t1 = time.perf_counter()
        for i, (name, svg) in enumerate(svgs):
            t = time.perf_counter()
            fut = tp.submit(ref.render_svg_to_png, svg, str(out_dir / f"b3-{i}.png"))
            try:
                fut.result(timeout=timeout_s)
            except FutTimeout:
                fails.append(f"{name}: timeout after {timeout_s:.0f} s")
                leaked += _kill_pids(_chrome_descendants())
                try:
                    fut.exception(timeout=30)  # the call returns once its chromedriver is gone
                except FutTimeout:
                    pass
            except Exception as e:  # noqa: BLE001 - the original raises RuntimeError on any failure
                fails.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}")
                leaked += _kill_pids(_chrome_descendants())
            lat.append((time.perf_counter() - t) * 1000)
        wall = time.perf_counter() - t1
    leaked += _kill_pids(_chrome_descendants())
    note = f"{len(svgs)} SVGs, sequential; driver {drv}; peak memory includes chromedriver"
    if leaked:
        note += f"; {leaked} leaked browser processes killed"
    return _summary(
        "b3 literal original render_svg_to_png (Selenium + chromedriver + full Chromium, file://)",
        len(svgs),
        wall,
        lat,
        fails,
        mem,
        note=note,
    )


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


def _ratio(x, y, nd=1):
    return round(x["renders_per_s"] / y["renders_per_s"], nd) if x and y and y["renders_per_s"] else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default=str(REPO / "tests" / "data" / "svg-corpus"))
    ap.add_argument("--pool", type=int, default=2, help="svgrft pool size (default 2, the production default)")
    ap.add_argument(
        "--ref-count",
        type=int,
        default=20,
        help="SVGs (evenly spread over the corpus) for each new-browser-per-SVG variant (default 20)",
    )
    ap.add_argument(
        "--ref-chromium", help="full Chromium for (b) (default: /usr/lib/chromium/chromium, else chromium on PATH)"
    )
    ap.add_argument("--skip-ref", action="store_true", help="skip b, b2 and b3")
    ap.add_argument("--skip-shell-ref", action="store_true", help="skip b2")
    ap.add_argument("--skip-selenium", action="store_true", help="skip b3")
    ap.add_argument("--skip-resvg", action="store_true")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    files = sorted(Path(args.corpus).glob("*.svg"))
    if not files:
        print(f"no .svg files in {args.corpus}", file=sys.stderr)
        return 2
    svgs = [(f.name, f.read_text(encoding="utf-8", errors="replace")) for f in files]
    try:
        load = "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "load average unknown"
    print(f"corpus: {len(svgs)} SVGs from {args.corpus}; {os.cpu_count()} CPUs; {load}", flush=True)

    rows = []
    skipped = []
    a, _ = asyncio.run(bench_svgrft(svgs, args.pool))
    rows.append(a)
    print(f"  done: {a['approach']}", flush=True)

    b = b2 = b3 = None
    if not args.skip_ref and args.ref_count > 0:
        step = max(1, len(svgs) // args.ref_count)
        subset = svgs[::step][: args.ref_count]
        print(f"  reference subset: {len(subset)} SVGs (every {step}th file)", flush=True)
        import tempfile

        ref = load_reference_utils()
        with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp:
            out_dir = Path(tmp)
            exe = find_full_chromium(args.ref_chromium)
            if ref is None:
                skipped.append("b, b3: eval_protocol not installed (the original utils.py ships inside it)")
            elif exe is None:
                skipped.append("b: no full Chromium (apt-get install -y chromium, or --ref-chromium PATH)")
            else:
                b = asyncio.run(bench_reference_full(subset, exe, ref, out_dir))
                rows.append(b)
                print(f"  done: {b['approach']}", flush=True)
            if not args.skip_shell_ref:
                b2 = asyncio.run(bench_reference_shell(subset))
                rows.append(b2)
                print(f"  done: {b2['approach']}", flush=True)
            if not args.skip_selenium and ref is not None:
                drv, why = selenium_setup()
                if drv is None:
                    skipped.append(f"b3: {why}")
                else:
                    b3 = bench_reference_selenium(subset, ref, drv, out_dir)
                    rows.append(b3)
                    print(f"  done: {b3['approach']}", flush=True)

    a2 = None
    if rows[-1] is not a:  # the references took minutes: measure (a) again so load drift hits both sides
        a2, _ = asyncio.run(bench_svgrft(svgs, args.pool))
        a2["approach"] = a2["approach"].replace("a svgrft", "a svgrft, 2nd pass", 1)
        rows.append(a2)
        print(f"  done: {a2['approach']}", flush=True)
    a_mean = dict(a, renders_per_s=round((a["renders_per_s"] + a2["renders_per_s"]) / 2, 2)) if a2 else a

    c1 = c2 = None
    if not args.skip_resvg:
        try:
            import resvg_py  # noqa: F401
        except ImportError:
            skipped.append("c: resvg-py not installed (pip install resvg-py)")
        else:
            c1 = bench_resvg(svgs, 1)
            c2 = bench_resvg(svgs, 2)
            rows += [c1, c2]
            print("  done: resvg-py", flush=True)

    try:
        load = "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "load average unknown"
    print(f"\nat the end: {load}")
    W = 96
    hdr = f"{'approach':<{W}} {'n':>4} {'renders/s':>9} {'median ms (min-max)':>22} {'peak RSS/PSS MB':>16} {'fail':>4}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        mem = f"{r['peak_rss_mb']}/{r['peak_pss_mb']}" if r["peak_rss_mb"] is not None else "-"
        lat = f"{r['median_ms']} ({r['min_ms']}-{r['max_ms']})"
        print(
            f"{r['approach'][:W]:<{W}} {r['n']:>4} {r['renders_per_s']:>9} {lat:>22} {mem:>16} {len(r['failures']):>4}"
        )
        if r["note"]:
            print(f"    note: {r['note']}")
        if r["setup_ms"] is not None:
            print(f"    one-off setup (launch + {args.pool} pages): {r['setup_ms']} ms")
        for f in r["failures"][:8]:
            print(f"    failed: {f}")
        if len(r["failures"]) > 8:
            print(f"    … and {len(r['failures']) - 8} more failures")
    for s in skipped:
        print(f"skipped {s}")

    ratios = {}
    print()
    if a2:
        print(
            f"a/b* use the mean of the two (a) passes, before and after the references: {a_mean['renders_per_s']} "
            "renders/s" + ("; a/c uses the 2nd pass (just before c)" if c1 else "")
        )
    if b:
        ratios["a/b"] = _ratio(a_mean, b)
        print(
            f"a/b  (renders/s, vs the original's approach: full Chromium per SVG) = {ratios['a/b']}   "
            f"target >= 30: {'PASS' if ratios['a/b'] >= 30 else 'FAIL'}"
        )
    if b2:
        ratios["a/b2"] = _ratio(a_mean, b2)
        print(f"a/b2 (vs a headless shell per SVG, the improved launcher) = {ratios['a/b2']}   (informational)")
    if b3:
        ratios["a/b3"] = _ratio(a_mean, b3)
        print(
            f"a/b3 (vs the literal original function, Selenium) = {ratios['a/b3']}   "
            f"target >= 30: {'PASS' if ratios['a/b3'] >= 30 else 'FAIL'}"
        )
    if c1:
        a_c = a2 or a
        ratios["a/c"] = _ratio(a_c, c1, 2)
        ratios["a/c_2proc"] = _ratio(a_c, c2, 2)
        print(
            f"a/c  (renders/s, resvg one at a time) = {ratios['a/c']}   target >= 1.0: "
            f"{'PASS' if ratios['a/c'] >= 1.0 else 'FAIL'}"
        )
        print(f"a/c  (resvg with 2 worker processes) = {ratios['a/c_2proc']}   (informational)")
        print(
            "    resvg renders fewer SVGs (it rejects malformed XML) and differs on CSS/foreignObject/fonts: "
            "see docs/reference/rendering.md §6"
        )
    peak = max(r["peak_rss_mb"] for r in (a, a2) if r) if a["peak_rss_mb"] is not None else None
    rss_ok = peak is not None and peak <= 600
    print(f"peak RSS (a, pool {args.pool}) = {peak} MB   target <= 600 MB: {'PASS' if rss_ok else 'FAIL'}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"rows": rows, "ratios": ratios, "skipped": skipped, "a_renders_per_s_mean": a_mean["renders_per_s"]},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
