"""RFC 9162 Merkle tree hashing, proofs and their verification.

Pure functions over hashes. Trees are described by a `RangeHash` oracle that
returns MTH(D[lo:hi]) for the ranges proof generation asks for, so the same code
serves an in-memory list and the stored tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

RangeHash = Callable[[int, int], bytes]
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


@dataclass
class Frontier:
    """The roots of the perfect subtrees that make up a tree of `size` leaves,
    largest first: enough to append in O(log n) and to compute the root."""

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; returns the perfect subtrees completed as (level, index, hash)."""
        completed: list[tuple[int, int, bytes]] = []
        self.hashes.append(leaf)
        self.size += 1
        level, n = 0, self.size
        while n & 1 == 0:  # each trailing zero bit of the new size is a merge
            right = self.hashes.pop()
            left = self.hashes.pop()
            merged = node_hash(left, right)
            self.hashes.append(merged)
            level += 1
            n >>= 1
            completed.append((level, (self.size >> level) - 1, merged))
        return completed

    def append_subtree(self, level: int, h: bytes) -> list[tuple[int, int, bytes]]:
        """Add a whole perfect subtree of 2**level leaves; the tree's size must be a multiple of that."""
        width = 1 << level
        if self.size % width:
            raise ValueError(f"a subtree of {width} leaves cannot start at leaf {self.size}")
        self.hashes.append(h)
        self.size += width
        completed = [(level, (self.size >> level) - 1, h)] if level else []
        n = self.size >> level
        while n & 1 == 0:
            right = self.hashes.pop()
            left = self.hashes.pop()
            h = node_hash(left, right)
            self.hashes.append(h)
            level += 1
            n >>= 1
            completed.append((level, (self.size >> level) - 1, h))
        return completed

    def extend(self, leaves: Sequence[bytes], tile_level: int = 4) -> list[tuple[int, int, bytes]]:
        """Append many leaf hashes; same result as append() one by one, faster.

        Whole aligned tiles of 2**tile_level leaves are hashed in a tight loop
        and added as one subtree, which is where batch appends spend their time.
        The subtrees completed inside such a tile, below tile_level, are not
        reported: the store keeps only tile levels.
        """
        completed: list[tuple[int, int, bytes]] = []
        width = 1 << tile_level
        i, n = 0, len(leaves)
        while i < n and self.size % width:
            completed.extend(self.append(leaves[i]))
            i += 1
        sha = hashlib.sha256
        while n - i >= width:
            level = list(leaves[i : i + width])
            while len(level) > 1:
                level = [sha(b"\x01" + level[k] + level[k + 1]).digest() for k in range(0, len(level), 2)]
            completed.extend(self.append_subtree(tile_level, level[0]))
            i += width
        while i < n:
            completed.extend(self.append(leaves[i]))
            i += 1
        return completed

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        acc = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            acc = node_hash(h, acc)
        return acc

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, size: int, data: bytes) -> Frontier:
        count = bin(size).count("1")
        if len(data) != 32 * count:
            raise ValueError(f"a frontier of size {size} has {count} hashes, got {len(data) // 32}")
        return cls(size, [data[i : i + 32] for i in range(0, len(data), 32)])


def root_of(leaves: Sequence[bytes]) -> bytes:
    f = Frontier()
    for h in leaves:
        f.append(h)
    return f.root()


def memory_range_hash(leaves: Sequence[bytes]) -> RangeHash:
    def mth(lo: int, hi: int) -> bytes:
        return root_of(leaves[lo:hi])

    return mth


def inclusion_proof(mth: RangeHash, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    lo, hi, m = 0, size, index
    # Walk down from the root, collecting the sibling of each step; the proof
    # lists siblings bottom-up, so they are prepended.
    while hi - lo > 1:
        k = split_point(hi - lo)
        if m < k:
            proof.insert(0, mth(lo + k, hi))
            hi = lo + k
        else:
            proof.insert(0, mth(lo, lo + k))
            lo, m = lo + k, m - k
    return proof


def consistency_proof(mth: RangeHash, size1: int, size2: int) -> list[bytes]:
    """PROOF(size1, D[0:size2]) of RFC 9162 section 2.1.4.1."""
    if not 0 <= size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == 0 or size1 == size2:
        return []
    proof: list[bytes] = []
    lo, hi, m, complete = 0, size2, size1, True
    while m != hi - lo:
        k = split_point(hi - lo)
        if m <= k:
            proof.insert(0, mth(lo + k, hi))
            hi = lo + k
        else:
            proof.insert(0, mth(lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        proof.insert(0, mth(lo, hi))
    return proof


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """RFC 9162 section 2.1.3.2: the root the proof leads to, or None if it cannot be a proof."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != 32 or sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    return root_from_inclusion(leaf, index, size, proof) == root


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if not 0 <= size1 <= size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof
    path = list(proof)
    if any(len(p) != 32 for p in path):
        return False
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    if not path:
        return False
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root1 and sr == root2 and sn == 0
