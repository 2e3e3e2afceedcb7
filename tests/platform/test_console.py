"""The console: help on every level, machine-readable output where scripts read it."""
import json

import click
import pytest
from click.testing import CliRunner

from zhuqi.cli.main import cli


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *all_commands(cli)], ids=lambda p: " ".join(p) or "zhuqi")
def test_every_level_has_help(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_status_json_reports_services_down(monkeypatch):
    monkeypatch.setenv("ZHUQI_SERVICES__REGISTRY__HTTP_PORT", "1")
    monkeypatch.setenv("ZHUQI_SERVICES__LEDGER__HTTP_PORT", "2")
    result = CliRunner().invoke(cli, ["status", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["registry"]["status"] == "down" and report["ledger"]["status"] == "down"


def test_contracts_list_json():
    result = CliRunner().invoke(cli, ["contracts", "list", "--json"])
    assert result.exit_code == 0
    types = {row["type"] for row in json.loads(result.output)}
    assert "cn.suzhou.zhuqi.registry.volunteer_registered.v1" in types


def test_config_error_is_a_clear_message(monkeypatch):
    monkeypatch.setenv("ZHUQI_AMQP_URI", "ftp://nowhere")
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 1
    assert "setting amqp.uri" in result.output


def test_dlq_commands_against_a_live_broker(running_stack, monkeypatch):
    monkeypatch.setenv("ZHUQI_AMQP_URI", running_stack.amqp_uri)
    from zhuqi.runtime.publisher import ConfirmingPublisher

    publisher = ConfirmingPublisher(running_stack.amqp_uri)
    publisher.connect()
    publisher.publish(b"garbage", "zhuqi.registry", "registry.volunteer_registered.v1", message_id="m-1")
    publisher.wait_for_confirms(10)
    publisher.close()
    from tests.conftest import wait_for

    def listed():
        result = CliRunner().invoke(cli, ["dlq", "list", "ledger", "--json"])
        return result.exit_code == 0 and json.loads(result.output)
    letters = wait_for(listed, 20, 0.2, "the dead letter to be listed")
    assert letters[0]["message_id"] == "m-1" and "malformed envelope" in letters[0]["reason"]
    result = CliRunner().invoke(cli, ["dlq", "replay", "zhuqi.ledger.inbox", "--id", "m-1", "--json"])
    assert json.loads(result.output) == {"replayed": 1}
    unknown = CliRunner().invoke(cli, ["dlq", "list", "nosuchqueue"])
    assert unknown.exit_code == 1 and "unknown consumer queue" in unknown.output
