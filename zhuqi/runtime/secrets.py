"""Keys the services need, kept as files in the configured secrets directory.

Each is created on first start (random, 0600) and must be backed up with the
database: without the master key, sealed personal data cannot be read, and
without the RPC key, services cannot talk. Environment variables override the
files (base64), for deployments that inject secrets.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from zhuqi.runtime.config import Config

KEYS = {
    "master": 32,        # wraps each volunteer's personal-data key
    "phone_pepper": 32,  # HMAC key for phone-number lookups (phone numbers are low entropy)
    "rpc": 32,           # seals RPC payloads on the broker
    "event_store": 32,   # eventsourcing's application-level cipher: stored events encrypted at rest
}


def _env_name(name: str) -> str:
    return f"ZHUQI_{name.upper()}_KEY"


def key(config: Config, name: str) -> bytes:
    if (value := os.environ.get(_env_name(name))):
        raw = base64.b64decode(value)
    else:
        path = Path(config.secrets_dir) / f"{name}.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(base64.b64encode(os.urandom(KEYS.get(name, 32))).decode() + "\n")
        raw = base64.b64decode(path.read_text().strip())
    if len(raw) != KEYS.get(name, 32):
        from zhuqi.runtime.config import ConfigError
        raise ConfigError("secrets.dir", str(config.secrets_dir), f"key {name!r} must be {KEYS.get(name, 32)} bytes")
    return raw


def key_b64(config: Config, name: str) -> str:
    return base64.b64encode(key(config, name)).decode()


def fingerprint(raw: bytes) -> str:
    """A value that identifies a key without revealing it."""
    return hmac.new(raw, b"zhuqi key fingerprint v1", hashlib.sha256).hexdigest()[:32]


def check_against_database(config: Config, schema: str, names: tuple[str, ...]) -> None:
    """Refuse to start with keys other than those the schema's data was written with.

    A service started with a fresh secrets directory against an existing database
    would otherwise write new data under new keys beside old data it can no longer
    read. The first start records each key's fingerprint; later starts compare.
    """
    import psycopg
    from psycopg import sql

    from zhuqi.runtime.config import ConfigError

    table = sql.Identifier(schema, "key_fingerprints")
    with psycopg.connect(config.postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, fingerprint text NOT NULL, "
                             "recorded_at timestamptz NOT NULL DEFAULT now())").format(table))
        for name in names:
            mine = fingerprint(key(config, name))
            conn.execute(sql.SQL("INSERT INTO {} (name, fingerprint) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING")
                         .format(table), (name, mine))
            recorded = conn.execute(sql.SQL("SELECT fingerprint FROM {} WHERE name = %s").format(table),
                                    (name,)).fetchone()[0]
            if recorded != mine:
                where = _env_name(name) if os.environ.get(_env_name(name)) else str(Path(config.secrets_dir) / f"{name}.key")
                raise ConfigError("secrets.dir", str(config.secrets_dir),
                                  f"key {name!r} ({where}) is not the key the data in schema {schema!r} was written "
                                  f"with (fingerprint {mine[:12]}…, expected {recorded[:12]}…); restore that key")
