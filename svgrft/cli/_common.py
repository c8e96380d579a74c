"""Shared CLI plumbing: error handling, consoles, settings, JSON output.

Conventions every command module follows:
- data (tables, ids, JSON) goes to stdout via :func:`out` / :func:`emit_json`;
  progress and messages go to stderr via :func:`info` / :func:`warn` / ``err_console``;
- every command is wrapped in :func:`command` so that an :class:`~svgrft.errors.SvgrftError`
  prints ``Error: …`` + ``hint: …`` on stderr and exits 1 (usage errors 2);
- an option that sets a setting is declared with :func:`setting_option` (flag name, type and help come from
  :data:`svgrft.config.SCHEMA`); :func:`command` records which parameters those are, and :func:`settings`
  called inside the command applies their values (flag > env > config file > default);
- nothing here imports an SDK.
"""

from __future__ import annotations

import errno
import functools
import inspect
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional, TypeVar

import typer
from rich.console import Console

from svgrft import redact as _secrets
from svgrft.config import debug as _debug
from svgrft.config import no_color  # noqa: F401  (part of this module's interface: main.py uses it)
from svgrft.config import register_secrets as _register_secrets
from svgrft.errors import SvgrftError

if TYPE_CHECKING:
    from svgrft.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


class State:
    quiet: bool = False
    verbose: bool = False
    config: str | None = None
    env_file: str | None = None
    flags: dict[str, Any] = {}  # setting key -> flag value (None = not given) of the running command
    extend: frozenset[str] = frozenset()  # keys whose flag adds to the list setting (setting_option(extend=True))


state = State()


def _console(stderr: bool) -> Console:
    # Rich's own NO_COLOR support drops colours but keeps bold/italic codes; color_system=None drops all styling.
    # soft_wrap: a printed line is never broken at the console width (80 columns when piped), on stdout (data)
    # nor on stderr (progress: paths, URLs and ids must survive copy and paste and grep); tables still fit.
    return Console(stderr=stderr, highlight=False, soft_wrap=True, color_system=None if no_color() else "auto")


# Created lazily so CliRunner's captured streams are used in tests.
def err_console() -> Console:
    return _console(True)


def out_console() -> Console:
    return _console(False)


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(_secrets.redact(str(text)))


def info(message: str, markup: bool = False) -> None:
    """A progress/status message on stderr (silenced by -q). Text is literal unless ``markup``."""
    if not state.quiet:
        err_console().print(_secrets.redact(message) if markup else _esc(message))


def debug(message: str) -> None:
    if state.verbose:
        err_console().print(f"[dim]{_esc(message)}[/dim]")


def warn(message: str) -> None:
    err_console().print(f"[yellow]warning:[/yellow] {_esc(message)}")


class _WarningLines(logging.Handler):
    """Library warnings (logger ``svgrft.render``: Chromium without its sandbox) as the CLI's ``warning:`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            warn(record.getMessage().removeprefix("svgrft: "))
        except Exception:  # a broken stderr must not break the command
            self.handleError(record)


def _route_library_warnings() -> None:
    logger = logging.getLogger("svgrft.render")
    if not any(isinstance(h, _WarningLines) for h in logger.handlers):
        handler = _WarningLines(logging.WARNING)
        logger.addHandler(handler)


def counted_progress(label: str) -> Any:
    """A transient "label ━━━ 3/10 info 0:00:04" bar on stderr; tasks carry an ``info`` field."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(f"[bold]{label}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=err_console(),
        transient=True,
    )


def out(text: str) -> None:
    """Plain data line on stdout."""
    sys.stdout.write(_secrets.redact(text) + "\n")
    sys.stdout.flush()


def emit_json(data: Any) -> None:
    """Machine-readable result on stdout (keys are masked if they slipped in)."""
    text = json.dumps(data, indent=2, sort_keys=False, default=str)
    sys.stdout.write(_secrets.redact(text) + "\n")
    sys.stdout.flush()


def print_table(table: Any) -> None:
    """A Rich table on stdout (it is data)."""
    out_console().print(table)


