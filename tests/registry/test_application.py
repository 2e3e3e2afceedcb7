"""Commands, queries and invariants of RegistryApplication against real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest

from services.registry.domain import credit_code
from services.registry.domain.enterprise import EnterpriseRegistration
from services.registry.domain.errors import Conflict, NotFound, ValidationError

from .conftest import DSN, fresh_phone, registration

_codes = iter(range(10_000_000, 99_999_999))


def enterprise(**overrides) -> EnterpriseRegistration:
    values = dict(unit="sip", name="苏州某半导体有限公司",
                  credit_code=credit_code.complete(f"91320594{next(_codes):08d}"),
                  industry="C39", size="small", little_giant=True, unionised=False)
    values.update(overrides)
    return EnterpriseRegistration(**values)


def _event_count(app) -> int:
    return app.recorder.max_notification_id() or 0


def test_register_and_get_volunteer(app):
    vid = app.register_volunteer(registration(phone="138-1234-5678", id_number="11010519491231002X"))
    view = app.get_volunteer(vid)
    assert view["personal"]["phone"] == "13812345678" and view["personal"]["name"] == "张明"
    assert view["expertise"] == ["welding", "integrated_circuits"] and view["status"] == "active"


def test_ineligible_honours_refused_and_nothing_stored(app):
    before = _event_count(app)
    with pytest.raises(ValidationError) as info:
        app.register_volunteer(registration(honours=[{"kind": "craftsman", "level": "enterprise"}]))
    assert info.value.problems[0].rule == "eligible_honour"
    assert _event_count(app) == before


def test_every_problem_is_reported(app):
    with pytest.raises(ValidationError) as info:
        app.register_volunteer(registration(unit="nowhere", expertise=["knitting"], name="x" * 51,
                                            phone="123"))
    rules = {(p.field, p.rule) for p in info.value.problems}
    assert {("unit", "known_unit"), ("expertise[0]", "known_tag"), ("name", "max_length"),
            ("phone", "phone_format")} <= rules


def test_duplicate_phone_is_a_conflict(app):
    phone = fresh_phone()
    app.register_volunteer(registration(phone=phone))
    with pytest.raises(Conflict) as info:
        app.register_volunteer(registration(phone=phone))
    assert info.value.rule == "duplicate_volunteer"


def test_state_transitions(app):
    vid = app.register_volunteer(registration())
    app.suspend_volunteer(vid, "长期出差")
    with pytest.raises(Conflict):
        app.suspend_volunteer(vid, "again")
    app.reinstate_volunteer(vid)
    app.add_honour(vid, {"kind": "craftsman", "level": "province", "title": "江苏工匠"})
    app.withdraw_volunteer(vid, erase=False)
    assert app.get_volunteer(vid)["personal"] is not None
    with pytest.raises(Conflict) as info:
        app.reinstate_volunteer(vid)
    assert info.value.rule == "withdrawn"
    with pytest.raises(NotFound):
        app.suspend_volunteer("00000000-0000-0000-0000-000000000001", "x")


def test_single_city_team_and_district_rules(app):
    app.form_team(None, "city", "苏州市劳模工匠志愿者服务队")
    with pytest.raises(Conflict) as info:
        app.form_team(None, "city", "第二个市级队")
    assert info.value.rule == "single_city_team"
    app.form_team("ks", "district", "昆山服务队")
    with pytest.raises(Conflict):
        app.form_team("昆山", "district", "昆山二队")
    with pytest.raises(ValidationError) as bad:
        app.form_team("gd", "district", "供电区队")
    assert bad.value.problems[0].rule == "district_unit"
    app.form_team("gd", "sector", "供电行业服务队")
    app.form_team("gd", "sector", "供电第二服务队")


def test_team_membership_rules(app):
    team = app.form_team("cs", "sector", "常熟纺织服务队")
    active = app.register_volunteer(registration())
    gone = app.register_volunteer(registration())
    suspended = app.register_volunteer(registration())
    app.withdraw_volunteer(gone, erase=False)
    app.suspend_volunteer(suspended, "暂停")
    app.join_team(team, active, "2024-03-01")
    with pytest.raises(Conflict) as twice:
        app.join_team(team, active, "2024-03-02")
    assert twice.value.rule == "already_member"
    for vid in (gone, suspended):
        with pytest.raises(Conflict) as info:
            app.join_team(team, vid, "2024-03-01")
        assert info.value.rule == "active_volunteer"
    with pytest.raises(ValidationError) as early:
        app.leave_team(team, active, "2024-02-01")
    assert early.value.problems[0].rule == "left_on_after_joined_on"
    app.leave_team(team, active, "2024-05-01")
    assert app.get_team(team)["members"] == []


def test_enterprises_duplicates_and_competitors(app):
    first = app.register_enterprise(enterprise())
    reg = enterprise()
    second = app.register_enterprise(reg)
    with pytest.raises(Conflict) as dup:
        app.register_enterprise(enterprise(credit_code=reg.credit_code, name="另一家"))
    assert dup.value.rule == "duplicate_credit_code"
    app.add_competitor(second, first)
    other = app.register_enterprise(enterprise(industry="C17"))
    with pytest.raises(Conflict) as diff:
        app.add_competitor(second, other)
    assert diff.value.rule == "competitor_industry"
    with pytest.raises(Conflict):
        app.add_competitor(first, first)
    app.mark_enterprise_unionised(first)
    with pytest.raises(Conflict):
        app.mark_enterprise_unionised(first)
    assert app.get_enterprise(second)["competitors"] == [str(first)]
    with pytest.raises(ValidationError) as wrong:
        app.register_enterprise(enterprise(credit_code=reg.credit_code[:17] + "0"
                                           if reg.credit_code[17] != "0" else reg.credit_code[:17] + "1"))
    assert wrong.value.problems[0].rule == "check_character"


def test_listings_paginate_and_filter(app):
    ids = [app.register_volunteer(registration(unit="tc", expertise=["quantum"])) for _ in range(5)]
    page = app.list_volunteers(unit="太仓", limit=2)
    assert len(page.items) == 2 and page.next_cursor is not None
    rest = app.list_volunteers(unit="tc", limit=10, after=page.next_cursor)
    assert [i["id"] for i in page.items + rest.items] == ids
    assert {i["id"] for i in app.list_volunteers(tag="量子技术", limit=100).items} == set(ids)
    assert app.list_volunteers(unit="tc", limit=100).items[0]["personal"]["name"] == "张明"
    with pytest.raises(ValidationError):
        app.list_volunteers(tag="nope")
    assert len(app.list_units()) == 45 and len(app.list_industries()) == 97
    assert app.list_expertise_tags()


def test_erasure_is_crypto_shredding_and_history_remains(app, schema):
    phone = fresh_phone()
    vid = app.register_volunteer(registration(phone=phone, id_number="11010519491231002X"))
    registered = app.repository.get(vid, version=1).sealed_personal
    app.withdraw_volunteer(vid, erase=True)
    view = app.get_volunteer(vid)
    assert view["personal"] is None and view["personal_erased"] is True
    events = list(app.events.get(vid))
    assert [type(e).__name__ for e in events] == ["Registered", "Withdrawn", "PersonalDataErased"]
    assert events[0].sealed_personal == registered  # history intact, ciphertext unreadable
    assert app.recorder.load_wrapped_keys([vid]) == {}
    with pytest.raises(Conflict):
        app.withdraw_volunteer(vid, erase=True)
    # The released phone may register again as a new volunteer.
    again = app.register_volunteer(registration(phone=phone))
    assert again != vid and app.get_volunteer(again)["personal"]["phone"] == phone


def test_no_phone_in_raw_tables(app, schema):
    phone = fresh_phone()
    app.register_volunteer(registration(phone=phone, id_number="11010519491231002X"))
    with psycopg.connect(DSN) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))]
        assert {"registry_events", "personal_data_keys", "directory"} <= set(tables)
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):
                blob = b"".join(bytes(c) if isinstance(c, (bytes, memoryview)) else str(c).encode()
                                for c in row)
                assert phone.encode() not in blob, table
                assert b"11010519491231002X" not in blob, table
                assert "张明".encode() not in blob, table


def test_listings_mask_phone_and_id_numbers(app):
    vid = app.register_volunteer(registration(phone="139-0000-1234", id_number="11010519491231002X"))
    listed = next(v for v in app.list_volunteers(limit=500).items if v["id"] == vid)
    assert listed["personal"]["phone"] == "139****1234"
    assert listed["personal"]["id_number"] == "110105********002X"
    whole = app.get_volunteer(vid)["personal"]
    assert whole["phone"] == "13900001234" and whole["id_number"] == "11010519491231002X"
