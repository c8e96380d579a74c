"""Vision-judge prompts, response schemas and strict reply parsing (no network here).

Two modes:

``checklist`` (default)
    One structured-output request. The judge returns, for every requirement in order,
    ``{"index": i, "fulfilled": bool, "evidence": "..."}``; the score is computed in code
    (fulfilled / total), so a judge can never report "7 of 5".

``count``
    The original SVGBench / eval-protocol quickstart prompt, kept verbatim
    (:data:`COUNT_PROMPT_TEMPLATE`): "How many of the following N requirements were fulfilled?"
    answering ``{"reasoning", "number_of_fulfilled_requirements"}``. Use it for scores that are
    comparable with SVGBench and the quickstart example.

Parsing is strict: a reply that is not one JSON object of the right shape, has the wrong
number of verdicts, duplicate/missing indices, or a count outside ``0..N`` raises
:class:`JudgeReplyError` with a one-line reason. The client then sends one repair request
(:func:`repair_messages`) and marks the sample invalid if that fails too.

:class:`Judge` is what scoring needs from a judge (a Protocol: :class:`svgrft.clients.judge.JudgeClient`
implements it, tests may pass fakes); :class:`JudgeOutcome` is its typed answer, with a
:class:`~svgrft.core.failure.FailureKind` when it failed.

Bump :data:`PROMPT_VERSION` whenever a prompt, schema or parsing rule changes: it is part of
the judge-cache key, so old cached verdicts are not reused for a different question.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from svgrft.config import SCHEMA
from svgrft.core.failure import FailureKind
from svgrft.core.plural import plural

__all__ = [
    "PROMPT_VERSION",
    "MODES",
    "COUNT_PROMPT_TEMPLATE",
    "CHECKLIST_SCHEMA",
    "COUNT_SCHEMA",
    "Verdict",
    "JudgeReply",
    "JudgeReplyError",
    "JudgeOutcome",
    "Judge",
    "requirements_text",
    "count_prompt",
    "checklist_prompt",
    "build_messages",
    "response_format",
    "parse_reply",
    "repair_messages",
    "png_data_url",
    "requirements_hash",
]

PROMPT_VERSION = "svgrft-judge-v1"
MODES: tuple[str, ...] = SCHEMA["judge.mode"].choices  # ("checklist", "count"): declared once, in the schema
MAX_EVIDENCE = 500  # characters kept per verdict's evidence
MAX_REASONING = 4000  # characters kept of the count-mode reasoning
MAX_REPLY_CHARS = 200_000  # longer judge replies are rejected without parsing

# --- count mode: the original SVGBench / quickstart prompt, verbatim ---------------------------
COUNT_PROMPT_TEMPLATE = """Examine the generated image. How many of the following {n} requirements were fulfilled?

Be strict about the requirements and respond ONLY with a JSON object in this exact format:
{{"reasoning": <reasoning_text>,
"number_of_fulfilled_requirements": <count>}}

Where <count> is a number between 0 and {n}.

Requirements:
{requirements_text}"""

COUNT_SCHEMA: dict[str, Any] = {
    "title": "SVGBenchResponse",
    "type": "object",
    "properties": {
        "reasoning": {"title": "Reasoning", "type": "string"},
        "number_of_fulfilled_requirements": {"title": "Number Of Fulfilled Requirements", "type": "integer"},
    },
    "required": ["reasoning", "number_of_fulfilled_requirements"],
    "additionalProperties": False,
}

# --- checklist mode -------------------------------------------------------------------------
CHECKLIST_PROMPT_TEMPLATE = """You are a strict visual judge. Examine the attached image, which was rendered from SVG code \
that a model wrote for the drawing request below. Decide, for EACH numbered requirement, whether the image \
visibly fulfils it.

