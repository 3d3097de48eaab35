"""The primitives on their own: round trips for every algorithm, refusals, and errors that never carry material."""

from __future__ import annotations

import base64
import os
import traceback
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from portcullis.keys import primitives
from portcullis.keys.backends.base import Algorithm, BackendError
from portcullis.keys.primitives import (
    CryptoError,
    DecryptionFailed,
    MaterialError,
    Sealer,
    Signer,
    UnwrapFailed,
    Verifier,
)

ASYMMETRIC = [a for a in Algorithm if not a.symmetric]
Keys = dict[Algorithm, tuple[bytes, bytes | None]]


@pytest.fixture(scope="module")
def keys() -> Keys:
    """One key per algorithm for the module: RSA-4096 generation takes seconds."""
    return {algorithm: primitives.generate(algorithm) for algorithm in Algorithm}


def _pkcs8(key: Any, encryption: Any = None) -> bytes:
    der: bytes = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    )
    return der


# --- generation -------------------------------------------------------------------------


def test_aes_material_is_32_random_bytes(keys: Keys) -> None:
    private, public = keys[Algorithm.AES_256]
    assert len(private) == 32
    assert public is None
    assert primitives.generate(Algorithm.AES_256)[0] != private
    primitives.check_material(Algorithm.AES_256, private)


@pytest.mark.parametrize("algorithm", ASYMMETRIC, ids=str)
def test_generated_material_is_pkcs8_and_spki_of_the_algorithm(keys: Keys, algorithm: Algorithm) -> None:
    private, public = keys[algorithm]
    assert public is not None
    primitives.check_material(algorithm, private)
    assert primitives.public_key_of(algorithm, private) == public
    loaded = serialization.load_der_private_key(private, password=None)
    assert _pkcs8(loaded) == private
    spki = serialization.load_der_public_key(public)
    if isinstance(spki, rsa.RSAPublicKey):
        assert spki.key_size == algorithm.bits
        assert spki.public_numbers().e == 65537


# --- signatures -------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ASYMMETRIC, ids=str)
def test_sign_verify_round_trip(keys: Keys, algorithm: Algorithm) -> None:
    private, public = keys[algorithm]
    assert public is not None
    signer, verifier = Signer(algorithm, private), Verifier(algorithm, public)
    data = os.urandom(100)
    signature = signer.sign(data)
    assert verifier.verify(data, signature) is True
    assert primitives.verify(algorithm, public, data, primitives.sign(algorithm, private, data))
    assert verifier.verify(data + b"!", signature) is False
    assert verifier.verify(data, bytes([signature[0] ^ 1]) + signature[1:]) is False
    assert verifier.verify(data, signature[:-1]) is False
    other = primitives.generate(algorithm)[1]
    assert other is not None
    assert Verifier(algorithm, other).verify(data, signature) is False


@pytest.mark.parametrize("algorithm", ASYMMETRIC, ids=str)
def test_verify_never_raises_on_garbage(keys: Keys, algorithm: Algorithm) -> None:
    public = keys[algorithm][1]
    assert public is not None
    verifier = Verifier(algorithm, public)
    for garbage in (b"", b"\x00", b"\x30\x00", os.urandom(64), os.urandom(600), b"\x30\x81" * 100):
        assert verifier.verify(b"data", garbage) is False


