"""Make sure an ACTIVE Fireworks evaluator with exactly this content exists (``svgrft evaluator build``).

Idempotency: the default evaluator id is ``<evaluator.id>-<hash[:10]>`` and the hash is also stored
as ``commitHash``. A re-run with nothing changed makes one GET (ACTIVE → reuse); a change gives a new id
and a new build. ``--id`` pins an exact id: its commitHash is compared, and a different content needs
``--force`` (delete + rebuild in place) so a running job's evaluator is never replaced silently.

Upload: ``POST evaluatorsV2`` → ``:getUploadEndpoint`` → ``PUT`` the tarball to the signed URL (retried
on 408/429/5xx/network errors) → ``:validateUpload`` → poll ``GET`` until ACTIVE; BUILD_FAILED fetches
the build log (``:getBuildLogEndpoint``). A failed upload deletes the half-made evaluator, so the next
run starts clean. The package itself comes from :mod:`svgrft.workflow.evaluator_bundle`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import svgrft
from svgrft import evaluator as ev
from svgrft.clients.fireworks_records import EvaluatorRecord
from svgrft.clients.poll import poll
from svgrft.core.plural import plural
from svgrft.errors import ApiError, ConflictError, NotFoundError, SvgrftError
from svgrft.workflow.evaluator_bundle import (
    TARBALL_NAME,
    Bundle,
    build_bundle,
    check_evaluator_id,
    commit_hash,
    evaluator_id_for,
)

if TYPE_CHECKING:
    from svgrft.clients.fireworks import FireworksClient
    from svgrft.config import Settings

MAX_TARBALL_BYTES = 50 * 1024 * 1024
DASHBOARD = "https://app.fireworks.ai/dashboard/evaluators/"


class EvaluatorBuildError(ApiError):
    """The evaluator build on Fireworks failed (BUILD_FAILED); ``build_log`` holds the log text."""

    def __init__(self, message: str, hint: str | None = None, build_log: str = "", status: int | None = None):
        super().__init__(message, hint, status=status)
        self.build_log = build_log


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
        return {
            "name": self.name,
            "evaluator_id": self.evaluator_id,
            "state": self.state,
            "created": self.created,
            "content_hash": self.content_hash,
            "rollout_mode": self.mode,
            "tarball_bytes": self.tarball_size,
            "dashboard_url": self.dashboard_url,
        }


def dashboard_url(evaluator_id: str) -> str:
    return DASHBOARD + evaluator_id


def _create_and_upload(
    client: FireworksClient, evaluator_id: str, bundle: Bundle, say: Callable[[str], None], put_backoff: float
) -> None:
    baked = bundle.config["settings"]
    try:
        client.create_evaluator(
            evaluator_id,
            display_name=f"svgrft SVG evaluator ({bundle.mode} rollouts)",
            description=(
                f"svgrft {svgrft.__version__}: render → vision judge → fraction of requirements; "
                f"judge {baked.get('judge.model', '')} ({baked.get('judge.mode', '')}); "
                f"rollout mode {bundle.mode}; content sha256:{bundle.content_hash}"
            ),
            entry_point=ev.ENTRY_POINT,
            commit_hash=commit_hash(bundle),
            requirements=bundle.requirements,
        )
    except ConflictError:
        say(f"evaluator {evaluator_id} appeared concurrently; uploading the code to it")
    try:
        say(f"uploading {plural(len(bundle.tarball), 'byte', spec=',')}")
        client.upload_evaluator_code(evaluator_id, TARBALL_NAME, bundle.tarball, backoff=put_backoff)
    except BaseException:
        # never leave a code-less evaluator behind: the next run would wait on it forever
        try:
            client.delete_evaluator(evaluator_id)
        except SvgrftError:
            pass
        raise


def _build_failed(
    client: FireworksClient, evaluator_id: str, obj: EvaluatorRecord, message: str, hint: str
) -> EvaluatorBuildError:
    log = client.evaluator_build_log(evaluator_id)
    return EvaluatorBuildError(
        message + (f": {obj.status_message}" if obj.status_message else ""), hint=hint, build_log=log
    )


def wait_active(
    client: FireworksClient,
    evaluator_id: str,
    *,
    timeout: float,
    poll_interval: float,
    on_state: Callable[[str, float], None] | None = None,
) -> EvaluatorRecord:
    """Poll until ACTIVE (returns the evaluator) or BUILD_FAILED (raises with the build log)."""
    start = time.monotonic()
    seen: list[str] = []

    def fetch() -> EvaluatorRecord:
        obj = client.get_evaluator(evaluator_id)
        if obj is None:
            raise NotFoundError(
                f"evaluator {evaluator_id} disappeared while building",
                hint="it was deleted by someone else; run the same command again",
            )
        return obj

    def check(obj: EvaluatorRecord) -> None:
        seen.append(obj.state)
        if on_state:
            on_state(obj.state, time.monotonic() - start)
        if obj.state == "BUILD_FAILED":
            raise _build_failed(
                client,
                evaluator_id,
                obj,
                f"evaluator {evaluator_id} failed to build",
                hint=f"read the build log above; fix the cause and run with --force to rebuild "
                f"({dashboard_url(evaluator_id)})",
            )

    def timed_out(_last: EvaluatorRecord | None) -> EvaluatorRecord:
        raise ApiError(
            f"evaluator {evaluator_id} is still {seen[-1] if seen else 'unknown'} after {timeout:.0f}s",
            hint=f"run the same command again to keep waiting (--timeout to wait longer), "
            f"or rebuild with --force; see {dashboard_url(evaluator_id)}",
        )

    return poll(
        fetch,
        done=lambda obj: obj.state == "ACTIVE",
        interval=poll_interval,
        timeout=timeout,
        on_value=check,
        on_timeout=timed_out,
    )


def ensure_evaluator(
    client: FireworksClient,
    settings: Settings,
    *,
    evaluator_id: str | None = None,
    force: bool = False,
    wait: bool = True,
    timeout: float | None = None,
    poll_interval: float | None = None,
    bundle: Bundle | None = None,
    on_status: Callable[[str], None] | None = None,
    on_state: Callable[[str, float], None] | None = None,
    put_backoff: float = 1.0,
) -> BuiltEvaluator:
    """Make sure an ACTIVE evaluator with exactly this content exists (see the module docstring).

    ``bundle``: the package to upload (``svgrft train`` packs it once for plan and run); default: packed here."""
    say = on_status or (lambda _m: None)
    timeout = settings.evaluator.timeout if timeout is None else timeout
    poll_interval = settings.evaluator.poll_interval if poll_interval is None else poll_interval
    if bundle is None:
        bundle = build_bundle(settings)
    if len(bundle.tarball) > MAX_TARBALL_BYTES:
        raise SvgrftError(
            f"evaluator tarball is {plural(len(bundle.tarball), 'byte', spec=',')} (limit {MAX_TARBALL_BYTES:,})",
            hint="this is a packaging bug: the evaluator should be a few hundred kB",
        )
    explicit = evaluator_id is not None
    eid = check_evaluator_id(evaluator_id) if explicit else evaluator_id_for(settings, bundle)
    name = client.name("evaluators", eid)
    existing = poll(lambda: client.get_evaluator(eid), done=lambda _v: True, interval=poll_interval)
    created = False
    state = existing.state if existing is not None else ""
    if existing is not None:
        same = existing.commit_hash == commit_hash(bundle)
        if force:
            say(f"--force: deleting evaluator {eid} ({state}) to rebuild it")
            client.delete_evaluator(eid)
            existing = None
        elif explicit and not same:
            raise ConflictError(
                f"evaluator {eid} exists with different content (commitHash "
                f"{existing.commit_hash or '?'}, local {commit_hash(bundle)})",
                hint="pass --force to rebuild it in place, or drop --id to get a new content-addressed id",
            )
        elif state == "BUILD_FAILED":
            raise _build_failed(
                client,
                eid,
                existing,
                f"evaluator {eid} exists but its build failed",
                hint="read the build log above; run with --force to rebuild it",
            )
    if existing is None:
        say(f"creating evaluator {eid} ({bundle.mode} rollouts)")
        _create_and_upload(client, eid, bundle, say, put_backoff)
        created = True
        state = "BUILDING"
    if wait and state != "ACTIVE":
        state = wait_active(client, eid, timeout=timeout, poll_interval=poll_interval, on_state=on_state).state
    return BuiltEvaluator(
        name=name,
        evaluator_id=eid,
        state=state,
        created=created,
        content_hash=bundle.content_hash,
        mode=bundle.mode,
        tarball_size=len(bundle.tarball),
        dashboard_url=dashboard_url(eid),
    )
