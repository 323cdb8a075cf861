"""Attachments on disk: size-capped while streaming, type checked against the file's own bytes."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.orm import Session

from otklik.accounts.service import Actor
from otklik.conversations.models import Attachment
from otklik.platform.config import get_settings
from otklik.platform.errors import DomainError, NotFound, TooLarge, field_error

_SIGNATURES: list[tuple[bytes, int, str]] = [
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"%PDF-", 0, "application/pdf"),
    (b"OggS", 0, "audio/ogg"),
    (b"ID3", 0, "audio/mpeg"),
    (b"PK\x03\x04", 0, "application/zip"),
    (b"ftyp", 4, "video/mp4"),
]
_ZIP_BASED = {"application/zip", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
              "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class UnsupportedType(DomainError):
    status_code = 415
    code = "unsupported_type"


def sniff(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, offset, kind in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return kind
    if head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a cut multi-byte char at the end of the sample is fine
            return None
    return None if b"\x00" in head else "text/plain"


def safe_filename(name: str) -> str:
    name = unicodedata.normalize("NFC", os.path.basename(name.replace("\\", "/"))).strip()
    name = re.sub(r"[\x00-\x1f\x7f/\\:*?\"<>|]", "_", name)[:200]
    return name if name and name not in {".", ".."} else "file"


def store(session: Session, actor: Actor, *, filename: str, content_type: str, chunks: Iterable[bytes]
          ) -> Attachment:
    settings = get_settings()
    declared = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    if declared not in settings.allowed_attachment_types:
        raise UnsupportedType(f"files of type {declared!r} are not accepted",
                              fields=[{"field": "file", "message": "type not allowed"}])
    root = settings.attachments_dir
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    head = b""
    fd, tmp_name = tempfile.mkstemp(dir=root, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as tmp:
            for chunk in chunks:
                size += len(chunk)
                if size > settings.max_attachment_bytes:
                    raise TooLarge(f"a file may be at most {settings.max_attachment_bytes} bytes",
                                   fields=[{"field": "file", "message": "too large"}])
                if len(head) < 64:
                    head += chunk[: 64 - len(head)]
                digest.update(chunk)
                tmp.write(chunk)
        if size == 0:
            raise field_error("file", "is empty")
        actual = sniff(head)
        compatible = actual == declared or (actual == "application/zip" and declared in _ZIP_BASED)
        if not compatible:
            raise UnsupportedType(f"the file's content is {actual or 'unknown'}, not {declared}",
                                  fields=[{"field": "file", "message": "content does not match its type"}])
        sha = digest.hexdigest()
        key = f"{actor.workspace_id}/{sha[:2]}/{sha}"
        final = root / key
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_name, final)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    attachment = Attachment(workspace_id=actor.workspace_id, filename=safe_filename(filename),
                            content_type=declared, size=size, sha256=sha, storage_key=key)
    session.add(attachment)
    session.flush()
    return attachment


def get_attachment(session: Session, actor: Actor, attachment_id: int) -> tuple[Attachment, Path]:
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or attachment.workspace_id != actor.workspace_id:
        raise NotFound(f"attachment {attachment_id} not found")
    path = get_settings().attachments_dir / attachment.storage_key
    if not path.is_file():
        raise NotFound(f"attachment {attachment_id}'s file is missing from storage")
    return attachment, path
