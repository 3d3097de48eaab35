"""Discovery into the register (§29): endpoints, directories, one entry per certificate, changes recorded, findings."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from sqlalchemy import select

from portcullis.access.models import Finding
from portcullis.certs import checks, discovery
from portcullis.certs.devices import DeviceIn, register_device
from portcullis.certs.models import CertDeployment, Certificate, DeviceKind
from portcullis.certs.register import CertIn, register_certificate
from portcullis.core.context import Principal
from portcullis.core.errors import PermissionDenied
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory import service as inventory
from portcullis.inventory.schemas import AssetIn, PersonIn
from portcullis.ledger.models import LedgerRecord
from portcullis.ledger.service import decode
from tests.certs.pki import NOW, PKI, Issued, issue, make_pki
from tests.factories import make_user

SYSTEM = Principal.system("tests")


def ec_key(issued: Issued) -> ec.EllipticCurvePrivateKey:
    assert isinstance(issued.key, ec.EllipticCurvePrivateKey)
    return issued.key


def fp(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


class TlsServers:
    """TLS servers on 127.0.0.1 in a thread; each one's certificate chain can be swapped while it runs."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.contexts: dict[int, ssl.SSLContext] = {}
        self.servers: list[asyncio.Server] = []
        self.n = 0

    def context(self, chain: list[Issued] | list[x509.Certificate], key: Any) -> ssl.SSLContext:
        self.n += 1
        certs = [c.cert if isinstance(c, Issued) else c for c in chain]
        cf, kf = self.tmp / f"s{self.n}.pem", self.tmp / f"s{self.n}.key"
        cf.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
        kf.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # the weak-key case serves a 1024-bit RSA key, as legacy kit does
        ctx.load_cert_chain(cf, kf)
        return ctx

    def serve(self, pki: PKI) -> int:
        ctx = self.context(pki.chain, pki.leaf.key)
        holder: dict[str, ssl.SSLContext] = {"ctx": ctx}
        outer = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        outer.set_ciphers("DEFAULT:@SECLEVEL=0")
        outer.load_cert_chain(self.tmp / f"s{self.n}.pem", self.tmp / f"s{self.n}.key")

        def pick(sock: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
            sock.context = holder["ctx"]

        outer.sni_callback = pick

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.read()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        async def start() -> int:
            server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=outer)
            self.servers.append(server)
            port: int = server.sockets[0].getsockname()[1]
            return port

        port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.contexts[port] = outer
        self._holders = getattr(self, "_holders", {})
        self._holders[port] = holder
        return port

    def swap(self, port: int, pki: PKI) -> None:
        self._holders[port]["ctx"] = self.context(pki.chain, pki.leaf.key)

    def stop(self) -> None:
        async def shut() -> None:
            for s in self.servers:
                s.close()

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[TlsServers]:
    s = TlsServers(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def officer(rt: Runtime) -> Principal:
    made = make_user(rt, Role.SECURITY_OFFICER, "sofia@kestrel.example.eu")
    with rt.work(SYSTEM) as ctx:
        owner = inventory.create_person(
            ctx,
            PersonIn(
                external_id="HR-1",
                email="sofia@kestrel.example.eu",
                full_name="Sofia",
                status="active",
                start_date=date(2024, 1, 1),
            ),
        )
        inventory.create_asset(
            ctx,
            AssetIn(
                external_id="A-WEB", name="Web front", type="application", criticality="critical", owner_id=owner.id
            ),
        )
    return made.principal


def certs(rt: Runtime) -> dict[str, Certificate]:
    with rt.session() as s:
        return {c.fingerprint: c for c in s.scalars(select(Certificate))}


def open_findings(rt: Runtime, kind_prefix: str = "cert_") -> dict[str, Finding]:
    with rt.session() as s:
        stmt = select(Finding).where(Finding.status == "open", Finding.kind.startswith(kind_prefix))
        return {f.key: f for f in s.scalars(stmt)}


def actions(rt: Runtime) -> list[dict[str, Any]]:
    with rt.session() as s:
        return [
            decode(r)
            for r in s.scalars(select(LedgerRecord).where(LedgerRecord.action.is_not(None)).order_by(LedgerRecord.id))
        ]


def test_endpoint_scan_registers_each_certificate_once_and_records_a_change(
    rt: Runtime, officer: Principal, servers: TlsServers
) -> None:
    first = make_pki("www.kestrel.test", now=NOW)
    port = servers.serve(first)
    target = f"127.0.0.1:{port}@www.kestrel.test"

    report = discovery.scan_endpoints(rt, officer, [target], timeout=5)
    assert (report.targets, report.reached, report.certificates, report.new) == (1, 1, 1, 2)
    found = certs(rt)
    assert set(found) == {fp(first.leaf.cert), fp(first.intermediate.cert)}
    leaf = found[fp(first.leaf.cert)]
    assert leaf.issuer_cert_id == found[fp(first.intermediate.cert)].id
    assert leaf.status == "unregistered"
    assert leaf.sans == ["www.kestrel.test"]
    # Only the leaf found in a place of its own is the firm's to register; the intermediate is the CA's.
    assert set(open_findings(rt, "cert_unregistered")) == {f"cert_unregistered:cert:{leaf.id}"}

    again = discovery.scan_endpoints(rt, officer, [target], timeout=5)
    assert (again.new, len(certs(rt)), len(open_findings(rt, "cert_unregistered"))) == (0, 2, 1)

    second = make_pki("www.kestrel.test", now=NOW)
    servers.swap(port, second)
    changed = discovery.scan_endpoints(rt, officer, [target], timeout=5)
    assert changed.changed == [{"was": fp(first.leaf.cert), "now": fp(second.leaf.cert)}]
    with rt.session() as s:
        deps = {(d.cert_id, d.current) for d in s.scalars(select(CertDeployment))}
    now_found = certs(rt)
    assert deps == {(now_found[fp(first.leaf.cert)].id, False), (now_found[fp(second.leaf.cert)].id, True)}
    acts = [a["action"] for a in actions(rt)]
    assert acts.count("cert.deployment_changed") == 1
    assert acts.count("cert.scan") == 3
    assert acts.count("cert.discovered") == 4


def test_unreachable_targets_are_reported_not_lost(rt: Runtime, officer: Principal) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    report = discovery.scan_endpoints(rt, officer, [f"127.0.0.1:{closed}"], timeout=2)
    assert report.reached == 0
    assert report.errors == [{"target": f"127.0.0.1:{closed}", "error": "connection refused"}]
    [scan] = [a for a in actions(rt) if a["action"] == "cert.scan"]
    assert scan["first_errors"] == report.errors


def test_same_certificate_in_a_file_and_on_an_endpoint_is_one_entry(
    rt: Runtime, officer: Principal, servers: TlsServers, tmp_path: Path
) -> None:
    pki = make_pki("api.kestrel.test", now=NOW)
    port = servers.serve(pki)
    d = tmp_path / "certs"
    d.mkdir()
    (d / "api.pem").write_bytes(pki.leaf.pem + pki.intermediate.pem)
    (d / "api.der").write_bytes(pki.leaf.der)
    other = issue("legacy.kestrel.test", sans=["legacy.kestrel.test"], now=NOW)
    (d / "bundle.p7b").write_bytes(pkcs7.serialize_certificates([other.cert], serialization.Encoding.DER))
    vault = issue("vault.kestrel.test", sans=["vault.kestrel.test"], now=NOW)
    (d / "vault.p12").write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"vault", ec_key(vault), vault.cert, None, serialization.BestAvailableEncryption(b"right horse")
        )
    )
    (d / "broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")

    dir_report = discovery.scan_directory(rt, officer, d, passphrases={"vault.p12": b"right horse"})
    tls_report = discovery.scan_endpoints(rt, officer, [f"127.0.0.1:{port}@api.kestrel.test"], timeout=5)
    assert [e["target"] for e in dir_report.errors] == [str(d / "broken.pem")]
    assert tls_report.new == 0  # the endpoint serves what the file holds: nothing new
    found = certs(rt)
    assert set(found) == {fp(pki.leaf.cert), fp(pki.intermediate.cert), fp(other.cert), fp(vault.cert)}
    with rt.session() as s:
        places = sorted(
            (d_.kind, d_.location)
            for d_ in s.scalars(select(CertDeployment).where(CertDeployment.cert_id == found[fp(pki.leaf.cert)].id))
        )
    assert places == sorted(
        [("endpoint", f"127.0.0.1:{port}/api.kestrel.test"), ("file", str(d / "api.der")), ("file", str(d / "api.pem"))]
    )


