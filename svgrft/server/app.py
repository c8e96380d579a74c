"""The rollout server: ``POST /init`` for Eval Protocol's ``RemoteRolloutProcessor``.

For every rollout of an RFT job, Fireworks' evaluator POSTs an ``InitRequest`` here. The server
asks the policy model for the SVG through the request's ``model_base_url`` (the traced Fireworks
gateway URL, which records the conversation as a trace tagged with the rollout id) and reports
the end of the rollout as a tracing-gateway log entry carrying an Eval Protocol ``Status``.

Two modes:

* **sync** (default): the policy call runs inside the request (async, bounded by the rollout
  timeout). The terminal status is written to the gateway *before* the HTTP answer, and the
  answer itself carries the outcome: 200 finished; 400 bad request; 401 no key / no token;
  403 the key was refused upstream; 404 model not found; 408 timeout; 429 rate limited (ours
  or upstream, with ``Retry-After``); 502 upstream failure; 500 anything else. Eval Protocol
  waits up to 600 s for ``/init``, retries 5xx answers, and treats 4xx as final for the row.
* **background** (``--background``): the same validation answers synchronously, then 200
  ``accepted`` and the policy call runs as a task; failures reach Eval Protocol only through the
  gateway status (gRPC codes 4/5/7/8/14/16 are retried by it, 3/13 are final). This is how the
  original TypeScript server behaved.

Safety: the request's API key is used only for the policy call and the gateway log, never
logged or echoed (messages are scrubbed); bodies are capped; ``model_base_url`` must match an
allow-list of hosts (https unless loopback) before any outbound call; an optional shared
secret (``Authorization: Bearer``) gates ``/init``; the server's own ``FIREWORKS_API_KEY`` is used
only with ``allow_server_key``; per-client rate limit and a cap on concurrent rollouts answer
429 with ``Retry-After``. Shutdown waits for in-flight rollouts.

:class:`RolloutServer` holds the parts as methods (``admit``, ``accept``, ``run_rollout``, ``report``,
``health``, ``init``, ``lifespan``) over collaborators: :mod:`~svgrft.server.init_request` (reading,
validation), :mod:`~svgrft.server.guard`, :class:`svgrft.clients.policy_call.PolicyCaller`,
:mod:`~svgrft.server.status_report`, :mod:`~svgrft.server.outcomes`. :func:`create_app` is the factory;
nothing here imports eval_protocol (the wire format is :mod:`svgrft.server.wire`).

Over 400 lines on purpose: :class:`RolloutServer` is the server's one request path (admission, auth,
``/init``, the rollout run, its status report, health); its collaborators (request validation, answers,
guards, options, wire models) are modules of their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request  # FastAPI resolves handler annotations from module globals

from svgrft import __version__
from svgrft.config import FIREWORKS_INFERENCE, FIREWORKS_TRACING
from svgrft.core.plural import plural, plural_word
from svgrft.redact import mask
from svgrft.server.guard import (
    ConcurrencyCap,
    HostAllowList,
    RateLimiter,
    check_bearer,
    client_label,
    retry_after_header,
)
from svgrft.server.init_request import Rejection, Rollout, RolloutValidator, parse_json, read_body, rollout_id_of
from svgrft.server.options import ServeOptions, options_from_env, options_from_settings
from svgrft.server.outcomes import (
    RESOURCE_EXHAUSTED,
    UNAUTHENTICATED,
    UNAVAILABLE,
    Failure,
    error_body,
    failure_for,
    internal,
    scrub,
)
from svgrft.server.wire import StatusCode

if TYPE_CHECKING:
    from svgrft.config import Settings

__all__ = ["RolloutServer", "create_app", "app_from_env", "client_label", "ServeOptions", "options_from_settings"]

log = logging.getLogger("svgrft.server")


@dataclass
class Stats:
    finished: int = 0
    failed: int = 0
    rejected: int = 0
    report_failures: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1


def _svg_found(content: Any) -> bool | None:
    if not isinstance(content, str):
        return False
    try:
        from svgrft.core.extract import extract_svg

        return extract_svg(content).svg is not None
    except Exception:  # extraction is informative only
        return None


class RolloutServer:
    """One rollout server: its options, guards, counters and collaborators (see the module)."""

    def __init__(
        self,
        options: ServeOptions,
        *,
        model_url: str,
        gateway: str,
        server_key: str | None,
        policy: Any = None,
        reporter_factory: Any = None,
    ):
        from svgrft.clients.policy_call import PolicyCaller
        from svgrft.server.status_report import GatewayReporter

        self.options = opts = options
        self.server_key = server_key
        self.allow = HostAllowList([*opts.default_hosts, *opts.allow_model_hosts])
        self.validator = RolloutValidator(
            self.allow,
            model_url=model_url,
            gateway=gateway,
            server_key=server_key,
            allow_server_key=opts.allow_server_key,
        )
        self.limiter = RateLimiter(opts.rate_limit, opts.rate_burst)
        # requests with a wrong or missing token spend their own budget: a flood of them cannot starve valid ones
        self.auth_failures = RateLimiter(opts.rate_limit, opts.rate_burst)
        self.cap = ConcurrencyCap(opts.max_concurrent)
        self.stats = Stats()
        self.tasks: set[asyncio.Task] = set()
        self.policy = policy or PolicyCaller(retries=opts.policy_retries, timeout=opts.rollout_timeout)
        self._reporter_factory = reporter_factory or (
            lambda: GatewayReporter(threads=min(64, max(8, opts.max_concurrent or 64)))
        )
        self.reporter: Any = None
        self.draining = False
        self.started = time.time()

    @classmethod
    def from_settings(cls, settings: Settings, options: ServeOptions) -> RolloutServer:
        """The server for ``options`` with the configured Fireworks endpoints and the server's own key."""
        return cls(
            options,
            model_url=settings.fireworks.inference_base_url or FIREWORKS_INFERENCE,
            gateway=settings.fireworks.tracing_base_url or FIREWORKS_TRACING,
            server_key=settings.secret("FIREWORKS_API_KEY"),
        )

    # ------------------------------------------------------------------------------ lifecycle
    @asynccontextmanager
    async def lifespan(self, app: Any):
        """Open the policy client and the reporter; at shutdown wait for in-flight rollouts, then close."""
        opts = self.options
        self.policy.open()
        self.reporter = self._reporter_factory()
        log.info(
            "svgrft serve %s ready: mode=%s auth=%s model hosts=%s",
            __version__,
            "background" if opts.background else "sync",
            "token" if opts.token else "none",
            ",".join(self.allow.describe()),
        )
        try:
            yield
        finally:
            self.draining = True
            pending = [t for t in self.tasks if not t.done()]
            if pending:
                log.info("waiting for %d in-flight rollout(s) before stopping", len(pending))
                done, not_done = await asyncio.wait(pending, timeout=opts.rollout_timeout + 15)
                for t in not_done:
                    t.cancel()
            await self.policy.aclose()
            await asyncio.to_thread(self.reporter.close)

    def app(self) -> Any:
        """The FastAPI app: ``GET /`` → :meth:`health`, ``POST /init`` → :meth:`init`."""
        from fastapi import FastAPI

        app = FastAPI(
            title="svgrft rollout server",
            version=__version__,
            lifespan=self.lifespan,
            docs_url=None,
            redoc_url=None,
            openapi_url=None,
        )
        app.state.server = self
        app.state.options = self.options
        app.state.stats = self.stats
        app.state.cap = self.cap
        app.state.tasks = self.tasks

        async def health() -> dict:
            return self.health()

        async def init(request: Request):
            return await self.init(request)

        app.add_api_route("/", health, methods=["GET"])
        app.add_api_route("/init", init, methods=["POST"])
        return app

    # ------------------------------------------------------------------------------ answers
    def scrub(self, text: str, *secrets: str | None) -> str:
        return scrub(text, self.options.token, self.server_key, *secrets)

    def reply(
        self,
        status: int,
        kind: str,
        message: str,
        rollout_id: str | None,
        *,
        hint: str | None = None,
        retry_after: str | None = None,
        secrets: tuple = (),
    ) -> Any:
        """An error answer (JSON ``error``, ``kind``, ``status``, ``rollout_id``, ``hint``), secrets masked."""
        from fastapi.responses import JSONResponse

        headers = {"Retry-After": retry_after} if retry_after else None
        if status == 401:
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        return JSONResponse(
            error_body(status, kind, self.scrub(message, *secrets), rollout_id, hint),
            status_code=status,
            headers=headers,
        )

    def health(self) -> dict:
        """``GET /``: status, versions, mode, auth and rollout counters."""
        try:
            from importlib.metadata import version

            ep_version = version("eval-protocol")
        except Exception:  # pragma: no cover
            ep_version = None
        opts, stats = self.options, self.stats
        return {
            "status": "draining" if self.draining else "ok",
            "service": "svgrft-serve",
            "version": __version__,
            "eval_protocol": ep_version,
            "mode": "background" if opts.background else "sync",
            "auth": "token" if opts.token else "none",
            "uptime_s": round(time.time() - self.started, 1),
            "rollouts": {
                "in_flight": self.cap.in_flight,
                "finished": stats.finished,
                "failed": stats.failed,
                "rejected": stats.rejected,
            },
        }

    # ------------------------------------------------------------------------------ admission
    def admit(self, client: str, authorization: str | None) -> None:
        """Auth and rate limit, before the body is read; raises :class:`Rejection`."""
        opts = self.options
        authorized = not opts.token or check_bearer(authorization, opts.token)
        wait = (self.limiter if authorized else self.auth_failures).acquire(client)
        if wait > 0:
            raise Rejection(
                429,
                "rate_limited",
                "too many requests from this client",
                hint="slow down; see Retry-After",
                retry_after=retry_after_header(wait),
                code=RESOURCE_EXHAUSTED,
            )
        if not authorized:
            raise Rejection(
                401,
                "unauthorized",
                "wrong bearer token" if authorization else "missing bearer token",
                hint="send Authorization: Bearer <SVGRFT_SERVE_TOKEN> (the evaluator's remote mode "
                "does this when the token is set)",
                code=UNAUTHENTICATED,
            )
        if self.draining:
            raise Rejection(503, "draining", "the server is shutting down", retry_after="5", code=UNAVAILABLE)

    def enter(self) -> None:
        """Take a rollout slot; raises :class:`Rejection` (429) when the cap is reached."""
        if not self.cap.try_enter():
            raise Rejection(
                429,
                "too_many_rollouts",
                f"{plural(self.cap.limit, 'rollout')} {plural_word(self.cap.limit, 'is', 'are')} already running on this server",
                hint="retry later; the operator can raise --max-concurrent",
                retry_after=retry_after_header(1),
                code=RESOURCE_EXHAUSTED,
            )

    # ------------------------------------------------------------------------------ the rollout
    async def report(self, r: Rollout, code: int, message: str, extras: dict | None = None) -> bool:
        """The terminal status of ``r`` to its gateway (one retry); False when the gateway did not take it."""
        reporter = self.reporter
        if reporter is None:
            return False
        for attempt in range(2):
            ok = await reporter.report(
                gateway=r.gateway,
                api_key=r.api_key,
                rollout_id=r.rollout_id,
                code=code,
                message=self.scrub(message, r.api_key),
                extras=extras,
                experiment_id=r.experiment_id,
                run_id=r.run_id,
            )
            if ok:
                return True
            if attempt == 0:
                await asyncio.sleep(0.2)
        self.stats.report_failures += 1
        log.warning("rollout %s: the tracing gateway did not accept the status log", r.rollout_id)
        return False

    async def run_rollout(self, r: Rollout) -> tuple[Failure | None, dict[str, Any], bool]:
        """The policy call and the status report. Returns (failure or None, extras, reported)."""
        from svgrft.clients.policy_call import PolicyCallError

        t0 = time.perf_counter()
        failure: Failure | None = None
        extras: dict[str, Any] = {"svgrft_server": __version__, "policy_model": r.kwargs.get("model")}
        try:
            done = await self.policy.complete(base_url=r.model_base_url, api_key=r.api_key, kwargs=r.kwargs)
            extras["finish_reason"] = done.finish_reason
            if done.usage is not None:  # only clean counts go into the gateway's JSON (NaN would make it invalid)
                extras["usage"] = done.usage
            extras["svg_found"] = _svg_found(done.text)
            if not done.has_choice:
                failure = Failure(502, UNAVAILABLE, "upstream_malformed", "the policy reply has no choices")
        except asyncio.CancelledError:
            raise
        except PolicyCallError as e:  # every failure of the call becomes a typed answer
            failure = failure_for(e)
        except Exception as e:  # a bug: 500, logged without secrets
            failure = internal(e)
            log.error(
                "rollout %s: unexpected %s: %s", r.rollout_id, type(e).__name__, self.scrub(str(e), r.api_key)[:300]
            )
        extras["policy_latency_s"] = round(time.perf_counter() - t0, 4)
        t_report = time.perf_counter()
        if failure is None:
            reported = await self.report(r, StatusCode.FINISHED, f"Rollout {r.rollout_id} finished", extras)
            self.stats.finished += 1
            log.info(
                "rollout %s finished in %.2fs (model=%s, finish=%s, key %s from the %s)",
                r.rollout_id,
                extras["policy_latency_s"],
                r.kwargs.get("model"),
                extras.get("finish_reason"),
                mask(r.api_key),
                r.key_source,
            )
        else:
            failure = Failure(
                failure.http_status,
                failure.grpc_code,
                failure.kind,
                self.scrub(failure.message, r.api_key),
                failure.retry_after,
                failure.hint,
            )
            extras["error_kind"] = failure.kind
            extras["http_status"] = failure.http_status
            reported = await self.report(
                r, failure.grpc_code, f"Rollout {r.rollout_id} failed: {failure.message}", extras
            )
            self.stats.failed += 1
            self.stats.count(failure.kind)
            log.warning(
                "rollout %s failed: %d %s: %s", r.rollout_id, failure.http_status, failure.kind, failure.message
            )
        extras["report_s"] = round(time.perf_counter() - t_report, 4)  # for the answer only (already logged)
        return failure, extras, reported

    async def background_rollout(self, r: Rollout) -> None:
        try:
            await self.run_rollout(r)
        except asyncio.CancelledError:
            log.warning("rollout %s cancelled at shutdown", r.rollout_id)
            raise
        except Exception as e:  # pragma: no cover - run_rollout catches the call's errors
            log.error("rollout %s: %s", r.rollout_id, type(e).__name__)
        finally:
            self.cap.leave()

    # ------------------------------------------------------------------------------ POST /init
    async def accept(self, request: Request, client: str, seen: dict[str, Any]) -> Rollout:
        """Admission, body, validation and a rollout slot; raises :class:`Rejection`. ``seen`` gets the
        request's rollout id and key as soon as they are known (for the error answer and scrubbing)."""
        opts = self.options
        self.admit(client, request.headers.get("authorization"))
        data = parse_json(await read_body(request, max_body=opts.max_body, read_timeout=opts.read_timeout))
        seen["rid"] = rollout_id_of(data)
        if isinstance(data, dict) and isinstance(data.get("api_key"), str):
            seen["key"] = data["api_key"]
        r = self.validator.prepare(data)
        r.client = client
        self.enter()
        return r

    async def init(self, request: Request) -> Any:
        """``POST /init``: accept the rollout, then run it (sync) or start it (background)."""
        from fastapi.responses import JSONResponse

        t_start = time.perf_counter()
        client = client_label(request.client.host if request.client else None)
        seen: dict[str, Any] = {"rid": None, "key": None}
        try:
            r = await self.accept(request, client, seen)
        except Rejection as rej:
            self.stats.rejected += 1
            self.stats.count(rej.kind)
            log.warning(
                "rejected /init from %s (rollout %s): %d %s: %s",
                client,
                seen["rid"] or "?",
                rej.status,
                rej.kind,
                self.scrub(rej.message, seen["key"]),
            )
            if rej.rollout is not None:
                await self.report(
                    rej.rollout,
                    rej.code,
                    f"Rollout {rej.rollout.rollout_id} rejected: {rej.message}",
                    {"svgrft_server": __version__, "error_kind": rej.kind, "http_status": rej.status},
                )
            return self.reply(
                rej.status,
                rej.kind,
                rej.message,
                seen["rid"],
                hint=rej.hint,
                retry_after=rej.retry_after,
                secrets=(seen["key"],),
            )
        except Exception as e:  # a bug: answer 500, never crash the server
            log.error("/init from %s: unexpected %s", client, type(e).__name__)
            return self.reply(
                500, "internal", f"internal error: {type(e).__name__}", seen["rid"], secrets=(seen["key"],)
            )

        if self.options.background:
            task = asyncio.create_task(self.background_rollout(r))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return JSONResponse(
                {
                    "status": "accepted",
                    "rollout_id": r.rollout_id,
                    "message": "rollout started; its status goes to the tracing gateway",
                }
            )
        try:  # uvicorn's graceful shutdown waits for this request, so it needs no task bookkeeping
            failure, extras, reported = await self.run_rollout(r)
        except Exception as e:  # pragma: no cover - run_rollout catches the call's errors
            log.error("rollout %s: unexpected %s", r.rollout_id, type(e).__name__)
            return self.reply(
                500, "internal", f"internal error: {type(e).__name__}", r.rollout_id, secrets=(r.api_key,)
            )
        finally:
            self.cap.leave()
        if failure is not None:
            return self.reply(
                failure.http_status,
                failure.kind,
                failure.message,
                r.rollout_id,
                hint=failure.hint,
                retry_after=failure.retry_after,
                secrets=(r.api_key,),
            )
        if not reported:
            return self.reply(
                502,
                "gateway_unreachable",
                "the rollout finished but its status could not be written to the tracing gateway",
                r.rollout_id,
                hint=f"check that {r.gateway} is reachable from the server",
                secrets=(r.api_key,),
            )
        return JSONResponse(
            {
                "status": "finished",
                "rollout_id": r.rollout_id,
                "finish_reason": extras.get("finish_reason"),
                "svg_found": extras.get("svg_found"),
                "latency_s": extras.get("policy_latency_s"),
                "report_s": extras.get("report_s"),
                "server_s": round(time.perf_counter() - t_start, 4),
            }
        )


