from services.registry.domain import credit_code, industries, units
from services.registry.domain.expertise import TAGS, check_tags
from services.registry.domain.honours import parse_honours
from services.registry.domain.text import check_text


def test_annex_sums_and_headline_goals():
    assert len(units.UNITS) == 45
    assert [units.phase_total(1, m) for m in units.METRICS] == [200, 1000, 1000, 200]
    assert [units.phase_total(2, m) for m in units.METRICS] == [800, 9000, 9000, 9800]
    assert units.phase_total(1, "service_person_times") + units.phase_total(2, "service_person_times") == 1000
    assert units.phase_total(1, "upskilled_person_times") + units.phase_total(2, "upskilled_person_times") == 10000
    assert units.phase_total(1, "problems_solved") + units.phase_total(2, "problems_solved") == 10000


def test_unit_codes_kinds_and_order():
    codes = [u.code for u in units.UNITS]
    assert len(set(codes)) == 45 and all(c.isascii() and c.islower() for c in codes)
    assert codes[:10] == ["zjg", "cs", "tc", "ks", "wj", "wz", "xc", "gs", "sip", "snd"]
    assert units.UNITS[10].name == "市级机关" and units.UNITS[20].name == "园林局"
    assert {u.kind for u in units.UNITS[10:21]} == {"city_body"}
    assert {u.kind for u in units.UNITS[21:]} == {"enterprise"} and units.UNITS[21].name == "创元"
    assert units.UNITS[-1].name == "昆钞"


def test_unknown_unit_names_value_and_rule():
    code, problems = units.check_unit("上海")
    assert code is None and problems[0].rule == "known_unit" and problems[0].value == "上海"
    assert units.check_unit("张家港")[0] == "zjg" and units.check_unit("SIP")[0] == "sip"


def test_credit_code_checks():
    good = credit_code.complete("9132058200000000")
    assert credit_code.validate(good) == (good, [])
    for published in ("914403001922038216", "9144030071526726XG", "91350100M000100Y43"):
        assert credit_code.validate(published)[1] == []
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    problem = credit_code.validate(wrong)[1][0]
    assert problem.rule == "check_character" and "position 18" in problem.message
    assert repr(good[17]) in problem.message
    bad_org = good[:16] + ("1" if good[16] != "1" else "2") + good[17]
    assert credit_code.validate(bad_org)[1][0].rule == "organisation_code_check"
    assert credit_code.validate("91320582000000000I")[1][0].rule == "charset"
    assert credit_code.validate("9132")[1][0].rule == "length"


def test_industries_complete_and_canonical():
    assert len(industries.SECTIONS) == 20 and len(industries.DIVISIONS) == 97
    assert industries.DIVISIONS["C39"] == "计算机、通信和其他电子设备制造业"
    assert industries.check_industry("39")[0] == "C39"
    assert industries.check_industry("c39")[0] == "C39"
    assert industries.check_industry("A39")[1][0].rule == "known_industry"
    assert industries.check_industry("98")[1][0].rule == "known_industry"


def test_expertise_unknown_tag_is_named():
    assert len({t.id for t in TAGS}) == len(TAGS)
    ids, problems = check_tags(["welding", "量子技术", "basket_weaving"])
    assert problems[0].field == "expertise[2]" and problems[0].value == "basket_weaving"
    assert problems[0].rule == "known_tag"
    assert check_tags(["焊接", "quantum"]) == (("welding", "quantum"), [])


def test_eligibility_requires_district_level_honour():
    honours, problems = parse_honours([{"kind": "model_worker", "level": "enterprise"},
                                       {"kind": "craftsman", "level": "town"}])
    assert problems[0].rule == "eligible_honour"
    assert "model_worker@enterprise" in problems[0].message and "craftsman@town" in problems[0].message
    assert parse_honours([{"kind": "studio_leader", "level": "district"}])[1] == []
    assert parse_honours([{"kind": "hero", "level": "city"}])[1][0].rule == "known_honour_kind"


def test_text_limits_and_control_characters():
    assert check_text("name", "张" * 51)[1][0].rule == "max_length"
    assert "50" in check_text("name", "张" * 51)[1][0].message
    assert check_text("name", "张\x00明")[1][0].rule == "printable_text"
    assert check_text("name", " 张明 ") == ("张明", [])
