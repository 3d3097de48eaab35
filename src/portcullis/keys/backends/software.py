"""The software backend: key material sealed under the master key (envelope encryption).

A key version's `ref` is its material encrypted with AES-256-GCM under the
master key, the algorithm bound in as additional data, so the database alone
never holds a usable key and a sealed blob cannot be passed off as another
algorithm's. Unsealed keys are kept in memory as loaded objects (a signer, an
AES-GCM instance): loading costs more than most operations.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from portcullis.keys.backends.base import Algorithm, BackendError, Generated, Protection
from portcullis.keys.primitives import Signer, UnwrapFailed, check_material, generate, public_key_of, unwrap, wrap

_AAD = b"portcullis software key v1:"
NONCE = 12


class SoftwareBackend:
    name = "software"

    def __init__(self, master: bytes) -> None:
        self._seal = AESGCM(master)
        self._cache: dict[bytes, Any] = {}
        self._lock = threading.Lock()

    # --- envelope --------------------------------------------------------------------

    def seal(self, algorithm: Algorithm, material: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._seal.encrypt(nonce, material, _AAD + algorithm.value.encode())

    def open(self, algorithm: Algorithm, ref: bytes) -> bytes:
        try:
            return self._seal.decrypt(ref[:NONCE], ref[NONCE:], _AAD + algorithm.value.encode())
        except Exception:
            raise BackendError(
                "a sealed key did not open under this master key (wrong master key, or the record was altered)"
            ) from None

    def _loaded(self, ref: bytes, algorithm: Algorithm) -> Any:
        hit = self._cache.get(ref)
        if hit is not None:
            return hit
        material = self.open(algorithm, ref)
        obj: Any = AESGCM(material) if algorithm.symmetric else Signer(algorithm, material)
        with self._lock:
            self._cache[ref] = obj
        return obj

    # --- Backend ---------------------------------------------------------------------

    def generate(self, algorithm: Algorithm, label: str, *, extractable: bool = False) -> Generated:
        material, public = generate(algorithm)
        # Generated here, never known outside this process except sealed; "local" in PKCS#11's sense.
        return Generated(self.seal(algorithm, material), public, Protection(local=True, extractable=extractable))

    def import_material(self, algorithm: Algorithm, material: bytes) -> Generated:
        """A key restored from a backup or received wrapped: sealed like a generated one, marked not local."""
        check_material(algorithm, material)
        public = None if algorithm.symmetric else public_key_of(algorithm, material)
        return Generated(self.seal(algorithm, material), public, Protection(local=False, extractable=True))

    def sign(self, ref: bytes, algorithm: Algorithm, data: bytes) -> bytes:
        if algorithm.symmetric:
            raise BackendError(f"{algorithm.value} keys do not sign")
        signed: bytes = self._loaded(ref, algorithm).sign(data)
        return signed

    def encrypt(self, ref: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        nonce = os.urandom(NONCE)
        aes: AESGCM = self._loaded(ref, Algorithm.AES_256)
        return nonce + aes.encrypt(nonce, plaintext, aad)

    def encryptor(self, ref: bytes) -> Callable[[bytes, bytes], bytes]:
        """encrypt(ref, ...) bound to one key, for the service's hot path."""
        aes: AESGCM = self._loaded(ref, Algorithm.AES_256)
        urandom = os.urandom

        def seal(plaintext: bytes, aad: bytes) -> bytes:
            nonce = urandom(NONCE)
            return nonce + aes.encrypt(nonce, plaintext, aad)

        return seal

    def decrypt(self, ref: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes:
        if len(ciphertext) < NONCE + 16:
            raise BackendError("the ciphertext is too short to be AES-GCM output")
        aes: AESGCM = self._loaded(ref, Algorithm.AES_256)
        try:
            return aes.decrypt(ciphertext[:NONCE], ciphertext[NONCE:], aad)
        except Exception:
            raise BackendError(
                "decryption failed: wrong key, altered ciphertext or different additional data"
            ) from None

    def wrap(self, kek_ref: bytes, data: bytes) -> bytes:
        return wrap(self.open(Algorithm.AES_256, kek_ref), data)

    def unwrap(self, kek_ref: bytes, wrapped: bytes) -> bytes:
        try:
            return unwrap(self.open(Algorithm.AES_256, kek_ref), wrapped)
        except UnwrapFailed as e:
            raise BackendError(str(e)) from None

    def material(self, algorithm: Algorithm, ref: bytes) -> bytes:
        """The raw material, for wrapping it into a backup or a transmission; the service checks it may."""
        return self.open(algorithm, ref)

    def protection(self, ref: bytes) -> Protection:
        return Protection(local=None, never_extractable=None, always_sensitive=True, extractable=None)

    def destroy(self, ref: bytes) -> None:
        # The sealed blob is erased by the service (the version's ref set to NULL); forget the loaded key too.
        with self._lock:
            self._cache.pop(ref, None)
