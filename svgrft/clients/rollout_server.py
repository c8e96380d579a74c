"""The health check of an svgrft rollout server (``svgrft serve``), over httpx."""

from __future__ import annotations

from svgrft.errors import ApiError, NetworkError


def check_health(url: str, *, timeout: float = 10.0) -> dict:
    """GET ``url``/ of an svgrft rollout server (its health endpoint): the JSON body ({} if none) on 2xx.

    Unreachable → NetworkError; any other status → ApiError (both with hints)."""
    import httpx

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
