"""The event contract: JSON Schemas of every event's data and the AsyncAPI document.

Contracts live in the top-level `contracts` package as data, one schema file per
event type and version: `contracts/schemas/<service>/<name>.v<N>.json`. This is
the only thing services share; publishing and consuming both validate against it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import jsonschema_rs
import yaml
from jsonschema import Draft202012Validator

TYPE_PREFIX = "cn.suzhou.zhuqi."
_TYPE_RE = re.compile(r"^cn\.suzhou\.zhuqi\.([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.v([1-9][0-9]*)$")


@dataclass(frozen=True)
class EventType:
    service: str
    name: str
    version: int

    @property
    def type(self) -> str:
        return f"{TYPE_PREFIX}{self.service}.{self.name}.v{self.version}"

    @property
    def routing_key(self) -> str:
        return f"{self.service}.{self.name}.v{self.version}"

    @property
    def exchange(self) -> str:
        return exchange_name(self.service)

    @classmethod
    def parse(cls, type_: str) -> "EventType":
        match = _TYPE_RE.match(type_ or "")
        if not match:
            raise ValueError(f"event type {type_!r} is not of the form {TYPE_PREFIX}<service>.<name>.v<N>")
        return cls(match.group(1), match.group(2), int(match.group(3)))


def exchange_name(service: str) -> str:
    """One durable topic exchange per publishing service."""
    return f"zhuqi.{service}"


class SchemaViolation(ValueError):
    def __init__(self, type_: str, path: str, message: str):
        self.type, self.path, self.message = type_, path, message
        super().__init__(f"{type_}: data{path}: {message}")


class UnknownEventType(LookupError):
    pass


class ContractRegistry:
    def __init__(self, schemas: dict[str, dict]):
        self.schemas = schemas
        for schema in schemas.values():
            Draft202012Validator.check_schema(schema)
        # Every message is validated twice (publish and consume): the compiled Rust
        # validator is about 90 times faster than the pure-Python one here.
        self._validators = {t: jsonschema_rs.validator_for(s) for t, s in schemas.items()}

    def types(self, service: str | None = None) -> list[EventType]:
        found = [EventType.parse(t) for t in self.schemas]
        return sorted((e for e in found if service in (None, e.service)), key=lambda e: e.type)

    def services(self) -> list[str]:
        return sorted({e.service for e in self.types()})

    def knows(self, type_: str) -> bool:
        return type_ in self._validators

    def validate(self, type_: str, data: object) -> None:
        validator = self._validators.get(type_)
        if validator is None:
            raise UnknownEventType(f"no contract for event type {type_!r}")
        if validator.is_valid(data):
            return
        error = min(validator.iter_errors(data), key=lambda e: [str(p) for p in e.instance_path])
        path = "".join(f"[{p!r}]" for p in error.instance_path)
        raise SchemaViolation(type_, path, error.message)


@lru_cache(maxsize=1)
def registry() -> ContractRegistry:
    schemas: dict[str, dict] = {}
    root = resources.files("contracts").joinpath("schemas")
    for service_dir in root.iterdir():
        if not service_dir.is_dir() or service_dir.name.startswith(("_", ".")):
            continue
        for file in service_dir.iterdir():
            match = re.match(r"^([a-z][a-z0-9_]*)\.v([1-9][0-9]*)\.json$", file.name)
            if match:
                et = EventType(service_dir.name, match.group(1), int(match.group(2)))
                schemas[et.type] = json.loads(file.read_text(encoding="utf-8"))
    return ContractRegistry(schemas)


@lru_cache(maxsize=1)
def asyncapi() -> dict:
    return yaml.safe_load(resources.files("contracts").joinpath("asyncapi.yaml").read_text(encoding="utf-8"))
