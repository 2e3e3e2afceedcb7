"""Independent verification of a whole ledger, from PostgreSQL or from an export.

Nothing stored is trusted: canonical bytes are recomputed from the columns, the
chain is re-linked with the recomputed hashes, the Merkle tree is rebuilt from
recomputed leaf hashes, and every checkpoint's signature and root are checked
against that rebuilt tree.  Because the chain hash and the leaf hash are
derived from the very same bytes, a ledger cannot show one history through
its chain and another through its tree (the immudb "linear-fake" split view).

The first failure stops the run and is reported in plain words.

Large ledgers are checked by two processes: this one takes the entries up to
the middle `seq`, a helper (`python -m services.ledger.verify`) takes the rest
from the same database snapshot or export file, starting from what its first
row claims (its `seq` and `prev`).  The helper reports the state it ended in;
it is adopted only if its starting claims equal what this process computed
for the first half, no (source, source_sequence) of the second half occurs in
the first, and every checkpoint root in the second half matches the joined
tree.  Otherwise, or if the helper failed or died, this process checks the
second half itself, continuing from its own state, so the verdict (and the
first failure it names) is always that of one sequential pass.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import os
import pickle
import queue
import select
import sqlite3
import struct
import subprocess
import sys
import threading
from bisect import bisect_left
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import orjson
import psycopg
from psycopg import sql

from .domain import merkle
from .domain.checkpoint import (
    DEFAULT_ORIGIN, Checkpoint, NoteError, Verifier, open_checkpoint, parse_verifier_key,
)
from .domain.entry import (
    GENESIS_PREV, SAFE_INT_MAX, EnvelopeError, canonical_bytes, canonical_dict_bytes, columns_disagreement,
    service_of_source,
)
from .store import BUNDLE_FORMAT, DEFAULT_SCHEMA, ENTRY_COLUMNS, StoredCheckpoint

Row = tuple  # (seq, source, source_sequence, type, subject, time, envelope, prev, entry_hash, leaf_hash)
FETCH_BATCH = 2_000
"""Rows per round trip of a server-side cursor (and per SQLite insert batch of an export).

