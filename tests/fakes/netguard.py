"""Loopback-only network guard for the test session.

``install()`` adds a ``sys.addaudithook`` hook (idempotent; audit hooks cannot be removed) that
raises :class:`NetguardError` -- a ``ConnectionRefusedError``, so HTTP clients treat it like an
unreachable host -- for:

* ``socket.connect`` / ``socket.sendto`` to an IPv4/IPv6 address outside 127.0.0.0/8, ``::1``
  (also the v4-mapped ``::ffff:127.x``) and the unspecified address;
* ``socket.getaddrinfo`` / ``socket.gethostbyname`` for a host that is not ``localhost``,
  the machine's own hostname or a loopback literal (so no DNS query leaves the box).

Unix sockets, socketpairs, pipes (the Playwright driver talks over stdio pipes) and any
non-IP address family are untouched.  The hook only looks at events starting with ``socket.``
so its cost is one string comparison per audit event.  Blocked attempts are appended to
:data:`blocked` (``(event, target)``) so a session can report them.  ``enabled`` can be set to
False temporarily (e.g. a test that proves the guard works).
"""

from __future__ import annotations

import ipaddress
import socket
import sys

blocked: list = []
enabled = True
_installed = False
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}


class NetguardError(ConnectionRefusedError):
    """A test tried to reach a non-loopback address."""


def _is_loopback_host(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host == _own_hostname()
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


_hostname_cache: list = []


def _own_hostname() -> str:
    if not _hostname_cache:
        try:
            _hostname_cache.append(socket.gethostname().lower())
        except Exception:
            _hostname_cache.append("localhost")
    return _hostname_cache[0]


def allowed(address) -> bool:
    """Is a ``socket.connect`` address allowed?  Non-(host, port) addresses always are."""
    if isinstance(address, tuple) and address and isinstance(address[0], (str, bytes)):
        return _is_loopback_host(address[0])
    return True  # AF_UNIX path (str/bytes), netlink (pid, groups), ...


def _hook(event: str, args: tuple) -> None:
    if not event.startswith("socket.") or not enabled:
        return
    if event == "socket.connect" or event == "socket.sendto":
        address = args[1] if len(args) > 1 else None
        sock = args[0] if args else None
        family = getattr(sock, "family", None)
        if family is not None and family not in (socket.AF_INET, socket.AF_INET6):
            return
        if not allowed(address):
            blocked.append((event, repr(address)))
            raise NetguardError(f"netguard: tests may only connect to loopback, not {address!r}")
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        host = args[0] if args else None
        if not _is_loopback_host(host):
            blocked.append((event, repr(host)))
            raise NetguardError(f"netguard: tests may only resolve loopback names, not {host!r}")


def install() -> None:
    global _installed
    if _installed:
        return
    _own_hostname()  # resolve before the hook exists
    sys.addaudithook(_hook)
    _installed = True


def is_installed() -> bool:
    return _installed
