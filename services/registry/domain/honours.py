"""Honours and the eligibility rule of 精选服务队员.

A volunteer may serve only when holding at least one honour of an eligible kind
at county-level-city/district level (县级市（区）级) or above. Honours below
that level (enterprise, town) are still recorded, because they are part of the
volunteer's profile, but they never make anyone eligible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import Problem
from .text import check_text

# kind -> Chinese label; all five kinds named in the seed are eligible kinds.
KINDS: dict[str, str] = {
    "model_worker": "劳模",
    "may_day_medal": "五一劳动奖章",
    "craftsman": "工匠",
    "first_completer": "创新成果/先进操作法/发明专利第一完成人",
    "studio_leader": "创新工作室领衔人",
}
# Level ranks: anything below "district" (rank 2) is ineligible.
LEVELS: dict[str, int] = {
    "enterprise": 0,
    "town": 1,
    "district": 2,
    "city": 3,
    "province": 4,
    "national": 5,
}
LEVEL_LABELS: dict[str, str] = {
    "enterprise": "企业级",
    "town": "镇（街道）级",
    "district": "县级市（区）级",
    "city": "市级",
    "province": "省级",
    "national": "国家级",
}
ELIGIBLE_LEVEL = "district"
MAX_HONOURS = 20


@dataclass(frozen=True)
class Honour:
    kind: str
    level: str
    title: str | None = None

    @property
    def is_eligible(self) -> bool:
        return self.kind in KINDS and LEVELS[self.level] >= LEVELS[ELIGIBLE_LEVEL]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "level": self.level}
        if self.title:
            data["title"] = self.title
        return data


def parse_honour(value: Any, field: str) -> tuple[Honour | None, list[Problem]]:
    """Validate one honour given as a mapping ``{kind, level, title?}`` or an ``Honour``."""
    if isinstance(value, Honour):
        value = value.to_dict()
    if not isinstance(value, dict):
        return None, [Problem(field, value, "type", "an honour is {kind, level, title?}")]
    problems: list[Problem] = []
    kind, level = value.get("kind"), value.get("level")
    if kind not in KINDS:
        problems.append(Problem(f"{field}.kind", kind, "known_honour_kind",
                                f"unknown honour kind {kind!r}; expected one of "
                                f"{', '.join(KINDS)} / 未知荣誉类别"))
    if level not in LEVELS:
        problems.append(Problem(f"{field}.level", level, "known_honour_level",
                                f"unknown honour level {level!r}; expected one of "
                                f"{', '.join(LEVELS)} / 未知荣誉级别"))
    unknown = set(value) - {"kind", "level", "title"}
    if unknown:
        problems.append(Problem(field, sorted(unknown), "known_keys",
                                f"unexpected honour keys {sorted(unknown)}"))
    title, title_problems = check_text(f"{field}.title", value.get("title"),
                                       limit_key="honour.title", required=False)
    problems += title_problems
    if problems:
        return None, problems
    return Honour(kind, level, title), []


def parse_honours(values: Any, field: str = "honours") -> tuple[tuple[Honour, ...], list[Problem]]:
    """Validate a list of honours and the eligibility rule over the whole list."""
    if not isinstance(values, (list, tuple)):
        return (), [Problem(field, values, "type", "honours must be a list")]
    if len(values) > MAX_HONOURS:
        return (), [Problem(field, len(values), "max_items",
                            f"at most {MAX_HONOURS} honours may be recorded")]
    honours: list[Honour] = []
    problems: list[Problem] = []
    for index, value in enumerate(values):
        honour, found = parse_honour(value, f"{field}[{index}]")
        problems += found
        if honour is not None:
            honours.append(honour)
    if problems:
        return (), problems
    if not any(h.is_eligible for h in honours):
        given = ", ".join(f"{h.kind}@{h.level}" for h in honours) or "none"
        problems.append(Problem(
            field, [h.to_dict() for h in honours], "eligible_honour",
            "a volunteer must hold at least one honour (model_worker, may_day_medal, "
            "craftsman, first_completer, studio_leader) at district level or above; "
            f"honours given: {given} / 须具有县级市（区）级以上劳模、五一劳动奖章、工匠、"
            "第一完成人或创新工作室领衔人荣誉之一"))
    return tuple(honours), problems
