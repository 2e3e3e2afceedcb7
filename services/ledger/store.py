"""PostgreSQL storage of the ledger: schema, append, proofs and checkpoints.

Layout (schema `ledger` unless told otherwise):

* `entries`     one row per entry; `prev` is the hex chain hash of entry seq-1,
                `entry_hash`/`leaf_hash` are the raw 32-byte hashes of the row.
* `tree_nodes`  every perfect Merkle subtree of 2^level leaves (level >= 1), written
                when its last leaf is appended.  Level 0 is `entries.leaf_hash`.
* `checkpoints` signed tree heads (C2SP checkpoint notes).

All three are append-only: triggers refuse UPDATE, DELETE and TRUNCATE, even for
the owner, and the service role only gets SELECT and INSERT.  Tampering therefore
needs a superuser to switch triggers off, and `verify.py` detects the result.
"""

from __future__ import annotations

import base64
import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator, Mapping, Sequence

import orjson
import psycopg
from psycopg import sql

from .domain import merkle
from .domain.checkpoint import DEFAULT_ORIGIN, Checkpoint, Signer, sign_checkpoint as sign_checkpoint_note
from .domain.entry import (
    FIELDS, GENESIS_PREV, SAFE_INT_MAX, EnvelopeError, canonical_bytes, chain_hash, columns_disagreement,
    entry_from_envelope, leaf_hash,
)

DEFAULT_SCHEMA = "ledger"
DEFAULT_WRITER_ROLE = "zhuqi_ledger_writer"
BUNDLE_FORMAT = "zhuqi-ledger-proof-bundle/1"

ENTRY_COLUMNS = (*FIELDS, "entry_hash", "leaf_hash")
"""Column order used for reading and writing entries everywhere (PostgreSQL and exports)."""


class LedgerError(RuntimeError):
    """The stored ledger is not in a state the operation can work with."""


_DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.entries (
    seq             bigint PRIMARY KEY CHECK (seq >= 1),
    source          text   NOT NULL,
    source_sequence bigint NOT NULL,
    type            text   NOT NULL,
    subject         text   NOT NULL,
    time            text   NOT NULL,
    envelope        text   NOT NULL,
    prev            text   NOT NULL CHECK (prev ~ '^[0-9a-f]{{64}}$'),
    entry_hash      bytea  NOT NULL CHECK (length(entry_hash) = 32),
    leaf_hash       bytea  NOT NULL CHECK (length(leaf_hash) = 32),
    UNIQUE (source, source_sequence)
);
CREATE INDEX IF NOT EXISTS entries_subject_seq ON {schema}.entries (subject, seq);
CREATE TABLE IF NOT EXISTS {schema}.tree_nodes (
    level smallint NOT NULL CHECK (level >= 1),
    idx   bigint   NOT NULL CHECK (idx >= 0),
    hash  bytea    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS {schema}.checkpoints (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tree_size    bigint      NOT NULL CHECK (tree_size >= 0),
    root         bytea       NOT NULL CHECK (length(root) = 32),
    note         text        NOT NULL,
    verifier_key text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION {schema}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger table %.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""

_TABLES = ("entries", "tree_nodes", "checkpoints")


def _lock_key(schema: str) -> str:
    return f"zhuqi.ledger/{schema}"


def migrate(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA, writer_role: str = DEFAULT_WRITER_ROLE) -> None:
    """Create or bring up to date the ledger schema, triggers and writer role (admin connection).

    Idempotent: safe to run on every deployment and concurrently with itself.
    """
    s = sql.Identifier(schema)
    role = sql.Identifier(writer_role)
    with conn.transaction():
        # Serialise concurrent migrations of the same schema (CREATE ... IF NOT EXISTS races).
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", [_lock_key(schema)])
        conn.execute(sql.SQL(_DDL).format(schema=s))
        for table in _TABLES:
            t = sql.Identifier(table)
            conn.execute(sql.SQL(
                "CREATE OR REPLACE TRIGGER {name} BEFORE UPDATE OR DELETE ON {schema}.{table} "
                "FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_change()"
            ).format(name=sql.Identifier(f"{table}_append_only"), schema=s, table=t))
            conn.execute(sql.SQL(
                "CREATE OR REPLACE TRIGGER {name} BEFORE TRUNCATE ON {schema}.{table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_change()"
            ).format(name=sql.Identifier(f"{table}_no_truncate"), schema=s, table=t))
        # Roles are cluster-wide and other schemas may be migrating at the same moment.
        conn.execute(sql.SQL(
            "DO $$ BEGIN CREATE ROLE {role} LOGIN; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ).format(role=role))
        # Revoke first so that a re-run also removes any privilege granted by hand.
        conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}").format(s=s, r=role))
        conn.execute(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {r}").format(s=s, r=role))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {s} TO {r}").format(s=s, r=role))
        conn.execute(sql.SQL("GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {s} TO {r}").format(s=s, r=role))
        conn.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {r}").format(s=s, r=role))


@contextmanager
def _within_callers_transaction(conn: psycopg.Connection) -> Iterator[None]:
    """A savepoint inside the caller's transaction (or our own one in autocommit mode).

    psycopg's `transaction()` on an idle non-autocommit connection would start
    *and commit* a transaction of its own; the caller must stay in charge of
    committing, so we first open its implicit transaction.
    """
    if not conn.autocommit and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        conn.execute("SELECT 1")  # any statement opens the implicit transaction
    with conn.transaction():
        yield


def _q(template: str, schema: str) -> sql.Composed:
    return sql.SQL(template).format(s=sql.Identifier(schema))


# ---------------------------------------------------------------- reading the tree

def tree_size(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> int:
    row = conn.execute(_q("SELECT coalesce(max(seq), 0) FROM {s}.entries", schema)).fetchone()
    return int(row[0])


def _fetch_subtrees(conn: psycopg.Connection, wanted: Iterable[tuple[int, int]], schema: str) -> dict[tuple[int, int], bytes]:
    wanted = list(wanted)
    found: dict[tuple[int, int], bytes] = {}
    leaves = [idx + 1 for level, idx in wanted if level == 0]
    if leaves:
        for seq, h in conn.execute(_q("SELECT seq, leaf_hash FROM {s}.entries WHERE seq = ANY(%s)", schema), [leaves]):
            found[(0, seq - 1)] = bytes(h)
    nodes = [(level, idx) for level, idx in wanted if level > 0]
    if nodes:
        rows = conn.execute(_q(
            "SELECT n.level, n.idx, n.hash FROM {s}.tree_nodes n "
            "JOIN unnest(%s::smallint[], %s::bigint[]) AS w(level, idx) USING (level, idx)", schema),
            [[n[0] for n in nodes], [n[1] for n in nodes]])
        for level, idx, h in rows:
            found[(level, idx)] = bytes(h)
    missing = [w for w in wanted if w not in found]
    if missing:
        raise LedgerError(f"tree nodes missing from {schema}: {sorted(missing)[:5]}")
    return found


def _with_stored_subtrees(conn: psycopg.Connection, schema: str, compute):
    """Run a merkle computation against stored subtree hashes, fetched in one go."""
    found = _fetch_subtrees(conn, merkle.needed_subtrees(compute), schema)
    return compute(lambda level, idx: found[(level, idx)])


def _check_size(conn: psycopg.Connection, size: int, schema: str) -> None:
    current = tree_size(conn, schema)
    if not 0 <= size <= current:
        raise LedgerError(f"tree size {size} requested but the ledger holds {current} entries")


def root(conn: psycopg.Connection, size: int | None = None, schema: str = DEFAULT_SCHEMA) -> bytes:
    """Merkle root of the first `size` entries (default: all)."""
    if size is None:
        size = tree_size(conn, schema)
    _check_size(conn, size, schema)
    return _with_stored_subtrees(conn, schema, lambda sub: merkle.root_hash(size, sub))


def inclusion_proof(conn: psycopg.Connection, seq: int, size: int, schema: str = DEFAULT_SCHEMA) -> list[bytes]:
    """Audit path for entry `seq` (leaf index seq-1) in the tree of the first `size` entries."""
    _check_size(conn, size, schema)
    return _with_stored_subtrees(conn, schema, lambda sub: merkle.inclusion_proof(seq - 1, size, sub))


def consistency_proof(conn: psycopg.Connection, size1: int, size2: int, schema: str = DEFAULT_SCHEMA) -> list[bytes]:
    """Proof that the tree of size1 entries is a prefix of the tree of size2 entries."""
    _check_size(conn, size2, schema)
    return _with_stored_subtrees(conn, schema, lambda sub: merkle.consistency_proof(size1, size2, sub))


# ---------------------------------------------------------------- appending

def _normalise(envelope: tuple[str | bytes, Mapping[str, Any]]) -> tuple[str, Mapping[str, Any]]:
    raw, parsed = envelope
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EnvelopeError(f"envelope is not UTF-8: {exc}") from None
    if not isinstance(raw, str) or not isinstance(parsed, Mapping):
        raise EnvelopeError("each envelope must be a (raw text, parsed dict) pair")
    return raw, parsed


def _candidate(raw: str, parsed: Mapping[str, Any]) -> tuple[str, int, str, str, str, str]:
    """(source, source_sequence, type, subject, time, envelope) of one envelope, or EnvelopeError.

    The same checks as `entry_from_envelope` followed by `columns_disagreement`
    against the raw text, with the common case (the parsed members are the raw
    text's members) decided by five comparisons.
    """
    draft = entry_from_envelope(0, GENESIS_PREV, raw, parsed)
    try:
        published = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"envelope text is not JSON: {exc}") from None
    if type(published) is not dict:
        raise EnvelopeError("envelope text is not a JSON object")
    get = published.get
    if not (get("source") == parsed["source"] and get("sequence") == parsed["sequence"]
            and get("type") == draft.type and get("subject") == draft.subject and get("time") == draft.time):
        # Equal members give equal columns; anything else gets the worded comparison
        # (which also accepts e.g. sequence "007" against "7").
        problem = columns_disagreement(draft.as_dict(), published)
        if problem:
            raise EnvelopeError(f"parsed envelope differs from its raw text: {problem}")
    return draft.source, draft.source_sequence, draft.type, draft.subject, draft.time, draft.envelope


def append(
    conn: psycopg.Connection,
    envelopes: Sequence[tuple[str | bytes, Mapping[str, Any]]],
    schema: str = DEFAULT_SCHEMA,
) -> int:
    """Append published envelopes to the ledger; return how many were new.

    Runs inside the caller's transaction (as a savepoint) so the consumer can
    commit the ledger rows together with its own bookkeeping and acknowledge the
    broker message only afterwards.  Redelivered envelopes, recognised by
    (service, publisher sequence), are skipped, so at-least-once delivery
    yields exactly-once entries.  Writers are serialised by a transaction-level
    advisory lock, which the unprivileged writer role may take (LOCK TABLE in
    EXCLUSIVE mode would need UPDATE privilege).
    """
    pairs = [_normalise(e) for e in envelopes]
    if not pairs:
        return 0
    with _within_callers_transaction(conn), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [_lock_key(schema)])
        cur.execute(_q("SELECT seq, entry_hash FROM {s}.entries ORDER BY seq DESC LIMIT 1", schema))
        head = cur.fetchone()
        size, prev = (0, GENESIS_PREV) if head is None else (int(head[0]), bytes(head[1]).hex())
        positions = merkle.frontier_positions(size)
        stored = _fetch_subtrees(conn, positions, schema)
        tree = merkle.CompactRange(size, [stored[p] for p in positions])

        candidates = [_candidate(raw, parsed) for raw, parsed in pairs]
        cur.execute(_q(
            "SELECT e.source, e.source_sequence FROM {s}.entries e "
            "JOIN unnest(%s::text[], %s::bigint[]) AS c(source, source_sequence) "
            "USING (source, source_sequence)", schema),
            [[d[0] for d in candidates], [d[1] for d in candidates]])
        seen = {(src, int(n)) for src, n in cur.fetchall()}

        rows, nodes = [], []
        sha256, dumps = hashlib.sha256, orjson.dumps
        for source, source_sequence, type_, subject, time, envelope in candidates:
            key = (source, source_sequence)
            if key in seen:
                continue  # redelivery, or a duplicate inside this batch
            seen.add(key)
            size += 1
            if size <= SAFE_INT_MAX and type(type_) is str and type(subject) is str and type(time) is str \
                    and type(envelope) is str:
                # entry.canonical_bytes inlined: source is a plain str and source_sequence an int
                # within 2^53 by construction, so orjson's encoding is the JCS one; the members
                # go in sorted order, which orjson keeps.
                canonical = dumps({"envelope": envelope, "prev": prev, "seq": size, "source": source,
                                   "source_sequence": source_sequence, "subject": subject, "time": time,
                                   "type": type_})
            else:
                canonical = canonical_bytes(size, source, source_sequence, type_, subject, time, envelope, prev)
            entry_h, leaf_h = sha256(canonical).digest(), sha256(b"\x00" + canonical).digest()
            rows.append((size, source, source_sequence, type_, subject, time, envelope, prev, entry_h, leaf_h))
            nodes.extend(tree.append(leaf_h))
            prev = entry_h.hex()
        if rows:
            _copy_rows(cur, schema, "entries", ENTRY_COLUMNS, rows)
        if nodes:
            _copy_rows(cur, schema, "tree_nodes", ("level", "idx", "hash"), nodes)
    return len(rows)


_COPY_TYPES = {
    "entries": ("int8", "text", "int8", "text", "text", "text", "text", "text", "bytea", "bytea"),
    "tree_nodes": ("int2", "int8", "bytea"),
}


def _copy_rows(cur: psycopg.Cursor, schema: str, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    # Binary COPY: no escaping of the envelope text on our side, no parsing on the server's.
    statement = sql.SQL("COPY {s}.{t} ({cols}) FROM STDIN (FORMAT BINARY)").format(
        s=sql.Identifier(schema), t=sql.Identifier(table),
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)))
    with cur.copy(statement) as copy:
        copy.set_types(_COPY_TYPES[table])
        for row in rows:
            copy.write_row(row)


