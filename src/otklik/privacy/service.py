"""A person's data under 152-ФЗ «О персональных данных»: everything held about a customer exported as one ZIP,
erasure of their personal data with the statistics kept, and the retention period of closed conversations.

- ст. 14 ч. 1, ч. 7: the subject has the right to the personal data processed about them → `export_customer`.
- ст. 21 ч. 3–5: data processed unlawfully or on a withdrawn consent are destroyed, within 10 working days of
  the request (ч. 5: 30 days once the purpose is achieved) → `erase_customer` does it at once.
- ст. 5 ч. 7: data are kept no longer than the purpose of processing needs → `sweep_retention` deletes closed
  conversations older than the workspace's period.

Every table that can hold something about a customer is named in `POLICY` with what erasure does to it: rows
deleted, free text blanked (counts, times, scores, amounts kept, so the reports stay right), or kept with the
reason. A test fails when a table linked to customers, conversations or messages is missing from it, so a new
table cannot slip past an erasure. The export reads the same list, so it is complete by the same rule.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from otklik.accounts.models import Role, Workspace
from otklik.accounts.service import Actor, record_audit
from otklik.conversations.models import Attachment, Conversation, Message, Status
from otklik.customers.models import Customer
from otklik.platform.config import get_settings
from otklik.platform.db import Base, affected, utcnow
from otklik.platform.errors import NotFound, field_error
from otklik.platform.events import after_commit
from otklik.privacy.models import PrivacySettings

log = logging.getLogger(__name__)

ERASED_MARK = "erased_at"  # set in the customer's attributes; its value is when
MIN_RETENTION_DAYS = 30  # shorter would delete conversations a customer may still come back to
MAX_RETENTION_DAYS = 36500
RETENTION_BATCH = 500  # conversations deleted per transaction by the sweep (bounded write lock)
# columns never written into an export: search indexes, secrets' hashes, internal keys
EXPORT_SKIP_COLUMNS = frozenset({"search_terms", "search_vector", "token_hash", "idempotency_key", "fingerprint",
                                 "storage_key"})


@dataclass(frozen=True)
class Rule:
    """What erasure does to one table's rows about the person.

    `links`: the columns that tie a row to the person, each `customer`, `conversation` or `message`.
    `action`: "delete" the rows, "blank" the `blank` columns (set to the given values), or "keep" (`why` says
    why: no personal data in it, or it is a legal record).
    """

    links: dict[str, str]
    action: str
    blank: dict[str, Any] = field(default_factory=dict)
    why: str = ""


C, V, M = "customer", "conversation", "message"

POLICY: dict[str, Rule] = {
    # the person and how to reach them
    "identities": Rule({"customer_id": C}, "delete"),
    "customer_notes": Rule({"customer_id": C}, "delete"),
    "customer_tasks": Rule({"customer_id": C, "conversation_id": V}, "delete"),
    "customer_suggestion_dismissals": Rule({"customer_id": C, "other_id": C}, "delete"),
    "crm_links": Rule({"customer_id": C}, "delete"),
    "widget_visitors": Rule({"customer_id": C, "conversation_id": V}, "delete"),
    # what they wrote and what was written to them: the text goes, the counts and times stay
    "conversations": Rule({"customer_id": C}, "blank", {"subject": "", "last_message_preview": ""}),
    "messages": Rule({"conversation_id": V}, "blank",
                     {"body_text": "", "body_html": "", "meta": {"erased": True}, "search_terms": "",
                      "delivery_error": None}),
    "attachments": Rule({"message_id": M}, "delete"),  # files removed after commit (see _remove_files)
    "reply_drafts": Rule({"conversation_id": V}, "delete"),
    "kb_variant_proposals": Rule({"conversation_id": V, "question_message_id": M}, "delete"),
    "agent_notifications": Rule({"conversation_id": V}, "blank", {"text": ""}),
    "survey_answers": Rule({"customer_id": C, "conversation_id": V}, "blank", {"comment": ""}),
    "reviews": Rule({"customer_id": C, "conversation_id": V}, "blank",
                    {"text": "", "author": "", "link": "", "reply_text": ""}),
    "qa_scores": Rule({"conversation_id": V}, "blank", {"comment": ""}),
    "compensations": Rule({"customer_id": C, "conversation_id": V, "message_id": M}, "blank", {"reason": "", "decision_comment": ""}),
    "orders": Rule({"customer_id": C}, "blank",
                   {"customer_id": None, "customer_value": "", "contacts": {}, "delivery": {}, "payment_url": None,
                    "attributes": {}}),
    "bookings": Rule({"customer_id": C, "conversation_id": V}, "blank",
                     {"address": "", "feedback_comment": "", "meta": {}}),
    "proactive_sends": Rule({"customer_id": C, "conversation_id": V, "message_id": M}, "blank", {"context": {}}),
    "proactive_consent_events": Rule({"customer_id": C}, "blank", {"evidence": ""}),
    # no personal text in these: ids, states, times, amounts
    "assistant_decisions": Rule({"conversation_id": V, "message_id": M}, "keep", why="the decision (action, reason, article, "
                                "confidence), no text of the customer"),
    "automation_rule_runs": Rule({"conversation_id": V}, "keep", why="which rule ran, when"),
    "conversation_mentions": Rule({"conversation_id": V, "message_id": M}, "keep", why="which agent was mentioned"),
    "conversation_reads": Rule({"conversation_id": V}, "keep", why="when an agent read it"),
    "conversation_tags": Rule({"conversation_id": V}, "keep", why="the team's own tags"),
    "crm_notes": Rule({"conversation_id": V}, "keep", why="the id of the note sent to the CRM, its state"),
    "email_message_ids": Rule({"conversation_id": V, "message_id": M}, "keep", why="Message-ID headers for threading"),
    "legal_cases": Rule({"conversation_id": V}, "keep", why="the deadline's dates and price, the shop's legal "
                        "record of meeting the term (ЗоЗПП)"),
    "mystery_runs": Rule({"conversation_id": V}, "keep", why="a supervisor's test, not a customer"),
    "outbox": Rule({"message_id": M}, "keep", why="delivery state and attempts"),
    "sla_timers": Rule({"conversation_id": V}, "keep", why="the timers' due and stop times"),
    "report_rollup_marks": Rule({"customer_id": C, "conversation_id": V}, "keep", why="counters for the reports"),
    "proactive_contacts": Rule({"customer_id": C}, "keep", why="when the customer was last messaged (the cap)"),
    "referral_codes": Rule({"customer_id": C}, "keep", why="a random code, needed to pay out rewards"),
    "referrals": Rule({"referrer_id": C, "referred_id": C}, "keep", why="who referred whom (ids), the reward's "
                      "record"),
}


def _customer_ids(session: Session, workspace_id: int, customer_id: int) -> list[int]:
    """The customer and the duplicates merged into them: one person."""
    ids = [customer_id]
    frontier = [customer_id]
    while frontier and len(ids) < 1000:
        frontier = list(session.scalars(select(Customer.id).where(
            Customer.workspace_id == workspace_id, Customer.merged_into_id.in_(frontier))))
        ids += [i for i in frontier if i not in ids]
    return ids


@dataclass
class Scope:
    """The person's rows: their customer ids, conversations and messages."""

    workspace_id: int
    customers: list[int]
    conversations: list[int]
    messages: list[int]

    def ids(self, kind: str) -> list[int]:
        return {C: self.customers, V: self.conversations, M: self.messages}[kind]


