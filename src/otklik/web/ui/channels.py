"""Settings → Channels: the page shell of the channel settings (issue 4).

The layers contract keeps `web` and `channels` apart (neither imports the other), so this page talks to
the channels the way an integrator would: through the documented JSON API (`/api/v1/channels/kinds`,
`/api/v1/channels/accounts…`, `/api/v1/outbox?status=dead`, `/api/v1/outbox/<id>/retry`) with the signed-in
session and its CSRF token. The server renders the frame and every fixed text (translated here); the
script `static/js/channels-settings.js` builds each account's form from the plugin's `Config` schema and
fills customer- and admin-entered values with `textContent` / `.value`, never as HTML.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from otklik.platform.config import get_settings
from otklik.web import i18n
from otklik.web.ui.deps import AdminUser, render, request_language, translator, ui_router

router = ui_router()

TEXTS = (
    "Add", "Save", "Cancel", "Edit", "Delete", "Enable", "Disable", "Test connection", "Connect webhook",
    "Webhook address to paste into the vendor", "set", "missing", "leave empty to keep the saved value",
    "Account name", "Enabled", "Disabled", "Delete this channel account?", "Saved", "Deleted",
    "No channel accounts yet: pick a channel above.", "Retry", "No undelivered messages.", "Queued again",
    "One line per button", "Waiting for media download", "Failed events", "Polling error",
    "Public address of this server", "New account", "Channel", "Error", "Attempts",
)


@router.get("/settings/channels")
def channels_page(request: Request, user: AdminUser) -> Response:
    _ = translator(request)
    base = (get_settings().public_url or str(request.base_url)).rstrip("/")
    # the plugins' own titles and field hints are Russian in the code: the catalog translates them here
    texts = i18n.russian_source_texts(request_language(request)) | {t: _(t) for t in TEXTS}
    return render(request, "settings/channels.html", texts=texts, public_base=base)
