"""PostgreSQL access that cooperates with eventlet.

psycopg 3's default wait function is written in C and blocks eventlet's hub:
a slow query in one nameko worker would stall every other entrypoint of the
service. `wait_select` goes through `select()`, which eventlet patches, so
waiting for the server yields to other green threads. It is set here, in code,
so that it holds whatever the caller's environment says, and before any
connection is made (importing the runtime is enough).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator
from urllib.parse import unquote, urlsplit

import psycopg
import psycopg.waiting
from psycopg import sql


def make_cooperative() -> None:
    psycopg.waiting.wait = psycopg.waiting.wait_select
    psycopg.waiting._ready = psycopg.waiting._ready_select


make_cooperative()


def connect(dsn: str, *, autocommit: bool = False, **kwargs) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=autocommit, **kwargs)


@contextmanager
def transaction(dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dsn) as conn:
        with conn.transaction():
            yield conn


@contextmanager
def advisory_lock(dsn: str, name: str) -> Iterator[None]:
    """Hold a cluster-wide lock while creating tables: DDL of two processes must not interleave."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (name,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (name,))


def ensure_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        except psycopg.errors.UniqueViolation:
            pass  # created at the same moment by another process or dependency: that is fine


def ensure_database(dsn: str) -> bool:
    """Create the DSN's database when missing (first start on a fresh machine)."""
    parts = urlsplit(dsn)
    name = unquote(parts.path.lstrip("/")) or "postgres"
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def eventsourcing_env(dsn: str, schema: str, pool_size: int = 4, **extra: str) -> dict[str, str]:
    """The `eventsourcing` persistence settings for one service's own schema."""
    parts = urlsplit(dsn)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_CONN_MAX_AGE": "600",
        "POSTGRES_PRE_PING": "y",
        # Multi-row tracking: a dead-lettered message replayed later, behind newer
        # ones, must still be applied; a duplicate still collides on the key.
        "SINGLE_ROW_TRACKING": "n",
        "CREATE_TABLE": "y",
    }
    env.update(extra)
    return env
