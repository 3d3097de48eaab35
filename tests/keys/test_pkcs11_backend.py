"""The PKCS#11 backend against a real SoftHSM2 token.

pyca/cryptography is the oracle: every signature is verified with it, AES-GCM
output is opened with it, RFC 5649 output must equal its aes_key_wrap_with_padding.
Wycheproof vectors (AES-GCM, AES-KWP, ECDSA secp256k1) check the token and the
backend's own encoding where the key can be planted on the token.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11

from portcullis.keys.backends.base import Algorithm, BackendError, Generated
from portcullis.keys.backends.pkcs11 import SECP256K1_ORDER, Pkcs11Backend, ecdsa_der
from tests.conftest import need
from tests.keys.softhsm import MODULE, SoftHsmToken, softhsm, softhsm_token

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "data" / "vectors"
ASYMMETRIC = [a for a in Algorithm if not a.symmetric]
MESSAGES = [b"", b"x", b"portcullis key ceremony 2026-11-24", bytes(range(256)) * 40]

token = softhsm_token()


@pytest.fixture(scope="module")
def backend(token: SoftHsmToken) -> Iterator[Pkcs11Backend]:
    with token.backend() as b:
        yield b


@pytest.fixture(scope="module")
def keys(backend: Pkcs11Backend) -> dict[Algorithm, Generated]:
    """One key per algorithm, generated once for the module (RSA-4096 takes seconds)."""
    return {a: backend.generate(a, f"test {a.value}") for a in Algorithm}


@pytest.fixture
def raw(backend: Pkcs11Backend, token: SoftHsmToken) -> Iterator[pkcs11.Session]:
    """A second session on the token, to look behind the backend, logged in through the backend's login.

    Per test: creating a token (test_wrong_pin) re-initialises the library, which ends every session.
    """
    backend.objects()  # a call through the backend, which logs in again if the library was re-initialised
    with token.session() as session:
        yield session


def plant_aes(raw: pkcs11.Session, value: bytes) -> bytes:
    """An AES key of known value on the token, so pyca can compute what the token should.

    A session object: visible to the backend's session too (objects belong to the application), gone with `raw`.
    """
    ref = secrets.token_bytes(16)
    raw.create_object(
        {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.AES,
            Attribute.VALUE: value,
            Attribute.ID: ref,
            Attribute.LABEL: "planted",
            Attribute.TOKEN: False,
            Attribute.PRIVATE: True,
            Attribute.ENCRYPT: True,
            Attribute.DECRYPT: True,
            Attribute.WRAP: True,
            Attribute.UNWRAP: True,
        }
    )
    return ref


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


def verify(algorithm: Algorithm, public_der: bytes, data: bytes, signature: bytes) -> None:
    """Raise InvalidSignature unless pyca accepts the signature in the format of backends/base.py."""
    key = serialization.load_der_public_key(public_der)
    if isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(signature, data)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(key, rsa.RSAPublicKey)
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        key.verify(signature, data, pss, hashes.SHA256())


def objects_with_id(raw: pkcs11.Session, ref: bytes) -> dict[ObjectClass, Any]:
    return {obj[Attribute.CLASS]: obj for obj in raw.get_objects({Attribute.ID: ref})}


# --- generation and protection ----------------------------------------------------------------------------------


def _check_public(algorithm: Algorithm, public: PublicKeyTypes) -> None:
    if algorithm is Algorithm.ED25519:
        assert isinstance(public, ed25519.Ed25519PublicKey)
    elif algorithm in (Algorithm.ECDSA_P256, Algorithm.ECDSA_SECP256K1):
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert public.curve.name == {Algorithm.ECDSA_P256: "secp256r1"}.get(algorithm, "secp256k1")
    else:
        assert isinstance(public, rsa.RSAPublicKey)
        assert public.key_size == algorithm.bits
        assert public.public_numbers().e == 65537


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_generate(backend: Pkcs11Backend, keys: dict[Algorithm, Generated], algorithm: Algorithm) -> None:
    generated = keys[algorithm]
    assert len(generated.ref) == 16
    if algorithm.symmetric:
        assert generated.public_key is None
    else:
        assert generated.public_key is not None
        _check_public(algorithm, serialization.load_der_public_key(generated.public_key))
    assert backend.public_key(generated.ref) == generated.public_key
    assert generated.protection.as_dict() == {
        "local": True,
        "never_extractable": True,
        "always_sensitive": True,
        "extractable": False,
    }
    assert backend.protection(generated.ref) == generated.protection


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_keys_are_sensitive_token_objects(
    raw: pkcs11.Session, keys: dict[Algorithm, Generated], algorithm: Algorithm
) -> None:
    found = objects_with_id(raw, keys[algorithm].ref)
    expected = {ObjectClass.SECRET_KEY} if algorithm.symmetric else {ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY}
    assert set(found) == expected
    main = found.get(ObjectClass.SECRET_KEY) or found[ObjectClass.PRIVATE_KEY]
    got = main.get_attributes([Attribute.TOKEN, Attribute.PRIVATE, Attribute.SENSITIVE, Attribute.LABEL])
    assert got == {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.LABEL: f"test {algorithm.value}",
    }
    # The material itself cannot be read, not even by the logged-in user.
    secret = Attribute.PRIVATE_EXPONENT if algorithm in (Algorithm.RSA_3072, Algorithm.RSA_4096) else Attribute.VALUE
    with pytest.raises(p11.AttributeSensitive):
        main[secret]


def test_extractable_key_reports_it(backend: Pkcs11Backend, raw: pkcs11.Session) -> None:
    generated = backend.generate(Algorithm.AES_256, "backup test", extractable=True)
    assert generated.protection.as_dict() == {
        "local": True,
        "never_extractable": False,
        "always_sensitive": True,
        "extractable": True,
    }
    with pytest.raises(p11.AttributeSensitive):  # extractable means "may be wrapped", never "readable"
        objects_with_id(raw, generated.ref)[ObjectClass.SECRET_KEY][Attribute.VALUE]


def test_missing_mechanism_is_named(token: SoftHsmToken, backend: Pkcs11Backend) -> None:
    with token.backend() as other:
        other._mechanisms.discard(Mechanism.EC_EDWARDS_KEY_PAIR_GEN)  # as a token without Ed25519 would say
        with pytest.raises(BackendError, match="does not offer CKM_EC_EDWARDS_KEY_PAIR_GEN"):
            other.generate(Algorithm.ED25519, "no ed25519 here")


# --- signatures -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ASYMMETRIC)
def test_signatures_verify_with_pyca(
    backend: Pkcs11Backend, keys: dict[Algorithm, Generated], algorithm: Algorithm
) -> None:
    generated = keys[algorithm]
    assert generated.public_key is not None
    for message in MESSAGES:
        signature = backend.sign(generated.ref, algorithm, message)
        if algorithm is Algorithm.ED25519:
            assert len(signature) == 64
        verify(algorithm, generated.public_key, message, signature)
        with pytest.raises(InvalidSignature):
            verify(algorithm, generated.public_key, message + b"!", signature)


def test_secp256k1_signatures_are_low_s(backend: Pkcs11Backend, keys: dict[Algorithm, Generated]) -> None:
    generated = keys[Algorithm.ECDSA_SECP256K1]
    assert generated.public_key is not None
    for i in range(200):
        message = f"message {i}".encode()
        signature = backend.sign(generated.ref, Algorithm.ECDSA_SECP256K1, message)
        _, s = decode_dss_signature(signature)
        assert s <= SECP256K1_ORDER // 2, f"high S for message {i}"
        verify(Algorithm.ECDSA_SECP256K1, generated.public_key, message, signature)


def test_ecdsa_der_on_wycheproof_secp256k1() -> None:
    """The r || s -> DER step, on Wycheproof's valid signatures: still valid, and low-S; P-256 untouched."""
    suite = load("wycheproof_ecdsa_secp256k1_sha256_test.json")
    high = 0
    for group in suite["testGroups"]:
        public = serialization.load_der_public_key(bytes.fromhex(group["publicKeyDer"]))
        assert isinstance(public, ec.EllipticCurvePublicKey)
        for case in group["tests"]:
            if case["result"] != "valid":
                continue
            r, s = decode_dss_signature(bytes.fromhex(case["sig"]))
            raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
            high += s > SECP256K1_ORDER // 2
            der = ecdsa_der(raw, Algorithm.ECDSA_SECP256K1)
            assert decode_dss_signature(der) == (r, min(s, SECP256K1_ORDER - s)), case["tcId"]
            public.verify(der, bytes.fromhex(case["msg"]), ec.ECDSA(hashes.SHA256()))
            assert ecdsa_der(raw, Algorithm.ECDSA_P256) == encode_dss_signature(r, s)
    assert high > 0, "no high-S vector: the normalisation went untested"


