"""A slow query in one nameko worker must not delay another entrypoint.

psycopg's default (C) wait blocks eventlet's hub; the runtime replaces it with
`wait_select`. The control run puts the C wait back and must show the delay,
so this test can fail.
"""
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import TEST_DSN, free_port, http, wait_for

PROBE = Path(__file__).with_name("cooperative_probe.py")


def _fast_call_latency_during_slow_query(mode: str) -> tuple[float, str]:
    """Latency of a trivial call while another worker runs a 2 s query; and the probe's stderr."""
    port = free_port()
    args = [sys.executable, str(PROBE), str(port), TEST_DSN] + ([mode] if mode else [])
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"

        def up():
            try:
                return http("GET", base + "/fast", timeout=1)[0] == 200
            except OSError:
                return False
        wait_for(up, 30, 0.1, "the probe service")
        slow = threading.Thread(target=http, args=("GET", base + "/slow"), kwargs={"timeout": 10})
        slow.start()

        def sleeping():
            with psycopg.connect(TEST_DSN) as conn:
                return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                    "AND query LIKE %s", ("%zhuqi-cooperation-probe%",)).fetchone()[0] > 0
        wait_for(sleeping, 10, 0.02, "the slow query to be running")
        started = time.perf_counter()
        status, body = http("GET", base + "/fast", timeout=10)
        elapsed = time.perf_counter() - started
        assert status == 200
        slow.join()
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    return elapsed, stderr


def test_slow_query_does_not_delay_another_entrypoint():
    elapsed, stderr = _fast_call_latency_during_slow_query("")
    assert elapsed < 0.5
    assert "Blocking detector ALARMED" not in stderr


def test_control_blocking_wait_function_is_detected():
    if not hasattr(__import__("psycopg").waiting, "wait_c"):
        pytest.skip("psycopg C extension not installed: no blocking wait function to compare with")
    elapsed, stderr = _fast_call_latency_during_slow_query("blocking")
    # The detector interrupts the blocked call after its resolution (0.5 s), so the
    # trivial call is late by at least that much instead of the whole 2 s.
    assert elapsed > 0.5
    assert "Blocking detector ALARMED" in stderr


def test_service_database_paths_never_block_the_hub(stack_factory):
    """The registry and ledger, run with eventlet's blocking detector, serve HTTP and RPC
    commands and queries, relay and consume, without holding the hub for 0.5 s."""
    from tests.conftest import http
    from zhuqi.cli.demo import sample_volunteer
    from zhuqi.runtime import rpc

    stack = stack_factory()
    stack.env["ZHUQI_BLOCKING_DETECTION"] = "0.5"
    stack.start("ledger")
    stack.start("registry")
    ids = [http("POST", stack.url("registry") + "/volunteers", sample_volunteer())[1]["id"] for _ in range(5)]
    with rpc.cluster(stack.config()) as cluster:
        ids += [cluster.registry.register_volunteer(sample_volunteer()) for _ in range(5)]
        cluster.registry.list_volunteers(unit="zjg")
    assert http("GET", stack.url("registry") + "/volunteers?unit=zjg")[0] == 200
    wait_for(lambda: len(stack.ledger_entries()) == 10, 30, message="all ten in the ledger")
    assert http("POST", stack.url("ledger") + "/checkpoints")[0] == 201
    for service in ("registry", "ledger"):
        assert "Blocking detector ALARMED" not in stack.log(service), stack.log(service)[-3000:]
