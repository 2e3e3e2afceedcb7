"""The registry's HTTP JSON API: forms and scripts of the units and the campaign office."""
from __future__ import annotations

import time
from dataclasses import asdict

from werkzeug.wrappers import Response

from services.registry import imports, templates
from services.registry.domain.enterprise import EnterpriseRegistration
from services.registry.domain.errors import Conflict, NotFound, ValidationError
from services.registry.domain.volunteer import VolunteerRegistration
from zhuqi.runtime.http import Api, Problem


def problem_for(exc: Exception) -> Problem | None:
    if isinstance(exc, ValidationError):
        return Problem(422, "Invalid request", "the request breaks the rules below",
                       [{"field": p.field, "value": p.value, "rule": p.rule, "message": p.message,
                         **({"item": p.item} if p.item is not None else {})} for p in exc.problems],
                       kind="validation")
    if isinstance(exc, NotFound):
        return Problem(404, "Not found", str(exc), kind="not-found")
    if isinstance(exc, Conflict):
        return Problem(409, "Conflict", str(exc), kind="conflict")
    return None


api = Api("zhuqi registry", "1.0.0",
          "Volunteers (劳模工匠), service teams (1+10+N), enterprises and the 45 responsible units.",
          problem_for=problem_for)

_TEXT = {"type": "string", "maxLength": 500}
_ID = {"type": "string", "maxLength": 64}
_DATE = {"type": "string", "maxLength": 32, "description": "ISO date YYYY-MM-DD"}
HONOUR = {"type": "object", "additionalProperties": False, "required": ["kind", "level"],
          "properties": {"kind": _TEXT, "level": _TEXT, "title": _TEXT}}
VOLUNTEER = {
    "type": "object", "additionalProperties": False,
    "required": ["unit", "name", "gender", "employer", "political_status", "education", "skill_grade",
                 "honours", "phone", "expertise", "employer_industry"],
    "properties": {
        "unit": _TEXT, "name": _TEXT, "gender": _TEXT, "employer": _TEXT, "post": _TEXT,
        "political_status": _TEXT, "education": _TEXT, "skill_grade": _TEXT,
        "honours": {"type": "array", "maxItems": 50, "items": HONOUR},
        "phone": _TEXT, "id_number": {"type": ["string", "null"], "maxLength": 64},
        "expertise": {"type": "array", "maxItems": 50, "items": _TEXT},
        "employer_industry": _TEXT, "registered_on": _DATE,
    },
}
ENTERPRISE = {
    "type": "object", "additionalProperties": False,
    "required": ["unit", "name", "credit_code", "industry", "size"],
    "properties": {
        "unit": _TEXT, "name": _TEXT, "credit_code": _TEXT, "industry": _TEXT, "size": _TEXT,
        "little_giant": {"type": "boolean"}, "unionised": {"type": "boolean"},
        "competitors": {"type": "array", "maxItems": 200, "items": _TEXT},
    },
}
TEAM = {"type": "object", "additionalProperties": False, "required": ["tier", "name"],
        "properties": {"unit": {"type": ["string", "null"], "maxLength": 64}, "tier": _TEXT, "name": _TEXT,
                       "formed_on": _DATE}}
CREATED = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}
PAGE = {"type": "object", "properties": {"items": {"type": "array"}, "next_after": {"type": ["integer", "null"]}}}
PAGING = {"after": {"type": "integer", "minimum": 0}, "limit": {"type": "integer", "minimum": 1, "maximum": 500}}
UNIT_Q = {"type": "string", "maxLength": 64}
REPORT = {"type": "object", "properties": {"ok": {"type": "boolean"}, "created": {"type": "integer"},
                                           "unchanged": {"type": "integer"}, "problems": {"type": "array"}}}
IMPORT_QUERY = {"filename": {"type": "string", "minLength": 1, "maxLength": 255},
                "encoding": {"type": "string", "enum": ["utf-8", "gbk", "gb18030"]}}


def _page(page) -> dict:
    return {"items": page.items, "next_after": page.next_cursor}


# -- volunteers ------------------------------------------------------------------------
@api.route("POST", "/volunteers", summary="Register a volunteer (eligibility by honours).", body=VOLUNTEER,
           responses={201: CREATED}, tags=["volunteers"])
def register_volunteer(app, body):
    return 201, {"id": str(app.register_volunteer(VolunteerRegistration(**{
        "post": None, **body})))}


