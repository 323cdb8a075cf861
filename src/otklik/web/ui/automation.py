"""Settings → Rules and Settings → Macros, and the conversation's automation panel (apply a macro, rule runs).

- `/settings/rules`: the list; `/settings/rules/new` and `/settings/rules/{id}`: a form (trigger, up to a few
  condition rows and action rows, no script needed) and a dry run (which of the last 100 conversations match);
- `/settings/macros`, `/settings/macros/new`, `/settings/macros/{id}`: the same action rows;
- `/ui/conversations/{id}/automation`: the panel under the conversation's fields (a macro menu with «Apply», the
  latest rule runs); `POST /ui/conversations/{id}/macro` applies one and returns to the conversation.

Values are typed as text: lists comma-separated, a team by name, an assignee by name or e-mail, a template by
name; the domain checks everything and a refusal is shown with the field it names.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from otklik.accounts import service as accounts
from otklik.accounts.deps import DB
from otklik.accounts.models import Role
from otklik.conversations import service as conversations
from otklik.conversations import templates
from otklik.platform.errors import DomainError
from otklik.service_levels import actions as action_kit
from otklik.service_levels import service
from otklik.web.ui.deps import CurrentUser, SupervisorUser, UIUser, redirect, render, ui_router

router = ui_router()
MIN_ROWS = 3

TRIGGER_LABELS = {
    "conversation_created": "Conversation created", "customer_message": "Customer message",
    "conversation_updated": "Conversation changed", "status_changed": "Status changed", "tag_added": "Tag added",
    "sla_warning": "SLA warning", "sla_breached": "SLA breached", "assistant_handoff": "Assistant hand-off",
    "time": "Time passed in a status",
}
FIELD_LABELS = {
    "text": "Message text", "channel": "Channel", "status": "Status", "priority": "Priority", "team_id": "Team",
    "assignee_id": "Assignee", "category": "Category", "language": "Language", "tags": "Tags",
    "sentiment": "Sentiment", "urgent": "Urgent (assistant)", "business_hours": "Within business hours",
    "customer": "Customer attribute", "loyalty_tier": "Loyalty tier",
}
OP_LABELS = {"is": "is", "is_not": "is not", "contains": "contains", "not_contains": "does not contain"}
ACTION_LABELS = {
    "set_status": "Set status", "set_priority": "Set priority", "set_team": "Set team", "set_assignee": "Assign to",
    "add_tag": "Add tag", "remove_tag": "Remove tag", "send_template": "Send template reply",
    "add_note": "Add internal note", "notify": "Notify the assignee", "webhook": "Call webhook (URL)",
}
YES = {"yes", "true", "да", "1", "on"}


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


class Lookup:
    """Names ↔ ids of the workspace's teams, users and shared templates, for the typed values."""

    def __init__(self, db: Session, user: UIUser):
        self.teams = {t.id: t.name for t in accounts.list_teams(db, user.actor)}
        self.users = {u.id: (u.name, u.email) for u in accounts.list_users(db, user.actor)}
        self.templates = {t.id: t.name for t in templates.list_templates(db, user.actor, limit=500)
                          if t.owner_user_id is None}

    def team_id(self, text: str) -> Any:
        if text.lower() in ("", "none", "нет"):
            return None
        for tid, name in self.teams.items():
            if name.lower() == text.lower():
                return tid
        return int(text) if text.isdigit() else text

    def user_id(self, text: str) -> Any:
        if text.lower() in ("", "none", "нет", "nobody", "никто"):
            return None
        for uid, (name, email) in self.users.items():
            if text.lower() in (name.lower(), email.lower()):
                return uid
        return int(text) if text.isdigit() else text

    def template_id(self, text: str) -> Any:
        for tid, name in self.templates.items():
            if name.lower() == text.lower():
                return tid
        return int(text) if text.isdigit() else text


# -- form rows <-> JSON -------------------------------------------------------------------------------------------

def conditions_from_rows(rows: list[dict[str, str]], look: Lookup) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        name, op, text = row.get("field", ""), row.get("op", "is"), row.get("value", "").strip()
        if not name:
            continue
        if name == "customer":
            name = "customer." + row.get("attr", "").strip()
        value: Any
        if name in ("urgent", "business_hours"):
            value = text.lower() in YES
        elif name == "team_id":
            value = [look.team_id(v) for v in _split(text)] or [None]
        elif name == "assignee_id":
            value = [look.user_id(v) for v in _split(text)] or [None]
        else:
            value = _split(text)
        out.append({"field": name, "op": op, "value": value})
    return out


