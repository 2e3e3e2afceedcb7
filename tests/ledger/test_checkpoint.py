"""Signed checkpoints: byte compatibility with Go's sumdb/note, and every rejection path."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.ledger.domain.checkpoint import (
    DEFAULT_ORIGIN, BadSignatureError, Checkpoint, MalformedKeyError, MalformedNoteError, UnknownKeyError,
    generate_key, open_checkpoint, open_note, parse_signer_key, parse_verifier_key, sign_checkpoint, sign_note,
)

from .conftest import signer

# Example from the documentation of golang.org/x/mod/sumdb/note (the reference implementation).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"

# Our fixed test key: Ed25519 seed 00 01 02 ... 1f, name zhuqi.suzhou/ledger.
ROOT8 = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
FIXED_VKEY = "zhuqi.suzhou/ledger+ad305ed0+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
FIXED_NOTE = (
    "zhuqi.suzhou/ledger\n2\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\n"
    "\u2014 zhuqi.suzhou/ledger rTBe0FqRqh8IFN7rEn0Ym/xCM7mghX/AiQ1/4L7T/XbtQKBUTe53Zxt+RAWYC6YzpRjyhHIdf9MAdhNtIXBmlJieAQc=\n"
)


def test_go_reference_vector_signs_and_opens_byte_for_byte():
    s = parse_signer_key(GO_SKEY)
    assert s.signer_key == GO_SKEY
    assert s.verifier_key == GO_VKEY
    assert sign_note(GO_TEXT, [s]) == GO_NOTE
    text, verified = open_note(GO_NOTE, [parse_verifier_key(GO_VKEY)])
    assert text == GO_TEXT and verified[0].name == "PeterNeumann"


def test_fixed_key_note_is_exactly_as_the_spec_says():
    s = signer()
    assert s.verifier_key == FIXED_VKEY
    # Key id recomputed independently: SHA-256(name || 0x0A || 0x01 || pubkey)[:4].
    pub = base64.b64decode(FIXED_VKEY.split("+", 2)[2])[1:]
    assert hashlib.sha256(b"zhuqi.suzhou/ledger\n\x01" + pub).digest()[:4].hex() == "ad305ed0"
    note = sign_checkpoint(Checkpoint(DEFAULT_ORIGIN, 2, ROOT8), s)
    assert note == FIXED_NOTE
    # The signature line verifies with a bare Ed25519 implementation over the body bytes.
    body, sig_line = FIXED_NOTE.split("\n\n")
    blob = base64.b64decode(sig_line.split(" ")[2])
    assert blob[:4].hex() == "ad305ed0"
    Ed25519PublicKey.from_public_bytes(pub).verify(blob[4:], (body + "\n").encode())
    head = open_checkpoint(FIXED_NOTE, parse_verifier_key(FIXED_VKEY))
    assert (head.origin, head.size, head.root, head.extensions) == (DEFAULT_ORIGIN, 2, ROOT8, ())


def test_extension_lines_round_trip():
    s = signer()
    note = sign_checkpoint(Checkpoint("example/log", 5, ROOT8, ("ext one", "ext two")), s)
    assert open_checkpoint(note, s.verifier, origin="example/log").extensions == ("ext one", "ext two")


def test_rejects_unknown_key():
    other = generate_key("zhuqi.suzhou/ledger")
    with pytest.raises(UnknownKeyError):
        open_checkpoint(FIXED_NOTE, other.verifier)


def test_rejects_bad_signature():
    forged = FIXED_NOTE.replace("\n2\n", "\n3\n")
    with pytest.raises(BadSignatureError):
        open_checkpoint(forged, parse_verifier_key(FIXED_VKEY))


@pytest.mark.parametrize("note", [
    FIXED_NOTE.replace("\n\n", "\n"),                                 # no blank line
    FIXED_NOTE.replace("\u2014 ", "-- "),                            # not an em dash
    FIXED_NOTE[:-1],                                                  # missing final newline
    FIXED_NOTE.replace("rTBe0F", "rTBe0!"),                          # bad base64
    "zhuqi.suzhou/ledger\n02\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\n" + FIXED_NOTE.split("\n\n")[1],
])
def test_rejects_malformed_notes(note):
    with pytest.raises((MalformedNoteError, BadSignatureError)):
        open_checkpoint(note, parse_verifier_key(FIXED_VKEY))


def test_rejects_wrong_origin():
    with pytest.raises(MalformedNoteError, match="origin"):
        open_checkpoint(FIXED_NOTE, parse_verifier_key(FIXED_VKEY), origin="someone.else/log")


@pytest.mark.parametrize("key", [
    "zhuqi.suzhou/ledger+ad305ed1+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4",  # id does not match
    "zhuqi.suzhou/ledger+ad305ed0+AgOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4",  # wrong algorithm byte
    "zhuqi suzhou+ad305ed0+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4",         # space in name
    "no-plus-signs-at-all",
])
def test_rejects_malformed_verifier_keys(key):
    with pytest.raises(MalformedKeyError):
        parse_verifier_key(key)


def test_generated_keys_round_trip_through_their_strings():
    s = generate_key("audit.example/ledger")
    again = parse_signer_key(s.signer_key)
    note = sign_checkpoint(Checkpoint(DEFAULT_ORIGIN, 0, hashlib.sha256(b"").digest()), again)
    assert open_checkpoint(note, parse_verifier_key(s.verifier_key)).size == 0
