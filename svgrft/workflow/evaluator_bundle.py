"""The evaluator package: config baking, import closure, staging, tarball, content hash, secret scan.

Everything that decides the bytes Fireworks runs for every rollout (``svgrft evaluator stage``; uploaded by
:mod:`svgrft.workflow.evaluator_build`, run locally by :mod:`svgrft.workflow.evaluator_harness`). No network.

Staging: a directory holding the entry point ``test_svgrft_eval.py`` at its root, a copy of exactly the
svgrft modules it imports (found by walking the imports with ``ast``; cli/server/workflow are never
included), the pinned ``requirements.txt``, a ``Dockerfile`` that installs Chromium, ``pytest.ini``, a
small sample dataset, and the generated ``svgrft_evaluator_config.json`` (judge model/mode, rollout mode
and the completion parameters = the job's inference parameters). No secrets: keys reach the evaluator
as Fireworks secrets (environment variables); the staged files are scanned for key values anyway.

Content hash: sha256 over (relative path, sha256 of bytes) of every staged file (but
``svgrft_manifest.json``, which lists them and states the hash), so it changes when any
code, requirement, config value or the rollout mode changes, and does not depend on tar/gzip details.
The tarball itself is deterministic too (sorted members, mtime 0, uid/gid 0, fixed modes, gzip mtime 0).
:func:`build_bundle` stages into a temporary folder and keeps the tarball in memory (:class:`Bundle`), so
one staging serves a whole ``svgrft train`` (plan, upload).

The policy model is expanded by the caller (``config.expand_model``) and handed in; :func:`stage` and
:func:`build_bundle` expand ``train.base_model`` themselves only when none is given.

(~440 lines, one seam on purpose: the config, the import closure, the staged files, the hash and the
tarball together decide the package's bytes and its content-addressed id; splitting them would spread one
invariant — same inputs, same bytes, same id — over several modules.)
"""

from __future__ import annotations

import ast
import dataclasses
import gzip
import hashlib
import io
import json
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import svgrft
from svgrft import evaluator as ev
from svgrft.config import SCHEMA, expand_model
from svgrft.errors import ConfigError, SvgrftError, UsageError

if TYPE_CHECKING:
    from svgrft.config import JudgeSettings, RenderSettings, RolloutSettings, Settings

PKG_ROOT = Path(svgrft.__file__).resolve().parent  # .../svgrft
EVALUATOR_SRC = PKG_ROOT / "evaluator"
EXCLUDED_PACKAGES = ("svgrft.cli", "svgrft.server", "svgrft.workflow")
TARBALL_NAME = "svgrft-evaluator.tar.gz"
TAR_PREFIX = "svgrft-evaluator"
ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
HASH_LEN = 10
SAMPLE_ROWS = 5
# the judge and render settings are baked into the evaluator config (the scoring core reads them), but
# never keys and never local paths
NOT_BAKED = {"render.chromium"}
PYTEST_INI = "[pytest]\naddopts = -p no:cacheprovider\n"
DOCKERIGNORE = ".env\n.env.*\n__pycache__/\n*.pyc\n.pytest_cache/\n.ep_tmp/\n*.tar.gz\n"


# ------------------------------------------------------------------------------------------- config


def require_server_url(settings: Settings) -> str:
    """The rollout server URL; remote mode without one is a ConfigError."""
    return _server_url(settings.rollout)


def _server_url(rollout: RolloutSettings) -> str:
    if rollout.mode == "remote" and not rollout.server_url:
        raise ConfigError(
            "rollout mode 'remote' needs the rollout server URL (rollout.server_url)",
            hint="pass --rollout-server-url https://your-server (run it with `svgrft serve`), "
            "or use --rollout-mode local (no server to deploy)",
        )
    return rollout.server_url


def check_rollout_server(settings: Settings, *, timeout: float = 10.0) -> dict[str, Any]:
    """Remote mode: GET / of the rollout server must answer 2xx (svgrft serve's health endpoint)."""
    from svgrft.clients.rollout_server import check_health

    return check_health(require_server_url(settings), timeout=timeout)


def completion_params(settings: Settings, model: str) -> dict[str, Any]:
    """The rollout completion params — the same values as the job's inferenceParameters. ``model`` is the
    expanded policy model (``accounts/…/models/…``)."""
    t = settings.train
    params: dict[str, Any] = {
        "model": model,
        "temperature": t.temperature,
        "top_p": t.top_p,
        "max_tokens": t.max_tokens,
    }
    if settings.rollout.mode == "local":
        # litellm routes fireworks_ai/<model> to this OpenAI-compatible base with FIREWORKS_API_KEY
        params["api_base"] = settings.fireworks.inference_base_url
    return params


