"""Certificates out of files, whatever the format: PEM, DER, PKCS#7 and PKCS#12 (§29 discovery).

Private keys that share a file with certificates are skipped unread; no error message quotes file
content, so neither a key nor a passphrase can leak through one.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import os
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import pkcs12

MAX_FILE_BYTES = 10 * 1024 * 1024
EXTENSIONS = (".pem", ".crt", ".cer", ".der", ".p7b", ".p7c", ".p12", ".pfx")

_CERT_LABELS = {"CERTIFICATE", "X509 CERTIFICATE", "X.509 CERTIFICATE"}
# OpenSSL's "trusted certificate": the DER certificate followed by its trust settings.
_TRUSTED_LABEL = "TRUSTED CERTIFICATE"
_PKCS7_LABELS = {"PKCS7", "PKCS #7 SIGNED DATA", "CMS"}
_BEGIN = re.compile(r"^[ \t]*-----BEGIN ([A-Z0-9 #.]+)-----[ \t]*\r?$", re.MULTILINE)
_BOUNDARY = re.compile(r"--+[ \t]*(?:BEGIN|END)\b")


class CertFileError(Exception):
    """A file that holds no readable certificates; the message names the file (and the PEM block)."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class Found(NamedTuple):
    path: Path
    index_in_file: int
    certificate: x509.Certificate


class FileProblem(NamedTuple):
    path: Path
    reason: str


def load_certificates(data: bytes, *, source: str, passphrase: bytes | None = None) -> list[x509.Certificate]:
    """Every certificate in `data`, in file order. A PEM file with keys but no certificates gives []."""
    if not data.strip():
        raise CertFileError(source, "file is empty")
    if b"-----BEGIN" in data:
        return _load_pem(data, source)
    return _load_binary(data, source, passphrase)


def scan_directory(
    root: Path,
    *,
    passphrases: Mapping[str, bytes] | None = None,
    extensions: tuple[str, ...] = EXTENSIONS,
    follow_symlinks: bool = False,
) -> tuple[list[Found], list[FileProblem]]:
    """Every certificate in files under `root` with one of `extensions`, and every file that could not be read.

    `passphrases` maps a file name, a path relative to root, or a glob of either to a PKCS#12 passphrase.
    Without follow_symlinks, symbolic links are not followed at all; with it, each directory is entered once,
    so link loops end. Files over 10 MiB are skipped as problems, never read whole.
    """
    found: list[Found] = []
    problems: list[FileProblem] = []
    wanted = tuple(e.lower() for e in extensions)
    for path in _walk(root, follow_symlinks, problems):
        if not path.name.lower().endswith(wanted):
            continue
        rel = path.relative_to(root).as_posix()
        try:
            data = _read(path, follow_symlinks)
            certs = load_certificates(data, source=rel, passphrase=_passphrase(path.name, rel, passphrases))
        except _Unreadable as exc:
            problems.append(FileProblem(path, str(exc)))
            continue
        except CertFileError as exc:
            problems.append(FileProblem(path, exc.reason))
            continue
        found.extend(Found(path, i, cert) for i, cert in enumerate(certs))
    return found, problems


def _load_pem(data: bytes, source: str) -> list[x509.Certificate]:
    # Latin-1 maps every byte to one character, so offsets and line numbers stay those of the file.
    text = data.decode("latin-1")
    certs: list[x509.Certificate] = []
    blocks = 0
    pos = 0
    while match := _BEGIN.search(text, pos):
        _no_stray_boundary(text, pos, match.start(), source)
        blocks += 1
        label = match.group(1)
        line = text.count("\n", 0, match.start()) + 1
        where = f"block {blocks} (line {line})"
        end = re.compile(rf"^[ \t]*-----END {re.escape(label)}-----[ \t]*\r?$", re.MULTILINE).search(text, match.end())
        if end is None:
            raise CertFileError(source, f"{where}: BEGIN {label} has no matching END line")
        pos = end.end()
        if label not in _CERT_LABELS and label != _TRUSTED_LABEL and label not in _PKCS7_LABELS:
            continue  # private keys, requests, CRLs, parameters: not ours to read
        der = _pem_body(text[match.end() : end.start()])
        if der is None:
            raise CertFileError(source, f"{where}: not a valid {_kind(label)} (bad base64)")
        try:
            if label in _PKCS7_LABELS:
                certs.extend(_pkcs7_certificates(der))
            else:
                if label == _TRUSTED_LABEL:
                    der = der[: _first_element_length(der)]
                certs.append(x509.load_der_x509_certificate(der))
        except (ValueError, TypeError, KeyError, UnsupportedAlgorithm) as exc:
            raise CertFileError(source, f"{where}: not a valid {_kind(label)} ({_first_line(exc)})") from None
    _no_stray_boundary(text, pos, len(text), source)
    return certs


def _no_stray_boundary(text: str, start: int, end: int, source: str) -> None:
    """A BEGIN or END line outside any block is a damaged block: say so rather than skip a certificate."""
    stray = _BOUNDARY.search(text, start, end)
    if stray is not None:
        line = text.count("\n", 0, stray.start()) + 1
        raise CertFileError(source, f"line {line}: malformed PEM BEGIN/END line outside any block")


def _kind(label: str) -> str:
    return "PKCS#7 bundle" if label in _PKCS7_LABELS else "certificate"


