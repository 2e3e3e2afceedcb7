"""The registry service: a thin nameko adapter around RegistryApplication.

Entrypoints: RPC for other services (below), HTTP for the units' forms and
scripts (every route declared in `http_api.py`); the outbox relay runs in the
background and publishes every stored event. Nothing here decides anything:
the rules live in `domain/`.
"""
from __future__ import annotations

import dataclasses

from nameko.rpc import rpc

from services.registry import bootstrap
from services.registry.domain.enterprise import EnterpriseRegistration
from services.registry.domain.errors import Problem, RegistryError, ValidationError
from services.registry.domain.volunteer import VolunteerRegistration
from services.registry.http_api import api
from zhuqi.runtime.hosting import BackgroundLoop, ServiceBase, SharedResource, http_routes, zhuqi_config


def _registration(cls, payload):
    """Build a registration from an RPC payload; missing or unknown fields are a ValidationError."""
    if not isinstance(payload, dict):
        raise ValidationError([Problem("registration", repr(payload)[:100], "object", "must be an object of fields")])
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = [n for n, f in fields.items() if f.default is dataclasses.MISSING and n != "post"]
    problems = [Problem(n, None, "required", f"{n} is required") for n in required if n not in payload]
    problems += [Problem(n, payload[n], "known_field", f"{n} is not a field of {cls.__name__}")
                 for n in payload if n not in fields]
    if problems:
        raise ValidationError(problems)
    return cls(**({"post": None} if "post" in fields else {}) | payload)


class Registry(SharedResource):
    """The RegistryApplication of this process, shared by every worker and the relay."""

    def build(self):
        return bootstrap.build_application(zhuqi_config())

    def close(self, app):
        app.close()


def _relay(container):
    return bootstrap.build_relay(zhuqi_config(), app=Registry.of(container).get())


@http_routes(api, dependency="registry")  # HTTP: every route of http_api.py
class RegistryService(ServiceBase):
    name = "registry"
    api = api

    registry = Registry()
    outbox = BackgroundLoop(_relay)

    # -- RPC: volunteers -------------------------------------------------------------
    @rpc(expected_exceptions=RegistryError)
    def register_volunteer(self, registration: dict) -> str:
        return str(self.registry.register_volunteer(_registration(VolunteerRegistration, registration)))

    @rpc(expected_exceptions=RegistryError)
    def add_honour(self, volunteer_id: str, honour: dict) -> None:
        self.registry.add_honour(volunteer_id, honour)

    @rpc(expected_exceptions=RegistryError)
    def suspend_volunteer(self, volunteer_id: str, reason: str) -> None:
        self.registry.suspend_volunteer(volunteer_id, reason)

    @rpc(expected_exceptions=RegistryError)
    def reinstate_volunteer(self, volunteer_id: str) -> None:
        self.registry.reinstate_volunteer(volunteer_id)

    @rpc(expected_exceptions=RegistryError)
    def withdraw_volunteer(self, volunteer_id: str, erase: bool = False) -> None:
        self.registry.withdraw_volunteer(volunteer_id, erase=erase)

    @rpc(expected_exceptions=RegistryError)
    def get_volunteer(self, volunteer_id: str) -> dict:
        return self.registry.get_volunteer(volunteer_id)

    @rpc(expected_exceptions=RegistryError)
    def list_volunteers(self, unit: str | None = None, tag: str | None = None, status: str | None = None,
                        after: int = 0, limit: int = 50) -> dict:
        page = self.registry.list_volunteers(unit=unit, tag=tag, status=status, after=after, limit=limit)
        return {"items": page.items, "next_after": page.next_cursor}

    # -- RPC: teams ------------------------------------------------------------------
    @rpc(expected_exceptions=RegistryError)
    def form_team(self, unit: str | None, tier: str, name: str, formed_on: str | None = None) -> str:
        return str(self.registry.form_team(unit, tier, name, formed_on))

    @rpc(expected_exceptions=RegistryError)
    def join_team(self, team_id: str, volunteer_id: str, joined_on: str | None = None) -> None:
        self.registry.join_team(team_id, volunteer_id, joined_on)

    @rpc(expected_exceptions=RegistryError)
    def leave_team(self, team_id: str, volunteer_id: str, left_on: str | None = None) -> None:
        self.registry.leave_team(team_id, volunteer_id, left_on)

    @rpc(expected_exceptions=RegistryError)
    def get_team(self, team_id: str) -> dict:
        return self.registry.get_team(team_id)

    # -- RPC: enterprises ------------------------------------------------------------
    @rpc(expected_exceptions=RegistryError)
    def register_enterprise(self, registration: dict) -> str:
        return str(self.registry.register_enterprise(_registration(EnterpriseRegistration, registration)))

    @rpc(expected_exceptions=RegistryError)
    def register_enterprises(self, registrations: list[dict]) -> dict:
        result = self.registry.register_many_enterprises(
            [_registration(EnterpriseRegistration, r) for r in registrations])
        return {"created": [str(i) for _, i in result.created], "unchanged": len(result.unchanged)}

    @rpc(expected_exceptions=RegistryError)
    def register_volunteers(self, registrations: list[dict]) -> dict:
        result = self.registry.register_many_volunteers(
            [_registration(VolunteerRegistration, r) for r in registrations])
        return {"created": [str(i) for _, i in result.created], "unchanged": len(result.unchanged)}

    @rpc(expected_exceptions=RegistryError)
    def get_enterprise(self, enterprise_id: str) -> dict:
        return self.registry.get_enterprise(enterprise_id)

    @rpc(expected_exceptions=RegistryError)
    def mark_enterprise_unionised(self, enterprise_id: str) -> None:
        self.registry.mark_enterprise_unionised(enterprise_id)

    @rpc(expected_exceptions=RegistryError)
    def add_competitor(self, enterprise_id: str, competitor_id: str) -> None:
        self.registry.add_competitor(enterprise_id, competitor_id)

    # -- RPC: reference data ---------------------------------------------------------
    @rpc
    def list_units(self) -> list[dict]:
        return self.registry.list_units()

    @rpc
    def list_expertise_tags(self) -> list[dict]:
        return self.registry.list_expertise_tags()

    # -- HTTP --------------------------------------------------------------------------
    def health_report(self) -> dict:
        state = self.outbox.state
        return {"outbox": {"ok": state.active or state.standby, "active": state.active,
                           "position": state.position, "last_published": state.last_published}}
