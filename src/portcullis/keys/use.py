"""Using internal keys: sign, verify, encrypt, decrypt, wrap, unwrap (§27 "protected against unauthorised use").

Each use is checked against the key's state (a suspended key neither signs nor
encrypts; a deactivated or compromised key only decrypts and verifies; a destroyed
key does nothing), its minimum versions and its usage policy, then counted. The
counts are flushed to the versions' `uses` and to the ledger (one `key.used`
record per key, operation and caller) when the caller's unit of work ends:
writing a ledger record per signature would cost a hundred times the signature.

Key metadata is cached for a second, so a state change made by another process
takes effect within that second; one made here takes effect at once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portcullis.core.context import Context, Principal
from portcullis.core.errors import Conflict, NotFound, PermissionDenied
from portcullis.core.permissions import Permission
from portcullis.keys.backends.base import Algorithm, Backend, BackendError
from portcullis.keys.models import CryptoKey, Custody, KeyState, KeyVersion, VersionState
from portcullis.keys.primitives import Verifier
from portcullis.ledger.service import Change, record_changes

PROTECT = frozenset({"sign", "encrypt", "wrap"})
# What each state still allows (NIST SP 800-57: processing only once a key no longer protects).
ALLOWED_BY_STATE = {
    KeyState.ACTIVE: frozenset({"sign", "verify", "encrypt", "decrypt", "wrap", "unwrap"}),
    KeyState.SUSPENDED: frozenset({"verify", "decrypt", "unwrap"}),
    KeyState.DEACTIVATED: frozenset({"verify", "decrypt", "unwrap"}),
    KeyState.COMPROMISED: frozenset({"verify", "decrypt", "unwrap"}),
    KeyState.PRE_ACTIVATION: frozenset(),
    KeyState.DESTROYED: frozenset(),
}
CACHE_SECONDS = 1.0
HEADER = b"pck1"  # ciphertexts carry the key version: "pck1" + version (4 bytes) + backend output


@dataclass(frozen=True)
class _Version:
    id: int
    version: int
    state: str
    ref: bytes | None
    public_key: bytes | None


@dataclass(frozen=True)
class _Key:
    id: int
    name: str
    algorithm: Algorithm
    backend: str | None
    state: KeyState
    policy: dict[str, list[str]]
    min_encrypt: int
    min_decrypt: int
    versions: dict[int, _Version]
    loaded_at: float


@dataclass(eq=False)
class _Grant:
    """A checked right to protect with one key version, for one caller, until `until`; counts its own uses."""

    principal: Principal
    key: _Key
    version: _Version
    backend: Backend
    ref: bytes
    until: float
    header: bytes = b""
    seal: Callable[[bytes, bytes], bytes] | None = None
    uses: int = 0


def allowed(policy: dict[str, list[str]], operation: str, principal: Principal) -> bool:
    who = policy.get(operation, [])
    return (
        "any" in who
        or f"role:{principal.role.value}" in who
        or (principal.user_id is not None and f"user:{principal.user_id}" in who)
        or (principal.name.startswith("system:") and principal.name in who)
    )


@dataclass
class KeyService:
    backends: dict[str, Backend]
    _keys: dict[str, _Key] = field(default_factory=dict)
    _uses: Counter[tuple[int, int, str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _verifiers: dict[tuple[int, int], Any] = field(default_factory=dict)
    _grants: dict[tuple[str, str], _Grant] = field(default_factory=dict)

    # --- metadata -----------------------------------------------------------------------

    def forget(self, name: str | None = None) -> None:
        """Drop cached metadata and authorisations (after a change made in this process); counts are kept."""
        with self._lock:
            for (key_name, operation), g in list(self._grants.items()):
                if name is None or key_name == name:
                    if g.uses:
                        self._uses[(g.key.id, g.version.id, operation, g.principal.name)] += g.uses
                    del self._grants[(key_name, operation)]
            if name is None:
                self._keys.clear()
            else:
                self._keys.pop(name, None)

    def _load(self, session: Session, name: str) -> _Key:
        hit = self._keys.get(name)
        if hit is not None and time.monotonic() - hit.loaded_at < CACHE_SECONDS:
            return hit
        k = session.scalars(select(CryptoKey).where(CryptoKey.key == name)).one_or_none()
        if k is None:
            raise NotFound(f"No key named {name!r} in the register")
        if k.custody != Custody.INTERNAL.value:
            raise Conflict(f"Key {name!r} is held outside Portcullis; it is used where it lives")
        versions = {
            v.version: _Version(v.id, v.version, v.state, v.ref, v.public_key)
            for v in session.scalars(select(KeyVersion).where(KeyVersion.key_id == k.id))
        }
        loaded = _Key(
            k.id,
            k.key,
            Algorithm(k.algorithm),
            k.backend,
            KeyState(k.state),
            dict(k.policy or {}),
            k.min_encrypt_version,
            k.min_decrypt_version,
            versions,
            time.monotonic(),
        )
        with self._lock:
            self._keys[name] = loaded
        return loaded

    def _check(self, ctx: Context, name: str, operation: str) -> _Key:
        k = self._load(ctx.session, name)
        if operation not in ALLOWED_BY_STATE[k.state]:
            raise Conflict(f"Key {name!r} is {k.state.value}: it may not {operation}")
        p = ctx.principal
        if not p.name.startswith("system:") and not p.can(Permission.KEYS_USE):
            raise PermissionDenied(f"{p.name} ({p.role.value}) may not use keys")
        if not allowed(k.policy, operation, p):
            raise PermissionDenied(f"Key {name!r}'s usage policy does not let {p.name} {operation}")
        return k

    def _backend(self, k: _Key) -> Backend:
        try:
            return self.backends[k.backend or ""]
        except KeyError:
            raise Conflict(f"Key {k.name!r} is held by the {k.backend} backend, not available here") from None

    def _current(self, k: _Key) -> _Version:
        v = k.versions[max(k.versions)]
        if v.version < k.min_encrypt or v.state != VersionState.ACTIVE.value or v.ref is None:
            raise Conflict(f"Key {k.name!r} has no version that may protect (rotate it)")
        return v

    def _version(self, k: _Key, version: int) -> _Version:
        v = k.versions.get(version)
        if v is None:
            raise NotFound(f"Key {k.name!r} has no version {version}")
        if version < k.min_decrypt or v.state == VersionState.DESTROYED.value or v.ref is None:
            raise Conflict(f"Version {version} of key {k.name!r} may no longer be used (retired or destroyed)")
        return v

    def _count(self, k: _Key, v: _Version, operation: str, principal: Principal) -> None:
        self._uses[(k.id, v.id, operation, principal.name)] += 1

    # --- operations ---------------------------------------------------------------------

    def _protecting(self, ctx: Context, name: str, operation: str) -> _Grant:
        """The caller's cached permission to protect with the key's current version, checked anew when stale.

        Signing and encrypting are the hot paths (a ledger checkpoint, a wallet, a
        database field): one dictionary lookup and an identity test instead of the
        state, policy and version checks, which run again at most once a second.
        """
        g = self._grants.get((name, operation))
        if g is not None and g.principal is ctx.principal and time.monotonic() < g.until:
            return g
        k = self._check(ctx, name, operation)
        v = self._current(k)
        assert v.ref is not None
        backend = self._backend(k)
        g = _Grant(ctx.principal, k, v, backend, v.ref, k.loaded_at + CACHE_SECONDS)
        if operation == "encrypt":
            g.seal = backend.encryptor(v.ref) if hasattr(backend, "encryptor") else None
        g.header = HEADER + v.version.to_bytes(4, "big")
        with self._lock:
            old = self._grants.get((name, operation))
            if old is not None and old.uses:
                self._uses[(old.key.id, old.version.id, operation, old.principal.name)] += old.uses
                old.uses = 0
            self._grants[(name, operation)] = g
        return g

    def sign(self, ctx: Context, name: str, data: bytes) -> tuple[int, bytes]:
        g = self._protecting(ctx, name, "sign")
        try:
            signature = g.backend.sign(g.ref, g.key.algorithm, data)
        except BackendError as e:
            raise Conflict(f"Key {name!r}: {e}") from None
        g.uses += 1
        return g.version.version, signature

    def verify(self, ctx: Context, name: str, data: bytes, signature: bytes, version: int) -> bool:
        k = self._check(ctx, name, "verify")
        v = self._version(k, version)
        if v.public_key is None:
            raise Conflict(f"Key {name!r} is {k.algorithm.value}: it does not sign")
        verifier = self._verifiers.get((k.id, v.id))
        if verifier is None:
            verifier = Verifier(k.algorithm, v.public_key)
            self._verifiers[(k.id, v.id)] = verifier
        self._count(k, v, "verify", ctx.principal)
        return bool(verifier.verify(data, signature))

    def encrypt(self, ctx: Context, name: str, plaintext: bytes, aad: bytes = b"") -> bytes:
        g = self._protecting(ctx, name, "encrypt")
        out = g.seal(plaintext, aad) if g.seal is not None else g.backend.encrypt(g.ref, plaintext, aad)
        g.uses += 1
        return g.header + out

    def decrypt(self, ctx: Context, name: str, ciphertext: bytes, aad: bytes = b"") -> bytes:
        if not ciphertext.startswith(HEADER) or len(ciphertext) < len(HEADER) + 4:
            raise Conflict("Not a Portcullis ciphertext (it starts with 'pck1' and the key version)")
        k = self._check(ctx, name, "decrypt")
        v = self._version(k, int.from_bytes(ciphertext[4:8], "big"))
        assert v.ref is not None
        try:
            out = self._backend(k).decrypt(v.ref, ciphertext[8:], aad)
        except BackendError as e:
            raise Conflict(f"Key {name!r}: {e}") from None
        self._count(k, v, "decrypt", ctx.principal)
        return out

    def wrap(self, ctx: Context, name: str, data: bytes) -> bytes:
        k = self._check(ctx, name, "wrap")
        v = self._current(k)
        assert v.ref is not None
        out = self._backend(k).wrap(v.ref, data)
        self._count(k, v, "wrap", ctx.principal)
        return HEADER + v.version.to_bytes(4, "big") + out

    def unwrap(self, ctx: Context, name: str, wrapped: bytes) -> bytes:
        if not wrapped.startswith(HEADER) or len(wrapped) < len(HEADER) + 4:
            raise Conflict("Not a Portcullis wrapped key (it starts with 'pck1' and the key version)")
        k = self._check(ctx, name, "unwrap")
        v = self._version(k, int.from_bytes(wrapped[4:8], "big"))
        assert v.ref is not None
        try:
            out = self._backend(k).unwrap(v.ref, wrapped[8:])
        except BackendError as e:
            raise Conflict(f"Key {name!r}: {e}") from None
        self._count(k, v, "unwrap", ctx.principal)
        return out

    # --- recording ----------------------------------------------------------------------

    def flush(self, ctx: Context) -> int:
        """Write the counted uses (versions' counters and one ledger record per key, operation and caller)."""
        with self._lock:
            for (_, operation), g in self._grants.items():
                if g.uses:
                    self._uses[(g.key.id, g.version.id, operation, g.principal.name)] += g.uses
                    g.uses = 0
            uses, self._uses = self._uses, Counter()
        if not uses:
            return 0
        per_version: Counter[int] = Counter()
        changes = []
        for (key_id, version_id, operation, who), n in sorted(uses.items()):
            per_version[version_id] += n
            changes.append(
                Change(
                    "key.used",
                    "crypto_key",
                    key_id,
                    extra={"operation": operation, "by": who, "count": n, "version_id": version_id},
                )
            )
        for version_id, n in per_version.items():
            ctx.session.execute(update(KeyVersion).where(KeyVersion.id == version_id).values(uses=KeyVersion.uses + n))
        record_changes(ctx, changes)
        return sum(uses.values())
