"""Index aggregates that make natural keys unique (eventsourcing's index pattern).

A ``Reservation``'s id is ``uuid5(NAMESPACE, key)``; it is saved in the same
``save()`` as the aggregate that owns the key, so a second registration of the
same key fails atomically on the event store's (originator_id, version)
primary key. A released reservation (a withdrawn volunteer's phone number) can
be taken again by appending ``Retaken``, which is protected the same way by
optimistic concurrency.

Keys never contain personal data in clear: a volunteer's key is an HMAC of the
phone number under a secret pepper (see ``personal_data.phone_key``). The
reservation deliberately does not record who holds it, so the event store does
not link the phone-derived id to a volunteer once the directory row forgets it.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

# Fixed namespace: changing it would silently un-reserve every key.
NAMESPACE = UUID("8f6c2f43-2b0a-5c1e-9d57-7a3e0c2b9a11")


def credit_code_key(code: str) -> str:
    return f"credit_code:{code}"


def city_team_key() -> str:
    return "team:city"


def district_team_key(unit: str) -> str:
    return f"team:district:{unit}"


def volunteer_key(phone_hmac_hex: str) -> str:
    return f"volunteer:phone:{phone_hmac_hex}"


class Reservation(Aggregate):
    @staticmethod
    def create_id(key: str) -> UUID:
        return uuid5(NAMESPACE, key)

    @event("Reserved")
    def __init__(self, key: str) -> None:
        self.key = key
        self.held = True

    def release(self) -> None:
        if self.held:
            self._released()

    def retake(self) -> None:
        if self.held:
            raise ValueError("reservation is held")
        self._retaken()

    @event("Released")
    def _released(self) -> None:
        self.held = False

    @event("Retaken")
    def _retaken(self) -> None:
        self.held = True


def reservation_id(key: str) -> UUID:
    return Reservation.create_id(key)
