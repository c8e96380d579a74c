"""Build, upload and test the Eval Protocol evaluator (``svgrft evaluator build|test``).

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

Idempotency: the default evaluator id is ``<evaluator.id>-<hash[:10]>`` and the hash is also stored
as ``commitHash``. A re-run with nothing changed makes one GET (ACTIVE → reuse); a change gives a new id
and a new build. ``--id`` pins an exact id: its commitHash is compared, and a different content needs
``--force`` (delete + rebuild in place) so a running job's evaluator is never replaced silently.

Upload: ``POST evaluatorsV2`` → ``:getUploadEndpoint`` → ``PUT`` the tarball to the signed URL (retried
on 408/429/5xx/network errors) → ``:validateUpload`` → poll ``GET`` until ACTIVE; BUILD_FAILED fetches
the build log (``:getBuildLogEndpoint``). A failed upload deletes the half-made evaluator, so the next
run starts clean.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import svgrft
from svgrft import evaluator as ev
from svgrft.config import expand_model
from svgrft.core.plural import plural
from svgrft.errors import ApiError, ConfigError, ConflictError, NetworkError, NotFoundError, SvgrftError
from svgrft.workflow import MAX_POLL_ERRORS, is_transient
from svgrft.workflow.jobs import guarded

PKG_ROOT = Path(svgrft.__file__).resolve().parent          # .../svgrft
EVALUATOR_SRC = PKG_ROOT / "evaluator"
EXCLUDED_PACKAGES = ("svgrft.cli", "svgrft.server", "svgrft.workflow")
TARBALL_NAME = "svgrft-evaluator.tar.gz"
TAR_PREFIX = "svgrft-evaluator"
ID_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
HASH_LEN = 10
SAMPLE_ROWS = 5
MAX_TARBALL_BYTES = 50 * 1024 * 1024
DASHBOARD = "https://app.fireworks.ai/dashboard/evaluators/"
# settings baked into the evaluator config: everything the scoring core reads (never keys, never paths)
BAKED_PREFIXES = ("judge.", "render.")
NOT_BAKED = {"render.chromium"}
PYTEST_INI = "[pytest]\naddopts = -p no:cacheprovider\n"
DOCKERIGNORE = ".env\n.env.*\n__pycache__/\n*.pyc\n.pytest_cache/\n.ep_tmp/\n*.tar.gz\n"


class EvaluatorBuildError(ApiError):
    """The evaluator build on Fireworks failed (BUILD_FAILED); ``build_log`` holds the log text."""

    def __init__(self, message: str, hint: str | None = None, build_log: str = "", status: int | None = None):
        super().__init__(message, hint, status=status)
        self.build_log = build_log


# ------------------------------------------------------------------------------------------- config

def rollout_mode(settings: Any) -> str:
    return str(settings["rollout.mode"])


def require_server_url(settings: Any) -> str:
    url = str(settings["rollout.server_url"] or "")
    if rollout_mode(settings) == "remote" and not url:
        raise ConfigError("rollout mode 'remote' needs the rollout server URL (rollout.server_url)",
                          hint="pass --rollout-server-url https://your-server (run it with `svgrft serve`), "
                               "or use --rollout-mode local (no server to deploy)")
    return url


def completion_params(settings: Any) -> dict[str, Any]:
    """The rollout completion params — the same values as the job's inferenceParameters."""
    params: dict[str, Any] = {
        "model": expand_model(str(settings["train.base_model"])),
        "temperature": float(settings["train.temperature"]),
        "top_p": float(settings["train.top_p"]),
        "max_tokens": int(settings["train.max_tokens"]),
    }
    if rollout_mode(settings) == "local":
        # litellm routes fireworks_ai/<model> to this OpenAI-compatible base with FIREWORKS_API_KEY
        params["api_base"] = str(settings["fireworks.inference_base_url"])
    return params


def baked_settings(settings: Any) -> dict[str, Any]:
    out = {}
    for key in sorted(settings.values()):
        if key.startswith(BAKED_PREFIXES) and key not in NOT_BAKED:
            value = settings[key]
            if value == "" or value is None:
                continue
            out[key] = value
    return out


