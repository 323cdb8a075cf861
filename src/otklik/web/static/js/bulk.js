/* Bulk actions in the inbox: pick rows (click a row's box, shift-click for a range, `x` on the selected row),
   then change status, priority, assignee or add a tag to all of them, or merge them (one customer's) into the
   oldest. The server changes each one on its own and says which could not be changed. */
(function () {
  "use strict";
  var list = document.getElementById("conversation-list");
  var bar = document.getElementById("bulk-bar");
  if (!list || !bar) return;
  var lang = (document.documentElement.lang || "ru").slice(0, 2);
  var T = {
    ru: { picked: "Выбрано: %n", done: "Изменено: %n", merged: "Объединено в #%t: %n", failed: "Не удалось: %n",
          nothing: "Выберите действие", confirmMerge: "Объединить %n обращения одного клиента в самое раннее?" },
    en: { picked: "Selected: %n", done: "Changed: %n", merged: "Merged into #%t: %n", failed: "Failed: %n",
          nothing: "Pick an action", confirmMerge: "Merge %n conversations of one customer into the oldest?" }
  }[lang] || {};
  var last = null;  // the last box clicked, for shift-click ranges

  function boxes() { return Array.prototype.slice.call(list.querySelectorAll(".bulk-pick")); }
  function picked() { return boxes().filter(function (b) { return b.checked; }); }
  function csrf() { var m = document.querySelector('meta[name="csrf-token"]'); return m ? m.content : ""; }
  function toast(text, kind) { if (window.otklikToast) window.otklikToast(text, kind); }

  function refresh() {
    var n = picked().length;
    bar.hidden = n === 0;
    list.classList.toggle("bulk-on", n > 0);
    boxes().forEach(function (b) { b.closest("li").classList.toggle("picked", b.checked); });
    document.getElementById("bulk-count").textContent = (T.picked || "%n").replace("%n", n);
  }

  list.addEventListener("click", function (e) {
    var box = e.target.closest && e.target.closest(".bulk-pick");
    if (!box) return;
    if (e.shiftKey && last && last !== box) {
      var all = boxes(), a = all.indexOf(last), b = all.indexOf(box);
      all.slice(Math.min(a, b), Math.max(a, b) + 1).forEach(function (x) { x.checked = last.checked; });
    }
    last = box;
    refresh();
  });
  // the list is re-rendered by htmx (new messages, filters): keep nothing stale on the bar
  document.body.addEventListener("htmx:afterSwap", function (e) { if (e.target === list) refresh(); });

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.key !== "x" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (t && (t.tagName === "TEXTAREA" || t.tagName === "INPUT" || t.tagName === "SELECT" || t.isContentEditable)) return;
    var row = list.querySelector(".conv-row.selected") || (document.activeElement && document.activeElement.closest &&
                                                           document.activeElement.closest(".conv-row"));
    var box = row && row.querySelector(".bulk-pick");
    if (!box) return;
    box.checked = !box.checked;
    last = box;
    refresh();
    e.preventDefault();
  });

  document.getElementById("bulk-all").addEventListener("click", function () {
    boxes().forEach(function (b) { b.checked = true; });
    refresh();
  });
  document.getElementById("bulk-none").addEventListener("click", function () {
    boxes().forEach(function (b) { b.checked = false; });
    refresh();
  });

  function send(values) {
    var data = new URLSearchParams();
    picked().forEach(function (b) { data.append("ids", b.value); });
    Object.keys(values).forEach(function (k) { if (values[k]) data.append(k, values[k]); });
    return fetch("/ui/inbox/bulk", { method: "POST", credentials: "same-origin", body: data,
                                     headers: { "X-CSRF-Token": csrf(), "HX-Request": "true" } })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        if (!res.ok) {
          toast((res.body.error && res.body.error.message) || "Error", "error");
          return;
        }
        var b = res.body;
        if (b.target_id) toast((T.merged || "").replace("%t", b.target_number || b.target_id).replace("%n", b.merged.length));
        else toast((T.done || "").replace("%n", b.updated.length));
        if (b.failed && b.failed.length) {
          toast((T.failed || "").replace("%n", b.failed.length) + " — " +
                b.failed.slice(0, 3).map(function (f) { return "#" + (f.number || f.id) + ": " + f.message; }).join("; "), "error");
        }
        boxes().forEach(function (x) { x.checked = false; });
        bar.reset();
        refresh();
        document.body.dispatchEvent(new CustomEvent("otklik:refresh-list", { bubbles: true }));
        document.body.dispatchEvent(new CustomEvent("otklik:refresh-counts", { bubbles: true }));
      });
  }

  bar.addEventListener("submit", function (e) {
    e.preventDefault();
    var values = { action: "update", status: bar.status.value, priority: bar.priority.value,
                   assignee: bar.assignee.value, tag: bar.tag.value.trim() };
    if (!values.status && !values.priority && !values.assignee && !values.tag) { toast(T.nothing, "error"); return; }
    send(values);
  });
  document.getElementById("bulk-merge").addEventListener("click", function () {
    var n = picked().length;
    if (n < 2) return;
    if (!window.confirm((T.confirmMerge || "").replace("%n", n))) return;
    send({ action: "merge" });
  });
  refresh();
})();
