"""Operations on dead-letter queues: look at what failed and why, and retry it.

`list_dead_letters` reads messages without consuming them (they are taken and
then rejected back onto the queue). `replay` moves messages from `<queue>.dlq`
back to the consumer's own queue through the default exchange, so that only
that consumer sees them again, and removes each from the dead-letter queue only
after the broker has confirmed the republish.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import kombu

from zhuqi.runtime.publisher import ConfirmingPublisher
from zhuqi.runtime.topology import consumer_queues, dead_letter_queue_name, declare_consumer_queue


@dataclass
class DeadLetter:
    queue: str
    message_id: str | None
    reason: str
    dead_lettered_at: str
    original_exchange: str
    original_routing_key: str
    event_type: str | None
    event_id: str | None
    body_preview: str

    def as_dict(self) -> dict:
        return asdict(self)


def _describe(queue: str, message) -> DeadLetter:
    headers = message.headers or {}
    body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
    event_type = event_id = None
    try:
        doc = json.loads(body)
        if isinstance(doc, dict):
            event_type, event_id = doc.get("type"), doc.get("id")
    except ValueError:
        pass
    death = (headers.get("x-death") or [{}])[0]
    return DeadLetter(
        queue=queue,
        message_id=message.properties.get("message_id"),
        reason=headers.get("x-zhuqi-reason") or f"rejected by the broker ({death.get('reason', 'unknown')})",
        dead_lettered_at=str(headers.get("x-zhuqi-dead-lettered-at", "")),
        original_exchange=headers.get("x-zhuqi-original-exchange", death.get("exchange", "")),
        original_routing_key=headers.get("x-zhuqi-original-routing-key", ""),
        event_type=event_type,
        event_id=event_id,
        body_preview=body[:200].decode("utf-8", "replace"),
    )


def _queue(name: str):
    queues = {q.name: q for q in consumer_queues().values()} | {q.owner: q for q in consumer_queues().values()}
    if name not in queues:
        raise LookupError(f"unknown consumer queue {name!r}; known: {', '.join(sorted(q.name for q in consumer_queues().values()))}")
    return queues[name]


def list_dead_letters(amqp_uri: str, queue: str, limit: int = 100) -> list[DeadLetter]:
    q = _queue(queue)
    found: list[DeadLetter] = []
    with kombu.Connection(amqp_uri) as conn:
        channel = conn.channel()
        declare_consumer_queue(channel, q)
        dlq = kombu.Queue(dead_letter_queue_name(q.name), no_declare=True)(channel)
        held = []
        try:
            while len(found) < limit:
                message = dlq.get(no_ack=False)
                if message is None:
                    break
                held.append(message)
                found.append(_describe(q.name, message))
        finally:
            for message in held:
                message.requeue()
    return found


def replay(amqp_uri: str, queue: str, message_ids: set[str] | None = None, limit: int = 10_000) -> int:
    """Send dead letters back to their queue; all of them, or those with the given ids."""
    q = _queue(queue)
    moved = 0
    publisher = ConfirmingPublisher(amqp_uri)
    publisher.connect()
    try:
        with kombu.Connection(amqp_uri) as conn:
            channel = conn.channel()
            declare_consumer_queue(channel, q)
            dlq = kombu.Queue(dead_letter_queue_name(q.name), no_declare=True)(channel)
            skipped = []
            try:
                for _ in range(limit):
                    message = dlq.get(no_ack=False)
                    if message is None:
                        break
                    if message_ids is not None and message.properties.get("message_id") not in message_ids:
                        skipped.append(message)
                        continue
                    headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-death")}
                    headers["x-zhuqi-replayed"] = int(headers.get("x-zhuqi-replayed", 0)) + 1
                    publisher.publish(message.body, "", q.name, message_id=message.properties.get("message_id"),
                                      headers=headers, content_type=message.content_type)
                    publisher.wait_for_confirms(30)
                    message.ack()
                    moved += 1
            finally:
                for message in skipped:
                    message.requeue()
    finally:
        publisher.close()
    return moved
