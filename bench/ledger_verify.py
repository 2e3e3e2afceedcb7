"""Benchmark: verify and replay throughput against a raw streaming SELECT.

    .venv/bin/python bench/ledger_verify.py [N]     (default 1,000,000 entries)

Builds N entries in a throwaway schema (rows generated with the fast encoder,
loaded with COPY), times the three passes, prints one JSON line, drops the
schema.  The functions are importable by other benchmarks.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from services.ledger import store  # noqa: E402
from services.ledger.domain import merkle  # noqa: E402
from services.ledger.domain.entry import GENESIS_PREV, canonical_bytes, chain_hash, leaf_hash  # noqa: E402
from services.ledger.replay import replay  # noqa: E402
from services.ledger.verify import pg_rows, verify_postgres  # noqa: E402

DSN = os.environ.get("ZHUQI_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
UNITS = ("zjg", "ks", "tc", "cs", "wj")
T0 = datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=8)))


def synthetic_rows(n: int):
    """Yield (entry row, completed tree nodes) for n registry-like entries."""
    prev, tree = GENESIS_PREV, merkle.CompactRange()
    for seq in range(1, n + 1):
        unit = UNITS[seq % 5]
        kind = "volunteer_registered" if seq % 4 else "team_formed"
        data = ({"volunteer_id": f"v{seq}", "unit": unit, "name": f"志愿者{seq}"} if seq % 4
                else {"team_id": f"t{seq}", "unit": unit, "tier": "district"})
        when = (T0 + timedelta(seconds=seq)).isoformat()
        env = orjson.dumps({
            "specversion": "1.0", "id": str(uuid.UUID(int=seq)), "source": f"/zhuqi/registry/{unit}",
            "type": f"cn.suzhou.zhuqi.registry.{kind}.v1", "subject": next(iter(data.values())), "time": when,
            "datacontenttype": "application/json", "data": data, "sequence": str(seq)}).decode()
        type_ = f"cn.suzhou.zhuqi.registry.{kind}.v1"
        subject = next(iter(data.values()))
        c = canonical_bytes(seq, "registry", seq, type_, subject, when, env, prev)
        eh, lh = chain_hash(c), leaf_hash(c)
        yield (seq, "registry", seq, type_, subject, when, env, prev, eh, lh), tree.append(lh)
        prev = eh.hex()


def build(conn: psycopg.Connection, schema: str, n: int) -> None:
    """Migrate `schema` and load n entries plus their tree nodes with COPY."""
    store.migrate(conn, schema)
    s = sql.Identifier(schema)
    nodes = []
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {}.entries ({}) FROM STDIN").format(
            s, sql.SQL(", ").join(map(sql.Identifier, store.ENTRY_COLUMNS)))) as copy:
        for row, completed in synthetic_rows(n):
            copy.write_row(row)
            nodes.extend(completed)
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {}.tree_nodes (level, idx, hash) FROM STDIN").format(s)) as copy:
        for node in nodes:
            copy.write_row(node)


def time_raw_select(conn, schema: str) -> float:
    start, count = time.perf_counter(), 0
    for _ in pg_rows(conn, schema):
        count += 1
    return count / (time.perf_counter() - start)


def time_verify(conn, schema: str, key: str | None = None) -> float:
    start = time.perf_counter()
    verdict = verify_postgres(conn, schema, key)
    assert verdict.ok, verdict.summary()
    return verdict.entries_checked / (time.perf_counter() - start)


def time_replay(conn, schema: str) -> float:
    start = time.perf_counter()
    result = replay(conn, date(2030, 1, 1), schema)
    return result["entries_read"] / (time.perf_counter() - start)


def main(n: int) -> dict:
    schema = f"ledger_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(DSN, autocommit=True) as admin:
        try:
            with psycopg.connect(DSN) as conn:
                start = time.perf_counter()
                build(conn, schema, n)
                conn.commit()
                built = time.perf_counter() - start
                result = {"entries": n, "build_s": round(built, 1),
                          "raw_select_per_s": round(time_raw_select(conn, schema)),
                          "verify_per_s": round(time_verify(conn, schema)),
                          "replay_per_s": round(time_replay(conn, schema))}
        finally:
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
