"""Fixtures that give tests a real broker, a real database and real service processes.

Each test session gets its own RabbitMQ virtual host (when rabbitmqctl is at
hand) and each stack its own PostgreSQL schemas, so runs never see each other's
messages or rows.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

TEST_DSN = os.environ.get("ZHUQI_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
BROKER = os.environ.get("ZHUQI_TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")
REPO = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, message: str = "condition"):
    """Poll until `predicate()` is truthy; fail the test with `message` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body=None, raw: bytes | None = None, content_type="application/json", timeout=10.0):
    data = raw if raw is not None else (None if body is None else json.dumps(body, ensure_ascii=False).encode())
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
            return response.status, (json.loads(payload) if payload[:1] in (b"{", b"[") else payload)
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        return exc.code, (json.loads(payload) if payload[:1] in (b"{", b"[") else payload)


class VirtualHost:
    """A private RabbitMQ virtual host, so that no two stacks share a queue."""

    def __init__(self):
        self.ctl = shutil.which("rabbitmqctl")
        self.name = f"zhuqi-test-{uuid.uuid4().hex[:8]}" if self.ctl else ""
        if self.ctl:
            subprocess.run([self.ctl, "add_vhost", self.name], check=True, capture_output=True)
            subprocess.run([self.ctl, "set_permissions", "-p", self.name, "guest", ".*", ".*", ".*"],
                           check=True, capture_output=True)

    @property
    def uri(self) -> str:
        return f"{BROKER}/{self.name}" if self.name else BROKER + "//"

    def delete(self) -> None:
        if self.ctl:
            subprocess.run([self.ctl, "delete_vhost", self.name], capture_output=True)


@pytest.fixture
def amqp_uri():
    vhost = VirtualHost()
    yield vhost.uri
    vhost.delete()


def drop_schemas(*schemas: str) -> None:
    with psycopg.connect(TEST_DSN, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


class Stack:
    """Service processes on their own schemas, ports and secrets."""

    def __init__(self, tmp: Path):
        self.vhost = VirtualHost()
        amqp_uri = self.amqp_uri = self.vhost.uri
        suffix = uuid.uuid4().hex[:8]
        self.schemas = {"registry": f"registry_t{suffix}", "ledger": f"ledger_t{suffix}"}
        self.ports = {"registry": free_port(), "ledger": free_port()}
        self.tmp = tmp
        self.env = dict(os.environ)
        self.env.update({
            "ZHUQI_AMQP_URI": amqp_uri,
            "ZHUQI_POSTGRES_DSN": TEST_DSN,
            "ZHUQI_SECRETS__DIR": str(tmp / "secrets"),
            "ZHUQI_LOG__LEVEL": "INFO",
            "ZHUQI_SERVICES__LEDGER__CHECKPOINT_INTERVAL": "1",
            "PYTHONUNBUFFERED": "1",
        })
        for name in self.schemas:
            self.env[f"ZHUQI_SERVICES__{name.upper()}__SCHEMA"] = self.schemas[name]
            self.env[f"ZHUQI_SERVICES__{name.upper()}__HTTP_PORT"] = str(self.ports[name])
        self.procs: dict[str, subprocess.Popen] = {}

    def config(self):
        from zhuqi.runtime import config

        return config.load(environ=self.env)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def _spawn(self, key: str, args: list[str]) -> subprocess.Popen:
        log = open(self.tmp / f"{key}.log", "ab")
        proc = subprocess.Popen([sys.executable, *args], env=self.env, cwd=self.tmp, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[key] = proc
        return proc

    def start(self, service: str, wait: bool = True) -> subprocess.Popen:
        proc = self._spawn(service, ["-m", "zhuqi.runtime.host", service])
        if wait:
            self.wait_healthy(service)
        return proc

    def start_relay(self, service: str = "registry") -> subprocess.Popen:
        return self._spawn(f"{service}-relay", ["-m", "zhuqi.cli.main", "relay", service])

    def healthy(self, service: str) -> bool:
        try:
            status, _ = http("GET", self.url(service) + "/health", timeout=1.0)
            return status == 200
        except OSError:
            return False

    def wait_healthy(self, service: str, timeout: float = 60.0) -> None:
        def check():
            proc = self.procs.get(service)
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"{service} exited with {proc.returncode}:\n{self.log(service)[-4000:]}")
            return self.healthy(service)
        wait_for(check, timeout, 0.1, f"{service} to become healthy")

    def log(self, key: str) -> str:
        path = self.tmp / f"{key}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, key: str, sig=signal.SIGTERM, timeout: float = 20.0) -> None:
        proc = self.procs.pop(key, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def kill(self, key: str) -> None:
        self.stop(key, signal.SIGKILL)

    def close(self) -> None:
        for key in list(self.procs):
            self.stop(key)
        drop_schemas(*self.schemas.values())
        self.vhost.delete()

    def ledger_entries(self) -> list[dict]:
        with psycopg.connect(TEST_DSN) as conn:
            rows = conn.execute(sql.SQL("SELECT seq, source, source_sequence, type, subject FROM {} ORDER BY seq").format(
                sql.Identifier(self.schemas["ledger"], "entries"))).fetchall()
        return [dict(zip(("seq", "source", "source_sequence", "type", "subject"), r)) for r in rows]


@pytest.fixture
def stack_factory(tmp_path):
    made: list[Stack] = []

    def make() -> Stack:
        (tmp_path / f"stack{len(made)}").mkdir(parents=True)
        stack = Stack(tmp_path / f"stack{len(made)}")
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.close()


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory):
    """Ledger and registry running for a whole test module."""
    stack = Stack(tmp_path_factory.mktemp("stack"))
    stack.start("ledger")
    stack.start("registry")
    yield stack
    stack.close()
