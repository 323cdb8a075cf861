/* Otklik agent workspace: live updates over the WebSocket, presence, shortcuts, the reply box.
 * Plain JS, no build. Customer text only ever reaches the page through the server's escaped HTML
 * or through textContent here — never innerHTML with data. */
(function () {
  "use strict";

  var body = document.body;
  var userId = Number(body.dataset.userId || 0);
  var lang = body.dataset.lang || "ru";
  var T = {
    ru: { viewing: "%s тоже смотрит", typing: "%s печатает…", and: " и ", solved: "Диалог решён",
          assigned: "Назначено вам", unresolved: "Заполните переменные шаблона: ", empty: "Нет шаблонов",
          offline: "Нет связи с сервером, переподключаемся…", newMessage: "Новое сообщение",
          teamNew: "Новое обращение команды: ", slaWarning: "SLA: #%n — скоро срок (%k)", slaBreached: "SLA нарушен: #%n (%k)",
          first_response: "первый ответ", next_response: "следующий ответ", resolution: "решение",
          units: ["с", "мин", "ч", "д"] },
    en: { viewing: "%s is also viewing", typing: "%s is typing…", and: " and ", solved: "Conversation solved",
          assigned: "Assigned to you", unresolved: "Fill in the template variables: ", empty: "No templates",
          offline: "Connection lost, reconnecting…", newMessage: "New message",
          teamNew: "New for your team: ", slaWarning: "SLA: #%n is due soon (%k)", slaBreached: "SLA breached: #%n (%k)",
          first_response: "first response", next_response: "next response", resolution: "resolution",
          units: ["s", "min", "h", "d"] }
  }[lang] || {};

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function toast(text, kind) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast" + (kind ? " " + kind : "");
    el.textContent = text;  // text, never HTML
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, kind === "error" ? 8000 : 5000);
    return el;
  }
  window.otklikToast = toast;

  function trigger(name) { body.dispatchEvent(new CustomEvent(name, { bubbles: true })); }

  function debounce(fn, ms) {
    var t = null;
    return function () { clearTimeout(t); t = setTimeout(fn, ms); };
  }

  /* -- forms and HTMX ------------------------------------------------------------------------------- */
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("select[data-autosubmit]")) e.target.form.submit();
  });

  document.addEventListener("htmx:responseError", function (e) {
    var elt = e.detail.elt;
    if (elt && elt.id === "suggestions") return;  // no suggestions: show nothing
    if (elt && elt.id === "customer-panel") {
      var p = document.createElement("p");
      p.className = "panel-placeholder";
      p.textContent = elt.dataset.placeholder || "—";
      elt.replaceChildren(p);
      return;
    }
    var xhr = e.detail.xhr;
    toast((xhr && xhr.responseText ? xhr.responseText : "Error " + (xhr ? xhr.status : "")).slice(0, 300), "error");
  });
  document.addEventListener("htmx:sendError", function (e) {
    if (e.detail.elt && (e.detail.elt.id === "suggestions" || e.detail.elt.id === "customer-panel")) return;
    toast(T.offline, "error");
  });

  /* -- the conversation list: selection and keyboard ------------------------------------------------ */
  var conversationEl = document.getElementById("conversation");
  var conversationId = conversationEl ? Number(conversationEl.dataset.conversationId) : null;
  // a conversation opens at its latest messages (the agent's own last reply in view), as a chat does, and stays
  // there while the composer's suggestions arrive and take their share, unless the agent scrolled up
  var openedThread = conversationEl && document.getElementById("thread");
  if (openedThread) {
    var pinnedToEnd = true;
    openedThread.scrollTop = openedThread.scrollHeight;
    openedThread.addEventListener("scroll", function () {
      pinnedToEnd = openedThread.scrollTop + openedThread.clientHeight >= openedThread.scrollHeight - 4;
    });
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        if (pinnedToEnd) openedThread.scrollTop = openedThread.scrollHeight;
      }).observe(openedThread);
    }
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#conversation-list .conv-row")); }
  function selectedIndex(list) {
    for (var i = 0; i < list.length; i++) if (list[i].classList.contains("selected")) return i;
    return -1;
  }
  function select(delta) {
    var list = rows();
    if (!list.length) return;
    var i = selectedIndex(list);
    var next = Math.max(0, Math.min(list.length - 1, i < 0 ? 0 : i + delta));
    list.forEach(function (r) { r.classList.remove("selected"); });
    list[next].classList.add("selected");
    var link = list[next].querySelector("a");
    link.focus();
    list[next].scrollIntoView({ block: "nearest" });
  }

  function post(url, values) {
    var data = new URLSearchParams(values || {});
    return fetch(url, { method: "POST", credentials: "same-origin", body: data,
                        headers: { "X-CSRF-Token": csrf(), "HX-Request": "true" } });
  }

  function updateConversation(values, message) {
    if (!conversationId) return;
    htmx.ajax("POST", "/ui/conversations/" + conversationId + "/update",
              { target: "#conversation-side", swap: "innerHTML", values: values }).then(function () {
      refreshCustomer();
      if (message) toast(message);
    });
  }

  /* The side bar is re-rendered whenever the conversation changes elsewhere; a handler on each field would
     be missing for the few milliseconds between a re-render and htmx processing the new fields, and a change
     made then would be lost. One listener on the document sees every field, old or new. */
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (!t || !t.name || !t.closest || !t.closest("#conversation-fields")) return;
    var values = {};
    values[t.name] = t.value;
    updateConversation(values);
  });

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    var typing = t && (t.tagName === "TEXTAREA" || t.tagName === "INPUT" || t.tagName === "SELECT" || t.isContentEditable);
    if (typing) {
      if (t.id === "reply-text" && e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        submitReply();
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var help = document.getElementById("shortcuts-help");
    switch (e.key) {
      case "j": select(1); e.preventDefault(); break;
      case "k": select(-1); e.preventDefault(); break;
      case "o": case "Enter": {
        var list = rows(), i = selectedIndex(list);
        if (i >= 0 && e.key === "o") { window.location = list[i].querySelector("a").href; e.preventDefault(); }
        break;
      }
      case "r": {
        var box = document.getElementById("reply-text");
        if (box) { box.focus(); e.preventDefault(); }
        break;
      }
      case "e": if (conversationId) { updateConversation({ status: "solved" }, T.solved); e.preventDefault(); } break;
      case "a": if (conversationId) { updateConversation({ assignee: "me" }, T.assigned); e.preventDefault(); } break;
      case "?": if (help && help.showModal) { help.showModal(); e.preventDefault(); } break;
    }
  });

  /* -- the thread: live messages -------------------------------------------------------------------- */
  function lastId(selector, attr) {
    var max = 0;
    document.querySelectorAll(selector).forEach(function (el) { max = Math.max(max, Number(el.dataset[attr] || 0)); });
    return max;
  }

  var fetchingThread = false, threadAgain = false;
  function refreshThread() {
    if (!conversationId) return;
    if (fetchingThread) { threadAgain = true; return; }
    fetchingThread = true;
    var url = "/ui/conversations/" + conversationId + "/thread?after=" + lastId("#thread [data-message-id]", "messageId") +
              "&after_event=" + lastId("#thread [data-event-id]", "eventId");
    fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } }).then(function (r) {
      return r.ok ? r.text() : "";
    }).then(function (html) {
      if (!html.trim()) return;
      // The server rendered (and escaped) these items; parse them inertly and append the ones we lack.
      var tpl = document.createElement("template");
      tpl.innerHTML = html;
      var thread = document.getElementById("thread");
      Array.prototype.slice.call(tpl.content.children).forEach(function (item) {
        if (item.id && document.getElementById(item.id)) return;
        thread.appendChild(item);
      });
      thread.scrollTop = thread.scrollHeight;
      refreshStale();
      if (document.visibilityState === "visible") post("/ui/conversations/" + conversationId + "/read");
    }).finally(function () {
      fetchingThread = false;
      if (threadAgain) { threadAgain = false; refreshThread(); }
    });
  }

  // a delivery status can change before its message is on the page (a reply that fails at once): it is
  // fetched again once the thread has the message, instead of the page showing «queued» until a reload
  var staleMessages = {};
  function refreshStale() {
    Object.keys(staleMessages).forEach(function (id) {
      if (document.getElementById("msg-" + id)) { delete staleMessages[id]; refreshMessage(Number(id)); }
    });
  }
  function refreshMessage(messageId) {
    var el = document.getElementById("msg-" + messageId);
    if (!conversationId) return;
    if (!el) { staleMessages[messageId] = true; refreshThread(); return; }
    fetch("/ui/conversations/" + conversationId + "/thread?only=" + messageId,
          { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) {
        var tpl = document.createElement("template");
        tpl.innerHTML = html;  // server-rendered, escaped
        var fresh = tpl.content.getElementById("msg-" + messageId);
        if (fresh) el.replaceWith(fresh);
      });
  }

  var refreshList = debounce(function () { trigger("otklik:refresh-list"); trigger("otklik:refresh-counts"); }, 700);
  var refreshSide = debounce(function () { trigger("otklik:refresh-side"); }, 200);
  /* The customer panel (history with each conversation's status, notes, tasks) follows the conversation too,
     unless the agent is typing in it: a note or task half written is never wiped by a re-render. */
  var refreshCustomer = debounce(function () {
    var panel = document.getElementById("customer-panel");
    if (!panel) return;
    var busy = Array.prototype.some.call(panel.querySelectorAll("input:not([type=hidden]), textarea"),
                                         function (f) { return f === document.activeElement || f.value; });
    if (busy) { customerStale = true; return; }
    customerStale = false;
    trigger("otklik:refresh-customer");
  }, 300);
  var customerStale = false;
  document.addEventListener("focusout", function (e) {
    if (customerStale && e.target && e.target.closest && e.target.closest("#customer-panel")) refreshCustomer();
  });

  /* -- notifications -------------------------------------------------------------------------------- */
  var audioCtx = null;
  function beep() {
    try {
      audioCtx = audioCtx || new (window.AudioContext || window.webkitAudioContext)();
      var osc = audioCtx.createOscillator(), gain = audioCtx.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, audioCtx.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.15, audioCtx.currentTime + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, audioCtx.currentTime + 0.25);
      osc.connect(gain).connect(audioCtx.destination);
      osc.start();
      osc.stop(audioCtx.currentTime + 0.3);
    } catch (err) { /* no audio: the visual notice is enough */ }
  }
  document.addEventListener("click", function askOnce() {
    document.removeEventListener("click", askOnce);
    if (window.Notification && Notification.permission === "default") Notification.requestPermission();
  });

  function maybeNotify(messageId) {
    fetch("/ui/notify/" + messageId, { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (info) {
      if (!info || !info.notify) return;
      var el = toast(info.title + ": " + info.body);
      if (el) el.classList.add("message-toast");
      beep();
      if (window.Notification && Notification.permission === "granted" && document.visibilityState !== "visible") {
        var n = new Notification(info.title || T.newMessage, { body: info.body, tag: "otklik-" + messageId });
        n.onclick = function () { window.focus(); window.location = info.url; };
      }
    });
  }

  // a new conversation waits unassigned in one of my teams: the server says whether I asked to hear about it
  var teamNotified = {};
  function maybeNotifyTeam(id) {
    if (teamNotified[id]) return;
    teamNotified[id] = true;
    fetch("/ui/notify/conversation/" + id, { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (info) {
      if (!info || !info.notify) return;
      var el = toast((T.teamNew || "") + info.title + (info.body ? ": " + info.body : ""));
      if (el) el.classList.add("team-toast");
      beep();
      if (window.Notification && Notification.permission === "granted" && document.visibilityState !== "visible") {
        var n = new Notification(info.title, { body: info.body, tag: "otklik-team-" + id });
        n.onclick = function () { window.focus(); window.location = info.url; };
      }
    });
  }

  /* -- presence ------------------------------------------------------------------------------------- */
  var peers = {};  // user_id -> {name, state, until}
  function renderPresence() {
    var el = document.getElementById("presence");
    if (!el) return;
    var now = Date.now(), viewing = [], typing = [];
    Object.keys(peers).forEach(function (id) {
      var p = peers[id];
      if (p.until < now) { delete peers[id]; return; }
      (p.state === "typing" ? typing : viewing).push(p.name);
    });
    var parts = [];
    if (typing.length) parts.push(T.typing.replace("%s", typing.join(T.and)));
    if (viewing.length) parts.push(T.viewing.replace("%s", viewing.join(T.and)));
    el.textContent = parts.join(" · ");  // names are text
  }
  setInterval(renderPresence, 1000);

  /* -- SLA: live countdowns in the inbox, warnings and breaches for the people concerned -------------- */
  function waitText(seconds) {
    var u = T.units || ["s", "min", "h", "d"], s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + " " + u[0];
    if (s < 3600) return Math.floor(s / 60) + " " + u[1];
    if (s < 86400) {
      var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
      return m && h < 10 ? h + " " + u[2] + " " + m + " " + u[1] : h + " " + u[2];
    }
    return Math.floor(s / 86400) + " " + u[3];
  }
  function tickSla() {
    var now = Date.now();
    document.querySelectorAll(".sla-due[data-due]").forEach(function (el) {
      var left = Math.round((Date.parse(el.dataset.due) - now) / 1000);
      var out = el.querySelector(".sla-left");
      if (out) out.textContent = (left < 0 ? "−" : "") + waitText(Math.abs(left));
      if (left <= 0 && el.dataset.slaState !== "over") {
        el.classList.remove("ok", "near");
        el.classList.add("over");
        el.dataset.slaState = "over";
      }
    });
  }
  setInterval(tickSla, 5000);
  function slaNotice(type, d) {
    var text = (type === "sla.breached" ? T.slaBreached : T.slaWarning).replace("%n", d.number)
      .replace("%k", T[d.kind] || d.kind);
    var el = toast(text, type === "sla.breached" ? "error" : "");
    if (el) el.classList.add("sla-toast");
    beep();
    if (window.Notification && Notification.permission === "granted") {
      var n = new Notification(text, { tag: "otklik-sla-" + d.conversation_id + "-" + d.kind });
      n.onclick = function () { window.focus(); window.location = "/conversations/" + d.conversation_id; };
    }
  }

  /* -- the WebSocket -------------------------------------------------------------------------------- */
  var socket = null, retry = 1000, lastTyping = 0;
  function sendPresence(state, hello) {
    if (!conversationId || !socket || socket.readyState !== 1) return;
    socket.send(JSON.stringify({ type: "presence", conversation_id: conversationId, state: state, hello: !!hello }));
  }

  function onEvent(ev) {
    var d = ev.data || {};
    document.dispatchEvent(new CustomEvent("otklik:event", { detail: ev }));  // other scripts' events
    if (ev.type === "message.created") {
      refreshList();
      if (conversationId && d.conversation_id === conversationId) { refreshThread(); refreshSide(); }
      if (d.author_kind === "customer" && !d.is_internal) maybeNotify(d.id);
    } else if (ev.type === "message.updated") {
      if (conversationId && d.conversation_id === conversationId) refreshMessage(d.id);
    } else if (ev.type === "conversation.updated" || ev.type === "conversation.created") {
      refreshList();
      if (!d.assignee_id && d.team_id && (ev.type === "conversation.created" ||
                                          (d.changed || []).indexOf("team_id") >= 0)) maybeNotifyTeam(d.id);
      if (conversationId && d.id === conversationId) { refreshSide(); refreshThread(); refreshCustomer(); }
    } else if (ev.type === "sla.warning" || ev.type === "sla.breached") {
      refreshList();
      if (conversationId && d.conversation_id === conversationId) refreshSide();
      if ((d.notify_user_ids || []).indexOf(userId) >= 0) slaNotice(ev.type, d);
    } else if (ev.type === "rule.notify") {
      // an automation rule's «notify» action: a toast and a browser notification for the users it names
      if ((d.notify_user_ids || []).indexOf(userId) >= 0) {
        var note = "#" + d.number + " · " + (d.rule || "") + (d.text ? ": " + d.text : "");
        toast(note, "");
        beep();
        if (window.Notification && Notification.permission === "granted") {
          var rn = new Notification(note, { tag: "otklik-rule-" + d.conversation_id });
          rn.onclick = function () { window.focus(); window.location = "/conversations/" + d.conversation_id; };
        }
      }
    } else if (ev.type === "presence") {
      if (!conversationId || d.conversation_id !== conversationId || d.user_id === userId) return;
      if (d.state === "left") delete peers[d.user_id];
      else {
        var isNew = !peers[d.user_id];
        peers[d.user_id] = { name: d.name, state: d.state, until: Date.now() + d.ttl * 1000 };
        if (isNew && d.hello) sendPresence("viewing");  // answer a newcomer at once, not at the next repeat
      }
      renderPresence();
    }
  }

  function connect() {
    if (!userId || !window.WebSocket) return;
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/ws";
    socket = new WebSocket(url);
    socket.onopen = function () {
      retry = 1000;
      body.dataset.live = "1";
      sendPresence("viewing", true);
    };
    socket.onmessage = function (msg) {
      var ev;
      try { ev = JSON.parse(msg.data); } catch (err) { return; }
      if (ev.type === "ready") { body.dataset.live = "ready"; return; }
      onEvent(ev);
    };
    socket.onclose = function () {
      body.dataset.live = "0";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }
  connect();
  setInterval(function () { sendPresence("viewing"); }, 5000);
  window.addEventListener("pagehide", function () { sendPresence("left"); });

  /* -- the reply box -------------------------------------------------------------------------------- */
  var replyForm = document.getElementById("reply-form");
  var replyText = document.getElementById("reply-text");
  var unresolvedEl = document.getElementById("reply-unresolved");
  var VARIABLE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}/g;

  function unresolved() {
    var names = [], m;
    VARIABLE.lastIndex = 0;
    while ((m = VARIABLE.exec(replyText.value)) !== null) if (names.indexOf(m[1]) < 0) names.push(m[1]);
    return names;
  }
  function showUnresolved() {
    if (!unresolvedEl) return [];
    var names = unresolved();
    unresolvedEl.replaceChildren();
    if (names.length) {
      unresolvedEl.appendChild(document.createTextNode(T.unresolved));
      names.forEach(function (n, i) {
        var mark = document.createElement("mark");
        mark.textContent = "{{" + n + "}}";
        if (i) unresolvedEl.appendChild(document.createTextNode(", "));
        unresolvedEl.appendChild(mark);
      });
      unresolvedEl.classList.add("variables");
    }
    return names;
  }
  function mode() {
    var checked = replyForm && replyForm.querySelector('input[name="mode"]:checked');
    return checked ? checked.value : "reply";
  }
  function submitReply() {
    if (!replyForm) return;
    if (replyForm.requestSubmit) replyForm.requestSubmit(); else htmx.trigger(replyForm, "submit");
  }

  if (replyForm && replyText) {
    replyForm.addEventListener("htmx:confirm", function (e) {
      if (mode() === "reply" && showUnresolved().length) {
        e.preventDefault();  // refuse to send while a variable is unfilled
        replyText.focus();
      }
    });
    body.addEventListener("otklik:sent", function () {
      replyText.value = "";
      showUnresolved();
      refreshThread();
      refreshList();
    });
    var typingPaused = debounce(function () { trigger("otklik:typing-paused"); }, 800);
    replyText.addEventListener("input", function () {
      if (unresolvedEl && unresolvedEl.childNodes.length) showUnresolved();
      var now = Date.now();
      if (now - lastTyping > 2000) { lastTyping = now; sendPresence("typing"); }
      typingPaused();
      onPickerInput();
    });
    replyText.addEventListener("keydown", onPickerKey);
    document.querySelectorAll('input[name="mode"]').forEach(function (r) {
      r.addEventListener("change", function () { replyText.classList.toggle("note-mode", mode() === "note"); });
    });
  }

  /* -- templates: "/" opens a picker ---------------------------------------------------------------- */
  var picker = document.getElementById("template-picker");
  var pickerItems = [], pickerIndex = 0, slashAt = -1, pickerSeq = 0;

  function closePicker() {
    if (picker) { picker.hidden = true; picker.replaceChildren(); }
    pickerItems = []; slashAt = -1;
  }
  function slashQuery() {
    var pos = replyText.selectionStart, text = replyText.value.slice(0, pos);
    var m = /(^|\s)\/([^\s\/]{0,40})$/.exec(text);
    return m ? { at: pos - m[2].length - 1, q: m[2] } : null;
  }
  function onPickerInput() {
    if (!picker) return;
    var found = slashQuery();
    if (!found) { closePicker(); return; }
    slashAt = found.at;
    var seq = ++pickerSeq;
    fetch("/api/v1/templates?limit=20&q=" + encodeURIComponent(found.q), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { items: [] }; })
      .then(function (page) {
        if (seq !== pickerSeq) return;
        pickerItems = page.items || [];
        pickerIndex = 0;
        drawPicker();
      }).catch(closePicker);
  }
  function drawPicker() {
    picker.replaceChildren();
    if (!pickerItems.length) {
      var li = document.createElement("li");
      li.textContent = T.empty;
      li.className = "muted";
      picker.appendChild(li);
    }
    pickerItems.forEach(function (item, i) {
      var li = document.createElement("li");
      li.setAttribute("role", "option");
      li.id = "template-option-" + item.id;
      li.dataset.templateId = item.id;
      li.setAttribute("aria-selected", i === pickerIndex ? "true" : "false");
      li.textContent = item.name;
      if (item.shortcut) {
        var small = document.createElement("small");
        small.textContent = "/" + item.shortcut;
        li.appendChild(small);
      }
      li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(i); });
      picker.appendChild(li);
    });
    picker.hidden = false;
  }
  function onPickerKey(e) {
    if (!picker || picker.hidden) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (!pickerItems.length) return;
      pickerIndex = (pickerIndex + (e.key === "ArrowDown" ? 1 : pickerItems.length - 1)) % pickerItems.length;
      drawPicker();
      e.preventDefault();
    } else if (e.key === "Enter" || e.key === "Tab") {
      if (pickerItems.length) { choose(pickerIndex); e.preventDefault(); }
    } else if (e.key === "Escape") {
      closePicker(); e.preventDefault();
    }
  }
  function choose(i) {
    var item = pickerItems[i], start = slashAt, end = replyText.selectionStart;
    closePicker();
    if (!item || start < 0) return;
    fetch("/api/v1/templates/" + item.id + "/render", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify({ conversation_id: conversationId })
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (out) {
      if (!out) return;
      var v = replyText.value;
      replyText.value = v.slice(0, start) + out.text + v.slice(end);
      var caret = start + out.text.length;
      replyText.focus();
      replyText.setSelectionRange(caret, caret);
      showUnresolved();
    });
  }
})();

/* The Content-Security-Policy allows no inline handlers or style attributes (otklik.web.security), so the
   few things pages did inline live here: forms that ask before they delete (data-confirm), the assistant's
   suggestions that fill the reply box (.assist-use), and the calendar's hour bars (data-left/-width). */
(function () {
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form && form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);
  document.addEventListener("click", function (e) {
    var use = e.target && e.target.closest ? e.target.closest(".assist-use") : null;
    if (!use) return;
    var box = document.getElementById("reply-text");
    if (box) { box.value = use.dataset.text; box.focus(); }
  });
  function placeBars(root) {
    (root || document).querySelectorAll(".week-bar[data-left]").forEach(function (bar) {
      bar.style.left = bar.dataset.left + "%";
      bar.style.width = bar.dataset.width + "%";
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { placeBars(); });
  else placeBars();
  document.addEventListener("htmx:load", function (e) { placeBars(e.target); });
  // the suggestions ask with what the agent is typing (was hx-vals='js:…', which needs eval)
  document.addEventListener("htmx:configRequest", function (e) {
    if (!e.detail.elt || e.detail.elt.id !== "suggestions") return;
    var box = document.getElementById("reply-text");
    e.detail.parameters.q = box ? box.value : "";
  });
})();
