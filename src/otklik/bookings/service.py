"""Rules of the bookings domain: services and installers, free slots, booking a visit without double booking,
reschedule/cancel, the signed customer links, the day-before reminder, «Всё ли удобно?» and the late-service
penalty. It never renders a page and never speaks a channel's protocol (messages go through
`conversations.service.reply`).

- A slot is `duration` of one working interval of the installer's business calendar (calendars domain), on a
  half-hour grid, free of the installer's other visits, in the future. A visit never spans a lunch break.
- A booked visit holds its half-hour cells (`BookingCell`, primary key installer + start): a second booking of
  any of them fails on the database's unique key, on SQLite and PostgreSQL alike, whatever the timing (409).
- A visit not marked done by the end of its day (the installer's time zone) becomes missed; from the next day the
  late-service penalty of ЗоЗПП ст. 28 п. 5 accrues: 3 % of the service's price a day, at most the price.
"""

from __future__ import annotations

import datetime as dt
import hmac
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otklik.accounts.models import Role, User
from otklik.accounts.service import Actor, record_audit
from otklik.bookings.models import Booking, BookingCell, BookingService, Installer
from otklik.calendars import service as calendars
from otklik.calendars.models import Calendar
from otklik.conversations import service as conversations
from otklik.conversations.models import AuthorKind, Conversation
from otklik.customers.models import Customer
from otklik.platform.config import get_settings
from otklik.platform.crypto import signature
from otklik.platform.db import utcnow
from otklik.platform.errors import Conflict, DomainError, NotFound, field_error

log = logging.getLogger(__name__)

KINDS = ("assembly", "installation", "connection")
STATUSES = ("booked", "done", "missed", "cancelled")
CELL = 30 * 60  # seconds: the grid visits start on and hold time in
MAX_DURATION_MINUTES = 12 * 60
MAX_RANGE_DAYS = 62  # one slot search covers at most two months
MAX_SERVICES = MAX_INSTALLERS = 500  # per workspace
OFFER_COUNT = 3  # an agent (or the link) offers three slots: a choice, not a list to read
PUBLIC_DAYS = 14  # the customer's page shows the next two weeks
# ЗоЗПП ст. 28 п. 5 (../shared/CONSUMER_LAW.md): for late work or service the seller pays a penalty of 3 % of the
# price of the service for every day of delay, from the agreed date, at most the price of the service.
LATE_SERVICE_PENALTY_PER_DAY = Decimal("0.03")
REMINDER_HOUR = 12  # local time on the day before the visit
LOW_SCORE = 2  # «Всё ли удобно?» answered 1–2 opens a follow-up task (as a low CSAT does)
LINK_TTL = dt.timedelta(days=30)
OFFER_PURPOSE, BOOKING_PURPOSE = "booking-offer", "booking-link"
MONEY_STEP = Decimal("0.01")

KIND_WORD = {"ru": {"assembly": "сборщик", "installation": "мастер по установке", "connection": "мастер по подключению"},
             "en": {"assembly": "assembler", "installation": "installer", "connection": "technician"}}
REMINDER = {"ru": "Напоминаем: завтра, {day}, с {start} до {end} приедет {who} ({service}).{address} "
                  "Перенести или отменить визит: {link}",
            "en": "A reminder: tomorrow, {day}, from {start} to {end} the {who} comes ({service}).{address} "
                  "To reschedule or cancel: {link}"}
CONFIRMED = {"ru": "Записали вас: {day}, с {start} до {end} — {service}.{address} Перенести или отменить: {link}",
             "en": "You are booked: {day}, from {start} to {end} — {service}.{address} To reschedule or cancel: "
                   "{link}"}
OFFER_TEXT = {"ru": "Можем приехать ({service}):\n{slots}\nВыберите удобное время: {link}",
              "en": "We can come ({service}):\n{slots}\nPick the time that suits you: {link}"}
QUESTION = {"ru": "Всё ли удобно? Как прошёл визит ({service})? Оцените от 1 до 5:\n{links}",
            "en": "Was everything all right? How was the visit ({service})? Rate it from 1 to 5:\n{links}"}
ADDRESS = {"ru": " Адрес: {a}.", "en": " Address: {a}."}


def _lang(language: str | None) -> str:
    return "en" if (language or "").lower().startswith("en") else "ru"


def money(value: Decimal) -> float:
    return float(value.quantize(MONEY_STEP))


def _price(value: Any, field: str = "price") -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise field_error(field, "a sum in roubles, e.g. 1500 or 1499.90")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise field_error(field, "a sum in roubles, e.g. 1500 or 1499.90") from None
    if not price.is_finite() or price < 0 or price > Decimal("10000000"):
        raise field_error(field, "from 0 to 10,000,000")
    return price.quantize(MONEY_STEP, ROUND_HALF_UP)


