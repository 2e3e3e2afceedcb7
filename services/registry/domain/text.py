"""Free-text rules shared by all aggregates.

Every free-text field has a documented maximum length (``LIMITS``, in Unicode
characters after trimming surrounding whitespace) and must be printable text:
control characters (C0/C1, DEL, and Unicode format/surrogate/private-use
categories) are refused because they corrupt exports and can hide content in
printed feedback forms.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from .errors import Problem

# Field -> maximum length in characters. Chosen from the sizes of the source
# forms (a Chinese name rarely exceeds 10 characters; 50 leaves room for
# transliterated foreign names) and of GB/T naming conventions for enterprises.
LIMITS: dict[str, int] = {
    "name": 50,
    "employer": 100,
    "post": 50,
    "political_status": 20,
    "education": 20,
    "skill_grade": 20,
    "honour.title": 100,
    "reason": 500,
    "team.name": 50,
    "enterprise.name": 100,
}

_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}


def check_text(
    field: str, value: Any, *, limit_key: str | None = None, required: bool = True
) -> tuple[str | None, list[Problem]]:
    """Return the trimmed text and the problems found (empty when valid)."""
    limit = LIMITS[limit_key or field]
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            return None, [Problem(field, value, "required", f"{field} is required / 必填")]
        return None, []
    if not isinstance(value, str):
        return None, [Problem(field, value, "type", f"{field} must be text / 须为文本")]
    text = value.strip()
    for index, char in enumerate(text):
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            return None, [
                Problem(
                    field,
                    value,
                    "printable_text",
                    f"{field} contains control character U+{ord(char):04X} at position "
                    f"{index + 1} / 含有控制字符",
                )
            ]
    if len(text) > limit:
        return None, [
            Problem(
                field,
                value,
                "max_length",
                f"{field} has {len(text)} characters, the limit is {limit} / "
                f"超过{limit}字上限",
            )
        ]
    return text, []
