"""Text normalisation for full-text search with Russian and English morphology.

Both backends index the same pre-stemmed terms (Snowball via PyStemmer): SQLite FTS5 and PostgreSQL's
`simple` tsvector over them behave identically, so «заказа» finds «заказ» and «orders» finds «order» on both.
"""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CYRILLIC = re.compile(r"[а-яё]")
MAX_TERMS_CHARS = 20_000


@lru_cache(maxsize=1)
def _stemmers() -> tuple[Stemmer.Stemmer, Stemmer.Stemmer]:
    return Stemmer.Stemmer("russian"), Stemmer.Stemmer("english")


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("ё", "е"))


def stem(word: str) -> str:
    ru, en = _stemmers()
    return ru.stemWord(word) if _CYRILLIC.search(word) else en.stemWord(word)


def content_stems(text: str) -> list[str]:
    """Stems of the words of three letters or more (short function words say little of what a text is about)."""
    return [stem(w) for w in tokens(text) if len(w) > 2]


def search_terms(*texts: str | None) -> str:
    """The indexed form of a document: stems separated by spaces (bounded so huge bodies stay cheap)."""
    joined = " ".join(t for t in texts if t)[:MAX_TERMS_CHARS]
    return " ".join(stem(w) for w in tokens(joined))


def query_terms(query: str, *, limit: int = 8) -> list[str]:
    """Stems of a user's query, de-duplicated, at most `limit` of them."""
    seen: list[str] = []
    for word in tokens(query):
        s = stem(word)
        if s and s not in seen:
            seen.append(s)
    return seen[:limit]
