"""`zhuqi contracts`: the event contracts union units integrate against."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import click

from zhuqi.runtime import asyncapi
from zhuqi.runtime.contracts import registry


@click.group()
def contracts() -> None:
    """Event types, their schemas and the AsyncAPI document."""


@contracts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_types(as_json: bool) -> None:
    """List every event type with its exchange and routing key."""
    rows = [{"type": e.type, "exchange": e.exchange, "routing_key": e.routing_key} for e in registry().types()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for r in rows:
            click.echo(f"{r['type']:60} {r['exchange']:16} {r['routing_key']}")


@contracts.command("asyncapi")
@click.option("--check", is_flag=True, help="Fail if contracts/asyncapi.yaml is not up to date.")
@click.option("--write", is_flag=True, help="Rewrite contracts/asyncapi.yaml.")
def asyncapi_command(check: bool, write: bool) -> None:
    """Print (or check, or rewrite) the AsyncAPI 3 document."""
    text = asyncapi.render()
    target = Path(str(resources.files("contracts").joinpath("asyncapi.yaml")))
    if check:
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            raise click.ClickException("contracts/asyncapi.yaml is out of date: run `zhuqi contracts asyncapi --write`")
        click.echo("contracts/asyncapi.yaml is up to date")
    elif write:
        target.write_text(text, encoding="utf-8")
        click.echo(f"wrote {target}")
    else:
        click.echo(text, nl=False)