# ---------------------------------------------------------------- checkpoints

@dataclass(frozen=True)
class StoredCheckpoint:
    id: int
    tree_size: int
    root: bytes
    note: str
    verifier_key: str
    created_at: datetime | str


_CHECKPOINT_COLUMNS = "id, tree_size, root, note, verifier_key, created_at"


def _checkpoint(row) -> StoredCheckpoint:
    return StoredCheckpoint(int(row[0]), int(row[1]), bytes(row[2]), row[3], row[4], row[5])


def sign_checkpoint(
    conn: psycopg.Connection, signer: Signer, origin: str = DEFAULT_ORIGIN, schema: str = DEFAULT_SCHEMA,
) -> StoredCheckpoint:
    """Sign the current tree head and store it (caller commits); returns the stored checkpoint."""
    with _within_callers_transaction(conn):
        # Same lock as append: size and root must describe one state of the tree.
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [_lock_key(schema)])
        size = tree_size(conn, schema)
        head = Checkpoint(origin, size, root(conn, size, schema))
        note = sign_checkpoint_note(head, signer)
        row = conn.execute(_q(
            "INSERT INTO {s}.checkpoints (tree_size, root, note, verifier_key) VALUES (%s, %s, %s, %s) "
            f"RETURNING {_CHECKPOINT_COLUMNS}", schema),
            [size, head.root, note, signer.verifier_key]).fetchone()
    return _checkpoint(row)