def test_wrong_pkcs12_passphrase_is_a_reported_problem(rt: Runtime, officer: Principal, tmp_path: Path) -> None:
    vault = issue("vault.kestrel.test", sans=["vault.kestrel.test"], now=NOW)
    (tmp_path / "vault.p12").write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"vault", ec_key(vault), vault.cert, None, serialization.BestAvailableEncryption(b"right horse")
        )
    )
    report = discovery.scan_directory(rt, officer, tmp_path, passphrases={"vault.p12": b"wrong horse"})
    assert report.certificates == 0
    [problem] = report.errors
    assert problem["target"].endswith("vault.p12")
    assert "passphrase" in problem["error"]
    assert "wrong horse" not in str(report.as_dict())
    assert "wrong horse" not in str(actions(rt))


def test_registering_closes_the_finding_and_critical_assets_need_their_device(
    rt: Runtime, officer: Principal, servers: TlsServers
) -> None:
    pki = make_pki("pay.kestrel.test", now=NOW)
    port = servers.serve(pki)
    discovery.scan_endpoints(rt, officer, [f"127.0.0.1:{port}@pay.kestrel.test"], timeout=5)
    leaf = certs(rt)[fp(pki.leaf.cert)]
    with rt.work(officer) as ctx:
        register_certificate(
            ctx, leaf.fingerprint[:12], CertIn(owner_email="sofia@kestrel.example.eu", asset_external_ids=["A-WEB"])
        )
        checks.certificate_pass(ctx)
    found = open_findings(rt)
    assert f"cert_unregistered:cert:{leaf.id}" not in found
    missing = found[f"cert_device_missing:cert:{leaf.id}"]
    assert missing.severity == "high"
    assert f"127.0.0.1:{port}" in missing.detail

    with rt.work(officer) as ctx:
        register_device(
            ctx, DeviceIn(key="lb-1", name="Load balancer 1", kind=DeviceKind.LOAD_BALANCER, match=["127.0.0.1"])
        )
        checks.certificate_pass(ctx)
    assert f"cert_device_missing:cert:{leaf.id}" not in open_findings(rt)