Rules:
- Judge only what is visible in the image. Text written in the image that merely names or describes a \
requirement does not fulfil it; the requirement must be drawn.
- Be strict: a requirement that is only partly met, ambiguous or not recognisable is not fulfilled.
- Give one verdict per requirement, in the same order, with "index" equal to the requirement's number \
(1 to {n}), "fulfilled" true or false, and "evidence": one short sentence about what you see (or do not see).
- Reply ONLY with a JSON object of the form
{{"verdicts": [{{"index": 1, "fulfilled": true, "evidence": "..."}}, ...]}}
with exactly {n} verdicts.
{request_block}
Requirements ({n}):
{requirements_text}"""

CHECKLIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdicts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "fulfilled": {"type": "boolean"},
                    "evidence": {"type": "string"},
                },
                "required": ["index", "fulfilled", "evidence"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["verdicts"],
    "additionalProperties": False,
}


@dataclass
class Verdict:
    index: int  # 1-based requirement number
    requirement: str
    fulfilled: bool
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        return cls(
            index=int(d["index"]),
            requirement=str(d.get("requirement", "")),
            fulfilled=bool(d["fulfilled"]),
            evidence=str(d.get("evidence", "")),
        )


@dataclass
class JudgeReply:
    """A parsed, validated judge answer."""

    mode: str
    fulfilled: int
    total: int
    verdicts: list[Verdict] = field(default_factory=list)  # checklist mode only
    reasoning: str = ""  # count mode only

    @property
    def score(self) -> float:
        return self.fulfilled / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "fulfilled": self.fulfilled,
            "total": self.total,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "reasoning": self.reasoning,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JudgeReply:
        return cls(
            mode=str(d["mode"]),
            fulfilled=int(d["fulfilled"]),
            total=int(d["total"]),
            verdicts=[Verdict.from_dict(v) for v in d.get("verdicts") or []],
            reasoning=str(d.get("reasoning") or ""),
        )


class JudgeReplyError(ValueError):
    """The judge's reply is unusable (not JSON, wrong shape, wrong length, out of range, refusal)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class JudgeOutcome:
    """The result of judging one image: ``ok`` with a ``reply``, or ``error_kind`` with a one-line ``reason``."""

    ok: bool
    reply: JudgeReply | None = None
    reason: str = ""
    error_kind: FailureKind | None = None
    calls: int = 0  # HTTP requests sent (including retries and the repair request)
    usage: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0})
    latency_ms: float = 0.0
    raw: str | None = None  # the last raw reply (truncated), for debugging invalid ones

    @property
    def fatal(self) -> bool:
        """Every later request will fail the same way (bad key, unknown model)."""
        return self.error_kind is not None and FailureKind(self.error_kind).fatal


class Judge(Protocol):
    """What scoring needs from a vision judge. ``judge`` never raises for per-request trouble."""

    model: str
    mode: str

    async def judge(self, png: bytes, requirements: list[str], prompt: str = "") -> JudgeOutcome: ...


# --- prompts ---------------------------------------------------------------------------------


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown judge mode {mode!r} (expected one of {', '.join(MODES)})")


def requirements_text(requirements: list[str]) -> str:
    """Numbered list exactly as the original evaluator formats it."""
    return "\n".join(f"{i + 1}. {req}" for i, req in enumerate(requirements))


def count_prompt(requirements: list[str]) -> str:
    return COUNT_PROMPT_TEMPLATE.format(n=len(requirements), requirements_text=requirements_text(requirements))


_NUMBERED = re.compile(r"^\s*\d+[.)]\s")


def request_summary(prompt: str, limit: int = 600) -> str:
    """The drawing request without the answer-format boilerplate and without the numbered
    requirements (they are listed separately): SVGBench's formatted prompt → its first sentence(s)."""
    text = (prompt or "").strip()
    for marker in (" Wrap the SVG code", "\nExample:", "\nRequirements:"):
        i = text.find(marker)
        if i > 0:
            text = text[:i]
    lines = [ln for ln in text.splitlines() if not _NUMBERED.match(ln)]
    text = " ".join(" ".join(lines).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def checklist_prompt(requirements: list[str], prompt: str = "") -> str:
    summary = request_summary(prompt)
    request_block = f"\nDrawing request: {summary}\n" if summary else ""
    return CHECKLIST_PROMPT_TEMPLATE.format(
        n=len(requirements), request_block=request_block, requirements_text=requirements_text(requirements)
    )


def png_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def build_messages(mode: str, requirements: list[str], png: bytes, prompt: str = "") -> list[dict[str, Any]]:
    """Chat messages for one judge request: the prompt text and the image as a data URL."""
    _check_mode(mode)
    text = count_prompt(requirements) if mode == "count" else checklist_prompt(requirements, prompt)
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": png_data_url(png)}},
            ],
        }
    ]


def response_format(mode: str) -> dict[str, Any]:
    """The ``response_format`` (OpenAI structured outputs) for ``mode``."""
    _check_mode(mode)
    if mode == "count":
        return {"type": "json_schema", "json_schema": {"name": "SVGBenchResponse", "schema": COUNT_SCHEMA}}
    return {
        "type": "json_schema",
        "json_schema": {"name": "RequirementVerdicts", "strict": True, "schema": CHECKLIST_SCHEMA},
    }


def repair_messages(
    messages: list[dict[str, Any]], bad_reply: str | None, reason: str, mode: str, n: int
) -> list[dict[str, Any]]:
    """``messages`` + the invalid reply + a request to answer again, correctly."""
    shape = (
        '{"verdicts": [{"index": 1, "fulfilled": true, "evidence": "..."}, ...]} '
        f"with exactly {n} verdicts, indices 1 to {n}"
        if mode == "checklist"
        else f'{{"reasoning": "...", "number_of_fulfilled_requirements": <integer>}} with a count between 0 and {n}'
    )
    fix = (
        f"Your previous reply could not be used: {reason}. Answer again with ONLY a JSON object of the form "
        f"{shape}. No other text."
    )
    out = list(messages)
    out.append({"role": "assistant", "content": (bad_reply or "")[:4000]})
    out.append({"role": "user", "content": fix})
    return out


