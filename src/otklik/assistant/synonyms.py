"""Query expansion for the lexical retriever: colloquial Russian of an appliance/electronics store and
transliterated Russian ("gde moi zakaz") mapped to the words a knowledge base article uses.

Hand-written for the domain (not from any evaluation question): each line is a group of words that mean the
same thing to a customer; a query word found in a group adds the group's other stems to the BM25 query as
a bonus (they never count in the score's normaliser, so an expansion can only help an article that has them).
"""

from __future__ import annotations

from functools import lru_cache

from otklik.platform.text import stem, tokens

GROUPS: tuple[str, ...] = (
    # things
    "стиралка стиральная машинка",
    "посудомойка посудомоечная посудомоечную",
    "холодос холодильник морозилка",
    "пылик пылесос",
    "телек телевизор тв",
    "микроволновка микроволновая свч",
    "кофеварка кофемашина кофемашинка",
    "варочная плита панель индукция индукционная",
    "ноут ноутбук",
    "комп компьютер",
    "смарт смартфон телефон мобильник",
    # delivery
    "привезти привезёте привезете привезли привезут привоз доставка доставить доставите доставят курьер",
    "опоздал опаздывает задерживается задержка просрочили",
    "подмосковье область",
    "отследить отслеживать трек трек-номер статус",
    "самовывоз забрать шоурум",
    "пвз пункт выдачи постамат",
    # returns, quality
    "вернуть возврат сдать сдам вернуть",
    "поменять обменять обмен замена заменить",
    "деньги средства бабки возврат",
    "сломался сломалась сломан неисправен неисправность брак дефект поломка",
    "царапина вмятина скол разбит треснул повреждён поврежден повреждение",
    "некомплект комплект комплектация не хватает недостаёт",
    "починить отремонтировать ремонт сервис",
    "гарантия гарантийный гарантийка",
    "установить установка подключить подключение монтаж",
    "собрать сборка сборщик",
    "утилизация вывоз трейд-ин старую",
    "инструкция мануал руководство видео видеообзор",
    "накипь очистка декальцинация",
    # money
    "рассрочка частями кредит сплит долями",
    "оплата оплатить заплатить",
    "карта картой карточка",
    "списали списалось снялись дважды",
    "чек квитанция документы",
    "промокод промик купон",
    "сертификат подарочный",
    "скидка акция распродажа",
    "бонусы баллы кешбэк кэшбэк",
    "цена стоимость стоит подешевел подешевело дешевле",
    # account, company
    "лк кабинет аккаунт акк профиль",
    "рассылка смс спам отписаться",
    "юрлицо юрлица ип организация компания",
    "упд счёт-фактура ндс эдо закрывающие",
    "телефон номер позвонить горячая",
    "режим часы открыты",
    "жалоба претензия пожаловаться отзыв",
    "оригинал подделка оригинальный",
    "наличие есть в наличии предзаказ",
)

_TRANSLIT = (("shch", "щ"), ("sch", "щ"), ("yo", "ё"), ("zh", "ж"), ("kh", "х"), ("ch", "ч"), ("sh", "ш"),
             ("ts", "ц"), ("yu", "ю"), ("ya", "я"), ("iu", "ю"), ("ia", "я"), ("a", "а"), ("b", "б"), ("v", "в"),
             ("g", "г"), ("d", "д"), ("e", "е"), ("z", "з"), ("i", "и"), ("j", "й"), ("k", "к"), ("l", "л"),
             ("m", "м"), ("n", "н"), ("o", "о"), ("p", "п"), ("r", "р"), ("s", "с"), ("t", "т"), ("u", "у"),
             ("f", "ф"), ("h", "х"), ("c", "ц"), ("y", "ы"), ("w", "в"), ("x", "кс"), ("q", "к"))


def translit(word: str) -> str:
    """Latin spelling of a Russian word back to Cyrillic ("zakaz" -> "заказ"); lossy, for matching only."""
    out, i = [], 0
    w = word.lower()
    while i < len(w):
        for lat, cyr in _TRANSLIT:
            if w.startswith(lat, i):
                out.append(cyr)
                i += len(lat)
                break
        else:
            out.append(w[i])
            i += 1
    return "".join(out)


@lru_cache(maxsize=1)
def _table() -> dict[str, frozenset[str]]:
    table: dict[str, set[str]] = {}
    for group in GROUPS:
        stems = {stem(w) for w in tokens(group)}
        for s in stems:
            table.setdefault(s, set()).update(stems - {s})
    return {k: frozenset(v) for k, v in table.items()}


def expand(query_stems: list[str]) -> set[str]:
    """Stems to add to a query (never the query's own)."""
    table = _table()
    extra: set[str] = set()
    for s in query_stems:
        extra |= table.get(s, frozenset())
    return extra - set(query_stems)
