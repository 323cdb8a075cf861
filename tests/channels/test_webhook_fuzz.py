"""Hostile and mangled webhook bodies (recorded fixtures with random parts replaced) never get a 500: each
is stored, ignored, acknowledged as a duplicate, or refused with a precise 4xx."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.channels.conftest import BOT_TOKEN, MAX_TOKEN, fixture
from tests.channels.helpers import create_account

JSON = st.recursive(st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
                    | st.floats(allow_nan=False) | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=12)
TG = ["update_text", "update_photo", "update_contact_own", "update_callback", "update_edited", "update_location"]
MX = ["message_created_text", "message_created_contact", "message_callback", "bot_started", "message_edited"]


def _paths(data, prefix=()):
    if isinstance(data, dict):
        for k, v in data.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _mutate(data, path, value):
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.fixture(scope="module")
def hooks(client):
    from tests.conftest import make_workspace

    ws = make_workspace("fuzz")
    tg = create_account(client, ws, "telegram", config={"api_base_url": "http://127.0.0.1:9"},
                        secrets={"bot_token": BOT_TOKEN, "webhook_secret": "tg-secret-0123456789"})
    mx = create_account(client, ws, "max", config={"api_base_url": "http://127.0.0.1:9"},
                        secrets={"bot_token": MAX_TOKEN, "webhook_secret": "max-secret-0123456789"})
    return {"telegram": (tg["webhook_path"], {"X-Telegram-Bot-Api-Secret-Token": "tg-secret-0123456789"}),
            "max": (mx["webhook_path"], {"X-Max-Bot-Api-Secret": "max-secret-0123456789"})}


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mangled_updates_never_get_a_500(client, hooks, data):
    channel = data.draw(st.sampled_from(["telegram", "max"]))
    base = fixture("telegram" if channel == "telegram" else "max", data.draw(st.sampled_from(TG if channel == "telegram" else MX)))
    paths = list(_paths(base))
    path = data.draw(st.sampled_from(paths))
    body = _mutate(base, path, data.draw(JSON))
    if channel == "telegram" and isinstance(body.get("update_id"), int) and data.draw(st.booleans()):
        body["update_id"] = data.draw(st.integers(min_value=0, max_value=2**62))
    url, headers = hooks[channel]
    r = client.post(url, content=json.dumps(body).encode(), headers={**headers, "Content-Type": "application/json"})
    assert r.status_code < 500 or r.status_code == 503, (r.status_code, r.text, body)
    if r.status_code != 200:
        assert r.json()["error"]["message"], r.text


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bodies_never_get_a_500(client, hooks, raw):
    for url, headers in hooks.values():
        r = client.post(url, content=raw, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code in (200, 400, 413, 422), (r.status_code, r.text, raw)


def test_deeply_nested_json_is_a_400(client, hooks):
    for url, headers in hooks.values():
        r = client.post(url, content=b"[" * 100_000 + b"]" * 100_000, headers=headers)
        assert r.status_code == 400, r.text