def is_interactive() -> bool:
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def confirm(question: str, yes: bool) -> None:
    """Ask before a costly action; never prompt without a TTY (then --yes is required)."""
    if yes:
        return
    if not is_interactive():
        raise SvgrftError(f"refusing to {question} without confirmation", hint="pass --yes (no terminal to ask on)")
    if not typer.confirm(question[0].upper() + question[1:] + "?", default=False, err=True):
        err_console().print("Not confirmed: nothing was done.")
        raise typer.Exit(1)


def report_error(e: SvgrftError) -> None:
    con = err_console()
    con.print(f"[bold red]Error:[/bold red] {_esc(e.message)}", highlight=False, soft_wrap=True)
    if e.hint:
        con.print(f"[bold]hint:[/bold] {_esc(e.hint)}", soft_wrap=True)


# Global options (``svgrft -q doctor``) are also accepted after the command (``svgrft doctor -q``):
# every command gets these hidden options unless it declares the flag itself (train has its own --config).
_GLOBAL_OPTIONS: list[tuple[str, Any, Any]] = [
    ("_global_quiet", bool, ("--quiet", "-q")),
    ("_global_verbose", bool, ("--verbose", "-v")),
    ("_global_config", Optional[str], ("--config", "-c")),
    ("_global_env_file", Optional[str], ("--env-file",)),
]
GLOBAL_OPTION_PARAMS = tuple(name for name, _, _ in _GLOBAL_OPTIONS)


def _declared_flags(sig: inspect.Signature) -> set[str]:
    flags: set[str] = set()
    for p in sig.parameters.values():
        flags.add("--" + p.name.replace("_", "-"))
        flags.update(d for d in getattr(p.default, "param_decls", None) or () if isinstance(d, str))
    return {f for d in flags for f in d.split("/")}


def _with_global_options(func: Callable[..., Any], wrapper: Callable[..., Any], sig: inspect.Signature) -> list[str]:
    """Give ``wrapper`` the signature ``sig`` (of ``func``) plus the hidden global options it lacks; their names."""
    taken = _declared_flags(sig)
    params = list(sig.parameters.values())
    added: list[str] = []
    annotations = {
        **getattr(func, "__annotations__", {}),
        **{p.name: p.annotation for p in params if p.annotation is not inspect.Parameter.empty},
    }
    for name, annotation, decls in _GLOBAL_OPTIONS:
        decls = tuple(d for d in decls if d not in taken)
        if not decls or not decls[0].startswith("--"):
            continue
        default = typer.Option(False if annotation is bool else None, *decls, hidden=True)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))
        annotations[name] = annotation
        added.append(name)
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = annotations
    return added


def _apply_global_options(kwargs: dict[str, Any], names: list[str]) -> None:
    values = {n: kwargs.pop(n, None) for n in names}
    if values.get("_global_quiet"):
        state.quiet = True
    if values.get("_global_verbose"):
        state.verbose = True
    if values.get("_global_config"):
        state.config = values["_global_config"]
    if values.get("_global_env_file"):
        state.env_file = values["_global_env_file"]


def os_error(e: OSError) -> SvgrftError:
    """A file-system failure (missing file, directory given for a file, permissions, disk full) as one line."""
    what = e.strerror or type(e).__name__
    if e.filename is not None:
        where = str(e.filename) + (f" → {e.filename2}" if e.filename2 is not None else "")
        return SvgrftError(
            f"{where}: {what}",
            hint="check the path, that it is the right kind (file or folder) and that you may read/write it",
        )
    return SvgrftError(f"system error: {what}", hint="run again with SVGRFT_DEBUG=1 for the details")


def require_file(path: Any, what: str, hint: str) -> None:
    """``path`` must be an existing regular file (not a folder): else one clear error (exit 1) before any work."""
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        raise SvgrftError(f"cannot read file {p} ({what}): it is a folder", hint=hint)
    if not p.exists():
        raise SvgrftError(f"cannot read file {p} ({what}): no such file", hint=hint)
    if not p.is_file():
        raise SvgrftError(f"cannot read file {p} ({what}): not a regular file", hint=hint)


