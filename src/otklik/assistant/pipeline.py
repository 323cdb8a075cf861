"""The assistant's decision for one inbound message: language -> understanding -> retrieval -> decision.

Pure (no database): the product (`assistant.service`) and `otklik eval kb` call the same `Assistant.decide`.
Every step is a small replaceable component; none needs the network or an LLM.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from otklik.assistant.embeddings import Embedder
from otklik.assistant.language import detect_language
from otklik.assistant.reasons import ReasonSet
from otklik.assistant.retrieval import Hit, KbDoc, KbIndex, Signals, plain
from otklik.assistant.understanding import Understander, Understanding
from otklik.platform.text import content_stems

# The answer model: logistic regression over retrieval signals -> P(the best article is the right answer),
# fitted on the demo store's validation questions by data/make_kb_calibration.py (BENCHMARKS.md, section 10).
# OTKLIK_ANSWER_MODEL: another file of the same shape (the leave-one-KB-out benchmark fits one per held-out KB)
ANSWER_MODEL = Path(os.environ.get("OTKLIK_ANSWER_MODEL") or Path(__file__).parent / "data" / "kb_answer_model.json")
FEATURES = ("score", "margin", "dense", "lexical", "dense_margin", "dense_agrees", "lexical_agrees",
            "unknown_share", "n_terms", "same_language", "handoff_gap", "router_agrees", "router_margin",
            "score_z", "second_share", "dense_z", "coverage", "router_none_gap", "richness", "log_articles",
            "e5", "e5_margin", "e5_agrees", "e5_z")
_NOT_HELPED = re.compile(
    r"(?:не\s+помогл|не\s+то(?![а-яё])|не\s+об\s+этом|вы\s+не\s+понял|не\s+ответил|это\s+не\s+ответ|бесполезн|"
    r"didn'?t help|not what i asked|doesn'?t help|useless)", re.IGNORECASE)
_GIBBERISH = re.compile(r"^[\W\d_]*$")
# A message that is only a greeting, or only thanks / ok / bye: a polite word back, no article, no hand-off.
_GREETING = re.compile(
    r"^\W*(?:(?:здравствуйте|здрасьте|здравствуй|привет(?:ствую)?|добр(?:ый|ое|ого)\s+(?:день|вечер|утро|утра|дня|"
    r"вечера)|доброго\s+времени\s+суток|hello|hi|hey|good\s+(?:morning|afternoon|evening))\W*)+$", re.IGNORECASE)
_THANKS = re.compile(
    r"^\W*(?:(?:спасибо|спс|благодарю|большое|огромное|понятно|ясно|ок|окей|хорошо|ладно|отлично|супер|"
    r"до\s+свидания|всего\s+доброго|thanks?|thank\s+you|thx|ok(?:ay)?|great|got\s+it|bye)\W*)+$",
    re.IGNORECASE)

# The reasons a message is decided by a rule before the answer model is asked (calibration and benches leave
# these out of the answer model's view, as the product does).
RULE_REASONS = frozenset({"empty", "courtesy", "abuse", "legal_threat", "human_requested", "urgent", "negative",
                          "language"})
HANDOFF_PRIORITY = {"abuse": "high", "legal_threat": "urgent", "legal_deadline": "urgent", "urgent": "urgent", "negative": "high",
                    "human_requested": "normal", "repeated_failure": "high", "low_confidence": "normal",
                    "not_covered": "normal", "empty": "normal", "language": "normal"}


def _shipped_threshold() -> float:
    """The answer threshold chosen with the shipped answer model (data/kb_answer_model.json): one source of
    truth for every default (pipeline, settings table, settings form)."""
    try:
        # as calibrated (3 decimals): rounding to a "nice" 0.78 would hand off answers the calibration allows
        return round(float(json.loads(ANSWER_MODEL.read_text(encoding="utf-8"))["threshold"]), 3)
    except (OSError, KeyError, ValueError):  # a broken install still starts; the model load reports it
        return 0.75


DEFAULT_ANSWER_THRESHOLD = _shipped_threshold()


@dataclass
class Settings:
    """A workspace's assistant settings (see `assistant.models.AssistantSettings`)."""

    # the answer model's threshold for <= 2% wrong answers in cross-validation (data/kb_answer_model.json)
    answer_threshold: float = DEFAULT_ANSWER_THRESHOLD
    clarify_threshold: float | None = None  # None: the clarify model's own (data/kb_answer_model.json)
    negativity_threshold: float = 0.95
    urgency_threshold: float = 0.95
    tone: str = "formal"  # formal | friendly
    greeting: str = ""
    languages: tuple[str, ...] = ("ru", "en")


