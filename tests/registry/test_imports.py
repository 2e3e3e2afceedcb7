"""Bulk import of CSV/XLSX files: all-or-nothing, every bad row reported, idempotent."""

from __future__ import annotations

import csv
import io

import openpyxl

from services.registry import imports, templates
from services.registry.domain import credit_code

from .conftest import fresh_phone

HEADERS = list(templates.VOLUNTEER_COLUMNS)


def volunteer_csv(rows: list[list[str]], encoding: str = "utf-8-sig") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def row(**overrides: str) -> list[str]:
    values = dict(zip(HEADERS, templates.VOLUNTEER_EXAMPLE))
    values["联系电话"] = fresh_phone()
    values.update(overrides)
    return [values[h] for h in HEADERS]


def test_import_then_reimport_changes_nothing(app):
    data = volunteer_csv([row(), row(荣誉="五一劳动奖章:省级:江苏省五一劳动奖章"), row()])
    calls: list[tuple[int, int]] = []
    report = imports.import_volunteers(app, data, "v.csv", progress=lambda d, t: calls.append((d, t)))
    assert report.ok and [n for n, _ in report.created] == [2, 3, 4] and calls[-1] == (3, 3)
    before = app.recorder.max_notification_id()
    again = imports.import_volunteers(app, data, "v.csv")
    assert again.ok and again.created == [] and [n for n, _ in again.unchanged] == [2, 3, 4]
    assert {i for _, i in again.unchanged} == {i for _, i in report.created}
    assert app.recorder.max_notification_id() == before


def test_every_bad_row_reported_and_nothing_imported(app):
    before = app.recorder.max_notification_id()
    data = volunteer_csv([row(), row(荣誉="劳模:企业级"), row(专长="焊接;编织"), row(),
                          row(归口单位="上海"), row(姓名="名" * 51), row(荣誉="英雄:市级")])
    report = imports.import_volunteers(app, data, "v.csv")
    found = {(p.row, p.column) for p in report.problems}
    assert found == {(3, "荣誉"), (4, "专长"), (6, "归口单位"), (7, "姓名"), (8, "荣誉")}
    assert any(p.value == "编织" for p in report.problems)
    assert report.created == [] and app.recorder.max_notification_id() == before


def test_duplicate_phone_within_file(app):
    phone = fresh_phone()
    report = imports.import_volunteers(app, volunteer_csv([row(联系电话=phone), row(联系电话=phone)]), "v.csv")
    assert [(p.row, p.column) for p in report.problems] == [(3, "联系电话")]


def test_gbk_file_gets_clear_message_or_reads_when_declared(app):
    data = volunteer_csv([row()], encoding="gbk")
    report = imports.import_volunteers(app, data, "v.csv")
    assert report.created == [] and "GBK" in report.problems[0].reason
    declared = imports.import_volunteers(app, data, "v.csv", encoding="gbk")
    assert declared.ok and len(declared.created) == 1
    assert app.get_volunteer(declared.created[0][1])["personal"]["name"] == "张明"
    garbage = imports.import_volunteers(app, HEADERS[0].encode() + b"\xff\xfe\xfa\n", "v.csv")
    assert "UTF-8" in garbage.problems[0].reason


def test_row_limit(app, monkeypatch):
    monkeypatch.setattr(imports, "MAX_ROWS", 3)
    report = imports.import_volunteers(app, volunteer_csv([row() for _ in range(4)]), "v.csv")
    assert report.created == [] and "more than 3 data rows" in report.problems[0].reason


def test_unknown_and_missing_columns(app):
    data = "姓名,电话号码\n张三,13800000000\n".encode()
    problems = imports.import_volunteers(app, data, "v.csv").problems
    assert (1, "电话号码") in {(p.row, p.column) for p in problems}
    assert (1, "联系电话") in {(p.row, p.column) for p in problems}


def test_xlsx_volunteers_with_numeric_phone(app):
    book = openpyxl.load_workbook(io.BytesIO(templates.volunteer_template_xlsx()))
    sheet = book.active
    values = row()
    values[HEADERS.index("联系电话")] = int(fresh_phone())
    sheet.append(values)
    sheet.delete_rows(2)  # drop the template's example row
    buffer = io.BytesIO()
    book.save(buffer)
    report = imports.import_volunteers(app, buffer.getvalue(), "v.xlsx")
    assert report.ok and len(report.created) == 1


def test_templates_parse():
    for data, name in ((templates.volunteer_template_csv(), "t.csv"),
                       (templates.volunteer_template_xlsx(), "t.xlsx")):
        rows, problems = imports.parse_volunteers(data, name)
        assert problems == [] and len(rows) == 1 and rows[0][0] == 2
    rows, problems = imports.parse_enterprises(templates.enterprise_template_xlsx(), "t.xlsx")
    assert problems == [] and rows[0][1].size == "small"


def test_enterprise_import_with_in_file_competitor(app):
    a = credit_code.complete("9132050700000001")
    b = credit_code.complete("9132050700000002")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(list(templates.ENTERPRISE_COLUMNS))
    writer.writerow(["甲公司", a, "C28", "中型", "否", "是", "吴江", ""])
    writer.writerow(["乙公司", b, "28", "微型", "是", "否", "wj", a])
    writer.writerow(["丙公司", b[:17] + ("0" if b[17] != "0" else "1"), "C28", "巨型", "否", "否", "wj", ""])
    bad = imports.import_enterprises(app, buffer.getvalue().encode(), "e.csv")
    assert {(p.row, p.column) for p in bad.problems} == {(4, "统一社会信用代码"), (4, "企业规模")}
    good = buffer.getvalue().rsplit("丙公司", 1)[0].encode()
    report = imports.import_enterprises(app, good, "e.csv")
    assert report.ok and len(report.created) == 2
    second = app.get_enterprise(report.created[1][1])
    assert second["competitors"] == [str(report.created[0][1])] and second["industry"] == "C28"
    assert imports.import_enterprises(app, good, "e.csv").created == []
