"""Broker topology: exchanges, consumer queues and their dead-letter queues.

One durable topic exchange per publishing service; consumers use durable queues
bound by routing key; every consumer queue has a dead-letter queue behind the
direct exchange `zhuqi.dlx`, keyed by the queue's name. Messages are persistent.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml
from kombu import Exchange, Queue

from zhuqi.runtime.contracts import exchange_name, registry

DLX = Exchange("zhuqi.dlx", type="direct", durable=True, auto_delete=False)


def service_exchange(service: str) -> Exchange:
    return Exchange(exchange_name(service), type="topic", durable=True, auto_delete=False)


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dlq"


@dataclass(frozen=True)
class ConsumerQueue:
    owner: str
    name: str
    bindings: tuple[tuple[str, str], ...]  # (exchange name, routing key pattern)

    def kombu_queue(self) -> Queue:
        return Queue(
            self.name,
            bindings=[],
            durable=True,
            auto_delete=False,
            # One consumer at a time keeps per-publisher order when several instances run;
            # the others stand by and take over on failure.
            queue_arguments={"x-dead-letter-exchange": DLX.name, "x-dead-letter-routing-key": self.name,
                             "x-single-active-consumer": True},
        )

    def dead_letter_queue(self) -> Queue:
        return Queue(dead_letter_queue_name(self.name), exchange=DLX, routing_key=self.name, durable=True, auto_delete=False)


@lru_cache(maxsize=1)
def consumer_queues() -> dict[str, ConsumerQueue]:
    doc = yaml.safe_load(resources.files("contracts").joinpath("consumers.yaml").read_text(encoding="utf-8"))
    services = registry().services()
    found = {}
    for owner, spec in doc.items():
        bindings = []
        for b in spec["bindings"]:
            targets = services if b["exchange"] == "*" else [b["exchange"].removeprefix("zhuqi.")]
            bindings += [(exchange_name(s), b["routing_key"]) for s in targets]
        found[owner] = ConsumerQueue(owner, spec["queue"], tuple(bindings))
    return found


def declare_exchange(channel, service: str) -> None:
    service_exchange(service)(channel).declare()


def declare_consumer_queue(channel, queue: ConsumerQueue) -> None:
    DLX(channel).declare()
    queue.dead_letter_queue()(channel).declare()
    q = queue.kombu_queue()(channel)
    q.declare()
    for exchange, key in queue.bindings:
        Exchange(exchange, type="topic", durable=True)(channel).declare()
        q.bind_to(exchange=exchange, routing_key=key)


def declare_all(channel) -> None:
    """Everything the contracts describe, so no event is published before its queues exist."""
    for service in registry().services():
        declare_exchange(channel, service)
    for queue in consumer_queues().values():
        declare_consumer_queue(channel, queue)
