"""Consumer-law deadlines and penalties from the rules in law.py.

Counting (ГК РФ): a term set as a period starts on the day after its event (ст. 191); a term in days ends at
the end of its last day, a term in months on the same day of the last month or that month's last day (ст. 192);
a last day that is a non-working day moves to the next working day (ст. 193) — non-working by the production
calendar: Saturdays and Sundays, public holidays and their transfers, the workspace's own days off (its
default business calendar; the Russian production calendar when it has none). An agreed date (delivery,
service) is the due date itself. A penalty accrues for each day after the due date up to and including
`today`, at the rule's rate of its base, capped where the law caps it; money is rounded to kopecks.
A missing input is reported by name in `missing`, never guessed.
"""

from __future__ import annotations

import calendar as month_calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from otklik.guardrails.law import RULES, SITUATIONS, Rule

DATE_FIELDS = ("purchased_on", "delivered_on", "demanded_on", "agreed_delivery_on", "today")
MONEY_FIELDS = ("price", "prepaid")
FLAG_FIELDS = ("distance_sale", "return_terms_in_writing", "quality_check", "in_stock")
KOPECK = Decimal("0.01")


@dataclass(frozen=True)
class Inputs:
    purchased_on: dt.date | None = None
    delivered_on: dt.date | None = None
    demanded_on: dt.date | None = None
    agreed_delivery_on: dt.date | None = None
    today: dt.date | None = None
    price: Decimal | None = None
    prepaid: Decimal | None = None
    distance_sale: bool | None = None
    return_terms_in_writing: bool | None = None
    quality_check: bool | None = None
    in_stock: bool | None = None

    def get(self, name: str) -> Any:
        return getattr(self, name)


class InputError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check(situation: str, inputs: Inputs) -> None:
    """Impossible input is an error naming the field (the API's 422)."""
    if situation not in SITUATIONS:
        raise InputError("situation", f"one of: {', '.join(SITUATIONS)}")
    for name in DATE_FIELDS:
        value = inputs.get(name)
        if value is not None and not 1992 <= value.year <= 2100:
            raise InputError(name, "a date from 1992 to 2100")
    bought = inputs.purchased_on
    for name in ("delivered_on", "demanded_on", "agreed_delivery_on"):
        value = inputs.get(name)
        if bought is not None and value is not None and value < bought:
            raise InputError(name, f"is before purchased_on ({bought.isoformat()})")
    if inputs.delivered_on and inputs.demanded_on and inputs.demanded_on < inputs.delivered_on \
            and situation == "return_distance_sale":
        raise InputError("demanded_on", "a refund after a refusal comes after the delivery")
    for name in MONEY_FIELDS:
        value = inputs.get(name)
        if value is not None and (value < 0 or not value.is_finite()):
            raise InputError(name, "a sum in roubles, not negative")
        if value is not None and value > Decimal("1e12"):
            raise InputError(name, "at most 1,000,000,000,000 roubles")


def add_months(start: dt.date, months: int) -> dt.date:
    """ГК ст. 192 п. 3: the same day of the last month, or that month's last day."""
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return dt.date(year, month, min(start.day, month_calendar.monthrange(year, month)[1]))


def due_date(rule: Rule, start: dt.date, non_working: Callable[[dt.date], bool]) -> tuple[dt.date, dt.date]:
    """(starts_on, due_on) of a rule from its event's date."""
    if rule.fixed_date:
        return start, start
    starts_on = start + dt.timedelta(days=1)  # ГК ст. 191
    if rule.months:
        due = add_months(start, rule.months)
    elif rule.working_days:
        due, left = start, rule.days
        while left:
            due += dt.timedelta(days=1)
            if not non_working(due):
                left -= 1
    else:
        due = start + dt.timedelta(days=rule.days)
    while non_working(due):  # ГК ст. 193
        due += dt.timedelta(days=1)
    return starts_on, due


