"""Recompute figures as of a moment from the ledger alone (PostgreSQL or an export).

Only entries whose event `time` is at or before `as_of` count.  A bare date
means the end of that day in China Standard Time (UTC+8, the campaign's
clock, no daylight saving); a naive datetime is read in the same zone.
Events are folded in ledger (seq) order, which is the order they were
published in per aggregate.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from datetime import date, datetime, time as dtime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import orjson
import psycopg
from psycopg import sql

from zhuqi.projections import registry

from .store import DEFAULT_SCHEMA
from .verify import FETCH_BATCH, fetch_ahead, gc_paused, open_export

CAMPAIGN_TZ = timezone(timedelta(hours=8), "CST")


def as_of_instant(as_of: date | datetime) -> datetime:
    """The inclusive upper bound as an aware datetime."""
    if isinstance(as_of, datetime):
        return as_of if as_of.tzinfo else as_of.replace(tzinfo=CAMPAIGN_TZ)
    return datetime.combine(as_of, dtime.max, CAMPAIGN_TZ)


def _pg_events(conn: psycopg.Connection, schema: str) -> Iterator[tuple[str, str, str]]:
    query = sql.SQL("SELECT type, time, envelope FROM {s}.entries ORDER BY seq").format(s=sql.Identifier(schema))
    # Binary results: no text parsing of the columns on the client (as in verify.pg_rows).
    with conn.transaction(), conn.cursor(name="zhuqi_ledger_replay", binary=True) as cur:
        cur.itersize = FETCH_BATCH
        cur.execute(query)
        # closing(): stop the fetching thread before the cursor closes, also when stopped early.
        with closing(fetch_ahead(lambda: cur.fetchmany(FETCH_BATCH))) as batches:
            for batch in batches:
                yield from batch


def _sqlite_events(path: str | Path) -> Iterator[tuple[str, str, str]]:
    with closing(open_export(path)) as db:
        # SQLite steps lazily: iterating the cursor keeps memory constant without per-batch lists.
        yield from db.execute("SELECT type, time, envelope FROM entries ORDER BY seq")


def replay_events(
    events: Iterable[tuple[str, str, str]], as_of: date | datetime,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Fold (type, time, envelope) rows into figures; see `replay`."""
    with gc_paused():  # the fold keeps every aggregate alive; collections would re-walk them all
        return _replay_events(events, as_of, progress)


def _replay_events(events: Iterable[tuple[str, str, str]], as_of: date | datetime,
                   progress: Callable[[int], None] | None) -> dict[str, Any]:
    limit = as_of_instant(as_of)
    state = registry.new_state()
    handlers, apply, prefix = registry.HANDLERS, registry.apply, registry.PREFIX
    loads, parse_time = orjson.loads, datetime.fromisoformat
    other: Counter = Counter()
    read = later = 0
    for type_, time, envelope in events:
        read += 1
        if progress is not None and read % 10_000 == 0:
            progress(10_000)
        # Decide on the cheap `type` column before paying for time or JSON parsing.
        if type_ not in handlers:
            if type_.startswith(prefix):
                apply(state, type_, {}, time)  # counted as an unknown registry type
            else:
                other[type_] += 1
            continue
        instant = parse_time(time)
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=CAMPAIGN_TZ)
        if instant > limit:
            later += 1
            continue
        apply(state, type_, loads(envelope)["data"], time)
    if progress is not None:
        progress(read % 10_000)
    return {
        "as_of": limit.isoformat(),
        "entries_read": read,
        "registry_events_after_as_of": later,
        "registry": registry.figures(state),
        "not_projected": dict(sorted(other.items())),
    }


def replay(
    source: psycopg.Connection | str | Path, as_of: date | datetime, schema: str = DEFAULT_SCHEMA,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Figures as of `as_of`, from a PostgreSQL connection or the path of an export file."""
    if isinstance(source, (str, Path)):
        return replay_events(_sqlite_events(source), as_of, progress)
    with closing(_pg_events(source, schema)) as events:
        return replay_events(events, as_of, progress)
