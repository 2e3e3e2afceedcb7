"""`zhuqi ledger ...`: audit tools that work with no service running.

Every command talks to PostgreSQL directly (or to an export file) and exits
non-zero when verification fails, naming the first bad entry.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import closing, contextmanager
from datetime import date, datetime
from pathlib import Path

import click
import psycopg
from tqdm import tqdm

from services.ledger import export as export_mod
from zhuqi.cli import settings
from services.ledger import replay as replay_mod
from services.ledger import store, verify as verify_mod
from services.ledger.domain.checkpoint import DEFAULT_ORIGIN, NoteError, generate_key, parse_signer_key

def default_dsn() -> str:
    return settings.load().postgres_dsn


def _schema_default() -> str:
    return settings.load().service("ledger").schema


dsn_option = click.option("--dsn", default=None, help="PostgreSQL DSN (default: postgres.dsn of the settings).")
schema_option = click.option("--schema", default=_schema_default, show_default="services.ledger.schema of the settings",
                             help="Ledger schema.")


@contextmanager
def _connect(dsn: str | None):
    try:
        conn = psycopg.connect(dsn or default_dsn())
    except psycopg.OperationalError as exc:
        raise click.ClickException(f"cannot connect to PostgreSQL: {exc}") from None
    with conn:
        yield conn


@contextmanager
def _progress(desc: str, total: int | None, hidden: bool):
    bar = tqdm(total=total, desc=desc, unit="entry", file=sys.stderr, disable=hidden, unit_scale=True)
    try:
        yield bar.update
    finally:
        bar.close()


def _emit(as_json: bool, payload: dict, text: str) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str) if as_json else text)


@click.group(name="ledger")
def ledger() -> None:
    """Tamper-evident ledger of every published domain event."""


@ledger.command("verify")
@click.option("--file", "file_", type=click.Path(dir_okay=False, path_type=Path), help="Verify an export file instead of PostgreSQL.")
@dsn_option
@schema_option
@click.option("--key", "key", default=None, help="Pinned verifier key <name>+<id>+<base64>.")
@click.option("--trusted-checkpoint", "trusted", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A signed checkpoint kept from an earlier audit; the ledger must still contain it.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable verdict.")
def verify_cmd(file_, dsn, schema, key, trusted, as_json) -> None:
    """Recompute every hash, link, tree root and checkpoint signature."""
    kept = [p.read_text(encoding="utf-8") for p in trusted]
    try:
        if file_ is not None:
            with closing(verify_mod.open_export(file_)) as db:
                total = db.execute("SELECT count(*) FROM entries").fetchone()[0]
            with _progress("verifying", total, as_json) as tick:
                verdict = verify_mod.verify_export(file_, key, trusted_checkpoints=kept, progress=tick)
        else:
            with _connect(dsn) as conn:
                total = verify_mod.pg_entry_count(conn, schema)
                with _progress("verifying", total, as_json) as tick:
                    verdict = verify_mod.verify_postgres(conn, schema, key, trusted_checkpoints=kept, progress=tick)
    except (NoteError, FileNotFoundError, psycopg.Error) as exc:
        raise click.ClickException(str(exc)) from None
    _emit(as_json, verdict.to_dict(), verdict.summary())
    if not verdict.ok:
        sys.exit(1)


@ledger.command("export")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@dsn_option
@schema_option
def export_cmd(output, dsn, schema) -> None:
    """Write a self-contained SQLite export for offline audit and replay."""
    with _connect(dsn) as conn:
        total = verify_mod.pg_entry_count(conn, schema)
        try:
            with _progress("exporting", total, False) as tick:
                summary = export_mod.export(conn, output, schema, progress=tick)
        except FileExistsError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"exported {summary.entries} entries and {summary.checkpoints} checkpoints to {summary.path}")


def _parse_as_of(text: str) -> date | datetime:
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO date or datetime", param_hint="--as-of") from None


@ledger.command("replay")
@click.option("--as-of", "as_of", required=True, help="ISO date (end of day, UTC+8) or datetime.")
@click.option("--file", "file_", type=click.Path(dir_okay=False, path_type=Path), help="Replay an export file.")
@dsn_option
@schema_option
@click.option("--json", "as_json", is_flag=True)
def replay_cmd(as_of, file_, dsn, schema, as_json) -> None:
    """Recompute registry figures from the ledger alone."""
    moment = _parse_as_of(as_of)
    if file_ is not None:
        with _progress("replaying", None, as_json) as tick:
            try:
                result = replay_mod.replay(file_, moment, progress=tick)
            except FileNotFoundError as exc:
                raise click.ClickException(str(exc)) from None
    else:
        with _connect(dsn) as conn, _progress("replaying", verify_mod.pg_entry_count(conn, schema), as_json) as tick:
            result = replay_mod.replay(conn, moment, schema, progress=tick)
    if as_json:
        _emit(True, result, "")
        return
    fig = result["registry"]
    click.echo(f"as of {result['as_of']} ({result['entries_read']} entries read)")
    for unit, counts in fig["volunteers"].items():
        click.echo(f"  volunteers {unit}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for unit, tiers in fig["teams"].items():
        click.echo(f"  teams {unit}: " + ", ".join(f"{t} {c['teams']} ({c['members']} members)" for t, c in tiers.items()))
    for unit, e in fig["enterprises"].items():
        click.echo(f"  enterprises {unit}: {e['total']} " + json.dumps(e["by_size"], ensure_ascii=False))
    if fig["unknown_event_types"]:
        click.echo(f"  unknown registry event types: {fig['unknown_event_types']}")


@ledger.command("checkpoint")
@click.option("--signing-key-file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--origin", default=DEFAULT_ORIGIN, show_default=True)
@dsn_option
@schema_option
def checkpoint_cmd(signing_key_file, origin, dsn, schema) -> None:
    """Sign and store a checkpoint of the current tree; print the signed note."""
    try:
        signer = parse_signer_key(signing_key_file.read_text(encoding="utf-8"))
    except NoteError as exc:
        raise click.ClickException(f"{signing_key_file}: {exc}") from None
    with _connect(dsn) as conn:
        cp = store.sign_checkpoint(conn, signer, origin, schema)
    click.echo(cp.note, nl=False)


@ledger.command("history")
@click.argument("subject")
@click.option("--bundle", type=click.Path(dir_okay=False, path_type=Path), help="Also write a proof bundle (JSON).")
@dsn_option
@schema_option
def history_cmd(subject, bundle, dsn, schema) -> None:
    """List every entry about SUBJECT, with whether it is covered by a checkpoint."""
    with _connect(dsn) as conn:
        h = store.history(conn, subject, schema)
        doc = store.proof_bundle(conn, subject, schema) if bundle else None
    size = h.checkpoint.tree_size if h.checkpoint else 0
    click.echo(f"{len(h.items)} entries about {subject} (latest checkpoint covers {size} entries)")
    for item in h.items:
        e = item.entry
        status = "proven" if item.proof is not None else "not yet checkpointed"
        click.echo(f"  #{e['seq']} {e['time']} {e['type']} [{status}]")
    if doc is not None:
        bundle.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
        click.echo(f"proof bundle written to {bundle}")


@ledger.command("keygen")
@click.option("--name", required=True, help="Key name, e.g. zhuqi.suzhou/ledger.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Signer key file to create.")
def keygen_cmd(name, out) -> None:
    """Create a signing key (file readable only by you) and print its verifier key."""
    try:
        signer = generate_key(name)
    except NoteError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(f"{out} already exists; refusing to overwrite a key") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(signer.signer_key + "\n")
    click.echo(signer.verifier_key)