Small enough to stay in the CPU caches and keep few rows alive at once; at
20,000 rows per fetch the same scan was 30% slower."""
PARALLEL_MIN_ENTRIES = 150_000
"""Below this many entries a helper process costs more (about 0.3 s to start) than it saves."""
PROGRESS_EVERY = 10_000


@dataclass(frozen=True)
class Failure:
    """The first thing found wrong.  `seq` for entries, `checkpoint_id` for checkpoints."""

    check: str
    message: str
    seq: int | None = None
    checkpoint_id: int | None = None


@dataclass
class Verdict:
    ok: bool
    entries_checked: int = 0
    checkpoints_checked: int = 0
    failure: Failure | None = None
    key_source: str = "pinned"
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = (f"ledger OK: {self.entries_checked} entries and {self.checkpoints_checked} checkpoints verified"
                if self.ok else f"ledger FAILED verification: {self.failure.message}")
        return "\n".join([head, *self.notes])

    def to_dict(self) -> dict[str, Any]:
        f = self.failure
        return {
            "ok": self.ok,
            "entries_checked": self.entries_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "first_bad": None if f is None else {
                "seq": f.seq, "checkpoint_id": f.checkpoint_id, "check": f.check, "message": f.message},
            "key_source": self.key_source,
            "notes": self.notes,
        }


class _Stop(Exception):
    def __init__(self, failure: Failure) -> None:
        self.failure = failure


def _entry_failure(seq: int, check: str, message: str) -> _Stop:
    return _Stop(Failure(check, f"entry {seq}: {message}", seq=seq))


def _checkpoint_failure(cp: StoredCheckpoint, check: str, message: str) -> _Stop:
    return _Stop(Failure(check, f"checkpoint {cp.id} (size {cp.tree_size}): {message}", checkpoint_id=cp.id))


# ---------------------------------------------------------------- sources of rows

def _entries_query(schema: str, after: int | None = None, upto: int | None = None) -> tuple[sql.Composed, list[int]]:
    """SELECT of the entry columns in seq order, optionally only seq in (after, upto]."""
    where, params = [], []
    if after is not None:
        where.append(sql.SQL("seq > %s"))
        params.append(after)
    if upto is not None:
        where.append(sql.SQL("seq <= %s"))
        params.append(upto)
    query = sql.SQL("SELECT {cols} FROM {s}.entries {where} ORDER BY seq").format(
        cols=sql.SQL(", ").join(map(sql.Identifier, ENTRY_COLUMNS)), s=sql.Identifier(schema),
        where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""))
    return query, params


def _pg_stream(conn: psycopg.Connection, query: sql.Composed, params: Sequence[Any], name: str) -> Iterator[Row]:
    """Rows of `query` through a server-side cursor, inside the caller's transaction.

    Binary results: integers and bytea arrive without text parsing, which
    halves the client's cost per row.
    """
    with conn.cursor(name=name, binary=True) as cur:
        cur.itersize = FETCH_BATCH
        cur.execute(query, params)
        # closing(): stop the fetching thread before the cursor closes, also when stopped early.
        with closing(fetch_ahead(lambda: cur.fetchmany(FETCH_BATCH))) as batches:
            for batch in batches:
                yield from batch


def _cooperative() -> bool:
    """True in an eventlet-patched (service) process, where threads and processes are green."""
    patcher = sys.modules.get("eventlet.patcher")
    return patcher is not None and patcher.is_monkey_patched("thread")


def fetch_ahead(fetch: Callable[[], list]) -> Iterator[list]:
    """Yield `fetch()` results up to the first empty one, fetching the next batch meanwhile.

    While this thread checks a batch, a second one waits for the server to
    produce the next (psycopg releases the GIL while it waits), so the server's
    time per row is hidden instead of added: about a fifth faster end to end.
    In an eventlet-patched process threads are green and gain nothing, so
    there the batches are fetched in turn.
    """
    if _cooperative():
        while batch := fetch():
            yield batch
        return
    results: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def work() -> None:
        try:
            while not stop.is_set():
                batch = fetch()
                results.put(batch)
                if not batch:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            results.put(exc)

    worker = threading.Thread(target=work, name="zhuqi-ledger-fetch", daemon=True)
    worker.start()
    try:
        while True:
            item = results.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                return
            yield item
    finally:
        # Stopped early (a failure was found) or done: the worker must be out of the cursor
        # before the caller closes it.  Drain so that a put() blocked on a full queue returns.
        stop.set()
        while worker.is_alive():
            try:
                results.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


def pg_rows(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> Iterator[Row]:
    """Stream entries in seq order through a server-side cursor (constant memory)."""
    query, params = _entries_query(schema)
    with conn.transaction():
        yield from _pg_stream(conn, query, params, "zhuqi_ledger_verify")


def pg_checkpoints(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> list[StoredCheckpoint]:
    from .store import checkpoints
    return checkpoints(conn, schema)


def pg_entry_count(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> int:
    return conn.execute(sql.SQL("SELECT count(*) FROM {s}.entries").format(s=sql.Identifier(schema))).fetchone()[0]


def _sqlite_select(after: int | None = None, upto: int | None = None) -> tuple[str, list[int]]:
    where, params = [], []
    if after is not None:
        where.append("seq > ?")
        params.append(after)
    if upto is not None:
        where.append("seq <= ?")
        params.append(upto)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries{clause} ORDER BY seq", params


def sqlite_rows(db: sqlite3.Connection, after: int | None = None, upto: int | None = None) -> Iterator[Row]:
    """Entries in seq order (optionally only seq in (after, upto]); SQLite steps lazily, memory stays constant."""
    # Iterating the cursor directly: fetchmany() builds a list per batch, a third slower here.
    yield from db.execute(*_sqlite_select(after, upto))


def sqlite_checkpoints(db: sqlite3.Connection) -> list[StoredCheckpoint]:
    rows = db.execute("SELECT id, tree_size, root, note, verifier_key, created_at FROM checkpoints ORDER BY id")
    return [StoredCheckpoint(int(r[0]), int(r[1]), bytes(r[2]), r[3], r[4], r[5]) for r in rows]


def sqlite_meta(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT key, value FROM meta"))


def open_export(path: str | Path) -> sqlite3.Connection:
    """Open an export read-only (an auditor's copy must not be modified by checking it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"export file {path} does not exist")
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


# ---------------------------------------------------------------- the check itself

def _resolve_key(pinned: Verifier | str | None, stored_keys: Iterable[str], verdict: Verdict) -> Verifier | None:
    if isinstance(pinned, str):
        pinned = parse_verifier_key(pinned)
    if pinned is not None:
        return pinned
    keys = sorted(set(stored_keys))
    if not keys:
        return None
    verdict.key_source = "stored in the ledger (not pinned)"
    verdict.notes.append(
        "WARNING: no verifier key was pinned; checkpoint signatures were checked against the key "
        "stored in the ledger itself, which only proves the ledger is self-consistent, not who signed it.")
    if len(keys) > 1:
        verdict.notes.append(f"the ledger names {len(keys)} different verifier keys; using {keys[-1]}")
    return parse_verifier_key(keys[-1])


def _open_checkpoints(cps: Sequence[StoredCheckpoint], verifier: Verifier | None, origin: str | None) -> list[tuple[StoredCheckpoint, Checkpoint]]:
    opened = []
    for cp in cps:
        if verifier is None:
            raise _checkpoint_failure(cp, "signature", "no verifier key is available to check the signature")
        try:
            head = open_checkpoint(cp.note, verifier, origin)
        except NoteError as exc:
            raise _checkpoint_failure(cp, "signature", f"signed note rejected: {exc}") from None
        if head.size != cp.tree_size or head.root != cp.root:
            raise _checkpoint_failure(cp, "columns", "stored size/root columns differ from what the signed note says")
        opened.append((cp, head))
    return opened


Opened = list[tuple[StoredCheckpoint, Checkpoint]]
Runner = Callable[[Opened, "Verdict"], None]


def _verify(run: Runner, checkpoints: Sequence[StoredCheckpoint], verifier: Verifier | str | None,
            origin: str | None, trusted_checkpoints: Sequence[str]) -> Verdict:
    """Check keys and signatures, then let `run` check the entries against the opened checkpoints."""
    verdict = Verdict(ok=False)
    try:
        key = _resolve_key(verifier, (cp.verifier_key for cp in checkpoints), verdict)
        pending = [StoredCheckpoint(-(i + 1), 0, b"", note, "", "") for i, note in enumerate(trusted_checkpoints)]
        opened = []
        for cp in pending:
            # A kept checkpoint carries its size and root only inside the note.
            try:
                head = open_checkpoint(cp.note, key, origin) if key else None
            except NoteError as exc:
                raise _Stop(Failure("trusted checkpoint", f"trusted checkpoint {-cp.id}: {exc}",
                                    checkpoint_id=cp.id)) from None
            if head is None:
                raise _Stop(Failure("trusted checkpoint", "no verifier key to check trusted checkpoints"))
            opened.append((StoredCheckpoint(cp.id, head.size, head.root, cp.note, "", ""), head))
        opened += _open_checkpoints(checkpoints, key, origin)
        opened.sort(key=lambda pair: pair[1].size)
        run(opened, verdict)
        verdict.ok = True
    except _Stop as stop:
        verdict.failure = stop.failure
    if not checkpoints:
        verdict.notes.append("the ledger has no signed checkpoint: only internal consistency was checked")
    return verdict


def verify_rows(
    rows: Iterable[Row],
    checkpoints: Sequence[StoredCheckpoint] = (),
    verifier: Verifier | str | None = None,
    origin: str | None = DEFAULT_ORIGIN,
    trusted_checkpoints: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
    check_envelopes: bool = True,
) -> Verdict:
    """Verify a stream of entry rows (seq order) and the ledger's checkpoints, in this process.

    `trusted_checkpoints` are signed notes an auditor kept from earlier audits:
    the rebuilt tree must have their root at their size, or the ledger has
    forked (rewritten history) since.
    """
    def run(opened: Opened, verdict: Verdict) -> None:
        _verify_stream(rows, opened, verdict, progress, check_envelopes)

    with gc_paused():
        return _verify(run, checkpoints, verifier, origin, trusted_checkpoints)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection during a pass over the entries.

    The pass allocates millions of short-lived dicts and keeps growing sets,
    and every automatic collection walks those sets again: at a million
    entries that cost a quarter of the time.  Nothing the pass allocates forms
    reference cycles, so pausing loses nothing; the previous setting returns.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _State:
    """Where a sequential pass stands after a prefix of the rows."""

    __slots__ = ("expected", "prev_hex", "tree", "seen", "due")

    def __init__(self, expected: int = 1, prev_hex: str = GENESIS_PREV, tree: merkle.LeafRange | None = None,
                 seen: dict[Any, set] | None = None, due: int = 0) -> None:
        self.expected = expected          # seq the next row must have
        self.prev_hex = prev_hex          # recomputed chain hash of entry expected-1, hex
        self.tree = tree if tree is not None else merkle.LeafRange(expected - 1)
        self.seen = {} if seen is None else seen  # source -> source_sequence values met so far
        self.due = due                    # index of the next checkpoint (by size) to compare


class _Progress:
    """Forwards counts to the caller's callback, skipping a number already reported by a helper."""

    __slots__ = ("callback", "reported", "skip")

    def __init__(self, callback: Callable[[int], None] | None) -> None:
        self.callback, self.reported, self.skip = callback, 0, 0

    def __call__(self, n: int) -> None:
        if self.skip:
            taken = min(self.skip, n)
            self.skip -= taken
            n -= taken
        if n > 0 and self.callback is not None:
            self.reported += n
            self.callback(n)

    def finish(self, total: int) -> None:
        self.skip = 0
        self(total - self.reported)


_MALFORMED = object()  # cached "this envelope source is not /zhuqi/<service>/<unit>"


def _service_or_malformed(source: str) -> Any:
    try:
        return service_of_source(source)
    except EnvelopeError:
        return _MALFORMED


def _check_rows(rows: Iterable[Row], sizes: Sequence[int], st: _State, progress: Callable[[int], None] | None,
                check_envelopes: bool, reached: Callable[[int, merkle.LeafRange], None]) -> None:
    """Check rows that continue the state `st` (updated in place); `reached(i, tree)` at checkpoint sizes[i].

    This is the hot loop: every check of docs/ledger-format.md section 5, with
    locals instead of attribute look-ups and the common case first.
    """
    tree = st.tree
    push, sha256 = tree.push, hashlib.sha256
    loads, dumps = orjson.loads, orjson.dumps
    safe = SAFE_INT_MAX
    seen = st.seen
    services: dict[str, Any] = {}  # envelope `source` -> publishing service; a handful of distinct values
    prev_hex, expected, due = st.prev_hex, st.expected, st.due
    next_size = sizes[due] if due < len(sizes) else -1

    for seq, source, source_sequence, type_, subject, time, envelope, prev, entry_h, leaf_h in rows:
        if seq != expected:
            if seq > expected:
                raise _entry_failure(expected, "contiguity", f"is missing (the next stored entry is {seq})")
            raise _entry_failure(seq, "contiguity", f"appears again after entry {expected - 1}")
        if prev != prev_hex:
            raise _entry_failure(seq, "chain", f"prev does not equal the chain hash of entry {seq - 1}")
        try:
            if type(source_sequence) is int and -safe <= source_sequence <= safe and type(source) is str \
                    and type(type_) is str and type(subject) is str and type(time) is str and type(envelope) is str:
                # entry.canonical_dict_bytes inlined: members inserted in JCS (sorted) order, which
                # orjson keeps, so it need not sort.  Anything unusual takes the full function and
                # its rfc8785 fallback.
                canonical = dumps({"envelope": envelope, "prev": prev, "seq": seq, "source": source,
                                   "source_sequence": source_sequence, "subject": subject, "time": time,
                                   "type": type_})
            else:
                canonical = canonical_dict_bytes({
                    "seq": seq, "source": source, "source_sequence": source_sequence, "type": type_,
                    "subject": subject, "time": time, "envelope": envelope, "prev": prev})
        except (ValueError, TypeError) as exc:
            raise _entry_failure(seq, "encoding", f"columns cannot be canonically encoded: {exc}") from None
        computed_entry = sha256(canonical).digest()
        if entry_h != computed_entry:
            raise _entry_failure(seq, "entry hash", "stored entry hash does not match its contents")
        computed_leaf = sha256(b"\x00" + canonical).digest()
        if leaf_h != computed_leaf:
            raise _entry_failure(seq, "leaf hash", "stored Merkle leaf hash does not match its contents")
        numbers = seen.get(source)
        if numbers is None:
            numbers = seen[source] = set()
        if source_sequence in numbers:
            raise _entry_failure(seq, "uniqueness", f"repeats {source} sequence {source_sequence}")
        numbers.add(source_sequence)
        if check_envelopes:
            try:
                published = loads(envelope)
            except orjson.JSONDecodeError:
                raise _entry_failure(seq, "envelope", "envelope is not valid JSON") from None
            # Cheap comparisons first, exactly as strict as entry.columns_disagreement; the
            # worded check runs only when something differs (e.g. sequence "007": unusual
            # but equal once parsed).
            if type(published) is dict:
                origin = published.get("source")
                if type(origin) is str:
                    service = services.get(origin)
                    if service is None:
                        service = services[origin] = _service_or_malformed(origin)
                else:
                    service = _MALFORMED
                agrees = (service == source and published.get("type") == type_
                          and published.get("subject") == subject and published.get("time") == time
                          and type(source_sequence) is int and source_sequence >= 0
                          and published.get("sequence") == str(source_sequence))
            else:
                agrees = False
            if not agrees:
                row = {"source": source, "source_sequence": source_sequence, "type": type_,
                       "subject": subject, "time": time}
                problem = (columns_disagreement(row, published) if type(published) is dict
                           else "envelope is not a JSON object")
                if problem:
                    raise _entry_failure(seq, "envelope", problem)
        push(computed_leaf)
        prev_hex = computed_entry.hex()
        if seq == next_size:
            while due < len(sizes) and sizes[due] == seq:
                reached(due, tree)
                due += 1
            next_size = sizes[due] if due < len(sizes) else -1
        expected += 1
        if progress is not None and seq % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    st.prev_hex, st.expected, st.due = prev_hex, expected, due


def _begin(opened: Opened, st: _State, verdict: Verdict) -> None:
    """Checkpoints of the empty tree are compared before any row."""
    while st.due < len(opened) and opened[st.due][1].size == 0:
        _check_root(opened[st.due], st.tree, verdict)
        st.due += 1


def _finish(st: _State, opened: Opened, verdict: Verdict, progress: _Progress) -> None:
    verdict.entries_checked = st.expected - 1
    progress.finish(st.expected - 1)
    if st.due < len(opened):
        cp, head = opened[st.due]
        raise _checkpoint_failure(cp, "size", f"claims {head.size} entries but the ledger holds only {st.expected - 1}"
                                  f" (entries {st.expected}..{head.size} are missing)")


def _inline_roots(opened: Opened, verdict: Verdict) -> Callable[[int, merkle.LeafRange], None]:
    return lambda due, tree: _check_root(opened[due], tree, verdict)


def _verify_stream(rows, opened, verdict: Verdict, progress, check_envelopes: bool) -> None:
    st, counter = _State(), _Progress(progress)
    _begin(opened, st, verdict)
    _check_rows(rows, [head.size for _, head in opened], st, counter if progress else None, check_envelopes,
                _inline_roots(opened, verdict))
    _finish(st, opened, verdict, counter)


def _check_root(pair, tree: merkle.LeafRange, verdict: Verdict) -> None:
    cp, head = pair
    if tree.root() != head.root:
        raise _checkpoint_failure(cp, "root", "signed root does not match the tree rebuilt from the entries")
    if cp.id > 0:
        verdict.checkpoints_checked += 1


# ---------------------------------------------------------------- two processes

def _parallel_wanted(workers: int | None) -> bool:
    """Whether a helper process may be used at all (the entry count decides later)."""
    if workers is not None:
        return workers >= 2
    if (os.cpu_count() or 1) < 2:
        return False
    # Inside an eventlet-patched service the self-check is a background chore: it must
    # not take the second core from the live consumer, nor start processes from a green thread.
    return not _cooperative()


def _split_point(bounds: tuple[int | None, int | None], workers: int | None) -> int | None:
    """The last seq of the first half, or None when one process should do it all."""
    lo, hi = bounds
    if lo is None or hi is None or hi <= lo:
        return None
    if workers is None and hi - lo + 1 < PARALLEL_MIN_ENTRIES:
        return None
    return (lo + hi) // 2


_FRAME = struct.Struct(">cQ")  # kind (b"P" progress: rows so far; b"R" result: pickle length follows), number
_REPO_ROOT = str(Path(__file__).resolve().parents[2])


class _Helper:
    """The helper process checking the second half; `result()` is its report, or None if it died."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.buffer = bytearray()
        self.rows_seen = 0     # progress the helper reported
        self.forwarded = 0     # of which passed on to the caller
        self.report: dict[str, Any] | None = None
        self.eof = False
        self.proc: subprocess.Popen | None = None
        read_end, write_end = os.pipe()
        self.fd = read_end
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_REPO_ROOT, env.get("PYTHONPATH")) if p)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.ledger.verify", "--segment-worker", str(write_end)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, pass_fds=(write_end,), env=env)
            # The job is small (it never holds rows); a helper that died at once shows as EOF later.
            self.proc.stdin.write(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
            self.proc.stdin.close()
        except OSError:
            pass  # no helper (or a dead one): the first process checks the second half itself
        finally:
            os.close(write_end)  # ours is closed, so the helper's exit reads as EOF

    def _read(self, timeout: float) -> None:
        if self.eof or not select.select([self.fd], [], [], timeout)[0]:
            return
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            self.eof = True
            return
        self.buffer += chunk
        while len(self.buffer) >= _FRAME.size:
            kind, number = _FRAME.unpack_from(self.buffer)
            if kind == b"P":
                self.rows_seen = number
                del self.buffer[:_FRAME.size]
            elif len(self.buffer) >= _FRAME.size + number:
                self.report = pickle.loads(bytes(self.buffer[_FRAME.size:_FRAME.size + number]))
                del self.buffer[:_FRAME.size + number]
            else:
                break

    def forward(self, progress: _Progress) -> None:
        """Pass on progress the helper has made since the last call (never blocks)."""
        self._read(0)
        if self.rows_seen > self.forwarded:
            progress(self.rows_seen - self.forwarded)
            self.forwarded = self.rows_seen

    def result(self, progress: _Progress) -> dict[str, Any] | None:
        while self.report is None and not self.eof:
            self._read(0.2)
            if self.rows_seen > self.forwarded:
                progress(self.rows_seen - self.forwarded)
                self.forwarded = self.rows_seen
        return self.report

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()  # the first half failed: its verdict stands, the rest is moot
            self.proc.wait()
        os.close(self.fd)


def _adopt(report: dict[str, Any] | None, st: _State, opened: Opened, verdict: Verdict) -> bool:
    """Take over the helper's end state if its pass is provably the sequential one; else False."""
    if report is None or not report["ok"]:
        return False
    if report["rows"] == 0:
        return True
    if (report["first_seq"], report["first_prev"], report["start_due"]) != (st.expected, st.prev_hex, st.due):
        return False  # it assumed a start the first half does not end in
    for source, numbers in report["seen"].items():
        mine = st.seen.get(source)
        if mine is not None and not mine.isdisjoint(numbers):
            return False  # a publication recorded in both halves
    for due, begin, end, hashes in report["roots"]:
        if st.tree.joined(merkle.LeafRange(begin, end, hashes)).root() != opened[due][1].root:
            return False
    verdict.checkpoints_checked += sum(1 for due, *_ in report["roots"] if opened[due][0].id > 0)
    begin, end, hashes = report["tree"]
    st.tree = st.tree.joined(merkle.LeafRange(begin, end, hashes))
    for source, numbers in report["seen"].items():
        st.seen.setdefault(source, set()).update(numbers)
    st.expected, st.prev_hex, st.due = report["expected"], report["prev_hex"], report["due"]
    return True


def _verify_halves(first: Iterable[Row], job: dict[str, Any], second: Callable[[], Iterator[Row]],
                   opened: Opened, verdict: Verdict, progress: Callable[[int], None] | None) -> None:
    """Rows of the first half here, the second half in a helper; see the module docstring."""
    sizes = [head.size for _, head in opened]
    helper = _Helper({**job, "sizes": sizes, "progress": progress is not None})
    try:
        st, counter = _State(), _Progress(progress)

        def tick(n: int) -> None:
            counter(n)
            helper.forward(counter)

        _begin(opened, st, verdict)
        _check_rows(first, sizes, st, tick if progress else None, True, _inline_roots(opened, verdict))
        report = helper.result(counter)
        if not _adopt(report, st, opened, verdict):
            # Check the second half here, continuing from our own state: the exact sequential pass.
            counter.skip = helper.forwarded
            with closing(second()) as rows:
                _check_rows(rows, sizes, st, counter if progress else None, True, _inline_roots(opened, verdict))
        _finish(st, opened, verdict, counter)
    finally:
        helper.close()


def _run_segment(job: dict[str, Any], rows: Iterator[Row], report_progress: Callable[[int], None] | None) -> dict:
    """The helper's pass: check `rows` assuming the state their first row claims; roots are only recorded."""
    first = next(rows, None)
    if first is None:
        return {"ok": True, "rows": 0}
    seq, prev = first[0], first[7]
    if type(seq) is not int or seq < 1 or type(prev) is not str:
        return {"ok": False}
    sizes = job["sizes"]
    st = _State(expected=seq, prev_hex=prev, due=bisect_left(sizes, seq))
    start_due, roots = st.due, []

    def record(due: int, tree: merkle.LeafRange) -> None:
        roots.append((due, tree.begin, tree.end, list(tree.hashes)))

    def chained() -> Iterator[Row]:
        yield first
        yield from rows

    try:
        _check_rows(chained(), sizes, st, report_progress, True, record)
    except _Stop:
        return {"ok": False}  # the first process finds (and words) it in its own pass
    return {"ok": True, "rows": st.expected - seq, "first_seq": seq, "first_prev": prev, "start_due": start_due,
            "expected": st.expected, "prev_hex": st.prev_hex, "due": st.due,
            "tree": (st.tree.begin, st.tree.end, st.tree.hashes), "roots": roots,
            # Lists, not sets: the receiver only probes its own sets with them.
            "seen": {source: list(numbers) for source, numbers in st.seen.items()}}


def _segment_worker(fd: int) -> int:
    """Entry point of the helper process: job on stdin, progress and report frames on `fd`."""
    job = pickle.load(sys.stdin.buffer)
    gc.disable()  # a short-lived process; see gc_paused
    done = 0

    def report_progress(n: int) -> None:
        nonlocal done
        done += n
        os.write(fd, _FRAME.pack(b"P", done))

    tick = report_progress if job.get("progress") else None
    if job["kind"] == "postgres":
        with psycopg.connect(job["conninfo"], autocommit=True) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(job["snapshot"])))
            query, params = _entries_query(job["schema"], after=job["after"])
            with closing(_pg_stream(conn, query, params, "zhuqi_ledger_verify_helper")) as rows:
                result = _run_segment(job, rows, tick)
            conn.execute("ROLLBACK")
    else:
        with closing(open_export(job["path"])) as db, closing(sqlite_rows(db, after=job["after"])) as rows:
            result = _run_segment(job, rows, tick)
    payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    with os.fdopen(fd, "wb") as out:
        out.write(_FRAME.pack(b"R", len(payload)) + payload)
    return 0


