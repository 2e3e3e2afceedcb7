"""A tiny nameko service for the eventlet cooperation test (run as a script).

Usage: cooperative_probe.py PORT DSN [blocking]
With "blocking", psycopg's C wait function is put back after the runtime is
imported, to show that the test can tell the difference. eventlet's hub
blocking detector runs throughout: it reports any call that holds the hub for
more than half a second.
"""
import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

import eventlet.debug  # noqa: E402

import psycopg.waiting  # noqa: E402
from nameko import config  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402
from nameko.web.handlers import http  # noqa: E402

from zhuqi.runtime import db  # noqa: E402

PORT, DSN = int(sys.argv[1]), sys.argv[2]
if len(sys.argv) > 3 and sys.argv[3] == "blocking":
    psycopg.waiting.wait = psycopg.waiting.wait_c

eventlet.debug.hub_blocking_detection(True, resolution=0.5)


class Probe:
    name = "probe"

    @http("GET", "/slow")
    def slow(self, request):
        with db.connect(DSN) as conn:
            conn.execute("SELECT pg_sleep(2), 'zhuqi-cooperation-probe'")
        return "slow"

    @http("GET", "/fast")
    def fast(self, request):
        return "fast"


config.setup({"WEB_SERVER_ADDRESS": f"127.0.0.1:{PORT}", "AMQP_URI": "amqp://guest:guest@127.0.0.1:5672//"})
runner = ServiceRunner()
runner.add_service(Probe)
runner.start()
runner.wait()
