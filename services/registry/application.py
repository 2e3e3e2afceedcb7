"""RegistryApplication: commands and queries of the registry service.

Every change is a stored event (the notification log is what the outbox relay
publishes). Each command validates everything first and then calls ``save()``
once, so a refused command stores nothing and a bulk command is atomic. The
directory read model and the key store are written in the same transaction as
the events (see ``storage.RegistryRecorder``).

Configuration (constructor ``env`` or process environment):

* ``PERSISTENCE_MODULE=eventsourcing.postgres`` and ``POSTGRES_DBNAME``,
  ``POSTGRES_HOST``, ``POSTGRES_PORT``, ``POSTGRES_USER``, ``POSTGRES_PASSWORD``,
  ``POSTGRES_SCHEMA`` (default ``registry``), other ``POSTGRES_*`` options.
* ``CIPHER_KEY``: base64 AES key for eventsourcing's application-level cipher
  (``CIPHER_TOPIC`` defaults to ``eventsourcing.cryptography:AESCipher``).
* ``ZHUQI_MASTER_KEY``: base64 32-byte key wrapping the per-volunteer data keys.
* ``ZHUQI_PHONE_PEPPER``: base64 32-byte secret for the phone HMAC natural key.
  ``master_key=``/``phone_pepper=`` constructor arguments override the env.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, Callable, Sequence
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from . import views
from .domain import industries, units
from .domain.enterprise import Enterprise, EnterpriseRegistration, ValidEnterprise, validate_enterprise
from .domain.errors import Conflict, NotFound, Problem, ValidationError
from .domain.expertise import TAGS, check_tags
from .domain.personal_fields import PersonalFields
from .domain.reservation import (Reservation, city_team_key, credit_code_key, district_team_key,
                                 reservation_id, volunteer_key)
from .domain.team import CITY_TEAM_UNIT, TIERS, ServiceTeam
from .domain.text import check_text
from .domain.volunteer import (ACTIVE, SUSPENDED, WITHDRAWN, ValidRegistration, Volunteer,
                               VolunteerRegistration, validate_registration)
from .personal_data import Sealer, decode_secret
from .storage import SideEffects

TZ = ZoneInfo("Asia/Shanghai")
MAX_PAGE = 500
# A bulk command larger than this is refused: it must fit one transaction
# comfortably (20,000 rows is the documented import limit).
MAX_BULK = 20_000
Progress = Callable[[int, int], None]
_PERSONAL_FIELDS = tuple(f.name for f in fields(PersonalFields))


@dataclass(frozen=True)
class BulkResult:
    """Outcome of a bulk registration, by position in the input."""

    created: list[tuple[int, UUID]] = field(default_factory=list)
    # Items whose natural key is already registered: (position, existing id).
    unchanged: list[tuple[int, UUID | None]] = field(default_factory=list)


def _today() -> date:
    return datetime.now(TZ).date()


def _as_date(value: date | str | None, field_name: str) -> date:
    if value is None:
        return _today()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationError([Problem(field_name, value, "iso_date",
                                       f"{field_name} must be an ISO date YYYY-MM-DD")]) from None


def _as_uuid(value: Any, field_name: str) -> UUID:
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        raise ValidationError([Problem(field_name, value, "uuid",
                                       f"{field_name} must be a UUID")]) from None


class RegistryApplication(Application[UUID]):
    name = "Registry"
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_SCHEMA": "registry",
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "APPLICATION_RECORDER_TOPIC": "services.registry.storage:RegistryRecorder",
    }

    def __init__(self, env: dict[str, str] | None = None, *,
                 master_key: bytes | None = None, phone_pepper: bytes | None = None):
        super().__init__(env)
        if self.env.get("POSTGRES_ENABLE_DB_FUNCTIONS", "n").lower() in ("y", "yes", "t", "true", "1"):
            # The DB-function insert path bypasses the hook that keeps the
            # directory and key store in the same transaction.
            raise OSError("POSTGRES_ENABLE_DB_FUNCTIONS is not supported by the registry")
        if not self.env.get("CIPHER_KEY"):
            raise OSError("CIPHER_KEY is required: registry events are encrypted at rest")
        master = master_key or self._secret("ZHUQI_MASTER_KEY")
        pepper = phone_pepper or self._secret("ZHUQI_PHONE_PEPPER")
        self.sealer = Sealer(decode_secret(master, "ZHUQI_MASTER_KEY"),
                             decode_secret(pepper, "ZHUQI_PHONE_PEPPER"))

    def _secret(self, name: str) -> str:
        value = self.env.get(name)
        if not value:
            raise OSError(f"{name} (base64, 32 bytes) is required")
        return value

    # Volunteers --------------------------------------------------------------

    def register_volunteer(self, registration: VolunteerRegistration) -> UUID:
        result = self.register_many_volunteers([registration], _single=True)
        return result.created[0][1]

    def register_many_volunteers(self, registrations: Sequence[VolunteerRegistration],
                                 progress: Progress | None = None, *,
                                 _single: bool = False) -> BulkResult:
        """Validate all, then save every new volunteer in one transaction.

        Items whose phone number is already registered to a current volunteer
        are reported as unchanged (idempotent re-import); a single
        ``register_volunteer`` raises ``Conflict`` instead.
        """
        self._check_bulk_size(registrations)
        total = len(registrations)
        # (position, parsed, reservation key, reservation id): the id (a uuid5)
        # is computed once here and reused below.
        valid: list[tuple[int, ValidRegistration, str, UUID]] = []
        problems: list[Problem] = []
        seen: dict[UUID, int] = {}
        for index, raw in enumerate(registrations):
            parsed, found = validate_registration(raw)
            if found:
                problems += [p.at(index) for p in found]
            if parsed is not None:
                key_text = volunteer_key(self.sealer.phone_key(parsed.personal.phone))
                key = reservation_id(key_text)
                if key in seen:
                    problems.append(Problem("phone", raw.phone, "unique_in_batch",
                                            f"same phone number as item {seen[key]} / 联系电话重复",
                                            index))
                else:
                    seen[key] = index
                    valid.append((index, parsed, key_text, key))
            if progress and index % 500 == 0:
                progress(index, total)
        if problems:
            raise ValidationError(problems)
        held, released = self._reservation_states(list(seen))
        owners = self.recorder.directory_by_natural_keys("volunteer", held) if held else {}
        result = BulkResult()
        effects = SideEffects()
        aggregates: list[Any] = []
        wrapped_rows: list[tuple[UUID, bytes, str]] = []
        for index, parsed, key_text, key in valid:
            if key in held:
                owner = owners.get(key, {}).get("id")
                if _single:
                    raise Conflict("duplicate_volunteer",
                                   f"phone number already registered (volunteer {owner}) / "
                                   "该联系电话已登记")
                result.unchanged.append((index, owner))
                continue
            volunteer, data_key = self._new_volunteer(parsed)
            wrapped_rows.append((volunteer.id, self.sealer.wrap(volunteer.id, data_key),
                                 self.sealer.master_key_id))
            reservation = self._take_reservation(key_text, released)
            aggregates += [volunteer, reservation]
            effects.directory += [views.volunteer_row(volunteer, key),
                                  views.reservation_row(reservation)]
            result.created.append((index, volunteer.id))
        effects.new_keys = wrapped_rows
        if aggregates:
            self._save(aggregates, effects)
        if progress:
            progress(total, total)
        return result

    def _new_volunteer(self, parsed: ValidRegistration) -> tuple[Volunteer, bytes]:
        volunteer_id = uuid4()
        data_key = self.sealer.new_data_key()
        # Same dict as PersonalFields.to_dict() (all fields are flat values), but
        # without dataclasses.asdict's recursive deep copy, which was a tenth of a
        # 10,000-row import.
        personal = parsed.personal
        sealed = self.sealer.seal(volunteer_id, data_key,
                                  {name: getattr(personal, name) for name in _PERSONAL_FIELDS})
        volunteer = Volunteer(
            id=volunteer_id, unit=parsed.unit, sealed_personal=sealed,
            honours=[h.to_dict() for h in parsed.honours], expertise=list(parsed.expertise),
            employer_industry=parsed.employer_industry, skill_grade=parsed.skill_grade,
            registered_on=parsed.registered_on.isoformat())
        return volunteer, data_key

    def add_honour(self, volunteer_id: UUID | str, honour: dict[str, Any]) -> None:
        volunteer = self._get(Volunteer, volunteer_id, "volunteer")
        volunteer.add_honour(honour)
        self._save([volunteer], SideEffects(directory=[views.volunteer_row(volunteer)]))

    def suspend_volunteer(self, volunteer_id: UUID | str, reason: str) -> None:
        volunteer = self._get(Volunteer, volunteer_id, "volunteer")
        volunteer.suspend(reason)
        self._save([volunteer], SideEffects(directory=[views.volunteer_row(volunteer)]))

    def reinstate_volunteer(self, volunteer_id: UUID | str) -> None:
        volunteer = self._get(Volunteer, volunteer_id, "volunteer")
        volunteer.reinstate()
        self._save([volunteer], SideEffects(directory=[views.volunteer_row(volunteer)]))

    def withdraw_volunteer(self, volunteer_id: UUID | str, *, erase: bool) -> None:
        """Withdraw; with ``erase`` also crypto-shred the personal data (PIPL).

        The phone reservation is released so the person may register again
        later; withdrawal, release and erasure commit together.
        """
        volunteer = self._get(Volunteer, volunteer_id, "volunteer")
        volunteer.withdraw(erase)
        effects = SideEffects()
        aggregates: list[Any] = [volunteer]
        personal = self._open_personal(volunteer)
        if personal is not None:
            key = reservation_id(volunteer_key(self.sealer.phone_key(personal["phone"])))
            try:
                reservation = self.repository.get(key)
            except AggregateNotFoundError:
                reservation = None
            if reservation is not None:
                reservation.release()
                aggregates.append(reservation)
                effects.directory.append(views.reservation_row(reservation))
        if erase:
            volunteer.erase_personal_data()
            effects.shred_keys.append(volunteer.id)
        effects.directory.insert(0, views.volunteer_row(volunteer))
        self._save(aggregates, effects)

    # Teams -------------------------------------------------------------------

    def form_team(self, unit: str | None, tier: str, name: str,
                  formed_on: date | str | None = None) -> UUID:
        problems: list[Problem] = []
        if tier not in TIERS:
            raise ValidationError([Problem("tier", tier, "known_tier",
                                           f"tier must be one of {', '.join(TIERS)}")])
        if tier == "city":
            if unit not in (None, CITY_TEAM_UNIT):
                problems.append(Problem("unit", unit, "city_team_unit",
                                        f"the city team belongs to the city federation "
                                        f"({CITY_TEAM_UNIT}); omit unit"))
            unit_code: str | None = CITY_TEAM_UNIT
        else:
            unit_code, found = units.check_unit(unit)
            problems += found
            if unit_code and tier == "district" and unit_code not in units.DISTRICT_CODES:
                problems.append(Problem("unit", unit, "district_unit",
                                        "a district team must belong to one of the 10 districts "
                                        "/ 辖市区服务队须属10个辖市区之一"))
        team_name, found = check_text("name", name, limit_key="team.name")
        problems += found
        day = _as_date(formed_on, "formed_on")
        if problems:
            raise ValidationError(problems)
        team = ServiceTeam(unit=unit_code, tier=tier, name=team_name, formed_on=day.isoformat())
        aggregates: list[Any] = [team]
        effects = SideEffects(directory=[views.team_row(team)])
        if tier != "sector":
            key = city_team_key() if tier == "city" else district_team_key(unit_code or "")
            reservation = Reservation(key=key)
            aggregates.append(reservation)
            effects.directory.append(views.reservation_row(reservation))
            if self._reservation_states([reservation.id])[0]:
                raise Conflict(f"single_{tier}_team",
                               "there is already a city team / 已有市级服务队" if tier == "city"
                               else f"district {unit_code} already has its team / 该辖市区已有服务队")
        self._save(aggregates, effects, conflict_rule=f"single_{tier}_team")
        return team.id

    def join_team(self, team_id: UUID | str, volunteer_id: UUID | str,
                  joined_on: date | str | None = None) -> None:
        team = self._get(ServiceTeam, team_id, "team")
        volunteer = self._get(Volunteer, volunteer_id, "volunteer")
        if volunteer.status != ACTIVE:
            raise Conflict("active_volunteer",
                           f"volunteer {volunteer.id} is {volunteer.status}; only active "
                           "volunteers may join a team / 仅在册志愿者可入队")
        if not volunteer.is_eligible_and_active:
            raise Conflict("eligible_volunteer", f"volunteer {volunteer.id} holds no eligible honour")
        team.join(volunteer.id, _as_date(joined_on, "joined_on"))
        self._save([team], SideEffects(directory=[views.team_row(team)]))

    def leave_team(self, team_id: UUID | str, volunteer_id: UUID | str,
                   left_on: date | str | None = None) -> None:
        team = self._get(ServiceTeam, team_id, "team")
        team.leave(_as_uuid(volunteer_id, "volunteer_id"), _as_date(left_on, "left_on"))
        self._save([team], SideEffects(directory=[views.team_row(team)]))

    # Enterprises -------------------------------------------------------------

    def register_enterprise(self, registration: EnterpriseRegistration) -> UUID:
        return self.register_many_enterprises([registration], _single=True).created[0][1]

    def register_many_enterprises(self, registrations: Sequence[EnterpriseRegistration],
                                  progress: Progress | None = None, *,
                                  _single: bool = False) -> BulkResult:
        """Validate all, then save in one transaction; competitors may refer to
        enterprises in the same batch by credit code."""
        self._check_bulk_size(registrations)
        total = len(registrations)
        valid: list[tuple[int, ValidEnterprise, UUID]] = []
        problems: list[Problem] = []
        by_code: dict[str, int] = {}
        for index, raw in enumerate(registrations):
            parsed, found = validate_enterprise(raw)
            problems += [p.at(index) for p in found]
            if parsed is not None:
                if parsed.credit_code in by_code:
                    problems.append(Problem("credit_code", raw.credit_code, "unique_in_batch",
                                            f"same credit code as item {by_code[parsed.credit_code]}"
                                            " / 统一社会信用代码重复", index))
                else:
                    by_code[parsed.credit_code] = index
                    valid.append((index, parsed, reservation_id(credit_code_key(parsed.credit_code))))
            if progress and index % 500 == 0:
                progress(index, total)
        if problems:
            raise ValidationError(problems)
        held, _ = self._reservation_states([key for _, _, key in valid])
        owners = self.recorder.directory_by_natural_keys("enterprise", held) if held else {}
        new_ids = {e.credit_code: uuid4() for _, e, key in valid if key not in held}
        industries_by_ref = {e.credit_code: e.industry for _, e, _ in valid}
        result = BulkResult()
        pending: list[tuple[int, ValidEnterprise, UUID]] = []
        for index, parsed, key in valid:
            if key in held:
                owner = owners.get(key, {}).get("id")
                if _single:
                    raise Conflict("duplicate_credit_code",
                                   f"credit code {parsed.credit_code} is already registered "
                                   f"(enterprise {owner}) / 统一社会信用代码已登记")
                result.unchanged.append((index, owner))
            else:
                pending.append((index, parsed, key))
        competitor_ids = self._resolve_competitors(pending, new_ids, industries_by_ref)
        aggregates: list[Any] = []
        effects = SideEffects()
        for index, parsed, key in pending:
            enterprise = Enterprise(
                id=new_ids[parsed.credit_code], unit=parsed.unit, name=parsed.name,
                credit_code=parsed.credit_code, industry=parsed.industry, size=parsed.size,
                little_giant=parsed.little_giant, unionised=parsed.unionised,
                competitors=[str(c) for c in competitor_ids[index]])
            reservation = Reservation(key=credit_code_key(parsed.credit_code))
            aggregates += [enterprise, reservation]
            effects.directory += [views.enterprise_row(enterprise, key),
                                  views.reservation_row(reservation)]
            result.created.append((index, enterprise.id))
        if aggregates:
            self._save(aggregates, effects, conflict_rule="duplicate_credit_code")
        if progress:
            progress(total, total)
        return result

    def _resolve_competitors(self, pending: list[tuple[int, ValidEnterprise, UUID]],
                             new_ids: dict[str, UUID],
                             industries_by_ref: dict[str, str]) -> dict[int, list[UUID]]:
        """Map competitor references to ids; each must exist and share the division."""
        problems: list[Problem] = []
        resolved: dict[int, list[UUID]] = {}
        existing_codes = [r for _, e, _ in pending for r in e.competitors
                          if isinstance(r, str) and r not in new_ids]
        by_code = self._enterprises_by_code(existing_codes)
        for index, parsed, _ in pending:
            ids: list[UUID] = []
            for n, ref in enumerate(parsed.competitors):
                where = f"competitors[{n}]"
                if isinstance(ref, str) and ref in new_ids:
                    competitor_id, industry = new_ids[ref], industries_by_ref[ref]
                else:
                    competitor = by_code.get(ref) if isinstance(ref, str) else self._find(Enterprise, ref)
                    if competitor is None:
                        problems.append(Problem(where, str(ref), "competitor_exists",
                                                f"competitor {ref} is not registered / 竞争企业未登记",
                                                index))
                        continue
                    competitor_id, industry = competitor.id, competitor.industry
                if industry != parsed.industry:
                    problems.append(Problem(where, str(ref), "competitor_industry",
                                            f"competitor is in {industry}, not {parsed.industry} "
                                            "/ 竞争企业须属同一行业大类", index))
                elif competitor_id not in ids:
                    ids.append(competitor_id)
            resolved[index] = ids
        if problems:
            raise ValidationError(problems)
        return resolved

    def _enterprises_by_code(self, codes: list[str]) -> dict[str, Enterprise]:
        found: dict[str, Enterprise] = {}
        keys = {reservation_id(credit_code_key(c)): c for c in codes}
        if keys:
            rows = self.recorder.directory_by_natural_keys("enterprise", keys)
            for key, row in rows.items():
                found[keys[key]] = self.repository.get(row["id"])
        return found

    def mark_enterprise_unionised(self, enterprise_id: UUID | str) -> None:
        enterprise = self._get(Enterprise, enterprise_id, "enterprise")
        enterprise.mark_unionised()
        self._save([enterprise], SideEffects(directory=[views.enterprise_row(enterprise)]))

    def add_competitor(self, enterprise_id: UUID | str, competitor_id: UUID | str) -> None:
        enterprise = self._get(Enterprise, enterprise_id, "enterprise")
        competitor = self._get(Enterprise, competitor_id, "enterprise")
        enterprise.add_competitor(competitor)
        self._save([enterprise], SideEffects(directory=[views.enterprise_row(enterprise)]))

    # Queries -----------------------------------------------------------------

    def get_volunteer(self, volunteer_id: UUID | str) -> dict[str, Any]:
        volunteer = self._get(Volunteer, volunteer_id, "volunteer")
        return {"id": volunteer.id, "unit": volunteer.unit, "status": volunteer.status,
                **views.volunteer_summary(volunteer),
                "personal": self._open_personal(volunteer)}

    def get_team(self, team_id: UUID | str) -> dict[str, Any]:
        team = self._get(ServiceTeam, team_id, "team")
        return {"id": team.id, "unit": team.unit, **views.team_summary(team)}

    def get_enterprise(self, enterprise_id: UUID | str) -> dict[str, Any]:
        enterprise = self._get(Enterprise, enterprise_id, "enterprise")
        return {"id": enterprise.id, "unit": enterprise.unit, **views.enterprise_summary(enterprise)}

    def list_volunteers(self, *, unit: str | None = None, tag: str | None = None,
                        status: str | None = None, after: int = 0,
                        limit: int = 50) -> views.Page[dict[str, Any]]:
        """Volunteers with personal fields decrypted (``None`` once erased); phone and ID
        numbers masked, as a listing shows many people at once (``get_volunteer`` has them whole)."""
        problems: list[Problem] = []
        if tag is not None:
            tags, problems = check_tags([tag], "tag")
            tag = tags[0] if tags else tag
        if status not in (None, ACTIVE, SUSPENDED, WITHDRAWN):
            problems.append(Problem("status", status, "known_status",
                                    "status must be active, suspended or withdrawn"))
        rows = self._page("volunteer", unit, status, tag, after, limit, problems)
        keys = self._data_keys([r["id"] for r in rows if r["sealed"]])
        items = []
        for row in rows:
            key = keys.get(row["id"])
            personal = (self.sealer.open(row["id"], key, row["sealed"])
                        if key is not None and row["sealed"] else None)
            items.append({"id": row["id"], "unit": row["unit"], "status": row["status"],
                          **row["summary"], "personal": views.masked(personal)})
        return self._page_of(items, rows, limit)

    def list_teams(self, *, unit: str | None = None, after: int = 0,
                   limit: int = 50) -> views.Page[dict[str, Any]]:
        rows = self._page("team", unit, None, None, after, limit, [], allow_city=True)
        return self._page_of([{"id": r["id"], "unit": r["unit"], **r["summary"]} for r in rows],
                             rows, limit)

    def list_enterprises(self, *, unit: str | None = None, after: int = 0,
                         limit: int = 50) -> views.Page[dict[str, Any]]:
        rows = self._page("enterprise", unit, None, None, after, limit, [])
        return self._page_of([{"id": r["id"], "unit": r["unit"], **r["summary"]} for r in rows],
                             rows, limit)

    @staticmethod
    def list_units() -> list[dict[str, Any]]:
        return [{"code": u.code, "name": u.name, "kind": u.kind,
                 "quotas": {str(p): dict(q) for p, q in u.quotas.items()}} for u in units.UNITS]

    @staticmethod
    def list_expertise_tags() -> list[dict[str, str]]:
        return [{"id": t.id, "label": t.label, "group": t.group} for t in TAGS]

    @staticmethod
    def list_industries() -> list[dict[str, str]]:
        return [{"code": code, "section": code[0], "section_name": industries.SECTIONS[code[0]],
                 "name": name} for code, name in industries.DIVISIONS.items()]

    # Internals ---------------------------------------------------------------

    def _page(self, kind: str, unit: str | None, status: str | None, tag: str | None,
              after: int, limit: int, problems: list[Problem],
              allow_city: bool = False) -> list[dict[str, Any]]:
        if unit is not None and not (allow_city and unit == CITY_TEAM_UNIT):
            code, found = units.check_unit(unit)
            problems += found
            unit = code
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            problems.append(Problem("limit", limit, "page_size", f"limit must be 1..{MAX_PAGE}"))
        if not isinstance(after, int) or after < 0:
            problems.append(Problem("after", after, "cursor", "after must be a cursor >= 0"))
        if problems:
            raise ValidationError(problems)
        return self.recorder.directory_page(kind, unit=unit, status=status, tag=tag,
                                            after=after, limit=limit)

    @staticmethod
    def _page_of(items: list[Any], rows: list[dict[str, Any]], limit: int) -> views.Page[Any]:
        return views.Page(items, rows[-1]["position"] if len(rows) == limit else None)

    def _data_keys(self, ids: list[UUID]) -> dict[UUID, bytes]:
        wrapped = self.recorder.load_wrapped_keys(ids) if ids else {}
        return {vid: self.sealer.unwrap(vid, w) for vid, w in wrapped.items()}

    def _open_personal(self, volunteer: Volunteer) -> dict[str, Any] | None:
        if volunteer.sealed_personal is None:
            return None
        key = self._data_keys([volunteer.id]).get(volunteer.id)
        return None if key is None else self.sealer.open(volunteer.id, key, volunteer.sealed_personal)

    def _reservation_states(self, ids: list[UUID]) -> tuple[set[UUID], set[UUID]]:
        rows = self.recorder.directory_statuses("reservation", ids) if ids else {}
        return ({i for i, s in rows.items() if s == "held"},
                {i for i, s in rows.items() if s == "released"})

    def _take_reservation(self, key: str, released: set[UUID]) -> Reservation:
        if reservation_id(key) in released:
            reservation: Reservation = self.repository.get(reservation_id(key))
            reservation.retake()
            return reservation
        return Reservation(key=key)

    def _find(self, cls: type, ident: Any) -> Any:
        try:
            aggregate = self.repository.get(ident)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    def _get(self, cls: type, ident: UUID | str, kind: str) -> Any:
        aggregate = self._find(cls, _as_uuid(ident, f"{kind}_id"))
        if aggregate is None:
            raise NotFound(kind, ident)
        return aggregate

    def _check_bulk_size(self, items: Sequence[Any]) -> None:
        if len(items) > MAX_BULK:
            raise ValidationError([Problem("items", len(items), "max_items",
                                           f"at most {MAX_BULK} items per bulk command")])

    def _save(self, aggregates: list[Any], effects: SideEffects,
              conflict_rule: str = "concurrent_change") -> None:
        try:
            self.save(*aggregates, side_effects=effects)
        except IntegrityError as exc:
            # Another command saved a conflicting event first (same natural key
            # or same aggregate version); nothing of this command was stored.
            raise Conflict(conflict_rule, "the registry changed concurrently or the key is "
                           "already taken; nothing was stored, please retry / 并发冲突，未保存") from exc
