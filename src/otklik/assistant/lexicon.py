"""Hand-written lexicons with morphology-aware matching (roots and prefixes, not exact words), so
«заебали», «нахуя», «распиздяи», «идиоты», «f*cking» are caught and «себе», «страховка», «психолог» are not.

Used by abuse detection (a feature of the trained model and a hard rule), by legal-threat and
"give me a person" detection, and by urgency. Everything here is written for this project (no third-party list).
"""

from __future__ import annotations

import re
from typing import Any

# Obscene roots (Russian mat), matched inside a word after an optional verbal prefix.
_MAT = re.compile(
    r"(?:(?<![а-яё])[а-яё]{0,6}?(?:(?<!стра)(?<!пси)ху[йяеёию]|пизд|пёзд)|"
    r"(?<![а-яё])(?:за|на|от|у|вы|до|при|по|раз|рас|съ|об|пере|про|из|в|не|под)?"
    r"[её]б(?:а[тлнвк]|у[тлч]?|л[аои]|н[уеи]|ись|ет|ут|ок|ан|ош|ищ)|"
    r"(?<![а-яё])(?:бля[дтх]?|блят|муд[аои][кчл]|пид[оа]р|гандон|долбо[её]?б|залуп|шлюх))",
    re.IGNORECASE,
)
# Insults addressed to people (stems at the start of a word).
_INSULT = re.compile(
    r"(?<![а-яёa-z])(?:сук[аиуе]?(?![а-яё])|сучк|сучар|мраз[ьио]|твар[ьиея](?![а-яё])|ублюд|дебил|идиот|кретин|"
    r"придур|уро[дж](?![а-яё]*(?:ств|лив))|урод|дерьм|говн|чмо|лох(?:и|ов|и)?(?![а-яё])|даун|дура(?:к|чк|ки)?"
    r"(?![а-яё])|дуры(?![а-яё])|тупы[еxх]|тупая|тупой|скотин|козл[ыа]|козёл|козел|шарлатан|мошенник|ворюг|"
    r"жулик|свинь[ия]|убл|гнид|падл|сволоч|отстой|ничтожеств)",
    re.IGNORECASE,
)
_EN = re.compile(
    r"\b(?:f+u+c*k+\w*|f\*+c?k\w*|sh[i1!]t\w*|bitch\w*|asshole\w*|bastard\w*|cunt\w*|dick(?:head)?s?|"
    r"idiots?|morons?|stupid|retard\w*|scam+ers?|crooks?|dumb)\b",
    re.IGNORECASE,
)

