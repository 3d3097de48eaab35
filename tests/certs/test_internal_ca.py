"""The internal CA signs through the key service's Signer, and others can verify what it makes.

Expectations come from outside the code under test: the key service's own
public key, hashes computed here, pyca's verifiers and the openssl CLI.
"""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

from portcullis.certs.internal_ca import (
    CaError,
    ExternalSigner,
    create_ca_certificate,
    create_crl,
    issue_certificate,
    issue_from_csr,
)
from portcullis.keys import primitives
from portcullis.keys.backends.base import Algorithm
from tests.conftest import need

NOW = datetime.now(UTC).replace(microsecond=0)  # openssl checks validity against the real clock
CA_START, CA_END = NOW - timedelta(days=1), NOW + timedelta(days=365)
LEAF_START, LEAF_END = NOW - timedelta(hours=1), NOW + timedelta(days=90)
SIGNATURE_OIDS = {
    "ecdsa-p256": SignatureAlgorithmOID.ECDSA_WITH_SHA256,
    "ed25519": SignatureAlgorithmOID.ED25519,
    "rsa-3072": SignatureAlgorithmOID.RSASSA_PSS,
}


@dataclass
class KeyServiceSigner:
    """The key service's software Signer behind the CA's ExternalSigner protocol, recording every call."""

    algorithm: str
    spki: bytes  # what the key service hands out as the public key
    signer: primitives.Signer
    signed: list[bytes] = field(default_factory=list)
    signatures: list[bytes] = field(default_factory=list)

    @classmethod
    def generate(cls, algorithm: Algorithm) -> KeyServiceSigner:
        private, public = primitives.generate(algorithm)
        assert public is not None
        return cls(algorithm.value, public, primitives.Signer(algorithm, private))

    def public_key(self) -> PublicKeyTypes:
        return serialization.load_der_public_key(self.spki)

    def sign(self, data: bytes) -> bytes:
        signature = self.signer.sign(data)
        self.signed.append(data)
        self.signatures.append(signature)
        return signature


@dataclass
class ImpostorSigner:
    """Shows one key's public half but signs with another."""

    algorithm: str
    shown: KeyServiceSigner
    actual: KeyServiceSigner

    def public_key(self) -> PublicKeyTypes:
        return self.shown.public_key()

    def sign(self, data: bytes) -> bytes:
        return self.actual.sign(data)


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(signer: ExternalSigner) -> x509.Certificate:
    return create_ca_certificate(signer, subject=name("Portcullis Test CA"), not_before=CA_START, not_after=CA_END)


def leaf_for(
    signer: KeyServiceSigner, ca: x509.Certificate, sans: list[str], public_key: ec.EllipticCurvePublicKey | None = None
) -> x509.Certificate:
    key = public_key or ec.generate_private_key(ec.SECP256R1()).public_key()
    return issue_certificate(
        signer,
        ca,
        public_key=key,
        subject=name(sans[0]),
        sans=sans,
        not_before=LEAF_START,
        not_after=LEAF_END,
        crl_url="http://pki.example.test/ca.crl",
    )


@pytest.fixture(scope="module", params=["ecdsa-p256", "ed25519"])
def ca_signer(request: pytest.FixtureRequest) -> KeyServiceSigner:
    return KeyServiceSigner.generate(Algorithm(request.param))


@pytest.fixture(scope="module")
def p256_signer() -> KeyServiceSigner:
    return KeyServiceSigner.generate(Algorithm.ECDSA_P256)


def pem(path: Path, item: x509.Certificate | x509.CertificateRevocationList) -> str:
    path.write_bytes(item.public_bytes(serialization.Encoding.PEM))
    return str(path)


@pytest.fixture
def openssl() -> str:
    program = shutil.which("openssl")
    if program is None:
        need("the openssl command-line tool")
    assert program is not None
    return program


