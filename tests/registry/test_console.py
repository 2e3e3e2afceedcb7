"""`zhuqi registry import FILE` and `zhuqi registry template`, through the real console.

The commands run in-process (click's CliRunner) against a throwaway schema of
the test database, configured only through environment variables as an
operator would; the schema is dropped afterwards.
"""
from __future__ import annotations

import csv
import io
import json
import uuid

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from services.registry import templates
from tests.conftest import TEST_DSN
from zhuqi.cli.main import cli

from .conftest import fresh_phone

HEADERS = list(templates.VOLUNTEER_COLUMNS)
# The console imports nameko, which warns that eventlet is deprecated (known, see pyproject).
pytestmark = pytest.mark.filterwarnings(r"ignore:\s*Eventlet is deprecated")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    schema = f"t_registry_cli_{uuid.uuid4().hex[:8]}"
    values = {"ZHUQI_POSTGRES_DSN": TEST_DSN, "ZHUQI_SERVICES__REGISTRY__SCHEMA": schema,
              "ZHUQI_SECRETS__DIR": str(tmp_path_factory.mktemp("secrets")), "ZHUQI_CONFIG": None,
              # Keys from the environment would override the secrets directory.
              "ZHUQI_MASTER_KEY": None, "ZHUQI_PHONE_PEPPER_KEY": None, "ZHUQI_EVENT_STORE_KEY": None}
    yield values
    with psycopg.connect(TEST_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def run(env: dict, *args: str):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def event_count(env: dict) -> int:
    table = sql.Identifier(env["ZHUQI_SERVICES__REGISTRY__SCHEMA"], "registry_events")
    with psycopg.connect(TEST_DSN) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f'{env["ZHUQI_SERVICES__REGISTRY__SCHEMA"]}.registry_events',))
        if exists.fetchone()[0] is None:
            return 0
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0]


def write_csv(path, rows: list[dict], encoding: str = "utf-8-sig"):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    example = dict(zip(HEADERS, templates.VOLUNTEER_EXAMPLE))
    for overrides in rows:
        values = {**example, "联系电话": fresh_phone(), **overrides}
        writer.writerow([values[h] for h in HEADERS])
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def test_imports_a_good_file_then_reimport_changes_nothing(env, tmp_path):
    path = write_csv(tmp_path / "volunteers.csv", [{}, {"荣誉": "工匠:省级:江苏工匠"}, {}])
    result = run(env, "registry", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "imported volunteers.csv: 3 created, 0 unchanged" in result.stdout
    before = event_count(env)
    again = run(env, "registry", "import", str(path))
    assert again.exit_code == 0 and "0 created, 3 unchanged" in again.stdout
    assert event_count(env) == before


def test_refuses_a_file_with_bad_rows_listing_each_and_storing_nothing(env, tmp_path):
    path = write_csv(tmp_path / "volunteers.csv",
                     [{}, {"荣誉": "劳模:企业级"}, {}, {"专长": "焊接;编织"}, {"联系电话": "12345"}])
    before = event_count(env)
    result = run(env, "registry", "import", str(path))
    assert result.exit_code == 1
    assert "nothing imported; 3 problem(s)" in result.stderr
    lines = result.stderr.splitlines()
    # The honours cell is reported with its parsed value (kind and level), the others as typed.
    for row, column, value in ((3, "荣誉", "'enterprise'"), (5, "专长", "'编织'"), (6, "联系电话", "'12345'")):
        assert any(line.strip().startswith(f"row {row}, column {column}: ") and value in line
                   for line in lines), result.stderr
    assert event_count(env) == before


def test_json_output(env, tmp_path):
    good = write_csv(tmp_path / "志愿者.csv", [{}])
    result = run(env, "registry", "import", "--json", str(good))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kind"] == "volunteers" and report["ok"] is True
    assert (report["created"], report["unchanged"], report["problems"]) == (1, 0, [])

    bad = write_csv(tmp_path / "bad.csv", [{"归口单位": "上海"}])
    result = run(env, "registry", "import", "--kind", "volunteers", "--json", str(bad))
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["created"] == 0
    assert report["problems"] == [{"row": 2, "column": "归口单位", "value": "上海",
                                   "reason": report["problems"][0]["reason"]}]
    assert "上海" in report["problems"][0]["reason"]


def test_gbk_file_refused_with_a_clear_message_unless_declared(env, tmp_path):
    path = write_csv(tmp_path / "volunteers.csv", [{}], encoding="gbk")
    before = event_count(env)
    result = run(env, "registry", "import", str(path))
    assert result.exit_code == 1
    assert "GBK" in result.stderr
    assert event_count(env) == before
    declared = run(env, "registry", "import", "--encoding", "gbk", str(path))
    assert declared.exit_code == 0, declared.output
    assert "1 created" in declared.stdout


def test_unknown_kind_is_a_usage_error(env, tmp_path):
    path = write_csv(tmp_path / "list.csv", [{}])
    result = CliRunner().invoke(cli, ["registry", "import", str(path)], env=env)
    assert result.exit_code == 2 and "--kind" in result.stderr


def test_template_written_as_csv(env, tmp_path):
    out = tmp_path / "t.csv"
    result = run(env, "registry", "template", "volunteers", "--format", "csv", "-o", str(out))
    assert result.exit_code == 0 and f"wrote {out}" in result.stdout
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # BOM: Excel on Chinese Windows reads it as UTF-8
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == HEADERS and rows[1] == templates.VOLUNTEER_EXAMPLE
    # The template itself imports cleanly.
    imported = run(env, "registry", "import", "--kind", "volunteers", str(out))
    assert imported.exit_code == 0, imported.output
