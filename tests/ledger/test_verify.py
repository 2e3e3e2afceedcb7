"""Verification catches every kind of tampering, names the first bad entry, and resists split views.

Tampering has to bypass the append-only triggers, so it is done as the admin
with `session_replication_role = replica`, in a throwaway schema per test.
"""

from __future__ import annotations

import hashlib
import sqlite3

import psycopg
import pytest
from psycopg import sql

from services.ledger import store
from services.ledger.domain import merkle
from services.ledger.domain.checkpoint import generate_key, sign_checkpoint, Checkpoint
from services.ledger.domain.entry import canonical_bytes
from services.ledger.export import export
from services.ledger.verify import verify_consistency_between, verify_export, verify_postgres

from .conftest import ADMIN_DSN, drop_schema, envelope, make_schema, sample_envelopes, signer

KEY = signer().verifier_key


@pytest.fixture
def filled(admin, schema):
    """30 entries with checkpoints at sizes 10 and 30."""
    with psycopg.connect(ADMIN_DSN) as conn:
        store.append(conn, sample_envelopes(10), schema=schema)
        store.sign_checkpoint(conn, signer(), schema=schema)
        store.append(conn, sample_envelopes(30)[10:], schema=schema)
        store.sign_checkpoint(conn, signer(), schema=schema)
    return schema


def tamper(schema: str, statement: str, params=()) -> None:
    with psycopg.connect(ADMIN_DSN) as conn:
        conn.execute("SET session_replication_role = replica")  # triggers off for this session only
        conn.execute(sql.SQL(statement).format(s=sql.Identifier(schema)), params)


def run(admin, schema, key=KEY, **kw):
    with psycopg.connect(ADMIN_DSN) as conn:
        return verify_postgres(conn, schema, key, **kw)


def test_untouched_ledger_verifies(admin, filled):
    verdict = run(admin, filled)
    assert verdict.ok and verdict.entries_checked == 30 and verdict.checkpoints_checked == 2


@pytest.mark.parametrize("column, check", [
    ("source", "entry hash"), ("type", "entry hash"), ("subject", "entry hash"), ("time", "entry hash"),
    ("envelope", "entry hash"), ("prev", "chain"),
])
def test_a_changed_byte_in_a_text_column_is_named(admin, filled, column, check):
    # Flip one character in the middle of the value of entry 12.
    tamper(filled, f"UPDATE {{s}}.entries SET {column} = overlay({column} placing "
                   f"CASE WHEN substr({column}, 3, 1) = 'a' THEN 'b' ELSE 'a' END from 3 for 1) WHERE seq = 12")
    verdict = run(admin, filled)
    assert not verdict.ok
    assert (verdict.failure.seq, verdict.failure.check) == (12, check)
    assert "entry 12" in verdict.failure.message


@pytest.mark.parametrize("column, check", [
    ("source_sequence", "entry hash"), ("entry_hash", "entry hash"), ("leaf_hash", "leaf hash"),
])
def test_a_changed_number_or_hash_is_named(admin, filled, column, check):
    change = {"source_sequence": "source_sequence + 1000",
              "entry_hash": "set_byte(entry_hash, 0, get_byte(entry_hash, 0) # 1)",
              "leaf_hash": "set_byte(leaf_hash, 31, get_byte(leaf_hash, 31) # 1)"}[column]
    tamper(filled, f"UPDATE {{s}}.entries SET {column} = {change} WHERE seq = 7")
    verdict = run(admin, filled)
    assert (verdict.ok, verdict.failure.seq, verdict.failure.check) == (False, 7, check)


def test_a_deleted_row_is_named(admin, filled):
    tamper(filled, "DELETE FROM {s}.entries WHERE seq = 15")
    verdict = run(admin, filled)
    assert (verdict.failure.seq, verdict.failure.check) == (15, "contiguity")
    assert "entry 15: is missing" in verdict.failure.message


def test_a_deleted_tail_is_caught_by_the_checkpoint(admin, filled):
    tamper(filled, "DELETE FROM {s}.entries WHERE seq > 27")
    verdict = run(admin, filled)
    assert verdict.failure.check == "size" and "only 27" in verdict.failure.message


