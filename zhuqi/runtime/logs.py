"""Structured logs: one JSON object a line, carrying event and correlation ids.

The correlation id travels in a context variable so that every line logged
while handling one request or one message carries it without being passed.
"""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
import uuid

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = ""):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.service:
            line["service"] = self.service
        if (cid := correlation_id.get()) is not None:
            line["correlation_id"] = cid
        if (eid := event_id.get()) is not None:
            line["event_id"] = eid
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(service: str = "", level: str = "INFO", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter at INFO would drown the service's own lines.
    for noisy in ("kombu", "amqp", "nameko", "eventlet", "psycopg", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def new_correlation_id() -> str:
    return uuid.uuid4().hex
