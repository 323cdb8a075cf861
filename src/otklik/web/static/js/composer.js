/* The reply box's files and the legal-deadline question.
   Files: 📎 picks files; each is checked against the channel's limits (the vendor's, served on the input) before
   it is uploaded to /api/v1/attachments, shown as a chip with its size and a ×, and sent with the reply as
   attachment_ids (the server checks the same limits again). Legal: a reply on a conversation whose
   consumer-law deadline has passed comes back as a 409 «legal_overdue»; the agent confirms the reply takes
   it into account and it is sent again with acknowledge=legal_overdue. */
(function () {
  "use strict";
  var form = document.getElementById("reply-form");
  var input = document.getElementById("reply-files");
  var list = document.getElementById("reply-file-list");
  if (!form) return;
  var lang = (document.documentElement.lang || "ru").slice(0, 2);
  var T = {
    ru: { tooBig: "%f: %s — больше, чем принимает %c (%m)", tooMany: "%c принимает не больше %n файлов",
          total: "Файлы вместе — %s, а %c принимает не больше %m", failed: "%f не загружен: %e",
          remove: "Убрать %f", uploading: "загрузка…", send: "Всё равно отправить?" },
    en: { tooBig: "%f: %s is more than %c takes (%m)", tooMany: "%c takes at most %n files",
          total: "The files come to %s; %c takes at most %m", failed: "%f was not uploaded: %e",
          remove: "Remove %f", uploading: "uploading…", send: "Send anyway?" }
  }[lang] || {};
  function fmt(s, v) { return Object.keys(v).reduce(function (a, k) { return a.split("%" + k).join(v[k]); }, s || ""); }
  function size(n) { return n >= 1048576 ? (n / 1048576).toFixed(1) + " MB" : Math.max(1, Math.round(n / 1024)) + " KB"; }
  function csrf() { var m = document.querySelector('meta[name="csrf-token"]'); return m ? m.content : ""; }
  function toast(text, kind) { if (window.otklikToast) window.otklikToast(text, kind); }

  if (input && list) {
    var byType = {};
    try { byType = JSON.parse(input.dataset.byType || "{}"); } catch (e) { byType = {}; }
    var maxBytes = Number(input.dataset.maxBytes) || 0, maxFiles = Number(input.dataset.maxFiles) || 0;
    var totalBytes = Number(input.dataset.totalBytes) || 0, channel = input.dataset.channel || "";

    var chips = function () { return Array.prototype.slice.call(list.querySelectorAll("li[data-size]")); };
    var capFor = function (type) {
      var keys = Object.keys(byType);
      for (var i = 0; i < keys.length; i++) if (type.indexOf(keys[i]) === 0) return byType[keys[i]];
      return maxBytes;
    };

    input.addEventListener("change", function () {
      var files = Array.prototype.slice.call(input.files || []);
      input.value = "";
      var have = chips();
      if (maxFiles && have.length + files.length > maxFiles) {
        toast(fmt(T.tooMany, { c: channel, n: maxFiles }), "error");
        return;
      }
      var sum = have.reduce(function (a, li) { return a + Number(li.dataset.size); }, 0);
      files.forEach(function (file) {
        var cap = capFor(file.type || "");
        if (cap && file.size > cap) { toast(fmt(T.tooBig, { f: file.name, s: size(file.size), c: channel, m: size(cap) }), "error"); return; }
        if (totalBytes && sum + file.size > totalBytes) {
          toast(fmt(T.total, { s: size(sum + file.size), c: channel, m: size(totalBytes) }), "error");
          return;
        }
        sum += file.size;
        upload(file);
      });
    });

    var upload = function (file) {
      var li = document.createElement("li");
      li.className = "reply-file uploading";
      li.dataset.size = String(file.size);
      var name = document.createElement("span");
      name.textContent = file.name + " · " + size(file.size) + " · " + T.uploading;  // text, never HTML
      li.appendChild(name);
      list.appendChild(li);
      var data = new FormData();
      data.append("file", file, file.name);
      fetch("/api/v1/attachments", { method: "POST", credentials: "same-origin", body: data,
                                      headers: { "X-CSRF-Token": csrf() } })
        .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
        .then(function (res) {
          if (!res.ok) throw new Error((res.body.error && res.body.error.message) || "error");
          li.classList.remove("uploading");
          li.dataset.attachmentId = String(res.body.id);
          name.textContent = file.name + " · " + size(file.size);
          var hidden = document.createElement("input");
          hidden.type = "hidden"; hidden.name = "attachment_ids"; hidden.value = String(res.body.id);
          var drop = document.createElement("button");
          drop.type = "button"; drop.className = "link-button"; drop.textContent = "×";
          drop.setAttribute("aria-label", fmt(T.remove, { f: file.name }));
          drop.addEventListener("click", function () { li.remove(); });
          li.appendChild(hidden); li.appendChild(drop);
        })
        .catch(function (err) {
          li.remove();
          toast(fmt(T.failed, { f: file.name, e: err.message }), "error");
        });
    };

    document.body.addEventListener("otklik:sent", function () { list.replaceChildren(); });
  }

  // a consumer-law deadline has passed: ask once, then send again with the acknowledgement
  var legalAck = null;
  form.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    if (!xhr || xhr.status !== 409 || xhr.getResponseHeader("X-Otklik-Problem") !== "legal_overdue") return;
    e.stopPropagation();  // no error toast: the question says it
    if (!window.confirm(xhr.responseText + "\n\n" + T.send)) return;
    if (!legalAck) {
      legalAck = document.createElement("input");
      legalAck.type = "hidden"; legalAck.name = "acknowledge"; legalAck.value = "legal_overdue";
      form.appendChild(legalAck);
    }
    if (form.requestSubmit) form.requestSubmit(); else htmx.trigger(form, "submit");
  });
  document.body.addEventListener("otklik:sent", function () { if (legalAck) { legalAck.remove(); legalAck = null; } });
  window.otklikComposerReady = true;  // for tests: the reply box's handlers are in place
})();

