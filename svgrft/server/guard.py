"""Request guards of the rollout server: the client's label, shared-secret check, model-host allow-list,
per-client rate limiting and the concurrent-rollout cap.

Pure standard library (no eval_protocol, no web framework), so it is cheap to import and to test.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

# Hosts a model_base_url may point at when nothing else is allowed: the Fireworks tracing
# gateway (the normal RFT case) and the Fireworks inference API.
DEFAULT_MODEL_HOSTS: tuple[str, ...] = ("tracing.fireworks.ai", "api.fireworks.ai")

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def _plain_host(host: str) -> bool:
    """An ASCII DNS name (letters, digits, ``-``, ``_``; labels of 1–63) or an IP literal."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    return 0 < len(host) <= 253 and all(_LABEL.fullmatch(label) for label in host.split("."))


def client_label(host: object) -> str:
    """The client address as it may appear in logs and rate-limit keys: a normalised IP address, or
    ``"invalid"`` (a forwarded header can carry anything, line breaks included)."""
    if not isinstance(host, str) or not host or len(host) > 64:
        return "unknown" if not host else "invalid"
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return "invalid"


def check_bearer(header: str | None, token: str) -> bool:
    """True when ``header`` is ``Bearer <token>`` (constant-time comparison)."""
    if not header:
        return False
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode("utf-8", "replace"), token.encode("utf-8"))


@dataclass(frozen=True)
class HostRule:
    host: str  # lower-case host name or IP, or "*.suffix"
    port: int | None = None

    def matches(self, host: str, port: int | None) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host.startswith("*."):
            suffix = self.host[1:]  # ".example.com"
            return host.endswith(suffix) and len(host) > len(suffix)
        return host == self.host


def parse_host_rule(entry: str) -> HostRule:
    """``host``, ``host:port``, ``*.domain`` or a URL (its host[:port] is used)."""
    raw = entry.strip()
    if not raw:
        raise ValueError("empty host")
    if "@" in raw:
        raise ValueError(f"invalid host {entry!r} (no user-info)")
    try:  # a bare IPv6 literal ("::1") has colons that are not a port
        return HostRule(str(ipaddress.ip_address(raw.strip("[]"))), None)
    except ValueError:
        pass
    if "://" in raw:
        parts = urlsplit(raw)
        host, port = (parts.hostname or ""), parts.port
    else:
        parts = urlsplit("//" + raw)
        try:
            host, port = (parts.hostname or ""), parts.port
        except ValueError:
            raise ValueError(f"invalid host {entry!r}") from None
        if parts.path not in ("", "/"):
            raise ValueError(f"invalid host {entry!r} (a host name, host:port or *.domain)")
    host = host.lower().rstrip(".")
    if not host or any(c in host for c in " /@?#"):
        raise ValueError(f"invalid host {entry!r}")
    return HostRule(host, port)


class HostAllowList:
    """Which hosts a request's ``model_base_url`` may point at.

    A URL is accepted when its host (and port, if the rule names one) matches a rule, it has no
    user-info part, and it uses https — plain http is accepted only for loopback hosts, so an API
    key never travels unencrypted over a network.
    """

    def __init__(self, entries: Iterable[str] = DEFAULT_MODEL_HOSTS):
        self.rules = [parse_host_rule(e) for e in entries]

    def describe(self) -> list[str]:
        return [r.host + (f":{r.port}" if r.port is not None else "") for r in self.rules]

    def check(self, url: str) -> str | None:
        """None when ``url`` is allowed, else a one-line reason."""
        if not isinstance(url, str) or len(url) > 4096:
            return "model_base_url is not a usable URL"
        if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
            return "model_base_url contains whitespace or control characters"
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return "model_base_url is not a valid URL"
        if parts.scheme not in ("http", "https"):
            return "model_base_url must start with https:// (or http:// for a loopback host)"
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            return "model_base_url must not contain credentials"
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            return "model_base_url has no host"
        if not _plain_host(host):
            # urlsplit keeps "\\", ";", "%2f" or Unicode dots in a host that the HTTP client then parses (or
            # IDNA-maps) differently: only plain DNS names and IP literals are compared with the rules.
            return "model_base_url host must be a plain DNS name or IP address"
        try:  # one spelling per address: [0::1] is [::1]
            host = str(ipaddress.ip_address(host))
        except ValueError:
            pass
        if parts.query or parts.fragment:
            return "model_base_url must not have a query or fragment"
        if not any(rule.matches(host, port) for rule in self.rules):
            return f"model_base_url host '{host}' is not in the allow-list"
        if parts.scheme == "http" and not is_loopback(host):
            return "model_base_url must use https:// for a non-loopback host"
        return None


class RateLimiter:
    """Token bucket per client: ``rate`` requests per second sustained, ``burst`` at once.

    ``rate <= 0`` disables it. The table of clients is bounded (least recently seen dropped).
    """

    def __init__(self, rate: float, burst: int, max_clients: int = 10_000, clock=time.monotonic):
        self.rate = float(rate)
        self.burst = max(1, int(burst)) if rate > 0 else 0
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last time)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, client: str) -> float:
        """Take one token for ``client``: 0.0 when allowed, else seconds until a token is free."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                tokens -= 1.0
                wait = 0.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens, now)  # re-inserted: dict order = recency
            if len(self._buckets) > self.max_clients:
                for key in list(self._buckets)[: len(self._buckets) - self.max_clients]:
                    del self._buckets[key]
            return wait


def retry_after_header(seconds: float) -> str:
    """Whole seconds, rounded up, at least 1 (what the HTTP spec wants)."""
    return str(max(1, math.ceil(seconds)))


class ConcurrencyCap:
    """Counts in-flight rollouts; ``try_enter`` refuses beyond ``limit`` (0 = unlimited)."""

    def __init__(self, limit: int):
        self.limit = max(0, int(limit))
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        with self._lock:
            if self.limit and self.in_flight >= self.limit:
                return False
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return True

    def leave(self) -> None:
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)