def test_sign_refuses_the_wrong_key(backend: Pkcs11Backend, keys: dict[Algorithm, Generated]) -> None:
    with pytest.raises(BackendError, match="aes-256 keys do not sign"):
        backend.sign(keys[Algorithm.AES_256].ref, Algorithm.AES_256, b"data")
    with pytest.raises(BackendError, match="is an ecdsa-p256 key, not ecdsa-secp256k1"):
        backend.sign(keys[Algorithm.ECDSA_P256].ref, Algorithm.ECDSA_SECP256K1, b"data")
    with pytest.raises(BackendError, match="is an aes-256 key, not ed25519"):
        backend.sign(keys[Algorithm.AES_256].ref, Algorithm.ED25519, b"data")


# --- AES-GCM ----------------------------------------------------------------------------------------------------


def test_aes_gcm_round_trip(backend: Pkcs11Backend, keys: dict[Algorithm, Generated]) -> None:
    ref = keys[Algorithm.AES_256].ref
    for size in (0, 1, 16, 1000, 65536):
        plaintext = secrets.token_bytes(size)
        blob = backend.encrypt(ref, plaintext, b"context")
        assert len(blob) == 12 + size + 16
        assert backend.decrypt(ref, blob, b"context") == plaintext
    assert backend.encrypt(ref, b"same") != backend.encrypt(ref, b"same")  # a fresh nonce each time


