"""What the certificate register records about one X.509 certificate (§29), read without ever failing.

Real certificates are often odd: v1 certificates without extensions, negative or over-long serials,
names in T61String or PrintableString with forbidden characters, signature algorithms nobody knows.
pyca/cryptography refuses some of these lazily (on `.subject`, `.extensions`, `.public_key()`); each
such refusal falls back to asn1crypto or a neutral value and leaves a note, so the register still
holds the certificate and says what was odd about it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asn1crypto import core as asn1_core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa, x448, x25519

# Dotted OID -> (name as OpenSSL prints it, digest). RSASSA-PSS carries its digest in parameters.
SIGNATURE_ALGORITHMS: dict[str, tuple[str, str | None]] = {
    "1.2.840.113549.1.1.2": ("md2WithRSAEncryption", "md2"),
    "1.2.840.113549.1.1.4": ("md5WithRSAEncryption", "md5"),
    "1.2.840.113549.1.1.5": ("sha1WithRSAEncryption", "sha1"),
    "1.3.14.3.2.29": ("sha1WithRSA", "sha1"),
    "1.2.840.113549.1.1.14": ("sha224WithRSAEncryption", "sha224"),
    "1.2.840.113549.1.1.11": ("sha256WithRSAEncryption", "sha256"),
    "1.2.840.113549.1.1.12": ("sha384WithRSAEncryption", "sha384"),
    "1.2.840.113549.1.1.13": ("sha512WithRSAEncryption", "sha512"),
    "1.2.840.113549.1.1.10": ("rsassaPss", None),
    "2.16.840.1.101.3.4.3.13": ("RSA-SHA3-224", "sha3-224"),
    "2.16.840.1.101.3.4.3.14": ("RSA-SHA3-256", "sha3-256"),
    "2.16.840.1.101.3.4.3.15": ("RSA-SHA3-384", "sha3-384"),
    "2.16.840.1.101.3.4.3.16": ("RSA-SHA3-512", "sha3-512"),
    "1.2.840.10045.4.1": ("ecdsa-with-SHA1", "sha1"),
    "1.2.840.10045.4.3.1": ("ecdsa-with-SHA224", "sha224"),
    "1.2.840.10045.4.3.2": ("ecdsa-with-SHA256", "sha256"),
    "1.2.840.10045.4.3.3": ("ecdsa-with-SHA384", "sha384"),
    "1.2.840.10045.4.3.4": ("ecdsa-with-SHA512", "sha512"),
    "2.16.840.1.101.3.4.3.9": ("ecdsa_with_SHA3-224", "sha3-224"),
    "2.16.840.1.101.3.4.3.10": ("ecdsa_with_SHA3-256", "sha3-256"),
    "2.16.840.1.101.3.4.3.11": ("ecdsa_with_SHA3-384", "sha3-384"),
    "2.16.840.1.101.3.4.3.12": ("ecdsa_with_SHA3-512", "sha3-512"),
    "1.2.840.10040.4.3": ("dsa_with_SHA1", "sha1"),
    "2.16.840.1.101.3.4.3.1": ("dsa_with_SHA224", "sha224"),
    "2.16.840.1.101.3.4.3.2": ("dsa_with_SHA256", "sha256"),
    "1.3.101.112": ("ed25519", None),
    "1.3.101.113": ("ed448", None),
}

_LEGACY_RSA = {"1.2.840.113549.1.1.4", "1.2.840.113549.1.1.5", "1.3.14.3.2.29"}

EXTENDED_KEY_USAGES: dict[str, str] = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
    "1.3.6.1.4.1.311.20.2.2": "msSmartcardLogin",
    "1.3.6.1.5.2.3.5": "pkInitKDC",
    "2.5.29.37.0": "anyExtendedKeyUsage",
}

# The short names RFC 4514 defines (pyca/cryptography prints the rest as dotted OIDs; so do we).
_RFC4514_NAMES: dict[str, str] = {
    "2.5.4.3": "CN",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.6": "C",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}

_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


@dataclass(frozen=True)
class CertInfo:
    """One certificate as the register stores it. `notes` says what was odd and how it was read."""

    fingerprint_sha256: str
    subject: str
    subject_cn: str | None
    sans: tuple[str, ...]
    issuer: str
    serial_hex: str
    not_before: datetime
    not_after: datetime
    version: int
    is_ca: bool
    path_len: int | None
    key_type: str  # rsa, ec, ed25519, ed448, dsa, x25519, x448, or "unknown" (see notes)
    key_bits: int  # 0 when the key could not be read
    curve: str | None
    signature_algorithm: str  # OpenSSL's name, or the dotted OID when unknown
    signature_hash: str | None  # None for EdDSA and unknown algorithms
    self_signed: bool
    ski: str | None
    aki: str | None
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...]
    notes: tuple[str, ...]
    der: bytes = field(repr=False)


def describe(cert: x509.Certificate) -> CertInfo:
    """Read everything the register needs from `cert`; never raises on odd but loadable certificates."""
    der = cert.public_bytes(serialization.Encoding.DER)
    parsed = _Asn1(der)
    notes: list[str] = []
    subject, subject_cn = _name(lambda: cert.subject, lambda: parsed.tbs["subject"], "subject", notes)
    issuer, _ = _name(lambda: cert.issuer, lambda: parsed.tbs["issuer"], "issuer", notes)
    version = _version(cert)
    serial = cert.serial_number
    if serial <= 0:
        notes.append("serial number is not positive (RFC 5280 §4.1.2.2 requires a positive integer)")
    elif serial.bit_length() > 159:
        notes.append("serial number is longer than the 20 octets RFC 5280 §4.1.2.2 allows")
    try:
        extensions = cert.extensions
    except ValueError as exc:
        notes.append(f"extensions could not be parsed and were ignored: {exc}")
        extensions = x509.Extensions([])
    key_type, key_bits, curve = _key(cert, parsed, notes)
    sig_name, sig_hash = _signature(cert, notes)
    self_signed = _self_signed(cert, parsed, notes)
    basic = _ext(extensions, x509.BasicConstraints)
    if basic is not None:
        is_ca, path_len = basic.ca, basic.path_length
    else:
        # Before v3 there was no way to say "CA"; a self-signed v1 certificate is a root by convention.
        is_ca, path_len = version == 1 and self_signed, None
        if version == 1:
            notes.append(
                "v1 certificate without extensions: "
                + ("treated as a CA because it is self-signed" if self_signed else "treated as an end-entity")
            )
    ski = _ext(extensions, x509.SubjectKeyIdentifier)
    aki = _ext(extensions, x509.AuthorityKeyIdentifier)
    san = _ext(extensions, x509.SubjectAlternativeName)
    eku = _ext(extensions, x509.ExtendedKeyUsage)
    ku = _ext(extensions, x509.KeyUsage)
    return CertInfo(
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        subject=subject,
        subject_cn=subject_cn,
        sans=tuple(general_name_text(n) for n in san) if san is not None else (),
        issuer=issuer,
        serial_hex=serial_hex(serial),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        version=version,
        is_ca=is_ca,
        path_len=path_len,
        key_type=key_type,
        key_bits=key_bits,
        curve=curve,
        signature_algorithm=sig_name,
        signature_hash=sig_hash,
        self_signed=self_signed,
        ski=ski.digest.hex() if ski is not None else None,
        aki=aki.key_identifier.hex() if aki is not None and aki.key_identifier is not None else None,
        key_usage=_key_usage(ku) if ku is not None else (),
        extended_key_usage=tuple(EXTENDED_KEY_USAGES.get(o.dotted_string, o.dotted_string) for o in eku)
        if eku is not None
        else (),
        notes=tuple(notes),
        der=der,
    )


def lifetime_fraction_left(info: CertInfo, now: datetime) -> float:
    """The share of the validity period still ahead at `now`: 1.0 before it starts, 0.0 once expired."""
    total = (info.not_after - info.not_before).total_seconds()
    if total <= 0:
        return 0.0 if now >= info.not_after else 1.0
    left = (info.not_after - now).total_seconds() / total
    return min(1.0, max(0.0, left))


def as_dict(info: CertInfo) -> dict[str, Any]:
    """JSON-safe form (ISO 8601 times, lists, no DER) for a JSON column or a ledger record."""
    out: dict[str, Any] = {}
    for name in CertInfo.__dataclass_fields__:
        if name == "der":
            continue
        value = getattr(info, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def serial_hex(serial: int) -> str:
    """Lowercase hex in whole octets, as a CA prints it; a (non-conforming) negative serial gets a minus sign."""
    digits = f"{abs(serial):x}"
    if len(digits) % 2:
        digits = "0" + digits
    return "-" + digits if serial < 0 else digits


def general_name_text(name: x509.GeneralName) -> str:
    """DNS names as they are, IPs as text, other kinds with a prefix so they cannot pass for a host name."""
    if isinstance(name, x509.DNSName):
        return name.value
    if isinstance(name, x509.IPAddress):
        return str(name.value)
    if isinstance(name, x509.RFC822Name):
        return f"email:{name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"uri:{name.value}"
    if isinstance(name, x509.DirectoryName):
        return f"dirname:{_safe_rfc4514(name.value)}"
    if isinstance(name, x509.RegisteredID):
        return f"rid:{name.value.dotted_string}"
    if isinstance(name, x509.OtherName):
        return f"othername:{name.type_id.dotted_string}"
    return f"unknown:{name!r}"


class _Asn1:
    """asn1crypto's view of the same DER, parsed only if a fallback needs it."""

    def __init__(self, der: bytes) -> None:
        self._der = der
        self._cert: asn1_x509.Certificate | None = None

    @property
    def cert(self) -> asn1_x509.Certificate:
        if self._cert is None:
            self._cert = asn1_x509.Certificate.load(self._der)
        return self._cert

    @property
    def tbs(self) -> asn1_x509.TbsCertificate:
        return self.cert["tbs_certificate"]


