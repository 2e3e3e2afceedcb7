"""The first real path: a volunteer registered over RPC and over HTTP is stored,
published through the outbox and appended by the ledger exactly once; and no
phone number is in plain text in the database, on the broker or in the logs."""
import kombu
import psycopg
import pytest
from psycopg import sql

from tests.conftest import TEST_DSN, http, wait_for
from zhuqi.cli.demo import sample_volunteer
from zhuqi.runtime import rpc


@pytest.fixture(scope="module")
def wiretap(running_stack):
    """A queue that copies every event and every RPC request and reply on the broker."""
    with kombu.Connection(running_stack.amqp_uri) as conn:
        channel = conn.channel()
        queue = kombu.Queue("wiretap", durable=False, auto_delete=False)(channel)
        queue.declare()
        queue.bind_to("zhuqi.registry", "#")
        queue.bind_to("nameko-rpc", "#")

    def drain() -> list[bytes]:
        bodies = []
        with kombu.Connection(running_stack.amqp_uri) as conn:
            q = kombu.Queue("wiretap", no_declare=True)(conn.channel())
            while (message := q.get(no_ack=True)) is not None:
                bodies.append(message.body if isinstance(message.body, bytes) else message.body.encode())
        return bodies
    return drain


def ledger_history(stack, subject: str) -> list[dict]:
    return [e for e in stack.ledger_entries() if e["subject"] == subject]


def test_register_over_http_reaches_the_ledger_once(running_stack):
    status, body = http("POST", running_stack.url("registry") + "/volunteers", sample_volunteer())
    assert status == 201, body
    entries = wait_for(lambda: ledger_history(running_stack, body["id"]), 30, message="the ledger entry")
    assert [e["type"] for e in entries] == ["cn.suzhou.zhuqi.registry.volunteer_registered.v1"]


def test_register_over_rpc_reaches_the_ledger_once(running_stack):
    with rpc.cluster(running_stack.config()) as cluster:
        volunteer_id = cluster.registry.register_volunteer(sample_volunteer())
        assert cluster.registry.get_volunteer(volunteer_id)["status"] == "active"
    entries = wait_for(lambda: ledger_history(running_stack, volunteer_id), 30, message="the ledger entry")
    assert len(entries) == 1


def test_rpc_refusal_names_the_rule(running_stack):
    from nameko.exceptions import RemoteError

    with rpc.cluster(running_stack.config()) as cluster:
        with pytest.raises(RemoteError) as refused:
            cluster.registry.register_volunteer(dict(sample_volunteer(), honours=[{"kind": "model_worker",
                                                                                   "level": "enterprise"}]))
    assert refused.value.exc_type == "ValidationError"
    assert "honours" in refused.value.value


def _all_rows_as_text(schema: str) -> str:
    with psycopg.connect(TEST_DSN) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))]
        return "\n".join(str(row[0]) for t in tables for row in conn.execute(
            sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(schema, t))))


def test_no_phone_number_in_plain_text_anywhere(running_stack, wiretap):
    wiretap()  # start from an empty tap
    person = sample_volunteer()
    phone = person["phone"]
    status, body = http("POST", running_stack.url("registry") + "/volunteers", person)
    assert status == 201
    with rpc.cluster(running_stack.config()) as cluster:
        other = dict(sample_volunteer(), id_number="320582198001011231")
        other_id = cluster.registry.register_volunteer(other)
        # The registry itself can still read them back for authorised callers.
        assert cluster.registry.get_volunteer(other_id)["personal"]["phone"] == other["phone"]
    wait_for(lambda: ledger_history(running_stack, other_id), 30, message="both events in the ledger")
    messages = wiretap()
    assert any(b"volunteer_registered" in m for m in messages), "the tap saw the published events"
    assert len(messages) >= 4, "the tap saw RPC traffic too"
    for secret in (phone, other["phone"], other["id_number"]):
        assert not any(secret.encode() in m for m in messages), f"{secret} crossed the broker in plain text"
        for schema in running_stack.schemas.values():
            assert secret not in _all_rows_as_text(schema), f"{secret} is stored in plain text in {schema}"
        for log in ("registry", "ledger"):
            assert secret not in running_stack.log(log)


def test_logs_are_json_lines_with_the_correlation_id(running_stack):
    import json as json_module
    import urllib.request

    request = urllib.request.Request(running_stack.url("registry") + "/units", headers={"X-Correlation-Id": "audit-42"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["X-Correlation-Id"] == "audit-42"

    def logged():
        lines = [json_module.loads(line) for line in running_stack.log("registry").splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("correlation_id") == "audit-42"]
    lines = wait_for(logged, 10, message="the access log line")
    assert lines[0]["msg"] == "http request" and lines[0]["status"] == 200 and lines[0]["service"] == "registry"
