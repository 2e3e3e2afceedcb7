"""The ledger's service layer: what its entrypoints may ask of the stored log.

Reads (entries, proofs, subject histories, status), checkpoints signed when due
or on demand, and self-verification. The nameko adapter (`service.py`) and the
console call this; the log itself is `store.py`, its rules are in `domain/`.
"""
from __future__ import annotations

import base64
import logging
import time

from prometheus_client import Counter, Gauge
from psycopg_pool import ConnectionPool

from services.ledger import store

log = logging.getLogger("zhuqi.ledger")
ENTRIES_APPENDED = Counter("zhuqi_ledger_entries_appended_total", "Entries appended to the ledger.")
LAST_SEQUENCE = Gauge("zhuqi_ledger_last_sequence", "Sequence number of the last ledger entry.")
CHECKPOINT_AGE = Gauge("zhuqi_ledger_checkpoint_age_seconds", "Seconds since the latest checkpoint was signed.")
VERIFICATION_FAILURES = Counter("zhuqi_ledger_verification_failures_total", "Self-verifications that failed.")


class Ledger:
    """What entrypoints may do with the stored ledger (reads, checkpoints)."""

    def __init__(self, pool: ConnectionPool, schema: str, signer, checkpoint_interval: float, verify_interval: float):
        self.pool, self.schema, self.signer = pool, schema, signer
        self.checkpoint_interval = checkpoint_interval
        self.verify_interval = verify_interval
        self.last_verified = 0.0
        self.inbox = None

    def tree_size(self) -> int:
        with self.pool.connection() as conn:
            return store.tree_size(conn, self.schema)

    def entries(self, after: int, limit: int) -> list[dict]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                f'SELECT {", ".join(store.ENTRY_COLUMNS[:8])} FROM "{self.schema}".entries '
                "WHERE seq > %s ORDER BY seq LIMIT %s", (after, limit)).fetchall()
        keys = store.ENTRY_COLUMNS[:8]
        return [dict(zip(keys, row)) for row in rows]

    def entry(self, seq: int) -> dict | None:
        rows = self.entries(seq - 1, 1)
        if not rows or rows[0]["seq"] != seq:
            return None
        bundle = self.proof_bundle(rows[0]["subject"])
        return next(e for e in bundle["entries"] if e["seq"] == seq) | {"checkpoint": bundle["checkpoint"]}

    def latest_checkpoint(self):
        with self.pool.connection() as conn:
            return store.latest_checkpoint(conn, self.schema)

    def sign_checkpoint(self):
        with self.pool.connection() as conn:
            cp = store.sign_checkpoint(conn, self.signer, schema=self.schema)
        CHECKPOINT_AGE.set(0)
        return cp

    def sign_if_due(self):
        latest = self.latest_checkpoint()
        size = self.tree_size()
        LAST_SEQUENCE.set(size)
        age = None
        if latest is not None:
            age = time.time() - latest.created_at.timestamp()
            CHECKPOINT_AGE.set(age)
        if latest is None or (latest.tree_size < size and age >= self.checkpoint_interval):
            return self.sign_checkpoint()
        return None

    def verify(self):
        """Check the whole stored ledger against our own key; count and log a failure."""
        from services.ledger.verify import verify_postgres

        with self.pool.connection() as conn:
            verdict = verify_postgres(conn, self.schema, verifier=self.signer.verifier)
        self.last_verified = time.time()
        if not verdict.ok:
            VERIFICATION_FAILURES.inc()
            log.error("ledger self-verification failed", extra={"verdict": verdict.to_dict()})
        return verdict

    def verify_if_due(self):
        if time.time() - self.last_verified >= self.verify_interval:
            return self.verify()
        return None

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        with self.pool.connection() as conn:
            return store.consistency_proof(conn, first, second, self.schema)

    def proof_bundle(self, subject: str) -> dict:
        with self.pool.connection() as conn:
            return store.proof_bundle(conn, subject, self.schema)

    def status(self) -> dict:
        latest = self.latest_checkpoint()
        inbox = self.inbox.state if self.inbox is not None else None
        return {
            "tree_size": self.tree_size(),
            "checkpoint": None if latest is None else {"tree_size": latest.tree_size,
                                                       "root": base64.b64encode(latest.root).decode(),
                                                       "created_at": str(latest.created_at)},
            "inbox": None if inbox is None else {"connected": inbox.connected, "applied": inbox.applied,
                                                 "duplicates": inbox.duplicates, "dead_lettered": inbox.dead_lettered,
                                                 "gaps": len(inbox.gaps), "positions": inbox.last_seen},
        }
