"""Secure, pooled headless-Chromium SVG → PNG renderer (design: docs/reference/rendering.md §7–8).

One long-lived browser per :class:`Renderer`, a pool of reused pages (one context each), and:

* JavaScript disabled for page scripts (``java_script_enabled=False``): ``<script>``, ``on*=`` handlers,
  JS loops and memory bombs do nothing;
* every request aborted (``context.route("**/*", abort)``, the context is also ``offline``) and a CSP
  that allows only ``data:`` images/fonts: no ``http://``/``file://`` fetch, no beacon, no stall;
* the SVG is put inline in an HTML page with ``set_content`` (about:blank origin, never ``file://``,
  never ``--disable-web-security``) on a white background;
* Python-side validation first (:mod:`svgrft.core.svgsafe`): byte/depth/element caps, no DTDs,
  image hrefs that would fetch removed, prefixed roots unprefixed, canvas from width/height/viewBox clamped
  to ``[min_side, max_side]``;
* the page around the SVG sets only its size (see :func:`_page_html`), and the browser runs in en-US
  (``--lang``/``--accept-lang``), so ``systemLanguage`` switches pick what a normal browser picks;
* viewport-clip screenshot with animations frozen (CSS ``animations="disabled"`` + SMIL
  ``pauseAnimations(); setCurrentTime(0)``; the markup is scanned for them with character references and CSS
  escapes resolved), images never animate (``imageAnimationPolicy``: GIF/APNG/WebP show their first frame, SMIL
  in SVG images stays at t=0), and what runs on its own clock was neutralised by the sanitizer (media, marquee,
  ``srcdoc``) → the same SVG gives the same PNG bytes;
* Chromium's sandbox is used unless this process runs as root or ``SVGRFT_NO_SANDBOX`` is set (or it cannot start
  here, e.g. in a container without user namespaces); without it one line says so, once per process
  (:func:`unsandboxed_reason`);
* timeouts on every browser step; a page that timed out or failed gets its context closed and replaced;
  a crashed browser is relaunched; the browser is recycled every ``recycle_after`` renders.

Bad SVG never raises: :meth:`Renderer.render` returns a :class:`RenderResult` with ``error_kind`` one of
``no_svg``, ``too_large``, ``invalid``, ``timeout``, ``browser_error``. Only infrastructure problems
(no Chromium, a browser that cannot start) raise :class:`svgrft.errors.RenderError`.

Playwright is imported inside functions only.

Over 400 lines on purpose: the browser pool, the launch flags (sandbox, no network, frozen clock and
animations), the hosting page and the capture share one browser lifecycle and one set of security
decisions; what the SVG may contain is decided before, in :mod:`svgrft.core.svgsafe`.
"""

from __future__ import annotations

import asyncio
import base64
import glob
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svgrft.config import process_env, process_environ, setting_env
from svgrft.core.extract import Extraction, extract_svg
from svgrft.core.svgsafe import SvgRejected, canvas_size, decoded_text, validate_svg
from svgrft.errors import BrowserNotFoundError, RenderError

__all__ = [
    "RenderResult",
    "Renderer",
    "SyncRenderer",
    "find_chromium",
    "chromium_version",
    "ERROR_KINDS",
    "LAUNCH_ARGS",
    "unsandboxed_reason",
]

log = logging.getLogger("svgrft.render")

ERROR_KINDS = ("no_svg", "too_large", "invalid", "timeout", "browser_error")

LAUNCH_ARGS = [
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-extensions",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--mute-audio",
    # memory: no separate GPU process (software raster anyway) → about 100 MB less RSS, same pixels
    "--in-process-gpu",
    # a fixed language, as a normal en-US browser has: <switch> children with systemLanguage="en" match
    # (the context's locale does not reach SVG's systemLanguage test), independent of the host's $LANG
    "--lang=en-US",
    "--accept-lang=en-US,en",
    # images never animate: an animated GIF/APNG/WebP shows its first frame and SMIL inside an SVG image stays at
    # t=0, whenever the screenshot happens (imageAnimationPolicy 2 = none). Chromium keeps only the last
    # --blink-settings, so Playwright's own headless settings (hover and a fine pointer) are repeated here.
    "--blink-settings=primaryHoverType=2,availableHoverTypes=2,primaryPointerType=4,availablePointerTypes=4,"
    "imageAnimationPolicy=2",
]
# The network service (unused: every request is aborted) runs inside the browser process: one process less.
# Chromium keeps only the last --enable-features switch, so Playwright's own list is repeated here.
_ENABLE_FEATURES = ["CDPScreenshotNewSurface", "SkipListAccountsWithoutGaiaCookies", "NetworkServiceInProcess2"]


