"""The phrase checker's engine: phrases agents must never say (seed 002: «Это не ко мне», «Вы должны…», «Я не
знаю»…) or should avoid (seed 004: take «но» out of the company's language), each with its reason and what to
say instead, found in a reply's text as whole words, never inside other words («должны» is not in «задолжны»).

Rules are data (`data/phrases.yaml`, ru + en) in a small phrase language, compiled into one regular expression
per rule set — for Python here and for the page (`Engine.js_patterns()`), so the reply box checks as the agent
types with no round trip. Pure functions: no database, no HTTP (workspace rules live in `phrase_rules.py`).

Phrase language (lowercase; «ё» counts as «е»):
    word        a literal word; words are separated by one space (any run of spaces in the text)
    *           any ending of the word: «должн*» — должны, должна, должно
    (a|b|)      alternatives, an empty one makes the group optional: «(вы|ты) (обязан*|должн*)»
    _           any one word: «вы _ должны»
    ..          up to three words between: «не .. помочь» — «не смогу вам ничем помочь»
    ^           (first) the phrase starts a clause: the text's start or after . ! ? ; : , — ( «
    !(…)        (last) not followed by: «^но!( и$| также$)» — «но» but not «, но и»
    $           a word ends here (inside !(…))
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

DATA = Path(__file__).parent / "data" / "phrases.yaml"
LANGUAGES = ("ru", "en")
Severity = Literal["never", "avoid"]
SEVERITIES: tuple[str, ...] = ("never", "avoid")
MAX_PHRASE = 200
# what a phrase may contain: letters, digits, the language's marks; nothing a regular expression could misuse
PHRASE_CHARS = re.compile(r"^[\w '’\-–—*()|^!$.,]+$")
CLAUSE_MARKS = r'.!?;:,—–…(«"\n'  # inside [...]: literal in Python and JavaScript alike


class PhraseError(ValueError):
    """A phrase the phrase language cannot read (the message says what is wrong)."""


@dataclass(frozen=True)
class Rule:
    id: str
    language: str
    phrase: str
    severity: str
    reason: str
    alternatives: tuple[str, ...]
    examples: tuple[str, ...] = ()
    near_misses: tuple[str, ...] = ()
    shipped: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "language": self.language, "phrase": self.phrase, "severity": self.severity,
                "reason": self.reason, "alternatives": list(self.alternatives), "shipped": self.shipped}


@dataclass(frozen=True)
class Match:
    rule_id: str
    start: int
    end: int
    phrase: str  # the words as written in the text
    severity: str
    reason: str
    alternatives: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "start": self.start, "end": self.end, "phrase": self.phrase,
                "severity": self.severity, "reason": self.reason, "alternatives": list(self.alternatives)}


# -- the phrase language ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flavour:
    """How one regular-expression dialect spells a word character (Python's `\\w` is Unicode already; the page's
    JavaScript needs `\\p{L}` under the `u` flag)."""

    word: str  # one character of a word
    edge: str  # one character that would continue a word (a hyphen does: «но-шпа» is one word)
    ws: str = r"\s"


PY = Flavour(word=r"\w", edge=r"[\w'\-]")
JS = Flavour(word=r"[\p{L}\p{N}_]", edge=r"[\p{L}\p{N}_'\-]")


def normalise(text: str) -> str:
    """Lowercase with «ё» as «е» and ’ as ', keeping every offset (a character whose lowercase is longer, such as
    «İ», stays as it is)."""
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    return lowered.replace("ё", "е").replace("’", "'")


def _split_group(phrase: str, start: int) -> tuple[list[str], int]:
    """The alternatives of the group opening at `start` and the index after its closing bracket."""
    depth, parts, last = 0, [], start + 1
    for i in range(start, len(phrase)):
        c = phrase[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                parts.append(phrase[last:i])
                return parts, i + 1
        elif c == "|" and depth == 1:
            parts.append(phrase[last:i])
            last = i + 1
    raise PhraseError("a bracket is not closed")


def variants(phrase: str) -> list[str]:
    """The phrase with its leading groups spelled out, so that every variant starts with a letter (the combined
    expression then opens with a literal in each branch, which lets the regex engine skip ahead fast)."""
    if not phrase:
        raise PhraseError("the phrase is empty")
    if phrase[0] == "(":
        parts, after = _split_group(phrase, 0)
        out: list[str] = []
        for part in parts:
            rest = (part + phrase[after:]).lstrip(" ")
            if rest:
                out.extend(variants(rest))
        return out
    if not re.match(r"\w", phrase[0]):
        raise PhraseError("a phrase starts with a word, a group or ^")
    return [phrase]


def _body(phrase: str, fl: Flavour) -> str:
    """The phrase language after the first letter, as a regular expression in the flavour."""
    out: list[str] = []
    i = 0
    while i < len(phrase):
        c = phrase[i]
        if phrase.startswith(" .. ", i):
            out.append(rf"{fl.ws}+(?:{fl.word}+{fl.ws}+){{0,3}}")
            i += 4
            continue
        if c == " ":
            out.append(rf"{fl.ws}+")
        elif c == "*":
            if phrase[i + 1:i + 2] == "*":
                raise PhraseError("** is one * too many")
            out.append(rf"{fl.word}*")
        elif c == "_":
            out.append(rf"{fl.word}+")
        elif c == "(":
            out.append("(?:")
        elif c == "|":
            out.append("|")
        elif c == ")":
            out.append(")")
        elif c == "$":
            out.append(rf"(?!{fl.edge})")
        elif c == "!" and phrase[i + 1:i + 2] == "(":
            parts, after = _split_group(phrase, i + 1)
            if after != len(phrase):
                raise PhraseError("!(…) comes last")
            out.append("(?!" + "|".join(_body(p, fl) for p in parts) + ")")
            i = after
            continue
        elif c in "^.!":
            raise PhraseError(f"«{c}» is not allowed here")
        else:
            out.append(c)  # a letter, a digit, ' or - (PHRASE_CHARS): literal in both dialects
        i += 1
    return "".join(out)


def check_phrase(phrase: str) -> str:
    """The phrase in its stored form (trimmed, lowercase, single spaces); PhraseError says what is wrong."""
    clean = " ".join(normalise(phrase).split())
    if not clean:
        raise PhraseError("the phrase is empty")
    if len(clean) > MAX_PHRASE:
        raise PhraseError(f"at most {MAX_PHRASE} characters")
    if not PHRASE_CHARS.match(clean):
        raise PhraseError("letters, digits, spaces, commas, dashes and * ( | ) ^ ! $ _ .. only")
    if clean.count("(") != clean.count(")"):
        raise PhraseError("brackets do not pair up")
    try:
        for variant in variants(clean.removeprefix("^")):
            re.compile(_branch(variant, clause=clean.startswith("^"), fl=PY))
    except re.error as exc:
        raise PhraseError(f"cannot read the phrase: {exc.msg}") from None
    return clean


def _edge(first: str, *, clause: bool, fl: Flavour) -> str:
    """What must come before the first letter: no letter of the same word, or (^) the start of a clause."""
    if not clause:
        return ""  # `combined` checks it once for every letter
    marks = CLAUSE_MARKS
    return (f"(?:(?<=^{first})|(?<=[{marks}]{first})|(?<=[{marks}]{fl.ws}{first})"
            f"|(?<=[{marks}]{fl.ws}{fl.ws}{first}))")


def _branch(variant: str, *, clause: bool, fl: Flavour) -> str:
    """One variant alone (to validate a phrase): the first letter, its edge, `(rest)`, the right edge."""
    return (f"(?<!{fl.edge}){variant[0]}{_edge(variant[0], clause=clause, fl=fl)}({_body(variant[1:], fl)})"
            f"(?!{fl.edge})")


def _literal_prefix(variant: str) -> int:
    """How many leading characters of a variant are plain letters and single spaces (shared in the trie)."""
    i = 0
    while i < len(variant):
        c = variant[i]
        if c == " " and variant.startswith(" ..", i):
            break
        if not (c == " " or c.isalnum() or c in "'-,—–"):
            break
        if c == " " and variant[i + 1:i + 2] in ("(", "_", ""):
            break
        i += 1
    # a letter followed by * belongs to the word's ending, which the body spells
    return i - 1 if i < len(variant) and variant[i] == "*" and i > 1 else i


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    leaves: list[tuple[str, Rule]] = field(default_factory=list)


def _emit(node: _Node, fl: Flavour, order: list[Rule]) -> str:
    alts: list[str] = []
    for ch in sorted(node.children):
        alts.append((rf"{fl.ws}+" if ch == " " else ch) + _emit(node.children[ch], fl, order))
    for rest, rule in sorted(node.leaves, key=lambda leaf: -len(leaf[0])):
        alts.append(f"({_body(rest, fl)})(?!{fl.edge})")
        order.append(rule)
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


def combined(rules: Sequence[Rule], fl: Flavour) -> tuple[str, list[Rule]]:
    """One expression for all rules and the rule of each capturing group, in order. The variants' plain
    beginnings share a trie (`в(?:ы\s+(?:д…|о…)|…)`), so at a word's start the engine follows only the phrases
    that begin with what is there; where one phrase continues another the longer is tried first («вы должны
    были» before «вы должны»). Phrases that start a clause (^) follow, grouped by their first letter."""
    root = _Node()
    clause_items: dict[str, list[tuple[str, Rule]]] = {}
    for rule in rules:
        clause = rule.phrase.startswith("^")
        for variant in variants(rule.phrase.removeprefix("^")):
            if clause:
                clause_items.setdefault(variant[0], []).append((variant, rule))
                continue
            cut = max(1, _literal_prefix(variant))
            node = root
            for ch in variant[:cut]:
                node = node.children.setdefault(ch, _Node())
            node.leaves.append((variant[cut:], rule))
    order: list[Rule] = []
    parts = [_emit(root, fl, order)] if root.children else []
    for first in sorted(clause_items):
        alts = []
        for variant, rule in sorted(clause_items[first], key=lambda item: -len(item[0])):
            alts.append(f"({_body(variant[1:], fl)})(?!{fl.edge})")
            order.append(rule)
        parts.append(first + _edge(first, clause=True, fl=fl) + "(?:" + "|".join(alts) + ")")
    # one look behind for all (no letter of the same word before): inside words the engine stops there
    return f"(?<!{fl.edge})(?:" + "|".join(parts) + ")", order


# -- the engine -------------------------------------------------------------------------------------------------


@dataclass
class Engine:
    """A compiled rule set: `check(text)` finds every rule's phrases, leftmost first, never two overlapping."""

    rules: list[Rule]
    _groups: list[Rule] = field(default_factory=list, repr=False)
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        source, self._groups = combined(self.rules, PY)
        self._pattern = re.compile(source, re.M) if self._groups else None

    def check(self, text: str, *, language: str | None = None) -> list[Match]:
        if self._pattern is None or not text:
            return []
        out: list[Match] = []
        for m in self._pattern.finditer(normalise(text)):
            rule = self._groups[(m.lastindex or 1) - 1]
            if language and rule.language != language:
                continue
            out.append(Match(rule_id=rule.id, start=m.start(), end=m.end(), phrase=text[m.start():m.end()],
                             severity=rule.severity, reason=rule.reason, alternatives=rule.alternatives))
        return out

    def js_pattern(self) -> dict[str, Any]:
        """The same expression for the page: `source` (flags "gmu") and the rule id of each capturing group."""
        source, order = combined(self.rules, JS)
        return {"source": source, "flags": "gmu", "groups": [rule.id for rule in order]}


