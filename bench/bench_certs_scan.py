"""TLS discovery benchmark (§29). Run: python bench/bench_certs_scan.py [--endpoints 1000] [--no-write]

A child process serves N TLS endpoints on loopback (distinct ports on 127.0.0.1), each presenting its
own chain (its own EC P-256 leaf, then one shared intermediate), all made here. This process then
times `scan()` over all of them and checks every result carries that endpoint's leaf and the
intermediate, byte for byte. Baselines in the same run, against the same ports: N plain TCP connects
at the same concurrency (the cost of the network and the event loop alone), and a sequential loop of
blocking TLS handshakes over a sample, extrapolated to N (what concurrency buys).
Target: N = 1,000 endpoints scanned in under 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import multiprocessing
import os
import platform
import resource
import socket
import ssl
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from common import write_section
from portcullis.certs import discovery
from portcullis.certs.tls_scan import Endpoint, client_context, peer_chain, scan
from portcullis.core.context import Principal
from portcullis.core.migrate import upgrade
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings

TARGET_SECONDS = 10.0
HOST = "127.0.0.1"
PEM = serialization.Encoding.PEM


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit: N listening sockets plus the open connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {ssl.OPENSSL_VERSION}"


def make_chains(root: Path, n: int) -> tuple[bytes, list[bytes]]:
    """Writes N leaf certificate files (leaf + intermediate) and keys; returns (intermediate DER, leaf DERs)."""
    now = datetime.now(UTC)

    def cert(
        name: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Name | None,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
    ) -> x509.Certificate:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer or subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA256())
        )

    root_key = ec.generate_private_key(ec.SECP256R1())
    root_cert = cert("Bench Root CA", root_key, None, root_key, ca=True)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = cert("Bench Intermediate CA", inter_key, root_cert.subject, root_key, ca=True)
    inter_pem = inter.public_bytes(PEM)
    leaves = []
    for i in range(n):
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = cert(f"endpoint-{i}.bench.example", key, inter.subject, inter_key, ca=False)
        (root / f"{i}.pem").write_bytes(leaf.public_bytes(PEM) + inter_pem)
        (root / f"{i}.key").write_bytes(
            key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        leaves.append(leaf.public_bytes(serialization.Encoding.DER))
    return inter.public_bytes(serialization.Encoding.DER), leaves


def serve(root: str, n: int, conn: Connection) -> None:
    """Child process: N TLS servers, ports sent back in order; stops when the parent writes or goes away."""
    raise_fd_limit()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        ports = []
        for i in range(n):
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(f"{root}/{i}.pem", f"{root}/{i}.key")
            server = await asyncio.start_server(hold, HOST, 0, ssl=context)
            ports.append(server.sockets[0].getsockname()[1])
        conn.send(ports)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_reader(conn.fileno(), stop.set)
        await stop.wait()

    asyncio.run(main())


async def tcp_connects(ports: list[int], concurrency: int) -> int:
    """Plain TCP connect and close, same worker pool shape as scan(); returns how many connected."""
    loop = asyncio.get_running_loop()
    pending = iter(ports)
    connected = 0

    async def worker() -> None:
        nonlocal connected
        for port in pending:
            transport, _ = await loop.create_connection(asyncio.Protocol, HOST, port)
            transport.close()
            connected += 1

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, len(ports))):
            group.create_task(worker())
    return connected


def sequential_handshakes(ports: list[int]) -> list[tuple[bytes, ...]]:
    """Blocking connect, handshake, chain, close_notify, one endpoint after another; the chains read."""
    context = client_context()
    chains = []
    for port in ports:
        with socket.create_connection((HOST, port), timeout=5) as raw, context.wrap_socket(raw) as tls:
            chains.append(peer_chain(tls))
            with contextlib.suppress(OSError):  # the server may close first
                tls.unwrap()
    return chains


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--sequential", type=int, default=100, help="endpoints in the sequential baseline")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    n = args.endpoints
    fd_limit = raise_fd_limit()

    with tempfile.TemporaryDirectory(prefix="portcullis-bench-certs-") as tmp:
        start = time.perf_counter()
        intermediate, leaves = make_chains(Path(tmp), n)
        generated = time.perf_counter() - start

        start = time.perf_counter()
        ours, theirs = multiprocessing.get_context("spawn").Pipe()
        child = multiprocessing.get_context("spawn").Process(target=serve, args=(tmp, n, theirs), daemon=True)
        child.start()
        if not ours.poll(120):
            sys.exit("the server process did not start its endpoints within 120 s")
        ports: list[int] = ours.recv()
        served = time.perf_counter() - start
        try:
            start = time.perf_counter()
            connected = asyncio.run(tcp_connects(ports, args.concurrency))
            tcp_seconds = time.perf_counter() - start

            sample = ports[: args.sequential]
            start = time.perf_counter()
            sequential_chains = sequential_handshakes(sample)
            sequential_seconds = (time.perf_counter() - start) * n / len(sample)

            endpoints = [Endpoint(HOST, port) for port in ports]
            start = time.perf_counter()
            results = asyncio.run(scan(endpoints, concurrency=args.concurrency))
            scan_seconds = time.perf_counter() - start

            # Discovery end to end: the same scan, then every chain into the register of a fresh SQLite
            # database (certificates by fingerprint, deployments, ledger records, findings) in one commit.
            rt = Runtime.build(Settings(data_dir=Path(tmp) / "var"))
            upgrade(rt.engine)
            start = time.perf_counter()
            report = discovery.scan_endpoints(
                rt, Principal.system("bench"), [f"{HOST}:{p}" for p in ports], concurrency=args.concurrency
            )
            discovery_seconds = time.perf_counter() - start
            rt.engine.dispose()
        finally:
            ours.send("stop")
            child.join(10)
            if child.is_alive():
                child.terminate()

    expected = {port: (leaf, intermediate) for port, leaf in zip(ports, leaves, strict=True)}
    sequential_ok = sum(chain == expected[port] for port, chain in zip(sample, sequential_chains, strict=True))
    wrong = [r for r in results if r.error is not None or r.chain != expected[r.endpoint.port]]
    right_leaves = sum(
        hashlib.sha256(r.chain[0]).digest() == hashlib.sha256(expected[r.endpoint.port][0]).digest()
        for r in results
        if r.chain
    )
    latencies = sorted(r.elapsed_ms for r in results)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Certificates: TLS discovery",
        "",
        f"`python bench/bench_certs_scan.py --endpoints {n}` on {when}, {machine()}. A child process "
        f"serves {n:,} TLS endpoints on distinct loopback ports, each with its own EC P-256 leaf and one shared "
        f"intermediate; this process scans them with `portcullis.certs.tls_scan.scan` (concurrency "
        f"{args.concurrency}, no verification, full chain read, close_notify on close).",
        "",
        "| measure | endpoints | seconds | endpoints/s |",
        "|---|---:|---:|---:|",
        f"| scan(): TLS handshake, chain read, close | {n:,} | {scan_seconds:.2f} | {n / scan_seconds:,.0f} |",
        f"| discovery: scan + register ({report.certificates:,} leaves, {report.new:,} new certificates, "
        f"findings opened: {report.findings.get('opened', 0):,}) on SQLite | {n:,} | {discovery_seconds:.2f} "
        f"| {n / discovery_seconds:,.0f} |",
        f"| baseline: plain TCP connect and close, same concurrency | {connected:,} | {tcp_seconds:.2f} "
        f"| {connected / tcp_seconds:,.0f} |",
        f"| baseline: sequential blocking TLS handshakes ({len(sample)} measured, extrapolated) | {n:,} "
        f"| {sequential_seconds:.2f} | {n / sequential_seconds:,.0f} |",
        "",
        f"Per endpoint inside scan(): median {statistics.median(latencies):.1f} ms, 99th percentile {p99:.1f} ms. "
        f"Results with exactly the served chain: {n - len(wrong):,} of {n:,} (leaf fingerprint right: "
        f"{right_leaves:,}); sequential handshakes with the served chain: {sequential_ok} of {len(sample)}. "
        f"Setup, not timed: {n:,} leaf certificates generated in {generated:.1f} s, servers up in {served:.1f} s; "
        f"file descriptor limit {fd_limit:,}.",
        "",
        f"Target (DESIGN.md): discovery of 1,000 TLS endpoints in under {TARGET_SECONDS:.0f} s.",
    ]
    print("\n".join(lines))
    if not args.no_write:
        write_section("certs-scan", lines)
    failures = []
    if wrong:
        first = wrong[0]
        failures.append(f"{len(wrong)} wrong results, e.g. {first.endpoint.label}: {first.error or 'another chain'}")
    if sequential_ok != len(sample):
        failures.append(f"{len(sample) - sequential_ok} wrong chains in the sequential baseline")
    if scan_seconds >= TARGET_SECONDS:
        failures.append(f"scan took {scan_seconds:.2f} s, target {TARGET_SECONDS:.0f} s")
    if discovery_seconds >= TARGET_SECONDS:
        failures.append(f"discovery took {discovery_seconds:.2f} s, target {TARGET_SECONDS:.0f} s")
    if report.certificates != n:
        failures.append(f"discovery registered {report.certificates} of {n} leaves")
    if failures:
        sys.exit("FAILED: " + "; ".join(failures))


if __name__ == "__main__":
    main()
