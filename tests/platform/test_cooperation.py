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


def _fast_call_latency_during_slow_query(mode: str) -> float:
    port = free_port()
    args = [sys.executable, str(PROBE), str(port), TEST_DSN] + ([mode] if mode else [])
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        return elapsed
    finally:
        proc.terminate()
        proc.wait(10)


def test_slow_query_does_not_delay_another_entrypoint():
    assert _fast_call_latency_during_slow_query("") < 0.5


def test_control_blocking_wait_function_is_detected():
    if not hasattr(__import__("psycopg").waiting, "wait_c"):
        pytest.skip("psycopg C extension not installed: no blocking wait function to compare with")
    assert _fast_call_latency_during_slow_query("blocking") > 1.0
