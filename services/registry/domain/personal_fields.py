"""Validation of the personal fields of the feedback form (Annex 3).

These fields are personal information under PIPL: the application seals them
(``services.registry.personal_data``) before they enter any event, so this
module only validates and normalises them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from .errors import Problem
from .text import check_text

GENDERS = {"male": "male", "female": "female", "男": "male", "女": "female"}
_MOBILE = re.compile(r"1[3-9]\d{9}")
# Landline with area code: 0 + 2-3 digit area code + 7-8 digit number.
_LANDLINE = re.compile(r"0\d{9,11}")
_PHONE_NOISE = re.compile(r"[\s\-()（）]")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


@dataclass(frozen=True)
class PersonalFields:
    name: str
    gender: str
    employer: str
    post: str | None
    political_status: str
    education: str
    phone: str
    id_number: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalise_phone(value: Any, field: str = "phone") -> tuple[str | None, list[Problem]]:
    """Digits only, without the +86/0086 country prefix; mobile or landline with area code."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None, [Problem(field, value, "required", "phone is required / 联系电话必填")]
    digits = _PHONE_NOISE.sub("", value.strip())
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix):]
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits):
        return digits, []
    return None, [Problem(field, value, "phone_format",
                          "phone must be an 11-digit mainland mobile number (1[3-9]…) or a "
                          "landline with area code such as 0512-12345678 / 联系电话格式错误")]


def id_check_character(first17: str) -> str:
    """GB 11643-1999 check character of a resident identity number."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def check_id_number(value: Any, field: str = "id_number") -> tuple[str | None, list[Problem]]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, []
    text = str(value).strip().upper()
    if len(text) != 18 or not text[:17].isdigit() or not (text[17].isdigit() or text[17] == "X"):
        return None, [Problem(field, value, "id_number_format",
                              "identity number must be 17 digits plus a digit or X "
                              "(GB 11643-1999) / 身份证号格式错误")]
    try:
        date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return None, [Problem(field, value, "id_number_birth_date",
                              f"positions 7-14 {text[6:14]} are not a valid birth date / "
                              "出生日期无效")]
    expected = id_check_character(text[:17])
    if text[17] != expected:
        return None, [Problem(field, value, "id_number_check",
                              f"position 18 is {text[17]!r}, the check character is "
                              f"{expected!r} / 身份证校验码错误")]
    return text, []


def check_personal(raw: dict[str, Any]) -> tuple[PersonalFields | None, list[Problem]]:
    problems: list[Problem] = []
    name, found = check_text("name", raw.get("name"))
    problems += found
    gender = GENDERS.get(raw.get("gender").strip()) if isinstance(raw.get("gender"), str) else None
    if gender is None:
        problems.append(Problem("gender", raw.get("gender"), "known_gender",
                                "gender must be male/female (男/女)"))
    employer, found = check_text("employer", raw.get("employer"))
    problems += found
    post, found = check_text("post", raw.get("post"), required=False)
    problems += found
    political_status, found = check_text("political_status", raw.get("political_status"))
    problems += found
    education, found = check_text("education", raw.get("education"))
    problems += found
    phone, found = normalise_phone(raw.get("phone"))
    problems += found
    id_number, found = check_id_number(raw.get("id_number"))
    problems += found
    if problems:
        return None, problems
    return PersonalFields(name, gender, employer, post, political_status, education,
                          phone, id_number), []
