"""amoCRM (API v4, OAuth 2): contacts, leads (the deals, with their pipeline stage), notes on the contact.

OAuth 2 authorization code → access token (24 h) + refresh token (single use, rotated on every refresh; see
POST /oauth2/access_token). The code comes from the integration's redirect (GET .../amocrm/oauth, signed
`state`) or is pasted by the admin; the tokens are stored encrypted at once, never shown. A 401 refreshes once.
Documented shapes: GET /api/v4/account; GET /api/v4/contacts?query= (204 when nothing matches; `_links.next`
pages); POST /api/v4/contacts (an array, answered in `_embedded.contacts`); GET/POST
/api/v4/contacts/{id}/notes; GET /api/v4/contacts/{id}?with=leads; GET /api/v4/leads?filter[id][]=;
GET /api/v4/leads/pipelines. Its webhooks are form posts (contacts[update][0][id]=…, leads[status][0][id]=…,
account[subdomain]=…) without a signature: the URL's token is the proof, the account must be ours.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, Field, field_validator

from otklik.crm.base import (
    Contact,
    CrmAuthError,
    CrmConnector,
    CrmError,
    Deal,
    VendorHttp,
    WebhookChange,
    WebhookRefused,
    add_connector,
    digits,
    note_marker,
    same_phone,
)
from otklik.crm.retailcrm import clean_base

MAX_PAGES = 20
_WEBHOOK_KEY = re.compile(r"^(contacts|leads)\[(add|update|delete|status|restore)\]\[(\d{1,4})\]\[(id|status_id)\]$")


class AmoCrmConfig(BaseModel):
    base_url: str = Field("https://example.amocrm.ru", max_length=300, title="Адрес amoCRM",
                          description="Например https://myshop.amocrm.ru")
    client_id: str = Field("", max_length=100, title="ID интеграции",
                           description="Из настроек интеграции в amoCRM (client_id)")
    redirect_uri: str = Field("", max_length=300, title="Адрес перенаправления",
                              description="Тот же, что указан в интеграции: …/api/v1/integrations/crm/amocrm/oauth")
    create_contacts: bool = Field(False, title="Создавать контакт в CRM",
                                  description="Для нового клиента с подтверждённым телефоном или почтой")
    note_on_solve: bool = Field(True, title="Примечание о решённом обращении",
                                description="Итог обращения со ссылкой попадает в карточку контакта")

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return clean_base(value, "https://myshop.amocrm.ru")


@add_connector
class AmoCrm(CrmConnector):
    kind = "amocrm"
    title = "amoCRM"
    description = "Контакты, сделки и их этапы, примечания (OAuth 2)"
    icon = "a"
    Config = AmoCrmConfig
    secret_fields = ("client_secret", "authorization_code")
    secret_titles: ClassVar[dict[str, str]] = {"client_secret": "Секретный ключ интеграции",
                                               "authorization_code": "Код авторизации (одноразовый)"}
    platform_secrets = ("access_token", "refresh_token", "expires_at")
    authorize_url = "https://www.amocrm.ru/oauth"
    example_config: ClassVar[dict[str, Any]] = {
        "base_url": "https://myshop.amocrm.ru", "client_id": "00000000-0000-0000-0000-000000000000",
        "redirect_uri": "https://support.example.ru/api/v1/integrations/crm/amocrm/oauth"}
    deal_word = "lead"
    config: AmoCrmConfig

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.http = VendorHttp(self.config.base_url, transport=self.transport, title="amoCRM")
        self._stages: dict[int, str] | None = None

    def close(self) -> None:
        self.http.close()

    # -- OAuth 2 --------------------------------------------------------------------------------------
    def _exchange(self, grant: dict[str, str]) -> str:
        body = {"client_id": self.config.client_id, "client_secret": self.secrets.get("client_secret", ""),
                "redirect_uri": self.config.redirect_uri, **grant}
        try:
            tokens = self.http.json("POST", "/oauth2/access_token", json=body)
        except CrmError as exc:
            if grant["grant_type"] == "refresh_token":
                # refresh tokens are single use: another worker may have just rotated this one; use theirs
                fresh = self.reload_secrets()
                if fresh.get("refresh_token") and fresh["refresh_token"] != grant["refresh_token"] \
                        and fresh.get("access_token"):
                    return fresh["access_token"]
                self.save_secrets({"access_token": "", "refresh_token": ""})  # revoked: a new code is needed
            raise CrmAuthError(f"amoCRM did not give a token: {exc.message}; paste a new authorization code or "
                               "connect again from the integration") from None
        if not isinstance(tokens, dict) or not tokens.get("access_token") or not tokens.get("refresh_token"):
            raise CrmAuthError("amoCRM answered without tokens")
        expires = int(time.time()) + int(tokens.get("expires_in") or 86400) - 60
        self.save_secrets({"access_token": str(tokens["access_token"]), "refresh_token": str(tokens["refresh_token"]),
                           "expires_at": str(expires), "authorization_code": ""})
        return str(tokens["access_token"])

    def exchange_code(self, code: str) -> str:
        return self._exchange({"grant_type": "authorization_code", "code": code})

    def _token(self, *, force_refresh: bool = False) -> str:
        access, refresh = self.secrets.get("access_token"), self.secrets.get("refresh_token")
        expires = int(self.secrets.get("expires_at") or 0)
        if access and not force_refresh and expires > time.time():
            return access
        if refresh:
            return self._exchange({"grant_type": "refresh_token", "refresh_token": refresh})
        if self.secrets.get("authorization_code"):
            return self.exchange_code(self.secrets["authorization_code"])
        raise CrmAuthError("amoCRM is not authorised yet: connect from the integration or paste the authorization code")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self._token()}"}
        try:
            return self.http.json(method, path, headers=headers, **kwargs)
        except CrmAuthError:
            if not self.secrets.get("refresh_token"):
                raise
            headers = {"Authorization": f"Bearer {self._token(force_refresh=True)}"}
            return self.http.json(method, path, headers=headers, **kwargs)

    def _pages(self, path: str, params: list[tuple[str, Any]], key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            body = self._call("GET", path, params=[*params, ("page", page), ("limit", 250)])
            if not isinstance(body, dict):  # 204 No Content: nothing (more)
                break
            out.extend(x for x in ((body.get("_embedded") or {}).get(key) or []) if isinstance(x, dict))
            if not ((body.get("_links") or {}).get("next")):
                break
        return out

    def test_connection(self) -> str:
        account = self._call("GET", "/api/v4/account")
        name = account.get("name") if isinstance(account, dict) else None
        return f"amoCRM: подключено к аккаунту «{name or '?'}»"

    # -- contacts -------------------------------------------------------------------------------------
    @staticmethod
    def _contact(row: dict[str, Any]) -> Contact:
        phones: list[str] = []
        emails: list[str] = []
        for field in row.get("custom_fields_values") or []:
            if not isinstance(field, dict):
                continue
            values = [str(v.get("value") or "") for v in field.get("values") or [] if isinstance(v, dict)]
            if field.get("field_code") == "PHONE":
                phones.extend(values)
            elif field.get("field_code") == "EMAIL":
                emails.extend(values)
        return Contact(id=str(row["id"]), name=str(row.get("name") or ""), phones=phones, emails=emails)

    def find_contact(self, *, phones: list[str], emails: list[str]) -> Contact | None:
        for email in emails:
            for row in self._pages("/api/v4/contacts", [("query", email)], "contacts"):
                contact = self._contact(row)
                if any(e.lower() == email.lower() for e in contact.emails):
                    return contact
        for phone in phones:
            wanted = digits(phone)[-10:]  # without the country/trunk prefix: finds +7… and 8… alike
            for row in self._pages("/api/v4/contacts", [("query", wanted)], "contacts"):
                contact = self._contact(row)
                if any(same_phone(phone, p) for p in contact.phones):
                    return contact
        return None

    def create_contact(self, *, name: str, phones: list[str], emails: list[str], otklik_id: int) -> Contact:
        fields: list[dict[str, Any]] = []
        if phones:
            fields.append({"field_code": "PHONE", "values": [{"value": p, "enum_code": "WORK"} for p in phones]})
        if emails:
            fields.append({"field_code": "EMAIL", "values": [{"value": e, "enum_code": "WORK"} for e in emails]})
        body = self._call("POST", "/api/v4/contacts", json=[{"name": name or "Клиент", "custom_fields_values": fields,
                                                             "request_id": f"otklik-{otklik_id}"}])
        created = ((body or {}).get("_embedded") or {}).get("contacts") or []
        if not created or "id" not in created[0]:
            raise CrmError("amoCRM did not return the new contact")
        return Contact(id=str(created[0]["id"]), name=name, phones=phones, emails=emails)

    # -- notes ----------------------------------------------------------------------------------------
    def find_note(self, contact_id: str, key: str) -> str | None:
        marker = note_marker(key)
        for note in self._pages(f"/api/v4/contacts/{int(contact_id)}/notes", [("filter[note_type]", "common")], "notes"):
            if marker in str((note.get("params") or {}).get("text") or ""):
                return str(note["id"])
        return None

    def add_note(self, contact_id: str, text: str, key: str) -> str:
        body = self._call("POST", f"/api/v4/contacts/{int(contact_id)}/notes",
                          json=[{"note_type": "common", "params": {"text": f"{text}\n{note_marker(key)}"}}])
        notes = ((body or {}).get("_embedded") or {}).get("notes") or []
        if not notes or "id" not in notes[0]:
            raise CrmError("amoCRM did not return the new note")
        return str(notes[0]["id"])

    # -- leads ----------------------------------------------------------------------------------------
    def _stage_names(self) -> dict[int, str]:
        if self._stages is None:
            body = self._call("GET", "/api/v4/leads/pipelines") or {}
            self._stages = {}
            for pipeline in (body.get("_embedded") or {}).get("pipelines") or []:
                for status in ((pipeline.get("_embedded") or {}).get("statuses") or []):
                    if isinstance(status, dict) and "id" in status:
                        self._stages[int(status["id"])] = str(status.get("name") or status["id"])
        return self._stages

    def list_deals(self, contact_id: str) -> list[Deal]:
        contact = self._call("GET", f"/api/v4/contacts/{int(contact_id)}", params={"with": "leads"}) or {}
        ids = [int(lead["id"]) for lead in ((contact.get("_embedded") or {}).get("leads") or [])
               if isinstance(lead, dict) and "id" in lead][:250]
        if not ids:
            return []
        leads = self._pages("/api/v4/leads", [("filter[id][]", i) for i in ids], "leads")
        stages = self._stage_names()
        out = []
        for lead in leads:
            updated = lead.get("updated_at")
            out.append(Deal(id=str(lead["id"]), number=str(lead["id"]), title=str(lead.get("name") or ""),
                            status=stages.get(int(lead.get("status_id") or 0), str(lead.get("status_id") or "")),
                            amount=str(lead.get("price") or ""), currency="RUB",
                            url=f"{self.config.base_url}/leads/detail/{lead['id']}",
                            changed_at=dt.datetime.fromtimestamp(int(updated), dt.UTC).isoformat()
                            if isinstance(updated, int) else None))
        return out

    def deal_contact(self, deal_id: str) -> str | None:
        lead = self._call("GET", f"/api/v4/leads/{int(deal_id)}", params={"with": "contacts"}) or {}
        contacts = [c for c in ((lead.get("_embedded") or {}).get("contacts") or []) if isinstance(c, dict)]
        main = next((c for c in contacts if c.get("is_main")), contacts[0] if contacts else None)
        return str(main["id"]) if main and "id" in main else None

    def parse_webhook(self, *, fields: Mapping[str, Any], headers: Mapping[str, str]) -> list[WebhookChange]:
        subdomain = str(fields.get("account[subdomain]") or "")
        ours = self.config.base_url.split("://", 1)[-1].split(".", 1)[0]
        if subdomain and subdomain != ours:
            raise WebhookRefused("this webhook is from another amoCRM account")
        changes: list[WebhookChange] = []
        for key, value in fields.items():
            match = _WEBHOOK_KEY.match(key)
            if not match or match.group(4) != "id" or not str(value).isdigit() or len(str(value)) > 19:
                continue
            entity = "contact" if match.group(1) == "contacts" else "deal"
            changes.append(WebhookChange(entity, str(value), "delete" if match.group(2) == "delete" else "update"))
        return changes
