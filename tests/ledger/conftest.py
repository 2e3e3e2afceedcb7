"""Shared fixtures: a real PostgreSQL, one throwaway schema per test module or test."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import psycopg
import pytest
from psycopg import sql

from services.ledger import store
from services.ledger.domain.checkpoint import parse_signer_key

ADMIN_DSN = os.environ.get("ZHUQI_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
WRITER_ROLE = store.DEFAULT_WRITER_ROLE
PREFIX = "cn.suzhou.zhuqi.registry."



def writer_dsn() -> str:
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    info["user"] = WRITER_ROLE
    return psycopg.conninfo.make_conninfo(**info)


def unique_schema(tag: str) -> str:
    return f"ledger_test_{tag}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def admin():
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        yield conn


def make_schema(admin: psycopg.Connection, tag: str):
    name = unique_schema(tag)
    store.migrate(admin, name)
    return name


def drop_schema(admin: psycopg.Connection, name: str) -> None:
    admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def schema(admin, request):
    name = make_schema(admin, request.node.name[:12].lower().replace("[", "_").replace("]", "_").replace("-", "_"))
    yield name
    drop_schema(admin, name)


@pytest.fixture
def writer():
    with psycopg.connect(writer_dsn(), autocommit=True) as conn:
        yield conn


def signer():
    from services.ledger.domain.checkpoint import Signer, key_id
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    private = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    pub = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return Signer("zhuqi.suzhou/ledger", key_id("zhuqi.suzhou/ledger", pub), private)


BASE_TIME = datetime(2025, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def envelope(name: str, data: dict, *, seq: int, service: str = "registry", unit: str = "zjg",
             subject: str | None = None, time: datetime | str | None = None) -> tuple[str, dict]:
    """A CloudEvents structured envelope as a publisher would emit it: (raw text, parsed)."""
    if time is None:
        time = BASE_TIME + timedelta(minutes=seq)
    parsed = {
        "specversion": "1.0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"zhuqi/{service}/{seq}")),
        "source": f"/zhuqi/{service}/{unit}",
        "type": name if name.startswith("cn.") else f"cn.suzhou.zhuqi.{service}.{name}.v1",
        "subject": subject or next(iter(v for k, v in data.items() if k.endswith("_id")), "none"),
        "time": time if isinstance(time, str) else time.isoformat(),
        "datacontenttype": "application/json",
        "data": data,
        "sequence": str(seq),
    }
    return orjson.dumps(parsed).decode(), parsed


def sample_envelopes(n: int, service: str = "registry") -> list[tuple[str, dict]]:
    """n volunteer registrations spread over units, with Chinese text to exercise UTF-8."""
    units = ("zjg", "ks", "tc")
    return [envelope("volunteer_registered",
                     {"volunteer_id": f"v{i}", "unit": units[i % 3], "name": f"志愿者{i}\u2028😀"},
                     seq=i, service=service, unit=units[i % 3]) for i in range(1, n + 1)]
