/* The phrase checker in the reply box (issue 14 §3): as the agent types (debounced, no round trip per key), the
 * phrases agents must never say or should avoid are listed under the box, underlined, with the reason and a
 * one-click replacement by an alternative; tone hints for an upset customer and a bare «нет»; a «never» phrase
 * asks «send anyway?» before sending (the server re-checks every reply: a 409 marked phrase_never asks too).
 * The rules come compiled from /api/v1/phrase-rules/compiled (one expression, the same Python checks with).
 * Text only ever reaches the page through textContent. `window.OtklikPhrases` is the pure checker (bench too). */
(function () {
  "use strict";

  /* -- the checker (no DOM) ------------------------------------------------------------------------- */
  function normalise(text) {
    var low = text.toLowerCase();
    if (low.length !== text.length) {  // keep every offset: a letter whose lowercase is longer stays as it is
      var out = "";
      for (var i = 0; i < text.length; i++) {
        var l = text[i].toLowerCase();
        out += l.length === 1 ? l : text[i];
      }
      low = out;
    }
    return low.replace(/ё/g, "е").replace(/’/g, "'");
  }

  function compile(compiled) {
    var re = new RegExp(compiled.pattern.source, compiled.pattern.flags);
    var groups = compiled.pattern.groups, rules = compiled.rules || {};
    return {
      check: function (text) {
        var norm = normalise(text), out = [], m;
        re.lastIndex = 0;
        while ((m = re.exec(norm)) !== null) {
          if (!m[0].length) { re.lastIndex++; continue; }
          var g = 1;
          while (g < m.length && m[g] === undefined) g++;
          var id = groups[g - 1], rule = rules[id] || {};
          out.push({ rule_id: id, start: m.index, end: m.index + m[0].length,
                     phrase: text.slice(m.index, m.index + m[0].length), severity: rule.severity || "avoid",
                     reason: rule.reason || "", alternatives: rule.alternatives || [] });
        }
        return out;
      }
    };
  }

  var BARE_NO = /^[^\p{L}\p{N}]*(?:нет|не-а|неа|no|nope)[^\p{L}\p{N}]*$/iu;
  var EMPATHY = /(?:^|[^\p{L}\p{N}_])(?:понима|сожале|извин|прос\p{L}+ прощени|неприятн|сочувств|sorry|apolog|understand|frustrat|regret)/iu;

  function languageOf(text) {
    var cyr = (text.slice(0, 400).match(/[а-яё]/gi) || []).length;
    var lat = (text.slice(0, 400).match(/[a-z]/gi) || []).length;
    return cyr >= lat ? "ru" : "en";
  }

  // the same test as guardrails.phrases.unanswered(): the customer asked, the reply shares no content word
  var QUESTION_WORD = /^[^\p{L}\p{N}]*(?:как\p{L}*|когда|где|куда|откуда|почему|зачем|сколько|что|чем|какой|какая|какое|какие|каким\p{L}*|можно|есть\s+ли|будет\s+ли|how|when|where|why|what|which|can|could|is|are|do|does|will|would)(?![\p{L}\p{N}_])/iu;
  var STOP = {};
  ("здравствуйте добрый день вечер утро пожалуйста спасибо скажите подскажите можно меня мне мой моя мои ваш ваша " +
   "ваши вашей вашего было будет есть этот этого эта это очень уже если когда только просто также тоже который " +
   "которая которые hello please thanks thank could would should there their your with have this that what when " +
   "where which about from will just also").split(" ").forEach(function (w) { STOP[w] = true; });
  function stems(text) {
    var out = {};
    (text.slice(0, 1000).match(/\p{L}{4,}/gu) || []).forEach(function (w) {
      w = w.toLowerCase();
      if (!STOP[w]) out[w.replace(/ё/g, "е").slice(0, 5)] = true;
    });
    return out;
  }
  function unanswered(question, reply) {
    var q = (question || "").trim(), r = (reply || "").trim();
    if (r.length < 15 || !q || /\d/.test(r)) return false;
    if (q.indexOf("?") < 0 && !QUESTION_WORD.test(q)) return false;
    var asked = stems(q), said = stems(r), keys = Object.keys(asked);
    return keys.length > 0 && !keys.some(function (k) { return said[k]; });
  }

  function toneHints(compiled, text) {
    var lang = languageOf(text), trimmed = text.trim();
    if (!trimmed) return [];
    var hints = [];
    if (BARE_NO.test(trimmed)) hints.push({ code: "tone_bare_no", alternatives: (compiled.no_alternatives || {})[lang] || [] });
    else if (compiled.upset && !EMPATHY.test(text.slice(0, 300))) {
      hints.push({ code: "tone_empathy", alternatives: (compiled.openings || {})[lang] || [] });
    }
    var replyForm = document.getElementById("reply-form");
    var question = replyForm ? replyForm.dataset.lastQuestion : "";
    if (question && unanswered(question, text)) hints.push({ code: "tone_unanswered", alternatives: [], question: question });
    return hints;
  }

  window.OtklikPhrases = { compile: compile, normalise: normalise, toneHints: toneHints, unanswered: unanswered };

  /* -- the reply box -------------------------------------------------------------------------------- */
  var form = document.getElementById("reply-form");
  var box = document.getElementById("reply-text");
  var thread = document.getElementById("conversation");
  if (!form || !box || !thread) return;

  var lang = document.body.dataset.lang || "ru";
  var T = {
    ru: { never: "Так не говорят с клиентом", avoid: "Лучше сказать иначе", replace: "Заменить на «%s»",
          insert: "Вставить «%s»", empathy: "Клиент расстроен или торопится: начните с сочувствия.",
          bareNo: "Голое «нет» звучит резко: объясните причину и предложите, что можно сделать.",
          unanswered: "Клиент спросил: «%s». Ответ на это есть?",
          confirm: "В ответе есть фразы, которые клиенту не говорят:\n%s\n\nВсё равно отправить?",
          title: "Проверка фраз" },
    en: { never: "Never say this to a customer", avoid: "Better said otherwise", replace: "Replace with “%s”",
          insert: "Insert “%s”", empathy: "The customer is upset or in a hurry: open with empathy.",
          bareNo: "A bare “no” sounds curt: say why, and what you can do instead.",
          unanswered: "The customer asked: “%s”. Does the reply answer it?",
          confirm: "The reply says what we never say to a customer:\n%s\n\nSend anyway?",
          title: "Phrase check" }
  }[lang] || {};
  function fmt(s, v) { return s.replace("%s", v); }

  var list = document.createElement("ul");
  list.id = "phrase-hints";
  list.className = "phrase-hints";
  list.setAttribute("aria-label", T.title);
  list.setAttribute("aria-live", "polite");
  list.hidden = true;
  var anchor = document.getElementById("reply-unresolved") || box;
  anchor.parentNode.insertBefore(list, anchor.nextSibling);

  var compiled = null, checker = null, current = [];
  var ack = null;  // the hidden acknowledge input, present only while the agent confirmed this text

  fetch("/api/v1/phrase-rules/compiled?conversation_id=" + encodeURIComponent(thread.dataset.conversationId),
        { credentials: "same-origin" })
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (data) {
      if (!data) return;
      compiled = data;
      checker = compile(data);
      list.dataset.ready = "1";
      run();
    }).catch(function () { /* no rules: the server still checks on send */ });

  function mode() {
    var checked = form.querySelector('input[name="mode"]:checked');
    return checked ? checked.value : "reply";
  }

  function setText(value, caret) {
    box.value = value;
    box.focus();
    box.setSelectionRange(caret, caret);
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function replace(match, alternative) {
    var text = box.value;
    if (text.slice(match.start, match.end) !== match.phrase) { run(); return; }  // the text moved on
    setText(text.slice(0, match.start) + alternative + text.slice(match.end), match.start + alternative.length);
  }

  function button(label, onClick) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "link-button phrase-fix";
    b.textContent = label;
    // keep the focus in the reply box: a blur reflows the composer and would move the button under the pointer
    b.addEventListener("mousedown", function (e) { e.preventDefault(); });
    b.addEventListener("click", onClick);
    return b;
  }

  function draw(matches, hints) {
    list.replaceChildren();
    matches.forEach(function (m, i) {
      var li = document.createElement("li");
      li.className = "phrase-hint phrase-" + m.severity;
      li.dataset.ruleId = m.rule_id;
      li.id = "phrase-hint-" + i;
      var mark = document.createElement("mark");
      mark.className = "phrase-mark";
      mark.textContent = m.phrase;
      var label = document.createElement("strong");
      label.textContent = (m.severity === "never" ? T.never : T.avoid) + ": ";
      var reason = document.createElement("span");
      reason.className = "phrase-reason";
      reason.textContent = " — " + m.reason + " ";
      li.append(label, mark, reason);
      m.alternatives.slice(0, 3).forEach(function (alt) {
        li.appendChild(button(fmt(T.replace, alt), function () { replace(m, alt); }));
      });
      list.appendChild(li);
    });
    hints.forEach(function (h) {
      var li = document.createElement("li");
      li.className = "phrase-hint phrase-tone";
      li.dataset.code = h.code;
      var span = document.createElement("span");
      span.textContent = (h.code === "tone_empathy" ? T.empathy : h.code === "tone_unanswered" ?
                          fmt(T.unanswered, h.question.slice(0, 120)) : T.bareNo) + " ";
      li.appendChild(span);
      h.alternatives.slice(0, 2).forEach(function (alt) {
        li.appendChild(button(fmt(T.insert, alt), function () {
          if (h.code === "tone_empathy") setText(alt + " " + box.value, alt.length + 1);
          else setText(alt, alt.length);
        }));
      });
      list.appendChild(li);
    });
    list.hidden = !list.childNodes.length;  // a clean reply shows nothing
  }

  function run() {
    if (!checker || mode() !== "reply") { current = []; draw([], []); return; }
    var text = box.value;
    current = checker.check(text);
    draw(current, toneHints(compiled, text));
    if (ack && ack.dataset.text !== text) { ack.remove(); ack = null; }  // a confirmation is for that text only
  }

  // the unsent text is kept on the server as the agent's draft (a reload or another device brings it back)
  var saved = box.value, draftTimer = null;
  function saveDraft() {
    if (box.value === saved) return;
    var text = box.value, meta = document.querySelector('meta[name="csrf-token"]');
    var body = new URLSearchParams();
    body.set("text", text);
    fetch("/ui/conversations/" + encodeURIComponent(thread.dataset.conversationId) + "/draft", {
      method: "POST", credentials: "same-origin", body: body,
      headers: { "X-CSRF-Token": meta ? meta.content : "" }
    }).then(function (r) { if (r.ok) saved = text; }).catch(function () { /* kept in the box anyway */ });
  }

  var timer = null;
  box.addEventListener("input", function () {
    clearTimeout(timer); timer = setTimeout(run, 150);
    clearTimeout(draftTimer); draftTimer = setTimeout(saveDraft, 1000);
  });
  form.querySelectorAll('input[name="mode"]').forEach(function (r) { r.addEventListener("change", run); });

  function acknowledge() {
    if (!ack) {
      ack = document.createElement("input");
      ack.type = "hidden";
      ack.name = "acknowledge";
      ack.value = "phrase_never";
      form.appendChild(ack);
    }
    ack.dataset.text = box.value;
  }

  function askToSend(phrases) {
    return window.confirm(fmt(T.confirm, phrases.map(function (p) { return "«" + p + "»"; }).join(", ")));
  }

  form.addEventListener("htmx:confirm", function (e) {
    if (e.defaultPrevented || mode() !== "reply") return;
    if (checker) current = checker.check(box.value);
    var never = current.filter(function (m) { return m.severity === "never"; });
    if (!never.length || (ack && ack.dataset.text === box.value)) return;
    if (askToSend(never.map(function (m) { return m.phrase; }))) acknowledge();
    else { e.preventDefault(); box.focus(); }
  });

  // the server found a «never» phrase the page did not know (a rule changed a moment ago): ask, then resend
  form.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    if (!xhr || xhr.status !== 409 || xhr.getResponseHeader("X-Otklik-Problem") !== "phrase_never") return;
    e.stopPropagation();  // no error toast: the question below says it
    if (window.confirm(xhr.responseText + "\n\n" + fmt(T.confirm, "").split("\n").pop())) {
      acknowledge();
      if (form.requestSubmit) form.requestSubmit(); else htmx.trigger(form, "submit");
    }
  });

  document.body.addEventListener("otklik:sent", function () {
    clearTimeout(draftTimer);
    saved = "";  // the server dropped the draft with the send
    if (ack) { ack.remove(); ack = null; }
    run();
  });
})();
