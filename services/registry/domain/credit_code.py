"""Unified social credit code (统一社会信用代码), GB 32100-2015.

Layout of the 18 characters (1-based positions):

* 1      registration authority code (登记管理部门码)
* 2      organisation category code (机构类别码)
* 3-8    administrative division code (登记管理机关行政区划码), digits
* 9-17   organisation code (主体标识码), GB 11714: 8 body characters + check
* 18     check character over positions 1-17

The charset excludes I, O, Z, S, V to avoid confusion with 1, 0, 2, 5, U.
Both check characters are verified: the GB 32100 one (weights 3^i mod 31) and
the GB 11714 one embedded at position 17 (weights 3,7,9,10,5,8,4,2 mod 11,
10 -> 'X', 11 -> '0'). Both algorithms were checked against published codes
(e.g. 914403001922038216, 9144030071526726XG, 91350100M000100Y43).
"""

from __future__ import annotations

from .errors import Problem

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# Registration authorities defined by GB 32100-2015 Table 1 and its amendments.
AUTHORITIES = frozenset("123456789ANY")
LENGTH = 18


def check_character(first17: str) -> str:
    """The GB 32100 check character (position 18) for the first 17 characters."""
    total = sum(CHARSET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def organisation_check_character(body8: str) -> str:
    """The GB 11714 check character (position 17) for positions 9-16."""
    # GB 11714 values letters A..Z as 10..35 (their position after the digits).
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w
                for c, w in zip(body8, ORG_WEIGHTS, strict=True))
    remainder = 11 - total % 11
    return {10: "X", 11: "0"}.get(remainder, str(remainder))


def complete(first16: str) -> str:
    """Append both check characters to 16 characters (for fixtures and tests)."""
    first17 = first16 + organisation_check_character(first16[8:16])
    return first17 + check_character(first17)


def validate(value: object, field: str = "credit_code") -> tuple[str | None, list[Problem]]:
    """Return the normalised (upper-case, trimmed) code or the problems found."""
    if not isinstance(value, str):
        return None, [Problem(field, value, "type", "credit code must be text")]
    code = value.strip().upper()
    if len(code) != LENGTH:
        return None, [Problem(field, value, "length",
                              f"credit code must have {LENGTH} characters, got {len(code)} / "
                              "统一社会信用代码须为18位")]
    for position, char in enumerate(code, start=1):
        if char not in CHARSET:
            return None, [Problem(field, value, "charset",
                                  f"character {char!r} at position {position} is not allowed "
                                  "by GB 32100-2015 (digits and upper-case letters except "
                                  "I, O, Z, S, V) / 含有非法字符")]
    if code[0] not in AUTHORITIES:
        return None, [Problem(field, value, "registration_authority",
                              f"position 1 {code[0]!r} is not a registration authority code "
                              f"({''.join(sorted(AUTHORITIES))}) / 登记管理部门码错误")]
    if not code[2:8].isdigit():
        return None, [Problem(field, value, "division_code",
                              "positions 3-8 must be a 6-digit administrative division code / "
                              "行政区划码须为6位数字")]
    expected_org = organisation_check_character(code[8:16])
    if code[16] != expected_org:
        return None, [Problem(field, value, "organisation_code_check",
                              f"position 17 is {code[16]!r}, the GB 11714 check character of "
                              f"{code[8:16]} is {expected_org!r} / 组织机构代码校验位错误")]
    expected = check_character(code[:17])
    if code[17] != expected:
        return None, [Problem(field, value, "check_character",
                              f"position 18 is {code[17]!r}, the GB 32100-2015 check "
                              f"character is {expected!r} / 校验码错误")]
    return code, []
