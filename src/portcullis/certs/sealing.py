"""Private keys the certificate domain keeps (ACME account keys, renewed certificates' keys), sealed.

They are sealed with AES-256-GCM under the key service's master key, with what
they are bound in as associated data, so a sealed account key cannot be passed
off as a certificate's key or moved to another row.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from portcullis.core.errors import PortcullisError

_NONCE = 12
_AAD = b"portcullis certs v1:"


class SealError(PortcullisError):
    status = 500
    title = "Sealed key does not open"


def seal(master: bytes, purpose: str, plaintext: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(master).encrypt(nonce, plaintext, _AAD + purpose.encode())


def unseal(master: bytes, purpose: str, sealed: bytes) -> bytes:
    try:
        return AESGCM(master).decrypt(sealed[:_NONCE], sealed[_NONCE:], _AAD + purpose.encode())
    except Exception:
        raise SealError(f"the sealed {purpose} did not open under this master key") from None
