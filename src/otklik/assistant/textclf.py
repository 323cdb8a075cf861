"""A hybrid text classifier: TF-IDF over words (with stems) and character n-grams, plus the sentence
embedding, into one linear model. Used to train intents / sentiment / abuse models on a given set, at
evaluation time (`otklik eval`) and at first run from the examples the product ships.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from otklik.assistant.embeddings import Embedder
from otklik.platform.text import stem, tokens


def stemmed(text: str) -> str:
    return " ".join(stem(w) for w in tokens(text))


@dataclass
class HybridConfig:
    model: str = "svc"  # "svc" (LinearSVC, margins) or "lr" (logistic regression, probabilities)
    C: float = 0.5
    embedding_weight: float = 2.0
    char_ngrams: tuple[int, int] = (2, 5)
    word_ngrams: tuple[int, int] = (1, 2)
    max_char_features: int = 60_000
    class_weight: str | None = None
    extra: list[str] = field(default_factory=list)  # names of extra dense features (see `extra_features`)


class HybridClassifier:
    def __init__(self, embedder: Embedder | None, config: HybridConfig | None = None):
        self.embedder = embedder
        self.config = config or HybridConfig()
        self.labels: list[str] = []

    def _features(self, texts: Sequence[str], embeddings: np.ndarray | None, fit: bool = False) -> Any:
        from scipy import sparse

        stems = [stemmed(t) for t in texts]
        lowered = [t.lower() for t in texts]
        if fit:
            self._words.fit(stems)
            self._chars.fit(lowered)
        parts = [self._words.transform(stems), self._chars.transform(lowered)]
        if self.embedder is not None and self.config.embedding_weight > 0:
            emb = embeddings if embeddings is not None else self.embedder.encode(list(texts))
            parts.append(sparse.csr_matrix(emb * self.config.embedding_weight))
        if self.extra_fn is not None:
            parts.append(sparse.csr_matrix(self.extra_fn(texts)))
        return sparse.hstack(parts).tocsr()

    extra_fn: Callable[[Sequence[str]], np.ndarray] | None = None

    def fit(self, texts: Sequence[str], labels: Sequence[str], embeddings: np.ndarray | None = None
            ) -> HybridClassifier:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import LinearSVC

        cfg = self.config
        self._words = TfidfVectorizer(ngram_range=cfg.word_ngrams, sublinear_tf=True, token_pattern=r"\S+")  # noqa: S106 - not a password
        self._chars = TfidfVectorizer(analyzer="char_wb", ngram_range=cfg.char_ngrams, sublinear_tf=True,
                                      min_df=2, max_features=cfg.max_char_features)
        X = self._features(texts, embeddings, fit=True)
        if cfg.model == "lr":
            self._clf = LogisticRegression(C=cfg.C, max_iter=500, class_weight=cfg.class_weight)
        else:
            self._clf = LinearSVC(C=cfg.C, class_weight=cfg.class_weight)
        self._clf.fit(X, list(labels))
        self.labels = [str(c) for c in self._clf.classes_]
        if embeddings is not None:
            self._fit_density(np.asarray(embeddings, dtype=np.float32), list(labels))
        return self

    # -- out-of-scope evidence: how far a message lies from every known intent -----------------------------
    def _fit_density(self, emb: np.ndarray, labels: list[str], out_label: str = "oos") -> None:
        """Class means and one shared covariance of the embeddings of in-scope examples (Lee et al. 2018's
        Mahalanobis detector): a message far from every class mean is likely out of scope, even when the
        linear model is sure which class it is *closest* to."""
        y = np.array(labels, dtype=object)
        classes = [c for c in sorted(set(labels)) if c != out_label and (y == c).sum() >= 2]
        if not classes:
            self._means = None
            return
        self._means = np.stack([emb[y == c].mean(axis=0) for c in classes]).astype(np.float32)
        centred = np.concatenate([emb[y == c] - self._means[i] for i, c in enumerate(classes)])
        cov = centred.T @ centred / max(1, len(centred) - 1) + 1e-3 * np.eye(emb.shape[1], dtype=np.float32)
        self._precision = np.linalg.inv(cov).astype(np.float32)
        self._mpm = ((self._means @ self._precision) * self._means).sum(axis=1)

    _means: np.ndarray | None = None

    def closeness(self, embeddings: np.ndarray) -> np.ndarray | None:
        """(n,) minus the smallest Mahalanobis distance to an in-scope class mean (higher = more in scope);
        None when the classifier was fitted without embeddings."""
        if self._means is None:
            return None
        x = np.asarray(embeddings, dtype=np.float32)
        xp = x @ self._precision
        # (x - m)' P (x - m) = x'Px - 2 x'Pm + m'Pm, for every class mean m at once
        dist = (xp * x).sum(axis=1)[:, None] - 2 * xp @ self._means.T + self._mpm[None, :]
        return -dist.min(axis=1)

    def scores(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """(n, k) scores over `self.labels`: probabilities (lr) or margins (svc)."""
        X = self._features(texts, embeddings)
        if self.config.model == "lr":
            return np.asarray(self._clf.predict_proba(X))
        s = np.asarray(self._clf.decision_function(X))
        if s.ndim == 1:  # binary: one margin for the second class
            s = np.stack([-s, s], axis=1)
        return s

    def predict(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> tuple[list[str], np.ndarray]:
        s = self.scores(texts, embeddings)
        idx = s.argmax(axis=1)
        return [self.labels[i] for i in idx], s[np.arange(len(idx)), idx]
