"""The public event contract of the registry (version 1).

``to_published`` maps each stored domain event to the event other services and
union units integrate against; the outbox relay calls it for every
notification. Reservation (index) events are internal and map to ``None``.

Personal fields are never published in clear. ``volunteer_registered``
carries them only as ``personal = {"alg": "A256GCM", "kid": <volunteer id>,
"ciphertext": base64(nonce(12) || ciphertext || tag)}``, sealed with the
volunteer's data key with associated data ``b"zhuqi.registry.personal:" +
volunteer_id.bytes``; once the volunteer is erased, the key no longer exists
and the ciphertext is unrecoverable everywhere. JSON Schemas of every ``data``
are in ``contracts/schemas/registry/<name>.v1.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .domain.enterprise import Enterprise
from .domain.reservation import Reservation
from .domain.team import ServiceTeam
from .domain.volunteer import Volunteer
from .personal_data import ALG

VERSION = 1


@dataclass(frozen=True)
class PublishedEvent:
    name: str
    version: int
    subject: str  # aggregate id
    unit: str  # responsible unit code (szgh for the city team)
    data: dict[str, Any]
    occurred_at: str  # ISO 8601 UTC timestamp of the domain event
    sequence: int  # aggregate version: consumers de-duplicate on (subject, sequence)


def _volunteer_registered(e: Any) -> dict[str, Any]:
    return {"volunteer_id": str(e.originator_id), "unit": e.unit,
            "honours": list(e.honours), "expertise": list(e.expertise),
            "employer_industry": e.employer_industry, "skill_grade": e.skill_grade,
            "registered_on": e.registered_on,
            "personal": {"alg": ALG, "kid": str(e.originator_id), "ciphertext": e.sealed_personal}}


def _vid(e: Any, **extra: Any) -> dict[str, Any]:
    return {"volunteer_id": str(e.originator_id), "unit": e.unit, **extra}


def _tid(e: Any, **extra: Any) -> dict[str, Any]:
    return {"team_id": str(e.originator_id), "unit": e.unit, **extra}


def _eid(e: Any, **extra: Any) -> dict[str, Any]:
    return {"enterprise_id": str(e.originator_id), "unit": e.unit, **extra}


# Domain event class -> (published name, data builder). Exhaustive: a test
# checks every event class of every aggregate is listed here or in INTERNAL.
MAPPING: dict[type, tuple[str, Callable[[Any], dict[str, Any]]]] = {
    Volunteer.Registered: ("volunteer_registered", _volunteer_registered),
    Volunteer.HonourAdded: ("volunteer_honour_added", lambda e: _vid(e, honour=e.honour)),
    Volunteer.Suspended: ("volunteer_suspended", lambda e: _vid(e, reason=e.reason)),
    Volunteer.Reinstated: ("volunteer_reinstated", _vid),
    Volunteer.Withdrawn: ("volunteer_withdrawn",
                          lambda e: _vid(e, erasure_requested=e.erasure_requested)),
    Volunteer.PersonalDataErased: ("volunteer_personal_data_erased", _vid),
    ServiceTeam.Formed: ("team_formed", lambda e: _tid(e, tier=e.tier, name=e.name)),
    ServiceTeam.MemberJoined: ("team_member_joined",
                               lambda e: _tid(e, volunteer_id=e.volunteer_id, joined_on=e.joined_on)),
    ServiceTeam.MemberLeft: ("team_member_left",
                             lambda e: _tid(e, volunteer_id=e.volunteer_id, left_on=e.left_on)),
    Enterprise.Registered: ("enterprise_registered", lambda e: _eid(
        e, name=e.name, credit_code=e.credit_code, industry=e.industry, size=e.size,
        little_giant=e.little_giant, unionised=e.unionised, competitors=list(e.competitors))),
    Enterprise.Unionised: ("enterprise_unionised", _eid),
    Enterprise.CompetitorAdded: ("enterprise_competitor_added",
                                 lambda e: _eid(e, competitor_id=e.competitor_id)),
}
INTERNAL: frozenset[type] = frozenset(
    {Reservation.Reserved, Reservation.Released, Reservation.Retaken})
NAMES: tuple[str, ...] = tuple(name for name, _ in MAPPING.values())


def to_published(domain_event: Any) -> PublishedEvent | None:
    """The public form of a stored domain event, or ``None`` for internal events."""
    cls = type(domain_event)
    if cls in INTERNAL:
        return None
    try:
        name, build = MAPPING[cls]
    except KeyError:
        raise LookupError(f"no published form for {cls.__qualname__}") from None
    data = build(domain_event)
    return PublishedEvent(name=name, version=VERSION, subject=str(domain_event.originator_id),
                          unit=data["unit"], data=data,
                          occurred_at=domain_event.timestamp.isoformat(),
                          sequence=domain_event.originator_version)
