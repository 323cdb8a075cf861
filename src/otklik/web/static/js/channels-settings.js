// Settings → Channels. Builds each account's form from the plugin's Config schema (GET /api/v1/channels/kinds)
// and talks to the JSON API with the session's CSRF token. Every value is put into the page with textContent
// or .value, never as HTML.
(function () {
  "use strict";
  const page = document.getElementById("channels-page");
  if (!page) return;
  const T = JSON.parse(document.getElementById("channels-texts").textContent);
  const t = (s) => T[s] || s;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  let kinds = {};

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  async function api(method, url, body) {
    const options = { method, headers: { "X-CSRF-Token": csrf, Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = (data && data.error) || {};
      const fields = (error.fields || []).map((f) => f.field + ": " + f.message).join("; ");
      throw new Error(fields || error.message || "HTTP " + response.status);
    }
    return data;
  }

  function show(node, message, ok) {
    node.textContent = message;
    node.classList.toggle("bad", !ok);
  }

  // -- the kinds ------------------------------------------------------------------------------------
  function renderKinds(list) {
    const ul = document.getElementById("channel-kinds");
    ul.replaceChildren();
    for (const kind of list) {
      ul.append(el("li", { class: "channel-kind card", "data-kind": kind.kind },
        el("span", { class: "channel-icon", "aria-hidden": "true", text: kind.icon || t(kind.title).slice(0, 2) }),
        el("div", {},
          el("strong", { text: t(kind.title) }),
          el("p", { class: "muted small", text: t(kind.description) }),
          el("button", { type: "button", id: "add-" + kind.kind, onclick: () => openEditor(kind, null) }, t("Add")))));
    }
  }

  // -- the form generated from the Config schema ---------------------------------------------------
  function fieldFor(name, prop, value, id) {
    const label = el("label", { for: id, text: t(prop.title || name) });
    if (prop.description) label.append(el("span", { class: "hint muted small", text: t(prop.description) }));
    let input;
    if (Array.isArray(prop.enum)) {
      input = el("select", { id, name });
      for (const option of prop.enum) input.append(el("option", { value: option, text: option }));
      input.value = value ?? prop.default ?? prop.enum[0];
    } else if (prop.type === "array") {
      input = el("textarea", { id, name, rows: 3, "data-array": "1", placeholder: t("One line per button") });
      input.value = (value ?? prop.default ?? []).join("\n");
    } else if (prop.type === "boolean") {
      input = el("input", { id, name, type: "checkbox" });
      input.checked = Boolean(value ?? prop.default);
      return el("div", {}, el("label", { for: id }, input, " " + t(prop.title || name)));
    } else {
      input = el("input", { id, name, type: "text" });
      input.value = value ?? prop.default ?? "";
    }
    return el("div", {}, label, input);
  }

  function openEditor(kind, account) {
    const editor = document.getElementById("channel-editor");
    const form = document.getElementById("channel-form");
    const result = document.getElementById("channel-form-result");
    editor.hidden = false;
    result.textContent = "";
    document.getElementById("editor-title").textContent = t(kind.title) + " · " + (account ? account.name : t("New account"));
    form.replaceChildren();
    form.append(fieldFor("name", { title: t("Account name"), type: "string" }, account ? account.name : t(kind.title), "channel-field-name"));
    const properties = (kind.config_schema && kind.config_schema.properties) || {};
    for (const [name, prop] of Object.entries(properties)) {
      form.append(fieldFor(name, prop, account ? account.config[name] : undefined, "channel-field-" + name));
    }
    for (const name of kind.secret_fields) {
      if (kind.generated_secrets.includes(name)) continue;
      const id = "channel-secret-" + name;
      const isSet = account && account.secrets[name] === "set";
      form.append(el("div", {},
        el("label", { for: id, text: t(kind.secret_titles[name] || name) },
          el("span", { class: "hint muted small", text: isSet ? t("set") + " — " + t("leave empty to keep the saved value") : "" })),
        el("input", { id, name, type: "password", autocomplete: "new-password", "data-secret": "1" })));
    }
    form.append(el("div", { class: "channel-actions" },
      el("button", { type: "submit", class: "primary", id: "channel-save" }, t("Save")),
      el("button", { type: "button", onclick: () => { editor.hidden = true; } }, t("Cancel"))));
    form.onsubmit = async (event) => {
      event.preventDefault();
      const config = {};
      const secrets = {};
      let name = "";
      for (const input of form.querySelectorAll("input, select, textarea")) {
        if (input.name === "name") name = input.value.trim();
        else if (input.dataset.secret) { if (input.value) secrets[input.name] = input.value; }
        else if (input.dataset.array) config[input.name] = input.value.split("\n").map((s) => s.trim()).filter(Boolean);
        else if (input.type === "checkbox") config[input.name] = input.checked;
        else config[input.name] = input.value;
      }
      try {
        if (account) await api("PATCH", "/api/v1/channels/accounts/" + account.id, { name, config, secrets });
        else await api("POST", "/api/v1/channels/accounts", { kind: kind.kind, name, config, secrets });
        show(result, t("Saved"), true);
        editor.hidden = true;
        await loadAccounts();
      } catch (error) {
        show(result, error.message, false);
      }
    };
    const first = form.querySelector("input, select, textarea");
    if (first) first.focus();
  }

  // -- the accounts ---------------------------------------------------------------------------------
  function renderAccount(account) {
    const kind = kinds[account.kind];
    const result = el("p", { class: "channel-result", role: "status" });
    const facts = el("dl", {});
    const fact = (term, value) => { facts.append(el("dt", { text: term }), el("dd", {}, value)); };
    if (account.webhook_path) {
      fact(t("Webhook address to paste into the vendor"),
        el("code", { class: "webhook-url", text: page.dataset.baseUrl + account.webhook_path }));
    }
    for (const [name, status] of Object.entries(account.secrets)) {
      fact(t(kind.secret_titles[name] || name), document.createTextNode(t(status)));
    }
    if (account.state && account.state.poll_error) fact(t("Polling error"), document.createTextNode(account.state.poll_error));
    if (account.pending_events) fact(t("Waiting for media download"), document.createTextNode(String(account.pending_events)));
    if (account.failed_events) fact(t("Failed events"), document.createTextNode(String(account.failed_events)));
    const action = (label, id, fn) => el("button", { type: "button", id, onclick: async () => {
      try { await fn(); } catch (error) { show(result, error.message, false); }
    } }, label);
    const actions = el("div", { class: "channel-actions" },
      action(t("Edit"), "edit-" + account.id, async () => openEditor(kind, account)),
      kind.can_test ? action(t("Test connection"), "test-" + account.id, async () => {
        const answer = await api("POST", "/api/v1/channels/accounts/" + account.id + "/test");
        show(result, answer.message, true);
      }) : null,
      kind.can_connect_webhook ? action(t("Connect webhook"), "connect-" + account.id, async () => {
        const answer = await api("POST", "/api/v1/channels/accounts/" + account.id + "/connect", { base_url: page.dataset.baseUrl });
        show(result, answer.message, true);
      }) : null,
      action(account.enabled ? t("Disable") : t("Enable"), "toggle-" + account.id, async () => {
        await api("PATCH", "/api/v1/channels/accounts/" + account.id, { enabled: !account.enabled });
        await loadAccounts();
      }),
      action(t("Delete"), "delete-" + account.id, async () => {
        if (!window.confirm(t("Delete this channel account?"))) return;
        await api("DELETE", "/api/v1/channels/accounts/" + account.id);
        await loadAccounts();
      }));
    return el("section", { class: "card channel-account", "data-account-id": account.id, "data-kind": account.kind },
      el("header", {},
        el("span", { class: "channel-icon", "aria-hidden": "true", text: kind.icon }),
        el("h3", { text: t(kind.title) + " · " + account.name }),
        el("span", { class: "badge", text: account.enabled ? t("Enabled") : t("Disabled") })),
      facts, actions, result);
  }

  async function loadAccounts() {
    const box = document.getElementById("channel-accounts");
    const accounts = await api("GET", "/api/v1/channels/accounts");
    box.replaceChildren();
    if (!accounts.length) box.append(el("p", { class: "muted", text: t("No channel accounts yet: pick a channel above.") }));
    for (const account of accounts) if (kinds[account.kind]) box.append(renderAccount(account));
  }

  // -- dead letters ---------------------------------------------------------------------------------
  async function loadDeadLetters() {
    const box = document.getElementById("dead-letters");
    const items = await api("GET", "/api/v1/outbox?status=dead&limit=100");
    box.replaceChildren();
    if (!items.length) { box.append(el("p", { class: "muted", text: t("No undelivered messages.") })); return; }
    const body = el("tbody", {});
    for (const item of items) {
      const status = el("span", { role: "status" });
      body.append(el("tr", { "data-outbox-id": item.id },
        el("td", { text: "#" + item.id }), el("td", { text: item.channel }),
        el("td", { text: item.last_error || "" }), el("td", { text: String(item.attempts) }),
        el("td", {}, el("button", { type: "button", id: "retry-" + item.id, onclick: async () => {
          try {
            const answer = await api("POST", "/api/v1/outbox/" + item.id + "/retry");
            status.textContent = answer.status === "sent" ? "✓" : t("Queued again");
            setTimeout(loadDeadLetters, 1500);
          } catch (error) { status.textContent = error.message; }
        } }, t("Retry")), " ", status)));
    }
    box.append(el("table", { class: "dead-letters" },
      el("thead", {}, el("tr", {}, el("th", { text: "#" }), el("th", { text: t("Channel") }),
        el("th", { text: t("Error") }), el("th", { text: t("Attempts") }), el("th", { text: "" }))), body));
  }

  (async function start() {
    const list = await api("GET", "/api/v1/channels/kinds");
    kinds = Object.fromEntries(list.map((k) => [k.kind, k]));
    renderKinds(list);
    await Promise.all([loadAccounts(), loadDeadLetters()]);
  })().catch((error) => {
    document.getElementById("channel-accounts").textContent = error.message;
  });
})();
