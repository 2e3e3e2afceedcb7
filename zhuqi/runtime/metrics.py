"""Prometheus metrics for every service, and the nameko dependency that records them.

nameko-prometheus requires nameko < 3, so this is the small replacement: a
DependencyProvider whose worker hooks time every entrypoint (RPC, HTTP, event
handler) by service, entrypoint kind, name and outcome.
"""
from __future__ import annotations

import time

from nameko.extensions import DependencyProvider
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

ENTRYPOINT_CALLS = Counter(
    "zhuqi_entrypoint_calls_total", "Entrypoint invocations by outcome.", ["service", "kind", "entrypoint", "outcome"]
)
ENTRYPOINT_LATENCY = Histogram(
    "zhuqi_entrypoint_duration_seconds", "Entrypoint latency.", ["service", "kind", "entrypoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_PUBLISHED = Counter("zhuqi_outbox_published_total", "Events published by the outbox relay.", ["service"])
OUTBOX_POSITION = Gauge("zhuqi_outbox_position", "Last notification id the relay has published.", ["service"])
OUTBOX_BACKLOG = Gauge("zhuqi_outbox_backlog", "Events stored but not yet published.", ["service"])
OUTBOX_ERRORS = Counter("zhuqi_outbox_interruptions_total", "Relay reconnects after broker or database errors.", ["service"])
INBOX_PROCESSED = Counter(
    "zhuqi_inbox_messages_total", "Messages taken by an inbox consumer, by result.", ["consumer", "result"]
)
INBOX_POSITION = Gauge(
    "zhuqi_inbox_position", "Highest upstream notification id applied, per upstream service.", ["consumer", "upstream"]
)
INBOX_GAPS = Counter("zhuqi_inbox_gaps_total", "Upstream sequence gaps seen by a consumer.", ["consumer", "upstream"])
INBOX_BATCH_LATENCY = Histogram(
    "zhuqi_inbox_batch_duration_seconds", "Time to settle one batch (validate, track, apply, commit).",
    ["consumer", "outcome"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DEAD_LETTERED = Counter("zhuqi_dead_lettered_total", "Messages moved to a dead-letter queue.", ["consumer", "reason"])

_KINDS = {"Rpc": "rpc", "HttpRequestHandler": "http", "EventHandler": "event"}


def kind_of(entrypoint) -> str:
    for cls in type(entrypoint).__mro__:
        if cls.__name__ in _KINDS:
            return _KINDS[cls.__name__]
    return type(entrypoint).__name__.lower()


class Metrics(DependencyProvider):
    """Times every worker; injects nothing the service must use."""

    def __init__(self):
        self._started: dict[int, float] = {}

    def get_dependency(self, worker_ctx):
        return None

    def worker_setup(self, worker_ctx):
        self._started[id(worker_ctx)] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(id(worker_ctx), None)
        entrypoint = worker_ctx.entrypoint
        service, name, kind = worker_ctx.service_name, entrypoint.method_name, kind_of(entrypoint)
        outcome = "ok"
        if exc_info is not None:
            outcome = "error"
        elif kind == "http" and hasattr(result, "status_code"):
            outcome = "ok" if result.status_code < 400 else ("client_error" if result.status_code < 500 else "error")
        ENTRYPOINT_CALLS.labels(service, kind, name, outcome).inc()
        if started is not None:
            ENTRYPOINT_LATENCY.labels(service, kind, name).observe(time.perf_counter() - started)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
