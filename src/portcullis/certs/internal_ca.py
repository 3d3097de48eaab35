"""An internal certificate authority whose private key never leaves the key service (ESMA §29-30).

The CA code only holds an `ExternalSigner`: a public key and a "sign these
bytes" call into key management. pyca/cryptography's builders insist on a
private key object, so each certificate or CRL is built and signed with a
throwaway key of the same algorithm, only to obtain the to-be-signed bytes
with the right signature AlgorithmIdentifier inside; those bytes are then signed
by the external signer and the final DER is assembled here. Issuer name and
key identifiers always come from the real CA key, never from the throwaway one.

Every result is checked before it is returned: the signature must verify under
the CA public key, so a signer that answers with the wrong key (or a faulty
device) produces an error, not a certificate that nobody can verify.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Protocol
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
    CertificatePublicKeyTypes,
    PublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID

MAX_SERIAL_BITS = 159  # RFC 5280 4.1.2.2: at most 20 octets, and positive
MIN_RSA_BITS = 2048
THROWAWAY_RSA_BITS = 2048  # only its AlgorithmIdentifier is used, which does not depend on the size
PSS_SALT_BYTES = 32  # the key service's RSA-PSS salt length (keys/backends/base.py)


class CaError(Exception):
    """The CA refused a request; the message names what is wrong and never carries key material."""


class ExternalSigner(Protocol):
    """A CA key held by key management: its public half, and signatures in the key service's formats."""

    @property
    def algorithm(self) -> str: ...

    def public_key(self) -> PublicKeyTypes: ...

    def sign(self, data: bytes) -> bytes: ...


# --- signature schemes ------------------------------------------------------------------


@dataclass(frozen=True)
class _Scheme:
    throwaway: Callable[[], CertificateIssuerPrivateKeyTypes]
    hash: hashes.SHA256 | None
    rsa_padding: padding.PSS | None
    fits: Callable[[PublicKeyTypes], bool]
    verify: Callable[[CertificateIssuerPublicKeyTypes, bytes, bytes], None]  # raises InvalidSignature


_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT_BYTES)


@cache
def _throwaway_rsa() -> rsa.RSAPrivateKey:
    # Generating RSA keys is slow; this one never signs anything that is kept, so one per process is enough.
    return rsa.generate_private_key(public_exponent=65537, key_size=THROWAWAY_RSA_BITS)


def _verify_ecdsa(key: CertificateIssuerPublicKeyTypes, signature: bytes, data: bytes) -> None:
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(signature, data, ec.ECDSA(hashes.SHA256()))


def _verify_ed25519(key: CertificateIssuerPublicKeyTypes, signature: bytes, data: bytes) -> None:
    assert isinstance(key, ed25519.Ed25519PublicKey)
    key.verify(signature, data)


def _verify_pss(key: CertificateIssuerPublicKeyTypes, signature: bytes, data: bytes) -> None:
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, data, _PSS, hashes.SHA256())


def _rsa_scheme(bits: int) -> _Scheme:
    return _Scheme(
        throwaway=_throwaway_rsa,
        hash=hashes.SHA256(),
        rsa_padding=_PSS,
        fits=lambda k: isinstance(k, rsa.RSAPublicKey) and k.key_size == bits,
        verify=_verify_pss,
    )


_SCHEMES: dict[str, _Scheme] = {
    "ecdsa-p256": _Scheme(
        throwaway=lambda: ec.generate_private_key(ec.SECP256R1()),
        hash=hashes.SHA256(),
        rsa_padding=None,
        fits=lambda k: isinstance(k, ec.EllipticCurvePublicKey) and isinstance(k.curve, ec.SECP256R1),
        verify=_verify_ecdsa,
    ),
    "ed25519": _Scheme(
        throwaway=ed25519.Ed25519PrivateKey.generate,
        hash=None,
        rsa_padding=None,
        fits=lambda k: isinstance(k, ed25519.Ed25519PublicKey),
        verify=_verify_ed25519,
    ),
    "rsa-3072": _rsa_scheme(3072),
    "rsa-4096": _rsa_scheme(4096),
}
_REFUSED = {
    "ecdsa-secp256k1": "secp256k1 is not an X.509 web PKI curve: browsers, OpenSSL policies and pyca refuse it",
    "aes-256": "AES keys do not sign",
}


def _scheme_of(signer: ExternalSigner) -> tuple[_Scheme, CertificateIssuerPublicKeyTypes]:
    name = str(signer.algorithm)
    if name in _REFUSED:
        raise CaError(f"a CA key cannot be {name}: {_REFUSED[name]}")
    scheme = _SCHEMES.get(name)
    if scheme is None:
        raise CaError(f"unsupported CA key algorithm {name!r}; supported: {', '.join(_SCHEMES)}")
    public = signer.public_key()
    if not scheme.fits(public):
        raise CaError(f"the signer says {name} but its public key is {_describe(public)}")
    assert isinstance(public, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey)
    return scheme, public


