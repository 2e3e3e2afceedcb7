"""Process entry point of one service: `python -m zhuqi.runtime.host <service>`.

eventlet must patch the standard library before anything else imports it, so
this module does that first, then loads the configuration, checks the broker
and the database are reachable, and runs the service until SIGTERM or SIGINT.
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from zhuqi.runtime import config as config_module  # noqa: E402
from zhuqi.runtime import db, logs  # noqa: E402
from zhuqi.runtime.hosting import nameko_config  # noqa: E402

SERVICES = {
    "registry": "services.registry.service:RegistryService",
    "ledger": "services.ledger.service:LedgerService",
}


def service_class(name: str):
    module, _, cls = SERVICES[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="zhuqi-host")
    parser.add_argument("service", choices=sorted(SERVICES))
    parser.add_argument("--config", default=None)
    args = parser.parse_args(argv)
    try:
        config = config_module.load(args.config)
        logs.configure(args.service, config.raw["log"]["level"])
        config_module.check_reachable(config)
        db.ensure_database(config.postgres_dsn)
        preflight = getattr(importlib.import_module(f"services.{args.service}.bootstrap"), "preflight", None)
        if preflight is not None:
            preflight(config)  # e.g. the keys match the data already stored
    except config_module.ConfigError as exc:
        print(f"zhuqi {args.service}: cannot start: {exc}", file=sys.stderr)
        return 2

    from nameko import config as nameko_global
    from nameko.runners import ServiceRunner

    if (resolution := os.environ.get("ZHUQI_BLOCKING_DETECTION")):
        # Diagnosis: report (with a traceback) any call that holds eventlet's hub
        # longer than this many seconds, i.e. that stalls every other entrypoint.
        from eventlet import debug as hub_debug

        hub_debug.hub_blocking_detection(True, resolution=float(resolution))

    nameko_global.setup(nameko_config(config, args.service))
    runner = ServiceRunner()
    runner.add_service(service_class(args.service))

    def shutdown(signum, frame):
        eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    runner.start()
    logging.getLogger("zhuqi").info("service started", extra={"http_port": config.service(args.service).http_port})
    runner.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
