"""The software cryptographic primitives behind the key service, all on pyca/cryptography.

Pure functions and small objects, no database. The output formats are the ones
backends/base.py fixes for every backend. `Signer`, `Verifier` and `Sealer` load
a key once so the service can cache them: loading (an RSA private key above all)
costs far more than one operation.

Every error is a `CryptoError` whose message names what is wrong (which
algorithm, which size, which step) and never carries material: pyca's own
exceptions are not passed through, and are raised `from None` so a traceback
does not drag them along either.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap,
    aes_key_wrap_with_padding,
)

from portcullis.keys.backends.base import Algorithm, BackendError

AES_KEY_BYTES = 32
AES_KEY_SIZES = (16, 24, 32)
NONCE_BYTES = 12
TAG_BYTES = 16
GCM_NONCE_RANGE = (8, 128)  # what pyca/cryptography accepts; other sizes are refused, not computed
RSA_PUBLIC_EXPONENT = 65537
PSS_SALT_BYTES = 32
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER = SECP256K1_ORDER // 2

_CURVES: dict[Algorithm, type[ec.EllipticCurve]] = {
    Algorithm.ECDSA_P256: ec.SECP256R1,
    Algorithm.ECDSA_SECP256K1: ec.SECP256K1,
}
_ECDSA = ec.ECDSA(hashes.SHA256())
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT_BYTES)
_SHA256 = hashes.SHA256()


class CryptoError(BackendError):
    """A primitive refused its input or failed; the message names what is wrong, never the bytes."""


class MaterialError(CryptoError):
    """Key material (imported, or a public key) is not of the stated algorithm, size or format."""


class DecryptionFailed(CryptoError):
    """AES-GCM refused a ciphertext: too short, or the authentication tag did not match."""


class UnwrapFailed(CryptoError):
    """A key wrap did not open: wrong KEK, altered or truncated wrapped bytes."""


# --- generation and material ------------------------------------------------------------


def generate(algorithm: Algorithm) -> tuple[bytes, bytes | None]:
    """New material: (private, public). AES: 32 random bytes and None; else PKCS#8 DER and SPKI DER."""
    if algorithm is Algorithm.AES_256:
        return os.urandom(AES_KEY_BYTES), None
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if algorithm is Algorithm.ED25519:
        key = ed25519.Ed25519PrivateKey.generate()
    elif algorithm in _CURVES:
        key = ec.generate_private_key(_CURVES[algorithm]())
    else:
        key = rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=algorithm.bits)
    private = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return private, _spki(key.public_key())


def check_material(algorithm: Algorithm, private: bytes) -> None:
    """Refuse material that is not what `algorithm` says: raises MaterialError naming the mismatch."""
    if algorithm is Algorithm.AES_256:
        _check_aes_key(private, AES_KEY_BYTES)
    else:
        _load_private(algorithm, private)


