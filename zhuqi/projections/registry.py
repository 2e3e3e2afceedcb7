"""Registry figures: volunteers, teams and enterprises per unit.

Usage: `state = new_state()`, then `apply(state, type, data, time)` for every
event in ledger order, then `figures(state)`.  Unknown event types are counted,
not fatal: a newer publisher must not break an older report.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

PREFIX = "cn.suzhou.zhuqi.registry."
VOLUNTEER_STATUSES = ("active", "suspended", "withdrawn")
TEAM_TIERS = ("city", "district", "sector")


@dataclass
class Volunteer:
    unit: str
    status: str = "active"
    honours: int = 0
    erased: bool = False


@dataclass
class Team:
    unit: str
    tier: str
    members: set[str] = field(default_factory=set)


@dataclass
class RegistryState:
    volunteers: dict[str, Volunteer] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    enterprises: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (unit, size)
    applied: int = 0
    unknown: Counter = field(default_factory=Counter)
    orphans: int = 0  # events about an aggregate never registered (e.g. replay cut before it)


def new_state() -> RegistryState:
    return RegistryState()


def _volunteer(state: RegistryState, data: Mapping[str, Any]) -> Volunteer | None:
    v = state.volunteers.get(data["volunteer_id"])
    if v is None:
        state.orphans += 1
    return v


def _registered(state, data):
    state.volunteers[data["volunteer_id"]] = Volunteer(unit=data["unit"])


def _status(status: str) -> Callable:
    def handler(state, data):
        v = _volunteer(state, data)
        if v is not None:
            v.status = status
    return handler


def _honour(state, data):
    v = _volunteer(state, data)
    if v is not None:
        v.honours += 1


def _erased(state, data):
    # Erasure removes personal data, not the fact that the volunteer exists or their status.
    v = _volunteer(state, data)
    if v is not None:
        v.erased = True


def _team_formed(state, data):
    state.teams[data["team_id"]] = Team(unit=data["unit"], tier=data["tier"])


def _team_member(joined: bool) -> Callable:
    def handler(state, data):
        team = state.teams.get(data["team_id"])
        if team is None:
            state.orphans += 1
        elif joined:
            team.members.add(data["volunteer_id"])
        else:
            team.members.discard(data["volunteer_id"])
    return handler


def _enterprise(state, data):
    state.enterprises[data["enterprise_id"]] = (data["unit"], str(data.get("size", "unknown")))


HANDLERS: dict[str, Callable[[RegistryState, Mapping[str, Any]], None]] = {
    PREFIX + "volunteer_registered.v1": _registered,
    PREFIX + "volunteer_suspended.v1": _status("suspended"),
    PREFIX + "volunteer_reinstated.v1": _status("active"),
    PREFIX + "volunteer_withdrawn.v1": _status("withdrawn"),
    PREFIX + "volunteer_honour_added.v1": _honour,
    PREFIX + "volunteer_personal_data_erased.v1": _erased,
    PREFIX + "team_formed.v1": _team_formed,
    PREFIX + "team_member_joined.v1": _team_member(True),
    PREFIX + "team_member_left.v1": _team_member(False),
    PREFIX + "enterprise_registered.v1": _enterprise,
}
"""Event type -> handler.  Consumers may test membership to skip parsing irrelevant events."""


def apply(state: RegistryState, event_type: str, data: Mapping[str, Any], time: str | None = None) -> bool:
    """Fold one event into `state`; return False (and count it) if the type is unknown.

    `time` is accepted for the common projection signature; registry figures
    depend only on event order, and the as-of cut is made by the caller.
    """
    handler = HANDLERS.get(event_type)
    if handler is None:
        state.unknown[event_type] += 1
        return False
    handler(state, data)
    state.applied += 1
    return True


def figures(state: RegistryState) -> dict[str, Any]:
    """JSON-ready figures; every unit/status/tier key sorted for stable output."""
    volunteers: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(VOLUNTEER_STATUSES, 0))
    honours: Counter = Counter()
    for v in state.volunteers.values():
        volunteers[v.unit][v.status] = volunteers[v.unit].get(v.status, 0) + 1
        honours[v.unit] += v.honours
    teams: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: {tier: {"teams": 0, "members": 0} for tier in TEAM_TIERS})
    for t in state.teams.values():
        slot = teams[t.unit].setdefault(t.tier, {"teams": 0, "members": 0})
        slot["teams"] += 1
        slot["members"] += len(t.members)
    enterprises: dict[str, dict[str, Any]] = defaultdict(lambda: {"total": 0, "by_size": Counter()})
    for unit, size in state.enterprises.values():
        enterprises[unit]["total"] += 1
        enterprises[unit]["by_size"][size] += 1
    return {
        "volunteers": {u: volunteers[u] for u in sorted(volunteers)},
        "honours": {u: honours[u] for u in sorted(honours)},
        "teams": {u: teams[u] for u in sorted(teams)},
        "enterprises": {u: {"total": e["total"], "by_size": dict(sorted(e["by_size"].items()))}
                        for u, e in sorted(enterprises.items())},
        "events_applied": state.applied,
        "events_about_unknown_aggregates": state.orphans,
        "unknown_event_types": dict(sorted(state.unknown.items())),
    }
