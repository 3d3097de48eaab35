"""RFC 9162 known answers (transparency-dev vectors in shared/data) and properties."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portcullis.ledger import merkle
from tests.conftest import SHARED

VECTORS_PATH = SHARED / "data" / "vectors" / "rfc9162_merkle_vectors.json"


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    if not VECTORS_PATH.exists():
        pytest.fail(f"test vectors missing at {VECTORS_PATH}")
    data: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
    return data


def _leaves(vectors: dict[str, Any]) -> list[bytes]:
    return [merkle.leaf_hash(bytes.fromhex(x)) for x in vectors["leaves_hex"]]


def test_every_root(vectors: dict[str, Any]) -> None:
    leaves = _leaves(vectors)
    for size, want in vectors["roots_by_size"].items():
        assert merkle.root_of(leaves[: int(size)]).hex() == want, size


def test_every_inclusion_proof(vectors: dict[str, Any]) -> None:
    leaves = _leaves(vectors)
    for case in vectors["inclusion_proofs"]:
        i, n = case["leaf_index"], case["tree_size"]
        want = [bytes.fromhex(h) for h in case["proof"]]
        got = merkle.inclusion_proof(merkle.memory_range_hash(leaves[:n]), i, n)
        assert got == want, case
        root = bytes.fromhex(vectors["roots_by_size"][str(n)])
        assert merkle.verify_inclusion(leaves[i], i, n, want, root)


def test_every_consistency_proof(vectors: dict[str, Any]) -> None:
    leaves = _leaves(vectors)
    roots = {int(k): bytes.fromhex(v) for k, v in vectors["roots_by_size"].items()}
    for case in vectors["consistency_proofs"]:
        m, n = case["size1"], case["size2"]
        want = [bytes.fromhex(h) for h in case["proof"]]
        assert merkle.consistency_proof(merkle.memory_range_hash(leaves[:n]), m, n) == want, case
        assert merkle.verify_consistency(m, n, roots[m], roots[n], want), case


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


def test_corrupted_inclusion_proofs_fail(vectors: dict[str, Any]) -> None:
    leaves = _leaves(vectors)
    roots = {int(k): bytes.fromhex(v) for k, v in vectors["roots_by_size"].items()}
    for case in vectors["inclusion_proofs"]:
        i, n = case["leaf_index"], case["tree_size"]
        proof = [bytes.fromhex(h) for h in case["proof"]]
        root = roots[n]
        assert not merkle.verify_inclusion(leaves[i], i + 1, n, proof, root), "wrong index"
        # A size whose tree has another shape (some sizes share a shape, and so a proof).
        assert not merkle.verify_inclusion(leaves[i], i, 2 * n, proof, root), "wrong size"
        assert not merkle.verify_inclusion(leaves[i], i, i, proof, root), "size not above index"
        assert not merkle.verify_inclusion(leaves[i], i, n, [*proof, proof[0] if proof else root], root), "extra"
        if proof:
            assert not merkle.verify_inclusion(leaves[i], i, n, proof[:-1], root), "missing element"
            for k in range(len(proof)):
                bad = [*proof[:k], _flip(proof[k]), *proof[k + 1 :]]
                assert not merkle.verify_inclusion(leaves[i], i, n, bad, root), "flipped bit"
        assert not merkle.verify_inclusion(_flip(leaves[i]), i, n, proof, root), "flipped leaf"


def test_corrupted_consistency_proofs_fail(vectors: dict[str, Any]) -> None:
    roots = {int(k): bytes.fromhex(v) for k, v in vectors["roots_by_size"].items()}
    for case in vectors["consistency_proofs"]:
        m, n = case["size1"], case["size2"]
        proof = [bytes.fromhex(h) for h in case["proof"]]
        if m == n:
            continue
        assert not merkle.verify_consistency(m, n, roots[m], _flip(roots[n]), proof)
        assert not merkle.verify_consistency(m, n, _flip(roots[m]), roots[n], proof)
        assert not merkle.verify_consistency(m, n, roots[m], roots[n], [*proof, proof[0]])
        if proof:
            assert not merkle.verify_consistency(m, n, roots[m], roots[n], proof[:-1])
            for k in range(len(proof)):
                bad = [*proof[:k], _flip(proof[k]), *proof[k + 1 :]]
                assert not merkle.verify_consistency(m, n, roots[m], roots[n], bad)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 70), data=st.data())
def test_proofs_verify_for_any_tree(n: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    mth = merkle.memory_range_hash(leaves)
    root = merkle.root_of(leaves)
    i = data.draw(st.integers(0, n - 1))
    assert merkle.verify_inclusion(leaves[i], i, n, merkle.inclusion_proof(mth, i, n), root)
    m = data.draw(st.integers(0, n))
    proof = merkle.consistency_proof(mth, m, n)
    assert merkle.verify_consistency(m, n, merkle.root_of(leaves[:m]), root, proof)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 200))
def test_frontier_roundtrip_and_completed_subtrees(n: int) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    f = merkle.Frontier()
    completed: list[tuple[int, int, bytes]] = []
    for h in leaves:
        completed.extend(f.append(h))
    assert f.root() == merkle.root_of(leaves)
    again = merkle.Frontier.from_bytes(n, f.to_bytes())
    assert again.root() == f.root()
    for level, index, h in completed:
        width = 1 << level
        assert h == merkle.memory_range_hash(leaves)(index * width, (index + 1) * width)


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, 70), n=st.integers(0, 90))
def test_extend_equals_one_by_one(start: int, n: int) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(start + n)]
    a, b = merkle.Frontier(), merkle.Frontier()
    for h in leaves[:start]:
        a.append(h)
        b.append(h)
    one = [c for h in leaves[start:] for c in a.append(h)]
    many = b.extend(leaves[start:])
    assert a == b
    # Inside whole tiles, subtrees below the tile level are not reported: nothing stores them.
    assert sorted(c for c in one if c[0] >= 4) == sorted(c for c in many if c[0] >= 4)
