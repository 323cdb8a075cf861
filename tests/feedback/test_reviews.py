"""Reviews: one inbound shape (API, CSV, a review site's e-mail) → a conversation of channel `review`, linked
to the customer by phone or e-mail, de-duplicated by the site's id, with the assistant's sentiment and reason;
the draft reply (four steps / a thank-you, ru and en), publishing it (the first response; a chat reply is
refused), the follow-up task, the assistant never answering a review, and the dashboard's count."""

from __future__ import annotations

import datetime as dt

from otklik.assistant.models import AssistantDecision
from otklik.customers.tasks import Task
from otklik.feedback import reviews
from otklik.feedback.reviews import Review
from otklik.platform.db import session_scope, utcnow
from tests.conftest import inbound

NEGATIVE = {"platform": "yandex_maps", "rating": 1, "author": "Анна Петрова", "external_id": "ya-1",
            "text": "Заказ привезли на неделю позже обещанного, курьер грубил. Больше не закажу.",
            "link": "https://yandex.ru/maps/org/1/reviews?review=ya-1", "date": "2026-11-30T10:00:00Z"}
POSITIVE = {"platform": "2gis", "rating": 5, "author": "John", "external_id": "g-7",
            "text": "Great service, the order arrived the next day, thank you!", "link": "https://2gis.ru/r/7"}


def post(client, ws, body: dict, headers=None):
    return client.post("/api/v1/reviews", json=body, headers=headers or ws.agent)


def test_a_review_becomes_a_review_conversation_once(client, ws):
    r = post(client, ws, NEGATIVE)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["created"] is True and got["platform"] == "yandex_maps" and got["rating"] == 1
    assert got["stars"] == "★☆☆☆☆" and got["negative"] is True
    conversation = client.get(f"/api/v1/conversations/{got['conversation_id']}", headers=ws.admin).json()
    assert conversation["channel"] == "review"
    messages = client.get(f"/api/v1/conversations/{got['conversation_id']}/messages", headers=ws.admin).json()
    items = messages["items"] if isinstance(messages, dict) else messages
    assert items[0]["body_text"].startswith("Заказ привезли")
    with session_scope(write=False) as s:
        from otklik.conversations.models import Message

        first = s.query(Message).filter_by(conversation_id=got["conversation_id"]).order_by(Message.id).first()
        assert first.meta["kind"] == "review" and first.meta["platform"] == "yandex_maps"
    again = post(client, ws, NEGATIVE).json()  # the same site id: the same review, nothing new
    assert again["created"] is False and again["id"] == got["id"]
    with session_scope(write=False) as s:
        assert s.query(Review).filter_by(workspace_id=ws.id).count() == 1


def test_sentiment_and_reason_from_the_assistant(client, ws):
    got = post(client, ws, NEGATIVE).json()
    assert got["sentiment"] == "negative"
    assert got["reason"] in {"late_delivery", "complaint", "order_status", "delivery_info"}, got["reason"]
    assert got["language"] == "ru"
    en = post(client, ws, POSITIVE).json()
    assert en["language"] == "en" and en["negative"] is False


def test_linked_to_the_customer_by_e_mail(client, ws):
    first = inbound(client, ws, identity="anna@example.com", text="Добрый день")
    got = post(client, ws, {**NEGATIVE, "external_id": "ya-2", "email": "anna@example.com"}).json()
    assert got["customer_id"] == first["customer_id"]


def test_bad_reviews_are_422_naming_the_field(client, ws):
    for body, field in (({**NEGATIVE, "platform": "ebay"}, "platform"), ({**NEGATIVE, "rating": 6}, "rating"),
                        ({"platform": "flamp"}, "text"), ({**NEGATIVE, "link": "javascript:alert(1)"}, "link")):
        r = post(client, ws, body)
        assert r.status_code == 422, (body, r.text)
        assert field in r.text
    assert client.post("/api/v1/reviews", json=NEGATIVE).status_code == 401


def test_drafts_follow_the_four_steps_or_thank():
    negative = Review(platform="yandex_maps", rating=2, author="Анна Петрова", language="ru",
                      reason="late_delivery")
    d = reviews.draft(negative)
    assert d["kind"] == "four_steps" and [s["step"] for s in d["steps"]] == ["thank", "apologise", "solution",
                                                                            "follow_up"]
    assert d["text"].startswith("Анна, спасибо") and "жаль" in d["text"] and "приоритетную доставку" in d["text"]
    assert "свяжемся" in d["text"]
    english = reviews.draft(Review(platform="2gis", rating=1, author="", language="en", reason="defective"))
    assert english["text"].startswith("Hello! thank you") or english["text"].startswith("Hello! Thank")
    assert "replace the item or refund" in english["text"]
    thanks = reviews.draft(Review(platform="2gis", rating=5, author="John Smith", language="en"))
    assert thanks == {"kind": "thanks", "language": "en", "steps": [], "text": thanks["text"]}
    assert thanks["text"].startswith("John, thank you for the review")
    unrated = Review(platform="otzovik", rating=None, author="", language="ru", sentiment="negative")
    assert reviews.draft(unrated)["kind"] == "four_steps"


