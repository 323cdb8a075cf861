"""A synthetic, realistic-looking helpdesk: customers, conversations, tags and messages (Russian + English).

Texts come from a small vocabulary of sentences, so the full-text index sees real morphology while the
generator stays fast: `search_terms` (the product's own stemming) is computed once per sentence variant,
and the per-message order number is spliced into the stems (checked against the real function on a sample).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from otklik.platform.html import text_to_html
from otklik.platform.text import search_terms

NUM = "7777777"  # placeholder token for an order number: stemmers leave digits alone

RU_CUSTOMER = [  # (sentence, weight)
    ("Где мой заказ №{n}?", 10), ("Оплатил заказ {n} три дня назад, статус не меняется.", 8),
    ("Курьер не приехал в назначенное время.", 5), ("Хочу оформить возврат, {p} не подошёл по размеру.", 5),
    ("Верните, пожалуйста, деньги за отменённый заказ.", 4), ("Не приходит код подтверждения на телефон.", 4),
    ("Приложение вылетает при открытии корзины.", 3), ("Можно ли изменить адрес доставки?", 4),
    ("Доставка задерживается уже неделю.", 4), ("{p} пришёл с повреждённой упаковкой.", 3),
    ("Подскажите, действует ли гарантия на {p}?", 0.15), ("Спасибо, вопрос решён!", 6),
    ("Не могу войти в личный кабинет, пишет неверный пароль.", 3),
    ("Списали деньги дважды, прошу вернуть лишний платёж.", 2), ("Когда снова появится {p} в наличии?", 3),
    ("Промокод не применяется к заказу.", 2), ("Прошу выставить счёт на юрлицо.", 1),
    ("Оператор обещал перезвонить, но так и не позвонил.", 2), ("Уточните срок доставки в Казань.", 3),
]
RU_AGENT = [
    ("Проверяю информацию по вашему заказу.", 6), ("Передали запрос в службу доставки, ответим в течение дня.", 4),
    ("Возврат оформлен, деньги поступят в течение 3–5 рабочих дней.", 3), ("Приносим извинения за неудобства.", 4),
    ("Отправили новый код подтверждения.", 1), ("Уточните, пожалуйста, номер заказа.", 3),
    ("Курьер свяжется с вами завтра до 12:00.", 2), ("Рады были помочь!", 3),
]
EN_CUSTOMER = [
    ("Where is my order #{n}?", 10), ("I was charged twice, please refund the second payment.", 3),
    ("My parcel shows delivered but nothing arrived.", 4), ("The {p} arrived broken.", 3),
    ("Can I change the delivery address?", 4), ("The app crashes when I open the cart.", 3),
    ("Is the {p} covered by warranty?", 0.15), ("Please send an invoice for order {n}.", 2),
    ("I can't log in, the password reset does not work.", 3), ("Thanks, that solved it.", 6),
    ("When will the {p} be back in stock?", 3), ("The promo code does not work at checkout.", 2),
    ("I want to return the {p}, it does not fit.", 4),
]
EN_AGENT = [
    ("Let me check your order.", 6), ("We have asked the courier for an update.", 4),
    ("Your refund has been processed and will arrive in 3-5 business days.", 3),
    ("Sorry for the inconvenience.", 4), ("Could you share your order number?", 3), ("Happy to help!", 3),
]
GREETING = {"ru": ["Здравствуйте!", "Добрый день.", "Привет."], "en": ["Hello,", "Hi there.", "Good morning."]}
NOTES = ["Клиент VIP, проверить вручную.", "Duplicate of an older request.", "Escalated to logistics."]
PRODUCTS = {"ru": ["телефон", "ноутбук", "пылесос", "чайник", "кроссовки", "куртка", "наушники", "холодильник"],
            "en": ["phone", "laptop", "vacuum cleaner", "kettle", "sneakers", "jacket", "headphones", "fridge"]}
FIRST = {"ru": ["Анна", "Иван", "Мария", "Сергей", "Ольга", "Дмитрий", "Елена", "Алексей", "Наталья", "Павел"],
         "en": ["John", "Emma", "Liam", "Olivia", "Noah", "Ava", "James", "Mia"]}
LAST = {"ru": ["Иванов", "Смирнова", "Кузнецов", "Попова", "Соколов", "Лебедева", "Новиков", "Морозова"],
        "en": ["Smith", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Clark"]}
TAGS = [("delivery", 30), ("refund", 18), ("billing", 14), ("bug", 8), ("vip", 6), ("return", 10), ("app", 6),
        ("complaint", 4), ("wholesale", 1.5), ("b2b", 1), ("feedback", 3), ("callback", 0.5)]
CHANNELS = [("email", 35), ("telegram", 20), ("widget", 20), ("whatsapp", 10), ("vk", 5), ("api", 5), ("phone", 5)]
CATEGORIES = [None, None, "delivery", "payment", "returns", "account", "product"]
PRIORITY_WEIGHTS = ((0, 10), (1, 70), (2, 15), (3, 5))  # low, normal, high, urgent (stored rank)


@dataclass
class Sentence:
    text: str  # may hold NUM
    terms: str  # may hold NUM


@dataclass
class Pools:
    customer: dict[str, tuple[list[Sentence], list[float]]] = field(default_factory=dict)
    agent: dict[str, tuple[list[Sentence], list[float]]] = field(default_factory=dict)
    greeting: dict[str, list[Sentence]] = field(default_factory=dict)
    notes: list[Sentence] = field(default_factory=list)


def _variants(sentences: list[tuple[str, float]], lang: str) -> tuple[list[Sentence], list[float]]:
    out, weights = [], []
    for text, w in sentences:
        products = PRODUCTS[lang] if "{p}" in text else [""]
        for p in products:
            t = text.replace("{p}", p).replace("{n}", NUM)
            t = t[0].upper() + t[1:]
            out.append(Sentence(t, search_terms(t)))
            weights.append(w / len(products))
    return out, weights


def build_pools() -> Pools:
    pools = Pools()
    pools.customer = {"ru": _variants(RU_CUSTOMER, "ru"), "en": _variants(EN_CUSTOMER, "en")}
    pools.agent = {"ru": _variants(RU_AGENT, "ru"), "en": _variants(EN_AGENT, "en")}
    pools.greeting = {lang: [Sentence(g, search_terms(g)) for g in gs] for lang, gs in GREETING.items()}
    pools.notes = [Sentence(n, search_terms(n)) for n in NOTES]
    return pools


def _compose(parts: list[Sentence], rng: random.Random) -> tuple[str, str]:
    text = " ".join(p.text for p in parts)
    terms = " ".join(p.terms for p in parts if p.terms)
    if NUM in text:
        n = str(rng.randint(100000, 999999))
        text, terms = text.replace(NUM, n), terms.replace(NUM, n)
    return text, terms


def customer_text(pools: Pools, lang: str, rng: random.Random) -> tuple[str, str]:
    sentences, weights = pools.customer[lang]
    parts = [rng.choice(pools.greeting[lang])] if rng.random() < 0.5 else []
    parts += rng.choices(sentences, weights, k=1 if rng.random() < 0.6 else 2)
    return _compose(parts, rng)


def agent_text(pools: Pools, lang: str, rng: random.Random) -> tuple[str, str]:
    sentences, weights = pools.agent[lang]
    return _compose(rng.choices(sentences, weights, k=1 if rng.random() < 0.5 else 2), rng)


def check_terms(pools: Pools, n: int = 2000) -> None:
    """The spliced stems equal what the product computes for the same text."""
    rng = random.Random(1)
    for i in range(n):
        lang = "ru" if i % 2 else "en"
        text, terms = (customer_text if i % 3 else agent_text)(pools, lang, rng)
        if search_terms(text) != terms:
            raise SystemExit(f"search_terms mismatch for {text!r}: {search_terms(text)!r} != {terms!r}")


@dataclass
class Shape:
    conversations: int = 100_000
    messages: int = 1_000_000
    customers: int = 20_000
    agents: int = 30
    teams: int = 6
    days: int = 365
    seed: int = 42


def _weighted(rng: random.Random, pairs: list[tuple[Any, float]] | tuple[tuple[Any, float], ...]) -> Any:
    return rng.choices([p[0] for p in pairs], [p[1] for p in pairs])[0]


def _status(rng: random.Random, age_days: float) -> str:
    if age_days < 2:
        pairs = (("new", 30), ("open", 45), ("pending", 15), ("solved", 10))
    elif age_days < 14:
        pairs = (("new", 4), ("open", 20), ("pending", 16), ("solved", 35), ("closed", 25))
    else:
        pairs = (("new", 1), ("open", 4), ("pending", 3), ("solved", 10), ("closed", 82))
    return _weighted(rng, pairs)


def customers(shape: Shape) -> Iterator[dict[str, Any]]:
    rng = random.Random(shape.seed + 1)
    for k in range(1, shape.customers + 1):
        lang = "ru" if rng.random() < 0.65 else "en"
        name = f"{rng.choice(FIRST[lang])} {rng.choice(LAST[lang])}"
        email = f"customer{k}@example.com"
        yield {"id": k, "name": name, "language": lang, "email": email, "terms": search_terms(name, email)}


def generate(shape: Shape, pools: Pools, customer_langs: list[str], now: dt.datetime
             ) -> Iterator[tuple[dict[str, Any], list[str], list[dict[str, Any]]]]:
    """Yields (conversation, tags, messages) in id order; conversation ids are 1..N, message ids 1..M."""
    rng = random.Random(shape.seed)
    # Message counts per conversation: 1..19 (mean 10), scaled to hit exactly `messages`.
    counts = [rng.randint(1, 19) for _ in range(shape.conversations)]
    diff = shape.messages - sum(counts)
    while diff != 0:
        i = rng.randrange(shape.conversations)
        step = 1 if diff > 0 else -1
        if 1 <= counts[i] + step <= 40:
            counts[i] += step
            diff -= step
    # Creation times spread over `days`, ascending with the id.
    starts = sorted(rng.random() * shape.days for _ in range(shape.conversations))
    msg_id = 0
    for i in range(shape.conversations):
        cid = i + 1
        age = shape.days - starts[i]
        created = now - dt.timedelta(days=age)
        customer_id = rng.randint(1, shape.customers)
        lang = customer_langs[customer_id - 1]
        channel = _weighted(rng, CHANNELS)
        status = _status(rng, age)
        priority = _weighted(rng, PRIORITY_WEIGHTS)
        assigned = rng.random() < (0.4 if status == "new" else 0.9)
        assignee = rng.randint(2, shape.agents + 1) if assigned else None  # user 1 is the admin
        team = rng.randint(1, shape.teams) if rng.random() < 0.7 else None
        tags = []
        if rng.random() < 0.4:
            tags = sorted({_weighted(rng, TAGS) for _ in range(rng.randint(1, 3))})
        # Messages: customer first, then alternating, a few minutes to hours apart, never in the future.
        span = min(age, 3.0) * 86400  # seconds the thread may span
        n = counts[i]
        offsets = sorted(rng.random() * span for _ in range(n - 1))
        times = [created] + [created + dt.timedelta(seconds=o) for o in offsets]
        msgs = []
        last_public = last_customer = created
        preview = ""
        first_response = None
        for j, when in enumerate(times):
            inbound = j == 0 or rng.random() < 0.5
            internal = not inbound and rng.random() < 0.03
            msg_id += 1
            if internal:
                s = rng.choice(pools.notes)
                text, terms = s.text, s.terms
            elif inbound:
                text, terms = customer_text(pools, lang, rng)
            else:
                text, terms = agent_text(pools, lang, rng)
            agent = None if inbound else (assignee or rng.randint(2, shape.agents + 1))
            msgs.append({
                "id": msg_id, "conversation_id": cid, "channel": channel,
                "direction": "inbound" if inbound else "outbound",
                "author_kind": "customer" if inbound else "agent", "author_user_id": agent,
                "body_text": text, "body_html": text_to_html(text), "is_internal": internal,
                "channel_message_id": f"{channel}-{msg_id}" if inbound else None,
                "delivery_status": "received" if inbound else ("not_sent" if internal else "delivered"),
                "search_terms": terms, "created_at": when})
            if inbound:
                last_customer = when
            if not internal:
                last_public = when
                preview = " ".join(text.split())[:200]
                if not inbound and first_response is None:
                    first_response = when
        solved_at = closed_at = None
        if status in ("solved", "closed"):
            solved_at = times[-1] + dt.timedelta(minutes=rng.randint(1, 600))
            if status == "closed":
                closed_at = solved_at + dt.timedelta(days=rng.randint(1, 7))
            solved_at = min(solved_at, now)
            closed_at = min(closed_at, now) if closed_at else None
        conv = {
            "id": cid, "number": cid, "customer_id": customer_id, "channel": channel,
            "subject": msgs[0]["body_text"][:80], "status": status, "priority": priority,
            "category": rng.choice(CATEGORIES), "language": lang, "assignee_id": assignee, "team_id": team,
            "version": n + 1, "message_count": n, "last_message_preview": preview, "created_at": created,
            "updated_at": max(times[-1], solved_at or times[-1], closed_at or times[-1]),
            "last_message_at": last_public, "last_customer_message_at": last_customer,
            "first_response_at": first_response, "solved_at": solved_at, "closed_at": closed_at}
        yield conv, tags, msgs
