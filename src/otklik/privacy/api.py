"""The personal-data API (admins only): a customer's export as a ZIP, their erasure, the retention period.

    GET  /api/v1/customers/{id}/export            → application/zip (152-ФЗ ст. 14)
    POST /api/v1/customers/{id}/erase {"confirm": true} → what was erased, counted (ст. 21)
    GET  /api/v1/privacy/settings, PUT {"closed_retention_days": 1095 | null} (ст. 5 ч. 7)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role
from otklik.platform.db import session_scope
from otklik.platform.jsonbody import SafeJSONRoute
from otklik.privacy import service

router = APIRouter(tags=["privacy"], route_class=SafeJSONRoute)


def stream(file: IO[bytes], chunk: int = 64 * 1024) -> Iterator[bytes]:
    try:
        while data := file.read(chunk):
            yield data
    finally:
        file.close()


def zip_response(file: IO[bytes], name: str) -> StreamingResponse:
    return StreamingResponse(stream(file), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})


@router.get("/customers/{customer_id}/export", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}, "description": "Everything held about the customer"}})
def export_customer(customer_id: int, actor: CurrentActor, db: DB) -> StreamingResponse:
    file, name, summary = service.export_customer(db, actor, customer_id)
    with session_scope() as audit:  # written before the file leaves
        service.record_export(audit, actor, customer_id, summary)
    return zip_response(file, name)


class EraseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: StrictBool = Field(description="Must be true: erasure cannot be undone")


class EraseOut(BaseModel):
    customer_id: int
    erased_at: str
    customers: int = Field(description="The customer and the duplicates merged into them")
    conversations: int = Field(description="Conversations kept, their text removed")
    messages: int
    rows: dict[str, int] = Field(description="Rows deleted or blanked, per table")
    files: int


@router.post("/customers/{customer_id}/erase", response_model=EraseOut)
def erase_customer(customer_id: int, body: EraseIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return service.erase_customer(db, actor, customer_id, confirm=body.confirm)


class PrivacySettingsIO(BaseModel):
    model_config = ConfigDict(extra="forbid")

    closed_retention_days: int | None = Field(
        description=f"Closed conversations older than this are deleted by the worker; null keeps them "
                    f"({service.MIN_RETENTION_DAYS}–{service.MAX_RETENTION_DAYS})")


@router.get("/privacy/settings", response_model=PrivacySettingsIO)
def get_privacy_settings(actor: CurrentActor, db: DB) -> PrivacySettingsIO:
    actor.require(Role.admin)
    return PrivacySettingsIO(closed_retention_days=service.get_settings_row(db, actor.workspace_id)
                             .closed_retention_days)


@router.put("/privacy/settings", response_model=PrivacySettingsIO)
def put_privacy_settings(body: PrivacySettingsIO, actor: CurrentActor, db: DB) -> PrivacySettingsIO:
    row = service.set_retention(db, actor, body.closed_retention_days)
    return PrivacySettingsIO(closed_retention_days=row.closed_retention_days)
