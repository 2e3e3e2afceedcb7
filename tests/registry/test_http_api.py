"""The registry's HTTP API end to end, against a real service process.

Every refusal is an RFC 9457 problem: 422 with ``errors[]`` naming the field,
the value and the rule; 409 for a clash with the registry's state; 404 for an
unknown id. Each test uses its own responsible unit so listings do not see
each other's rows.
"""
from __future__ import annotations

import csv
import io
import uuid
from urllib.parse import quote

import openpyxl
import pytest

from services.registry import templates
from services.registry.domain import credit_code
from tests.conftest import http

from .conftest import fresh_phone

_codes = iter(range(uuid.uuid4().int % 10**7 * 10, 10**8))


def volunteer(**overrides) -> dict:
    body = {"unit": "zjg", "name": "张明", "gender": "男", "employer": "苏州某精密机械有限公司",
            "post": "车间主任", "political_status": "中共党员", "education": "大专", "skill_grade": "高级技师",
            "honours": [{"kind": "model_worker", "level": "city"}], "phone": fresh_phone(),
            "expertise": ["welding", "集成电路"], "employer_industry": "C34"}
    body.update(overrides)
    return body


def enterprise(**overrides) -> dict:
    body = {"unit": "sip", "name": "苏州某半导体有限公司",
            "credit_code": credit_code.complete(f"91320594{next(_codes):08d}"),
            "industry": "C39", "size": "small", "little_giant": True, "unionised": False}
    body.update(overrides)
    return body


@pytest.fixture(scope="module")
def api(running_stack):
    base = running_stack.url("registry")

    def call(method: str, path: str, body=None, **kwargs):
        return http(method, base + path, body, **kwargs)
    return call


def register(api, **overrides) -> str:
    status, body = api("POST", "/volunteers", volunteer(**overrides))
    assert status == 201, body
    return body["id"]


def assert_problem(body: dict, status: int, *, field: str | None = None, rule: str | None = None,
                   value=None) -> dict:
    """The body is a problem document; with field/rule, one error names them (and the value)."""
    assert {"type", "title", "status"} <= set(body) and body["status"] == status, body
    if field is None and rule is None:
        return body
    for error in body["errors"]:
        assert {"field", "value", "rule"} <= set(error), error
    matches = [e for e in body["errors"] if (field is None or e["field"] == field)
               and (rule is None or e["rule"] == rule)]
    assert matches, body["errors"]
    if value is not None:
        assert matches[0]["value"] == value, matches[0]
    return matches[0]


# -- volunteers -------------------------------------------------------------------------------


def test_register_and_get_with_personal_fields_decrypted(api):
    vid = register(api, unit="张家港", phone="138-0512-0001", id_number="11010519491231002X")
    status, body = api("GET", f"/volunteers/{vid}")
    assert status == 200, body
    assert body["id"] == vid and body["unit"] == "zjg" and body["status"] == "active"
    assert body["personal"]["name"] == "张明" and body["personal"]["phone"] == "13805120001"
    assert body["personal"]["id_number"] == "11010519491231002X"
    assert body["expertise"] == ["welding", "integrated_circuits"]


def test_listings_by_unit_tag_and_status_paginate(api):
    ids = [register(api, unit="cfhk", expertise=["quantum"]) for _ in range(5)]
    status, first = api("GET", "/volunteers?unit=cfhk&limit=2")
    assert status == 200 and len(first["items"]) == 2 and first["next_after"] is not None
    status, rest = api("GET", f"/volunteers?unit=cfhk&limit=10&after={first['next_after']}")
    assert status == 200 and rest["next_after"] is None
    assert [i["id"] for i in first["items"] + rest["items"]] == ids
    assert first["items"][0]["personal"]["name"] == "张明"

    status, tagged = api("GET", f"/volunteers?tag={quote('量子技术')}&limit=500")
    assert status == 200 and {i["id"] for i in tagged["items"]} == set(ids)

    status, _ = api("POST", f"/volunteers/{ids[1]}/suspension", {"reason": "长期出差"})
    assert status == 200
    status, suspended = api("GET", "/volunteers?unit=cfhk&status=suspended")
    assert status == 200 and [i["id"] for i in suspended["items"]] == [ids[1]]
    status, active = api("GET", "/volunteers?unit=cfhk&status=active&limit=3")
    assert [i["id"] for i in active["items"]] == [ids[0], ids[2], ids[3]]
    status, tail = api("GET", f"/volunteers?unit=cfhk&status=active&limit=3&after={active['next_after']}")
    assert [i["id"] for i in tail["items"]] == [ids[4]] and tail["next_after"] is None

    status, body = api("GET", "/volunteers?tag=knitting")
    assert status == 422
    assert_problem(body, 422, rule="known_tag", value="knitting")
    status, body = api("GET", "/volunteers?limit=0")
    assert status == 422 and body["errors"][0]["field"] == "query.limit"


