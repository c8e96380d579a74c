"""`svgrft serve` stays available under idle and slow connections (issue #15, finding 1), and the rate limit
cannot be dodged with forwarded headers or starved by failed auth (finding 4).

Load tests are bounded: a few hundred loopback sockets, every wait has a timeout, nothing asserts on the clock.
Attackers connect from other loopback addresses (127.0.0.2, 127.0.0.3) or from the valid client's own address.
"""

from __future__ import annotations

import json
import logging
import socket

import httpx
import pytest

from tests.test_serve import init_body, serve  # noqa: F401 (fixture)

TOKEN = "dos-serve-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def options(**kw):
    from svgrft.config import load_settings
    from svgrft.server.app import options_from_settings

    kw.setdefault("rate_limit", 0)
    return options_from_settings(load_settings(), **kw)


def connect(port: int, source: str = "127.0.0.1", timeout: float = 30.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def closed_by_server(s: socket.socket) -> bytes:
    """Read until the server closes the connection (bounded by the socket timeout); what it sent."""
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
    except ConnectionResetError:
        return data


def test_idle_and_slow_connections_do_not_lock_out_a_valid_init(fw, serve):
    st = serve(options=options(token=TOKEN, max_concurrent=8, read_timeout=2, max_connections_per_client=40))
    socks: list[socket.socket] = []
    try:
        # 300 sockets that never send a byte from ten other addresses, 60 from the valid client's own address
        # (over its cap of 40: the oldest idle ones make room), 20 stuck inside their headers
        socks += [connect(st.port, f"127.0.0.{2 + i % 10}") for i in range(300)]
        socks += [connect(st.port) for _ in range(60)]
        partial = [connect(st.port, "127.0.0.12") for _ in range(20)]
        for s in partial:
            s.sendall(b"POST /init HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode())
        # 10 authenticated requests whose body trickles (one byte of 1000)
        slow = [connect(st.port, "127.0.0.13") for _ in range(10)]
        for s in slow:
            s.sendall(
                b"POST /init HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                + TOKEN.encode()
                + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            )

        r = httpx.post(st.url + "/init", json=init_body(fw), headers=AUTH, timeout=60)
        assert r.status_code == 200, r.text
        assert httpx.get(st.url + "/", timeout=30).status_code == 200

        # the slow bodies got their answer once the read deadline passed; the idle ones were closed
        for s in slow:
            answer = closed_by_server(s)
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["kind"] == "body_timeout"
        for s in partial + socks:
            assert closed_by_server(s) == b""  # closed without an answer (timed out or evicted)
        from svgrft.server.conn import connection_stats

        stats = connection_stats(st.server.server_state)
        assert stats["evicted"] >= 20 and stats["timed_out"] >= 300
        assert st.app.state.cap.in_flight == 0 and st.app.state.cap.peak == 1  # idle sockets are not rollouts
    finally:
        for s in socks + partial + slow:
            s.close()


def test_a_client_over_its_cap_with_only_busy_connections_is_refused(fw, serve):
    st = serve(options=options(max_concurrent=8, read_timeout=5, max_connections_per_client=3))
    busy = [connect(st.port, "127.0.0.2") for _ in range(3)]
    try:
        for s in busy:  # inside a request (headers done, body pending): not evictable
            s.sendall(b"POST /init HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
        assert httpx.get(st.url + "/", timeout=30).status_code == 200  # st.url is 127.0.0.1: another client
        extra = connect(st.port, "127.0.0.2")
        answer = closed_by_server(extra)
        assert answer.startswith(b"HTTP/1.1 503") and b"too many connections" in answer
        extra.close()
    finally:
        for s in busy:
            s.close()


def test_keep_alive_connection_is_reused_then_closed_when_idle(fw, serve):
    st = serve(options=options(read_timeout=1))
    s = connect(st.port)
    try:
        buf = b""
        for _ in range(2):  # two requests on one connection; each answer read whole (head + Content-Length body)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            head, _, buf = buf.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            length = int(
                next(
                    line.split(b":", 1)[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
            )
            while len(buf) < length:
                buf += s.recv(65536)
            buf = buf[length:]
        assert b"HTTP/1.1" not in closed_by_server(s)  # then the server closes it
    finally:
        s.close()


# ------------------------------------------------------------------------------------------ finding 4


def _xff_burst(st, fw, n: int, rotate: bool) -> list[int]:
    codes = []
    for i in range(n):
        headers = {**AUTH, "X-Forwarded-For": f"10.0.{i}.1"} if rotate else AUTH
        codes.append(httpx.post(st.url + "/init", json=init_body(fw), headers=headers, timeout=60).status_code)
    return codes


@pytest.mark.parametrize("trust", [False, True])
def test_forwarded_for_does_not_dodge_the_rate_limit_unless_trusted(fw, serve, caplog, trust):
    caplog.set_level(logging.INFO, logger="svgrft")
    st = serve(options=options(token=TOKEN, rate_limit=0.001, rate_burst=3, trust_proxy_headers=trust))
    codes = _xff_burst(st, fw, 6, rotate=True)
    if trust:  # the operator says a proxy on this machine sets it: each forwarded address has its own budget
        assert codes == [200] * 6
    else:
        assert codes == [200] * 3 + [429] * 3


def test_spoofed_client_labels_are_sanitised_in_logs(fw, serve, caplog):
    caplog.set_level(logging.INFO, logger="svgrft")
    st = serve(options=options(token=TOKEN, trust_proxy_headers=True))
    forged = "1.2.3.4 rollout=forged\u2028INFO fake line"
    r = httpx.post(
        st.url + "/init", json=init_body(fw), headers={"X-Forwarded-For": forged.encode("utf-8")}, timeout=60
    )
    assert r.status_code == 401
    lines = [rec.getMessage() for rec in caplog.records if "rejected /init" in rec.getMessage()]
    assert lines and all("forged" not in line and "fake" not in line for line in lines)
    assert "from invalid" in lines[0]


def test_failed_auth_spends_its_own_budget(fw, serve):
    st = serve(options=options(token=TOKEN, rate_limit=0.001, rate_burst=5))
    wrong = [
        httpx.post(
            st.url + "/init", json=init_body(fw), headers={"Authorization": "Bearer nope-nope-nope"}, timeout=60
        ).status_code
        for _ in range(8)
    ]
    assert wrong == [401] * 5 + [429] * 3  # the flood is rate limited …
    valid = [httpx.post(st.url + "/init", json=init_body(fw), headers=AUTH, timeout=60).status_code for _ in range(5)]
    assert valid == [200] * 5  # … and did not spend the valid requests' budget