# ------------------------------------------------------------------------------------------ setting options

SETTING_ATTR = "svgrft_setting"  # set on the typer.OptionInfo made by setting_option: the setting's key
EXTEND_ATTR = "svgrft_extend"  # the flag adds to a list setting instead of replacing it
SHOWN_DEFAULT_MAX = 32  # characters: a longer built-in default is left to the help text and configs/default.toml


def setting_option(key: str, *decls: str, note: str = "", extend: bool = False, **options: Any) -> Any:
    """A Typer option that sets ``key`` (``"train.epochs"``), declared from :data:`svgrft.config.SCHEMA`.

    The long name is ``Spec.flag_name`` (bool settings get ``--x/--no-x``); ``decls`` add short names
    (``"-e"``), and a ``"--…"`` among them replaces the long name where a command has always spelled the flag
    differently (``jobs watch --interval``). The help is ``Spec.help`` (``note`` first, for command context),
    then the choices, the setting's key, its environment variable and its built-in default. ``options``
    pass to ``typer.Option`` (``min``, ``max``, ``metavar``). The default is None (= not given), so the
    precedence flag > env > config > default holds; the parameter's type comes from the schema (see
    :func:`command`), which applies the value when the command calls :func:`settings`. A list setting's flag
    is repeatable and replaces the list, or with ``extend`` adds to it."""
    from svgrft.config import SCHEMA

    spec = SCHEMA[key]
    longs = [d for d in decls if d.startswith("--")]
    shorts = [d for d in decls if not d.startswith("--")]
    name = longs[0] if longs else spec.flag_name
    if spec.kind is bool and "/" not in name:
        name = f"{name}/--no-{name[2:]}"
    if extend and spec.kind is not tuple:
        raise TypeError(f"only a list setting can be extended, not {key}")
    if extend:
        note = " ".join(p for p in (note, "Repeatable; adds to the configured list:") if p)
    info = typer.Option(None, name, *shorts, help=setting_help(spec, note), **options)
    setattr(info, SETTING_ATTR, key)
    setattr(info, EXTEND_ATTR, extend)
    return info


def setting_help(spec: Any, note: str = "") -> str:
    """The help of a setting's flag: ``Spec.help`` + choices + ``(key, env VAR, default D)``."""
    text = " ".join(p for p in (note.strip(), spec.help.strip()) if p)
    if not text.endswith("."):
        text += "."
    if spec.choices and not all(choice in spec.help for choice in spec.choices):
        text += " One of: " + ", ".join(spec.choices) + "."
    where = [spec.key]
    if spec.env:
        where.append(f"env {spec.env}")
    default = spec.default
    if isinstance(default, bool):
        where.append("default " + ("on" if default else "off"))
    elif isinstance(default, float):
        where.append(f"default {default:g}")
    elif default not in ("", ()):
        shown = ", ".join(default) if isinstance(default, tuple) else str(default)
        if len(shown) <= SHOWN_DEFAULT_MAX:  # a long one would be cut in Rich's help panels
            where.append(f"default {shown}")
    return f"{text} ({', '.join(where)})"


def _setting_annotation(kind: type) -> Any:
    return Optional[list[str]] if kind is tuple else Optional[kind]


def _setting_params(sig: inspect.Signature) -> tuple[dict[str, str], frozenset[str], inspect.Signature]:
    """The parameters declared with :func:`setting_option` (parameter -> key), the keys they extend, and
    ``sig`` with each one's annotation set from the schema (annotating one differently is a bug: TypeError)."""
    from svgrft.config import SCHEMA

    keys: dict[str, str] = {}
    extend: set[str] = set()
    params = []
    for p in sig.parameters.values():
        key = getattr(p.default, SETTING_ATTR, None)
        if key is not None:
            keys[p.name] = key
            if getattr(p.default, EXTEND_ATTR, False):
                extend.add(key)
            want = _setting_annotation(SCHEMA[key].kind)
            if p.annotation is not inspect.Parameter.empty and p.annotation != want:
                raise TypeError(f"parameter {p.name!r} ({key}) is annotated {p.annotation}, the schema says {want}")
            p = p.replace(annotation=want)
        params.append(p)
    return keys, frozenset(extend), sig.replace(parameters=params)


