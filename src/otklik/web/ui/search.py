"""The search page: one bar over conversations (by number or by their messages), messages (with a snippet
around the match, highlighted) and customers. Uses the domains' own search services; the snippet is built
from escaped pieces, so customer text can never become markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response
from markupsafe import Markup, escape

from otklik.accounts.deps import DB
from otklik.conversations import service as conversations
from otklik.conversations.lookup import conversations_by_ids
from otklik.conversations.models import Conversation, Message
from otklik.customers import service as customers
from otklik.platform.errors import DomainError
from otklik.platform.text import query_terms, stem
from otklik.web.ui.customers import channel_icon
from otklik.web.ui.deps import CurrentUser, render, ui_router

router = ui_router()
SNIPPET_CHARS = 180
HIGHLIGHT_SCAN_CHARS = 20_000
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NUMBER = re.compile(r"^#?\s*(\d{1,12})$")


def highlight(text: str, query: str, width: int = SNIPPET_CHARS) -> Markup:
    """A window of `text` around the first word matching the query's stems, matches in <mark>, all escaped."""
    text = text[:HIGHLIGHT_SCAN_CHARS]  # a 100,000-character email: look for the match near its start only
    stems = set(query_terms(query))
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)
             if stem(m.group(0).lower().replace("ё", "е")) in stems
             or any(m.group(0).lower().startswith(s) for s in stems if len(s) >= 3)]
    start = 0
    if words and words[0][0] > width // 3:
        start = max(0, words[0][0] - width // 3)
        space = text.rfind(" ", 0, start + 1)
        start = space + 1 if space > start - 20 else start
    end = min(len(text), start + width)
    pieces: list[str] = ["…" if start else ""]
    cursor = start
    for a, b in words:
        if a < start or b > end:
            continue
        pieces.append(str(escape(text[cursor:a])))
        pieces.append("<mark>" + str(escape(text[a:b])) + "</mark>")
        cursor = b
    pieces.append(str(escape(text[cursor:end])))
    if end < len(text):
        pieces.append("…")
    return Markup("".join(pieces))  # noqa: S704 - every piece of customer text above is escaped


@dataclass
class MessageHit:
    message: Message
    conversation: Conversation | None
    customer_name: str
    snippet: Markup


RELEVANCE_SCAN = 500  # matching messages and conversations read to rank the conversations
CONVERSATIONS_PAGE = 25


def _term_hits(text: str, stems: set[str]) -> int:
    return sum(1 for m in _WORD.finditer(text[:HIGHLIGHT_SCAN_CHARS])
               if stem(m.group(0).lower().replace("ё", "е")) in stems)


def ranked_conversations(db: Any, actor: Any, q: str) -> list[Conversation]:
    """Conversations matching `q`, most relevant first: each matching message counts (more for more of the
    query's words in it), a subject that matches counts triple; ties go to the most recent. Reads at most
    RELEVANCE_SCAN matches of each kind (newest first), so a common word does not read the whole workspace."""
    stems = set(query_terms(q))
    found, _ = conversations.list_conversations(db, actor, conversations.ConversationFilters(q=q),
                                                limit=RELEVANCE_SCAN)
    messages, _ = conversations.search_messages(db, actor, q, limit=RELEVANCE_SCAN)
    score: dict[int, float] = {}
    for m in messages:
        score[m.conversation_id] = score.get(m.conversation_id, 0.0) + 1 + 0.5 * min(_term_hits(m.body_text, stems), 5)
    by_id = {c.id: c for c in found}
    missing = [cid for cid in score if cid not in by_id]
    by_id.update(conversations_by_ids(db, actor, missing))
    for c in by_id.values():
        score[c.id] = score.get(c.id, 0.0) + (3.0 if _term_hits(c.subject or "", stems) else 0.0)
    return sorted(by_id.values(), key=lambda c: (-score.get(c.id, 0.0), -c.last_message_at.timestamp(), -c.id))


@router.get("/search")
def search(request: Request, user: CurrentUser, db: DB, q: Annotated[str, Query(max_length=200)] = "",
           page: Annotated[int, Query(ge=1, le=20)] = 1) -> Response:
    q = q.strip()
    context: dict[str, Any] = {"q": q, "error": None, "by_number": None, "conversations": [], "messages": [],
                               "conversations_total": 0, "page": page, "more": False,
                               "customers": [], "identities": {}, "names": {}, "channel_icon": channel_icon}
    if not q:
        return render(request, "search.html", **context)
    number = _NUMBER.match(q)
    if number:
        try:
            context["by_number"] = conversations.get_by_number(db, user.actor, int(number.group(1)))
        except DomainError:
            context["by_number"] = None
    try:
        ranked = ranked_conversations(db, user.actor, q)
        found = ranked[(page - 1) * CONVERSATIONS_PAGE:page * CONVERSATIONS_PAGE]
        context.update(conversations_total=len(ranked), page=page,
                       more=len(ranked) > page * CONVERSATIONS_PAGE)
        messages, _ = conversations.search_messages(db, user.actor, q, limit=20)
        people, _ = customers.list_customers(db, user.actor, q=q, limit=10)
    except DomainError as exc:
        if not number:
            context["error"] = exc.message
        found, messages, people = [], [], []
    by_id = conversations_by_ids(db, user.actor, [m.conversation_id for m in messages])
    customer_ids = list({c.customer_id for c in found} | {c.customer_id for c in by_id.values()}
                        | ({context["by_number"].customer_id} if context["by_number"] else set()))
    names = conversations.customer_names(db, customer_ids)
    context.update(
        conversations=found, customers=people, names=names,
        identities=customers.identities_of(db, [c.id for c in people]),
        messages=[MessageHit(message=m, conversation=by_id.get(m.conversation_id),
                             customer_name=names.get(by_id[m.conversation_id].customer_id, "")
                             if m.conversation_id in by_id else "",
                             snippet=highlight(m.body_text, q)) for m in messages])
    return render(request, "search.html", **context)
