"""The import rules of ARCHITECTURE.md, checked on the real tree (and shown to catch a planted violation).

Every ``import``/``from … import`` in ``svgrft/`` counts, including the ones inside functions: a lazy import is
still a dependency. The rules:

- a package may import only the packages below it (``LAYERS``);
- SDKs and raw HTTP libraries are imported only where ``THIRD_PARTY`` allows;
- no two modules import each other, directly or through others (no cycles);
- no module imports a ``_private`` name from another module.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# package -> the svgrft packages it may import (besides itself). "base" = errors.py, config.py, redact.py, __init__.py.
LAYERS: dict[str, set[str]] = {
    "base": {"base"},
    "core": {"base"},
    "clients": {"base", "core"},
    "workflow": {"base", "core", "clients", "evaluator"},  # it stages the evaluator package's files
    "server": {"base", "core", "clients"},
    "evaluator": {"base", "core", "clients"},
    "cli": {"base", "core", "clients", "workflow", "server"},
    "main": {"base", "cli"},  # svgrft/__main__.py
}
BASE_MODULES = {"__init__", "errors", "config", "redact"}  # svgrft/__init__.py holds only the version

# third-party top-level package -> the svgrft packages that may import it
THIRD_PARTY: dict[str, set[str]] = {
    "fireworks": {"clients"},
    "openai": {"clients"},
    "httpx": {"clients"},
    "requests": {"clients"},
    # eval-protocol's RemoteRolloutProcessor keeps an aiohttp session; the evaluator overrides its hook
    "aiohttp": {"clients", "evaluator"},
    "litellm": {"clients"},
    # the uploaded evaluator runs inside eval-protocol's pytest harness; the harness runner starts it
    "eval_protocol": {"clients", "evaluator"},
    "fastapi": {"server"},
    "starlette": {"server"},
    "uvicorn": {"server"},
    "h11": {"server"},
    "typer": {"cli"},
    "rich": {"cli"},
}


def _package(rel: Path) -> str:
    """The layer of a module path relative to the svgrft/ folder."""
    if len(rel.parts) == 1:
        stem = rel.stem
        return "base" if stem in BASE_MODULES else "main"
    return rel.parts[0]


def _module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["svgrft", *parts])


def _imports(path: Path, module: str) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, imported names) for every import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    pkg = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target, [a.name for a in node.names]))
    return out


def violations(root: Path) -> list[str]:
    """Every broken rule in the package tree at ``root`` (the folder holding ``svgrft/``)."""
    pkg_root = root / "svgrft"
    files = sorted(p for p in pkg_root.rglob("*.py") if "__pycache__" not in p.parts)
    modules = {_module_name(p.relative_to(pkg_root)): p for p in files}
    problems: list[str] = []
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        rel = path.relative_to(pkg_root)
        layer = _package(rel)
        where = f"svgrft/{rel.as_posix()}"
        for line, target, names in _imports(path, mod):
            top = target.split(".")[0]
            if top == "svgrft":
                parts = target.split(".")
                if len(parts) == 1:  # from svgrft import x
                    targets = [f"svgrft.{n}" for n in names]
                else:  # `from svgrft.pkg import module` names the module itself
                    targets = sorted(
                        {
                            f"{target}.{n}" if pkg_root.joinpath(*parts[1:], n + ".py").is_file() else target
                            for n in names
                        }
                    )
                for t in targets:
                    t_parts = t.split(".")
                    if len(t_parts) == 1 or t_parts[1] == "__version__":
                        t_layer = "base"
                    elif (pkg_root / t_parts[1]).is_dir():
                        t_layer = t_parts[1]
                    else:
                        t_layer = "base" if t_parts[1] in BASE_MODULES else "main"
                    if t_layer != layer and t_layer not in LAYERS.get(layer, set()):
                        problems.append(f"{where}:{line}: {layer} may not import {t} ({t_layer})")
                    # the module graph (for cycles): the deepest known module named by the import
                    cands = [t + "." + n for n in names] + [t]
                    for c in cands:
                        if c in modules and c != mod:
                            graph[mod].add(c)
                            break
                for n in names:
                    sibling_module = (pkg_root.joinpath(*parts[1:], n + ".py")).is_file()  # a package-private module
                    if n.startswith("_") and not n.startswith("__") and len(parts) > 1 and not sibling_module:
                        problems.append(f"{where}:{line}: imports private name {n} from {target}")
            elif top in THIRD_PARTY and layer not in THIRD_PARTY[top]:
                problems.append(
                    f"{where}:{line}: {layer} may not import {top} (only {', '.join(sorted(THIRD_PARTY[top]))})"
                )
    problems.extend(_cycles(graph))
    return problems


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    """One line per import cycle (Tarjan's strongly connected components of size > 1)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[str] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append("import cycle: " + " ↔ ".join(sorted(comp)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_tree_keeps_the_import_rules():
    assert violations(REPO) == []


@pytest.mark.parametrize(
    "module, source, expected",
    [
        ("core/planted.py", "from svgrft.clients import judge\n", "core may not import svgrft.clients.judge"),
        ("core/planted.py", "def f():\n    import openai\n", "core may not import openai"),
        ("workflow/planted.py", "import fireworks\n", "workflow may not import fireworks"),
        ("clients/planted.py", "from svgrft.cli import main\n", "clients may not import svgrft.cli.main"),
        ("server/planted.py", "from svgrft.workflow import train\n", "server may not import svgrft.workflow.train"),
        ("workflow/planted.py", "from svgrft.clients.retry import _private\n", "imports private name _private"),
    ],
)
def test_a_planted_violation_is_reported(tmp_path, module, source, expected):
    shutil.copytree(REPO / "svgrft", tmp_path / "svgrft", ignore=shutil.ignore_patterns("__pycache__"))
    baseline = set(violations(tmp_path))
    (tmp_path / "svgrft" / module).write_text(source, encoding="utf-8")
    new = set(violations(tmp_path)) - baseline
    assert any(expected in v for v in new), new


def test_a_planted_cycle_is_reported(tmp_path):
    shutil.copytree(REPO / "svgrft", tmp_path / "svgrft", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "svgrft" / "core" / "planted_a.py").write_text("def f():\n    from svgrft.core import planted_b\n")
    (tmp_path / "svgrft" / "core" / "planted_b.py").write_text("from svgrft.core.planted_a import f\n")
    assert any("svgrft.core.planted_a ↔ svgrft.core.planted_b" in v for v in violations(tmp_path))


SIZE_LIMIT = 450  # lines (formatted); "~400" in ARCHITECTURE.md


def oversized_without_reason(root: Path) -> list[str]:
    """Modules longer than SIZE_LIMIT lines whose docstring does not say why ("… on purpose: …")."""
    out = []
    for path in sorted((root / "svgrft").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if source.count("\n") <= SIZE_LIMIT:
            continue
        doc = ast.get_docstring(ast.parse(source)) or ""
        if "on purpose" not in doc:
            out.append(
                f"{path.relative_to(root).as_posix()}: {source.count(chr(10))} lines, no reason in its docstring"
            )
    return out


def test_a_long_module_states_why_it_is_one_module():
    assert oversized_without_reason(REPO) == []


def test_a_long_module_without_a_reason_is_reported(tmp_path):
    (tmp_path / "svgrft").mkdir()
    (tmp_path / "svgrft" / "big.py").write_text('"""A module."""\n' + "x = 1\n" * (SIZE_LIMIT + 5))
    (tmp_path / "svgrft" / "big_ok.py").write_text('"""A module, long on purpose: one table."""\n' + "x = 1\n" * 500)
    assert oversized_without_reason(tmp_path) == [f"svgrft/big.py: {SIZE_LIMIT + 6} lines, no reason in its docstring"]
