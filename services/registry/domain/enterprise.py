"""Enterprise aggregate (企业) and validation of its registration.

Competitors are recorded one-way on the enterprise that declares them; the
conflict-of-interest check elsewhere treats the relation as symmetric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from . import credit_code
from .errors import Conflict, Problem
from .industries import check_industry
from .text import check_text
from .units import check_unit

SIZES = ("large", "medium", "small", "micro")


@dataclass
class EnterpriseRegistration:
    unit: Any
    name: Any
    credit_code: Any
    industry: Any
    size: Any
    little_giant: Any = False
    unionised: Any = False
    competitors: Any = ()


@dataclass(frozen=True)
class ValidEnterprise:
    unit: str
    name: str
    credit_code: str
    industry: str
    size: str
    little_giant: bool
    unionised: bool
    # Enterprise ids, or credit codes of enterprises registered earlier or in
    # the same bulk command (the importer refers to competitors by code).
    competitors: tuple[UUID | str, ...]


def _check_flag(field: str, value: Any) -> tuple[bool | None, list[Problem]]:
    if isinstance(value, bool):
        return value, []
    return None, [Problem(field, value, "boolean", f"{field} must be true or false")]


def _competitor_reference(value: Any) -> UUID | str | None:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        code, problems = credit_code.validate(value)
        return None if problems else code


def validate_enterprise(raw: EnterpriseRegistration) -> tuple[ValidEnterprise | None, list[Problem]]:
    problems: list[Problem] = []
    unit, found = check_unit(raw.unit)
    problems += found
    name, found = check_text("name", raw.name, limit_key="enterprise.name")
    problems += found
    code, found = credit_code.validate(raw.credit_code)
    problems += found
    industry, found = check_industry(raw.industry)
    problems += found
    if raw.size not in SIZES:
        problems.append(Problem("size", raw.size, "known_size",
                                f"size must be one of {', '.join(SIZES)} / 企业规模无效"))
    little_giant, found = _check_flag("little_giant", raw.little_giant)
    problems += found
    unionised, found = _check_flag("unionised", raw.unionised)
    problems += found
    competitors: list[UUID | str] = []
    for index, value in enumerate(raw.competitors or ()):
        reference = _competitor_reference(value)
        if reference is None:
            problems.append(Problem(f"competitors[{index}]", value, "competitor_reference",
                                    "competitor must be an enterprise id or a valid credit code"))
        elif reference == code:
            problems.append(Problem(f"competitors[{index}]", value, "competitor_self",
                                    "an enterprise cannot compete with itself"))
        else:
            competitors.append(reference)
    if problems:
        return None, problems
    return ValidEnterprise(unit, name, code, industry, raw.size, little_giant, unionised,
                           tuple(dict.fromkeys(competitors))), []


class Enterprise(Aggregate):
    @event("Registered")
    def __init__(self, id: UUID, unit: str, name: str, credit_code: str,  # noqa: A002
                 industry: str, size: str, little_giant: bool, unionised: bool,
                 competitors: list[str]) -> None:
        self.unit = unit
        self.name = name
        self.credit_code = credit_code
        self.industry = industry
        self.size = size
        self.little_giant = little_giant
        self.unionised = unionised
        self.competitors = list(competitors)

    def mark_unionised(self) -> None:
        if self.unionised:
            raise Conflict("already_unionised", f"enterprise {self.id} is already unionised / 已建会")
        self._unionised(unit=self.unit)

    def add_competitor(self, competitor: Enterprise) -> None:
        if competitor.id == self.id:
            raise Conflict("competitor_self", "an enterprise cannot compete with itself")
        if competitor.industry != self.industry:
            raise Conflict("competitor_industry",
                           f"competitor {competitor.id} is in {competitor.industry}, not "
                           f"{self.industry} / 竞争企业须属同一行业大类")
        if str(competitor.id) in self.competitors:
            raise Conflict("duplicate_competitor", f"{competitor.id} is already a competitor")
        self._competitor_added(competitor_id=str(competitor.id), unit=self.unit)

    @event("Unionised")
    def _unionised(self, unit: str) -> None:
        self.unionised = True

    @event("CompetitorAdded")
    def _competitor_added(self, competitor_id: str, unit: str) -> None:
        self.competitors.append(competitor_id)