def _ext(extensions: x509.Extensions, kind: type[Any]) -> Any:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _version(cert: x509.Certificate) -> int:
    try:
        return cert.version.value + 1
    except x509.InvalidVersion as exc:  # v2, or garbage: report what the certificate says
        return exc.parsed_version + 1


def _name(
    modern: Callable[[], x509.Name], legacy: Callable[[], asn1_x509.Name], which: str, notes: list[str]
) -> tuple[str, str | None]:
    try:
        name = modern()
        cns = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        # The last CN is the most specific one, the one a legacy client would have used.
        cn = cns[-1].value if cns else None
        if isinstance(cn, bytes):
            cn = cn.decode("utf-8", "replace")
        return name.rfc4514_string(), cn
    except ValueError as exc:
        notes.append(f"{which} could not be decoded strictly ({_first_line(exc)}); read leniently")
    try:
        return _legacy_name(legacy())
    except ValueError as exc:
        notes.append(f"{which} could not be read at all: {_first_line(exc)}")
        return "", None


def _legacy_name(name: asn1_x509.Name) -> tuple[str, str | None]:
    """RFC 4514 text of a name pyca/cryptography refused; values that do not decode are given as #hex."""
    rdns: list[str] = []
    cn: str | None = None
    for rdn in name.chosen:
        parts = []
        for atv in rdn:
            oid = atv["type"].dotted
            value = atv["value"]
            try:
                native = value.native
                text = _escape(native) if isinstance(native, str) else "#" + value.dump().hex()
            except (ValueError, UnicodeDecodeError):
                native = None
                text = "#" + value.dump().hex()
            if oid == "2.5.4.3":
                cn = native if isinstance(native, str) else _contents(value).decode("utf-8", "replace")
            parts.append(f"{_RFC4514_NAMES.get(oid, oid)}={text}")
        rdns.append("+".join(parts))
    return ",".join(reversed(rdns)), cn


