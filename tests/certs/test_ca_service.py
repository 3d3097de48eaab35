"""The internal CA as a service (§29-30): its key lives in key management, and what it issues is in the register.

Expectations come from outside the code under test: the public key key management holds (and a signature
made through the key service as system:certs.ca), keys and names chosen here, pyca's verifiers, and the
clock the test set.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from portcullis.access.models import Finding
from portcullis.certs import ca
from portcullis.certs.models import Certificate, InternalCa
from portcullis.core.clock import FrozenClock
from portcullis.core.context import Principal
from portcullis.core.errors import Conflict, ValidationFailed
from portcullis.core.runtime import Runtime
from portcullis.keys.models import CryptoKey, KeyState, KeyVersion
from portcullis.keys.register import change_state
from portcullis.keys.service import key_service
from portcullis.ledger.models import LedgerRecord
from portcullis.ledger.service import decode
from portcullis.scheduler import run_once
from tests.keys.world import KeyWorld, build_key_world, email

CA_NAME = "kestrel-ca"
CA_KEY = "certs-ca-signing"
CA_SIGNER = "system:certs.ca"
SUFFIX = "kestrel.test"
SANS = ["www.kestrel.test", "api.kestrel.test"]


# --- helpers shared with test_renewal.py ----------------------------------------------------


def spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def register_ca_key(w: KeyWorld, key: str = CA_KEY, sign: list[str] | None = None) -> bytes:
    """A critical P-256 key in key management, generated at its ceremony; returns the public key it holds."""
    w.register(
        key=key,
        name="Internal CA signing key",
        purpose="signs the firm's internal TLS certificates and their CRLs",
        algorithm="ecdsa-p256",
        critical=True,
        ceremony_present=[email("carla"), email("cedric")],
        ceremony_approvers=[email("sofia"), email("aude")],
        policy={"sign": sign if sign is not None else [CA_SIGNER]},
    )
    with w.rt.session() as s:
        der = s.scalar(select(KeyVersion.public_key).join(CryptoKey).where(CryptoKey.key == key))
    assert der is not None
    return der


def make_ca(w: KeyWorld, name: str = CA_NAME, key: str = CA_KEY) -> x509.Certificate:
    """Create the CA (as the security officer) and return its certificate, as the register holds it."""
    with w.rt.work(w.p("sofia")) as ctx:
        made = ca.create_ca(
            ctx,
            key_service(w.rt),
            ca.CaIn(key=name, crypto_key=key, common_name="Kestrel Internal CA", allowed_suffixes=[SUFFIX]),
        )
        row = ctx.session.get(Certificate, made.cert_id)
        assert row is not None
        return x509.load_der_x509_certificate(row.der)


def issue(w: KeyWorld, public_key: Any, sans: list[str], days: int = 30, **kw: Any) -> Certificate:
    with w.rt.work(w.p("sofia")) as ctx:
        return ca.issue(
            ctx,
            key_service(w.rt),
            CA_NAME,
            public_key=public_key,
            sans=sans,
            days=days,
            public_url=w.rt.settings.effective_public_url,
            **kw,
        )


def ledger(rt: Runtime, action: str) -> list[dict[str, Any]]:
    with rt.session() as s:
        rows = s.scalars(select(LedgerRecord).where(LedgerRecord.action == action).order_by(LedgerRecord.id))
        return [decode(r) for r in rows]


def count(rt: Runtime, model: type[Any]) -> int:
    with rt.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def open_findings(rt: Runtime, key: str) -> list[Finding]:
    with rt.session() as s:
        return list(s.scalars(select(Finding).where(Finding.key == key, Finding.status == "open")))


def the_ca(rt: Runtime, name: str = CA_NAME) -> InternalCa:
    with rt.session() as s:
        found = s.scalar(select(InternalCa).where(InternalCa.key == name))
        assert found is not None
        return found


# --- tests ----------------------------------------------------------------------------------


def test_create_ca_is_self_signed_on_the_key_management_key_and_in_the_register(
    rt: Runtime, clock: FrozenClock
) -> None:
    w = build_key_world(rt)
    held = register_ca_key(w)

    cert = make_ca(w)

    assert spki(cert.public_key()) == held
    cert.verify_directly_issued_by(cert)
    assert cert.subject == x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Kestrel Internal CA")])
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    # The key service signs with that same key, as the CA's principal and as nobody else.
    with rt.work(Principal.system("certs.ca")) as ctx:
        _, signature = key_service(rt).sign(ctx, CA_KEY, b"proof of the CA key")
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, b"proof of the CA key", ec.ECDSA(hashes.SHA256()))

    made = the_ca(rt)
    with rt.session() as s:
        row = s.scalar(
            select(Certificate).where(
                Certificate.fingerprint == fingerprint(cert.public_bytes(serialization.Encoding.DER))
            )
        )
        assert row is not None
        assert (row.id, row.status, row.is_ca, row.self_signed, row.ca_id) == (
            made.cert_id,
            "active",
            True,
            True,
            made.id,
        )
    assert made.crypto_key == CA_KEY
    assert made.allowed_suffixes == [SUFFIX]

    assert made.crl_number == 1
    assert made.crl_der is not None
    crl = x509.load_der_x509_crl(made.crl_der)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    assert crl.is_signature_valid(public)
    assert crl.issuer == cert.subject
    assert len(crl) == 0
    assert crl.last_update_utc == clock.now()

    [created] = ledger(rt, "cert.ca_created")
    assert created["object_id"] == str(made.id)
    assert created["certificate"] == fingerprint(cert.public_bytes(serialization.Encoding.DER))
    assert created["actor"]["name"] == w.p("sofia").name
    assert [r["changes"]["crl_number"][1] for r in ledger(rt, "cert.crl_published")] == [1]


def test_issue_under_an_allowed_suffix_and_refuse_other_names(rt: Runtime, clock: FrozenClock) -> None:
    w = build_key_world(rt)
    register_ca_key(w)
    ca_cert = make_ca(w)
    key = ec.generate_private_key(ec.SECP256R1())

    row = issue(w, key.public_key(), SANS, days=30)

    cert = x509.load_der_x509_certificate(row.der)
    cert.verify_directly_issued_by(ca_cert)
    assert spki(cert.public_key()) == spki(key.public_key())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == SANS
    assert cert.not_valid_after_utc == clock.now() + timedelta(days=30)
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for p in points for n in p.full_name or []] == [
        f"{rt.settings.effective_public_url}/pki/{CA_NAME}.crl"
    ]
    made = the_ca(rt)
    assert (row.status, row.ca_id, row.renewal_method, row.issuer_cert_id) == (
        "active",
        made.id,
        "internal_ca",
        made.cert_id,
    )
    assert row.renewal["ca"] == CA_NAME
    [issued] = ledger(rt, "cert.issued")
    assert issued["object_id"] == str(row.id)
    assert issued["ca"] == CA_NAME

    before = count(rt, Certificate)
    # A name merely ending in the suffix's letters is not under it.
    for outside in ("www.elsewhere.test", "evilkestrel.test"):
        with pytest.raises(ValidationFailed) as caught:
            issue(w, ec.generate_private_key(ec.SECP256R1()).public_key(), ["ok.kestrel.test", outside])
        [error] = caught.value.errors
        assert error.field == "sans"
        assert outside in error.message
        assert "ok.kestrel.test" not in error.message
    assert count(rt, Certificate) == before
    assert len(ledger(rt, "cert.issued")) == 1


def test_revoke_publishes_a_signed_crl_served_without_authentication(
    rt: Runtime, clock: FrozenClock, client: TestClient
) -> None:
    w = build_key_world(rt)
    register_ca_key(w)
    ca_cert = make_ca(w)
    kept = issue(w, ec.generate_private_key(ec.SECP256R1()).public_key(), ["kept.kestrel.test"])
    lost_cert = x509.load_der_x509_certificate(
        issue(w, ec.generate_private_key(ec.SECP256R1()).public_key(), ["lost.kestrel.test"]).der
    )
    clock.advance(timedelta(hours=3))

    with rt.work(w.p("sofia")) as ctx:
        revoked = ca.revoke(
            ctx, key_service(rt), fingerprint(lost_cert.public_bytes(serialization.Encoding.DER)), "key_compromise"
        )
        assert (revoked.status, revoked.revocation_reason) == ("revoked", "key_compromise")
        assert revoked.revoked_at == clock.now()

    made = the_ca(rt)
    assert made.crl_number == 2
    assert made.crl_der is not None
    crl = x509.load_der_x509_crl(made.crl_der)
    assert crl.is_signature_valid(ca_cert.public_key())  # type: ignore[arg-type]
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    assert crl.last_update_utc == clock.now()
    entry = crl.get_revoked_certificate_by_serial_number(lost_cert.serial_number)
    assert entry is not None
    assert entry.revocation_date_utc == clock.now()
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise
    assert crl.get_revoked_certificate_by_serial_number(int(kept.serial_hex, 16)) is None
    assert len(crl) == 1

    reply = client.get(f"/pki/{CA_NAME}.crl")  # no credentials: relying parties fetch CRLs anonymously
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/pkix-crl"
    assert reply.content == made.crl_der
    assert client.get("/pki/no-such-ca.crl").status_code == 404

    [rec] = ledger(rt, "cert.revoked")
    assert rec["reason"] == "key_compromise"
    assert rec["changes"]["status"] == ["active", "revoked"]
    assert [(r["changes"]["crl_number"][1], r["changes"]["revoked"][1]) for r in ledger(rt, "cert.crl_published")] == [
        (1, 0),
        (2, 1),
    ]
    assert len(ledger(rt, "cert.issued")) == 2
    assert len(ledger(rt, "cert.ca_created")) == 1

    with rt.work(w.p("sofia")) as ctx, pytest.raises(Conflict, match="was revoked on"):
        ca.revoke(ctx, key_service(rt), revoked.id, "superseded")
    with rt.work(w.p("sofia")) as ctx, pytest.raises(ValidationFailed) as caught:
        ca.revoke(ctx, key_service(rt), kept.id, "lost it")
    assert caught.value.errors[0].field == "reason"
    assert "key_compromise" in caught.value.errors[0].message
    assert the_ca(rt).crl_number == 2


def test_a_key_whose_policy_does_not_name_the_ca_is_refused(rt: Runtime) -> None:
    w = build_key_world(rt)
    register_ca_key(w, sign=["role:key_custodian", "system:tests"])

    with pytest.raises(ValidationFailed) as caught:
        make_ca(w)

    [error] = caught.value.errors
    assert error.field == "crypto_key"
    assert CA_KEY in error.message
    assert CA_SIGNER in error.message
    assert count(rt, InternalCa) == 0
    assert count(rt, Certificate) == 0
    assert ledger(rt, "cert.ca_created") == []


def test_a_suspended_key_signs_no_certificate_or_crl(rt: Runtime) -> None:
    w = build_key_world(rt)
    register_ca_key(w)
    make_ca(w)
    issue(w, ec.generate_private_key(ec.SECP256R1()).public_key(), ["before.kestrel.test"])
    issued = count(rt, Certificate)

    with rt.work(w.p("sofia")) as ctx:
        change_state(ctx, CA_KEY, KeyState.SUSPENDED, "suspected tampering with the CA host")

    with pytest.raises(Conflict, match=f"Key '{CA_KEY}' is suspended"):
        issue(w, ec.generate_private_key(ec.SECP256R1()).public_key(), ["during.kestrel.test"])
    # Refused inside a unit of work that then commits: the refusal must have changed nothing.
    with rt.work(w.p("sofia")) as ctx, pytest.raises(Conflict, match="suspended"):
        ca.publish_crl(ctx, key_service(rt), CA_NAME)
    assert count(rt, Certificate) == issued
    assert the_ca(rt).crl_number == 1

    with rt.work(w.p("sofia")) as ctx:
        change_state(ctx, CA_KEY, KeyState.ACTIVE, "host cleared")
    issue(w, ec.generate_private_key(ec.SECP256R1()).public_key(), ["after.kestrel.test"])
    assert count(rt, Certificate) == issued + 1


def test_a_crl_the_key_may_not_re_sign_is_a_finding_and_the_tick_goes_on(rt: Runtime, clock: FrozenClock) -> None:
    w = build_key_world(rt)
    register_ca_key(w)
    make_ca(w)
    first_crl = the_ca(rt).crl_der
    with rt.work(w.p("sofia")) as ctx:
        change_state(ctx, CA_KEY, KeyState.SUSPENDED, "suspected tampering with the CA host")
    clock.advance(timedelta(days=6, hours=1))  # the CRL published at creation is good for 7 days

    results = run_once(rt)

    assert results["certs.plan"]["ok"] is True, results["certs.plan"]
    assert results["certs.plan"]["result"]["crls"] == []
    made = the_ca(rt)
    assert made.crl_number == 1
    assert made.crl_der == first_crl
    key = f"cert_crl_failed:ca:{made.id}"
    [finding] = open_findings(rt, key)
    assert finding.severity == "high"
    assert CA_NAME in finding.detail
    assert "suspended" in finding.detail

    with rt.work(w.p("sofia")) as ctx:
        change_state(ctx, CA_KEY, KeyState.ACTIVE, "host cleared")
    results = run_once(rt)

    assert results["certs.plan"]["result"]["crls"] == [CA_NAME]
    assert the_ca(rt).crl_number == 2
    assert open_findings(rt, key) == []
    crl = x509.load_der_x509_crl(the_ca(rt).crl_der or b"")
    assert crl.last_update_utc == clock.now()
