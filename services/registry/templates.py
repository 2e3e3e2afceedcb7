"""Column headers of the bulk-import files and downloadable templates.

List cells (honours, expertise, competitors) separate items with ``;`` (the
full-width ``；`` is accepted too). Encodings:

* 荣誉 (honours): ``类别:级别[:称号]`` items, e.g. ``劳模:市级;工匠:区级:姑苏工匠``.
  类别 is one of 劳模, 五一劳动奖章, 工匠, 第一完成人 (also 创新成果第一完成人,
  先进操作法第一完成人, 发明专利第一完成人), 创新工作室领衔人; 级别 is one of
  国家级, 省级, 市级, 区级 (= 县级市级), 镇级 (= 街道级), 企业级. ``：`` is accepted.
* 专长 (expertise): tag ids or Chinese labels, e.g. ``焊接;集成电路``.
* 所属行业: GB/T 4754-2017 division, ``C39`` or ``39``.
* 归口单位: unit name (张家港) or code (zjg).
* 性别: 男/女. 企业规模: 大型/中型/小型/微型. 专精特新小巨人, 是否建会: 是/否.
* 竞争企业: credit codes of enterprises already registered or in the same file.
"""

from __future__ import annotations

import csv
import io

from openpyxl import Workbook

VOLUNTEER_COLUMNS: dict[str, str] = {
    "姓名": "name", "性别": "gender", "工作单位": "employer", "职务": "post",
    "政治面貌": "political_status", "文化程度": "education", "技能等级": "skill_grade",
    "荣誉": "honours", "联系电话": "phone", "身份证号": "id_number", "专长": "expertise",
    "所属行业": "employer_industry", "归口单位": "unit",
}
ENTERPRISE_COLUMNS: dict[str, str] = {
    "企业名称": "name", "统一社会信用代码": "credit_code", "所属行业": "industry",
    "企业规模": "size", "专精特新小巨人": "little_giant", "是否建会": "unionised",
    "归口单位": "unit", "竞争企业": "competitors",
}
OPTIONAL_COLUMNS = frozenset({"职务", "身份证号", "竞争企业"})

VOLUNTEER_EXAMPLE = ["张明", "男", "苏州某精密机械有限公司", "车间主任", "中共党员", "大专",
                     "高级技师", "劳模:市级;工匠:区级", "13812345678", "", "数控加工;工艺改进",
                     "C34", "张家港"]
# The example credit code is well-formed (both check characters valid) but fictitious.
ENTERPRISE_EXAMPLE = ["苏州某智能装备有限公司", "91320582000000000J",
                      "C35", "小型", "是", "是", "张家港", ""]


def _csv(headers: list[str], example: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerow(example)
    # UTF-8 with BOM so that Excel on Chinese Windows opens it correctly.
    return buffer.getvalue().encode("utf-8-sig")


def _xlsx(headers: list[str], example: list[str], title: str) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title
    sheet.append(headers)
    # Text cells: keeps leading zeros of landlines and the full phone number.
    sheet.append(example)
    for cell in sheet[2]:
        cell.number_format = "@"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def volunteer_template_csv() -> bytes:
    return _csv(list(VOLUNTEER_COLUMNS), VOLUNTEER_EXAMPLE)


def volunteer_template_xlsx() -> bytes:
    return _xlsx(list(VOLUNTEER_COLUMNS), VOLUNTEER_EXAMPLE, "劳模工匠")


def enterprise_template_csv() -> bytes:
    return _csv(list(ENTERPRISE_COLUMNS), ENTERPRISE_EXAMPLE)


def enterprise_template_xlsx() -> bytes:
    return _xlsx(list(ENTERPRISE_COLUMNS), ENTERPRISE_EXAMPLE, "企业")
