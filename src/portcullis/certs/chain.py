"""Chain and quality problems of certificates, as findings-to-be (§30: chain problems are findings).

Each certificate is checked on its own (validity, key, signature hash) whatever its source; the checks
that need to know how a client reaches it (host name, path to a trusted root, completeness of the chain
the server sends) run only when a host name is given.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import ssl
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import verification

from portcullis.certs.x509info import CertInfo, describe, signed_by

Severity = Literal["high", "medium", "low"]
FALLBACK_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


@dataclass(frozen=True)
class Problem:
    code: str
    severity: Severity
    detail: str
    fingerprint: str  # SHA-256 of the certificate the problem is about


def check_chain(
    chain: Sequence[x509.Certificate],
    *,
    hostname: str | None,
    roots: Sequence[x509.Certificate],
    now: datetime,
) -> list[Problem]:
    """Problems of `chain` (leaf first, as a server sends it) at `now`, for clients that trust `roots`.

    hostname None (a certificate found in a file): only each certificate's own validity, key and hash.
    A path failure is reported with the verifier's reason even when a more specific problem (expiry,
    name) explains it, so the finding carries what a client would actually see.
    """
    if not chain:
        raise ValueError("check_chain needs at least the leaf certificate")
    if now.tzinfo is None:
        raise ValueError("check_chain needs a timezone-aware `now`")
    infos = [describe(c) for c in chain]
    problems: list[Problem] = []
    for position, info in enumerate(infos):
        problems += _own_problems(info, position, now)
    leaf = infos[0]
    if leaf.self_signed and not leaf.is_ca:
        problems.append(
            Problem("self_signed_leaf", "medium", "the leaf certificate is self-signed", leaf.fingerprint_sha256)
        )
    if hostname is not None:
        problems += _name_problems(chain[0], leaf, hostname)
        problems += _completeness(chain, infos, roots)
        problems += _path(chain, leaf, hostname, roots, now)
    return problems


@functools.cache
def _system_roots() -> tuple[x509.Certificate, ...]:
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, str(FALLBACK_BUNDLE)):
        if candidate and Path(candidate).is_file():
            return _lenient_bundle(Path(candidate).read_bytes())
    directory = paths.capath or paths.openssl_capath
    if directory and Path(directory).is_dir():
        found: dict[bytes, x509.Certificate] = {}
        for path in sorted(Path(directory).iterdir()):
            if path.is_file():
                for cert in _lenient_bundle(path.read_bytes()):
                    found.setdefault(cert.fingerprint(hashes.SHA256()), cert)
        return tuple(found.values())
    return ()


def system_roots() -> list[x509.Certificate]:
    """The operating system's trusted CA certificates (read once). Entries that do not parse are left out."""
    return list(_system_roots())


def _lenient_bundle(data: bytes) -> tuple[x509.Certificate, ...]:
    with warnings.catch_warnings():
        # Trusted roots from Go Daddy, Starfield, SECOM and others have serial 0: theirs to fix, nothing to report.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        try:
            return tuple(x509.load_pem_x509_certificates(data))
        except ValueError:
            pass
        # One odd root must not cost all the others.
        certs = []
        for block in _PEM_CERT.findall(data):
            try:
                certs.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                continue
        return tuple(certs)


def _own_problems(info: CertInfo, position: int, now: datetime) -> list[Problem]:
    out: list[Problem] = []
    fp = info.fingerprint_sha256
    what = "the leaf certificate" if position == 0 else f"chain certificate {position} ({info.subject})"
    if now >= info.not_after:
        code = "expired" if position == 0 else "expired_intermediate"
        out.append(Problem(code, "high", f"{what} expired on {info.not_after.isoformat()}", fp))
    if now < info.not_before:
        out.append(Problem("not_yet_valid", "high", f"{what} is not valid until {info.not_before.isoformat()}", fp))
    weak = _weak_key(info)
    if weak is not None:
        severity, reason = weak
        out.append(Problem("weak_key", severity, f"{what}: {reason}", fp))
    # A trust anchor's own signature is never checked by clients, so its hash does not matter.
    if info.signature_hash in ("sha1", "md5", "md2") and not (info.self_signed and info.is_ca):
        out.append(
            Problem("sha1_signature", "high", f"{what} is signed with {info.signature_algorithm} (collisions)", fp)
        )
    return out


