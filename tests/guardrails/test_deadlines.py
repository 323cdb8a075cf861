"""Consumer-law deadlines: every rule row of the shipped table with a hand-computed date that crosses a weekend
or a holiday of the 2026 Russian production calendar, penalties with their caps, missing inputs asked for by
name, and the API contract (POST /api/v1/consumer-law/deadlines) with its 422s."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from otklik.guardrails import deadlines
from otklik.guardrails.deadlines import Inputs
from otklik.guardrails.law import RULES, SITUATIONS
from otklik.guardrails.service import _production

RU = _production("RU", (), ())


def non_working(day: dt.date) -> bool:
    return not RU.day(day)[1]


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def run(situation: str, today: str = "2026-12-01", **kw):
    values = {k: (d(v) if k.endswith("_on") else Decimal(v) if k in ("price", "prepaid") else v)
              for k, v in kw.items()}
    found, missing = deadlines.obligations(situation, Inputs(**values), non_working, d(today))
    return {o["key"]: o for o in found}, missing


def test_the_issues_worked_example_refund_for_a_defect():
    # demand Tuesday 21 April 2026 + 10 days = Friday 1 May (holiday), 2–3 May weekend → Monday 4 May
    got, missing = run("defect", today="2026-04-30", demanded_on="2026-04-21", price="10000", in_stock=True,
                       quality_check=False)
    assert got["refund"]["due_on"] == "2026-05-04" and got["refund"]["starts_on"] == "2026-04-22"
    assert got["refund"]["article"] == "ЗоЗПП ст. 22" and got["refund"]["days_left"] == 4
    assert got["refund"]["penalty"] == "0.00" and missing == []
    late, _ = run("defect", today="2026-05-06", demanded_on="2026-04-21", price="10000", in_stock=True,
                  quality_check=False)
    assert late["refund"]["overdue_days"] == 2 and late["refund"]["penalty"] == "200.00"  # 1 % × 2 days
    assert late["refund"]["days_left"] == 0


def test_replacement_7_20_days_and_a_month():
    # 7 days from Friday 1 May (a holiday: the term still starts the next day) = 8 May (Friday, shortened but
    # working) → 8 May
    got, _ = run("defect", demanded_on="2026-05-01", in_stock=True, quality_check=False, price="5000")
    assert got["replacement"]["due_on"] == "2026-05-08" and got["replacement"]["article"] == "ЗоЗПП ст. 21 п. 1"
    # 20 days from Monday 20 April = 10 May (Sunday) → 11 May is the Victory Day transfer → Tuesday 12 May
    got, _ = run("defect", demanded_on="2026-04-20", in_stock=True, quality_check=True, price="5000")
    assert got["replacement"]["due_on"] == "2026-05-12"
    # a month from 31 January 2026 = 28 February (Saturday) → Monday 2 March
    got, _ = run("defect", demanded_on="2026-01-31", in_stock=False, price="5000")
    assert got["replacement"]["due_on"] == "2026-03-02"


def test_warranty_repair_45_days_and_the_penalty():
    # 45 days from Friday 13 November 2026 = Monday 28 December → working
    got, _ = run("warranty_repair", today="2026-12-28", demanded_on="2026-11-13", price="30000")
    assert got["repair"]["due_on"] == "2026-12-28" and got["repair"]["article"] == "ЗоЗПП ст. 20 п. 1"
    # 45 days from 17 November = 1 January 2027 (holiday), the New Year holidays and the weekend → 11 January
    got, _ = run("warranty_repair", today="2027-01-20", demanded_on="2026-11-17", price="30000")
    assert got["repair"]["due_on"] == "2027-01-11" and got["repair"]["overdue_days"] == 9
    assert got["repair"]["penalty"] == "2700.00"  # 30,000 × 1 % × 9


def test_distance_sale_7_days_3_months_and_the_refund():
    # delivered Tuesday 3 March 2026 + 7 = 10 March (working; 9 March was the transferred day off)
    got, _ = run("return_distance_sale", delivered_on="2026-03-03", return_terms_in_writing=True)
    assert got["refuse_goods"]["due_on"] == "2026-03-10" and got["refuse_goods"]["article"] == "ЗоЗПП ст. 26.1 п. 4"
    # delivered 1 March (Sunday) + 7 = 8 March (holiday, Sunday) → 9 March (transferred) → 10 March
    got, _ = run("return_distance_sale", delivered_on="2026-03-01", return_terms_in_writing=True)
    assert got["refuse_goods"]["due_on"] == "2026-03-10"
    # terms not given in writing: 3 months from 8 February 2026 = 8 May (Friday, working) → 8 May;
    # from 9 February = 9 May (Victory Day, Saturday) → 10 May Sunday → 11 May transferred → 12 May
    got, _ = run("return_distance_sale", delivered_on="2026-02-09", return_terms_in_writing=False)
    assert got["refuse_goods"]["due_on"] == "2026-05-12"
    # money back within 10 days of the demand: 26 December 2026 + 10 = 5 January 2027 → 11 January
    got, _ = run("return_distance_sale", delivered_on="2026-12-20", demanded_on="2026-12-26",
                 return_terms_in_writing=True)
    assert got["refund"]["due_on"] == "2027-01-11" and got["refund"]["penalty"] is None


def test_in_store_exchange_and_refund():
    # bought Saturday 21 February 2026: 14 days not counting that day = 7 March (Saturday) → 8 (Sunday,
    # holiday) → 9 (transferred) → Tuesday 10 March
    got, _ = run("return_in_store", purchased_on="2026-02-21")
    assert got["exchange"]["due_on"] == "2026-03-10" and got["exchange"]["article"] == "ЗоЗПП ст. 25 п. 1"
    # goods returned Wednesday 29 April 2026 + 3 = 2 May (Saturday) → Monday 4 May
    got, _ = run("return_in_store", purchased_on="2026-04-20", demanded_on="2026-04-29")
    assert got["refund"]["due_on"] == "2026-05-04" and got["refund"]["article"] == "ЗоЗПП ст. 25 п. 2"


def test_prepaid_delivery_and_late_service_penalties_with_caps():
    got, _ = run("late_delivery_prepaid", today="2026-06-20", agreed_delivery_on="2026-06-10", prepaid="8000",
                 demanded_on="2026-06-15")
    assert got["delivery"]["overdue_days"] == 10 and got["delivery"]["penalty"] == "400.00"  # 0.5 % × 8000 × 10
    assert got["delivery"]["article"] == "ЗоЗПП ст. 23.1 п. 3"
    # refund of the prepayment: 15 June + 10 = 25 June (Thursday)
    assert got["refund_prepayment"]["due_on"] == "2026-06-25"
    capped, _ = run("late_delivery_prepaid", today="2027-06-10", agreed_delivery_on="2026-06-10", prepaid="8000")
    assert capped["delivery"]["penalty"] == "8000.00"  # at most the prepaid sum
    got, _ = run("late_service", today="2026-05-05", agreed_delivery_on="2026-04-30", price="2500")
    assert got["service"]["overdue_days"] == 5 and got["service"]["penalty"] == "375.00"  # 3 % × 2500 × 5
    capped, _ = run("late_service", today="2026-08-30", agreed_delivery_on="2026-04-30", price="2500")
    assert capped["service"]["penalty"] == "2500.00"  # at most the price of the service


def test_missing_inputs_are_named_not_guessed():
    got, missing = run("return_distance_sale", delivered_on="2026-03-03")
    assert "refuse_goods" not in got and missing == ["return_terms_in_writing", "demanded_on"]
    got, missing = run("defect", today="2026-06-01", demanded_on="2026-04-21")
    assert got["refund"]["overdue_days"] > 0 and got["refund"]["penalty"] is None and "price" in missing
    assert "in_stock" in missing and "replacement" not in got


def test_every_shipped_rule_row_is_covered():
    covered = {("defect", "refund"), ("defect", "replacement"), ("warranty_repair", "repair"),
               ("return_distance_sale", "refuse_goods"), ("return_distance_sale", "refund"),
               ("return_in_store", "exchange"), ("return_in_store", "refund"), ("late_delivery_prepaid", "delivery"),
               ("late_delivery_prepaid", "refund_prepayment"), ("late_service", "service")}
    assert {(r.situation, r.key) for r in RULES} == covered
    assert set(SITUATIONS) == {r.situation for r in RULES}
    assert all("ст." in r.article for r in RULES)


def test_api_contract(client, ws):
    body = {"situation": "defect", "demanded_on": "2026-04-21", "price": 10000, "today": "2026-05-06",
            "in_stock": True, "quality_check": False}
    r = client.post("/api/v1/consumer-law/deadlines", json=body, headers=ws.agent)
    assert r.status_code == 200, r.text
    out = r.json()
    refund = next(o for o in out["obligations"] if o["key"] == "refund")
    assert {"key", "article", "starts_on", "due_on", "days_left", "overdue_days", "penalty"} <= set(refund)
    assert refund["due_on"] == "2026-05-04" and refund["overdue_days"] == 2 and refund["penalty"] == "200.00"
    assert "22" in refund["article"] and out["missing"] == []
    assert client.post("/api/v1/consumer-law/deadlines", json=body).status_code == 401


@pytest.mark.parametrize(("body", "field"), [
    ({"situation": "alien_abduction"}, "situation"),
    ({"situation": "defect", "purchased_on": "2026-05-01", "delivered_on": "2026-04-01"}, "delivered_on"),
    ({"situation": "defect", "purchased_on": "2026-05-01", "demanded_on": "2026-04-01"}, "demanded_on"),
    ({"situation": "defect", "price": -5}, "price"),
    ({"situation": "late_delivery_prepaid", "prepaid": -1}, "prepaid"),
    ({"situation": "defect", "demanded_on": "2026-13-40"}, "demanded_on"),
    ({"situation": "defect", "demanded_on": "1900-01-01"}, "demanded_on"),
    ({"situation": "defect", "price": "a lot"}, "price"),
])
def test_api_422_names_the_field(client, ws, body, field):
    r = client.post("/api/v1/consumer-law/deadlines", json=body, headers=ws.agent)
    assert r.status_code == 422, r.text
    assert field in [f["field"] for f in r.json()["error"]["fields"]], r.json()


def test_the_workspace_calendar_decides_non_working_days(client, ws):
    # the shop's own day off on Monday 4 May moves the worked example to Tuesday 5 May
    client.post("/api/v1/calendars", json={"name": "Москва", "time_zone": "Europe/Moscow", "holidays": "RU",
                                           "days_off": ["2026-05-04"]}, headers=ws.admin)
    r = client.post("/api/v1/consumer-law/deadlines", json={"situation": "defect", "demanded_on": "2026-04-21",
                                                            "today": "2026-04-22"}, headers=ws.agent)
    assert next(o for o in r.json()["obligations"] if o["key"] == "refund")["due_on"] == "2026-05-05"
