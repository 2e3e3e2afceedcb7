"""nameko's own test tooling, events and consumers on this stack, under eventlet.

Not collected by the main run (its name does not start with test_): it needs a
process that eventlet has monkey-patched before anything else is imported, so
tests/platform/test_nameko_stack.py runs it in one. nameko 3.0.0rc11 predates
Python 3.11 and eventlet 0.34+ (nameko#783: "'Queue' object has no attribute
'mutex'"); this suite is the proof that the pinned versions work together.
"""
import os
import uuid

from nameko.events import BROADCAST, EventDispatcher, event_handler
from nameko.rpc import rpc
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcClient
from nameko.testing.services import entrypoint_waiter

AMQP_URI = os.environ.get("ZHUQI_PROBE_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672//")
SOURCE = f"zhuqi_probe_{uuid.uuid4().hex[:8]}"
received: list = []


class Publisher:
    name = SOURCE
    dispatch = EventDispatcher()

    @rpc
    def announce(self, payload):
        self.dispatch("announced", payload)
        return "sent"


class Listener:
    name = f"{SOURCE}_listener"

    @event_handler(SOURCE, "announced")
    def on_announced(self, payload):
        received.append(payload)

    @event_handler(SOURCE, "announced", handler_type=BROADCAST, reliable_delivery=False)
    def on_broadcast(self, payload):
        received.append(("broadcast", payload))


def test_rpc_events_and_consumers(container_factory):
    config = {"AMQP_URI": AMQP_URI}
    publisher = container_factory(Publisher, config)
    listener = container_factory(Listener, config)
    publisher.start()
    listener.start()
    with entrypoint_waiter(listener, "on_announced", timeout=20):
        with ServiceRpcClient(SOURCE, uri=AMQP_URI) as client:
            assert client.announce({"n": 1}) == "sent"
    with entrypoint_waiter(listener, "on_announced", timeout=20):
        event_dispatcher(uri=AMQP_URI)(SOURCE, "announced", {"n": 2})
    assert {"n": 1} in received and {"n": 2} in received


def test_many_concurrent_workers(container_factory):
    publisher = container_factory(Publisher, {"AMQP_URI": AMQP_URI, "max_workers": 8})
    publisher.start()
    with ServiceRpcClient(SOURCE, uri=AMQP_URI, timeout=30) as client:
        replies = [client.announce.call_async({"i": i}) for i in range(64)]
        assert [reply.result() for reply in replies] == ["sent"] * 64
