"""Keys the services need, kept as files in the configured secrets directory.

Each is created on first start (random, 0600) and must be backed up with the
database: without the master key, sealed personal data cannot be read, and
without the RPC key, services cannot talk. Environment variables override the
files (base64), for deployments that inject secrets.
"""
from __future__ import annotations

import base64
import os
from pathlib import Path

from zhuqi.runtime.config import Config

KEYS = {
    "master": 32,        # wraps each volunteer's personal-data key
    "phone_pepper": 32,  # HMAC key for phone-number lookups (phone numbers are low entropy)
    "rpc": 32,           # seals RPC payloads on the broker
    "event_store": 32,   # eventsourcing's application-level cipher: stored events encrypted at rest
}


def _env_name(name: str) -> str:
    return f"ZHUQI_{name.upper()}_KEY"


def key(config: Config, name: str) -> bytes:
    if (value := os.environ.get(_env_name(name))):
        raw = base64.b64decode(value)
    else:
        path = Path(config.secrets_dir) / f"{name}.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(base64.b64encode(os.urandom(KEYS.get(name, 32))).decode() + "\n")
        raw = base64.b64decode(path.read_text().strip())
    if len(raw) != KEYS.get(name, 32):
        from zhuqi.runtime.config import ConfigError
        raise ConfigError("secrets.dir", str(config.secrets_dir), f"key {name!r} must be {KEYS.get(name, 32)} bytes")
    return raw


def key_b64(config: Config, name: str) -> str:
    return base64.b64encode(key(config, name)).decode()
