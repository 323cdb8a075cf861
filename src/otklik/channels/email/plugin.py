"""The email channel plugin: settings, IMAP poller, SMTP sender, connection test.

Inbound mail arrives by IMAP (`imap.py`, IDLE or polling) and/or the SMTP endpoint (`smtp_in.py`, run with
`otklik smtpd`) for a forwarding address; both store through `inbound.py`. Replies leave through the outbox
and `smtp_out.py`. Passwords are secrets: encrypted at rest, never shown back, never logged.
"""

from __future__ import annotations

import smtplib
import ssl
from typing import Any, ClassVar, Literal

from imapclient.exceptions import IMAPClientError, LoginError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from otklik.accounts.service import normalise_email
from otklik.channels.base import ChannelPlugin, VendorError
from otklik.channels.email import imap
from otklik.channels.email.inbound import address_book, split_addresses
from otklik.channels.email.smtp_out import EmailSender
from otklik.channels.models import ChannelAccount
from otklik.conversations import reply_checks
from otklik.platform.errors import DomainError

KIND = "email"
# one message's attachments together: 25 MB, what Gmail and most mail servers accept (Yandex: 30 MB)
reply_checks.register_file_limits(KIND, reply_checks.FileLimits(
    total_bytes=25 * 1_048_576, max_files=20, note="e-mail: at most 25 MB of attachments in one message"))


def _email(value: str, field: str) -> str:
    try:
        return normalise_email(value.strip(), field)
    except DomainError as exc:
        raise ValueError(f"{value[:60]!r} is not an email address ({exc.message})") from None


class EmailConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    addresses: list[str] = Field(
        min_length=1, max_length=20, title="Адреса поддержки",
        description="На них пишут клиенты (пересылка на SMTP-вход Отклика или ящик IMAP); первый — адрес "
                    "отправителя ответов")
    from_name: str = Field(default="", max_length=120, title="Имя отправителя",
                           description="В поле «От» ответов; пусто — название рабочего пространства")
    reply_to: str = Field(default="", max_length=254, title="Адрес для ответов (Reply-To)",
                          description="Пусто — первый адрес поддержки")
    imap_host: str = Field(default="", max_length=253, title="IMAP-сервер",
                           description="Например imap.yandex.ru; пусто — почта приходит только через SMTP-вход")
    imap_port: int = Field(default=993, ge=1, le=65535, title="IMAP-порт")
    imap_security: Literal["ssl", "starttls", "none"] = Field(default="ssl", title="Шифрование IMAP")
    imap_username: str = Field(default="", max_length=254, title="IMAP: имя пользователя")
    imap_folder: str = Field(default="INBOX", min_length=1, max_length=200, title="IMAP: папка входящих")
    imap_move_to: str = Field(default="", max_length=200, title="IMAP: папка для обработанных",
                              description="Пусто — письма остаются на месте и помечаются прочитанными")
    smtp_host: str = Field(default="", max_length=253, title="SMTP-сервер", description="Например smtp.yandex.ru")
    smtp_port: int = Field(default=587, ge=1, le=65535, title="SMTP-порт")
    smtp_security: Literal["starttls", "ssl", "none"] = Field(default="starttls", title="Шифрование SMTP")
    smtp_username: str = Field(default="", max_length=254, title="SMTP: имя пользователя")
    verify_tls: bool = Field(default=True, title="Проверять сертификаты серверов",
                             description="Выключайте только для своего сервера с самоподписанным сертификатом")
    max_per_minute: int = Field(default=60, ge=1, le=10000, title="Не больше писем в минуту",
                                description="Ограничение почтового провайдера на отправку")

    @field_validator("addresses", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return split_addresses(value) or [value]
        return value

    @field_validator("addresses")
    @classmethod
    def _valid(cls, values: list[str]) -> list[str]:
        cleaned: list[str] = []
        for value in values:
            address = _email(value, "addresses")
            if address not in cleaned:
                cleaned.append(address)
        return cleaned

    @field_validator("reply_to")
    @classmethod
    def _reply_to(cls, value: str) -> str:
        return _email(value, "reply_to") if value.strip() else ""

    @field_validator("imap_host", "smtp_host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip()
        if any(c in value for c in " /:@"):
            raise ValueError("a host name such as imap.example.ru, without a port or scheme")
        return value


class EmailPlugin(ChannelPlugin):
    kind = KIND
    title = "Эл. почта"
    description = ("Письма через IMAP (IDLE) или пересылку на SMTP-вход; ответы по SMTP с цепочкой писем, "
                   "вложениями и номером обращения в теме")
    icon = "@"
    Config = EmailConfig
    secret_fields = ("imap_password", "smtp_password")
    secret_titles: ClassVar[dict[str, str]] = {"imap_password": "IMAP: пароль (пароль приложения)",
                     "smtp_password": "SMTP: пароль (пароль приложения)"}
    pollers = (imap.poll_mailboxes,)
    poll_seconds = 5.0

    def sender(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]) -> EmailSender | None:
        if not config.get("smtp_host"):
            return None
        return EmailSender(account.id, config, secrets)

    def on_saved(self, session: Any, account: ChannelAccount) -> None:
        address_book.invalidate()

    def test_connection(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]) -> str:
        lines = []
        if config.get("imap_host"):
            try:
                client = imap.connect(config, secrets.get("imap_password", ""))
                try:
                    folder = client.select_folder(str(config.get("imap_folder") or "INBOX"), readonly=True)
                    idle = "с IDLE" if client.has_capability("IDLE") else "без IDLE (опрос раз в минуту)"
                    lines.append(f"IMAP: вход выполнен, писем в папке: {int(folder.get(b'EXISTS', 0))}, {idle}")
                finally:
                    client.logout()
            except LoginError:
                raise VendorError("IMAP-сервер не принял имя пользователя или пароль") from None
            except (IMAPClientError, OSError, ssl.SSLError) as exc:
                raise VendorError(f"IMAP-сервер недоступен: {type(exc).__name__}") from None
        if config.get("smtp_host"):
            sender = EmailSender(account.id, config, secrets)
            try:
                conn = sender._connect()
                conn.quit()
                lines.append("SMTP: вход выполнен")
            except smtplib.SMTPAuthenticationError:
                raise VendorError("SMTP-сервер не принял имя пользователя или пароль") from None
            except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
                raise VendorError(f"SMTP-сервер недоступен: {type(exc).__name__}") from None
        return "; ".join(lines) or "Серверы не заданы: письма принимаются только через SMTP-вход"


PLUGIN = EmailPlugin()
