"""Language of a message: a small script + function-word detector (no model to load, ~20 µs).

Recognises ru, en, uk, kk, de, es, zh, tr. `lingua-language-detector` was measured too (see
BENCHMARKS.md, section 10) but costs ~190 MB even restricted, against a 600 MB budget for the whole web process;
support messages are short and the languages we must separate are mostly split by script and a few letters.
"""

from __future__ import annotations

import re

_UK = re.compile(r"[іїєґ]", re.IGNORECASE)
_KK = re.compile(r"[әғқңөұүһ]", re.IGNORECASE)
_CYR = re.compile(r"[а-яё]", re.IGNORECASE)
_HAN = re.compile(r"[\u4e00-\u9fff]")
_LAT = re.compile(r"[a-z]", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_FUNCTION = {
    "en": {"the", "is", "my", "i", "you", "to", "and", "of", "it", "in", "for", "what", "how", "where", "can",
           "order", "please", "when", "do", "not", "have", "a", "with", "hello", "hi", "thanks", "why", "this",
           "no", "still", "after", "yet", "was", "been", "did", "your", "me", "we", "are", "an", "on", "at",
           "from", "but", "if", "will", "would", "got", "get", "refund", "delivery", "return", "that", "there"},
    "de": {"der", "die", "das", "und", "ist", "ich", "nicht", "mein", "meine", "wo", "wie", "bitte", "ein",
           "eine", "mit", "für", "bestellung", "hallo", "danke", "kann", "zu", "den", "habe"},
    "es": {"el", "la", "los", "las", "y", "es", "mi", "que", "de", "por", "pedido", "dónde", "donde", "cómo",
           "como", "hola", "gracias", "quiero", "un", "una", "con", "para", "no", "está", "esta", "funciona",
           "tengo", "puedo", "cuando", "cuándo", "llegó", "devolución", "pero", "muy", "ya", "todavía", "me"},
    "tr": {"ve", "bir", "bu", "benim", "siparişim", "nerede", "nasıl", "merhaba", "teşekkürler", "için",
           "değil", "ne", "mi", "mı", "ile", "ben", "sipariş", "lütfen", "iade", "var", "yok"},
}
# Russian typed in Latin letters («gde moi zakaz», «skolko stoit dostavka»): answered from the Russian articles.
_TRANSLIT_RU = {"gde", "moi", "moy", "moya", "zakaz", "zakaza", "skolko", "skoka", "dostavka", "dostavku",
                "vozvrat", "mozhno", "kak", "kakoi", "kakoy", "kakaya", "pochemu", "kogda", "privet", "zdravstvuite",
                "zdravstvuyte", "spasibo", "ne", "net", "est", "chto", "nuzhno", "hochu", "khochu", "eto", "uzhe",
                "dengi", "vernut", "status", "tovar", "kuryer", "kurier", "stoit", "dney", "dnei", "prishel",
                "prishol", "pochta", "magazin", "oplata", "oplatit", "skidka", "promokod", "garantiya", "remont"}
_TR_CHARS = re.compile(r"[ğışİ]")
_DE_CHARS = re.compile(r"[äöüß]", re.IGNORECASE)
_ES_CHARS = re.compile(r"[ñ¿¡áéíóú]", re.IGNORECASE)
LANGUAGES = ("ru", "en", "uk", "kk", "de", "es", "zh", "tr")


def detect_language(text: str, default: str = "ru") -> str:
    if _HAN.search(text):
        return "zh"
    cyr = len(_CYR.findall(text))
    lat = len(_LAT.findall(text))
    if cyr == 0 and lat == 0:
        return default
    if cyr >= lat:
        if _KK.search(text):
            return "kk"
        if _UK.search(text):
            return "uk"
        return "ru"
    words = [w.lower() for w in _WORD.findall(text)]
    scores = {lang: sum(1 for w in words if w in vocab) for lang, vocab in _FUNCTION.items()}
    translit = sum(1 for w in words if w in _TRANSLIT_RU and w not in _FUNCTION["en"])
    if translit >= 2 and translit > scores["en"]:
        return "ru"
    if _TR_CHARS.search(text):
        scores["tr"] += 2
    if _DE_CHARS.search(text):
        scores["de"] += 2
    if _ES_CHARS.search(text):
        scores["es"] += 2
    best = max(scores, key=lambda k: scores[k])
    return best if scores[best] > 0 else "en"
