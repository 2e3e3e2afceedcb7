"""One YAML file of settings, overridable by environment variables.

A wrong or unreachable setting stops start-up with a message that names the
setting, the environment variable that overrides it and the offending value.
"""
from __future__ import annotations

import copy
import os
import socket
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ENV_PREFIX = "ZHUQI_"
CONFIG_FILE_ENV = "ZHUQI_CONFIG"
SHORT_ENV = {
    "ZHUQI_AMQP_URI": ("amqp", "uri"),
    "ZHUQI_POSTGRES_DSN": ("postgres", "dsn"),
}


class ConfigError(Exception):
    """A setting is missing, malformed or points at something unreachable."""

    def __init__(self, path: str, value: Any, problem: str):
        self.path, self.value, self.problem = path, value, problem
        env = ENV_PREFIX + "__".join(path.split(".")).upper()
        super().__init__(f"setting {path} (env {env}) = {_redact(value)!r}: {problem}")


def _redact(value: Any) -> Any:
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        if parts.password:
            return value.replace(f":{parts.password}@", ":***@")
    return value


def _builtin_defaults() -> dict:
    text = resources.files("zhuqi.runtime").joinpath("defaults.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _coerce(text: str, like: Any) -> Any:
    if isinstance(like, bool):
        return text.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(like, int):
        return int(text)
    if isinstance(like, float):
        return float(text)
    return text


def _apply_env(data: dict, environ: dict) -> dict:
    for name, path in SHORT_ENV.items():
        if name in environ:
            data[path[0]][path[1]] = environ[name]
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name[len(ENV_PREFIX):]:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(".".join(path), raw, "is not a section")
        try:
            node[path[-1]] = _coerce(raw, node.get(path[-1], ""))
        except ValueError:
            raise ConfigError(".".join(path), raw, "is not a number") from None
    return data


@dataclass(frozen=True)
class ServiceSettings:
    name: str
    http_port: int
    schema: str
    extra: dict


@dataclass(frozen=True)
class Config:
    """Validated settings; `raw` keeps the merged tree for service-specific keys."""

    raw: dict
    source: str

    @property
    def amqp_uri(self) -> str:
        return self.raw["amqp"]["uri"]

    @property
    def postgres_dsn(self) -> str:
        return self.raw["postgres"]["dsn"]

    @property
    def secrets_dir(self) -> Path:
        return Path(self.raw["secrets"]["dir"])

    def section(self, name: str) -> dict:
        return self.raw.get(name, {})

    def service(self, name: str) -> ServiceSettings:
        try:
            svc = self.raw["services"][name]
        except KeyError:
            raise ConfigError(f"services.{name}", None, "no such service is configured") from None
        extra = {k: v for k, v in svc.items() if k not in ("http_port", "schema")}
        return ServiceSettings(name, int(svc["http_port"]), str(svc["schema"]), extra)

    def with_overrides(self, **sections: dict) -> "Config":
        return validate(_merge(self.raw, sections), self.source)


def _check_int(data: dict, path: str, low: int, high: int) -> None:
    node: Any = data
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, bool) or not isinstance(node, int) or not low <= node <= high:
        raise ConfigError(path, node, f"must be an integer from {low} to {high}")


def validate(data: dict, source: str = "<memory>") -> Config:
    uri = data.get("amqp", {}).get("uri")
    if not isinstance(uri, str) or urlsplit(uri).scheme not in ("amqp", "amqps", "pyamqp"):
        raise ConfigError("amqp.uri", uri, "must be an amqp:// or amqps:// URI")
    dsn = data.get("postgres", {}).get("dsn")
    if not isinstance(dsn, str) or urlsplit(dsn).scheme not in ("postgresql", "postgres"):
        raise ConfigError("postgres.dsn", dsn, "must be a postgresql:// URI")
    for path, low, high in (
        ("amqp.prefetch", 1, 65535),
        ("amqp.heartbeat", 0, 3600),
        ("postgres.pool_size", 1, 100),
        ("outbox.batch_size", 1, 100_000),
        ("outbox.confirm_timeout", 1, 3600),
        ("inbox.batch_size", 1, 100_000),
        ("inbox.max_attempts", 1, 100),
    ):
        _check_int(data, path, low, high)
    ports: dict[int, str] = {}
    for name, svc in data.get("services", {}).items():
        _check_int(data, f"services.{name}.http_port", 1, 65535)
        port = svc["http_port"]
        if port in ports:
            raise ConfigError(f"services.{name}.http_port", port, f"already used by services.{ports[port]}")
        ports[port] = name
        schema = svc.get("schema")
        if not isinstance(schema, str) or not schema.isidentifier() or schema.lower() != schema:
            raise ConfigError(f"services.{name}.schema", schema, "must be a lower-case SQL identifier")
    return Config(raw=data, source=source)


def load(path: str | os.PathLike | None = None, environ: dict | None = None) -> Config:
    """Defaults, then the YAML file (if any), then environment variables."""
    environ = dict(os.environ if environ is None else environ)
    data = _builtin_defaults()
    path = path or environ.get(CONFIG_FILE_ENV)
    source = "defaults"
    if path:
        file = Path(path)
        if not file.is_file():
            raise ConfigError("config file", str(path), "does not exist")
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError("config file", str(path), f"is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError("config file", str(path), "must hold a mapping of sections")
        data = _merge(data, loaded)
        source = str(path)
    return validate(_apply_env(data, environ), source)


def check_reachable(config: Config, timeout: float = 3.0) -> None:
    """Fail fast, naming the setting, when the broker or the database is unreachable."""
    import kombu
    import psycopg

    for path, uri, default_port in (("amqp.uri", config.amqp_uri, 5672), ("postgres.dsn", config.postgres_dsn, 5432)):
        parts = urlsplit(uri)
        host, port = parts.hostname or "127.0.0.1", parts.port or default_port
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            raise ConfigError(path, uri, f"cannot reach {host}:{port} ({exc.strerror or exc})") from None
    try:
        with kombu.Connection(config.amqp_uri, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # kombu raises many kinds; all mean the same to the operator
        raise ConfigError("amqp.uri", config.amqp_uri, f"broker refused the connection ({exc})") from None
    try:
        psycopg.connect(config.postgres_dsn, connect_timeout=int(timeout)).close()
    except psycopg.Error as exc:
        if getattr(exc, "sqlstate", None) == "3D000" or "does not exist" in str(exc) and "database" in str(exc):
            return  # the server answers; the database is created on first start

        raise ConfigError("postgres.dsn", config.postgres_dsn, f"database refused the connection ({str(exc).strip()})") from None
