"""Renewal (§30) end to end: the internal CA and a real ACME server (Pebble), deployment, retries, findings.

Expectations come from the test's own construction: the keys it generated, the names and paths it chose,
the clock it moved, Pebble's root and intermediate (from Pebble's management interface) and pyca's
verifiers; the files written are read back and parsed here.
"""

from __future__ import annotations

import socket
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store
from sqlalchemy import select

from portcullis.access.models import Finding
from portcullis.certs import acme_client
from portcullis.certs.models import (
    AcmeAccount,
    CertAsset,
    CertDeployment,
    Certificate,
    CertRenewal,
    DeploymentKind,
    RenewalMethod,
)
from portcullis.certs.notify import backoff_delay
from portcullis.certs.register import (
    CertIn,
    Place,
    import_certificates,
    record_found,
    register_certificate,
    retire_certificate,
)
from portcullis.certs.renewal import deploy, request_renewal, run_renewals
from portcullis.certs.sealing import unseal
from portcullis.core.clock import FrozenClock
from portcullis.core.context import Principal
from portcullis.core.runtime import Runtime
from portcullis.inventory.models import Asset
from portcullis.keys.service import keyring
from portcullis.scheduler import run_once
from tests.certs import pki
from tests.certs.pebble import Pebble
from tests.certs.pebble import pebble_server as pebble_server  # the fixture
from tests.certs.test_ca_service import (
    CA_NAME,
    SANS,
    fingerprint,
    issue,
    ledger,
    make_ca,
    open_findings,
    register_ca_key,
    spki,
)
from tests.keys.world import KeyWorld, build_key_world, email

SYSTEM = Principal.system("tests")
DOMAINS = ["api.renewal.test", "www.renewal.test"]


# --- helpers --------------------------------------------------------------------------------


@pytest.fixture(name="responder", scope="module")
def responder_fixture(pebble: Pebble) -> Iterator[acme_client.Http01Responder]:
    with acme_client.Http01Responder("127.0.0.1", pebble.http_port) as responder:
        yield responder


@pytest.fixture(name="world")
def world_fixture(rt: Runtime) -> KeyWorld:
    """The key world with the internal CA on its key-management key."""
    w = build_key_world(rt)
    register_ca_key(w)
    make_ca(w)
    return w


def to_real_time(clock: FrozenClock) -> None:
    # Pebble dates what it issues by the real clock; the register's clock must not be behind it.
    real = datetime.now(UTC)
    if real > clock.now():
        clock.advance(real - clock.now())


def target(directory: Path, name: str) -> dict[str, str]:
    return {"kind": "file", "cert": str(directory / f"{name}.pem"), "key": str(directory / f"{name}.key")}


def cert_row(rt: Runtime, ref: int | str) -> Certificate:
    with rt.session() as s:
        found = (
            s.get(Certificate, ref)
            if isinstance(ref, int)
            else s.scalar(select(Certificate).where(Certificate.fingerprint == ref))
        )
        assert found is not None, ref
        return found


def renewal_row(rt: Runtime, rid: int) -> CertRenewal:
    with rt.session() as s:
        found = s.get(CertRenewal, rid)
        assert found is not None
        return found


def asset_ids(rt: Runtime, cert_id: int) -> set[int]:
    with rt.session() as s:
        return set(s.scalars(select(CertAsset.asset_id).where(CertAsset.cert_id == cert_id)))


def deployments_at(rt: Runtime, location: str) -> set[tuple[int, bool]]:
    with rt.session() as s:
        rows = s.scalars(
            select(CertDeployment).where(CertDeployment.kind == "file", CertDeployment.location == location)
        )
        return {(d.cert_id, d.current) for d in rows}


def finding(rt: Runtime, key: str) -> Finding | None:
    with rt.session() as s:
        return s.scalars(select(Finding).where(Finding.key == key).order_by(Finding.id.desc())).first()


def read_deployed(dest: dict[str, str]) -> tuple[list[x509.Certificate], bytes]:
    """The chain in the certificate file and the SubjectPublicKeyInfo of the key file (which must be 0600)."""
    chain = x509.load_pem_x509_certificates(Path(dest["cert"]).read_bytes())
    assert stat.S_IMODE(Path(dest["key"]).stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(dest["cert"]).stat().st_mode) == 0o644
    key = serialization.load_pem_private_key(Path(dest["key"]).read_bytes(), password=None)
    return chain, spki(key.public_key())


