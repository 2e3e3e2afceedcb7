"""PostgreSQL store: append, redelivery, proofs, checkpoints, and append-only enforcement."""

from __future__ import annotations

import base64
import json

import psycopg
import pytest
from psycopg import sql

from services.ledger import store
from services.ledger.domain import merkle
from services.ledger.domain.entry import EnvelopeError
from services.ledger.verify import verify_bundle, verify_postgres

from .conftest import drop_schema, envelope, make_schema, sample_envelopes, signer, writer_dsn


@pytest.fixture(scope="module")
def ledger(admin):
    """One schema for the module, filled by the unprivileged writer role."""
    name = make_schema(admin, "store")
    store.migrate(admin, name)  # idempotent: a second run changes nothing and does not fail
    with psycopg.connect(writer_dsn()) as conn:
        assert store.append(conn, sample_envelopes(20)[:7], schema=name) == 7
        assert store.append(conn, sample_envelopes(20)[7:], schema=name) == 13
        conn.commit()
        store.sign_checkpoint(conn, signer(), schema=name)
    yield name
    drop_schema(admin, name)


def _leaves(conn, schema):
    q = sql.SQL("SELECT leaf_hash FROM {}.entries ORDER BY seq").format(sql.Identifier(schema))
    return [bytes(r[0]) for r in conn.execute(q)]


def test_redelivered_envelopes_append_nothing(ledger, writer):
    assert store.append(writer, sample_envelopes(5), schema=ledger) == 0
    assert store.tree_size(writer, ledger) == 20


def test_duplicates_inside_one_batch_are_appended_once(schema, writer):
    batch = sample_envelopes(3)
    assert store.append(writer, batch + batch[:2], schema=schema) == 3
    assert store.tree_size(writer, schema) == 3


def test_batch_is_atomic_inside_the_callers_transaction(schema):
    with psycopg.connect(writer_dsn()) as conn:
        store.append(conn, sample_envelopes(2), schema=schema)
        conn.rollback()  # the consumer failed before acknowledging: nothing stays
        assert store.tree_size(conn, schema) == 0


def test_roots_and_proofs_from_tree_nodes_match_a_full_tree(ledger, writer):
    tree = merkle.MemoryTree(_leaves(writer, ledger))
    for size in (1, 2, 3, 7, 8, 13, 16, 20):
        root = store.root(writer, size, ledger)
        assert root == tree.root(size)
        for seq in (1, size // 2 + 1, size):
            proof = store.inclusion_proof(writer, seq, size, ledger)
            merkle.verify_inclusion(seq - 1, size, tree.levels[0][seq - 1], proof, root)
        for size1 in (1, 5, size):
            if size1 <= size:
                proof = store.consistency_proof(writer, size1, size, ledger)
                merkle.verify_consistency(size1, size, proof, tree.root(size1), root)


def test_sizes_beyond_the_ledger_are_refused(ledger, writer):
    with pytest.raises(store.LedgerError, match="holds 20 entries"):
        store.root(writer, 21, ledger)


def test_history_and_offline_proof_bundle(ledger, writer):
    raw, parsed = envelope("volunteer_suspended", {"volunteer_id": "v3", "unit": "zjg"}, seq=100, subject="v3")
    store.append(writer, [(raw, parsed)], schema=ledger)
    h = store.history(writer, "v3", ledger)
    assert [i.entry["seq"] for i in h.items] == [3, 21]
    assert h.items[0].proof is not None and h.items[1].proof is None  # seq 21 is newer than the checkpoint
    bundle = json.loads(json.dumps(store.proof_bundle(writer, "v3", ledger)))
    verdict = verify_bundle(bundle, signer().verifier_key)
    assert verdict.ok, verdict.summary()
    assert verdict.entries_checked == 1 and "not proven yet" in verdict.notes[0]
    bundle["entries"][0]["envelope"] = bundle["entries"][0]["envelope"].replace("zjg", "ks", 1)
    bad = verify_bundle(bundle, signer().verifier_key)
    assert not bad.ok and bad.failure.seq == 3 and bad.failure.check == "inclusion"


def test_the_whole_ledger_verifies(ledger, writer):
    verdict = verify_postgres(writer, ledger, signer().verifier_key)
    assert verdict.ok, verdict.summary()
    assert verdict.checkpoints_checked == 1


def test_envelope_whose_parsed_form_contradicts_its_text_is_refused(schema, writer):
    raw, parsed = envelope("volunteer_registered", {"volunteer_id": "v1", "unit": "zjg"}, seq=1)
    parsed = {**parsed, "subject": "someone-else"}
    with pytest.raises(EnvelopeError, match="subject"):
        store.append(writer, [(raw, parsed)], schema=schema)


@pytest.mark.parametrize("statement", [
    "UPDATE {s}.entries SET subject = 'x' WHERE seq = 1",
    "DELETE FROM {s}.entries WHERE seq = 1",
    "TRUNCATE {s}.entries",
    "UPDATE {s}.tree_nodes SET hash = hash",
    "DELETE FROM {s}.checkpoints",
    "UPDATE {s}.checkpoints SET tree_size = 0",
])
@pytest.mark.parametrize("who", ["writer", "admin"])
def test_update_delete_truncate_are_refused(ledger, admin, writer, statement, who):
    conn = writer if who == "writer" else admin
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(sql.SQL(statement).format(s=sql.Identifier(ledger)))


def test_writer_role_cannot_disable_triggers(ledger, writer):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        writer.execute(sql.SQL("ALTER TABLE {}.entries DISABLE TRIGGER USER").format(sql.Identifier(ledger)))
