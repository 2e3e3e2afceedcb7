"""The ledger's HTTP JSON API: what auditors and dashboards ask of the log."""
from __future__ import annotations

import base64

from services.ledger import store
from zhuqi.runtime.http import Api, Problem

api = Api("zhuqi ledger", "1.0.0", "Append-only, tamper-evident history of every published event, "
          "with RFC 9162 Merkle proofs and signed C2SP checkpoints.")

_B64 = {"type": "string", "contentEncoding": "base64"}
CHECKPOINT = {"type": "object", "properties": {"tree_size": {"type": "integer"}, "root": _B64,
                                                "note": {"type": "string"}, "verifier_key": {"type": "string"},
                                                "created_at": {"type": "string"}}}
ENTRY = {"type": "object", "properties": {"seq": {"type": "integer"}, "source": {"type": "string"},
                                          "source_sequence": {"type": "integer"}, "type": {"type": "string"},
                                          "subject": {"type": "string"}, "time": {"type": "string"},
                                          "envelope": {"type": "string"}, "prev": {"type": "string"}}}
PAGE = {"limit": {"type": "integer", "minimum": 1, "maximum": 1000}, "after": {"type": "integer", "minimum": 0}}


def _checkpoint_json(cp: store.StoredCheckpoint | None) -> dict | None:
    if cp is None:
        return None
    return {"tree_size": cp.tree_size, "root": base64.b64encode(cp.root).decode(), "note": cp.note,
            "verifier_key": cp.verifier_key, "created_at": str(cp.created_at)}


def _int(value: str, name: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise Problem(422, "Invalid path", f"{name} must be a positive integer",
                      [{"field": f"path.{name}", "value": value, "rule": "integer", "message": "not a positive integer"}])
    return int(value)


@api.route("GET", "/entries", summary="Entries in ledger order, paginated by sequence.", query=PAGE,
           responses={200: {"type": "object", "properties": {"entries": {"type": "array", "items": ENTRY},
                                                             "next_after": {"type": ["integer", "null"]}}}},
           tags=["entries"])
def list_entries(ledger, limit: int = 100, after: int = 0):
    rows = ledger.entries(after, limit)
    return {"entries": rows, "next_after": rows[-1]["seq"] if len(rows) == limit else None}


@api.route("GET", "/entries/<seq>", summary="One entry and its inclusion proof against the latest checkpoint.",
           responses={200: {"type": "object"}}, tags=["entries"])
def get_entry(ledger, seq: str):
    found = ledger.entry(_int(seq, "seq"))
    if found is None:
        raise Problem(404, "Not found", f"no ledger entry with seq {seq}")
    return found


@api.route("GET", "/checkpoints/latest", summary="The latest signed checkpoint (C2SP tlog-checkpoint).",
           responses={200: CHECKPOINT}, tags=["checkpoints"])
def latest_checkpoint(ledger):
    cp = ledger.latest_checkpoint()
    if cp is None:
        raise Problem(404, "Not found", "no checkpoint has been signed yet")
    return _checkpoint_json(cp)


@api.route("POST", "/checkpoints", summary="Sign a checkpoint of the current tree now.",
           responses={201: CHECKPOINT}, tags=["checkpoints"])
def sign_checkpoint(ledger):
    return 201, _checkpoint_json(ledger.sign_checkpoint())


@api.route("GET", "/proofs/consistency", summary="RFC 9162 consistency proof between two tree sizes.",
           query={"first": {"type": "integer", "minimum": 0}, "second": {"type": "integer", "minimum": 0}},
           responses={200: {"type": "object", "properties": {"first": {"type": "integer"}, "second": {"type": "integer"},
                                                             "proof": {"type": "array", "items": _B64}}}},
           tags=["proofs"])
def consistency(ledger, first: int = 0, second: int = 0):
    size = ledger.tree_size()
    if not 0 <= first <= second <= size:
        raise Problem(422, "Invalid sizes", f"need 0 <= first <= second <= tree size ({size})",
                      [{"field": "query.second", "value": second, "rule": "first<=second<=tree_size",
                        "message": f"tree size is {size}"}])
    proof = ledger.consistency_proof(first, second)
    return {"first": first, "second": second, "proof": [base64.b64encode(p).decode() for p in proof]}


@api.route("GET", "/history/<subject>", summary="Every entry about a subject, in order, with inclusion proofs.",
           responses={200: {"type": "object"}}, tags=["history"])
def subject_history(ledger, subject: str):
    return ledger.proof_bundle(subject)


@api.route("GET", "/status", summary="Tree size, latest checkpoint and consumer position.",
           responses={200: {"type": "object"}}, tags=["status"])
def status(ledger):
    return ledger.status()