def _describe(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ecdsa on {key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    return type(key).__name__.removeprefix("_")


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# --- DER assembly -----------------------------------------------------------------------


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _der_item(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER item at `pos`."""
    tag, first = der[pos], der[pos + 1]
    pos += 2
    if first < 0x80:
        return tag, pos, pos + first
    width = first & 0x7F
    return tag, pos + width, pos + width + int.from_bytes(der[pos : pos + width], "big")


def _signature_algorithm(tbs: bytes) -> bytes:
    """The AlgorithmIdentifier inside a TBSCertificate or TBSCertList, byte for byte.

    It is the first SEQUENCE in either: a certificate puts only [0] version and
    the serial INTEGER before it, a CRL only its version INTEGER.
    """
    _, pos, end = _der_item(tbs, 0)
    while pos < end:
        tag, _, stop = _der_item(tbs, pos)
        if tag == 0x30:
            return tbs[pos:stop]
        if tag not in (0xA0, 0x02):
            break
        pos = stop
    raise CaError("internal error: no signature AlgorithmIdentifier in the to-be-signed bytes")


def _sign_tbs(signer: ExternalSigner, scheme: _Scheme, public: CertificateIssuerPublicKeyTypes, tbs: bytes) -> bytes:
    """SEQUENCE { tbs, signatureAlgorithm, BIT STRING signature } signed by the external signer, checked."""
    signature = signer.sign(tbs)
    if not isinstance(signature, bytes):
        raise CaError(f"the {signer.algorithm} signer returned {type(signature).__name__}, not bytes")
    try:
        scheme.verify(public, signature, tbs)
    except (InvalidSignature, ValueError):
        raise CaError(
            f"the {signer.algorithm} signer's signature does not verify under its public key: "
            "wrong key behind the signer, or a faulty signing device"
        ) from None
    return _der(0x30, tbs + _signature_algorithm(tbs) + _der(0x03, b"\x00" + signature))


# --- input checks -----------------------------------------------------------------------


def _utc(field: str, when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise CaError(f"{field} must be timezone-aware, got naive {when.isoformat()}")
    # X.509 times have whole seconds: compare what will actually be written.
    return when.astimezone(UTC).replace(microsecond=0)


def _period(not_before: datetime, not_after: datetime) -> tuple[datetime, datetime]:
    start, end = _utc("not_before", not_before), _utc("not_after", not_after)
    if start >= end:
        raise CaError(f"not_before {start.isoformat()} must be before not_after {end.isoformat()}")
    return start, end


def _serial(serial: int | None) -> int:
    if serial is None:
        fresh = 0
        while fresh == 0:  # random_serial_number() is 159 random bits, so zero is possible, if unlikely
            fresh = x509.random_serial_number()
        return fresh
    if not 0 < serial < 2**MAX_SERIAL_BITS:
        raise CaError(f"serial must be a positive integer below 2**{MAX_SERIAL_BITS}, got {serial}")
    return serial


_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _general_names(sans: Sequence[str]) -> list[x509.GeneralName]:
    """DNS names (lower-cased, a leading '*.' allowed) and IP literals, in order, without repeats."""
    if isinstance(sans, str):
        raise CaError(f"sans must be a sequence of names, not the single string {sans!r}")
    names: list[x509.GeneralName] = []
    for raw in sans:
        name: x509.GeneralName
        try:
            ip = ipaddress.ip_address(raw)
        except ValueError:
            name = x509.DNSName(_dns_name(raw))
        else:
            if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
                raise CaError(f"subject alternative name {raw!r}: a scoped IPv6 address cannot be certified")
            name = x509.IPAddress(ip)
        if name not in names:
            names.append(name)
    if not names:
        raise CaError("at least one subject alternative name (DNS name or IP address) is needed")
    return names


def _dns_name(raw: str) -> str:
    name = raw.lower()
    labels = name.removeprefix("*.").split(".")
    if not raw.isascii():
        raise CaError(f"subject alternative name {raw!r}: write internationalised names in IDNA (xn--) form")
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise CaError(f"subject alternative name {raw!r} is neither an IP address nor a valid DNS name")
    return name


def _crl_distribution_points(crl_url: str) -> x509.CRLDistributionPoints:
    parts = urlsplit(crl_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CaError(f"crl_url must be an http(s) URL, got {crl_url!r}")
    point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(crl_url)], relative_name=None, reasons=None, crl_issuer=None
    )
    return x509.CRLDistributionPoints([point])


def _check_leaf_key(public_key: CertificatePublicKeyTypes) -> None:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1 | ec.SECP384R1 | ec.SECP521R1):
            raise CaError(f"leaf public key: curve {public_key.curve.name} is refused; use P-256, P-384 or P-521")
    elif isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise CaError(f"leaf public key: rsa-{public_key.key_size} is too short; at least {MIN_RSA_BITS} bits")
    elif not isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        raise CaError(f"leaf public key: {_describe(public_key)} keys are refused; use ECDSA, Ed25519 or RSA")


def _check_ca(signer: ExternalSigner, ca_cert: x509.Certificate, usage: str) -> None:
    """The CA certificate must be a CA for `usage` ('key_cert_sign' or 'crl_sign') and hold the signer's key."""
    subject = ca_cert.subject.rfc4514_string()
    try:
        constraints = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise CaError(f"certificate {subject!r} is not a CA certificate (basicConstraints cA is not true)")
    try:
        key_usage = ca_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        pass
    else:
        if not getattr(key_usage, usage):
            raise CaError(f"CA certificate {subject!r} does not allow {usage} in its keyUsage")
    if _spki(signer.public_key()) != _spki(ca_cert.public_key()):
        raise CaError(f"the signer's key is not the key of CA certificate {subject!r}")


def _authority_key_id(
    ca_cert: x509.Certificate, public: CertificateIssuerPublicKeyTypes
) -> x509.AuthorityKeyIdentifier:
    # Reuse the CA's own SKI so the two match byte for byte, however it was computed.
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(public)
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _finish_certificate(
    signer: ExternalSigner, scheme: _Scheme, public: CertificateIssuerPublicKeyTypes, builder: x509.CertificateBuilder
) -> x509.Certificate:
    draft = builder.sign(scheme.throwaway(), scheme.hash, rsa_padding=scheme.rsa_padding)
    return x509.load_der_x509_certificate(_sign_tbs(signer, scheme, public, draft.tbs_certificate_bytes))


# --- the CA -----------------------------------------------------------------------------


def create_ca_certificate(
    signer: ExternalSigner,
    *,
    subject: x509.Name,
    not_before: datetime,
    not_after: datetime,
    path_length: int | None = 0,
) -> x509.Certificate:
    """A self-signed root CA certificate for the signer's key; path_length 0 means it issues only leaves."""
    scheme, public = _scheme_of(signer)
    if not subject.rdns:
        raise CaError("a CA certificate needs a non-empty subject name: it becomes the issuer of everything it signs")
    if path_length is not None and path_length < 0:
        raise CaError(f"path_length must be None or at least 0, got {path_length}")
    start, end = _period(not_before, not_after)
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(_serial(None))
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    return _finish_certificate(signer, scheme, public, builder)


def _key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def issue_certificate(
    signer: ExternalSigner,
    ca_cert: x509.Certificate,
    *,
    public_key: CertificatePublicKeyTypes,
    subject: x509.Name,
    sans: Sequence[str],
    not_before: datetime,
    not_after: datetime,
    serial: int | None = None,
    server: bool = True,
    client: bool = False,
    crl_url: str | None = None,
) -> x509.Certificate:
    """An end-entity certificate for `public_key`, signed by the CA key behind `signer`.

    `sans` are DNS names or IP literals (at least one); the serial is a random
    159-bit number when None; `server` / `client` choose the extended key usages.
    """
    scheme, issuer_public = _scheme_of(signer)
    _check_ca(signer, ca_cert, "key_cert_sign")
    _check_leaf_key(public_key)
    start, end = _period(not_before, not_after)
    ca_end = ca_cert.not_valid_after_utc
    if end > ca_end:
        raise CaError(
            f"not_after {end.isoformat()} is after the CA certificate's not_after {ca_end.isoformat()}: "
            "renew the CA first or shorten the certificate"
        )
    usages = [
        oid
        for wanted, oid in ((server, ExtendedKeyUsageOID.SERVER_AUTH), (client, ExtendedKeyUsageOID.CLIENT_AUTH))
        if wanted
    ]
    if not usages:
        raise CaError("a certificate must be for server or client authentication (server and client both False)")
    rsa_key = isinstance(public_key, rsa.RSAPublicKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(_serial(serial))
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, key_encipherment=rsa_key), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        # RFC 5280 4.2.1.6: with an empty subject the names are all in the SAN, which must then be critical.
        .add_extension(x509.SubjectAlternativeName(_general_names(sans)), critical=not subject.rdns)
        .add_extension(_authority_key_id(ca_cert, issuer_public), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if crl_url is not None:
        builder = builder.add_extension(_crl_distribution_points(crl_url), critical=False)
    return _finish_certificate(signer, scheme, issuer_public, builder)


def issue_from_csr(
    signer: ExternalSigner,
    ca_cert: x509.Certificate,
    csr: x509.CertificateSigningRequest,
    *,
    not_before: datetime,
    not_after: datetime,
    allowed_names: Callable[[str], bool] | None,
    subject: x509.Name | None = None,
    serial: int | None = None,
    server: bool = True,
    client: bool = False,
    crl_url: str | None = None,
) -> x509.Certificate:
    """A certificate for a CSR's key and requested SANs, each of which `allowed_names` must accept (None: all).

    Only the key, the subject (unless `subject` replaces it) and the SANs are
    taken from the CSR; every other requested extension is ignored, so a CSR
    cannot ask for CA rights or extra usages.
    """
    if not _csr_signature_valid(csr):
        raise CaError("the CSR's signature is invalid: it was altered, or not signed by the key it carries")
    names = _csr_names(csr)
    if allowed_names is not None:
        refused = [name for name in names if not allowed_names(name)]
        if refused:
            raise CaError(f"the CSR asks for names this requester may not have: {', '.join(refused)}")
    return issue_certificate(
        signer,
        ca_cert,
        public_key=csr.public_key(),
        subject=csr.subject if subject is None else subject,
        sans=names,
        not_before=not_before,
        not_after=not_after,
        serial=serial,
        server=server,
        client=client,
        crl_url=crl_url,
    )


def _csr_signature_valid(csr: x509.CertificateSigningRequest) -> bool:
    try:
        return csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm):  # a key or signature pyca cannot even read is no better
        return False


def _csr_names(csr: x509.CertificateSigningRequest) -> list[str]:
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CaError("the CSR requests no subject alternative names: add DNS names or IP addresses to it") from None
    except ValueError as e:  # duplicate or malformed extensions; pyca's message names the extension, not key bytes
        raise CaError(f"the CSR's extension request is malformed: {e}") from None
    names: list[str] = []
    for general_name in san:
        if isinstance(general_name, x509.DNSName):
            names.append(general_name.value.lower())  # what allowed_names judges is what gets certified
        elif isinstance(general_name, x509.IPAddress) and not isinstance(
            general_name.value, ipaddress.IPv4Network | ipaddress.IPv6Network
        ):
            names.append(str(general_name.value))
        else:
            raise CaError(f"the CSR requests a {type(general_name).__name__} name; only DNS names and IP addresses")
    if not names:
        raise CaError("the CSR's subject alternative name extension is empty")
    return names


def create_crl(
    signer: ExternalSigner,
    ca_cert: x509.Certificate,
    *,
    revoked: Sequence[tuple[int, datetime, x509.ReasonFlags | None]],
    this_update: datetime,
    next_update: datetime,
    crl_number: int,
) -> x509.CertificateRevocationList:
    """A CRL of (serial, revocation time, reason) entries, signed by the CA key behind `signer`.

    The reason 'unspecified' is written as no reason code, as RFC 5280 5.3.1 asks;
    'removeFromCRL' belongs to delta CRLs and is refused.
    """
    scheme, public = _scheme_of(signer)
    _check_ca(signer, ca_cert, "crl_sign")
    this, following = _utc("this_update", this_update), _utc("next_update", next_update)
    if this >= following:
        raise CaError(f"this_update {this.isoformat()} must be before next_update {following.isoformat()}")
    if not 0 <= crl_number < 2**MAX_SERIAL_BITS:
        raise CaError(f"crl_number must be between 0 and 2**{MAX_SERIAL_BITS}, got {crl_number}")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(this)
        .next_update(following)
        .add_extension(_authority_key_id(ca_cert, public), critical=False)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
    )
    seen: set[int] = set()
    for serial, when, reason in revoked:
        builder = builder.add_revoked_certificate(_revoked_entry(serial, when, reason, this, seen))
    draft = builder.sign(scheme.throwaway(), scheme.hash, rsa_padding=scheme.rsa_padding)
    return x509.load_der_x509_crl(_sign_tbs(signer, scheme, public, draft.tbs_certlist_bytes))


def _revoked_entry(
    serial: int, when: datetime, reason: x509.ReasonFlags | None, this_update: datetime, seen: set[int]
) -> x509.RevokedCertificate:
    if not 0 < serial < 2**160:
        raise CaError(f"revoked serial {serial} is not a valid certificate serial (positive, at most 20 octets)")
    if serial in seen:
        raise CaError(f"revoked serial {serial:#x} is listed twice")
    seen.add(serial)
    revoked_at = _utc(f"revocation date of serial {serial:#x}", when)
    if revoked_at > this_update:
        raise CaError(f"serial {serial:#x} is revoked at {revoked_at.isoformat()}, after the CRL's this_update")
    if reason is x509.ReasonFlags.remove_from_crl:
        raise CaError(f"serial {serial:#x}: removeFromCRL is only for delta CRLs")
    entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at)
    if reason is not None and reason is not x509.ReasonFlags.unspecified:
        entry = entry.add_extension(x509.CRLReason(reason), critical=False)
    return entry.build()
