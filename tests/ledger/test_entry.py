"""Canonical encoding: the fast path must be byte-identical to RFC 8785 (rfc8785 library)."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings, strategies as st

from services.ledger.domain.entry import (
    GENESIS_PREV, SAFE_INT_MAX, EnvelopeError, Entry, canonical_dict_bytes, chain_hash,
    entry_canonical_bytes, entry_from_envelope, leaf_hash, service_of_source,
)

from .conftest import envelope

# Any Unicode scalar value: control characters, non-ASCII, astral-plane emoji... (no lone surrogates).
text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=60)
safe_int = st.integers(min_value=-SAFE_INT_MAX, max_value=SAFE_INT_MAX)
entries = st.fixed_dictionaries({
    "seq": safe_int, "source": text, "source_sequence": safe_int, "type": text,
    "subject": text, "time": text, "envelope": text, "prev": text,
})


@settings(max_examples=600, deadline=None)
@given(entries)
def test_fast_encoder_matches_rfc8785(obj):
    assert canonical_dict_bytes(obj) == rfc8785.dumps(obj)


@pytest.mark.parametrize("value", [
    "\x00\x01\x07\x08\t\n\x0b\x0c\r\x1f\x7f", '"\\/', "é中文", "😀\U0010ffff", "\u2028\u2029", "",
])
def test_fast_encoder_matches_on_awkward_strings(value):
    obj = Entry(1, value, 2, value, value, value, value, GENESIS_PREV).as_dict()
    assert canonical_dict_bytes(obj) == rfc8785.dumps(obj)


def test_integers_beyond_2_pow_53_fall_back_to_reference_which_refuses():
    obj = Entry(2**53, "s", 1, "t", "x", "t", "{}", GENESIS_PREV).as_dict()
    with pytest.raises(rfc8785.IntegerDomainError):
        canonical_dict_bytes(obj)


def test_lone_surrogate_falls_back_to_reference_which_refuses():
    obj = Entry(1, "s", 1, "t", "\ud800", "t", "{}", GENESIS_PREV).as_dict()
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_dict_bytes(obj)


def test_bool_is_not_taken_for_an_integer():
    obj = Entry(True, "s", 1, "t", "x", "t", "{}", GENESIS_PREV).as_dict()
    assert canonical_dict_bytes(obj) == rfc8785.dumps(obj)  # reference path: encodes `true`


def test_entry_from_envelope_and_hashes():
    raw, parsed = envelope("volunteer_registered", {"volunteer_id": "v1", "unit": "zjg"}, seq=7)
    e = entry_from_envelope(1, GENESIS_PREV, raw, parsed)
    assert (e.source, e.source_sequence, e.subject) == ("registry", 7, "v1")
    canonical = entry_canonical_bytes(e)
    assert canonical.startswith(b'{"envelope":"{\\"specversion\\"')
    assert chain_hash(canonical) != leaf_hash(canonical)  # domain separation


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.pop("subject"), "subject"),
    (lambda p: p.update(sequence="12a"), "decimal"),
    (lambda p: p.update(sequence=str(2**53)), "exceeds"),
    (lambda p: p.update(source="registry"), "/zhuqi/"),
])
def test_malformed_envelopes_are_refused_with_reason(mutate, message):
    raw, parsed = envelope("volunteer_registered", {"volunteer_id": "v1", "unit": "zjg"}, seq=1)
    mutate(parsed)
    with pytest.raises(EnvelopeError, match=message):
        entry_from_envelope(1, GENESIS_PREV, raw, parsed)


def test_service_of_source():
    assert service_of_source("/zhuqi/registry/zjg") == "registry"
