"""The reward: reply → SVG → PNG → gates → (cached) vision judge → score in [0, 1].

This is the one scoring path used everywhere: ``svgrft eval`` locally and the Eval Protocol
evaluator that Fireworks runs during training. It has no CLI state and no network of its own: the
judge is handed in (anything that satisfies :class:`svgrft.core.judge.Judge`; the callers compose
:func:`svgrft.clients.judge.judge_from_settings`), the rest comes from settings via
:func:`scorer_for`.

:meth:`Scorer.score_reply` never raises for bad input or remote trouble: the outcome is a
:class:`ScoreResult`. ``is_valid`` is False only when the number is not a real measurement of the
model's output (judge reply unusable after a repair retry, judge or browser unavailable, no
requirements); the model's own failures (no SVG, SVG that does not render, blank picture, drawn text
that talks to the judge, a text-heavy drawing with ``text_penalty`` 1) are valid zeros with a ``reason``
and the ``gate`` that fired. ``infra_error`` marks failures that a rerun may
fix (the eval pipeline redoes those samples on ``--resume``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from svgrft.core.extract import extract_svg
from svgrft.core.failure import FailureKind
from svgrft.core.gates import check_blank, check_injection, check_text_heavy, quick_has_content
from svgrft.core.judge import PROMPT_VERSION, Judge, JudgeReply, Verdict, requirements_hash
from svgrft.core.plural import plural

if TYPE_CHECKING:
    from svgrft.config import Settings

__all__ = ["Verdict", "ScoreResult", "Scorer", "scorer_for", "renderer_from_settings"]

# render error kinds caused by the model's SVG (a valid zero) vs by the machine (invalid, retry later)
MODEL_RENDER_ERRORS = ("no_svg", "too_large", "invalid", "timeout")


@dataclass
class ScoreResult:
    score: float
    is_valid: bool
    reason: str
    gate: str | None  # "no_svg" | "render_failed" | "blank" | "injection" | "text_heavy" | None
    fulfilled: int = 0
    total: int = 0
    verdicts: list[Verdict] = field(default_factory=list)
    judge_model: str = ""
    judge_mode: str = ""
    cached: bool = False
    svg: str | None = None
    png: bytes | None = None
    render_error: str | None = None
    flags: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # ms: extract, render, gates, judge, total
    usage: dict = field(default_factory=dict)  # judge tokens: prompt_tokens, completion_tokens
    # extras (beyond the shared contract)
    judge_calls: int = 0  # HTTP requests sent to the judge for this sample (0 when cached/gated)
    infra_error: str | None = None  # "judge:<kind>" | "render:browser_error" | … when a rerun may fix it
    reasoning: str = ""  # count mode: the judge's reasoning
    png_sha256: str | None = None
    extraction_method: str | None = None
    render_warnings: list[str] = field(default_factory=list)
    judge_failure: FailureKind | None = None  # how the judge failed (``infra_error`` is "judge:<it>")

    @property
    def fatal(self) -> bool:
        """The judge failed in a way every later sample will repeat (bad key, unknown model)."""
        return self.judge_failure is not None and self.judge_failure.fatal

    def to_dict(self, include_png: bool = False) -> dict:
        d = {
            "score": self.score,
            "is_valid": self.is_valid,
            "reason": self.reason,
            "gate": self.gate,
            "fulfilled": self.fulfilled,
            "total": self.total,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "judge_model": self.judge_model,
            "judge_mode": self.judge_mode,
            "cached": self.cached,
            "svg": self.svg,
            "render_error": self.render_error,
            "flags": list(self.flags),
            "timings": dict(self.timings),
            "usage": dict(self.usage),
            "judge_calls": self.judge_calls,
            "infra_error": self.infra_error,
            "reasoning": self.reasoning,
            "png_sha256": self.png_sha256,
            "extraction_method": self.extraction_method,
            "render_warnings": list(self.render_warnings),
        }
        if include_png:
            d["png_base64"] = base64.b64encode(self.png).decode("ascii") if self.png else None
        return d


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)


class Scorer:
    """Async, reusable and safe for concurrent use (the renderer pool and the judge semaphore bound the work).

    ``renderer``: a :class:`svgrft.core.render.Renderer` (async) -- a ``SyncRenderer`` also works (its
    calls run in a worker thread). ``judge``: a :class:`~svgrft.core.judge.Judge` (``model``, ``mode`` and
    ``async judge(png, requirements, prompt) -> JudgeOutcome``).
    ``cache``: a :class:`svgrft.core.store.JudgeCache` or None."""

    def __init__(
        self, *, renderer: Any, judge: Judge, cache: Any = None, text_penalty: float = 1.0, blank_gate: bool = True
    ):
        if not 0.0 <= float(text_penalty) <= 1.0:
            raise ValueError("text_penalty must be between 0 and 1")
        self.renderer = renderer
        self.judge = judge
        self.cache = cache
        self.text_penalty = float(text_penalty)
        self.blank_gate = blank_gate
        self._owned: list[Any] = []  # closed by aclose()
        self.stats = {"scored": 0, "judge_calls": 0, "judge_requests": 0, "cache_hits": 0, "invalid": 0}
        self.gate_counts: dict[str, int] = {}
        self._inflight: dict[str, asyncio.Future] = {}

    @property
    def judge_model(self) -> str:
        return str(getattr(self.judge, "model", ""))

    @property
    def judge_mode(self) -> str:
        return str(getattr(self.judge, "mode", "checklist"))

    async def aclose(self) -> None:
        for obj in reversed(self._owned):
            try:
                closer = getattr(obj, "aclose", None) or getattr(obj, "close", None)
                if closer is not None:
                    res = closer()
                    if inspect.isawaitable(res):
                        await res
            except Exception:
                pass
        self._owned.clear()

    async def __aenter__(self) -> Scorer:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # -- public API ---------------------------------------------------------------------------
    async def score_reply(self, reply: str | None, requirements: list[str], prompt: str = "") -> ScoreResult:
        t0 = time.perf_counter()
        base = self._base(requirements)
        text = reply if isinstance(reply, str) else ("" if reply is None else str(reply))
        ex = extract_svg(text)
        base.timings["extract"] = _ms(t0)
        if ex.svg is None:
            return self._finish(
                base,
                t0,
                score=0.0,
                valid=True,
                gate="no_svg",
                reason=f"no SVG: {ex.reason or 'no <svg> element in reply'}",
            )
        base.extraction_method = ex.method
        return await self._score(ex.svg, requirements, prompt, base, t0)

    async def score_svg(self, svg: str, requirements: list[str], prompt: str = "") -> ScoreResult:
        t0 = time.perf_counter()
        base = self._base(requirements)
        if not isinstance(svg, str) or "<svg" not in svg.lower():
            return self._finish(base, t0, score=0.0, valid=True, gate="no_svg", reason="no SVG: empty input")
        return await self._score(svg, requirements, prompt, base, t0)

    # -- steps --------------------------------------------------------------------------------
    def _base(self, requirements: Any) -> ScoreResult:
        total = len(requirements) if isinstance(requirements, (list, tuple)) else 0
        return ScoreResult(
            score=0.0,
            is_valid=False,
            reason="",
            gate=None,
            total=total,
            judge_model=self.judge_model,
            judge_mode=self.judge_mode,
        )

    def _finish(
        self, r: ScoreResult, t0: float, *, score: float, valid: bool, reason: str, gate: str | None = None
    ) -> ScoreResult:
        r.score = float(min(1.0, max(0.0, score)))
        r.is_valid = valid
        r.reason = reason
        if gate is not None:
            r.gate = gate
        r.timings["total"] = _ms(t0)
        self.stats["scored"] += 1
        if not valid:
            self.stats["invalid"] += 1
        if r.gate:
            self.gate_counts[r.gate] = self.gate_counts.get(r.gate, 0) + 1
        return r

    async def _render(self, svg: str) -> Any:
        render = self.renderer.render
        if inspect.iscoroutinefunction(render):
            return await render(svg)
        res = await asyncio.to_thread(render, svg)
        if inspect.isawaitable(res):
            res = await res
        return res

    async def _score(self, svg: str, requirements: Any, prompt: str, r: ScoreResult, t0: float) -> ScoreResult:
        from svgrft.errors import SvgrftError

        r.svg = svg
        reqs = [str(x) for x in requirements] if isinstance(requirements, (list, tuple)) else []
        if not reqs:
            return self._finish(r, t0, score=0.0, valid=False, reason="row has no requirements to judge")

        t1 = time.perf_counter()
        try:
            rendered = await self._render(svg)
        except SvgrftError as e:  # no browser, browser will not start
            r.timings["render"] = _ms(t1)
            r.render_error = "browser_error"
            r.infra_error = "render:browser_error"
            return self._finish(
                r, t0, score=0.0, valid=False, gate="render_failed", reason=f"renderer unavailable: {e.message}"
            )
        r.timings["render"] = _ms(t1)
        r.render_warnings = list(getattr(rendered, "warnings", []) or [])
        if not rendered.ok or not rendered.png:
            kind = rendered.error_kind or "invalid"
            r.render_error = kind
            why = rendered.reason or kind
            if kind in MODEL_RENDER_ERRORS:
                return self._finish(
                    r, t0, score=0.0, valid=True, gate="render_failed", reason=f"render failed ({kind}): {why}"
                )
            r.infra_error = f"render:{kind}"
            return self._finish(
                r, t0, score=0.0, valid=False, gate="render_failed", reason=f"render failed ({kind}): {why}"
            )
        png = rendered.png
        r.png = png
        r.png_sha256 = rendered.sha256 or hashlib.sha256(png).hexdigest()

        t2 = time.perf_counter()
        if self.blank_gate:
            if quick_has_content(png):
                blank = None
            else:
                blank = await asyncio.to_thread(check_blank, png)
            if blank is not None and blank.blank:
                r.timings["gates"] = _ms(t2)
                return self._finish(r, t0, score=0.0, valid=True, gate="blank", reason=blank.reason)
        injection = check_injection(svg, reqs, prompt)
        if injection.flagged:  # text that talks to the judge: reward hacking, never shown to the judge
            r.flags.append("injection")
            r.timings["gates"] = _ms(t2)
            return self._finish(r, t0, score=0.0, valid=True, gate="injection", reason=injection.reason)
        text = check_text_heavy(svg, reqs, prompt)
        if text.flagged:
            r.flags.append("text_heavy")
        r.timings["gates"] = _ms(t2)
        if text.flagged and self.text_penalty >= 1.0:  # the judged score would be multiplied by 0: no call
            return self._finish(r, t0, score=0.0, valid=True, gate="text_heavy", reason=f"text-heavy: {text.reason}")

        t3 = time.perf_counter()
        reply, err = await self._judged(png, r.png_sha256, reqs, prompt, r)
        r.timings["judge"] = _ms(t3)
        if reply is None:
            return self._finish(r, t0, score=0.0, valid=False, reason=err)
        r.fulfilled = reply.fulfilled
        r.total = reply.total
        r.verdicts = list(reply.verdicts)
        r.reasoning = reply.reasoning
        score = reply.score
        reason = f"{reply.fulfilled}/{plural(reply.total, 'requirement')} fulfilled"
        if r.cached:
            reason += " (cached verdict)"
        gate = None
        if text.flagged:
            if self.text_penalty > 0:
                score *= 1.0 - self.text_penalty
                gate = "text_heavy"
                reason += f"; text-heavy penalty ×{1.0 - self.text_penalty:g}: {text.reason}"
            else:
                reason += f"; flagged: {text.reason}"
        return self._finish(r, t0, score=score, valid=True, gate=gate, reason=reason)

    async def _judged(
        self, png: bytes, sha: str, reqs: list[str], prompt: str, r: ScoreResult
    ) -> tuple[JudgeReply | None, str]:
        key = dict(
            png_sha256=sha,
            requirements_hash=requirements_hash(reqs),
            judge_model=self.judge_model,
            mode=self.judge_mode,
            prompt_version=PROMPT_VERSION,
        )
        if self.cache is not None:
            try:
                hit = self.cache.get(**key)
                if hit is not None:
                    reply = JudgeReply.from_dict(hit)
                    if reply.total == len(reqs) and 0 <= reply.fulfilled <= reply.total:
                        r.cached = True
                        self.stats["cache_hits"] += 1
                        return reply, ""
            except Exception:
                pass  # a broken cache entry is just a miss
        # the same question already in flight (e.g. two samples drew the same picture): wait for it
        flight_key = "|".join(key.values())
        loop = asyncio.get_running_loop()
        fut = self._inflight.get(flight_key) if self.cache is not None else None
        if fut is not None and fut.get_loop() is loop and not fut.done():
            try:
                reply = await asyncio.shield(fut)
            except Exception:
                reply = None
            if reply is not None:
                r.cached = True
                self.stats["cache_hits"] += 1
                return reply, ""
        fut = loop.create_future()
        self._inflight[flight_key] = fut
        try:
            outcome = await self.judge.judge(png, reqs, prompt)
        except BaseException:
            if not fut.done():
                fut.set_result(None)
            raise
        finally:
            if self._inflight.get(flight_key) is fut:
                del self._inflight[flight_key]
        if not fut.done():
            fut.set_result(outcome.reply if outcome.ok else None)
        r.judge_calls = int(getattr(outcome, "calls", 0) or 0)
        self.stats["judge_calls"] += 1
        self.stats["judge_requests"] += r.judge_calls
        usage = getattr(outcome, "usage", None) or {}
        r.usage = {
            "prompt_tokens": int(usage.get("prompt_tokens", 0)),
            "completion_tokens": int(usage.get("completion_tokens", 0)),
        }
        if not outcome.ok or outcome.reply is None:
            kind = FailureKind.parse(outcome.error_kind) or FailureKind.ERROR
            if kind is not FailureKind.INVALID_REPLY:
                r.judge_failure = kind
                r.infra_error = f"judge:{kind}"
            return None, outcome.reason or f"judge failed ({kind})"
        if self.cache is not None:
            try:
                self.cache.put(outcome.reply.to_dict(), **key)
            except Exception:
                pass
        return outcome.reply, ""


def renderer_from_settings(settings: Settings) -> Any:
    """An (unstarted) async Renderer configured from the ``[render]`` settings."""
    from svgrft.core.render import Renderer

    render = settings.render
    return Renderer(
        pool_size=render.pool_size,
        max_side=render.max_side,
        default_size=render.size,
        timeout_ms=render.timeout_ms,
        chromium_path=render.chromium or None,
    )


async def scorer_for(
    settings: Settings, judge: Judge, *, renderer: Any = None, use_cache: bool = True, store: Any = None
) -> Scorer:
    """A ready Scorer around ``judge``: the text penalty and the cache switch from ``settings.judge``, the
    judge cache in the local store (``SVGRFT_HOME``, or ``store``), and a started renderer (created here
    unless given; then ``aclose()`` closes it). ``aclose()`` also closes the judge when it can."""
    from svgrft.core.store import JudgeCache, Store

    cache = None
    owned_store = None
    if use_cache and settings.judge.cache:
        owned_store = store if store is not None else Store()
        cache = JudgeCache(owned_store)
    scorer = Scorer(renderer=None, judge=judge, cache=cache, text_penalty=settings.judge.text_penalty)
    if renderer is None:
        renderer = renderer_from_settings(settings)
        await renderer.start()
        scorer._owned.append(renderer)
    scorer.renderer = renderer
    if hasattr(judge, "aclose"):
        scorer._owned.append(judge)
    if owned_store is not None and store is None:
        scorer._owned.insert(0, owned_store)
    return scorer
