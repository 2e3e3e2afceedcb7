"""RFC 9162 (RFC 6962) Merkle tree hashing, proof generation and verification.

Proof generation never needs the whole log: every hash it uses is a perfect
subtree (2^level leaves starting at leaf index * 2^level), obtained through a
caller-supplied `subtree_hash(level, index)`.  The ledger store answers that
from its `tree_nodes` table; tests answer it from an in-memory tree.  Hashes of
the non-perfect right edge are recomputed from perfect subtrees.

Verification follows the algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2
literally and raises `ProofError` with the reason; it never returns a bare
False that a caller could forget to check.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

SubtreeHash = Callable[[int, int], bytes]
"""subtree_hash(level, index): hash of leaves [index*2^level, (index+1)*2^level)."""


class ProofError(ValueError):
    """A proof does not verify, or its inputs are malformed."""


def hash_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """k such that k < n <= 2k (n >= 2): the RFC's split point."""
    return 1 << ((n - 1).bit_length() - 1)


def range_hash(lo: int, hi: int, subtree_hash: SubtreeHash) -> bytes:
    """MTH of leaves [lo, hi), built from perfect subtrees."""
    n = hi - lo
    if n <= 0:
        if n == 0 and lo == 0:
            return EMPTY_ROOT
        raise ValueError(f"empty or inverted leaf range [{lo}, {hi})")
    if n & (n - 1) == 0 and lo % n == 0:
        return subtree_hash(n.bit_length() - 1, lo // n)
    k = _largest_power_of_two_below(n)
    return hash_children(range_hash(lo, lo + k, subtree_hash), range_hash(lo + k, hi, subtree_hash))


def root_hash(size: int, subtree_hash: SubtreeHash) -> bytes:
    """MTH of the first `size` leaves (EMPTY_ROOT for size 0)."""
    return EMPTY_ROOT if size == 0 else range_hash(0, size, subtree_hash)


def inclusion_proof(index: int, size: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """PATH(index, D[size]) of RFC 9162 section 2.1.3.1, deepest sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    proof: list[bytes] = []

    def path(m: int, lo: int, hi: int) -> None:
        n = hi - lo
        if n == 1:
            return
        k = _largest_power_of_two_below(n)
        if m < k:
            path(m, lo, lo + k)
            proof.append(range_hash(lo + k, hi, subtree_hash))
        else:
            path(m - k, lo + k, hi)
            proof.append(range_hash(lo, lo + k, subtree_hash))

    path(index, 0, size)
    return proof


def consistency_proof(size1: int, size2: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """PROOF(size1, D[size2]) of RFC 9162 section 2.1.4.1 (empty when size1 is 0 or size2)."""
    if not 0 <= size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    proof: list[bytes] = []
    if size1 == 0 or size1 == size2:
        return proof

    def subproof(m: int, lo: int, hi: int, whole: bool) -> None:
        n = hi - lo
        if m == n:
            if not whole:
                proof.append(range_hash(lo, hi, subtree_hash))
            return
        k = _largest_power_of_two_below(n)
        if m <= k:
            subproof(m, lo, lo + k, whole)
            proof.append(range_hash(lo + k, hi, subtree_hash))
        else:
            subproof(m - k, lo + k, hi, False)
            proof.append(range_hash(lo, lo + k, subtree_hash))

    subproof(size1, 0, size2, True)
    return proof


def _check_hash(name: str, value: bytes) -> None:
    if not isinstance(value, (bytes, bytearray)) or len(value) != HASH_SIZE:
        raise ProofError(f"{name} is not a {HASH_SIZE}-byte hash")


def root_from_inclusion_proof(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """Root implied by an inclusion proof (RFC 9162 section 2.1.3.2 steps 1-5)."""
    if not 0 <= leaf_index < tree_size:
        raise ProofError(f"leaf index {leaf_index} is outside a tree of size {tree_size}")
    _check_hash("leaf hash", leaf_hash)
    fn, sn, r = leaf_index, tree_size - 1, bytes(leaf_hash)
    for i, p in enumerate(proof):
        _check_hash(f"proof element {i}", p)
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes] | None, root: bytes
) -> None:
    """Raise ProofError unless `proof` shows leaf `leaf_index` is in the tree with `root`."""
    _check_hash("root", root)
    computed = root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, proof or [])
    if computed != root:
        raise ProofError("inclusion proof leads to a different root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes] | None, root1: bytes, root2: bytes
) -> None:
    """Raise ProofError unless `proof` shows tree (size1, root1) is a prefix of (size2, root2)."""
    proof = list(proof or [])
    if size1 < 1:
        # RFC 9162 defines no proof from the empty tree (every tree extends it), and
        # transparency-dev/merkle rejects it; callers treat size 0 as trivially consistent.
        raise ProofError("no consistency proof exists from an empty tree")
    if size2 < size1:
        raise ProofError(f"size {size2} is smaller than earlier size {size1}")
    if size1 == size2:
        if proof:
            raise ProofError("proof between equal sizes must be empty")
        if root1 != root2:
            raise ProofError("equal sizes but different roots")
        return
    # Root lengths only matter once hashes are computed (as in transparency-dev/merkle).
    _check_hash("first root", root1)
    _check_hash("second root", root2)
    if not proof:
        raise ProofError("consistency proof is empty")
    for i, c in enumerate(proof):
        _check_hash(f"proof element {i}", c)
    if size1 & (size1 - 1) == 0:  # step 2: size1 is an exact power of two
        proof.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than needed")
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than needed")
    if fr != root1:
        raise ProofError("consistency proof does not lead to the earlier root")
    if sr != root2:
        raise ProofError("consistency proof does not lead to the later root")


def frontier_positions(size: int) -> list[tuple[int, int]]:
    """(level, index) of the perfect subtrees that make up a tree of `size`, left to right."""
    positions = []
    covered = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            positions.append((level, covered >> level))
            covered += 1 << level
    return positions


class CompactRange:
    """Right frontier of a growing tree: enough to append leaves and compute roots.

    `hashes[i]` is the perfect subtree at `frontier_positions(size)[i]`.
    """

    __slots__ = ("size", "hashes")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        self.size = size
        self.hashes = list(hashes)
        if len(self.hashes) != bin(size).count("1"):
            raise ValueError(f"a tree of size {size} needs {bin(size).count('1')} frontier hashes")

    def push(self, leaf: bytes) -> None:
        """Append a leaf hash (fast path for verification: records nothing)."""
        n = self.size
        hashes = self.hashes
        while n & 1:
            leaf = hashlib.sha256(b"\x01" + hashes.pop() + leaf).digest()
            n >>= 1
        hashes.append(leaf)
        self.size += 1

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append a leaf hash; return the perfect subtrees (level >= 1) it completes."""
        completed = []
        n = self.size
        new_size = n + 1
        level = 0
        while n & 1:
            leaf = hash_children(self.hashes.pop(), leaf)
            level += 1
            completed.append((level, (new_size >> level) - 1, leaf))
            n >>= 1
        self.hashes.append(leaf)
        self.size = new_size
        return completed

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = hash_children(h, r)
        return r


class MemoryTree:
    """A whole tree in memory (tests, small offline checks): levels[0] are leaf hashes."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append(h)

    def append(self, leaf: bytes) -> None:
        self.levels[0].append(leaf)
        level, idx = 0, len(self.levels[0]) - 1
        while idx & 1:
            parent = hash_children(self.levels[level][idx - 1], self.levels[level][idx])
            level += 1
            if len(self.levels) == level:
                self.levels.append([])
            self.levels[level].append(parent)
            idx >>= 1

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def subtree_hash(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        return root_hash(self.size if size is None else size, self.subtree_hash)


def needed_subtrees(compute: Callable[[SubtreeHash], object]) -> set[tuple[int, int]]:
    """Which (level, index) subtree hashes `compute` will ask for.

    The decomposition depends only on sizes and indices, never on hash values,
    so a dry run with placeholder hashes lists them; a store can then fetch all
    of them in one query instead of one round trip per hash.
    """
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return bytes(HASH_SIZE)

    compute(record)
    return wanted


def range_nodes(begin: int, end: int) -> list[tuple[int, int]]:
    """(level, index) of the maximal perfect subtrees that exactly cover leaves [begin, end), left to right.

    For begin == 0 this is `frontier_positions(end)`.  A range that does not
    start at leaf 0 has subtrees that grow towards the middle and shrink again.
    """
    if not 0 <= begin <= end:
        raise ValueError(f"empty or inverted leaf range [{begin}, {end})")
    nodes = []
    pos = begin
    while pos < end:
        level = 0
        while (pos >> level) & 1 == 0 and pos + (2 << level) <= end:
            level += 1
        nodes.append((level, pos >> level))
        pos += 1 << level
    return nodes


class LeafRange:
    """Compact range of leaves [begin, end): the hashes of `range_nodes(begin, end)`.

    Verification splits a long ledger into consecutive slices checked in
    parallel; each slice builds the subtrees of its own leaves here, and
    `joined` combines a prefix [0, b) with a slice [b, e) into the tree of the
    first e leaves, so the roots the checkpoints sign can still be compared.
    """

    __slots__ = ("begin", "end", "hashes")

    def __init__(self, begin: int = 0, end: int | None = None, hashes: Iterable[bytes] = ()) -> None:
        self.begin = begin
        self.end = begin if end is None else end
        self.hashes = list(hashes)
        if len(self.hashes) != len(range_nodes(begin, self.end)):
            raise ValueError(f"leaves [{begin}, {self.end}) need {len(range_nodes(begin, self.end))} subtree hashes")

    def push(self, leaf: bytes) -> None:
        """Append the hash of leaf `end` (the hot path of verification)."""
        index, level, begin = self.end, 0, self.begin
        hashes = self.hashes
        # The new node is a right child while its index is odd; its left sibling is
        # the previous node only if that sibling lies inside the range.
        while index & 1 and (index - 1) << level >= begin:
            leaf = hashlib.sha256(b"\x01" + hashes.pop() + leaf).digest()
            index >>= 1
            level += 1
        hashes.append(leaf)
        self.end += 1

    def copy(self) -> "LeafRange":
        return LeafRange(self.begin, self.end, self.hashes)

    def joined(self, other: "LeafRange") -> "LeafRange":
        """The range [self.begin, other.end) made of this range followed by `other`."""
        if other.begin != self.end:
            raise ValueError(f"range [{other.begin}, {other.end}) does not continue [{self.begin}, {self.end})")
        levels = [level for level, _ in range_nodes(self.begin, self.end)]
        indices = [index for _, index in range_nodes(self.begin, self.end)]
        hashes = list(self.hashes)
        for (level, index), h in zip(range_nodes(other.begin, other.end), other.hashes):
            levels.append(level)
            indices.append(index)
            hashes.append(h)
            # Merge siblings: equal levels and the right one at an odd index.
            while len(levels) >= 2 and levels[-1] == levels[-2] and indices[-1] & 1:
                right, left = hashes.pop(), hashes.pop()
                levels.pop()
                indices.pop()
                hashes.append(hash_children(left, right))
                levels[-1] += 1
                indices[-1] >>= 1
        return LeafRange(self.begin, other.end, hashes)

    def root(self) -> bytes:
        """MTH of leaves [0, end); only a range that starts at leaf 0 has one."""
        if self.begin != 0:
            raise ValueError("only a range starting at leaf 0 has a tree root")
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = hash_children(h, r)
        return r