def openssl_verify(openssl: str, tmp_path: Path, ca: x509.Certificate, leaf: x509.Certificate, *extra: str) -> str:
    result = subprocess.run(
        [openssl, "verify", "-CAfile", pem(tmp_path / "ca.pem", ca), *extra, pem(tmp_path / "leaf.pem", leaf)],
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert (result.returncode == 0) == output.rstrip().endswith(": OK"), output
    return output


def server_verifier(ca: x509.Certificate, dns_name: str) -> verification.ServerVerifier:
    store = verification.Store([ca])
    return verification.PolicyBuilder().store(store).time(NOW).build_server_verifier(x509.DNSName(dns_name))


def key_id(public_key: PublicKeyTypes) -> bytes:
    """RFC 5280 4.2.1.2 method 1, computed here: SHA-1 of the subjectPublicKey bits."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        bits = public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    else:
        assert isinstance(public_key, ed25519.Ed25519PublicKey)
        bits = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha1(bits, usedforsecurity=False).digest()


# --- the CA certificate -----------------------------------------------------------------


def test_ca_certificate_is_a_self_signed_root_of_the_key_service_key(ca_signer: KeyServiceSigner) -> None:
    ca = make_ca(ca_signer)

    ca.verify_directly_issued_by(ca)
    spki = ca.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert spki == ca_signer.spki
    assert ca.subject == ca.issuer == name("Portcullis Test CA")
    assert ca.signature_algorithm_oid == SIGNATURE_OIDS[ca_signer.algorithm]
    assert (ca.not_valid_before_utc, ca.not_valid_after_utc) == (CA_START, CA_END)
    assert ca.version is x509.Version.v3
    assert 0 < ca.serial_number < 2**159
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    expected_id = key_id(ca_signer.public_key())
    assert ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest == expected_id
    assert ca.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == expected_id


def test_ca_path_length_can_be_lifted(p256_signer: KeyServiceSigner) -> None:
    ca = create_ca_certificate(
        p256_signer, subject=name("Root"), not_before=CA_START, not_after=CA_END, path_length=None
    )
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length is None


def test_every_signature_is_the_key_service_signature_over_the_tbs(ca_signer: KeyServiceSigner) -> None:
    before = len(ca_signer.signatures)
    ca = make_ca(ca_signer)
    leaf = leaf_for(ca_signer, ca, ["count.example.test"])
    crl = create_crl(ca_signer, ca, revoked=[], this_update=NOW, next_update=NOW + timedelta(days=7), crl_number=1)

    assert len(ca_signer.signatures) == before + 3
    assert ca_signer.signed[-3:] == [ca.tbs_certificate_bytes, leaf.tbs_certificate_bytes, crl.tbs_certlist_bytes]
    assert ca_signer.signatures[-3:] == [ca.signature, leaf.signature, crl.signature]


def test_a_signer_with_another_key_is_caught(ca_signer: KeyServiceSigner) -> None:
    other = KeyServiceSigner.generate(Algorithm(ca_signer.algorithm))
    impostor = ImpostorSigner(ca_signer.algorithm, shown=ca_signer, actual=other)
    with pytest.raises(CaError, match="does not verify under its public key"):
        make_ca(impostor)

    ca = make_ca(ca_signer)
    with pytest.raises(CaError, match="not the key of CA certificate"):
        leaf_for(other, ca, ["stranger.example.test"])
    with pytest.raises(CaError, match="not the key of CA certificate"):
        create_crl(other, ca, revoked=[], this_update=NOW, next_update=NOW + timedelta(days=1), crl_number=1)


def test_a_certificate_signed_by_another_key_does_not_verify(ca_signer: KeyServiceSigner) -> None:
    # The same TBS signed by a different key is what the CA would emit had it ignored the real signer.
    ca = make_ca(ca_signer)
    other = KeyServiceSigner.generate(Algorithm(ca_signer.algorithm))
    other_ca = make_ca(other)
    assert ca.issuer == other_ca.subject
    with pytest.raises(InvalidSignature):
        ca.verify_directly_issued_by(other_ca)


@pytest.mark.parametrize(
    ("algorithm", "message"),
    [("ecdsa-secp256k1", "secp256k1"), ("aes-256", "do not sign"), ("dsa", "unsupported CA key algorithm 'dsa'")],
)
def test_algorithms_that_cannot_make_a_ca_are_refused(
    p256_signer: KeyServiceSigner, algorithm: str, message: str
) -> None:
    signer = KeyServiceSigner(algorithm, p256_signer.spki, p256_signer.signer)
    with pytest.raises(CaError, match=message):
        make_ca(signer)


def test_an_algorithm_that_does_not_match_the_key_is_refused(p256_signer: KeyServiceSigner) -> None:
    signer = KeyServiceSigner("ed25519", p256_signer.spki, p256_signer.signer)
    with pytest.raises(CaError, match="says ed25519 but its public key is ecdsa on secp256r1"):
        make_ca(signer)
    assert signer.signatures == []


# --- leaves -----------------------------------------------------------------------------


def test_leaf_is_issued_by_the_ca_and_openssl_agrees(ca_signer: KeyServiceSigner, openssl: str, tmp_path: Path) -> None:
    ca = make_ca(ca_signer)
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    leaf = leaf_for(ca_signer, ca, ["app.example.test", "10.1.2.3", "2001:db8::7"], public_key=key)

    leaf.verify_directly_issued_by(ca)
    assert "OK" in openssl_verify(openssl, tmp_path, ca, leaf)
    assert leaf.issuer == ca.subject
    assert leaf.subject == name("app.example.test")
    assert leaf.public_key() == key
    assert (leaf.not_valid_before_utc, leaf.not_valid_after_utc) == (LEAF_START, LEAF_END)
    assert leaf.signature_algorithm_oid == SIGNATURE_OIDS[ca_signer.algorithm]
    ext = leaf.extensions
    constraints = ext.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert not constraints.value.ca
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not (usage.value.key_encipherment)
    assert not (usage.value.key_cert_sign)
    assert not (usage.value.crl_sign)
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    san = ext.get_extension_for_class(x509.SubjectAlternativeName)
    assert not san.critical  # the subject is not empty
    assert san.value.get_values_for_type(x509.DNSName) == ["app.example.test"]
    assert san.value.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.1.2.3"),
        ipaddress.ip_address("2001:db8::7"),
    ]
    assert ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == key_id(
        ca_signer.public_key()
    )
    assert ext.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest == key_id(key)
    (point,) = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert point.full_name == [x509.UniformResourceIdentifier("http://pki.example.test/ca.crl")]


def test_pyca_web_pki_verifier_accepts_the_leaf_for_its_names_only(
    p256_signer: KeyServiceSigner,
) -> None:
    ca = make_ca(p256_signer)
    leaf = leaf_for(p256_signer, ca, ["api.example.test", "192.0.2.10"])

    chain = server_verifier(ca, "api.example.test").verify(leaf, [])
    assert chain == [leaf, ca]
    by_ip = verification.PolicyBuilder().store(verification.Store([ca])).time(NOW)
    assert by_ip.build_server_verifier(x509.IPAddress(ipaddress.ip_address("192.0.2.10"))).verify(leaf, [])
    with pytest.raises(verification.VerificationError):
        server_verifier(ca, "other.example.test").verify(leaf, [])


def test_pyca_refuses_ed25519_cas_but_openssl_accepts_them(openssl: str, tmp_path: Path) -> None:
    # Recorded so nobody is surprised: the web PKI profile pyca enforces has no Ed25519.
    signer = KeyServiceSigner.generate(Algorithm.ED25519)
    ca = make_ca(signer)
    leaf = leaf_for(signer, ca, ["ed.example.test"])
    with pytest.raises(verification.VerificationError, match="Forbidden public key algorithm"):
        server_verifier(ca, "ed.example.test").verify(leaf, [])
    assert "OK" in openssl_verify(openssl, tmp_path, ca, leaf)


def test_client_certificate_is_accepted_by_a_client_verifier(p256_signer: KeyServiceSigner) -> None:
    ca = make_ca(p256_signer)
    leaf = issue_certificate(
        p256_signer,
        ca,
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        subject=x509.Name([]),
        sans=["svc.example.test"],
        not_before=LEAF_START,
        not_after=LEAF_END,
        server=False,
        client=True,
    )
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical  # empty subject
    verified = verification.PolicyBuilder().store(verification.Store([ca])).time(NOW).build_client_verifier()
    assert verified.verify(leaf, []).subjects == [x509.DNSName("svc.example.test")]
    with pytest.raises(verification.VerificationError):
        server_verifier(ca, "svc.example.test").verify(leaf, [])


def test_rsa_leaf_keys_get_key_encipherment(p256_signer: KeyServiceSigner) -> None:
    ca = make_ca(p256_signer)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    leaf = issue_certificate(
        p256_signer,
        ca,
        public_key=key,
        subject=name("rsa.example.test"),
        sans=["rsa.example.test"],
        not_before=LEAF_START,
        not_after=LEAF_END,
        serial=0x1234,
    )
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.key_encipherment
    assert leaf.serial_number == 0x1234
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints)


def test_rsa_ca_signs_rsassa_pss_that_pyca_and_openssl_verify(openssl: str, tmp_path: Path) -> None:
    signer = KeyServiceSigner.generate(Algorithm.RSA_3072)
    ca = make_ca(signer)
    leaf = leaf_for(signer, ca, ["pss.example.test"])

    assert ca.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS
    ca_key = ca.public_key()
    assert isinstance(ca_key, rsa.RSAPublicKey)
    # PSS verification with a fixed salt length checks that length too.
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=primitives.PSS_SALT_BYTES)
    ca_key.verify(leaf.signature, leaf.tbs_certificate_bytes, pss, hashes.SHA256())
    leaf.verify_directly_issued_by(ca)
    assert server_verifier(ca, "pss.example.test").verify(leaf, []) == [leaf, ca]
    assert "OK" in openssl_verify(openssl, tmp_path, ca, leaf)


def test_random_serials_are_positive_159_bit_and_distinct(p256_signer: KeyServiceSigner) -> None:
    ca = make_ca(p256_signer)
    serials = {leaf_for(p256_signer, ca, ["s.example.test"]).serial_number for _ in range(5)}
    assert len(serials) == 5
    assert all(0 < serial < 2**159 for serial in serials)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"not_after": CA_END + timedelta(seconds=1)}, "after the CA certificate's not_after"),
        ({"not_before": LEAF_END}, "must be before not_after"),
        ({"not_after": LEAF_END.replace(tzinfo=None)}, "not_after must be timezone-aware"),
        ({"sans": []}, "at least one subject alternative name"),
        ({"sans": "one.example.test"}, "not the single string"),
        ({"sans": ["bad name.example.test"]}, "'bad name.example.test' is neither an IP address nor a valid DNS"),
        ({"sans": ["-x.example.test"]}, "valid DNS name"),
        ({"sans": ["bücher.example"]}, "IDNA"),
        ({"server": False}, "server or client"),
        ({"serial": 0}, "serial must be a positive integer"),
        ({"serial": 2**159}, "serial must be a positive integer"),
        ({"crl_url": "ldap://pki.example.test/crl"}, "crl_url must be an http"),
        ({"public_key": ec.generate_private_key(ec.SECP256K1()).public_key()}, "curve secp256k1 is refused"),
    ],
)
def test_bad_leaf_requests_are_refused(p256_signer: KeyServiceSigner, changes: dict[str, object], message: str) -> None:
    ca = make_ca(p256_signer)
    request: dict[str, object] = {
        "public_key": ec.generate_private_key(ec.SECP256R1()).public_key(),
        "subject": name("leaf"),
        "sans": ["leaf.example.test"],
        "not_before": LEAF_START,
        "not_after": LEAF_END,
    }
    request.update(changes)
    with pytest.raises(CaError, match=message):
        issue_certificate(p256_signer, ca, **request)  # type: ignore[arg-type]


def test_the_ca_end_itself_is_allowed_and_microseconds_do_not_count(p256_signer: KeyServiceSigner) -> None:
    ca = make_ca(p256_signer)
    leaf = issue_certificate(
        p256_signer,
        ca,
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        subject=name("long"),
        sans=["long.example.test"],
        not_before=LEAF_START,
        not_after=CA_END + timedelta(microseconds=999),
    )
    assert leaf.not_valid_after_utc == CA_END


def test_a_leaf_cannot_issue(p256_signer: KeyServiceSigner) -> None:
    leaf_key = KeyServiceSigner.generate(Algorithm.ECDSA_P256)
    ca = make_ca(p256_signer)
    leaf_public = leaf_key.public_key()
    assert isinstance(leaf_public, ec.EllipticCurvePublicKey)
    leaf = leaf_for(p256_signer, ca, ["leaf.example.test"], public_key=leaf_public)
    with pytest.raises(CaError, match="is not a CA certificate"):
        leaf_for(leaf_key, leaf, ["grandchild.example.test"])


# --- CSRs -------------------------------------------------------------------------------


def csr_for(
    sans: list[x509.GeneralName] | None, *, extra: x509.ExtensionType | None = None
) -> tuple[ec.EllipticCurvePrivateKey, x509.CertificateSigningRequest]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(name("requested.example.test"))
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if extra is not None:
        builder = builder.add_extension(extra, critical=True)
    return key, builder.sign(key, hashes.SHA256())


def from_csr(
    signer: KeyServiceSigner, ca: x509.Certificate, csr: x509.CertificateSigningRequest, allowed: set[str] | None
) -> x509.Certificate:
    return issue_from_csr(
        signer,
        ca,
        csr,
        not_before=LEAF_START,
        not_after=LEAF_END,
        allowed_names=None if allowed is None else allowed.__contains__,
    )


def test_a_good_csr_gets_its_key_subject_and_names(ca_signer: KeyServiceSigner) -> None:
    ca = make_ca(ca_signer)
    key, csr = csr_for(
        [x509.DNSName("requested.example.test"), x509.IPAddress(ipaddress.ip_address("198.51.100.4"))],
        extra=x509.BasicConstraints(ca=True, path_length=None),  # asks for CA rights; must not get them
    )
    asked: list[str] = []

    def allowed(candidate: str) -> bool:
        asked.append(candidate)
        return True

    leaf = issue_from_csr(ca_signer, ca, csr, not_before=LEAF_START, not_after=LEAF_END, allowed_names=allowed)

    leaf.verify_directly_issued_by(ca)
    assert asked == ["requested.example.test", "198.51.100.4"]
    assert leaf.public_key() == key.public_key()
    assert leaf.subject == name("requested.example.test")
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["requested.example.test"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("198.51.100.4")]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_a_csr_with_a_tampered_signature_is_refused(p256_signer: KeyServiceSigner) -> None:
    ca = make_ca(p256_signer)
    _, csr = csr_for([x509.DNSName("requested.example.test")])
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte of the signature's s
    tampered = x509.load_der_x509_csr(bytes(der))
    assert not tampered.is_signature_valid
    with pytest.raises(CaError, match="CSR's signature is invalid"):
        from_csr(p256_signer, ca, tampered, None)


def test_a_csr_asking_for_names_not_allowed_is_refused_naming_them(p256_signer: KeyServiceSigner) -> None:
    ca = make_ca(p256_signer)
    _, csr = csr_for([x509.DNSName("mine.example.test"), x509.DNSName("bank.example.com")])
    with pytest.raises(CaError, match=r"may not have: bank\.example\.com$"):
        from_csr(p256_signer, ca, csr, {"mine.example.test"})


def test_a_csr_without_names_is_refused(p256_signer: KeyServiceSigner) -> None:
    ca = make_ca(p256_signer)
    _, csr = csr_for(None)
    with pytest.raises(CaError, match="requests no subject alternative names"):
        from_csr(p256_signer, ca, csr, None)


def test_a_csr_with_other_name_types_is_refused(p256_signer: KeyServiceSigner) -> None:
    ca = make_ca(p256_signer)
    _, csr = csr_for([x509.RFC822Name("someone@example.test")])
    with pytest.raises(CaError, match="RFC822Name"):
        from_csr(p256_signer, ca, csr, None)


# --- CRLs -------------------------------------------------------------------------------


def test_crl_revokes_one_leaf_and_openssl_agrees(ca_signer: KeyServiceSigner, openssl: str, tmp_path: Path) -> None:
    ca = make_ca(ca_signer)
    revoked_leaf = leaf_for(ca_signer, ca, ["revoked.example.test"])
    good_leaf = leaf_for(ca_signer, ca, ["good.example.test"])
    revoked_at = NOW - timedelta(minutes=5)
    crl = create_crl(
        ca_signer,
        ca,
        revoked=[(revoked_leaf.serial_number, revoked_at, x509.ReasonFlags.key_compromise), (0x77, revoked_at, None)],
        this_update=NOW,
        next_update=NOW + timedelta(days=7),
        crl_number=42,
    )

    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert crl.issuer == ca.subject
    assert (crl.last_update_utc, crl.next_update_utc) == (NOW, NOW + timedelta(days=7))
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    assert crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == key_id(
        ca_signer.public_key()
    )
    entry = crl.get_revoked_certificate_by_serial_number(revoked_leaf.serial_number)
    assert entry is not None
    assert entry.revocation_date_utc == revoked_at
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise
    plain = crl.get_revoked_certificate_by_serial_number(0x77)
    assert plain is not None
    assert len(plain.extensions) == 0
    assert crl.get_revoked_certificate_by_serial_number(good_leaf.serial_number) is None

    crl_file = pem(tmp_path / "crl.pem", crl)
    refused = openssl_verify(openssl, tmp_path, ca, revoked_leaf, "-crl_check", "-CRLfile", crl_file)
    assert "certificate revoked" in refused
    assert openssl_verify(openssl, tmp_path, ca, good_leaf, "-crl_check", "-CRLfile", crl_file).endswith(": OK\n")


def test_crl_from_another_key_does_not_verify(p256_signer: KeyServiceSigner) -> None:
    ca = make_ca(p256_signer)
    other = KeyServiceSigner.generate(Algorithm.ECDSA_P256)
    other_ca = make_ca(other)
    crl = create_crl(other, other_ca, revoked=[], this_update=NOW, next_update=NOW + timedelta(days=1), crl_number=0)
    assert crl.is_signature_valid(other_ca.public_key())  # type: ignore[arg-type]
    assert not crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("revoked", "changes", "message"),
    [
        ([(5, NOW, None), (5, NOW, None)], {}, "listed twice"),
        ([(5, NOW + timedelta(seconds=1), None)], {}, "after the CRL's this_update"),
        ([(5, NOW, x509.ReasonFlags.remove_from_crl)], {}, "only for delta CRLs"),
        ([(0, NOW, None)], {}, "not a valid certificate serial"),
        ([], {"next_update": NOW}, "must be before next_update"),
        ([], {"crl_number": -1}, "crl_number must be between"),
        ([], {"this_update": NOW.replace(tzinfo=None)}, "this_update must be timezone-aware"),
    ],
)
def test_bad_crl_requests_are_refused(
    p256_signer: KeyServiceSigner,
    revoked: list[tuple[int, datetime, x509.ReasonFlags | None]],
    changes: dict[str, object],
    message: str,
) -> None:
    ca = make_ca(p256_signer)
    request: dict[str, object] = {"this_update": NOW, "next_update": NOW + timedelta(days=1), "crl_number": 1}
    request.update(changes)
    with pytest.raises(CaError, match=message):
        create_crl(p256_signer, ca, revoked=revoked, **request)  # type: ignore[arg-type]
