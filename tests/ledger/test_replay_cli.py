"""Replay figures as of a date (PostgreSQL and export agree), and the `ledger` console."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import psycopg
import pytest
from click.testing import CliRunner

from services.ledger import store
from services.ledger.replay import replay
from zhuqi.cli.ledger import ledger as ledger_cli

from .conftest import ADMIN_DSN, drop_schema, envelope, make_schema, signer

CST = timezone(timedelta(hours=8))
DAY1, DAY2 = datetime(2025, 3, 1, 10, tzinfo=CST), datetime(2025, 3, 2, 23, 30, tzinfo=CST)


def _events():
    e, n = [], iter(range(1, 100))
    def add(name, data, when, service="registry"):
        e.append(envelope(name, data, seq=next(n), time=when, service=service, unit=data.get("unit", "zjg")))
    for v, unit in (("v1", "zjg"), ("v2", "zjg"), ("v3", "ks")):
        add("volunteer_registered", {"volunteer_id": v, "unit": unit}, DAY1)
    add("volunteer_suspended", {"volunteer_id": "v2", "unit": "zjg"}, DAY1)
    add("team_formed", {"team_id": "t1", "unit": "zjg", "tier": "district"}, DAY1)
    add("team_member_joined", {"team_id": "t1", "unit": "zjg", "volunteer_id": "v1"}, DAY1)
    add("team_member_joined", {"team_id": "t1", "unit": "zjg", "volunteer_id": "v2"}, DAY1)
    add("enterprise_registered", {"enterprise_id": "e1", "unit": "ks", "size": "small"}, DAY1)
    add("volunteer_honour_added", {"volunteer_id": "v1", "unit": "zjg", "honour": "劳模"}, DAY1)
    add("something_new", {"unit": "zjg"}, DAY1)                                  # unknown registry type
    add("case_opened", {"case_id": "c1", "unit": "zjg"}, DAY1, service="cases")  # another service
    # The next day (late evening, UTC+8): these belong to 2 March, not 1 March.
    add("volunteer_withdrawn", {"volunteer_id": "v3", "unit": "ks"}, DAY2)
    add("volunteer_reinstated", {"volunteer_id": "v2", "unit": "zjg"}, DAY2)
    add("team_member_left", {"team_id": "t1", "unit": "zjg", "volunteer_id": "v2"}, DAY2)
    add("enterprise_registered", {"enterprise_id": "e2", "unit": "ks", "size": "large"}, DAY2)
    return e


@pytest.fixture(scope="module")
def ledger(admin):
    name = make_schema(admin, "replay")
    with psycopg.connect(ADMIN_DSN) as conn:
        store.append(conn, _events(), schema=name)
        store.sign_checkpoint(conn, signer(), schema=name)
    yield name
    drop_schema(admin, name)


def test_figures_as_of_the_first_day(admin, ledger):
    fig = replay(admin, date(2025, 3, 1), ledger)["registry"]
    assert fig["volunteers"] == {"ks": {"active": 1, "suspended": 0, "withdrawn": 0},
                                 "zjg": {"active": 1, "suspended": 1, "withdrawn": 0}}
    assert fig["teams"]["zjg"]["district"] == {"teams": 1, "members": 2}
    assert fig["enterprises"] == {"ks": {"total": 1, "by_size": {"small": 1}}}
    assert fig["honours"] == {"ks": 0, "zjg": 1}
    assert fig["unknown_event_types"] == {"cn.suzhou.zhuqi.registry.something_new.v1": 1}


def test_figures_as_of_the_second_day_and_export_agrees(admin, ledger, tmp_path):
    from services.ledger.export import export
    result = replay(admin, date(2025, 3, 2), ledger)
    fig = result["registry"]
    assert fig["volunteers"]["ks"]["withdrawn"] == 1 and fig["volunteers"]["zjg"]["active"] == 2
    assert fig["teams"]["zjg"]["district"] == {"teams": 1, "members": 1}
    assert fig["enterprises"]["ks"] == {"total": 2, "by_size": {"large": 1, "small": 1}}
    assert result["not_projected"] == {"cn.suzhou.zhuqi.cases.case_opened.v1": 1}
    out = tmp_path / "x.sqlite"
    with psycopg.connect(ADMIN_DSN) as conn:
        export(conn, out, ledger)
    assert replay(out, date(2025, 3, 2)) == result
    # 23:30 at UTC+8 is 15:30 UTC: an explicit instant in another zone is compared as an instant.
    early = replay(out, datetime(2025, 3, 2, 15, 30, tzinfo=timezone.utc))
    assert early["registry"]["volunteers"]["ks"]["withdrawn"] == 1
    assert replay(out, datetime(2025, 3, 2, 15, 29, tzinfo=timezone.utc))["registry"]["volunteers"]["ks"]["withdrawn"] == 0


def test_console_end_to_end(admin, ledger, tmp_path, monkeypatch):
    monkeypatch.setenv("ZHUQI_POSTGRES_DSN", ADMIN_DSN)
    runner = CliRunner()
    key_file = tmp_path / "signer.key"
    res = runner.invoke(ledger_cli, ["keygen", "--name", "audit.test/ledger", "--out", str(key_file)])
    assert res.exit_code == 0 and res.output.startswith("audit.test/ledger+")
    res = runner.invoke(ledger_cli, ["verify", "--schema", ledger, "--key", signer().verifier_key, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["ok"] is True
    out = tmp_path / "e.sqlite"
    assert runner.invoke(ledger_cli, ["export", str(out), "--schema", ledger]).exit_code == 0
    res = runner.invoke(ledger_cli, ["verify", "--file", str(out), "--json"])
    assert res.exit_code == 0 and "not pinned" in json.loads(res.output)["key_source"]
    res = runner.invoke(ledger_cli, ["replay", "--as-of", "2025-03-01", "--file", str(out), "--json"])
    assert json.loads(res.output)["registry"]["volunteers"]["zjg"]["suspended"] == 1
    res = runner.invoke(ledger_cli, ["history", "v2", "--schema", ledger, "--bundle", str(tmp_path / "b.json")])
    assert res.exit_code == 0 and "proven" in res.output
    # A checkpoint by another key makes the pinned verification fail, naming what failed.
    res = runner.invoke(ledger_cli, ["checkpoint", "--signing-key-file", str(key_file), "--schema", ledger])
    assert res.exit_code == 0 and "\u2014 audit.test/ledger " in res.output
    res = runner.invoke(ledger_cli, ["verify", "--schema", ledger, "--key", signer().verifier_key])
    assert res.exit_code == 1 and "FAILED" in res.output and "checkpoint" in res.output
