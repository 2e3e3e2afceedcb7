"""Merkle tree: RFC 6962 vectors (transparency-dev/merkle) and generation/verification round trips."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from services.ledger.domain import merkle

# A copy ships with the tests (Apache-2.0, see its LICENSE); the campaign's shared folder is the fallback.
VECTORS = Path(__file__).resolve().parent / "vectors" / "rfc6962"
if not VECTORS.exists():
    VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors" / "rfc6962"
LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]


def _cases(kind: str) -> list:
    base = VECTORS / "testdata" / kind
    if not base.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"RFC 6962 vectors not found at {base}"))]
    return [pytest.param(p, id=f"{p.parent.name}/{p.stem}") for p in sorted(base.glob("*/*.json"))]


def _b64(value):
    return base64.b64decode(value) if value is not None else b""


def _proof(case):
    return [base64.b64decode(p) for p in case["proof"] or []]


@pytest.mark.parametrize("path", _cases("inclusion"))
def test_inclusion_vectors(path):
    case = json.loads(path.read_text())
    args = (case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), _proof(case), _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("path", _cases("consistency"))
def test_consistency_vectors(path):
    case = json.loads(path.read_text())
    args = (case["size1"], case["size2"], _proof(case), _b64(case["root1"]), _b64(case["root2"]))
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_reference_tree_root_and_generated_proofs_match_vectors():
    tree = merkle.MemoryTree(merkle.hash_leaf(d) for d in LEAVES)
    assert tree.root().hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert merkle.root_hash(0, tree.subtree_hash) == merkle.EMPTY_ROOT
    base = VECTORS / "testdata"
    if not base.is_dir():
        pytest.skip(f"RFC 6962 vectors not found at {base}")
    checked = 0
    for path in sorted(base.glob("inclusion/*/happy-path.json")):
        case = json.loads(path.read_text())
        if case["treeSize"] <= len(LEAVES):
            assert merkle.inclusion_proof(case["leafIdx"], case["treeSize"], tree.subtree_hash) == _proof(case)
            checked += 1
    for path in sorted(base.glob("consistency/*/happy-path.json")):
        case = json.loads(path.read_text())
        if case["size2"] <= len(LEAVES):
            assert merkle.consistency_proof(case["size1"], case["size2"], tree.subtree_hash) == _proof(case)
            checked += 1
    assert checked > 0


def test_all_proofs_round_trip_and_fail_when_wrong():
    tree = merkle.MemoryTree(merkle.hash_leaf(i.to_bytes(4, "big")) for i in range(70))
    for size in range(1, 71):
        root = tree.root(size)
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, tree.subtree_hash)
            merkle.verify_inclusion(index, size, tree.levels[0][index], proof, root)
            if size > 1:
                with pytest.raises(merkle.ProofError):
                    merkle.verify_inclusion((index + 1) % size, size, tree.levels[0][index], proof, root)
        for size1 in range(1, size + 1):
            proof = merkle.consistency_proof(size1, size, tree.subtree_hash)
            merkle.verify_consistency(size1, size, proof, tree.root(size1), root)
            if 0 < size1 < size:
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(size1, size, proof, tree.root(size1), tree.root(size - 1))


def test_compact_range_matches_memory_tree_and_reports_completed_subtrees():
    tree = merkle.MemoryTree()
    compact = merkle.CompactRange()
    for i in range(37):
        leaf = merkle.hash_leaf(bytes([i]))
        tree.append(leaf)
        for level, idx, h in compact.append(leaf):
            assert tree.subtree_hash(level, idx) == h
        assert compact.root() == tree.root()
        resumed = merkle.CompactRange(tree.size, [tree.subtree_hash(*p) for p in merkle.frontier_positions(tree.size)])
        assert resumed.root() == tree.root()


def test_needed_subtrees_lists_only_perfect_subtrees():
    wanted = merkle.needed_subtrees(lambda sub: merkle.inclusion_proof(5, 13, sub))
    assert all(idx * (1 << level) + (1 << level) <= 13 for level, idx in wanted)
