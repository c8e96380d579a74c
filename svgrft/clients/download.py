"""GET a signed download URL (a dataset file Fireworks hands out), bounded in size, over httpx."""

from __future__ import annotations

from svgrft.errors import ApiError, NetworkError


def fetch_signed(url: str, *, max_bytes: int, timeout: float = 120.0) -> bytes:
    """The body of ``url`` (no auth header: the URL is signed). More than ``max_bytes`` is an error."""
    import httpx

    host = httpx.URL(url).host or "?"
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as r:
            if r.status_code != 200:
                raise ApiError(f"downloading the dataset failed ({r.status_code} from {host})",
                               hint="run the same command again, or pass the job's JSONL with --dataset",
                               status=r.status_code)
            chunks, size = [], 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ApiError(f"the dataset download from {host} is larger than {max_bytes // 2**20} MiB",
                                   hint="pass the job's JSONL with --dataset")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as e:
        raise NetworkError(f"cannot download the dataset from {host} ({type(e).__name__})",
                           hint="check your network, or pass the job's JSONL with --dataset") from None