@dataclass
class Decision:
    action: str  # answer | clarify | handoff
    reason: str
    confidence: float
    understanding: Understanding
    article_id: str | None = None
    article_title: str | None = None
    reply: str = ""
    alternatives: list[dict[str, Any]] = field(default_factory=list)
    priority: str = "normal"
    failed: bool = False  # counts toward "second failed answer in a row"
    note: str = ""
    options: list[str] = field(default_factory=list)  # a clarifying question's article choices (ids)

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "reason": self.reason, "confidence": round(self.confidence, 4),
                "article_id": self.article_id, "article_title": self.article_title,
                "alternatives": self.alternatives, "priority": self.priority,
                "understanding": self.understanding.as_dict(), "note": self.note, "options": self.options}


# Question variants per article below which a KB reads as plain to the answer model. It was fitted on plain KBs
# (0) and the demo store's hand-written variants (~26 an article), and its weight on the feature discounts a
# variant-rich KB's higher raw scores; a plain KB that has learned a few variants from agents' answers
# (assistant.learning: about 2 an article after a month of hand-offs on the dev KBs) is still a plain KB, whose
# scores the variants only help. Without this, those variants lowered first-reply resolution (BENCHMARKS.md,
# section 11b).
RICH_KB_VARIANTS = 8.0


def _richness(variants_per_article: float) -> float:
    return math.log1p(min(variants_per_article, 50.0)) / 4 if variants_per_article >= RICH_KB_VARIANTS else 0.0


def answer_features(hits: list[Hit], signals: Signals, language: str | None) -> list[float]:
    if not hits:
        return [0.0] * len(FEATURES)
    top, second = hits[0], (hits[1] if len(hits) > 1 else None)
    return [top.score, top.score - (second.score if second else 0.0), top.dense, top.lexical,
            top.dense - (second.dense if second else 0.0), float(signals.dense_agrees),
            float(signals.lexical_agrees), signals.unknown_share, min(signals.n_terms, 12) / 12,
            float(language is not None and top.doc.language == language), signals.handoff_gap,
            float(signals.router_agrees), max(-2.0, min(2.0, signals.router_margin)),
            max(-2.0, min(8.0, signals.score_z)) / 4, signals.second_share, max(-2.0, min(8.0, signals.dense_z)) / 4,
            signals.coverage, max(-2.0, min(2.0, signals.router_none_gap)),
            _richness(signals.kb_richness), math.log(max(2, min(signals.n_articles, 2000))) / 8,
            top.e5, top.e5 - (second.e5 if second else 0.0), float(signals.e5_agrees),
            max(-2.0, min(8.0, signals.e5_z)) / 4]


def variant(signals: Signals | None) -> str:
    """Which of the shipped answer models applies: the one fitted with the e5 encoder, or without it."""
    return "e5" if signals is not None and signals.has_e5 else "base"


@lru_cache(maxsize=4)
def _model(name: str, kind: str = "answer") -> dict[str, Any] | None:
    data = json.loads(ANSWER_MODEL.read_text(encoding="utf-8"))
    if tuple(data["features"]) != FEATURES:
        raise RuntimeError(f"{ANSWER_MODEL}: made for other features; re-run data/make_kb_calibration.py")
    model = data["variants"].get(name) or data["variants"]["base"]
    return model if kind == "answer" else model.get("clarify")


def _logistic(model: dict[str, Any], hits: list[Hit], signals: Signals, language: str | None) -> float:
    z = float(model["intercept"]) + sum(float(w) * x for w, x in
                                        zip(model["coef"], answer_features(hits, signals, language), strict=True))
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def calibrated(hits: list[Hit], signals: Signals | None = None, language: str | None = None) -> float:
    """P(the best hit is the right article). Without `signals` (a plain `search`), the agreement and
    vocabulary signals count as neutral (the dense and lexical retrievers agreeing, every word known)."""
    if not hits:
        return 0.0
    if signals is None:
        signals = Signals(dense_agrees=True, lexical_agrees=True, e5_agrees=True, n_terms=6)
    model = _model(variant(signals))
    assert model is not None
    return _logistic(model, hits, signals, language)


