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
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request  # FastAPI resolves handler annotations from module globals

from svgrft import __version__
from svgrft.clients.judge import _field, _text, _token_count
from svgrft.secrets import mask
from svgrft.server.guard import (DEFAULT_MODEL_HOSTS, ConcurrencyCap, HostAllowList, RateLimiter, check_bearer,
                                 retry_after_header)
from svgrft.server.policy import (INTERNAL, INVALID_ARGUMENT, UNAVAILABLE, Failure, RequestInvalid,
                                  build_completion_kwargs, classify_error, gateway_base, is_tracing_url, scrub)

log = logging.getLogger("svgrft.server")

OPTIONS_ENV = "SVGRFT_SERVE_OPTIONS"  # JSON ServeOptions (no secrets) for --workers > 1
MAX_ID_LEN = 256
MAX_KEY_LEN = 1024
MAX_JSON_DEPTH = 64  # an InitRequest nests about 6 deep (tools' JSON schemas a little more)


@dataclass
class ServeOptions:
    """Everything that shapes the server's behaviour (secrets excluded from ``public()``)."""

    token: str | None = None
    allow_server_key: bool = False
    allow_model_hosts: tuple[str, ...] = ()  # added to the default Fireworks hosts
    max_concurrent: int = 256  # 0 = unlimited
    rate_limit: float = 20.0  # requests/s per client, 0 = off
    rate_burst: int = 400
    rollout_timeout: float = 300.0
    max_body: int = 2 * 1024 * 1024
    policy_retries: int = 2
    background: bool = False
    read_timeout: float = 15.0  # headers, then the body, must arrive within this many seconds
    max_connections_per_client: int = 0  # 0 = max_concurrent + 64
    trust_proxy_headers: bool = False  # client address from X-Forwarded-For of a loopback proxy
    default_hosts: tuple[str, ...] = field(default=DEFAULT_MODEL_HOSTS)

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("token")
        d["auth"] = "token" if self.token else "none"
        return d


def options_from_settings(settings: Any, **given: Any) -> ServeOptions:
    """ServeOptions from ``serve.*`` settings, overridden by the keyword arguments that are not None."""
    hosts = list(DEFAULT_MODEL_HOSTS)
    for key in ("fireworks.tracing_base_url", "fireworks.inference_base_url"):
        url = settings.get(key) or ""
        host = urlsplit(url).hostname if url else None
        if host:  # the operator's configured Fireworks endpoints count as Fireworks hosts
            port = urlsplit(url).port
            hosts.append(host + (f":{port}" if port else ""))
    opts = ServeOptions(
        token=settings.secret("SVGRFT_SERVE_TOKEN"),
        allow_server_key=False,
        allow_model_hosts=tuple(settings.get("serve.allow_model_hosts") or ()),
        max_concurrent=int(settings.get("serve.max_concurrent", 256)),
        rate_limit=float(settings.get("serve.rate_limit", 20.0)),
        rate_burst=int(settings.get("serve.rate_burst", 400)),
        rollout_timeout=float(settings.get("serve.rollout_timeout", 300.0)),
        max_body=int(settings.get("serve.max_body", 2 * 1024 * 1024)),
        policy_retries=int(settings.get("serve.policy_retries", 2)),
        background=bool(settings.get("serve.background", False)),
        read_timeout=float(settings.get("serve.read_timeout", 15.0)),
        max_connections_per_client=int(settings.get("serve.max_connections_per_client", 0)),
        trust_proxy_headers=bool(settings.get("serve.trust_proxy_headers", False)),
        default_hosts=tuple(dict.fromkeys(hosts)),
    )
    for key, value in given.items():
        if value is None:
            continue
        if key == "allow_model_hosts":
            value = tuple(dict.fromkeys([*opts.allow_model_hosts, *value]))
        setattr(opts, key, value)
    if opts.token == "":
        opts.token = None
    return opts


class Rejection(Exception):
    """A request answered before any policy call."""

    def __init__(self, status: int, kind: str, message: str, hint: str | None = None,
                 retry_after: str | None = None, code: int = INVALID_ARGUMENT):
        super().__init__(message)
        self.status, self.kind, self.message, self.hint = status, kind, message, hint
        self.retry_after, self.code = retry_after, code
        self.rollout: "Rollout | None" = None  # set when the refusal can be reported to the gateway