def test_signature_formats(keys: Keys) -> None:
    data = b"format check"
    ed_sig = primitives.sign(Algorithm.ED25519, keys[Algorithm.ED25519][0], data)
    assert len(ed_sig) == 64
    for curve in (Algorithm.ECDSA_P256, Algorithm.ECDSA_SECP256K1):
        r, s = decode_dss_signature(primitives.sign(curve, keys[curve][0], data))  # DER (r, s)
        assert r > 0
        assert s > 0
    for size in (Algorithm.RSA_3072, Algorithm.RSA_4096):
        private, public = keys[size]
        assert public is not None
        signature = primitives.sign(size, private, data)
        assert len(signature) == size.bits // 8
        rsa_public = serialization.load_der_public_key(public)
        assert isinstance(rsa_public, rsa.RSAPublicKey)
        # pyca checks the salt length when told it: 32 passes, another is refused.
        rsa_public.verify(signature, data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        with pytest.raises(InvalidSignature):
            rsa_public.verify(signature, data, padding.PSS(padding.MGF1(hashes.SHA256()), 20), hashes.SHA256())


def test_p256_signatures_may_be_high_s_and_the_low_s_rule_is_for_secp256k1(keys: Keys) -> None:
    public = keys[Algorithm.ECDSA_P256][1]
    assert public is not None
    assert Verifier(Algorithm.ECDSA_P256, public).low_s is False
    with pytest.raises(CryptoError, match="low-S rule is defined for ecdsa-secp256k1, not ecdsa-p256"):
        Verifier(Algorithm.ECDSA_P256, public, low_s=True)
    secp = keys[Algorithm.ECDSA_SECP256K1][1]
    assert secp is not None
    assert Verifier(Algorithm.ECDSA_SECP256K1, secp).low_s is True


def test_verifier_refuses_a_public_key_of_another_algorithm(keys: Keys) -> None:
    p256 = keys[Algorithm.ECDSA_P256][1]
    assert p256 is not None
    with pytest.raises(MaterialError, match="public key is an ecdsa on secp256r1 key, not ecdsa-secp256k1"):
        Verifier(Algorithm.ECDSA_SECP256K1, p256)
    with pytest.raises(MaterialError, match="not a DER SubjectPublicKeyInfo public key for ed25519"):
        Verifier(Algorithm.ED25519, b"\x30\x03\x02\x01\x00")
    with pytest.raises(MaterialError, match="aes-256 is symmetric"):
        Verifier(Algorithm.AES_256, p256)


def test_aes_keys_do_not_sign_and_have_no_public_key(keys: Keys) -> None:
    with pytest.raises(MaterialError, match="aes-256 keys do not sign"):
        Signer(Algorithm.AES_256, keys[Algorithm.AES_256][0])
    with pytest.raises(MaterialError, match="aes-256 is symmetric: it has no public key"):
        primitives.public_key_of(Algorithm.AES_256, keys[Algorithm.AES_256][0])


# --- AES-GCM ----------------------------------------------------------------------------


def test_sealer_round_trip_and_format(keys: Keys) -> None:
    key = keys[Algorithm.AES_256][0]
    sealer = Sealer(key)
    for size in (0, 1, 16, 1024, 100_000):
        plaintext = os.urandom(size)
        blob = sealer.encrypt(plaintext, b"context")
        assert len(blob) == 12 + size + 16
        assert sealer.decrypt(blob, b"context") == plaintext
        assert AESGCM(key).decrypt(blob[:12], blob[12:], b"context") == plaintext  # nonce || ct || tag
    assert sealer.encrypt(b"same") != sealer.encrypt(b"same")  # a fresh nonce each time


def test_sealer_refuses_any_altered_byte_aad_or_key(keys: Keys) -> None:
    sealer = Sealer(keys[Algorithm.AES_256][0])
    blob = sealer.encrypt(b"attack at dawn", b"aad")
    for position in range(len(blob)):  # nonce, ciphertext and tag alike
        altered = blob[:position] + bytes([blob[position] ^ 0x80]) + blob[position + 1 :]
        with pytest.raises(DecryptionFailed, match="authentication failed"):
            sealer.decrypt(altered, b"aad")
    for aad in (b"", b"aaD", b"aad\x00"):
        with pytest.raises(DecryptionFailed, match="authentication failed"):
            sealer.decrypt(blob, aad)
    with pytest.raises(DecryptionFailed, match="authentication failed"):
        Sealer(os.urandom(32)).decrypt(blob, b"aad")
    with pytest.raises(DecryptionFailed, match="ciphertext too short: 27 bytes, AES-GCM output is at least 28"):
        sealer.decrypt(blob[:27], b"aad")
    with pytest.raises(DecryptionFailed, match="authentication failed"):
        sealer.decrypt(blob[:-1], b"aad")


def test_sealer_takes_aes_256_keys_only() -> None:
    with pytest.raises(MaterialError, match="an AES key must be 32 bytes, got 16"):
        Sealer(os.urandom(16))


def test_gcm_with_an_explicit_nonce_is_deterministic_and_checks_sizes() -> None:
    key, nonce = os.urandom(16), os.urandom(12)
    sealed = primitives.gcm_encrypt(key, nonce, b"message", b"aad")
    assert sealed == primitives.gcm_encrypt(key, nonce, b"message", b"aad")
    assert primitives.gcm_decrypt(key, nonce, sealed, b"aad") == b"message"
    with pytest.raises(DecryptionFailed, match="ciphertext too short: 15 bytes"):
        primitives.gcm_decrypt(key, nonce, sealed[:15], b"aad")
    with pytest.raises(MaterialError, match="an AES key must be 16 or 24 or 32 bytes, got 20"):
        primitives.gcm_encrypt(os.urandom(20), nonce, b"message")


# --- key wrap ---------------------------------------------------------------------------


def test_wrap_round_trip(keys: Keys) -> None:
    kek = keys[Algorithm.AES_256][0]
    for data in (b"x", os.urandom(7), os.urandom(32), keys[Algorithm.RSA_4096][0]):
        wrapped = primitives.wrap(kek, data)
        assert len(wrapped) == 8 + -(-len(data) // 8) * 8  # padded to 8 bytes, plus the integrity block
        assert primitives.unwrap(kek, wrapped) == data
    for data in (os.urandom(16), os.urandom(40)):
        assert primitives.unwrap_3394(kek, primitives.wrap_3394(kek, data)) == data


@pytest.mark.parametrize(
    ("wrap", "unwrap", "rfc"),
    [(primitives.wrap, primitives.unwrap, "5649"), (primitives.wrap_3394, primitives.unwrap_3394, "3394")],
)
def test_unwrap_refuses_wrong_kek_and_altered_data(
    wrap: Callable[[bytes, bytes], bytes], unwrap: Callable[[bytes, bytes], bytes], rfc: str
) -> None:
    kek, data = os.urandom(32), os.urandom(32)
    wrapped = wrap(kek, data)
    failures = [
        (os.urandom(32), wrapped),
        (kek, wrapped[:-1]),
        (kek, wrapped[:-8]),
        (kek, b""),
        (kek, bytes([wrapped[0] ^ 1]) + wrapped[1:]),
        (kek, wrapped[:-1] + bytes([wrapped[-1] ^ 1])),
    ]
    for key, blob in failures:
        with pytest.raises(UnwrapFailed, match=f"key unwrap \\(RFC {rfc}\\) failed for {len(blob)} bytes"):
            unwrap(key, blob)
    with pytest.raises(UnwrapFailed, match="key-encryption key: an AES key must be 16 or 24 or 32 bytes, got 31"):
        unwrap(kek[:31], wrapped)


def test_wrap_refuses_what_the_rfcs_do_not_define() -> None:
    kek = os.urandom(32)
    with pytest.raises(CryptoError, match="RFC 5649\\) needs 1 to 2\\*\\*32-1 bytes of data, got 0"):
        primitives.wrap(kek, b"")
    for size in (0, 8, 15, 17):
        with pytest.raises(CryptoError, match=f"RFC 3394\\) needs 16 bytes or more in multiples of 8, got {size}"):
            primitives.wrap_3394(kek, bytes(size))
    with pytest.raises(CryptoError, match="key-encryption key: an AES key must be"):
        primitives.wrap(kek[:8], b"data")


# --- imported material ------------------------------------------------------------------


def _material_cases(keys: Keys) -> Iterator[tuple[Algorithm, Any, str]]:
    rsa_3072 = serialization.load_der_private_key(keys[Algorithm.RSA_3072][0], password=None)
    p256 = serialization.load_der_private_key(keys[Algorithm.ECDSA_P256][0], password=None)
    yield Algorithm.AES_256, os.urandom(16), "an AES key must be 32 bytes, got 16"
    yield Algorithm.AES_256, os.urandom(33), "an AES key must be 32 bytes, got 33"
    yield Algorithm.AES_256, "0" * 32, "an AES key must be bytes, not str"
    yield Algorithm.ED25519, keys[Algorithm.ECDSA_P256][0], "the material is an ecdsa on secp256r1 key, not ed25519"
    yield (
        Algorithm.ECDSA_SECP256K1,
        keys[Algorithm.ECDSA_P256][0],
        "the material is an ecdsa on secp256r1 key, not ecdsa-secp256k1",
    )
    yield Algorithm.ECDSA_P256, keys[Algorithm.ECDSA_SECP256K1][0], "an ecdsa on secp256k1 key, not ecdsa-p256"
    yield Algorithm.RSA_3072, keys[Algorithm.RSA_4096][0], "the material is an rsa-4096 key, not rsa-3072"
    yield Algorithm.RSA_4096, keys[Algorithm.RSA_3072][0], "the material is an rsa-3072 key, not rsa-4096"
    yield Algorithm.ECDSA_P256, _pkcs8(ec.generate_private_key(ec.SECP384R1())), "an ecdsa on secp384r1 key"
    yield Algorithm.ED25519, _pkcs8(x25519.X25519PrivateKey.generate()), "not ed25519"
    yield Algorithm.RSA_3072, keys[Algorithm.AES_256][0], "rsa-3072 material is not a PKCS#8 DER private key"
    pkcs1 = rsa_3072.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    yield Algorithm.RSA_3072, pkcs1, "rsa-3072 material is not a PKCS#8 DER private key"
    sec1 = p256.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    yield Algorithm.ECDSA_P256, sec1, "ecdsa-p256 material is not a PKCS#8 DER private key"
    pem = p256.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    yield Algorithm.ECDSA_P256, pem, "ecdsa-p256 material is not a PKCS#8 DER private key"
    encrypted = _pkcs8(p256, serialization.BestAvailableEncryption(b"pass"))
    yield Algorithm.ECDSA_P256, encrypted, "ecdsa-p256 material is encrypted PKCS#8: import it unencrypted"
    damaged = bytearray(keys[Algorithm.ECDSA_P256][0])
    damaged[10:20] = bytes(10)  # the PKCS#8 outline stays, the algorithm identifier goes
    yield Algorithm.ECDSA_P256, bytes(damaged), "ecdsa-p256 material is not a readable PKCS#8 DER private key"
    yield Algorithm.ED25519, keys[Algorithm.ED25519][0][:-1], "ed25519 material is not a PKCS#8 DER private key"
    shaped_like_encrypted = bytes.fromhex("300730050603550403")  # SEQUENCE { SEQUENCE { OID } }, no key in it
    yield Algorithm.ED25519, shaped_like_encrypted, "ed25519 material is not a readable PKCS#8 DER private key"


def test_check_material_names_what_is_wrong(keys: Keys) -> None:
    cases = list(_material_cases(keys))
    assert len(cases) == 18
    for algorithm, material, message in cases:
        with pytest.raises(MaterialError, match=message):
            primitives.check_material(algorithm, material)
        if not algorithm.symmetric:
            with pytest.raises(MaterialError, match=message):
                Signer(algorithm, material)


# --- no material in errors --------------------------------------------------------------


def _renderings(material: bytes) -> list[str]:
    """How bytes could show up in text: hex either case, base64 (both alphabets), Python's repr."""
    shown = []
    for chunk in (material, material[:12], material[-12:]):
        shown += [chunk.hex(), chunk.hex().upper(), base64.b64encode(chunk).decode().rstrip("=")]
        shown += [base64.urlsafe_b64encode(chunk).decode().rstrip("="), repr(chunk)[2:-1]]
    return [s for s in shown if len(s) >= 12]


def _failures(keys: Keys) -> Iterator[tuple[bytes, Callable[[], object]]]:
    """(material, call that fails while holding it)."""
    aes = keys[Algorithm.AES_256][0]
    blob = Sealer(aes).encrypt(b"payload")
    wrapped = primitives.wrap(aes, aes)
    for algorithm in ASYMMETRIC:
        private = keys[algorithm][0]
        wrong = Algorithm.ED25519 if algorithm is not Algorithm.ED25519 else Algorithm.ECDSA_P256
        yield private, partial(primitives.check_material, wrong, private)
        yield private, partial(Signer, wrong, private)
        yield private, partial(primitives.check_material, algorithm, private[:-3])
        yield private, partial(primitives.check_material, Algorithm.AES_256, private)
    yield aes, lambda: primitives.check_material(Algorithm.ED25519, aes)
    yield aes, lambda: primitives.check_material(Algorithm.AES_256, aes[:31])
    yield aes, lambda: Sealer(aes[:31])
    yield aes, lambda: Sealer(aes).decrypt(blob, b"other aad")
    yield aes, lambda: Sealer(aes).decrypt(blob[:20])
    yield aes, lambda: primitives.gcm_decrypt(aes, blob[:12], blob[12:-1])
    yield aes, lambda: primitives.unwrap(os.urandom(32), wrapped)  # the wrapped key is aes itself
    yield aes, lambda: primitives.unwrap(aes, wrapped[:-1])
    yield aes, lambda: primitives.unwrap(aes[:31], wrapped)
    yield aes, lambda: primitives.unwrap_3394(aes, wrapped)
    yield aes, lambda: primitives.wrap(aes[:20], aes)
    yield aes, lambda: primitives.wrap_3394(aes, aes[:31])


def test_no_error_carries_the_material(keys: Keys) -> None:
    failures = list(_failures(keys))
    assert len(failures) == 32
    for material, call in failures:
        with pytest.raises(CryptoError) as caught:
            call()
        error = caught.value
        assert isinstance(error, BackendError)  # safe to show, as base.py promises
        text = "".join(traceback.format_exception(error)) + repr(error)
        for shown in _renderings(material):
            assert shown not in text, f"{type(error).__name__}: {error}"
        # pyca's exception stays out of the traceback too.
        assert error.__cause__ is None
        assert error.__suppress_context__ or error.__context__ is None


def test_reprs_carry_no_material(keys: Keys) -> None:
    for algorithm in ASYMMETRIC:
        private, public = keys[algorithm]
        assert public is not None
        for obj in (Signer(algorithm, private), Verifier(algorithm, public)):
            assert repr(obj).startswith(("Signer(", "Verifier(")), repr(obj)
            for shown in _renderings(private):
                assert shown not in repr(obj)
    assert repr(Sealer(keys[Algorithm.AES_256][0])) == "Sealer(aes-256-gcm)"
