"""Calling services over RPC from outside a service (the console, tests, unit systems)."""
from __future__ import annotations

from contextlib import contextmanager

from nameko.standalone.rpc import ClusterRpcClient

from zhuqi.runtime import sealed, secrets
from zhuqi.runtime.config import Config


@contextmanager
def cluster(config: Config, timeout: float = 30.0):
    """`with cluster(config) as rpc: rpc.registry.register_volunteer({...})` — payloads sealed on the broker."""
    from nameko import config as nameko_global

    sealed.configure(secrets.key(config, "rpc"))
    nameko_global.update(sealed.nameko_settings())  # the client reads serializer and accept from here
    with ClusterRpcClient(context_data={}, uri=config.amqp_uri, serializer=sealed.NAME, timeout=timeout) as client:
        yield client