def evaluator_config(settings: Any) -> dict[str, Any]:
    """The generated ``svgrft_evaluator_config.json`` (no secrets)."""
    mode = rollout_mode(settings)
    rollout: dict[str, Any] = {"mode": mode}
    if mode == "remote":
        rollout.update({
            "server_url": require_server_url(settings),
            "model_base_url": str(settings["fireworks.tracing_base_url"]),
            "timeout_seconds": float(settings["rollout.timeout"]),
            "poll_interval": 1.0,
        })
    return {
        "schema": ev.CONFIG_SCHEMA,
        "svgrft_version": svgrft.__version__,
        "entry_point": ev.ENTRY_POINT,
        "rollout": rollout,
        "completion_params": completion_params(settings),
        "num_runs": int(settings["train.n"]),
        "max_concurrent_rollouts": 16,
        "max_concurrent_evaluations": max(1, int(settings["judge.concurrency"])),
        "sample_dataset": ev.SAMPLE_DATASET,
        "settings": baked_settings(settings),
        # every scored rollout is recorded on the tracing gateway's log endpoint (svgrft.core.records);
        # the launcher's environment has only the Fireworks secrets, so the URL is baked in here
        "record": {"enabled": True, "gateway": str(settings["fireworks.tracing_base_url"]), "timeout": 5.0,
                   "flush_timeout": 30.0},
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
                raise SvgrftError(f"the evaluator imports {parent}, which is not part of this svgrft installation",
                                  hint="reinstall svgrft (pip install -e .); the evaluator cannot be packaged")
            seen.add(parent)
            todo.extend(sorted(_imports_of(f, parent) - seen))
    bad = [m for m in seen if any(m == p or m.startswith(p + ".") for p in EXCLUDED_PACKAGES)]
    if bad:
        raise SvgrftError(f"the evaluator would import {', '.join(sorted(bad))}",
                          hint="the packaged evaluator may only use svgrft core/clients/evaluator code")
    return sorted(seen)


@dataclass
class StagedEvaluator:
    path: Path
    files: list[str]                 # posix paths relative to ``path``, sorted
    content_hash: str                # sha256 hex over the staged files
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
    raise ConfigError("the bundled SVGBench dataset is missing, so the evaluator has no sample rows",
                      hint="reinstall svgrft (pip install -e .) or run `svgrft dataset build`")


def hash_files(root: Path, files: list[str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode("utf-8") + b"\0" + hashlib.sha256((root / rel).read_bytes()).hexdigest().encode() + b"\n")
    return h.hexdigest()


def secret_values(settings: Any) -> list[str]:
    from svgrft.config import SECRET_ENV, secret_env

    vals = []
    for name in SECRET_ENV + ("EP_REMOTE_API_KEY",):
        v = settings.secret(name) if hasattr(settings, "secret") else None
        v = v or secret_env(name)
        if v and len(v) >= 6:
            vals.append(v)
    return vals


def check_no_secrets(root: Path, files: list[str], secrets: list[str]) -> None:
    """Refuse to package when a staged file holds a key value, or the generated config a URL with
    credentials (user-info or an ``api-key=``-like query parameter)."""
    for rel in files:
        data = (root / rel).read_bytes()
        for s in secrets:
            if s.encode() in data:
                raise SvgrftError(f"refusing to package the evaluator: {rel} contains an API key",
                                  hint="keys must come from the environment/Fireworks secrets, never from files")
        if rel == ev.CONFIG_FILE:
            _check_config_urls(rel, json.loads(data.decode("utf-8")))


def _check_config_urls(rel: str, node: Any) -> None:
    from svgrft.secrets import url_credentials

    stack = [node]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, str) and "://" in v and url_credentials(v):
            raise SvgrftError(f"refusing to package the evaluator: {rel} holds a URL with credentials "
                              f"({url_credentials(v)})",
                              hint="put the key in its environment variable / a Fireworks secret and use the URL "
                                   "without it")


# what a staged evaluator folder holds (plus what pytest / the Eval Protocol harness leave after a run there)
_STAGE_NAMES = frozenset({ev.ENTRY_FILE, ev.CONFIG_FILE, ev.MANIFEST_FILE, ev.SAMPLE_DATASET, "requirements.txt", "Dockerfile",
                          ".dockerignore", "pytest.ini", "svgrft", "__pycache__", ".pytest_cache", ".benchmarks",
                          ".eval_protocol"})


def _prepare_stage_dir(dest: Path, overwrite: bool) -> None:
    """Make ``dest`` an empty folder for a new stage, never silently: a new folder is made only inside an
    existing one; an empty folder is used; an earlier staged evaluator is replaced only with ``overwrite``;
    any other content (``svgrft evaluator stage .`` in a working directory) is never written into or deleted."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise ConfigError(f"{dest} exists and is not a folder",
                          hint="choose a new folder for the staged evaluator")
    if not dest.exists():
        if not dest.parent.is_dir():
            raise ConfigError(f"cannot create {dest}: the folder {dest.parent} does not exist",
                              hint="create it first, or choose a new folder inside an existing one")
        dest.mkdir()
        return
    entries = list(dest.iterdir())
    if not entries:
        return
    names = {p.name for p in entries}
    staged = (dest / ev.CONFIG_FILE).is_file() and (dest / ev.ENTRY_FILE).is_file() and names <= _STAGE_NAMES
    if not staged or dest.resolve() in (Path.cwd().resolve(), Path.home().resolve(), Path("/")):
        raise ConfigError(f"{dest} is not empty and is not a staged evaluator; refusing to write into it or "
                          "delete what is in it",
                          hint="choose a new or empty folder (only an earlier staged evaluator is ever replaced)")
    if not overwrite:
        raise ConfigError(f"{dest} already holds a staged evaluator; nothing was written",
                          hint="pass --overwrite to replace it, or choose a new folder")
    shutil.rmtree(dest)
    dest.mkdir()


def stage(settings: Any, dest: str | Path, *, overwrite: bool = False) -> StagedEvaluator:
    """Write the evaluator directory into ``dest`` and return its description. ``dest`` is a new folder (its
    parent must exist) or an empty one; an earlier staged evaluator there is replaced only with ``overwrite``,
    anything else there is an error (see :func:`_prepare_stage_dir`)."""
    dest = Path(dest)
    config = evaluator_config(settings)  # a bad setting fails before anything is written
    modules = module_closure()
    _prepare_stage_dir(dest, overwrite)
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


def evaluator_id_for(settings: Any, staged: StagedEvaluator) -> str:
    prefix = str(settings["evaluator.id"] or "svgrft-svg-evaluator").lower()
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
        from svgrft.errors import UsageError

        raise UsageError(f"invalid evaluator id {evaluator_id[:80]!r}",
                         hint="use lowercase letters, digits and '-', start with a letter, at most 63 characters")
    return evaluator_id


def commit_hash(staged: StagedEvaluator) -> str:
    return f"svgrft-{svgrft.__version__}+sha256.{staged.content_hash[:16]}"


def dashboard_url(evaluator_id: str) -> str:
    return DASHBOARD + evaluator_id


# ------------------------------------------------------------------------------------- build/upload

@dataclass
class BuiltEvaluator:
    name: str
    evaluator_id: str
    state: str
    created: bool
    content_hash: str
    mode: str
    tarball_size: int = 0
    dashboard_url: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "evaluator_id": self.evaluator_id, "state": self.state, "created": self.created,
                "content_hash": self.content_hash, "rollout_mode": self.mode, "tarball_bytes": self.tarball_size,
                "dashboard_url": self.dashboard_url}


def _get(obj: Any, *names: str) -> Any:
    for n in names:
        if isinstance(obj, dict):
            if obj.get(n) is not None:
                return obj[n]
        elif getattr(obj, n, None) is not None:
            return getattr(obj, n)
    return None


def _status_message(obj: Any) -> str:
    st = _get(obj, "status")
    msg = _get(st, "message") if st is not None else None
    return str(msg or "")



def fetch_build_log(client: Any, evaluator_id: str, *, max_chars: int = 20_000) -> str:
    """The build log text (tail), or '' when it is not available."""
    import httpx

    from svgrft.secrets import redact

    try:
        with guarded(client, f"getting the build log of evaluator {evaluator_id}"):
            resp = client.sdk.evaluators.get_build_log_endpoint(evaluator_id, account_id=client.account_id)
    except SvgrftError:
        return ""
    uri = _get(resp, "build_log_signed_uri", "buildLogSignedUri")
    if not uri:
        return ""
    try:
        r = httpx.get(str(uri), timeout=30, follow_redirects=True)
    except httpx.HTTPError:
        return ""
    if r.status_code != 200:
        return ""
    return redact(r.text[-max_chars:])


def put_tarball(url: str, data: bytes, *, attempts: int = 4, backoff: float = 1.0, timeout: float = 600.0) -> None:
    """PUT to the signed URL (no Fireworks credentials), retrying 408/429/5xx and network errors."""
    import httpx

    from svgrft.clients.retry import retry_after_seconds

    headers = {"Content-Type": "application/octet-stream", "X-Goog-Content-Length-Range": f"{len(data)},{len(data)}"}
    last = ""
    for attempt in range(attempts):
        try:
            r = httpx.put(url, content=data, headers=headers, timeout=timeout)
        except httpx.HTTPError as e:
            last = f"{type(e).__name__}"
            r = None
        if r is not None:
            if r.status_code < 300:
                return
            last = f"HTTP {r.status_code}"
            if not (r.status_code in (408, 429) or r.status_code >= 500):
                raise ApiError(f"uploading the evaluator tarball failed ({last})",
                               hint="run the command again; if it persists, check the Fireworks status page",
                               status=r.status_code)
        if attempt + 1 < attempts:
            delay = backoff * (2 ** attempt)
            wait = retry_after_seconds(r.headers, cap=30.0) if r is not None else None
            if wait is not None:
                delay = wait
            time.sleep(delay)
    raise NetworkError(f"uploading the evaluator tarball failed after {plural(attempts, 'attempt')} ({last})",
                       hint="check your network and run the same command again; nothing half-built is kept")


def _lookup(client: Any, evaluator_id: str) -> Any | None:
    import fireworks

    with guarded(client, f"looking up evaluator {evaluator_id}"):
        try:
            return client.sdk.evaluators.get(evaluator_id, account_id=client.account_id)
        except fireworks.NotFoundError:
            return None


def _delete(client: Any, evaluator_id: str) -> None:
    import fireworks

    with guarded(client, f"deleting evaluator {evaluator_id}"):
        try:
            client.sdk.evaluators.delete(evaluator_id, account_id=client.account_id)
        except fireworks.NotFoundError:
            pass


def _create_and_upload(client: Any, evaluator_id: str, staged: StagedEvaluator, data: bytes,
                       say: Callable[[str], None], put_backoff: float) -> None:
    sdk, acct = client.sdk, client.account_id
    body = {
        "display_name": f"svgrft SVG evaluator ({staged.mode} rollouts)",
        "description": (f"svgrft {svgrft.__version__}: render → vision judge → fraction of requirements; "
                        f"judge {staged.config['settings'].get('judge.model', '')} "
                        f"({staged.config['settings'].get('judge.mode', '')}); rollout mode {staged.mode}; "
                        f"content sha256:{staged.content_hash}"),
        "entry_point": ev.ENTRY_POINT,
        "commit_hash": commit_hash(staged),
        "requirements": (staged.path / "requirements.txt").read_text(encoding="utf-8"),
    }
    try:
        with guarded(client, f"creating evaluator {evaluator_id}"):
            sdk.evaluators.create(account_id=acct, evaluator_id=evaluator_id, evaluator=body)
    except ConflictError:
        say(f"evaluator {evaluator_id} appeared concurrently; uploading the code to it")
    try:
        say(f"uploading {plural(len(data), 'byte', spec=',')}")
        with guarded(client, f"getting the upload URL of evaluator {evaluator_id}"):
            resp = sdk.evaluators.get_upload_endpoint(evaluator_id, account_id=acct,
                                                      filename_to_size={TARBALL_NAME: str(len(data))})
        urls = _get(resp, "filename_to_signed_urls", "filenameToSignedUrls") or {}
        url = urls.get(TARBALL_NAME) if isinstance(urls, dict) else None
        if not url:
            raise ApiError(f"Fireworks returned no upload URL for evaluator {evaluator_id}",
                           hint="run the same command again")
        put_tarball(str(url), data, backoff=put_backoff)
        with guarded(client, f"validating the upload of evaluator {evaluator_id}"):
            sdk.evaluators.validate_upload(evaluator_id, account_id=acct, body={})
    except BaseException:
        # never leave a code-less evaluator behind: the next run would wait on it forever
        try:
            _delete(client, evaluator_id)
        except SvgrftError:
            pass
        raise


def retry_transient(fn: Callable[[], Any], pause: float, attempts: int = MAX_POLL_ERRORS) -> Any:
    """Call ``fn``; on 408/429/5xx/network errors (left after the SDK's own retries) try again a few times."""
    for i in range(attempts):
        try:
            return fn()
        except ApiError as e:
            if not is_transient(e) or i + 1 >= attempts:
                raise
            time.sleep(pause)


def wait_active(client: Any, evaluator_id: str, *, timeout: float, poll_interval: float,
                on_state: Callable[[str, float], None] | None = None) -> Any:
    """Poll until ACTIVE (returns the evaluator) or BUILD_FAILED (raises with the build log)."""
    start = time.monotonic()
    errors = 0
    last_state = ""
    while True:
        try:
            obj = _lookup(client, evaluator_id)
            errors = 0
        except ApiError as e:
            if not is_transient(e) or errors + 1 >= MAX_POLL_ERRORS:
                raise
            errors += 1
            obj = False
        if obj is None:
            raise NotFoundError(f"evaluator {evaluator_id} disappeared while building",
                                hint="it was deleted by someone else; run the same command again")
        if obj is not False:
            state = str(_get(obj, "state") or "STATE_UNSPECIFIED")
            last_state = state
            if on_state:
                on_state(state, time.monotonic() - start)
            if state == "ACTIVE":
                return obj
            if state == "BUILD_FAILED":
                log = fetch_build_log(client, evaluator_id)
                msg = _status_message(obj)
                raise EvaluatorBuildError(
                    f"evaluator {evaluator_id} failed to build" + (f": {msg}" if msg else ""),
                    hint=f"read the build log above; fix the cause and run with --force to rebuild "
                         f"({dashboard_url(evaluator_id)})",
                    build_log=log)
        if time.monotonic() - start > timeout:
            raise ApiError(f"evaluator {evaluator_id} is still {last_state or 'unknown'} after {timeout:.0f}s",
                           hint=f"run the same command again to keep waiting (--timeout to wait longer), "
                                f"or rebuild with --force; see {dashboard_url(evaluator_id)}")
        time.sleep(poll_interval)


def ensure_evaluator(client: Any, settings: Any, *, evaluator_id: str | None = None, force: bool = False,
                     wait: bool = True, timeout: float | None = None, poll_interval: float | None = None,
                     staged: StagedEvaluator | None = None, on_status: Callable[[str], None] | None = None,
                     on_state: Callable[[str, float], None] | None = None,
                     put_backoff: float = 1.0) -> BuiltEvaluator:
    """Make sure an ACTIVE evaluator with exactly this content exists (see the module docstring)."""
    say = on_status or (lambda _m: None)
    timeout = float(settings["evaluator.timeout"]) if timeout is None else timeout
    poll_interval = _poll_interval(settings) if poll_interval is None else poll_interval
    tmp = None
    try:
        if staged is None:
            tmp = tempfile.mkdtemp(prefix="svgrft-evaluator-")
            staged = stage(settings, Path(tmp) / "evaluator")
        data = tarball_bytes(staged)
        if len(data) > MAX_TARBALL_BYTES:
            raise SvgrftError(f"evaluator tarball is {plural(len(data), 'byte', spec=',')} (limit {MAX_TARBALL_BYTES:,})",
                              hint="this is a packaging bug: the evaluator should be a few hundred kB")
        explicit = evaluator_id is not None
        eid = check_evaluator_id(evaluator_id) if explicit else evaluator_id_for(settings, staged)
        name = client.name("evaluators", eid)
        existing = retry_transient(lambda: _lookup(client, eid), poll_interval)
        created = False
        if existing is not None:
            state = str(_get(existing, "state") or "STATE_UNSPECIFIED")
            same = str(_get(existing, "commit_hash", "commitHash") or "") == commit_hash(staged)
            if force:
                say(f"--force: deleting evaluator {eid} ({state}) to rebuild it")
                _delete(client, eid)
                existing = None
            elif explicit and not same:
                raise ConflictError(
                    f"evaluator {eid} exists with different content (commitHash "
                    f"{_get(existing, 'commit_hash', 'commitHash') or '?'}, local {commit_hash(staged)})",
                    hint="pass --force to rebuild it in place, or drop --id to get a new content-addressed id")
            elif state == "BUILD_FAILED":
                log = fetch_build_log(client, eid)
                msg = _status_message(existing)
                raise EvaluatorBuildError(
                    f"evaluator {eid} exists but its build failed" + (f": {msg}" if msg else ""),
                    hint="read the build log above; run with --force to rebuild it", build_log=log)
        if existing is None:
            say(f"creating evaluator {eid} ({staged.mode} rollouts)")
            _create_and_upload(client, eid, staged, data, say, put_backoff)
            created = True
            state = "BUILDING"
        if wait and state != "ACTIVE":
            obj = wait_active(client, eid, timeout=timeout, poll_interval=poll_interval, on_state=on_state)
            state = str(_get(obj, "state") or "ACTIVE")
        return BuiltEvaluator(name=name, evaluator_id=eid, state=state, created=created,
                              content_hash=staged.content_hash, mode=staged.mode, tarball_size=len(data),
                              dashboard_url=dashboard_url(eid))
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _poll_interval(settings: Any) -> float:
    return float(settings["evaluator.poll_interval"])


# ---------------------------------------------------------------------------------- rollout server

def check_rollout_server(settings: Any, *, timeout: float = 10.0) -> dict[str, Any]:
    """Remote mode: GET / of the rollout server must answer 2xx (svgrft serve's health endpoint)."""
    import httpx

    url = require_server_url(settings)
    try:
        r = httpx.get(url.rstrip("/") + "/", timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as e:
        raise NetworkError(f"rollout server {url} is not reachable ({type(e).__name__})",
                           hint="start it with `svgrft serve` (or check the URL / your network), "
                                "or use --rollout-mode local") from None
    if r.status_code >= 300:
        raise ApiError(f"rollout server {url} is unhealthy (GET / answered HTTP {r.status_code})",
                       hint="check the server's logs (`svgrft serve --check URL`), or use --rollout-mode local",
                       status=r.status_code)
    try:
        body = r.json()
    except ValueError:
        body = {}
    return body if isinstance(body, dict) else {}


# -------------------------------------------------------------------------------------- local test

@dataclass
class LocalTestResult:
    ok: bool
    returncode: int
    mode: str
    rows: list[dict[str, Any]]
    summary: dict[str, Any] | None
    output_tail: str
    content_hash: str
    duration_s: float

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "returncode": self.returncode, "rollout_mode": self.mode, "summary": self.summary,
                "rows": self.rows, "content_hash": self.content_hash, "duration_s": round(self.duration_s, 2)}


_PASS_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT", "HTTP_PROXY", "HTTPS_PROXY",
             "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR",
             "REQUESTS_CA_BUNDLE", "SVGRFT_HOME", "SVGRFT_NO_SANDBOX", "PLAYWRIGHT_BROWSERS_PATH")


def harness_env(settings: Any, *, home: Path, out_dir: Path, stage_dir: Path, rows: int, runs: int,
             dataset: Path | None, threshold: float | None) -> dict[str, str]:
    """The curated environment of the harness subprocess (keys passed through by name only)."""
    from svgrft.config import passthrough_env

    env = passthrough_env(_PASS_ENV)
    for key in ("FIREWORKS_API_KEY", "OPENAI_API_KEY", "SVGRFT_SERVE_TOKEN"):
        v = settings.secret(key)
        if v:
            env[key] = v
    env.update({
        "HOME": str(home),
        "PYTHONPATH": str(stage_dir),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "EP_NO_UPLOAD": "1",
        "EP_DISABLE_AUTO_BROWSER": "1",
        "EP_OUTPUT_DIR": str(out_dir),
        "EP_SUMMARY_JSON": str(out_dir / "summary.json"),
        "EP_MAX_DATASET_ROWS": str(rows) if rows > 0 else "None",
        "EP_NUM_RUNS": str(max(1, runs)),
        # the endpoints come from svgrft's settings (flag > env > config), never from a .env file
        "FIREWORKS_API_BASE": str(settings["fireworks.base_url"]),
        "FIREWORKS_BASE_URL": str(settings["fireworks.base_url"]),
        "FW_TRACING_GATEWAY_BASE_URL": str(settings["fireworks.tracing_base_url"]),
    })
    if settings["fireworks.account_id"]:
        env["FIREWORKS_ACCOUNT_ID"] = str(settings["fireworks.account_id"])
    if settings["judge.base_url"]:
        env["OPENAI_BASE_URL"] = str(settings["judge.base_url"])
    if settings["render.chromium"]:
        env["SVGRFT_CHROMIUM"] = str(settings["render.chromium"])
    if dataset is not None:
        env["EP_JSONL_PATH"] = str(dataset)
    if threshold is not None:
        env["EP_PASSED_THRESHOLD"] = str(float(threshold))
    return env


def _read_rows(out_dir: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in sorted((out_dir / "experiment_results").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            details = obj.get("eval_details") or {}
            meta = obj.get("input_metadata") or {}
            ex = obj.get("execution_metadata") or {}
            status = obj.get("rollout_status") or {}
            rows.append({"row_id": meta.get("row_id"), "run_id": ex.get("run_id"),
                         "score": details.get("score"), "is_score_valid": details.get("is_score_valid"),
                         "reason": (details.get("reason") or "")[:300],
                         "rollout_status": status.get("message") or status.get("code")})
    return rows


def run_local_test(settings: Any, *, rows: int = 2, runs: int = 1, dataset: str | Path | None = None,
                   threshold: float | None = None, timeout: float | None = None,
                   keep_dir: str | Path | None = None) -> LocalTestResult:
    """Stage the evaluator and run it through eval-protocol's pytest harness in a subprocess."""
    from svgrft.secrets import redact

    mode = rollout_mode(settings)
    for key, why in (("FIREWORKS_API_KEY", "the policy rollouts"), ("OPENAI_API_KEY", "the vision judge")):
        if not settings.secret(key):
            raise ConfigError(f"{key} is not set: the evaluator test needs it for {why}",
                              hint=f"export {key}=... or put it in .env")
    if mode == "remote":
        check_rollout_server(settings)
    ds_path: Path | None = None
    if dataset is not None:
        from svgrft.core.dataset import resolve_path, validate_file

        ds_path = resolve_path(dataset).resolve()
        report = validate_file(ds_path)
        if not report.ok:
            raise SvgrftError(f"{ds_path} is not a valid dataset: {'; '.join(report.format_errors(3))}",
                              hint=f"run `svgrft dataset validate {dataset}` to see every problem")
    work = Path(tempfile.mkdtemp(prefix="svgrft-evaltest-"))
    try:
        stage_dir = Path(keep_dir) if keep_dir else work / "evaluator"
        staged = stage(settings, stage_dir, overwrite=True)  # --keep DIR again replaces the stage kept there
        home, out_dir = work / "home", work / "out"
        home.mkdir()
        out_dir.mkdir()
        env = harness_env(settings, home=home, out_dir=out_dir, stage_dir=staged.path, rows=rows, runs=runs,
                       dataset=ds_path, threshold=threshold)
        cmd = [sys.executable, "-m", "pytest", ev.ENTRY_FILE, "-q", "-p", "no:cacheprovider",
               "-W", "ignore::DeprecationWarning"]
        t0 = time.monotonic()
        limit = float(settings["evaluator.timeout"]) if timeout is None else timeout
        for attempt in range(2):
            try:
                proc = subprocess.run(cmd, cwd=staged.path, env=env, stdin=subprocess.DEVNULL,
                                      capture_output=True, text=True, errors="replace", timeout=limit)
            except subprocess.TimeoutExpired as e:
                tail = ((e.stdout or "") if isinstance(e.stdout, str) else "")[-3000:]
                raise SvgrftError(f"the evaluator test did not finish within {e.timeout:.0f}s",
                                  hint="run with fewer --rows, or raise evaluator.timeout; output tail:\n"
                                       + redact(tail)) from None
            # litellm (imported by eval-protocol) sometimes fails to import with a circular-import error
            # (reference/fireworks.md §8); that is not the evaluator's fault: run it once more.
            flaky = "partially initialized module" in (proc.stdout or "") + (proc.stderr or "")
            if proc.returncode == 0 or not flaky or attempt:
                break
        duration = time.monotonic() - t0
        summary = None
        sp = out_dir / "summary.json"
        if sp.is_file():
            try:
                summary = json.loads(sp.read_text(encoding="utf-8"))
            except ValueError:
                summary = None
        output = redact((proc.stdout or "") + ("\n" + proc.stderr if proc.stderr else ""))
        return LocalTestResult(ok=proc.returncode == 0, returncode=proc.returncode, mode=mode,
                               rows=_read_rows(out_dir), summary=summary, output_tail=output[-6000:],
                               content_hash=staged.content_hash, duration_s=duration)
    finally:
        shutil.rmtree(work, ignore_errors=True)
