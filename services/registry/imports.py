"""Bulk import of volunteers and enterprises from CSV or XLSX files.

Rules:

* Headers are the Chinese column names of ``templates`` (order free, unknown
  columns refused so typos are not silently ignored).
* At most ``MAX_ROWS`` (20,000) data rows and ``MAX_BYTES`` (20 MB) per file.
* CSV text is UTF-8, with or without BOM. Bytes that are not UTF-8 are never
  guessed at: if the file decodes as GB18030/GBK the problem says so, and the
  caller may declare ``encoding="gbk"`` (or ``gb18030``) to read it.
* Every row is validated first and every problem is reported with the row
  number the user sees (header is row 1), the column header, the value and
  the reason. A file with any problem imports nothing.
* Rows whose natural key (phone number / credit code) is already registered
  are reported as unchanged and not applied, so re-importing a file is a no-op.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable
from uuid import UUID

from openpyxl import load_workbook

from .domain.enterprise import EnterpriseRegistration, validate_enterprise
from .domain.errors import Problem, ValidationError
from .domain.volunteer import VolunteerRegistration, validate_registration
from .templates import ENTERPRISE_COLUMNS, OPTIONAL_COLUMNS, VOLUNTEER_COLUMNS

MAX_ROWS = 20_000
MAX_BYTES = 20 * 1024 * 1024
SEPARATORS = (";", "；")

HONOUR_KINDS = {"劳模": "model_worker", "劳动模范": "model_worker", "五一劳动奖章": "may_day_medal",
                "工匠": "craftsman", "第一完成人": "first_completer",
                "创新成果第一完成人": "first_completer", "先进操作法第一完成人": "first_completer",
                "发明专利第一完成人": "first_completer", "创新工作室领衔人": "studio_leader"}
HONOUR_LEVELS = {"国家级": "national", "全国": "national", "省级": "province", "市级": "city",
                 "区级": "district", "县级市级": "district", "县级市（区）级": "district",
                 "镇级": "town", "街道级": "town", "企业级": "enterprise"}
GENDERS = {"男": "male", "女": "female"}
SIZES = {"大型": "large", "中型": "medium", "小型": "small", "微型": "micro"}
FLAGS = {"是": True, "否": False}


@dataclass(frozen=True)
class ImportProblem:
    row: int | None  # row number as shown in the spreadsheet; None = whole file
    column: str | None
    value: Any
    reason: str


@dataclass
class ImportReport:
    created: list[tuple[int, UUID]] = field(default_factory=list)
    unchanged: list[tuple[int, UUID | None]] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


Progress = Callable[[int, int], None]


def _read_bytes(source: bytes | BinaryIO) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    return source.read(MAX_BYTES + 1)


def _decode(data: bytes, encoding: str | None) -> tuple[str | None, list[ImportProblem]]:
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            return None, [ImportProblem(None, None, encoding, f"unknown encoding {encoding!r}")]
        try:
            return data.decode(encoding).lstrip("\ufeff"), []
        except UnicodeDecodeError as exc:
            return None, [ImportProblem(None, None, encoding,
                                        f"file is not valid {encoding} at byte {exc.start} / "
                                        "文件编码与声明不符")]
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        try:
            data.decode("gb18030")
            reason = ("file is not UTF-8; it looks like GBK/GB18030 (e.g. saved by Excel on "
                      "Chinese Windows). Save it as 'CSV UTF-8' or import with encoding='gbk' / "
                      "文件不是UTF-8编码，疑似GBK编码，请另存为UTF-8或声明encoding='gbk'")
        except UnicodeDecodeError:
            reason = f"file is not valid UTF-8 text (invalid byte at offset {exc.start}) / 文件不是UTF-8编码"
        return None, [ImportProblem(None, None, None, reason)]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        # Excel stores a phone number typed as a number as a float.
        value = int(value)
    return str(value).strip()


def _table(source: bytes | BinaryIO, filename: str,
           encoding: str | None) -> tuple[list[str], list[tuple[int, list[str]]], list[ImportProblem]]:
    """Header and (row number, cells) of the first sheet, skipping blank rows."""
    data = _read_bytes(source)
    if len(data) > MAX_BYTES:
        return [], [], [ImportProblem(None, None, len(data),
                                      f"file is larger than {MAX_BYTES // 1024 // 1024} MB")]
    lower = filename.lower()
    rows: list[tuple[int, list[str]]] = []
    if lower.endswith(".xlsx"):
        try:
            sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).worksheets[0]
        except Exception as exc:  # openpyxl raises many types for corrupt files
            return [], [], [ImportProblem(None, None, filename, f"not a readable XLSX file: {exc}")]
        iterator = sheet.iter_rows(values_only=True)
        for number, values in enumerate(iterator, start=1):
            cells = [_cell(v) for v in values]
            if any(cells):
                rows.append((number, cells))
            if len(rows) > MAX_ROWS + 1:
                break
    elif lower.endswith(".csv"):
        text, problems = _decode(data, encoding)
        if text is None:
            return [], [], problems
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            for values in reader:
                cells = [v.strip() for v in values]
                if any(cells):
                    rows.append((reader.line_num, cells))
                if len(rows) > MAX_ROWS + 1:
                    break
        except csv.Error as exc:
            return [], [], [ImportProblem(reader.line_num, None, None, f"malformed CSV: {exc}")]
    else:
        return [], [], [ImportProblem(None, None, filename, "file must be .csv or .xlsx")]
    if not rows:
        return [], [], [ImportProblem(None, None, None, "file is empty / 文件为空")]
    header = rows[0][1]
    body = rows[1:]
    if len(body) > MAX_ROWS:
        return [], [], [ImportProblem(None, None, f">{MAX_ROWS}",
                                      f"file has more than {MAX_ROWS} data rows; split it / "
                                      f"每个文件不超过{MAX_ROWS}行")]
    return header, body, []


def _check_header(header: list[str], columns: dict[str, str]) -> list[ImportProblem]:
    problems = [ImportProblem(1, h, h, "unknown column / 未知列") for h in header
                if h and h not in columns]
    problems += [ImportProblem(1, c, None, "required column is missing / 缺少必需列")
                 for c in columns if c not in header and c not in OPTIONAL_COLUMNS]
    dupes = {h for h in header if h and header.count(h) > 1}
    problems += [ImportProblem(1, h, h, "duplicate column / 列重复") for h in sorted(dupes)]
    return problems


def _split(cell: str) -> list[str]:
    for sep in SEPARATORS[1:]:
        cell = cell.replace(sep, SEPARATORS[0])
    return [item.strip() for item in cell.split(SEPARATORS[0]) if item.strip()]


def _honours(cell: str) -> tuple[list[dict[str, Any]], str | None]:
    honours = []
    for item in _split(cell):
        parts = [p.strip() for p in item.replace("：", ":").split(":", 2)]
        if len(parts) < 2 or parts[0] not in HONOUR_KINDS or parts[1] not in HONOUR_LEVELS:
            return [], (f"honour {item!r} must be 类别:级别[:称号] with 类别 in "
                        f"{'/'.join(HONOUR_KINDS)} and 级别 in {'/'.join(HONOUR_LEVELS)}")
        honour = {"kind": HONOUR_KINDS[parts[0]], "level": HONOUR_LEVELS[parts[1]]}
        if len(parts) == 3 and parts[2]:
            honour["title"] = parts[2]
        honours.append(honour)
    return honours, None


def _records(header: list[str], body: list[tuple[int, list[str]]],
             columns: dict[str, str]) -> list[tuple[int, dict[str, str]]]:
    index = {name: header.index(name) for name in columns if name in header}
    return [(number, {columns[name]: (cells[i] if i < len(cells) else "")
                      for name, i in index.items()}) for number, cells in body]


def _file_records(source: bytes | BinaryIO, filename: str, encoding: str | None,
                  columns: dict[str, str]) -> tuple[list[tuple[int, dict[str, str]]], list[ImportProblem]]:
    """The file's rows keyed by field, or the problems that stop reading it (encoding, format, header)."""
    header, body, problems = _table(source, filename, encoding)
    if not problems:
        problems = _check_header(header, columns)
    if problems:
        return [], problems
    return _records(header, body, columns), []


