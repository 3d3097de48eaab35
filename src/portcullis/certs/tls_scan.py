"""TLS endpoint discovery for the certificate register (§29): which certificates do our servers present?

The scanner connects to many endpoints at once and records the certificate chain each one sends,
exactly as sent and WITHOUT verifying it: expired, self-signed and wrong-host certificates are what
the register most needs to know about. Failures (refused, timed out, not TLS) are results, not errors.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

MAX_RANGE_ADDRESSES = 65_536
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_SSL_SOURCE = re.compile(r"\s*\(_ssl\.c:\d+\)$")
# Time allowed for the TLS close_notify exchange after the chain is read, before the socket is dropped.
_CLOSE_GRACE = 1.0
_ENCODING_DER = 2  # _ssl.ENCODING_DER, for the private chain API of Python 3.10-3.12

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Endpoint:
    """Where to connect (host: an IP address or a DNS name) and which server name to ask for."""

    host: str
    port: int
    sni: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port {self.port} of endpoint {self.host!r} is not in 1-65535")
        address = _ip(self.host)
        host = str(address) if address is not None else _hostname(self.host)
        sni = _hostname(self.sni) if self.sni is not None else (None if address is not None else host)
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "sni", sni)

    @property
    def label(self) -> str:
        """`host:port`, `[v6]:port`, with `/sni` appended when the server name asked for is not the host."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        suffix = f"/{self.sni}" if self.sni is not None and self.sni != self.host else ""
        return f"{host}:{self.port}{suffix}"


