"""Idempotent inbox consumers with dead-lettering.

A consumer takes messages from its durable queue in batches, and in ONE
PostgreSQL transaction records each upstream (service, notification id) as an
`eventsourcing` Tracking record and applies the new ones with the service's
handler. Only after the commit are the messages acknowledged, so a crash at any
line redelivers them and the tracking records make the redelivery a no-op.

A message that is not a valid envelope, has an unknown type or violates its
schema, or on which the handler keeps failing after bounded retries, is
published to the dead-letter queue with the reason in its headers and then
acknowledged: it is never dropped and never blocks the messages behind it.
A gap in an upstream's sequence is logged and counted, not silently skipped.
Database outages are not the message's fault: the batch waits and is retried.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import kombu
import psycopg
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg import sql

from zhuqi.runtime import db, metrics
from zhuqi.runtime.envelope import Envelope, EnvelopeError, parse
from zhuqi.runtime.logs import correlation_id, event_id
from zhuqi.runtime.publisher import ConfirmingPublisher
from zhuqi.runtime.topology import DLX, ConsumerQueue, declare_consumer_queue

log = logging.getLogger("zhuqi.inbox")

Apply = Callable[[psycopg.Connection, list[Envelope]], None]
_INFRASTRUCTURE = (psycopg.OperationalError, psycopg.InterfaceError)


@dataclass
class InboxState:
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    gaps: list[dict] = field(default_factory=list)
    last_seen: dict[str, int] = field(default_factory=dict)
    connected: bool = False


def tracking_table_name(consumer: str) -> str:
    return f"{consumer}_tracking"


def ensure_tracking_table(dsn: str, schema: str, consumer: str, grant_to: str | None = None) -> None:
    """Create the eventsourcing tracking table (multi-row: one row per upstream event)."""
    db.ensure_schema(dsn, schema)
    parts = db.eventsourcing_env(dsn, schema)
    datastore = PostgresDatastore(
        dbname=parts["POSTGRES_DBNAME"], host=parts["POSTGRES_HOST"], port=parts["POSTGRES_PORT"],
        user=parts["POSTGRES_USER"], password=parts["POSTGRES_PASSWORD"], schema=schema,
        single_row_tracking=False,
    )
    try:
        PostgresTrackingRecorder(datastore, tracking_table_name=tracking_table_name(consumer)).create_table()
    finally:
        datastore.close()
    if grant_to:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(
                sql.Identifier(schema, tracking_table_name(consumer)), sql.Identifier(grant_to)))


class InboxConsumer:
    def __init__(self, consumer: str, queue: ConsumerQueue, apply: Apply, *, amqp_uri: str, dsn: str, schema: str,
                 batch_size: int = 500, max_attempts: int = 3, prefetch: int = 1000, heartbeat: int = 30):
        self.consumer, self.queue, self.apply = consumer, queue, apply
        self.amqp_uri, self.dsn, self.schema = amqp_uri, dsn, schema
        self.batch_size, self.max_attempts, self.prefetch, self.heartbeat = batch_size, max_attempts, prefetch, heartbeat
        self.state = InboxState()
        self.stopped = threading.Event()
        self._table = sql.Identifier(schema, tracking_table_name(consumer))
        self._buffer: list[kombu.Message] = []
        self._db: psycopg.Connection | None = None
        self._dead_letters = ConfirmingPublisher(amqp_uri, heartbeat=heartbeat)

    # -- tracking -------------------------------------------------------------
    def _load_positions(self) -> None:
        rows = self._db.execute(sql.SQL(
            "SELECT application_name, max(notification_id) FROM {} GROUP BY application_name").format(self._table)).fetchall()
        self.state.last_seen = {name: int(pos) for name, pos in rows if not name.startswith("__")}

    def _record_tracking(self, envelopes: list[Envelope]) -> set[tuple[str, int]]:
        """Insert tracking rows; return the (service, sequence) pairs that were new."""
        names = [e.service for e in envelopes]
        ids = [e.sequence for e in envelopes]
        rows = self._db.execute(sql.SQL(
            "INSERT INTO {} (application_name, notification_id) "
            "SELECT * FROM unnest(%s::text[], %s::bigint[]) ON CONFLICT DO NOTHING "
            "RETURNING application_name, notification_id").format(self._table), (names, ids)).fetchall()
        return {(name, int(seq)) for name, seq in rows}

    def _note_order(self, envelope: Envelope) -> None:
        upstream = envelope.service
        last = self.state.last_seen.get(upstream)
        prev = envelope.prev_sequence
        if last is not None and prev is not None and prev > last:
            gap = {"upstream": upstream, "after": last, "missing_up_to": prev, "received": envelope.sequence}
            self.state.gaps.append(gap)
            metrics.INBOX_GAPS.labels(self.consumer, upstream).inc()
            log.warning("gap in upstream sequence", extra={"consumer": self.consumer, **gap})
        if last is None or envelope.sequence > last:
            self.state.last_seen[upstream] = envelope.sequence

    # -- applying -------------------------------------------------------------
    def _apply_batch(self, envelopes: list[Envelope]) -> list[Envelope]:
        """Apply in one transaction; return the envelopes that were new."""
        unique: dict[tuple[str, int], Envelope] = {}
        for e in envelopes:
            unique.setdefault((e.service, e.sequence), e)
        with self._db.transaction():
            new = self._record_tracking(list(unique.values()))
            fresh = [e for key, e in unique.items() if key in new]
            if fresh:
                self.apply(self._db, fresh)
        return fresh

    def _apply_with_retries(self, envelope: Envelope) -> tuple[bool, str | None]:
        """One message alone; (applied-or-duplicate, failure reason)."""
        reason = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                fresh = self._apply_batch([envelope])
                self._count(fresh, 1)
                return True, None
            except _INFRASTRUCTURE:
                raise
            except Exception as exc:  # noqa: BLE001 - any handler failure is the message's problem here
                reason = f"handler failed after {attempt} attempt(s): {type(exc).__name__}: {exc}"
                time.sleep(0.05 * attempt)
        return False, reason

    def _count(self, fresh: list[Envelope], taken: int) -> None:
        for e in fresh:
            self._note_order(e)
        for upstream in {e.service for e in fresh}:
            metrics.INBOX_POSITION.labels(self.consumer, upstream).set(self.state.last_seen[upstream])
        self.state.applied += len(fresh)
        self.state.duplicates += taken - len(fresh)
        metrics.ENTRYPOINT_CALLS.labels(self.consumer, "event", "inbox", "ok").inc(taken)
        metrics.INBOX_PROCESSED.labels(self.consumer, "applied").inc(len(fresh))
        if taken > len(fresh):
            metrics.INBOX_PROCESSED.labels(self.consumer, "duplicate").inc(taken - len(fresh))

    def _dead_letter(self, message: kombu.Message, reason: str) -> None:
        props = message.properties or {}
        delivery = message.delivery_info or {}
        headers = {
            "x-zhuqi-reason": reason[:2000],
            "x-zhuqi-queue": self.queue.name,
            "x-zhuqi-consumer": self.consumer,
            "x-zhuqi-original-exchange": delivery.get("exchange", ""),
            "x-zhuqi-original-routing-key": delivery.get("routing_key", ""),
            "x-zhuqi-dead-lettered-at": datetime.now(timezone.utc).isoformat(),
        }
        if not self._dead_letters.connected:
            self._dead_letters.connect()
        self._dead_letters.publish(message.body, DLX.name, self.queue.name, message_id=props.get("message_id"),
                                   headers=headers, content_type=message.content_type or "application/octet-stream")
        self._dead_letters.wait_for_confirms(30)
        self.state.dead_lettered += 1
        metrics.ENTRYPOINT_CALLS.labels(self.consumer, "event", "inbox", "error").inc()
        metrics.DEAD_LETTERED.labels(self.consumer, reason.split(":")[0]).inc()
        metrics.INBOX_PROCESSED.labels(self.consumer, "dead_lettered").inc()
        log.warning("message dead-lettered", extra={"consumer": self.consumer, "reason": reason,
                                                     "message_id": props.get("message_id")})

    def settle(self, messages: list[kombu.Message]) -> None:
        """Apply or dead-letter every message of a batch (not yet acknowledged)."""
        started, outcome = time.perf_counter(), "error"
        try:
            self._settle(messages)
            outcome = "ok"
        finally:
            metrics.INBOX_BATCH_LATENCY.labels(self.consumer, outcome).observe(time.perf_counter() - started)

    def _settle(self, messages: list[kombu.Message]) -> None:
        good: list[tuple[kombu.Message, Envelope]] = []
        for message in messages:
            try:
                good.append((message, parse(message.body)))
            except EnvelopeError as exc:
                self._dead_letter(message, exc.reason)
        if good:
            token = correlation_id.set(good[-1][1].correlation_id)
            try:
                self._apply_good(good)
            finally:
                correlation_id.reset(token)

    @staticmethod
    def acknowledge(messages: list[kombu.Message]) -> None:
        # Everything up to the last tag is settled (applied, duplicate or dead-lettered).
        messages[-1].channel.basic_ack(messages[-1].delivery_tag, multiple=True)

    def flush(self) -> None:
        """Settle and acknowledge what is buffered, in the calling thread."""
        messages, self._buffer = self._buffer, []
        if messages:
            self.settle(messages)
            self.acknowledge(messages)

    def _apply_good(self, good: list[tuple[kombu.Message, Envelope]]) -> None:
        while True:
            try:
                fresh = self._apply_batch([e for _, e in good])
                self._count(fresh, len(good))
                return
            except _INFRASTRUCTURE:
                self._wait_for_database()
            except Exception:  # noqa: BLE001 - isolate the poison message, one by one
                break
        for message, envelope in good:
            token = event_id.set(envelope.id)
            try:
                while True:
                    try:
                        ok, reason = self._apply_with_retries(envelope)
                        break
                    except _INFRASTRUCTURE:
                        self._wait_for_database()
                if not ok:
                    self._dead_letter(message, reason)
            finally:
                event_id.reset(token)

    def _wait_for_database(self) -> None:
        delay = 0.2
        while not self.stopped.is_set():
            try:
                if self._db is not None:
                    self._db.close()
                self._db = psycopg.connect(self.dsn, autocommit=True)
                return
            except psycopg.Error:
                log.warning("database unavailable, inbox waiting", extra={"consumer": self.consumer})
                self.stopped.wait(delay)
                delay = min(delay * 2, 5.0)
        raise ConnectionError("stopped while waiting for the database")

    # -- the loop -------------------------------------------------------------
    def run(self) -> None:
        backoff = 0.2
        while not self.stopped.is_set():
            try:
                self._session()
                backoff = 0.2
            except Exception as exc:  # noqa: BLE001 - reconnect on anything; unacked messages come back
                if self.stopped.is_set():
                    break
                log.warning("inbox interrupted, reconnecting", extra={"consumer": self.consumer, "error": repr(exc)})
                self.stopped.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self.state.connected = False
                self._buffer = []
                self._dead_letters.close()

    def _session(self) -> None:
        """Consume until stopped. One batch is settled in a worker thread while the
        next is read from the broker, so broker reads and database work overlap;
        acknowledgements stay in this thread (a channel is not thread-safe) and in
        order, and only ever after the batch's commit."""
        if self._db is None or self._db.closed:
            self._db = psycopg.connect(self.dsn, autocommit=True)
        self._load_positions()
        with kombu.Connection(self.amqp_uri, heartbeat=self.heartbeat) as conn, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"inbox-{self.consumer}") as worker:
            channel = conn.channel()
            declare_consumer_queue(channel, self.queue)
            channel.basic_qos(0, self.prefetch, False)
            consumer = kombu.Consumer(channel, queues=[self.queue.kombu_queue()],
                                      on_message=lambda m: self._buffer.append(m), auto_declare=False, no_ack=False)
            consumer.consume()
            self.state.connected = True
            in_flight: tuple[Future, list[kombu.Message]] | None = None
            last_heartbeat = time.monotonic()
            while not self.stopped.is_set():
                idle = False
                try:
                    conn.drain_events(timeout=0.005 if (self._buffer or in_flight) else 0.5)
                except (socket.timeout, TimeoutError):
                    idle = True
                if in_flight is not None and (in_flight[0].done() or len(self._buffer) >= self.batch_size):
                    in_flight[0].result()  # re-raises: the session restarts, unacked messages come back
                    self.acknowledge(in_flight[1])
                    in_flight = None
                if in_flight is None and self._buffer and (idle or len(self._buffer) >= self.batch_size):
                    batch, self._buffer = self._buffer, []
                    in_flight = (worker.submit(self.settle, batch), batch)
                if time.monotonic() - last_heartbeat > 5:
                    conn.heartbeat_check()
                    last_heartbeat = time.monotonic()
            if in_flight is not None:
                in_flight[0].result()
                self.acknowledge(in_flight[1])
            self.flush()

    def stop(self) -> None:
        self.stopped.set()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
