"""Wiring of the registry from settings: the application and its outbox relay."""
from __future__ import annotations

from services.registry.application import RegistryApplication
from eventsourcing.utils import get_topic

from services.registry.published_events import MAPPING, to_published
from zhuqi.runtime import db, secrets
from zhuqi.runtime.config import Config
from zhuqi.runtime.envelope import PublishedEvent
from zhuqi.runtime.outbox import OutboxRelay

SERVICE = "registry"


KEYS = ("master", "phone_pepper", "event_store")


def preflight(config: Config) -> None:
    """Before the service starts: refuse keys that do not match the stored data (names the key)."""
    schema = config.service(SERVICE).schema
    db.ensure_schema(config.postgres_dsn, schema)
    secrets.check_against_database(config, schema, KEYS)


def build_application(config: Config, pool_size: int | None = None) -> RegistryApplication:
    schema = config.service(SERVICE).schema
    preflight(config)
    env = db.eventsourcing_env(
        config.postgres_dsn, schema, pool_size or config.raw["postgres"]["pool_size"],
        CIPHER_KEY=secrets.key_b64(config, "event_store"),
        ZHUQI_MASTER_KEY=secrets.key_b64(config, "master"),
        ZHUQI_PHONE_PEPPER=secrets.key_b64(config, "phone_pepper"),
    )
    # Creating the tables is not safe to run twice at once (two instances starting).
    with db.advisory_lock(config.postgres_dsn, f"zhuqi.schema.{schema}"):
        return RegistryApplication(env)


def translate(domain_event) -> PublishedEvent | None:
    """The registry's published language, in the runtime's envelope terms."""
    published = to_published(domain_event)
    if published is None:
        return None
    return PublishedEvent(published.name, published.subject, published.unit, published.data, published.version)


def build_relay(config: Config, app: RegistryApplication | None = None) -> OutboxRelay:
    outbox = config.section("outbox")
    return OutboxRelay(
        SERVICE, app or build_application(config, pool_size=2), translate,
        amqp_uri=config.amqp_uri, dsn=config.postgres_dsn, schema=config.service(SERVICE).schema,
        batch_size=outbox["batch_size"], confirm_timeout=outbox["confirm_timeout"],
        heartbeat=config.raw["amqp"]["heartbeat"],
        topics=tuple(get_topic(cls) for cls in MAPPING),
    )