def checkpoints(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> list[StoredCheckpoint]:
    rows = conn.execute(_q(f"SELECT {_CHECKPOINT_COLUMNS} FROM {{s}}.checkpoints ORDER BY id", schema))
    return [_checkpoint(r) for r in rows]


def latest_checkpoint(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> StoredCheckpoint | None:
    row = conn.execute(_q(
        f"SELECT {_CHECKPOINT_COLUMNS} FROM {{s}}.checkpoints ORDER BY tree_size DESC, id DESC LIMIT 1",
        schema)).fetchone()
    return None if row is None else _checkpoint(row)


# ---------------------------------------------------------------- subject history

@dataclass(frozen=True)
class HistoryItem:
    entry: dict[str, Any]          # the eight canonical members
    leaf_hash: bytes
    proof: list[bytes] | None      # None: newer than the latest checkpoint


@dataclass(frozen=True)
class History:
    subject: str
    checkpoint: StoredCheckpoint | None
    items: list[HistoryItem]


def history(conn: psycopg.Connection, subject: str, schema: str = DEFAULT_SCHEMA) -> History:
    """Every entry about `subject`, in order, each with its proof against the latest checkpoint."""
    head = latest_checkpoint(conn, schema)
    rows = conn.execute(_q(
        "SELECT " + ", ".join(ENTRY_COLUMNS) + " FROM {s}.entries WHERE subject = %s ORDER BY seq", schema),
        [subject]).fetchall()
    covered = [r[0] for r in rows if head is not None and r[0] <= head.tree_size]
    proofs: dict[int, list[bytes]] = {}
    if covered:
        size = head.tree_size

        def compute(sub):
            return {seq: merkle.inclusion_proof(seq - 1, size, sub) for seq in covered}
        proofs = _with_stored_subtrees(conn, schema, compute)
    items = [HistoryItem(dict(zip(FIELDS, r[:8])), bytes(r[9]), proofs.get(r[0])) for r in rows]
    return History(subject, head, items)


def proof_bundle(conn: psycopg.Connection, subject: str, schema: str = DEFAULT_SCHEMA) -> dict[str, Any]:
    """Self-contained JSON document proving a subject's history (see docs/ledger-format.md)."""
    h = history(conn, subject, schema)
    return {
        "format": BUNDLE_FORMAT,
        "subject": subject,
        "hash_algorithm": "sha256",
        "checkpoint": None if h.checkpoint is None else h.checkpoint.note,
        "verifier_key": None if h.checkpoint is None else h.checkpoint.verifier_key,
        "entries": [
            {**item.entry,
             "leaf_index": item.entry["seq"] - 1,
             "proof": None if item.proof is None else [base64.b64encode(p).decode() for p in item.proof]}
            for item in h.items
        ],
    }
