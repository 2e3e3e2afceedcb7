"""The Volunteer aggregate (劳模工匠) and validation of its registration.

Personal fields reach this aggregate only as ``sealed_personal``: base64 of
AES-256-GCM ciphertext under the volunteer's own data key. Lifecycle::

    active --suspend--> suspended --reinstate--> active
    active|suspended --withdraw--> withdrawn --(erasure requested)--> personal data erased

A withdrawn volunteer cannot be reinstated or suspended; erasure is only
possible after a withdrawal that requested it, and only once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from .errors import Conflict, Problem, ValidationError
from .expertise import check_tags
from .honours import Honour, parse_honour, parse_honours
from .industries import check_industry
from .personal_fields import PersonalFields, check_personal
from .text import check_text
from .units import check_unit

ACTIVE, SUSPENDED, WITHDRAWN = "active", "suspended", "withdrawn"
PERSONAL_FIELDS = ("name", "gender", "employer", "post", "political_status",
                   "education", "phone", "id_number")


@dataclass
class VolunteerRegistration:
    """Raw input of ``register_volunteer``, as an adapter or the importer receives it."""

    unit: Any
    name: Any
    gender: Any
    employer: Any
    post: Any
    political_status: Any
    education: Any
    skill_grade: Any
    honours: Any
    phone: Any
    expertise: Any
    employer_industry: Any
    id_number: Any = None
    registered_on: Any = None


@dataclass(frozen=True)
class ValidRegistration:
    unit: str
    personal: PersonalFields
    skill_grade: str
    honours: tuple[Honour, ...]
    expertise: tuple[str, ...]
    employer_industry: str
    registered_on: date = field(default_factory=date.today)


def validate_registration(raw: VolunteerRegistration) -> tuple[ValidRegistration | None, list[Problem]]:
    """Check every rule and report all problems at once, not just the first."""
    problems: list[Problem] = []
    unit, found = check_unit(raw.unit)
    problems += found
    personal, found = check_personal(raw.__dict__)
    problems += found
    skill_grade, found = check_text("skill_grade", raw.skill_grade)
    problems += found
    honours, found = parse_honours(raw.honours)
    problems += found
    expertise, found = check_tags(raw.expertise)
    problems += found
    industry, found = check_industry(raw.employer_industry, "employer_industry")
    problems += found
    registered_on = raw.registered_on or date.today()
    if isinstance(registered_on, str):
        try:
            registered_on = date.fromisoformat(registered_on)
        except ValueError:
            problems.append(Problem("registered_on", raw.registered_on, "iso_date",
                                    "registered_on must be an ISO date YYYY-MM-DD"))
    if problems:
        return None, problems
    return ValidRegistration(unit, personal, skill_grade, honours, expertise, industry,
                             registered_on), []


class Volunteer(Aggregate):
    @event("Registered")
    def __init__(self, id: UUID, unit: str, sealed_personal: str,  # noqa: A002
                 honours: list[dict[str, Any]], expertise: list[str],
                 employer_industry: str, skill_grade: str, registered_on: str) -> None:
        self.unit = unit
        self.sealed_personal: str | None = sealed_personal
        self.honours = list(honours)
        self.expertise = list(expertise)
        self.employer_industry = employer_industry
        self.skill_grade = skill_grade
        self.registered_on = registered_on
        self.status = ACTIVE
        self.suspension_reason: str | None = None
        self.erasure_requested = False
        self.personal_erased = False

    @property
    def is_eligible_and_active(self) -> bool:
        return self.status == ACTIVE and any(
            Honour(h["kind"], h["level"]).is_eligible for h in self.honours)

    def add_honour(self, honour: Any) -> None:
        self._require_not_withdrawn("add an honour to")
        parsed, problems = parse_honour(honour, "honour")
        if problems or parsed is None:
            raise ValidationError(problems)
        if parsed.to_dict() in self.honours:
            raise Conflict("duplicate_honour", f"volunteer {self.id} already holds {parsed.to_dict()}")
        self._honour_added(honour=parsed.to_dict(), unit=self.unit)

    def suspend(self, reason: str) -> None:
        self._require_not_withdrawn("suspend")
        if self.status == SUSPENDED:
            raise Conflict("already_suspended", f"volunteer {self.id} is already suspended")
        text, problems = check_text("reason", reason)
        if problems:
            raise ValidationError(problems)
        self._suspended(reason=text, unit=self.unit)

    def reinstate(self) -> None:
        self._require_not_withdrawn("reinstate")
        if self.status != SUSPENDED:
            raise Conflict("not_suspended", f"volunteer {self.id} is not suspended")
        self._reinstated(unit=self.unit)

    def withdraw(self, erase: bool) -> None:
        self._require_not_withdrawn("withdraw")
        self._withdrawn(erasure_requested=erase, unit=self.unit)

    def erase_personal_data(self) -> None:
        if not self.erasure_requested:
            raise Conflict("erasure_not_requested",
                           f"volunteer {self.id} has not withdrawn with an erasure request")
        if self.personal_erased:
            raise Conflict("already_erased", f"volunteer {self.id} personal data already erased")
        self._personal_data_erased(unit=self.unit)

    def _require_not_withdrawn(self, action: str) -> None:
        if self.status == WITHDRAWN:
            raise Conflict("withdrawn", f"cannot {action} volunteer {self.id}: withdrawn / 已退出")

    @event("HonourAdded")
    def _honour_added(self, honour: dict[str, Any], unit: str) -> None:
        self.honours.append(honour)

    @event("Suspended")
    def _suspended(self, reason: str, unit: str) -> None:
        self.status = SUSPENDED
        self.suspension_reason = reason

    @event("Reinstated")
    def _reinstated(self, unit: str) -> None:
        self.status = ACTIVE
        self.suspension_reason = None

    @event("Withdrawn")
    def _withdrawn(self, erasure_requested: bool, unit: str) -> None:
        self.status = WITHDRAWN
        self.erasure_requested = erasure_requested

    @event("PersonalDataErased")
    def _personal_data_erased(self, unit: str) -> None:
        # The ciphertext stays in the Registered event (history is immutable) but
        # is unreadable once the key row is destroyed; the live state drops it.
        self.personal_erased = True
        self.sealed_personal = None
