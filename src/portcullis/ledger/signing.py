"""The checkpoint-signing key: created at initialisation, kept in a file only its
owner can read, its public half published as a C2SP verifier key.

Key management (keys/ledger_key.py) can adopt it into the key register, after
which it is held sealed under the master key like any other key and the file can
go; it registers itself here as a source that is asked first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from portcullis.core.errors import PortcullisError
from portcullis.core.settings import Settings
from portcullis.ledger.note import Signer


def key_name(settings: Settings) -> str:
    return f"{settings.ledger_origin}/ledger"


def stream_origin(settings_or_name: Settings | str, stream: str) -> str:
    base = settings_or_name if isinstance(settings_or_name, str) else settings_or_name.ledger_origin
    return f"{base}/{stream}"


def _write_new_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes starting at once must not both write a key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key


# Asked in order before the key file: each returns the signer, or None when it holds no ledger key.
_sources: list[Callable[[Any], Signer | None]] = []


def register_source(fn: Callable[[Any], Signer | None]) -> None:
    if fn not in _sources:
        _sources.append(fn)


def signer_for(runtime: Any) -> Signer:
    """The running instance's checkpoint signer: from key management if it holds the key, else the key file."""
    for source in _sources:
        found = source(runtime)
        if found is not None:
            return found
    return load_or_create_signer(runtime.settings)


def load_or_create_signer(settings: Settings) -> Signer:
    path = settings.effective_ledger_key_file
    try:
        key = _write_new_key(path) if not path.exists() else None
    except FileExistsError:
        key = None
    if key is None:
        try:
            loaded = load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise PortcullisError(f"cannot read the ledger signing key at {path}: {exc.__class__.__name__}") from exc
        if not isinstance(loaded, Ed25519PrivateKey):
            raise PortcullisError(f"the ledger signing key at {path} is not an Ed25519 key")
        key = loaded
    return Signer(key_name(settings), key)