def _contents(value: asn1_core.Asn1Value) -> bytes:
    chosen = value.chosen if isinstance(value, asn1_core.Choice) else value
    return bytes(chosen.contents or b"")


def _escape(value: str) -> str:
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;' or (i == 0 and ch in "# ") or (i == len(value) - 1 and ch == " "):
            out.append("\\" + ch)
        elif ch == "\0":
            out.append("\\00")
        else:
            out.append(ch)
    return "".join(out)


def _safe_rfc4514(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()
    except ValueError:
        return "?"


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__


def _key(cert: x509.Certificate, parsed: _Asn1, notes: list[str]) -> tuple[str, int, str | None]:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        return _legacy_key(parsed, notes, exc)
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ec", key.curve.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448", 448, None
    if isinstance(key, dsa.DSAPublicKey):
        return "dsa", key.key_size, None
    if isinstance(key, x25519.X25519PublicKey):
        return "x25519", 256, None
    if isinstance(key, x448.X448PublicKey):
        return "x448", 448, None
    notes.append(f"public key of type {type(key).__name__} is not one the register knows")
    return "unknown", 0, None


def _legacy_key(parsed: _Asn1, notes: list[str], exc: Exception) -> tuple[str, int, str | None]:
    try:
        info = parsed.tbs["subject_public_key_info"]
        oid = info["algorithm"]["algorithm"].dotted
    except ValueError:
        notes.append(f"public key could not be read: {_first_line(exc)}")
        return "unknown", 0, None
    notes.append(f"public key (algorithm {oid}) is not supported by pyca/cryptography: {_first_line(exc)}")
    try:
        kind = {"rsa": "rsa", "rsassa_pss": "rsa", "ec": "ec", "dsa": "dsa"}.get(info.algorithm, "unknown")
        curve = info.curve[1] if kind == "ec" and info.curve[0] == "named" else None
        return kind, int(info.bit_size), str(curve) if curve is not None else None
    except (ValueError, KeyError, TypeError):
        return "unknown", 0, None


def _signature(cert: x509.Certificate, notes: list[str]) -> tuple[str, str | None]:
    oid = cert.signature_algorithm_oid.dotted_string
    name, digest = SIGNATURE_ALGORITHMS.get(oid, (oid, None))
    if oid not in SIGNATURE_ALGORITHMS:
        notes.append(f"signature algorithm {oid} is not known")
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return name, digest
    return name, algorithm.name if algorithm is not None else digest


def _self_signed(cert: x509.Certificate, parsed: _Asn1, notes: list[str]) -> bool:
    """Issuer equals subject and the signature verifies with the certificate's own key."""
    try:
        same = cert.issuer == cert.subject
    except ValueError:
        try:
            same = parsed.tbs["issuer"].dump() == parsed.tbs["subject"].dump()
        except ValueError:
            return False
    if not same:
        return False
    try:
        return signed_by(cert, cert.public_key())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        notes.append(f"issuer equals subject but the self-signature could not be checked: {_first_line(exc)}")
        return False


def signed_by(cert: x509.Certificate, key: Any) -> bool:
    """Whether `key` made the signature on `cert`. Raises for algorithms that cannot be checked here."""
    digest = cert.signature_hash_algorithm
    params = cert.signature_algorithm_parameters
    tbs, signature = cert.tbs_certificate_bytes, cert.signature
    if params is None and cert.signature_algorithm_oid.dotted_string in _LEGACY_RSA:
        params = padding.PKCS1v15()  # pyca/cryptography gives no parameters for MD5 signatures it still parses
    try:
        if isinstance(key, rsa.RSAPublicKey) and isinstance(params, padding.PKCS1v15 | padding.PSS):
            key.verify(signature, tbs, params, _need(digest))
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(params, ec.ECDSA):
            key.verify(signature, tbs, params)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) and digest is None:
            key.verify(signature, tbs)
        elif isinstance(key, dsa.DSAPublicKey):
            key.verify(signature, tbs, _need(digest))
        else:
            raise TypeError("the key does not match the signature algorithm")
    except InvalidSignature:
        return False
    return True


def _need(digest: hashes.HashAlgorithm | None) -> hashes.HashAlgorithm:
    if digest is None:
        raise TypeError("the signature algorithm names no digest")
    return digest


def _key_usage(ku: x509.KeyUsage) -> tuple[str, ...]:
    used = [name for name in _KEY_USAGES if getattr(ku, name)]
    # encipher_only / decipher_only raise unless key_agreement is set.
    if ku.key_agreement:
        used += [name for name in ("encipher_only", "decipher_only") if getattr(ku, name)]
    return tuple(used)
