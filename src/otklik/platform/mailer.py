"""Mail the platform sends on its own behalf (password resets), over SMTP with the `OTKLIK_SMTP_*` settings.

Customer email is the email channel's business, not this module's. Never logs a message body: it may hold
a one-time link.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from otklik.platform.config import Settings, get_settings

log = logging.getLogger(__name__)


class MailNotConfigured(RuntimeError):
    """OTKLIK_SMTP_HOST is not set."""


def mail_configured(settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    return bool(settings.smtp_host)


def build_message(*, to: str, subject: str, text: str, sender: str, sender_name: str = "Otklik") -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((sender_name, sender))
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message.set_content(text)
    return message


def send_mail(*, to: str, subject: str, text: str, sender_name: str = "Otklik",
              settings: Settings | None = None) -> None:
    """Send one plain-text message; raises MailNotConfigured or smtplib/OSError on failure."""
    settings = settings or get_settings()
    if not settings.smtp_host:
        raise MailNotConfigured("OTKLIK_SMTP_HOST is not set")
    message = build_message(to=to, subject=subject, text=text, sender=settings.smtp_from, sender_name=sender_name)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.smtp_ssl:
        smtp = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds,
                                context=context)
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds)
    with smtp:
        smtp.ehlo()
        if settings.smtp_starttls and not settings.smtp_ssl:
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_username, password)
        smtp.send_message(message)
    log.info("mail sent to %s (%s)", _mask(to), subject)


def _mask(address: str) -> str:
    local, _, domain = address.partition("@")
    return (local[:1] + "***@" + domain) if domain else "***"