@contextmanager
def _snapshot_transaction(conn: psycopg.Connection) -> Iterator[str]:
    """A read-only repeatable-read transaction on `conn` whose snapshot another session can share.

    `conn` must be idle; it is switched to autocommit for the explicit BEGIN
    and given back as it was, after a ROLLBACK (nothing was written).
    """
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        finally:
            if not conn.closed:
                conn.execute("ROLLBACK")
    finally:
        if not conn.closed:
            conn.autocommit = autocommit


def _conninfo(conn: psycopg.Connection) -> str:
    """Connection string for the helper: the caller's settings, with the password psycopg keeps apart."""
    params = psycopg.conninfo.conninfo_to_dict(conn.info.dsn)
    if conn.info.password:
        params["password"] = conn.info.password
    return psycopg.conninfo.make_conninfo(**params)


# ---------------------------------------------------------------- convenience entry points

def verify_postgres(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA, verifier: Verifier | str | None = None,
                    origin: str | None = DEFAULT_ORIGIN, trusted_checkpoints: Sequence[str] = (),
                    progress: Callable[[int], None] | None = None, workers: int | None = None) -> Verdict:
    """Verify the ledger in `schema`.

    `workers`: 1 checks in this process only; 2 also uses a helper process; None
    (default) uses one for ledgers of PARALLEL_MIN_ENTRIES or more, when `conn`
    is not inside a transaction (the helper must share a snapshot this process
    exports) and this is not an eventlet-patched service process.
    """
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE and _parallel_wanted(workers):
        with _snapshot_transaction(conn) as snapshot, gc_paused():
            bounds = conn.execute(sql.SQL("SELECT min(seq), max(seq) FROM {s}.entries").format(
                s=sql.Identifier(schema))).fetchone()
            cps = pg_checkpoints(conn, schema)
            middle = _split_point(bounds, workers)
            if middle is None:
                query, params = _entries_query(schema)
                with closing(_pg_stream(conn, query, params, "zhuqi_ledger_verify")) as rows:
                    return verify_rows(rows, cps, verifier, origin, trusted_checkpoints, progress)
            job = {"kind": "postgres", "conninfo": _conninfo(conn), "snapshot": snapshot, "schema": schema,
                   "after": middle}
            first_query, first_params = _entries_query(schema, upto=middle)
            second_query, second_params = _entries_query(schema, after=middle)
            with closing(_pg_stream(conn, first_query, first_params, "zhuqi_ledger_verify")) as first:
                return _verify(
                    lambda opened, verdict: _verify_halves(
                        first, job, lambda: _pg_stream(conn, second_query, second_params, "zhuqi_ledger_verify_rest"),
                        opened, verdict, progress),
                    cps, verifier, origin, trusted_checkpoints)
    cps = pg_checkpoints(conn, schema)
    # closing(): a failure stops iteration early; close the server-side cursor now, not at GC time.
    with closing(pg_rows(conn, schema)) as rows:
        return verify_rows(rows, cps, verifier, origin, trusted_checkpoints, progress)


