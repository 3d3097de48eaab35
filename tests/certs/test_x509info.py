"""describe() against certificates this test builds, including the odd ones real registers hold."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portcullis.certs.x509info import CertInfo, as_dict, describe, lifetime_fraction_left
from tests.certs import pki
from tests.conftest import need

NOW = pki.NOW
ODD_SERIAL = pytest.mark.filterwarnings("ignore:Parsed a serial number:UserWarning")


def der_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def openssl(*args: str, cwd: Path) -> str:
    if shutil.which("openssl") is None:
        need("the openssl command line tool")
    return subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_leaf_fields_come_from_the_certificate() -> None:
    p = pki.make_pki("www.example.test", leaf={"serial": 0x01A2B3, "sans": ["www.example.test", "example.test"]})
    info = describe(p.leaf.cert)
    assert info.fingerprint_sha256 == hashlib.sha256(p.leaf.der).hexdigest()
    assert info.der == p.leaf.der
    assert info.subject == "CN=www.example.test"
    assert info.subject_cn == "www.example.test"
    assert info.sans == ("www.example.test", "example.test")
    assert info.issuer == "CN=Test Intermediate CA"
    assert info.serial_hex == "01a2b3"
    assert (info.not_before, info.not_after) == (NOW - timedelta(days=30), NOW + timedelta(days=60))
    assert info.not_after.tzinfo is not None
    assert (info.version, info.is_ca, info.path_len, info.self_signed) == (3, False, None, False)
    assert (info.key_type, info.key_bits, info.curve) == ("ec", 256, "secp256r1")
    assert (info.signature_algorithm, info.signature_hash) == ("ecdsa-with-SHA256", "sha256")
    assert info.ski == x509.SubjectKeyIdentifier.from_public_key(p.leaf.key.public_key()).digest.hex()
    assert info.aki == x509.SubjectKeyIdentifier.from_public_key(p.intermediate.key.public_key()).digest.hex()
    assert info.key_usage == ("digital_signature",)
    assert info.extended_key_usage == ("serverAuth",)
    assert info.notes == ()


def test_ca_levels() -> None:
    p = pki.make_pki()
    root, inter = describe(p.root.cert), describe(p.intermediate.cert)
    assert (root.is_ca, root.path_len, root.self_signed) == (True, None, True)
    assert (inter.is_ca, inter.path_len, inter.self_signed) == (True, 0, False)
    assert root.key_usage == ("digital_signature", "key_cert_sign", "crl_sign")
    assert root.ski == root.aki


@pytest.mark.parametrize(
    ("key_type", "size", "bits", "curve", "algorithm", "digest"),
    [
        ("rsa", 1024, 1024, None, "sha256WithRSAEncryption", "sha256"),
        ("rsa", 2048, 2048, None, "sha256WithRSAEncryption", "sha256"),
        ("ec", 384, 384, "secp384r1", "ecdsa-with-SHA256", "sha256"),
        ("ec", 192, 192, "secp192r1", "ecdsa-with-SHA256", "sha256"),
        ("ed25519", None, 256, None, "ed25519", None),
        ("ed448", None, 448, None, "ed448", None),
        ("dsa", 2048, 2048, None, "dsa_with_SHA256", "sha256"),
    ],
)
def test_key_types(
    key_type: str, size: int | None, bits: int, curve: str | None, algorithm: str, digest: str | None
) -> None:
    made = pki.issue("k.example.test", key_type=key_type, key_size=size)
    info = describe(made.cert)
    assert (info.key_type, info.key_bits, info.curve) == (key_type, bits, curve)
    assert (info.signature_algorithm, info.signature_hash) == (algorithm, digest)
    assert info.self_signed


def test_san_kinds_are_told_apart() -> None:
    names = [
        "a.example.test",
        "*.b.example.test",
        "192.0.2.7",
        "2001:db8::1",
        "email:ops@example.eu",
        "uri:https://x.eu/",
    ]
    info = describe(pki.issue("a.example.test", sans=names).cert)
    assert info.sans == tuple(names)


def test_no_san_extension() -> None:
    info = describe(pki.issue("legacy.example.test", sans=None).cert)
    assert info.sans == ()
    assert info.subject_cn == "legacy.example.test"


@pytest.mark.parametrize(
    ("hash_name", "algorithm"), [("sha1", "sha1WithRSAEncryption"), ("md5", "md5WithRSAEncryption")]
)
def test_weak_signature_hashes(hash_name: str, algorithm: str) -> None:
    made = pki.issue("old.example.test", key_type="rsa", key_size=1024, hash_name=hash_name)
    info = describe(made.cert)
    assert (info.signature_algorithm, info.signature_hash) == (algorithm, hash_name)
    assert info.self_signed  # the signature verified under the weak hash


def test_v1_ca_made_by_openssl(tmp_path: Path) -> None:
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "root.key", cwd=tmp_path)
    openssl("req", "-new", "-key", "root.key", "-subj", "/CN=Legacy Root/O=Old Firm", "-out", "root.csr", cwd=tmp_path)
    openssl(
        "x509", "-req", "-in", "root.csr", "-signkey", "root.key", "-days", "3650", "-out", "root.pem", cwd=tmp_path
    )
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key", cwd=tmp_path)
    openssl("req", "-new", "-key", "leaf.key", "-subj", "/CN=legacy.example.test", "-out", "leaf.csr", cwd=tmp_path)
    openssl(
        "x509", "-req", "-in", "leaf.csr", "-CA", "root.pem", "-CAkey", "root.key", "-set_serial", "4660",
        "-days", "30", "-out", "leaf.pem", cwd=tmp_path,
    )  # fmt: skip
    for name in ("root", "leaf"):
        assert "Version: 1 (0x0)" in openssl("x509", "-in", f"{name}.pem", "-noout", "-text", cwd=tmp_path)
        openssl("x509", "-in", f"{name}.pem", "-outform", "DER", "-out", f"{name}.der", cwd=tmp_path)

    root_der = (tmp_path / "root.der").read_bytes()
    root = describe(x509.load_der_x509_certificate(root_der))
    assert root.fingerprint_sha256 == hashlib.sha256(root_der).hexdigest()
    assert (root.version, root.is_ca, root.self_signed, root.path_len) == (1, True, True, None)
    assert root.subject == "O=Old Firm,CN=Legacy Root"
    assert (root.ski, root.aki, root.sans, root.key_usage, root.extended_key_usage) == (None, None, (), (), ())
    assert any("v1" in n and "treated as a CA" in n for n in root.notes)

    leaf = describe(x509.load_der_x509_certificate((tmp_path / "leaf.der").read_bytes()))
    assert (leaf.version, leaf.is_ca, leaf.self_signed, leaf.serial_hex) == (1, False, False, "1234")
    assert leaf.issuer == root.subject


def test_v1_certificate_assembled_with_asn1crypto() -> None:
    made = pki.issue("Old Root", ca=True)
    v1 = pki.rewrite(made.cert, made.key, version=1)
    info = describe(v1)
    assert (info.version, info.is_ca, info.self_signed) == (1, True, True)
    assert info.fingerprint_sha256 == hashlib.sha256(der_of(v1)).hexdigest()


@ODD_SERIAL
@pytest.mark.parametrize(
    ("serial", "text", "note"),
    [
        (-0x1234, "-1234", "not positive"),
        (0, "00", "not positive"),
        (2**200 + 0xAB, "01" + "00" * 24 + "ab", "20 octets"),
    ],
)
def test_odd_serials(serial: int, text: str, note: str) -> None:
    made = pki.issue("s.example.test")
    info = describe(pki.rewrite(made.cert, made.key, serial=serial))
    assert info.serial_hex == text
    assert any(note in n for n in info.notes)


def test_t61string_name_is_read_leniently() -> None:
    made = pki.issue("t.example.test")
    odd = pki.rewrite(made.cert, made.key, subject=pki.raw_name(0x14, "Société Générale".encode("latin-1")))
    with pytest.raises(ValueError, match="asn1"):
        _ = odd.subject  # pyca/cryptography refuses it: the fallback is what is under test
    info = describe(odd)
    assert info.subject == "CN=Société Générale"
    assert info.subject_cn == "Société Générale"
    assert info.issuer == "CN=t.example.test"
    assert any("subject" in n and "leniently" in n for n in info.notes)


def test_invalid_utf8_name_is_kept_as_hex() -> None:
    made = pki.issue("u.example.test")
    value = b"\xff\xfeab"
    info = describe(pki.rewrite(made.cert, made.key, subject=pki.raw_name(0x0C, value)))
    assert info.subject == "CN=#" + (bytes([0x0C, len(value)]) + value).hex()
    assert info.subject_cn is not None
    assert info.subject_cn.endswith("ab")
    assert not info.self_signed  # the subject no longer equals the issuer


def test_bmpstring_name() -> None:
    made = pki.issue("b.example.test")
    info = describe(pki.rewrite(made.cert, made.key, subject=pki.raw_name(0x1E, "Zoë".encode("utf-16-be"))))
    assert info.subject == "CN=Zoë"
    assert info.notes == ()


def test_unknown_signature_algorithm_is_reported_by_oid() -> None:
    made = pki.issue("x.example.test", ca=True)
    odd = pki.rewrite(made.cert, made.key, signature_oid="1.3.6.1.4.1.99999.1")
    info = describe(odd)
    assert (info.signature_algorithm, info.signature_hash) == ("1.3.6.1.4.1.99999.1", None)
    assert not info.self_signed
    assert any("1.3.6.1.4.1.99999.1" in n for n in info.notes)
    assert any("could not be checked" in n for n in info.notes)


def test_lifetime_fraction_left() -> None:
    made = pki.issue("l.example.test", not_before=NOW - timedelta(days=25), not_after=NOW + timedelta(days=75))
    info = describe(made.cert)
    assert lifetime_fraction_left(info, NOW) == pytest.approx(0.75)
    assert lifetime_fraction_left(info, NOW - timedelta(days=30)) == 1.0
    assert lifetime_fraction_left(info, NOW + timedelta(days=75)) == 0.0
    assert lifetime_fraction_left(info, NOW + timedelta(days=400)) == 0.0


def test_as_dict_is_json_safe_and_has_no_der() -> None:
    info = describe(pki.make_pki().leaf.cert)
    data = json.loads(json.dumps(as_dict(info)))
    assert "der" not in data
    assert datetime.fromisoformat(data["not_after"]) == info.not_after
    assert data["sans"] == ["www.example.test"]
    assert data["fingerprint_sha256"] == info.fingerprint_sha256
    assert set(data) == set(CertInfo.__dataclass_fields__) - {"der"}


_KEY = ec.generate_private_key(ec.SECP256R1())
_LABEL = r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"
_DNS = st.from_regex(rf"\A(\*\.)?{_LABEL}(\.{_LABEL}){{0,3}}\Z")
_IA5 = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)
_GENERAL_NAMES = st.one_of(
    _DNS.map(lambda s: (x509.DNSName(s), s)),
    _IA5.map(lambda s: (x509.DNSName(s), s)),
    st.ip_addresses().map(lambda ip: (x509.IPAddress(ip), str(ip))),
    _DNS.map(lambda s: (x509.RFC822Name(f"ops@{s}"), f"email:ops@{s}")),
    _DNS.map(lambda s: (x509.UniformResourceIdentifier(f"https://{s}/p"), f"uri:https://{s}/p")),
)
_MOMENTS = st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.none() | st.lists(_GENERAL_NAMES, min_size=1, max_size=6),
    moments=st.tuples(_MOMENTS, _MOMENTS).map(sorted),
    serial=st.integers(min_value=1, max_value=2**159 - 1),
)
def test_describe_never_crashes(
    names: list[tuple[x509.GeneralName, str]] | None, moments: list[datetime], serial: int
) -> None:
    start, end = (m.replace(microsecond=0) for m in moments)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "h.example.test")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(_KEY.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
    )
    if names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([n for n, _ in names]), critical=False)
    cert = builder.sign(_KEY, hashes.SHA256())
    info = describe(cert)
    assert info.sans == (tuple(text for _, text in names) if names is not None else ())
    assert (info.not_before, info.not_after) == (start, end)
    assert int(info.serial_hex, 16) == serial
    assert info.fingerprint_sha256 == hashlib.sha256(der_of(cert)).hexdigest()
    assert 0.0 <= lifetime_fraction_left(info, NOW) <= 1.0
    json.dumps(as_dict(info))
    for (name, _), text in zip(names or [], info.sans, strict=True):
        if isinstance(name, x509.IPAddress):
            assert ipaddress.ip_address(text) == name.value  # IPv6 shown as text, never as bytes
