"""The environment is read in one place: svgrft/config.py (settings' variables, API keys, process switches).

Every other module asks config.py. The exceptions are listed below, each with its reason; a write (setting a
variable for a library or a child process) is allowed only where listed too.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "svgrft"
CONFIG = PACKAGE / "config.py"

# modules that may READ the environment themselves
READERS = {
    "svgrft/evaluator/runtime.py": "runs inside Fireworks' evaluator: reads the secrets Fireworks injects as "
    "env vars (FIREWORKS_API_KEY, ...) and SVGRFT_EVALUATOR_CONFIG",
    "svgrft/evaluator/test_svgrft_eval.py": "the Eval Protocol test Fireworks runs (EP_* and library switches)",
}
# modules that may SET variables (never read them): library switches and hand-offs to child processes
WRITERS = {
    "svgrft/server/options.py": "export_options hands the options and the token to uvicorn's worker processes "
    "(which read them back through config.process_env)",
}
_WRITE_METHODS = {"setdefault", "pop", "update", "clear", "__setitem__", "__delitem__"}


def _environ_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, "read"|"write") of every use of os.environ / os.environb / os.getenv (also imported by name)."""
    names = {"environ", "environb", "getenv"}
    local: set[str] = set()  # `from os import environ as e`
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            local.update(a.asname or a.name for a in node.names if a.name in names)
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    uses = []
    for node in ast.walk(tree):
        hit = (
            isinstance(node, ast.Attribute)
            and node.attr in names
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ) or (isinstance(node, ast.Name) and node.id in local)
        if not hit:
            continue
        parent = parents.get(node)
        kind = "read"
        if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, (ast.Store, ast.Del)):
            kind = "write"
        elif (
            isinstance(parent, ast.Attribute)
            and parent.attr in _WRITE_METHODS
            and isinstance(parents.get(parent), ast.Call)
        ):
            kind = "write"
        uses.append((node.lineno, kind))
    return uses


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        yield path, rel, _environ_uses(ast.parse(path.read_text(encoding="utf-8"), filename=rel))


def test_only_config_reads_the_environment():
    offenders = [
        f"{rel}:{line} ({kind})"
        for path, rel, uses in _modules()
        if path != CONFIG
        for line, kind in uses
        if not (rel in READERS or (kind == "write" and rel in WRITERS))
    ]
    assert not offenders, (
        "read the environment through svgrft.config (a setting with env=..., "
        "config.process_env, config.secret_env): " + ", ".join(offenders)
    )


def test_the_exceptions_are_still_needed():
    """An allow-listed module that no longer touches the environment leaves the list (it must not grow stale)."""
    uses = {rel: u for _, rel, u in _modules()}
    assert all(uses.get(rel) for rel in READERS), [rel for rel in READERS if not uses.get(rel)]
    assert all(uses.get(rel) for rel in WRITERS), [rel for rel in WRITERS if not uses.get(rel)]
    assert all(kind == "write" for rel in WRITERS for _, kind in uses[rel])


def test_the_checker_sees_reads_and_writes():
    """The AST walk itself: every spelling of a read is caught, writes are told apart."""
    src = (
        "import os\nfrom os import environ as E, getenv\n"
        "a = os.environ.get('X')\nb = os.environ['Y']\nc = 'Z' in os.environ\nd = getenv('W')\ne = E.copy()\n"
        "os.environ['V'] = '1'\nos.environ.setdefault('U', '1')\nos.environ.pop('T', None)\n"
    )
    kinds = [k for _, k in _environ_uses(ast.parse(src))]
    assert kinds.count("read") == 5 and kinds.count("write") == 3, kinds


def test_process_switches_are_declared(monkeypatch):
    """config.process_env only serves the declared variables, and reads them at call time."""
    import pytest

    from svgrft import config

    monkeypatch.setenv("SVGRFT_NO_SANDBOX", "1")
    assert config.process_env("SVGRFT_NO_SANDBOX") == "1"
    with pytest.raises(KeyError):
        config.process_env("HOME")
    monkeypatch.setenv("SVGRFT_HOME", "~/elsewhere")
    assert config.home_dir() == Path("~/elsewhere").expanduser()
    monkeypatch.delenv("SVGRFT_HOME")
    assert config.home_dir() == Path.home() / ".svgrft"


def test_svgrft_config_names_the_config_file(cli, tmp_path, monkeypatch):
    """SVGRFT_CONFIG (read by config.load_settings, no longer by Typer) picks the file when --config is absent."""
    cfg = tmp_path / "mine.toml"
    cfg.write_text("[train]\nepochs = 7\n")
    monkeypatch.setenv("SVGRFT_CONFIG", str(cfg))
    r = cli("train", "--base-model", "qwen3-0p6b", "--dry-run", "--json")
    assert r.exit_code == 0, r
    assert r.json()["payload"]["trainingConfig"]["epochs"] == 7
    other = tmp_path / "other.toml"
    other.write_text("[train]\nepochs = 2\n")
    r = cli("--config", other, "train", "--base-model", "qwen3-0p6b", "--dry-run", "--json")
    assert r.json()["payload"]["trainingConfig"]["epochs"] == 2
