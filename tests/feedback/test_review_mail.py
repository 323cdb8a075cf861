"""Review sites' notification e-mails: one sample per site (written after the sites' notifications), each read
into the review it announces; a mail from elsewhere or one the parser cannot read is a 422 naming what is
missing, never a wrong review; the endpoint turns a forwarded notification into a review conversation once."""

from __future__ import annotations

import pytest

from otklik.feedback import review_mail
from otklik.platform.errors import DomainError

YANDEX = """From: =?utf-8?b?0K/QvdC00LXQutGBINCR0LjQt9C90LXRgQ==?= <noreply@business.yandex.ru>
To: shop@example.com
Subject: =?utf-8?b?0J3QvtCy0YvQuSDQvtGC0LfRi9CyINC+INCy0LDRiNC10Lkg0L7RgNCz0LDQvdC40LfQsNGG0LjQuA==?=
Date: Mon, 30 Nov 2026 10:15:00 +0300
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Здравствуйте!

Пользователь Анна П. оставил(а) новый отзыв об организации «Магазин Отклик» на Яндекс Картах.

Оценка: 2 из 5

Текст отзыва:
Заказ привезли на неделю позже,
курьер не позвонил заранее.

Ответить на отзыв: https://yandex.ru/sprav/12345/p/edit/reviews?review=Ab3dE-9xYz

Это письмо отправлено автоматически.
"""

GIS = """From: 2GIS <noreply@2gis.ru>
To: shop@example.com
Subject: =?utf-8?b?0J3QvtCy0YvQuSDQvtGC0LfRi9CyINCyIDLQk9CY0KE=?=
Date: Tue, 01 Dec 2026 09:00:00 +0300
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Игорь оценил вашу компанию «Магазин Отклик» на 5 ★

Текст отзыва:
Всё пришло вовремя, спасибо!

Перейти к отзыву: https://2gis.ru/moscow/firm/70000001/tab/reviews/review/987654
"""

FLAMP = """From: Flamp <robot@flamp.ru>
To: shop@example.com
Subject: =?utf-8?b?0J3QvtCy0YvQuSDQvtGC0LfRi9CyINC90LAgRmxhbXA=?=
Date: Wed, 02 Dec 2026 12:00:00 +0300
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: 8bit

<html><body><p>На Flamp новый отзыв о компании «Магазин Отклик».</p>
<p>Автор: Мария</p><p>Оценка: 3</p>
<p>Отзыв:<br>Нормально, но упаковка была мятая &amp; без чека.</p>
<p></p><p><a href="https://moscow.flamp.ru/firm/magazin_otklik-70000001/otzyv-555111">Читать на Flamp</a></p>
</body></html>
"""

OTZOVIK = """From: Otzovik <info@otzovik.com>
To: shop@example.com
Subject: =?utf-8?b?0J3QsCDQntGC0LfQvtCy0LjQutC1INC+0L/Rg9Cx0LvQuNC60L7QstCw0L0g0L3QvtCy0YvQuSDQvtGC0LfRi9Cy?=
Date: Thu, 03 Dec 2026 18:30:00 +0300
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Автор: oleg_k
Рейтинг: 1/5

Отзыв:
Чайник сломался через месяц, в сервисе отказали в гарантии.

Ссылка: https://otzovik.com/review_1234567.html
"""


@pytest.mark.parametrize(("raw", "platform", "rating", "author", "text", "external_id"), [
    (YANDEX, "yandex_maps", 2, "Анна П.", "Заказ привезли на неделю позже, курьер не позвонил заранее.",
     "Ab3dE-9xYz"),
    (GIS, "2gis", 5, "Игорь", "Всё пришло вовремя, спасибо!", "987654"),
    (FLAMP, "flamp", 3, "Мария", "Нормально, но упаковка была мятая & без чека.", "555111"),
    (OTZOVIK, "otzovik", 1, "oleg_k", "Чайник сломался через месяц, в сервисе отказали в гарантии.", "1234567"),
])
def test_each_site_is_read(raw, platform, rating, author, text, external_id):
    got = review_mail.parse(raw.encode())
    assert (got.platform, got.rating, got.author, got.text, got.external_id) == (platform, rating, author, text,
                                                                                 external_id)
    assert got.link.startswith("https://") and got.posted_at is not None and got.source == "email"


def test_other_mail_and_unreadable_mail_are_refused():
    with pytest.raises(DomainError) as exc:
        review_mail.parse(YANDEX.replace("noreply@business.yandex.ru", "spam@example.com").encode())
    assert exc.value.fields[0]["field"] == "from"
    with pytest.raises(DomainError) as exc:  # the site changed its wording: no link, no review
        review_mail.parse(OTZOVIK.replace("https://otzovik.com/review_1234567.html", "(ссылка)").encode())
    assert "no link" in exc.value.message
    with pytest.raises(DomainError):
        review_mail.parse(b"\x00\xff" * 10)
    with pytest.raises(DomainError):
        review_mail.parse(b"x" * (review_mail.MAX_MAIL + 1))


def test_the_endpoint_makes_a_review_conversation_once(client, ws):
    r = client.post("/api/v1/reviews/email", content=GIS.encode(), headers={**ws.agent,
                                                                             "Content-Type": "message/rfc822"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["created"] and got["platform"] == "2gis" and got["rating"] == 5 and got["source"] == "email"
    again = client.post("/api/v1/reviews/email", content=GIS.encode(), headers=ws.agent).json()
    assert again["created"] is False and again["conversation_id"] == got["conversation_id"]
    r = client.post("/api/v1/reviews/email", content=b"From: a@b.c\n\nhello", headers=ws.agent)
    assert r.status_code == 422 and "from" in r.text