def _plain(text: str, field: str) -> str:
    """Refuse control characters (a NUL PostgreSQL cannot store, a line break in a one-line name)."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise field_error(field, "must not contain control characters")
    return text


def _name(value: Any, field: str = "name", limit: int = 120) -> str:
    text = _plain(str(value or "").strip() if isinstance(value, str | int) else "", field)
    if not text:
        raise field_error(field, "must not be empty")
    if len(text) > limit:
        raise field_error(field, f"at most {limit} characters")
    return text


def norm_area(value: Any) -> str:
    return " ".join(str(value or "").lower().replace("ё", "е").split())[:120]


# -- services -----------------------------------------------------------------------------------------------------


def list_services(session: Session, workspace_id: int, *, active_only: bool = False) -> Sequence[BookingService]:
    stmt = select(BookingService).where(BookingService.workspace_id == workspace_id)
    if active_only:
        stmt = stmt.where(BookingService.active.is_(True))
    return session.scalars(stmt.order_by(BookingService.id)).all()


def get_service(session: Session, workspace_id: int, service_id: int, field: str | None = None) -> BookingService:
    row = session.get(BookingService, service_id)
    if row is None or row.workspace_id != workspace_id:
        if field:
            raise field_error(field, f"service {service_id} not found")
        raise NotFound(f"service {service_id} not found")
    return row


def _apply_service(row: BookingService, data: dict[str, Any]) -> None:
    if "name" in data:
        row.name = _name(data["name"])
    if "kind" in data:
        if data["kind"] not in KINDS:
            raise field_error("kind", f"one of {', '.join(KINDS)}")
        row.kind = data["kind"]
    if "duration_minutes" in data:
        d = data["duration_minutes"]
        if isinstance(d, bool) or not isinstance(d, int) or not 30 <= d <= MAX_DURATION_MINUTES or d % 30:
            raise field_error("duration_minutes", f"whole half-hours from 30 to {MAX_DURATION_MINUTES}")
        row.duration_minutes = d
    if "price" in data:
        row.price = _price(data["price"])
    if "active" in data:
        row.active = bool(data["active"])


def _check_name_free(session: Session, model: type[BookingService] | type[Installer],
                     row: BookingService | Installer, what: str) -> None:
    """Names are unique in a workspace: a 422 naming `name` when another row of `model` has it."""
    taken = select(model.id).where(model.workspace_id == row.workspace_id, model.name == row.name)
    if row.id is not None:
        taken = taken.where(model.id != row.id)
    if session.scalar(taken):
        raise field_error("name", f"{what} named {row.name!r} exists")


def create_service(session: Session, actor: Actor, data: dict[str, Any]) -> BookingService:
    actor.require(Role.supervisor)
    if len(list_services(session, actor.workspace_id)) >= MAX_SERVICES:
        raise Conflict(f"a workspace has at most {MAX_SERVICES} services")
    for field in ("name", "kind", "duration_minutes", "price"):
        if data.get(field) is None:
            raise field_error(field, "required")
    row = BookingService(workspace_id=actor.workspace_id, active=True)
    _apply_service(row, data)
    _check_name_free(session, BookingService, row, "a service")
    session.add(row)
    session.flush()
    record_audit(session, actor, entity_type="booking_service", entity_id=row.id, action="created",
                 after=service_out(row))
    return row


def update_service(session: Session, actor: Actor, service_id: int, data: dict[str, Any]) -> BookingService:
    actor.require(Role.supervisor)
    row = get_service(session, actor.workspace_id, service_id)
    _apply_service(row, data)
    _check_name_free(session, BookingService, row, "a service")
    return row


def service_out(row: BookingService) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "kind": row.kind, "duration_minutes": row.duration_minutes,
            "price": money(row.price), "active": row.active}


# -- installers ---------------------------------------------------------------------------------------------------


def list_installers(session: Session, workspace_id: int) -> Sequence[Installer]:
    return session.scalars(select(Installer).where(Installer.workspace_id == workspace_id)
                           .order_by(Installer.id)).all()


def get_installer(session: Session, workspace_id: int, installer_id: int, field: str | None = None) -> Installer:
    row = session.get(Installer, installer_id)
    if row is None or row.workspace_id != workspace_id:
        if field:
            raise field_error(field, f"installer {installer_id} not found")
        raise NotFound(f"installer {installer_id} not found")
    return row


def _apply_installer(session: Session, row: Installer, data: dict[str, Any]) -> None:
    ws = row.workspace_id
    if "name" in data:
        row.name = _name(data["name"])
    if "user_id" in data:
        user_id = data["user_id"]
        if user_id is not None:
            user = session.get(User, user_id) if isinstance(user_id, int) and not isinstance(user_id, bool) \
                else None
            if user is None or user.workspace_id != ws:
                raise field_error("user_id", f"user {str(user_id)[:20]} not found in this workspace")
        row.user_id = user_id
    if "contractor" in data:
        row.contractor = _plain(str(data["contractor"] or "").strip()[:200], "contractor")
    if "phone" in data:
        row.phone = _plain(str(data["phone"] or "").strip()[:32], "phone")
    if "calendar_id" in data:
        cid = data["calendar_id"]
        cal = session.get(Calendar, cid) if isinstance(cid, int) and not isinstance(cid, bool) else None
        if cal is None or cal.workspace_id != ws:
            raise field_error("calendar_id", f"calendar {str(cid)[:20]} not found in this workspace")
        row.calendar_id = cal.id
    if "areas" in data:
        areas = data["areas"] or []
        if not isinstance(areas, list) or len(areas) > 100:
            raise field_error("areas", "a list of at most 100 city/zone names")
        out: list[str] = []
        for i, a in enumerate(areas):
            if not isinstance(a, str) or not norm_area(a):
                raise field_error(f"areas.{i}", "a city or zone name")
            _plain(a, f"areas.{i}")
            if norm_area(a) not in out:
                out.append(norm_area(a))
        row.areas = out
    if "service_ids" in data:
        ids = data["service_ids"] or []
        if not isinstance(ids, list) or len(ids) > MAX_SERVICES:
            raise field_error("service_ids", "a list of service ids (empty: every service)")
        for i, sid in enumerate(ids):
            if isinstance(sid, bool) or not isinstance(sid, int):
                raise field_error(f"service_ids.{i}", "a service id")
            get_service(session, ws, sid, field=f"service_ids.{i}")
        row.service_ids = sorted(set(ids))
    if "active" in data:
        row.active = bool(data["active"])


def create_installer(session: Session, actor: Actor, data: dict[str, Any]) -> Installer:
    actor.require(Role.supervisor)
    if len(list_installers(session, actor.workspace_id)) >= MAX_INSTALLERS:
        raise Conflict(f"a workspace has at most {MAX_INSTALLERS} installers")
    for field in ("name", "calendar_id"):
        if data.get(field) is None:
            raise field_error(field, "required")
    row = Installer(workspace_id=actor.workspace_id, contractor="", phone="", areas=[], service_ids=[], active=True)
    _apply_installer(session, row, data)
    _check_name_free(session, Installer, row, "an installer")
    session.add(row)
    session.flush()
    record_audit(session, actor, entity_type="installer", entity_id=row.id, action="created",
                 after=installer_out(row))
    return row


def update_installer(session: Session, actor: Actor, installer_id: int, data: dict[str, Any]) -> Installer:
    actor.require(Role.supervisor)
    row = get_installer(session, actor.workspace_id, installer_id)
    _apply_installer(session, row, data)
    _check_name_free(session, Installer, row, "an installer")
    return row


def installer_out(row: Installer) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "user_id": row.user_id, "contractor": row.contractor,
            "phone": row.phone, "calendar_id": row.calendar_id, "areas": list(row.areas or []),
            "service_ids": list(row.service_ids or []), "active": row.active}


def serves(installer: Installer, service_id: int, area: str | None) -> bool:
    if not installer.active:
        return False
    if installer.service_ids and service_id not in installer.service_ids:
        return False
    return not area or not installer.areas or norm_area(area) in installer.areas


# -- free slots ---------------------------------------------------------------------------------------------------


SlotRow = tuple[int, int, int]  # (start, installer id, end): what a search returns, thousands at a time


class Slot(NamedTuple):
    """A free (or offered) visit: a tuple, so tens of thousands are cheap to make and sort (by start, then
    installer)."""

    start: int  # UTC epoch seconds
    installer_id: int
    end: int

    @property
    def start_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.start, dt.UTC)

    @property
    def end_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.end, dt.UTC)


def _ceil_cell(ts: int) -> int:
    return -(-ts // CELL) * CELL


def check_range(start: dt.datetime, end: dt.datetime) -> None:
    if end <= start:
        raise field_error("to", "must be after from")
    if end - start > dt.timedelta(days=MAX_RANGE_DAYS):
        raise field_error("to", f"a search covers at most {MAX_RANGE_DAYS} days")
    if not 1972 <= start.astimezone(dt.UTC).year <= 2198:
        raise field_error("from", "out of the years a calendar counts")


def find_slots(session: Session, workspace_id: int, service: BookingService, start: dt.datetime,
               end: dt.datetime, *, area: str | None = None, installer_id: int | None = None,
               now: dt.datetime | None = None, exclude_booking_id: int | None = None) -> list[SlotRow]:
    """Every free slot for `service` starting in [start, end), earliest first (installer id breaks ties).

    Three queries (installers, their calendars, their visits in the range); the rest is arithmetic on the
    calendars' cached working intervals."""
    check_range(start, end)
    lo = max(int(start.timestamp()), int((now or utcnow()).timestamp()))
    hi = int(end.timestamp())
    duration = service.duration_minutes * 60
    # plain rows, not ORM objects: this runs for every search, over every installer of the workspace
    stmt = select(Installer.id, Installer.calendar_id, Installer.areas, Installer.service_ids).where(
        Installer.workspace_id == workspace_id, Installer.active.is_(True))
    if installer_id is not None:
        stmt = stmt.where(Installer.id == installer_id)
    wanted = norm_area(area) if area else ""
    team = [(iid, cal_id) for iid, cal_id, areas, services in session.execute(stmt.order_by(Installer.id))
            if (not services or service.id in services) and (not wanted or not areas or wanted in areas)]
    if not team or lo >= hi:
        return []
    # the working intervals of each calendar once (installers share a few calendars)
    hours = {c.id: calendars.engine_of(c).intervals(lo, hi + duration) for c in session.scalars(
        select(Calendar).where(Calendar.id.in_({cal_id for _, cal_id in team})))}
    busy: dict[int, list[tuple[int, int]]] = {iid: [] for iid, _ in team}
    # epoch-second columns: reading 2,000 visits as datetimes costs more than the rest of the search
    visits = select(Booking.installer_id, Booking.start_ts, Booking.end_ts).where(
        Booking.workspace_id == workspace_id, Booking.installer_id.in_(busy), Booking.status != "cancelled",
        Booking.start_ts < hi + duration, Booking.end_ts > lo)
    if exclude_booking_id is not None:
        visits = visits.where(Booking.id != exclude_booking_id)
    for iid, visit_start, visit_end in session.connection().execute(visits):  # Core: no ORM row overhead
        busy[iid].append((visit_start, visit_end))
    out: list[SlotRow] = []
    first = _ceil_cell(lo)
    for iid, cal_id in team:
        if cal_id not in hours:
            continue
        taken = sorted(busy[iid])
        n, k = len(taken), 0
        # a slot starts in [lo, hi) and ends inside one working interval, in a gap between visits: each gap
        # gives the half-hour starts from its beginning to its end less the duration
        for s, e in hours[cal_id]:
            cursor = max(_ceil_cell(s), first)
            while k < n and taken[k][1] <= cursor:
                k += 1
            j = k
            while True:
                gap_end = min(taken[j][0], e) if j < n else e
                last = min(gap_end - duration, hi - 1)
                if last >= cursor:
                    starts = range(cursor, last + 1, CELL)  # zip/range/repeat: no Python call per slot
                    out.extend(zip(starts, itertools.repeat(iid), range(cursor + duration, last + 1 + duration, CELL)))
                if j >= n or taken[j][0] >= e:
                    break
                cursor = max(cursor, _ceil_cell(taken[j][1]))
                j += 1
    out.sort()
    return out


