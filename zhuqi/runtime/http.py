"""The HTTP base every service shares: RFC 9457 problem details and OpenAPI 3.1.

Routes are declared once, with their request and response schemas; the same
declaration validates requests (so a bad one is refused naming the field, the
value and the rule) and produces the service's `/openapi.json`.
"""
from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from jsonschema import Draft202012Validator
from werkzeug.wrappers import Request, Response

from zhuqi.runtime.logs import correlation_id, new_correlation_id

log = logging.getLogger("zhuqi.http")
_CORRELATION = re.compile(r"[A-Za-z0-9._:-]{1,64}")

PROBLEM_TYPE = "https://zhuqi.suzhou/problems/"
PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "rule", "message"],
                "properties": {"field": {"type": "string"}, "value": {}, "rule": {"type": "string"},
                               "message": {"type": "string"}},
            },
        },
    },
}
MAX_BODY = 16 * 1024 * 1024


class Problem(Exception):
    """An error the client can act on: which field, which value, which rule."""

    def __init__(self, status: int, title: str, detail: str = "", errors: list[dict] | None = None, kind: str | None = None):
        self.status, self.title, self.detail, self.errors = status, title, detail, errors or []
        self.kind = kind or re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        super().__init__(f"{status} {title}: {detail}")

    def response(self) -> Response:
        body = {"type": PROBLEM_TYPE + self.kind, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if self.errors:
            body["errors"] = self.errors
        return Response(json.dumps(body, ensure_ascii=False, default=str), status=self.status,
                        mimetype="application/problem+json")


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False, default=str), status=status, mimetype="application/json")


def _schema_errors(validator: Draft202012Validator, instance: Any, where: str) -> list[dict]:
    errors = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            path = ".".join(filter(None, [path, *missing]))
        if error.validator == "additionalProperties":
            extra = re.findall(r"'([^']+)'", error.message)
            path = ".".join(filter(None, [path, *(extra[:1])]))
        errors.append({"field": f"{where}.{path}" if path else where, "value": error.instance if error.validator != "required" else None,
                       "rule": str(error.validator), "message": error.message})
    return errors


@dataclass
class Route:
    method: str
    path: str  # werkzeug form: /volunteers/<volunteer_id>
    handler: Callable
    summary: str
    body: dict | None = None
    query: dict[str, dict] = field(default_factory=dict)
    responses: dict[int, dict] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    raw_body: str | None = None  # media type of a non-JSON request body (e.g. an upload)
    produces: str = "application/json"

    @property
    def openapi_path(self) -> str:
        return re.sub(r"<(?:[a-z]+:)?([a-zA-Z_]+)>", r"{\1}", self.path)

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"<(?:[a-z]+:)?([a-zA-Z_]+)>", self.path)


def _coerce_query(value: str, schema: dict) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        if re.fullmatch(r"-?\d{1,18}", value):
            return int(value)
        return value
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    return value