def baked_settings(judge: JudgeSettings, render: RenderSettings) -> dict[str, Any]:
    """The judge and render settings the scoring core reads, by dotted key (empty values left out)."""
    out = {}
    for section, obj in (("judge", judge), ("render", render)):
        for f in dataclasses.fields(obj):
            key, value = f"{section}.{f.name}", getattr(obj, f.name)
            if key in NOT_BAKED or value == "" or value is None:
                continue
            out[key] = value
    return dict(sorted(out.items()))


def evaluator_config(settings: Settings, model: str) -> dict[str, Any]:
    """The generated ``svgrft_evaluator_config.json`` (no secrets); ``model`` is the expanded policy model."""
    rollout: dict[str, Any] = {"mode": settings.rollout.mode}
    if settings.rollout.mode == "remote":
        rollout.update(
            {
                "server_url": _server_url(settings.rollout),
                "model_base_url": settings.fireworks.tracing_base_url,
                "timeout_seconds": settings.rollout.timeout,
                "poll_interval": 1.0,
            }
        )
    return {
        "schema": ev.CONFIG_SCHEMA,
        "svgrft_version": svgrft.__version__,
        "entry_point": ev.ENTRY_POINT,
        "rollout": rollout,
        "completion_params": completion_params(settings, model),
        "num_runs": settings.train.n,
        "max_concurrent_rollouts": 16,
        "max_concurrent_evaluations": max(1, settings.judge.concurrency),
        "sample_dataset": ev.SAMPLE_DATASET,
        "settings": baked_settings(settings.judge, settings.render),
        # every scored rollout is recorded on the tracing gateway's log endpoint (svgrft.core.records);
        # the launcher's environment has only the Fireworks secrets, so the URL is baked in here
        "record": {
            "enabled": True,
            "gateway": settings.fireworks.tracing_base_url,
            "timeout": 5.0,
            "flush_timeout": 30.0,
        },
    }


# ------------------------------------------------------------------------------------------ staging


def _module_file(name: str) -> Path | None:
    rel = name.split(".")[1:]
    base = PKG_ROOT.joinpath(*rel) if rel else PKG_ROOT
    if base.is_dir() and (base / "__init__.py").is_file():
        return base / "__init__.py"
    py = base.with_suffix(".py")
    return py if py.is_file() else None


_IMPORTS_CACHE: dict[tuple[str, str, int, int], frozenset[str]] = {}


def _imports_of(path: Path, module: str) -> set[str]:
    """svgrft modules imported anywhere in ``path`` (top level and inside functions); cached per file version."""
    st = path.stat()
    key = (str(path), module, st.st_mtime_ns, st.st_size)
    cached = _IMPORTS_CACHE.get(key)
    if cached is None:
        cached = frozenset(_parse_imports(path, module))
        _IMPORTS_CACHE[key] = cached
    return set(cached)


def _parse_imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "svgrft" or a.name.startswith("svgrft."):
                    found.add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base_parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join(base_parts)
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            if not (mod == "svgrft" or mod.startswith("svgrft.")):
                continue
            found.add(mod)
            for a in node.names:  # `from svgrft.core import render` imports a submodule
                if _module_file(f"{mod}.{a.name}") is not None:
                    found.add(f"{mod}.{a.name}")
    return found


def module_closure(entry: Path | None = None) -> list[str]:
    """Every svgrft module the evaluator entry point needs (dotted names, sorted), parents included."""
    entry = entry or (EVALUATOR_SRC / ev.ENTRY_FILE)
    todo = sorted(_imports_of(entry, "svgrft.evaluator._entry"))
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # parent packages are imported first
            parent = ".".join(parts[:i])
            if parent in seen:
                continue
            f = _module_file(parent)
            if f is None:
                raise SvgrftError(
                    f"the evaluator imports {parent}, which is not part of this svgrft installation",
                    hint="reinstall svgrft (pip install -e .); the evaluator cannot be packaged",
                )
            seen.add(parent)
            todo.extend(sorted(_imports_of(f, parent) - seen))
    bad = [m for m in seen if any(m == p or m.startswith(p + ".") for p in EXCLUDED_PACKAGES)]
    if bad:
        raise SvgrftError(
            f"the evaluator would import {', '.join(sorted(bad))}",
            hint="the packaged evaluator may only use svgrft core/clients/evaluator code",
        )
    return sorted(seen)


@dataclass
class StagedEvaluator:
    path: Path
    files: list[str]  # posix paths relative to ``path``, sorted
    content_hash: str  # sha256 hex over the staged files
    config: dict[str, Any]
    modules: list[str] = field(default_factory=list)

    @property
    def short_hash(self) -> str:
        return self.content_hash[:HASH_LEN]

    @property
    def mode(self) -> str:
        return self.config["rollout"]["mode"]