def _applies(rule: Rule, inputs: Inputs) -> tuple[bool, list[str]]:
    """(applies, unknown inputs its condition needs); a known input with another value rules it out."""
    unknown = []
    for name, wanted in rule.when:
        value = inputs.get(name)
        if value is None:
            unknown.append(name)
        elif value != wanted:
            return False, []
    return not unknown, unknown


@dataclass(frozen=True)
class ShopTerm:
    """A workspace's own term for one of the law's obligations (e.g. «возврат 30 дней» for `refuse_goods`)."""

    situation: str
    key: str
    days: int = 0
    months: int = 0
    title: str = ""


SHOP_ARTICLE = "Условия магазина"


def _shop_due(law: Rule, term: ShopTerm, start: dt.date,
              non_working: Callable[[dt.date], bool]) -> tuple[dt.date, dt.date]:
    from dataclasses import replace

    return due_date(replace(law, days=term.days, months=term.months, working_days=False, fixed_date=False),
                    start, non_working)


def obligations(situation: str, inputs: Inputs, non_working: Callable[[dt.date], bool],
                today: dt.date, shop_terms: tuple[ShopTerm, ...] = ()) -> tuple[list[dict[str, Any]], list[str]]:
    """What the seller owes. With a shop's own term for an obligation, the stricter for the seller is shown: the
    later end of a customer's window (refuse, exchange), the earlier due date of a seller's duty (refund...);
    `source` says which ("law" or "shop"), `law_due_on` keeps the law's date. A penalty counts from the law's
    due date only (the law sets it; a promise kept late is a matter for the shop's own terms)."""
    check(situation, inputs)
    missing: list[str] = []

    def need(name: str) -> None:
        if name not in missing:
            missing.append(name)

    out = []
    rows = [r for r in RULES if r.situation == situation]
    for key in dict.fromkeys(r.key for r in rows):
        group = [r for r in rows if r.key == key]
        chosen = None
        for rule in group:
            ok, _ = _applies(rule, inputs)
            if ok:
                chosen = rule
                break
        if chosen is None:
            for rule in group:
                for name in _applies(rule, inputs)[1]:
                    need(name)
            continue
        start = inputs.get(chosen.start)
        if start is None:
            need(chosen.start)
            continue
        starts_on, due_on = due_date(chosen, start, non_working)
        law_due_on, source, title, article = due_on, "law", chosen.title, chosen.article
        term = next((t for t in shop_terms if t.situation == situation and t.key == key), None)
        if term is not None and not chosen.fixed_date:
            _, shop_due = _shop_due(chosen, term, start, non_working)
            if (shop_due > due_on) if chosen.customer_window else (shop_due < due_on):
                due_on, source = shop_due, "shop"
                title = term.title or chosen.title
                article = f"{SHOP_ARTICLE} (строже, чем {chosen.article})"
        overdue = max((today - due_on).days, 0)
        law_overdue = max((today - law_due_on).days, 0)
        penalty = None
        if chosen.penalty_rate is not None:
            base = inputs.get(chosen.penalty_base)
            if base is None:
                if law_overdue:
                    need(chosen.penalty_base)
            else:
                amount = base * chosen.penalty_rate * law_overdue
                cap = inputs.get(chosen.penalty_cap) if chosen.penalty_cap else None
                if cap is not None:
                    amount = min(amount, cap)
                penalty = str(amount.quantize(KOPECK, rounding=ROUND_HALF_UP))
        out.append({"key": chosen.key, "title": title, "article": article, "source": source,
                    "law_due_on": law_due_on.isoformat(), "customer_window": chosen.customer_window,
                    "starts_on": starts_on.isoformat(), "due_on": due_on.isoformat(),
                    "days_left": max((due_on - today).days, 0), "overdue_days": overdue, "penalty": penalty,
                    "penalty_article": chosen.penalty_article or None,
                    "penalty_rate_per_day": str(chosen.penalty_rate) if chosen.penalty_rate is not None else None})
    return out, missing


def inputs_from(data: dict[str, Any]) -> Inputs:
    known = {f.name for f in fields(Inputs)}
    return Inputs(**{k: v for k, v in data.items() if k in known})
