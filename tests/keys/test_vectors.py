"""Project Wycheproof vectors run through portcullis.keys.primitives: the vectors are the oracle.

"valid" must give the exact expected output, "invalid" must be refused (a
CryptoError or False), "acceptable" may go either way but only through our own
errors. AES-GCM cases whose nonce size pyca/cryptography refuses are skipped,
each by its tcId, and a separate test checks that list against the file.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from portcullis.keys import primitives
from portcullis.keys.backends.base import Algorithm
from portcullis.keys.primitives import CryptoError, DecryptionFailed, UnwrapFailed

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "data" / "vectors"

# tcId -> nonce size in bytes: valid AES-GCM cases whose nonce pyca/cryptography refuses (it takes 8 to 128 bytes).
GCM_REFUSED_NONCE: dict[int, int] = {
    **dict.fromkeys((268, 272, 276), 257),
    **dict.fromkeys((277, 278, 287, 288, 299, 300), 1),
    **dict.fromkeys((279, 280, 289, 290, 301, 302), 2),
    **dict.fromkeys((281, 282, 291, 292, 303, 304), 4),
    **dict.fromkeys((283, 284, 293, 294, 305, 306), 6),
}

Case = tuple[dict[str, Any], dict[str, Any]]


def _cases(name: str) -> list[Case]:
    data = json.loads((VECTORS / f"wycheproof_{name}_test.json").read_text())
    return [(group, test) for group in data["testGroups"] for test in group["tests"]]


def _params(name: str, skip: dict[int, str] | None = None) -> list[Any]:
    skip = skip or {}
    return [
        pytest.param(
            group,
            test,
            id=f"{name}-{test['tcId']}",
            marks=[pytest.mark.skip(reason=skip[test["tcId"]])] if test["tcId"] in skip else [],
        )
        for group, test in _cases(name)
    ]


def _hex(test: dict[str, Any], field: str) -> bytes:
    return bytes.fromhex(test[field])


def _counts(name: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, test in _cases(name):
        counts[test["result"]] = counts.get(test["result"], 0) + 1
    return counts


def test_the_vector_files_are_whole() -> None:
    """The parametrized tests below run every case: a truncated file would shrink them silently."""
    assert _counts("aes_gcm") == {"valid": 229, "invalid": 87}
    assert _counts("aes_kwp") == {"valid": 77, "invalid": 177}
    assert _counts("aes_wrap") == {"valid": 36, "invalid": 126, "acceptable": 3}
    assert _counts("ecdsa_secp256k1_sha256") == {"valid": 168, "invalid": 308}
    assert _counts("ecdsa_secp256k1_sha256_bitcoin") == {"valid": 162, "invalid": 301}
    assert _counts("ed25519") == {"valid": 88, "invalid": 63}


# --- AES-GCM ----------------------------------------------------------------------------

_GCM_SKIPS = {
    tc: f"pyca/cryptography refuses a {size}-byte AES-GCM nonce (it takes 8 to 128 bytes)"
    for tc, size in GCM_REFUSED_NONCE.items()
}


@pytest.mark.parametrize(("group", "test"), _params("aes_gcm", _GCM_SKIPS))
def test_aes_gcm(group: dict[str, Any], test: dict[str, Any]) -> None:
    key, iv, aad, msg = (_hex(test, f) for f in ("key", "iv", "aad", "msg"))
    sealed = _hex(test, "ct") + _hex(test, "tag")
    if test["result"] == "valid":
        assert primitives.gcm_encrypt(key, iv, msg, aad) == sealed
        assert primitives.gcm_decrypt(key, iv, sealed, aad) == msg
    else:
        with pytest.raises(CryptoError):
            primitives.gcm_decrypt(key, iv, sealed, aad)
        try:
            produced = primitives.gcm_encrypt(key, iv, msg, aad)
        except CryptoError:
            return
        assert produced != sealed


def test_aes_gcm_skips_are_exactly_the_refused_nonce_sizes() -> None:
    refused = {
        test["tcId"]: len(test["iv"]) // 2
        for _, test in _cases("aes_gcm")
        if test["result"] == "valid" and not 8 <= len(test["iv"]) // 2 <= 128
    }
    assert refused == GCM_REFUSED_NONCE
    for _, test in _cases("aes_gcm"):
        if test["tcId"] in GCM_REFUSED_NONCE:
            key, iv = _hex(test, "key"), _hex(test, "iv")
            with pytest.raises(CryptoError, match=f"nonce must be 8 to 128 bytes, got {len(iv)}"):
                primitives.gcm_encrypt(key, iv, _hex(test, "msg"), _hex(test, "aad"))


def test_sealer_matches_the_vectors_through_its_own_format() -> None:
    """Sealer's nonce || ct || tag opens exactly what the AES-256, 96-bit nonce vectors encrypt."""
    seen = 0
    for group, test in _cases("aes_gcm"):
        if group["keySize"] != 256 or group["ivSize"] != 96:
            continue
        blob = _hex(test, "iv") + _hex(test, "ct") + _hex(test, "tag")
        sealer = primitives.Sealer(_hex(test, "key"))
        if test["result"] == "valid":
            assert sealer.decrypt(blob, _hex(test, "aad")) == _hex(test, "msg")
        else:
            with pytest.raises(DecryptionFailed):
                sealer.decrypt(blob, _hex(test, "aad"))
        seen += 1
    assert seen == 66