def dns_names(cert: x509.Certificate) -> list[str]:
    return sorted(
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --- the internal CA ------------------------------------------------------------------------


def test_internal_ca_renewal_by_the_scheduler_replaces_deploys_and_records(
    rt: Runtime, clock: FrozenClock, world: KeyWorld, tmp_path: Path
) -> None:
    w = world
    with rt.session() as s:
        ca_der = s.scalar(select(Certificate.der).where(Certificate.is_ca.is_(True)))
        pay = s.scalar(select(Asset.id).where(Asset.external_id == "A-PAY"))
    assert ca_der is not None
    ca_cert = x509.load_der_x509_certificate(ca_der)
    old_key = ec.generate_private_key(ec.SECP256R1())
    dest = target(tmp_path / "srv" / "tls", "www")
    old = issue(w, old_key.public_key(), SANS, days=30)
    settings = {"ca": CA_NAME, "deploy": [dest]}
    with rt.work(w.p("sofia")) as ctx:
        register_certificate(
            ctx,
            old.id,
            CertIn(
                owner_email=email("sofia"),
                asset_external_ids=["A-PAY"],
                renewal_method=RenewalMethod.INTERNAL_CA,
                renewal=settings,
                notes="payments front door",
            ),
        )

    clock.advance(timedelta(days=15))  # half its life gone: not yet
    early = run_once(rt)
    assert all(r["ok"] for r in early.values()), early
    assert early["certs.plan"]["result"]["renewals_planned"] == 0
    assert early["certs.renew"]["result"] == []
    assert not Path(dest["cert"]).exists()

    clock.advance(timedelta(days=6))  # 21 of its 30 days: past two thirds
    results = run_once(rt)

    assert all(r["ok"] for r in results.values()), results
    assert results["certs.plan"]["result"]["renewals_planned"] == 1
    [outcome] = results["certs.renew"]["result"]
    assert outcome["ok"] is True, outcome
    assert outcome["certificate"] == fingerprint(old.der)
    assert outcome["deployed"] == [dest["cert"]]

    new = cert_row(rt, outcome["new"])
    new_cert = x509.load_der_x509_certificate(new.der)
    new_cert.verify_directly_issued_by(ca_cert)
    assert dns_names(new_cert) == sorted(SANS)
    assert spki(new_cert.public_key()) != spki(old_key.public_key())
    assert new_cert.not_valid_after_utc == clock.now() + timedelta(days=30)
    assert (new.status, new.owner_id, new.renewal_method, new.renewal, new.notes) == (
        "active",
        w.people["sofia"],
        "internal_ca",
        settings,
        "payments front door",
    )
    assert asset_ids(rt, new.id) == {pay}
    replaced = cert_row(rt, old.id)
    assert (replaced.status, replaced.replaced_by_id) == ("replaced", new.id)
    assert asset_ids(rt, old.id) == {pay}  # the old entry keeps its history

    chain, key_spki = read_deployed(dest)
    assert chain[0] == new_cert
    assert key_spki == spki(new_cert.public_key())
    assert deployments_at(rt, dest["cert"]) == {(new.id, True)}

    with rt.session() as s:
        [r] = s.scalars(select(CertRenewal).where(CertRenewal.cert_id == old.id))
        assert (r.status, r.attempts, r.new_cert_id, r.method) == ("succeeded", 1, new.id, "internal_ca")
    [renewed] = ledger(rt, "cert.renewed")
    assert renewed["object_id"] == str(new.id)
    assert renewed["replaces"] == fingerprint(old.der)
    assert renewed["assets"] == [pay]
    [deployed] = ledger(rt, "cert.deployed")
    assert (deployed["object_id"], deployed["changes"]["cert"][1], deployed["changes"]["key"][1]) == (
        str(new.id),
        dest["cert"],
        dest["key"],
    )
    assert deployed["changes"]["fingerprint"][1] == fingerprint(new.der)

    again = run_once(rt)  # the new certificate is young: nothing more to do
    assert again["certs.plan"]["result"]["renewals_planned"] == 0
    assert again["certs.renew"]["result"] == []


def test_a_failed_deployment_stays_a_finding_until_deployed(rt: Runtime, world: KeyWorld, tmp_path: Path) -> None:
    w = world
    blocker = tmp_path / "srv"
    blocker.write_text("a file where the deployment directory should be")
    dest = target(blocker / "tls", "www")
    old = issue(
        w, ec.generate_private_key(ec.SECP256R1()).public_key(), ["www.kestrel.test"], registered={"deploy": [dest]}
    )
    with rt.work(w.p("sofia")) as ctx:
        rid = request_renewal(ctx, old.id).id

    [outcome] = run_renewals(rt, only=rid)

    assert outcome["ok"] is True  # the certificate was renewed; its deployment is what failed
    assert outcome["deployed"].startswith("failed: ")
    assert str(blocker) in outcome["deployed"]
    new = cert_row(rt, outcome["new"])
    assert new.status == "active"
    assert cert_row(rt, old.id).replaced_by_id == new.id
    key = f"cert_deploy_failed:cert:{new.id}"
    [open_one] = open_findings(rt, key)
    assert open_one.severity == "high"
    [failed] = ledger(rt, "cert.deploy_failed")
    assert failed["object_id"] == str(new.id)
    assert ledger(rt, "cert.deployed") == []

    blocker.unlink()  # the target put right
    with rt.work(w.p("sofia")) as ctx:
        row = ctx.session.get(Certificate, new.id)
        assert row is not None
        written = deploy(ctx, rt, row)

    assert written == [dest["cert"]]
    gone = finding(rt, key)
    assert gone is not None
    assert gone.status == "resolved"
    chain, key_spki = read_deployed(dest)
    new_cert = x509.load_der_x509_certificate(new.der)
    assert chain == [new_cert]
    assert key_spki == spki(new_cert.public_key())
    assert len(ledger(rt, "cert.deployed")) == 1


# --- ACME against Pebble --------------------------------------------------------------------


def test_acme_renewal_against_pebble_makes_a_new_key_every_time(
    rt: Runtime, clock: FrozenClock, pebble: Pebble, responder: acme_client.Http01Responder, tmp_path: Path
) -> None:
    to_real_time(clock)
    first = acme_client.issue(
        pebble.directory_url,
        account=acme_client.AcmeAccount.generate(),
        domains=DOMAINS,
        responder=responder,
        ca_bundle=pebble.ca_bundle,
    )
    dest = target(tmp_path / "deploy", "api")
    settings: dict[str, Any] = {
        "directory": pebble.directory_url,
        "ca_bundle": pebble.ca_bundle,
        "domains": DOMAINS,
        "deploy": [dest],
    }
    with rt.work(SYSTEM) as ctx:
        found = record_found(
            ctx, x509.load_pem_x509_certificates(first.chain_pem), Place(DeploymentKind.FILE, dest["cert"])
        )
        register_certificate(ctx, found.leaf.id, CertIn(renewal_method=RenewalMethod.ACME, renewal=settings))
        request_renewal(ctx, found.leaf.id)
        previous = found.leaf.id
    held = [previous]  # every certificate the file has held
    root = x509.load_pem_x509_certificate(pebble.root_pem())
    intermediate = x509.load_pem_x509_certificate(pebble.intermediate_pem())
    keys = [spki(serialization.load_pem_private_key(first.key_pem, None).public_key())]

    for round_ in (1, 2):
        if round_ == 2:
            with rt.work(SYSTEM) as ctx:
                request_renewal(ctx, previous, "second renewal")

        [outcome] = run_renewals(rt, responder=responder)

        assert outcome["ok"] is True, outcome
        new = cert_row(rt, outcome["new"])
        leaf = x509.load_der_x509_certificate(new.der)
        assert dns_names(leaf) == DOMAINS
        for domain in DOMAINS:
            verifier = (
                PolicyBuilder().store(Store([root])).time(datetime.now(UTC)).build_server_verifier(x509.DNSName(domain))
            )
            assert verifier.verify(leaf, [intermediate])[-1] == root
        chain, key_spki = read_deployed(dest)
        assert chain == [leaf, intermediate]
        assert key_spki == spki(leaf.public_key())
        assert key_spki not in keys  # a new key on every renewal
        keys.append(key_spki)
        assert (new.status, new.renewal_method, new.renewal) == ("active", "acme", settings)
        old = cert_row(rt, previous)
        assert (old.status, old.replaced_by_id) == ("replaced", new.id)
        held.append(new.id)
        assert deployments_at(rt, dest["cert"]) == {(c, c == new.id) for c in held}  # only the newest is there
        previous = new.id

    assert len(set(keys)) == 3
    assert len(ledger(rt, "cert.renewed")) == 2
    # One ACME account for the directory, registered once, its key sealed (not in the clear).
    with rt.session() as s:
        [account] = s.scalars(select(AcmeAccount))
    assert account.directory == pebble.directory_url
    assert account.account_url is not None
    assert account.account_url.startswith(pebble.directory_url.removesuffix("/dir") + "/")
    assert len(ledger(rt, "cert.acme_account_created")) == 1
    assert b"PRIVATE KEY" not in account.key_sealed
    assert b"-----BEGIN" not in account.key_sealed
    opened = unseal(keyring(rt).master, f"acme account {pebble.directory_url}", account.key_sealed)
    assert opened.startswith(b"-----BEGIN")
    assert opened not in account.key_sealed
    serialization.load_pem_private_key(opened, None)


def test_a_failed_acme_renewal_is_visible_and_retried_with_back_off(
    rt: Runtime, clock: FrozenClock, pebble: Pebble, responder: acme_client.Http01Responder
) -> None:
    to_real_time(clock)
    port = closed_port()
    bad = f"https://127.0.0.1:{port}/dir"
    name = "retry.renewal.test"
    old = pki.issue(name, sans=[name], now=clock.now())
    settings = {"directory": bad, "ca_bundle": pebble.ca_bundle, "domains": [name]}
    with rt.work(SYSTEM) as ctx:
        c = import_certificates(
            ctx, [old.cert], "retry.pem", CertIn(renewal_method=RenewalMethod.ACME, renewal=settings)
        )
        cid = c.id
        rid = request_renewal(ctx, cid).id
    failed_at = clock.now()

    [outcome] = run_renewals(rt, responder=responder)

    assert outcome["ok"] is False
    assert outcome["attempts"] == 1
    r = renewal_row(rt, rid)
    assert (r.status, r.attempts) == ("pending", 1)
    assert r.last_error is not None
    assert f"127.0.0.1:{port}" in r.last_error
    assert r.next_attempt_at == failed_at + timedelta(seconds=backoff_delay(1))
    key = f"cert_renewal_failed:cert:{cid}"
    [visible] = open_findings(rt, key)
    assert (visible.kind, visible.severity) == ("cert_renewal_failed", "high")
    assert f"127.0.0.1:{port}" in visible.detail
    [failed] = ledger(rt, "cert.renewal_failed")
    assert (failed["object_id"], failed["changes"]["attempts"][1]) == (str(rid), 1)
    assert cert_row(rt, cid).status == "active"

    clock.advance(timedelta(seconds=backoff_delay(1) / 2))  # before the next attempt is due
    assert run_renewals(rt, responder=responder) == []
    assert renewal_row(rt, rid).attempts == 1

    with rt.work(SYSTEM) as ctx:
        register_certificate(
            ctx,
            cid,
            CertIn(renewal_method=RenewalMethod.ACME, renewal={**settings, "directory": pebble.directory_url}),
        )
    clock.advance(r.next_attempt_at - clock.now() + timedelta(seconds=1))

    [outcome] = run_renewals(rt, responder=responder)

    assert outcome["ok"] is True, outcome
    r = renewal_row(rt, rid)
    assert (r.status, r.attempts, r.last_error, r.next_attempt_at) == ("succeeded", 2, None, None)
    new = cert_row(rt, outcome["new"])
    assert dns_names(x509.load_der_x509_certificate(new.der)) == [name]
    assert cert_row(rt, cid).replaced_by_id == new.id
    assert open_findings(rt, key) == []
    closed = finding(rt, key)
    assert closed is not None
    assert closed.status == "resolved"
    assert len(ledger(rt, "cert.renewal_failed")) == 1


def test_a_renewal_waiting_for_its_retry_is_dropped_once_the_certificate_is_retired(
    rt: Runtime, clock: FrozenClock
) -> None:
    name = "gone.renewal.test"
    old = pki.issue(name, sans=[name], now=clock.now())
    settings = {"directory": f"https://127.0.0.1:{closed_port()}/dir", "domains": [name]}
    with rt.work(SYSTEM) as ctx:
        c = import_certificates(
            ctx, [old.cert], "gone.pem", CertIn(renewal_method=RenewalMethod.ACME, renewal=settings)
        )
        cid = c.id
        rid = request_renewal(ctx, cid).id
    key = f"cert_renewal_failed:cert:{cid}"
    with acme_client.Http01Responder("127.0.0.1", 0) as responder:
        [failed] = run_renewals(rt, responder=responder)
        assert failed["ok"] is False
        assert len(open_findings(rt, key)) == 1
        with rt.work(SYSTEM) as ctx:
            retire_certificate(ctx, cid, "service decommissioned")
        clock.advance(timedelta(seconds=backoff_delay(1) + 1))

        [dropped] = run_renewals(rt, responder=responder)

    assert dropped["ok"] is False
    assert "retired" in dropped["error"]
    r = renewal_row(rt, rid)
    assert (r.status, r.attempts, r.next_attempt_at) == ("failed", 1, None)
    gone = cert_row(rt, cid)
    assert (gone.status, gone.replaced_by_id) == ("retired", None)
    assert open_findings(rt, key) == []
    assert len(ledger(rt, "cert.renewal_dropped")) == 1
    assert run_renewals(rt) == []