def _launch_args(sandbox: bool) -> list[str]:
    feats = [
        f
        for f in _ENABLE_FEATURES
        if not (f == "CDPScreenshotNewSurface" and process_env("PLAYWRIGHT_LEGACY_SCREENSHOT"))
    ]
    args = LAUNCH_ARGS + ["--enable-features=" + ",".join(feats)]
    if not sandbox:
        args.append("--no-zygote")  # the zygote only exists for the sandbox: 2 processes less
    return args


INSTALL_HINT = (
    "install a headless Chromium: Debian/Ubuntu: `apt-get install -y chromium-headless-shell fonts-dejavu-core "
    "fonts-liberation`; macOS: `brew install --cask chromium`; or `playwright install chromium` "
    "(needs internet). Or point SVGRFT_CHROMIUM at a Chromium/Chrome executable."
)

# SMIL: pause at t=0 (CSS animations are frozen by the screenshot's animations="disabled").
# Each step costs a browser round trip, so it only runs when the markup could need it (conservative scans of
# the markup and of its text with character references and CSS escapes resolved: see _scan_text).
_SMIL = re.compile(r"<\s*(?:[\w.-]+:)?(?:animate\w*|set|discard)\b", re.IGNORECASE)
_CSS_ANIM = re.compile(r"animation|transition|keyframes|<marquee", re.IGNORECASE)
_CARET = re.compile(r"autofocus|contenteditable|<\s*(?:[\w.-]+:)?(?:input|textarea)\b", re.IGNORECASE)
# Markup that needs Playwright's screenshot (CSS animation freezing, caret hiding, waiting for web fonts);
# everything else is captured with one raw CDP ``Page.captureScreenshot`` (same PNG bytes, ~20 % less CPU).
_PW_SHOT = re.compile(
    r"animation|transition|keyframes|<marquee|autofocus|contenteditable|font-face|"
    r"<\s*(?:[\w.-]+:)?(?:input|textarea)\b",
    re.IGNORECASE,
)
_FREEZE_JS = """() => { for (const s of document.querySelectorAll('svg')) {
  if (s.pauseAnimations) { try { s.pauseAnimations(); s.setCurrentTime(0); } catch (e) {} } } }"""

_ROOT_NAME = re.compile(r"<[^\t\n\f\r />]*")
_CSP = (
    "default-src 'none'; img-src data:; font-src data:; media-src data:; style-src 'unsafe-inline'; "
    "script-src 'none'; frame-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'"
)


def _scan_text(html: str) -> str:
    """What the keyword scans read: the markup, and when it has character references or CSS escapes, also its
    decoded text (``anim&#97;tion``, ``@keyfr\\61mes``, ``@font-f\\61ce`` are what the browser acts on)."""
    decoded = decoded_text(html)
    return html if decoded == html else html + "\n" + decoded


def unsandboxed_reason(euid: int | None, env: Mapping[str, str]) -> str | None:
    """Why Chromium must start without its sandbox, or None to use it. ``euid`` is the effective user id
    (None where there is none); Chromium refuses its sandbox for root, and ``SVGRFT_NO_SANDBOX`` (any non-empty
    value) turns it off on purpose. A sandbox that fails to start is found out at launch (see Renderer)."""
    if euid == 0:
        return "this process runs as root, where Chromium cannot use it"
    if env.get("SVGRFT_NO_SANDBOX"):
        return "SVGRFT_NO_SANDBOX is set"
    return None


_unsandboxed_lock = threading.Lock()
_unsandboxed_noted = False  # the one line was written (once per process, however many renderers)


def _note_unsandboxed(why: str) -> bool:
    """Log, once per process, that Chromium runs without its sandbox and why that matters. True if it logged."""
    global _unsandboxed_noted
    with _unsandboxed_lock:
        if _unsandboxed_noted:
            return False
        _unsandboxed_noted = True
    log.warning(
        "svgrft: Chromium renders without its sandbox (%s): a browser exploit in a hostile SVG would run "
        "with this process's rights; render as an unprivileged user where the sandbox can start",
        why,
    )
    return True


