"""Sealing of personal data (PIPL) with per-volunteer data keys (crypto-shredding).

* Each volunteer gets a random 256-bit data key. The personal fields of the
  feedback form are serialised to JSON and sealed with AES-256-GCM under that
  key; the volunteer id is the associated data, so a ciphertext cannot be
  replayed as another volunteer's. Sealed form: base64(nonce(12) || ciphertext || tag(16)).
* The data key is stored only wrapped (AES-256-GCM under the master key, again
  bound to the volunteer id) in ``<schema>.personal_data_keys``.
* Erasure deletes the key row in the same transaction as the
  ``PersonalDataErased`` event; every copy of the ciphertext (events, read
  model, published events, backups of events) becomes unreadable.
* Phone numbers are low-entropy, so the natural key is HMAC-SHA256 under a
  secret pepper, never a plain hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALG = "A256GCM"
_NONCE = 12
_WRAP_AAD = b"zhuqi.registry.data-key:"
_SEAL_AAD = b"zhuqi.registry.personal:"


class KeyMissing(Exception):
    """The volunteer's data key does not exist (never created or crypto-shredded)."""


def decode_secret(value: str | bytes, name: str) -> bytes:
    """Decode a base64 secret from the environment and insist on 32 bytes."""
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else bytes(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be base64") from exc
    if len(raw) != 32:
        raise ValueError(f"{name} must decode to 32 bytes, got {len(raw)}")
    return raw


class Sealer:
    def __init__(self, master_key: bytes, pepper: bytes):
        self._master = AESGCM(master_key)
        self._pepper = pepper
        # Identifies which master key wrapped a row, so keys can be rotated.
        self.master_key_id = hashlib.sha256(b"kid:" + master_key).hexdigest()[:16]

    def phone_key(self, phone: str) -> str:
        return hmac.new(self._pepper, phone.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def new_data_key() -> bytes:
        return AESGCM.generate_key(256)

    def wrap(self, volunteer_id: UUID, data_key: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._master.encrypt(nonce, data_key, _WRAP_AAD + volunteer_id.bytes)

    def unwrap(self, volunteer_id: UUID, wrapped: bytes) -> bytes:
        return self._master.decrypt(wrapped[:_NONCE], wrapped[_NONCE:],
                                    _WRAP_AAD + volunteer_id.bytes)

    @staticmethod
    def seal(volunteer_id: UUID, data_key: bytes, fields: dict[str, Any]) -> str:
        nonce = os.urandom(_NONCE)
        plaintext = json.dumps(fields, ensure_ascii=False, sort_keys=True).encode()
        sealed = nonce + AESGCM(data_key).encrypt(nonce, plaintext, _SEAL_AAD + volunteer_id.bytes)
        return base64.b64encode(sealed).decode()

    @staticmethod
    def open(volunteer_id: UUID, data_key: bytes, sealed: str) -> dict[str, Any]:
        raw = base64.b64decode(sealed)
        plaintext = AESGCM(data_key).decrypt(raw[:_NONCE], raw[_NONCE:],
                                             _SEAL_AAD + volunteer_id.bytes)
        return json.loads(plaintext)
