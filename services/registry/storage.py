"""PostgreSQL storage beyond the event store: the key store and the directory.

Why a custom recorder: the directory read model and the key store must never
disagree with the events. ``RegistryRecorder`` extends eventsourcing's
``PostgresApplicationRecorder`` through its ``_insert_events`` hook (the same
hook the library's process recorder uses for tracking records), so directory
rows, new wrapped keys and key deletions are written in the *same transaction*
as the events. If the events are refused (e.g. a duplicate reservation raises
IntegrityError) nothing else is written either, and a committed event is
always visible in the directory. The directory only holds projections of
aggregate state (``views``), so it is derivable from the events.

Tables (in the application's schema):

* ``personal_data_keys(volunteer_id, wrapped_key, master_key_id, created_at)``
* ``directory(position, id, kind, unit, status, natural_key, summary jsonb, sealed)``
  ``summary`` holds non-personal fields only; ``sealed`` is the same
  ciphertext as in the event, readable only while the key row exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence
from uuid import UUID

import orjson
from eventsourcing.persistence import InterfaceError, OperationalError, ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

KEY_TABLE = "personal_data_keys"
DIRECTORY_TABLE = "directory"
# From this many rows on, a write goes through binary COPY instead of one
# INSERT with array parameters. psycopg dumps big text arrays in Python (with
# a regex escape per element), which cost several seconds for a 10,000-row
# import; binary COPY sends each value as it is. Below the threshold (single
# commands: a few rows) the one-statement INSERT is the cheaper round trip.
COPY_THRESHOLD = 64


def _summary_json(summary: dict[str, Any]) -> str:
    # orjson writes UTF-8 directly (no \u escapes) and is several times faster
    # than json.dumps; the column is jsonb, so formatting does not survive anyway.
    return orjson.dumps(summary).decode()


@dataclass(frozen=True)
class DirectoryRow:
    id: UUID
    kind: str  # "volunteer" | "team" | "enterprise"
    unit: str
    status: str
    summary: dict[str, Any]
    # None keeps the stored natural key (later commands do not know it). A row
    # whose status is 'withdrawn' always forgets it: the phone key is released.
    natural_key: UUID | None = None
    sealed: str | None = None


@dataclass
class SideEffects:
    """What to write next to the events in one transaction."""

    directory: list[DirectoryRow] = field(default_factory=list)
    new_keys: list[tuple[UUID, bytes, str]] = field(default_factory=list)
    shred_keys: list[UUID] = field(default_factory=list)


def _ddl(schema: str) -> list[SQL | Any]:
    s = Identifier(schema)
    return [
        SQL("CREATE TABLE IF NOT EXISTS {}.{} ("
            " volunteer_id uuid PRIMARY KEY, wrapped_key bytea NOT NULL,"
            " master_key_id text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
            ).format(s, Identifier(KEY_TABLE)),
        SQL("CREATE TABLE IF NOT EXISTS {}.{} ("
            " position bigserial UNIQUE, id uuid PRIMARY KEY, kind text NOT NULL,"
            " unit text NOT NULL, status text NOT NULL, natural_key uuid,"
            " summary jsonb NOT NULL, sealed text)").format(s, Identifier(DIRECTORY_TABLE)),
        SQL("CREATE INDEX IF NOT EXISTS directory_kind_unit ON {}.{} (kind, unit, position)"
            ).format(s, Identifier(DIRECTORY_TABLE)),
        SQL("CREATE INDEX IF NOT EXISTS directory_kind_status ON {}.{} (kind, status, position)"
            ).format(s, Identifier(DIRECTORY_TABLE)),
        SQL("CREATE INDEX IF NOT EXISTS directory_natural_key ON {}.{} (natural_key)"
            ).format(s, Identifier(DIRECTORY_TABLE)),
        SQL("CREATE INDEX IF NOT EXISTS directory_expertise ON {}.{} "
            "USING gin ((summary->'expertise'))").format(s, Identifier(DIRECTORY_TABLE)),
    ]


class RegistryRecorder(PostgresApplicationRecorder):
    """Application recorder that also maintains the directory and the key store."""

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        # The library runs these in create_table(); ours go after its own.
        self.sql_create_statements.extend(_ddl(self.datastore.schema))
        s = Identifier(self.datastore.schema)
        self._insert_keys = SQL(
            "INSERT INTO {}.{} (volunteer_id, wrapped_key, master_key_id) "
            "SELECT * FROM unnest(%s::uuid[], %s::bytea[], %s::text[])"
        ).format(s, Identifier(KEY_TABLE))
        self._delete_keys = SQL("DELETE FROM {}.{} WHERE volunteer_id = ANY(%s)").format(
            s, Identifier(KEY_TABLE))
        directory = SQL("{}.{}").format(s, Identifier(DIRECTORY_TABLE))
        upsert = SQL(
            " ON CONFLICT (id) DO UPDATE SET unit = excluded.unit, status = excluded.status,"
            " natural_key = CASE WHEN excluded.status = 'withdrawn' THEN NULL"
            " ELSE COALESCE(excluded.natural_key, d.natural_key) END,"
            " summary = excluded.summary, sealed = excluded.sealed")
        self._upsert_directory = SQL(
            "INSERT INTO {} AS d (id, kind, unit, status, natural_key, summary, sealed) "
            "SELECT i, k, u, st, nk, sm::jsonb, se FROM unnest("
            "%s::uuid[], %s::text[], %s::text[], %s::text[], %s::uuid[], %s::text[], %s::text[])"
            " AS t(i, k, u, st, nk, sm, se){}").format(directory, upsert)
        events = Identifier(self.datastore.schema, self.events_table_name)
        self._copy_events = SQL(
            "COPY {} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
        ).format(events)
        self._max_notification_id_locked = SQL(
            "SELECT COALESCE(MAX(notification_id), 0) AS m FROM {}").format(events)
        self._ids_after = SQL("SELECT notification_id FROM {} WHERE notification_id > %s "
                              "ORDER BY notification_id").format(events)
        self._copy_keys = SQL(
            "COPY {}.{} (volunteer_id, wrapped_key, master_key_id) FROM STDIN (FORMAT BINARY)"
        ).format(s, Identifier(KEY_TABLE))
        # ON COMMIT DROP: the staging table never outlives the transaction, so a
        # pooled connection carries no state between commands.
        self._create_stage = SQL(
            "CREATE TEMP TABLE directory_stage (n int, id uuid, kind text, unit text,"
            " status text, natural_key uuid, summary text, sealed text) ON COMMIT DROP")
        self._copy_stage = SQL("COPY directory_stage FROM STDIN (FORMAT BINARY)")
        self._upsert_from_stage = SQL(
            "INSERT INTO {} AS d (id, kind, unit, status, natural_key, summary, sealed) "
            "SELECT id, kind, unit, status, natural_key, summary::jsonb, sealed"
            " FROM directory_stage ORDER BY n{}").format(directory, upsert)

    def create_table(self) -> None:
        # Tables live in a dedicated schema that may not exist yet (tests use
        # a fresh schema per module); CREATE SCHEMA is idempotent.
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                Identifier(self.datastore.schema)))
        super().create_table()

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        # Same statements as the library, but without psycopg pipeline mode:
        # with bulk imports (tens of thousands of events in one statement) the
        # pipeline stalled indefinitely on this setup, and the pipeline saves
        # nothing here because every statement is a single large round trip.
        # Retrying is safe: the whole transaction is rolled back on failure.
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return None
            if len(stored_events) >= COPY_THRESHOLD:
                return self._copy_stored_events(curs, stored_events)
            self._insert_stored_events(curs, stored_events, **kwargs)
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

    def _copy_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Bulk path of ``_insert_stored_events``: same lock, same NOTIFY, same table.

        COPY cannot return the generated notification ids, but under the
        EXCLUSIVE table lock no other transaction can insert, so the ids above
        the maximum read after locking are exactly this COPY's rows, in order.
        """
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(self._max_notification_id_locked)
        before = curs.fetchone()["m"]
        with curs.copy(self._copy_events) as copy:
            copy.set_types([self.datastore.originator_id_type, "int8", "text", "bytea"])
            write = copy.write_row
            for e in stored_events:
                write((e.originator_id, e.originator_version, e.topic, e.state))
        curs.execute(self._ids_after, (before,))
        ids = [r["notification_id"] for r in curs.fetchall()]
        if len(ids) != len(stored_events):
            raise ProgrammingError(f"Couldn't get all notification IDs (got {len(ids)}, "
                                   f"expected {len(stored_events)})")
        return ids

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent],
                       side_effects: SideEffects | None = None, **kwargs: Any) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        if side_effects is None:
            return
        if side_effects.new_keys:
            if len(side_effects.new_keys) >= COPY_THRESHOLD:
                # Every key row is new (fresh volunteer ids): a plain COPY has the
                # same effect as the INSERT, a duplicate id fails it the same way.
                with curs.copy(self._copy_keys) as copy:
                    copy.set_types(["uuid", "bytea", "text"])
                    for row in side_effects.new_keys:
                        copy.write_row(row)
            else:
                ids, keys, kids = zip(*side_effects.new_keys, strict=True)
                curs.execute(self._insert_keys, (list(ids), list(keys), list(kids)))
        if side_effects.shred_keys:
            curs.execute(self._delete_keys, (list(side_effects.shred_keys),))
        rows = side_effects.directory
        if len(rows) >= COPY_THRESHOLD:
            self._copy_directory(curs, rows)
        elif rows:
            curs.execute(self._upsert_directory, (
                [r.id for r in rows], [r.kind for r in rows], [r.unit for r in rows],
                [r.status for r in rows], [r.natural_key for r in rows],
                [_summary_json(r.summary) for r in rows],
                [r.sealed for r in rows],
            ))

    def _copy_directory(self, curs: Any, rows: Sequence[DirectoryRow]) -> None:
        """Bulk path of the directory upsert: COPY into a transaction-local
        staging table, then the same upsert from it (rows may already exist,
        e.g. a released reservation taken again), in the given order so that
        ``position`` follows the command's order as with the array insert."""
        curs.execute(self._create_stage)
        with curs.copy(self._copy_stage) as copy:
            copy.set_types(["int4", "uuid", "text", "text", "text", "uuid", "text", "text"])
            write = copy.write_row
            for n, r in enumerate(rows):
                write((n, r.id, r.kind, r.unit, r.status, r.natural_key,
                       _summary_json(r.summary), r.sealed))
        curs.execute(self._upsert_from_stage)

    # Queries -----------------------------------------------------------------

    def load_wrapped_keys(self, ids: Iterable[UUID]) -> dict[UUID, bytes]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT volunteer_id, wrapped_key FROM {}.{} "
                             "WHERE volunteer_id = ANY(%s)").format(
                Identifier(self.datastore.schema), Identifier(KEY_TABLE)), (list(ids),))
            return {r["volunteer_id"]: bytes(r["wrapped_key"]) for r in curs.fetchall()}

    def directory_by_natural_keys(self, kind: str, keys: Iterable[UUID]) -> dict[UUID, dict[str, Any]]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT id, status, natural_key FROM {}.{} "
                             "WHERE kind = %s AND natural_key = ANY(%s)").format(
                Identifier(self.datastore.schema), Identifier(DIRECTORY_TABLE)),
                (kind, list(keys)))
            return {r["natural_key"]: r for r in curs.fetchall()}

    def directory_statuses(self, kind: str, ids: Iterable[UUID]) -> dict[UUID, str]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT id, status FROM {}.{} WHERE kind = %s AND id = ANY(%s)"
                             ).format(Identifier(self.datastore.schema),
                                      Identifier(DIRECTORY_TABLE)), (kind, list(ids)))
            return {r["id"]: r["status"] for r in curs.fetchall()}

    def directory_page(self, kind: str, *, unit: str | None, status: str | None,
                       tag: str | None, after: int, limit: int) -> list[dict[str, Any]]:
        """Keyset pagination on ``position`` (stable under concurrent inserts)."""
        clauses = [SQL("kind = %s"), SQL("position > %s")]
        params: list[Any] = [kind, after]
        if unit is not None:
            clauses.append(SQL("unit = %s"))
            params.append(unit)
        if status is not None:
            clauses.append(SQL("status = %s"))
            params.append(status)
        if tag is not None:
            clauses.append(SQL("summary->'expertise' ? %s"))
            params.append(tag)
        query = SQL("SELECT position, id, kind, unit, status, summary, sealed FROM {}.{} "
                    "WHERE {} ORDER BY position LIMIT %s").format(
            Identifier(self.datastore.schema), Identifier(DIRECTORY_TABLE),
            SQL(" AND ").join(clauses))
        params.append(limit)
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(query, params)
            return list(curs.fetchall())

    def clear_directory(self, curs: Any) -> None:
        curs.execute(SQL("TRUNCATE {}.{}").format(
            Identifier(self.datastore.schema), Identifier(DIRECTORY_TABLE)))