def scope_of(session: Session, actor: Actor, customer_id: int) -> tuple[Customer, Scope]:
    customer = session.get(Customer, customer_id)
    if customer is None or customer.workspace_id != actor.workspace_id:
        raise NotFound(f"customer {customer_id} not found")
    customers = _customer_ids(session, actor.workspace_id, customer_id)
    conversations = list(session.scalars(select(Conversation.id).where(
        Conversation.workspace_id == actor.workspace_id, Conversation.customer_id.in_(customers))))
    messages = list(session.scalars(select(Message.id).where(
        Message.workspace_id == actor.workspace_id, Message.conversation_id.in_(conversations)))) if conversations else []
    return customer, Scope(actor.workspace_id, customers, conversations, messages)


def _table(name: str) -> Table | None:
    return Base.metadata.tables.get(name)


def _chunks(ids: list[int], size: int = 500) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def _where(table: Table, rule: Rule, scope: Scope) -> Iterator[Any]:
    """Conditions selecting the person's rows of `table`, a chunk of ids at a time (bounded IN lists)."""
    for column, kind in rule.links.items():
        if column not in table.c:
            continue
        for chunk in _chunks(scope.ids(kind)):
            condition: Any = table.c[column].in_(chunk)
            if "workspace_id" in table.c:
                condition = condition & (table.c.workspace_id == scope.workspace_id)
            yield condition


