"""Understanding a message: contact reason, sentiment, urgency, abuse, legal threat, request for a person,
entities. Trained steps are light softmax models (numpy) over the sentence embedding + lexicon features,
fitted by `data/make_examples.py` on the examples the product ships (`assistant/data/examples.jsonl`, written
for this project: no "evaluation use only" data) and shipped as small `.npz` weights; without them they are
fitted at first use, in well under a second. Sentiment and urgency are also fitted on the chat messages of
seven other businesses (`bench/data/kbs/*/questions.jsonl`), so they hold on a business's own customers'
words and not only on the demo store's (BENCHMARKS.md, section 11b). `OTKLIK_UNDERSTANDING_MODELS` names a
folder of other weights (the leave-one-KB-out benchmark fits one per held-out KB).
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from otklik.assistant import lexicon
from otklik.assistant.classifier import SoftmaxModel, train_softmax
from otklik.assistant.embeddings import Embedder

DATA = Path(__file__).parent / "data"
# P(urgent) at which a message counts as urgent (lights the conversation red, feeds SLA conditions): the
# threshold that keeps 90 % of urgent messages flagged (the goal) in the leave-one-KB-out fits over the
# seven businesses' chat messages (bench/understanding_loko.py; BENCHMARKS.md, section 11b). A hand-off for
# urgency needs the workspace's own, much higher `urgency_threshold` on top of this.
URGENT_AT = 0.3
REASONS = (
    "return_good_quality", "damaged_in_delivery", "defective", "warranty_repair", "installation", "missing_parts",
    "how_to_use", "late_delivery", "order_status", "cancel_change", "payment_refund", "delivery_info",
    "loyalty_promo", "account_data", "business_documents", "product_question", "complaint", "other",
)

_ORDER = re.compile(r"(?:заказ\w*|order|№|#)\s*(?:номер\s*|no\.?\s*|number\s*)?[№#]?\s*(\d{4,12})", re.IGNORECASE)
_PHONE = re.compile(r"(?<!\d)(?:\+7|8|\+\d{1,3})[\s(-]*\d{3}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_SUM = re.compile(r"(\d[\d\s]{0,9}(?:[.,]\d{1,2})?)\s*(?:₽|руб\w*|р\.|тыс\w*|\$|usd|eur|€)", re.IGNORECASE)
_DATE = re.compile(r"\b(?:\d{1,2}[./]\d{1,2}(?:[./]\d{2,4})?|\d{1,2}\s+(?:январ|феврал|март|апрел|ма[йя]|июн|июл|"
                   r"август|сентябр|октябр|ноябр|декабр)\w*|сегодня|вчера|завтра|позавчера)\b", re.IGNORECASE)
_NAME = re.compile(r"(?:меня зовут|я\s*[-—]|my name is)\s+([A-ZА-ЯЁ][a-zа-яё]+)")


def entities(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, rx in (("order", _ORDER), ("phone", _PHONE), ("email", _EMAIL), ("sum", _SUM), ("date", _DATE),
                    ("name", _NAME)):
        vals = []
        for m in rx.finditer(text):
            v = (m.group(1) if m.groups() else m.group(0)).strip()
            if v and v not in vals:
                vals.append(v)
        if vals:
            found[key] = vals
    return found


@dataclass
class Understanding:
    language: str
    reason: str
    reason_confidence: float
    sentiment: str
    negativity: float
    urgent: bool
    urgency: float
    abusive: bool
    legal_threat: bool
    wants_human: bool
    entities: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def load_examples() -> list[dict[str, Any]]:
    with open(DATA / "examples.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class Understander:
    """The trained steps, fitted once per process from the shipped examples."""

    def __init__(self, embedder: Embedder, examples: list[dict[str, Any]] | None = None, *,
                 use_shipped: bool = True):
        self.embedder = embedder
        folder = Path(os.environ.get("OTKLIK_UNDERSTANDING_MODELS") or DATA)
        shipped = [folder / f"{name}.{embedder.name}.npz" for name in ("reason", "sentiment", "urgency")]
        if use_shipped and examples is None and all(p.exists() for p in shipped):
            self.reason, self.sentiment, self.urgency = (SoftmaxModel.load(p) for p in shipped)
            return
        rows = examples if examples is not None else load_examples()
        texts = [r["text"] for r in rows]
        X = self._x(texts)
        reason_rows = [i for i, r in enumerate(rows) if r.get("reason")]
        self.reason = train_softmax(X[reason_rows], [rows[i]["reason"] for i in reason_rows], l2=1e-3,
                                    epochs=120, lr=0.02, batch=256, class_weight="balanced")
        sent_rows = [i for i, r in enumerate(rows) if r.get("sentiment")]
        self.sentiment = train_softmax(X[sent_rows], [rows[i]["sentiment"] for i in sent_rows], l2=1e-3,
                                       epochs=120, lr=0.02, batch=256, class_weight="balanced")
        urg_rows = [i for i, r in enumerate(rows) if r.get("urgent") is not None]
        self.urgency = train_softmax(X[urg_rows], ["yes" if rows[i]["urgent"] else "no" for i in urg_rows],
                                     l2=1e-3, epochs=120, lr=0.02, batch=256, class_weight="balanced")

    def _x(self, texts: list[str]) -> np.ndarray:
        return np.hstack([self.embedder.encode(texts), lexicon.lexical_features(texts)]).astype(np.float32)

    def understand(self, text: str, language: str, *, vec: np.ndarray | None = None) -> Understanding:
        emb = vec[None, :] if vec is not None else self.embedder.encode([text])
        x = np.hstack([emb, lexicon.lexical_features([text])]).astype(np.float32)
        pr = self.reason.proba(x)[0]
        ps = self.sentiment.proba(x)[0]
        pu = self.urgency.proba(x)[0]
        sent_labels = self.sentiment.labels
        negativity = float(ps[sent_labels.index("negative")]) if "negative" in sent_labels else 0.0
        urgency = float(pu[self.urgency.labels.index("yes")])
        cues = lexicon.urgency_cues(text)
        urgency = max(urgency, min(1.0, 0.35 * cues))
        abusive = bool(lexicon.profanity_hits(text))
        return Understanding(
            language=language, reason=self.reason.labels[int(pr.argmax())], reason_confidence=float(pr.max()),
            sentiment=sent_labels[int(ps.argmax())] if not abusive else "negative", negativity=negativity,
            urgent=urgency >= URGENT_AT, urgency=urgency, abusive=abusive, legal_threat=lexicon.legal_threat(text),
            wants_human=lexicon.wants_human(text), entities=entities(text))


_lock = threading.Lock()
_understander: Understander | None = None


def get_understander(embedder: Embedder) -> Understander:
    global _understander
    with _lock:
        if _understander is None:
            _understander = Understander(embedder)
        return _understander


def reload_for_tests() -> None:
    global _understander
    with _lock:
        _understander = None


def write_shipped(embedder: Embedder, examples: list[dict[str, Any]] | None = None,
                  folder: Path = DATA) -> list[Path]:
    """Fit on the shipped examples (or `examples`) and write the weights into `folder` (by default next to the
    examples; run by data/make_examples.py)."""
    u = Understander(embedder, examples, use_shipped=False)
    paths = []
    for name, model in (("reason", u.reason), ("sentiment", u.sentiment), ("urgency", u.urgency)):
        path = folder / f"{name}.{embedder.name}.npz"
        model.save(path)
        paths.append(path)
    return paths
