"""Certificate-storing devices (§29): a PKCS#11 token read from the token itself, its certificates registered."""

from __future__ import annotations

import hashlib

import pkcs11
import pytest
from cryptography.hazmat.primitives import serialization
from pkcs11 import Attribute, CertificateType, ObjectClass
from sqlalchemy import select

from portcullis.certs import discovery
from portcullis.certs.devices import DeviceIn, get_device, register_device
from portcullis.certs.models import CertDeployment, Certificate, DeviceKind
from portcullis.core.context import Principal
from portcullis.core.errors import Conflict, ValidationFailed
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from tests.certs.pki import NOW, issue
from tests.factories import make_user
from tests.keys.softhsm import SoftHsmToken, softhsm_token

token = softhsm_token()


@pytest.fixture
def officer(rt: Runtime) -> Principal:
    return make_user(rt, Role.SECURITY_OFFICER, "sofia@kestrel.example.eu").principal


def test_a_token_is_read_into_the_device_register_with_its_certificates(
    rt: Runtime, officer: Principal, token: SoftHsmToken
) -> None:
    cert = issue("signing.kestrel.test", sans=["signing.kestrel.test"], now=NOW).cert
    der = cert.public_bytes(serialization.Encoding.DER)
    with token.backend() as backend:
        # Planted behind the backend's back, as another application on the HSM would have.
        with token.session() as s:
            s.create_object(
                {
                    Attribute.CLASS: ObjectClass.CERTIFICATE,
                    Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                    Attribute.TOKEN: True,
                    Attribute.LABEL: "payments-tls",
                    Attribute.ID: b"\x01\x02",
                    Attribute.SUBJECT: cert.subject.public_bytes(),
                    Attribute.VALUE: der,
                }
            )
        try:
            with rt.work(officer) as ctx:
                register_device(ctx, DeviceIn(key="hsm-1", name="Payments HSM", kind=DeviceKind.HSM))
            report = discovery.scan_token(rt, officer, "hsm-1", backend)
            info = backend.token_info()
        finally:
            # The token lives for the module (both databases' runs): leave it as found.
            with token.session() as s:
                next(s.get_objects({Attribute.LABEL: "payments-tls"})).destroy()
    assert (report.certificates, report.new) == (1, 1)
    with rt.work(officer) as ctx:
        d = get_device(ctx, "hsm-1")
        # What the token says of itself, read from the token: SoftHSM's own identity.
        assert (d.manufacturer, d.model, d.serial) == (
            info["manufacturer"].strip(),
            info["model"].strip(),
            info["serial_number"].strip(),
        )
        assert d.manufacturer == "SoftHSM project"
        assert token.label in d.match
        labels = {o["label"] for o in d.info["objects"]}
        assert "payments-tls" in labels
        c = ctx.session.scalar(select(Certificate).where(Certificate.fingerprint == hashlib.sha256(der).hexdigest()))
        assert c is not None
        [dep] = ctx.session.scalars(select(CertDeployment).where(CertDeployment.cert_id == c.id)).all()
        assert (dep.kind, dep.location, dep.device_id) == ("pkcs11", f"{token.label}/payments-tls", d.id)


def test_device_register_refuses_duplicates_and_unknown_assets(rt: Runtime, officer: Principal) -> None:
    with rt.work(officer) as ctx:
        register_device(ctx, DeviceIn(key="lb-1", name="LB", kind=DeviceKind.LOAD_BALANCER))
    with pytest.raises(Conflict), rt.work(officer) as ctx:
        register_device(ctx, DeviceIn(key="lb-1", name="LB again", kind=DeviceKind.LOAD_BALANCER))
    with pytest.raises(ValidationFailed) as e, rt.work(officer) as ctx:
        register_device(ctx, DeviceIn(key="lb-2", name="LB", kind=DeviceKind.LOAD_BALANCER, asset_external_id="NOPE"))
    assert e.value.errors[0].field == "asset_external_id"


__all__ = ["pkcs11"]
