"""The Fireworks tracing gateway (``/v1/traces/pointwise``), over httpx.

The SDK has no call for it. Auth is ``Authorization: Bearer FIREWORKS_API_KEY``; the base URL comes
from ``fireworks.tracing_base_url`` (env ``FIREWORKS_TRACING_BASE_URL``, default
https://tracing.fireworks.ai).

Paging: the gateway takes ``limit`` (page size) and ``page`` (1-based) and answers
``meta.total_pages``. A gateway that ignores ``page`` (or sends no ``meta``) is detected — the same
page comes back — and then a full page makes the client split the time window in two and ask
again, so no trace is lost silently. ``max_traces`` caps one fetch; hitting it is reported, not
hidden. Errors become svgrft errors with a hint: unreachable, 401/403, 404, 429/5xx (retried a few
times), a body that is not JSON.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from svgrft.errors import ApiError, AuthError, ConfigError, NetworkError, NotFoundError

KEY_HINT = "check FIREWORKS_API_KEY (in the environment or .env); the tracing gateway uses the same key"
RETRY_STATUS = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER = 30.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class FetchResult:
    traces: list[dict] = field(default_factory=list)
    requests: int = 0
    truncated: bool = False  # hit max_traces, or a time slice too dense to split further


class TracingClient:
    """Read traces from the gateway. Use as a context manager (one keep-alive connection pool)."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0, page_size: int = 100,
                 max_traces: int = 20_000, retries: int = 2, backoff: float = 0.5):
        if not api_key:
            raise ConfigError("FIREWORKS_API_KEY is not set (the tracing gateway needs it)",
                              hint="export FIREWORKS_API_KEY=... or put it in .env")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"invalid tracing gateway URL {base_url!r}",
                              hint="set FIREWORKS_TRACING_BASE_URL to e.g. https://tracing.fireworks.ai")
        import httpx

        self.base_url = base_url.rstrip("/")
        self.page_size = max(1, page_size)
        self.max_traces = max(1, max_traces)
        self.retries = max(0, retries)
        self.backoff = backoff
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout,
                                  headers={"Authorization": f"Bearer {api_key}",
                                           "User-Agent": "svgrft (compare-epochs)"})
        self.requests = 0

    @classmethod
    def from_settings(cls, settings: Any, **kw: Any) -> "TracingClient":
        from svgrft.clients.fireworks import require_key

        return cls(settings["fireworks.tracing_base_url"], require_key(settings),
                   timeout=float(settings["fireworks.timeout"]), **kw)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "TracingClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -------------------------------------------------------------------------------- one request
    def _get(self, path: str, params: list[tuple[str, str]]) -> Any:
        import httpx

        attempt = 0
        while True:
            attempt += 1
            self.requests += 1
            r = None
            try:
                r = self._http.get(path, params=params)
            except httpx.TimeoutException:
                err: Exception = NetworkError(f"timed out reading traces from the tracing gateway at {self.base_url}",
                                              hint="check FIREWORKS_TRACING_BASE_URL and your network; "
                                                   "narrow the search with --tag")
            except httpx.HTTPError as e:
                err = NetworkError(f"cannot reach the tracing gateway at {self.base_url} ({type(e).__name__})",
                                   hint="check FIREWORKS_TRACING_BASE_URL and your network "
                                        "(or use --source replay / --runs)")
                if isinstance(e, httpx.ConnectError) and "refused" in str(e).lower():
                    raise err from None  # nothing listens there: retrying will not help
            else:
                if r.status_code == 200:
                    try:
                        return r.json()
                    except (ValueError, RecursionError):  # not JSON, a 5000-digit number, or absurdly deep
                        err = ApiError(f"the tracing gateway at {self.base_url} answered something that is not JSON",
                                       hint="check FIREWORKS_TRACING_BASE_URL points at the tracing gateway",
                                       status=200)
                elif r.status_code in (401, 403):
                    raise AuthError(f"the tracing gateway rejected the API key ({r.status_code})",
                                    hint=KEY_HINT, status=r.status_code)
                elif r.status_code == 404:
                    raise NotFoundError(f"the tracing gateway at {self.base_url} has no {path} (404)",
                                        hint="check FIREWORKS_TRACING_BASE_URL (default https://tracing.fireworks.ai)",
                                        status=404)
                elif r.status_code in RETRY_STATUS:
                    err = ApiError(f"the tracing gateway answered {r.status_code} while reading traces, after retries",
                                   hint="the gateway may be busy; run the same command again in a minute",
                                   status=r.status_code)
                else:
                    raise ApiError(f"the tracing gateway refused the query ({r.status_code}): {_detail(r)}",
                                   hint="check the --tag values and the job's time window", status=r.status_code)
            if attempt > self.retries:
                raise err
            delay = self.backoff * (2 ** (attempt - 1))
            if r is not None and r.status_code in RETRY_STATUS:
                ra = _retry_after(r.headers)
                if ra is not None:
                    delay = min(max(delay, ra), MAX_RETRY_AFTER)
            time.sleep(delay)

    def pointwise(self, tags: Sequence[str], *, limit: int | None = None, page: int | None = None,
                  from_ts: float | None = None, to_ts: float | None = None) -> tuple[list[dict], dict]:
        """One ``GET /v1/traces/pointwise`` → (traces, meta)."""
        if not tags:
            raise ConfigError("the tracing gateway needs at least one tag to search",
                              hint="pass --tag KEY:VALUE (e.g. --tag invocation_id:...)")
        params: list[tuple[str, str]] = [("tags", t) for t in tags]
        params.append(("limit", str(limit or self.page_size)))
        if page:
            params.append(("page", str(page)))
        if from_ts is not None:
            params.append(("from_timestamp", _iso(from_ts)))
        if to_ts is not None:
            params.append(("to_timestamp", _iso(to_ts)))
        body = self._get("/v1/traces/pointwise", params)
        if not isinstance(body, dict):
            raise ApiError("the tracing gateway answered an unexpected shape (not an object)",
                           hint="check FIREWORKS_TRACING_BASE_URL points at the tracing gateway")
        traces = body.get("traces")
        if traces is None:
            traces = []
        if not isinstance(traces, list):
            raise ApiError("the tracing gateway answered an unexpected shape ('traces' is not a list)",
                           hint="check FIREWORKS_TRACING_BASE_URL points at the tracing gateway")
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        return traces, meta

    # -------------------------------------------------------------------------------- all of them
    def fetch(self, tags: Sequence[str], *, from_ts: float | None = None, to_ts: float | None = None,
              result: FetchResult | None = None) -> FetchResult:
        """Every trace with all ``tags`` in [from_ts, to_ts], paging (or splitting the window)."""
        res = result or FetchResult()
        seen = {t.get("id") for t in res.traces if isinstance(t, dict)}
        page = 1
        first_ids: list | None = None
        while True:
            before = self.requests
            traces, meta = self.pointwise(tags, page=page, from_ts=from_ts, to_ts=to_ts)
            res.requests += self.requests - before
            ids = [t.get("id") if isinstance(t, dict) else None for t in traces]
            if page == 1:
                first_ids = ids
            elif ids and ids == first_ids:  # the gateway ignores `page`
                return self._split(tags, from_ts, to_ts, res, seen)
            if self._collect(traces, res, seen):
                return res
            total_pages = _as_int(meta.get("total_pages"))
            if total_pages is not None:
                if page >= total_pages or not traces:
                    return res
                page += 1
                continue
            if len(traces) < self.page_size:
                return res
            if page == 1:  # no meta and a full page: try page 2 to learn whether paging works
                page = 2
                continue
            page += 1

    def _split(self, tags: Sequence[str], from_ts: float | None, to_ts: float | None, res: FetchResult,
               seen: set) -> FetchResult:
        if from_ts is None or to_ts is None or to_ts - from_ts < 1.0:
            res.truncated = True  # cannot split further: report it
            return res
        mid = (from_ts + to_ts) / 2
        for lo, hi in ((from_ts, mid), (mid, to_ts)):
            before = self.requests
            traces, _meta = self.pointwise(tags, from_ts=lo, to_ts=hi)
            res.requests += self.requests - before
            if len(traces) >= self.page_size:
                self._split(tags, lo, hi, res, seen)
                continue
            if self._collect(traces, res, seen):
                return res
        return res

    def _collect(self, traces: list, res: FetchResult, seen: set) -> bool:
        """Append traces not seen before (by id); True when the ``max_traces`` cap is reached."""
        for t in traces:
            tid = t.get("id") if isinstance(t, dict) else None
            if tid is not None and tid in seen:
                continue
            seen.add(tid)
            res.traces.append(t)
            if len(res.traces) >= self.max_traces:
                res.truncated = True
                return True
        return False

    def status(self) -> bool:
        """True when the gateway answers (any HTTP status) — for diagnostics."""
        import httpx

        try:
            self._http.get("/v1/status", params={"rollout_id": "svgrft-probe"})
        except httpx.HTTPError:
            return False
        return True


def _retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds only), if present and sane."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name) if headers is not None else None
        if raw is None:
            continue
        try:
            v = float(raw) / scale
        except (TypeError, ValueError):
            continue
        if v >= 0:
            return v
    return None


def _as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isascii() and v.isdigit() and len(v) <= 18:  # "²".isdigit() is True
        return int(v)
    return None


def _detail(r: Any) -> str:
    try:
        body = r.json()
    except (ValueError, RecursionError):
        return (r.text or "")[:200].replace("\n", " ")
    if isinstance(body, dict):
        d = body.get("detail", body.get("message", body))
        return str(d)[:200]
    return str(body)[:200]
