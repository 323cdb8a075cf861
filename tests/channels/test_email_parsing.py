"""MIME parsing of recorded-shape fixtures: charsets, quoted history and signatures of the common clients,
auto-replies and bounces, subjects and ticket tags."""

from __future__ import annotations

import pytest

from otklik.channels.email.parsing import (
    decode_bytes,
    decode_header,
    normalise_id,
    parse_email,
    strip_subject,
    subject_ticket_number,
    trim_html,
    trim_text,
)
from otklik.platform.html import html_to_text, sanitize_html
from tests.channels.email_peers import fixture

RU = "Здравствуйте! Подскажите, когда приедет курьер с заказом?"


@pytest.mark.parametrize("codec", ["cp1251", "koi8_r", "utf-8"])
@pytest.mark.parametrize("label", [None, "us-ascii", "iso-8859-1", "koi8-r", "windows-1251", "x-unknown", "koi8r"])
def test_russian_text_survives_any_label(codec, label):
    data = RU.encode(codec)
    assert decode_bytes(data, label) == RU


def test_headers_in_every_encoding():
    assert decode_header("=?KOI8-R?B?8NLJ18XU?=") == "Привет"
    assert decode_header("=?windows-1251?Q?=CF=F0=E8=E2=E5=F2?= =?utf-8?B?0LzQuNGA?=") == "Приветмир"
    assert decode_header("Заказ".encode("cp1251").decode("ascii", "surrogateescape")) == "Заказ"


@pytest.mark.parametrize(("name", "shown", "gone"), [
    ("gmail_reply.eml", "Спасибо, получил!", "передан в доставку"),
    ("yandex_reply.eml", "Когда будет возврат?", "Возврат оформлен"),
    ("mailru_reply.eml", "Хорошо, жду курьера завтра.", "с 10 до 14"),
    ("apple_mail_reply.eml", "Thanks, that works for me.", "delivery window"),
    ("thunderbird_reply.eml", "Понял, спасибо за разъяснение.", "Гарантия"),
    ("cp1251_outlook_reply.eml", "Да, адрес доставки верный", "Подтвердите"),
])
def test_quoted_history_and_signature_trimmed(name, shown, gone):
    mail = parse_email(fixture(name))
    text = trim_text(mail.text)
    assert shown in text and gone not in text
    assert "Sent from my iPhone" not in text and "Яндекс Почты" not in text and "С уважением" not in text
    assert gone in mail.text  # the original keeps everything
    if mail.html:
        html_text = html_to_text(sanitize_html(trim_html(mail.html)))
        assert shown in html_text and gone not in html_text


def test_trimming_never_leaves_nothing():
    assert trim_text("> только цитата\n> и всё") == "> только цитата\n> и всё"
    html = "<blockquote type='cite'>quoted</blockquote><p>answer below the quote</p>"
    assert trim_html(html) == html


def test_signature_dash_dash_and_closing():
    assert trim_text("Верните деньги.\n\nС уважением,\nИван\n+7 900 000-00-00") == "Верните деньги."
    assert trim_text("Верните деньги.\n-- \nИван Петров") == "Верните деньги."


def test_auto_replies_and_bounces_recognised():
    assert parse_email(fixture("autoreply.eml")).auto_reply == "Auto-Submitted: auto-replied"
    assert parse_email(fixture("koi8r_plain.eml")).auto_reply is None
    bounce = parse_email(fixture("dsn_bounce.eml", OUR_MESSAGE_ID="abc@shop.example")).bounce
    assert bounce is not None and bounce.original_ids == ["abc@shop.example"]
    assert bounce.status == "5.1.1" and bounce.recipient == "nobody@romashka.example"
    plain = (b"From: MAILER-DAEMON@mx.example\r\nTo: s@shop.example\r\nSubject: Mail delivery failed\r\n"
             b"Message-ID: <b1@mx.example>\r\n\r\nA message could not be delivered.\r\n\r\n------ This is a copy"
             b" of the message headers\r\n\r\nMessage-ID: <ours-1@shop.example>\r\nSubject: Re: x\r\n")
    assert parse_email(plain).bounce.original_ids == ["ours-1@shop.example"]
    delayed = fixture("dsn_bounce.eml", OUR_MESSAGE_ID="abc@shop.example").replace(b"Action: failed", b"Action: delayed")
    assert parse_email(delayed).bounce is None


def test_subjects_and_ids():
    assert strip_subject("RE: Fwd: Ответ: Доставка [#7]") == "Доставка"
    assert subject_ticket_number("Re: Доставка [#7]") == 7
    assert subject_ticket_number("Заказ #7") is None
    assert normalise_id(" <a@b> ") == "a@b"
    assert normalise_id("<" + "x" * 300 + "@b>").startswith("sha256:")


def test_missing_message_id_is_stable():
    raw = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
    first, second = parse_email(raw), parse_email(raw)
    assert first.synthesised_id and first.message_id == second.message_id


def test_garbage_does_not_raise():
    for raw in (b"", b"\x00\xff\xfe", b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n", b"From: \r\n\r\n"):
        parse_email(raw)