def conditions_to_rows(conditions: list[dict[str, Any]], look: Lookup) -> list[dict[str, str]]:
    rows = []
    for c in conditions:
        name, value = c["field"], c["value"]
        row = {"field": name, "op": c["op"], "attr": ""}
        if name.startswith("customer."):
            row["field"], row["attr"] = "customer", name.removeprefix("customer.")
        if isinstance(value, bool):
            row["value"] = "yes" if value else "no"
        elif name == "team_id":
            row["value"] = ", ".join("none" if v is None else look.teams.get(v, str(v)) for v in value)
        elif name == "assignee_id":
            row["value"] = ", ".join("none" if v is None else look.users.get(v, (str(v), ""))[0] for v in value)
        else:
            row["value"] = ", ".join(str(v) for v in value)
        rows.append(row)
    return rows


def actions_from_rows(rows: list[dict[str, str]], look: Lookup) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row in rows:
        kind, text = row.get("type", ""), row.get("value", "").strip()
        if not kind:
            continue
        if kind == "set_team":
            out.append({"type": kind, "value": look.team_id(text)})
        elif kind == "set_assignee":
            out.append({"type": kind, "value": look.user_id(text)})
        elif kind == "send_template":
            out.append({"type": kind, "template_id": look.template_id(text)})
        elif kind == "add_note":
            out.append({"type": kind, "text": text})
        elif kind == "notify":
            out.append({"type": kind, "user_ids": [], "text": text})
        elif kind == "webhook":
            action: dict[str, Any] = {"type": kind, "url": text}
            if row.get("secret"):
                action["secret"] = row["secret"]
            out.append(action)
        else:
            out.append({"type": kind, "value": text})
    return out


def actions_to_rows(actions: list[dict[str, Any]], look: Lookup) -> list[dict[str, str]]:
    rows = []
    for a in actions:
        kind = a["type"]
        if kind == "set_team":
            value = "none" if a.get("value") is None else look.teams.get(a["value"], str(a["value"]))
        elif kind == "set_assignee":
            value = "none" if a.get("value") is None else look.users.get(a["value"], (str(a["value"]), ""))[0]
        elif kind == "send_template":
            value = look.templates.get(a["template_id"], str(a["template_id"]))
        elif kind in ("add_note", "notify"):
            value = a.get("text", "")
        elif kind == "webhook":
            value = a.get("url", "")
        else:
            value = str(a.get("value", ""))
        rows.append({"type": kind, "value": value, "secret": ""})
    return rows


def _rows(form: Any, prefix: str, keys: tuple[str, ...]) -> list[dict[str, str]]:
    rows = []
    for i in range(20):
        row = {k: str(form.get(f"{prefix}{i}_{k}") or "")[:2000] for k in keys}
        if not any(row.values()) and f"{prefix}{i}_{keys[0]}" not in form:
            break
        rows.append(row)
    return rows


def _pad(rows: list[dict[str, str]], blank: dict[str, str]) -> list[dict[str, str]]:
    return rows + [dict(blank) for _ in range(max(MIN_ROWS - len(rows), 1))]


def _error_text(exc: DomainError) -> str:
    return "; ".join(f"{f['field']}: {f['message']}" for f in exc.fields) or exc.message


# -- rules --------------------------------------------------------------------------------------------------------

@router.get("/settings/rules")
def rules_page(request: Request, user: SupervisorUser, db: DB) -> Response:
    return render(request, "settings/rules.html", rules=service.list_rules(db, user.actor),
                  trigger_labels=TRIGGER_LABELS)


def _rule_page(request: Request, db: Session, user: UIUser, *, rule_id: int | None, form: dict[str, Any],
               error: str | None = None, dry: dict[str, Any] | None = None, saved: bool = False,
               status_code: int = 200) -> Response:
    look = Lookup(db, user)
    return render(request, "settings/rule.html", status_code=status_code, rule_id=rule_id, form=form, error=error,
                  dry=dry, saved=saved, triggers=service.TRIGGERS, trigger_labels=TRIGGER_LABELS,
                  fields=[*service.FIELDS, "customer"], field_labels=FIELD_LABELS, ops=service.OPS,
                  op_labels=OP_LABELS, action_types=action_kit.RULE_TYPES, action_labels=ACTION_LABELS,
                  statuses=["new", "open", "pending", "solved"], look=look)


