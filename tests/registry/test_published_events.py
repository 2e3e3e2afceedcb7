"""Every domain event maps to a published event valid against its JSON Schema."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jsonschema
import pytest

from services.registry.domain.enterprise import Enterprise
from services.registry.domain.reservation import Reservation
from services.registry.domain.team import ServiceTeam
from services.registry.domain.volunteer import Volunteer
from services.registry.published_events import INTERNAL, MAPPING, NAMES, to_published

from .conftest import registration
from .test_application import enterprise

SCHEMAS = Path(__file__).parents[2] / "contracts" / "schemas" / "registry"


def _event_classes(aggregate: type) -> set[type]:
    return {v for v in vars(aggregate).values()
            if isinstance(v, type) and hasattr(v, "originator_id") and v.__module__ == aggregate.__module__}


def test_every_event_class_is_published_or_internal():
    for aggregate in (Volunteer, ServiceTeam, Enterprise, Reservation):
        for cls in _event_classes(aggregate):
            assert cls in MAPPING or cls in INTERNAL, cls
    assert {p.stem.removesuffix(".v1") for p in SCHEMAS.glob("*.v1.json")} == set(NAMES)


@pytest.fixture(scope="module")
def published(app):
    vid = app.register_volunteer(registration(id_number="11010519491231002X"))
    app.add_honour(vid, {"kind": "studio_leader", "level": "national"})
    app.suspend_volunteer(vid, "健康原因")
    app.reinstate_volunteer(vid)
    team = app.form_team("wz", "district", "吴中服务队")
    app.join_team(team, vid, "2024-01-02")
    app.leave_team(team, vid, "2024-02-02")
    app.withdraw_volunteer(vid, erase=True)
    first = app.register_enterprise(enterprise())
    second = app.register_enterprise(enterprise(competitors=[str(first)]))
    third = app.register_enterprise(enterprise())
    app.add_competitor(third, first)
    app.mark_enterprise_unionised(second)
    events = [e for ident in (vid, team, first, second, third) for e in app.events.get(ident)]
    return vid, events


def test_published_data_validates_against_schemas(published):
    vid, events = published
    seen = set()
    for event in events:
        out = to_published(event)
        assert out is not None and out.version == 1 and out.subject == str(event.originator_id)
        schema = json.loads((SCHEMAS / f"{out.name}.v1.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(out.data)
        assert out.unit == out.data["unit"]
        seen.add(out.name)
    assert seen == set(NAMES)


def test_personal_fields_only_sealed(published):
    vid, events = published
    out = to_published(events[0])
    text = json.dumps(out.data, ensure_ascii=False)
    assert "11010519491231002X" not in text and "张明" not in text
    assert out.data["personal"]["alg"] == "A256GCM" and out.data["personal"]["kid"] == str(vid)
    assert base64.b64decode(out.data["personal"]["ciphertext"])


def test_reservation_events_are_internal():
    assert to_published(Reservation(key="test:key").collect_events()[0]) is None