def rule_from_data(item: dict[str, Any], group: dict[str, Any]) -> Rule:
    merged = {**group, **item}
    return Rule(id=str(merged["id"]), language=str(merged["language"]), phrase=check_phrase(str(merged["phrase"])),
                severity=str(merged["severity"]), reason=str(merged["reason"]).strip(),
                alternatives=tuple(str(a) for a in merged.get("alternatives") or ()),
                examples=tuple(str(e) for e in merged.get("examples") or ()),
                near_misses=tuple(str(e) for e in merged.get("near_misses") or ()))


@cache
def shipped_rules() -> tuple[Rule, ...]:
    """The shipped ru + en list. The file groups rules sharing a reason and alternatives: each group's fields
    apply to its `rules` unless a rule says otherwise."""
    data = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    rules: list[Rule] = []
    for group in data["groups"]:
        shared = {k: v for k, v in group.items() if k != "rules"}
        for item in group["rules"]:
            rules.append(rule_from_data(item, shared))
    ids = [r.id for r in rules]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"duplicate phrase rule ids: {sorted(duplicates)}")
    return tuple(rules)


@cache
def shipped_engine() -> Engine:
    return Engine(list(shipped_rules()))


def check(text: str, *, language: str | None = None, rules: Sequence[Rule] | None = None) -> list[Match]:
    """The shipped rules' matches (or these `rules`') in a text."""
    engine = shipped_engine() if rules is None else Engine(list(rules))
    return engine.check(text, language=language)


