"""Signed, expiring links to a reply's files for vendors that fetch media by URL (Viber, Instagram).

Viber's `send_message` and Instagram's Send API take a picture or a file as an address the vendor downloads,
never as an upload. The link names the attachment, the workspace and an expiry, signed with a key derived
from OTKLIK_SECRET_KEY, so it cannot be guessed or widened to another file; it ends with the file's own name
(Viber wants the extension as the last path segment). The vendor must reach this server: the base is
OTKLIK_PUBLIC_URL, else the address the channel's webhook was connected at.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse

from fastapi import APIRouter
from fastapi.responses import FileResponse
from sqlalchemy import select

from otklik.channels.delivery import OutgoingFile
from otklik.conversations.models import Attachment
from otklik.conversations.outbox import DeliveryError
from otklik.platform.config import get_settings
from otklik.platform.db import session_scope
from otklik.platform.errors import NotFound

LIFETIME_S = 7 * 24 * 3600  # the vendor may fetch late (a retry, a slow CDN); a week, then the link is dead
PATH = "/api/v1/channels/media"
router = APIRouter(tags=["channels"])


def _key() -> bytes:
    return hashlib.sha256(b"otklik media links\x00" + get_settings().secret_key.get_secret_value().encode()).digest()


def _sign(workspace_id: int, attachment_id: int, expires: int) -> str:
    message = f"{workspace_id}:{attachment_id}:{expires}".encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()[:32]


def public_base(webhook_url: str | None) -> str:
    """Where vendors reach this server; a permanent DeliveryError when nothing says so."""
    base = (get_settings().public_url or "").strip().rstrip("/")
    if not base and webhook_url and "/api/v1/" in webhook_url:
        base = webhook_url.split("/api/v1/", 1)[0]
    if not base.startswith(("https://", "http://")):
        raise DeliveryError("files go to this channel as links the vendor downloads: set OTKLIK_PUBLIC_URL (or "
                            "connect the channel's webhook) so the vendor can reach this server", permanent=True)
    return base


def link(base: str, workspace_id: int, file: OutgoingFile, attachment_id: int, *, now: float | None = None) -> str:
    expires = int((now or time.time()) + LIFETIME_S)
    name = urllib.parse.quote(file.filename.replace("/", "_")[:120] or "file", safe="")
    return f"{base}{PATH}/{workspace_id}/{attachment_id}/{expires}/{_sign(workspace_id, attachment_id, expires)}/{name}"


def attachment_ids(workspace_id: int, message_id: int) -> list[int]:
    """The ids of a reply's files, in the order `delivery.files_of` gives them."""
    with session_scope(write=False) as session:
        return list(session.scalars(select(Attachment.id).where(
            Attachment.message_id == message_id, Attachment.workspace_id == workspace_id).order_by(Attachment.id)))


@router.get("/channels/media/{workspace_id}/{attachment_id}/{expires}/{signature}/{filename}",
            include_in_schema=False)
def media(workspace_id: int, attachment_id: int, expires: int, signature: str, filename: str) -> FileResponse:
    """The file behind a signed link (what Viber's and Meta's media servers download)."""
    gone = NotFound("no such file, or the link expired")
    if not (0 < workspace_id < 2**62 and 0 < attachment_id < 2**62 and 0 < expires < 2**40) or len(signature) != 32:
        raise gone
    if expires < time.time() or not hmac.compare_digest(signature.encode(), _sign(workspace_id, attachment_id,
                                                                                   expires).encode()):
        raise gone
    with session_scope(write=False) as session:
        row = session.get(Attachment, attachment_id)
        if row is None or row.workspace_id != workspace_id:
            raise gone
        path = get_settings().attachments_dir / row.storage_key
        content_type, name = row.content_type, row.filename
    if not path.is_file():
        raise gone
    return FileResponse(path, media_type=content_type, filename=name,
                        headers={"X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "default-src 'none'; sandbox"})
