"""The phrase checker's engine (issue 14 §3): every shipped rule fires on its examples and not on its near
misses, phrases are whole words (never inside another word), the page's expression finds what Python finds,
and the assistant's own fixed texts and the shipped help articles it answers from carry no «never» phrase."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from otklik.guardrails import phrases

RULES = phrases.shipped_rules()


def test_the_shipped_list_is_ru_and_en_with_at_least_200_rules():
    assert len(RULES) >= 200
    assert {r.language for r in RULES} == {"ru", "en"}
    assert all(r.severity in phrases.SEVERITIES and r.reason and r.alternatives and r.examples for r in RULES)


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_each_shipped_rule_fires_on_its_examples_and_not_on_its_near_misses(rule):
    engine = phrases.shipped_engine()
    for example in rule.examples:
        found = [m for m in engine.check(example) if m.rule_id == rule.id]
        assert found, f"{rule.id} should fire on {example!r}: {[m.rule_id for m in engine.check(example)]}"
        assert example[found[0].start:found[0].end] == found[0].phrase
    alone = phrases.Engine([rule])  # and alone, so a longer neighbour cannot hide a miss
    for example in rule.examples:
        assert alone.check(example), f"{rule.id} alone should fire on {example!r}"
    for near in rule.near_misses:
        assert not alone.check(near), f"{rule.id} must not fire on {near!r}"


@pytest.mark.parametrize("text", [
    "Вы задолжали за доставку.", "Новый заказ уже в пути.", "Но-шпа есть в наличии.", "Ноутбук приедет завтра.",
    "Это не только быстро, но и бесплатно.", "Я узнаю у склада и напишу.", "Мы должны вернуть деньги за 10 дней.",
    "The butter dish is back.", "Not only fast but also free.", "We must refund you.", "You mustered the courage.",
    "Незнаю-кафе открыто", "Заказ доставлен: спасибо, что выбрали нас!", "",
])
def test_no_hit_inside_other_words_or_in_clean_replies(text):
    assert phrases.check(text) == []


def test_matches_give_offsets_in_the_original_text_with_case_and_yo():
    text = "Здравствуйте! ВЫ ДОЛЖНЫ прислать чек. Я не знаю, где посылка; но мы ищем. Всё ещё ждём ёлку."
    found = {m.rule_id: m for m in phrases.check(text)}
    assert found["ru.must.you"].phrase == "ВЫ ДОЛЖНЫ"
    assert found["ru.dontknow.i_dont_know"].phrase == "Я не знаю"
    assert found["ru.but.no"].phrase == "но" and found["ru.but.no"].severity == "avoid"
    assert text[found["ru.must.you"].start:found["ru.must.you"].end] == "ВЫ ДОЛЖНЫ"


def test_language_filter_and_longest_phrase_first():
    text = "Вы должны были проверить. You must sign."
    assert [m.rule_id for m in phrases.check(text, language="en")] == ["en.must.you_must"]
    assert [m.phrase for m in phrases.check(text, language="ru")] == ["Вы должны"]


@pytest.mark.parametrize("phrase,error", [
    ("", "empty"), ("(вы|ты", "bracket"), ("вы <script>", "only"), ("должн**", "too many"), ("x" * 300, "at most"),
    ("* вы", "starts"),
])
def test_a_phrase_the_language_cannot_read_says_why(phrase, error):
    with pytest.raises(phrases.PhraseError, match=error):
        phrases.check_phrase(phrase)


def test_the_page_expression_is_valid_javascript_shaped_and_names_every_group():
    js = phrases.shipped_engine().js_pattern()
    assert js["flags"] == "gmu" and r"\p{L}" in js["source"] and r"\w" not in js["source"]
    source = js["source"].replace(f"[{phrases.CLAUSE_MARKS}]", "[]")  # a literal ( in the clause marks
    groups = len(re.findall(r"\((?!\?)", source))
    assert groups == len(js["groups"])


def test_tone_hints():
    assert [h["code"] for h in phrases.tone_hints("Нет.", upset=False)] == ["tone_bare_no"]
    assert [h["code"] for h in phrases.tone_hints("no", upset=True, language="en")] == ["tone_bare_no"]
    assert [h["code"] for h in phrases.tone_hints("Заказ приедет завтра.", upset=True)] == ["tone_empathy"]
    assert phrases.tone_hints("Понимаю, как это неприятно. Заказ приедет завтра.", upset=True) == []
    assert phrases.tone_hints("Заказ приедет завтра.", upset=False) == []
    assert phrases.tone_hints("Нет проблем, поменяем.", upset=False) == []


def _assistant_texts() -> list[str]:
    from otklik.assistant import pipeline, service

    texts: list[str] = []
    for table in (service.DEFAULT_OUT_OF_HOURS, service.HANDOFF_ACK, service.BOT_INTRO, pipeline.CLARIFY,
                  pipeline.FRIENDLY_OPENERS, pipeline.MORE):
        for value in table.values():
            texts.extend(value if isinstance(value, tuple) else [value])
    return texts


def test_the_assistants_own_texts_and_the_shipped_articles_say_no_never_phrase():
    texts = _assistant_texts()
    kb = Path(phrases.__file__).parent.parent / "knowledge" / "data"
    for name in ("store_kb_ru.jsonl", "clinic_kb_ru.jsonl"):
        for line in (kb / name).read_text(encoding="utf-8").splitlines():
            article = json.loads(line)
            texts.append(f"{article['title']}\n{article['body']}")
    assert len(texts) > 50
    never = [(m.rule_id, t[:60]) for t in texts for m in phrases.check(t) if m.severity == "never"]
    assert never == []
    # every fixed text of the bot itself is clean of «avoid» phrases too
    assert [m.rule_id for t in _assistant_texts() for m in phrases.check(t)] == []


def test_every_process_that_sends_replies_registers_the_phrase_check():
    """The web app imports the phrase API; the worker (`otklik worker`: macros, rules, the assistant) imports the
    app's module for its channels — either way the check is there, in a fresh interpreter."""
    import subprocess
    import sys

    code = ("from otklik.app import load_channels; from otklik.conversations import reply_checks; "
            "print(sorted(reply_checks._content_checks))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "'phrases'" in out.stdout
    import inspect

    from otklik import cli

    assert "from otklik.app import" in inspect.getsource(cli.cmd_worker)
