"""Rendering files for ``svgrft render``: SVG files, folders of them, or JSONL model replies → PNG files.

Every input goes through the same steps as a model reply in the reward (SVG extraction, then the hardened
renderer), so what you see is what the judge would see. A reply is in ``reply``/``text``/``content``/
``completion``/``svg`` of a JSONL line, or EvaluationRow-style ``messages``, whose last assistant message is
used.

Output names mirror the input tree under ``OUT`` and can never collide: the base is the deepest folder that
holds every input file, and each input keeps its whole file name, so ``a/x.svg`` → ``OUT/a/x.svg.png``,
``x.txt`` → ``OUT/x.txt.png`` and line 12 of ``r.jsonl`` → ``OUT/r.jsonl-00012.png`` (distinct inputs give
distinct names; a file given twice is rendered once). Nothing is overwritten: when a target exists from an
earlier run the command stops before rendering, unless ``--overwrite`` (which also removes the PNG of an item
that no longer renders, so a stale picture never looks like this run's output).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from svgrft.core.plural import plural, plural_word

__all__ = [
    "Item",
    "reply_text",
    "collect",
    "output_names",
    "plan_targets",
    "check_targets",
    "read_items",
    "render_items",
    "summarize",
]

TEXT_KEYS = ("reply", "text", "content", "completion", "response", "output", "svg")
REPLY_SUFFIXES = (".txt", ".md")


class Item:
    __slots__ = ("name", "source", "kind", "payload", "error")

    def __init__(self, name: str, source: str, kind: str, payload: Any = None, error: str | None = None):
        self.name = name  # output stem
        self.source = source  # "file.svg" or "replies.jsonl:12"
        self.kind = kind  # "svg" | "reply" | "bad_line" | "too_large"
        self.payload = payload
        self.error = error


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        parts = [p.get("text") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(parts) if parts else None
    return None


def reply_text(obj: Any) -> str | None:
    """The model reply in one JSONL object, or None (see the module docstring for accepted shapes)."""
    if not isinstance(obj, dict):
        return None
    for key in TEXT_KEYS:
        text = _content_text(obj.get(key))
        if text is not None:
            return text
    msgs = obj.get("messages")
    if isinstance(msgs, list):
        for m in reversed(msgs):
            if isinstance(m, dict) and m.get("role") == "assistant":
                return _content_text(m.get("content"))
    return None


def collect(inputs: list[Path], warn: Callable[[str], None]) -> list[tuple[str, Path]]:
    """(kind, path) per input file; folders expand to their *.svg files (sorted, not recursive). A file given
    twice (also through its folder) is listed once."""
    from svgrft.errors import UsageError

    files: list[tuple[str, Path]] = []
    seen: set[str] = set()

    def add(kind: str, path: Path) -> None:
        key = os.path.normcase(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            files.append((kind, path))

    for p in inputs:
        if p.is_dir():
            svgs = sorted(x for x in p.iterdir() if x.is_file() and x.suffix.lower() == ".svg")
            if not svgs:
                warn(f"{p}: no .svg files in this folder")
            for x in svgs:
                add("svg", x)
        elif p.is_file():
            suffix = p.suffix.lower()
            if suffix == ".svg":
                add("svg", p)
            elif suffix == ".jsonl":
                add("jsonl", p)
            elif suffix in REPLY_SUFFIXES:
                add("reply", p)
            else:
                raise UsageError(
                    f"{p}: unsupported input type {suffix or '(no suffix)'}",
                    hint="give .svg files, folders of .svg files, .jsonl model replies or .txt/.md replies",
                )
        else:
            raise UsageError(f"{p}: no such file or folder", hint="check the path")
    return files


def output_names(files: list[tuple[str, Path]]) -> dict[str, str]:
    """Output path (relative to ``--out``, "/"-separated, without ".png") of every input file, keyed by
    :func:`_key`: the input's path below the deepest folder that holds every input, whole file name kept.
    Distinct inputs never get the same name (JSONL items add ``-<line>`` to their file's name)."""
    absolute = [os.path.abspath(path) for _kind, path in files]
    try:
        base = os.path.commonpath([os.path.dirname(a) for a in absolute]) if absolute else ""
    except ValueError:  # Windows: files on different drives
        base = ""
    names = {}
    for a in absolute:
        if base:
            rel = Path(os.path.relpath(a, base))
        else:
            drive, rest = os.path.splitdrive(a)
            rel = Path(drive.replace(":", "").strip("\\/") or "_", *Path(rest).parts[1:])
        names[_key(a)] = rel.as_posix()
    return names


def _key(path: Path | str) -> str:
    return os.path.normcase(os.path.abspath(path))


def _jsonl_lines(path: Path) -> list[int]:
    """Numbers (1-based) of the non-blank lines of a JSONL file (each becomes one item)."""
    with path.open("rb") as f:
        return [n for n, line in enumerate(f, 1) if line.strip()]


def plan_targets(files: list[tuple[str, Path]], out_dir: Path) -> list[Path]:
    """Every PNG path the inputs will write (JSONL files are read for their line numbers)."""
    names = output_names(files)
    targets = []
    for kind, path in files:
        name = names[_key(path)]
        if kind == "jsonl":
            targets += [out_dir / f"{name}-{n:05d}.png" for n in _jsonl_lines(path)]
        else:
            targets.append(out_dir / f"{name}.png")
    return targets


def read_items(files: list[tuple[str, Path]], max_bytes: int) -> Iterator[Item]:
    names = output_names(files)
    for kind, path in files:
        stem = names[_key(path)]
        if kind in ("svg", "reply"):
            size = path.stat().st_size
            # a reply may hold reasoning around the SVG: allow more than the SVG cap, but never read a huge file
            if size > (max_bytes if kind == "svg" else max_bytes * 8):
                yield Item(
                    stem, str(path), "too_large", error=f"file is {plural(size, 'byte')}, the limit is {max_bytes}"
                )
                continue
            yield Item(stem, str(path), kind, path.read_text(encoding="utf-8", errors="replace"))
            continue
        with path.open("r", encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                name = f"{stem}-{lineno:05d}"
                src = f"{path}:{lineno}"
                try:
                    obj = json.loads(line)
                except (json.JSONDecodeError, RecursionError) as e:
                    yield Item(name, src, "bad_line", error=f"not JSON ({getattr(e, 'msg', 'too deeply nested')})")
                    continue
                text = reply_text(obj)
                if text is None:
                    yield Item(
                        name,
                        src,
                        "bad_line",
                        error="no reply text (expected reply/text/content or messages with an assistant turn)",
                    )
                    continue
                yield Item(name, src, "reply", text)


def _written_this_run(target: Path, written: dict[str, list[Path]]) -> bool:
    """Whether ``target`` is a file this run already wrote under another name (case-insensitive file systems:
    ``X.svg.png`` and ``x.svg.png`` are one file there)."""
    for other in written.get(str(target).casefold(), []):
        try:
            if other != target and os.path.samefile(other, target):
                return True
        except OSError:
            continue
    return False


def _write_new(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target``, which must not exist (never overwrites; atomic where hard links work)."""
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(data)
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:  # no hard links here: exclusive create instead
        with open(target, "xb") as f:
            f.write(data)
    finally:
        tmp.unlink(missing_ok=True)


async def render_items(
    items: Iterator[Item], out_dir: Path, renderer: Any, concurrency: int, on_done=None, overwrite: bool = False
) -> list[dict]:
    """Render every item with ``renderer`` (started), ``concurrency`` at a time; write ``OUT/<name>.png``; one
    row per item. Without ``overwrite`` an existing target is never replaced (the row fails with
    ``exists``); with it, targets are replaced and the PNG of an item that failed is removed."""
    import asyncio

    queue: asyncio.Queue = asyncio.Queue(maxsize=concurrency * 4)
    rows: list[dict] = []
    written: dict[str, list[Path]] = {}  # casefolded target -> targets written by this run

    async def worker() -> None:
        while True:
            item = await queue.get()
            if item is None:
                return
            row = {
                "name": item.name,
                "source": item.source,
                "ok": False,
                "png": None,
                "error_kind": None,
                "reason": None,
                "width": 0,
                "height": 0,
                "warnings": [],
                "sha256": None,
                "method": None,
            }
            if item.kind == "bad_line":
                row.update(error_kind="bad_line", reason=item.error)
            elif item.kind == "too_large":
                row.update(error_kind="too_large", reason=item.error)
            else:
                # SVG files go through extraction too, exactly like a model reply does in the reward
                # (an XML prologue or DOCTYPE before <svg> is dropped, a truncated file is no_svg)
                ex, res = await renderer.render_reply(item.payload)
                row["method"] = ex.method
                row.update(
                    ok=res.ok,
                    error_kind=res.error_kind,
                    reason=res.reason,
                    width=res.width,
                    height=res.height,
                    warnings=list(res.warnings),
                    sha256=res.sha256,
                )
            target = out_dir / f"{item.name}.png"
            if row["ok"] and _written_this_run(target, written):
                row.update(
                    ok=False,
                    error_kind="exists",
                    reason=f"{target} was written by another input of this "
                    "run (the names differ only in case and the file system ignores case)",
                )
            elif row["ok"]:
                target.parent.mkdir(parents=True, exist_ok=True)
                written.setdefault(str(target).casefold(), []).append(target)
                if overwrite:
                    tmp = target.with_name(target.name + ".tmp")
                    tmp.write_bytes(res.png)
                    tmp.replace(target)
                    row["png"] = str(target)
                else:
                    try:
                        _write_new(target, res.png)
                        row["png"] = str(target)
                    except FileExistsError:  # created by someone else since the check before rendering
                        row.update(
                            ok=False,
                            error_kind="exists",
                            reason=f"{target} already exists (not overwritten; pass --overwrite)",
                        )
            elif overwrite and target.exists() and not _written_this_run(target, written):
                target.unlink()  # a stale picture from an earlier run must not look like this run's output
            rows.append(row)
            if on_done is not None:
                on_done(row)

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        for item in items:
            await queue.put(item)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()
    return rows


def summarize(rows: list[dict], seconds: float, out_dir: Path) -> dict:
    failed: dict[str, int] = {}
    for r in rows:
        if not r["ok"]:
            failed[r["error_kind"] or "error"] = failed.get(r["error_kind"] or "error", 0) + 1
    rendered = sum(1 for r in rows if r["ok"])
    attempted = sum(1 for r in rows if r["error_kind"] != "bad_line")
    return {
        "out_dir": str(out_dir),
        "items": len(rows),
        "rendered": rendered,
        "failed": dict(sorted(failed.items())),
        "seconds": round(seconds, 3),
        "renders_per_second": round(attempted / seconds, 2) if seconds > 0 else None,
    }


def check_targets(targets: list[Path], out: Path, overwrite: bool) -> None:
    """Before any rendering: every target's folder can be made, and unless ``overwrite`` no target exists."""
    from svgrft.errors import SvgrftError

    checked: set[Path] = set()
    for t in targets:
        for folder in t.parents:
            if folder == out or folder in checked:
                break
            checked.add(folder)
            if folder.exists() and not folder.is_dir():
                raise SvgrftError(
                    f"{folder} is a file, but {t} must go into a folder of that name",
                    hint="move the file away, or choose another --out",
                )
        if t.is_dir():
            raise SvgrftError(f"{t} is a folder, the PNG cannot be written", hint="choose another --out")
    if overwrite:
        return
    existing = [t for t in targets if t.exists() or t.is_symlink()]
    if existing:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise SvgrftError(
            f"{existing[0]}{more} already {plural_word(len(existing), 'exists', 'exist')} in {out} "
            "from an earlier run; nothing was rendered",
            hint="pass --overwrite to replace them, or choose another --out",
        )
