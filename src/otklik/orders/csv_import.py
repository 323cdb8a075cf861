"""Order history from a CSV file (an export of the shop's system): each row becomes an order body.

UTF-8 (a BOM is fine), comma or semicolon separated, one header row. Columns (any order; unknown ones are an
error, empty cells are left out):

    number, customer_kind, customer_value, customer_name, customer_phone, customer_email,
    status, status_at, placed_at, total, currency, paid, payment_status, payment_url,
    delivery_method, delivery_address, tracking_url, tracking_number, carrier, promised_on,
    items   — «name|sku|quantity|price» per item, items separated by «;» (e.g. «Чайник|K-1|1|2490; Фильтр||2|150»)

`paid` is yes/no (true/false, 1/0, да/нет) or the amount paid.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from otklik.platform.errors import field_error

COLUMNS = ("number", "customer_kind", "customer_value", "customer_name", "customer_phone", "customer_email",
           "status", "status_at", "placed_at", "total", "currency", "paid", "payment_status", "payment_url",
           "delivery_method", "delivery_address", "tracking_url", "tracking_number", "carrier", "promised_on",
           "items")
_YES = {"yes", "true", "1", "да", "y"}
_NO = {"no", "false", "0", "нет", "n"}
MAX_ROWS = 10_000


def _items(cell: str) -> list[dict[str, Any]]:
    items = []
    for part in cell.split(";"):
        if not part.strip():
            continue
        bits = [b.strip() for b in part.split("|")] + ["", "", "", ""]
        item: dict[str, Any] = {"name": bits[0]}
        if bits[1]:
            item["sku"] = bits[1]
        if bits[2]:
            item["quantity"] = bits[2]
        if bits[3]:
            item["price"] = bits[3]
        items.append(item)
    return items


def row_to_order(row: dict[str, str]) -> dict[str, Any]:
    cell = {k: (v or "").strip() for k, v in row.items() if k}
    order: dict[str, Any] = {}
    for key in ("number", "status", "status_at", "placed_at", "total", "currency", "payment_status", "payment_url"):
        if cell.get(key):
            order[key] = cell[key]
    if cell.get("customer_value") or cell.get("customer_kind"):
        customer = {"kind": cell.get("customer_kind") or "phone", "value": cell.get("customer_value", "")}
        for key in ("name", "phone", "email"):
            if cell.get(f"customer_{key}"):
                customer[key] = cell[f"customer_{key}"]
        order["customer"] = customer
    paid = cell.get("paid", "").lower()
    if paid:
        order["paid"] = True if paid in _YES else False if paid in _NO else paid
    delivery = {key: cell[col] for key, col in (("method", "delivery_method"), ("address", "delivery_address"),
                                                 ("tracking_url", "tracking_url"), ("tracking_number", "tracking_number"),
                                                 ("carrier", "carrier"), ("promised_on", "promised_on")) if cell.get(col)}
    if delivery:
        order["delivery"] = delivery
    if cell.get("items"):
        order["items"] = _items(cell["items"])
    return order


def rows_from_csv(raw: bytes) -> list[dict[str, Any]]:
    """The file's rows as order bodies; a file that is not UTF-8 CSV with known columns is a 422."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise field_error("body", f"is not UTF-8 (byte {exc.start}); save the CSV as UTF-8") from None
    if not text.strip():
        raise field_error("body", "is empty; send a CSV file with a header row")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in reader.fieldnames or []]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise field_error(f"columns.{unknown[0][:40]}", f"unknown column; use: {', '.join(COLUMNS)}")
    if "number" not in header:
        raise field_error("columns.number", "the number column is required")
    reader.fieldnames = header
    rows = []
    try:
        for i, row in enumerate(reader):
            if i >= MAX_ROWS:
                raise field_error("body", f"at most {MAX_ROWS} rows in one file; split it")
            if None in row:
                raise field_error(f"rows.{i}", "has more cells than the header")
            rows.append(row_to_order(row))
    except csv.Error as exc:
        raise field_error("body", f"is not valid CSV: {exc}") from None
    return rows


def import_for_workspace(workspace_slug: str, raw: bytes) -> dict[str, Any]:
    """`otklik orders-import FILE --workspace SLUG`: the file stored like POST /api/v1/orders/import."""
    from otklik.accounts.models import Workspace
    from otklik.accounts.service import Actor
    from otklik.orders.service import store_batch
    from otklik.platform.db import session_scope
    from otklik.platform.errors import NotFound

    with session_scope(write=False) as session:
        from sqlalchemy import select

        workspace_id = session.scalar(select(Workspace.id).where(Workspace.slug == workspace_slug))
    if workspace_id is None:
        raise NotFound(f"workspace {workspace_slug!r} not found")
    return store_batch(Actor.system(workspace_id, kind="system"), rows_from_csv(raw), atomic=False, source="csv",
                       prefix="rows")
