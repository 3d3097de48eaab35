"""The syslog receiver over real sockets on 127.0.0.1, and its framing decoder on its own."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import random
import signal
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from portcullis.core.clock import FrozenClock
from portcullis.events.framing import NON_TRANSPARENT, OCTET_COUNTING, FrameDecoder, FramingError
from portcullis.events.syslog_server import Received, SyslogReceiver, run_receiver, server_tls_context

T = TypeVar("T")
NOW = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 10)

    return asyncio.run(bounded())


def octet(message: bytes) -> bytes:
    """RFC 6587 octet-counting frame, written here independently of the decoder."""
    return str(len(message)).encode() + b" " + message


def decode_all(stream: bytes, cuts: list[int], max_message: int = 65536) -> list[bytes]:
    decoder = FrameDecoder(max_message)
    out: list[bytes] = []
    start = 0
    for cut in [*sorted(cuts), len(stream)]:
        out += decoder.feed(stream[start:cut])
        start = cut
    return out + decoder.close()


# The decoder, fed by hand.


def test_octet_counting_hand_computed() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"5 hello6 world!") == [b"hello", b"world!"]
    assert decoder.mode == OCTET_COUNTING
    # "<13>café" is 9 octets in UTF-8; the count is in octets, not characters.
    assert decoder.feed(b"9 <13>caf\xc3\xa9") == [b"<13>caf\xc3\xa9"]
    # Transparent: LF, CR and spaces inside a counted frame are content.
    assert decoder.feed(b"7 a\nb c d7 <13>a\r\n") == [b"a\nb c d", b"<13>a\r\n"]
    assert decoder.close() == []


def test_octet_counting_byte_by_byte_keeps_partial_data() -> None:
    decoder = FrameDecoder()
    got: list[bytes] = []
    for i, byte in enumerate(b"12 <13>abcdefgh3 xyz"):
        got += decoder.feed(bytes([byte]))
        if i == 14:  # the last octet of the first frame
            assert got == [b"<13>abcdefgh"]
        if i < 14:
            assert got == []
    assert got == [b"<13>abcdefgh", b"xyz"]
    assert decoder.buffered == 0


def test_non_transparent_trailers() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"<13>a\r\n<13>b\n<13>c\x00\n\n<13>d") == [b"<13>a", b"<13>b", b"<13>c"]
    assert decoder.mode == NON_TRANSPARENT
    assert decoder.buffered == len(b"<13>d")
    assert decoder.feed(b"ef\n") == [b"<13>def"]
    assert decoder.feed(b"<13>g") == []
    # The sender closing the connection ends its last message.
    assert decoder.close() == [b"<13>g"]


def test_error_names_position_and_keeps_good_frames() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"5 hel") == []
    with pytest.raises(FramingError) as caught:
        decoder.feed(b"lo<13>x")
    assert caught.value.offset == 7
    assert caught.value.frames == [b"hello"]
    assert "expected an octet count" in str(caught.value)
    assert "b'<13>x'" in str(caught.value)
    with pytest.raises(FramingError, match="already failed"):
        decoder.feed(b"5 hello")


@pytest.mark.parametrize(
    ("stream", "offset", "words"),
    [
        (b"101 " + b"x" * 101, 0, "octet count 101 exceeds the maximum message size 100"),
        (b"3 abc1000", 5, "longer than 3 digits"),
        (b"05 hello", 0, "starts with 0"),
        (b"3 abc 3 abc", 5, "expected an octet count"),
        (b"<1>a\n<13>abcdefghijk", 5, "no LF within the maximum message size 10"),
        (b"<1>a\n<13>abcdefghijk\n", 5, "message of 15 octets exceeds the maximum message size 10"),
    ],
)
def test_bad_streams(stream: bytes, offset: int, words: str) -> None:
    max_message = 100 if stream[:1].isdigit() else 10
    with pytest.raises(FramingError) as caught:
        FrameDecoder(max_message).feed(stream)
    assert caught.value.offset == offset
    assert words in str(caught.value)


def test_stream_ending_inside_a_counted_frame() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"4 abcd10 <13>abc") == [b"abcd"]
    with pytest.raises(FramingError, match=r"ended inside an octet-counted frame \(10 octets pending\)") as caught:
        decoder.close()
    assert caught.value.offset == 6


messages = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=20)
lines = st.lists(
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"").replace(b"\0", b"").rstrip(b"\r")),
    min_size=1,
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(messages, st.lists(st.integers(min_value=0, max_value=7000), max_size=30))
def test_octet_counting_survives_any_split(msgs: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(octet(m) for m in msgs)
    assert decode_all(stream, [c for c in cuts if c <= len(stream)]) == msgs


@settings(max_examples=60, deadline=None)
@given(lines, st.lists(st.integers(min_value=0, max_value=5000), max_size=30), st.sampled_from([b"\n", b"\r\n", b"\0"]))
def test_non_transparent_survives_any_split(msgs: list[bytes], cuts: list[int], trailer: bytes) -> None:
    msgs = [b"<" + m for m in msgs]  # a syslog PRI starts every message, so the mode is non-transparent
    stream = b"".join(m + trailer for m in msgs)
    assert decode_all(stream, [c for c in cuts if c <= len(stream)]) == msgs


# The receiver, over sockets.


class Collector:
    """A sink that records each batch, the thread it ran on and when."""

    def __init__(self, fail_first: int = 0, gate: threading.Event | None = None) -> None:
        self.batches: list[list[Received]] = []
        self.times: list[float] = []
        self.threads: set[int] = set()
        self._fail = fail_first
        self._gate = gate
        self._lock = threading.Lock()

    def __call__(self, batch: list[Received]) -> None:
        if self._gate is not None:
            self._gate.wait(10)
        if self._fail:
            self._fail -= 1
            raise RuntimeError("database unavailable")
        with self._lock:
            self.batches.append(list(batch))
            self.times.append(time.monotonic())
            self.threads.add(threading.get_ident())

    @property
    def data(self) -> list[bytes]:
        with self._lock:
            return [r.data for batch in self.batches for r in batch]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def peer_of(sock_name: Any) -> str:
    return f"{sock_name[0]}:{sock_name[1]}"


def test_udp_datagrams_arrive_and_stop_flushes_them() -> None:
    sink = Collector()

    async def scenario() -> tuple[SyslogReceiver, str]:
        receiver = SyslogReceiver(sink, flush_interval=30, clock=FrozenClock(NOW))
        await receiver.start(udp_port=0)
        assert receiver.udp_port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.bind(("127.0.0.1", 0))
            for payload in (b"<13>one", b"<13>two\n", b"<13>three\x00"):
                client.sendto(payload, ("127.0.0.1", receiver.udp_port))
            await until(lambda: receiver.pending == 3)
            assert sink.batches == []  # neither size nor time has come: only stop() delivers them
            await receiver.stop()
            return receiver, peer_of(client.getsockname())

    receiver, peer = run(scenario())
    assert sink.batches == [
        [Received(peer, m, "udp", NOW) for m in (b"<13>one", b"<13>two", b"<13>three")],
    ]
    assert receiver.received == 3
    assert threading.get_ident() not in sink.threads


def test_tcp_octet_counting_split_anywhere_arrives_whole_and_in_order() -> None:
    sink = Collector()
    rng = random.Random(5426)
    first = [b"<34>1 2026-11-24T09:00:00Z host sshd 77 - - Accepted publickey for ana", b"<13>a b\nc"]
    second = [f"<13>message {i} ".encode() * rng.randint(1, 40) for i in range(150)]

    async def scenario() -> dict[str, str]:
        receiver = SyslogReceiver(sink, batch_size=7, flush_interval=0.05)
        await receiver.start(tcp_port=0)
        assert receiver.tcp_port
        _, w1 = await asyncio.open_connection("127.0.0.1", receiver.tcp_port)
        _, w2 = await asyncio.open_connection("127.0.0.1", receiver.tcp_port)
        w1.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in b"".join(octet(m) for m in first):
            w1.write(bytes([byte]))
            await w1.drain()
            await asyncio.sleep(0)
        stream = b"".join(octet(m) for m in second)
        pos = 0
        while pos < len(stream):
            step = rng.randint(1, 900)
            w2.write(stream[pos : pos + step])
            await w2.drain()
            pos += step
        await until(lambda: len(sink.data) == len(first) + len(second))
        peers = {"first": peer_of(w1.get_extra_info("sockname")), "second": peer_of(w2.get_extra_info("sockname"))}
        for w in (w1, w2):
            w.close()
        await receiver.stop()
        return peers

    peers = run(scenario())
    got = [r for batch in sink.batches for r in batch]
    assert [r.data for r in got if r.peer == peers["first"]] == first
    assert [r.data for r in got if r.peer == peers["second"]] == second
    assert {r.transport for r in got} == {"tcp"}
    assert all(len(batch) <= 7 for batch in sink.batches)


def test_tcp_non_transparent_framing() -> None:
    sink = Collector()

    async def scenario() -> None:
        receiver = SyslogReceiver(sink, flush_interval=30)
        await receiver.start(tcp_port=0)
        assert receiver.tcp_port
        _, writer = await asyncio.open_connection("127.0.0.1", receiver.tcp_port)
        writer.write(b"<13>first\n<13>sec")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"ond\r\n<13>3 has 3 spaces\n<13>last, no LF")
        await writer.drain()
        writer.close()
        await until(lambda: receiver.pending == 4)
        await receiver.stop()

    run(scenario())
    assert sink.data == [b"<13>first", b"<13>second", b"<13>3 has 3 spaces", b"<13>last, no LF"]


def test_bad_octet_count_is_reported_and_closes_the_connection() -> None:
    sink = Collector()
    errors: list[tuple[str, str]] = []

    async def scenario() -> str:
        receiver = SyslogReceiver(sink, flush_interval=30, on_error=lambda peer, why: errors.append((peer, why)))
        await receiver.start(tcp_port=0)
        assert receiver.tcp_port
        reader, writer = await asyncio.open_connection("127.0.0.1", receiver.tcp_port)
        writer.write(octet(b"<13>good") + b"12x <13>bad")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the receiver hung up
        peer = peer_of(writer.get_extra_info("sockname"))
        writer.close()
        await receiver.stop()
        assert receiver.framing_errors == 1
        return peer

    peer = run(scenario())
    assert sink.data == [b"<13>good"]
    assert len(errors) == 1
    assert errors[0][0] == peer
    assert "expected an octet count" in errors[0][1]
    assert "offset 10" in errors[0][1]


def test_sender_closing_inside_a_counted_frame_is_reported() -> None:
    errors: list[tuple[str, str]] = []

    async def scenario() -> None:
        receiver = SyslogReceiver(Collector(), on_error=lambda peer, why: errors.append((peer, why)))
        await receiver.start(tcp_port=0)
        assert receiver.tcp_port
        _, writer = await asyncio.open_connection("127.0.0.1", receiver.tcp_port)
        writer.write(b"40 <13>only part of it")
        await writer.drain()
        writer.close()
        await until(lambda: bool(errors))
        await receiver.stop()

    run(scenario())
    assert "ended inside an octet-counted frame (22 octets pending)" in errors[0][1]


def make_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_tls_octet_counted_frames(tmp_path: Path) -> None:
    cert_file, key_file = make_certificate(tmp_path)
    sink = Collector()
    sent = [b"<38>1 2026-11-24T09:00:00Z vault sshd - - - Accepted password for bo", b"<13>two\nlines"]

    async def scenario() -> None:
        receiver = SyslogReceiver(sink, flush_interval=30)
        await receiver.start(tls_port=0, ssl_context=server_tls_context(cert_file, key_file))
        assert receiver.tls_port
        client = ssl.create_default_context(cafile=str(cert_file))
        _, writer = await asyncio.open_connection(
            "127.0.0.1", receiver.tls_port, ssl=client, server_hostname="localhost"
        )
        stream = b"".join(octet(m) for m in sent)
        writer.write(stream[:5])
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(stream[5:])
        await writer.drain()
        await until(lambda: receiver.pending == 2)
        writer.close()
        await receiver.stop()

    run(scenario())
    assert sink.data == sent
    assert {r.transport for batch in sink.batches for r in batch} == {"tls"}


def test_tls_context_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot load the TLS certificate .*nope\.pem"):
        server_tls_context(tmp_path / "nope.pem", tmp_path / "nope.key")


def test_batch_flushes_on_size() -> None:
    sink = Collector()
    sent = [f"<13>m{i}".encode() for i in range(12)]

    async def scenario() -> None:
        receiver = SyslogReceiver(sink, batch_size=5, flush_interval=30)
        await receiver.start(tcp_port=0)
        assert receiver.tcp_port
        _, writer = await asyncio.open_connection("127.0.0.1", receiver.tcp_port)
        writer.write(b"".join(octet(m) for m in sent))
        await writer.drain()
        await until(lambda: len(sink.batches) == 2)
        await asyncio.sleep(0.1)
        assert len(sink.batches) == 2  # two left over: below the size, long before the interval
        writer.close()
        await receiver.stop()

    run(scenario())
    assert [len(b) for b in sink.batches] == [5, 5, 2]
    assert sink.data == sent


def test_batch_flushes_on_time() -> None:
    sink = Collector()

    async def scenario() -> float:
        receiver = SyslogReceiver(sink, batch_size=1000, flush_interval=0.2)
        await receiver.start(udp_port=0)
        assert receiver.udp_port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            sent_at = time.monotonic()
            for i in range(3):
                client.sendto(b"<13>tick %d" % i, ("127.0.0.1", receiver.udp_port))
            await until(lambda: bool(sink.batches))
        await receiver.stop()
        return sent_at

    sent_at = run(scenario())
    assert sink.data == [b"<13>tick 0", b"<13>tick 1", b"<13>tick 2"]
    assert len(sink.batches) == 1
    assert 0.15 <= sink.times[0] - sent_at < 2.0


def test_failing_sink_is_retried_not_dropped() -> None:
    sink = Collector(fail_first=1)

    async def scenario() -> SyslogReceiver:
        receiver = SyslogReceiver(sink, batch_size=2, flush_interval=30)
        await receiver.start(udp_port=0)
        assert receiver.udp_port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(b"<13>a", ("127.0.0.1", receiver.udp_port))
            client.sendto(b"<13>b", ("127.0.0.1", receiver.udp_port))
            await until(lambda: bool(sink.batches))
        await receiver.stop()
        return receiver

    receiver = run(scenario())
    assert sink.data == [b"<13>a", b"<13>b"]
    assert receiver.sink_errors == 1


def test_full_buffer_drops_udp_and_counts_it() -> None:
    gate = threading.Event()
    sink = Collector(gate=gate)

    async def scenario() -> SyslogReceiver:
        receiver = SyslogReceiver(sink, batch_size=2, max_buffer=2, flush_interval=30)
        await receiver.start(udp_port=0)
        assert receiver.udp_port
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                for i in range(2):
                    client.sendto(b"<13>%d" % i, ("127.0.0.1", receiver.udp_port))
                await until(lambda: receiver.received == 2 and receiver.pending == 0)  # the sink holds them
                for i in range(2, 7):
                    client.sendto(b"<13>%d" % i, ("127.0.0.1", receiver.udp_port))
                await until(lambda: receiver.received + receiver.dropped == 7)
        finally:
            gate.set()
        await receiver.stop()
        return receiver

    receiver = run(scenario())
    assert receiver.dropped == 3
    assert sink.data == [b"<13>0", b"<13>1", b"<13>2", b"<13>3"]


def test_full_buffer_pauses_tcp_instead_of_dropping() -> None:
    gate = threading.Event()
    sink = Collector(gate=gate)
    sent = [b"<13>%d" % i for i in range(20)]

    async def scenario() -> SyslogReceiver:
        receiver = SyslogReceiver(sink, batch_size=2, max_buffer=4, flush_interval=30)
        await receiver.start(tcp_port=0)
        assert receiver.tcp_port
        _, writer = await asyncio.open_connection("127.0.0.1", receiver.tcp_port)
        try:
            for message in sent:
                writer.write(octet(message))
                await writer.drain()
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)
            # Two in the blocked sink, the rest waits in the socket, not in memory.
            assert receiver.pending <= 8  # 18 if reads went on; a chunk may carry two messages
        finally:
            gate.set()
        await until(lambda: len(sink.data) == len(sent))
        writer.close()
        await receiver.stop()
        return receiver

    receiver = run(scenario())
    assert receiver.dropped == 0
    assert sink.data == sent


def test_start_needs_a_context_for_tls() -> None:
    async def scenario() -> None:
        await SyslogReceiver(Collector()).start(tls_port=0)

    with pytest.raises(ValueError, match="tls_port and ssl_context"):
        run(scenario())


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals reach the main thread")
def test_run_receiver_stops_on_sigterm_and_flushes() -> None:
    sink = Collector()
    sent = [b"<13>x", b"<13>y", b"<13>z"]

    def ready(receiver: SyslogReceiver) -> None:
        def client() -> None:
            assert receiver.udp_port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for message in sent:
                    sock.sendto(message, ("127.0.0.1", receiver.udp_port))
            deadline = time.monotonic() + 5
            while receiver.pending < len(sent) and time.monotonic() < deadline:
                time.sleep(0.005)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=client, daemon=True).start()

    before = signal.getsignal(signal.SIGTERM)
    receiver = run_receiver(sink, udp_port=0, flush_interval=30, ready=ready)
    assert sink.data == sent
    assert receiver.pending == 0
    assert signal.getsignal(signal.SIGTERM) == before
