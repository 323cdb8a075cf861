"""How long a customer says something has taken, from their own words: «уже 50 дней», «больше месяца»,
«две недели назад сдал в ремонт», «с 1 марта», «for 3 weeks». Used to flag a consumer-law term that the
customer's own account already puts past its end (a warranty repair past 45 days, a refund past 10), and to
pre-fill the case's date for the agent to confirm. Only an explicit figure or date counts: no cue of elapsed
time («уже», «прошло», «назад», «жду», «since», «ago», …) or no figure → None, never a guess.
"""

from __future__ import annotations

import datetime as dt
import re

_UNIT_DAYS = {"д": 1, "с": 1, "н": 7, "м": 30}  # день/сутки, неделя, месяц (30 days: the customer's rough count)
_WORD_NUMBERS = {
    "один": 1, "одну": 1, "одна": 1, "два": 2, "две": 2, "три": 3, "четыре": 4, "пять": 5, "шесть": 6, "семь": 7,
    "восемь": 8, "девять": 9, "десять": 10, "пару": 2, "пара": 2, "полтора": 1.5, "полторы": 1.5,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "a": 1, "an": 1, "a couple of": 2,
}
_NUM = r"(\d{1,3}|" + "|".join(sorted((re.escape(w) for w in _WORD_NUMBERS), key=len, reverse=True)) + r")"
_RU = re.compile(r"(?<![\w-])(?:" + _NUM + r"\s*(?:-?(?:х|ти|ми|ух|ёх|ех))?\s+)?"
                 r"(дн(?:я|ей|ь)|день|сут(?:ок|ки)|недел[ьюиея]|месяц(?:а|ев)?|мес\.?)(?![\w])", re.IGNORECASE)
_EN = re.compile(r"(?<![\w-])" + _NUM + r"\s+(days?|weeks?|months?)\b", re.IGNORECASE)
_EN_UNIT = {"d": 1, "w": 7, "m": 30}
_CUE = re.compile(r"(?<![\w])(?:уже|прошл[оаи]?|прош[её]л|больше|более|свыше|назад|жд[уёе]м?|ждали|ожида[юе]м?|"
                  r"длится|тянется|находится|висит|не\s+могу\s+получить|с\s+тех\s+пор|already|ago|waiting|"
                  r"waited|since|for\s+(?:over|more\s+than)|over|more\s+than)(?![\w])", re.IGNORECASE)
_MONTHS = {"январ": 1, "феврал": 2, "март": 3, "апрел": 4, "ма": 5, "июн": 6, "июл": 7, "август": 8, "сентябр": 9,
           "октябр": 10, "ноябр": 11, "декабр": 12}
_DATE_WORDS = re.compile(r"(?<![\w])(?:с|от|since|on)\s+(\d{1,2})\s+(январ[яе]|феврал[яе]|марта?|апрел[яе]|ма[яе]|"
                         r"июн[яе]|июл[яе]|августа?|сентябр[яе]|октябр[яе]|ноябр[яе]|декабр[яе])(?:\s+(\d{4}))?",
                         re.IGNORECASE)
_DATE_DIGITS = re.compile(r"(?<![\w.])(?:с|от|since)\s+(\d{1,2})\.(\d{1,2})(?:\.(\d{2}|\d{4}))?(?![\d.])",
                          re.IGNORECASE)


def _number(raw: str | None) -> float:
    if raw is None:
        return 1
    raw = raw.lower()
    return float(raw) if raw.isdigit() else float(_WORD_NUMBERS.get(raw, 1))


def _date(day: int, month: int, year: int | None, today: dt.date) -> dt.date | None:
    try:
        when = dt.date(year if year is not None else today.year, month, day)
    except ValueError:
        return None
    if year is None and when > today:  # «с 20 декабря» said in January: last year
        when = when.replace(year=when.year - 1)
    return when if when <= today else None


def elapsed_days(text: str, today: dt.date) -> int | None:
    """The longest elapsed time the message states, in days; None when it states none."""
    if not text:
        return None
    found: list[float] = []
    for m in _DATE_WORDS.finditer(text):
        month = next(v for k, v in _MONTHS.items() if m.group(2).lower().startswith(k))
        when = _date(int(m.group(1)), month, int(m.group(3)) if m.group(3) else None, today)
        if when is not None:
            found.append((today - when).days)
    for m in _DATE_DIGITS.finditer(text):
        year = int(m.group(3)) if m.group(3) else None
        if year is not None and year < 100:
            year += 2000
        when = _date(int(m.group(1)), int(m.group(2)), year, today)
        if when is not None:
            found.append((today - when).days)
    if _CUE.search(text):
        for m in _RU.finditer(text):
            unit = m.group(2).lower()
            found.append(_number(m.group(1)) * _UNIT_DAYS[unit[0]])
        for m in _EN.finditer(text):
            found.append(_number(m.group(1)) * _EN_UNIT[m.group(2).lower()[0]])
    return int(max(found)) if found else None
