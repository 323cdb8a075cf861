"""Bitrix24 through an incoming webhook (https://<portal>/rest/<user>/<code>/<method>.json): contacts, deals
with their stage names, timeline comments on the contact, and the portal's outgoing webhook (event handlers).

Documented shapes: `profile`; `crm.contact.list` (filter, select, `start` paging by 50: `next`, `total`);
`crm.contact.add` (fields[PHONE][0][VALUE]…, ORIGINATOR_ID/ORIGIN_ID tie the contact to our customer, and a
create looks them up first); `crm.timeline.comment.add` / `.list`; `crm.deal.list` / `crm.deal.get`;
`crm.status.list` (DEAL_STAGE). Errors: {"error": "…", "error_description": "…"}; the rate limit is 503
QUERY_LIMIT_EXCEEDED (or 429). Outgoing events (ONCRMDEALUPDATE…) are form posts carrying
auth[application_token], checked against the one the admin copied from the portal.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, Field, field_validator

from otklik.crm.base import (
    Contact,
    CrmConnector,
    CrmError,
    Deal,
    VendorHttp,
    WebhookChange,
    WebhookRefused,
    add_connector,
    note_marker,
    phone_variants,
    same_phone,
)
from otklik.crm.retailcrm import clean_base

PAGE = 50
MAX_PAGES = 40
ORIGINATOR = "otklik"
EVENTS = {"ONCRMCONTACTADD": ("contact", "update"), "ONCRMCONTACTUPDATE": ("contact", "update"),
          "ONCRMCONTACTDELETE": ("contact", "delete"), "ONCRMDEALADD": ("deal", "update"),
          "ONCRMDEALUPDATE": ("deal", "update"), "ONCRMDEALDELETE": ("deal", "delete")}


def _limited(response: httpx.Response) -> bool:
    return response.status_code == 429 or (response.status_code == 503 and b"QUERY_LIMIT_EXCEEDED" in response.content)


class Bitrix24Config(BaseModel):
    base_url: str = Field("https://example.bitrix24.ru", max_length=300, title="Адрес портала Битрикс24",
                          description="Например https://myshop.bitrix24.ru")
    user_id: int = Field(1, ge=1, le=10**9, title="ID пользователя вебхука",
                         description="Число из адреса входящего вебхука: /rest/<ID>/<код>/")
    create_contacts: bool = Field(False, title="Создавать контакт в CRM",
                                  description="Для нового клиента с подтверждённым телефоном или почтой")
    note_on_solve: bool = Field(True, title="Комментарий о решённом обращении",
                                description="Итог обращения со ссылкой попадает в таймлайн контакта")

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return clean_base(value, "https://myshop.bitrix24.ru")


@add_connector
class Bitrix24(CrmConnector):
    kind = "bitrix24"
    title = "Битрикс24"
    description = "Контакты, сделки и стадии, комментарии в таймлайне (входящий и исходящий вебхуки)"
    icon = "B"
    Config = Bitrix24Config
    secret_fields = ("webhook_code", "application_token")
    secret_titles: ClassVar[dict[str, str]] = {
        "webhook_code": "Код входящего вебхука (из /rest/<ID>/<код>/)",
        "application_token": "Токен исходящего вебхука (application_token)"}
    example_config: ClassVar[dict[str, Any]] = {"base_url": "https://myshop.bitrix24.ru", "user_id": 1}
    deal_word = "deal"
    config: Bitrix24Config

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.http = VendorHttp(self.config.base_url, transport=self.transport, title="Битрикс24",
                               is_rate_limited=_limited)
        self._stages: dict[str, str] | None = None

    def close(self) -> None:
        self.http.close()

    def _method(self, name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        code = self.secrets.get("webhook_code", "")
        if not code or "/" in code:
            raise CrmError("Битрикс24: enter the incoming webhook's code")
        body = self.http.json("POST", f"/rest/{self.config.user_id}/{code}/{name}.json", data=params or {})
        if not isinstance(body, dict) or "error" in body:
            detail = body.get("error_description") or body.get("error") if isinstance(body, dict) else None
            raise CrmError(f"Битрикс24 {name}: {detail or 'unexpected answer'}")
        return body

    def _list(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        start = 0
        for _ in range(MAX_PAGES):
            body = self._method(name, {**params, "start": start})
            rows = body.get("result") or []
            out.extend(r for r in rows if isinstance(r, dict))
            if "next" not in body:
                break
            start = int(body["next"])
        return out

    def test_connection(self) -> str:
        me = self._method("profile").get("result") or {}
        return f"Битрикс24: вебхук работает от имени {me.get('NAME', '')} {me.get('LAST_NAME', '')}".strip()

    # -- contacts -------------------------------------------------------------------------------------
    @staticmethod
    def _contact(row: dict[str, Any]) -> Contact:
        def values(key: str) -> list[str]:
            return [str(v.get("VALUE") or "") for v in row.get(key) or [] if isinstance(v, dict)]

        name = " ".join(str(row.get(k) or "") for k in ("NAME", "LAST_NAME")).strip()
        return Contact(id=str(row["ID"]), name=name, phones=values("PHONE"), emails=values("EMAIL"))

    _SELECT: ClassVar[dict[str, str]] = {"select[0]": "ID", "select[1]": "NAME", "select[2]": "LAST_NAME",
                                         "select[3]": "PHONE", "select[4]": "EMAIL"}

    def find_contact(self, *, phones: list[str], emails: list[str]) -> Contact | None:
        for email in emails:
            for row in self._list("crm.contact.list", {"filter[EMAIL]": email, **self._SELECT}):
                contact = self._contact(row)
                if any(e.lower() == email.lower() for e in contact.emails):
                    return contact
        for phone in phones:
            for variant in phone_variants(phone):  # the filter compares the value as it was typed
                for row in self._list("crm.contact.list", {"filter[PHONE]": variant, **self._SELECT}):
                    contact = self._contact(row)
                    if any(same_phone(phone, p) for p in contact.phones):
                        return contact
        return None

    def create_contact(self, *, name: str, phones: list[str], emails: list[str], otklik_id: int) -> Contact:
        ours = self._list("crm.contact.list", {"filter[ORIGINATOR_ID]": ORIGINATOR, "filter[ORIGIN_ID]": str(otklik_id),
                                               **self._SELECT})
        if ours:  # created by an earlier attempt that died before it was linked
            return self._contact(ours[0])
        first, _, last = (name or "Клиент").partition(" ")
        fields: dict[str, Any] = {"fields[NAME]": first, "fields[LAST_NAME]": last, "fields[OPENED]": "Y",
                                  "fields[ORIGINATOR_ID]": ORIGINATOR, "fields[ORIGIN_ID]": str(otklik_id)}
        for i, phone in enumerate(phones):
            fields[f"fields[PHONE][{i}][VALUE]"] = phone
            fields[f"fields[PHONE][{i}][VALUE_TYPE]"] = "WORK"
        for i, email in enumerate(emails):
            fields[f"fields[EMAIL][{i}][VALUE]"] = email
            fields[f"fields[EMAIL][{i}][VALUE_TYPE]"] = "WORK"
        new_id = self._method("crm.contact.add", fields).get("result")
        if not new_id:
            raise CrmError("Битрикс24 did not return the new contact")
        return Contact(id=str(new_id), name=name, phones=phones, emails=emails)

    # -- timeline -------------------------------------------------------------------------------------
    def find_note(self, contact_id: str, key: str) -> str | None:
        marker = note_marker(key)
        rows = self._list("crm.timeline.comment.list", {"filter[ENTITY_ID]": contact_id,
                                                        "filter[ENTITY_TYPE]": "contact",
                                                        "select[0]": "ID", "select[1]": "COMMENT"})
        return next((str(r["ID"]) for r in rows if marker in str(r.get("COMMENT") or "")), None)

    def add_note(self, contact_id: str, text: str, key: str) -> str:
        result = self._method("crm.timeline.comment.add", {
            "fields[ENTITY_ID]": contact_id, "fields[ENTITY_TYPE]": "contact",
            "fields[COMMENT]": f"{text}\n{note_marker(key)}"}).get("result")
        if not result:
            raise CrmError("Битрикс24 did not return the new comment")
        return str(result)

    # -- deals ----------------------------------------------------------------------------------------
    def _stage_names(self) -> dict[str, str]:
        if self._stages is None:
            rows = self._list("crm.status.list", {"filter[ENTITY_ID]": "DEAL_STAGE"})
            self._stages = {str(r.get("STATUS_ID")): str(r.get("NAME") or r.get("STATUS_ID")) for r in rows}
        return self._stages

    def list_deals(self, contact_id: str) -> list[Deal]:
        rows = self._list("crm.deal.list", {"filter[CONTACT_ID]": contact_id, "order[DATE_MODIFY]": "DESC",
                                            "select[0]": "ID", "select[1]": "TITLE", "select[2]": "STAGE_ID",
                                            "select[3]": "OPPORTUNITY", "select[4]": "CURRENCY_ID",
                                            "select[5]": "DATE_MODIFY"})
        stages = self._stage_names() if rows else {}
        return [Deal(id=str(r["ID"]), number=str(r["ID"]), title=str(r.get("TITLE") or ""),
                     status=stages.get(str(r.get("STAGE_ID")), str(r.get("STAGE_ID") or "")),
                     amount=str(r.get("OPPORTUNITY") or ""), currency=str(r.get("CURRENCY_ID") or ""),
                     url=f"{self.config.base_url}/crm/deal/details/{r['ID']}/",
                     changed_at=str(r["DATE_MODIFY"]) if r.get("DATE_MODIFY") else None)
                for r in rows if "ID" in r]

    def deal_contact(self, deal_id: str) -> str | None:
        deal = self._method("crm.deal.get", {"id": deal_id}).get("result") or {}
        contact = deal.get("CONTACT_ID") if isinstance(deal, dict) else None
        return str(contact) if contact else None

    def parse_webhook(self, *, fields: Mapping[str, Any], headers: Mapping[str, str]) -> list[WebhookChange]:
        expected = self.secrets.get("application_token", "")
        given = str(fields.get("auth[application_token]") or "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookRefused("application_token does not match the one saved for this portal")
        event = EVENTS.get(str(fields.get("event") or "").upper())
        entity_id = str(fields.get("data[FIELDS][ID]") or "")
        if event is None or not entity_id.isdigit() or len(entity_id) > 19:
            return []
        return [WebhookChange(event[0], entity_id, event[1])]
