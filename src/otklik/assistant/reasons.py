"""The workspace's own contact reasons, classified zero/few-shot.

A business names its reasons itself («запись_к_врачу: перенос или отмена приёма…»), so no fixed classifier can
know them. Each reason is a name, a one-line description and optional example messages; a message gets the
reason whose description and examples it is closest to: the sentence embedding (cosine to the description and
to the nearest example) plus the share of the description's rarer word stems the message uses. An «other»
reason (when the list has one) takes messages close to none of them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from otklik.assistant.embeddings import Embedder
from otklik.platform.text import content_stems

OTHER = "other"
# Below this score (cosine + lexical share) a message is close to no described reason and goes to «other»; the
# lexical share's weight. Chosen on the seven dev KBs' messages and reason lists (bench/data/kbs), mean accuracy
# over the KBs: lexical weight 0 -> 0.472, 0.35 -> 0.540, 0.7 -> 0.529; «other» below 0.15 -> 0.540, 0.22 ->
# 0.520, 0.30 -> 0.476, never -> 0.539. The e5 encoder instead of USE: 0.470 alone, 0.55 mixed (not used).
OTHER_BELOW = 0.15
LEXICAL_WEIGHT = 0.35
EXAMPLE_WEIGHT = 0.5


@dataclass
class Reason:
    name: str
    description: str = ""
    examples: list[str] = field(default_factory=list)


class ReasonSet:
    def __init__(self, reasons: Sequence[Reason], embedder: Embedder):
        self.reasons = [r for r in reasons if r.name]
        if not self.reasons:
            raise ValueError("a reason list needs at least one reason")
        self.embedder = embedder
        self.names = [r.name for r in self.reasons]
        texts = [f"{r.name.replace('_', ' ')}: {r.description}".strip() for r in self.reasons]
        self._desc = embedder.encode(texts)
        ex_texts, ex_owner = [], []
        for i, r in enumerate(self.reasons):
            for e in r.examples:
                ex_texts.append(e)
                ex_owner.append(i)
        self._ex = embedder.encode(ex_texts) if ex_texts else None
        self._ex_owner = np.array(ex_owner, dtype=np.int64)
        # stems of each description, weighted by how few descriptions share them
        bags = [Counter(content_stems(t + " " + " ".join(r.examples))) for t, r in zip(texts, self.reasons, strict=True)]
        df: Counter[str] = Counter()
        for b in bags:
            df.update(b.keys())
        n = len(bags)
        self._bags = [{t: math.log(1 + n / df[t]) for t in b} for b in bags]

    @classmethod
    def from_rows(cls, rows: Sequence[dict[str, Any]], embedder: Embedder) -> ReasonSet:
        reasons = []
        for n, r in enumerate(rows, 1):
            name = str(r.get("name") or "").strip()
            if not name:
                raise ValueError(f"reason {n}: a reason needs a 'name'")
            examples = r.get("examples") or []
            if not isinstance(examples, list):
                raise ValueError(f"reason {name!r}: 'examples' must be a list of messages")
            reasons.append(Reason(name, str(r.get("description") or ""), [str(e) for e in examples]))
        return cls(reasons, embedder)

    def scores(self, text: str, vec: np.ndarray | None = None) -> np.ndarray:
        v = self.embedder.encode([text])[0] if vec is None else vec
        s = self._desc @ v
        if self._ex is not None and len(self._ex):
            ex = self._ex @ v
            best = np.full(len(self.reasons), -1.0, dtype=np.float32)
            np.maximum.at(best, self._ex_owner, ex)
            s = np.where(best > -1.0, (1 - EXAMPLE_WEIGHT) * s + EXAMPLE_WEIGHT * best, s)
        q = set(content_stems(text))
        if q:
            lex = np.array([sum(w for t, w in bag.items() if t in q) / (sum(bag.values()) ** 0.5 or 1.0)
                            for bag in self._bags], dtype=np.float32)
            s = s + LEXICAL_WEIGHT * lex
        return np.asarray(s, dtype=np.float32)

    def classify(self, text: str, vec: np.ndarray | None = None) -> tuple[str, float]:
        s = self.scores(text, vec)
        i = int(np.argmax(s))
        if OTHER in self.names and self.names[i] != OTHER and float(s[i]) < OTHER_BELOW:
            return OTHER, float(s[i])
        return self.names[i], float(s[i])

