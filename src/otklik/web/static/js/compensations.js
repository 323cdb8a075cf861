/* Authority limits in the page: the «Согласования» nav counter, a toast for whoever a compensation request
 * concerns (the approvers when one is asked, the requester when it is decided), and live refreshes of the
 * conversation's compensations block and the approvals queue. Plain JS; text only through textContent.
 * Events arrive from app.js's WebSocket as `otklik:event` on the document. */
(function () {
  "use strict";

  var body = document.body;
  var userId = Number(body.dataset.userId || 0);
  if (!userId) return;
  var lang = body.dataset.lang || "ru";
  var T = {
    ru: { requested: "Ждёт согласования: #%n, %k, %a ₽", applied: "Компенсация согласована: #%n, %k, %a ₽",
          rejected: "Компенсация отклонена: #%n, %k, %a ₽",
          kinds: { refund: "возврат денег", discount: "скидка / промокод", bonus_points: "бонусные баллы",
                   free_delivery: "бесплатная доставка", gift: "подарок" } },
    en: { requested: "Awaiting approval: #%n, %k, %a ₽", applied: "Compensation approved: #%n, %k, %a ₽",
          rejected: "Compensation rejected: #%n, %k, %a ₽",
          kinds: { refund: "refund", discount: "discount / promo code", bonus_points: "bonus points",
                   free_delivery: "free delivery", gift: "gift" } }
  }[lang] || {};

  function money(text) {  // "2500.00" -> «2 500», "499.90" -> «499,9»
    var value = Number(text);
    return isNaN(value) ? String(text) : value.toLocaleString(lang === "en" ? "en-US" : "ru-RU",
                                                              { maximumFractionDigits: 2 });
  }

  var link = document.querySelector('#mainnav a[data-nav="approvals"]');
  function setCount(n) {
    if (!link) return;
    var badge = document.getElementById("approvals-count");
    if (!badge) {
      badge = document.createElement("span");
      badge.id = "approvals-count";
      badge.className = "badge flag nav-count";
      link.appendChild(document.createTextNode(" "));
      link.appendChild(badge);
    }
    badge.textContent = String(n);
    badge.hidden = !n;
    link.dataset.count = String(n);
  }
  function refreshCount() {
    if (!link) return;
    fetch("/ui/approvals/count", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d) setCount(d.count); })
      .catch(function () {});
  }
  refreshCount();

  function busy(root) {
    return Array.prototype.some.call(root.querySelectorAll("input:not([type=hidden]), textarea"),
                                     function (f) { return f === document.activeElement || f.value; });
  }

  /* The side bar's block re-renders on every change of the conversation; never while the agent is in one of its
     fields (a sum half typed, a comment being written): it catches up when they leave it. */
  var staleBlock = false;
  window.otklikCompensationsIdle = function () {
    var panel = document.getElementById("compensations-panel");
    var typing = !!(panel && document.activeElement && panel.contains(document.activeElement) &&
                    document.activeElement.matches("input, textarea, select"));
    staleBlock = staleBlock || typing;
    return !typing;
  };
  // the refresh asks first (an htmx trigger filter would need eval, which the Content-Security-Policy forbids)
  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail && e.detail.elt;
    if (elt && elt.id === "compensations-panel" && !window.otklikCompensationsIdle()) e.preventDefault();
  });
  document.addEventListener("focusout", function (e) {
    var panel = document.getElementById("compensations-panel");
    if (!staleBlock || !panel || !panel.contains(e.target)) return;
    setTimeout(function () {
      if (panel.contains(document.activeElement)) return;
      staleBlock = false;
      body.dispatchEvent(new CustomEvent("otklik:refresh-compensations", { bubbles: true }));
    }, 0);
  });

  document.addEventListener("otklik:event", function (e) {
    var ev = e.detail || {}, d = ev.data || {};
    if (ev.type !== "compensation.requested" && ev.type !== "compensation.decided" &&
        ev.type !== "compensation.applied") return;
    refreshCount();
    if ((d.notify_user_ids || []).indexOf(userId) >= 0 && window.otklikToast && ev.type !== "compensation.applied") {
      var text = (ev.type === "compensation.requested" ? T.requested : T[d.status] || T.applied)
        .replace("%n", d.number).replace("%k", (T.kinds || {})[d.kind] || d.kind).replace("%a", money(d.amount));
      var el = window.otklikToast(text, d.status === "rejected" ? "error" : "");
      if (el) {
        el.classList.add("compensation-toast");
        el.dataset.compensationId = d.id;
      }
    }
    var conversation = document.getElementById("conversation");
    if (conversation && Number(conversation.dataset.conversationId) === d.conversation_id) {
      body.dispatchEvent(new CustomEvent("otklik:refresh-compensations", { bubbles: true }));
    }
    var queue = document.getElementById("approvals-page");
    if (queue && !busy(queue)) window.location.reload();
  });
})();
