"""The master key: what every software-held key is sealed under (envelope encryption).

It exists only in the memory of a running Portcullis. It comes either from a
key file (created at first use; the demo's way, or a single operator's) or from
SLIP-39 shares held by custodians, entered after each start until the threshold
is reached. Either way it is checked against the check value the installation
recorded the first time, so a wrong file or a wrong set of shares is refused
instead of silently sealing keys under another master key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path

from sqlalchemy import String
from sqlalchemy.orm import Mapped, Session, mapped_column

from portcullis.core.db import Base
from portcullis.core.errors import Conflict, PortcullisError

MASTER_BYTES = 32
_CHECK_LABEL = b"portcullis master key check v1"


class Sealed(PortcullisError):
    status = 503
    title = "Key service sealed"
    exit_code = 10


class MasterKeyRecord(Base):
    """The installation's one master key, by its check value only (an HMAC of a fixed label)."""

    __tablename__ = "key_master"

    id: Mapped[int] = mapped_column(primary_key=True)
    check_value: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(10))  # file, shares


def check_value(master: bytes) -> str:
    return hmac.new(master, _CHECK_LABEL, hashlib.sha256).hexdigest()


def load_or_create_file(path: Path) -> bytes:
    """The master key file's 32 bytes, written (owner-only) if it does not exist yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = secrets.token_bytes(MASTER_BYTES)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_file(path)  # another process won the race: use its key
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    if len(data) != MASTER_BYTES:
        raise PortcullisError(f"The master key file {path} is not a {MASTER_BYTES}-byte key")
    return data


class Keyring:
    """The master key of this process, once unsealed."""

    def __init__(self) -> None:
        self._master: bytes | None = None
        self._lock = threading.Lock()

    @property
    def sealed(self) -> bool:
        return self._master is None

    @property
    def master(self) -> bytes:
        if self._master is None:
            raise Sealed(
                "The key service is sealed: the custodians enter their shares (portcullis keys unseal, or "
                "POST /api/v1/keys/unseal) before any key can be used"
            )
        return self._master

    def unseal(self, session: Session, master: bytes, source: str) -> None:
        """Accept `master` if it is this installation's (the first one ever offered becomes it)."""
        if len(master) != MASTER_BYTES:
            raise Conflict(f"A master key is {MASTER_BYTES} bytes; this one is {len(master)}")
        value = check_value(master)
        with self._lock:
            row = session.get(MasterKeyRecord, 1)
            if row is None:
                session.add(MasterKeyRecord(id=1, check_value=value, source=source))
                session.flush()
            elif not hmac.compare_digest(row.check_value, value):
                raise Conflict(
                    "This is not the installation's master key: the "
                    + ("file" if source == "file" else "shares")
                    + " combine to a different key than the one its keys are sealed under"
                )
            self._master = master

    def seal(self) -> None:
        with self._lock:
            self._master = None