def p_in_options(hits: list[Hit], signals: Signals, language: str | None) -> float:
    """P(the right article is among the first three hits): the clarify model, fitted like the answer model."""
    model = _model(variant(signals), "clarify")
    if model is None or not hits:
        return 0.0
    return _logistic(model, hits, signals, language)


def clarify_options(hits: list[Hit], signals: Signals, language: str | None, settings: Settings) -> list[Hit]:
    """Two or three close articles to offer as buttons instead of a hand-off, when the clarify model is sure
    enough that the right one is among them; [] otherwise."""
    model = _model(variant(signals), "clarify")
    if model is None or len(hits) < 2:
        return []
    threshold = float(model["threshold"]) if settings.clarify_threshold is None else settings.clarify_threshold
    if p_in_options(hits, signals, language) < threshold:
        return []
    return hits[:3]


# Fixed texts the bot sends, in the customer's language (the help center's languages and then some); a language
# not listed gets English, never Russian.
OPENERS = {"ru": "Здравствуйте!", "en": "Hello!", "uk": "Вітаю!", "de": "Guten Tag!", "es": "¡Hola!",
           "kk": "Сәлеметсіз бе!", "tr": "Merhaba!", "zh": "您好！"}
FRIENDLY_OPENERS = {"ru": "Привет!", "en": "Hi!", "uk": "Привіт!", "de": "Hallo!", "es": "¡Hola!"}
MORE = {"ru": "Подробнее", "en": "More", "uk": "Докладніше", "de": "Mehr dazu", "es": "Más información",
        "kk": "Толығырақ", "tr": "Ayrıntılar", "zh": "详情"}
CLARIFY = {
    "ru": ("Уточните, пожалуйста, о чём ваш вопрос (ответьте номером):",
           "Если ни то, ни другое — напишите «оператор», и я позову сотрудника."),
    "en": ("Which of these is your question about (reply with the number)?",
           "If neither, write «operator» and I will call a person."),
    "uk": ("Уточніть, будь ласка, про що ваше питання (відповідайте номером):",
           "Якщо ні те, ні інше — напишіть «оператор», і я покличу співробітника."),
    "de": ("Worum geht es in Ihrer Frage (antworten Sie mit der Nummer)?",
           "Wenn nichts davon passt, schreiben Sie «Mitarbeiter»."),
    "es": ("¿Sobre cuál de estos temas es su pregunta (responda con el número)?",
           "Si ninguno, escriba «operador» y llamaré a una persona."),
}
_BLOCK_SPLIT = re.compile(r"\n\s*\n")
_LIST_LINE = re.compile(r"^\s*(?:[-*•—]|\d{1,2}[.)])\s+")
_TABLE_RULE = re.compile(r"^\s*\|?[\s:|-]+\|?\s*$")


def fixed_text(table: dict[str, Any], language: str | None) -> Any:
    return table.get(language or "ru") or table["en"]


def tidy(block: str) -> str:
    """Markdown to chat text: hard line breaks inside a paragraph joined, list items kept one a line as «• …»,
    table rows as «a — b — c», emphasis and heading marks dropped."""
    out: list[str] = []
    for line in block.split("\n"):
        raw = line.strip()
        if not raw or (_TABLE_RULE.match(raw) and "|" in raw):
            continue
        if raw.startswith("|"):
            out.append(" — ".join(c.strip() for c in raw.strip("|").split("|") if c.strip()))
            continue
        text = plain(raw).strip()
        if _LIST_LINE.match(raw):
            out.append("• " + _LIST_LINE.sub("", text, count=1).strip())
        elif out and not out[-1].startswith("• ") and not raw.startswith("#") and not out[-1].endswith(":"):
            out[-1] = f"{out[-1]} {text}"
        else:
            out.append(text)
    return "\n".join(out)