# -- tone hints -------------------------------------------------------------------------------------------------

BARE_NO = re.compile(r"^\W*(?:нет|не-а|неа|no|nope)\W*$", re.I)
EMPATHY = re.compile(r"(?<!\w)(?:понима\w*|сожале\w*|извин\w*|прос\w+ прощени\w*|неприятн\w*|сочувств\w*|"
                     r"sorry|apolog\w*|understand\w*|frustrat\w*|regret\w*)(?!\w)", re.I)
OPENINGS = {
    "ru": ("Понимаю, как это неприятно, и сразу займусь вашим вопросом.",
           "Приношу извинения за неудобства — давайте разберёмся вместе."),
    "en": ("I'm sorry about this — let me sort it out right away.",
           "I understand how frustrating this is; I'm on it now."),
}
NO_ALTERNATIVES = {
    "ru": ("К сожалению, так сделать не получится, потому что … Могу предложить …",),
    "en": ("Unfortunately that isn't possible because … What I can do is …",),
}


_QUESTION_WORD = re.compile(
    r"^\W*(?:как\w*|когда|где|куда|откуда|почему|зачем|сколько|что|чем|какой|какая|какое|какие|каким\w*|"
    r"можно|есть\s+ли|будет\s+ли|how|when|where|why|what|which|can|could|is|are|do|does|will|would)\b",
    re.IGNORECASE)
