"""C2SP signed notes (c2sp.org/signed-note) with Ed25519, and tlog checkpoints
(c2sp.org/tlog-checkpoint): origin, tree size and root hash, signed.

Kept free of Portcullis imports so the single-file verifier can mirror it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = 0x01
DASH = "\u2014"


class NoteError(ValueError):
    pass


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")


@dataclass(frozen=True)
class VerifierKey:
    name: str
    public_key: bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.public_key)

    def __str__(self) -> str:
        material = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.id.hex()}+{material}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key reads name+keyid+base64key")
        name, hexid, material = parts
        _check_name(name)
        try:
            raw = base64.b64decode(material, validate=True)
        except ValueError as exc:
            raise NoteError("verifier key material is not base64") from exc
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("only Ed25519 verifier keys (type 0x01, 32 bytes) are supported")
        key = cls(name, raw[1:])
        if key.id.hex() != hexid.lower():
            raise NoteError("verifier key id does not match its name and key")
        return key


@dataclass(frozen=True)
class Signer:
    name: str
    private_key: Ed25519PrivateKey

    @property
    def verifier(self) -> VerifierKey:
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return VerifierKey(self.name, raw)

    def sign(self, text: str) -> str:
        """The signed note: text, a blank line, one signature line."""
        if not text.endswith("\n"):
            raise NoteError("note text must end with a newline")
        sig = self.private_key.sign(text.encode())
        blob = base64.b64encode(self.verifier.id + sig).decode()
        return f"{text}\n{DASH} {self.name} {blob}\n"


def open_note(note: str, key: VerifierKey) -> str:
    """The note's text if `key` signed it; NoteError otherwise (wrong key, bad signature, malformed)."""
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise NoteError("note contains control characters")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise NoteError("note has no signature block")
    text, sig_lines = note[: cut + 1], note[cut + 2 :].splitlines()
    found = False
    for line in sig_lines:
        prefix = f"{DASH} "
        if not line.startswith(prefix):
            raise NoteError("malformed signature line")
        name, _, blob = line[len(prefix) :].partition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except ValueError as exc:
            raise NoteError("signature is not base64") from exc
        if name != key.name or raw[:4] != key.id:
            continue  # someone else's signature: ignored, as the spec says
        try:
            Ed25519PublicKey.from_public_bytes(key.public_key).verify(raw[4:], text.encode())
        except InvalidSignature as exc:
            raise NoteError(f"signature by {key.name} does not verify") from exc
        found = True
    if not found:
        raise NoteError(f"note is not signed by {key}")
    return text


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("checkpoint text needs origin, size and root lines")
        origin, size_s, root_s = lines[0], lines[1], lines[2]
        if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
            raise NoteError(f"checkpoint size {size_s!r} is not a decimal number")
        try:
            root = base64.b64decode(root_s, validate=True)
        except ValueError as exc:
            raise NoteError("checkpoint root is not base64") from exc
        if len(root) != 32:
            raise NoteError("checkpoint root is not a SHA-256 hash")
        return cls(origin, int(size_s), root)
