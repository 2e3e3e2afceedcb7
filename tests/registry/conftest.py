"""Fixtures: a real PostgreSQL schema per test module, dropped afterwards."""

from __future__ import annotations

import base64
import os
import uuid

import psycopg
import pytest

from services.registry.application import RegistryApplication
from services.registry.domain.volunteer import VolunteerRegistration

DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def _secret() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(scope="module")
def schema(request: pytest.FixtureRequest):
    name = f"t_registry_{request.module.__name__.rsplit('.', 1)[-1]}_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="module")
def app(schema: str):
    application = RegistryApplication(env={
        "PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": "test",
        "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432", "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "", "POSTGRES_SCHEMA": schema,
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher", "CIPHER_KEY": _secret(),
        "ZHUQI_MASTER_KEY": _secret(), "ZHUQI_PHONE_PEPPER": _secret(),
    })
    yield application
    application.close()


_phone_counter = iter(range(10_000_000))


def fresh_phone() -> str:
    return f"137{next(_phone_counter) + os.getpid() % 1000 * 10000:08d}"


def registration(**overrides) -> VolunteerRegistration:
    values = dict(unit="zjg", name="张明", gender="男", employer="苏州某精密机械有限公司",
                  post="车间主任", political_status="中共党员", education="大专",
                  skill_grade="高级技师", honours=[{"kind": "model_worker", "level": "city"}],
                  phone=fresh_phone(), expertise=["welding", "集成电路"], employer_industry="C34")
    values.update(overrides)
    return VolunteerRegistration(**values)
