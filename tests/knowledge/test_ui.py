"""The knowledge-base pages of the agent workspace: list, editor with preview, versions, FAQ, import/export."""

from __future__ import annotations

import json
import re

from tests.knowledge.helpers import assert_inert
from tests.web._ui import Browser


def test_supervisor_writes_edits_restores_and_previews(app, ws):
    admin = Browser(app, ws.admin_email)
    page = admin.get("/knowledge")
    assert page.status_code == 200 and 'id="kb-new"' in page.text
    form = {"title": "Самовывоз", "body": "Из шоурума — **бесплатно**.", "language": "ru", "category": "Доставка",
            "tags": "самовывоз, шоурум", "questions": "Можно забрать самому?\nГде шоурум?", "published": "on"}
    r = admin.post("/knowledge/new", form, htmx=False)
    assert r.status_code == 303
    url = r.headers["location"].split("?")[0]
    aid = int(url.rsplit("/", 1)[1])
    editor = admin.get(url)
    assert "<strong>бесплатно</strong>" in editor.text and "Можно забрать самому?" in editor.text
    r = admin.post(url, {**form, "body": "Из шоурума — бесплатно, заказ хранится 5 дней.", "note": "срок"},
                   htmx=False)
    assert r.status_code == 303
    versions = admin.get(f"/knowledge/{aid}/versions")
    assert versions.status_code == 200 and versions.text.count('class="kb-version') == 2 and "срок" in versions.text
    assert "<strong>бесплатно</strong>" in admin.get(f"/knowledge/{aid}/versions?number=1").text
    assert admin.post(f"/knowledge/{aid}/versions/1/restore", htmx=False).status_code == 303
    assert "<strong>бесплатно</strong>" in admin.get(url).text
    preview = admin.post("/knowledge/preview", {"body": "# Привет\n<script>alert(1)</script>[x](javascript:y)"})
    assert preview.status_code == 200 and "<h1>Привет</h1>" in preview.text
    assert_inert(preview.text)
    listing = admin.get("/knowledge", params={"q": "шоурум"})
    assert f'data-article-id="{aid}"' in listing.text
    assert admin.post(f"/knowledge/{aid}/delete", htmx=False).status_code == 303
    assert admin.get(url).status_code == 404


def test_agent_reads_but_cannot_write(app, client, ws):
    aid = client.post("/api/v1/articles", json={"title": "Оплата", "body": "Картой."}, headers=ws.admin).json()["id"]
    agent = Browser(app, ws.agent_email)
    assert 'id="kb-new"' not in agent.get("/knowledge").text
    page = agent.get(f"/knowledge/{aid}")
    assert page.status_code == 200 and 'id="kb-save"' not in page.text
    assert agent.post(f"/knowledge/{aid}", {"title": "x", "body": "y", "language": "ru"}).status_code == 403
    assert agent.post("/knowledge/new", {"title": "x", "body": "y", "language": "ru"}).status_code == 403
    assert agent.get("/knowledge/transfer").status_code == 403
    assert agent.post(f"/knowledge/{aid}", {"title": "x", "body": "y"}, csrf=False).status_code == 403


def test_faq_and_import_pages(app, client, ws, other_ws):
    admin = Browser(app, ws.admin_email)
    r = admin.post("/knowledge/faq", {"question": "Есть рассрочка?", "answer": "Да, на 6–24 месяца.",
                                      "variants": "кредит\nдолями", "language": "ru"}, htmx=False)
    assert r.status_code == 303
    page = admin.get("/knowledge/faq")
    assert "Есть рассрочка?" in page.text and "кредит · долями" in page.text
    row = json.dumps({"id": "hours", "title": "Режим работы", "body": "С 8 до 22."}, ensure_ascii=False)
    r = admin.post("/knowledge/import", files={"file": ("kb.jsonl", row.encode() + b"\n", "application/x-ndjson")},
                   htmx=False)
    assert r.status_code == 200 and 'id="kb-import-result"' in r.text
    bad = admin.post("/knowledge/import", files={"file": ("kb.jsonl", b"{oops\n", "application/x-ndjson")},
                     htmx=False)
    assert bad.status_code == 422 and "line 1" in bad.text
    exported = admin.get("/api/v1/knowledge/export")  # the page's export link, with the session cookie
    assert exported.status_code == 200 and '"id": "hours"' in exported.text
    foreign = client.post("/api/v1/articles", json={"title": "B", "body": "b"}, headers=other_ws.admin).json()["id"]
    assert admin.get(f"/knowledge/{foreign}").status_code == 404
    assert admin.get(f"/knowledge/{foreign}/versions").status_code == 404
    entry = re.search(r'data-faq-id="(\d+)"', page.text).group(1)
    assert admin.post(f"/knowledge/faq/{entry}/delete", htmx=False).status_code == 303