def test_aes_gcm_refuses_other_aad_and_tampering(backend: Pkcs11Backend, keys: dict[Algorithm, Generated]) -> None:
    ref = keys[Algorithm.AES_256].ref
    blob = backend.encrypt(ref, b"the vault combination", b"aad")
    with pytest.raises(BackendError, match="authentication failed"):
        backend.decrypt(ref, blob, b"other aad")
    with pytest.raises(BackendError, match="authentication failed"):
        backend.decrypt(ref, blob)
    for where in (0, 11, 12, len(blob) - 17, len(blob) - 16, len(blob) - 1):  # nonce, ciphertext, tag
        altered = bytearray(blob)
        altered[where] ^= 0x01
        with pytest.raises(BackendError, match="authentication failed"):
            backend.decrypt(ref, bytes(altered), b"aad")
    with pytest.raises(BackendError, match="too short"):
        backend.decrypt(ref, blob[:27], b"aad")
    other = keys[Algorithm.ECDSA_P256].ref
    with pytest.raises(BackendError, match="not aes-256"):
        backend.encrypt(other, b"x")


def test_aes_gcm_matches_pyca(backend: Pkcs11Backend, raw: pkcs11.Session) -> None:
    value = secrets.token_bytes(32)
    ref = plant_aes(raw, value)
    blob = backend.encrypt(ref, b"to pyca", b"aad")
    assert AESGCM(value).decrypt(blob[:12], blob[12:], b"aad") == b"to pyca"
    nonce = secrets.token_bytes(12)
    assert backend.decrypt(ref, nonce + AESGCM(value).encrypt(nonce, b"from pyca", b"aad"), b"aad") == b"from pyca"


def test_aes_gcm_wycheproof(backend: Pkcs11Backend, raw: pkcs11.Session) -> None:
    """The token decrypts every valid 256-bit, 96-bit nonce vector and refuses every invalid one."""
    refs: dict[str, bytes] = {}
    checked = 0
    for group in load("wycheproof_aes_gcm_test.json")["testGroups"]:
        if (group["keySize"], group["ivSize"], group["tagSize"]) != (256, 96, 128):
            continue  # the backend's format fixes these sizes
        for case in group["tests"]:
            ref = refs.get(case["key"]) or refs.setdefault(case["key"], plant_aes(raw, bytes.fromhex(case["key"])))
            blob = bytes.fromhex(case["iv"] + case["ct"] + case["tag"])
            aad = bytes.fromhex(case["aad"])
            if case["result"] == "valid":
                assert backend.decrypt(ref, blob, aad) == bytes.fromhex(case["msg"]), case["tcId"]
            else:
                with pytest.raises(BackendError, match="authentication failed"):
                    backend.decrypt(ref, blob, aad)
            checked += 1
    assert checked == 66


# --- RFC 5649 key wrap ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wrapping(backend: Pkcs11Backend) -> Pkcs11Backend:
    offered = set(backend.mechanisms())
    if not offered & {"CKM_AES_KEY_WRAP_KWP", "CKM_AES_KEY_WRAP_PAD"}:
        need("this SoftHSM offers neither CKM_AES_KEY_WRAP_KWP nor CKM_AES_KEY_WRAP_PAD (RFC 5649)")
    return backend