def _sentences_within(text: str, max_chars: int) -> str:
    """The text cut at the last sentence or line end before `max_chars` (never mid-sentence, never «…»)."""
    if len(text) <= max_chars:
        return text
    cut = max(text.rfind(". ", 0, max_chars), text.rfind("\n", 0, max_chars), text.rfind("! ", 0, max_chars),
              text.rfind("? ", 0, max_chars))
    return text[: cut + 1].rstrip() if cut > max_chars // 3 else text[:max_chars].rsplit(" ", 1)[0]


def best_passage(question: str, qvec: Any, body: str, embedder: Embedder, *, max_chars: int = 700,
                 idf: dict[str, float] | None = None) -> str:
    """The part of an article that answers the question: the whole article when it is short, else the block
    (paragraph, list with its lead, table) closest to the question by meaning and words, with the block
    that a heading or a «…:» lead-in introduces."""
    blocks = [b for b in (_b.strip() for _b in _BLOCK_SPLIT.split(body)) if b]
    whole = "\n\n".join(tidy(b) for b in blocks)
    if len(whole) <= max_chars or len(blocks) <= 1:
        return _sentences_within(whole, max_chars)
    tidied = [tidy(b) for b in blocks]
    merged: list[str] = []
    for t in tidied:  # a heading or a lead-in ending with ":" belongs to the block after it
        if merged and (merged[-1].endswith(":") or ("\n" not in merged[-1] and len(merged[-1]) < 60)):
            merged[-1] = f"{merged[-1]}\n{t}"
        else:
            merged.append(t)
    vecs = embedder.encode(merged)
    q_stems = set(content_stems(question))
    bags = [set(content_stems(t)) for t in merged]
    # a question word found in few of the article's blocks (a city, a tariff's name) says more than one in all
    # (and one rare in the whole KB, by the index's idf, more than «доставка» found in every article)
    top_idf = max(idf.values()) if idf else 1.0
    weight = {w: math.log(1 + len(bags) / (1 + sum(w in b for b in bags))) * (idf.get(w, top_idf) if idf else 1.0)
              for w in q_stems if any(w in b for b in bags)}
    total = sum(weight.values()) or 1.0
    scores = [float(v @ qvec) + sum(weight.get(w, 0.0) for w in q_stems & words) / total
              for v, words in zip(vecs, bags, strict=True)]
    return _sentences_within(merged[int(max(range(len(merged)), key=scores.__getitem__))], max_chars)


def article_answer(hit: Hit, u: Understanding, settings: Settings, *, link: str | None = None,
                   passage: str | None = None, greet: bool = True) -> str:
    """The chat reply from an article: the passage that answers (tidied), template variables filled from what
    the customer gave, a link to the full article; a greeting only on the bot's first message of the chat."""
    body = passage if passage is not None else tidy(hit.doc.body)
    values = {"order": (u.entities.get("order") or [""])[0], "name": (u.entities.get("name") or [""])[0]}
    body = re.sub(r"\{\{\s*(order|name)\s*\}\}", lambda m: values[m.group(1)] or "", body)
    language = u.language if u.language in OPENERS else ("en" if hit.doc.language == "en" else "ru")
    opener = ""
    if greet:
        if settings.greeting:
            opener = settings.greeting.strip() + "\n\n"
        else:
            table = FRIENDLY_OPENERS if settings.tone == "friendly" else OPENERS
            opener = fixed_text(table, language) + " "
    tail = f"\n\n{fixed_text(MORE, language)}: {link}" if link else ""
    return f"{opener}{body}{tail}"