@dataclass(frozen=True)
class ScanResult:
    """What one endpoint presented: its DER chain exactly as sent (leaf first), or why there is none."""

    endpoint: Endpoint
    chain: tuple[bytes, ...]
    error: str | None
    tls_version: str | None
    elapsed_ms: float

    @property
    def ok(self) -> bool:
        return self.error is None


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _hostname(name: str) -> str:
    """A DNS name in its ASCII, lower-case form; ValueError if it cannot be one."""
    try:
        ascii_name = name.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ValueError(f"{name!r} is not a valid host name") from exc
    labels = ascii_name.removesuffix(".").split(".")
    if len(ascii_name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{name!r} is not a valid host name")
    if _ip(ascii_name) is not None:
        raise ValueError(f"{name!r} is an IP address, not a server name")
    return ascii_name


def _ports(text: str) -> list[int]:
    ports = []
    for part in text.split(","):
        if not part.strip().isdigit() or not 1 <= int(part) <= 65535:
            raise ValueError(f"bad port {part.strip()!r}: expected a number in 1-65535")
        ports.append(int(part))
    return ports


def _split(spec: str) -> tuple[str, str | None, str | None]:
    """(host or range, ports text or None, SNI or None) from one spec."""
    target, at, sni = spec.partition("@")
    if at and not sni:
        raise ValueError("empty server name after '@'")
    if target.startswith("["):
        inside, bracket, after = target[1:].partition("]")
        if not bracket or not inside:
            raise ValueError("unclosed '[' around an IPv6 address")
        if after and not after.startswith(":"):
            raise ValueError(f"unexpected {after!r} after ']'")
        return inside, after[1:] if after else None, sni or None
    if target.count(":") >= 2:  # a bare IPv6 address or range: no room for a port
        return target, None, sni or None
    host, colon, ports = target.partition(":")
    return host, ports if colon else None, sni or None


def _hosts(host: str, max_addresses: int) -> list[str]:
    if "/" not in host:
        address = _ip(host)
        return [str(address) if address is not None else _hostname(host)]
    try:
        network = ipaddress.ip_network(host)
    except ValueError as exc:
        raise ValueError(f"bad address range: {exc}") from exc
    if network.num_addresses > max_addresses:
        raise ValueError(f"range of {network.num_addresses:,} addresses is larger than the limit of {max_addresses:,}")
    # hosts() leaves out an IPv4 network's network and broadcast addresses (prefixes under /31).
    return [str(address) for address in network.hosts()]


def parse_targets(
    specs: Iterable[str], default_ports: Sequence[int] = (443,), *, max_addresses: int = MAX_RANGE_ADDRESSES
) -> list[Endpoint]:
    """Endpoints from specs such as `host`, `host:443,8443`, `[::1]:443`, `10.0.0.1:443@name`, `10.0.0.0/30:443`.

    Ranges expand to their host addresses; `@name` sends that server name to every address. Blank specs
    and `#` comments are skipped, duplicates dropped, order kept. ValueError names the offending spec.
    """
    for port in default_ports:
        if not 1 <= port <= 65535:
            raise ValueError(f"default port {port} is not in 1-65535")
    seen: dict[Endpoint, None] = {}
    for raw in specs:
        spec = raw.strip()
        if not spec or spec.startswith("#"):
            continue
        try:
            host, ports_text, sni = _split(spec)
            ports = _ports(ports_text) if ports_text is not None else list(default_ports)
            for address in _hosts(host, max_addresses):
                for port in ports:
                    seen.setdefault(Endpoint(address, port, sni), None)
        except ValueError as exc:
            raise ValueError(f"target {spec!r}: {exc}") from None
    return list(seen)


def client_context() -> ssl.SSLContext:
    """A client context that completes a handshake with anything, so it can record anything."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # Old appliances speaking TLS 1.0 or with weak keys belong in the register most of all; anonymous
    # suites are left out because a server that chose one would send no certificate to record.
    context.set_ciphers("ALL:!aNULL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    return context


def peer_chain(ssl_object: Any) -> tuple[bytes, ...]:
    """The chain a connected ssl.SSLSocket or ssl.SSLObject received, exactly as sent, leaf first.

    Not the verified chain, which OpenSSL may rebuild from its own store.
    """
    public = getattr(ssl_object, "get_unverified_chain", None)
    if public is not None:  # Python 3.13+: DER bytes
        return tuple(public() or ())
    native = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if native is not None:  # Python 3.10-3.12: private, returns _ssl.Certificate objects
        return tuple(cert.public_bytes(_ENCODING_DER) for cert in native() or ())
    leaf = ssl_object.getpeercert(binary_form=True)
    return (leaf,) if leaf else ()


class _Probe(asyncio.Protocol):
    def __init__(self) -> None:
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _describe(exc: Exception, endpoint: Endpoint, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout}s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed: " + _SSL_SOURCE.sub("", exc.strerror or str(exc))
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError):
        return "TLS handshake failed: connection closed by the server"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {endpoint.host}: {exc.strerror}"
    if isinstance(exc, OSError):
        return f"connection failed: {exc.strerror or exc}"
    return f"scan failed: {exc.__class__.__name__}: {exc}"


async def _scan_one(endpoint: Endpoint, context: ssl.SSLContext, timeout: float) -> ScanResult:
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    transport: asyncio.Transport | None = None
    try:
        async with asyncio.timeout(timeout):
            transport, probe = await loop.create_connection(
                _Probe,
                endpoint.host,
                endpoint.port,
                ssl=context,
                server_hostname=endpoint.sni or "",  # "" sends no SNI
                ssl_handshake_timeout=timeout,
                ssl_shutdown_timeout=_CLOSE_GRACE,
            )
            ssl_object = transport.get_extra_info("ssl_object")
            chain, version = peer_chain(ssl_object), ssl_object.version()
    except Exception as exc:  # every failure of the network or the peer is a result
        if transport is not None:
            transport.abort()
        return ScanResult(endpoint, (), _describe(exc, endpoint, timeout), None, _ms(start))
    elapsed = _ms(start)
    transport.close()
    try:
        await asyncio.wait_for(asyncio.shield(probe.closed), _CLOSE_GRACE)
    except TimeoutError:
        transport.abort()
    return ScanResult(endpoint, chain, None, version, elapsed)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


async def scan(
    endpoints: Sequence[Endpoint],
    *,
    concurrency: int = 200,
    timeout: float = 5.0,
    on_result: Callable[[ScanResult], None] | None = None,
) -> list[ScanResult]:
    """Scan every endpoint, at most `concurrency` at a time; results in input order.

    `timeout` bounds connect plus handshake per endpoint. `on_result` is called as each one finishes
    (for progress); an exception it raises stops the scan and propagates.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, not {timeout}")
    context = client_context()
    results: list[ScanResult | None] = [None] * len(endpoints)
    pending = iter(range(len(endpoints)))

    async def worker() -> None:
        for index in pending:  # shared: each worker takes the next endpoint when it is free
            result = await _scan_one(endpoints[index], context, timeout)
            results[index] = result
            if on_result is not None:
                on_result(result)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(endpoints))):
                group.create_task(worker())
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    done = [result for result in results if result is not None]
    assert len(done) == len(endpoints), "every endpoint has a result"
    return done


def scan_sync(
    endpoints: Sequence[Endpoint],
    *,
    concurrency: int = 200,
    timeout: float = 5.0,
    on_result: Callable[[ScanResult], None] | None = None,
) -> list[ScanResult]:
    """`scan` in a fresh event loop, for callers without one."""
    return asyncio.run(scan(endpoints, concurrency=concurrency, timeout=timeout, on_result=on_result))