_CONTENT_WORD = re.compile(r"[^\W\d_]{4,}", re.UNICODE)
_STOP = frozenset(["здравствуйте", "добрый", "день", "вечер", "утро", "пожалуйста", "спасибо", "скажите", "подскажите", "можно", "меня", "мне", "мой", "моя", "мои", "ваш", "ваша", "ваши", "вашей", "вашего", "было", "будет", "есть", "этот", "этого", "эта", "это", "очень", "уже", "если", "когда", "только", "просто", "также", "тоже", "который", "которая", "которые", "hello", "please", "thanks", "thank", "could", "would", "should", "there", "their", "your", "with", "have", "this", "that", "what", "when", "where", "which", "about", "from", "will", "just", "also"])


def _stems(text: str) -> set[str]:
    return {w.lower().replace("ё", "е")[:5] for w in _CONTENT_WORD.findall(text[:1000])
            if w.lower() not in _STOP}


def unanswered(question: str, reply: str) -> bool:
    """The customer's last message asks something («Когда привезут диван?») and the reply shares not one
    content word with it, names no number and is more than a word or two: it may not answer the question.
    A hint, so a rough test: words compared by their first five letters (Russian endings differ)."""
    q, r = (question or "").strip(), (reply or "").strip()
    if len(r) < 15 or not q or any(c.isdigit() for c in r):
        return False
    if "?" not in q and not _QUESTION_WORD.match(q):
        return False
    asked = _stems(q)
    return bool(asked) and not (asked & _stems(r))


def tone_hints(text: str, *, upset: bool, language: str = "ru", question: str | None = None) -> list[dict[str, Any]]:
    """Gentle hints (never refusals): a reply that only says «нет», an upset or urgent customer answered without
    an empathetic opening, and a reply that may not answer the customer's question."""
    lang = language if language in LANGUAGES else "ru"
    hints: list[dict[str, Any]] = []
    if BARE_NO.match(text.strip()):
        hints.append({"code": "tone_bare_no", "alternatives": list(NO_ALTERNATIVES[lang]),
                      "message": "A bare «no» sounds curt: say why, and what you can do instead."})
    elif upset and text.strip() and not EMPATHY.search(text[:300]):
        hints.append({"code": "tone_empathy", "alternatives": list(OPENINGS[lang]),
                      "message": "The customer is upset or in a hurry: open with empathy."})
    if question and unanswered(question, text):
        hints.append({"code": "tone_unanswered", "alternatives": [],
                      "message": f"The customer asked «{question.strip()[:120]}»: does the reply answer it?"})
    return hints


def language_of(text: str) -> str:
    """ru when the text has more Cyrillic than Latin letters, else en (for the tone hints' wording)."""
    cyr = sum(1 for c in text[:400] if "а" <= c.lower() <= "я" or c in "ёЁ")
    lat = sum(1 for c in text[:400] if "a" <= c.lower() <= "z")
    return "ru" if cyr >= lat else "en"


def summarise(matches: Iterable[Match]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in matches:
        counts[m.rule_id] = counts.get(m.rule_id, 0) + 1
    return counts