def test_wrap_equals_pyca(wrapping: Pkcs11Backend, raw: pkcs11.Session) -> None:
    kek = secrets.token_bytes(32)
    ref = plant_aes(raw, kek)
    for size in [*range(1, 41), 48, 64, 137, 138, 1000]:
        data = secrets.token_bytes(size)
        wrapped = wrapping.wrap(ref, data)
        assert wrapped == aes_key_wrap_with_padding(kek, data), f"{size} bytes"
        assert wrapping.unwrap(ref, wrapped) == data, f"{size} bytes"


def test_wrap_probe_tells_the_truth(wrapping: Pkcs11Backend, raw: pkcs11.Session) -> None:
    """The backend asks the token once whether its RFC 5649 pads wrongly; check the answer against pyca."""
    kek = secrets.token_bytes(32)
    ref = plant_aes(raw, kek)
    wrapping.wrap(ref, b"\x01")  # asks, if not asked yet
    kek_obj = objects_with_id(raw, ref)[ObjectClass.SECRET_KEY]
    data = raw.create_object(
        {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
            Attribute.VALUE: b"\x01",
            Attribute.TOKEN: False,
            Attribute.SENSITIVE: False,
            Attribute.EXTRACTABLE: True,
        }
    )
    on_token = kek_obj.wrap_key(data, mechanism=wrapping._kwp())
    assert wrapping._kwp_pads is (on_token != aes_key_wrap_with_padding(kek, b"\x01"))


def test_wrap_wycheproof(wrapping: Pkcs11Backend, raw: pkcs11.Session) -> None:
    refs: dict[str, bytes] = {}
    checked = 0
    for group in load("wycheproof_aes_kwp_test.json")["testGroups"]:
        if group["keySize"] != 256:
            continue  # keys of this backend are AES-256
        for case in group["tests"]:
            ref = refs.get(case["key"]) or refs.setdefault(case["key"], plant_aes(raw, bytes.fromhex(case["key"])))
            msg, ct = bytes.fromhex(case["msg"]), bytes.fromhex(case["ct"])
            if case["result"] == "valid":
                assert wrapping.wrap(ref, msg) == ct, case["tcId"]
                assert wrapping.unwrap(ref, ct) == msg, case["tcId"]
            else:
                with pytest.raises(BackendError, match="unwrap"):
                    wrapping.unwrap(ref, ct)
            checked += 1
    assert checked == 94


def test_wrap_with_generated_kek(wrapping: Pkcs11Backend, keys: dict[Algorithm, Generated]) -> None:
    kek = keys[Algorithm.AES_256].ref
    other = wrapping.generate(Algorithm.AES_256, "another kek").ref
    data = secrets.token_bytes(45)
    wrapped = wrapping.wrap(kek, data)
    assert len(wrapped) == 56
    assert wrapping.unwrap(kek, wrapped) == data
    with pytest.raises(BackendError, match="unwrap"):
        wrapping.unwrap(other, wrapped)
    with pytest.raises(BackendError, match="unwrap"):
        wrapping.unwrap(kek, wrapped[:-1] + bytes([wrapped[-1] ^ 1]))
    with pytest.raises(BackendError, match="unwrap"):
        wrapping.unwrap(kek, wrapped[:-8])
    with pytest.raises(BackendError, match="1 to 2"):
        wrapping.wrap(kek, b"")
    with pytest.raises(BackendError, match="not aes-256"):
        wrapping.wrap(keys[Algorithm.ED25519].ref, data)


# --- destruction, the token, the PIN ----------------------------------------------------------------------------


def test_destroy(backend: Pkcs11Backend, raw: pkcs11.Session) -> None:
    pair = backend.generate(Algorithm.ECDSA_P256, "to destroy")
    secret = backend.generate(Algorithm.AES_256, "to destroy")
    backend.sign(pair.ref, Algorithm.ECDSA_P256, b"used once")  # so the backend holds the key's handles
    backend.encrypt(secret.ref, b"used once")
    for generated in (pair, secret):
        backend.destroy(generated.ref)
        assert objects_with_id(raw, generated.ref) == {}
        assert generated.ref.hex() not in {o.id_hex for o in backend.objects()}
        with pytest.raises(BackendError, match="no such key"):
            backend.protection(generated.ref)
        with pytest.raises(BackendError, match="no such key"):
            backend.destroy(generated.ref)
    with pytest.raises(BackendError, match="no such key"):
        backend.sign(pair.ref, Algorithm.ECDSA_P256, b"after")
    with pytest.raises(BackendError, match="no such key"):
        backend.encrypt(secret.ref, b"after")
    with pytest.raises(BackendError, match="no such key"):
        backend.public_key(pair.ref)


