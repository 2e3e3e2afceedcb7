"""Controlled vocabulary of volunteer expertise tags (专长).

Two groups: ``industry`` tags follow the industries the work plan puts in
focus (Jiangsu's 16 advanced-manufacturing clusters and 50 key chains, Suzhou's
four innovation clusters, the future industries), ``skill`` tags name the kind
of help a volunteer gives. Ids are stable ASCII identifiers: they are stored in
events and published, so an id is never renamed or reused; retire a tag by
keeping it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .errors import Problem

TagGroup = Literal["industry", "skill"]
MAX_TAGS = 20


@dataclass(frozen=True)
class Tag:
    id: str
    label: str
    group: TagGroup


_INDUSTRY = (
    # Jiangsu advanced-manufacturing clusters named in the plan.
    ("new_power_equipment", "新型电力装备"),
    ("new_energy", "新能源"),
    ("iot", "物联网"),
    ("semiconductors", "半导体"),
    ("high_end_textiles", "高端纺织"),
    ("emerging_digital", "新兴数字产业"),
    ("engineering_machinery", "工程机械"),
    ("new_energy_vehicles", "新能源（智能网联）汽车"),
    ("high_end_equipment", "高端装备"),
    ("energy_saving_environmental", "节能环保"),
    ("new_display", "新型显示"),
    ("marine_equipment", "海工装备和高技术船舶"),
    ("medical_devices", "新型医疗器械"),
    ("software_information_services", "软件和信息服务"),
    # Examples of the 50 key industrial chains.
    ("integrated_circuits", "集成电路"),
    ("chemical_fibres", "化学纤维"),
    ("machine_tools", "工业母机"),
    ("rail_transit_equipment", "轨道交通装备"),
    ("artificial_intelligence", "人工智能"),
    # Suzhou's four innovation clusters.
    ("electronic_information", "电子信息"),
    ("equipment_manufacturing", "装备制造"),
    ("biomedicine", "生物医药"),
    ("advanced_materials", "先进材料"),
    # Future industries.
    ("frontier_materials", "前沿新材料"),
    ("photonic_chips", "光子芯片与光器件"),
    ("metaverse", "元宇宙"),
    ("hydrogen", "氢能"),
    ("digital_finance", "数字金融"),
    ("cell_gene_therapy", "细胞和基因诊疗"),
    ("aerospace", "空天开发"),
    ("quantum", "量子技术"),
)
_SKILL = (
    ("welding", "焊接"),
    ("cnc_machining", "数控加工"),
    ("fitting_assembly", "钳工装配"),
    ("electrical_maintenance", "电气维修"),
    ("equipment_maintenance", "设备维护"),
    ("automation_control", "自动化控制"),
    ("industrial_robotics", "工业机器人"),
    ("mould_making", "模具制造"),
    ("quality_control", "质量控制"),
    ("inspection_testing", "检验检测"),
    ("process_improvement", "工艺改进"),
    ("product_development", "产品开发"),
    ("technology_transfer", "成果转化"),
    ("lean_management", "精益管理"),
    ("team_building", "班组建设"),
    ("safety_production", "安全生产"),
    ("software", "软件开发"),
    ("data_analysis", "数据分析"),
    ("chemical_process", "化工工艺"),
    ("power_operations", "电力运维"),
    ("construction_engineering", "建筑施工"),
    ("skills_training", "技能培训"),
    ("apprenticeship", "师带徒"),
    ("occupational_health", "职业健康"),
)

TAGS: tuple[Tag, ...] = tuple(
    [Tag(i, label, "industry") for i, label in _INDUSTRY]
    + [Tag(i, label, "skill") for i, label in _SKILL]
)
_BY_ID = {t.id: t for t in TAGS}
_BY_LABEL = {t.label: t for t in TAGS}


def check_tags(values: Any, field: str = "expertise") -> tuple[tuple[str, ...], list[Problem]]:
    """Validate 1..MAX_TAGS tags given as ids or Chinese labels; return ids, de-duplicated."""
    if not isinstance(values, (list, tuple)):
        return (), [Problem(field, values, "type", "expertise must be a list of tags")]
    if not values:
        return (), [Problem(field, values, "required",
                            "at least one expertise tag is required / 至少填写一项专长")]
    if len(values) > MAX_TAGS:
        return (), [Problem(field, len(values), "max_items", f"at most {MAX_TAGS} tags")]
    ids: list[str] = []
    problems: list[Problem] = []
    for index, value in enumerate(values):
        key = value.strip() if isinstance(value, str) else value
        tag = _BY_ID.get(key) or _BY_LABEL.get(key) if isinstance(key, str) else None
        if tag is None:
            problems.append(Problem(f"{field}[{index}]", value, "known_tag",
                                    f"unknown expertise tag {value!r}; see list_expertise_tags() "
                                    "/ 未知专长标签"))
        elif tag.id not in ids:
            ids.append(tag.id)
    return (tuple(ids) if not problems else ()), problems