def distinct_times(slots: Sequence[SlotRow]) -> list[SlotRow]:
    """One slot per start time (the first installer free then): what a customer chooses from."""
    out: list[SlotRow] = []
    for slot in slots:
        if not out or out[-1][0] != slot[0]:
            out.append(slot)
    return out


def offer(slots: Sequence[SlotRow], time_zone: str, count: int = OFFER_COUNT) -> list[Slot]:
    """`count` slots to offer: the earliest, then the earliest of each following day (a real choice of days),
    then, if there are fewer days, the next times of the days already offered."""
    zone = ZoneInfo(time_zone)
    chosen: list[SlotRow] = []
    days: set[dt.date] = set()
    times = distinct_times(slots)
    for slot in times:
        day = dt.datetime.fromtimestamp(slot[0], zone).date()
        if day not in days:
            days.add(day)
            chosen.append(slot)
            if len(chosen) == count:
                return [Slot._make(c) for c in chosen]
    for slot in times:
        if slot not in chosen and all(abs(slot[0] - c[0]) >= slot[2] - slot[0] for c in chosen):
            chosen.append(slot)
            if len(chosen) == count:
                break
    return [Slot._make(c) for c in sorted(chosen)]


def workspace_time_zone(session: Session, workspace_id: int) -> str:
    cal = calendars.default_calendar(session, workspace_id)
    if cal is not None:
        return cal.time_zone
    from otklik.accounts.models import Workspace

    ws = session.get(Workspace, workspace_id)
    return ws.timezone if ws is not None and ws.timezone else "Europe/Moscow"