def test_ineligible_honours_refused(api):
    honours = [{"kind": "craftsman", "level": "enterprise"}]
    status, body = api("POST", "/volunteers", volunteer(unit="kc", honours=honours))
    assert status == 422
    error = assert_problem(body, 422, field="honours", rule="eligible_honour", value=honours)
    assert "district" in error["message"]
    status, page = api("GET", "/volunteers?unit=kc")
    assert page["items"] == []


def test_unknown_unit_and_tag_refused_together(api):
    status, body = api("POST", "/volunteers", volunteer(unit="nowhere", expertise=["welding", "knitting"]))
    assert status == 422
    assert_problem(body, 422, field="unit", rule="known_unit", value="nowhere")
    assert_problem(body, 422, field="expertise[1]", rule="known_tag", value="knitting")


def test_schema_violation_names_the_field(api):
    payload = volunteer()
    del payload["phone"]
    status, body = api("POST", "/volunteers", {**payload, "favourite_colour": "red"})
    assert status == 422
    assert_problem(body, 422, field="body.phone", rule="required")
    assert_problem(body, 422, field="body.favourite_colour", rule="additionalProperties")


def test_duplicate_phone_is_409(api):
    phone = fresh_phone()
    register(api, phone=phone)
    status, body = api("POST", "/volunteers", volunteer(phone=phone))
    assert status == 409
    assert_problem(body, 409)


def test_unknown_ids_are_404_and_malformed_ids_422(api):
    unknown = str(uuid.uuid4())
    for path in (f"/volunteers/{unknown}", f"/teams/{unknown}", f"/enterprises/{unknown}"):
        status, body = api("GET", path)
        assert status == 404, (path, body)
        assert_problem(body, 404)
    status, body = api("POST", f"/volunteers/{unknown}/suspension", {"reason": "x"})
    assert status == 404
    status, body = api("GET", "/volunteers/not-a-uuid")
    assert status == 422
    assert_problem(body, 422, field="volunteer_id", rule="uuid", value="not-a-uuid")


# -- enterprises ------------------------------------------------------------------------------


def test_enterprise_credit_code_check_and_duplicate(api):
    good = enterprise()
    status, body = api("POST", "/enterprises", good)
    assert status == 201, body
    status, got = api("GET", f"/enterprises/{body['id']}")
    assert status == 200 and got["credit_code"] == good["credit_code"] and got["unionised"] is False

    code = good["credit_code"]
    wrong = code[:17] + ("0" if code[17] != "0" else "1")
    status, body = api("POST", "/enterprises", enterprise(credit_code=wrong))
    assert status == 422
    error = assert_problem(body, 422, field="credit_code", rule="check_character", value=wrong)
    assert code[17] in error["message"]

    status, body = api("POST", "/enterprises", enterprise(credit_code=code, name="另一家公司"))
    assert status == 409
    assert "already registered" in assert_problem(body, 409)["detail"]


# -- teams ------------------------------------------------------------------------------------


def test_team_form_join_leave_and_withdrawn_cannot_join(api):
    status, body = api("POST", "/teams", {"unit": "gd", "tier": "sector", "name": "供电行业服务队"})
    assert status == 201, body
    team = body["id"]
    member = register(api, unit="gd")
    status, body = api("POST", f"/teams/{team}/members", {"volunteer_id": member, "joined_on": "2024-03-01"})
    assert status == 200, body
    status, body = api("GET", f"/teams/{team}")
    assert body["members"] == [{"volunteer_id": member, "joined_on": "2024-03-01"}]
    status, body = api("POST", f"/teams/{team}/members", {"volunteer_id": member, "joined_on": "2024-03-02"})
    assert status == 409

    status, body = api("POST", f"/teams/{team}/members/{member}/departure", {"left_on": "2024-02-01"})
    assert status == 422
    assert_problem(body, 422, field="left_on", rule="left_on_after_joined_on", value="2024-02-01")
    status, body = api("POST", f"/teams/{team}/members/{member}/departure", {"left_on": "2024-05-01"})
    assert status == 200, body
    status, body = api("GET", f"/teams/{team}")
    assert body["members"] == []
    status, listed = api("GET", "/teams?unit=gd")
    assert [t["id"] for t in listed["items"]] == [team]

    gone = register(api, unit="gd")
    status, _ = api("POST", f"/volunteers/{gone}/withdrawal", {"erase": False})
    assert status == 200
    status, body = api("POST", f"/teams/{team}/members", {"volunteer_id": gone, "joined_on": "2024-06-01"})
    assert status == 409
    assert "withdrawn" in assert_problem(body, 409)["detail"]
    status, body = api("GET", f"/teams/{team}")
    assert body["members"] == []


