"""Settings → Rules and Macros pages and the conversation's automation panel, through the UI's forms; every
string of these pages has its Russian text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file

from otklik.web import i18n
from otklik.web.ui import automation
from tests.conftest import inbound
from tests.web.a2_support import sign_in
from tests.web.test_ui_i18n import catalog


@pytest.fixture
def admin(client, ws):
    yield sign_in(client, ws.admin_email)
    client.cookies.clear()


def test_a_rule_made_in_the_form_acts_and_its_run_shows_in_the_conversation(client, ws, admin):
    page = client.get("/settings/rules/new")
    assert page.status_code == 200 and 'id="rule-form"' in page.text
    form = {"csrf_token": admin, "name": "Суд → срочно", "enabled": "on", "trigger": "customer_message",
            "c0_field": "text", "c0_op": "contains", "c0_value": "суд, юрист", "c0_attr": "",
            "c1_field": "", "c1_op": "is", "c1_value": "", "c1_attr": "",
            "a0_type": "set_priority", "a0_value": "urgent", "a0_secret": "",
            "a1_type": "add_tag", "a1_value": "претензия", "a1_secret": "",
            "a2_type": "", "a2_value": "", "a2_secret": ""}
    bad = client.post("/settings/rules/new", data={**form, "a0_value": "asap"})
    assert bad.status_code == 422 and "actions.0.value" in bad.text and 'value="Суд → срочно"' in bad.text
    saved = client.post("/settings/rules/new", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text[-800:]
    rule_id = int(re.search(r"/settings/rules/(\d+)", saved.headers["location"]).group(1))
    page = client.get(f"/settings/rules/{rule_id}")
    assert 'value="суд, юрист"' in page.text and 'value="претензия"' in page.text
    cid = inbound(client, ws, text="Пойду в суд")["conversation_id"]
    got = client.get(f"/api/v1/conversations/{cid}", headers=ws.admin).json()
    assert got["priority"] == "urgent" and got["tags"] == ["претензия"]
    panel = client.get(f"/ui/conversations/{cid}/automation")
    assert 'id="rule-runs"' in panel.text and "Суд → срочно" in panel.text and "set_priority:urgent" in panel.text
    dry = client.post(f"/settings/rules/{rule_id}/dry-run", data={"csrf_token": admin})
    assert dry.status_code == 200 and f'href="/conversations/{cid}"' in dry.text
    assert client.get("/settings/rules").status_code == 200


def test_agents_cannot_open_rule_settings(client, ws):
    sign_in(client, ws.agent_email)
    assert client.get("/settings/rules").status_code == 403
    assert client.get("/settings/macros").status_code == 200
    client.cookies.clear()


def test_a_macro_made_in_the_form_is_applied_from_the_conversation(client, ws, admin):
    client.post("/api/v1/templates", json={"name": "Фото", "body": "Пришлите фото, пожалуйста."}, headers=ws.admin)
    r = client.post("/settings/macros/new", data={
        "csrf_token": admin, "name": "Возврат: запросить фото", "a0_type": "send_template", "a0_value": "Фото",
        "a1_type": "add_tag", "a1_value": "возврат", "a2_type": "set_status", "a2_value": "pending"},
        follow_redirects=False)
    assert r.status_code == 303, r.text[-800:]
    macro_id = client.get("/api/v1/macros", headers=ws.admin).json()[0]["id"]
    cid = inbound(client, ws)["conversation_id"]
    assert 'id="macro-apply"' in client.get(f"/ui/conversations/{cid}/automation").text
    r = client.post(f"/ui/conversations/{cid}/macro", data={"csrf_token": admin, "macro_id": macro_id},
                    follow_redirects=False)
    assert r.status_code == 303
    got = client.get(f"/api/v1/conversations/{cid}", headers=ws.admin).json()
    assert got["status"] == "pending" and got["tags"] == ["возврат"]


WEB = Path(i18n.__file__).parent
FILES = ["templates/settings/rules.html", "templates/settings/rule.html", "templates/settings/macros.html",
         "templates/settings/macro.html", "templates/partials/action_rows.html",
         "templates/partials/automation_panel.html"]


def test_every_string_of_the_automation_pages_has_a_russian_translation():
    wanted: set[str] = set()
    for rel in FILES:
        for _, msg, _, _ in extract_from_file("jinja2", WEB / rel, keywords={"_": None}):
            wanted.add(msg if isinstance(msg, str) else msg[0])
    wanted.discard("status:")
    for labels in (automation.TRIGGER_LABELS, automation.FIELD_LABELS, automation.OP_LABELS,
                   automation.ACTION_LABELS):
        wanted |= set(labels.values())
    wanted |= {"Rules", "Macros", "Automation: when, if, then; with a dry run",
               "Several actions an agent applies in one click"}
    ru = catalog("ru")
    assert sorted(m for m in wanted if not (ru.get(m) and ru.get(m).string)) == []
