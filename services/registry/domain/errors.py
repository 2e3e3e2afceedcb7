"""Errors raised by registry commands.

Every refusal carries machine-readable detail so HTTP adapters, the bulk
importer and the console can show the user *which* field, *which* value and
*which* rule; a refused command stores nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One violated rule.

    ``item`` is the zero-based position of the offending record in a bulk
    command (``None`` for single commands); the importer turns it into the row
    number the user sees in the file.
    """

    field: str
    value: Any
    rule: str
    message: str
    item: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def at(self, item: int) -> Problem:
        return Problem(self.field, self.value, self.rule, self.message, item)


class RegistryError(Exception):
    """Base class of every error a registry command raises on purpose."""


class ValidationError(RegistryError):
    """The command's input breaks one or more rules; ``problems`` lists all of them."""

    def __init__(self, problems: list[Problem]):
        if not problems:
            raise ValueError("ValidationError needs at least one problem")
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in self.problems))


class NotFound(RegistryError):
    """The command or query names an aggregate that does not exist."""

    def __init__(self, kind: str, ident: Any):
        self.kind = kind
        self.ident = ident
        super().__init__(f"{kind} {ident} not found / 未找到{kind} {ident}")


class Conflict(RegistryError):
    """The command is valid in itself but clashes with the registry's state:
    a duplicate natural key or a forbidden state transition."""

    def __init__(self, rule: str, message: str):
        self.rule = rule
        super().__init__(message)
