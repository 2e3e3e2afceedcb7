"""Wiring of the ledger from settings: migration, the writer connection, the inbox, the signer."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import psycopg

from services.ledger import store
from services.ledger.domain.checkpoint import Signer, generate_key, parse_signer_key
from zhuqi.runtime import db
from zhuqi.runtime.config import Config
from zhuqi.runtime.envelope import Envelope
from zhuqi.runtime.inbox import InboxConsumer, ensure_tracking_table
from zhuqi.runtime.topology import consumer_queues

CONSUMER = "ledger"
SIGNER_NAME = "zhuqi.suzhou/ledger"


def schema(config: Config) -> str:
    return config.service("ledger").schema


def writer_dsn(config: Config) -> str:
    """The ledger writes through a role that may only INSERT and SELECT."""
    explicit = config.service("ledger").extra.get("writer_dsn")
    if explicit:
        return explicit
    parts = urlsplit(config.postgres_dsn)
    netloc = f"{store.DEFAULT_WRITER_ROLE}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def migrate(config: Config) -> None:
    # Two instances starting together must not run DDL and GRANTs at the same time.
    with db.advisory_lock(config.postgres_dsn, f"zhuqi.schema.{schema(config)}"):
        with psycopg.connect(config.postgres_dsn, autocommit=True) as conn:
            store.migrate(conn, schema(config), store.DEFAULT_WRITER_ROLE)
        ensure_tracking_table(config.postgres_dsn, schema(config), CONSUMER, grant_to=store.DEFAULT_WRITER_ROLE)


def signer(config: Config) -> Signer:
    """The checkpoint signing key: from ZHUQI_LEDGER_SIGNER_KEY, else a file made on first start."""
    if (text := os.environ.get("ZHUQI_LEDGER_SIGNER_KEY")):
        return parse_signer_key(text.strip())
    path = Path(config.secrets_dir) / "ledger-signer.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(generate_key(SIGNER_NAME).signer_key + "\n")
    return parse_signer_key(path.read_text().strip())


def build_inbox(config: Config, on_appended: Callable[[int], None] = lambda n: None) -> InboxConsumer:
    """The ledger's consumer: tracking rows and ledger entries commit together."""
    ledger_schema = schema(config)

    def append(conn: psycopg.Connection, envelopes: list[Envelope]) -> None:
        # append reads the attributes only; the data is hashed as part of the raw text.
        on_appended(store.append(conn, [(e.raw, e.attributes) for e in envelopes], ledger_schema))

    inbox = config.section("inbox")
    return InboxConsumer(
        CONSUMER, consumer_queues()[CONSUMER], append,
        amqp_uri=config.amqp_uri, dsn=writer_dsn(config), schema=ledger_schema,
        batch_size=inbox["batch_size"], max_attempts=inbox["max_attempts"],
        prefetch=config.raw["amqp"]["prefetch"], heartbeat=config.raw["amqp"]["heartbeat"],
    )
