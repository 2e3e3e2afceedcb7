"""`zhuqi dlq`: see what was dead-lettered and why, and send it back."""
from __future__ import annotations

import json

import click

from zhuqi.cli import settings
from zhuqi.runtime import dlq as dead_letters
from zhuqi.runtime.topology import consumer_queues


def _uri(ctx: click.Context) -> str:
    return settings.load(ctx).amqp_uri


@click.group()
def dlq() -> None:
    """Dead-letter queues of the consumers."""


@dlq.command("list")
@click.argument("queue", required=False)
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_(ctx: click.Context, queue: str | None, limit: int, as_json: bool) -> None:
    """List dead letters of QUEUE (a consumer name or queue name; all when omitted)."""
    queues = [queue] if queue else [q.name for q in consumer_queues().values()]
    found = []
    try:
        for name in queues:
            found += [d.as_dict() for d in dead_letters.list_dead_letters(_uri(ctx), name, limit)]
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    if not found:
        click.echo("no dead letters")
    for d in found:
        click.echo(f"{d['queue']}  id={d['message_id']}  type={d['event_type']}  at={d['dead_lettered_at']}\n"
                   f"    reason: {d['reason']}")


@dlq.command()
@click.argument("queue")
@click.option("--id", "ids", multiple=True, help="Message id to replay (repeatable); all when omitted.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def replay(ctx: click.Context, queue: str, ids: tuple[str, ...], as_json: bool) -> None:
    """Send dead letters of QUEUE back to it for another try."""
    try:
        moved = dead_letters.replay(_uri(ctx), queue, set(ids) if ids else None)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps({"replayed": moved}) if as_json else f"replayed {moved} message(s) to {queue}")
