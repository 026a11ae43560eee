"""The fault proxy itself must be trustworthy before other tests rely on it."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.faults.proxy import Fault, FaultProxy

BODY = b"x" * 20_000


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: list[str] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[ThreadingHTTPServer]:
    _Handler.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: ThreadingHTTPServer) -> Iterator[FaultProxy]:
    with FaultProxy(upstream_port=upstream.server_address[1]) as running:
        yield running


def _post(port: int, timeout: float = 5.0) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", "/push", body=b'{"a": 1}')
        return connection.getresponse().read()
    finally:
        connection.close()


def test_without_a_fault_requests_pass_through(proxy: FaultProxy) -> None:
    assert _post(proxy.port) == BODY
    assert _Handler.hits == ["/push"]


def test_latency_delays_the_answer(proxy: FaultProxy) -> None:
    proxy.set(Fault.slow(0.3))
    started = time.monotonic()
    assert _post(proxy.port) == BODY
    assert time.monotonic() - started >= 0.3


def test_reset_after_bytes_cuts_the_answer_short(proxy: FaultProxy) -> None:
    proxy.set(Fault.reset_after(1000))
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _post(proxy.port)
    assert _Handler.hits == ["/push"]


def test_lost_response_reaches_the_server_but_not_the_client(proxy: FaultProxy) -> None:
    proxy.set(Fault.lose_response())
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _post(proxy.port)
    assert _Handler.hits == ["/push"], "the server must have done the work"
    assert proxy.stats.dropped_responses == 1


def test_black_hole_never_forwards_and_never_answers(proxy: FaultProxy) -> None:
    proxy.set(Fault.hang())
    with pytest.raises(TimeoutError):
        _post(proxy.port, timeout=0.5)
    assert _Handler.hits == []


def test_down_resets_at_once_without_reaching_the_server(proxy: FaultProxy) -> None:
    proxy.set(Fault.down())
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _post(proxy.port)
    assert _Handler.hits == []


def test_faults_switch_while_running(proxy: FaultProxy) -> None:
    proxy.set(Fault.down())
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _post(proxy.port)
    proxy.set(Fault.none())
    assert _post(proxy.port) == BODY


def test_only_loopback_targets_are_accepted() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(upstream_port=80, upstream_host="10.0.0.1")
