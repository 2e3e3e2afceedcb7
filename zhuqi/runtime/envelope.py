"""CloudEvents 1.0 envelopes in structured JSON mode, as they cross the broker.

An envelope's bytes are a pure function of the stored event: the id is derived
from (service, notification id) and the time is when the event happened, so a
republish after a crash sends the same bytes and consumers can tell it apart
from a new event.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson
from cloudevents.core.v1.event import CloudEvent

from zhuqi.runtime.contracts import EventType, SchemaViolation, UnknownEventType, registry

CONTENT_TYPE = "application/cloudevents+json"
_ID_NAMESPACE = uuid.UUID("6f1c3a52-3d0b-4a9e-9a57-2b8e8f0c5a11")
# Attributes every envelope must carry (CloudEvents required + ours).
REQUIRED = ("specversion", "id", "source", "type", "subject", "time", "data", "sequence")


@dataclass(frozen=True)
class PublishedEvent:
    """What a service publishes for one stored domain event: the public contract."""

    name: str
    subject: str
    unit: str
    data: dict
    version: int = 1


@dataclass(frozen=True)
class Envelope:
    raw: bytes
    attributes: dict
    data: dict = field(repr=False)
    service: str = ""   # the publishing service, from `source` (parsed once: consumers ask often)
    sequence: int = 0   # the publisher's notification id

    @property
    def id(self) -> str:
        return self.attributes["id"]

    @property
    def type(self) -> str:
        return self.attributes["type"]

    @property
    def prev_sequence(self) -> int | None:
        prev = self.attributes.get("prevsequence")
        return None if prev in (None, "") else int(prev)

    @property
    def subject(self) -> str:
        return self.attributes["subject"]

    @property
    def correlation_id(self) -> str | None:
        return self.attributes.get("correlationid")


class EnvelopeError(ValueError):
    """The message is not an envelope we can accept; `reason` says why, readably."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def source_of(service: str, unit: str) -> str:
    return f"/zhuqi/{service}/{unit or 'city'}"


def service_of_source(source: str) -> str:
    parts = source.split("/")
    if len(parts) < 4 or parts[1] != "zhuqi" or not parts[2]:
        raise EnvelopeError(f"source {source!r} is not of the form /zhuqi/<service>/<unit>")
    return parts[2]


def event_id(service: str, sequence: int) -> str:
    """uuid5(namespace, "service:sequence"), computed without building UUID objects (hot path)."""
    digest = bytearray(hashlib.sha1(_ID_NAMESPACE.bytes + f"{service}:{sequence}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def build(
    service: str,
    sequence: int,
    event: PublishedEvent,
    occurred_at: datetime,
    *,
    prev_sequence: int | None = None,
    correlation_id: str | None = None,
    validate: bool = True,
) -> tuple[bytes, EventType]:
    et = EventType(service, event.name, event.version)
    if validate:
        registry().validate(et.type, event.data)
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=timezone.utc)
    attributes = {
        "specversion": "1.0",
        "id": event_id(service, sequence),
        "source": source_of(service, event.unit),
        "type": et.type,
        "subject": event.subject,
        "time": occurred_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "dataschema": f"https://zhuqi.suzhou/contracts/{service}/{event.name}.v{event.version}.json",
        "sequence": str(sequence),
    }
    if prev_sequence is not None:
        attributes["prevsequence"] = str(prev_sequence)
    if correlation_id:
        attributes["correlationid"] = correlation_id
    # The SDK checks the attributes against the CloudEvents 1.0 rules; orjson writes
    # the structured-mode JSON (the SDK's writer does the same, four times slower).
    CloudEvent(dict(attributes, time=occurred_at), event.data)
    return orjson.dumps({**attributes, "data": event.data}), et


def parse(raw: bytes, *, validate: bool = True) -> Envelope:
    """Parse and check an envelope; every refusal says exactly what is wrong."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"malformed envelope: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise EnvelopeError("malformed envelope: the JSON is not an object")
    missing = [key for key in REQUIRED if key not in doc]
    if missing:
        raise EnvelopeError(f"malformed envelope: missing attribute(s) {', '.join(missing)}")
    if doc["specversion"] != "1.0":
        raise EnvelopeError(f"malformed envelope: specversion {doc['specversion']!r} is not '1.0'")
    for key in ("id", "source", "type", "subject", "time", "sequence"):
        if not isinstance(doc[key], str) or not doc[key]:
            raise EnvelopeError(f"malformed envelope: attribute {key} must be a non-empty string")
    if not doc["sequence"].isdigit():
        raise EnvelopeError(f"malformed envelope: sequence {doc['sequence']!r} is not a decimal number")
    try:
        datetime.fromisoformat(doc["time"].replace("Z", "+00:00"))
    except ValueError:
        raise EnvelopeError(f"malformed envelope: time {doc['time']!r} is not RFC 3339") from None
    service = service_of_source(doc["source"])
    if not isinstance(doc["data"], dict):
        raise EnvelopeError("malformed envelope: data must be a JSON object")
    if validate:
        try:
            EventType.parse(doc["type"])
            registry().validate(doc["type"], doc["data"])
        except ValueError as exc:
            if isinstance(exc, SchemaViolation):
                raise EnvelopeError(f"schema violation: {exc}") from None
            raise EnvelopeError(f"unknown event type: {exc}") from None
        except UnknownEventType as exc:
            raise EnvelopeError(f"unknown event type: {exc.args[0]}") from None
    data = doc.pop("data")
    return Envelope(raw=raw, attributes=doc, data=data, service=service, sequence=int(doc["sequence"]))
