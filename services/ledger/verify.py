"""Independent verification of a whole ledger, from PostgreSQL or from an export.

Nothing stored is trusted: canonical bytes are recomputed from the columns, the
chain is re-linked with the recomputed hashes, the Merkle tree is rebuilt from
recomputed leaf hashes, and every checkpoint's signature and root are checked
against that rebuilt tree.  Because the chain hash and the leaf hash are
derived from the very same bytes, a ledger cannot show one history through
its chain and another through its tree (the immudb "linear-fake" split view).

The first failure stops the run and is reported in plain words.
"""

from __future__ import annotations

import base64
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import orjson
import psycopg
from psycopg import sql

from . import merkle
from .checkpoint import (
    DEFAULT_ORIGIN, Checkpoint, NoteError, Verifier, open_checkpoint, parse_verifier_key,
)
from .entry import GENESIS_PREV, SAFE_INT_MAX, canonical_bytes, canonical_dict_bytes, columns_disagreement
from .store import BUNDLE_FORMAT, DEFAULT_SCHEMA, ENTRY_COLUMNS, StoredCheckpoint

Row = tuple  # (seq, source, source_sequence, type, subject, time, envelope, prev, entry_hash, leaf_hash)
FETCH_BATCH = 20_000


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

def pg_rows(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> Iterator[Row]:
    """Stream entries in seq order through a server-side cursor (constant memory)."""
    query = sql.SQL("SELECT {cols} FROM {s}.entries ORDER BY seq").format(
        cols=sql.SQL(", ").join(map(sql.Identifier, ENTRY_COLUMNS)), s=sql.Identifier(schema))
    with conn.transaction(), conn.cursor(name="zhuqi_ledger_verify") as cur:
        cur.itersize = FETCH_BATCH
        cur.execute(query)
        while batch := cur.fetchmany(FETCH_BATCH):
            yield from batch


def pg_checkpoints(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> list[StoredCheckpoint]:
    from .store import checkpoints
    return checkpoints(conn, schema)


def pg_entry_count(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA) -> int:
    return conn.execute(sql.SQL("SELECT count(*) FROM {s}.entries").format(s=sql.Identifier(schema))).fetchone()[0]


def sqlite_rows(db: sqlite3.Connection) -> Iterator[Row]:
    cur = db.execute("SELECT " + ", ".join(ENTRY_COLUMNS) + " FROM entries ORDER BY seq")
    while batch := cur.fetchmany(FETCH_BATCH):
        yield from batch


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


def verify_rows(
    rows: Iterable[Row],
    checkpoints: Sequence[StoredCheckpoint] = (),
    verifier: Verifier | str | None = None,
    origin: str | None = DEFAULT_ORIGIN,
    trusted_checkpoints: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
    check_envelopes: bool = True,
) -> Verdict:
    """Verify a stream of entry rows (seq order) and the ledger's checkpoints.

    `trusted_checkpoints` are signed notes an auditor kept from earlier audits:
    the rebuilt tree must have their root at their size, or the ledger has
    forked (rewritten history) since.
    """
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
        _verify_stream(rows, opened, verdict, progress, check_envelopes)
        verdict.ok = True
    except _Stop as stop:
        verdict.failure = stop.failure
    if not checkpoints:
        verdict.notes.append("the ledger has no signed checkpoint: only internal consistency was checked")
    return verdict


def _verify_stream(rows, opened, verdict: Verdict, progress, check_envelopes: bool) -> None:
    tree = merkle.CompactRange()
    push, sha256 = tree.push, merkle.hashlib.sha256
    loads = orjson.loads
    prev_hex = GENESIS_PREV
    expected = 1
    seen: dict[str, set[int]] = {}
    due = 0  # index into `opened` of the next checkpoint to compare
    while due < len(opened) and opened[due][1].size == 0:
        _check_root(opened[due], tree, verdict)
        due += 1
    next_size = opened[due][1].size if due < len(opened) else -1

    dumps, sort_keys, safe = orjson.dumps, orjson.OPT_SORT_KEYS, SAFE_INT_MAX
    for seq, source, source_sequence, type_, subject, time, envelope, prev, entry_h, leaf_h in rows:
        if seq != expected:
            if seq > expected:
                raise _entry_failure(expected, "contiguity", f"is missing (the next stored entry is {seq})")
            raise _entry_failure(seq, "contiguity", f"appears again after entry {expected - 1}")
        if prev != prev_hex:
            raise _entry_failure(seq, "chain", f"prev does not equal the chain hash of entry {seq - 1}")
        obj = {"seq": seq, "source": source, "source_sequence": source_sequence, "type": type_,
               "subject": subject, "time": time, "envelope": envelope, "prev": prev}
        try:
            # Inlined fast path of entry.canonical_dict_bytes (the hot loop); anything
            # unusual goes through the full function and its rfc8785 fallback.
            if type(source_sequence) is int and -safe <= source_sequence <= safe and type(source) is str \
                    and type(type_) is str and type(subject) is str and type(time) is str and type(envelope) is str:
                canonical = dumps(obj, option=sort_keys)
            else:
                canonical = canonical_dict_bytes(obj)
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
                # Cheap comparisons first; the full, worded check only when something differs.
                agrees = (published.get("type") == type_ and published.get("subject") == subject
                          and published.get("time") == time and published.get("sequence") == str(source_sequence)
                          and isinstance(published.get("source"), str)
                          and published["source"].split("/")[2:3] == [source])
            except orjson.JSONDecodeError:
                raise _entry_failure(seq, "envelope", "envelope is not valid JSON") from None
            if not agrees:
                # e.g. sequence "007": unusual but equal once parsed, so defer to the full check.
                problem = (columns_disagreement(obj, published) if isinstance(published, dict)
                           else "envelope is not a JSON object")
                if problem:
                    raise _entry_failure(seq, "envelope", problem)
        push(computed_leaf)
        prev_hex = computed_entry.hex()
        if seq == next_size:
            while due < len(opened) and opened[due][1].size == seq:
                _check_root(opened[due], tree, verdict)
                due += 1
            next_size = opened[due][1].size if due < len(opened) else -1
        expected += 1
        if progress is not None and seq % 10_000 == 0:
            progress(10_000)
    verdict.entries_checked = expected - 1
    if progress is not None:
        progress((expected - 1) % 10_000)
    if due < len(opened):
        cp, head = opened[due]
        raise _checkpoint_failure(cp, "size", f"claims {head.size} entries but the ledger holds only {expected - 1}"
                                  f" (entries {expected}..{head.size} are missing)")


def _check_root(pair, tree: merkle.CompactRange, verdict: Verdict) -> None:
    cp, head = pair
    if tree.root() != head.root:
        raise _checkpoint_failure(cp, "root", "signed root does not match the tree rebuilt from the entries")
    if cp.id > 0:
        verdict.checkpoints_checked += 1


# ---------------------------------------------------------------- convenience entry points

def verify_postgres(conn: psycopg.Connection, schema: str = DEFAULT_SCHEMA, verifier: Verifier | str | None = None,
                    origin: str | None = DEFAULT_ORIGIN, trusted_checkpoints: Sequence[str] = (),
                    progress: Callable[[int], None] | None = None) -> Verdict:
    cps = pg_checkpoints(conn, schema)
    # closing(): a failure stops iteration early; close the server-side cursor now, not at GC time.
    with closing(pg_rows(conn, schema)) as rows:
        return verify_rows(rows, cps, verifier, origin, trusted_checkpoints, progress)


def verify_export(path: str | Path, verifier: Verifier | str | None = None, origin: str | None = None,
                  trusted_checkpoints: Sequence[str] = (), progress: Callable[[int], None] | None = None) -> Verdict:
    """Verify an export file.  Without a pinned key, the key in its meta table is used (and said so)."""
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
        verdict = verify_rows(sqlite_rows(db), cps, verdict_key,
                              origin if origin is not None else meta.get("origin", DEFAULT_ORIGIN),
                              trusted_checkpoints, progress)
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
