"""Health checks of an svgrft rollout server (``svgrft serve``), over httpx: ``check_health`` before a
remote-mode build or job, ``check_server`` for ``svgrft serve --check URL`` (no redirects followed)."""

from __future__ import annotations

from typing import Any

from svgrft.errors import ApiError, NetworkError, UsageError


def check_health(url: str, *, timeout: float = 10.0) -> dict:
    """GET ``url``/ of an svgrft rollout server (its health endpoint): the JSON body ({} if none) on 2xx.

    Unreachable → NetworkError; any other status → ApiError (both with hints)."""
    import httpx

    try:
        r = httpx.get(url.rstrip("/") + "/", timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as e:
        raise NetworkError(
            f"rollout server {url} is not reachable ({type(e).__name__})",
            hint="start it with `svgrft serve` (or check the URL / your network), or use --rollout-mode local",
        ) from None
    if r.status_code >= 300:
        raise ApiError(
            f"rollout server {url} is unhealthy (GET / answered HTTP {r.status_code})",
            hint="check the server's logs (`svgrft serve --check URL`), or use --rollout-mode local",
            status=r.status_code,
        )
    try:
        body = r.json()
    except ValueError:
        body = {}
    return body if isinstance(body, dict) else {}


def check_server(url: str, timeout: float = 10.0) -> dict[str, Any]:
    """GET the health endpoint of a deployed server; raises an svgrft error when it is not healthy."""
    import httpx

    base = url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise UsageError(f"invalid URL {url!r}", hint="pass the server's base URL, e.g. https://svg.example.com")
    try:
        resp = httpx.get(base + "/", timeout=timeout, follow_redirects=False)
    except httpx.TimeoutException:
        raise NetworkError(
            f"{base} did not answer within {timeout:g}s",
            hint="check the URL, and that the server is running and reachable",
        ) from None
    except httpx.HTTPError as e:
        raise NetworkError(
            f"cannot reach {base}: {type(e).__name__}",
            hint="check the URL, and that the server is running and reachable",
        ) from None
    try:
        data = resp.json()
    except ValueError:
        data = None
    if resp.status_code != 200 or not isinstance(data, dict) or data.get("service") != "svgrft-serve":
        raise ApiError(
            f"{base} answered {resp.status_code} but is not a healthy svgrft rollout server",
            hint="point --check at the base URL that `svgrft serve` listens on",
            status=resp.status_code,
        )
    if data.get("status") != "ok":
        raise ApiError(f"{base} is {data.get('status')!r}", hint="it is shutting down; try again shortly")
    return {
        "url": base,
        "ok": True,
        "status": data.get("status"),
        "version": data.get("version"),
        "eval_protocol": data.get("eval_protocol"),
        "mode": data.get("mode"),
        "auth": data.get("auth"),
        "rollouts": data.get("rollouts"),
        "latency_ms": round(resp.elapsed.total_seconds() * 1000, 1),
    }