# -- export (ст. 14) -------------------------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return value
    return str(value)


def _rows(session: Session, table: Table, conditions: Iterator[Any]) -> list[dict[str, Any]]:
    seen: set[Any] = set()
    rows = []
    key = list(table.primary_key.columns)
    for condition in conditions:
        for row in session.execute(select(table).where(condition)).mappings():
            ident = tuple(row[c.name] for c in key)
            if ident in seen:
                continue
            seen.add(ident)
            rows.append({k: _jsonable(v) for k, v in row.items() if k not in EXPORT_SKIP_COLUMNS})
    return rows


def export_customer(session: Session, actor: Actor, customer_id: int) -> tuple[IO[bytes], str, dict[str, Any]]:
    """A ZIP of everything held about the customer (and the duplicates merged into them): `customer.json`, one
    `tables/<table>.json` per table that has rows about them, the files they sent or were sent under
    `attachments/`, and a README. Spooled to disk past 16 MB; returns the file (at 0), its name and what it
    holds, counted (for `record_export`)."""
    actor.require(Role.admin)
    customer, scope = scope_of(session, actor, customer_id)
    workspace = session.get(Workspace, actor.workspace_id)
    out = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115 - returned to be streamed
    counts: dict[str, int] = {}
    customers_table = Customer.__table__
    assert isinstance(customers_table, Table)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        people = _rows(session, customers_table, iter([customers_table.c.id.in_(scope.customers)]))
        archive.writestr("customer.json", json.dumps(people, ensure_ascii=False, indent=1))
        for name in sorted(POLICY):
            table = _table(name)
            if table is None:
                continue
            rows = _rows(session, table, _where(table, POLICY[name], scope))
            if rows:
                counts[name] = len(rows)
                archive.writestr(f"tables/{name}.json", json.dumps(rows, ensure_ascii=False, indent=1))
        root = get_settings().attachments_dir
        files = 0
        for chunk in _chunks(scope.messages):
            for attachment in session.scalars(select(Attachment).where(Attachment.message_id.in_(chunk))):
                path = root / attachment.storage_key
                if path.is_file():
                    archive.write(path, f"attachments/{attachment.id}_{attachment.filename}")
                    files += 1
        archive.writestr("README.txt", _readme(workspace.name if workspace else "", customer, counts, files))
    out.seek(0)
    return out, f"customer-{customer.id}-{utcnow():%Y%m%d}.zip", {
        "tables": counts, "files": files, "customers": len(scope.customers)}


def record_export(session: Session, actor: Actor, customer_id: int, summary: dict[str, Any]) -> None:
    """The audit line of an export (its own write transaction: the export itself only reads)."""
    record_audit(session, actor, entity_type="customer", entity_id=customer_id, action="customer.exported",
                 after=summary)