def create_app(
    settings: Settings | None = None,
    *,
    token: str | None = None,
    allow_server_key: bool | None = None,
    allow_model_hosts: tuple[str, ...] | list[str] | None = None,
    max_concurrent: int | None = None,
    rate_limit: float | None = None,
    rate_burst: int | None = None,
    rollout_timeout: float | None = None,
    max_body: int | None = None,
    policy_retries: int | None = None,
    background: bool | None = None,
    read_timeout: float | None = None,
    options: ServeOptions | None = None,
    warn_unauthenticated: bool = True,
):
    """The ASGI app (FastAPI) of a :class:`RolloutServer`. Arguments left at None come from ``settings``
    (``serve.*``; the token from ``SVGRFT_SERVE_TOKEN``); ``token=""`` disables the token explicitly.
    ``allow_model_hosts`` adds to the default allow-list (Fireworks tracing/inference hosts)."""
    if settings is None:
        from svgrft.config import load_settings

        settings = load_settings()
    if options is None:
        options = options_from_settings(
            settings,
            token=token,
            allow_server_key=allow_server_key,
            allow_model_hosts=tuple(allow_model_hosts) if allow_model_hosts is not None else None,
            max_concurrent=max_concurrent,
            rate_limit=rate_limit,
            rate_burst=rate_burst,
            rollout_timeout=rollout_timeout,
            max_body=max_body,
            policy_retries=policy_retries,
            background=background,
            read_timeout=read_timeout,
        )
    if warn_unauthenticated and not options.token:
        log.warning(
            "svgrft serve: /init is unauthenticated (no SVGRFT_SERVE_TOKEN / --token): anyone who can "
            "reach this server can start rollouts"
        )
    return RolloutServer.from_settings(settings, options).app()


def app_from_env():
    """Factory for ``uvicorn --factory`` / ``--workers``: options from ``SVGRFT_SERVE_OPTIONS``."""
    from svgrft.config import load_settings

    settings = load_settings()
    opts = options_from_env(settings)
    if opts is None:
        return create_app(settings)
    from svgrft.server.conn import GuardedH11Protocol, auto_limits

    per_client, total = auto_limits(opts.max_concurrent, opts.max_connections_per_client)
    GuardedH11Protocol.configure(header_timeout=opts.read_timeout, max_per_client=per_client, max_connections=total)
    return create_app(settings, options=opts, warn_unauthenticated=False)
