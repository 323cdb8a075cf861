"""The phrase checker in a real browser (issue 14 §3): typing a «never» phrase underlines it under the reply box
with the reason, one click replaces it by an alternative, a clean reply shows nothing, sending a «never» phrase
asks for confirmation (cancel keeps it, OK sends it acknowledged), and customer text stays text. Screenshot:
artifacts/screenshots/phrase-checker.png."""

from __future__ import annotations

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot


def _messages(live_server, ws, cid):
    return httpx.get(f"{live_server}/api/v1/conversations/{cid}/messages", headers=ws.agent,
                     timeout=10).json()["items"]


def test_never_phrase_is_underlined_replaced_in_one_click_and_confirmed_before_sending(new_page, live_server):
    ws = make_workspace("e2ephr")
    cid = post_inbound(live_server, ws, text="<img src=x onerror=alert(1)> Где мой заказ?",
                       customer_name="Анна")["conversation_id"]
    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    page.wait_for_selector("#phrase-hints[data-ready='1']", state="attached")
    box = page.locator("#reply-text")

    box.fill("Здравствуйте! Новый заказ уже в пути.")  # clean (and «новый» is not «но»): nothing shown
    page.wait_for_timeout(400)
    assert page.locator("#phrase-hints").is_hidden()

    box.fill("Здравствуйте! Вы должны были проверить товар при курьере.")
    hint = page.wait_for_selector("#phrase-hints li.phrase-never")
    assert hint.get_attribute("data-rule-id") == "ru.must.you"
    assert page.locator("#phrase-hints .phrase-mark").first.inner_text() == "Вы должны"
    decoration = page.eval_on_selector("#phrase-hints .phrase-mark", "e => getComputedStyle(e).textDecorationLine")
    assert "underline" in decoration
    assert "приказ" in hint.inner_text()
    screenshot(page, "phrase-checker")
    page.click("#phrase-hints li.phrase-never .phrase-fix >> nth=0")
    assert box.input_value() == "Здравствуйте! Рекомендуем… были проверить товар при курьере."
    page.wait_for_function("!document.querySelector('#phrase-hints li.phrase-never')")

    # a «never» phrase asks before sending: cancel keeps the text, OK sends it (acknowledged)
    box.fill("Это не ко мне, пишите в доставку.")
    page.wait_for_selector("#phrase-hints li.phrase-never")
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.click("#reply-send")
    page.wait_for_timeout(500)
    assert asked and "не ко мне" in asked[0]
    assert box.input_value() == "Это не ко мне, пишите в доставку."
    assert not [m for m in _messages(live_server, ws, cid) if m["direction"] == "outbound"]
    page.once("dialog", lambda d: d.accept())
    page.click("#reply-send")
    page.wait_for_function("document.getElementById('reply-text').value === ''")
    sent = [m for m in _messages(live_server, ws, cid) if m["direction"] == "outbound"]
    assert [m["body_text"] for m in sent] == ["Это не ко мне, пишите в доставку."]
    # «avoid» only hints: sent with no question; then the list is empty again
    box.fill("Понимаю, но срок прошёл.")
    page.wait_for_selector("#phrase-hints li.phrase-avoid")
    page.click("#reply-send")
    page.wait_for_function("document.getElementById('reply-text').value === ''")
    assert page.locator("#phrase-hints").is_hidden()
    assert page.evaluate("document.querySelectorAll('#thread img[src=x]').length") == 0


def test_an_unsent_draft_comes_back_after_a_reload_and_is_marked_again(new_page, live_server):
    ws = make_workspace("e2edraft")
    cid = post_inbound(live_server, ws, text="Где мой заказ?", customer_name="Олег")["conversation_id"]
    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    page.wait_for_selector("#phrase-hints[data-ready='1']", state="attached")
    with page.expect_response(lambda r: r.url.endswith(f"/ui/conversations/{cid}/draft")):
        page.locator("#reply-text").fill("Понятия не имею, где ваш заказ.")
    page.reload()
    page.wait_for_selector("#phrase-hints li.phrase-never")
    assert page.locator("#reply-text").input_value() == "Понятия не имею, где ваш заказ."
    assert page.locator("#phrase-hints li.phrase-never").get_attribute("data-rule-id") == "ru.dontknow.no_idea"


def test_the_page_finds_exactly_what_python_finds(new_page, live_server):
    """The page's expression (JavaScript flavour) and the server's (Python) agree on every shipped example, near
    miss and labelled reply: same rules, same offsets."""
    from pathlib import Path

    from otklik.guardrails import phrases

    engine = phrases.shipped_engine()
    texts = [t for r in engine.rules for t in (*r.examples, *r.near_misses)]
    for name in ("phrases_dev.tsv", "phrases_heldout.tsv"):
        path = Path(__file__).resolve().parents[2] / "bench" / "data" / name
        texts += [line.split("\t", 2)[2] for line in path.read_text(encoding="utf-8").splitlines()
                  if line and not line.startswith("#")]
    texts += ["ВЫ ДОЛЖНЫ! Ёлки, я НЕ ЗНАЮ", "Но-шпа; но нет", "Hold on — that’s not my job"]
    compiled = {"pattern": engine.js_pattern(), "rules": {r.id: r.as_dict() for r in engine.rules}}
    page = new_page()
    page.goto(live_server + "/login")
    page.add_script_tag(path=str(Path(phrases.__file__).resolve().parents[1] / "web" / "static" / "js" /
                                 "phrases.js"))
    got = page.evaluate("""([compiled, texts]) => {
        const checker = window.OtklikPhrases.compile(compiled);
        return texts.map(t => checker.check(t).map(m => [m.rule_id, m.start, m.end]));
    }""", [compiled, texts])
    want = [[[m.rule_id, m.start, m.end] for m in engine.check(t)] for t in texts]
    assert len(texts) > 900
    assert got == want


def test_a_phrase_the_page_did_not_know_is_caught_on_send_and_confirmed(new_page, live_server):
    """A rule added after the page loaded: the server's 409 phrase_never asks «send anyway?» in the page (no error
    toast), and OK resends it acknowledged."""
    ws = make_workspace("e2ephr2")
    cid = post_inbound(live_server, ws, text="Где посылка?", customer_name="Ира")["conversation_id"]
    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    page.wait_for_selector("#phrase-hints[data-ready='1']", state="attached")
    r = httpx.post(f"{live_server}/api/v1/phrase-rules", headers=ws.admin, timeout=10, json={
        "language": "ru", "phrase": "посылка потерял*", "severity": "never", "reason": "Не пугайте клиента.",
        "alternatives": ["Мы ищем посылку."]})
    assert r.status_code == 201, r.text
    page.locator("#reply-text").fill("Посылка потерялась.")
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.click("#reply-send")
    page.wait_for_function("document.getElementById('reply-text').value === ''")
    assert asked and "Не пугайте клиента" in asked[0]
    assert not page.locator(".toast.error").count()
    sent = [m for m in _messages(live_server, ws, cid) if m["direction"] == "outbound"]
    assert [m["body_text"] for m in sent] == ["Посылка потерялась."]
