"""The stored tree answers exactly as the in-memory RFC 9162 reference does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from portcullis.core.runtime import Runtime
from portcullis.ledger import merkle
from portcullis.ledger.models import LedgerNode
from portcullis.ledger.store import TILE, Entry, StoredTree, append_entries, decompose, get_stream, lock_stream


@settings(max_examples=200, deadline=None)
@given(lo=st.integers(0, 5000), n=st.integers(0, 5000))
def test_decompose_matches_rfc_split(lo: int, n: int) -> None:
    # Only ranges a proof asks for are hashed: they start at a multiple of the
    # largest power of two not above their length.
    if n:
        lo -= lo % (1 << (n.bit_length() - 1))
    parts = decompose(lo, lo + n)
    assert sum(1 << level for level, _ in parts) == n
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(lo + n)]
    acc = None
    for level, idx in reversed(parts):
        h = merkle.root_of(leaves[idx << level : (idx + 1) << level])
        acc = h if acc is None else merkle.node_hash(h, acc)
    assert (acc or merkle.EMPTY_ROOT) == merkle.root_of(leaves[lo : lo + n])


def _fill(rt: Runtime, n: int, batches: int = 3) -> list[bytes]:
    datas = [f'{{"n":{i}}}'.encode() for i in range(n)]
    step = max(1, n // batches)
    for start in range(0, n, step):
        with rt.session() as s:
            stream = lock_stream(s, "test", rt.clock.now())
            append_entries(s, stream, [Entry(d) for d in datas[start : start + step]], rt.clock.now())
    return [merkle.leaf_hash(d) for d in datas]


def test_stored_proofs_equal_reference(rt: Runtime) -> None:
    n = 1000
    leaves = _fill(rt, n, batches=7)
    ref = merkle.memory_range_hash(leaves)
    with rt.session() as s:
        stream = get_stream(s, "test")
        assert stream.size == n
        tree = StoredTree(s, stream)
        assert tree.root() == merkle.root_of(leaves)
        for i in (0, 1, 15, 16, 17, 255, 256, 511, 512, 998, 999):
            assert tree.inclusion_proof(i) == merkle.inclusion_proof(ref, i, n), i
        for m in (0, 1, 2, 16, 17, 300, 512, 999, 1000):
            assert tree.consistency_proof(m) == merkle.consistency_proof(ref, m, n), m
        older = StoredTree(s, stream, size=700)
        assert older.root() == merkle.root_of(leaves[:700])
        assert older.inclusion_proof(650) == merkle.inclusion_proof(merkle.memory_range_hash(leaves[:700]), 650, 700)
        # Only tile levels are stored: one row per 16 leaves, one per 256, ...
        stored_levels = {lvl for (lvl,) in s.query(LedgerNode.level).distinct()}
        assert stored_levels == {TILE, 2 * TILE}
