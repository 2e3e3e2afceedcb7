"""The inbox: exactly-once effect on duplicates, dead letters with reasons, gaps reported."""
import json

import pytest

from tests.conftest import http, wait_for
from tests.platform.events import volunteer_registered
from zhuqi.runtime import dlq
from zhuqi.runtime.publisher import ConfirmingPublisher

EXCHANGE, KEY = "zhuqi.registry", "registry.volunteer_registered.v1"


@pytest.fixture
def ledger_only(stack_factory):
    stack = stack_factory()
    stack.start("ledger")
    publisher = ConfirmingPublisher(stack.amqp_uri)
    publisher.connect()

    def send(body: bytes, routing_key: str = KEY):
        publisher.publish(body, EXCHANGE, routing_key)
        publisher.wait_for_confirms(10)

    stack.send = send
    yield stack
    publisher.close()


def inbox_status(stack) -> dict:
    return http("GET", stack.url("ledger") + "/status")[1]["inbox"]


def test_duplicate_delivery_has_no_effect(ledger_only):
    stack = ledger_only
    first = volunteer_registered(1)
    stack.send(first)
    wait_for(lambda: len(stack.ledger_entries()) == 1, 20, message="the first entry")
    stack.send(first)  # the broker redelivers / the relay republishes after a crash
    stack.send(volunteer_registered(2, prev=1))
    wait_for(lambda: len(stack.ledger_entries()) == 2, 20, message="the second entry")
    wait_for(lambda: inbox_status(stack)["duplicates"] == 1, 10, message="the duplicate to be counted")
    entries = stack.ledger_entries()
    assert [(e["source"], e["source_sequence"]) for e in entries] == [("registry", 1), ("registry", 2)]


def test_bad_messages_are_dead_lettered_with_a_reason_and_do_not_block(ledger_only):
    stack = ledger_only
    good = json.loads(volunteer_registered(1))
    unknown = dict(good, type="cn.suzhou.zhuqi.registry.volunteer_teleported.v1", sequence="2", id="u-2")
    violating = dict(good, sequence="3", id="v-3", data={k: v for k, v in good["data"].items() if k != "unit"})
    stack.send(b"{this is not json")
    stack.send(json.dumps(unknown).encode())
    stack.send(json.dumps(violating).encode())
    stack.send(volunteer_registered(4, prev=1))

    wait_for(lambda: len(stack.ledger_entries()) == 1, 20, message="the good message behind the bad ones")
    assert stack.ledger_entries()[0]["source_sequence"] == 4
    letters = wait_for(lambda: (d := dlq.list_dead_letters(stack.amqp_uri, "ledger")) and len(d) == 3 and d, 20,
                       message="three dead letters")
    reasons = [d.reason for d in letters]
    assert reasons[0].startswith("malformed envelope: not JSON")
    assert reasons[1].startswith("unknown event type") and "volunteer_teleported" in reasons[1]
    assert reasons[2].startswith("schema violation") and '"unit" is a required property' in reasons[2]
    # Listing does not consume them.
    assert len(dlq.list_dead_letters(stack.amqp_uri, "ledger")) == 3
    assert inbox_status(stack)["dead_lettered"] == 3


def test_replayed_dead_letters_are_tried_again(ledger_only):
    stack = ledger_only
    stack.send(b"not an envelope")
    wait_for(lambda: len(dlq.list_dead_letters(stack.amqp_uri, "ledger")) == 1, 20, message="a dead letter")
    assert dlq.replay(stack.amqp_uri, "ledger") == 1
    # Still malformed: it comes back with its reason, the consumer counted a second refusal.
    wait_for(lambda: inbox_status(stack)["dead_lettered"] == 2, 20, message="the replayed message to be refused again")
    assert len(dlq.list_dead_letters(stack.amqp_uri, "ledger")) == 1


def test_a_gap_in_the_upstream_sequence_is_reported(ledger_only):
    stack = ledger_only
    stack.send(volunteer_registered(1))
    stack.send(volunteer_registered(5, prev=4))  # 2..4 never arrived
    wait_for(lambda: len(stack.ledger_entries()) == 2, 20, message="both entries")
    status = inbox_status(stack)
    assert status["gaps"] == 1
    assert status["positions"] == {"registry": 5}