def test_two_swapped_rows_are_named(admin, filled):
    for move in ((5, 10**9), (6, 5), (10**9, 6)):  # via a spare number: the primary key is checked per row
        tamper(filled, "UPDATE {s}.entries SET seq = %s WHERE seq = %s", [move[1], move[0]])
    verdict = run(admin, filled)
    assert (verdict.failure.seq, verdict.failure.check) == (5, "chain")


def test_a_duplicated_publisher_sequence_is_named(admin, schema):
    # Build a ledger whose chain is perfect but that records one publication twice.
    with psycopg.connect(ADMIN_DSN) as conn:
        store.append(conn, sample_envelopes(3), schema=schema)
        conn.commit()  # release our locks before the admin session alters the table
        tamper(schema, "ALTER TABLE {s}.entries DROP CONSTRAINT entries_source_source_sequence_key")
        raw, parsed = sample_envelopes(2)[1]
        row = conn.execute(sql.SQL("SELECT entry_hash FROM {}.entries WHERE seq = 3").format(sql.Identifier(schema))).fetchone()
        prev = bytes(row[0]).hex()
        c = canonical_bytes(4, "registry", 2, parsed["type"], parsed["subject"], parsed["time"], raw, prev)
        conn.execute(sql.SQL("INSERT INTO {}.entries VALUES (4, 'registry', 2, %s, %s, %s, %s, %s, %s, %s)").format(
            sql.Identifier(schema)), [parsed["type"], parsed["subject"], parsed["time"], raw, prev,
                                      hashlib.sha256(c).digest(), merkle.hash_leaf(c)])
        verdict = verify_postgres(conn, schema, KEY)
    assert (verdict.failure.seq, verdict.failure.check) == (4, "uniqueness")


def test_a_forged_checkpoint_root_or_size_is_caught(admin, filled):
    tamper(filled, "UPDATE {s}.checkpoints SET root = sha256('forged') WHERE tree_size = 10")
    verdict = run(admin, filled)
    assert verdict.failure.check == "columns" and verdict.failure.checkpoint_id is not None
    tamper(filled, "UPDATE {s}.checkpoints SET root = %s, tree_size = 10 WHERE tree_size = 10",
           [store.root(admin, 10, filled)])
    assert run(admin, filled).ok
    tamper(filled, "UPDATE {s}.checkpoints SET note = replace(note, E'\\n10\\n', E'\\n9\\n'), tree_size = 9 "
                   "WHERE tree_size = 10")
    verdict = run(admin, filled)
    assert verdict.failure.check == "signature" and "does not verify" in verdict.failure.message


def test_a_checkpoint_signed_by_another_key_is_rejected(admin, filled):
    intruder = generate_key("zhuqi.suzhou/ledger")
    with psycopg.connect(ADMIN_DSN) as conn:
        store.sign_checkpoint(conn, intruder, schema=filled)
    verdict = run(admin, filled)
    assert verdict.failure.check == "signature" and "not signed by any trusted key" in verdict.failure.message


def test_without_a_pinned_key_the_verdict_says_so(admin, filled):
    verdict = run(admin, filled, key=None)
    assert verdict.ok and verdict.key_source != "pinned" and "not pinned" in verdict.notes[0] + verdict.key_source


def _rechain_from(conn, schema, start):
    """What a forger does: recompute prev and entry_hash from `start` on, leaving leaf hashes alone."""
    s = sql.Identifier(schema)
    rows = conn.execute(sql.SQL("SELECT seq, source, source_sequence, type, subject, time, envelope, prev "
                                "FROM {}.entries WHERE seq >= %s - 1 ORDER BY seq").format(s), [start]).fetchall()
    prev = None
    for seq, source, ss, type_, subject, time, env, stored_prev in rows:
        prev = stored_prev if prev is None else prev
        h = hashlib.sha256(canonical_bytes(seq, source, ss, type_, subject, time, env, prev)).digest()
        conn.execute(sql.SQL("UPDATE {}.entries SET prev = %s, entry_hash = %s WHERE seq = %s").format(s), [prev, h, seq])
        prev = h.hex()


