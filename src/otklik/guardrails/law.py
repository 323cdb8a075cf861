"""Consumer-law obligations as data: the shipped, versioned table of what a seller owes, by situation.

Source: Закон РФ от 07.02.1992 № 2300-1 «О защите прав потребителей» (ЗоЗПП) and ГК РФ ст. 191–193 (how a term
is counted). Each row names its article; the calculator (deadlines.py) reads only this table. A workspace's own,
more generous terms (a shop's «возврат 30 дней») are meant to extend it; the stricter for the seller wins.

Situations are a fixed, documented list (a workspace maps its own contact reasons to them):
return_distance_sale, return_in_store, defect, warranty_repair, late_delivery_prepaid, late_service.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

LAW_VERSION = "2026-12-07"  # the table below; bump when a row changes

SITUATIONS = ("return_distance_sale", "return_in_store", "defect", "warranty_repair", "late_delivery_prepaid",
              "late_service")


@dataclass(frozen=True)
class Rule:
    situation: str
    key: str  # what is owed, e.g. "refund"
    title: str  # in Russian, for the side bar
    article: str  # «ЗоЗПП ст. 22»-style, with the article number
    start: str  # the event whose next day starts the term (ГК ст. 191): one of the input date fields
    days: int = 0  # a term in days …
    months: int = 0  # … or in months (ГК ст. 192 п. 3)
    working_days: bool = False  # counted in working days of the production calendar (no shipped row is)
    fixed_date: bool = False  # `start` is itself the due date (an agreed delivery or service date)
    when: tuple[tuple[str, object], ...] = ()  # the row applies only when these inputs have these values
    penalty_rate: Decimal | None = None  # a share of `penalty_base` per day of delay
    penalty_base: str = "price"  # "price" or "prepaid"
    penalty_cap: str | None = None  # the penalty is at most this input ("price", "prepaid")
    penalty_article: str = ""
    # the term is the customer's window to use a right (refuse, exchange): a shop's promise can only lengthen
    # it; otherwise it is the seller's duty, which a shop's promise can only shorten
    customer_window: bool = False


ONE_PERCENT = Decimal("0.01")  # ЗоЗПП ст. 23 п. 1: 1 % of the price of the goods per day of delay
HALF_PERCENT = Decimal("0.005")  # ЗоЗПП ст. 23.1 п. 3: 0.5 % of the prepaid sum per day, at most the prepaid sum
THREE_PERCENT = Decimal("0.03")  # ЗоЗПП ст. 28 п. 5: 3 % of the price of the service per day, at most its price

RULES: tuple[Rule, ...] = (
    # ЗоЗПП ст. 26.1 п. 4: a distance sale can be refused within 7 days after delivery when the return terms were
    # given in writing at delivery, within 3 months when they were not; money back within 10 days of the demand.
    Rule("return_distance_sale", "refuse_goods", "Отказ от товара надлежащего качества", "ЗоЗПП ст. 26.1 п. 4",
         start="delivered_on", days=7, when=(("return_terms_in_writing", True),), customer_window=True),
    Rule("return_distance_sale", "refuse_goods", "Отказ от товара (условия возврата не вручены письменно)",
         "ЗоЗПП ст. 26.1 п. 4", start="delivered_on", months=3, when=(("return_terms_in_writing", False),),
         customer_window=True),
    Rule("return_distance_sale", "refund", "Возврат денег за товар", "ЗоЗПП ст. 26.1 п. 4", start="demanded_on",
         days=10),
    # ЗоЗПП ст. 25: exchange of a good-quality item within 14 days, not counting the day of purchase; without a
    # similar item for exchange, money back within 3 days of returning the goods.
    Rule("return_in_store", "exchange", "Обмен товара надлежащего качества", "ЗоЗПП ст. 25 п. 1",
         start="purchased_on", days=14, customer_window=True),
    Rule("return_in_store", "refund", "Возврат денег, если аналогичного товара нет", "ЗоЗПП ст. 25 п. 2",
         start="demanded_on", days=3),
    # ЗоЗПП ст. 22 (refund, price reduction: 10 days from the demand) and ст. 21 п. 1 (replacement: 7 days;
    # 20 with a quality check; a month when the goods are out of stock); delays: ст. 23 п. 1, 1 % a day.
    Rule("defect", "refund", "Возврат денег (уменьшение цены, возмещение расходов на ремонт)", "ЗоЗПП ст. 22",
         start="demanded_on", days=10, penalty_rate=ONE_PERCENT, penalty_article="ЗоЗПП ст. 23 п. 1"),
    Rule("defect", "replacement", "Замена товара", "ЗоЗПП ст. 21 п. 1", start="demanded_on", days=7,
         when=(("quality_check", False), ("in_stock", True)), penalty_rate=ONE_PERCENT,
         penalty_article="ЗоЗПП ст. 23 п. 1"),
    Rule("defect", "replacement", "Замена товара (с проверкой качества)", "ЗоЗПП ст. 21 п. 1", start="demanded_on",
         days=20, when=(("quality_check", True), ("in_stock", True)), penalty_rate=ONE_PERCENT,
         penalty_article="ЗоЗПП ст. 23 п. 1"),
    Rule("defect", "replacement", "Замена товара (нет в наличии)", "ЗоЗПП ст. 21 п. 1", start="demanded_on",
         months=1, when=(("in_stock", False),), penalty_rate=ONE_PERCENT, penalty_article="ЗоЗПП ст. 23 п. 1"),
    # ЗоЗПП ст. 20 п. 1: a warranty repair takes at most 45 days; delays: ст. 23 п. 1.
    Rule("warranty_repair", "repair", "Гарантийный ремонт (не более 45 дней)", "ЗоЗПП ст. 20 п. 1",
         start="demanded_on", days=45, penalty_rate=ONE_PERCENT, penalty_article="ЗоЗПП ст. 23 п. 1"),
    # ЗоЗПП ст. 23.1: prepaid goods not delivered by the agreed date: 0.5 % of the prepaid sum a day, at most the
    # prepaid sum; the prepayment is refunded within 10 days of the demand.
    Rule("late_delivery_prepaid", "delivery", "Передача предварительно оплаченного товара", "ЗоЗПП ст. 23.1 п. 3",
         start="agreed_delivery_on", fixed_date=True, penalty_rate=HALF_PERCENT, penalty_base="prepaid",
         penalty_cap="prepaid", penalty_article="ЗоЗПП ст. 23.1 п. 3"),
    Rule("late_delivery_prepaid", "refund_prepayment", "Возврат предоплаты по требованию", "ЗоЗПП ст. 23.1 п. 2",
         start="demanded_on", days=10),
    # ЗоЗПП ст. 28 п. 5: a service (installation, assembly) late against the agreed date: 3 % of its price a day,
    # at most its price.
    Rule("late_service", "service", "Выполнение работы (услуги) в срок", "ЗоЗПП ст. 28 п. 5",
         start="agreed_delivery_on", fixed_date=True, penalty_rate=THREE_PERCENT, penalty_cap="price",
         penalty_article="ЗоЗПП ст. 28 п. 5"),
)


def keys_of(situation: str) -> tuple[str, ...]:
    """The obligations a situation has, in table order."""
    return tuple(dict.fromkeys(r.key for r in RULES if r.situation == situation))


def rule_of(situation: str, key: str) -> Rule | None:
    return next((r for r in RULES if r.situation == situation and r.key == key), None)
