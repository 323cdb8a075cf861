"""HTTP surface of bookings: services and installers (supervisors change them), free slots, and visits (any agent
books, moves, cancels and reports them).

Contract: GET /bookings/slots?service_id=&from=&to=&area= -> {"slots": [{installer_id, start, end}], "offer":
[3 of them], "total"}; POST /bookings {service_id, start, customer_id, installer_id?, conversation_id?, area?,
address?} -> 201; a taken slot is a 409 (code slot_taken); bad input a 422 naming the field; another workspace's
service, installer or booking a 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.schemas import Strict
from otklik.bookings import service
from otklik.calendars.service import parse_moment
from otklik.platform.errors import field_error

router = APIRouter(tags=["bookings"])
MAX_SLOTS = 1000


class ServiceIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    kind: str = Field(description="assembly / installation / connection", max_length=16)
    duration_minutes: int = Field(ge=30, le=service.MAX_DURATION_MINUTES, description="whole half-hours")
    price: float = Field(ge=0, le=10_000_000)
    active: bool = True


class ServicePatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    kind: str | None = Field(default=None, max_length=16)
    duration_minutes: int | None = Field(default=None, ge=30, le=service.MAX_DURATION_MINUTES)
    price: float | None = Field(default=None, ge=0, le=10_000_000)
    active: bool | None = None


class InstallerIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    calendar_id: int = Field(ge=1, description="The business calendar of their working hours and days off")
    user_id: int | None = Field(default=None, ge=1, description="A user of this workspace; null: a contractor")
    contractor: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=32)
    areas: list[str] = Field(default_factory=list, max_length=100, description="Cities/zones; empty: everywhere")
    service_ids: list[int] = Field(default_factory=list, description="Services they do; empty: every service")
    active: bool = True


class InstallerPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    calendar_id: int | None = Field(default=None, ge=1)
    user_id: int | None = Field(default=None, ge=1)
    contractor: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    areas: list[str] | None = Field(default=None, max_length=100)
    service_ids: list[int] | None = None
    active: bool | None = None


class BookingIn(Strict):
    service_id: int = Field(ge=1)
    start: dt.datetime = Field(description="ISO 8601 with a UTC offset, on the hour or half hour")
    customer_id: int = Field(ge=1)
    installer_id: int | None = Field(default=None, ge=1, description="null: the first installer free then")
    conversation_id: int | None = Field(default=None, ge=1, description="Where the confirmation and the "
                                        "reminder go (the customer's channel)")
    area: str = Field(default="", max_length=120)
    address: str = Field(default="", max_length=500)
    order_number: str = Field(default="", max_length=64)
    confirm: bool = Field(default=True, description="Post the confirmation with the customer's link")


class RescheduleIn(Strict):
    start: dt.datetime
    installer_id: int | None = Field(default=None, ge=1)


class StatusIn(Strict):
    status: str = Field(description="done / missed", max_length=16)


@router.get("/bookings/services")
def list_services(actor: CurrentActor, db: DB) -> list[dict[str, Any]]:
    return [service.service_out(s) for s in service.list_services(db, actor.workspace_id)]


@router.post("/bookings/services", status_code=201)
def create_service(body: ServiceIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return service.service_out(service.create_service(db, actor, body.model_dump()))


@router.patch("/bookings/services/{service_id}")
def update_service(service_id: int, body: ServicePatch, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return service.service_out(service.update_service(db, actor, service_id, body.model_dump(exclude_unset=True)))


@router.get("/bookings/installers")
def list_installers(actor: CurrentActor, db: DB) -> list[dict[str, Any]]:
    return [service.installer_out(i) for i in service.list_installers(db, actor.workspace_id)]


@router.post("/bookings/installers", status_code=201)
def create_installer(body: InstallerIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return service.installer_out(service.create_installer(db, actor, body.model_dump()))


@router.patch("/bookings/installers/{installer_id}")
def update_installer(installer_id: int, body: InstallerPatch, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return service.installer_out(service.update_installer(db, actor, installer_id,
                                                          body.model_dump(exclude_unset=True)))


@router.get("/bookings/slots")
def slots(actor: CurrentActor, db: DB, service_id: Annotated[int, Query(ge=1)],
          start: Annotated[str, Query(alias="from", max_length=40, description="ISO 8601 with offset")],
          end: Annotated[str, Query(alias="to", max_length=40, description="ISO 8601 with offset")],
          area: Annotated[str, Query(max_length=120)] = "",
          installer_id: Annotated[int | None, Query(ge=1)] = None,
          limit: Annotated[int, Query(ge=1, le=MAX_SLOTS)] = 200) -> dict[str, Any]:
    """Free slots of `service_id` starting in [from, to) (at most 62 days), earliest first, and the three an
    agent would offer (the earliest, then the earliest of the next days)."""
    svc = service.get_service(db, actor.workspace_id, service_id)
    begin, finish = parse_moment(start, "from"), parse_moment(end, "to")
    if installer_id is not None:
        service.get_installer(db, actor.workspace_id, installer_id)
    found = service.find_slots(db, actor.workspace_id, svc, begin, finish, area=area or None,
                               installer_id=installer_id)
    tz = service.workspace_time_zone(db, actor.workspace_id)

    def out(row: service.SlotRow) -> dict[str, Any]:
        slot = service.Slot._make(row)
        return {"installer_id": slot.installer_id, "start": slot.start_at.isoformat(),
                "end": slot.end_at.isoformat()}

    return {"service_id": svc.id, "total": len(found), "slots": [out(s) for s in found[:limit]],
            "offer": [out(s) for s in service.offer(found, tz)]}


@router.get("/bookings")
def list_bookings(actor: CurrentActor, db: DB, status: Annotated[str | None, Query(max_length=16)] = None,
                  start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
                  end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
                  installer_id: Annotated[int | None, Query(ge=1)] = None,
                  customer_id: Annotated[int | None, Query(ge=1)] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 200) -> list[dict[str, Any]]:
    if status is not None and status not in service.STATUSES:
        raise field_error("status", f"one of {', '.join(service.STATUSES)}")
    if customer_id is not None:
        rows = [b for b in service.bookings_of_customer(db, actor.workspace_id, customer_id, limit)
                if status is None or b.status == status]
    else:
        rows = list(service.list_bookings(db, actor.workspace_id, status=status,
                                          start=parse_moment(start, "from") if start else None,
                                          end=parse_moment(end, "to") if end else None,
                                          installer_id=installer_id, limit=limit))
    return [service.booking_out(db, b) for b in rows]


@router.post("/bookings", status_code=201)
def create_booking(body: BookingIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    row = service.book(db, actor, service_id=body.service_id, start=body.start, customer_id=body.customer_id,
                       installer_id=body.installer_id, conversation_id=body.conversation_id, area=body.area,
                       address=body.address, order_number=body.order_number, created_by="api",
                       confirm=body.confirm)
    return service.booking_out(db, row)


@router.get("/bookings/{booking_id}")
def get_booking(booking_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return service.booking_out(db, service.get_booking(db, actor.workspace_id, booking_id))


@router.post("/bookings/{booking_id}/cancel")
def cancel_booking(booking_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return service.booking_out(db, service.cancel(db, actor, booking_id))


@router.post("/bookings/{booking_id}/reschedule")
def reschedule_booking(booking_id: int, body: RescheduleIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    row = service.reschedule(db, actor, booking_id, start=body.start, installer_id=body.installer_id)
    return service.booking_out(db, row)


@router.post("/bookings/{booking_id}/status")
def set_status(booking_id: int, body: StatusIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return service.booking_out(db, service.mark(db, actor, booking_id, body.status))