/* @mentions in an internal note: typing «@» and a few letters offers the colleagues whose name or e-mail starts
   so; Enter or a click inserts «@Имя Фамилия» (what the server's mention matching finds). After a note is sent
   the composer goes back to «reply to customer», so the next message is not an internal note by mistake. */
(function () {
  "use strict";
  var box = document.getElementById("reply-text");
  var picker = document.getElementById("mention-picker");
  var data = document.getElementById("mention-users");
  if (!box || !picker || !data) return;
  var users = [];
  try { users = JSON.parse(data.textContent || "[]"); } catch (e) { users = []; }
  var items = [], index = 0, at = -1;

  function mode() { var r = document.querySelector('input[name="mode"]:checked'); return r ? r.value : "reply"; }
  function close() { picker.hidden = true; picker.replaceChildren(); items = []; at = -1; }
  function query() {
    var upto = box.value.slice(0, box.selectionStart);
    var m = /(^|[\s(])@([\wА-Яа-яЁё.\-]{0,30})$/.exec(upto);
    if (!m) return null;
    return { start: upto.length - m[2].length - 1, text: m[2].toLowerCase() };
  }
  function show() {
    var q = mode() === "note" ? query() : null;
    if (!q) { close(); return; }
    at = q.start;
    items = users.filter(function (u) {
      var name = (u.name || "").toLowerCase(), handle = (u.handle || "").toLowerCase();
      return !q.text || name.indexOf(q.text) === 0 || handle.indexOf(q.text) === 0 ||
             name.split(/\s+/).some(function (w) { return w.indexOf(q.text) === 0; });
    }).slice(0, 8);
    picker.replaceChildren();
    if (!items.length) { picker.hidden = true; return; }
    index = Math.min(index, items.length - 1);
    items.forEach(function (u, i) {
      var li = document.createElement("li");
      li.setAttribute("role", "option");
      li.className = i === index ? "active" : "";
      li.textContent = u.name;  // text, never HTML
      li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(i); });
      picker.appendChild(li);
    });
    picker.hidden = false;
  }
  function choose(i) {
    var u = items[i];
    if (!u || at < 0) return;
    var before = box.value.slice(0, at), after = box.value.slice(box.selectionStart);
    var insert = "@" + u.handle + " ";
    box.value = before + insert + after;
    var caret = before.length + insert.length;
    box.setSelectionRange(caret, caret);
    close();
    box.focus();
  }
  box.addEventListener("input", function () { index = 0; show(); });
  box.addEventListener("keydown", function (e) {
    if (picker.hidden || !items.length) return;
    if (e.key === "ArrowDown") { index = (index + 1) % items.length; show(); e.preventDefault(); e.stopImmediatePropagation(); }
    else if (e.key === "ArrowUp") { index = (index - 1 + items.length) % items.length; show(); e.preventDefault(); e.stopImmediatePropagation(); }
    else if (e.key === "Enter" || e.key === "Tab") { choose(index); e.preventDefault(); e.stopImmediatePropagation(); }
    else if (e.key === "Escape") { close(); e.preventDefault(); e.stopImmediatePropagation(); }
  }, true);
  box.addEventListener("blur", function () { setTimeout(close, 150); });

  document.body.addEventListener("otklik:sent", function () {
    var reply = document.getElementById("mode-reply");
    if (reply && !reply.checked) {
      reply.checked = true;
      reply.dispatchEvent(new Event("change", { bubbles: true }));
    }
  });
})();

/* WhatsApp's 24-hour window is closed: an approved template is the only thing that can go out; the form sends it
   through the API (the same check and outbox as any reply) and the thread shows it as sent. */
(function () {
  "use strict";
  var form = document.getElementById("wa-template-form");
  if (!form) return;
  function csrf() { var m = document.querySelector('meta[name="csrf-token"]'); return m ? m.content : ""; }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var params = form.parameters.value.split("\n").map(function (s) { return s.trim(); }).filter(Boolean);
    var button = document.getElementById("wa-template-send");
    button.disabled = true;
    fetch(form.dataset.url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify({ name: form.name.value.trim(), language: form.language.value.trim(), parameters: params })
    }).then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        if (!res.ok) {
          var err = res.body.error || {};
          var field = err.fields && err.fields[0] ? err.fields[0].field + ": " : "";
          if (window.otklikToast) window.otklikToast(field + (err.message || "error"), "error");
          return;
        }
        form.parameters.value = "";
        document.body.dispatchEvent(new CustomEvent("otklik:sent", { bubbles: true }));
      })
      .finally(function () { button.disabled = false; });
  });
})();
