"""Hostile and odd payloads at the VK, WhatsApp, phone and form webhooks: always a precise 2xx/4xx, never a 500.

Each recorded fixture is mutated field by field (every value replaced by values of other types), signed
correctly where the vendor signs, and posted; the answer must never be a server error."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
ODD_VALUES: list[Any] = [None, True, -1, 2**70, 1.5, "", "x" * 300, "١٢٣", [], [1, {"a": None}], {}, {"type": "photo"}]


def mutations(payload: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """(path, value) for every place in the payload and every odd value."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            yield from mutations(value, (*path, key))
    elif isinstance(payload, list):
        for i, value in enumerate(payload[:3]):
            yield from mutations(value, (*path, i))
    if path:
        for odd in ODD_VALUES:
            yield path, odd


def mutated(payload: Any, path: tuple, value: Any) -> Any:
    out = copy.deepcopy(payload)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def accounts(client, ws) -> dict[str, str]:
    specs = {"vk": ({"group_id": 218000001, "confirmation_code": "c", "api_base": "http://127.0.0.1:9/method"},
                    {"access_token": "t", "secret_key": "fixture-secret-key"}),
             "whatsapp": ({"phone_number_id": "106540352242922", "api_base": "http://127.0.0.1:9"},
                          {"access_token": "t", "app_secret": "s", "verify_token": "v"}),
             "phone": ({}, {"signing_secret": "p"}),
             "form": ({"per_ip_per_hour": 10_000}, {})}
    paths = {}
    for kind, (config, secrets) in specs.items():
        r = client.post("/api/v1/channels/accounts", headers=ws.admin,
                        json={"kind": kind, "config": config, "secrets": secrets})
        assert r.status_code == 201, r.text
        paths[kind] = r.json()["webhook_path"]
    return paths


def signed_headers(kind: str, body: bytes) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if kind == "whatsapp":
        headers["x-hub-signature-256"] = "sha256=" + hmac.new(b"s", body, hashlib.sha256).hexdigest()
    if kind == "phone":
        headers["x-otklik-signature"] = "sha256=" + hmac.new(b"p", body, hashlib.sha256).hexdigest()
    return headers


CASES = [("vk", "message_new_attachments"), ("vk", "wall_reply_new"), ("vk", "message_event"), ("vk", "message_edit"),
         ("whatsapp", "text"), ("whatsapp", "location"), ("whatsapp", "interactive_list_reply"),
         ("whatsapp", "status_failed"), ("phone", "call_ended")]


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_mutated_payloads_never_cause_a_server_error(client, ws, kind, name):
    paths = accounts(client, ws)
    original = json.loads((FIXTURES / kind / f"{name}.json").read_text())
    failures = []
    for n, (path, value) in enumerate(mutations(original)):
        payload = mutated(original, path, value)
        if kind == "vk" and path and path[0] == "event_id" and isinstance(value, str) and value:
            payload["event_id"] = f"{value[:50]}-{n}"
        elif kind == "vk":
            payload["event_id"] = f"hostile-{n}"  # each one a new event, so none is skipped as a retry
        body = json.dumps(payload, ensure_ascii=False).encode()
        r = client.post(paths[kind], content=body, headers=signed_headers(kind, body))
        if r.status_code >= 500:
            failures.append((path, value, r.status_code, r.text[:200]))
    assert failures == []


def test_odd_form_fields_never_cause_a_server_error(client, ws):
    url = accounts(client, ws)["form"]
    base = {"name": "Ольга", "email": "olga@example.ru", "message": "Вопрос"}
    failures = []
    for key in (*base, "phone", "submission_id", "_redirect", "website", "x" * 100):
        for value in ODD_VALUES:
            r = client.post(url, json={**base, key: value}, headers={"referer": "javascript:alert(1)"})
            if r.status_code >= 500:
                failures.append((key, value, r.status_code))
    for raw, ctype in [(b"\xff\xfe", "application/x-www-form-urlencoded"), (b"a=%ZZ&&&=", "application/x-www-form-urlencoded"),
                       (b"--x\r\n\r\n", "multipart/form-data; boundary=x"), (b"", "application/json")]:
        r = client.post(url, content=raw, headers={"content-type": ctype})
        if r.status_code >= 500:
            failures.append((raw, ctype, r.status_code))
    assert failures == []