def test_linear_fake_split_view_is_rejected(admin, filled, request):
    """The immudb "linear-fake" attack, and why this ledger is immune.

    immudb kept two structures over its entries: a linear hash chain and a
    Merkle tree, and its linear proofs only looked at the chain.  A malicious
    server could therefore show an auditor two different histories: one that is
    self-consistent as a chain (what linear proofs and chain walks check) and
    another that is what the signed tree root commits to (what inclusion and
    consistency proofs check).  Each check passed on its own.

    Here the forger rewrites entry 5 (a volunteer's unit) and re-links the chain
    from there, so a chain walk passes; it leaves leaf hashes and tree nodes
    untouched, so inclusion proofs served from the tree still verify against the
    genuine signed checkpoint.  Verification recomputes the leaf hash from the
    same canonical bytes as the chain hash and rebuilds the tree, so the two
    views cannot diverge.  A forger who instead rebuilds everything (a
    consistent rewrite, even signed with the genuine key) produces a tree whose
    root at the old size differs from a checkpoint an auditor kept, and no
    consistency proof from that checkpoint exists.
    """
    kept = store.checkpoints(admin, filled)[0]  # the auditor saved the size-10 checkpoint earlier
    with psycopg.connect(ADMIN_DSN) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(sql.SQL("UPDATE {}.entries SET envelope = replace(envelope, '\"unit\":\"ks\"', '\"unit\":\"tc\"') "
                             "WHERE seq = 4").format(sql.Identifier(filled)))
        _rechain_from(conn, filled, 4)
        conn.commit()
        # View 1: the chain alone is perfectly self-consistent.
        rows = conn.execute(sql.SQL("SELECT seq, source, source_sequence, type, subject, time, envelope, prev, entry_hash "
                                    "FROM {}.entries ORDER BY seq").format(sql.Identifier(filled))).fetchall()
        prev = "0" * 64
        for r in rows:
            assert r[7] == prev and hashlib.sha256(canonical_bytes(*r[:8])).digest() == bytes(r[8])
            prev = bytes(r[8]).hex()
        # View 2: the tree still proves the original entry 4 against the genuine signed root.
        leaf = bytes(conn.execute(sql.SQL("SELECT leaf_hash FROM {}.entries WHERE seq = 4").format(
            sql.Identifier(filled))).fetchone()[0])
        merkle.verify_inclusion(3, 10, leaf, store.inclusion_proof(conn, 4, 10, filled), kept.root)
        # The verifier sees through it.
        verdict = verify_postgres(conn, filled, KEY)
    assert (verdict.failure.seq, verdict.failure.check) == (4, "leaf hash")

    # A consistent rewrite, signed with the genuine key, in a fresh schema.
    fake = make_schema(admin, "fake")
    request.addfinalizer(lambda: drop_schema(admin, fake))
    forged = sample_envelopes(30)
    forged[3] = envelope("volunteer_registered", {"volunteer_id": "v4", "unit": "tc", "name": "假"}, seq=4)
    with psycopg.connect(ADMIN_DSN) as conn:
        store.append(conn, forged, schema=fake)
        forged_head = store.sign_checkpoint(conn, signer(), schema=fake)
        conn.commit()
        assert verify_postgres(conn, fake, KEY).ok  # internally perfect...
        verdict = verify_postgres(conn, fake, KEY, trusted_checkpoints=[kept.note])
        assert verdict.failure.check == "root" and "does not match" in verdict.failure.message
        proof = store.consistency_proof(conn, 10, 30, fake)
    with pytest.raises(merkle.ProofError):
        verify_consistency_between(kept.note, forged_head.note, proof, KEY)


def test_export_round_trip_and_tampered_export(admin, filled, tmp_path):
    out = tmp_path / "ledger.sqlite"
    with psycopg.connect(ADMIN_DSN) as conn:
        summary = export(conn, out, filled)
    assert (summary.entries, summary.checkpoints) == (30, 2)
    assert verify_export(out, KEY).ok
    unpinned = verify_export(out)
    assert unpinned.ok and "not pinned" in unpinned.key_source
    with pytest.raises(FileExistsError):
        with psycopg.connect(ADMIN_DSN) as conn:
            export(conn, out, filled)
    with sqlite3.connect(out) as db:
        db.execute("UPDATE entries SET time = replace(time, '09:', '08:') WHERE seq = 17")
    verdict = verify_export(out, KEY)
    assert (verdict.failure.seq, verdict.failure.check) == (17, "entry hash")
    assert not verify_export(out, generate_key("x").verifier_key).ok
