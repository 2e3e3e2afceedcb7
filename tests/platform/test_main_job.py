"""The README's main job: `zhuqi up` starts every service, proves the path end to end,
prints health; `zhuqi status` and `zhuqi down` watch and stop them."""
import json
import subprocess
import sys

from tests.conftest import Stack, http


def zhuqi(stack: Stack, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zhuqi.cli.main", *args], env=stack.env, cwd=stack.tmp,
                          capture_output=True, text=True, timeout=timeout)


def test_up_status_down(tmp_path):
    stack = Stack(tmp_path)
    try:
        up = zhuqi(stack, "up", "--json")
        assert up.returncode == 0, up.stdout + up.stderr
        first, health = up.stdout.split("\n", 1)
        proof = json.loads(first)["end_to_end"]
        assert proof["event_type"] == "cn.suzhou.zhuqi.registry.volunteer_registered.v1"
        assert proof["ledger_seq"] >= 1
        assert {s: r["status"] for s, r in json.loads(health).items()} == {"ledger": "ok", "registry": "ok"}

        status = zhuqi(stack, "status", "--json")
        assert status.returncode == 0 and json.loads(status.stdout)["registry"]["outbox"]["active"] is True

        # Operations can scrape both services.
        for service, metric in (("registry", "zhuqi_outbox_backlog"), ("registry", "zhuqi_entrypoint_calls_total"),
                                ("ledger", "zhuqi_inbox_messages_total"),
                                ("ledger", "zhuqi_inbox_batch_duration_seconds_bucket"),
                                ("ledger", 'kind="event"')):
            code, body = http("GET", stack.url(service) + "/metrics")
            assert code == 200 and metric.encode() in body, f"{service} does not export {metric}"

        down = zhuqi(stack, "down")
        assert down.returncode == 0 and "stopped registry" in down.stdout and "stopped ledger" in down.stdout
        after = zhuqi(stack, "status", "--json")
        assert after.returncode == 1 and json.loads(after.stdout)["registry"]["status"] == "down"
    finally:
        zhuqi(stack, "down", timeout=60)
        stack.close()
