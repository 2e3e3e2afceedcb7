"""`zhuqi`: the one console script people run and operate the system with."""
from __future__ import annotations

import json
import sys

import click

from zhuqi.cli import contracts as contracts_commands
from zhuqi.cli import dlq as dlq_commands
from zhuqi.cli import processes, registry as registry_commands, settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, envvar="ZHUQI_CONFIG",
              help="YAML settings file (defaults suit one machine; env ZHUQI_* overrides).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """助企 zhuqi: run and operate the campaign's services."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


cli.add_command(processes.up)
cli.add_command(processes.down)
cli.add_command(processes.status)
cli.add_command(processes.serve)
cli.add_command(processes.relay)
cli.add_command(dlq_commands.dlq)
cli.add_command(contracts_commands.contracts)
cli.add_command(registry_commands.registry)


def _mount_ledger() -> None:
    from zhuqi.cli.ledger import ledger

    cli.add_command(ledger)


_mount_ledger()


@cli.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print the merged settings as JSON.")
@click.pass_context
def show_config(ctx: click.Context, as_json: bool) -> None:
    """Show the effective settings (file, then environment overrides)."""
    config = settings.load(ctx)
    if as_json:
        click.echo(json.dumps(config.raw, ensure_ascii=False, indent=2))
    else:
        import yaml

        click.echo(f"# from {config.source}")
        click.echo(yaml.safe_dump(config.raw, allow_unicode=True, sort_keys=False))


def main() -> None:
    cli(prog_name="zhuqi")


if __name__ == "__main__":
    sys.exit(main())
