"""Starting, stopping and watching the service processes on one machine."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import click

from zhuqi.cli import settings
from zhuqi.runtime import config as config_module

# Start order: consumers before publishers, so no event waits for its reader.
SERVICES = ("ledger", "registry")


def _run_dir(config: config_module.Config) -> Path:
    path = Path(config.secrets_dir).parent / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def service_url(config: config_module.Config, service: str) -> str:
    return f"http://127.0.0.1:{config.service(service).http_port}"


def http_json(method: str, url: str, body: dict | None = None, timeout: float = 5.0) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def health(config: config_module.Config, service: str) -> dict:
    try:
        status, report = http_json("GET", service_url(config, service) + "/health", timeout=2.0)
        report.setdefault("status", "ok" if status == 200 else "degraded")
        return report
    except (OSError, ValueError) as exc:
        return {"service": service, "status": "down", "error": str(getattr(exc, "reason", exc))}


def wait_until(predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def _host_command(service: str, config_path: str | None) -> list[str]:
    command = [sys.executable, "-m", "zhuqi.runtime.host", service]
    return command + (["--config", config_path] if config_path else [])


def start_service(config: config_module.Config, service: str, config_path: str | None) -> subprocess.Popen:
    run_dir = _run_dir(config)
    log_file = open(run_dir / f"{service}.log", "ab")
    process = subprocess.Popen(_host_command(service, config_path), stdout=log_file, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    (run_dir / f"{service}.pid").write_text(str(process.pid))
    return process


def _print_health(config: config_module.Config, as_json: bool) -> bool:
    reports = {s: health(config, s) for s in SERVICES}
    if as_json:
        click.echo(json.dumps(reports, ensure_ascii=False, indent=2))
    else:
        for service, report in reports.items():
            details = ", ".join(f"{k}={v}" for k, v in report.items() if k not in ("service", "status"))
            click.echo(f"{service:10} {report['status']:9} {details}")
    return all(r["status"] == "ok" for r in reports.values())


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-demo", is_flag=True, help="Only start the services; register nothing.")
@click.pass_context
def up(ctx: click.Context, as_json: bool, no_demo: bool) -> None:
    """Start every service, prove the event path end to end, print each service's health."""
    config = settings.load(ctx)
    try:
        config_module.check_reachable(config)
    except config_module.ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    from zhuqi.runtime import db

    db.ensure_database(config.postgres_dsn)
    config_path = ctx.find_root().obj.get("config_path")
    for service in SERVICES:
        process = None
        if health(config, service)["status"] == "down":
            process = start_service(config, service, config_path)
            click.echo(f"started {service} (pid {process.pid}, log {_run_dir(config) / (service + '.log')})", err=True)
        # Stop waiting as soon as the process gives up (it says why in its log).
        wait_until(lambda: health(config, service)["status"] == "ok" or (process and process.poll() is not None),
                   timeout=90)
        if health(config, service)["status"] != "ok":
            log = (_run_dir(config) / f"{service}.log").read_text(errors="replace")[-3000:]
            state = f"exited with code {process.returncode}" if process and process.poll() is not None \
                else "did not become healthy within 90 s"
            raise click.ClickException(f"{service} {state}; its log ends:\n{log}")
    if not no_demo:
        from zhuqi.cli.demo import register_one_volunteer

        result = register_one_volunteer(config)
        if as_json:
            click.echo(json.dumps({"end_to_end": result}, ensure_ascii=False))
        else:
            click.echo(f"registered volunteer {result['volunteer_id']} over HTTP; "
                       f"published as {result['event_type']} (sequence {result['sequence']}); "
                       f"ledger entry {result['ledger_seq']} in {result['seconds']:.2f} s")
    if not _print_health(config, as_json):
        raise SystemExit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Print each service's health (exit 1 when one is not ok)."""
    if not _print_health(settings.load(ctx), as_json):
        raise SystemExit(1)


@click.command()
@click.option("--timeout", default=20.0, show_default=True, help="Seconds to wait before SIGKILL.")
@click.pass_context
def down(ctx: click.Context, timeout: float) -> None:
    """Stop the services started by `zhuqi up`."""
    config = settings.load(ctx)
    for service in reversed(SERVICES):
        pid_file = _run_dir(config) / f"{service}.pid"
        if not pid_file.exists():
            continue
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pid_file.unlink()
            continue
        if not wait_until(lambda: not _alive(pid), timeout=timeout):
            os.kill(pid, signal.SIGKILL)
        pid_file.unlink(missing_ok=True)
        click.echo(f"stopped {service} (pid {pid})")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # reap it if it is our child
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


@click.command()
@click.argument("service", type=click.Choice(SERVICES))
@click.pass_context
def serve(ctx: click.Context, service: str) -> None:
    """Run one service in the foreground (as deployments do, one process per service)."""
    command = _host_command(service, ctx.find_root().obj.get("config_path"))
    os.execv(command[0], command)


@click.command()
@click.argument("service", type=click.Choice(["registry"]))
@click.pass_context
def relay(ctx: click.Context, service: str) -> None:
    """Run only the outbox relay of SERVICE (more than one may run; one publishes at a time)."""
    config = settings.load(ctx)
    from zhuqi.runtime import logs

    logs.configure(f"{service}-relay", config.raw["log"]["level"])
    from importlib import import_module

    bootstrap = import_module(f"services.{service}.bootstrap")
    outbox_relay = bootstrap.build_relay(config)
    signal.signal(signal.SIGTERM, lambda *_: outbox_relay.stop())
    try:
        outbox_relay.run()
    except KeyboardInterrupt:
        outbox_relay.stop()
