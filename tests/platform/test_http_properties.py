"""Property-based API test: schemathesis drives every operation of each service's
`/openapi.json` with generated requests (bounded) and no answer is a 5xx.

It runs schemathesis' own command line against the live services: its pytest
plugin does not load under the pytest version pinned here.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import http

EXAMPLES = "12"  # per operation and phase: every validation branch is reached; CI stays quick


def schemathesis_command() -> list[str]:
    exe = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    return [exe]


@pytest.mark.parametrize("service", ["registry", "ledger"])
def test_api_never_answers_5xx(running_stack, service):
    result = subprocess.run(
        [*schemathesis_command(), "run", running_stack.url(service) + "/openapi.json",
         "--checks", "not_a_server_error", "--max-examples", EXAMPLES, "--seed", "20231156",
         "--phases", "examples,coverage,fuzzing", "--request-timeout", "10", "--no-color"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout


def test_openapi_documents_are_3_1_with_problem_details(running_stack):
    for service in ("registry", "ledger"):
        status, doc = http("GET", running_stack.url(service) + "/openapi.json")
        assert status == 200 and doc["openapi"] == "3.1.0"
        assert "Problem" in doc["components"]["schemas"]
        for path, operations in doc["paths"].items():
            for op in operations.values():
                assert "422" in op["responses"], f"{path} does not document its problem answers"


def test_a_bad_request_is_a_problem_naming_field_value_and_rule(running_stack):
    status, body = http("GET", running_stack.url("registry") + "/volunteers?limit=0&colour=red")
    assert status == 422
    assert body["type"].endswith("/invalid-query") and body["status"] == 422
    fields = {e["field"]: e for e in body["errors"]}
    assert fields["query.limit"]["value"] == 0 and fields["query.limit"]["rule"] == "minimum"
    assert fields["query.colour"]["rule"] == "known_parameter"
    status, body = http("POST", running_stack.url("registry") + "/volunteers", raw=b"\xff\xfe", content_type="application/json")
    assert status == 400 and "not UTF-8" in body["detail"]
