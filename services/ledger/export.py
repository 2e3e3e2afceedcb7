"""Self-contained SQLite export of the ledger, for auditors and offline replay.

The file holds the entries exactly as stored, every checkpoint, and a `meta`
table; `verify.py` and `replay.py` work on it with no service or database.
Tree nodes are not exported: they are derived data and the verifier rebuilds
the tree from the entries anyway.  See docs/ledger-format.md.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import psycopg

from .domain.checkpoint import DEFAULT_ORIGIN, parse_unverified_checkpoint
from .store import DEFAULT_SCHEMA, ENTRY_COLUMNS, checkpoints
from .verify import FETCH_BATCH, pg_rows

FORMAT_VERSION = "1"

SQLITE_SCHEMA = """
CREATE TABLE entries (
    seq             INTEGER PRIMARY KEY,
    source          TEXT    NOT NULL,
    source_sequence INTEGER NOT NULL,
    type            TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    time            TEXT    NOT NULL,
    envelope        TEXT    NOT NULL,
    prev            TEXT    NOT NULL,
    entry_hash      BLOB    NOT NULL,
    leaf_hash       BLOB    NOT NULL
);
CREATE TABLE checkpoints (
    id           INTEGER PRIMARY KEY,
    tree_size    INTEGER NOT NULL,
    root         BLOB    NOT NULL,
    note         TEXT    NOT NULL,
    verifier_key TEXT    NOT NULL,
    created_at   TEXT    NOT NULL
);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    entries: int
    checkpoints: int


def export(
    conn: psycopg.Connection, output: str | Path, schema: str = DEFAULT_SCHEMA,
    progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Write the ledger to a new SQLite file at `output` (refuses to overwrite).

    The file is built under a temporary name and renamed at the end, so a
    crashed export never leaves something that looks like a complete one.
    """
    output = Path(output)
    if output.exists():
        raise FileExistsError(f"{output} already exists; refusing to overwrite an export")
    partial = output.with_name(output.name + ".partial")
    partial.unlink(missing_ok=True)
    began = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    if began:
        # One snapshot for entries and checkpoints: a checkpoint must not be newer than the entries.
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        cps = checkpoints(conn, schema)
        with closing(sqlite3.connect(partial)) as db:
            db.executescript(SQLITE_SCHEMA)
            count = 0
            insert = f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) VALUES ({', '.join('?' * len(ENTRY_COLUMNS))})"
            batch = []
            with closing(pg_rows(conn, schema)) as rows:
                for row in rows:
                    batch.append(row[:8] + (bytes(row[8]), bytes(row[9])))
                    if len(batch) == FETCH_BATCH:
                        db.executemany(insert, batch)
                        count += len(batch)
                        if progress:
                            progress(len(batch))
                        batch.clear()
            db.executemany(insert, batch)
            count += len(batch)
            if progress:
                progress(len(batch))
            db.executemany(
                "INSERT INTO checkpoints (id, tree_size, root, note, verifier_key, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(cp.id, cp.tree_size, cp.root, cp.note, cp.verifier_key, str(cp.created_at)) for cp in cps])
            latest = max(cps, key=lambda cp: (cp.tree_size, cp.id), default=None)
            meta = {
                "format_version": FORMAT_VERSION,
                "origin": parse_unverified_checkpoint(latest.note).origin if latest else DEFAULT_ORIGIN,
                "verifier_key": latest.verifier_key if latest else "",
                "hash_algorithm": "sha256",
                "canonicalization": "RFC 8785 JCS",
                "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "tree_size": str(count),
            }
            db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", sorted(meta.items()))
            db.commit()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        if began:
            conn.execute("ROLLBACK")  # our read-only snapshot; nothing to keep
    os.replace(partial, output)
    return ExportSummary(output, count, len(cps))
