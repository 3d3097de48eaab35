"""Transmitting a key (§27): only an extractable key, only after two custodians, wrapped for the recipient."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding
from sqlalchemy import select

from portcullis.core.errors import Conflict, PermissionDenied, ValidationFailed
from portcullis.core.runtime import Runtime
from portcullis.keys import dual
from portcullis.keys.backends.base import Algorithm
from portcullis.keys.backends.software import SoftwareBackend
from portcullis.keys.models import CryptoKey, KeyVersion
from portcullis.keys.service import backends
from tests.keys.world import SYSTEM, KeyWorld, build_key_world, email

POLICY = {op: ["system:tests"] for op in ("encrypt", "decrypt")}


@pytest.fixture
def w(rt: Runtime) -> KeyWorld:
    return build_key_world(rt)


def _recipient(bits: int = 3072) -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, pem.decode()


def test_an_approved_export_reaches_the_recipient_only(w: KeyWorld) -> None:
    w.register(
        key="shared",
        name="Shared with the custodian bank",
        purpose="settlement files",
        algorithm="aes-256",
        extractable=True,
        policy=POLICY,
    )
    with w.rt.work(SYSTEM) as ctx:
        blob = w.service.encrypt(ctx, "shared", b"settlement 2026-11-24")
    private, pem = _recipient()
    with w.rt.work(w.p("sofia")) as ctx:
        op = dual.request_export(ctx, "shared", "the custodian bank needs it for settlement", pem).id
    with w.rt.work(w.p("carla")) as ctx:
        dual.approve(ctx, op)
    software = backends(w.rt)["software"]
    assert isinstance(software, SoftwareBackend)
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(Conflict, match="1 of 2"):
        dual.execute_export(ctx, op, software)  # one custodian alone is not enough
    with w.rt.work(w.p("chloe")) as ctx:
        dual.approve(ctx, op)
    with w.rt.work(w.p("sofia")) as ctx:
        package = dual.execute_export(ctx, op, software)
    # The recipient, and only the holder of its private key, unwraps it; it decrypts what the key encrypted.
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    kek = private.decrypt(base64.b64decode(package["encrypted_kek"]), oaep)
    material = aes_key_unwrap_with_padding(kek, base64.b64decode(package["wrapped"]))
    body = blob[8:]
    assert AESGCM(material).decrypt(body[:12], body[12:], b"") == b"settlement 2026-11-24"
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(Conflict, match="done"):
        dual.execute_export(ctx, op, software)


def test_export_refusals(w: KeyWorld) -> None:
    w.register(key="inside", name="Never leaves", purpose="hot wallet", algorithm="aes-256", policy=POLICY)
    _, pem = _recipient()
    with w.rt.work(w.p("sofia")) as ctx:
        with pytest.raises(Conflict, match="non-extractable"):
            dual.request_export(ctx, "inside", "asked by a partner", pem)
        with pytest.raises(ValidationFailed, match="Not usable"):
            dual.request_export(ctx, "inside", "weak recipient", _recipient(2048)[1])
    w.register(
        key="shared",
        name="Shared",
        purpose="settlement",
        algorithm="aes-256",
        extractable=True,
        custodian_emails=[email("carla")],
        policy=POLICY,
    )
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(Conflict, match="fewer than 2 custodians"):
        dual.request_export(ctx, "shared", "one custodian only", pem)
    with w.rt.work(w.p("carla")) as ctx, pytest.raises(PermissionDenied):
        dual.request_export(ctx, "shared", "a custodian cannot ask on their own", pem)


def test_an_export_under_a_key_encryption_key(w: KeyWorld) -> None:
    w.register(
        key="shared", name="Shared", purpose="settlement files", algorithm="aes-256", extractable=True, policy=POLICY
    )
    w.register(
        key="partner-kek",
        name="Custodian bank KEK",
        purpose="wraps keys sent to the custodian bank",
        algorithm="aes-256",
    )
    w.register(key="signer", name="Signer", purpose="not a KEK", algorithm="ed25519")
    with w.rt.work(SYSTEM) as ctx:
        blob = w.service.encrypt(ctx, "shared", b"settlement 2026-11-25")
    with w.rt.work(w.p("sofia")) as ctx:
        with pytest.raises(ValidationFailed, match="Not a key-encryption key"):
            dual.request_export_to_kek(ctx, "shared", "partner", "signer")
        op = dual.request_export_to_kek(ctx, "shared", "the custodian bank holds the same KEK", "partner-kek").id
    for who in ("carla", "cedric"):
        with w.rt.work(w.p(who)) as ctx:
            dual.approve(ctx, op)
    software = backends(w.rt)["software"]
    assert isinstance(software, SoftwareBackend)
    with w.rt.work(w.p("sofia")) as ctx:
        package = dual.execute_export(ctx, op, software, backends(w.rt))
    assert (package["kek"], package["kek_version"]) == ("partner-kek", 1)
    # The recipient holds the same KEK: it unwraps the key, which decrypts what it encrypted here.
    with w.rt.session() as s:
        kek_ref = s.scalar(select(KeyVersion.ref).join(CryptoKey).where(CryptoKey.key == "partner-kek"))
    kek = software.open(Algorithm.AES_256, kek_ref or b"")
    material = aes_key_unwrap_with_padding(kek, base64.b64decode(package["wrapped"]))
    body = blob[8:]
    assert AESGCM(material).decrypt(body[:12], body[12:], b"") == b"settlement 2026-11-25"