def verify_export(path: str | Path, verifier: Verifier | str | None = None, origin: str | None = None,
                  trusted_checkpoints: Sequence[str] = (), progress: Callable[[int], None] | None = None,
                  workers: int | None = None) -> Verdict:
    """Verify an export file.  Without a pinned key, the key in its meta table is used (and said so).

    `workers` as for verify_postgres (the helper opens the same file read-only).
    """
    db = open_export(path)
    try:
        meta = sqlite_meta(db)
        cps = sqlite_checkpoints(db)
        stored_keys = [cp.verifier_key for cp in cps] or ([meta["verifier_key"]] if meta.get("verifier_key") else [])
        if verifier is None and stored_keys:
            verifier_source = "stored in the export (not pinned)"
            verdict_key = parse_verifier_key(meta.get("verifier_key") or stored_keys[-1])
        else:
            verifier_source, verdict_key = "pinned", verifier
        origin = origin if origin is not None else meta.get("origin", DEFAULT_ORIGIN)
        middle = (_split_point(db.execute("SELECT min(seq), max(seq) FROM entries").fetchone(), workers)
                  if _parallel_wanted(workers) else None)
        if middle is None:
            verdict = verify_rows(sqlite_rows(db), cps, verdict_key, origin, trusted_checkpoints, progress)
        else:
            job = {"kind": "sqlite", "path": str(Path(path).resolve()), "after": middle}
            with gc_paused(), closing(sqlite_rows(db, upto=middle)) as first:
                verdict = _verify(
                    lambda opened, v: _verify_halves(first, job, lambda: sqlite_rows(db, after=middle),
                                                     opened, v, progress),
                    cps, verdict_key, origin, trusted_checkpoints)
        if verifier_source != "pinned":
            verdict.key_source = verifier_source
            verdict.notes.insert(0, "WARNING: no verifier key was pinned; checkpoint signatures were checked against "
                                    "the key stored in the export itself, which proves only that the file is "
                                    "self-consistent, not who signed it.")
        return verdict
    finally:
        db.close()


