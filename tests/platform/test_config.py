"""Settings: file, then environment; a wrong or unreachable setting stops start-up, naming it."""
import subprocess
import sys

import pytest

from tests.conftest import free_port
from zhuqi.runtime import config


def test_defaults_then_file_then_environment(tmp_path):
    file = tmp_path / "zhuqi.yaml"
    file.write_text("services:\n  registry:\n    http_port: 9001\n", encoding="utf-8")
    loaded = config.load(file, environ={"ZHUQI_SERVICES__LEDGER__HTTP_PORT": "9002",
                                        "ZHUQI_AMQP_URI": "amqp://u:p@broker:5672/zhuqi"})
    assert loaded.service("registry").http_port == 9001
    assert loaded.service("ledger").http_port == 9002
    assert loaded.amqp_uri == "amqp://u:p@broker:5672/zhuqi"
    assert loaded.source == str(file)


@pytest.mark.parametrize("environ, setting, words", [
    ({"ZHUQI_SERVICES__REGISTRY__HTTP_PORT": "eighty"}, "services.registry.http_port", "is not a number"),
    ({"ZHUQI_SERVICES__REGISTRY__HTTP_PORT": "70000"}, "services.registry.http_port", "from 1 to 65535"),
    ({"ZHUQI_SERVICES__LEDGER__HTTP_PORT": "8101"}, "services.ledger.http_port", "already used by services.registry"),
    ({"ZHUQI_AMQP_URI": "http://127.0.0.1"}, "amqp.uri", "amqp://"),
    ({"ZHUQI_POSTGRES_DSN": "mysql://x"}, "postgres.dsn", "postgresql://"),
    ({"ZHUQI_SERVICES__REGISTRY__SCHEMA": "Drop Table"}, "services.registry.schema", "SQL identifier"),
    ({"ZHUQI_INBOX__BATCH_SIZE": "0"}, "inbox.batch_size", "from 1"),
])
def test_a_wrong_setting_is_named(environ, setting, words):
    with pytest.raises(config.ConfigError) as refused:
        config.load(environ=environ)
    assert refused.value.path == setting
    assert words in str(refused.value)


def test_missing_or_malformed_file_is_named(tmp_path):
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load(tmp_path / "absent.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("amqp: [unclosed", encoding="utf-8")
    with pytest.raises(config.ConfigError, match="not valid YAML"):
        config.load(bad, environ={})


def test_unreachable_broker_stops_start_up_naming_the_setting(tmp_path):
    port = free_port()  # nothing listens there
    env = {"PATH": "/usr/bin:/bin", "ZHUQI_AMQP_URI": f"amqp://guest:secret@127.0.0.1:{port}//",
           "ZHUQI_SECRETS__DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "zhuqi.runtime.host", "registry"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert f"setting amqp.uri (env ZHUQI_AMQP__URI) = 'amqp://guest:***@127.0.0.1:{port}//'" in result.stderr
    assert "cannot reach" in result.stderr
    assert "secret" not in result.stderr  # the password is never printed


def test_unreachable_database_stops_start_up_naming_the_setting(tmp_path):
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "ZHUQI_POSTGRES_DSN": f"postgresql://postgres@127.0.0.1:{port}/zhuqi",
           "ZHUQI_SECRETS__DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "zhuqi.runtime.host", "ledger"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "setting postgres.dsn" in result.stderr and "cannot reach" in result.stderr


def test_keys_that_do_not_match_the_stored_data_stop_start_up(stack_factory):
    """A fresh secrets directory against an existing registry must not write beside unreadable data."""
    stack = stack_factory()
    stack.start("registry")
    stack.stop("registry")
    stack.env["ZHUQI_SECRETS__DIR"] = str(stack.tmp / "other-secrets")
    result = subprocess.run([sys.executable, "-m", "zhuqi.runtime.host", "registry"], env=stack.env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "setting secrets.dir" in result.stderr and "key 'master'" in result.stderr
    assert "restore that key" in result.stderr
    # With the original keys it starts again.
    stack.env["ZHUQI_SECRETS__DIR"] = str(stack.tmp / "secrets")
    stack.start("registry")