def setting_params(cmd: Callable[..., Any]) -> dict[str, str]:
    """Which parameters of a :func:`command` set which setting (parameter -> ``section.name``)."""
    return dict(getattr(cmd, "__svgrft_settings__", {}))


def command(func: F) -> F:
    """Wrap a Typer command: expected failures → ``Error:``/``hint:`` + exit code, Ctrl-C → 130,
    file-system errors → one ``Error:`` line (never a traceback). The values of its
    :func:`setting_option` parameters are what :func:`settings` applies while it runs."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _apply_global_options(kwargs, added)
        _register_secrets()
        _route_library_warnings()
        # a repeatable option that was not given arrives as an empty list: that is "not given" too
        state.flags = {key: (kwargs.get(p) if kwargs.get(p) != [] else None) for p, key in keys.items()}
        state.extend = extend
        try:
            return func(*args, **kwargs)
        except SvgrftError as e:
            if _debug():
                _secrets.print_exception()  # redacted: error bodies and URLs may echo keys
            report_error(e)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err_console().print("Interrupted.")
            raise typer.Exit(130) from None
        except OSError as e:
            if e.errno == errno.EPIPE:  # stdout closed early (`| head`): Typer exits quietly
                raise
            if _debug():
                _secrets.print_exception()  # redacted: error bodies and URLs may echo keys
            report_error(os_error(e))
            raise typer.Exit(1) from None
        finally:
            state.flags, state.extend = {}, frozenset()

    keys, extend, sig = _setting_params(inspect.signature(func, eval_str=True))
    added = _with_global_options(func, wrapper, sig)
    wrapper.__svgrft_settings__ = keys  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def settings(config: str | None = None) -> Settings:
    """Resolve settings: the running command's setting options > env > config file (``config`` or the global
    --config) > defaults. A bad flag value is a usage error (exit 2), a bad config value a config error."""
    from svgrft.config import load_settings

    flags = state.flags
    replace = {k: v for k, v in flags.items() if k not in state.extend}
    s = load_settings(config_path=config or state.config, env_file=state.env_file, overrides=replace)
    added = {k: (*s.value(k), *flags[k]) for k in state.extend if flags.get(k)}
    if added:  # a flag that adds to a list setting: the resolved list, then the flag's items (each once)
        s = s.with_overrides({k: tuple(dict.fromkeys(v)) for k, v in added.items()})
    _register_secrets()
    return s


def check_chromium_setting(settings: Settings) -> None:
    """A configured Chromium path (--chromium, SVGRFT_CHROMIUM or render.chromium) must be an executable; the
    error names where the path came from (the renderer itself would call every explicit path '--chromium')."""
    import shutil

    from svgrft.core.render import INSTALL_HINT
    from svgrft.errors import BrowserNotFoundError

    value = settings.render.chromium
    if not value:
        return
    path = shutil.which(value) or value
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return
    source = settings.source("render.chromium")
    where = {"flag": "--chromium"}.get(source, source.replace("config ", "render.chromium in ").replace("env ", ""))
    raise BrowserNotFoundError(
        f"{where} names {value!r}, which is not an executable file",
        hint=f"fix or unset {where} to let svgrft find a browser by itself; {INSTALL_HINT}",
    )


def not_built(name: str, issue: str) -> None:
    raise SvgrftError(f"'svgrft {name}' is not built yet", hint=f"it is planned in {issue}; nothing was done")


# Reusable option declarations
JSON_OPT = typer.Option(False, "--json", help="Print the result as JSON on stdout.")
YES_OPT = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (required without a terminal).")
CONFIG_OPT = typer.Option(None, "--config", "-c", help="Config file (default: configs/default.toml if present).")
