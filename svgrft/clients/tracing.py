"""The Fireworks tracing gateway over httpx: traces by rollout id, and the log endpoint.

The SDK has no call for it. Auth is ``Authorization: Bearer FIREWORKS_API_KEY``; the base URL comes
from ``fireworks.tracing_base_url`` (env ``FIREWORKS_TRACING_BASE_URL``, default
https://tracing.fireworks.ai).

The contract followed (reference/fireworks.md §5.2b, from eval-protocol's open-source gateway):

* ``GET /v1/traces/pointwise?tags=rollout_id:<r>`` → that rollout's latest trace. A rollout the
  gateway never saw answers **500** ("No insertion_ids found …"): :meth:`TracingClient.trace` returns
  None for it (no such rollout), it is not a busy gateway. Searching without a ``rollout_id`` tag is
  not supported by the gateway and is not offered here.
* ``GET /v1/traces?tags=…&limit=N`` → at most N traces in total (no ``page``), newest first, with
  ``total_traces``; :meth:`TracingClient.traces` reports when the answer filled the limit.
* every trace request sends ``sleep_between_gets=0.1`` and ``max_retries=5`` as eval-protocol's own
  adapter does (the gateway's default sleeps 2.5 s per trace).
* ``GET /logs?tags=…&limit=…&hours_back=…&program=…`` (fallback ``/v1/logs`` on 404) → log entries
  whose tags include every tag given: :meth:`TracingClient.logs` (the rollout records of
  :mod:`svgrft.core.records`).

Errors become svgrft errors with a hint: unreachable, 401/403, 404, 429/5xx (retried a few times),
a body that is not JSON.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from svgrft.clients.retry import retry_after_seconds
from svgrft.errors import ApiError, AuthError, ConfigError, NetworkError, NotFoundError

KEY_HINT = "check FIREWORKS_API_KEY (in the environment or .env); the tracing gateway uses the same key"
RETRY_STATUS = (429, 500, 502, 503, 504)
# what eval-protocol's FireworksTracingAdapter sends (the gateway's own default sleeps 2.5 s per trace)
TRACE_PARAMS = (("sleep_between_gets", "0.1"), ("max_retries", "5"))
MAX_RETRY_AFTER = 30.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class FetchResult:
    traces: list[dict] = field(default_factory=list)
    requests: int = 0
    truncated: bool = False  # the answer filled the limit: there may be more


class TracingClient:
    """Read traces from the gateway. Use as a context manager (one keep-alive connection pool)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        page_size: int = 100,
        retries: int = 2,
        backoff: float = 0.5,
    ):
        if not api_key:
            raise ConfigError(
                "FIREWORKS_API_KEY is not set (the tracing gateway needs it)",
                hint="export FIREWORKS_API_KEY=... or put it in .env",
            )
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"invalid tracing gateway URL {base_url!r}",
                hint="set FIREWORKS_TRACING_BASE_URL to e.g. https://tracing.fireworks.ai",
            )
        import httpx

        self.base_url = base_url.rstrip("/")
        self.page_size = max(1, page_size)
        self.retries = max(0, retries)
        self.backoff = backoff
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "svgrft (compare-epochs)"},
        )
        self.requests = 0

    @classmethod
    def from_settings(cls, settings: Any, **kw: Any) -> TracingClient:
        from svgrft.clients.fireworks import require_key

        return cls(settings.fireworks.tracing_base_url, require_key(settings), timeout=settings.fireworks.timeout, **kw)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TracingClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -------------------------------------------------------------------------------- one request
    def _get(self, path: str, params: list[tuple[str, str]], *, unknown_rollout_ok: bool = False) -> Any:
        """One GET with retries → the JSON body. With ``unknown_rollout_ok`` a 500 that names an unknown
        rollout (the gateway's "No insertion_ids found") returns None at once: no such rollout."""
        import httpx

        attempt = 0
        while True:
            attempt += 1
            self.requests += 1
            r = None
            try:
                r = self._http.get(path, params=params)
            except httpx.TimeoutException:
                err: Exception = NetworkError(
                    f"timed out reading from the tracing gateway at {self.base_url}",
                    hint="check FIREWORKS_TRACING_BASE_URL and your network, then run the same command again",
                )
            except httpx.HTTPError as e:
                err = NetworkError(
                    f"cannot reach the tracing gateway at {self.base_url} ({type(e).__name__})",
                    hint="check FIREWORKS_TRACING_BASE_URL and your network (or use --source replay / --runs)",
                )
                if isinstance(e, httpx.ConnectError) and "refused" in str(e).lower():
                    raise err from None  # nothing listens there: retrying will not help
            else:
                if r.status_code == 200:
                    try:
                        return r.json()
                    except (ValueError, RecursionError):  # not JSON, a 5000-digit number, or absurdly deep
                        err = ApiError(
                            f"the tracing gateway at {self.base_url} answered something that is not JSON",
                            hint="check FIREWORKS_TRACING_BASE_URL points at the tracing gateway",
                            status=200,
                        )
                elif r.status_code in (401, 403):
                    raise AuthError(
                        f"the tracing gateway rejected the API key ({r.status_code})",
                        hint=KEY_HINT,
                        status=r.status_code,
                    )
                elif r.status_code == 404 and unknown_rollout_ok and "rollout" in _detail(r).lower():
                    return None  # a known rollout whose trace the gateway could not fetch
                elif r.status_code == 404:
                    raise NotFoundError(
                        f"the tracing gateway at {self.base_url} has no {path} (404)",
                        hint="check FIREWORKS_TRACING_BASE_URL (default https://tracing.fireworks.ai)",
                        status=404,
                    )
                elif unknown_rollout_ok and r.status_code == 500 and "insertion_id" in _detail(r).lower():
                    return None  # the gateway has never seen this rollout
                elif r.status_code in RETRY_STATUS:
                    err = ApiError(
                        f"the tracing gateway answered {r.status_code} while reading traces, after retries",
                        hint="the gateway may be busy; run the same command again in a minute",
                        status=r.status_code,
                    )
                else:
                    raise ApiError(
                        f"the tracing gateway refused the query ({r.status_code}): {_detail(r)}",
                        hint="check FIREWORKS_TRACING_BASE_URL points at the tracing gateway",
                        status=r.status_code,
                    )
            if attempt > self.retries:
                raise err
            delay = self.backoff * (2 ** (attempt - 1))
            if r is not None and r.status_code in RETRY_STATUS:
                ra = retry_after_seconds(r.headers, MAX_RETRY_AFTER)
                if ra is not None:
                    delay = min(max(delay, ra), MAX_RETRY_AFTER)
            time.sleep(delay)

    def _traces_body(self, body: Any) -> list:
        if not isinstance(body, dict):
            raise ApiError(
                "the tracing gateway answered an unexpected shape (not an object)",
                hint="check FIREWORKS_TRACING_BASE_URL points at the tracing gateway",
            )
        traces = body.get("traces")
        if traces is None:
            traces = []
        if not isinstance(traces, list):
            raise ApiError(
                "the tracing gateway answered an unexpected shape ('traces' is not a list)",
                hint="check FIREWORKS_TRACING_BASE_URL points at the tracing gateway",
            )
        return traces

    def trace(self, rollout_id: str) -> dict | None:
        """The latest trace of one rollout (``/v1/traces/pointwise``), or None when the gateway has none."""
        if not rollout_id:
            raise ConfigError("a trace is read by its rollout id", hint="no rollout id was given")
        params = [("tags", f"rollout_id:{rollout_id}"), ("limit", "1"), *TRACE_PARAMS]
        body = self._get("/v1/traces/pointwise", params, unknown_rollout_ok=True)
        if body is None:
            return None
        traces = [t for t in self._traces_body(body) if isinstance(t, dict)]
        return traces[0] if traces else None

    def traces(
        self, tags: Sequence[str], *, limit: int | None = None, from_ts: float | None = None, to_ts: float | None = None
    ) -> FetchResult:
        """``GET /v1/traces``: every trace with all ``tags`` (one must be ``rollout_id:``), at most ``limit``."""
        if not any(t.startswith("rollout_id:") for t in tags):
            raise ConfigError(
                "the tracing gateway lists traces by rollout id only",
                hint="pass a rollout_id:<id> tag (rollout ids are in the evaluator's records)",
            )
        n = max(1, int(limit or self.page_size))
        params: list[tuple[str, str]] = [("tags", t) for t in tags]
        params.append(("limit", str(n)))
        params.extend(TRACE_PARAMS)
        if from_ts is not None:
            params.append(("from_timestamp", _iso(from_ts)))
        if to_ts is not None:
            params.append(("to_timestamp", _iso(to_ts)))
        before = self.requests
        body = self._get("/v1/traces", params, unknown_rollout_ok=True)
        res = FetchResult(requests=self.requests - before)
        if body is None:
            return res
        traces = [t for t in self._traces_body(body) if isinstance(t, dict)]
        res.traces = traces[:n]
        total = _as_int(body.get("total_traces")) if isinstance(body, dict) else None
        res.truncated = len(traces) >= n or (total is not None and total > len(res.traces))
        return res

    def logs(
        self, tags: Sequence[str], *, limit: int = 1000, hours_back: float | None = None, program: str | None = None
    ) -> list[dict]:
        """``GET /logs`` (``/v1/logs`` where ``/logs`` is 404): entries carrying every tag, newest first."""
        if not tags:
            raise ConfigError("the gateway's log search needs at least one tag", hint="this is a bug in svgrft")
        params: list[tuple[str, str]] = [("tags", t) for t in tags]
        params.append(("limit", str(max(1, int(limit)))))
        if hours_back is not None:
            params.append(("hours_back", f"{max(1.0, float(hours_back)):.0f}"))
        if program:
            params.append(("program", program))
        try:
            body = self._get("/logs", params)
        except NotFoundError:
            body = self._get("/v1/logs", params)
        entries = body.get("entries") if isinstance(body, dict) else None
        if entries is None:
            return []
        if not isinstance(entries, list):
            raise ApiError(
                "the tracing gateway answered an unexpected shape ('entries' is not a list)",
                hint="check FIREWORKS_TRACING_BASE_URL points at the tracing gateway",
            )
        return entries

    def status(self) -> bool:
        """True when the gateway answers (any HTTP status) — for diagnostics."""
        import httpx

        try:
            self._http.get("/v1/status", params={"rollout_id": "svgrft-probe"})
        except httpx.HTTPError:
            return False
        return True


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