def _readme(workspace: str, customer: Customer, counts: dict[str, int], files: int) -> str:
    lines = [
        f"Персональные данные клиента #{customer.id} ({workspace}), выгрузка от {utcnow():%Y-%m-%d %H:%M} UTC.",
        f"Personal data held about customer #{customer.id}, exported {utcnow():%Y-%m-%d %H:%M} UTC.",
        "",
        "customer.json — профиль (и профили, объединённые с ним) / the profile (and duplicates merged into it)",
        "tables/*.json — записи о клиенте по таблицам / the rows about the customer, one file per table",
        "attachments/ — файлы из переписки / files from the conversations",
        "",
    ]
    lines += [f"{name}: {count}" for name, count in sorted(counts.items())]
    lines.append(f"attachments: {files}")
    return "\n".join(lines) + "\n"


# -- erasure (ст. 21) ------------------------------------------------------------------------------------------

def is_erased(customer: Customer) -> bool:
    return bool((customer.attributes or {}).get(ERASED_MARK))


def erase_customer(session: Session, actor: Actor, customer_id: int, *, confirm: bool) -> dict[str, Any]:
    """Remove the customer's personal data and keep the statistics: the profile emptied (name, attributes,
    search terms, identities), every message's text and files removed, free-text comments blanked, the rows that
    exist only for the person deleted; conversations, their times, statuses, categories, scores and amounts stay,
    so the reports do not change. The duplicates merged into the customer go with them. Audited with the counts
    (never the data). Erasing again changes nothing."""
    actor.require(Role.admin)
    if confirm is not True:
        raise field_error("confirm", "must be true: erasure cannot be undone")
    customer, scope = scope_of(session, actor, customer_id)
    counts: dict[str, int] = {}
    storage_keys: set[str] = set()
    for chunk in _chunks(scope.messages):
        storage_keys.update(session.scalars(select(Attachment.storage_key).where(Attachment.message_id.in_(chunk))))
    for name, rule in POLICY.items():
        table = _table(name)
        if table is None or rule.action == "keep":
            continue
        done = 0
        for condition in list(_where(table, rule, scope)):
            if rule.action == "delete":
                done += affected(session.execute(delete(table).where(condition)))
            else:
                values = {k: v for k, v in rule.blank.items() if k in table.c}
                done += affected(session.execute(update(table).where(condition).values(**values)))
        if done:
            counts[name] = done
    when = utcnow().isoformat()
    session.execute(update(Customer).where(Customer.id.in_(scope.customers)).values(
        name="", attributes={ERASED_MARK: when}, search_terms="", timezone=None))
    session.expire_all()
    record_audit(session, actor, entity_type="customer", entity_id=customer.id, action="customer.erased",
                 after={"rows": counts, "customers": len(scope.customers), "conversations": len(scope.conversations),
                        "messages": len(scope.messages), "files": len(storage_keys)})
    if storage_keys:
        workspace_id = actor.workspace_id
        after_commit(session, lambda: _remove_files(workspace_id, storage_keys))
    return {"customer_id": customer.id, "erased_at": when, "customers": len(scope.customers),
            "conversations": len(scope.conversations), "messages": len(scope.messages), "rows": counts,
            "files": len(storage_keys)}


def _remove_files(workspace_id: int, storage_keys: set[str]) -> None:
    """Delete the stored files no attachment refers to any more (the store is content-addressed per workspace:
    the same file sent by someone else stays)."""
    from otklik.platform.db import session_scope

    root = get_settings().attachments_dir
    with session_scope(write=False) as session:
        still = set(session.scalars(select(Attachment.storage_key).where(
            Attachment.workspace_id == workspace_id, Attachment.storage_key.in_(list(storage_keys)))))
    for key in storage_keys - still:
        path = root / key
        try:
            path.unlink(missing_ok=True)
        except OSError:
            log.warning("could not remove an erased attachment's file in workspace %s", workspace_id)


# -- retention (ст. 5 ч. 7) --------------------------------------------------------------------------------------

def get_settings_row(session: Session, workspace_id: int) -> PrivacySettings:
    row = session.get(PrivacySettings, workspace_id)
    return row if row is not None else PrivacySettings(workspace_id=workspace_id, closed_retention_days=None)


