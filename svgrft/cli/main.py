"""Entry point: ``svgrft``. Registers every command group; imports no SDK."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Optional

import typer
from typer.core import TyperGroup

from svgrft import __version__
from svgrft.cli import _common


def _usage_hint(ctx: Any) -> str:
    if ctx is None:
        return "see `svgrft --help`"
    usage = ctx.get_usage().strip()
    usage = usage[len("Usage:") :].strip() if usage.startswith("Usage:") else usage
    return f"usage: {usage} (see `{ctx.command_path} --help`)"


PLAIN_HELP_BELOW = 100  # columns: Rich's option tables cut names and help at less (`--eval-auto-carveo…`)


def _plain_help_when_narrow(root: Any) -> None:
    """On a console narrower than :data:`PLAIN_HELP_BELOW`, every command's ``--help`` uses Click's plain
    layout (long names on a line of their own, help wrapped below), which never truncates; wider consoles
    keep Typer's Rich panels. The width is the one Typer's help console uses (``TERMINAL_WIDTH``,
    ``COLUMNS``, the terminal, else 80)."""
    from rich.console import Console
    from typer import rich_utils

    if Console(width=rich_utils.MAX_WIDTH).width >= PLAIN_HELP_BELOW:
        return
    todo = [root]
    while todo:
        cmd = todo.pop()
        if hasattr(cmd, "rich_markup_mode"):
            cmd.rich_markup_mode = None
        todo.extend(getattr(cmd, "commands", {}).values())


def _redacted_excepthook(kind: Any, value: BaseException, tb: Any) -> None:
    """Print an uncaught exception's traceback with secrets masked (see :func:`svgrft.redact.redact`)."""
    from svgrft.redact import print_exception

    value.__traceback__ = tb
    print_exception(value)


class SvgrftGroup(TyperGroup):
    """The root command: usage errors come out like every other error (``Error:`` + ``hint:``, exit 2)
    instead of Typer's boxed panel, and NO_COLOR also strips the styling of ``--help``."""

    def main(
        self,
        args: Any = None,
        prog_name: Any = None,
        complete_var: Any = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        from typer import rich_utils

        rich_utils.COLOR_SYSTEM = None if _common.no_color() else "auto"
        _plain_help_when_narrow(self)
        sys.excepthook = _redacted_excepthook  # a bug's traceback must not print a key either
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            _common.err_console().print("Aborted.")
            sys.exit(1)
        # Typer's usage errors derive from the public typer.TyperException (its click is private: no import of it)
        except typer.TyperException as e:
            code = int(getattr(e, "exit_code", 2))
            if type(e).__name__ == "NoArgsIsHelpError":  # the help was printed already
                sys.exit(code)
            message = (e.format_message() if hasattr(e, "format_message") else str(e)).strip()
            _common.report_error(
                _common.SvgrftError(message[:1].upper() + message[1:], hint=_usage_hint(getattr(e, "ctx", None)))
            )
            sys.exit(code)
        # without standalone mode Typer returns the code of a typer.Exit (or the command's None)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    name="svgrft",
    cls=SvgrftGroup,
    help="Reinforcement fine-tuning of SVG-drawing models on Fireworks AI, with Eval Protocol.\n\n"
    "Typical flow: svgrft doctor → svgrft train --base-model qwen3-0p6b → svgrft compare-epochs JOB_ID.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"svgrft {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only print data and errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print more detail on stderr."),
    config: Optional[str] = typer.Option(
        None, "--config", "-c", help="Config file (default: $SVGRFT_CONFIG, else configs/default.toml if present)."
    ),
    env_file: Optional[str] = typer.Option(
        None, "--env-file", help="Load keys from this .env file (default: ./.env if present)."
    ),
) -> None:
    _common.state.quiet = quiet
    _common.state.verbose = verbose
    _common.state.config = config
    _common.state.env_file = env_file


# (module, attribute, name, kind, help). kind "group" = a Typer sub-app; "cmd" = one command.
COMMANDS: list[tuple[str, str, str, str, str]] = [
    ("svgrft.cli.doctor", "cmd", "doctor", "cmd", "Check that everything the workflow needs is in place."),
    ("svgrft.cli.secrets", "app", "secrets", "group", "Push API keys the evaluator needs as Fireworks secrets."),
    ("svgrft.cli.dataset", "app", "dataset", "group", "Build, validate and upload SVGBench datasets."),
    ("svgrft.cli.render", "cmd", "render", "cmd", "Render SVG files or model replies to PNG (headless Chromium)."),
    ("svgrft.cli.eval", "cmd", "eval", "cmd", "Evaluate a model locally: generate, render, judge, score."),
    ("svgrft.cli.runs", "app", "runs", "group", "List and show local evaluation runs."),
    ("svgrft.cli.report", "cmd", "report", "cmd", "Write a self-contained HTML report of a local run."),
    ("svgrft.cli.evaluator", "app", "evaluator", "group", "Build, test and upload the Eval Protocol evaluator."),
    ("svgrft.cli.train", "cmd", "train", "cmd", "Launch (and watch) a reinforcement fine-tuning job."),
    ("svgrft.cli.jobs", "app", "jobs", "group", "List, inspect, watch, cancel and resume RFT jobs."),
    ("svgrft.cli.compare", "cmd", "compare-epochs", "cmd", "Compare first and last epoch of a job as pictures."),
    ("svgrft.cli.serve", "cmd", "serve", "cmd", "Run the rollout server (POST /init) for remote rollouts."),
    ("svgrft.cli.deploy", "deploy_cmd", "deploy", "cmd", "Deploy a trained model on demand and print how to call it."),
    ("svgrft.cli.deploy", "deployments_app", "deployments", "group", "List on-demand deployments (and svgrft's TTLs)."),
    ("svgrft.cli.deploy", "undeploy_cmd", "undeploy", "cmd", "Delete deployments so they stop billing."),
]


def _stub(name: str, help_text: str):
    def stub(ctx: typer.Context) -> None:
        _common.report_error(
            _common.SvgrftError(
                f"'svgrft {name}' is not built yet", hint="nothing was done; see README.md for what works today"
            )
        )
        raise typer.Exit(1)

    stub.__doc__ = help_text + " (not built yet)"
    return stub


def _register() -> None:
    for module_name, attr, name, kind, help_text in COMMANDS:
        try:
            module = importlib.import_module(module_name)
            obj = getattr(module, attr)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            app.command(
                name,
                help=help_text + " (not built yet)",
                context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
            )(_stub(name, help_text))
            continue
        if kind == "group":
            app.add_typer(obj, name=name, help=help_text)
        else:
            # the one-line help in `svgrft --help`; `svgrft NAME --help` shows the command's full docstring
            app.command(name, short_help=help_text)(obj)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
