"""``svgrft serve``: the rollout server Fireworks' evaluator calls (``POST /init``) in remote mode."""

from __future__ import annotations

from typing import Optional

import typer

from svgrft.cli import _common as c
from svgrft.clients.rollout_server import check_server
from svgrft.core.plural import plural


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
        raise ConfigError(
            f"cannot listen on {host!r}: {getattr(e, 'strerror', None) or e}",
            hint="pass --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (all interfaces)",
        ) from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(addr)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise SvgrftError(
                    f"port {port} on {host} is already in use",
                    hint="stop the process listening there (another `svgrft serve`?) or pass --port N",
                ) from None
            if e.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(
                    f"cannot listen on {host}: this machine has no such address",
                    hint="pass --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (all interfaces)",
                ) from None
            if e.errno == errno.EACCES:
                raise SvgrftError(
                    f"not allowed to listen on port {port} on {host}",
                    hint="ports below 1024 need privileges; pass e.g. --port 8000",
                ) from None
            raise SvgrftError(
                f"cannot listen on {host}:{port}: {e.strerror or e}", hint="check --host and --port"
            ) from None


@c.command
def cmd(
    host: Optional[str] = c.setting_option("serve.host"),
    port: Optional[int] = c.setting_option("serve.port", min=0, max=65535),
    workers: Optional[int] = c.setting_option("serve.workers", min=1),
    token: Optional[str] = typer.Option(
        None,
        "--token",
        help="Shared secret: /init then needs 'Authorization: Bearer <token>'. "
        "Default: SVGRFT_SERVE_TOKEN (prefer the env var: flags show in ps).",
    ),
    allow_server_key: bool = typer.Option(
        False, "--allow-server-key", help="Use this server's FIREWORKS_API_KEY for requests without api_key."
    ),
    allow_model_host: Optional[list[str]] = c.setting_option("serve.allow_model_hosts", metavar="HOST", extend=True),
    max_concurrent: Optional[int] = c.setting_option("serve.max_concurrent", min=0),
    rate_limit: Optional[float] = c.setting_option("serve.rate_limit", min=0),
    rate_burst: Optional[int] = c.setting_option("serve.rate_burst", min=1),
    rollout_timeout: Optional[float] = c.setting_option("serve.rollout_timeout", min=1),
    max_body: Optional[int] = c.setting_option("serve.max_body", min=1024),
    policy_retries: Optional[int] = c.setting_option("serve.policy_retries", min=0),
    background: Optional[bool] = c.setting_option("serve.background", "--background/--sync"),
    read_timeout: Optional[float] = c.setting_option("serve.read_timeout", min=0.5),
    max_conns_per_client: Optional[int] = c.setting_option("serve.max_connections_per_client", min=0),
    trust_proxy_headers: Optional[bool] = c.setting_option("serve.trust_proxy_headers"),
    access_log: bool = typer.Option(False, "--access-log", help="Also log every HTTP request line."),
    check: Optional[str] = typer.Option(
        None, "--check", metavar="URL", help="Do not serve: check the health of a running server at URL."
    ),
    json_out: bool = c.JSON_OPT,
) -> None:
    """Run the rollout server: POST /init (Eval Protocol InitRequest) asks the policy model for an SVG through
    the traced model_base_url and reports the outcome to the tracing gateway; GET / is health."""
    import sys

    from svgrft.errors import ConfigError
    from svgrft.redact import register

    if check:
        result = check_server(check)
        if json_out:
            c.emit_json(result)
        else:
            r = result.get("rollouts") or {}
            c.out(
                f"{result['url']}: ok (svgrft {result['version']}, eval-protocol {result['eval_protocol']}, "
                f"mode {result['mode']}, auth {result['auth']}, in flight {r.get('in_flight', '?')}, "
                f"{result['latency_ms']} ms)"
            )
        return

    register(token)
    s = c.settings()
    from svgrft.server.guard import HostAllowList, is_loopback
    from svgrft.server.options import options_from_settings

    opts = options_from_settings(s, token=token, allow_server_key=allow_server_key)
    try:
        HostAllowList([*opts.default_hosts, *opts.allow_model_hosts])
    except ValueError as e:
        raise ConfigError(f"--allow-model-host: {e}", hint="pass a host name, host:port or *.domain") from None
    bind = s.serve.host
    if opts.allow_server_key and not opts.token and not is_loopback(bind):
        raise ConfigError(
            f"--allow-server-key on {bind} without a token would let anyone spend this server's FIREWORKS_API_KEY",
            hint="set SVGRFT_SERVE_TOKEN (or --token), or bind 127.0.0.1",
        )
    if opts.allow_server_key and not s.secret("FIREWORKS_API_KEY"):
        raise ConfigError(
            "--allow-server-key needs FIREWORKS_API_KEY on the server",
            hint="export FIREWORKS_API_KEY=... or drop --allow-server-key",
        )
    if opts.token and len(opts.token) < 16:
        c.warn(
            "the serve token is shorter than 16 characters; use a long random one "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    n_workers, port = s.serve.workers, s.serve.port
    check_bindable(bind, port)
    url = f"http://{bind}:{port}"
    if not opts.token and n_workers > 1:
        c.warn("/init is unauthenticated (no SVGRFT_SERVE_TOKEN / --token): anyone who can reach it can start rollouts")
    if json_out:
        c.emit_json({"url": url, "workers": n_workers, "options": opts.public()})
    c.info(
        f"svgrft serve on {url} (POST /init, GET /), {plural(n_workers, 'worker')}; Ctrl-C stops after in-flight rollouts"
    )
    sys.stdout.flush()
    from svgrft.server.runner import serve

    serve(
        s,
        opts,
        host=bind,
        port=port,
        workers=n_workers,
        access_log=access_log,
        log_level="info" if not c.state.quiet else "warning",
    )