def _rule_form(rule: Any, look: Lookup) -> dict[str, Any]:
    return {"name": rule.name, "enabled": rule.enabled, "trigger": rule.trigger,
            "time_status": (rule.trigger_options or {}).get("status", "pending"),
            "time_hours": (rule.trigger_options or {}).get("hours", 72),
            "conditions": _pad(conditions_to_rows(rule.conditions or [], look), {"field": "", "op": "is",
                                                                                  "value": "", "attr": ""}),
            "actions": _pad(actions_to_rows(rule.actions or [], look), {"type": "", "value": "", "secret": ""})}


def _blank_rule_form() -> dict[str, Any]:
    return {"name": "", "enabled": True, "trigger": "customer_message", "time_status": "pending", "time_hours": 72,
            "conditions": _pad([], {"field": "", "op": "is", "value": "", "attr": ""}),
            "actions": _pad([], {"type": "", "value": "", "secret": ""})}


@router.get("/settings/rules/new")
def new_rule_page(request: Request, user: SupervisorUser, db: DB) -> Response:
    return _rule_page(request, db, user, rule_id=None, form=_blank_rule_form())


@router.get("/settings/rules/{rule_id}")
def rule_page(request: Request, rule_id: int, user: SupervisorUser, db: DB, saved: bool = False) -> Response:
    rule = service.get_rule(db, user.actor, rule_id)
    return _rule_page(request, db, user, rule_id=rule.id, form=_rule_form(rule, Lookup(db, user)), saved=saved)


async def _posted_rule(request: Request) -> dict[str, Any]:
    form = await request.form()
    hours = str(form.get("time_hours") or "").strip()
    return {"name": str(form.get("name") or "")[:200], "enabled": form.get("enabled") == "on",
            "trigger": str(form.get("trigger") or ""), "time_status": str(form.get("time_status") or ""),
            "time_hours": int(hours) if hours.isdigit() else hours,
            "conditions": _rows(form, "c", ("field", "op", "value", "attr")),
            "actions": _rows(form, "a", ("type", "value", "secret"))}


def _rule_data(posted: dict[str, Any], look: Lookup) -> dict[str, Any]:
    trigger = posted["trigger"]
    options = {"status": posted["time_status"], "hours": posted["time_hours"]} if trigger == "time" else {}
    return {"name": posted["name"], "enabled": posted["enabled"], "trigger": trigger, "trigger_options": options,
            "conditions": conditions_from_rows(posted["conditions"], look),
            "actions": actions_from_rows(posted["actions"], look)}


@router.post("/settings/rules/new")
async def create_rule(request: Request, user: SupervisorUser, db: DB) -> Response:
    posted = await _posted_rule(request)
    look = Lookup(db, user)
    try:
        rule = service.create_rule(db, user.actor, _rule_data(posted, look))
    except DomainError as exc:
        db.rollback()
        posted["conditions"] = _pad(posted["conditions"], {"field": "", "op": "is", "value": "", "attr": ""})
        posted["actions"] = _pad(posted["actions"], {"type": "", "value": "", "secret": ""})
        return _rule_page(request, db, user, rule_id=None, form=posted, error=_error_text(exc), status_code=422)
    return redirect(f"/settings/rules/{rule.id}?saved=1", request)


@router.post("/settings/rules/{rule_id}")
async def save_rule(request: Request, rule_id: int, user: SupervisorUser, db: DB) -> Response:
    posted = await _posted_rule(request)
    look = Lookup(db, user)
    try:
        service.update_rule(db, user.actor, rule_id, _rule_data(posted, look))
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        db.rollback()
        posted["conditions"] = _pad(posted["conditions"], {"field": "", "op": "is", "value": "", "attr": ""})
        posted["actions"] = _pad(posted["actions"], {"type": "", "value": "", "secret": ""})
        return _rule_page(request, db, user, rule_id=rule_id, form=posted, error=_error_text(exc), status_code=422)
    return redirect(f"/settings/rules/{rule_id}?saved=1", request)


@router.post("/settings/rules/{rule_id}/dry-run")
def dry_run(request: Request, rule_id: int, user: SupervisorUser, db: DB) -> Response:
    result = service.dry_run(db, user.actor, rule_id)
    rule = service.get_rule(db, user.actor, rule_id)
    return _rule_page(request, db, user, rule_id=rule_id, form=_rule_form(rule, Lookup(db, user)), dry=result)