# -- imports and templates ----------------------------------------------------------------------


HEADERS = list(templates.VOLUNTEER_COLUMNS)


def volunteer_csv(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    example = dict(zip(HEADERS, templates.VOLUNTEER_EXAMPLE))
    for overrides in rows:
        values = {**example, "联系电话": fresh_phone(), "归口单位": "大唐热电", **overrides}
        writer.writerow([values[h] for h in HEADERS])
    return buffer.getvalue().encode("utf-8-sig")


def upload(api, data: bytes, filename: str = "x.csv"):
    return api("POST", f"/imports/volunteers?filename={quote(filename)}", raw=data,
               content_type="application/octet-stream")


def test_import_all_or_nothing_every_bad_row_listed_and_idempotent(api):
    bad = volunteer_csv([{}, {"荣誉": "劳模:企业级"}, {}, {"专长": "焊接;编织"}, {"归口单位": "上海"}])
    status, report = upload(api, bad)
    assert status == 422 and report["ok"] is False and report["created"] == 0
    found = {(p["row"], p["column"]) for p in report["problems"]}
    assert found == {(3, "荣誉"), (5, "专长"), (6, "归口单位")}
    assert all({"row", "column", "value", "reason"} <= set(p) for p in report["problems"])
    assert any(p["value"] == "编织" for p in report["problems"])
    status, page = api("GET", "/volunteers?unit=dtrd")
    assert page["items"] == []

    good = volunteer_csv([{}, {"荣誉": "五一劳动奖章:省级"}, {}])
    status, report = upload(api, good)
    assert status == 200 and report == {"ok": True, "created": 3, "unchanged": 0, "problems": []}
    status, page = api("GET", "/volunteers?unit=dtrd")
    assert len(page["items"]) == 3 and page["items"][0]["personal"]["name"] == "张明"

    status, report = upload(api, good)
    assert status == 200 and report["created"] == 0 and report["unchanged"] == 3
    status, page = api("GET", "/volunteers?unit=dtrd")
    assert len(page["items"]) == 3


def test_import_refuses_gbk_unless_declared(api):
    gbk = volunteer_csv([{"归口单位": "华能发电"}]).decode("utf-8-sig").encode("gbk")
    status, report = upload(api, gbk)
    assert status == 422 and "GBK" in report["problems"][0]["reason"]
    status, report = api("POST", "/imports/volunteers?filename=x.csv&encoding=gbk", raw=gbk,
                         content_type="application/octet-stream")
    assert status == 200 and report["created"] == 1


def test_template_download_opens_with_chinese_headers(api):
    status, data = api("GET", "/templates/volunteers?format=xlsx")
    assert status == 200 and isinstance(data, bytes)
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert [c.value for c in sheet[1]] == HEADERS and "姓名" in HEADERS
    status, data = api("GET", "/templates/enterprises?format=csv")
    assert status == 200
    assert next(csv.reader(io.StringIO(data.decode("utf-8-sig")))) == list(templates.ENTERPRISE_COLUMNS)
    status, body = api("GET", "/templates/teams?format=xlsx")
    assert status == 404
    assert_problem(body, 404, field="path.kind", rule="known_template", value="teams")


# Importing the nameko service class warns that eventlet is deprecated (known, see pyproject).
@pytest.mark.filterwarnings(r"ignore:\s*Eventlet is deprecated")
def test_openapi_is_3_1_and_lists_every_route(api):
    from services.registry.service import RegistryService

    status, doc = api("GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    served = set()
    for name in dir(RegistryService):
        for entrypoint in getattr(getattr(RegistryService, name), "nameko_entrypoints", ()):
            if hasattr(entrypoint, "url"):
                path = entrypoint.url.replace("<", "{").replace(">", "}")
                served.add((entrypoint.method.lower(), path))
    served -= {("get", "/health"), ("get", "/metrics"), ("get", "/openapi.json")}
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    # Both ways: nothing served is undocumented, nothing documented is not served.
    assert served and served == documented, (served - documented, documented - served)
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert op["summary"] and "422" in op["responses"], path