def test_publish_records_the_reply_and_the_task_follows_up(client, ws):
    got = post(client, ws, NEGATIVE).json()
    cid = got["conversation_id"]
    view = client.get(f"/api/v1/conversations/{cid}/review", headers=ws.agent).json()
    assert view["draft"]["kind"] == "four_steps"
    # a chat reply cannot reach a review site
    r = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "Здравствуйте"}, headers=ws.agent)
    assert r.status_code == 409 and "review" in r.text
    r = client.post(f"/api/v1/conversations/{cid}/review/publish", json={"text": view["draft"]["text"]},
                    headers=ws.agent)
    assert r.status_code == 200, r.text
    assert r.json()["reply_text"] == view["draft"]["text"] and r.json()["replied_at"]
    conversation = client.get(f"/api/v1/conversations/{cid}", headers=ws.admin).json()
    assert conversation["first_response_at"] is not None
    r = client.post(f"/api/v1/conversations/{cid}/review/task", headers=ws.agent)
    assert r.status_code == 201 and r.json()["follow_up_task_id"]
    again = client.post(f"/api/v1/conversations/{cid}/review/task", headers=ws.agent).json()
    assert again["follow_up_task_id"] == r.json()["follow_up_task_id"]
    with session_scope(write=False) as s:
        task = s.get(Task, again["follow_up_task_id"])
        assert task.customer_id == got["customer_id"] and task.conversation_id == cid
    # not a review conversation / another workspace
    plain = inbound(client, ws, identity="x@example.com")["conversation_id"]
    assert client.get(f"/api/v1/conversations/{plain}/review", headers=ws.agent).status_code == 404


def test_publish_passes_the_phrase_checker(client, ws):
    cid = post(client, ws, NEGATIVE).json()["conversation_id"]
    r = client.post(f"/api/v1/conversations/{cid}/review/publish",
                    json={"text": "Это не наша проблема, успокойтесь."}, headers=ws.agent)
    assert r.status_code == 409, r.text


def test_the_assistant_never_answers_a_review(client, ws):
    cid = post(client, ws, {**NEGATIVE, "external_id": "ya-9"}).json()["conversation_id"]
    with session_scope(write=False) as s:
        decisions = s.query(AssistantDecision).filter_by(conversation_id=cid).all()
    assert all(d.action != "answer" for d in decisions)
    if decisions:  # the assistant is on for this workspace: it handed the review to a person
        assert decisions[0].reason == "public_comment"
    messages = client.get(f"/api/v1/conversations/{cid}/messages", headers=ws.admin).json()
    items = messages["items"] if isinstance(messages, dict) else messages
    assert [m["author_kind"] for m in items if not m["is_internal"]] == ["customer"]


def test_csv_import_checks_every_row_first(client, ws):
    good = ("platform;rating;text;author;link;date;external_id\n"
            "flamp;4;Хорошо, но долго;Игорь;https://msk.flamp.ru/firm/x/otzyv-1;2026-11-01;f-1\n"
            "otzovik;2;Сломалось через месяц;Олег;https://otzovik.com/review_2.html;01.11.2026;o-2\n")
    r = client.post("/api/v1/reviews/import", content=good.encode(), headers={**ws.admin,
                                                                               "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == 2 and r.json()["created"] == 2
    again = client.post("/api/v1/reviews/import", content=good.encode(), headers={**ws.admin,
                                                                                   "Content-Type": "text/csv"})
    assert again.json()["created"] == 0
    bad = good + "flamp;9;x;y;;;f-3\n"
    r = client.post("/api/v1/reviews/import", content=bad.encode(), headers=ws.admin)
    assert r.status_code == 422 and "row 4.rating" in r.text
    r = client.post("/api/v1/reviews/import", content=good.encode(), headers=ws.agent)
    assert r.status_code == 403


def test_dashboard_counts_reviews_by_platform_and_rating(client, ws):
    post(client, ws, NEGATIVE)
    post(client, ws, POSITIVE)
    post(client, ws, {**POSITIVE, "external_id": "g-8", "rating": 4})
    day = utcnow().date()
    r = client.get("/api/v1/reports/reviews", params={"from": (day - dt.timedelta(days=2)).isoformat(),
                                                      "to": (day + dt.timedelta(days=1)).isoformat()},
                   headers=ws.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reviews"] == 3
    gis = next(p for p in body["platforms"] if p["platform"] == "2gis")
    assert (gis["reviews"], gis["by_rating"]["5"], gis["by_rating"]["4"], gis["rating_avg"]) == (2, 1, 1, 4.5)
    ya = next(p for p in body["platforms"] if p["platform"] == "yandex_maps")
    assert (ya["negative"], ya["answered"]) == (1, 0)
