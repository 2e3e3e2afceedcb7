"""The end-to-end proof `zhuqi up` runs: one volunteer from HTTP form to ledger entry."""
from __future__ import annotations

import random
import time

import click

from zhuqi.cli.processes import http_json, service_url, wait_until
from zhuqi.runtime.config import Config


def sample_volunteer() -> dict:
    # A fresh, well-formed mobile number each run, so the demo can run repeatedly.
    phone = "139" + "".join(random.choice("0123456789") for _ in range(8))
    return {
        "unit": "zjg", "name": "张明", "gender": "男", "employer": "张家港某精密机械有限公司", "post": "车间主任",
        "political_status": "中共党员", "education": "大专", "skill_grade": "高级技师",
        "honours": [{"kind": "model_worker", "level": "city", "title": "苏州市劳动模范"}],
        "phone": phone, "expertise": ["cnc_machining", "equipment_manufacturing"], "employer_industry": "C34",
    }


def register_one_volunteer(config: Config, timeout: float = 30.0) -> dict:
    started = time.monotonic()
    status, body = http_json("POST", service_url(config, "registry") + "/volunteers", sample_volunteer())
    if status != 201:
        raise click.ClickException(f"registering the demo volunteer failed: HTTP {status}: {body}")
    volunteer_id = body["id"]

    def in_ledger():
        code, history = http_json("GET", service_url(config, "ledger") + f"/history/{volunteer_id}")
        return history["entries"] if code == 200 and history.get("entries") else None

    entries = wait_until(in_ledger, timeout=timeout, interval=0.1)
    if not entries:
        raise click.ClickException(f"volunteer {volunteer_id} was stored but did not reach the ledger "
                                   f"within {timeout:.0f} s; see `zhuqi status` and `zhuqi dlq list`")
    first = entries[0]
    return {"volunteer_id": volunteer_id, "event_type": first["type"], "sequence": first["source_sequence"],
            "ledger_seq": first["seq"], "seconds": time.monotonic() - started}
