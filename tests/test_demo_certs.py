"""The demo's certificates: what a first scan of a real firm shows, and an internal CA that really signs."""

from __future__ import annotations

from cryptography import x509
from sqlalchemy import select

from portcullis.access.models import Finding
from portcullis.certs.checks import expiring
from portcullis.certs.models import Certificate, InternalCa
from portcullis.core.runtime import Runtime
from portcullis.demo import build_demo
from tests.keys.world import SYSTEM


def test_the_demo_certificates_show_what_needs_doing(rt: Runtime) -> None:
    build_demo(rt)
    with rt.work(SYSTEM) as ctx:
        s = ctx.session
        certs = {c.common_name: c for c in s.scalars(select(Certificate))}
        open_ = {
            (f.kind, f.detail.split(" ")[1])
            for f in s.scalars(select(Finding).where(Finding.status == "open", Finding.kind.startswith("cert_")))
        }
        # Expiring within the month: the customer API's and the FIX gateway's, soonest first.
        soon = [c.common_name for c, _ in expiring(ctx, 31)]
        assert soon == ["fix.aurora.example", "api.aurora.example"]
        # The FIX gateway's certificate sits on a host whose device nobody registered.
        assert ("cert_device_missing", "fix.aurora.example") in open_
        assert ("cert_unregistered", "legacy-admin.aurora.internal") in open_
        assert ("cert_chain_weak_key", "legacy-admin.aurora.internal") in open_
        # Chains the firm trusts raise no chain finding: only the legacy certificate has one.
        assert {name for kind, name in open_ if kind.startswith("cert_chain_")} == {"legacy-admin.aurora.internal"}
        # The internal CA signed the VPN certificate with the key in key management.
        [ca] = s.scalars(select(InternalCa)).all()
        ca_cert = x509.load_der_x509_certificate(s.get(Certificate, ca.cert_id).der)  # type: ignore[union-attr]
        vpn = x509.load_der_x509_certificate(certs["vpn.aurora.internal"].der)
        vpn.verify_directly_issued_by(ca_cert)
        assert ca.crl_der is not None