def _map_problem(problem: Problem, row: int, columns: dict[str, str]) -> ImportProblem:
    by_field = {f: h for h, f in columns.items()}
    root = problem.field.split("[")[0].split(".")[0]
    return ImportProblem(row, by_field.get(root, problem.field), problem.value, problem.message)


def parse_volunteers(source: bytes | BinaryIO, filename: str, encoding: str | None = None
                     ) -> tuple[list[tuple[int, VolunteerRegistration]], list[ImportProblem]]:
    """Rows as (file row number, registration) and the file/cell-format problems.

    Domain rules (eligibility, tags, text limits...) are checked by the
    application during ``import_volunteers``, which maps them back to cells.
    """
    records, problems = _file_records(source, filename, encoding, VOLUNTEER_COLUMNS)
    if problems:
        return [], problems
    rows = []
    for number, rec in records:
        honours, error = _honours(rec["honours"])
        if error:
            problems.append(ImportProblem(number, "荣誉", rec["honours"], error))
        gender = GENDERS.get(rec["gender"], rec["gender"])
        rows.append((number, VolunteerRegistration(
            unit=rec["unit"], name=rec["name"], gender=gender, employer=rec["employer"],
            post=rec.get("post") or None, political_status=rec["political_status"],
            education=rec["education"], skill_grade=rec["skill_grade"], honours=honours,
            phone=rec["phone"], expertise=_split(rec["expertise"]),
            employer_industry=rec["employer_industry"], id_number=rec.get("id_number") or None)))
    return rows, problems


