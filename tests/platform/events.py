"""Envelopes for platform tests, built the way a publisher builds them."""
from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone

from zhuqi.runtime.envelope import PublishedEvent, build


def volunteer_registered_data(volunteer_id: str | None = None) -> dict:
    volunteer_id = volunteer_id or str(uuid.uuid4())
    return {
        "volunteer_id": volunteer_id,
        "unit": "zjg",
        "honours": [{"kind": "model_worker", "level": "city"}],
        "expertise": ["welding"],
        "employer_industry": "C38",
        "skill_grade": "高级技师",
        "registered_on": "2024-01-15",
        "personal": {"alg": "A256GCM", "kid": volunteer_id, "ciphertext": base64.b64encode(b"sealed").decode()},
    }


def volunteer_registered(sequence: int, prev: int | None = None, volunteer_id: str | None = None) -> bytes:
    data = volunteer_registered_data(volunteer_id)
    body, _ = build("registry", sequence, PublishedEvent("volunteer_registered", data["volunteer_id"], "zjg", data),
                    datetime(2024, 1, 15, 8, 0, tzinfo=timezone.utc), prev_sequence=prev)
    return body
