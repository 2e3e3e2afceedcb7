"""Ledger entries: the flat record, its canonical encoding and its two hashes.

Every ledger entry is a flat JSON object with exactly eight members (see
docs/ledger-format.md).  Its canonical bytes are the RFC 8785 (JCS) encoding of
that object.  Both the hash chain and the Merkle tree are derived from those
same bytes, so a verifier that recomputes them once can check both structures
and a server cannot show one history through the chain and another through the
tree.

`canonical_bytes` uses orjson for speed.  For this flat shape (string and
integer members only, ASCII keys) orjson's output is byte-identical to JCS as
long as every integer lies in the IEEE-754 safe range and every string is valid
Unicode scalar values; the property test in tests/ledger/test_entry.py checks
that against the reference `rfc8785` library.  Whenever those preconditions do
not hold we hand the object to `rfc8785` itself, which either encodes it or
raises a precise error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

import orjson
import rfc8785

GENESIS_PREV = "0" * 64
"""The `prev` value of entry 1: there is no previous entry to commit to."""

LEAF_PREFIX = b"\x00"
"""RFC 9162 domain separation: leaves are hashed as SHA-256(0x00 || data)."""

SAFE_INT_MAX = 2**53 - 1
"""Largest integer JCS can represent exactly (numbers are IEEE-754 doubles)."""

FIELDS = ("seq", "source", "source_sequence", "type", "subject", "time", "envelope", "prev")
"""The members of an entry, in storage column order."""

_INT_FIELDS = ("seq", "source_sequence")
_STR_FIELDS = ("source", "type", "subject", "time", "envelope", "prev")


class EnvelopeError(ValueError):
    """A published envelope cannot become a ledger entry (missing or malformed member)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger entry, exactly the members that the hashes commit to."""

    seq: int
    source: str
    source_sequence: int
    type: str
    subject: str
    time: str
    envelope: str
    prev: str

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}


def _fast_path_allowed(obj: Mapping[str, Any]) -> bool:
    # `type(...) is int` rather than isinstance: bool is an int subclass and
    # JCS would encode it as true/false, which is not our shape.
    for name in _INT_FIELDS:
        value = obj[name]
        if type(value) is not int or not -SAFE_INT_MAX <= value <= SAFE_INT_MAX:
            return False
    for name in _STR_FIELDS:
        if type(obj[name]) is not str:
            return False
    return len(obj) == len(FIELDS)


def canonical_dict_bytes(obj: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical bytes of an entry given as a mapping of its eight members."""
    if _fast_path_allowed(obj):
        try:
            return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            # Lone surrogates: let the reference implementation raise its own error.
            pass
    return rfc8785.dumps(dict(obj))


def canonical_bytes(
    seq: int, source: str, source_sequence: int, type_: str,
    subject: str, time: str, envelope: str, prev: str,
) -> bytes:
    """Canonical bytes from the column values (the hot path of verification)."""
    return canonical_dict_bytes({
        "seq": seq, "source": source, "source_sequence": source_sequence, "type": type_,
        "subject": subject, "time": time, "envelope": envelope, "prev": prev,
    })


def entry_canonical_bytes(entry: Entry) -> bytes:
    return canonical_dict_bytes(entry.as_dict())


def chain_hash(canonical: bytes) -> bytes:
    """The chain hash of an entry; the next entry's `prev` is its hex form."""
    return hashlib.sha256(canonical).digest()


def leaf_hash(canonical: bytes) -> bytes:
    """The Merkle leaf hash of an entry (RFC 9162 leaf domain separation)."""
    return hashlib.sha256(LEAF_PREFIX + canonical).digest()


def service_of_source(source: str) -> str:
    """Publishing service name from a CloudEvents `source` like `/zhuqi/registry/zjg`."""
    parts = source.split("/")
    # "/zhuqi/registry/zjg".split("/") == ["", "zhuqi", "registry", "zjg"]
    if len(parts) < 4 or parts[0] != "" or not parts[2]:
        raise EnvelopeError(f"source {source!r} is not of the form /zhuqi/<service>/<unit>")
    return parts[2]


def unit_of_source(source: str) -> str:
    """Unit code (last path segment) from a CloudEvents `source`."""
    service_of_source(source)  # same shape check, same error
    return source.rsplit("/", 1)[1]


def _required_str(parsed: Mapping[str, Any], key: str) -> str:
    value = parsed.get(key)
    if not isinstance(value, str) or not value:
        raise EnvelopeError(f"envelope member {key!r} must be a non-empty string, got {value!r}")
    return value


def source_sequence_of(parsed: Mapping[str, Any]) -> int:
    """The publisher's notification id, carried as a decimal string in `sequence`."""
    text = _required_str(parsed, "sequence")
    if not text.isascii() or not text.isdigit():
        raise EnvelopeError(f"envelope sequence {text!r} is not a decimal number")
    value = int(text)
    if value > SAFE_INT_MAX:
        raise EnvelopeError(f"envelope sequence {text} exceeds 2^53-1, which JCS cannot encode")
    return value


def entry_from_envelope(seq: int, prev: str, raw_text: str, parsed: Mapping[str, Any]) -> Entry:
    """Build entry `seq` (chained to `prev`) from one published envelope."""
    return Entry(
        seq=seq,
        source=service_of_source(_required_str(parsed, "source")),
        source_sequence=source_sequence_of(parsed),
        type=_required_str(parsed, "type"),
        subject=_required_str(parsed, "subject"),
        time=_required_str(parsed, "time"),
        envelope=raw_text,
        prev=prev,
    )


def columns_disagreement(row: Mapping[str, Any], parsed: Mapping[str, Any]) -> str | None:
    """Plain-words description of the first column that contradicts the envelope, or None.

    The columns are copies of envelope members kept for indexing; the hashes
    commit to both, but an auditor also wants to know they say the same thing.
    """
    try:
        expected = {
            "source": service_of_source(_required_str(parsed, "source")),
            "source_sequence": source_sequence_of(parsed),
            "type": parsed.get("type"),
            "subject": parsed.get("subject"),
            "time": parsed.get("time"),
        }
    except EnvelopeError as exc:
        return f"envelope is malformed: {exc}"
    for name, value in expected.items():
        if row[name] != value:
            return f"column {name} is {row[name]!r} but the envelope says {value!r}"
    return None