# --- key wrap ---------------------------------------------------------------------------


def _key_wrap(
    test: dict[str, Any], wrap: Callable[[bytes, bytes], bytes], unwrap: Callable[[bytes, bytes], bytes]
) -> None:
    kek, msg, ct = _hex(test, "key"), _hex(test, "msg"), _hex(test, "ct")
    if test["result"] == "valid":
        assert wrap(kek, msg) == ct
        assert unwrap(kek, ct) == msg
    elif test["result"] == "invalid":
        with pytest.raises(UnwrapFailed):
            unwrap(kek, ct)
        with contextlib.suppress(CryptoError):
            assert wrap(kek, msg) != ct
    else:
        with contextlib.suppress(CryptoError):
            assert wrap(kek, msg) == ct
        with contextlib.suppress(CryptoError):
            assert unwrap(kek, ct) == msg


@pytest.mark.parametrize(("group", "test"), _params("aes_kwp"))
def test_aes_key_wrap_with_padding_rfc5649(group: dict[str, Any], test: dict[str, Any]) -> None:
    _key_wrap(test, primitives.wrap, primitives.unwrap)


@pytest.mark.parametrize(("group", "test"), _params("aes_wrap"))
def test_aes_key_wrap_rfc3394(group: dict[str, Any], test: dict[str, Any]) -> None:
    _key_wrap(test, primitives.wrap_3394, primitives.unwrap_3394)


# --- signatures -------------------------------------------------------------------------


def _verify(algorithm: Algorithm, group: dict[str, Any], test: dict[str, Any], **options: Any) -> None:
    try:
        verifier = primitives.Verifier(algorithm, bytes.fromhex(group["publicKeyDer"]), **options)
    except CryptoError:
        assert test["result"] != "valid", "the public key of a valid case was refused"
        return
    verdict = verifier.verify(_hex(test, "msg"), _hex(test, "sig"))
    assert isinstance(verdict, bool)
    if test["result"] == "valid":
        assert verdict is True
    elif test["result"] == "invalid":
        assert verdict is False


@pytest.mark.parametrize(("group", "test"), _params("ecdsa_secp256k1_sha256"))
def test_ecdsa_secp256k1_der(group: dict[str, Any], test: dict[str, Any]) -> None:
    # Plain ECDSA accepts high-S signatures: this file has valid ones, so the low-S rule is off.
    _verify(Algorithm.ECDSA_SECP256K1, group, test, low_s=False)


@pytest.mark.parametrize(("group", "test"), _params("ecdsa_secp256k1_sha256_bitcoin"))
def test_ecdsa_secp256k1_bitcoin_low_s(group: dict[str, Any], test: dict[str, Any]) -> None:
    _verify(Algorithm.ECDSA_SECP256K1, group, test)  # low-S is the default for secp256k1


def test_the_der_file_has_high_s_signatures_the_bitcoin_rule_refuses() -> None:
    """Without this the two files could pass with the low-S rule never applied."""
    high = 0
    for group, test in _cases("ecdsa_secp256k1_sha256"):
        if test["result"] != "valid":
            continue
        _, s = decode_dss_signature(_hex(test, "sig"))
        if s > primitives.SECP256K1_ORDER // 2:
            high += 1
            strict = primitives.Verifier(Algorithm.ECDSA_SECP256K1, bytes.fromhex(group["publicKeyDer"]))
            assert strict.verify(_hex(test, "msg"), _hex(test, "sig")) is False
    assert high > 0


@pytest.mark.parametrize(("group", "test"), _params("ed25519"))
def test_ed25519(group: dict[str, Any], test: dict[str, Any]) -> None:
    _verify(Algorithm.ED25519, group, test)


def test_secp256k1_signatures_we_produce_are_low_s() -> None:
    private, public = primitives.generate(Algorithm.ECDSA_SECP256K1)
    assert public is not None
    signer = primitives.Signer(Algorithm.ECDSA_SECP256K1, private)
    bitcoin = primitives.Verifier(Algorithm.ECDSA_SECP256K1, public)
    plain = primitives.Verifier(Algorithm.ECDSA_SECP256K1, public, low_s=False)
    half = primitives.SECP256K1_ORDER // 2
    for _ in range(400):  # a raw ECDSA s is high half the time: 400 draws all low by chance is 2**-400
        message = os.urandom(32)
        signature = signer.sign(message)
        r, s = decode_dss_signature(signature)
        assert 0 < s <= half
        assert bitcoin.verify(message, signature)
        # The same signature with s mirrored is valid ECDSA, and the bitcoin rule refuses it.
        mirrored = encode_dss_signature(r, primitives.SECP256K1_ORDER - s)
        assert plain.verify(message, mirrored)
        assert not bitcoin.verify(message, mirrored)