def _sample_dataset_bytes() -> bytes:
    """The first rows of the bundled SVGBench dataset (the decorator's default input; EP_JSONL_PATH replaces it)."""
    try:
        from svgrft.core.dataset import BUNDLED_DATASET

        lines = []
        with open(BUNDLED_DATASET, "rb") as f:
            for raw in f:
                if raw.strip():
                    lines.append(raw.rstrip(b"\r\n") + b"\n")
                if len(lines) >= SAMPLE_ROWS:
                    break
        if lines:
            return b"".join(lines)
    except (ImportError, OSError):
        pass
    raise ConfigError(
        "the bundled SVGBench dataset is missing, so the evaluator has no sample rows",
        hint="reinstall svgrft (pip install -e .) or run `svgrft dataset build`",
    )


def hash_files(root: Path, files: list[str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode("utf-8") + b"\0" + hashlib.sha256((root / rel).read_bytes()).hexdigest().encode() + b"\n")
    return h.hexdigest()


def secret_values(settings: Settings) -> list[str]:
    """The key values (from the environment, after .env) no staged file may contain."""
    from svgrft.config import SECRET_ENV

    return [v for v in (settings.secret(name) for name in SECRET_ENV + ("EP_REMOTE_API_KEY",)) if v and len(v) >= 6]


def check_no_secrets(root: Path, files: list[str], secrets: list[str]) -> None:
    """Refuse to package when a staged file holds a key value, or the generated config a URL with
    credentials (user-info or an ``api-key=``-like query parameter)."""
    for rel in files:
        data = (root / rel).read_bytes()
        for s in secrets:
            if s.encode() in data:
                raise SvgrftError(
                    f"refusing to package the evaluator: {rel} contains an API key",
                    hint="keys must come from the environment/Fireworks secrets, never from files",
                )
        if rel == ev.CONFIG_FILE:
            _check_config_urls(rel, json.loads(data.decode("utf-8")))


def _check_config_urls(rel: str, node: Any) -> None:
    from svgrft.redact import url_credentials

    stack = [node]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, str) and "://" in v and url_credentials(v):
            raise SvgrftError(
                f"refusing to package the evaluator: {rel} holds a URL with credentials ({url_credentials(v)})",
                hint="put the key in its environment variable / a Fireworks secret and use the URL without it",
            )


# what a staged evaluator folder holds (plus what pytest / the Eval Protocol harness leave after a run there)
_STAGE_NAMES = frozenset(
    {
        ev.ENTRY_FILE,
        ev.CONFIG_FILE,
        ev.MANIFEST_FILE,
        ev.SAMPLE_DATASET,
        "requirements.txt",
        "Dockerfile",
        ".dockerignore",
        "pytest.ini",
        "svgrft",
        "__pycache__",
        ".pytest_cache",
        ".benchmarks",
        ".eval_protocol",
    }
)


