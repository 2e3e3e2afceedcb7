"""`zhuqi registry`: bulk imports, templates and reference data of the registry.

Imports write straight to the registry's event store (the outbox); the running
registry service's relay publishes them, or will when it starts.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click
from tqdm import tqdm

from zhuqi.cli import settings

KINDS = ("volunteers", "enterprises")


def _guess_kind(path: Path) -> str | None:
    name = path.name.lower()
    for kind in KINDS:
        if kind[:-1] in name or {"volunteers": "志愿者", "enterprises": "企业"}[kind] in path.name:
            return kind
    return None


@click.group()
def registry() -> None:
    """Volunteers, teams, enterprises: imports, templates, reference data."""


@registry.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(KINDS), help="What the file lists (guessed from its name if omitted).")
@click.option("--encoding", type=click.Choice(["utf-8", "gbk", "gb18030"]), default=None,
              help="Text encoding of a CSV file (UTF-8 unless declared).")
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
@click.pass_context
def import_file(ctx: click.Context, file: Path, kind: str | None, encoding: str | None, as_json: bool) -> None:
    """Import a CSV or XLSX list: every row is checked first; one bad row imports nothing."""
    kind = kind or _guess_kind(file)
    if kind is None:
        raise click.UsageError("cannot tell whether FILE lists volunteers or enterprises: pass --kind")
    from services.registry import bootstrap, imports

    from zhuqi.runtime.config import ConfigError

    try:
        app = bootstrap.build_application(settings.load(ctx), pool_size=2)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    bar = tqdm(total=0, unit="row", desc=f"importing {kind}", disable=as_json, leave=False)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        run = imports.import_volunteers if kind == "volunteers" else imports.import_enterprises
        report = run(app, file.read_bytes(), file.name, encoding, progress)
    finally:
        bar.close()
        app.close()
    payload = {"file": str(file), "kind": kind, "ok": report.ok, "created": len(report.created),
               "unchanged": len(report.unchanged), "problems": [asdict(p) for p in report.problems]}
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, default=str, indent=2))
    elif report.ok:
        click.echo(f"imported {file.name}: {payload['created']} created, {payload['unchanged']} unchanged")
    else:
        click.echo(f"{file.name}: nothing imported; {len(report.problems)} problem(s):", err=True)
        for p in report.problems:
            where = f"row {p.row}" if p.row else "file"
            column = f", column {p.column}" if p.column else ""
            click.echo(f"  {where}{column}: {p.value!r}: {p.reason}", err=True)
    if not report.ok:
        raise SystemExit(1)


@registry.command()
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="xlsx", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write it (default: <kind>-template.<format>).")
def template(kind: str, fmt: str, output: Path | None) -> None:
    """Write an import template with the Chinese column headers and one example row."""
    from services.registry.http_api import TEMPLATES

    make, _ = TEMPLATES[(kind, fmt)]
    output = output or Path(f"{kind}-template.{fmt}")
    output.write_bytes(make())
    click.echo(f"wrote {output}")


@registry.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def units(as_json: bool) -> None:
    """The 45 responsible units (归口单位), their codes, kinds and quotas."""
    from services.registry.application import RegistryApplication

    rows = RegistryApplication.list_units()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for u in rows:
        click.echo(f"{u['code']:8} {u['kind']:10} {u['name']}")


@registry.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def tags(as_json: bool) -> None:
    """The controlled vocabulary of expertise tags."""
    from services.registry.application import RegistryApplication

    rows = RegistryApplication.list_expertise_tags()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for t in rows:
        click.echo(f"{t['id']:32} {t['group']:12} {t['label']}")
