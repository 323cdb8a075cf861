"""Every UI string of the agent workspace has its Russian text; coded keys ("status:open") have both."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from otklik.conversations.models import Priority, Status
from otklik.conversations.service import CHANNELS
from otklik.web import i18n
from otklik.web.ui.deps import NAV

WEB = Path(i18n.__file__).parent
MINE = ["templates/base.html", "templates/login.html", "templates/error.html", "templates/inbox.html",
        "templates/conversation.html", "templates/partials/inbox_columns.html",
        "templates/partials/inbox_filters.html", "templates/partials/inbox_rows.html",
        "templates/partials/inbox_views.html", "templates/partials/thread_items.html",
        "templates/partials/conversation_side.html", "templates/partials/help.html"]
PY = ["ui/auth.py", "ui/deps.py", "ui/inbox.py", "ui/conversation.py"]


def catalog(lang: str):
    with (WEB / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def used_messages() -> set[str]:
    found = set()
    for rel in MINE:
        for _, msg, _, _ in extract_from_file("jinja2", WEB / rel, keywords={"_": None}):
            found.add(msg if isinstance(msg, str) else msg[0])
    for rel in PY:
        for _, msg, _, _ in extract_from_file("python", WEB / rel, keywords={"_": None}):
            found.add(msg if isinstance(msg, str) else msg[0])
    for prefix in ("status:", "priority:", "sla:", "sla-state:", "legal:", "situation:"):
        found.discard(prefix)
    return found


def coded_keys() -> set[str]:
    keys = {f"status:{s.value}" for s in Status} | {"status:active", "status:any"}
    keys |= {f"priority:{p.value}" for p in Priority}
    keys |= {f"channel:{c}" for c in CHANNELS} | {f"chan:{c}" for c in CHANNELS}
    keys |= {f"sort:{s}" for s in ("waiting", "priority", "recent", "due")}
    keys |= {f"sla:{k}" for k in ("first_response", "next_response", "resolution")}
    keys |= {f"sla-state:{k}" for k in ("running", "paused", "met", "breached", "stopped")}
    from otklik.guardrails.deadlines import DATE_FIELDS, FLAG_FIELDS, MONEY_FIELDS
    from otklik.guardrails.law import SITUATIONS

    keys |= {f"legal:{k}" for k in (*DATE_FIELDS[:-1], *MONEY_FIELDS, *FLAG_FIELDS, "inputs")}
    keys |= {f"situation:{k}" for k in SITUATIONS}
    keys |= {f"sentiment:{s}" for s in ("negative", "neutral", "positive")}
    keys |= {f"delivery:{s}" for s in ("read", "delivered", "sent", "queued")}
    return keys


def test_every_string_has_a_russian_translation():
    ru = catalog("ru")
    wanted = used_messages() | coded_keys() | {label for _, label, _ in NAV} | {"agent", "supervisor", "admin"}
    wanted |= set(i18n.CATEGORY_LABELS.values())
    missing = sorted(m for m in wanted if not (ru.get(m) and ru.get(m).string))
    assert missing == []


def test_coded_keys_read_as_words_in_english_too():
    en = catalog("en")
    missing = sorted(k for k in coded_keys() if not (en.get(k) and en.get(k).string))
    assert missing == []


def test_wait_text_is_short_in_both_languages():
    assert i18n.wait_text(42, "ru") == "42 с" and i18n.wait_text(42, "en") == "42 s"
    assert i18n.wait_text(5 * 60 + 5, "ru") == "5 мин"
    assert i18n.wait_text(2 * 3600 + 600, "en") == "2 h 10 min"
    assert i18n.wait_text(30 * 3600, "ru") == "1 д"
    assert i18n.wait_text(-5, "ru") == "0 с"


def test_accept_language_negotiation():
    assert i18n.negotiate("en-US,en;q=0.9") == "en"
    assert i18n.negotiate("de-DE, en;q=0.5, ru;q=0.8") == "ru"
    assert i18n.negotiate("fr") == "ru"
    assert i18n.negotiate(None) == "ru"
    assert i18n.negotiate("en;q=bogus, ru;q=0.1") == "ru"