@api.route("GET", "/volunteers", summary="Volunteers by unit, expertise tag and status, paginated (phone and ID numbers masked).",
           query={"unit": UNIT_Q, "tag": UNIT_Q, "status": UNIT_Q, **PAGING}, responses={200: PAGE},
           tags=["volunteers"])
def list_volunteers(app, **query):
    return _page(app.list_volunteers(**query))


@api.route("GET", "/volunteers/<volunteer_id>", summary="One volunteer, personal fields decrypted unless erased.",
           responses={200: {"type": "object"}}, tags=["volunteers"])
def get_volunteer(app, volunteer_id):
    return app.get_volunteer(volunteer_id)


@api.route("POST", "/volunteers/<volunteer_id>/honours", summary="Add an honour.", body=HONOUR,
           responses={200: {"type": "object"}}, tags=["volunteers"])
def add_honour(app, volunteer_id, body):
    app.add_honour(volunteer_id, body)
    return {"id": volunteer_id}


@api.route("POST", "/volunteers/<volunteer_id>/suspension", summary="Suspend a volunteer.",
           body={"type": "object", "additionalProperties": False, "required": ["reason"],
                 "properties": {"reason": _TEXT}}, responses={200: {"type": "object"}}, tags=["volunteers"])
def suspend_volunteer(app, volunteer_id, body):
    app.suspend_volunteer(volunteer_id, body["reason"])
    return {"id": volunteer_id}


@api.route("POST", "/volunteers/<volunteer_id>/reinstatement", summary="Reinstate a suspended volunteer.",
           body={"type": "object", "additionalProperties": False, "properties": {}},
           responses={200: {"type": "object"}}, tags=["volunteers"])
def reinstate_volunteer(app, volunteer_id, body):
    app.reinstate_volunteer(volunteer_id)
    return {"id": volunteer_id}


@api.route("POST", "/volunteers/<volunteer_id>/withdrawal",
           summary="Withdraw a volunteer; with erase=true their personal data is crypto-shredded (PIPL).",
           body={"type": "object", "additionalProperties": False, "required": ["erase"],
                 "properties": {"erase": {"type": "boolean"}}},
           responses={200: {"type": "object"}}, tags=["volunteers"])
def withdraw_volunteer(app, volunteer_id, body):
    app.withdraw_volunteer(volunteer_id, erase=body["erase"])
    return {"id": volunteer_id}


# -- teams -----------------------------------------------------------------------------
@api.route("POST", "/teams", summary="Form a service team (city, district or sector tier).", body=TEAM,
           responses={201: CREATED}, tags=["teams"])
def form_team(app, body):
    return 201, {"id": str(app.form_team(body.get("unit"), body["tier"], body["name"], body.get("formed_on")))}


@api.route("GET", "/teams", summary="Teams by unit, paginated.", query={"unit": UNIT_Q, **PAGING},
           responses={200: PAGE}, tags=["teams"])
def list_teams(app, **query):
    return _page(app.list_teams(**query))


@api.route("GET", "/teams/<team_id>", summary="One team with its members.", responses={200: {"type": "object"}},
           tags=["teams"])
def get_team(app, team_id):
    return app.get_team(team_id)


@api.route("POST", "/teams/<team_id>/members", summary="A volunteer joins a team.",
           body={"type": "object", "additionalProperties": False, "required": ["volunteer_id"],
                 "properties": {"volunteer_id": _ID, "joined_on": _DATE}},
           responses={200: {"type": "object"}}, tags=["teams"])
def join_team(app, team_id, body):
    app.join_team(team_id, body["volunteer_id"], body.get("joined_on"))
    return {"id": team_id}


@api.route("POST", "/teams/<team_id>/members/<volunteer_id>/departure", summary="A member leaves a team.",
           body={"type": "object", "additionalProperties": False, "properties": {"left_on": _DATE}},
           responses={200: {"type": "object"}}, tags=["teams"])
def leave_team(app, team_id, volunteer_id, body):
    app.leave_team(team_id, volunteer_id, body.get("left_on"))
    return {"id": team_id}


# -- enterprises -----------------------------------------------------------------------
@api.route("POST", "/enterprises", summary="Register an enterprise (unified social credit code checked).",
           body=ENTERPRISE, responses={201: CREATED}, tags=["enterprises"])
def register_enterprise(app, body):
    return 201, {"id": str(app.register_enterprise(EnterpriseRegistration(**body)))}


@api.route("GET", "/enterprises", summary="Enterprises by unit, paginated.", query={"unit": UNIT_Q, **PAGING},
           responses={200: PAGE}, tags=["enterprises"])