class Api:
    def __init__(self, title: str, version: str, description: str = "",
                 problem_for: Callable[[Exception], "Problem | None"] | None = None):
        """`problem_for` turns a service's own domain errors into problems (None: not ours)."""
        self.title, self.version, self.description = title, version, description
        self.problem_for = problem_for or (lambda exc: None)
        self.routes: dict[str, Route] = {}

    def route(self, method: str, path: str, *, summary: str, body: dict | None = None,
              query: dict[str, dict] | None = None, responses: dict[int, dict] | None = None,
              tags: list[str] | None = None, raw_body: str | None = None, produces: str = "application/json"):
        def register(fn: Callable) -> Callable:
            self.routes[fn.__name__] = Route(method.upper(), path, fn, summary, body, query or {},
                                             responses or {200: {}}, tags or [], raw_body, produces)
            return fn
        return register

    # -- dispatching ------------------------------------------------------------
    def handle(self, name: str, request: Request, context: Any, **path: str) -> Response:
        """Run a route with its correlation id in every log line; log one access line."""
        given = request.headers.get("X-Correlation-Id", "")
        cid = given if _CORRELATION.fullmatch(given) else new_correlation_id()
        token = correlation_id.set(cid)
        started = time.perf_counter()
        try:
            response = self._handle(name, request, context, **path)
            response.headers["X-Correlation-Id"] = cid
            log.info("http request", extra={"method": request.method, "path": request.path, "route": name,
                                            "status": response.status_code,
                                            "ms": round((time.perf_counter() - started) * 1000, 1)})
            return response
        finally:
            correlation_id.reset(token)

    def _handle(self, name: str, request: Request, context: Any, **path: str) -> Response:
        route = self.routes[name]
        try:
            kwargs = dict(path)
            kwargs.update(self._query(route, request))
            if route.body is not None:
                kwargs["body"] = self._body(route, request)
            elif route.raw_body is not None:
                if request.content_length and request.content_length > MAX_BODY:
                    raise Problem(413, "Payload too large", f"the body exceeds {MAX_BODY} bytes")
                kwargs["raw"] = request.get_data(cache=False)
            result = route.handler(context, **kwargs)
            if isinstance(result, Response):
                return result
            status, payload = result if isinstance(result, tuple) else (200, result)
            return json_response(payload, status)
        except Problem as problem:
            return problem.response()
        except Exception as exc:  # noqa: BLE001 - never leak a traceback to a client
            problem = self.problem_for(exc)
            if problem is not None:
                return problem.response()
            log.exception("unhandled error in HTTP handler", extra={"route": name})
            return Problem(500, "Internal error", "the server failed; the incident is logged").response()

    def _query(self, route: Route, request: Request) -> dict:
        values: dict[str, Any] = {}
        errors = []
        for key in request.args:
            if key not in route.query:
                errors.append({"field": f"query.{key}", "value": request.args.get(key), "rule": "known_parameter",
                               "message": f"unknown query parameter {key!r}"})
        for key, schema in route.query.items():
            if key in request.args:
                value = _coerce_query(request.args.get(key, ""), schema)
                errors += _schema_errors(Draft202012Validator(schema), value, f"query.{key}")
                values[key] = value
        if errors:
            raise Problem(422, "Invalid query", "one or more query parameters are invalid", errors, kind="invalid-query")
        return values

    def _body(self, route: Route, request: Request) -> Any:
        if request.content_length and request.content_length > MAX_BODY:
            raise Problem(413, "Payload too large", f"the body exceeds {MAX_BODY} bytes")
        raw = request.get_data(cache=False)
        try:
            body = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise Problem(400, "Invalid body", f"the body is not UTF-8 text (byte {exc.start})", kind="invalid-body") from None
        except ValueError as exc:
            raise Problem(400, "Invalid body", f"the body is not JSON: {exc}", kind="invalid-body") from None
        errors = _schema_errors(Draft202012Validator(route.body), body, "body")
        if errors:
            raise Problem(422, "Invalid request", "the request body breaks the rules below", errors, kind="validation")
        return body

    # -- the document -------------------------------------------------------------
    def openapi(self, server_url: str | None = None) -> dict:
        paths: dict[str, dict] = {}
        problem = {"description": "Problem details (RFC 9457)",
                   "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for name, route in self.routes.items():
            op: dict[str, Any] = {"operationId": name, "summary": route.summary, "tags": route.tags, "responses": {}}
            params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
                      for p in route.path_params]
            params += [{"name": k, "in": "query", "required": False, "schema": s} for k, s in route.query.items()]
            if params:
                op["parameters"] = params
            if route.body is not None:
                op["requestBody"] = {"required": True, "content": {"application/json": {"schema": route.body}}}
            elif route.raw_body is not None:
                op["requestBody"] = {"required": True, "content": {route.raw_body: {"schema": {"type": "string", "format": "binary"}}}}
            for status, schema in route.responses.items():
                op["responses"][str(status)] = {"description": "OK" if status < 300 else "Error",
                                                "content": {route.produces: {"schema": schema}}}
            for status in (400, 404, 409, 413, 422):
                op["responses"].setdefault(str(status), problem)
            paths.setdefault(route.openapi_path, {})[route.method.lower()] = op
        doc = {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version, "description": self.description},
            "paths": paths,
            "components": {"schemas": {"Problem": PROBLEM_SCHEMA}},
        }
        if server_url:
            doc["servers"] = [{"url": server_url}]
        return doc