def _page_html(svg: str, w: int, h: int) -> str:
    """The page that hosts the SVG. Its CSS sets nothing the SVG says about itself except the size (the canvas
    is derived from the SVG's own width/height/viewBox): the root's ``display``/``visibility``/``overflow``/
    ``background`` stay the SVG's own. The canvas is a flex container, so the root is laid out as a block
    (no baseline gap under an inline ``<svg>``) without a ``display`` rule on the SVG, which would override
    its ``display="none"``. The SVG's own style sheet applies to the whole page, so ``html``, ``body`` and the
    canvas are reset (``all:initial!important``): a ``div{padding:…;color:…}`` or ``body{font-size:…}``
    meant for HTML in a ``<foreignObject>`` neither moves the picture nor reaches the root by inheritance,
    as in an SVG document of its own."""
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        "<style>html,body{all:initial!important;display:block!important;overflow:hidden!important;"
        "background:#fff!important}"
        f"#svgrft-canvas{{all:initial!important;display:flex!important;align-items:flex-start!important;"
        f"width:{w}px!important;height:{h}px!important;overflow:hidden!important;background:#fff!important}}"
        f"#svgrft-canvas>svg{{flex:none!important;width:{w}px!important;height:{h}px!important}}</style></head>"
        f'<body><div id="svgrft-canvas">{svg}</div></body></html>'
    )


@dataclass
class RenderResult:
    ok: bool
    png: bytes | None
    width: int
    height: int
    error_kind: str | None  # one of ERROR_KINDS, None when ok
    reason: str | None  # one line, None when ok
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # ms: validate, render, total
    sha256: str | None = None  # of png

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no PNG bytes)."""
        return {
            "ok": self.ok,
            "width": self.width,
            "height": self.height,
            "error_kind": self.error_kind,
            "reason": self.reason,
            "warnings": list(self.warnings),
            "timings": dict(self.timings),
            "sha256": self.sha256,
        }


def _fail(
    kind: str, reason: str, t0: float, warnings: list[str] | None = None, timings: dict[str, float] | None = None
) -> RenderResult:
    tm = dict(timings or {})
    tm["total"] = (time.perf_counter() - t0) * 1000
    return RenderResult(False, None, 0, 0, kind, _one_line(reason), list(warnings or []), tm, None)


def _first_line(e: BaseException) -> str:
    msg = getattr(e, "message", None) or str(e) or type(e).__name__
    lines = [ln for ln in str(msg).splitlines() if ln.strip()]
    return _one_line(lines[0] if lines else type(e).__name__, 200)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# ---------------------------------------------------------------- finding Chromium


def _playwright_browser_dirs() -> list[Path]:
    env = process_env("PLAYWRIGHT_BROWSERS_PATH")
    if env and env != "0":
        return [Path(env)]
    home = Path.home()
    if sys.platform == "darwin":
        return [home / "Library" / "Caches" / "ms-playwright"]
    if sys.platform.startswith("win"):
        return [Path(process_env("LOCALAPPDATA", str(home / "AppData" / "Local"))) / "ms-playwright"]
    return [Path(process_env("XDG_CACHE_HOME", str(home / ".cache"))) / "ms-playwright"]


_PW_PATTERNS = [  # headless shell first (faster, half the memory), newest revision first
    "chromium_headless_shell-*/chrome-headless-shell-linux64/chrome-headless-shell",
    "chromium_headless_shell-*/chrome-linux/headless_shell",
    "chromium_headless_shell-*/chrome-headless-shell-mac*/chrome-headless-shell",
    "chromium_headless_shell-*/chrome-headless-shell-win64/chrome-headless-shell.exe",
    "chromium-*/chrome-linux64/chrome",
    "chromium-*/chrome-linux/chrome",
    "chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium",
    "chromium-*/chrome-mac*/Google Chrome for Testing.app/Contents/MacOS/Google Chrome for Testing",
    "chromium-*/chrome-win*/chrome.exe",
]

_SYSTEM_CANDIDATES = [
    "/usr/lib/chromium/chromium-headless-shell",  # the real binary behind Debian's /usr/bin wrapper script
    "chromium-headless-shell",
    "/usr/bin/chromium-headless-shell",
    "chromium",
    "/usr/bin/chromium",
    "/usr/lib/chromium/chromium",
    "chromium-browser",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
]


def _executable(p: str | Path) -> bool:
    return os.path.isfile(p) and os.access(p, os.X_OK)


def find_chromium(explicit: str | None = None) -> str:
    """Path of a usable Chromium: ``explicit`` > ``$SVGRFT_CHROMIUM`` > Playwright's own downloaded
    browser (only if its executable exists) > Debian's ``chromium-headless-shell`` > ``chromium``.
    Raises :class:`BrowserNotFoundError` with install commands when none is found."""
    for source, value in (("--chromium", explicit), ("SVGRFT_CHROMIUM", setting_env("render.chromium"))):
        if value:
            path = shutil.which(value) or value
            if _executable(path):
                return str(path)
            raise BrowserNotFoundError(
                f"{source} names {value!r}, which is not an executable file",
                hint="fix the path, or unset it to search automatically; " + INSTALL_HINT,
            )
    for base in _playwright_browser_dirs():
        for pattern in _PW_PATTERNS:
            hits = sorted(glob.glob(str(base / pattern)), reverse=True)
            for hit in hits:
                if _executable(hit):
                    return hit
    for cand in _SYSTEM_CANDIDATES:
        path = shutil.which(cand) if os.sep not in cand else cand
        if path and _executable(path):
            return path
    raise BrowserNotFoundError("no headless Chromium found", hint=INSTALL_HINT)


def chromium_version(path: str) -> str | None:
    """``<path> --version`` (e.g. "Chromium 156.0.8078.108"), or None if it does not answer within 10 s."""
    try:
        r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    out = (r.stdout or "").strip().splitlines()
    return out[0].strip() if r.returncode == 0 and out else None


# ---------------------------------------------------------------- process bookkeeping (Linux /proc, no psutil)


def _pids_with_arg(arg: str) -> list[int]:
    pids = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return pids
    needle = arg.encode()
    for e in entries:
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/cmdline", "rb") as f:
                if needle in f.read().split(b"\0"):
                    pids.append(int(e))
        except OSError:
            continue
    return sorted(pids)


def _group_pids(pgid: int) -> list[int]:
    """Live pids in process group ``pgid`` (Linux); [] elsewhere."""
    pids = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return pids
    for e in entries:
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2 :].split()
        if len(rest) > 2 and rest[0] != b"Z" and int(rest[2]) == pgid:
            pids.append(int(e))
    return pids


def _pid_alive(pid: int) -> bool:
    """False when ``pid`` is gone or a zombie (Linux /proc); True when unknown elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    rest = stat[stat.rfind(b")") + 2 :].split()
    return not rest or rest[0] not in (b"Z", b"X")


