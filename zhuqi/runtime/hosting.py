"""What every nameko service of zhuqi has in common.

`ServiceBase` gives each service its metrics, `/health`, `/metrics` and
`/openapi.json`; `BackgroundLoop` runs a long-lived loop (the outbox relay, an
inbox consumer) as a managed green thread of the service container; and
`nameko_config` turns zhuqi's settings into nameko's.
"""
from __future__ import annotations

import json
import logging
import threading

from nameko.extensions import DependencyProvider
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from zhuqi.runtime import metrics, sealed, secrets
from zhuqi.runtime.config import Config, validate
from zhuqi.runtime.http import json_response

log = logging.getLogger("zhuqi.hosting")
CONFIG_KEY = "ZHUQI"


def zhuqi_config() -> Config:
    """The zhuqi settings of the running service (nameko 3 keeps config globally)."""
    from nameko import config as nameko_global

    return validate(nameko_global[CONFIG_KEY], "nameko config")


def nameko_config(config: Config, service: str) -> dict:
    sealed.configure(secrets.key(config, "rpc"))
    settings = config.service(service)
    return {
        "AMQP_URI": config.amqp_uri,
        "WEB_SERVER_ADDRESS": f"0.0.0.0:{settings.http_port}",
        "HEARTBEAT": config.raw["amqp"]["heartbeat"],
        "max_workers": 10,
        CONFIG_KEY: config.raw,
        **sealed.nameko_settings(),
    }


class SharedResource(DependencyProvider):
    """One resource per process (an application, a connection pool), built once and
    shared by every worker and background loop. Subclasses define `build()` and
    `close(resource)`. Built under a lock: nameko sets up all dependencies at once.
    """

    resource = None
    _building = threading.Lock()

    def build(self):
        raise TypeError(f"{type(self).__name__} must define build()")

    def close(self, resource) -> None:
        """Release the resource when the container stops."""

    def get(self):
        with self._building:
            if self.resource is None:
                self.resource = self.build()
        return self.resource

    @classmethod
    def of(cls, container):
        """The instance of this provider in `container` (for a background loop's factory)."""
        return next(d for d in container.dependencies if isinstance(d, cls))

    def setup(self):
        self.get()

    def stop(self):
        if self.resource is not None:
            self.close(self.resource)

    kill = stop

    def get_dependency(self, worker_ctx):
        return self.resource


class BackgroundLoop(DependencyProvider):
    """Runs `factory(container) -> loop` (an object with run/stop) for the container's life."""

    def __init__(self, factory):
        self.factory = factory
        self.loop = None
        self._thread = None

    def setup(self):
        self.loop = self.factory(self.container)

    def start(self):
        self._thread = self.container.spawn_managed_thread(self.loop.run, identifier=f"{type(self.loop).__name__}")

    def stop(self):
        if self.loop is not None:
            self.loop.stop()
        if self._thread is not None:
            self._thread.wait()

    def kill(self):
        if self.loop is not None:
            self.loop.stop()

    def get_dependency(self, worker_ctx):
        return self.loop


def http_routes(api, dependency: str):
    """Class decorator: one nameko HTTP entrypoint per route declared in `api`.

    Each route is declared once, in the service's `http_api.py`, with its
    schemas; the entrypoint hands the request and the service's `dependency`
    (e.g. the application) to it. The routes table is the HTTP table of contents.
    """
    def add(cls):
        for name, route in api.routes.items():
            def entrypoint(self, request, _name=name, **path):
                return api.handle(_name, request, getattr(self, dependency), **path)
            entrypoint.__name__ = entrypoint.__qualname__ = f"http_{name}"
            setattr(cls, entrypoint.__name__, http(route.method, route.path)(entrypoint))
        return cls
    return add


class ServiceBase:
    """Mixin for a nameko service class: metrics, health, metrics and OpenAPI endpoints.

    A service sets `api` (a zhuqi.runtime.http.Api) and implements `health_report()`.
    """

    metrics = metrics.Metrics()
    api = None

    def health_report(self) -> dict:
        return {}

    @http("GET", "/health")
    def http_health(self, request):
        report = {"service": self.name, **self.health_report()}
        healthy = all(v.get("ok", True) for v in report.values() if isinstance(v, dict))
        report["status"] = "ok" if healthy else "degraded"
        return json_response(report, 200 if healthy else 503)

    @http("GET", "/metrics")
    def http_metrics(self, request):
        body, content_type = metrics.exposition()
        return Response(body, content_type=content_type)

    @http("GET", "/openapi.json")
    def http_openapi(self, request):
        return Response(json.dumps(self.api.openapi(request.host_url.rstrip("/")), ensure_ascii=False),
                        mimetype="application/json")
