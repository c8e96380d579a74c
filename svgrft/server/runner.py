"""Running the rollout server with uvicorn (one process, or ``--workers N`` processes).

Imports :mod:`svgrft.server.options` only at the top (the app is imported when serving starts), so the
app and the runner never import each other."""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from svgrft.server.options import ServeOptions, export_options

SHUTDOWN_GRACE = 15  # seconds added to the rollout timeout for a graceful stop
KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open
PROTOCOL = "svgrft.server.conn:GuardedH11Protocol"


def uvicorn_options(options: ServeOptions, *, workers: int = 1) -> dict[str, Any]:
    """The uvicorn settings that make the server robust: the guarded HTTP protocol (header deadline,
    per-client and total connection caps that close idle sockets first), no ``limit_concurrency`` (it counted
    idle sockets and answered 503 to everyone before auth; the app's cap counts rollouts), a short keep-alive,
    forwarded headers only with ``trust_proxy_headers`` (from loopback proxies, or ``FORWARDED_ALLOW_IPS``)."""
    from svgrft.server.conn import GuardedH11Protocol, auto_limits

    per_client, total = auto_limits(options.max_concurrent, options.max_connections_per_client)
    limits = dict(header_timeout=options.read_timeout, max_per_client=per_client, max_connections=total)
    if workers > 1:  # worker processes import the protocol by name and configure it from the options
        GuardedH11Protocol.configure(**limits)
        http: Any = PROTOCOL
    else:
        http = GuardedH11Protocol.configured(**limits)
    return dict(
        http=http,
        limit_concurrency=None,
        timeout_keep_alive=KEEP_ALIVE,
        proxy_headers=bool(options.trust_proxy_headers),
        server_header=False,
        timeout_graceful_shutdown=int(options.rollout_timeout) + SHUTDOWN_GRACE,
    )


class RedactFilter(logging.Filter):
    """Masks known secrets (env keys, the serve token) and bearer tokens in every log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        from svgrft.redact import redact

        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not kill logging
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's logging config with everything on stderr and svgrft.server lines added (redacted)."""
    lvl = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "svgrft.server.runner.RedactFilter"}},
        "formatters": {
            "default": {
                "()": "uvicorn.logging.DefaultFormatter",
                "fmt": "%(levelprefix)s %(message)s",
                "use_colors": None,
            },
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
            },
            "svgrft": {"format": "%(asctime)s %(levelname)-7s %(message)s", "datefmt": "%H:%M:%S"},
        },
        "handlers": {
            "default": {
                "formatter": "default",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["redact"],
            },
            "access": {
                "formatter": "access",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["redact"],
            },
            "svgrft": {
                "formatter": "svgrft",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["redact"],
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": lvl, "propagate": False},
            "uvicorn.error": {"level": lvl},
            "uvicorn.access": {"handlers": ["access"], "level": lvl, "propagate": False},
            "svgrft.server": {"handlers": ["svgrft"], "level": lvl, "propagate": False},
            # the gateway records are sent by the reporter, not printed
            "svgrft.server.rollout": {"handlers": [], "level": "INFO", "propagate": False},
        },
    }


def serve(
    settings: Any,
    options: ServeOptions,
    *,
    host: str,
    port: int,
    workers: int = 1,
    access_log: bool = False,
    log_level: str = "info",
) -> None:
    """Block serving ``/init`` until SIGINT/SIGTERM; in-flight rollouts finish before exit."""
    import uvicorn

    from svgrft.server.conn import raise_open_file_limit

    cfg = log_config(log_level)
    logging.config.dictConfig(cfg)
    raise_open_file_limit()  # sockets are files: the connection caps are derived from this limit
    common = dict(
        host=host,
        port=port,
        log_config=cfg,
        access_log=access_log,
        lifespan="on",
        **uvicorn_options(options, workers=workers),
    )
    if workers > 1:
        # Worker processes rebuild the app from the environment: options as JSON, token as its env var.
        export_options(options)
        uvicorn.run("svgrft.server.app:app_from_env", factory=True, workers=workers, **common)
        return
    from svgrft.server.app import create_app

    app = create_app(settings, options=options)
    uvicorn.run(app, **common)
