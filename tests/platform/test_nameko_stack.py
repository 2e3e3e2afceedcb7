"""Run nameko's own test tooling (pytest plugin, container_factory, entrypoint_waiter),
its RPC, events and consumers in an eventlet-patched process against the real broker."""
import os
import subprocess
import sys
from pathlib import Path

import eventlet

from tests.conftest import VirtualHost

SUITE = Path(__file__).with_name("eventlet_suite.py")
RUNNER = "import eventlet; eventlet.monkey_patch(); import sys, pytest; sys.exit(pytest.main(sys.argv[1:]))"


def test_nameko_events_consumers_and_test_runner_under_eventlet():
    assert eventlet.__version__ == "0.41.3", "the suite below is the proof for the pinned eventlet only"
    vhost = VirtualHost()
    try:
        result = subprocess.run([sys.executable, "-c", RUNNER, str(SUITE), "-q", "-p", "no:cacheprovider",
                                 "--suppress-nameko-eventlet-notification", "-W", "ignore::DeprecationWarning"],
                                capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
                                env={**os.environ, "ZHUQI_PROBE_AMQP_URI": vhost.uri})
    finally:
        vhost.delete()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout
    assert "mutex" not in result.stdout + result.stderr