def list_enterprises(app, **query):
    return _page(app.list_enterprises(**query))


@api.route("GET", "/enterprises/<enterprise_id>", summary="One enterprise.", responses={200: {"type": "object"}},
           tags=["enterprises"])
def get_enterprise(app, enterprise_id):
    return app.get_enterprise(enterprise_id)


@api.route("POST", "/enterprises/<enterprise_id>/unionised", summary="Record that the enterprise set up a union.",
           body={"type": "object", "additionalProperties": False, "properties": {}},
           responses={200: {"type": "object"}}, tags=["enterprises"])
def mark_enterprise_unionised(app, enterprise_id, body):
    app.mark_enterprise_unionised(enterprise_id)
    return {"id": enterprise_id}


@api.route("POST", "/enterprises/<enterprise_id>/competitors", summary="Record a competitor in the same industry.",
           body={"type": "object", "additionalProperties": False, "required": ["competitor_id"],
                 "properties": {"competitor_id": _ID}},
           responses={200: {"type": "object"}}, tags=["enterprises"])
def add_competitor(app, enterprise_id, body):
    app.add_competitor(enterprise_id, body["competitor_id"])
    return {"id": enterprise_id}


# -- bulk import and templates -----------------------------------------------------------
def _report(report: imports.ImportReport):
    payload = {"ok": report.ok, "created": len(report.created), "unchanged": len(report.unchanged),
               "problems": [asdict(p) for p in report.problems]}
    return (200 if report.ok else 422), payload


_UPLOAD = "application/octet-stream"


def _yield_now_and_then(done: int, total: int) -> None:
    """Validating a long file is CPU work; under eventlet, let other entrypoints run between chunks."""
    time.sleep(0)


@api.route("POST", "/imports/volunteers", summary="Import a CSV or XLSX list of volunteers (all rows or none).",
           query=IMPORT_QUERY, raw_body=_UPLOAD, responses={200: REPORT, 422: REPORT}, tags=["imports"])
def import_volunteers(app, raw, filename="volunteers.csv", encoding=None):
    return _report(imports.import_volunteers(app, raw, filename, encoding, _yield_now_and_then))


@api.route("POST", "/imports/enterprises", summary="Import a CSV or XLSX list of enterprises (all rows or none).",
           query=IMPORT_QUERY, raw_body=_UPLOAD, responses={200: REPORT, 422: REPORT}, tags=["imports"])
def import_enterprises(app, raw, filename="enterprises.csv", encoding=None):
    return _report(imports.import_enterprises(app, raw, filename, encoding, _yield_now_and_then))


TEMPLATES = {
    ("volunteers", "csv"): (templates.volunteer_template_csv, "text/csv; charset=utf-8"),
    ("volunteers", "xlsx"): (templates.volunteer_template_xlsx,
                             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("enterprises", "csv"): (templates.enterprise_template_csv, "text/csv; charset=utf-8"),
    ("enterprises", "xlsx"): (templates.enterprise_template_xlsx,
                              "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}


@api.route("GET", "/templates/<kind>", summary="Download an import template (Chinese headers, one example row).",
           query={"format": {"type": "string", "enum": ["csv", "xlsx"]}},
           responses={200: {"type": "string", "format": "binary"}}, tags=["imports"],
           produces="application/octet-stream")
def download_template(app, kind, format="csv"):
    if (kind, format) not in TEMPLATES:
        raise Problem(404, "Not found", f"no template for {kind!r}; there are volunteers and enterprises",
                      [{"field": "path.kind", "value": kind, "rule": "known_template",
                        "message": "kind must be volunteers or enterprises"}])
    make, mimetype = TEMPLATES[(kind, format)]
    return Response(make(), mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{kind}-template.{format}"'})


# -- reference data ----------------------------------------------------------------------
@api.route("GET", "/units", summary="The 45 responsible units with codes, kinds and phase quotas.",
           responses={200: {"type": "array"}}, tags=["reference"])
def list_units(app):
    return app.list_units()


@api.route("GET", "/expertise-tags", summary="The controlled vocabulary of expertise tags.",
           responses={200: {"type": "array"}}, tags=["reference"])
def list_expertise_tags(app):
    return app.list_expertise_tags()


@api.route("GET", "/industries", summary="GB/T 4754-2017 industry divisions.", responses={200: {"type": "array"}},
           tags=["reference"])
def list_industries(app):
    return app.list_industries()