# -- booking ------------------------------------------------------------------------------------------------------


def get_booking(session: Session, workspace_id: int, booking_id: int, *, for_update: bool = False) -> Booking:
    stmt = select(Booking).where(Booking.id == booking_id, Booking.workspace_id == workspace_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is None:
        raise NotFound(f"booking {booking_id} not found")
    return row


def _fits(session: Session, installer: Installer, start: int, end: int) -> bool:
    cal = session.get(Calendar, installer.calendar_id)
    if cal is None:
        return False
    return any(s <= start and end <= e for s, e in calendars.engine_of(cal).intervals(start - 1, end + 1))


def _hold(session: Session, booking: Booking) -> None:
    """Take the booking's cells; a cell another booking holds is a 409 (checked first for a clear message, then
    enforced by the primary key when two requests race past the check)."""
    start, end = int(booking.start_at.timestamp()), int(booking.end_at.timestamp())
    cells = [dt.datetime.fromtimestamp(t, dt.UTC) for t in range(start, end, CELL)]
    if session.scalar(select(BookingCell.booking_id).where(BookingCell.installer_id == booking.installer_id,
                                                           BookingCell.starts_at.in_(cells)).limit(1)):
        raise Conflict("this time is already booked; choose another slot", code="slot_taken")
    session.add_all(BookingCell(installer_id=booking.installer_id, starts_at=c, booking_id=booking.id,
                                workspace_id=booking.workspace_id) for c in cells)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict("this time was booked a moment ago; choose another slot", code="slot_taken") from None


def _release(session: Session, booking: Booking) -> None:
    session.execute(delete(BookingCell).where(BookingCell.booking_id == booking.id))


def _pick_installer(session: Session, workspace_id: int, service: BookingService, start: dt.datetime,
                    area: str | None, exclude_booking_id: int | None = None) -> int:
    free = find_slots(session, workspace_id, service, start, start + dt.timedelta(seconds=1), area=area,
                      exclude_booking_id=exclude_booking_id)
    if not free:
        raise Conflict("nobody is free at this time; choose another slot", code="slot_taken")
    return free[0][1]


def _check_start(value: Any, now: dt.datetime) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise field_error("start", "an ISO 8601 date-time with a UTC offset")
    if value.tzinfo is None:
        raise field_error("start", "needs a UTC offset (e.g. 2026-12-10T10:00:00+03:00)")
    if int(value.timestamp()) % CELL:
        raise field_error("start", "visits start on the hour or the half hour")
    if value <= now:
        raise field_error("start", "is in the past")
    if not 1972 <= value.astimezone(dt.UTC).year <= 2198:
        raise field_error("start", "out of the years a calendar counts")
    return value.astimezone(dt.UTC)


def book(session: Session, actor: Actor, *, service_id: int, start: dt.datetime, customer_id: int,
         installer_id: int | None = None, conversation_id: int | None = None, area: str = "", address: str = "",
         order_number: str = "", created_by: str = "agent", now: dt.datetime | None = None,
         confirm: bool = False) -> Booking:
    """Book a visit. `installer_id` None: the first installer free then (the customer's page). `confirm`: post
    the confirmation with the customer's link into the conversation."""
    now = now or utcnow()
    ws = actor.workspace_id
    if isinstance(service_id, bool) or not isinstance(service_id, int):
        raise field_error("service_id", "a service id")
    service = get_service(session, ws, service_id, field="service_id")
    if not service.active:
        raise field_error("service_id", "this service is switched off")
    start = _check_start(start, now)
    customer = session.get(Customer, customer_id) if isinstance(customer_id, int) else None
    if customer is None or customer.workspace_id != ws:
        raise field_error("customer_id", f"customer {str(customer_id)[:20]} not found")
    conversation = None
    if conversation_id is not None:
        conversation = session.get(Conversation, conversation_id) if isinstance(conversation_id, int) else None
        if conversation is None or conversation.workspace_id != ws:
            raise field_error("conversation_id", f"conversation {str(conversation_id)[:20]} not found")
        if conversation.customer_id != customer.id:
            raise field_error("conversation_id", "is another customer's conversation")
    if len(address) > 500:
        raise field_error("address", "at most 500 characters")
    _plain(address, "address")
    _plain(area, "area")
    _plain(order_number, "order_number")
    if installer_id is None:
        installer_id = _pick_installer(session, ws, service, start, area)
    installer = get_installer(session, ws, installer_id, field="installer_id")
    if not serves(installer, service.id, area):
        raise field_error("installer_id" if not area else "area",
                          "this installer does not do this service in this area")
    end = start + dt.timedelta(minutes=service.duration_minutes)
    if not _fits(session, installer, int(start.timestamp()), int(end.timestamp())):
        raise field_error("start", "outside the installer's working hours")
    cal = session.get(Calendar, installer.calendar_id)
    row = Booking(workspace_id=ws, service_id=service.id, installer_id=installer.id, customer_id=customer.id,
                  conversation_id=conversation.id if conversation else None, order_number=order_number[:64],
                  area=norm_area(area), address=address.strip(), start_at=start, end_at=end,
                  start_ts=int(start.timestamp()), end_ts=int(end.timestamp()),
                  time_zone=cal.time_zone if cal else "Europe/Moscow", price=service.price, status="booked",
                  reschedules=0, created_by=created_by, meta={}, created_at=now, updated_at=now,
                  feedback_comment="")
    session.add(row)
    session.flush()
    _hold(session, row)
    record_audit(session, actor, entity_type="booking", entity_id=row.id, action="created",
                 after={"start": start.isoformat(), "installer_id": installer.id, "service_id": service.id})
    if confirm:
        _say(session, row, CONFIRMED, now=now)
    return row


def reschedule(session: Session, actor: Actor, booking_id: int, *, start: dt.datetime,
               installer_id: int | None = None, now: dt.datetime | None = None) -> Booking:
    """Move a booked (or missed) visit to another free slot; a missed one keeps its missed day (the penalty)."""
    now = now or utcnow()
    row = get_booking(session, actor.workspace_id, booking_id, for_update=True)
    if row.status not in ("booked", "missed"):
        raise Conflict(f"a {row.status} visit cannot be moved", code="not_movable")
    start = _check_start(start, now)
    service = get_service(session, actor.workspace_id, row.service_id)
    _release(session, row)
    session.flush()
    if installer_id is None:
        installer_id = _pick_installer(session, actor.workspace_id, service, start, row.area or None,
                                       exclude_booking_id=row.id)
    installer = get_installer(session, actor.workspace_id, installer_id, field="installer_id")
    end = start + dt.timedelta(minutes=service.duration_minutes)
    if not serves(installer, service.id, row.area or None):
        raise field_error("installer_id", "this installer does not do this service in this area")
    if not _fits(session, installer, int(start.timestamp()), int(end.timestamp())):
        raise field_error("start", "outside the installer's working hours")
    before = row.start_at.isoformat()
    row.installer_id, row.start_at, row.end_at = installer.id, start, end
    row.start_ts, row.end_ts = int(start.timestamp()), int(end.timestamp())
    row.status, row.reminded_at, row.reschedules, row.updated_at = "booked", None, row.reschedules + 1, now
    _hold(session, row)
    record_audit(session, actor, entity_type="booking", entity_id=row.id, action="rescheduled",
                 before={"start": before}, after={"start": start.isoformat(), "installer_id": installer.id})
    return row


def cancel(session: Session, actor: Actor, booking_id: int, *, now: dt.datetime | None = None) -> Booking:
    row = get_booking(session, actor.workspace_id, booking_id, for_update=True)
    if row.status == "cancelled":
        return row
    if row.status == "done":
        raise Conflict("a visit that took place cannot be cancelled", code="not_cancellable")
    _release(session, row)
    row.status, row.updated_at = "cancelled", now or utcnow()
    record_audit(session, actor, entity_type="booking", entity_id=row.id, action="cancelled")
    return row


def mark(session: Session, actor: Actor, booking_id: int, status: str, *, now: dt.datetime | None = None
         ) -> Booking:
    """The installer's report: `done` (the visit took place) or `missed` (it did not: the penalty starts)."""
    now = now or utcnow()
    if status not in ("done", "missed"):
        raise field_error("status", "done or missed")
    row = get_booking(session, actor.workspace_id, booking_id, for_update=True)
    if row.status == "cancelled":
        raise Conflict("the visit was cancelled", code="cancelled")
    if status == "done":
        if row.start_at > now:
            raise field_error("status", "a visit that has not started cannot be done")
        row.status, row.done_at = "done", now
    else:
        row.status = "missed"
        row.missed_on = row.missed_on or local_day(row).isoformat()
    row.updated_at = now
    record_audit(session, actor, entity_type="booking", entity_id=row.id, action=status)
    return row


def local_day(row: Booking, moment: dt.datetime | None = None) -> dt.date:
    return (moment or row.start_at).astimezone(ZoneInfo(row.time_zone)).date()


def late_penalty(row: Booking, today: dt.date) -> tuple[int, Decimal]:
    """(days of delay, penalty) under ЗоЗПП ст. 28 п. 5: from the day after the agreed (missed) day until the
    visit is done or `today`, 3 % of the service's price a day, at most the price. (0, 0) when not missed."""
    if not row.missed_on:
        return 0, Decimal("0.00")
    until = local_day(row, row.done_at) if row.status == "done" and row.done_at else today
    days = max(0, (until - dt.date.fromisoformat(row.missed_on)).days)
    amount = min(row.price, row.price * LATE_SERVICE_PENALTY_PER_DAY * days)
    return days, amount.quantize(MONEY_STEP, ROUND_HALF_UP)


def booking_out(session: Session, row: Booking, *, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    days, penalty = late_penalty(row, local_day(row, now))
    service = session.get(BookingService, row.service_id)
    installer = session.get(Installer, row.installer_id)
    return {"id": row.id, "status": row.status, "service_id": row.service_id,
            "service": service.name if service else "", "installer_id": row.installer_id,
            "installer": installer.name if installer else "", "customer_id": row.customer_id,
            "conversation_id": row.conversation_id, "order_number": row.order_number, "area": row.area,
            "address": row.address, "start": row.start_at.isoformat(), "end": row.end_at.isoformat(),
            "time_zone": row.time_zone, "price": money(row.price), "reschedules": row.reschedules,
            "missed_on": row.missed_on, "late_days": days, "late_penalty": money(penalty),
            "penalty_rule": "ЗоЗПП ст. 28 п. 5: 3 % of the price a day, at most the price",
            "reminded_at": row.reminded_at.isoformat() if row.reminded_at else None,
            "asked_at": row.asked_at.isoformat() if row.asked_at else None,
            "feedback_score": row.feedback_score, "feedback_comment": row.feedback_comment,
            "link": booking_url(row), "created_by": row.created_by, "created_at": row.created_at.isoformat()}


def bookings_of_customer(session: Session, workspace_id: int, customer_id: int, limit: int = 50
                         ) -> Sequence[Booking]:
    return session.scalars(select(Booking).where(Booking.workspace_id == workspace_id,
                                                 Booking.customer_id == customer_id)
                           .order_by(Booking.start_at.desc()).limit(limit)).all()


def list_bookings(session: Session, workspace_id: int, *, status: str | None = None,
                  start: dt.datetime | None = None, end: dt.datetime | None = None,
                  installer_id: int | None = None, limit: int = 200) -> Sequence[Booking]:
    stmt = select(Booking).where(Booking.workspace_id == workspace_id)
    if status:
        stmt = stmt.where(Booking.status == status)
    if start:
        stmt = stmt.where(Booking.end_at > start)
    if end:
        stmt = stmt.where(Booking.start_at < end)
    if installer_id is not None:
        stmt = stmt.where(Booking.installer_id == installer_id)
    return session.scalars(stmt.order_by(Booking.start_at).limit(limit)).all()


# -- links the customer opens (no sign-in) ------------------------------------------------------------------------


def _base_url() -> str:
    s = get_settings()
    return (s.public_url or f"http://{s.host}:{s.port}").rstrip("/")


def _b64(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


@dataclass(frozen=True)
class OfferLink:
    workspace_id: int
    customer_id: int
    conversation_id: int | None
    service_id: int
    area: str


def offer_token(link: OfferLink, *, now: dt.datetime | None = None) -> str:
    expires = int(((now or utcnow()) + LINK_TTL).timestamp())
    body = (f"{link.workspace_id}.{link.customer_id}.{link.conversation_id or 0}.{link.service_id}.{expires}."
            f"{_b64(link.area)}")
    return f"{body}.{signature(body, purpose=OFFER_PURPOSE)}"


def read_offer_token(token: str, *, now: dt.datetime | None = None) -> OfferLink:
    parts = (token or "")[:400].split(".")
    if len(parts) != 7 or not all(p.isdigit() for p in parts[:5]):
        raise NotFound("this booking link is not valid")
    body = ".".join(parts[:6])
    if not hmac.compare_digest(signature(body, purpose=OFFER_PURPOSE), parts[6]):
        raise NotFound("this booking link is not valid")
    if int(parts[4]) < (now or utcnow()).timestamp():
        raise NotFound("this booking link has expired")
    try:
        area = _unb64(parts[5])
    except ValueError:
        raise NotFound("this booking link is not valid") from None
    return OfferLink(int(parts[0]), int(parts[1]), int(parts[2]) or None, int(parts[3]), area)


def offer_url(link: OfferLink) -> str:
    return f"{_base_url()}/book/{offer_token(link)}"


def _booking_signed(row: Booking, expires: int) -> str:
    return signature(f"{row.id}.{row.workspace_id}.{row.customer_id}.{expires}", purpose=BOOKING_PURPOSE)


def booking_token(row: Booking) -> str:
    """Valid until 30 days after the visit (the question after it uses the same link)."""
    expires = int((max(row.end_at, utcnow()) + LINK_TTL).timestamp())
    return f"{row.id}.{expires}.{_booking_signed(row, expires)}"


def booking_for_token(session: Session, token: str, *, now: dt.datetime | None = None) -> Booking:
    parts = (token or "")[:200].split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise NotFound("this booking link is not valid")
    row = session.get(Booking, int(parts[0]))
    if row is None or not hmac.compare_digest(_booking_signed(row, int(parts[1])), parts[2]):
        raise NotFound("this booking link is not valid")
    if int(parts[1]) < (now or utcnow()).timestamp():
        raise NotFound("this booking link has expired")
    return row


def booking_url(row: Booking) -> str:
    return f"{_base_url()}/booking/{booking_token(row)}"


# -- messages to the customer -------------------------------------------------------------------------------------


def _customer_language(session: Session, row: Booking) -> str:
    conversation = session.get(Conversation, row.conversation_id) if row.conversation_id else None
    customer = session.get(Customer, row.customer_id)
    return _lang((conversation.language if conversation else None) or (customer.language if customer else None))


def _when(row: Booking, lang: str) -> dict[str, str]:
    from babel.dates import format_date

    zone = ZoneInfo(row.time_zone)
    start, end = row.start_at.astimezone(zone), row.end_at.astimezone(zone)
    return {"day": format_date(start.date(), "d MMMM, EEEE", locale=lang), "start": start.strftime("%H:%M"),
            "end": end.strftime("%H:%M")}


def slot_text(slot: Slot, time_zone: str, lang: str) -> str:
    from babel.dates import format_date

    zone = ZoneInfo(time_zone)
    start, end = slot.start_at.astimezone(zone), slot.end_at.astimezone(zone)
    return f"{format_date(start.date(), 'd MMMM, EEE', locale=lang)} {start:%H:%M}–{end:%H:%M}"


def _say(session: Session, row: Booking, texts: dict[str, str], *, now: dt.datetime, **extra: str) -> bool:
    """Post one of the booking's messages into its conversation (the customer's channel). False when there is
    no conversation or the channel refuses now (a closed conversation, WhatsApp's 24-hour window)."""
    if row.conversation_id is None:
        return False
    lang = _customer_language(session, row)
    service = session.get(BookingService, row.service_id)
    values = {**_when(row, lang), "service": service.name if service else "",
              "who": KIND_WORD[lang].get(service.kind if service else "assembly", ""),
              "address": ADDRESS[lang].format(a=row.address) if row.address else "",
              "link": booking_url(row), **extra}
    try:
        with session.begin_nested():
            conversations.reply(session, Actor.system(row.workspace_id, kind="booking"), row.conversation_id,
                                text=texts[lang].format(**values), author=AuthorKind.system, path="booking",
                                meta={"booking": {"id": row.id}})
    except DomainError as exc:
        log.info("booking %s: no message in conversation %s: %s", row.id, row.conversation_id, exc.message)
        return False
    return True


def send_offer(session: Session, actor: Actor, conversation_id: int, service_id: int, area: str,
               slots: Sequence[Slot], *, time_zone: str) -> str:
    """The agent sends the offered slots and the link to pick one (or another) into the conversation."""
    conversation = conversations.get_conversation(session, actor, conversation_id)
    service = get_service(session, actor.workspace_id, service_id, field="service_id")
    lang = _lang(conversation.language)
    link = offer_url(OfferLink(actor.workspace_id, conversation.customer_id, conversation.id, service.id, area))
    lines = "\n".join(f"— {slot_text(s, time_zone, lang)}" for s in slots)
    text = OFFER_TEXT[lang].format(service=service.name, slots=lines, link=link)
    conversations.reply(session, actor, conversation.id, text=text, path="booking", meta={"booking_offer": {
        "service_id": service.id, "slots": [s.start_at.isoformat() for s in slots]}})
    return link


def send_reminder(session: Session, booking_id: int, *, now: dt.datetime | None = None) -> bool:
    """The day-before reminder, once (idempotent: a second run finds it sent)."""
    now = now or utcnow()
    row = session.scalar(select(Booking).where(Booking.id == booking_id).with_for_update())
    if row is None or row.status != "booked" or row.reminded_at is not None or row.start_at <= now:
        return False
    row.reminded_at = now
    return _say(session, row, REMINDER, now=now)


def ask_after_visit(session: Session, booking_id: int, *, now: dt.datetime | None = None) -> bool:
    """«Всё ли удобно?» after a visit marked done, once, with one-click ratings on the booking's page."""
    now = now or utcnow()
    row = session.scalar(select(Booking).where(Booking.id == booking_id).with_for_update())
    if row is None or row.status != "done" or row.asked_at is not None:
        return False
    row.asked_at = now
    url = booking_url(row)
    links = "\n".join(f"{n} — {url}?score={n}" for n in range(5, 0, -1))
    return _say(session, row, QUESTION, now=now, links=links)


def record_feedback(session: Session, row: Booking, *, score: int | None, comment: str | None = None,
                    now: dt.datetime | None = None) -> Booking:
    if row.status != "done":
        raise Conflict("the visit has not taken place yet", code="not_done")
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise field_error("score", "a whole number from 1 to 5")
        row.feedback_score = score
    if comment is not None:
        if len(comment) > 2000:
            raise field_error("comment", "at most 2000 characters")
        row.feedback_comment = comment.replace("\x00", "").strip()
    if row.feedback_score is None:
        raise field_error("score", "choose a rating first")
    if row.feedback_score <= LOW_SCORE and not (row.meta or {}).get("follow_up_task_id"):
        from otklik.customers.tasks import create_task

        task = create_task(session, row.workspace_id, customer_id=row.customer_id,
                           conversation_id=row.conversation_id,
                           title=f"Визит №{row.id}: клиенту неудобно (оценка {row.feedback_score}) — связаться",
                           note=row.feedback_comment[:1000], due_at=(now or utcnow()) + dt.timedelta(days=1))
        row.meta = {**(row.meta or {}), "follow_up_task_id": task.id}
    record_audit(session, Actor.system(row.workspace_id, kind="customer"), entity_type="booking",
                 entity_id=row.id, action="feedback", after={"score": row.feedback_score})
    return row


# -- the sweep ----------------------------------------------------------------------------------------------------


def mark_missed(session: Session, *, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Visits still `booked` whose day has ended (the installer's time zone) become missed."""
    now = now or utcnow()
    n = 0
    rows = session.scalars(select(Booking).where(Booking.status == "booked",
                                                 Booking.end_at < now).order_by(Booking.id).limit(limit)
                           .with_for_update(skip_locked=True))
    for row in rows:
        if local_day(row, now) > local_day(row):
            row.status, row.missed_on, row.updated_at = "missed", local_day(row).isoformat(), now
            n += 1  # its cells stay held: the time has passed anyway
    return n


def reminder_due_at(row: Booking) -> dt.datetime:
    zone = ZoneInfo(row.time_zone)
    day_before = local_day(row) - dt.timedelta(days=1)
    return dt.datetime.combine(day_before, dt.time(REMINDER_HOUR), zone).astimezone(dt.UTC)


def due_reminders(session: Session, *, now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    """Booked visits starting within two days, not yet reminded, whose reminder moment has come (and that were
    booked before it: a visit booked this afternoon for tomorrow has its confirmation fresh in the chat)."""
    now = now or utcnow()
    rows = session.scalars(select(Booking).where(
        Booking.status == "booked", Booking.reminded_at.is_(None), Booking.conversation_id.is_not(None),
        Booking.start_at > now, Booking.start_at < now + dt.timedelta(days=2)).order_by(Booking.start_at)
        .limit(limit))
    return [r.id for r in rows if reminder_due_at(r) <= now and r.created_at < reminder_due_at(r)]


def due_questions(session: Session, *, limit: int = 500) -> list[int]:
    return list(session.scalars(select(Booking.id).where(
        Booking.status == "done", Booking.asked_at.is_(None), Booking.conversation_id.is_not(None),
        Booking.feedback_score.is_(None)).order_by(Booking.id).limit(limit)))
