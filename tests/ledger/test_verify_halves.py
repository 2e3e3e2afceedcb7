"""Verification split over two processes gives exactly the verdict of a single pass, tampered or not."""
import hashlib
import psycopg, pytest
from psycopg import sql
from services.ledger import store
from services.ledger.domain import merkle
from services.ledger.domain.entry import canonical_bytes
from services.ledger.export import export
from services.ledger.verify import verify_postgres, verify_export
from tests.ledger.conftest import ADMIN_DSN, sample_envelopes, signer
from tests.ledger.test_verify import tamper, KEY, _rechain_from

@pytest.fixture
def filled(admin, schema):
    with psycopg.connect(ADMIN_DSN) as conn:
        store.append(conn, sample_envelopes(10), schema=schema)
        store.sign_checkpoint(conn, signer(), schema=schema)
        store.append(conn, sample_envelopes(30)[10:20], schema=schema)
        store.sign_checkpoint(conn, signer(), schema=schema)
        store.append(conn, sample_envelopes(30)[20:], schema=schema)
        store.sign_checkpoint(conn, signer(), schema=schema)
    return schema

def both(schema, tmp_path=None, **kw):
    with psycopg.connect(ADMIN_DSN) as conn:
        one = verify_postgres(conn, schema, KEY, workers=1, **kw)
        two = verify_postgres(conn, schema, KEY, workers=2, **kw)
        assert one.to_dict() == two.to_dict()
        if tmp_path is not None:
            out = tmp_path / "x.sqlite"
            export(conn, out, schema)
            e1, e2 = verify_export(out, KEY, workers=1), verify_export(out, KEY, workers=2)
            assert e1.to_dict() == e2.to_dict() == one.to_dict()
    return one

STATEMENTS = [
    None,
    "UPDATE {s}.entries SET subject = 'x' WHERE seq = 20",
    "UPDATE {s}.entries SET subject = 'x' WHERE seq = 16",
    "UPDATE {s}.entries SET prev = repeat('a', 64) WHERE seq = 16",
    "DELETE FROM {s}.entries WHERE seq = 16",
    "DELETE FROM {s}.entries WHERE seq = 15",
    "DELETE FROM {s}.entries WHERE seq > 25",
    "UPDATE {s}.entries SET leaf_hash = sha256('x') WHERE seq = 29",
    "UPDATE {s}.checkpoints SET root = sha256('forged') WHERE tree_size = 20",
    "UPDATE {s}.entries SET envelope = replace(envelope, '\"sequence\":\"22\"', '\"sequence\":\"023\"') WHERE seq = 22",
]

@pytest.mark.parametrize("statement", STATEMENTS)
def test_same_verdict(admin, filled, statement, tmp_path):
    if statement:
        tamper(filled, statement)
    v = both(filled, tmp_path)
    print(v.to_dict())

def test_rechained_second_half(admin, filled, tmp_path):
    with psycopg.connect(ADMIN_DSN) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(sql.SQL("UPDATE {}.entries SET envelope = replace(envelope, '志愿者22', '志愿者X') WHERE seq = 22").format(sql.Identifier(filled)))
        _rechain_from(conn, filled, 22)
        conn.commit()
    v = both(filled, tmp_path)
    assert v.failure.check == "leaf hash"

def test_cross_half_duplicate(admin, schema, tmp_path):
    with psycopg.connect(ADMIN_DSN) as conn:
        store.append(conn, sample_envelopes(30), schema=schema)
        conn.commit()
        tamper(schema, "ALTER TABLE {s}.entries DROP CONSTRAINT entries_source_source_sequence_key")
        raw, parsed = sample_envelopes(3)[2]
        for seq in (31, 32):
            row = conn.execute(sql.SQL("SELECT entry_hash FROM {}.entries WHERE seq = %s").format(sql.Identifier(schema)), [seq - 1]).fetchone()
            prev = bytes(row[0]).hex()
            c = canonical_bytes(seq, "registry", 3, parsed["type"], parsed["subject"], parsed["time"], raw, prev)
            conn.execute(sql.SQL("INSERT INTO {}.entries VALUES (%s, 'registry', 3, %s, %s, %s, %s, %s, %s, %s)").format(
                sql.Identifier(schema)), [seq, parsed["type"], parsed["subject"], parsed["time"], raw, prev,
                                          hashlib.sha256(c).digest(), merkle.hash_leaf(c)])
        conn.commit()
    v = both(schema, tmp_path)
    assert (v.failure.seq, v.failure.check) == (31, "uniqueness")
