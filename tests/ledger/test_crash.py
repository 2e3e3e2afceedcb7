"""The ledger survives SIGKILL in the middle of appending: every envelope once, in order, verifiable.

The consumer commits tracking rows and entries in one transaction and
acknowledges the broker only afterwards, so a kill loses at most an
uncommitted batch, which the broker redelivers to the restarted service.
"""
from __future__ import annotations

import psycopg
from psycopg import sql

from services.ledger.domain.checkpoint import parse_signer_key
from services.ledger.verify import verify_postgres
from tests.conftest import TEST_DSN, http, wait_for
from tests.platform.events import volunteer_registered
from zhuqi.runtime.publisher import ConfirmingPublisher

EXCHANGE, KEY = "zhuqi.registry", "registry.volunteer_registered.v1"
N = 6_000


def entry_count(stack) -> int:
    with psycopg.connect(TEST_DSN, autocommit=True) as conn:
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(stack.schemas["ledger"], "entries"))).fetchone()[0]


def publish(stack, sequences) -> None:
    publisher = ConfirmingPublisher(stack.amqp_uri)
    publisher.connect()
    try:
        batch = []
        for n in sequences:
            batch.append(n)
            publisher.publish(volunteer_registered(n, prev=n - 1 if n > 1 else None), EXCHANGE, KEY)
            if len(batch) == 1000:
                publisher.wait_for_confirms(30)
                batch.clear()
        publisher.wait_for_confirms(30)
    finally:
        publisher.close()


def pinned_key(stack) -> str:
    """The verifier key of the signing key the service created in its secrets directory."""
    return parse_signer_key((stack.tmp / "secrets" / "ledger-signer.key").read_text()).verifier_key


def test_sigkill_while_appending_loses_and_duplicates_nothing(stack_factory):
    stack = stack_factory()
    stack.start("ledger")        # declares its queue and bindings
    stack.stop("ledger")         # the envelopes pile up in the queue meanwhile
    publish(stack, range(1, N + 1))

    stack.start("ledger", wait=False)
    wait_for(lambda: entry_count(stack) > 0, 60, 0.005, "the first committed batch")
    stack.kill("ledger")
    at_kill = entry_count(stack)  # what was committed when the process died
    assert 0 < at_kill < N, f"the kill came too late to interrupt appending ({at_kill} of {N})"

    stack.start("ledger")
    wait_for(lambda: entry_count(stack) >= N, 60, 0.1, f"all {N} entries after the restart")
    entries = stack.ledger_entries()
    assert [e["seq"] for e in entries] == list(range(1, N + 1))
    assert [(e["source"], e["source_sequence"]) for e in entries] == [("registry", n) for n in range(1, N + 1)]

    status = http("GET", stack.url("ledger") + "/status")[1]
    assert status["tree_size"] == N and status["inbox"]["dead_lettered"] == 0
    key = pinned_key(stack)
    for workers in (1, 2):  # in this process, and with the second half in a helper process
        with psycopg.connect(TEST_DSN) as conn:
            verdict = verify_postgres(conn, stack.schemas["ledger"], key, workers=workers)
        assert verdict.ok, verdict.summary()
        assert verdict.entries_checked == N


def test_a_redelivered_envelope_appends_nothing(stack_factory):
    stack = stack_factory()
    stack.start("ledger")
    publish(stack, range(1, 21))
    wait_for(lambda: entry_count(stack) == 20, 30, message="20 entries")

    publish(stack, [7, 20])      # a relay republishing after its own crash
    publish(stack, [21])
    wait_for(lambda: entry_count(stack) == 21, 30, message="the 21st entry")
    wait_for(lambda: http("GET", stack.url("ledger") + "/status")[1]["inbox"]["duplicates"] == 2, 20,
             message="both redeliveries counted as duplicates")
    entries = stack.ledger_entries()
    assert [(e["seq"], e["source_sequence"]) for e in entries] == [(n, n) for n in range(1, 22)]
    with psycopg.connect(TEST_DSN) as conn:
        verdict = verify_postgres(conn, stack.schemas["ledger"], pinned_key(stack))
    assert verdict.ok and verdict.entries_checked == 21
