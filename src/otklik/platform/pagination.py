"""Opaque keyset cursors: base64 of the last row's sort value and id. Stable under inserts, O(1) per page."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from otklik.platform.errors import TooLarge, field_error
from otklik.platform.jsonbody import loads


def encode_cursor(value: Any, row_id: int) -> str:
    raw = json.dumps([value, row_id], separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, row_id = loads(base64.urlsafe_b64decode(padded.encode()), what="the cursor", max_bytes=4096)
        if not isinstance(row_id, int):
            raise ValueError
        return value, row_id
    except (ValueError, binascii.Error, TypeError, TooLarge):  # MalformedJSON is a ValueError
        raise field_error("cursor", "is not a cursor this API returned") from None
