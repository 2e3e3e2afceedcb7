"""The 45 responsible units (归口单位) of 苏工办〔2023〕156号, in Annex 2 order.

Quotas are minimums ("以上数据均为不少于") per unit and phase for the four
metrics. Phase 1 (Annex 1, 2023-12..2024-06) only covers the 10 districts;
phase 2 (Annex 2, 2024-07..2024-11) covers all 45 units. Metric order in the
tuples below is ``METRICS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Mapping

from .errors import Problem

UnitKind = Literal["district", "city_body", "enterprise"]

METRICS: tuple[str, ...] = (
    "service_person_times",
    "transfer_person_times",
    "upskilled_person_times",
    "problems_solved",
)
PHASES: tuple[int, ...] = (1, 2)


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    kind: UnitKind
    # phase -> metric -> minimum; a phase missing here means no quota.
    quotas: Mapping[int, Mapping[str, int]]

    def quota(self, phase: int, metric: str) -> int:
        return self.quotas.get(phase, {}).get(metric, 0)


def _q(*values: int) -> Mapping[str, int]:
    return MappingProxyType(dict(zip(METRICS, values, strict=True)))


# (code, name, kind, phase-1 quotas or None, phase-2 quotas). Codes are pinyin
# initials; where initials would collide (交通/交投) the longer pinyin is used.
_TABLE: tuple[tuple[str, str, UnitKind, tuple[int, ...] | None, tuple[int, ...]], ...] = (
    ("zjg", "张家港", "district", (25, 125, 125, 25), (70, 820, 820, 970)),
    ("cs", "常熟", "district", (25, 125, 125, 25), (70, 820, 820, 970)),
    ("tc", "太仓", "district", (20, 100, 100, 20), (70, 820, 820, 970)),
    ("ks", "昆山", "district", (20, 100, 100, 20), (70, 820, 820, 970)),
    ("wj", "吴江", "district", (25, 125, 125, 25), (70, 820, 820, 970)),
    ("wz", "吴中", "district", (15, 75, 75, 15), (60, 800, 800, 960)),
    ("xc", "相城", "district", (15, 75, 75, 15), (60, 800, 800, 960)),
    ("gs", "姑苏", "district", (15, 75, 75, 15), (60, 800, 800, 960)),
    ("sip", "工业园区", "district", (20, 100, 100, 20), (60, 800, 800, 960)),
    ("snd", "高新区", "district", (20, 100, 100, 20), (60, 800, 800, 960)),
    ("sjjg", "市级机关", "city_body", None, (5, 30, 30, 5)),
    ("jy", "教育", "city_body", None, (5, 30, 30, 5)),
    ("ga", "公安", "city_body", None, (5, 30, 30, 5)),
    ("mz", "民政", "city_body", None, (5, 30, 30, 5)),
    ("zj", "住建", "city_body", None, (10, 30, 30, 10)),
    ("cg", "城管", "city_body", None, (5, 30, 30, 5)),
    ("jt", "交通", "city_body", None, (5, 30, 30, 5)),
    ("sw", "水务", "city_body", None, (5, 30, 30, 5)),
    ("wgl", "文广旅", "city_body", None, (5, 30, 30, 5)),
    ("wjw", "卫健委", "city_body", None, (5, 30, 30, 5)),
    ("ylj", "园林局", "city_body", None, (5, 30, 30, 5)),
    ("cy", "创元", "enterprise", None, (5, 30, 30, 5)),
    ("ct", "城投", "enterprise", None, (5, 30, 30, 5)),
    ("gdjt", "轨道交通", "enterprise", None, (5, 30, 30, 5)),
    ("swjt", "水务集团", "enterprise", None, (5, 30, 30, 5)),
    ("fjyl", "风景园林", "enterprise", None, (5, 30, 30, 5)),
    ("mcbh", "名城保护", "enterprise", None, (5, 30, 30, 5)),
    ("tcg", "太仓港", "enterprise", None, (5, 30, 30, 5)),
    ("jiaotou", "交投", "enterprise", None, (5, 30, 30, 5)),
    ("gj", "公交", "enterprise", None, (5, 30, 30, 5)),
    ("yz", "邮政", "enterprise", None, (3, 20, 20, 3)),
    ("yx", "有线", "enterprise", None, (3, 20, 20, 3)),
    ("gd", "供电", "enterprise", None, (3, 20, 20, 3)),
    ("dx", "电信", "enterprise", None, (3, 20, 20, 3)),
    ("yd", "移动", "enterprise", None, (3, 20, 20, 3)),
    ("lt", "联通", "enterprise", None, (3, 20, 20, 3)),
    ("wt", "望亭", "enterprise", None, (3, 20, 20, 3)),
    ("hnfd", "华能发电", "enterprise", None, (3, 20, 20, 3)),
    ("wjrd", "吴江热电", "enterprise", None, (3, 20, 20, 3)),
    ("zhsf", "中核苏阀", "enterprise", None, (3, 20, 20, 3)),
    ("dsdz", "第四地质", "enterprise", None, (3, 20, 20, 3)),
    ("csfd", "常熟发电", "enterprise", None, (3, 20, 20, 3)),
    ("cfhk", "长风航空", "enterprise", None, (3, 20, 20, 3)),
    ("dtrd", "大唐热电", "enterprise", None, (3, 20, 20, 3)),
    ("kc", "昆钞", "enterprise", None, (3, 20, 20, 3)),
)


def _build() -> tuple[Unit, ...]:
    units = []
    for code, name, kind, phase1, phase2 in _TABLE:
        quotas = {2: _q(*phase2)}
        if phase1 is not None:
            quotas[1] = _q(*phase1)
        units.append(Unit(code, name, kind, MappingProxyType(quotas)))
    return tuple(units)


UNITS: tuple[Unit, ...] = _build()
_BY_CODE = {u.code: u for u in UNITS}
_BY_NAME = {u.name: u for u in UNITS}
DISTRICT_CODES: frozenset[str] = frozenset(u.code for u in UNITS if u.kind == "district")


def get_unit(code: str) -> Unit:
    return _BY_CODE[code]


def check_unit(value: object, field: str = "unit") -> tuple[str | None, list[Problem]]:
    """Accept a unit code (``zjg``) or its Chinese name (``张家港``); return the code."""
    if isinstance(value, str):
        text = value.strip()
        unit = _BY_CODE.get(text.lower()) or _BY_NAME.get(text)
        if unit is not None:
            return unit.code, []
    return None, [
        Problem(field, value, "known_unit",
                f"unknown responsible unit {value!r}; expected one of the 45 unit codes "
                "or names of Annex 2 / 未知归口单位")
    ]


def phase_total(phase: int, metric: str) -> int:
    return sum(u.quota(phase, metric) for u in UNITS)
