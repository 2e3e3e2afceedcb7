"""The running ledger service over HTTP: status, entries, proofs, checkpoints, history, metrics, audit CLI.

One ledger process for the module, fed through the broker the way the
registry's relay feeds it; every proof it serves is checked offline with
services.ledger.domain.merkle and services.ledger.verify, never trusted.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from services.ledger.domain import merkle
from services.ledger.domain.checkpoint import open_checkpoint, parse_verifier_key
from services.ledger.domain.entry import canonical_bytes
from services.ledger.verify import verify_bundle, verify_consistency_between
from tests.conftest import REPO, TEST_DSN, Stack, http, wait_for
from tests.platform.events import volunteer_registered
from zhuqi.runtime.publisher import ConfirmingPublisher

EXCHANGE, KEY = "zhuqi.registry", "registry.volunteer_registered.v1"
FIRST = 25                    # envelopes published before the tests run
HISTORY_SUBJECT = "7d0c1c2e-0000-4000-8000-00000000a11c"
HISTORY_SEQUENCES = (3, 11, 19)  # publisher sequences about HISTORY_SUBJECT


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("ledger-service"))
    try:
        stack.start("ledger")
        publisher = ConfirmingPublisher(stack.amqp_uri)
        publisher.connect()
    except BaseException:
        stack.close()  # a service that never became healthy must not outlive the test run
        raise

    def publish(first: int, last: int) -> None:
        for n in range(first, last + 1):
            subject = HISTORY_SUBJECT if n in HISTORY_SEQUENCES else None
            publisher.publish(volunteer_registered(n, prev=n - 1 if n > 1 else None, volunteer_id=subject),
                              EXCHANGE, KEY)
        publisher.wait_for_confirms(10)
        wait_for(lambda: len(stack.ledger_entries()) == last, 30, message=f"{last} ledger entries")

    stack.publish = publish
    try:
        publish(1, FIRST)
        yield stack
    finally:
        publisher.close()
        stack.close()


def get(stack, path):
    status, body = http("GET", stack.url("ledger") + path)
    assert status == 200, (path, status, body)
    return body


def sign(stack) -> dict:
    status, body = http("POST", stack.url("ledger") + "/checkpoints")
    assert status == 201, body
    return body


def verifier(checkpoint: dict):
    return parse_verifier_key(checkpoint["verifier_key"])


def leaf_of(entry: dict) -> bytes:
    """The leaf hash recomputed from the entry's eight members (docs/ledger-format.md section 1)."""
    return merkle.hash_leaf(canonical_bytes(entry["seq"], entry["source"], entry["source_sequence"], entry["type"],
                                            entry["subject"], entry["time"], entry["envelope"], entry["prev"]))


def test_status_reports_tree_size_checkpoint_and_consumer(ledger):
    wait_for(lambda: (get(ledger, "/status")["checkpoint"] or {}).get("tree_size") == FIRST, 20,
             message="the timer to checkpoint the first entries")
    status = get(ledger, "/status")
    assert status["tree_size"] == FIRST
    assert status["inbox"]["connected"] is True
    assert status["inbox"]["applied"] == FIRST and status["inbox"]["dead_lettered"] == 0
    assert status["inbox"]["positions"] == {"registry": FIRST}


def test_entries_are_paginated_in_ledger_order(ledger):
    pages, after = [], 0
    while after is not None:
        page = get(ledger, f"/entries?limit=10&after={after}")
        pages.append([e["seq"] for e in page["entries"]])
        after = page["next_after"]
    assert pages == [list(range(1, 11)), list(range(11, 21)), list(range(21, FIRST + 1))]
    first = get(ledger, "/entries?limit=1")["entries"][0]
    assert first["prev"] == "0" * 64 and (first["source"], first["source_sequence"]) == ("registry", 1)
    assert json.loads(first["envelope"])["sequence"] == "1"
    assert http("GET", ledger.url("ledger") + "/entries?limit=0")[0] == 422
    assert http("GET", ledger.url("ledger") + f"/entries/{FIRST + 100}")[0] == 404


