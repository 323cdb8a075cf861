"""The one way to read JSON that comes from outside (request bodies, socket frames, cursors, uploaded lines).

`json.loads` alone turns hostile input into server errors: deep nesting raises RecursionError, and a lone UTF-16
surrogate (the escape "\\ud800", or its bytes ED A0 80) becomes a Python string that later fails to encode,
store or compare (UnicodeEncodeError). Here every such input is a precise 400 `malformed_json` in the usual
error shape, an oversize one a 413, and what comes back is safe to encode, store and compare:

- the bytes must be UTF-8 (a leading byte order mark is allowed; UTF-16/32 are not);
- no string or key may hold a lone surrogate (a correct pair, e.g. an escaped emoji, is fine);
- at most MAX_DEPTH nested arrays/objects;
- NaN and Infinity are not JSON and are refused; numbers keep Python's 4300-digit limit.

`SafeJSONRoute` makes FastAPI read JSON bodies through the same function: routers of public and inbound
endpoints use it (`APIRouter(route_class=SafeJSONRoute)`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.params import Form
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from otklik.platform.errors import DomainError, TooLarge

MAX_DEPTH = 32  # vendors' payloads nest 6-8 levels; ours less
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # how a surrogate gets into UTF-8 JSON: as an escape
_LONE_SURROGATE = "contains a lone UTF-16 surrogate (such as \\ud800 without its pair); text must be valid Unicode"
_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "true or false", type(None): "null",
          int: "a number", float: "a number"}


class MalformedJSON(DomainError, ValueError):
    """A body or frame that is not the JSON we accept. Also a ValueError, so `except ValueError` still works."""

    status_code = 400
    code = "malformed_json"


def _refuse(what: str, problem: str) -> MalformedJSON:
    return MalformedJSON(f"{what} {problem}", fields=[{"field": "body", "message": problem}])


def _check(value: Any, what: str, max_depth: int, check_text: bool) -> None:
    """Depth and (when `check_text`) lone surrogates, without recursion: the value may be as deep as
    json.loads allows."""

    def bad(text: str) -> bool:
        return check_text and not text.isascii() and _SURROGATE.search(text) is not None

    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if bad(node):
                raise _refuse(what, _LONE_SURROGATE)
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > max_depth:
            raise _refuse(what, f"is nested too deeply (at most {max_depth} levels of arrays and objects)")
        if isinstance(node, dict):
            if any(bad(key) for key in node):
                raise _refuse(what, _LONE_SURROGATE)
            node = node.values()
        for item in node:
            if isinstance(item, str):
                if bad(item):
                    raise _refuse(what, _LONE_SURROGATE)
            elif isinstance(item, dict | list):
                stack.append((item, depth + 1))


def loads(raw: bytes | str, *, what: str = "the body", max_bytes: int | None = None,
          max_depth: int = MAX_DEPTH) -> Any:
    """Any JSON value from untrusted `raw`, or MalformedJSON (400) / TooLarge (413). `max_bytes` defaults to
    the request body limit (OTKLIK_MAX_REQUEST_BYTES)."""
    if max_bytes is None:
        from otklik.platform.config import get_settings

        max_bytes = get_settings().max_request_bytes
    if len(raw) > max_bytes:
        raise TooLarge(f"{what} may be at most {max_bytes} bytes")
    if isinstance(raw, bytes | bytearray):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _refuse(what, f"is not valid UTF-8 (byte {exc.start}); send JSON as UTF-8") from None
    else:
        text = raw
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise _refuse(what, "is empty; send a JSON document")
    def no_constant(name: str) -> Any:
        raise _refuse(what, f"is not valid JSON: {name} is not a JSON number")

    try:
        value = json.loads(text, parse_constant=no_constant)
    except MalformedJSON:
        raise
    except RecursionError:
        raise _refuse(what, f"is nested too deeply (at most {max_depth} levels of arrays and objects)") from None
    except json.JSONDecodeError as exc:
        raise _refuse(what, f"is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise _refuse(what, f"is not valid JSON: {str(exc)[:120]}") from None
    # Strict UTF-8 cannot carry a surrogate, so only an escape can make one (a str may hold one already).
    check_text = _SURROGATE_ESCAPE.search(text) is not None or (
        isinstance(raw, str) and _SURROGATE.search(text) is not None)
    if check_text or text.count("[") + text.count("{") > max_depth:
        _check(value, what, max_depth, check_text)
    return value


def loads_object(raw: bytes | str, *, what: str = "the body", max_bytes: int | None = None,
                 max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Like `loads`, and the top level must be an object."""
    value = loads(raw, what=what, max_bytes=max_bytes, max_depth=max_depth)
    if not isinstance(value, dict):
        raise _refuse(what, f"must be a JSON object, not {_KINDS.get(type(value), 'a value')}")
    return value


def _is_json(content_type: str | None) -> bool:
    """The content types FastAPI reads as JSON (it leaves a body without one alone)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class SafeJSONRoute(APIRoute):
    """An APIRoute whose JSON body is read with `loads` before FastAPI validates it, so deep nesting, lone
    surrogates, invalid UTF-8 and NaN get the same precise 400 as at the webhooks (FastAPI itself would answer
    a vague 400, a 422, or accept them)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        if self.body_field is None or isinstance(self.body_field.field_info, Form):
            return original

        async def handler(request: Request) -> Response:
            if _is_json(request.headers.get("content-type")):
                try:
                    body = await request.body()
                except ClientDisconnect:  # gone, or cut off by the body limit (which has answered 413)
                    raise DomainError("the client disconnected before the body was read") from None
                if body:
                    # Starlette's Request.json() returns this cached value; FastAPI then validates it.
                    request._json = loads(body)
            return await original(request)

        return handler