class Assistant:
    def __init__(self, embedder: Embedder, understander: Understander):
        self.embedder = embedder
        self.understander = understander

    def decide(self, text: str, index: KbIndex | None, settings: Settings | None = None, *,
               previous_failures: int = 0, link_for: Any = None, reasons: ReasonSet | None = None,
               greet: bool = True, options: list[str] | None = None) -> Decision:
        """`options`: the article ids of the clarifying question the bot asked last, if any: a reply that
        picks one («2», or its title) gets that article."""
        settings = settings or Settings()
        language = detect_language(text)
        vec = self.embedder.encode([text[:2000]])[0]
        u = self.understander.understand(text, language, vec=vec)
        if reasons is not None:  # the workspace's own contact reasons
            u.reason, u.reason_confidence = reasons.classify(text, vec)
        chosen = chosen_option(text, options or [], index)
        if chosen is not None and index is not None:
            hit = Hit(chosen, 1.0, 1.0, 1.0, 1.0)
            link = link_for(chosen) if link_for else None
            passage = best_passage(text, vec, chosen.body, self.embedder, idf=index._idf)
            return Decision("answer", "chosen", 1.0, u, article_id=chosen.id, article_title=chosen.title,
                            reply=article_answer(hit, u, settings, link=link, passage=passage, greet=greet))
        hits, signals = (index.search_signals(text, language=language, limit=3, query_vec=vec)
                         if index is not None and len(index) else ([], Signals()))
        confidence = calibrated(hits, signals, language)
        alternatives = [{"id": h.doc.id, "title": h.doc.title, "score": round(h.score, 4)} for h in hits]

        def handoff(reason: str, note: str = "") -> Decision:
            return Decision("handoff", reason, confidence, u, alternatives=alternatives,
                            priority=HANDOFF_PRIORITY.get(reason, "normal"), note=note,
                            failed=reason in {"low_confidence", "not_covered"})

        stripped = text.strip()
        if not stripped or _GIBBERISH.match(stripped):
            return handoff("empty")
        if _GREETING.match(stripped) or _THANKS.match(stripped):
            english = language == "en"
            if _GREETING.match(stripped):
                ask = "Hello! How can I help you?" if english else "Здравствуйте! Чем могу помочь?"
            else:
                ask = ("You're welcome! Write if you have any other question." if english else
                       "Пожалуйста! Если появятся вопросы — пишите.")
            return Decision("clarify", "courtesy", confidence, u, reply=ask, alternatives=alternatives)
        # hard rules first: these never get an automatic answer
        if u.abusive:
            return handoff("abuse")
        if u.legal_threat:
            return handoff("legal_threat")
        if u.wants_human:
            return handoff("human_requested")
        if u.urgency >= settings.urgency_threshold and u.urgent:
            return handoff("urgent")
        if u.negativity >= settings.negativity_threshold:
            return handoff("negative")
        not_helped = bool(_NOT_HELPED.search(text))
        if previous_failures >= 1 and (not_helped or confidence < settings.answer_threshold):
            return handoff("repeated_failure")
        if not_helped:  # the customer says the last answer did not help: ask once to rephrase
            english = language == "en"
            ask = ("Sorry that did not help. Could you describe the problem in a bit more detail?" if english else
                   "Жаль, что не помогло. Опишите, пожалуйста, подробнее, что случилось — постараюсь помочь.")
            return Decision("clarify", "not_helped", confidence, u, reply=ask, alternatives=alternatives, failed=True)
        if language not in settings.languages and language not in {h.doc.language for h in hits}:
            return handoff("language", note=f"language {language}: no articles in it")
        if not hits:
            return handoff("not_covered")
        if confidence >= settings.answer_threshold:
            best = hits[0]
            link = link_for(best.doc) if link_for else None
            note = ""
            if best.doc.language != language:
                note = f"the customer wrote in {language}; the article is in {best.doc.language}"
            passage = best_passage(text, vec, best.doc.body, self.embedder, idf=index._idf if index else None)
            return Decision("answer", "confident", confidence, u, article_id=best.doc.id,
                            article_title=best.doc.title,
                            reply=article_answer(best, u, settings, link=link, passage=passage, greet=greet),
                            alternatives=alternatives, note=note)
        offered = clarify_options(hits, signals, language, settings)
        if offered:
            head, other = fixed_text(CLARIFY, language)
            ask = (head + "\n" + "\n".join(f"{n}. {h.doc.title}" for n, h in enumerate(offered, 1))
                   + f"\n{other}")
            return Decision("clarify", "close_articles", confidence, u, reply=ask, alternatives=alternatives,
                            options=[h.doc.id for h in offered], note=other)
        return handoff("low_confidence" if hits and hits[0].dense >= 0.5 else "not_covered")


_CHOICE = re.compile(r"^\W*(\d)\W*$")


