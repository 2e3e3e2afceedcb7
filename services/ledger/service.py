"""The ledger service: consumes every published event and keeps the tamper-evident log.

Entrypoints, in order: the inbox (every exchange the contracts declare), the
checkpoint timer, RPC for other services, HTTP for auditors and dashboards.
"""
from __future__ import annotations

from nameko.rpc import rpc
from nameko.timer import timer
from psycopg_pool import ConnectionPool

from services.ledger import bootstrap
from services.ledger.application import ENTRIES_APPENDED, Ledger
from services.ledger.http_api import api
from zhuqi.runtime import db  # noqa: F401  (cooperative psycopg before any connection)
from zhuqi.runtime.hosting import BackgroundLoop, ServiceBase, SharedResource, http_routes, zhuqi_config


class LedgerAccess(SharedResource):
    """The stored ledger of this process, shared by every worker and the inbox."""

    def build(self) -> Ledger:
        config = zhuqi_config()
        bootstrap.migrate(config)
        pool = ConnectionPool(bootstrap.writer_dsn(config), min_size=1, max_size=4, open=True,
                              kwargs={"autocommit": True})
        settings = config.service("ledger").extra
        return Ledger(pool, bootstrap.schema(config), bootstrap.signer(config),
                      float(settings.get("checkpoint_interval", 60)),
                      float(settings.get("verify_interval", 3600)))

    def close(self, ledger: Ledger):
        ledger.pool.close()


def _build_inbox(container):
    inbox = bootstrap.build_inbox(zhuqi_config(), on_appended=ENTRIES_APPENDED.inc)
    LedgerAccess.of(container).get().inbox = inbox
    return inbox


@http_routes(api, dependency="ledger")  # HTTP: every route of http_api.py
class LedgerService(ServiceBase):
    name = "ledger"
    api = api

    ledger = LedgerAccess()
    inbox = BackgroundLoop(_build_inbox)

    # -- checkpoints (the inbox consumes in the background: see BackgroundLoop) ------
    @timer(interval=5)
    def sign_checkpoint_when_due(self):
        self.ledger.sign_if_due()

    @timer(interval=60)
    def verify_when_due(self):
        self.ledger.verify_if_due()

    # -- RPC --------------------------------------------------------------------------
    @rpc
    def tree_size(self) -> int:
        return self.ledger.tree_size()

    @rpc
    def history(self, subject: str) -> dict:
        return self.ledger.proof_bundle(subject)

    @rpc
    def checkpoint(self) -> dict:
        cp = self.ledger.sign_checkpoint()
        return {"tree_size": cp.tree_size, "note": cp.note}

    # -- health (served at /health by ServiceBase) -----------------------------------
    def health_report(self) -> dict:
        status = self.ledger.status()
        inbox = status["inbox"] or {}
        return {"ledger": {"ok": bool(inbox.get("connected")), "tree_size": status["tree_size"],
                           "applied": inbox.get("applied", 0), "dead_lettered": inbox.get("dead_lettered", 0)}}
