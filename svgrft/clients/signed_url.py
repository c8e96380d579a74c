"""Signed URLs Fireworks hands out (dataset files, evaluator uploads, build logs), over httpx.

The URLs carry their own signature, so no Fireworks credentials are sent. Downloads are bounded in size;
the upload is retried on 408/429/5xx and network errors, honouring Retry-After
(:func:`svgrft.clients.retry.retry_after_seconds`).
"""

from __future__ import annotations

import time

from svgrft.core.plural import plural
from svgrft.errors import ApiError, NetworkError


def fetch_signed(url: str, *, max_bytes: int, timeout: float = 120.0) -> bytes:
    """The body of ``url`` (a dataset file). More than ``max_bytes`` is an error."""
    import httpx

    host = httpx.URL(url).host or "?"
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as r:
            if r.status_code != 200:
                raise ApiError(
                    f"downloading the dataset failed ({r.status_code} from {host})",
                    hint="run the same command again, or pass the job's JSONL with --dataset",
                    status=r.status_code,
                )
            chunks, size = [], 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ApiError(
                        f"the dataset download from {host} is larger than {max_bytes // 2**20} MiB",
                        hint="pass the job's JSONL with --dataset",
                    )
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as e:
        raise NetworkError(
            f"cannot download the dataset from {host} ({type(e).__name__})",
            hint="check your network, or pass the job's JSONL with --dataset",
        ) from None


def read_signed_text(url: str, *, timeout: float = 30.0) -> str | None:
    """The text at ``url`` (a build log), or None when it cannot be read (any HTTP or network failure)."""
    import httpx

    try:
        r = httpx.get(url, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError:
        return None
    return r.text if r.status_code == 200 else None


def put_signed(
    url: str, data: bytes, *, what: str, attempts: int = 4, backoff: float = 1.0, timeout: float = 600.0
) -> None:
    """PUT ``data`` (``what``, e.g. "the evaluator tarball") to the signed URL; 408/429/5xx and network errors
    are retried ``attempts`` times in all with exponential backoff (or the server's Retry-After, at most 30 s)."""
    import httpx

    from svgrft.clients.retry import retry_after_seconds

    headers = {"Content-Type": "application/octet-stream", "X-Goog-Content-Length-Range": f"{len(data)},{len(data)}"}
    last = ""
    for attempt in range(attempts):
        try:
            r = httpx.put(url, content=data, headers=headers, timeout=timeout)
        except httpx.HTTPError as e:
            last = f"{type(e).__name__}"
            r = None
        if r is not None:
            if r.status_code < 300:
                return
            last = f"HTTP {r.status_code}"
            if not (r.status_code in (408, 429) or r.status_code >= 500):
                raise ApiError(
                    f"uploading {what} failed ({last})",
                    hint="run the command again; if it persists, check the Fireworks status page",
                    status=r.status_code,
                )
        if attempt + 1 < attempts:
            delay = backoff * (2**attempt)
            wait = retry_after_seconds(r.headers, cap=30.0) if r is not None else None
            if wait is not None:
                delay = wait
            time.sleep(delay)
    raise NetworkError(
        f"uploading {what} failed after {plural(attempts, 'attempt')} ({last})",
        hint="check your network and run the same command again; nothing half-built is kept",
    )
