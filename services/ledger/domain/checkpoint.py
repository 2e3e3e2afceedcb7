"""Signed tree heads in the C2SP tlog-checkpoint / signed-note format.

Wire format (https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note),
byte-compatible with Go's golang.org/x/mod/sumdb/note so that an auditor can
check our checkpoints with off-the-shelf tooling:

    <origin>\n<tree size, decimal>\n<base64 root hash>\n[<extension line>\n]...
    \n
    — <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>\n

The signature covers the body (everything before the blank line, including its
final newline).  Key id = first 4 bytes of SHA-256(name || 0x0A || 0x01 || pubkey).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import unicodedata
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, PrivateFormat, NoEncryption

DEFAULT_ORIGIN = "zhuqi.suzhou/ledger"
ALG_ED25519 = 0x01
EM_DASH_PREFIX = "\u2014 "
MAX_SIGNATURES = 100  # same bound as the Go reference, against resource exhaustion
_SIGNER_PREFIX = "PRIVATE+KEY+"


class NoteError(ValueError):
    """Base class: a signed note or key could not be accepted."""


class MalformedNoteError(NoteError):
    """The text is not a well-formed signed note or checkpoint."""


class MalformedKeyError(NoteError):
    """A signer or verifier key string is not well formed."""


class UnknownKeyError(NoteError):
    """No signature on the note is from a key we were told to trust."""


class BadSignatureError(NoteError):
    """A signature from a trusted key does not verify."""


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def key_id(name: str, public_key: bytes) -> int:
    """uint32 key id of golang.org/x/mod/sumdb/note for an Ed25519 key."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: int
    public_key: Ed25519PublicKey = field(repr=False)

    @property
    def key_string(self) -> str:
        """`<name>+<8 hex key id>+<base64(0x01 || public key)>`."""
        blob = base64.b64encode(bytes([ALG_ED25519]) + _raw_public(self.public_key)).decode()
        return f"{self.name}+{self.key_id:08x}+{blob}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    name: str
    key_id: int
    private_key: Ed25519PrivateKey = field(repr=False)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, self.private_key.public_key())

    @property
    def verifier_key(self) -> str:
        return self.verifier.key_string

    @property
    def signer_key(self) -> str:
        """`PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || 32-byte seed)>`: keep secret."""
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        blob = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"{_SIGNER_PREFIX}{self.name}+{self.key_id:08x}+{blob}"

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def _split_key(text: str, what: str) -> tuple[str, int, bytes]:
    # maxsplit 2: the base64 part may itself contain '+'.
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise MalformedKeyError(f"{what} key must be <name>+<key id>+<base64 key>")
    name, hex_id, blob = parts
    if not _valid_name(name):
        raise MalformedKeyError(f"{what} key name {name!r} is empty or contains '+' or whitespace")
    if len(hex_id) != 8:
        raise MalformedKeyError(f"{what} key id {hex_id!r} is not 8 hex digits")
    try:
        kid = int(hex_id, 16)
        raw = base64.b64decode(blob, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise MalformedKeyError(f"{what} key is not valid hex/base64: {exc}") from None
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise MalformedKeyError(f"{what} key is not a 0x01-tagged 32-byte Ed25519 key")
    return name, kid, raw[1:]


def parse_verifier_key(text: str) -> Verifier:
    name, kid, raw = _split_key(text, "verifier")
    if key_id(name, raw) != kid:
        raise MalformedKeyError(f"verifier key id {kid:08x} does not match the key")
    return Verifier(name, kid, Ed25519PublicKey.from_public_bytes(raw))


def parse_signer_key(text: str) -> Signer:
    text = text.strip()
    if not text.startswith(_SIGNER_PREFIX):
        raise MalformedKeyError("signer key must start with PRIVATE+KEY+")
    name, kid, seed = _split_key(text[len(_SIGNER_PREFIX):], "signer")
    private = Ed25519PrivateKey.from_private_bytes(seed)
    if key_id(name, _raw_public(private.public_key())) != kid:
        raise MalformedKeyError(f"signer key id {kid:08x} does not match the key")
    return Signer(name, kid, private)


def generate_key(name: str) -> Signer:
    if not _valid_name(name):
        raise MalformedKeyError(f"key name {name!r} is empty or contains '+' or whitespace")
    private = Ed25519PrivateKey.generate()
    return Signer(name, key_id(name, _raw_public(private.public_key())), private)


def sign_note(text: str, signers: list[Signer]) -> str:
    """Append one signature line per signer to `text` (which must end in a newline)."""
    _check_text(text)
    message = text.encode()
    lines = []
    for signer in signers:
        blob = signer.key_id.to_bytes(4, "big") + signer.sign(message)
        lines.append(f"{EM_DASH_PREFIX}{signer.name} {base64.b64encode(blob).decode()}\n")
    return text + "\n" + "".join(lines)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise MalformedNoteError("note text must end with a newline")
    if "\n\n" in text:
        raise MalformedNoteError("note text must not contain a blank line")
    for ch in text:
        if ch != "\n" and unicodedata.category(ch) == "Cc":
            raise MalformedNoteError(f"note text contains control character U+{ord(ch):04X}")


def open_note(note: str, verifiers: list[Verifier]) -> tuple[str, list[Verifier]]:
    """Return (text, verifiers whose signature checked out); raise NoteError otherwise.

    As in the Go reference: signatures by keys we do not know are ignored, a bad
    signature by a known key is an error, and at least one known key must sign.
    """
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    text, sig_block = note[: split + 1], note[split + 2:]
    _check_text(text)
    if not sig_block.endswith("\n"):
        raise MalformedNoteError("signature block must end with a newline")
    sig_lines = sig_block[:-1].split("\n")
    if len(sig_lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"note has more than {MAX_SIGNATURES} signatures")
    known = {(v.name, v.key_id): v for v in verifiers}
    message = text.encode()
    verified: list[Verifier] = []
    seen: set[tuple[str, int]] = set()
    for line in sig_lines:
        if not line.startswith(EM_DASH_PREFIX):
            raise MalformedNoteError(f"signature line {line!r} does not start with an em dash and a space")
        name, sep, blob = line[len(EM_DASH_PREFIX):].partition(" ")
        if not sep or not _valid_name(name) or " " in blob:
            raise MalformedNoteError(f"signature line {line!r} is not '— <name> <base64>'")
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error:
            raise MalformedNoteError(f"signature by {name} is not valid base64") from None
        if len(raw) < 5:
            raise MalformedNoteError(f"signature by {name} is too short")
        kid = int.from_bytes(raw[:4], "big")
        verifier = known.get((name, kid))
        if verifier is None:
            continue
        if (name, kid) in seen:
            raise MalformedNoteError(f"note carries two signatures by key {name}+{kid:08x}")
        seen.add((name, kid))
        if not verifier.verify(message, raw[4:]):
            raise BadSignatureError(f"signature by key {name}+{kid:08x} does not verify")
        verified.append(verifier)
    if not verified:
        names = ", ".join(v.key_string.rsplit("+", 1)[0] for v in verifiers) or "none"
        raise UnknownKeyError(f"note is not signed by any trusted key (trusted: {names})")
    return text, verified


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        text = "".join(line + "\n" for line in lines)
        _check_text(text)
        return text


def parse_checkpoint_body(text: str) -> Checkpoint:
    if not text.endswith("\n"):
        raise MalformedNoteError("checkpoint body must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedNoteError("checkpoint body needs origin, size and root lines")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise MalformedNoteError("checkpoint origin line is empty")
    if not (size_text.isascii() and size_text.isdigit()) or (size_text != "0" and size_text.startswith("0")):
        raise MalformedNoteError(f"checkpoint size {size_text!r} is not a canonical decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise MalformedNoteError("checkpoint root hash is not valid base64") from None
    if len(root) != 32:
        raise MalformedNoteError(f"checkpoint root hash has {len(root)} bytes, not 32")
    if any(not line for line in extensions):
        raise MalformedNoteError("checkpoint extension lines must not be empty")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    return sign_note(checkpoint.body(), [signer])


def open_checkpoint(note: str, verifier: Verifier, origin: str | None = DEFAULT_ORIGIN) -> Checkpoint:
    """Verify `note` against `verifier` and parse it; check the origin unless `origin` is None."""
    text, _ = open_note(note, [verifier])
    checkpoint = parse_checkpoint_body(text)
    if origin is not None and checkpoint.origin != origin:
        raise MalformedNoteError(f"checkpoint origin is {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint


def parse_unverified_checkpoint(note: str) -> Checkpoint:
    """Parse a checkpoint note without checking signatures (for reporting what it claims)."""
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    return parse_checkpoint_body(note[: split + 1])