def set_retention(session: Session, actor: Actor, days: int | None) -> PrivacySettings:
    actor.require(Role.admin)
    if days is not None and not (MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS):
        raise field_error("closed_retention_days",
                          f"from {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS} days, or null to keep everything")
    row = session.get(PrivacySettings, actor.workspace_id)
    before = row.closed_retention_days if row is not None else None
    if row is None:
        row = PrivacySettings(workspace_id=actor.workspace_id)
        session.add(row)
    row.closed_retention_days = days
    row.updated_at = utcnow()
    record_audit(session, actor, entity_type="workspace", entity_id=actor.workspace_id,
                 action="privacy.retention_changed", before={"closed_retention_days": before},
                 after={"closed_retention_days": days})
    session.flush()
    return row


def expired_conversations(session: Session, workspace_id: int, days: int, now: dt.datetime,
                          limit: int = RETENTION_BATCH) -> list[int]:
    """Closed conversations whose closing (or, closed before that was stamped, last activity) is older than
    `days`; never an open, pending or solved one."""
    cutoff = now - dt.timedelta(days=days)
    return list(session.scalars(select(Conversation.id).where(
        Conversation.workspace_id == workspace_id, Conversation.status == Status.closed.value,
        ((Conversation.closed_at.is_not(None)) & (Conversation.closed_at < cutoff))
        | ((Conversation.closed_at.is_(None)) & (Conversation.updated_at < cutoff)))
        .order_by(Conversation.id).limit(limit)))


def delete_conversations(session: Session, workspace_id: int, conversation_ids: list[int]) -> int:
    """Delete conversations (their messages, files and everything hanging on them go by the foreign keys), the
    files removed after commit when nothing else refers to them."""
    if not conversation_ids:
        return 0
    keys = set(session.scalars(select(Attachment.storage_key).join(Message, Attachment.message_id == Message.id)
                               .where(Message.conversation_id.in_(conversation_ids))))
    # merged conversations point at their target: unlink, then delete
    session.execute(update(Conversation).where(Conversation.merged_into_id.in_(conversation_ids))
                    .values(merged_into_id=None))
    done = affected(session.execute(delete(Conversation).where(Conversation.workspace_id == workspace_id,
                                                               Conversation.id.in_(conversation_ids))))
    if keys:
        after_commit(session, lambda: _remove_files(workspace_id, keys))
    return done


def sweep_retention(now: dt.datetime | None = None) -> dict[int, int]:
    """The worker's pass: per workspace with a retention period, delete a bounded batch of expired closed
    conversations per transaction until none is left; each batch audited with its count."""
    from otklik.platform.db import session_scope

    now = now or utcnow()
    deleted: dict[int, int] = {}
    with session_scope(write=False) as session:
        settings = [(row.workspace_id, row.closed_retention_days) for row in session.scalars(
            select(PrivacySettings).where(PrivacySettings.closed_retention_days.is_not(None)))]
    for workspace_id, days in settings:
        assert days is not None
        while True:
            with session_scope() as session:
                ids = expired_conversations(session, workspace_id, days, now)
                count = delete_conversations(session, workspace_id, ids)
                if count:
                    record_audit(session, Actor.system(workspace_id), entity_type="workspace",
                                 entity_id=workspace_id, action="privacy.retention_deleted",
                                 after={"conversations": count, "closed_retention_days": days})
            deleted[workspace_id] = deleted.get(workspace_id, 0) + count
            if len(ids) < RETENTION_BATCH:
                break
    return {k: v for k, v in deleted.items() if v}


def linked_tables() -> dict[str, list[str]]:
    """Every table with a foreign key to customers, conversations or messages, and those columns (the test that
    keeps POLICY complete reads this)."""
    found: dict[str, list[str]] = {}
    for table in Base.metadata.tables.values():
        if table.name in ("customers",):
            continue
        cols = sorted({fk.parent.name for fk in table.foreign_keys
                       if fk.column.table.name in ("customers", "conversations", "messages")})
        if cols:
            found[table.name] = cols
    return found
