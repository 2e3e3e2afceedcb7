"""The transactional outbox relay.

Commands only save aggregates through an `eventsourcing` Application; its
notification log in PostgreSQL is the outbox. The relay reads the log in order,
publishes each event as a CloudEvents envelope with pipelined publisher
confirms, and records how far it got in the service's own schema. It wakes on
the recorder's LISTEN/NOTIFY channel, and survives broker and database restarts
by reconnecting and publishing again from the recorded position: delivery is
at least once and in order per publisher. A session-level advisory lock makes
sure only one relay per service publishes, however many processes run.
"""
from __future__ import annotations

import logging
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Callable

import amqp.exceptions
import kombu.exceptions
import psycopg
from psycopg import sql

from zhuqi.runtime import db  # noqa: F401  (makes psycopg cooperative before any connection)
from zhuqi.runtime import metrics
from zhuqi.runtime.envelope import PublishedEvent, build
from zhuqi.runtime.publisher import ConfirmingPublisher, PublishFailed
from zhuqi.runtime.topology import declare_all

log = logging.getLogger("zhuqi.outbox")
# Broker, network and database outages: expected now and then, retried quietly.
_TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, PublishFailed, OSError, ConnectionError,
              kombu.exceptions.KombuError, amqp.exceptions.AMQPError)

Translate = Callable[[object], "PublishedEvent | None"]


@dataclass
class RelayState:
    position: int = 0          # last notification id handled (published or internal)
    last_published: int = 0    # notification id of the last event actually published
    active: bool = False       # holds the advisory lock and publishes
    standby: bool = False      # another process's relay holds the lock; this one waits
    connected: bool = False


