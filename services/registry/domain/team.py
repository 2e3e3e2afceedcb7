"""ServiceTeam aggregate: the "1+10+N" structure (市级 1, 辖市区 10, 行业/企业 N).

Tier rules that depend on other aggregates (the single city team, one district
team per district, members being eligible active volunteers) are enforced by
the application with reservations; this aggregate guards its own membership.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from .errors import Conflict, Problem, ValidationError

TIERS = ("city", "district", "sector")
# The city-tier team belongs to the city federation itself (苏州市总工会), which
# is not one of the 45 responsible units; its events carry this owner code.
CITY_TEAM_UNIT = "szgh"


class ServiceTeam(Aggregate):
    @event("Formed")
    def __init__(self, unit: str, tier: str, name: str, formed_on: str) -> None:
        self.unit = unit
        self.tier = tier
        self.name = name
        self.formed_on = formed_on
        # volunteer id (str) -> ISO join date, current members only.
        self.members: dict[str, str] = {}
        # volunteer id (str) -> ISO date of the latest departure.
        self.left: dict[str, str] = {}

    def join(self, volunteer_id: UUID, joined_on: date) -> None:
        key = str(volunteer_id)
        if key in self.members:
            raise Conflict("already_member",
                           f"volunteer {key} is already a member of team {self.id} / 已是队员")
        last_left = self.left.get(key)
        if last_left is not None and joined_on.isoformat() < last_left:
            raise ValidationError([Problem("joined_on", joined_on.isoformat(), "after_last_leave",
                                           f"rejoining must not predate leaving on {last_left}")])
        self._member_joined(volunteer_id=key, joined_on=joined_on.isoformat(), unit=self.unit)

    def leave(self, volunteer_id: UUID, left_on: date) -> None:
        key = str(volunteer_id)
        joined_on = self.members.get(key)
        if joined_on is None:
            raise Conflict("not_member", f"volunteer {key} is not a member of team {self.id}")
        if left_on.isoformat() < joined_on:
            raise ValidationError([Problem("left_on", left_on.isoformat(), "left_on_after_joined_on",
                                           f"left date must be on or after the join date "
                                           f"{joined_on} / 离队日期不得早于入队日期")])
        self._member_left(volunteer_id=key, left_on=left_on.isoformat(), unit=self.unit)

    @event("MemberJoined")
    def _member_joined(self, volunteer_id: str, joined_on: str, unit: str) -> None:
        self.members[volunteer_id] = joined_on

    @event("MemberLeft")
    def _member_left(self, volunteer_id: str, left_on: str, unit: str) -> None:
        del self.members[volunteer_id]
        self.left[volunteer_id] = left_on