def _kill_group(pgid: int | None, executable: str | None) -> None:
    """SIGKILL what is left of a browser's process group: only members running ``executable`` or a
    Chromium binary (a pid number reused by an unrelated process is not touched)."""
    if not pgid or not executable:
        return
    exe = os.path.realpath(executable)
    for pid in _group_pids(pgid):
        try:
            real = os.path.realpath(f"/proc/{pid}/exe")
            # the binary itself, or the real browser behind a wrapper script (Debian's /usr/bin launchers)
            if real == exe or any(k in os.path.basename(real).lower() for k in ("chrom", "headless_shell")):
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass


# ---------------------------------------------------------------- the async renderer


@dataclass(eq=False)
class _Slot:
    context: Any
    page: Any
    gen: int
    viewport: tuple[int, int]
    dead: bool = False
    cdp: Any = None  # CDP session of the page, opened on first use


class _BrowserFailure(Exception):
    pass


class Renderer:
    """Async pooled renderer. Use ``async with Renderer() as r: res = await r.render(svg)``."""

    def __init__(
        self,
        *,
        pool_size: int = 2,
        max_side: int = 2048,
        min_side: int = 16,
        default_size: int = 512,
        size: int | None = None,
        max_bytes: int = 500_000,
        max_depth: int = 64,
        max_elements: int = 20_000,
        timeout_ms: int = 5000,
        chromium_path: str | None = None,
        recycle_after: int = 1000,
    ):
        if pool_size < 1:
            raise ValueError("pool_size must be >= 1")
        if not (1 <= min_side <= max_side):
            raise ValueError("need 1 <= min_side <= max_side")
        self.pool_size = pool_size
        self.max_side = max_side
        self.min_side = min_side
        self.default_size = default_size
        self.size = size
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.max_elements = max_elements
        self.timeout_ms = timeout_ms
        self.chromium_path = chromium_path
        self.recycle_after = recycle_after
        self.executable: str | None = None
        self.version: str | None = None
        self.launches = 0  # how many browsers were launched (1 + relaunches + recycles)
        self.renders = 0  # browser renders attempted since start
        self._pw: Any = None
        self._browser: Any = None
        self._gen = 0
        self._pgid: dict[int, int | None] = {}  # gen -> process group of that browser
        self._browsers: dict[int, Any] = {}  # gen -> browser still open
        self._slots_of: dict[int, int] = {}  # gen -> live slots
        self._since_launch = 0
        self._free: asyncio.Queue | None = None
        self._lock: asyncio.Lock | None = None
        self._started = False
        self._closed = False
        self._unsandboxed = unsandboxed_reason(os.geteuid() if hasattr(os, "geteuid") else None, process_environ())
        self._sandbox = self._unsandboxed is None
        self._marker = f"--svgrft-renderer={uuid.uuid4().hex}"
        self._start_lock = asyncio.Lock()  # binds to the running loop on first use (Python >= 3.10)

    # -- lifecycle

    async def __aenter__(self) -> Renderer:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def start(self) -> None:
        """Find Chromium, launch it and open the page pool (idempotent, safe to call concurrently)."""
        if self._started:
            return
        async with self._start_lock:
            if not self._started:
                await self._start()

    async def _start(self) -> None:
        if self._closed:
            raise RenderError("renderer is closed", hint="create a new Renderer")
        from playwright.async_api import async_playwright

        self.executable = find_chromium(self.chromium_path)
        self._lock = asyncio.Lock()
        self._free = asyncio.Queue()
        self._pw = await async_playwright().start()
        try:
            await self._launch()
            for _ in range(self.pool_size):
                self._free.put_nowait(await self._new_slot())
        except (_BrowserFailure, Exception) as e:
            await self._shutdown()
            if isinstance(e, RenderError):
                raise
            raise RenderError(
                f"could not open a page in Chromium at {self.executable}: {_first_line(e)}",
                hint="check `" + str(self.executable) + " --version`; " + INSTALL_HINT,
            ) from None
        except BaseException:
            await self._shutdown()
            raise
        self._started = True

    async def close(self) -> None:
        """Close every browser and the Playwright driver; no Chromium process is left behind."""
        self._closed = True
        self._started = False
        await self._shutdown()

    async def _shutdown(self) -> None:
        for gen, browser in list(self._browsers.items()):
            await self._close_browser(gen, browser)
        self._browsers.clear()
        self._browser = None
        if self._pw is not None:
            try:
                await asyncio.wait_for(self._pw.stop(), 10)
            except BaseException:
                pass
            self._pw = None
        for pgid in list(self._pgid.values()):
            _kill_group(pgid, self.executable)
        self._pgid.clear()

    async def _close_browser(self, gen: int, browser: Any) -> None:
        try:
            await asyncio.wait_for(browser.close(), 5)
        except BaseException:
            pass
        _kill_group(self._pgid.pop(gen, None), self.executable)
        self._browsers.pop(gen, None)

    async def _launch(self) -> None:
        """Launch a new browser generation (caller holds the lock or is start())."""
        from playwright.async_api import Error as PwError

        self._gen += 1
        gen = self._gen
        marker = f"{self._marker}-{gen}"
        args = _launch_args(self._sandbox) + [marker]
        if not self._sandbox:
            _note_unsandboxed(self._unsandboxed or "it could not start here")
        try:
            browser = await self._pw.chromium.launch(
                executable_path=self.executable,
                headless=True,
                args=args,
                chromium_sandbox=self._sandbox,
                timeout=30_000,
            )
        except PwError as e:
            if not self._sandbox:
                raise RenderError(
                    f"could not start Chromium at {self.executable}: {_first_line(e)}",
                    hint="check `" + str(self.executable) + " --version`; " + INSTALL_HINT,
                ) from None
            self._sandbox = False  # no usable sandbox here (containers): retry without it
            self._unsandboxed = "it could not start here, e.g. in a container without user namespaces"
            _note_unsandboxed(self._unsandboxed)
            return await self._launch_without_sandbox(gen, _launch_args(False) + [marker])
        self._register(gen, browser, marker)

    async def _launch_without_sandbox(self, gen: int, args: list[str]) -> None:
        from playwright.async_api import Error as PwError

        try:
            browser = await self._pw.chromium.launch(
                executable_path=self.executable, headless=True, args=args, chromium_sandbox=False, timeout=30_000
            )
        except PwError as e:
            raise RenderError(
                f"could not start Chromium at {self.executable}: {_first_line(e)}", hint=INSTALL_HINT
            ) from None
        self._register(gen, browser, args[-1])

    def _register(self, gen: int, browser: Any, marker: str) -> None:
        self._browser = browser
        self._browsers[gen] = browser
        self._slots_of[gen] = 0
        self._since_launch = 0
        self.launches += 1
        # Playwright starts the browser as the leader of its own process group: remember that group
        # (for cleanup, memory accounting and crash detection) only when this is really so.
        pgid = None
        for pid in _pids_with_arg(marker):
            try:
                if os.getpgid(pid) == pid and pid != os.getpgid(0):
                    pgid = pid
                    break
            except OSError:
                continue
        self._pgid[gen] = pgid
        if self.version is None:
            self.version = getattr(browser, "version", None)

    @property
    def browser_pid(self) -> int | None:
        """Process group id (= pid of the launched browser process) of the current browser (Linux)."""
        return self._pgid.get(self._gen)

    def process_ids(self) -> list[int]:
        """Pids of every live Chromium process of this renderer (Linux; for memory accounting and tests)."""
        pids: list[int] = []
        for pgid in self._pgid.values():
            if pgid:
                pids.extend(_group_pids(pgid))
        return pids

    def _alive(self) -> bool:
        """The current browser is connected and its process is not dead (a killed browser can look
        connected for a moment until Playwright notices)."""
        if self._browser is None or not self._browser.is_connected():
            return False
        pid = self._pgid.get(self._gen)
        return pid is None or _pid_alive(pid)

    async def _relaunch(self) -> None:
        assert self._lock is not None
        async with self._lock:
            if self._closed:
                raise _BrowserFailure("renderer is closed")
            if self._alive():
                return  # someone else already relaunched
            old_gen = self._gen
            old = self._browsers.get(old_gen)
            if old is not None:
                await self._close_browser(old_gen, old)
            try:
                await self._launch()
            except RenderError as e:
                raise _BrowserFailure(e.message) from None

    async def _recycle(self) -> None:
        """Start a fresh browser; the old one closes once its in-flight pages come back."""
        assert self._lock is not None and self._free is not None
        async with self._lock:
            if self._since_launch < self.recycle_after or self._closed:
                return
            old_gen = self._gen
            try:
                await self._launch()
            except RenderError:
                return  # keep the old browser; try again later
            # replace idle old slots now; busy ones are replaced when released
            idle = []
            while not self._free.empty():
                idle.append(self._free.get_nowait())
        for slot in idle:
            if slot is not None:
                await self._discard(slot)
            self._free.put_nowait(None)
        if self._slots_of.get(old_gen, 0) == 0 and old_gen in self._browsers:
            await self._close_browser(old_gen, self._browsers[old_gen])

    # -- slots

    async def _new_slot(self) -> _Slot:
        if not self._alive():
            await self._relaunch()
        gen = self._gen
        browser = self._browser
        ctx = await asyncio.wait_for(
            browser.new_context(
                java_script_enabled=False,
                offline=True,
                viewport={"width": self.default_size, "height": self.default_size},
                device_scale_factor=1,
                service_workers="block",
                accept_downloads=False,
                color_scheme="light",
                reduced_motion="reduce",
                locale="en-US",
                timezone_id="UTC",
            ),
            30,
        )
        self._slots_of[gen] = self._slots_of.get(gen, 0) + 1
        try:
            await ctx.route("**/*", _abort_route)
            page = await asyncio.wait_for(ctx.new_page(), 30)
        except BaseException:
            await self._discard(_Slot(ctx, None, gen, (0, 0)))
            raise
        return _Slot(ctx, page, gen, (self.default_size, self.default_size))

    async def _discard(self, slot: _Slot) -> None:
        try:
            await asyncio.wait_for(slot.context.close(), 5)
        except BaseException:
            pass
        self._slots_of[slot.gen] = self._slots_of.get(slot.gen, 1) - 1
        if slot.gen != self._gen and self._slots_of[slot.gen] <= 0 and slot.gen in self._browsers:
            await self._close_browser(slot.gen, self._browsers[slot.gen])

    async def _acquire(self) -> _Slot:
        assert self._free is not None
        slot = await self._free.get()
        if slot is not None and not slot.dead and slot.gen == self._gen and self._alive():
            return slot
        if slot is not None:
            await self._discard(slot)
        try:
            try:
                return await self._new_slot()
            except Exception:
                # a browser that just died can still look alive for a moment: check again, relaunch once
                await asyncio.sleep(0.05)
                if self._alive():
                    raise
                return await self._new_slot()
        except BaseException as e:
            self._free.put_nowait(None)  # keep the pool size; the next acquire tries again
            if isinstance(e, Exception):
                raise _BrowserFailure(_first_line(e)) from None
            raise

    async def _release(self, slot: _Slot) -> None:
        assert self._free is not None
        if slot.dead or slot.gen != self._gen:
            await self._discard(slot)
            self._free.put_nowait(None)  # replaced lazily by the next _acquire
        else:
            self._free.put_nowait(slot)

    # -- rendering

    async def render(self, svg: str) -> RenderResult:
        """Render untrusted SVG markup. Never raises for bad SVG; returns a typed failure instead."""
        t0 = time.perf_counter()
        if not self._started:
            await self.start()
        try:
            if isinstance(svg, str) and len(svg) > 50_000:
                safe = await asyncio.to_thread(self._validate, svg)
            else:
                safe = self._validate(svg)
        except SvgRejected as e:
            return _fail(e.kind, e.reason, t0, timings={"validate": (time.perf_counter() - t0) * 1000})
        w, h, intrinsic, size_warn = canvas_size(
            safe.root_attrs,
            default_size=self.default_size,
            size=self.size,
            min_side=self.min_side,
            max_side=self.max_side,
        )
        warnings = safe.warnings + size_warn
        markup = safe.svg
        if intrinsic and "viewbox" not in safe.root_attrs and (w, h) != (round(intrinsic[0]), round(intrinsic[1])):
            # scale the drawing (not crop it) when the canvas differs from its own size
            k = _ROOT_NAME.match(markup).end()  # after the root's tag name (also a prefixed one)
            markup = markup[:k] + f' viewBox="0 0 {intrinsic[0]:g} {intrinsic[1]:g}"' + markup[k:]
        t1 = time.perf_counter()
        timings = {"validate": (t1 - t0) * 1000}
        try:
            png = await self._render_html(_page_html(markup, w, h), w, h)
        except _Timeout as e:
            timings["render"] = (time.perf_counter() - t1) * 1000
            return _fail("timeout", str(e), t0, warnings, timings)
        except _BrowserFailure as e:
            timings["render"] = (time.perf_counter() - t1) * 1000
            return _fail("browser_error", f"browser error: {e}", t0, warnings, timings)
        t2 = time.perf_counter()
        timings["render"] = (t2 - t1) * 1000
        timings["total"] = (t2 - t0) * 1000
        return RenderResult(True, png, w, h, None, None, warnings, timings, hashlib.sha256(png).hexdigest())

    def _validate(self, svg: str):
        return validate_svg(svg, max_bytes=self.max_bytes, max_depth=self.max_depth, max_elements=self.max_elements)

    async def render_reply(self, text: str | None) -> tuple[Extraction, RenderResult]:
        """Extract the SVG from a model reply, then render it (``no_svg`` when there is none)."""
        t0 = time.perf_counter()
        ex = extract_svg(text)
        if ex.svg is None:
            return ex, _fail("no_svg", ex.reason or "no <svg> element in reply", t0)
        return ex, await self.render(ex.svg)

    async def _render_html(self, html: str, w: int, h: int) -> bytes:
        from playwright.async_api import Error as PwError
        from playwright.async_api import TimeoutError as PwTimeout

        slot = await self._acquire()
        self.renders += 1
        self._since_launch += 1
        t = max(1, int(self.timeout_ms))
        try:
            return await asyncio.wait_for(self._shoot(slot, html, w, h, t), timeout=3 * t / 1000 + 1)
        except (asyncio.TimeoutError, PwTimeout):
            slot.dead = True
            raise _Timeout(f"render timed out after {t} ms") from None
        except PwError as e:
            slot.dead = True
            raise _BrowserFailure(_first_line(e)) from None
        except asyncio.CancelledError:
            slot.dead = True
            raise
        except Exception as e:  # anything unexpected from the driver: replace the page, report it
            slot.dead = True
            raise _BrowserFailure(_one_line(f"{type(e).__name__}: {e}", 200)) from None
        finally:
            await self._release(slot)
            if self._since_launch >= self.recycle_after and not self._closed:
                await self._recycle()

    async def _shoot(self, slot: _Slot, html: str, w: int, h: int, t: int) -> bytes:
        page = slot.page
        if slot.viewport != (w, h):
            await page.set_viewport_size({"width": w, "height": h})
            slot.viewport = (w, h)
        await page.set_content(html, timeout=t, wait_until="load")
        text = _scan_text(html)
        if _SMIL.search(text):
            await page.evaluate(_FREEZE_JS)
        if _PW_SHOT.search(text):
            return await page.screenshot(
                clip={"x": 0, "y": 0, "width": w, "height": h},
                type="png",
                timeout=t,
                animations="disabled" if _CSS_ANIM.search(text) else "allow",
                caret="hide" if _CARET.search(text) else "initial",
            )
        # one round trip instead of Playwright's several; the PNG bytes are the same (tests/test_render_speed.py)
        if slot.cdp is None:
            slot.cdp = await asyncio.wait_for(page.context.new_cdp_session(page), t / 1000)
        shot = await asyncio.wait_for(
            slot.cdp.send(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1},
                    "optimizeForSpeed": True,
                    "captureBeyondViewport": False,
                    "fromSurface": True,
                },
            ),
            t / 1000,
        )
        data = shot.get("data") if isinstance(shot, dict) else None
        if not isinstance(data, str) or not data:
            raise RuntimeError("Page.captureScreenshot returned no image")
        return base64.b64decode(data)

    async def screenshot_html(self, html: str, width: int, height: int | None = None) -> bytes:
        """PNG of an HTML page (a contact sheet or report) with the same hardening as :meth:`render`
        (JS off, every request aborted, only ``data:`` resources). ``height=None`` captures the full
        page height (at most 16384 px). Raises :class:`RenderError` on failure."""
        from playwright.async_api import Error as PwError
        from playwright.async_api import TimeoutError as PwTimeout

        if not self._started:
            await self.start()
        width = min(4096, max(self.min_side, int(width)))
        vh = min(16384, max(self.min_side, int(height))) if height else 800
        t = max(int(self.timeout_ms), 30_000)
        try:
            slot = await self._acquire()
        except _BrowserFailure as e:
            raise RenderError(f"browser error: {e}", hint="retry; if it persists run `svgrft doctor`") from None
        try:

            async def shoot() -> bytes:
                page = slot.page
                await page.set_viewport_size({"width": width, "height": vh})
                slot.viewport = (width, vh)
                await page.set_content(html, timeout=t, wait_until="load")
                await page.evaluate(_FREEZE_JS)
                if height:
                    return await page.screenshot(
                        clip={"x": 0, "y": 0, "width": width, "height": vh},
                        animations="disabled",
                        caret="hide",
                        type="png",
                        timeout=t,
                    )
                full = await page.evaluate(
                    "() => Math.max(document.documentElement.scrollHeight, document.body ? "
                    "document.body.scrollHeight : 0)"
                )
                fh = min(16384, max(self.min_side, int(full or vh)))
                return await page.screenshot(
                    full_page=True,
                    clip={"x": 0, "y": 0, "width": width, "height": fh},
                    animations="disabled",
                    caret="hide",
                    type="png",
                    timeout=t,
                )

            return await asyncio.wait_for(shoot(), timeout=3 * t / 1000 + 1)
        except (asyncio.TimeoutError, PwTimeout):
            slot.dead = True
            raise RenderError(
                f"HTML screenshot timed out after {t} ms", hint="make the page smaller (fewer or smaller images)"
            ) from None
        except PwError as e:
            slot.dead = True
            raise RenderError(
                f"HTML screenshot failed: {_first_line(e)}", hint="retry; if it persists run `svgrft doctor`"
            ) from None
        except BaseException:
            slot.dead = True
            raise
        finally:
            await self._release(slot)