def test_chain_problems_become_findings(rt: Runtime, officer: Principal, servers: TlsServers) -> None:
    old_root = issue("Old Root", ca=True, now=NOW)
    expired_mid = issue(
        "Expired Intermediate",
        ca=True,
        path_len=0,
        issuer=old_root,
        now=NOW,
        not_before=NOW - timedelta(days=400),
        not_after=NOW - timedelta(days=1),
    )
    weak = issue(
        "weak.kestrel.test",
        issuer=expired_mid,
        key_type="rsa",
        key_size=1024,
        hash_name="sha1",
        sans=["weak.kestrel.test"],
        now=NOW,
    )
    port = servers.serve(PKI(old_root, expired_mid, weak))
    # Scanned under a name the certificate does not cover.
    discovery.scan_endpoints(rt, officer, [f"127.0.0.1:{port}@other.kestrel.test"], timeout=5)
    leaf = certs(rt)[fp(weak.cert)]
    kinds = {f.kind for f in open_findings(rt, "cert_chain_").values() if f.key.endswith(f":cert:{leaf.id}")}
    assert {
        "cert_chain_expired_intermediate",
        "cert_chain_weak_key",
        "cert_chain_sha1_signature",
        "cert_chain_hostname_mismatch",
        "cert_chain_path_invalid",
    } <= kinds


def test_scanning_needs_certs_admin_before_any_probe(rt: Runtime) -> None:
    auditor = make_user(rt, Role.AUDITOR, "aude@kestrel.example.eu").principal
    with pytest.raises(PermissionDenied):
        discovery.scan_endpoints(rt, auditor, ["127.0.0.1:1"], timeout=1)
    assert actions(rt) == [a for a in actions(rt) if a["action"] != "cert.scan"]