def _pem_body(body: str) -> bytes | None:
    lines = [ln.strip() for ln in body.strip().splitlines()]
    if lines and ":" in lines[0]:
        # RFC 1421 headers (Proc-Type, DEK-Info ...) end at the first blank line.
        lines = lines[lines.index("") + 1 :] if "" in lines else []
    try:
        return base64.b64decode("".join(lines), validate=True)
    except (binascii.Error, ValueError):
        return None


def _load_binary(data: bytes, source: str, passphrase: bytes | None) -> list[x509.Certificate]:
    header = _header_length(data, 0)
    if data[0] != 0x30 or header is None or header >= len(data):
        raise CertFileError(source, "not a recognised certificate format (expected PEM, DER, PKCS#7 or PKCS#12)")
    # The first element inside the outer SEQUENCE tells the formats apart: the to-be-signed certificate
    # (a SEQUENCE), a content type (an OID: PKCS#7), or a version (an INTEGER: PKCS#12).
    inner = data[header]
    try:
        if inner == 0x30:
            return [x509.load_der_x509_certificate(data)]
        if inner == 0x06:
            return _pkcs7_certificates(data)
    except (ValueError, TypeError, KeyError, UnsupportedAlgorithm) as exc:
        kind = "DER certificate" if inner == 0x30 else "PKCS#7 bundle"
        raise CertFileError(source, f"not a valid {kind} ({_first_line(exc)})") from None
    if inner == 0x02:
        return _load_pkcs12(data, source, passphrase)
    raise CertFileError(source, "not a recognised certificate format (expected PEM, DER, PKCS#7 or PKCS#12)")


def _pkcs7_certificates(data: bytes) -> list[x509.Certificate]:
    # asn1crypto rather than pyca/cryptography: it reads the BER and unsorted SETs that Windows and
    # `openssl crl2pkcs7` write without a warning, and a bundle without certificates is simply empty.
    info = asn1_cms.ContentInfo.load(data, strict=True)
    if info["content_type"].native != "signed_data":
        raise ValueError(f"content type is {info['content_type'].native}, not signedData")
    choices = info["content"]["certificates"]
    if isinstance(choices, asn1_core.Void):
        return []
    return [x509.load_der_x509_certificate(c.chosen.dump()) for c in choices if c.name == "certificate"]


def _load_pkcs12(data: bytes, source: str, passphrase: bytes | None) -> list[x509.Certificate]:
    try:
        bundle = pkcs12.load_pkcs12(data, passphrase)
    except UnsupportedAlgorithm:
        raise CertFileError(source, "PKCS#12 file uses an encryption algorithm that cannot be read") from None
    except (ValueError, TypeError):
        # pyca/cryptography gives one message for a wrong passphrase and a damaged file; the
        # structure tells them apart, and the passphrase itself never goes into the message.
        if _is_pfx(data):
            raise CertFileError(source, "PKCS#12 passphrase is wrong or missing") from None
        raise CertFileError(source, "not a valid PKCS#12 file") from None
    certs = [bundle.cert.certificate] if bundle.cert is not None else []
    return certs + [extra.certificate for extra in bundle.additional_certs]


def _is_pfx(data: bytes) -> bool:
    try:
        pfx = asn1_pkcs12.Pfx.load(data, strict=True)
        return bool(pfx["version"].native == "v3" and pfx["auth_safe"]["content_type"].native is not None)
    except (ValueError, TypeError, KeyError):
        return False


def _header_length(data: bytes, offset: int) -> int | None:
    """Length of the DER/BER tag+length header at offset (low tag numbers only), or None if malformed."""
    if len(data) < offset + 2:
        return None
    first = data[offset + 1]
    if first < 0x80 or first == 0x80:  # short form, or BER indefinite length
        return 2
    count = first & 0x7F
    return 2 + count if len(data) >= offset + 2 + count else None


def _first_element_length(der: bytes) -> int:
    header = _header_length(der, 0)
    if header is None or der[1] == 0x80:
        return len(der)
    length = der[1] if der[1] < 0x80 else int.from_bytes(der[2:header], "big")
    return header + length


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else exc.__class__.__name__


def _passphrase(name: str, rel: str, passphrases: Mapping[str, bytes] | None) -> bytes | None:
    if not passphrases:
        return None
    for key in (name, rel):
        if key in passphrases:
            return passphrases[key]
    for pattern, value in passphrases.items():
        if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(rel, pattern):
            return value
    return None


class _Unreadable(Exception):
    pass


def _read(path: Path, follow_symlinks: bool) -> bytes:
    # Opened before it is examined, so a file swapped for a FIFO or a link meanwhile cannot block or mislead.
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _Unreadable(f"cannot read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Unreadable("not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise _Unreadable(f"larger than 10 MiB ({info.st_size} bytes); skipped")
        try:
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise _Unreadable(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise _Unreadable("larger than 10 MiB; skipped")
    return data


def _walk(root: Path, follow_symlinks: bool, problems: list[FileProblem]) -> Iterator[Path]:
    """Every non-directory entry under root, in name order, depth first."""
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            info = directory.stat()
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            problems.append(FileProblem(directory, f"cannot read directory: {exc.strerror or exc}"))
            continue
        subdirs: list[Path] = []
        for entry in entries:
            if entry.is_symlink() and not follow_symlinks:
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=follow_symlinks)
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append(Path(entry.path))
            else:
                yield Path(entry.path)
        stack.extend(reversed(subdirs))
