"""The actions rules and macros share: checked when a rule or macro is saved, applied through conversations.service.

An action is a JSON object with a `type`:

| type | fields | does |
|---|---|---|
| `set_status` | `value`: new / open / pending / solved / closed | changes the status (the usual transitions only) |
| `set_priority` | `value`: low / normal / high / urgent | |
| `set_team` | `value`: a team id or null | |
| `set_assignee` | `value`: a user id or null | |
| `add_tag`, `remove_tag` | `value`: a tag | |
| `send_template` | `template_id`: a shared reply template | a public reply, its variables filled from the conversation; refused when one stays unfilled |
| `add_note` | `text` | an internal note |
| `notify` | `user_ids` (empty: the assignee), `text` | a `rule.notify` event to those users (rules only) |
| `webhook` | `url`, `secret` (write-only) | a signed POST of the conversation through the job queue (rules only) |
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from otklik.accounts.models import Team, User
from otklik.accounts.service import Actor
from otklik.conversations import service as conversations
from otklik.conversations import templates
from otklik.conversations.models import AuthorKind, Priority, Status
from otklik.platform import crypto
from otklik.platform.errors import Conflict, field_error
from otklik.platform.events import Event, after_commit

log = logging.getLogger(__name__)
MAX_ACTIONS = 20
MAX_TEXT = 5000
SECRET_PURPOSE = "automation-webhook"  # noqa: S105 - the encryption purpose label, not a secret
SIGNATURE_HEADER = "X-Otklik-Signature"
MACRO_TYPES = ("set_status", "set_priority", "set_team", "set_assignee", "add_tag", "remove_tag", "send_template",
               "add_note")
RULE_TYPES = (*MACRO_TYPES, "notify", "webhook")


def _id_or_none(value: Any, field: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise field_error(field, "must be an id or null")
    return int(value)


def check_actions(session: Session, workspace_id: int, value: Any, *, allowed: Sequence[str],
                  previous: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The normalised list, or a 422 naming the field (`actions.1.value`). A webhook's secret is stored encrypted
    (`secret_enc`); a webhook saved again without a secret keeps the one it had for the same URL."""
    if not isinstance(value, list) or not value:
        raise field_error("actions", "a list of at least one action")
    if len(value) > MAX_ACTIONS:
        raise field_error("actions", f"at most {MAX_ACTIONS} actions")
    kept_secrets = {a.get("url"): a.get("secret_enc") for a in previous if a.get("type") == "webhook"}
    out: list[dict[str, Any]] = []
    for i, action in enumerate(value):
        at = f"actions.{i}"
        if not isinstance(action, dict):
            raise field_error(at, "an object with a type")
        kind = action.get("type")
        if kind not in allowed:
            raise field_error(f"{at}.type", f"one of: {', '.join(allowed)}")
        v = action.get("value")
        if kind == "set_status":
            if v not in {s.value for s in Status}:
                raise field_error(f"{at}.value", f"one of: {', '.join(s.value for s in Status)}")
            out.append({"type": kind, "value": v})
        elif kind == "set_priority":
            if v not in {p.value for p in Priority}:
                raise field_error(f"{at}.value", f"one of: {', '.join(p.value for p in Priority)}")
            out.append({"type": kind, "value": v})
        elif kind == "set_team":
            team_id = _id_or_none(v, f"{at}.value")
            if team_id is not None:
                team = session.get(Team, team_id)
                if team is None or team.workspace_id != workspace_id:
                    raise field_error(f"{at}.value", f"team {team_id} not found")
            out.append({"type": kind, "value": team_id})
        elif kind == "set_assignee":
            user_id = _id_or_none(v, f"{at}.value")
            if user_id is not None:
                user = session.get(User, user_id)
                if user is None or user.workspace_id != workspace_id:
                    raise field_error(f"{at}.value", f"user {user_id} not found")
            out.append({"type": kind, "value": user_id})
        elif kind in ("add_tag", "remove_tag"):
            tag = " ".join(str(v or "").split()).lower()
            if not tag or len(tag) > 48 or not isinstance(v, str):
                raise field_error(f"{at}.value", "a tag has 1-48 characters")
            out.append({"type": kind, "value": tag})
        elif kind == "send_template":
            template_id = _id_or_none(action.get("template_id"), f"{at}.template_id")
            row = session.get(templates.ReplyTemplate, template_id) if template_id is not None else None
            if row is None or row.workspace_id != workspace_id:
                raise field_error(f"{at}.template_id", "a reply template of this workspace")
            if row.owner_user_id is not None:
                raise field_error(f"{at}.template_id", "a shared template (not someone's personal one)")
            out.append({"type": kind, "template_id": row.id})
        elif kind == "add_note":
            text = action.get("text")
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
                raise field_error(f"{at}.text", f"1-{MAX_TEXT} characters")
            out.append({"type": kind, "text": text.strip()})
        elif kind == "notify":
            ids = action.get("user_ids") or []
            if not isinstance(ids, list) or len(ids) > 50:
                raise field_error(f"{at}.user_ids", "a list of user ids (empty: the assignee)")
            clean = []
            for j, raw in enumerate(ids):
                uid = _id_or_none(raw, f"{at}.user_ids.{j}")
                user = session.get(User, uid) if uid is not None else None
                if user is None or user.workspace_id != workspace_id:
                    raise field_error(f"{at}.user_ids.{j}", f"user {raw} not found")
                clean.append(user.id)
            text = action.get("text") or ""
            if not isinstance(text, str) or len(text) > 500:
                raise field_error(f"{at}.text", "at most 500 characters")
            out.append({"type": kind, "user_ids": clean, "text": text.strip()})
        elif kind == "webhook":
            url = action.get("url")
            parts = urlsplit(url) if isinstance(url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or len(url or "") > 500:
                raise field_error(f"{at}.url", "an http(s) URL")
            secret = action.get("secret")
            if secret is not None and (not isinstance(secret, str) or not 8 <= len(secret) <= 200):
                raise field_error(f"{at}.secret", "8-200 characters")
            stored = crypto.encrypt(secret, purpose=SECRET_PURPOSE) if secret else kept_secrets.get(url)
            if not stored:
                raise field_error(f"{at}.secret", "a signing secret is required")
            out.append({"type": kind, "url": url, "secret_enc": stored})
    return out


def public_actions(actions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Actions as the API and the pages show them: a webhook's secret never leaves, only that it is set."""
    return [{k: v for k, v in a.items() if k != "secret_enc"} | ({"secret_set": True} if "secret_enc" in a else {})
            for a in actions]


def describe(action: dict[str, Any]) -> str:
    kind = action["type"]
    if kind in ("set_status", "set_priority", "set_team", "set_assignee", "add_tag", "remove_tag"):
        return f"{kind}:{action.get('value')}"
    if kind == "send_template":
        return f"send_template:{action['template_id']}"
    if kind == "webhook":
        return f"webhook:{urlsplit(action['url']).netloc}"
    return kind


def apply(session: Session, actor: Actor, conversation_id: int, actions: Sequence[dict[str, Any]], *,
          source: dict[str, Any]) -> list[str]:
    """Apply `actions` in order, in the caller's transaction, as `actor` (audited as them). Field changes are
    gathered into one `update_conversation` (one audit entry per field, one `conversation.updated`); replies,
    notes, notifications and webhooks follow. Returns what was done; raises a DomainError (nothing is kept)."""
    done: list[str] = []
    changes: dict[str, Any] = {}
    conversation = conversations.get_conversation(session, actor, conversation_id)
    tags: list[str] | None = None
    for action in actions:
        kind = action["type"]
        if kind in ("add_tag", "remove_tag"):
            if tags is None:
                tags = conversations.tags_of(session, [conversation.id])[conversation.id]
            if kind == "add_tag" and action["value"] not in tags:
                tags.append(action["value"])
            elif kind == "remove_tag" and action["value"] in tags:
                tags.remove(action["value"])
            changes["tags"] = tags
        elif kind.startswith("set_"):
            key = {"set_status": "status", "set_priority": "priority", "set_team": "team_id",
                   "set_assignee": "assignee_id"}[kind]
            changes[key] = action["value"]
    if changes:
        conversations.update_conversation(session, actor, conversation.id, changes)
        done += [describe(a) for a in actions if a["type"].startswith("set_") or a["type"].endswith("_tag")]
    for i, action in enumerate(actions):
        kind = action["type"]
        if kind == "send_template":
            row = templates.get_template(session, actor, action["template_id"])
            rendered = templates.render_body(session, actor, row.body, conversation_id=conversation.id)
            if rendered.unresolved:
                raise Conflict(f"template «{row.name}»: no value for {', '.join(rendered.unresolved)}",
                               code="unfilled")
            conversations.reply(session, actor, conversation.id, text=rendered.text,
                                author=AuthorKind.agent if actor.user_id is not None else AuthorKind.system)
            done.append(describe(action))
        elif kind == "add_note":
            conversations.reply(session, actor, conversation.id, text=action["text"], is_internal=True,
                                author=AuthorKind.agent if actor.user_id is not None else AuthorKind.system)
            done.append(describe(action))
        elif kind == "notify":
            users = action.get("user_ids") or ([conversation.assignee_id] if conversation.assignee_id else [])
            after_commit(session, Event("rule.notify", conversation.workspace_id, {
                "conversation_id": conversation.id, "number": conversation.number, "notify_user_ids": users,
                "text": action.get("text") or "", "rule": source.get("name", "")}))
            done.append(describe(action))
        elif kind == "webhook":
            payload = {"event": "rule.webhook", "trigger": source.get("trigger"),
                       "rule": {"id": source.get("id"), "name": source.get("name")},
                       "conversation": conversations.conversation_event_data(conversation),
                       "tags": conversations.tags_of(session, [conversation.id])[conversation.id]}
            rule_id, index = source.get("id"), i

            def enqueue(rule_id: Any = rule_id, index: int = index, payload: dict[str, Any] = payload) -> None:
                from otklik.service_levels.jobs import call_webhook

                call_webhook(rule_id, index, json.dumps(payload, ensure_ascii=False, default=str))

            after_commit(session, enqueue)
            done.append(describe(action))
    return done


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_target(session: Session, rule_actions: Sequence[dict[str, Any]], index: int) -> tuple[str, str] | None:
    """(url, secret) of the rule's webhook action at `index`, as it is now; None if it was removed."""
    if index >= len(rule_actions) or rule_actions[index].get("type") != "webhook":
        return None
    action = rule_actions[index]
    return action["url"], crypto.decrypt(action["secret_enc"], purpose=SECRET_PURPOSE)


__all__ = ["MACRO_TYPES", "RULE_TYPES", "apply", "check_actions", "public_actions", "sign"]
