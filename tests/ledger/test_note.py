"""Signed notes against the published golang.org/x/mod/sumdb/note example."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from portcullis.ledger.note import Checkpoint, NoteError, Signer, VerifierKey, open_note

# Published known answer (sumdb/note package documentation).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_SIG = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
GO_NOTE = GO_TEXT + "\n\u2014 PeterNeumann " + GO_SIG + "\n"


def _go_signer() -> Signer:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])[1:]
    return Signer("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed))


def test_reproduces_the_go_note_byte_for_byte() -> None:
    signer = _go_signer()
    assert str(signer.verifier) == GO_VKEY
    assert signer.sign(GO_TEXT) == GO_NOTE


def test_opens_the_go_note_and_refuses_changes() -> None:
    key = VerifierKey.parse(GO_VKEY)
    assert open_note(GO_NOTE, key) == GO_TEXT
    with pytest.raises(NoteError):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), key)


def test_another_key_with_the_same_name_is_not_accepted() -> None:
    other = Signer("PeterNeumann", Ed25519PrivateKey.generate())
    forged = other.sign(GO_TEXT)
    with pytest.raises(NoteError, match="not signed by"):
        open_note(forged, VerifierKey.parse(GO_VKEY))


def test_mangled_verifier_keys_are_refused() -> None:
    for bad in (GO_VKEY[:-1], GO_VKEY.replace("c74f20a3", "c74f20a4"), "PeterNeumann+c74f20a3", "a b+00+AA=="):
        with pytest.raises(NoteError):
            VerifierKey.parse(bad)


def test_checkpoint_text_round_trip() -> None:
    cp = Checkpoint("portcullis.example/audit", 42, bytes(range(32)))
    assert Checkpoint.parse(cp.text()) == cp
    for bad in ("o\n042\n" + cp.text().split("\n")[2] + "\n", "o\n1\nAAAA\n", "o\n1\n"):
        with pytest.raises(NoteError):
            Checkpoint.parse(bad)