def parse_enterprises(source: bytes | BinaryIO, filename: str, encoding: str | None = None
                      ) -> tuple[list[tuple[int, EnterpriseRegistration]], list[ImportProblem]]:
    records, problems = _file_records(source, filename, encoding, ENTERPRISE_COLUMNS)
    if problems:
        return [], problems
    rows = []
    for number, rec in records:
        values: dict[str, Any] = {}
        for column, key, table in (("企业规模", "size", SIZES), ("专精特新小巨人", "little_giant", FLAGS),
                                   ("是否建会", "unionised", FLAGS)):
            if rec[key] not in table:
                problems.append(ImportProblem(number, column, rec[key],
                                              f"must be one of {'/'.join(table)}"))
            values[key] = table.get(rec[key])
        rows.append((number, EnterpriseRegistration(
            unit=rec["unit"], name=rec["name"], credit_code=rec["credit_code"],
            industry=rec["industry"], size=values["size"], little_giant=values["little_giant"],
            unionised=values["unionised"], competitors=_split(rec.get("competitors", "")))))
    return rows, problems


def _import(register: Callable[..., Any], validate: Callable[[Any], tuple[Any, list[Problem]]],
            rows: list[tuple[int, Any]], problems: list[ImportProblem],
            columns: dict[str, str], progress: Progress | None) -> ImportReport:
    report = ImportReport(problems=list(problems))
    numbers = [n for n, _ in rows]
    if report.problems:
        # Cell-format problems already refuse the file; still check the domain
        # rules of every row (without touching the registry) so the user gets
        # every bad cell in one report.
        for number, row in rows:
            report.problems += [_map_problem(p, number, columns) for p in validate(row)[1]]
    else:
        try:
            result = register([r for _, r in rows], progress)
        except ValidationError as exc:
            report.problems = [_map_problem(p, numbers[p.item] if p.item is not None else 0, columns)
                               for p in exc.problems]
        else:
            report.created = [(numbers[i], ident) for i, ident in result.created]
            report.unchanged = [(numbers[i], ident) for i, ident in result.unchanged]
            return report
    unique = {(p.row, p.column, repr(p.value), p.reason): p for p in report.problems}
    report.problems = sorted(unique.values(), key=lambda p: (p.row or 0, p.column or ""))
    return report


def import_volunteers(app: Any, source: bytes | BinaryIO, filename: str,
                      encoding: str | None = None, progress: Progress | None = None) -> ImportReport:
    """Validate the whole file, then register all new volunteers in one transaction."""
    rows, problems = parse_volunteers(source, filename, encoding)
    return _import(app.register_many_volunteers, validate_registration, rows, problems,
                   VOLUNTEER_COLUMNS, progress)


def import_enterprises(app: Any, source: bytes | BinaryIO, filename: str,
                       encoding: str | None = None, progress: Progress | None = None) -> ImportReport:
    """Validate the whole file, then register all new enterprises in one transaction."""
    rows, problems = parse_enterprises(source, filename, encoding)
    return _import(app.register_many_enterprises, validate_enterprise, rows, problems,
                   ENTERPRISE_COLUMNS, progress)
