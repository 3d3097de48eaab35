"""The network way in for syslog: UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425).

Messages are buffered and handed to a synchronous sink in batches, in receive
order, one batch at a time, from a worker thread so that a database write never
blocks the event loop. A slow sink makes the buffer grow up to a cap; beyond it
TCP and TLS connections stop being read (the senders feel the back-pressure and
nothing is lost) while UDP datagrams, which have no back-pressure, are dropped
and counted in `dropped`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from portcullis.core.clock import Clock, SystemClock
from portcullis.events.framing import DEFAULT_MAX_MESSAGE, FrameDecoder, FramingError

log = logging.getLogger(__name__)

UDP = "udp"
TCP = "tcp"
TLS = "tls"
# Bursts outrun the event loop; the kernel's default UDP buffer (~200 KiB) overflows silently.
_UDP_RCVBUF = 8 * 1024 * 1024
_RETRY_MAX_SECONDS = 5.0


class Received(NamedTuple):
    """One syslog message as it came off the wire."""

    peer: str  # "ip:port", IPv6 as "[ip]:port"
    data: bytes  # the message without its framing
    transport: str  # UDP, TCP or TLS
    received: datetime  # aware UTC, when the octets were read


Sink = Callable[[list[Received]], object]
ErrorHandler = Callable[[str, str], object]


def _log_error(peer: str, reason: str) -> None:
    log.warning("syslog from %s: %s", peer, reason)


def _peer_name(addr: Any) -> str:
    if not isinstance(addr, tuple) or len(addr) < 2:
        return str(addr)
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def server_tls_context(
    cert_file: str | Path, key_file: str | Path, client_ca: str | Path | None = None
) -> ssl.SSLContext:
    """A TLS 1.2+ server context; with `client_ca`, senders must present a certificate it signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the TLS certificate {cert_file} with key {key_file}: {exc}") from exc
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=str(client_ca))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot load the client CA file {client_ca}: {exc}") from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class SyslogReceiver:
    """Listens for syslog and feeds batches of `Received` to `sink`."""

    def __init__(
        self,
        sink: Sink,
        *,
        batch_size: int = 5000,
        flush_interval: float = 0.5,
        max_buffer: int = 1_000_000,
        max_message: int = DEFAULT_MAX_MESSAGE,
        on_error: ErrorHandler | None = None,
        clock: Clock | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be positive, got {flush_interval}")
        if max_buffer < batch_size:
            raise ValueError(f"max_buffer ({max_buffer}) must be at least batch_size ({batch_size})")
        if max_message < 1:
            raise ValueError(f"max_message must be at least 1, got {max_message}")
        self._sink = sink
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_buffer = max_buffer
        self.max_message = max_message
        self._on_error: ErrorHandler = on_error or _log_error
        self._clock: Clock = clock or SystemClock()
        self.udp_port: int | None = None
        self.tcp_port: int | None = None
        self.tls_port: int | None = None
        # Counters, readable at any time.
        self.received = 0
        self.dropped = 0
        self.framing_errors = 0
        self.sink_errors = 0
        self._buffer: list[Received] = []
        # (messages accepted before this chunk, loop time it arrived): when the oldest waiting message came.
        self._arrivals: deque[tuple[int, float]] = deque()
        self._accepted = 0
        self._delivered = 0
        self._dropping = 0
        self._servers: list[asyncio.Server] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._connections: set[_StreamConnection] = set()
        self._paused: set[_StreamConnection] = set()
        self._wake: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def pending(self) -> int:
        """Messages received and not yet handed to the sink."""
        return len(self._buffer)

    async def start(
        self,
        udp_port: int | None = None,
        tcp_port: int | None = None,
        tls_port: int | None = None,
        host: str = "127.0.0.1",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Bind the given ports (0: any free port, then read `udp_port` and friends); None leaves one off."""
        if self._flusher is not None:
            raise RuntimeError("this SyslogReceiver was already started")
        if udp_port is None and tcp_port is None and tls_port is None:
            raise ValueError("start() needs at least one of udp_port, tcp_port, tls_port")
        if (tls_port is None) != (ssl_context is None):
            raise ValueError("tls_port and ssl_context go together: give both or neither")
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._flusher = loop.create_task(self._run_flusher(), name="syslog-flusher")
        try:
            if udp_port is not None:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _DatagramReceiver(self), local_addr=(host, udp_port)
                )
                self._udp = transport
                sock = transport.get_extra_info("socket")
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _UDP_RCVBUF)
                except OSError:
                    log.warning("could not enlarge the UDP receive buffer; bursts may be lost by the kernel")
                self.udp_port = sock.getsockname()[1]
            if tcp_port is not None:
                server = await loop.create_server(lambda: _StreamConnection(self, TCP), host, tcp_port)
                self._servers.append(server)
                self.tcp_port = server.sockets[0].getsockname()[1]
            if tls_port is not None:
                server = await loop.create_server(lambda: _StreamConnection(self, TLS), host, tls_port, ssl=ssl_context)
                self._servers.append(server)
                self.tls_port = server.sockets[0].getsockname()[1]
        except BaseException:
            await self.stop()
            raise
        log.info("syslog receiver on %s: udp=%s tcp=%s tls=%s", host, self.udp_port, self.tcp_port, self.tls_port)

    async def stop(self, timeout: float | None = None) -> None:
        """Stop listening, close connections and hand everything buffered to the sink.

        If the sink keeps failing, this waits for it; with `timeout`, it gives up
        after that many seconds and raises TimeoutError naming what was not delivered.
        """
        if self._flusher is None or self._closing:
            return
        self._closing = True
        for server in self._servers:
            server.close()
        if self._udp is not None:
            self._udp.close()
        for connection in list(self._connections):
            connection.shutdown()
        for server in self._servers:
            await server.wait_closed()
        assert self._wake is not None
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._flusher), timeout)
        except TimeoutError:
            self._flusher.cancel()
            raise TimeoutError(
                f"syslog receiver stopped with {len(self._buffer)} messages not delivered: the sink did not finish "
                f"within {timeout} s"
            ) from None

    # Called from the protocols, on the event loop.

    def _accept(self, peer: str, frames: list[bytes], transport: str, connection: _StreamConnection | None) -> None:
        buffer = self._buffer
        was_empty = not buffer
        self._arrivals.append((self._accepted, asyncio.get_running_loop().time()))
        self._accepted += len(frames)
        now = self._clock.now()
        buffer.extend([Received(peer, frame, transport, now) for frame in frames])
        self.received += len(frames)
        if was_empty or len(buffer) >= self._batch_size:
            assert self._wake is not None
            self._wake.set()
        if connection is not None and len(buffer) >= self._max_buffer and connection not in self._paused:
            if not self._paused:
                log.warning("syslog buffer full (%d messages): pausing TCP and TLS reads", len(buffer))
            connection.pause()
            self._paused.add(connection)

    def _accept_datagram(self, data: bytes, addr: Any) -> None:
        if data[-1:] in (b"\n", b"\0"):
            # Many senders end a datagram with LF or NUL although RFC 5426 needs no trailer.
            data = data.rstrip(b"\r\n\0")
        if not data:
            return
        if len(self._buffer) >= self._max_buffer:
            if not self._dropping:
                log.warning("syslog buffer full (%d messages): dropping UDP datagrams", len(self._buffer))
            self._dropping += 1
            self.dropped += 1
            return
        if len(data) > self.max_message:
            self._report(_peer_name(addr), f"datagram of {len(data)} octets exceeds the maximum {self.max_message}")
            return
        self._accept(_peer_name(addr), [data], UDP, None)

    def _report(self, peer: str, reason: str) -> None:
        self.framing_errors += 1
        try:
            self._on_error(peer, reason)
        except Exception:
            log.exception("on_error handler failed for %s: %s", peer, reason)

    # The single consumer: batches leave in receive order, one at a time.

    async def _run_flusher(self) -> None:
        assert self._wake is not None
        wake = self._wake
        loop = asyncio.get_running_loop()
        arrivals = self._arrivals
        while True:
            buffer = self._buffer
            if not buffer:
                if self._closing:
                    return
                wake.clear()
                await wake.wait()
                continue
            if len(buffer) < self._batch_size and not self._closing:
                remaining = arrivals[0][1] + self._flush_interval - loop.time()
                if remaining > 0:
                    wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), remaining)
                    continue
            batch = buffer[: self._batch_size]
            del buffer[: self._batch_size]
            self._delivered += len(batch)
            while len(arrivals) > 1 and arrivals[1][0] <= self._delivered:
                arrivals.popleft()
            if not buffer:
                arrivals.clear()
            await self._deliver(batch)
            self._release_pressure()

    async def _deliver(self, batch: list[Received]) -> None:
        delay = 0.1
        while True:
            try:
                await asyncio.to_thread(self._sink, batch)
                return
            except Exception:
                self.sink_errors += 1
                log.exception("syslog sink failed on a batch of %d messages; retrying in %.1f s", len(batch), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_SECONDS)

    def _release_pressure(self) -> None:
        if len(self._buffer) > self._max_buffer // 2:
            return
        if self._dropping:
            log.warning("syslog buffer has room again; %d UDP datagrams were dropped", self._dropping)
            self._dropping = 0
        if self._paused:
            for connection in self._paused:
                connection.resume()
            self._paused.clear()


class _DatagramReceiver(asyncio.DatagramProtocol):
    def __init__(self, receiver: SyslogReceiver) -> None:
        self._receiver = receiver

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._receiver._accept_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.warning("syslog UDP socket error: %s", exc)


class _StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection: its own framing decoder and peer name."""

    def __init__(self, receiver: SyslogReceiver, transport_name: str) -> None:
        self._receiver = receiver
        self._name = transport_name
        self._decoder = FrameDecoder(receiver.max_message)
        self._transport: asyncio.Transport | None = None
        self._peer = "?"
        self._ended = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._peer = _peer_name(transport.get_extra_info("peername"))
        if self._receiver._closing:
            # A TLS handshake that finished after stop() began: the flusher may be gone already.
            self._ended = True
            transport.abort()
            return
        self._receiver._connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._ended:
            return
        try:
            frames = self._decoder.feed(data)
        except FramingError as exc:
            self._fail(exc)
            return
        if frames:
            self._receiver._accept(self._peer, frames, self._name, self)

    def eof_received(self) -> bool:
        self._end_of_stream()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._receiver._connections.discard(self)
        self._receiver._paused.discard(self)
        if self._ended:
            return
        if exc is None:
            self._end_of_stream()
        else:
            self._abandon(f"connection lost ({exc})")

    def pause(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def shutdown(self) -> None:
        """The receiver is stopping: what is half-received cannot be completed."""
        self._abandon("receiver stopped")
        if self._transport is not None:
            # abort(): no writes are pending, and a TLS close must not wait on the peer.
            self._transport.abort()

    def _end_of_stream(self) -> None:
        self._ended = True
        try:
            frames = self._decoder.close()
        except FramingError as exc:
            self._receiver._report(self._peer, f"{self._name}: {exc}")
            return
        if frames:
            self._receiver._accept(self._peer, frames, self._name, None)

    def _abandon(self, why: str) -> None:
        if self._ended:
            return
        self._ended = True
        if self._decoder.buffered:
            self._receiver._report(
                self._peer, f"{self._name}: {why} with {self._decoder.buffered} octets of an incomplete message"
            )

    def _fail(self, exc: FramingError) -> None:
        self._ended = True
        if exc.frames:
            self._receiver._accept(self._peer, exc.frames, self._name, None)
        self._receiver._report(self._peer, f"{self._name}: {exc}; connection closed")
        if self._transport is not None:
            self._transport.close()


def run_receiver(
    sink: Sink,
    *,
    host: str = "127.0.0.1",
    udp_port: int | None = None,
    tcp_port: int | None = None,
    tls_port: int | None = None,
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
    tls_client_ca: str | Path | None = None,
    ready: Callable[[SyslogReceiver], object] | None = None,
    **options: Any,
) -> SyslogReceiver:
    """Receive until SIGINT or SIGTERM, then flush and return the (stopped) receiver.

    `options` go to SyslogReceiver (batch_size, flush_interval, on_error, ...).
    `ready` is called with the started receiver, e.g. to print the bound ports.
    Must run in the main thread, where signals are delivered.
    """
    ssl_context = None
    if tls_port is not None:
        if tls_cert is None or tls_key is None:
            raise ValueError("tls_port needs tls_cert and tls_key")
        ssl_context = server_tls_context(tls_cert, tls_key, tls_client_ca)
    receiver = SyslogReceiver(sink, **options)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        try:
            await receiver.start(udp_port, tcp_port, tls_port, host=host, ssl_context=ssl_context)
            if ready is not None:
                ready(receiver)
            await stopping.wait()
            log.info("syslog receiver stopping: flushing %d buffered messages", receiver.pending)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await receiver.stop()

    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        asyncio.run(main())
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return receiver