_LEGAL = re.compile(
    r"(?:(?<![а-яё])суд(?:ом|е|у|ы|ебн[а-яё]*)?(?![а-яё])|в\s+суд|(?<![а-яё])иск(?:ом|овое|овым)?(?![а-яё])|прокуратур|роспотребнадзор|"
    r"потребнадзор|юрист|адвокат|претензи[юяи]|жалоб[уаы]\s+в|заявлени[ея]\s+в\s+полиц|полици[юяи]|"
    r"защит[аеуы]\s+прав\s+потребител|зозпп|цб\s|центробанк|\blawyer|\bsue\b|\bcourt\b|\blegal action|"
    r"\blawsuit|\battorney|\bconsumer protection|\bpolice\b)",
    re.IGNORECASE,
)
_HUMAN = re.compile(
    r"(?:(?:живо(?:го|му|й)|реальн\w+|настоящ\w+)\s+(?:человек|оператор|сотрудник|специалист|менеджер)|"
    r"(?:позов\w+|дайте|переключ\w+|соедин\w+|позвать|хочу|нужен|нужна|можно)\s+"
    r"(?:(?:мне|бы|с|со|к|на|вашего|вашему|вашим|вашей|старшего|старшему|главного|другого|другому|живого|"
    r"живому|живой|вашу|нормального|нормальный|какого-нибудь|какой-нибудь)\s+){0,2}"
    r"(?:оператор|человек|менеджер|сотрудник|специалист|консультант|начальник|руководител)|"
    r"(?:с\s+)?(?:оператор(?:ом|а|у)?|человеком|менеджером|сотрудником)\s+(?:поговорить|связаться|пообщаться)|"
    r"(?:поговорить|связаться|пообщаться|общаться)\s+(?:с\s+)?(?:\w+\s+)?(?:человеком|оператором|менеджером|"
    r"сотрудником|живым)|не\s+(?:с\s+)?(?:бот|робот)|вы\s+(?:бот|робот)|"
    r"\b(?:human|real person|live agent|(?:an?|the)\s+agent|operator|representative|manager|someone real|"
    r"talk to (?:a |an )?(?:person|human|someone))\b)",
    re.IGNORECASE,
)
_URGENT = re.compile(
    r"(?:срочн|немедленн|сейчас\s+же|прямо\s+сейчас|как\s+можно\s+скорее|побыстрее|горит|до\s+сих\s+пор|"
    r"уже\s+\d+\s+(?:дн|недел|час|месяц)|сколько\s+(?:можно|ждать)|когда\s+уже|где\s+(?:мой|моя|мои)\s+|"
    r"верните\s+деньги|деньги\s+списал|списали\s+дважды|дважды\s+списал|не\s+пришл|не\s+работает|сломал|"
    r"\burgent|\basap\b|immediately|right now|still (?:not|hasn'?t|haven'?t)|charged twice|where is my)",
    re.IGNORECASE,
)


def profanity_hits(text: str) -> list[str]:
    lowered = text.lower().replace("ё", "е").replace("*", "")
    hits = [m.group(0) for m in _MAT.finditer(lowered)]
    hits += [m.group(0) for m in _INSULT.finditer(lowered)]
    hits += [m.group(0) for m in _EN.finditer(lowered)]
    return hits


def has_obscenity(text: str) -> bool:
    return bool(_MAT.search(text.lower().replace("ё", "е")) or _EN.search(text))


def legal_threat(text: str) -> bool:
    return bool(_LEGAL.search(text))


# A message that is nothing but the word: «оператор», «человека!», «live agent please».
_HUMAN_ALONE = re.compile(
    r"^\W*(?:позовите\s+|дайте\s+|нужен\s+|please\s+)?(?:оператор[аы]?|человек[аи]?|менеджер[аы]?|"
    r"специалист[аы]?|сотрудник[аи]?|живого|operator|human|agent|person)(?:\s+(?:пожалуйста|please))?\W*$",
    re.IGNORECASE)


def wants_human(text: str) -> bool:
    return bool(_HUMAN.search(text) or _HUMAN_ALONE.match(text))


def urgency_cues(text: str) -> int:
    """How many urgency cues a message carries: words, repeated ?/!, shouting."""
    n = len(_URGENT.findall(text))
    if re.search(r"[?!]{3,}", text):
        n += 1
    letters = [c for c in text if c.isalpha()]
    if len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) > 0.7:
        n += 1
    return n


def lexical_features(texts: list[str]) -> Any:
    """Dense extra features for the trained models: [obscene, insult count, legal, human, urgency cues,
    !/? runs, caps share]."""
    import numpy as np

    out = np.zeros((len(texts), 7), dtype=np.float32)
    for i, text in enumerate(texts):
        lowered = text.lower().replace("ё", "е").replace("*", "")
        letters = [c for c in text if c.isalpha()]
        out[i] = [
            1.0 if (_MAT.search(lowered) or _EN.search(lowered)) else 0.0,
            min(3, len(_INSULT.findall(lowered))) / 3,
            1.0 if _LEGAL.search(text) else 0.0,
            1.0 if _HUMAN.search(text) else 0.0,
            min(3, urgency_cues(text)) / 3,
            1.0 if re.search(r"[?!]{2,}", text) else 0.0,
            (sum(c.isupper() for c in letters) / len(letters)) if len(letters) >= 8 else 0.0,
        ]
    return out