def verify_bundle(bundle: dict[str, Any], verifier: Verifier | str | None = None) -> Verdict:
    """Check a proof bundle from `store.proof_bundle` offline: signature, then each inclusion proof."""
    verdict = Verdict(ok=False)
    try:
        if bundle.get("format") != BUNDLE_FORMAT:
            raise _Stop(Failure("format", f"not a {BUNDLE_FORMAT} document"))
        stored = [bundle["verifier_key"]] if bundle.get("verifier_key") else []
        key = _resolve_key(verifier, stored, verdict)
        if bundle.get("checkpoint") is None or key is None:
            raise _Stop(Failure("checkpoint", "bundle has no signed checkpoint to prove against"))
        try:
            head = open_checkpoint(bundle["checkpoint"], key, origin=None)
        except NoteError as exc:
            raise _Stop(Failure("signature", f"checkpoint rejected: {exc}")) from None
        verdict.checkpoints_checked = 1
        uncovered = 0
        for item in bundle["entries"]:
            seq = item["seq"]
            if item.get("subject") != bundle["subject"]:
                raise _entry_failure(seq, "subject", "is about another subject")
            if item["proof"] is None:
                uncovered += 1
                continue
            canonical = canonical_bytes(seq, item["source"], item["source_sequence"], item["type"],
                                        item["subject"], item["time"], item["envelope"], item["prev"])
            try:
                proof = [base64.b64decode(p, validate=True) for p in item["proof"]]
                merkle.verify_inclusion(seq - 1, head.size, merkle.hash_leaf(canonical), proof, head.root)
            except (ValueError, merkle.ProofError) as exc:
                raise _entry_failure(seq, "inclusion", f"inclusion proof fails: {exc}") from None
            verdict.entries_checked += 1
        if uncovered:
            verdict.notes.append(f"{uncovered} entries are newer than the checkpoint and are not proven yet")
        verdict.ok = True
    except _Stop as stop:
        verdict.failure = stop.failure
    return verdict


def verify_consistency_between(old_note: str, new_note: str, proof: Sequence[bytes],
                               verifier: Verifier | str, origin: str | None = DEFAULT_ORIGIN) -> None:
    """Auditor-side check that a new signed checkpoint extends one kept from before.

    Raises NoteError or merkle.ProofError.  This is what catches a server that
    rewrote history after an auditor saw it: no valid proof exists.
    """
    if isinstance(verifier, str):
        verifier = parse_verifier_key(verifier)
    old = open_checkpoint(old_note, verifier, origin)
    new = open_checkpoint(new_note, verifier, origin)
    if old.size == 0:
        return  # every tree extends the empty tree; RFC 9162 has no proof for it
    merkle.verify_consistency(old.size, new.size, proof, old.root, new.root)


if __name__ == "__main__":
    # `python -m services.ledger.verify --segment-worker FD`: the helper of _verify_halves.
    if len(sys.argv) != 3 or sys.argv[1] != "--segment-worker":
        sys.exit("this module runs only as the helper of verify_postgres/verify_export; use `zhuqi ledger verify`")
    sys.exit(_segment_worker(int(sys.argv[2])))
