"""A kombu serializer that seals RPC payloads (AES-256-GCM) on the broker.

RPC arguments can carry personal data (a volunteer's phone number on
registration); sealing every payload keeps it out of the broker in plain text.
Published events do not use this: they are public contracts and carry no
personal data in the clear by construction.
"""
from __future__ import annotations

import json
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NAME = "zhuqi-sealed-json"
CONTENT_TYPE = "application/x-zhuqi-sealed-json"
_aead: AESGCM | None = None


def configure(key: bytes) -> None:
    global _aead
    _aead = AESGCM(key)


def _cipher() -> AESGCM:
    if _aead is None:
        raise RuntimeError("sealed RPC serializer used before zhuqi.runtime.sealed.configure(key)")
    return _aead


def encode(payload) -> bytes:
    nonce = os.urandom(12)
    return nonce + _cipher().encrypt(nonce, json.dumps(payload, ensure_ascii=False, default=str).encode(), None)


def decode(blob) -> object:
    blob = blob if isinstance(blob, (bytes, bytearray)) else blob.encode("latin-1")
    return json.loads(_cipher().decrypt(bytes(blob[:12]), bytes(blob[12:]), None))


def register() -> None:
    """Make the serializer known to kombu (nameko services do this from their settings)."""
    import kombu.serialization

    kombu.serialization.register(NAME, encode, decode, content_type=CONTENT_TYPE, content_encoding="binary")


def nameko_settings() -> dict:
    return {
        "serializer": NAME,
        "ACCEPT": [NAME],
        "SERIALIZERS": {NAME: {"encoder": "zhuqi.runtime.sealed.encode", "decoder": "zhuqi.runtime.sealed.decode",
                               "content_type": CONTENT_TYPE, "content_encoding": "binary"}},
    }
