"""``svgrft serve``: the rollout server Fireworks' evaluator calls (``POST /init``) in remote mode."""

from __future__ import annotations

from typing import Any, List, Optional

import typer

from svgrft.cli import _common as c
from svgrft.core.plural import plural


def check_server(url: str, timeout: float = 10.0) -> dict[str, Any]:
    """GET the health endpoint of a deployed server; raises an svgrft error when it is not healthy."""
    import httpx

    from svgrft.errors import ApiError, NetworkError, UsageError

    base = url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise UsageError(f"invalid URL {url!r}", hint="pass the server's base URL, e.g. https://svg.example.com")
    try:
        resp = httpx.get(base + "/", timeout=timeout, follow_redirects=False)
    except httpx.TimeoutException:
        raise NetworkError(f"{base} did not answer within {timeout:g}s",
                           hint="check the URL, and that the server is running and reachable") from None
    except httpx.HTTPError as e:
        raise NetworkError(f"cannot reach {base}: {type(e).__name__}",
                           hint="check the URL, and that the server is running and reachable") from None
    try:
        data = resp.json()
    except ValueError:
        data = None
    if resp.status_code != 200 or not isinstance(data, dict) or data.get("service") != "svgrft-serve":
        raise ApiError(f"{base} answered {resp.status_code} but is not a healthy svgrft rollout server",
                       hint="point --check at the base URL that `svgrft serve` listens on", status=resp.status_code)
    if data.get("status") != "ok":
        raise ApiError(f"{base} is {data.get('status')!r}", hint="it is shutting down; try again shortly")
    return {"url": base, "ok": True, "status": data.get("status"), "version": data.get("version"),
            "eval_protocol": data.get("eval_protocol"), "mode": data.get("mode"), "auth": data.get("auth"),
            "rollouts": data.get("rollouts"),
            "latency_ms": round(resp.elapsed.total_seconds() * 1000, 1)}


def check_bindable(host: str, port: int) -> None:
    """Fail with one clear error before start-up when ``host:port`` cannot be listened on (port in use,
    an address this machine does not have, a privileged port), instead of uvicorn's log line and exit 3."""
    import errno
    import socket

    from svgrft.errors import ConfigError, SvgrftError

    if not 0 <= port <= 65535:
        raise ConfigError(f"invalid port {port}: ports are 0-65535", hint="pass e.g. --port 8000")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise ConfigError(f"cannot listen on {host!r}: {getattr(e, 'strerror', None) or e}",
                          hint="pass --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (all interfaces)") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(addr)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise SvgrftError(f"port {port} on {host} is already in use",
                                  hint="stop the process listening there (another `svgrft serve`?) or pass "
                                       "--port N") from None
            if e.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(f"cannot listen on {host}: this machine has no such address",
                                  hint="pass --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (all "
                                       "interfaces)") from None
            if e.errno == errno.EACCES:
                raise SvgrftError(f"not allowed to listen on port {port} on {host}",
                                  hint="ports below 1024 need privileges; pass e.g. --port 8000") from None
            raise SvgrftError(f"cannot listen on {host}:{port}: {e.strerror or e}",
                              hint="check --host and --port") from None