class _Timeout(Exception):
    pass


async def _abort_route(route: Any) -> None:
    try:
        await route.abort("blockedbyclient")
    except Exception:
        pass


# ---------------------------------------------------------------- sync facade


class SyncRenderer:
    """The :class:`Renderer` API for synchronous code. A private event loop runs in a background thread,
    so this also works when called from code that is itself inside a running event loop (the call
    blocks that loop's thread until the render is done). Thread-safe; the browser starts on first use."""

    def __init__(self, **kwargs: Any):
        self._kwargs = kwargs
        self._renderer = Renderer(**kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def renderer(self) -> Renderer:
        return self._renderer

    def start(self) -> SyncRenderer:
        with self._lock:
            if self._closed:
                raise RenderError("renderer is closed", hint="create a new SyncRenderer")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name="svgrft-renderer", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
                import atexit

                atexit.register(self.close)
        self._call(self._renderer.start())
        return self

    def _call(self, coro: Any) -> Any:
        if self._loop is None:
            coro.close()
            raise RenderError("renderer is not started", hint="call start() first")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _ensure(self) -> None:
        if self._loop is None or not self._renderer._started:
            self.start()

    def render(self, svg: str) -> RenderResult:
        self._ensure()
        return self._call(self._renderer.render(svg))

    def render_reply(self, text: str | None) -> tuple[Extraction, RenderResult]:
        self._ensure()
        return self._call(self._renderer.render_reply(text))

    def render_many(self, svgs: list[str]) -> list[RenderResult]:
        """Render several SVGs concurrently on the pool; results in input order."""
        self._ensure()

        async def many() -> list[RenderResult]:
            return list(await asyncio.gather(*(self._renderer.render(s) for s in svgs)))

        return self._call(many())

    def screenshot_html(self, html: str, width: int, height: int | None = None) -> bytes:
        self._ensure()
        return self._call(self._renderer.screenshot_html(html, width, height))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        try:
            import atexit

            atexit.unregister(self.close)
        except Exception:
            pass
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._renderer.close(), loop).result(timeout=30)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        if not loop.is_running():
            loop.close()

    def __enter__(self) -> SyncRenderer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:  # read-only passthrough: browser_pid, process_ids, renders, …
        inner = self.__dict__.get("_renderer")
        if name.startswith("__") or inner is None:
            raise AttributeError(name)
        return getattr(inner, name)