def test_token_info_and_objects(backend: Pkcs11Backend, token: SoftHsmToken, keys: dict[Algorithm, Generated]) -> None:
    info = backend.token_info()
    assert info["label"] == token.label
    assert info["manufacturer"] == "SoftHSM project"
    assert info["model"] == "SoftHSM v2"
    assert len(info["serial_number"]) == 16
    assert info["hardware_version"].count(".") == info["firmware_version"].count(".") == 1
    listed = set(backend.objects())
    aes = keys[Algorithm.AES_256].ref.hex()
    ed = keys[Algorithm.ED25519].ref.hex()
    assert ("test aes-256", "CKO_SECRET_KEY", "CKK_AES", aes) in listed
    assert ("test ed25519", "CKO_PRIVATE_KEY", "CKK_EC_EDWARDS", ed) in listed
    assert ("test ed25519", "CKO_PUBLIC_KEY", "CKK_EC_EDWARDS", ed) in listed


def test_wrong_pin(tmp_path_factory: pytest.TempPathFactory, backend: Pkcs11Backend, token: SoftHsmToken) -> None:
    fresh = softhsm(tmp_path_factory).new_token("wrong-pin")  # nobody logged in there yet
    with pytest.raises(BackendError, match=r"^the token refused the PIN$"):
        Pkcs11Backend(token_label=fresh.label, user_pin="0000", module=fresh.module)
    with Pkcs11Backend(token_label=fresh.label, user_pin=fresh.user_pin, module=fresh.module) as right:
        assert right.token_info()["label"] == fresh.label
    # On a token this process is logged in to, the token no longer checks PINs; the backend does.
    with pytest.raises(BackendError, match=r"^the token refused the PIN$"):
        Pkcs11Backend(token_label=token.label, user_pin="0000", module=token.module)


def test_backends_share_the_login(backend: Pkcs11Backend, token: SoftHsmToken) -> None:
    """A second backend on the token, closed, does not log the first one out."""
    generated = backend.generate(Algorithm.ED25519, "shared login")
    with token.backend() as second:
        assert second.protection(generated.ref) == generated.protection
    with pytest.raises(BackendError, match="closed"):
        second.protection(generated.ref)
    assert generated.public_key is not None
    verify(Algorithm.ED25519, generated.public_key, b"still", backend.sign(generated.ref, Algorithm.ED25519, b"still"))


def test_survives_library_reinitialisation(backend: Pkcs11Backend, keys: dict[Algorithm, Generated]) -> None:
    """What creating a token does to every session in the process: the backend opens its session again."""
    generated = keys[Algorithm.ECDSA_P256]
    backend.sign(generated.ref, Algorithm.ECDSA_P256, b"before")
    pkcs11.lib(MODULE).reinitialize()
    assert generated.public_key is not None
    signature = backend.sign(generated.ref, Algorithm.ECDSA_P256, b"after")
    verify(Algorithm.ECDSA_P256, generated.public_key, b"after", signature)


def test_bad_token_or_module(token: SoftHsmToken) -> None:
    with pytest.raises(BackendError, match="no token labelled 'no such token'"):
        Pkcs11Backend(token_label="no such token", user_pin=token.user_pin, module=token.module)
    with pytest.raises(BackendError, match="cannot load the PKCS#11 module"):
        Pkcs11Backend(token_label=token.label, user_pin=token.user_pin, module="/nonexistent/libpkcs11.so")


def test_pin_never_shown(backend: Pkcs11Backend, token: SoftHsmToken) -> None:
    assert token.user_pin not in repr(backend)
    assert token.user_pin not in str(backend.token_info())
    with pytest.raises(BackendError) as refused:
        Pkcs11Backend(token_label=token.label, user_pin=token.user_pin + "9", module=token.module)
    assert token.user_pin not in str(refused.value)


def test_threads_share_one_backend(backend: Pkcs11Backend, keys: dict[Algorithm, Generated]) -> None:
    pair, secret = keys[Algorithm.ECDSA_P256], keys[Algorithm.AES_256]
    assert pair.public_key is not None
    public = pair.public_key
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(40):
                message = f"thread {n} message {i}".encode()
                verify(Algorithm.ECDSA_P256, public, message, backend.sign(pair.ref, Algorithm.ECDSA_P256, message))
                assert backend.decrypt(secret.ref, backend.encrypt(secret.ref, message)) == message
        except BaseException as e:  # handed to the main thread, which fails the test
            failures.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
