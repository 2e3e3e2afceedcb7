"""The outbox relay: every stored event reaches the consumer once and in order,
through a SIGKILL of the relay and through a RabbitMQ outage."""
import random
import shutil
import subprocess

import psycopg
import pytest
from psycopg import sql

from services.registry import bootstrap
from services.registry.domain.volunteer import VolunteerRegistration
from tests.conftest import TEST_DSN, wait_for


def registrations(n: int) -> list[VolunteerRegistration]:
    rng = random.Random()
    return [VolunteerRegistration(
        unit="ks", name=f"志愿者{i}", gender="女", employer="昆山某电子有限公司", post="班组长",
        political_status="群众", education="本科", skill_grade="技师",
        honours=[{"kind": "craftsman", "level": "district"}], phone=f"13{rng.randrange(10**9):09d}",
        expertise=["quality_control"], employer_industry="C39") for i in range(n)]


def relay_position(stack) -> int:
    with psycopg.connect(TEST_DSN) as conn:
        try:
            row = conn.execute(sql.SQL("SELECT position FROM {} WHERE service = 'registry'").format(
                sql.Identifier(stack.schemas["registry"], "outbox_position"))).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
    return row[0] if row else 0


def assert_each_event_once_in_order(stack, app, expected: int):
    entries = wait_for(lambda: (e := stack.ledger_entries()) and len(e) >= expected and e, 60,
                       message=f"{expected} ledger entries")
    assert len(entries) == expected
    sequences = [e["source_sequence"] for e in entries]
    assert sequences == sorted(sequences), "the ledger received the events out of order"
    assert len(set(sequences)) == expected
    # Every stored event that is published (volunteers, not the internal phone index) arrived.
    stored = app.recorder.select_notifications(start=1, limit=10 * expected)
    published = [n.id for n in stored if bootstrap.translate(app.mapper.to_domain_event(n)) is not None]
    assert sequences == published


@pytest.fixture
def relay_stack(stack_factory):
    stack = stack_factory()
    stack.env["ZHUQI_OUTBOX__BATCH_SIZE"] = "50"  # small rounds, so a kill lands mid-stream
    stack.start("ledger")
    app = bootstrap.build_application(stack.config(), pool_size=2)
    yield stack, app
    app.close()


def test_relay_killed_mid_stream_publishes_every_event_once_in_order(relay_stack):
    stack, app = relay_stack
    total = 3000
    app.register_many_volunteers(registrations(total))
    relay = stack.start_relay()
    wait_for(lambda: relay_position(stack) > 0, 30, 0.005, "the relay to publish its first batch")
    relay.kill()  # SIGKILL: no chance to record anything more
    relay.wait(10)
    stopped_at = relay_position(stack)
    assert 0 < stopped_at < 2 * total, "the kill should land mid-stream"
    stack.start_relay()
    assert_each_event_once_in_order(stack, app, total)


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl to stop and start the broker")
def test_relay_survives_a_broker_outage(relay_stack):
    stack, app = relay_stack
    app.register_many_volunteers(registrations(500))
    stack.start_relay()
    wait_for(lambda: len(stack.ledger_entries()) == 500, 60, message="the first 500 entries")
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True)
    try:
        # Accepted while the broker is down: stored in the outbox, nothing lost.
        app.register_many_volunteers(registrations(700))
        wait_for(lambda: "interrupted" in stack.log("registry-relay"), 30, 0.1, "the relay to notice the outage")
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "await_startup"], capture_output=True)
    assert_each_event_once_in_order(stack, app, 1200)
