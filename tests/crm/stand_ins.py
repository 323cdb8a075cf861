"""Local stand-ins for the CRMs' HTTP APIs, speaking each vendor's documented shapes: authentication (API key,
OAuth 2 bearer tokens with refresh, the incoming-webhook code in the URL), pagination, error bodies and 429
rate limits with Retry-After. State lives in memory; tests and bench/crm_sync.py read it back.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Reply = tuple[int, Any, dict[str, str]]


def digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


class StandIn:
    """A threaded HTTP server; subclasses implement `handle(method, path, query, headers, body)`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []
        self.inject: list[Reply] = []          # answers to give before anything else (429s, 500s)
        self.rate_limit: float | None = None   # requests per second; more → 429 with Retry-After
        self._window: list[float] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms to each
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                ctype = self.headers.get("content-type", "")
                body: dict[str, Any]
                if ctype.startswith("application/json") and raw:
                    body = {"_json": json.loads(raw)}
                else:
                    body = {k: v for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload, extra = stand_in._dispatch(self.command, parts.path, query, headers, body)
                data = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _dispatch(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
                  body: dict[str, Any]) -> Reply:
        with self.lock:
            self.requests.append((method, path))
            if self.inject:
                return self.inject.pop(0)
            if self.rate_limit:
                now = time.monotonic()
                self._window = [t for t in self._window if now - t < 1.0]
                if len(self._window) >= self.rate_limit:
                    return 429, self.too_many(), {"Retry-After": "1"}
                self._window.append(now)
            return self.handle(method, path, query, headers, body)

    def too_many(self) -> Any:
        return {"error": "Too Many Requests"}

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: dict[str, Any]) -> Reply:
        raise NotImplementedError

    def calls(self, path: str) -> int:
        return sum(1 for _, p in self.requests if p == path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _one(values: dict[str, list[str]], key: str, default: str = "") -> str:
    found = values.get(key)
    return found[-1] if found else default


def _page(rows: list[Any], query: dict[str, list[str]], default_limit: int = 20) -> tuple[list[Any], dict[str, int]]:
    limit = int(_one(query, "limit", str(default_limit)) or default_limit)
    page = max(1, int(_one(query, "page", "1") or 1))
    chunk = rows[(page - 1) * limit: page * limit]
    return chunk, {"limit": limit, "totalCount": len(rows), "currentPage": page,
                   "totalPageCount": max(1, -(-len(rows) // limit))}


class RetailCrmStandIn(StandIn):
    """RetailCRM API v5: `X-API-KEY` (or `apiKey=`), {"success": false, "errorMsg"} errors, `pagination`."""

    def __init__(self, api_key: str = "retail-key") -> None:
        self.api_key = api_key
        self.customers: dict[int, dict[str, Any]] = {}
        self._by_phone: dict[str, list[int]] = {}
        self.notes: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []
        # as GET /api/v5/reference/statuses lists them: each status files under a group
        self.statuses = {"new": {"code": "new", "name": "Новый", "group": "new"},
                         "assembling": {"code": "assembling", "name": "Комплектуется", "group": "assembling"},
                         "delivering": {"code": "delivering", "name": "Доставляется", "group": "delivery"},
                         "complete": {"code": "complete", "name": "Выполнен", "group": "complete"},
                         "cancel-other": {"code": "cancel-other", "name": "Отменён", "group": "cancel"},
                         "return": {"code": "return", "name": "Возврат", "group": "cancel"}}
        self._ids = iter(range(1001, 10**9))
        super().__init__()

    def too_many(self) -> Any:
        return {"success": False, "errorMsg": "Too many requests"}

    # helpers for tests
    def add_customer(self, *, first: str, phone: str = "", email: str = "") -> int:
        cid = next(self._ids)
        self.customers[cid] = {"id": cid, "firstName": first, "email": email,
                               "phones": [{"number": phone}] if phone else [], "site": "shop"}
        self._index(cid)
        return cid

    def _index(self, cid: int) -> None:
        for phone in self.customers[cid].get("phones") or []:
            self._by_phone.setdefault(digits(str(phone.get("number", "")))[-10:], []).append(cid)

    def add_order(self, customer_id: int, number: str, status: str = "new", total: float = 1500.0,
                  **extra: Any) -> int:
        """`extra`: more of the documented order fields (items, delivery, prepaySum…)."""
        oid = next(self._ids)
        self.orders[oid] = {"id": oid, "number": number, "status": status, "totalSumm": total, "currency": "RUB",
                            "createdAt": "2026-12-01 10:00:00", "statusUpdatedAt": "2026-12-01 10:00:00",
                            "customer": {"id": customer_id}, **extra}
        self.history.append({"id": len(self.history) + 1, "created": True, "field": "status",
                             "newValue": {"code": status}, "order": {"id": oid, "customer": {"id": customer_id}}})
        return oid

    def set_status(self, order_id: int, status: str) -> None:
        order = self.orders[order_id]
        self.history.append({"id": len(self.history) + 1, "field": "status", "oldValue": {"code": order["status"]},
                             "newValue": {"code": status}, "order": {"id": order_id, "customer": order["customer"]}})
        order["status"] = status
        order["statusUpdatedAt"] = "2026-12-02 12:00:00"

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: dict[str, Any]) -> Reply:
        key = headers.get("x-api-key") or _one(query, "apiKey")
        if key != self.api_key:
            return 403, {"success": False, "errorMsg": 'Wrong "apiKey" value.'}, {}
        if path == "/api/v5/credentials":
            return 200, {"success": True, "credentials": ["/api/customers", "/api/orders"], "siteAccess": "access_full",
                         "sitesAvailable": ["shop"]}, {}
        if path == "/api/v5/customers" and method == "GET":
            name = _one(query, "filter[name]")
            if len(digits(name)) >= 10 and digits(name) == name:  # a phone search: by the index (10,000+ rows)
                rows = [self.customers[i] for i in self._by_phone.get(name[-10:], [])]
            else:
                rows = list(self.customers.values())
            email = _one(query, "filter[email]")
            if email:
                rows = [c for c in rows if c.get("email", "").lower() == email.lower()]
            if name and not (len(digits(name)) >= 10 and digits(name) == name):  # names, phones and e-mails by substring, as the CRM's search does
                rows = [c for c in rows if name.lower() in c["firstName"].lower() or name.lower() in c.get("email", "")
                        or any(digits(name) and digits(name) in digits(p["number"]) for p in c["phones"])]
            chunk, pagination = _page(rows, query)
            return 200, {"success": True, "pagination": pagination, "customers": chunk}, {}
        if path.startswith("/api/v5/customers/") and method == "GET" and _one(query, "by") == "externalId":
            external = path.rsplit("/", 1)[1]
            for c in self.customers.values():
                if c.get("externalId") == external:
                    return 200, {"success": True, "customer": c}, {}
            return 404, {"success": False, "errorMsg": "Not found"}, {}
        if path == "/api/v5/customers/create" and method == "POST":
            customer = json.loads(_one(body, "customer") or "{}")
            if not customer.get("firstName") and not customer.get("phones") and not customer.get("email"):
                return 400, {"success": False, "errorMsg": "Customer is not loaded", "errors": {"firstName": "empty"}}, {}
            external = customer.get("externalId")
            if external and any(c.get("externalId") == external for c in self.customers.values()):
                return 400, {"success": False, "errorMsg": "Customer is not created",
                             "errors": {"externalId": "Customer already exists."}}, {}
            cid = next(self._ids)
            self.customers[cid] = {**customer, "id": cid, "site": _one(body, "site", "shop")}
            self._index(cid)
            return 201, {"success": True, "id": cid}, {}
        if path == "/api/v5/customers/notes" and method == "GET":
            ids = {int(x) for x in query.get("filter[customerIds][]", [])}
            rows = [n for n in self.notes.values() if not ids or n["customer"]["id"] in ids]
            chunk, pagination = _page(rows, query)
            return 200, {"success": True, "pagination": pagination, "notes": chunk}, {}
        if path == "/api/v5/customers/notes/create" and method == "POST":
            note = json.loads(_one(body, "note") or "{}")
            customer_id = int((note.get("customer") or {}).get("id") or 0)
            if customer_id not in self.customers:
                return 400, {"success": False, "errorMsg": "Customer not found"}, {}
            nid = next(self._ids)
            self.notes[nid] = {"id": nid, "text": note.get("text", ""), "customer": {"id": customer_id}}
            return 201, {"success": True, "id": nid}, {}
        if path == "/api/v5/orders" and method == "GET":
            customer = _one(query, "filter[customerId]")
            rows = [o for o in self.orders.values() if not customer or str(o["customer"]["id"]) == customer]
            chunk, pagination = _page(rows, query)
            return 200, {"success": True, "pagination": pagination, "orders": chunk}, {}
        if path == "/api/v5/reference/statuses":
            return 200, {"success": True, "statuses": self.statuses}, {}
        if path == "/api/v5/orders/history":
            since = int(_one(query, "filter[sinceId]", "0") or 0)
            limit = int(_one(query, "limit", "20"))
            rows = [h for h in self.history if h["id"] > since][:limit]
            return 200, {"success": True, "history": rows,
                         "pagination": {"limit": limit, "currentPage": 1}}, {}
        return 404, {"success": False, "errorMsg": "API method not found"}, {}


StandInFactory = Callable[[], StandIn]


class AmoCrmStandIn(StandIn):
    """amoCRM API v4 + OAuth 2: codes and refresh tokens are single use (rotated), access tokens expire,
    204 No Content for an empty list, `_links.next` paging, 7 requests a second by default off."""

    def __init__(self, client_id: str = "amo-client", client_secret: str = "amo-secret",
                 redirect_uri: str = "https://support.example.ru/api/v1/integrations/crm/amocrm/oauth") -> None:
        self.client_id, self.client_secret, self.redirect_uri = client_id, client_secret, redirect_uri
        self.codes: set[str] = {"code-1"}
        self.access: dict[str, float] = {}
        self.refresh: set[str] = set()
        self.contacts: dict[int, dict[str, Any]] = {}
        self.leads: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, dict[str, Any]] = {}
        self.pipelines = [{"id": 1, "name": "Воронка", "_embedded": {"statuses": [
            {"id": 142, "name": "Успешно реализовано"}, {"id": 201, "name": "Первичный контакт"},
            {"id": 202, "name": "Переговоры"}]}}]
        self._ids = iter(range(5001, 10**9))
        self._tokens = iter(range(1, 10**9))
        super().__init__()

    def too_many(self) -> Any:
        return {"title": "Too Many Requests", "status": 429, "detail": "Too many requests"}

    def add_contact(self, name: str, *, phone: str = "", email: str = "") -> int:
        cid = next(self._ids)
        fields = []
        if phone:
            fields.append({"field_code": "PHONE", "values": [{"value": phone, "enum_code": "WORK"}]})
        if email:
            fields.append({"field_code": "EMAIL", "values": [{"value": email, "enum_code": "WORK"}]})
        self.contacts[cid] = {"id": cid, "name": name, "custom_fields_values": fields or None, "leads": []}
        return cid

    def add_lead(self, contact_id: int, name: str, status_id: int = 201, price: int = 0) -> int:
        lid = next(self._ids)
        self.leads[lid] = {"id": lid, "name": name, "price": price, "status_id": status_id, "pipeline_id": 1,
                           "updated_at": 1796000000, "contact": contact_id}
        self.contacts[contact_id]["leads"].append(lid)
        return lid

    def _issue(self) -> dict[str, Any]:
        n = next(self._tokens)
        access, refresh = f"access-{n}", f"refresh-{n}"
        self.access[access] = time.time() + 86400
        self.refresh.add(refresh)
        return {"token_type": "Bearer", "expires_in": 86400, "access_token": access, "refresh_token": refresh}

    def expire_all(self) -> None:
        self.access = {k: 0.0 for k in self.access}

    max_limit = 250  # the API's cap; tests lower it to see the paging

    def _list(self, key: str, rows: list[Any], query: dict[str, list[str]], path: str) -> Reply:
        limit = min(int(_one(query, "limit", "50")), self.max_limit)
        page = int(_one(query, "page", "1"))
        chunk = rows[(page - 1) * limit: page * limit]
        if not chunk:
            return 204, None, {}
        links: dict[str, Any] = {"self": {"href": f"{path}?page={page}"}}
        if page * limit < len(rows):
            links["next"] = {"href": f"{path}?page={page + 1}"}
        return 200, {"_page": page, "_links": links, "_embedded": {key: chunk}}, {}

    def _public(self, contact: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in contact.items() if k != "leads"}

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: dict[str, Any]) -> Reply:
        if path == "/oauth2/access_token":
            data = body.get("_json") or {}
            if data.get("client_id") != self.client_id or data.get("client_secret") != self.client_secret:
                return 401, {"hint": "Client authentication failed", "title": "Unauthorized", "status": 401}, {}
            if data.get("grant_type") == "authorization_code":
                if data.get("code") not in self.codes or data.get("redirect_uri") != self.redirect_uri:
                    return 400, {"hint": "Authorization code has expired", "title": "Некорректный запрос",
                                 "status": 400}, {}
                self.codes.discard(data["code"])
                return 200, self._issue(), {}
            if data.get("grant_type") == "refresh_token":
                if data.get("refresh_token") not in self.refresh:
                    return 400, {"hint": "Token has been revoked", "title": "Некорректный запрос", "status": 400}, {}
                self.refresh.discard(data["refresh_token"])  # single use: rotated
                return 200, self._issue(), {}
            return 400, {"title": "Некорректный запрос", "status": 400}, {}
        token = headers.get("authorization", "").removeprefix("Bearer ")
        if self.access.get(token, 0) < time.time():
            return 401, {"title": "Unauthorized", "type": "https://httpstatus.es/401", "status": 401,
                         "detail": "Неверный логин или пароль"}, {}
        if path == "/api/v4/account":
            return 200, {"id": 1, "name": "Мой магазин", "subdomain": "myshop"}, {}
        if path == "/api/v4/contacts" and method == "GET":
            q = _one(query, "query").lower()
            rows = [self._public(c) for c in self.contacts.values()
                    if not q or q in c["name"].lower() or any(
                        q in str(v["value"]).lower() or (digits(q) and digits(q) in digits(str(v["value"])))
                        for f in c["custom_fields_values"] or [] for v in f["values"])]
            return self._list("contacts", rows, query, path)
        if path == "/api/v4/contacts" and method == "POST":
            created = []
            for item in body.get("_json") or []:
                if not isinstance(item, dict):
                    return 400, {"title": "Bad Request", "status": 400, "validation-errors": []}, {}
                cid = next(self._ids)
                self.contacts[cid] = {"id": cid, "name": item.get("name", ""),
                                      "custom_fields_values": item.get("custom_fields_values") or None, "leads": []}
                created.append({"id": cid, "request_id": item.get("request_id")})
            return 200, {"_embedded": {"contacts": created}}, {}
        match = re.match(r"^/api/v4/contacts/(\d+)(/notes)?$", path)
        if match:
            cid = int(match.group(1))
            if cid not in self.contacts:
                return 404, {"title": "Not Found", "status": 404}, {}
            if match.group(2) and method == "GET":
                rows = [n for n in self.notes.values() if n["entity_id"] == cid]
                return self._list("notes", rows, query, path)
            if match.group(2) and method == "POST":
                made = []
                for item in body.get("_json") or []:
                    nid = next(self._ids)
                    self.notes[nid] = {"id": nid, "entity_id": cid, "note_type": item.get("note_type"),
                                       "params": item.get("params") or {}}
                    made.append({"id": nid, "entity_id": cid})
                return 200, {"_embedded": {"notes": made}}, {}
            contact = self._public(self.contacts[cid])
            if _one(query, "with") == "leads":
                contact["_embedded"] = {"leads": [{"id": lid} for lid in self.contacts[cid]["leads"]]}
            return 200, contact, {}
        if path == "/api/v4/leads":
            wanted = {int(x) for x in query.get("filter[id][]", [])}
            rows = [{k: v for k, v in lead.items() if k != "contact"} for lead in self.leads.values()
                    if not wanted or lead["id"] in wanted]
            return self._list("leads", rows, query, path)
        match = re.match(r"^/api/v4/leads/(\d+)$", path)
        if match and int(match.group(1)) in self.leads:
            lead = self.leads[int(match.group(1))]
            return 200, {**{k: v for k, v in lead.items() if k != "contact"},
                         "_embedded": {"contacts": [{"id": lead["contact"], "is_main": True}]}}, {}
        if path == "/api/v4/leads/pipelines":
            return 200, {"_embedded": {"pipelines": self.pipelines}}, {}
        return 404, {"title": "Not Found", "status": 404}, {}


class Bitrix24StandIn(StandIn):
    """Bitrix24 REST through an incoming webhook: /rest/<user>/<code>/<method>.json, form parameters with
    bracketed keys, {"result", "next", "total"} paging by 50, {"error", "error_description"} errors, the
    rate limit as 503 QUERY_LIMIT_EXCEEDED. `event()` builds the portal's outgoing webhook form."""

    PAGE = 50

    def __init__(self, user: int = 1, code: str = "b24code", application_token: str = "b24apptoken") -> None:
        self.user, self.code, self.application_token = user, code, application_token
        self.contacts: dict[int, dict[str, Any]] = {}
        self.deals: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self.stages = [{"STATUS_ID": "NEW", "NAME": "Новая"}, {"STATUS_ID": "PREPARATION", "NAME": "Подготовка"},
                       {"STATUS_ID": "WON", "NAME": "Сделка успешна"}]
        self._ids = iter(range(301, 10**9))
        super().__init__()

    def too_many(self) -> Any:
        return {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}

    def _dispatch(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
                  body: dict[str, Any]) -> Reply:
        status, payload, extra = super()._dispatch(method, path, query, headers, body)
        if status == 429:  # Bitrix24 answers its rate limit with 503
            return 503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}, extra
        return status, payload, extra

    def add_contact(self, name: str, *, phone: str = "", email: str = "") -> int:
        cid = next(self._ids)
        self.contacts[cid] = {"ID": str(cid), "NAME": name, "LAST_NAME": "",
                              "PHONE": [{"VALUE": phone, "VALUE_TYPE": "WORK"}] if phone else [],
                              "EMAIL": [{"VALUE": email, "VALUE_TYPE": "WORK"}] if email else []}
        return cid

    def add_deal(self, contact_id: int, title: str, stage: str = "NEW", amount: str = "1000.00") -> int:
        did = next(self._ids)
        self.deals[did] = {"ID": str(did), "TITLE": title, "STAGE_ID": stage, "OPPORTUNITY": amount,
                           "CURRENCY_ID": "RUB", "CONTACT_ID": str(contact_id),
                           "DATE_MODIFY": "2026-12-01T10:00:00+03:00"}
        return did

    def event(self, name: str, entity_id: int, token: str | None = None) -> dict[str, str]:
        return {"event": name, "data[FIELDS][ID]": str(entity_id), "ts": "1796000000",
                "auth[domain]": "myshop.bitrix24.ru", "auth[member_id]": "m1",
                "auth[application_token]": self.application_token if token is None else token}

    def _page(self, rows: list[dict[str, Any]], params: dict[str, str]) -> Reply:
        start = int(params.get("start") or 0)
        out: dict[str, Any] = {"result": rows[start:start + self.PAGE], "total": len(rows),
                               "time": {"start": time.time()}}
        if start + self.PAGE < len(rows):
            out["next"] = start + self.PAGE
        return 200, out, {}

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: dict[str, Any]) -> Reply:
        match = re.match(r"^/rest/(\d+)/([^/]+)/([a-z.]+)\.json$", path)
        if not match:
            return 404, {"error": "NOT_FOUND", "error_description": "Method not found"}, {}
        if int(match.group(1)) != self.user or match.group(2) != self.code:
            return 401, {"error": "INVALID_CREDENTIALS", "error_description": "Invalid request credentials"}, {}
        name = match.group(3)
        params = {k: v[-1] for k, v in body.items() if k != "_json"}
        if name == "profile":
            return 200, {"result": {"ID": str(self.user), "NAME": "Мария", "LAST_NAME": "Админова", "ADMIN": True}}, {}
        if name == "crm.contact.list":
            rows = list(self.contacts.values())
            if "filter[PHONE]" in params:
                rows = [c for c in rows if any(digits(p["VALUE"]) == digits(params["filter[PHONE]"]) for p in c["PHONE"])]
            if "filter[EMAIL]" in params:
                rows = [c for c in rows if any(e["VALUE"].lower() == params["filter[EMAIL]"].lower() for e in c["EMAIL"])]
            if "filter[ORIGIN_ID]" in params:
                rows = [c for c in rows if c.get("ORIGINATOR_ID") == params.get("filter[ORIGINATOR_ID]")
                        and c.get("ORIGIN_ID") == params["filter[ORIGIN_ID]"]]
            return self._page(rows, params)
        if name == "crm.contact.add":
            cid = next(self._ids)
            contact: dict[str, Any] = {"ID": str(cid), "PHONE": [], "EMAIL": []}
            for key, value in params.items():
                multi = re.match(r"^fields\[(PHONE|EMAIL)\]\[(\d+)\]\[(VALUE|VALUE_TYPE)\]$", key)
                if multi:
                    items = contact[multi.group(1)]
                    while len(items) <= int(multi.group(2)):
                        items.append({})
                    items[int(multi.group(2))][multi.group(3)] = value
                elif key.startswith("fields["):
                    contact[key[7:-1]] = value
            if not contact.get("NAME"):
                return 400, {"error": "", "error_description": "Не заполнено обязательное поле Имя"}, {}
            self.contacts[cid] = contact
            return 200, {"result": cid}, {}
        if name == "crm.timeline.comment.add":
            if params.get("fields[ENTITY_TYPE]") != "contact" or int(params.get("fields[ENTITY_ID]") or 0) not in self.contacts:
                return 400, {"error": "ERROR_CORE", "error_description": "Not found"}, {}
            cid = next(self._ids)
            self.comments[cid] = {"ID": str(cid), "ENTITY_ID": params["fields[ENTITY_ID]"], "ENTITY_TYPE": "contact",
                                  "COMMENT": params.get("fields[COMMENT]", "")}
            return 200, {"result": cid}, {}
        if name == "crm.timeline.comment.list":
            rows = [c for c in self.comments.values() if c["ENTITY_ID"] == params.get("filter[ENTITY_ID]")]
            return self._page(rows, params)
        if name == "crm.deal.list":
            rows = [d for d in self.deals.values() if d["CONTACT_ID"] == params.get("filter[CONTACT_ID]")]
            return self._page(rows, params)
        if name == "crm.deal.get":
            deal = self.deals.get(int(params.get("id") or 0))
            if deal is None:
                return 400, {"error": "", "error_description": "Not found"}, {}
            return 200, {"result": deal}, {}
        if name == "crm.status.list":
            return self._page(self.stages, params)
        return 404, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found"}, {}