@router.post("/settings/rules/{rule_id}/delete")
def delete_rule(request: Request, rule_id: int, user: SupervisorUser, db: DB) -> Response:
    service.delete_rule(db, user.actor, rule_id)
    return redirect("/settings/rules", request)


# -- macros -------------------------------------------------------------------------------------------------------

@router.get("/settings/macros")
def macros_page(request: Request, user: CurrentUser, db: DB) -> Response:
    return render(request, "settings/macros.html", macros=service.list_macros(db, user.actor),
                  action_labels=ACTION_LABELS, can_edit=user.has_role(Role.supervisor))


def _macro_page(request: Request, db: Session, user: UIUser, *, macro_id: int | None, form: dict[str, Any],
                error: str | None = None, saved: bool = False, status_code: int = 200) -> Response:
    return render(request, "settings/macro.html", status_code=status_code, macro_id=macro_id, form=form,
                  error=error, saved=saved, action_types=action_kit.MACRO_TYPES, action_labels=ACTION_LABELS,
                  look=Lookup(db, user))


@router.get("/settings/macros/new")
def new_macro_page(request: Request, user: SupervisorUser, db: DB) -> Response:
    return _macro_page(request, db, user, macro_id=None,
                       form={"name": "", "actions": _pad([], {"type": "", "value": "", "secret": ""})})


@router.get("/settings/macros/{macro_id}")
def macro_page(request: Request, macro_id: int, user: SupervisorUser, db: DB, saved: bool = False) -> Response:
    macro = service.get_macro(db, user.actor, macro_id)
    form = {"name": macro.name, "actions": _pad(actions_to_rows(macro.actions or [], Lookup(db, user)),
                                                {"type": "", "value": "", "secret": ""})}
    return _macro_page(request, db, user, macro_id=macro.id, form=form, saved=saved)


async def _save_macro(request: Request, user: UIUser, db: Session, macro_id: int | None) -> Response:
    form = await request.form()
    rows = _rows(form, "a", ("type", "value", "secret"))
    posted: dict[str, Any] = {"name": str(form.get("name") or "")[:200], "actions": rows}
    data = {"name": posted["name"], "actions": actions_from_rows(rows, Lookup(db, user))}
    try:
        if macro_id is None:
            macro_id = service.create_macro(db, user.actor, data).id
        else:
            service.update_macro(db, user.actor, macro_id, data)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        db.rollback()
        posted["actions"] = _pad(posted["actions"], {"type": "", "value": "", "secret": ""})
        return _macro_page(request, db, user, macro_id=macro_id, form=posted, error=_error_text(exc),
                           status_code=422)
    return redirect(f"/settings/macros/{macro_id}?saved=1", request)


@router.post("/settings/macros/new")
async def create_macro(request: Request, user: SupervisorUser, db: DB) -> Response:
    return await _save_macro(request, user, db, None)


@router.post("/settings/macros/{macro_id}")
async def save_macro(request: Request, macro_id: int, user: SupervisorUser, db: DB) -> Response:
    service.get_macro(db, user.actor, macro_id)
    return await _save_macro(request, user, db, macro_id)


@router.post("/settings/macros/{macro_id}/delete")
def delete_macro(request: Request, macro_id: int, user: SupervisorUser, db: DB) -> Response:
    service.delete_macro(db, user.actor, macro_id)
    return redirect("/settings/macros", request)


# -- the conversation's panel -------------------------------------------------------------------------------------

def _panel(request: Request, db: Session, user: UIUser, conversation_id: int, *, error: str | None = None,
           status_code: int = 200) -> Response:
    conversation = conversations.get_conversation(db, user.actor, conversation_id)
    return render(request, "partials/automation_panel.html", status_code=status_code, conversation=conversation,
                  macros=service.list_macros(db, user.actor), runs=service.runs_for(db, user.actor, conversation_id,
                                                                                   limit=20),
                  trigger_labels=TRIGGER_LABELS, error=error)


@router.get("/ui/conversations/{conversation_id}/automation")
def automation_panel(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> Response:
    return _panel(request, db, user, conversation_id)


@router.post("/ui/conversations/{conversation_id}/macro")
def apply_macro(request: Request, conversation_id: int, user: CurrentUser, db: DB,
                macro_id: Annotated[int, Form()]) -> Response:
    try:
        service.apply_macro(db, user.actor, macro_id, conversation_id)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        db.rollback()
        return _panel(request, db, user, conversation_id, error=_error_text(exc), status_code=exc.status_code)
    return redirect(f"/conversations/{conversation_id}", request)