def _weak_key(info: CertInfo) -> tuple[Severity, str] | None:
    if info.key_type == "rsa" and info.key_bits < 2048:
        return "high", f"RSA key of {info.key_bits} bits (at least 2048 needed)"
    if info.key_type == "ec" and info.key_bits < 256:
        return "high", f"EC key on {info.curve or 'a curve'} of {info.key_bits} bits (at least 256 needed)"
    if info.key_type == "dsa":
        return "medium", f"DSA key of {info.key_bits} bits (DSA is no longer approved for signatures, FIPS 186-5)"
    return None


def _name_problems(leaf: x509.Certificate, info: CertInfo, hostname: str) -> list[Problem]:
    host = _normalise(hostname)
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = [_normalise(n) for n in san.get_values_for_type(x509.DNSName)]
        ips = san.get_values_for_type(x509.IPAddress)
    except (x509.ExtensionNotFound, ValueError):
        dns, ips = [], []
    if not dns and not ips:
        cn = f" (its subject CN is {info.subject_cn!r})" if info.subject_cn else ""
        detail = (
            f"the leaf certificate has no DNS or IP subjectAltName, so it covers no host name{cn}; "
            f"clients do not fall back to the CN (RFC 6125 §6.4.4), so {hostname!r} is not covered"
        )
        return [Problem("hostname_mismatch", "high", detail, info.fingerprint_sha256)]
    address = _ip(host)
    covered = address in ips if address is not None else any(_dns_match(pattern, host) for pattern in dns)
    if covered:
        return []
    listed = ", ".join([*dns, *(str(i) for i in ips)])
    detail = f"{hostname!r} is not among the leaf certificate's subjectAltNames ({listed})"
    return [Problem("hostname_mismatch", "high", detail, info.fingerprint_sha256)]


def _normalise(name: str) -> str:
    return name.strip().strip("[]").rstrip(".").lower()


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _dns_match(pattern: str, host: str) -> bool:
    """RFC 6125 §6.4.3 as browsers apply it: a wildcard is a whole left-most label and matches exactly one label."""
    if pattern == host:
        return True
    if not pattern.startswith("*."):
        return False
    suffix = pattern[2:]
    if "*" in suffix or suffix.count(".") < 1:  # "*.com" would cover a whole top-level domain
        return False
    label, _, rest = host.partition(".")
    return bool(label) and rest == suffix


def _completeness(
    chain: Sequence[x509.Certificate], infos: Sequence[CertInfo], roots: Sequence[x509.Certificate]
) -> list[Problem]:
    """Follow issuers from the leaf through the sent chain; report where the path breaks off."""
    position = 0
    visited = {0}
    while not infos[position].self_signed:
        current = chain[position]
        if any(_issued(current, root) for root in roots):
            return []
        following = next((i for i, c in enumerate(chain) if i not in visited and _issued(current, c)), None)
        if following is None:
            info = infos[position]
            detail = (
                f"the issuer of {'the leaf certificate' if position == 0 else info.subject} ({info.issuer}) "
                "is neither in the chain the server sends nor a trusted root"
            )
            return [Problem("incomplete_chain", "high", detail, info.fingerprint_sha256)]
        position = following
        visited.add(position)
    return []


def _issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        if cert.issuer != issuer.subject:
            return False
    except ValueError:
        return False
    try:
        return signed_by(cert, issuer.public_key())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return True  # names match and the signature cannot be checked here: the verifier will judge it


def _path(
    chain: Sequence[x509.Certificate],
    leaf: CertInfo,
    hostname: str,
    roots: Sequence[x509.Certificate],
    now: datetime,
) -> list[Problem]:
    host = _normalise(hostname)
    address = _ip(host)
    try:
        subject: verification.Subject = (
            x509.IPAddress(address) if address is not None else x509.DNSName(host.encode("idna").decode("ascii"))
        )
    except UnicodeError:
        return [Problem("path_invalid", "high", f"{hostname!r} is not a valid host name", leaf.fingerprint_sha256)]
    if not roots:
        return [Problem("path_invalid", "high", "no trusted roots to build a path to", leaf.fingerprint_sha256)]
    try:
        verifier = (
            verification.PolicyBuilder().store(verification.Store(list(roots))).time(now).build_server_verifier(subject)
        )
        verifier.verify(chain[0], list(chain[1:]))
    except (verification.VerificationError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return [Problem("path_invalid", "high", f"no valid path to a trusted root: {exc}", leaf.fingerprint_sha256)]
    return []
