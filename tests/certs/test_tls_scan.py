"""TLS discovery against real TLS servers on loopback, serving chains this test generates."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from portcullis.certs.tls_scan import Endpoint, ScanResult, client_context, parse_targets, peer_chain, scan, scan_sync

NOW = datetime.now(UTC)
DER = serialization.Encoding.DER


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(DER)


def issue(
    name: str,
    issuer: Issued | None = None,
    *,
    ca: bool = False,
    dns: tuple[str, ...] = (),
    not_after: datetime | None = None,
) -> Issued:
    """A certificate for `name`, signed by `issuer` (self-signed without one)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=30))
        .not_valid_after(not_after or NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Issued(cert, key)


def server_context(tmp: Path, name: str, chain: list[Issued]) -> ssl.SSLContext:
    """A server context presenting `chain` (leaf first); its key is chain[0]'s."""
    certfile, keyfile = tmp / f"{name}.pem", tmp / f"{name}.key"
    certfile.write_bytes(b"".join(c.cert.public_bytes(serialization.Encoding.PEM) for c in chain))
    keyfile.write_bytes(
        chain[0].key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    return context


@dataclass
class Servers:
    """An event loop in a thread that hosts the test's servers; each server gets an ephemeral port."""

    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    clean_closes: int = 0
    all_closed: threading.Condition = field(default_factory=threading.Condition)

    servers: list[asyncio.Server] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        async def shut() -> None:
            for server in self.servers:
                server.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        assert self.thread is not None
        self.thread.join(10)
        self.loop.close()

    def serve(self, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], object], **kw: object) -> int:
        async def start() -> int:
            server = await asyncio.start_server(handler, "127.0.0.1", 0, **kw)  # type: ignore[arg-type]
            self.servers.append(server)
            port: int = server.sockets[0].getsockname()[1]
            return port

        return asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    async def hold_until_eof(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Keep the connection until the client ends it; count the clients that did."""
        try:
            await reader.read()
            with self.all_closed:
                self.clean_closes += 1
                self.all_closed.notify_all()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def tls(self, context: ssl.SSLContext) -> int:
        return self.serve(self.hold_until_eof, ssl=context)


async def http_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(100)
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    writer.close()


@dataclass
class World:
    root: Issued
    intermediate: Issued
    leaf: Issued
    self_signed: Issued
    a: Issued
    b: Issued
    servers: Servers
    chain_port: int
    self_signed_port: int
    sni_port: int
    tls12_port: int
    tls13_port: int
    tls10_port: int
    garbage_port: int


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("tls")
    root = issue("Test Root CA", ca=True)
    intermediate = issue("Test Intermediate CA", root, ca=True)
    # Expired and for another host: the scanner must still return it.
    leaf = issue("expired.example", intermediate, dns=("expired.example",), not_after=NOW - timedelta(days=1))
    self_signed = issue("self-signed.example", dns=("self-signed.example",))
    a = issue("a.example", intermediate, dns=("a.example",))
    b = issue("b.example", intermediate, dns=("b.example",))

    servers = Servers()
    servers.start()
    chain_ctx = server_context(tmp, "chain", [leaf, intermediate])
    by_name = {"a.example": server_context(tmp, "a", [a, intermediate]), "b.example": server_context(tmp, "b", [b])}

    def pick(ssl_object: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        if name in by_name:
            ssl_object.context = by_name[name]

    sni_ctx = server_context(tmp, "default", [self_signed])
    sni_ctx.sni_callback = pick
    tls12 = server_context(tmp, "tls12", [leaf, intermediate])
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    tls13 = server_context(tmp, "tls13", [leaf, intermediate])
    tls13.minimum_version = ssl.TLSVersion.TLSv1_3
    tls10 = server_context(tmp, "tls10", [self_signed])
    tls10.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        tls10.minimum_version = ssl.TLSVersion.TLSv1
        tls10.maximum_version = ssl.TLSVersion.TLSv1
    yield World(
        root=root,
        intermediate=intermediate,
        leaf=leaf,
        self_signed=self_signed,
        a=a,
        b=b,
        servers=servers,
        chain_port=servers.tls(chain_ctx),
        self_signed_port=servers.tls(server_context(tmp, "self", [self_signed])),
        sni_port=servers.tls(sni_ctx),
        tls12_port=servers.tls(tls12),
        tls13_port=servers.tls(tls13),
        tls10_port=servers.tls(tls10),
        garbage_port=servers.serve(http_garbage),
    )
    servers.stop()


def one(endpoint: Endpoint, timeout: float = 5.0) -> ScanResult:
    [result] = scan_sync([endpoint], timeout=timeout)
    assert result.endpoint == endpoint
    return result


def test_returns_the_chain_exactly_as_served_without_verifying_it(world: World) -> None:
    result = one(Endpoint("127.0.0.1", world.chain_port))
    assert result.error is None, result.error
    assert result.chain == (world.leaf.der, world.intermediate.der)
    assert result.ok
    assert result.tls_version == "TLSv1.3"
    assert result.elapsed_ms > 0


def test_self_signed_certificate(world: World) -> None:
    result = one(Endpoint("127.0.0.1", world.self_signed_port, sni="self-signed.example"))
    assert result.chain == (world.self_signed.der,)


def test_certificate_chosen_by_server_name(world: World) -> None:
    port = world.sni_port
    results = scan_sync(
        [
            Endpoint("127.0.0.1", port, sni="a.example"),
            Endpoint("127.0.0.1", port, sni="b.example"),
            Endpoint("127.0.0.1", port),
            Endpoint("localhost", port, sni="unknown.example"),
        ]
    )
    assert [r.error for r in results] == [None] * 4
    assert results[0].chain == (world.a.der, world.intermediate.der)
    assert results[1].chain == (world.b.der,)
    assert results[2].chain == (world.self_signed.der,)  # no SNI for a bare address: the default
    assert results[3].chain == (world.self_signed.der,)


@pytest.mark.parametrize(("attr", "version"), [("tls12_port", "TLSv1.2"), ("tls13_port", "TLSv1.3")])
def test_tls_12_only_and_13_only_servers(world: World, attr: str, version: str) -> None:
    result = one(Endpoint("127.0.0.1", getattr(world, attr)))
    assert result.error is None, result.error
    assert result.tls_version == version
    assert result.chain == (world.leaf.der, world.intermediate.der)


def test_legacy_tls_10_server_is_still_recorded(world: World) -> None:
    result = one(Endpoint("127.0.0.1", world.tls10_port))
    if result.error is not None and "unsupported protocol" in result.error.lower():
        pytest.skip("this OpenSSL build has no TLS 1.0 at all")
    assert result.error is None, result.error
    assert result.tls_version == "TLSv1"
    assert result.chain == (world.self_signed.der,)


def test_closed_port_is_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = one(Endpoint("127.0.0.1", port))
    assert result.error == "connection refused"
    assert result.chain == ()
    assert result.tls_version is None


def test_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # never accepts: the kernel completes the connection, nobody answers
        result = one(Endpoint("127.0.0.1", silent.getsockname()[1]), timeout=0.3)
    assert result.error == "timed out after 0.3s"
    assert result.chain == ()


def test_non_tls_server_is_a_handshake_failure(world: World) -> None:
    result = one(Endpoint("127.0.0.1", world.garbage_port))
    assert result.error is not None
    assert result.error.startswith("TLS handshake failed: "), result.error
    assert result.chain == ()


def test_results_in_input_order_callback_per_result_and_connections_closed(world: World) -> None:
    servers = world.servers
    with servers.all_closed:
        closed_before = servers.clean_closes
    endpoints = [
        Endpoint("127.0.0.1", port)
        for port in [world.chain_port, world.self_signed_port, world.sni_port, world.tls12_port] * 10
    ]
    seen: list[ScanResult] = []
    results = asyncio.run(scan(endpoints, concurrency=7, on_result=seen.append))
    assert [r.endpoint for r in results] == endpoints
    assert sorted(seen, key=id) == sorted(results, key=id)
    assert all(r.error is None for r in results)
    expected = {
        world.chain_port: world.leaf.der,
        world.self_signed_port: world.self_signed.der,
        world.sni_port: world.self_signed.der,
        world.tls12_port: world.leaf.der,
    }
    assert [r.chain[0] for r in results] == [expected[e.port] for e in endpoints]
    # Every connection was ended by the scanner (an orderly close the server saw), none left open.
    with servers.all_closed:
        assert servers.all_closed.wait_for(lambda: servers.clean_closes - closed_before == len(endpoints), 30)


def test_callback_exception_propagates(world: World) -> None:
    def boom(_: ScanResult) -> None:
        raise RuntimeError("progress bar broke")

    with pytest.raises(RuntimeError, match="progress bar broke"):
        scan_sync([Endpoint("127.0.0.1", world.chain_port)], on_result=boom)


def test_scan_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        scan_sync([], concurrency=0)
    with pytest.raises(ValueError, match="timeout"):
        scan_sync([], timeout=0)
    assert scan_sync([]) == []


# Targets


def test_endpoint_defaults_and_labels() -> None:
    assert Endpoint("Example.COM", 443).sni == "example.com"
    assert Endpoint("10.0.0.1", 443).sni is None
    assert Endpoint("example.com", 443).label == "example.com:443"
    assert Endpoint("::1", 443).label == "[::1]:443"
    assert Endpoint("10.0.0.1", 8443, sni="a.example").label == "10.0.0.1:8443/a.example"
    assert Endpoint("lb.example", 443, sni="a.example").label == "lb.example:443/a.example"
    assert Endpoint("2001:DB8:0::1", 443).host == "2001:db8::1"
    with pytest.raises(ValueError, match="70000"):
        Endpoint("example.com", 70000)
    with pytest.raises(ValueError, match="IP address"):
        Endpoint("example.com", 443, sni="10.0.0.1")


def test_parse_targets_forms() -> None:
    assert parse_targets(
        [
            "example.com",
            "example.com:8443",
            "10.0.0.1:443,8443",
            "[::1]:8443",
            "::1",
            "[2001:db8::1]",
            "10.0.0.2:443@app.example",
            "lb.example@app.example",
            "",
            "# a comment",
            "example.com:443",  # a duplicate
        ],
        default_ports=(443, 636),
    ) == [
        Endpoint("example.com", 443),
        Endpoint("example.com", 636),
        Endpoint("example.com", 8443),
        Endpoint("10.0.0.1", 443),
        Endpoint("10.0.0.1", 8443),
        Endpoint("::1", 8443),
        Endpoint("::1", 443),
        Endpoint("::1", 636),
        Endpoint("2001:db8::1", 443),
        Endpoint("2001:db8::1", 636),
        Endpoint("10.0.0.2", 443, sni="app.example"),
        Endpoint("lb.example", 443, sni="app.example"),
        Endpoint("lb.example", 636, sni="app.example"),
    ]


def test_ranges_expand_to_host_addresses() -> None:
    assert parse_targets(["10.0.0.0/30"]) == [Endpoint("10.0.0.1", 443), Endpoint("10.0.0.2", 443)]
    assert [e.label for e in parse_targets(["10.0.0.0/30:443,8443"])] == [
        "10.0.0.1:443",
        "10.0.0.1:8443",
        "10.0.0.2:443",
        "10.0.0.2:8443",
    ]
    assert [e.host for e in parse_targets(["10.0.0.4/31"])] == ["10.0.0.4", "10.0.0.5"]
    assert [e.host for e in parse_targets(["10.0.0.9/32"])] == ["10.0.0.9"]
    assert len(parse_targets(["10.1.0.0/16"])) == 65_534
    assert len(parse_targets(["[2001:db8::/120]:443"])) == 255  # all but the subnet-router anycast address
    assert len(parse_targets(["192.168.0.0/24", "192.168.0.10"])) == 254


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("example.com:70000", "70000"),
        ("example.com:0", "1-65535"),
        ("example.com:https", "https"),
        ("example.com:", "bad port"),
        ("10.0.0.0/33", "range"),
        ("10.0.0.1/30", "host bits"),
        ("300.0.0.0/8", "range"),
        ("10.0.0.0/15", "limit"),
        ("[2001:db8::]/64", "unexpected"),
        ("[2001:db8::/64]", "limit"),
        ("[::1:443", "unclosed"),
        ("bad_host!.example", "host name"),
        ("example.com@", "server name"),
        ("example.com@10.0.0.1", "IP address"),
        ("-bad.example", "host name"),
    ],
)
def test_bad_specs_name_the_spec(spec: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as raised:
        parse_targets(["ok.example", spec])
    assert repr(spec) in str(raised.value)


def test_range_limit_is_adjustable() -> None:
    assert len(parse_targets(["10.0.0.0/15"], max_addresses=131_072)) == 131_070
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/24'")):
        parse_targets(["10.0.0.0/24"], max_addresses=100)


@given(
    address=st.ip_addresses(),
    ports=st.lists(st.integers(1, 65535), min_size=1, max_size=4, unique=True),
)
def test_address_and_ports_round_trip(address: ipaddress.IPv4Address | ipaddress.IPv6Address, ports: list[int]) -> None:
    host = f"[{address}]" if address.version == 6 else str(address)
    parsed = parse_targets([f"{host}:{','.join(map(str, ports))}"])
    assert parsed == [Endpoint(str(address), port) for port in ports]
    assert [e.label for e in parsed] == [f"{host}:{port}" for port in ports]


@given(network=st.ip_addresses(v=4).map(str), prefix=st.integers(20, 32))
def test_ipv4_range_counts(network: str, prefix: int) -> None:
    net = ipaddress.ip_network(f"{network}/{prefix}", strict=False)
    size = net.num_addresses
    expected = size - 2 if prefix < 31 else size
    assert len(parse_targets([str(net)])) == expected


def test_peer_chain_of_a_blocking_socket(world: World) -> None:
    context = client_context()
    with (
        socket.create_connection(("127.0.0.1", world.chain_port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        assert peer_chain(tls) == (world.leaf.der, world.intermediate.der)
        tls.unwrap()
