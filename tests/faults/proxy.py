"""A small asyncio TCP fault proxy for tests: latency, resets, lost responses, black holes.

``tc netem`` does not work on these kernels and Toxiproxy has no server package here, so the
suite carries its own. It listens on 127.0.0.1 (an ephemeral port), forwards to an upstream on
127.0.0.1, and applies one :class:`Fault` to each new connection, switchable while it runs::

    with FaultProxy(upstream_port=8000) as proxy:
        proxy.set(Fault.latency(0.2))
        ...                                  # clients talk to proxy.port
        proxy.set(Fault.drop_response())     # the request reaches the server, the answer never
        proxy.set(Fault.black_hole())        # connections hang, nothing is forwarded
        proxy.set(Fault.none())

It runs its own event loop in a thread so synchronous tests (and other processes) can use it.
Only loopback addresses are accepted, upstream and listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fault:
    """What the proxy does to a connection.

    - ``latency``: seconds added before each chunk is forwarded, both ways.
    - ``reset_after_bytes``: after this many bytes from upstream reached the client, reset
      the client connection (RST) and close upstream.
    - ``drop_response``: forward the request, read the whole upstream answer, then reset the
      client without sending any of it (the server committed; the client never hears).
    - ``black_hole``: accept, read and discard; never forward, never answer.
    - ``refuse``: close the client at once with a reset, as a dead server would.
    """

    latency: float = 0.0
    reset_after_bytes: int | None = None
    drop_response: bool = False
    black_hole: bool = False
    refuse: bool = False

    @classmethod
    def none(cls) -> Fault:
        return cls()

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls(latency=seconds)

    @classmethod
    def reset_after(cls, n_bytes: int) -> Fault:
        return cls(reset_after_bytes=n_bytes)

    @classmethod
    def lose_response(cls) -> Fault:
        return cls(drop_response=True)

    @classmethod
    def hang(cls) -> Fault:
        return cls(black_hole=True)

    @classmethod
    def down(cls) -> Fault:
        return cls(refuse=True)


def _require_loopback(host: str) -> None:
    if not ipaddress.ip_address(socket.gethostbyname(host)).is_loopback:
        raise ValueError(f"the fault proxy only talks to loopback addresses, not {host}")


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN, as a crashed peer or a cut cable looks to the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
    writer.transport.abort()


@dataclass
class _Stats:
    connections: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    dropped_responses: int = 0
    resets: int = 0


@dataclass
class FaultProxy:
    upstream_port: int
    upstream_host: str = "127.0.0.1"
    listen_host: str = "127.0.0.1"
    port: int = 0
    stats: _Stats = field(default_factory=_Stats)

    def __post_init__(self) -> None:
        _require_loopback(self.upstream_host)
        _require_loopback(self.listen_host)
        self._fault = Fault.none()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task] = set()

    # --- control, from any thread ---------------------------------------------------------

    def set(self, fault: Fault) -> None:
        """Apply ``fault`` to connections accepted from now on."""
        with self._lock:
            self._fault = fault

    @property
    def fault(self) -> Fault:
        with self._lock:
            return self._fault

    @property
    def url(self) -> str:
        return f"http://{self.listen_host}:{self.port}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(
            asyncio.start_server(self._handle, self.listen_host, self.port)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        fault = self.fault
        self.stats.connections += 1
        try:
            if fault.refuse:
                self.stats.resets += 1
                _reset(client_writer)
                return
            if fault.black_hole:
                while await client_reader.read(65536):
                    pass
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port
                )
            except OSError:
                self.stats.resets += 1
                _reset(client_writer)
                return
            try:
                if fault.drop_response:
                    await self._drop_response(client_reader, client_writer, up_reader, up_writer)
                else:
                    await asyncio.gather(
                        self._pipe(client_reader, up_writer, fault, upstream=True),
                        self._pipe(up_reader, client_writer, fault, upstream=False),
                    )
            finally:
                up_writer.close()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if not client_writer.is_closing():
                client_writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        fault: Fault,
        *,
        upstream: bool,
    ) -> None:
        sent = 0
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                if fault.latency:
                    await asyncio.sleep(fault.latency)
                if not upstream and fault.reset_after_bytes is not None:
                    room = fault.reset_after_bytes - sent
                    if len(chunk) >= room:
                        if room > 0:
                            writer.write(chunk[:room])
                            await writer.drain()
                        self.stats.bytes_down += max(room, 0)
                        self.stats.resets += 1
                        _reset(writer)
                        return
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
                if upstream:
                    self.stats.bytes_up += len(chunk)
                else:
                    self.stats.bytes_down += len(chunk)
        finally:
            if upstream and not writer.is_closing():
                with contextlib.suppress(OSError):
                    writer.write_eof()

    async def _drop_response(
        self,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        """Forward the request; once the server starts answering, wait for it to finish, then
        reset the client so the answer is lost after the server did the work."""
        forward = asyncio.ensure_future(
            self._pipe(client_reader, up_writer, Fault.none(), upstream=True)
        )
        try:
            first = await up_reader.read(65536)
            received = len(first)
            # Drain the rest of the answer (the server has committed by the time it answers).
            with contextlib.suppress(TimeoutError):
                while True:
                    chunk = await asyncio.wait_for(up_reader.read(65536), timeout=0.2)
                    if not chunk:
                        break
                    received += len(chunk)
            self.stats.dropped_responses += 1 if received else 0
        finally:
            forward.cancel()
            self.stats.resets += 1
            _reset(client_writer)