class OutboxRelay:
    def __init__(self, service: str, app, translate: Translate, *, amqp_uri: str, dsn: str, schema: str,
                 batch_size: int = 1000, confirm_timeout: float = 30.0, heartbeat: int = 30,
                 topics: tuple[str, ...] = ()):
        """`topics`: the stored-event topics that are published; others are never read (all when empty)."""
        self.service, self.app, self.translate = service, app, translate
        self.topics = tuple(topics)
        self.dsn, self.schema = dsn, schema
        self.batch_size, self.confirm_timeout = batch_size, confirm_timeout
        self.publisher = ConfirmingPublisher(amqp_uri, heartbeat=heartbeat)
        self.state = RelayState()
        self.stopped = threading.Event()
        self.channel_name = app.recorder.channel_name
        self._lock_key = zlib.crc32(f"zhuqi.outbox.{service}".encode())
        self._table = sql.Identifier(schema, "outbox_position")
        self._listen: psycopg.Connection | None = None

    # -- position -------------------------------------------------------------
    def ensure_table(self, conn: psycopg.Connection) -> None:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
        conn.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (service text PRIMARY KEY, position bigint NOT NULL, "
            "last_published bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"
        ).format(self._table))

    def load_position(self, conn: psycopg.Connection) -> None:
        row = conn.execute(sql.SQL("SELECT position, last_published FROM {} WHERE service = %s").format(self._table),
                           (self.service,)).fetchone()
        self.state.position, self.state.last_published = row if row else (0, 0)

    def save_position(self, conn: psycopg.Connection, position: int, last_published: int) -> None:
        conn.execute(sql.SQL(
            "INSERT INTO {} (service, position, last_published) VALUES (%s, %s, %s) "
            "ON CONFLICT (service) DO UPDATE SET position = EXCLUDED.position, "
            "last_published = EXCLUDED.last_published, updated_at = now()"
        ).format(self._table), (self.service, position, last_published))

    # -- one round ------------------------------------------------------------
    def relay_once(self, conn: psycopg.Connection) -> int:
        """Publish the next batch, wait for every confirm, then record the position."""
        # Read before selecting: the recorder's table lock makes commit order equal id
        # order, so every id up to this one is committed and visible to the select below.
        stored = self.app.recorder.max_notification_id() or 0
        notifications = self.app.recorder.select_notifications(
            start=self.state.position + 1, limit=self.batch_size, topics=self.topics)
        if len(notifications) < self.batch_size and stored > self.state.position and (
                not notifications or notifications[-1].id < stored):
            # Caught up: what lies between is internal (not of the published topics).
            end = stored
        elif not notifications:
            return 0
        else:
            end = notifications[-1].id
        last_published = self.state.last_published
        published = 0
        with self.publisher.corked():
            for notification in notifications:
                event = self.app.mapper.to_domain_event(notification)
                public = self.translate(event)
                if public is None:
                    continue  # internal event (e.g. a uniqueness index): nothing crosses the broker
                body, et = build(self.service, notification.id, public, event.timestamp,
                                 prev_sequence=last_published or None)
                self.publisher.publish(body, et.exchange, et.routing_key, message_id=str(notification.id))
                last_published = notification.id
                published += 1
        self.publisher.wait_for_confirms(self.confirm_timeout)
        self.save_position(conn, end, last_published)
        self.state.position, self.state.last_published = end, last_published
        metrics.OUTBOX_PUBLISHED.labels(self.service).inc(published)
        metrics.OUTBOX_POSITION.labels(self.service).set(self.state.position)
        return len(notifications) or 1

    def backlog(self) -> int:
        stored = self.app.recorder.max_notification_id() or 0
        backlog = max(0, stored - self.state.position)
        metrics.OUTBOX_BACKLOG.labels(self.service).set(backlog)
        return backlog

    # -- the loop -------------------------------------------------------------
    def _acquire(self) -> bool:
        got = self._listen.execute("SELECT pg_try_advisory_lock(%s)", (self._lock_key,)).fetchone()[0]
        if got:
            self._listen.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel_name)))
        return got

    def _wait_for_news(self, timeout: float) -> None:
        for _ in self._listen.notifies(timeout=timeout, stop_after=1):
            break

    def run(self, idle_wait: float = 1.0) -> None:
        backoff = 0.2
        while not self.stopped.is_set():
            try:
                self._session(idle_wait)
                backoff = 0.2
            except Exception as exc:  # noqa: BLE001 - the recorded position is the truth; retry from it
                if self.stopped.is_set():
                    break
                metrics.OUTBOX_ERRORS.labels(self.service).inc()
                context = {"service": self.service, "position": self.state.position, "error": repr(exc)}
                if isinstance(exc, _TRANSIENT):
                    log.warning("outbox relay interrupted, reconnecting", extra=context)
                else:
                    # Not the network: e.g. a stored event that breaks its own contract. It
                    # stays stored; the relay retries it until a fixed release publishes it.
                    log.error("outbox relay cannot publish the next event", extra=context, exc_info=True)
                self.stopped.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self._teardown()

    def _session(self, idle_wait: float) -> None:
        self._listen = psycopg.connect(self.dsn, autocommit=True)
        while not self._acquire():
            self.state.standby = True
            if self.stopped.wait(idle_wait):
                return
        self.state.standby, self.state.active = False, True
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            self.ensure_table(conn)
            self.load_position(conn)
            self.publisher.connect()
            declare_all(self.publisher.channel)
            self.state.connected = True
            log.info("outbox relay active", extra={"service": self.service, "position": self.state.position})
            while not self.stopped.is_set():
                if self.relay_once(conn) == 0:
                    self.backlog()
                    self._wait_for_news(idle_wait)
                    # A heartbeat is due now and then while idle.
                    self.publisher.connection.heartbeat_check()

    def _teardown(self) -> None:
        self.state.active = self.state.connected = self.state.standby = False
        self.publisher.close()
        if self._listen is not None:
            try:
                self._listen.close()
            except psycopg.Error:
                pass
            self._listen = None

    def stop(self) -> None:
        self.stopped.set()