def test_an_entry_comes_with_an_inclusion_proof_against_the_latest_checkpoint(ledger):
    signed = sign(ledger)
    assert signed["tree_size"] == FIRST
    latest = get(ledger, "/checkpoints/latest")
    head = open_checkpoint(latest["note"], verifier(latest))
    assert (head.size, base64.b64encode(head.root).decode()) == (FIRST, latest["root"])
    for seq in (1, 7, FIRST):
        entry = get(ledger, f"/entries/{seq}")
        assert entry["seq"] == seq and entry["leaf_index"] == seq - 1 and entry["checkpoint"] == latest["note"]
        proof = [base64.b64decode(p) for p in entry["proof"]]
        merkle.verify_inclusion(seq - 1, head.size, leaf_of(entry), proof, head.root)
        # The proof is bound to this entry's contents: another entry's leaf does not verify.
        other = get(ledger, f"/entries/{seq % FIRST + 1}")
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(seq - 1, head.size, leaf_of(other), proof, head.root)


def test_subject_history_bundle_verifies_offline(ledger):
    bundle = get(ledger, f"/history/{HISTORY_SUBJECT}")
    assert [e["source_sequence"] for e in bundle["entries"]] == list(HISTORY_SEQUENCES)
    pinned = get(ledger, "/checkpoints/latest")["verifier_key"]
    verdict = verify_bundle(bundle, pinned)
    assert verdict.ok, verdict.summary()
    assert (verdict.entries_checked, verdict.checkpoints_checked) == (len(HISTORY_SEQUENCES), 1)
    # A changed member breaks its proof.
    bundle["entries"][1]["time"] = "2024-01-15T08:00:01Z"
    assert not verify_bundle(bundle, pinned).ok


def test_audit_command_verifies_the_live_schema(ledger):
    pinned = get(ledger, "/checkpoints/latest")["verifier_key"]
    done = subprocess.run(
        [sys.executable, "-m", "zhuqi.cli.main", "ledger", "verify", "--dsn", TEST_DSN,
         "--schema", ledger.schemas["ledger"], "--key", pinned, "--json"],
        cwd=REPO, env=ledger.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["ok"] is True and verdict["key_source"] == "pinned"
    assert verdict["entries_checked"] == len(ledger.ledger_entries()) and verdict["checkpoints_checked"] >= 1


def test_metrics_page_has_the_ledger_series(ledger):
    # The timer refreshes the gauges every few seconds; wait for a pass after the last append.
    def page():
        status, body = http("GET", ledger.url("ledger") + "/metrics")
        assert status == 200
        text = body.decode() if isinstance(body, bytes) else str(body)
        return text if f"zhuqi_ledger_last_sequence {float(FIRST)}" in text else None

    text = wait_for(page, 20, 0.2, "the last-sequence gauge")
    samples = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
               if line.startswith("zhuqi_ledger_")}
    assert samples["zhuqi_ledger_entries_appended_total"] == FIRST
    assert samples["zhuqi_ledger_last_sequence"] == FIRST
    assert 0 <= samples["zhuqi_ledger_checkpoint_age_seconds"] < 60
    assert samples["zhuqi_ledger_verification_failures_total"] == 0


def test_consistency_proof_between_two_checkpoints(ledger):
    # Runs last in this module: it grows the ledger.
    old = sign(ledger)
    assert old["tree_size"] == FIRST
    ledger.publish(FIRST + 1, FIRST + 12)
    new = sign(ledger)
    assert new["tree_size"] == FIRST + 12
    body = get(ledger, f"/proofs/consistency?first={FIRST}&second={FIRST + 12}")
    proof = [base64.b64decode(p) for p in body["proof"]]
    assert proof, "a proof between different sizes is never empty"
    verify_consistency_between(old["note"], new["note"], proof, old["verifier_key"])
    # Tampering with any proof element is caught.
    forged = [bytes(32)] + proof[1:]
    with pytest.raises(merkle.ProofError):
        verify_consistency_between(old["note"], new["note"], forged, old["verifier_key"])
    # Equal sizes: an empty proof; sizes outside the tree are refused.
    assert get(ledger, f"/proofs/consistency?first={FIRST}&second={FIRST}")["proof"] == []
    assert http("GET", ledger.url("ledger") + f"/proofs/consistency?first=5&second={FIRST + 99}")[0] == 422
    assert http("GET", ledger.url("ledger") + "/proofs/consistency?first=9&second=4")[0] == 422
