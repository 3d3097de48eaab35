"""The demo firm's certificates (§29-30).

An internal CA whose key is in key management issues the internal services'
certificates for real. The public certificates stand in for what a public CA
issued to the exchange (the demo makes their chain itself, as it cannot reach
one) and are recorded where discovery would have found them. On purpose, the
demo leaves what a first scan of a real firm shows: a public certificate
expiring within the month, the FIX gateway's certificate renewed by hand and
nine days from expiry on a host whose device is not registered, and a legacy
self-signed certificate with a 1024-bit key that nobody has registered.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from portcullis import demo_data as data
from portcullis.certs import ca, checks
from portcullis.certs.devices import DeviceIn, register_device
from portcullis.certs.models import DeploymentKind, DeviceKind, RenewalMethod
from portcullis.certs.register import CertIn, Place, record_found, register_certificate
from portcullis.core.runtime import Runtime
from portcullis.demo_access import Story
from portcullis.keys.register import KeyIn, register_key
from portcullis.keys.service import backends, key_service

PKI_OWNER, SRE, CISO, CTO, TREASURY = "AUR-023", "AUR-012", "AUR-022", "AUR-004", "AUR-031"
Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _email(external_id: str) -> str:
    return next(p.email for p in data.PEOPLE_SPECS if p.external_id == external_id)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    cn: str, key: Key, issuer: tuple[x509.Name, Key] | None, start: datetime, end: datetime, *, is_ca: bool = False
) -> x509.Certificate:
    issuer_name, issuer_key = issuer or (_name(cn), key)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        # A root may certify intermediates (no length limit); everything else here issues only leaves.
        .add_extension(
            x509.BasicConstraints(ca=is_ca, path_length=(None if issuer is None else 0) if is_ca else None),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    b = b.add_extension(
        x509.KeyUsage(
            digital_signature=not is_ca,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=is_ca,
            crl_sign=is_ca,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    if not is_ca:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def build_certificates(story: Story, rt: Runtime) -> None:
    """Call at the story's end (the real now)."""
    now = story.clock.now()
    ctx = story.ctx()
    # The internal CA's key: a critical key, generated at a ceremony, that signs only for the CA.
    register_key(
        ctx,
        KeyIn.model_validate(
            {
                "key": "pki-internal-ca-2026",
                "name": "Internal CA signing key",
                "algorithm": "ecdsa-p256",
                "purpose": "signs the internal CA's certificates and CRLs",
                "owner_email": _email(PKI_OWNER),
                "custodian_emails": [_email(CISO), _email(CTO), _email(PKI_OWNER)],
                "asset_external_ids": ["AST-PKI"],
                "critical": True,
                "ceremony_present": [_email(CISO), _email(PKI_OWNER)],
                "ceremony_approvers": [_email(CISO), _email(CTO)],
                "policy": {"sign": [ca.SIGNER], "verify": ["any"]},
            }
        ),
        backends(rt)["software"],
    )
    keys = key_service(rt)
    ca.create_ca(
        ctx,
        keys,
        ca.CaIn(
            key="aurora-internal",
            crypto_key="pki-internal-ca-2026",
            common_name="Aurora Digital Assets Internal CA 2026",
            organisation=data.ORGANISATION["legal_name"],
            allowed_suffixes=["aurora.internal"],
        ),
    )
    for device in (
        DeviceIn(
            key="lb-edge",
            name="Edge load balancers",
            kind=DeviceKind.LOAD_BALANCER,
            asset_external_id="AST-API",
            manufacturer="HAProxy Technologies",
            model="ALOHA 5",
            match=["api.aurora.example", "www.aurora.example"],
        ),
        DeviceIn(
            key="vpn-gw",
            name="VPN gateway",
            kind=DeviceKind.SERVER,
            asset_external_id="AST-VPN",
            manufacturer="Netgate",
            model="8200",
            serial="NG-8200-4471",
            match=["10.20.0.1"],
        ),
    ):
        register_device(ctx, device)

    # The internal CA issues the VPN gateway's certificate for real; the key stays on the gateway.
    vpn_key = ec.generate_private_key(ec.SECP256R1())
    vpn = ca.issue(
        ctx,
        keys,
        "aurora-internal",
        public_key=vpn_key.public_key(),
        sans=["vpn.aurora.internal"],
        days=90,
        public_url=rt.settings.effective_public_url,
    )
    record_found(
        ctx,
        [x509.load_der_x509_certificate(vpn.der)],
        Place(DeploymentKind.ENDPOINT, "10.20.0.1:443/vpn.aurora.internal"),
    )
    register_certificate(
        ctx,
        vpn.id,
        CertIn(
            owner_email=_email(SRE),
            asset_external_ids=["AST-VPN"],
            renewal_method=RenewalMethod.INTERNAL_CA,
            renewal={"ca": "aurora-internal"},
        ),
    )

    # A public CA's chain, as the exchange's endpoints serve it.
    root_key, mid_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = _cert(
        "Demo Public Root X1", root_key, None, now - timedelta(days=2000), now + timedelta(days=3000), is_ca=True
    )
    mid = _cert(
        "Demo Public R11",
        mid_key,
        (root.subject, root_key),
        now - timedelta(days=400),
        now + timedelta(days=700),
        is_ca=True,
    )
    # The public root is in every trust store; registered here as the anchor the firm's chains lead to.
    anchor = record_found(ctx, [root], Place(DeploymentKind.FILE, "/etc/ssl/certs/ca-certificates.crt#demo-x1"))
    register_certificate(ctx, anchor.leaf.id, CertIn(owner_email=_email(PKI_OWNER), notes="public root, trust store"))
    public = [
        # (name, place, days left of 90, assets, device)
        ("api.aurora.example", "api.aurora.example:443", 24, ["AST-API"]),
        ("www.aurora.example", "www.aurora.example:443", 71, ["AST-WEB"]),
        ("fix.aurora.example", "10.20.1.10:4443/fix.aurora.example", 9, ["AST-OGW"]),
    ]
    for cn, place, left, assets in public:
        leaf = _cert(
            cn,
            ec.generate_private_key(ec.SECP256R1()),
            (mid.subject, mid_key),
            now + timedelta(days=left - 90),
            now + timedelta(days=left),
        )
        found = record_found(ctx, [leaf, mid], Place(DeploymentKind.ENDPOINT, place))
        register_certificate(
            ctx,
            found.leaf.id,
            CertIn(
                owner_email=_email(SRE),
                asset_external_ids=assets,
                renewal_method=RenewalMethod.MANUAL,
                notes="renewed in the public CA's console by the SRE on call",
            ),
        )

    # Found on an old admin host and registered by nobody: self-signed, RSA 1024.
    legacy_key = rsa.generate_private_key(65537, 1024)  # noqa: S505 - the weak key the demo's scan finds
    legacy = _cert(
        "legacy-admin.aurora.internal", legacy_key, None, now - timedelta(days=900), now + timedelta(days=200)
    )
    record_found(ctx, [legacy], Place(DeploymentKind.FILE, "/etc/ssl/legacy/admin.pem"))
    checks.certificate_pass(ctx)
