"""The worked example in docs/ledger-format.md is what the code computes."""

from __future__ import annotations

import json
from pathlib import Path

from services.ledger.domain import merkle
from services.ledger.domain.checkpoint import DEFAULT_ORIGIN, Checkpoint, sign_checkpoint
from services.ledger.domain.entry import GENESIS_PREV, chain_hash, entry_canonical_bytes, entry_from_envelope, leaf_hash

from .conftest import signer

DOC = Path(__file__).resolve().parents[2] / "docs" / "ledger-format.md"
ENVELOPE = ('{"specversion":"1.0","id":"e%d","source":"/zhuqi/registry/zjg","type":"cn.suzhou.zhuqi.registry.%s.v1",'
            '"subject":"v1","time":"%s","datacontenttype":"application/json",'
            '"data":{"volunteer_id":"v1","unit":"zjg"},"sequence":"%d"}')


def test_worked_example_values_appear_in_the_document():
    doc = DOC.read_text(encoding="utf-8")
    prev, leaves = GENESIS_PREV, []
    for i, (kind, time) in enumerate([("volunteer_registered", "2025-03-01T09:00:00+08:00"),
                                      ("volunteer_suspended", "2025-03-02T10:00:00+08:00")], 1):
        raw = ENVELOPE % (i, kind, time, i)
        canonical = entry_canonical_bytes(entry_from_envelope(i, prev, raw, json.loads(raw)))
        assert chain_hash(canonical).hex() in doc and leaf_hash(canonical).hex() in doc
        if i == 1:
            assert canonical.decode() in doc
        leaves.append(leaf_hash(canonical))
        prev = chain_hash(canonical).hex()
    root = merkle.hash_children(*leaves)
    assert root.hex() in doc
    assert sign_checkpoint(Checkpoint(DEFAULT_ORIGIN, 2, root), signer()) in doc
