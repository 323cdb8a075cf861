"""A light softmax (multinomial logistic) regression in plain numpy, with temperature calibration.

Used for every trained step of the pipeline (intent / contact reason, sentiment, urgency, abuse): the input is
a dense feature vector (sentence embedding + a few lexical features), the output calibrated probabilities.
No scikit-learn at run time: weights are a small `.npz` (W, b, labels, temperature).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class SoftmaxModel:
    labels: list[str]
    W: np.ndarray  # (d, k)
    b: np.ndarray  # (k,)
    temperature: float = 1.0
    mean: np.ndarray | None = None  # feature centring

    def logits(self, X: np.ndarray) -> np.ndarray:
        if self.mean is not None:
            X = X - self.mean
        return X @ self.W + self.b

    def proba(self, X: np.ndarray) -> np.ndarray:
        return _softmax(self.logits(X) / self.temperature)

    def predict(self, X: np.ndarray) -> tuple[list[str], np.ndarray]:
        p = self.proba(X)
        idx = p.argmax(axis=1)
        return [self.labels[i] for i in idx], p[np.arange(len(idx)), idx]

    # -- persistence ---------------------------------------------------------------------------------
    def save(self, path: Path | str) -> None:
        np.savez_compressed(path, W=self.W.astype(np.float16), b=self.b.astype(np.float32),
                            labels=np.array(self.labels), temperature=np.array([self.temperature]),
                            mean=self.mean if self.mean is not None else np.zeros(0, dtype=np.float32))

    @classmethod
    def load(cls, path: Path | str) -> SoftmaxModel:
        with np.load(path, allow_pickle=False) as z:
            mean = z["mean"].astype(np.float32)
            return cls(labels=[str(x) for x in z["labels"]], W=z["W"].astype(np.float32),
                       b=z["b"].astype(np.float32), temperature=float(z["temperature"][0]),
                       mean=mean if mean.size else None)


def train_softmax(X: np.ndarray, y: Sequence[str], *, l2: float = 1e-4, epochs: int = 300, lr: float = 0.05,
                  class_weight: str | None = None, seed: int = 0, batch: int = 2048,
                  labels: Sequence[str] | None = None) -> SoftmaxModel:
    """Fit W, b by mini-batch Adam on cross-entropy + L2. Deterministic for a given seed."""
    X = np.asarray(X, dtype=np.float32)
    labels = sorted(set(y)) if labels is None else list(labels)
    index = {label: i for i, label in enumerate(labels)}
    yi = np.array([index[t] for t in y])
    n, d = X.shape
    k = len(labels)
    mean = X.mean(axis=0).astype(np.float32)
    Xc = X - mean
    rng = np.random.default_rng(seed)
    W = np.zeros((d, k), dtype=np.float32)
    b = np.zeros(k, dtype=np.float32)
    counts = np.bincount(yi, minlength=k).astype(np.float32)
    sw_class = n / (k * np.maximum(counts, 1)) if class_weight == "balanced" else np.ones(k, dtype=np.float32)
    sw = sw_class[yi].astype(np.float32)
    mW = np.zeros_like(W)
    vW = np.zeros_like(W)
    mb = np.zeros_like(b)
    vb = np.zeros_like(b)
    b1, b2, eps = 0.9, 0.999, 1e-8
    t = 0
    Y = np.zeros((n, k), dtype=np.float32)
    Y[np.arange(n), yi] = 1.0
    for epoch in range(epochs):
        order = rng.permutation(n)
        step_lr = lr * (0.5 * (1 + np.cos(np.pi * epoch / epochs)) * 0.95 + 0.05)
        for start in range(0, n, batch):
            sel = order[start:start + batch]
            xb, yb, wb = Xc[sel], Y[sel], sw[sel]
            p = _softmax(xb @ W + b)
            g = (p - yb) * wb[:, None] / wb.sum()
            gW = xb.T @ g + l2 * W
            gb = g.sum(axis=0)
            t += 1
            mW = b1 * mW + (1 - b1) * gW
            vW = b2 * vW + (1 - b2) * gW * gW
            mb = b1 * mb + (1 - b1) * gb
            vb = b2 * vb + (1 - b2) * gb * gb
            corr = np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            W -= step_lr * corr * mW / (np.sqrt(vW) + eps)
            b -= step_lr * corr * mb / (np.sqrt(vb) + eps)
    return SoftmaxModel(labels=labels, W=W, b=b, mean=mean)


def fit_temperature(model: SoftmaxModel, X: np.ndarray, y: Sequence[str]) -> float:
    """Temperature scaling (Guo et al. 2017) on held-out data: the T minimising negative log-likelihood."""
    index = {label: i for i, label in enumerate(model.labels)}
    keep = [i for i, t in enumerate(y) if t in index]
    if not keep:
        return model.temperature
    z = model.logits(np.asarray(X, dtype=np.float32)[keep])
    yi = np.array([index[y[i]] for i in keep])
    best_t, best_nll = 1.0, float("inf")
    for temp in np.exp(np.linspace(np.log(0.05), np.log(20.0), 80)):
        p = _softmax(z / temp)
        nll = -float(np.mean(np.log(p[np.arange(len(yi)), yi] + 1e-12)))
        if nll < best_nll:
            best_t, best_nll = float(temp), nll
    model.temperature = best_t
    return best_t