@c.command
def cmd(
    host: Optional[str] = typer.Option(None, "--host", help="Interface to bind (default 127.0.0.1; 0.0.0.0 in a "
                                                              "container)."),
    port: Optional[int] = typer.Option(None, "--port", min=0, max=65535, help="Port (default 8000)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                          help="Worker processes (default 1; limits apply per worker)."),
    token: Optional[str] = typer.Option(None, "--token",
                                        help="Shared secret: /init then needs 'Authorization: Bearer <token>'. "
                                             "Default: SVGRFT_SERVE_TOKEN (prefer the env var: flags show in ps)."),
    allow_server_key: bool = typer.Option(False, "--allow-server-key",
                                          help="Use this server's FIREWORKS_API_KEY for requests without api_key."),
    allow_model_host: Optional[List[str]] = typer.Option(
        None, "--allow-model-host", metavar="HOST",
        help="Also accept model_base_url on HOST (host, host:port or *.domain; repeatable). Default: "
             "tracing.fireworks.ai, api.fireworks.ai and the configured Fireworks URLs."),
    max_concurrent: Optional[int] = typer.Option(None, "--max-concurrent", min=0,
                                                 help="Cap on concurrent rollouts, 429 beyond (default 256, 0 = none)."),
    rate_limit: Optional[float] = typer.Option(None, "--rate-limit", min=0,
                                               help="Requests per second per client (default 20, 0 = off)."),
    rate_burst: Optional[int] = typer.Option(None, "--rate-burst", min=1,
                                             help="Requests a client may send at once (default 400)."),
    rollout_timeout: Optional[float] = typer.Option(None, "--rollout-timeout", min=1,
                                                    help="Seconds one rollout may take (default 300)."),
    max_body: Optional[int] = typer.Option(None, "--max-body", min=1024,
                                           help="Largest /init body in bytes (default 2 MiB)."),
    policy_retries: Optional[int] = typer.Option(None, "--policy-retries", min=0,
                                                 help="Retries of a failed policy call (429/5xx/network) inside "
                                                      "one rollout (default 2)."),
    background: Optional[bool] = typer.Option(None, "--background/--sync",
                                              help="Answer /init at once and run the policy call in the background "
                                                   "(errors only via the tracing status). Default --sync."),
    read_timeout: Optional[float] = typer.Option(None, "--read-timeout", min=0.5,
                                                 help="Seconds a client has for a request's headers, then for "
                                                      "its body; slower connections are closed (default 15)."),
    max_conns_per_client: Optional[int] = typer.Option(
        None, "--conns-per-client", min=0,
        help="Connections one client address may hold; an idle one is closed to make room (default "
             "--max-concurrent + 64)."),
    trust_proxy_headers: bool = typer.Option(
        False, "--trust-proxy-headers",
        help="Take the client address from X-Forwarded-For set by a reverse proxy on this machine (or "
             "FORWARDED_ALLOW_IPS). Default: the TCP peer."),
    access_log: bool = typer.Option(False, "--access-log", help="Also log every HTTP request line."),
    check: Optional[str] = typer.Option(None, "--check", metavar="URL",
                                        help="Do not serve: check the health of a running server at URL."),
    json_out: bool = c.JSON_OPT,
) -> None:
    """Run the rollout server: POST /init (Eval Protocol InitRequest) asks the policy model for an SVG through
    the traced model_base_url and reports the outcome to the tracing gateway; GET / is health."""
    import sys

    from svgrft.errors import ConfigError
    from svgrft.secrets import register

    if check:
        result = check_server(check)
        if json_out:
            c.emit_json(result)
        else:
            r = result.get("rollouts") or {}
            c.out(f"{result['url']}: ok (svgrft {result['version']}, eval-protocol {result['eval_protocol']}, "
                  f"mode {result['mode']}, auth {result['auth']}, in flight {r.get('in_flight', '?')}, "
                  f"{result['latency_ms']} ms)")
        return

    register(token)
    overrides = {"serve.host": host, "serve.port": port, "serve.workers": workers,
                 "serve.max_concurrent": max_concurrent, "serve.rate_limit": rate_limit,
                 "serve.rate_burst": rate_burst, "serve.rollout_timeout": rollout_timeout,
                 "serve.max_body": max_body, "serve.background": background,
                 "serve.policy_retries": policy_retries, "serve.read_timeout": read_timeout,
                 "serve.max_connections_per_client": max_conns_per_client,
                 "serve.trust_proxy_headers": True if trust_proxy_headers else None}
    s = c.settings(overrides)
    from svgrft.server.guard import HostAllowList, is_loopback
    from svgrft.server.options import options_from_settings

    opts = options_from_settings(s, token=token, allow_server_key=allow_server_key,
                                 allow_model_hosts=tuple(allow_model_host) if allow_model_host else None)
    try:
        HostAllowList([*opts.default_hosts, *opts.allow_model_hosts])
    except ValueError as e:
        raise ConfigError(f"--allow-model-host: {e}", hint="pass a host name, host:port or *.domain") from None
    bind = s.serve.host
    if opts.allow_server_key and not opts.token and not is_loopback(bind):
        raise ConfigError(f"--allow-server-key on {bind} without a token would let anyone spend this server's "
                          "FIREWORKS_API_KEY", hint="set SVGRFT_SERVE_TOKEN (or --token), or bind 127.0.0.1")
    if opts.allow_server_key and not s.secret("FIREWORKS_API_KEY"):
        raise ConfigError("--allow-server-key needs FIREWORKS_API_KEY on the server",
                          hint="export FIREWORKS_API_KEY=... or drop --allow-server-key")
    if opts.token and len(opts.token) < 16:
        c.warn("the serve token is shorter than 16 characters; use a long random one "
               "(python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    n_workers, port = s.serve.workers, s.serve.port
    check_bindable(bind, port)
    url = f"http://{bind}:{port}"
    if not opts.token and n_workers > 1:
        c.warn("/init is unauthenticated (no SVGRFT_SERVE_TOKEN / --token): anyone who can reach it can start "
               "rollouts")
    if json_out:
        c.emit_json({"url": url, "workers": n_workers, "options": opts.public()})
    c.info(f"svgrft serve on {url} (POST /init, GET /), {plural(n_workers, 'worker')}; Ctrl-C stops after in-flight rollouts")
    sys.stdout.flush()
    from svgrft.server.runner import serve

    serve(s, opts, host=bind, port=port, workers=n_workers, access_log=access_log,
          log_level="info" if not c.state.quiet else "warning")