@dataclass
class Rollout:
    rollout_id: str
    experiment_id: str | None
    run_id: str | None
    model_base_url: str
    gateway: str
    api_key: str
    key_source: str  # "request" | "server"
    kwargs: dict[str, Any]
    client: str


@dataclass
class Stats:
    finished: int = 0
    failed: int = 0
    rejected: int = 0
    report_failures: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1


def _error_body(status: int, kind: str, message: str, rollout_id: str | None, hint: str | None) -> dict:
    body: dict[str, Any] = {"error": message, "kind": kind, "status": status, "rollout_id": rollout_id}
    if hint:
        body["hint"] = hint
    return body


def _validation_message(e: Any) -> str:
    """Pydantic errors as 'field: problem' without echoing input values (they may hold a key)."""
    try:
        errors = e.errors(include_input=False, include_url=False)
    except TypeError:  # pragma: no cover - older pydantic
        errors = e.errors()
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid InitRequest: " + "; ".join(parts) + more


def _plain_id(value: Any) -> bool:
    """Printable ASCII without spaces or slashes: ids end up in log lines, tags and trace paths, where
    U+2028, NEL or other Unicode line breaks would forge lines."""
    return (isinstance(value, str) and 0 < len(value) <= MAX_ID_LEN
            and all(0x21 <= ord(c) <= 0x7E and c not in "/\\" for c in value))