def _prepare_stage_dir(dest: Path, overwrite: bool) -> None:
    """Make ``dest`` an empty folder for a new stage, never silently: a new folder is made only inside an
    existing one; an empty folder is used; an earlier staged evaluator is replaced only with ``overwrite``;
    any other content (``svgrft evaluator stage .`` in a working directory) is never written into or deleted."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise ConfigError(f"{dest} exists and is not a folder", hint="choose a new folder for the staged evaluator")
    if not dest.exists():
        if not dest.parent.is_dir():
            raise ConfigError(
                f"cannot create {dest}: the folder {dest.parent} does not exist",
                hint="create it first, or choose a new folder inside an existing one",
            )
        dest.mkdir()
        return
    entries = list(dest.iterdir())
    if not entries:
        return
    names = {p.name for p in entries}
    staged = (dest / ev.CONFIG_FILE).is_file() and (dest / ev.ENTRY_FILE).is_file() and names <= _STAGE_NAMES
    if not staged or dest.resolve() in (Path.cwd().resolve(), Path.home().resolve(), Path("/")):
        raise ConfigError(
            f"{dest} is not empty and is not a staged evaluator; refusing to write into it or delete what is in it",
            hint="choose a new or empty folder (only an earlier staged evaluator is ever replaced)",
        )
    if not overwrite:
        raise ConfigError(
            f"{dest} already holds a staged evaluator; nothing was written",
            hint="pass --overwrite to replace it, or choose a new folder",
        )
    shutil.rmtree(dest)
    dest.mkdir()


def stage(
    settings: Settings, dest: str | Path, *, model: str | None = None, overwrite: bool = False
) -> StagedEvaluator:
    """Write the evaluator directory into ``dest`` and return its description. ``dest`` is a new folder (its
    parent must exist) or an empty one; an earlier staged evaluator there is replaced only with ``overwrite``,
    anything else there is an error (see :func:`_prepare_stage_dir`). ``model``: the expanded policy model
    (default: ``train.base_model``, expanded here)."""
    dest = Path(dest)
    config = evaluator_config(settings, model or expand_model(settings.train.base_model))  # fails before writing
    _prepare_stage_dir(dest, overwrite)
    modules = module_closure()
    written: list[str] = []

    def put(rel: str, data: bytes) -> None:
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        written.append(rel)

    put(ev.ENTRY_FILE, (EVALUATOR_SRC / ev.ENTRY_FILE).read_bytes())
    for mod in modules:
        src = _module_file(mod)
        assert src is not None
        put(src.relative_to(PKG_ROOT.parent).as_posix(), src.read_bytes())
    put("requirements.txt", (EVALUATOR_SRC / "requirements.txt").read_bytes())
    put("Dockerfile", (EVALUATOR_SRC / "Dockerfile").read_bytes())
    put(".dockerignore", DOCKERIGNORE.encode())
    put("pytest.ini", PYTEST_INI.encode())
    put(ev.SAMPLE_DATASET, _sample_dataset_bytes())
    put(ev.CONFIG_FILE, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
    files = sorted(written)
    check_no_secrets(dest, files, secret_values(settings))
    content_hash = hash_files(dest, files)
    # derived from the files above (so not part of the hash): lets the running evaluator know its own
    # content hash, the key of the rollout records it writes (svgrft.core.records)
    put(ev.MANIFEST_FILE, (json.dumps({"content_hash": content_hash, "files": files}, indent=2) + "\n").encode())
    return StagedEvaluator(dest, sorted(written), content_hash, config, modules)


def tarball_bytes(staged: StagedEvaluator) -> bytes:
    """A deterministic .tar.gz of the staged files (same files → same bytes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for rel in staged.files:
            parts = rel.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    ti = tarfile.TarInfo(f"{TAR_PREFIX}/{d}")
                    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
                    tar.addfile(ti)
            data = (staged.path / rel).read_bytes()
            ti = tarfile.TarInfo(f"{TAR_PREFIX}/{rel}")
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            tar.addfile(ti, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def evaluator_id_for(settings: Settings, staged: StagedEvaluator | Bundle) -> str:
    """``<evaluator.id>-<hash[:10]>``, cut and cleaned to a valid Fireworks id."""
    prefix = (settings.evaluator.id or SCHEMA["evaluator.id"].default).lower()
    prefix = re.sub(r"[^a-z0-9-]+", "-", prefix).strip("-")
    prefix = re.sub(r"-{2,}", "-", prefix) or "svgrft-evaluator"
    if not prefix[0].isalpha():
        prefix = "e-" + prefix
    prefix = prefix[: 63 - HASH_LEN - 1].rstrip("-")
    return f"{prefix}-{staged.short_hash}"


def check_evaluator_id(evaluator_id: str) -> str:
    if evaluator_id.startswith("accounts/"):
        evaluator_id = evaluator_id.rsplit("/", 1)[-1]
    if not ID_RE.match(evaluator_id):
        raise UsageError(
            f"invalid evaluator id {evaluator_id[:80]!r}",
            hint="use lowercase letters, digits and '-', start with a letter, at most 63 characters",
        )
    return evaluator_id


def commit_hash(staged: StagedEvaluator | Bundle) -> str:
    """What the evaluator's ``commitHash`` holds: svgrft's version and the content hash."""
    return f"svgrft-{svgrft.__version__}+sha256.{staged.content_hash[:16]}"


# ------------------------------------------------------------------------------------------- bundle


@dataclass(frozen=True)
class Bundle:
    """A staged evaluator packed for upload, held in memory (the staging folder is gone)."""

    tarball: bytes
    content_hash: str
    config: dict[str, Any]
    files: tuple[str, ...]
    requirements: str  # the pinned requirements.txt (sent with the create request)

    @property
    def short_hash(self) -> str:
        return self.content_hash[:HASH_LEN]

    @property
    def mode(self) -> str:
        return self.config["rollout"]["mode"]


def pack(staged: StagedEvaluator) -> Bundle:
    """The tarball and description of a staged folder."""
    return Bundle(
        tarball=tarball_bytes(staged),
        content_hash=staged.content_hash,
        config=staged.config,
        files=tuple(staged.files),
        requirements=(staged.path / "requirements.txt").read_text(encoding="utf-8"),
    )


def build_bundle(settings: Settings, *, model: str | None = None) -> Bundle:
    """Stage into a temporary folder, pack, and remove the folder. ``model`` as for :func:`stage`."""
    tmp = tempfile.mkdtemp(prefix="svgrft-evaluator-")
    try:
        return pack(stage(settings, Path(tmp) / "evaluator", model=model))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
