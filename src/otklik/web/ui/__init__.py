"""The agent workspace (server-rendered pages): sign-in, inbox, conversation view, and other owners' pages.

`install(app)` mounts the static assets and includes every page module's `router` (see deps.py for how to
add a page). Pages never write SQL: they call the domain services and render templates.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from otklik.web.ui import (
    assist,
    auth,
    automation,
    calendars,
    channels,
    compensations,
    conversation,
    customers,
    helpcenter,
    inbox,
    integrations,
    knowledge,
    legal,
    notifications,
    orders,
    phrases,
    reviews,
    routing,
    search,
    settings,
    sla,
)
from otklik.web.ui import bookings as booking_pages
from otklik.web.ui import proactive as proactive_pages
from otklik.web.ui import reports as report_pages
from otklik.web.ui import survey as survey_pages
from otklik.web.ui.deps import STATIC_DIR

# Each page module has an `APIRouter` named `router` made with `deps.ui_router()`; a new page adds itself here.
PAGES = (auth, inbox, conversation, settings, customers, search, knowledge, assist, helpcenter, channels,
         calendars, sla, automation, routing, legal, compensations, phrases, orders, notifications, report_pages,
         survey_pages,
         integrations, reviews, booking_pages, proactive_pages)

router = APIRouter(include_in_schema=False)
for _module in PAGES:
    router.include_router(_module.router)


def install(app: FastAPI) -> None:
    """Include the pages and serve /static (vendored, pinned assets: nothing from a CDN)."""
    app.include_router(router)
    app.add_api_route("/favicon.ico", favicon, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def favicon() -> FileResponse:
    """The browser's own request for /favicon.ico (every page asked and got a 404): a vendored 32×32 icon."""
    return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon",
                        headers={"Cache-Control": "public, max-age=86400"})
