"""What a key backend does, whichever holds the material: software envelope or a PKCS#11 token.

The key service (keys/service.py) decides who may do what with which key and
records it; a backend only holds material and computes. A backend never hands
out private or secret material, except wrapped (RFC 5649) by a key it holds,
for backup and transmission, and only for keys generated extractable.

Formats, the same for every backend so callers never care which one answered:
- signatures: Ed25519 raw 64 bytes; ECDSA DER (r, s), and on secp256k1 always
  low-S (s <= n/2, as Bitcoin requires); RSA PSS with SHA-256, MGF1-SHA-256,
  salt length 32;
- AES-GCM ciphertext: nonce (12 bytes) || ciphertext || tag (16 bytes);
- public keys: DER SubjectPublicKeyInfo.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Algorithm(StrEnum):
    AES_256 = "aes-256"
    ED25519 = "ed25519"
    ECDSA_P256 = "ecdsa-p256"
    ECDSA_SECP256K1 = "ecdsa-secp256k1"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"

    @property
    def symmetric(self) -> bool:
        return self is Algorithm.AES_256

    @property
    def bits(self) -> int:
        return _BITS[self]


_BITS = {
    Algorithm.AES_256: 256,
    Algorithm.ED25519: 256,
    Algorithm.ECDSA_P256: 256,
    Algorithm.ECDSA_SECP256K1: 256,
    Algorithm.RSA_3072: 3072,
    Algorithm.RSA_4096: 4096,
}


class BackendError(Exception):
    """The backend refused or failed; the message is safe to show (it never carries material)."""


@dataclass(frozen=True)
class Protection:
    """How the material is protected, as the backend reports it (PKCS#11 attributes on a token)."""

    local: bool | None = None  # CKA_LOCAL: generated on the device
    never_extractable: bool | None = None  # CKA_NEVER_EXTRACTABLE
    always_sensitive: bool | None = None  # CKA_ALWAYS_SENSITIVE
    extractable: bool | None = None  # CKA_EXTRACTABLE

    def as_dict(self) -> dict[str, bool | None]:
        return {
            "local": self.local,
            "never_extractable": self.never_extractable,
            "always_sensitive": self.always_sensitive,
            "extractable": self.extractable,
        }


@dataclass(frozen=True)
class Generated:
    """A new key version: how to find its material again, its public half, its protection."""

    ref: bytes  # opaque to the service: wrapped material (software) or the token object's id (PKCS#11)
    public_key: bytes | None  # DER SubjectPublicKeyInfo, None for AES
    protection: Protection


class Backend(Protocol):
    name: str

    def generate(self, algorithm: Algorithm, label: str, *, extractable: bool = False) -> Generated: ...

    def sign(self, ref: bytes, algorithm: Algorithm, data: bytes) -> bytes: ...

    def encrypt(self, ref: bytes, plaintext: bytes, aad: bytes = b"") -> bytes: ...

    def decrypt(self, ref: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes: ...

    def wrap(self, kek_ref: bytes, data: bytes) -> bytes:
        """RFC 5649 (AES key wrap with padding) of `data` under the AES key `kek_ref`."""
        ...

    def unwrap(self, kek_ref: bytes, wrapped: bytes) -> bytes: ...

    def protection(self, ref: bytes) -> Protection: ...

    def destroy(self, ref: bytes) -> None:
        """Erase the material (on a token: delete the objects); the ref is useless afterwards."""
        ...