def _check_id(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Rejection(400, "bad_request", f"metadata.{name} must be a non-empty string")
    if not _plain_id(value):
        raise Rejection(400, "bad_request", f"metadata.{name} must be at most {MAX_ID_LEN} printable ASCII "
                                            "characters without spaces or slashes")
    return value


def _check_api_key(value: str) -> str:
    """A key goes into an Authorization header: CR/LF, other control characters, non-ASCII or a huge
    value would fail there as a 5xx (retried) or split the header. Never echoes the value."""
    if len(value) > MAX_KEY_LEN or not all(0x21 <= ord(c) <= 0x7E for c in value):
        raise Rejection(400, "bad_api_key", f"api_key must be at most {MAX_KEY_LEN} printable ASCII characters "
                                            "without spaces", hint="send the Fireworks API key as it is", code=16)
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _too_deep(data: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when JSON ``data`` nests deeper than ``limit`` (iterative: no recursion on hostile input)."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _rollout_id_of(data: Any) -> str | None:
    """The rollout id of a (possibly invalid) request, for error bodies; None if absent/unusable."""
    if isinstance(data, dict) and isinstance(data.get("metadata"), dict):
        rid = data["metadata"].get("rollout_id")
        if _plain_id(rid):
            return rid
    return None


def create_app(settings: Any = None, *, token: str | None = None, allow_server_key: bool | None = None,
               allow_model_hosts: tuple[str, ...] | list[str] | None = None, max_concurrent: int | None = None,
               rate_limit: float | None = None, rate_burst: int | None = None, rollout_timeout: float | None = None,
               max_body: int | None = None, policy_retries: int | None = None, background: bool | None = None,
               read_timeout: float | None = None, options: ServeOptions | None = None,
               warn_unauthenticated: bool = True):
    """The ASGI app (FastAPI). Arguments left at None come from ``settings`` (``serve.*``; the token
    from ``SVGRFT_SERVE_TOKEN``); ``token=""`` disables the token explicitly. ``allow_model_hosts``
    adds to the default allow-list (Fireworks tracing/inference hosts)."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from pydantic import ValidationError

    from eval_protocol.types.remote_rollout_processor import InitRequest
    from svgrft.server.tracing import GatewayReporter

    if settings is None:
        from svgrft.config import load_settings

        settings = load_settings()
    if options is None:
        options = options_from_settings(
            settings, token=token, allow_server_key=allow_server_key,
            allow_model_hosts=tuple(allow_model_hosts) if allow_model_hosts is not None else None,
            max_concurrent=max_concurrent, rate_limit=rate_limit, rate_burst=rate_burst,
            rollout_timeout=rollout_timeout, max_body=max_body, policy_retries=policy_retries,
            background=background, read_timeout=read_timeout)
    opts = options
    allow = HostAllowList([*opts.default_hosts, *opts.allow_model_hosts])
    limiter = RateLimiter(opts.rate_limit, opts.rate_burst)
    # requests with a wrong or missing token spend their own budget: a flood of them cannot starve valid ones
    auth_failures = RateLimiter(opts.rate_limit, opts.rate_burst)
    cap = ConcurrencyCap(opts.max_concurrent)
    stats = Stats()
    tasks: set[asyncio.Task] = set()
    default_model_url = settings.get("fireworks.inference_base_url") or "https://api.fireworks.ai/inference/v1"
    default_gateway = settings.get("fireworks.tracing_base_url") or "https://tracing.fireworks.ai"
    server_key = settings.secret("FIREWORKS_API_KEY")
    started = time.time()
    state: dict[str, Any] = {"http": None, "reporter": None, "draining": False}

    if warn_unauthenticated and not opts.token:
        log.warning("svgrft serve: /init is unauthenticated (no SVGRFT_SERVE_TOKEN / --token): anyone who can "
                    "reach this server can start rollouts")

    @asynccontextmanager
    async def lifespan(app):
        import openai

        state["http"] = _policy_http_client(openai)
        state["reporter"] = GatewayReporter(threads=min(64, max(8, opts.max_concurrent or 64)))
        log.info("svgrft serve %s ready: mode=%s auth=%s model hosts=%s", __version__,
                 "background" if opts.background else "sync", "token" if opts.token else "none",
                 ",".join(allow.describe()))
        try:
            yield
        finally:
            state["draining"] = True
            pending = [t for t in tasks if not t.done()]
            if pending:
                log.info("waiting for %d in-flight rollout(s) before stopping", len(pending))
                done, not_done = await asyncio.wait(pending, timeout=opts.rollout_timeout + 15)
                for t in not_done:
                    t.cancel()
            await state["http"].aclose()
            await asyncio.to_thread(state["reporter"].close)

    app = FastAPI(title="svgrft rollout server", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.options = opts
    app.state.stats = stats
    app.state.cap = cap
    app.state.tasks = tasks

    def reply(status: int, kind: str, message: str, rollout_id: str | None, *, hint: str | None = None,
              retry_after: str | None = None, secrets: tuple = ()) -> JSONResponse:
        message = scrub(message, opts.token, server_key, *secrets)
        headers = {"Retry-After": retry_after} if retry_after else None
        if status == 401:
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        return JSONResponse(_error_body(status, kind, message, rollout_id, hint), status_code=status,
                            headers=headers)

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                raise Rejection(400, "bad_request", "invalid Content-Length") from None
            if n > opts.max_body:
                raise Rejection(413, "too_large", f"request body is {n} bytes; the limit is {opts.max_body}",
                                hint="send only the rollout messages; raise --max-body if needed")
        chunks: list[bytes] = []

        async def collect() -> None:
            total = 0
            async for chunk in request.stream():
                total += len(chunk)
                if total > opts.max_body:
                    raise Rejection(413, "too_large", f"request body exceeds {opts.max_body} bytes",
                                    hint="send only the rollout messages; raise --max-body if needed")
                chunks.append(chunk)

        try:  # a body trickled byte by byte must not hold a connection (and its slot) for long
            await asyncio.wait_for(collect(), timeout=opts.read_timeout if opts.read_timeout > 0 else None)
        except asyncio.TimeoutError:
            raise Rejection(408, "body_timeout", f"the request body did not arrive within {opts.read_timeout:g}s",
                            hint="send the whole body at once; the operator can raise --read-timeout",
                            code=4) from None
        return b"".join(chunks)

    def prepare(data: Any) -> Rollout:
        """Validate an InitRequest dict into a Rollout, or raise Rejection (no outbound call yet)."""
        if not isinstance(data, dict):
            raise Rejection(400, "bad_request", "the body must be a JSON object (an InitRequest)")
        try:
            req = InitRequest.model_validate(data)
        except ValidationError as e:
            raise Rejection(400, "bad_request", _validation_message(e),
                            hint="send an eval_protocol InitRequest") from None
        except (TypeError, ValueError) as e:
            raise Rejection(400, "bad_request", f"invalid InitRequest: {type(e).__name__}") from None
        meta = req.metadata
        rid = _check_id("rollout_id", meta.rollout_id)
        for name in ("invocation_id", "experiment_id", "run_id", "row_id"):
            _check_id(name, getattr(meta, name))
        model_base_url = (req.model_base_url or "").strip() or default_model_url
        problem = allow.check(model_base_url)
        if problem:
            raise Rejection(400, "model_host_not_allowed", problem,
                            hint="the server calls only allow-listed hosts; the operator can add one with "
                                 "--allow-model-host HOST")
        via_gateway = is_tracing_url(model_base_url)
        gateway = gateway_base(model_base_url) or default_gateway
        if req.api_key and req.api_key.strip():
            api_key, source = _check_api_key(req.api_key.strip()), "request"
        elif opts.allow_server_key and server_key:
            api_key, source = server_key, "server"
        else:
            hint = ("send api_key in the InitRequest (eval-protocol sends EP_REMOTE_API_KEY or FIREWORKS_API_KEY)"
                    if opts.allow_server_key else
                    "send api_key in the InitRequest; the server uses its own FIREWORKS_API_KEY only when "
                    "started with --allow-server-key")
            raise Rejection(401, "no_api_key", "no API key: the request has no api_key", hint=hint,
                            code=16)
        r = Rollout(rid, meta.experiment_id, meta.run_id, model_base_url, gateway, api_key, source, {}, "")
        try:
            r.kwargs = build_completion_kwargs(req.completion_params, req.messages or [], req.tools,
                                               via_gateway=via_gateway)
        except RequestInvalid as e:
            rej = Rejection(400, "bad_request", str(e), hint="check the InitRequest's messages and completion_params")
            rej.rollout = r  # the host is allowed and there is a key: the gateway hears about it too
            raise rej from None
        return r

    async def report(r: Rollout, code: int, message: str, extras: dict | None = None) -> bool:
        reporter = state["reporter"]
        if reporter is None:
            return False
        for attempt in range(2):
            ok = await reporter.report(gateway=r.gateway, api_key=r.api_key, rollout_id=r.rollout_id, code=code,
                                       message=scrub(message, r.api_key, opts.token, server_key),
                                       extras=extras, experiment_id=r.experiment_id, run_id=r.run_id)
            if ok:
                return True
            if attempt == 0:
                await asyncio.sleep(0.2)
        stats.report_failures += 1
        log.warning("rollout %s: the tracing gateway did not accept the status log", r.rollout_id)
        return False

    async def run_rollout(r: Rollout) -> tuple[Failure | None, dict[str, Any], bool]:
        """The policy call and the status report. Returns (failure or None, extras, reported)."""
        import openai

        t0 = time.perf_counter()
        client = openai.AsyncOpenAI(base_url=r.model_base_url, api_key=r.api_key, http_client=state["http"],
                                    max_retries=opts.policy_retries, timeout=opts.rollout_timeout)
        failure: Failure | None = None
        extras: dict[str, Any] = {"svgrft_server": __version__, "policy_model": r.kwargs.get("model")}
        try:
            completion = await asyncio.wait_for(client.chat.completions.create(**r.kwargs),
                                                timeout=opts.rollout_timeout)
            choices = _field(completion, "choices")
            if choices is not None and not isinstance(choices, list):
                raise ValueError("choices is not a list")  # → 502 upstream_malformed (retried), not a 500
            choice = choices[0] if choices else None
            if choice is not None and not (isinstance(choice, dict) or hasattr(choice, "message")):
                raise ValueError("a choice without a message")
            msg = _field(choice, "message") if choice is not None else None
            content = _text(_field(msg, "content")) if msg is not None else None
            reason = _field(choice, "finish_reason") if choice is not None else None
            extras["finish_reason"] = reason if isinstance(reason, str) else None
            usage = _field(completion, "usage")
            if usage is not None:  # only clean counts go into the gateway's JSON (NaN would make it invalid)
                extras["usage"] = {k: _token_count(_field(usage, k))
                                   for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
            extras["svg_found"] = _svg_found(content)
            if choice is None:
                failure = Failure(502, UNAVAILABLE, "upstream_malformed", "the policy reply has no choices")
        except asyncio.CancelledError:
            raise
        except Exception as e:  # every failure of the call becomes a typed answer
            failure = classify_error(e)
            if failure.kind == "internal":
                log.error("rollout %s: unexpected %s: %s", r.rollout_id, type(e).__name__,
                          scrub(str(e), r.api_key, opts.token, server_key)[:300])
        extras["policy_latency_s"] = round(time.perf_counter() - t0, 4)
        t_report = time.perf_counter()
        if failure is None:
            reported = await report(r, 100, f"Rollout {r.rollout_id} finished", extras)
            stats.finished += 1
            log.info("rollout %s finished in %.2fs (model=%s, finish=%s, key %s from the %s)", r.rollout_id,
                     extras["policy_latency_s"], r.kwargs.get("model"), extras.get("finish_reason"),
                     mask(r.api_key), r.key_source)
        else:
            failure = Failure(failure.http_status, failure.grpc_code, failure.kind,
                              scrub(failure.message, r.api_key, opts.token, server_key), failure.retry_after,
                              failure.hint)
            extras["error_kind"] = failure.kind
            extras["http_status"] = failure.http_status
            reported = await report(r, failure.grpc_code, f"Rollout {r.rollout_id} failed: {failure.message}",
                                    extras)
            stats.failed += 1
            stats.count(failure.kind)
            log.warning("rollout %s failed: %d %s: %s", r.rollout_id, failure.http_status, failure.kind,
                        failure.message)
        extras["report_s"] = round(time.perf_counter() - t_report, 4)  # for the answer only (already logged)
        return failure, extras, reported

    async def background_rollout(r: Rollout) -> None:
        try:
            await run_rollout(r)
        except asyncio.CancelledError:
            log.warning("rollout %s cancelled at shutdown", r.rollout_id)
            raise
        except Exception as e:  # pragma: no cover - run_rollout catches the call's errors
            log.error("rollout %s: %s", r.rollout_id, type(e).__name__)
        finally:
            cap.leave()

    @app.get("/")
    async def health() -> dict:
        try:
            from importlib.metadata import version

            ep_version = version("eval-protocol")
        except Exception:  # pragma: no cover
            ep_version = None
        return {"status": "draining" if state["draining"] else "ok", "service": "svgrft-serve",
                "version": __version__, "eval_protocol": ep_version,
                "mode": "background" if opts.background else "sync",
                "auth": "token" if opts.token else "none",
                "uptime_s": round(time.time() - started, 1),
                "rollouts": {"in_flight": cap.in_flight, "finished": stats.finished, "failed": stats.failed,
                             "rejected": stats.rejected}}

    @app.post("/init")
    async def init(request: Request):
        t_start = time.perf_counter()
        client = client_label(request.client.host if request.client else None)
        rid: str | None = None
        entered = False
        request_key: str | None = None
        try:
            authorized = not opts.token or check_bearer(request.headers.get("authorization"), opts.token)
            wait = (limiter if authorized else auth_failures).acquire(client)
            if wait > 0:
                raise Rejection(429, "rate_limited", "too many requests from this client",
                                hint="slow down; see Retry-After", retry_after=retry_after_header(wait), code=8)
            if not authorized:
                has = bool(request.headers.get("authorization"))
                raise Rejection(401, "unauthorized", "wrong bearer token" if has else "missing bearer token",
                                hint="send Authorization: Bearer <SVGRFT_SERVE_TOKEN> (the evaluator's remote mode "
                                     "does this when the token is set)", code=16)
            if state["draining"]:
                raise Rejection(503, "draining", "the server is shutting down", retry_after="5", code=UNAVAILABLE)
            body = await read_body(request)
            try:  # NaN/Infinity are not JSON (and break the policy request later); deep nesting → 400, not 500
                data = json.loads(body, parse_constant=_reject_constant)
            except (ValueError, UnicodeDecodeError, RecursionError):
                raise Rejection(400, "bad_request", "the body is not valid JSON",
                                hint="send an eval_protocol InitRequest as JSON") from None
            if _too_deep(data):
                raise Rejection(400, "bad_request", f"the body nests deeper than {MAX_JSON_DEPTH} levels",
                                hint="send an eval_protocol InitRequest as JSON")
            rid = _rollout_id_of(data)
            if isinstance(data, dict) and isinstance(data.get("api_key"), str):
                request_key = data["api_key"]
            r = prepare(data)
            r.client = client
            if not cap.try_enter():
                raise Rejection(429, "too_many_rollouts",
                                f"{cap.limit} rollouts are already running on this server",
                                hint="retry later; the operator can raise --max-concurrent",
                                retry_after=retry_after_header(1), code=8)
            entered = True
        except Rejection as rej:
            stats.rejected += 1
            stats.count(rej.kind)
            log.warning("rejected /init from %s (rollout %s): %d %s: %s", client, rid or "?", rej.status, rej.kind,
                        scrub(rej.message, request_key, opts.token, server_key))
            if rej.rollout is not None:
                await report(rej.rollout, rej.code, f"Rollout {rej.rollout.rollout_id} rejected: {rej.message}",
                             {"svgrft_server": __version__, "error_kind": rej.kind, "http_status": rej.status})
            return reply(rej.status, rej.kind, rej.message, rid, hint=rej.hint, retry_after=rej.retry_after,
                         secrets=(request_key,))
        except Exception as e:  # a bug: answer 500, never crash the server
            log.error("/init from %s: unexpected %s", client, type(e).__name__)
            return reply(500, "internal", f"internal error: {type(e).__name__}", rid, secrets=(request_key,))

        if opts.background:
            task = asyncio.create_task(background_rollout(r))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            return JSONResponse({"status": "accepted", "rollout_id": r.rollout_id,
                                 "message": "rollout started; its status goes to the tracing gateway"})
        try:  # uvicorn's graceful shutdown waits for this request, so it needs no task bookkeeping
            failure, extras, reported = await run_rollout(r)
        except Exception as e:  # pragma: no cover - run_rollout catches the call's errors
            log.error("rollout %s: unexpected %s", r.rollout_id, type(e).__name__)
            return reply(500, "internal", f"internal error: {type(e).__name__}", r.rollout_id,
                         secrets=(r.api_key,))
        finally:
            if entered:
                cap.leave()
        if failure is not None:
            return reply(failure.http_status, failure.kind, failure.message, r.rollout_id, hint=failure.hint,
                         retry_after=failure.retry_after, secrets=(r.api_key,))
        if not reported:
            return reply(502, "gateway_unreachable", "the rollout finished but its status could not be written "
                                                     "to the tracing gateway", r.rollout_id,
                         hint=f"check that {r.gateway} is reachable from the server", secrets=(r.api_key,))
        return JSONResponse({"status": "finished", "rollout_id": r.rollout_id,
                             "finish_reason": extras.get("finish_reason"),
                             "svg_found": extras.get("svg_found"),
                             "latency_s": extras.get("policy_latency_s"), "report_s": extras.get("report_s"),
                             "server_s": round(time.perf_counter() - t_start, 4)})

    return app


def _policy_http_client(openai: Any) -> Any:
    """The shared HTTP client of every policy call (redirects never followed: a key must not travel
    to a host that was not allow-listed). openai's aiohttp transport when available: httpcore's pool
    costs O(connections x waiting requests) CPU per scheduling step, which dominates at hundreds of
    concurrent rollouts; aiohttp's does not."""
    try:
        return openai.DefaultAioHttpClient(follow_redirects=False)
    except Exception:  # httpx-aiohttp missing (it comes with fireworks-ai): plain httpx
        return openai.DefaultAsyncHttpxClient(follow_redirects=False)


def client_label(host: Any) -> str:
    """The client address as it may appear in logs and rate-limit keys: a normalised IP address, or
    ``"invalid"`` (a forwarded header can carry anything, line breaks included)."""
    import ipaddress

    if not isinstance(host, str) or not host or len(host) > 64:
        return "unknown" if not host else "invalid"
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return "invalid"


def _svg_found(content: Any) -> bool | None:
    if not isinstance(content, str):
        return False
    try:
        from svgrft.core.extract import extract_svg

        return extract_svg(content).svg is not None
    except Exception:  # extraction is informative only
        return None


def app_from_env():
    """Factory for ``uvicorn --factory`` / ``--workers``: options from ``SVGRFT_SERVE_OPTIONS``."""
    from svgrft.config import load_settings, process_env
    from svgrft.server.runner import quiet_import_warnings

    quiet_import_warnings()
    settings = load_settings()
    raw = process_env(OPTIONS_ENV)
    if raw:
        d = json.loads(raw)
        d.pop("auth", None)
        d["allow_model_hosts"] = tuple(d.get("allow_model_hosts") or ())
        d["default_hosts"] = tuple(d.get("default_hosts") or DEFAULT_MODEL_HOSTS)
        opts = ServeOptions(token=settings.secret("SVGRFT_SERVE_TOKEN"), **d)
        from svgrft.server.conn import GuardedH11Protocol, auto_limits

        per_client, total = auto_limits(opts.max_concurrent, opts.max_connections_per_client)
        GuardedH11Protocol.configure(header_timeout=opts.read_timeout, max_per_client=per_client,
                                     max_connections=total)
        return create_app(settings, options=opts, warn_unauthenticated=False)
    return create_app(settings)
