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
    class_weight: str | dict[str, float] | None = None
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

    def fit(self, texts: Sequence[str], labels: Sequence[str], embeddings: np.ndarray | None = None, *,
            density: bool = True) -> HybridClassifier:
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
            self._clf = LinearSVC(C=cfg.C, class_weight=cfg.class_weight, random_state=0)  # the same fit every time
        self._clf.fit(X, list(labels))
        self.labels = [str(c) for c in self._clf.classes_]
        if embeddings is not None and density:
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

    def score_one(self, text: str, embedding: np.ndarray | None = None) -> np.ndarray:
        """`scores([text])[0]` for the linear SVM, computed straight from the fitted weights: the same numbers
        in about a tenth of the time (sklearn's transform and validation cost ~1 ms a call, which the
        assistant would pay on every message)."""
        if self.config.model != "svc" or self.extra_fn is not None:
            return self.scores([text], None if embedding is None else embedding[None, :])[0]
        fast = self.__dict__.get("_fast")
        if fast is None:
            fast = self._fast = self._compile()
        words, chars, w_emb, intercept = fast
        out = intercept + _tfidf_dot(words, stemmed(text)) + _tfidf_dot(chars, text.lower())
        if w_emb is not None:
            emb = embedding if embedding is not None else self.embedder.encode([text])[0]  # type: ignore[union-attr]
            out = out + w_emb @ np.asarray(emb, dtype=np.float64)
        return out if len(out) > 1 or len(self.labels) != 2 else np.array([-out[0], out[0]])

    def _compile(self) -> tuple[Any, Any, np.ndarray | None, np.ndarray]:
        coef = np.asarray(self._clf.coef_, dtype=np.float64)
        n_words, n_chars = len(self._words.vocabulary_), len(self._chars.vocabulary_)
        words = (self._words.build_analyzer(), self._words.vocabulary_, self._words.idf_,
                 np.ascontiguousarray(coef[:, :n_words].T))
        chars = (self._chars.build_analyzer(), self._chars.vocabulary_, self._chars.idf_,
                 np.ascontiguousarray(coef[:, n_words:n_words + n_chars].T))
        w_emb = None
        if self.embedder is not None and self.config.embedding_weight > 0:
            w_emb = coef[:, n_words + n_chars:] * self.config.embedding_weight
        return words, chars, w_emb, np.asarray(self._clf.intercept_, dtype=np.float64)

    def predict(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> tuple[list[str], np.ndarray]:
        s = self.scores(texts, embeddings)
        idx = s.argmax(axis=1)
        return [self.labels[i] for i in idx], s[np.arange(len(idx)), idx]


def _tfidf_dot(block: tuple[Callable[[str], list[str]], dict[str, int], np.ndarray, np.ndarray], doc: str
               ) -> np.ndarray | float:
    """One document's TF-IDF row (sublinear tf, l2-normalised, as `TfidfVectorizer` makes it) times the
    block's weights, without building a sparse matrix. `block`: (analyzer, vocabulary, idf, weights')."""
    analyzer, vocabulary, idf, weights_t = block
    counts: dict[int, int] = {}
    for gram in analyzer(doc):
        i = vocabulary.get(gram)
        if i is not None:
            counts[i] = counts.get(i, 0) + 1
    if not counts:
        return 0.0
    idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    v = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * idf[idx]
    v /= np.linalg.norm(v)
    return np.asarray(v @ weights_t[idx])
