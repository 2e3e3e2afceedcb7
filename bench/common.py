"""Shared set-up of the benchmarks: a private vhost, fresh schemas, settings."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from contextlib import contextmanager

import psycopg
from psycopg import sql

from zhuqi.runtime import config as config_module

DSN = os.environ.get("ZHUQI_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
BROKER = os.environ.get("ZHUQI_BENCH_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")


@contextmanager
def sandbox(**overrides: str):
    """Settings pointing at a private vhost and throwaway schemas, removed afterwards."""
    suffix = uuid.uuid4().hex[:8]
    ctl = shutil.which("rabbitmqctl")
    vhost = f"zhuqi-bench-{suffix}" if ctl else ""
    if ctl:
        subprocess.run([ctl, "add_vhost", vhost], check=True, capture_output=True)
        subprocess.run([ctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True, capture_output=True)
    secrets_dir = tempfile.mkdtemp(prefix="zhuqi-bench-")
    schemas = {"registry": f"registry_b{suffix}", "ledger": f"ledger_b{suffix}"}
    env = {"ZHUQI_AMQP_URI": f"{BROKER}/{vhost}" if vhost else BROKER + "//", "ZHUQI_POSTGRES_DSN": DSN,
           "ZHUQI_SECRETS__DIR": secrets_dir,
           "ZHUQI_SERVICES__REGISTRY__SCHEMA": schemas["registry"], "ZHUQI_SERVICES__LEDGER__SCHEMA": schemas["ledger"],
           **overrides}
    try:
        yield config_module.load(environ=env), schemas
    finally:
        with psycopg.connect(DSN, autocommit=True) as conn:
            for schema in [*schemas.values(), f"bench_{suffix}"]:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        if ctl:
            subprocess.run([ctl, "delete_vhost", vhost], capture_output=True)
        shutil.rmtree(secrets_dir, ignore_errors=True)
