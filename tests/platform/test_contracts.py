"""The event contract: every event a service can emit has a schema and an AsyncAPI entry."""
import yaml
from click.testing import CliRunner
from eventsourcing.domain import Aggregate

from services.registry import published_events
from zhuqi.cli.main import cli
from zhuqi.runtime import asyncapi
from zhuqi.runtime.contracts import EventType, registry
from zhuqi.runtime.topology import consumer_queues


def registry_event_classes() -> set[type]:
    """Every domain event class of every registry aggregate."""
    import services.registry.domain as domain_pkg
    import importlib
    import pkgutil

    found = set()
    for info in pkgutil.iter_modules(domain_pkg.__path__):
        module = importlib.import_module(f"services.registry.domain.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Aggregate) and obj is not Aggregate:
                for name, attr in vars(obj).items():
                    # `Event` and `Created` are the library's generated bases, not events of ours.
                    if isinstance(attr, type) and issubclass(attr, Aggregate.Event) and name not in ("Event", "Created"):
                        found.add(attr)
    return found


def test_every_registry_event_is_published_or_declared_internal():
    classes = registry_event_classes()
    assert classes, "found no event classes"
    unmapped = {c.__qualname__ for c in classes if c not in published_events.MAPPING and c not in published_events.INTERNAL}
    assert not unmapped


def test_every_published_event_has_a_schema_and_an_asyncapi_entry():
    doc = asyncapi.document()
    messages = {m["name"] for m in doc["components"]["messages"].values()}
    addresses = {c["address"] for c in doc["channels"].values()}
    for name in published_events.NAMES:
        et = EventType("registry", name, 1)
        assert registry().knows(et.type), f"no JSON Schema for {et.type}"
        assert et.type in messages, f"no AsyncAPI message for {et.type}"
        assert et.routing_key in addresses, f"no AsyncAPI channel for {et.routing_key}"


def test_checked_in_asyncapi_document_is_current():
    result = CliRunner().invoke(cli, ["contracts", "asyncapi", "--check"])
    assert result.exit_code == 0, result.output


def test_asyncapi_document_shape():
    doc = yaml.safe_load(asyncapi.render())
    assert doc["asyncapi"] == "3.0.0"
    for key, channel in doc["channels"].items():
        for ref in channel.get("messages", {}).values():
            assert ref["$ref"].split("/")[-1] in doc["components"]["messages"]
    for op in doc["operations"].values():
        assert op["action"] in ("send", "receive")
        assert op["channel"]["$ref"].split("/")[-1] in doc["channels"]
    # The ledger's queue is bound to every publishing service's exchange.
    ledger = consumer_queues()["ledger"]
    assert {ex for ex, _ in ledger.bindings} == {f"zhuqi.{s}" for s in registry().services()}


def test_schema_files_are_named_for_their_event():
    for type_, schema in registry().schemas.items():
        et = EventType.parse(type_)
        assert schema["$id"].endswith(f"/{et.service}/{et.name}.v{et.version}.json")
        assert schema.get("additionalProperties") is False
