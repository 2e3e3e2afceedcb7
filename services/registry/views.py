"""Projections of aggregates to directory rows and to query results.

One place decides what the read model holds, used both after commands and
when rebuilding the directory from the event store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .domain.enterprise import Enterprise
from .domain.reservation import Reservation
from .domain.team import ServiceTeam
from .domain.volunteer import Volunteer
from .storage import DirectoryRow

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; pass ``next_cursor`` as ``after`` to get the next page."""

    items: list[T]
    next_cursor: int | None


def volunteer_row(v: Volunteer, reservation_id: Any = None) -> DirectoryRow:
    return DirectoryRow(
        id=v.id, kind="volunteer", unit=v.unit, status=v.status,
        natural_key=reservation_id, summary=volunteer_summary(v), sealed=v.sealed_personal)


def volunteer_summary(v: Volunteer) -> dict[str, Any]:
    return {
        "honours": v.honours, "expertise": v.expertise,
        "employer_industry": v.employer_industry, "skill_grade": v.skill_grade,
        "registered_on": v.registered_on, "suspension_reason": v.suspension_reason,
        "erasure_requested": v.erasure_requested, "personal_erased": v.personal_erased,
    }


def team_row(t: ServiceTeam) -> DirectoryRow:
    return DirectoryRow(id=t.id, kind="team", unit=t.unit, status="active",
                        summary=team_summary(t))


def team_summary(t: ServiceTeam) -> dict[str, Any]:
    return {"tier": t.tier, "name": t.name, "formed_on": t.formed_on,
            "members": [{"volunteer_id": k, "joined_on": d} for k, d in t.members.items()]}


def enterprise_row(e: Enterprise, reservation_id: Any = None) -> DirectoryRow:
    return DirectoryRow(id=e.id, kind="enterprise", unit=e.unit, status="active",
                        natural_key=reservation_id, summary=enterprise_summary(e))


def enterprise_summary(e: Enterprise) -> dict[str, Any]:
    return {"name": e.name, "credit_code": e.credit_code, "industry": e.industry,
            "size": e.size, "little_giant": e.little_giant, "unionised": e.unionised,
            "competitors": e.competitors}


def reservation_row(r: Reservation) -> DirectoryRow:
    # Lets bulk commands learn in one query which keys are held or released.
    return DirectoryRow(id=r.id, kind="reservation", unit="-",
                        status="held" if r.held else "released", summary={})


def masked(personal: dict[str, Any] | None) -> dict[str, Any] | None:
    """Personal fields for a listing: phone as 138****5678, ID number as 320582********1231."""
    if personal is None:
        return None
    shown = dict(personal)
    if shown.get("phone"):
        phone = str(shown["phone"])
        shown["phone"] = phone[:3] + "*" * max(len(phone) - 7, 0) + phone[-4:] if len(phone) > 7 else "*" * len(phone)
    if shown.get("id_number"):
        number = str(shown["id_number"])
        shown["id_number"] = number[:6] + "*" * max(len(number) - 10, 0) + number[-4:] if len(number) > 10 else "*" * len(number)
    return shown