def requirements_hash(requirements: list[str]) -> str:
    blob = json.dumps([str(r) for r in requirements], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# --- strict parsing -------------------------------------------------------------------------

_FENCE_INFO = re.compile(r"[A-Za-z0-9_-]*")


def _unfence(text: str) -> str:
    """The body of one ```json fence around the whole (stripped) text, else the text unchanged.
    Plain string operations: a regex here backtracked cubically on long runs of newlines."""
    if not (text.startswith("```") and text.endswith("```")) or len(text) < 7:
        return text
    nl = text.find("\n")
    if nl < 0 or not _FENCE_INFO.fullmatch(text[3:nl].strip()):
        return text
    return text[nl + 1 : -3].strip()


def _load_object(text: str | None) -> dict[str, Any]:
    if text is None or not str(text).strip():
        raise JudgeReplyError("empty reply from judge")
    text = str(text)
    if len(text) > MAX_REPLY_CHARS:
        raise JudgeReplyError(f"judge reply too long ({plural(len(text), 'character')})")
    stripped = _unfence(text.strip())  # tolerate one ```json fence around the whole object, nothing else
    try:
        data = json.loads(stripped)
    except (ValueError, RecursionError):  # ValueError: also integers longer than Python's digit limit
        snippet = " ".join(stripped.split())[:80]
        raise JudgeReplyError(f"judge reply is not JSON: {snippet!r}") from None
    if not isinstance(data, dict):
        raise JudgeReplyError(f"judge reply is JSON {type(data).__name__}, expected an object")
    return data


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise JudgeReplyError(f"{what} is a boolean, expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,6}\s*", value):
        return int(value)
    raise JudgeReplyError(f"{what} is {value!r:.40}, expected an integer")


def _clean(s: Any, limit: int) -> str:
    s = "" if s is None else str(s)
    s = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in s)
    return s.strip()[:limit]


def parse_reply(mode: str, text: str | None, requirements: list[str]) -> JudgeReply:
    """Validate a judge reply for ``requirements``; raise :class:`JudgeReplyError` if unusable."""
    _check_mode(mode)
    n = len(requirements)
    if n == 0:
        raise JudgeReplyError("no requirements to judge")
    data = _load_object(text)
    if mode == "count":
        if "number_of_fulfilled_requirements" not in data:
            raise JudgeReplyError("judge reply lacks number_of_fulfilled_requirements")
        count = _as_int(data["number_of_fulfilled_requirements"], "number_of_fulfilled_requirements")
        if not 0 <= count <= n:
            raise JudgeReplyError(f"number_of_fulfilled_requirements {count} is out of range 0..{n}")
        return JudgeReply(
            mode="count", fulfilled=count, total=n, reasoning=_clean(data.get("reasoning"), MAX_REASONING)
        )

    verdicts = data.get("verdicts")
    if not isinstance(verdicts, list):
        raise JudgeReplyError("judge reply lacks a 'verdicts' list")
    if len(verdicts) != n:
        raise JudgeReplyError(f"judge gave {plural(len(verdicts), 'verdict')} for {plural(n, 'requirement')}")
    parsed: list[tuple[int, bool, str]] = []
    for pos, v in enumerate(verdicts):
        if not isinstance(v, dict):
            raise JudgeReplyError(f"verdict {pos + 1} is not an object")
        if "index" not in v or "fulfilled" not in v:
            raise JudgeReplyError(f"verdict {pos + 1} lacks 'index' or 'fulfilled'")
        idx = _as_int(v["index"], f"verdict {pos + 1} index")
        ful = v["fulfilled"]
        if not isinstance(ful, bool):
            raise JudgeReplyError(f"verdict {pos + 1} 'fulfilled' is {ful!r:.20}, expected true/false")
        parsed.append((idx, ful, _clean(v.get("evidence"), MAX_EVIDENCE)))
    indices = sorted(p[0] for p in parsed)
    if indices == list(range(1, n + 1)):
        shift = 0
    elif indices == list(range(0, n)):
        shift = 1  # a consistent 0-based numbering is unambiguous: accept it
    else:
        raise JudgeReplyError(f"verdict indices {_short(indices)} are not 1..{n} each exactly once")
    by_index = {idx + shift: (ful, ev) for idx, ful, ev in parsed}
    out = [
        Verdict(index=i, requirement=requirements[i - 1], fulfilled=by_index[i][0], evidence=by_index[i][1])
        for i in range(1, n + 1)
    ]
    return JudgeReply(mode="checklist", fulfilled=sum(v.fulfilled for v in out), total=n, verdicts=out)


def _short(xs: list[int]) -> str:
    s = ",".join(str(x) for x in xs[:12])
    return f"[{s}{',…' if len(xs) > 12 else ''}]"
