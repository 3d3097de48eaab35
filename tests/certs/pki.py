"""Throwaway PKIs for tests: a root, an intermediate and a leaf built with pyca/cryptography.

`issue()` makes one certificate with the options tests vary (validity, key type and size, hash, SANs or
none, CA flag). `rewrite()` re-signs a certificate with asn1crypto where pyca/cryptography refuses to build
what the real world still holds: SHA-1 or MD5 signatures, v1 certificates, negative or huge serials,
odd name encodings, unknown signature OIDs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import algos as asn1_algos
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PrivateKey = CertificateIssuerPrivateKeyTypes

_CURVES: dict[int, ec.EllipticCurve] = {
    192: ec.SECP192R1(),
    224: ec.SECP224R1(),
    256: ec.SECP256R1(),
    384: ec.SECP384R1(),
    521: ec.SECP521R1(),
}
_BuilderHash = hashes.SHA224 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512
_BUILDER_HASHES: dict[str, _BuilderHash] = {
    "sha224": hashes.SHA224(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}
# Weak on purpose: the register must recognise certificates signed with these.
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "md5": hashes.MD5(),  # noqa: S303
    "sha1": hashes.SHA1(),  # noqa: S303
    **_BUILDER_HASHES,
}


def new_key(key_type: str = "ec", size: int | None = None) -> PrivateKey:
    """rsa (2048 unless `size`), ec (P-256 unless `size` in 192/224/256/384/521), ed25519, ed448, dsa (2048)."""
    if key_type == "rsa":
        return rsa.generate_private_key(65537, size or 2048)
    if key_type == "ec":
        return ec.generate_private_key(_CURVES[size or 256])
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "ed448":
        return ed448.Ed448PrivateKey.generate()
    if key_type == "dsa":
        return dsa.generate_private_key(size or 2048)
    raise ValueError(f"unknown key type {key_type!r}")


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, passphrase: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
        )
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def general_name(text: str) -> x509.GeneralName:
    """ "email:a@b", "uri:https://..", an IP address, or else a DNS name."""
    if text.startswith("email:"):
        return x509.RFC822Name(text.removeprefix("email:"))
    if text.startswith("uri:"):
        return x509.UniformResourceIdentifier(text.removeprefix("uri:"))
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        return x509.DNSName(text)


def issue(
    cn: str,
    *,
    issuer: Issued | None = None,
    key: PrivateKey | None = None,
    key_type: str = "ec",
    key_size: int | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    now: datetime = NOW,
    sans: Sequence[str] | None = None,
    ca: bool = False,
    path_len: int | None = None,
    hash_name: str | None = "sha256",
    serial: int | None = None,
    eku: Sequence[x509.ObjectIdentifier] | None = None,
) -> Issued:
    """One certificate, self-signed unless `issuer`. sans=None: no SAN extension at all.

    Leaves default to 30 days old with 60 left, CAs to a year old with nine left. `hash_name` "sha1" or
    "md5" is done by re-signing, since pyca/cryptography no longer signs with them.
    """
    key = key or new_key(key_type, key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_name = issuer.cert.subject if issuer else name
    signer = issuer.key if issuer else key
    if not_before is None:
        not_before = now - timedelta(days=365 if ca else 30)
    if not_after is None:
        not_after = now + timedelta(days=3650 if ca else 60)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(public)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=not ca and isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(eku) if eku is not None else [ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
    if sans is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([general_name(s) for s in sans]), critical=False)
    ed = isinstance(signer, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
    if hash_name in ("sha1", "md5"):
        cert = builder.sign(signer, None if ed else hashes.SHA256())
        return Issued(rewrite(cert, signer, hash_name=hash_name), key)
    cert = builder.sign(signer, None if ed or hash_name is None else _BUILDER_HASHES[hash_name])
    return Issued(cert, key)


@dataclass(frozen=True)
class PKI:
    root: Issued
    intermediate: Issued
    leaf: Issued

    @property
    def chain(self) -> list[x509.Certificate]:
        """As a server sends it: leaf first, then the intermediate (no root)."""
        return [self.leaf.cert, self.intermediate.cert]


def make_pki(
    host: str = "www.example.test",
    *,
    now: datetime = NOW,
    root: dict[str, Any] | None = None,
    intermediate: dict[str, Any] | None = None,
    leaf: dict[str, Any] | None = None,
) -> PKI:
    """Root -> intermediate -> leaf for `host`; each dict holds extra `issue()` options for that level."""
    r = issue("Test Root CA", ca=True, now=now, **(root or {}))
    i = issue("Test Intermediate CA", ca=True, path_len=0, issuer=r, now=now, **(intermediate or {}))
    leaf_opts: dict[str, Any] = {"sans": [host], **(leaf or {})}
    return PKI(r, i, issue(host, issuer=i, now=now, **leaf_opts))


def rewrite(
    cert: x509.Certificate,
    signer: PrivateKey,
    *,
    hash_name: str = "sha256",
    version: int | None = None,
    serial: int | None = None,
    subject: bytes | None = None,
    issuer: bytes | None = None,
    signature_oid: str | None = None,
) -> x509.Certificate:
    """Re-sign `cert` with changes pyca/cryptography will not make.

    version=1 drops every extension. subject/issuer are the DER of a Name (see `raw_name`).
    signature_oid puts an arbitrary algorithm OID in both places (the signature is then meaningless).
    """
    old = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))["tbs_certificate"]
    algorithm = {"algorithm": signature_oid or _signature_oid(signer, hash_name)}
    fields: dict[str, Any] = {
        "version": "v1" if version == 1 else "v3",
        "serial_number": serial if serial is not None else old["serial_number"].native,
        "signature": algorithm,
        "issuer": asn1_x509.Name.load(issuer) if issuer is not None else old["issuer"],
        "validity": old["validity"],
        "subject": asn1_x509.Name.load(subject) if subject is not None else old["subject"],
        "subject_public_key_info": old["subject_public_key_info"],
    }
    if version != 1:
        fields["extensions"] = old["extensions"]
    tbs = asn1_x509.TbsCertificate(fields)
    tbs_der = tbs.dump()
    signed = asn1_x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": algorithm,
            "signature_value": _sign(signer, tbs_der, hash_name),
        }
    )
    return x509.load_der_x509_certificate(signed.dump())


def raw_name(tag: int, value: bytes, oid: bytes = b"\x55\x04\x03") -> bytes:
    """DER of a one-attribute Name (CN by default) whose value has ASN.1 tag `tag` and raw `value` bytes.

    E.g. tag 0x14 (T61String) with Latin-1 bytes, 0x13 (PrintableString) with "*", 0x0c with bad UTF-8.
    """
    atv = _tlv(0x30, _tlv(0x06, oid) + _tlv(tag, value))
    return _tlv(0x30, _tlv(0x31, atv))


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(octets)]) + octets
    return bytes([tag]) + length + content


def _signature_oid(signer: PrivateKey, hash_name: str) -> str:
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        name = "ed25519"
    elif isinstance(signer, ed448.Ed448PrivateKey):
        name = "ed448"
    elif isinstance(signer, rsa.RSAPrivateKey):
        name = f"{hash_name}_rsa"
    elif isinstance(signer, ec.EllipticCurvePrivateKey):
        name = f"{hash_name}_ecdsa"
    else:
        name = f"{hash_name}_dsa"
    return str(asn1_algos.SignedDigestAlgorithmId(name).dotted)


def _sign(signer: PrivateKey, data: bytes, hash_name: str) -> bytes:
    if isinstance(signer, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return signer.sign(data)
    digest = _HASHES[hash_name]
    if isinstance(signer, rsa.RSAPrivateKey):
        return signer.sign(data, padding.PKCS1v15(), digest)
    if isinstance(signer, ec.EllipticCurvePrivateKey):
        return signer.sign(data, ec.ECDSA(digest))
    if isinstance(signer, dsa.DSAPrivateKey):
        return signer.sign(data, digest)
    raise TypeError(f"cannot sign with {type(signer).__name__}")


def localhost_tls(root: Path, names: Sequence[str] = ("localhost", "127.0.0.1")) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate from it for `names`, for test servers' listeners: (ca, cert, key)."""
    now = datetime.now(UTC)
    ca = issue("Portcullis test listener CA", ca=True, path_len=0, now=now)
    leaf = issue(names[0], issuer=ca, sans=list(names), now=now)
    paths = root / "ca.pem", root / "cert.pem", root / "key.pem"
    paths[0].write_bytes(ca.pem)
    paths[1].write_bytes(leaf.pem)
    paths[2].write_bytes(leaf.key_pem())
    return paths