def chosen_option(text: str, options: list[str], index: KbIndex | None) -> KbDoc | None:
    """The article a reply to a clarifying question picks: its number («2», «2.») or its exact title."""
    if not options or index is None:
        return None
    by_id = {d.id: d for d in index.docs}
    docs = [by_id[o] for o in options if o in by_id]
    m = _CHOICE.match(text)
    if m and 1 <= int(m.group(1)) <= len(docs):
        return docs[int(m.group(1)) - 1]
    said = " ".join(text.lower().split()).strip(" .!?")
    return next((d for d in docs if " ".join(d.title.lower().split()).strip(" .!?") == said), None)


# The note is read by a person: codes become words (a workspace's own contact reasons are shown as named)
REASON_WORDS = {
    "return_good_quality": "возврат товара надлежащего качества", "damaged_in_delivery": "повреждён при доставке",
    "defective": "брак", "warranty_repair": "гарантийный ремонт", "installation": "установка и подключение",
    "missing_parts": "некомплект", "how_to_use": "как пользоваться", "late_delivery": "задержка доставки",
    "order_status": "статус заказа", "cancel_change": "отмена или изменение заказа",
    "payment_refund": "оплата и возврат денег", "delivery_info": "условия доставки",
    "loyalty_promo": "бонусы и промокоды", "account_data": "учётная запись и персональные данные",
    "business_documents": "документы для юрлиц", "product_question": "вопрос о товаре", "complaint": "жалоба",
    "other": "другое",
}
SENTIMENT_WORDS = {"negative": "негативная", "neutral": "нейтральная", "positive": "позитивная"}
HANDOFF_WORDS = {
    "abuse": "оскорбления", "legal_threat": "угроза суда или претензия",
    "legal_deadline": "по словам клиента срок по закону уже нарушен", "human_requested": "клиент просит человека",
    "urgent": "срочно", "negative": "негатив", "repeated_failure": "ответы не помогли", "language": "язык без статей",
    "not_covered": "в базе знаний нет ответа", "low_confidence": "нет уверенного ответа", "empty": "пустое сообщение",
    "confident": "уверенный ответ", "chosen": "клиент выбрал статью", "close_articles": "предложены похожие статьи",
    "courtesy": "приветствие или благодарность", "not_helped": "ответ не помог",
}
LANGUAGE_WORDS = {"ru": "русский", "en": "английский"}


def _words(table: dict[str, str], code: str) -> str:
    return table.get(code) or code.replace("_", " ")


def summary(texts: list[str], decisions: list[Decision], assistant_replies: list[str]) -> str:
    """The hand-off note for the agent: what the customer wants, facts given, what the assistant said."""
    last = decisions[-1] if decisions else None
    lines = []
    if last is not None:
        u = last.understanding
        lines.append(f"Причина обращения: {_words(REASON_WORDS, u.reason)} · тональность: "
                     f"{_words(SENTIMENT_WORDS, u.sentiment)} · срочность: {'да' if u.urgent else 'нет'} · язык: "
                     f"{_words(LANGUAGE_WORDS, u.language)}")
        lines.append(f"Передано оператору: {_words(HANDOFF_WORDS, last.reason)}"
                     + (f" ({last.note})" if last.note else ""))
    wants = " / ".join(" ".join(t.split())[:200] for t in texts[-3:])
    lines.append(f"Клиент пишет: {wants}")
    facts: dict[str, list[str]] = {}
    for d in decisions:
        for key, vals in d.understanding.entities.items():
            for v in vals:
                facts.setdefault(key, [])
                if v not in facts[key]:
                    facts[key].append(v)
    if facts:
        names = {"order": "заказ", "phone": "телефон", "email": "email", "sum": "сумма", "date": "дата",
                 "name": "имя"}
        lines.append("Факты: " + "; ".join(f"{names.get(k, k)}: {', '.join(v)}" for k, v in facts.items()))
    if assistant_replies:
        lines.append("Ассистент уже ответил: " + " | ".join(" ".join(r.split())[:160] for r in assistant_replies[-2:]))
    else:
        lines.append("Ассистент клиенту не отвечал.")
    if last is not None and last.alternatives:
        lines.append("Похожие статьи: " + ", ".join(f"{a['title']} ({a['score'] * 100:.0f} %)" for a in last.alternatives))
    return "\n".join(lines)