def public_key_of(algorithm: Algorithm, private: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of a private key given as PKCS#8 DER."""
    if algorithm.symmetric:
        raise MaterialError(f"{algorithm.value} is symmetric: it has no public key")
    return _spki(_load_private(algorithm, private).public_key())


def _spki(public: PublicKeyTypes) -> bytes:
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_aes_key(key: object, *sizes: int) -> bytes:
    if not isinstance(key, bytes):
        raise MaterialError(f"an AES key must be bytes, not {type(key).__name__}")
    if len(key) not in sizes:
        wanted = " or ".join(str(s) for s in sizes)
        raise MaterialError(f"an AES key must be {wanted} bytes, got {len(key)}")
    return key


def _der_item(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER item at `pos`; ValueError when malformed."""
    tag, first = der[pos], der[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        width = first & 0x7F
        if not 0 < width <= 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(der[pos : pos + width], "big")
        pos += width
    if pos + length > len(der):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _pkcs8_shape(der: bytes) -> str:
    """'plain', 'encrypted' or 'other': the outline of a PKCS#8 structure, checked before parsing.

    pyca also reads PKCS#1 and SEC1 keys; imported material must be PKCS#8 like
    generated material, so every stored key has the same form.
    """
    try:
        tag, start, end = _der_item(der, 0)
        if tag != 0x30 or end != len(der):
            return "other"
        first, _, first_end = _der_item(der, start)
        if first == 0x30:
            return "encrypted"  # EncryptedPrivateKeyInfo starts with its AlgorithmIdentifier
        version = der[first_end - 1] if first == 0x02 and first_end - start == 3 else -1
        second, _, _ = _der_item(der, first_end)
    except (IndexError, ValueError):
        return "other"
    return "plain" if version in (0, 1) and second == 0x30 else "other"


def _describe(key: PrivateKeyTypes | PublicKeyTypes) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"ecdsa on {key.curve.name}"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    return type(key).__name__.removeprefix("_").lower()


def _matches(algorithm: Algorithm, key: PrivateKeyTypes | PublicKeyTypes) -> bool:
    if algorithm is Algorithm.ED25519:
        return isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey)
    if algorithm in _CURVES:
        return isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and isinstance(
            key.curve, _CURVES[algorithm]
        )
    if algorithm in (Algorithm.RSA_3072, Algorithm.RSA_4096):
        return isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) and key.key_size == algorithm.bits
    return False


def _load_private(algorithm: Algorithm, private: bytes) -> PrivateKeyTypes:
    if algorithm.symmetric:
        raise MaterialError(f"{algorithm.value} material is a raw key, not a private key")
    if not isinstance(private, bytes):
        raise MaterialError(f"{algorithm.value} material must be bytes, not {type(private).__name__}")
    shape = _pkcs8_shape(private)
    if shape == "other":
        raise MaterialError(f"{algorithm.value} material is not a PKCS#8 DER private key ({len(private)} bytes)")
    try:
        key = serialization.load_der_private_key(private, password=None)
    except TypeError:  # pyca's way of saying a password is needed
        raise MaterialError(f"{algorithm.value} material is encrypted PKCS#8: import it unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise MaterialError(f"{algorithm.value} material is not a readable PKCS#8 DER private key") from None
    if shape == "encrypted":
        raise MaterialError(f"{algorithm.value} material is not a PKCS#8 DER private key ({len(private)} bytes)")
    if not _matches(algorithm, key):
        raise MaterialError(f"the material is an {_describe(key)} key, not {algorithm.value}")
    return key


def _load_public(algorithm: Algorithm, public_der: bytes) -> PublicKeyTypes:
    if algorithm.symmetric:
        raise MaterialError(f"{algorithm.value} is symmetric: it has no public key")
    try:
        key = serialization.load_der_public_key(public_der)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise MaterialError(f"not a DER SubjectPublicKeyInfo public key for {algorithm.value}") from None
    if not _matches(algorithm, key):
        raise MaterialError(f"the public key is an {_describe(key)} key, not {algorithm.value}")
    return key


# --- signatures -------------------------------------------------------------------------


def _low_s(signature: bytes) -> bytes:
    r, s = decode_dss_signature(signature)
    return signature if s <= _HALF_ORDER else encode_dss_signature(r, SECP256K1_ORDER - s)


class Signer:
    """A private key loaded once, signing in the formats of backends/base.py."""

    __slots__ = ("_sign", "algorithm")

    def __init__(self, algorithm: Algorithm, private: bytes) -> None:
        if algorithm.symmetric:
            raise MaterialError(f"{algorithm.value} keys do not sign")
        key = _load_private(algorithm, private)
        self.algorithm = algorithm
        # One closure per algorithm, chosen here, so sign() does no dispatch.
        self._sign: Callable[[bytes], bytes]
        if isinstance(key, ed25519.Ed25519PrivateKey):
            self._sign = key.sign
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            ec_key = key
            if algorithm is Algorithm.ECDSA_SECP256K1:
                self._sign = lambda data: _low_s(ec_key.sign(data, _ECDSA))
            else:
                self._sign = lambda data: ec_key.sign(data, _ECDSA)
        else:
            assert isinstance(key, rsa.RSAPrivateKey)  # _load_private checked the type
            rsa_key = key
            self._sign = lambda data: rsa_key.sign(data, _PSS, _SHA256)

    def sign(self, data: bytes) -> bytes:
        return self._sign(data)

    def __repr__(self) -> str:
        return f"Signer({self.algorithm.value})"


class Verifier:
    """A public key (DER SPKI) loaded once. verify() answers False for any bad signature, never raises.

    `low_s` refuses ECDSA signatures with s > n/2, as Bitcoin does; on by default
    for secp256k1 (whose signatures Portcullis always produces low-S), off for P-256.
    """

    __slots__ = ("_verify", "algorithm", "low_s")

    def __init__(self, algorithm: Algorithm, public_der: bytes, *, low_s: bool | None = None) -> None:
        key = _load_public(algorithm, public_der)
        if low_s is None:
            low_s = algorithm is Algorithm.ECDSA_SECP256K1
        elif low_s and algorithm is not Algorithm.ECDSA_SECP256K1:
            raise CryptoError(f"the low-S rule is defined for ecdsa-secp256k1, not {algorithm.value}")
        self.algorithm = algorithm
        self.low_s = low_s
        self._verify: Callable[[bytes, bytes], None]
        if isinstance(key, ed25519.Ed25519PublicKey):
            self._verify = lambda data, signature: key.verify(signature, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            ec_key = key
            if low_s:
                self._verify = lambda data, signature: _verify_low_s(ec_key, data, signature)
            else:
                self._verify = lambda data, signature: ec_key.verify(signature, data, _ECDSA)
        else:
            assert isinstance(key, rsa.RSAPublicKey)  # _load_public checked the type
            rsa_key = key
            self._verify = lambda data, signature: rsa_key.verify(signature, data, _PSS, _SHA256)

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            self._verify(data, signature)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def __repr__(self) -> str:
        return f"Verifier({self.algorithm.value}, low_s={self.low_s})"


def _verify_low_s(key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> None:
    _, s = decode_dss_signature(signature)  # strict DER; ValueError otherwise
    if s > _HALF_ORDER:
        raise InvalidSignature("high S")
    key.verify(signature, data, _ECDSA)


def sign(algorithm: Algorithm, private: bytes, data: bytes) -> bytes:
    """One signature; for many, keep a Signer."""
    return Signer(algorithm, private).sign(data)


def verify(algorithm: Algorithm, public_der: bytes, data: bytes, signature: bytes) -> bool:
    """One verification with the algorithm's default rules; for many, keep a Verifier."""
    return Verifier(algorithm, public_der).verify(data, signature)


# --- AES-GCM ----------------------------------------------------------------------------


def _aead(key: bytes, nonce: bytes) -> AESGCM:
    _check_aes_key(key, *AES_KEY_SIZES)
    low, high = GCM_NONCE_RANGE
    if not low <= len(nonce) <= high:
        raise CryptoError(f"AES-GCM nonce must be {low} to {high} bytes, got {len(nonce)}")
    return AESGCM(key)


def gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """ciphertext || tag under an explicit nonce (any AES key size): for known-answer tests, not for use."""
    return _aead(key, nonce).encrypt(nonce, plaintext, aad)


def gcm_decrypt(key: bytes, nonce: bytes, ciphertext_and_tag: bytes, aad: bytes = b"") -> bytes:
    """The plaintext of ciphertext || tag, or DecryptionFailed."""
    aead = _aead(key, nonce)
    if len(ciphertext_and_tag) < TAG_BYTES:
        raise DecryptionFailed(f"ciphertext too short: {len(ciphertext_and_tag)} bytes, no room for the tag")
    try:
        return aead.decrypt(nonce, ciphertext_and_tag, aad)
    except InvalidTag:
        raise DecryptionFailed("authentication failed: wrong key, altered ciphertext or different AAD") from None


class Sealer:
    """AES-256-GCM with a random 96-bit nonce per message: nonce || ciphertext || tag."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(_check_aes_key(key, AES_KEY_BYTES))

    def encrypt(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        # Random nonces are safe for 2**32 messages per key (SP 800-38D 8.3); keys are rotated well before.
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, blob: bytes, aad: bytes = b"") -> bytes:
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionFailed(
                f"ciphertext too short: {len(blob)} bytes, AES-GCM output is at least {NONCE_BYTES + TAG_BYTES}"
            )
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise DecryptionFailed("authentication failed: wrong key, altered ciphertext or different AAD") from None

    def __repr__(self) -> str:
        return "Sealer(aes-256-gcm)"


# --- key wrap ---------------------------------------------------------------------------


def _kek(kek: bytes, error: type[CryptoError]) -> bytes:
    try:
        return _check_aes_key(kek, *AES_KEY_SIZES)
    except MaterialError as e:
        raise error(f"key-encryption key: {e}") from None


def wrap(kek: bytes, data: bytes) -> bytes:
    """RFC 5649 AES key wrap with padding: any data from 1 byte."""
    _kek(kek, CryptoError)
    if not 1 <= len(data) <= 0xFFFFFFFF:
        raise CryptoError(f"key wrap (RFC 5649) needs 1 to 2**32-1 bytes of data, got {len(data)}")
    return aes_key_wrap_with_padding(kek, data)


def unwrap(kek: bytes, wrapped: bytes) -> bytes:
    """Inverse of wrap(), or UnwrapFailed."""
    _kek(kek, UnwrapFailed)
    try:
        return aes_key_unwrap_with_padding(kek, wrapped)
    except (InvalidUnwrap, ValueError):
        raise UnwrapFailed(
            f"key unwrap (RFC 5649) failed for {len(wrapped)} bytes: wrong key-encryption key, or altered data"
        ) from None


def wrap_3394(kek: bytes, data: bytes) -> bytes:
    """RFC 3394 AES key wrap: data of 16 bytes or more, a multiple of 8."""
    _kek(kek, CryptoError)
    if len(data) < 16 or len(data) % 8:
        raise CryptoError(f"key wrap (RFC 3394) needs 16 bytes or more in multiples of 8, got {len(data)}")
    return aes_key_wrap(kek, data)


def unwrap_3394(kek: bytes, wrapped: bytes) -> bytes:
    """Inverse of wrap_3394(), or UnwrapFailed."""
    _kek(kek, UnwrapFailed)
    try:
        return aes_key_unwrap(kek, wrapped)
    except (InvalidUnwrap, ValueError):
        raise UnwrapFailed(
            f"key unwrap (RFC 3394) failed for {len(wrapped)} bytes: wrong key-encryption key, or altered data"
        ) from None
