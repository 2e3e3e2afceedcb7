"""The registry service: a thin nameko adapter around RegistryApplication.

Entrypoints, in order: RPC for other services, HTTP for the units' forms and
scripts; the outbox relay runs in the background and publishes every stored
event. Nothing here decides anything: the rules live in `domain/`.
"""
from __future__ import annotations

import dataclasses
import threading

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.web.handlers import http

from services.registry import bootstrap
from services.registry.domain.enterprise import EnterpriseRegistration
from services.registry.domain.errors import Problem, RegistryError, ValidationError
from services.registry.domain.volunteer import VolunteerRegistration
from services.registry.http_api import api
from zhuqi.runtime.hosting import BackgroundLoop, ServiceBase, zhuqi_config


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


class Registry(DependencyProvider):
    """The RegistryApplication of this process, shared by every worker and the relay."""

    app = None
    _building = threading.Lock()  # nameko runs the setups of all dependencies concurrently

    def application(self):
        with self._building:
            if self.app is None:
                self.app = bootstrap.build_application(zhuqi_config())
        return self.app

    def setup(self):
        self.application()

    def stop(self):
        if self.app is not None:
            self.app.close()

    kill = stop

    def get_dependency(self, worker_ctx):
        return self.app


def _relay(container):
    registry = next(d for d in container.dependencies if isinstance(d, Registry))
    return bootstrap.build_relay(zhuqi_config(), app=registry.application())


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

    @http("POST", "/volunteers")
    def http_register_volunteer(self, request):
        return api.handle("register_volunteer", request, self.registry)

    @http("GET", "/volunteers")
    def http_list_volunteers(self, request):
        return api.handle("list_volunteers", request, self.registry)

    @http("GET", "/volunteers/<volunteer_id>")
    def http_get_volunteer(self, request, volunteer_id):
        return api.handle("get_volunteer", request, self.registry, volunteer_id=volunteer_id)

    @http("POST", "/volunteers/<volunteer_id>/honours")
    def http_add_honour(self, request, volunteer_id):
        return api.handle("add_honour", request, self.registry, volunteer_id=volunteer_id)

    @http("POST", "/volunteers/<volunteer_id>/suspension")
    def http_suspend_volunteer(self, request, volunteer_id):
        return api.handle("suspend_volunteer", request, self.registry, volunteer_id=volunteer_id)

    @http("POST", "/volunteers/<volunteer_id>/reinstatement")
    def http_reinstate_volunteer(self, request, volunteer_id):
        return api.handle("reinstate_volunteer", request, self.registry, volunteer_id=volunteer_id)

    @http("POST", "/volunteers/<volunteer_id>/withdrawal")
    def http_withdraw_volunteer(self, request, volunteer_id):
        return api.handle("withdraw_volunteer", request, self.registry, volunteer_id=volunteer_id)

    @http("POST", "/teams")
    def http_form_team(self, request):
        return api.handle("form_team", request, self.registry)

    @http("GET", "/teams")
    def http_list_teams(self, request):
        return api.handle("list_teams", request, self.registry)

    @http("GET", "/teams/<team_id>")
    def http_get_team(self, request, team_id):
        return api.handle("get_team", request, self.registry, team_id=team_id)

    @http("POST", "/teams/<team_id>/members")
    def http_join_team(self, request, team_id):
        return api.handle("join_team", request, self.registry, team_id=team_id)

    @http("POST", "/teams/<team_id>/members/<volunteer_id>/departure")
    def http_leave_team(self, request, team_id, volunteer_id):
        return api.handle("leave_team", request, self.registry, team_id=team_id, volunteer_id=volunteer_id)

    @http("POST", "/enterprises")
    def http_register_enterprise(self, request):
        return api.handle("register_enterprise", request, self.registry)

    @http("GET", "/enterprises")
    def http_list_enterprises(self, request):
        return api.handle("list_enterprises", request, self.registry)

    @http("GET", "/enterprises/<enterprise_id>")
    def http_get_enterprise(self, request, enterprise_id):
        return api.handle("get_enterprise", request, self.registry, enterprise_id=enterprise_id)

    @http("POST", "/enterprises/<enterprise_id>/unionised")
    def http_mark_enterprise_unionised(self, request, enterprise_id):
        return api.handle("mark_enterprise_unionised", request, self.registry, enterprise_id=enterprise_id)

    @http("POST", "/enterprises/<enterprise_id>/competitors")
    def http_add_competitor(self, request, enterprise_id):
        return api.handle("add_competitor", request, self.registry, enterprise_id=enterprise_id)

    @http("POST", "/imports/volunteers")
    def http_import_volunteers(self, request):
        return api.handle("import_volunteers", request, self.registry)

    @http("POST", "/imports/enterprises")
    def http_import_enterprises(self, request):
        return api.handle("import_enterprises", request, self.registry)

    @http("GET", "/templates/<kind>")
    def http_download_template(self, request, kind):
        return api.handle("download_template", request, self.registry, kind=kind)

    @http("GET", "/units")
    def http_list_units(self, request):
        return api.handle("list_units", request, self.registry)

    @http("GET", "/expertise-tags")
    def http_list_expertise_tags(self, request):
        return api.handle("list_expertise_tags", request, self.registry)

    @http("GET", "/industries")
    def http_list_industries(self, request):
        return api.handle("list_industries", request, self.registry)
