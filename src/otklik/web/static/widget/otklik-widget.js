/*! Otklik chat widget — one file, no dependencies, styles isolated in a Shadow DOM.
 * Embed: <script src="https://YOUR-OTKLIK/widget/otklik-widget.js" data-key="wk_..." async></script>
 * Optional, before it: window.otklikSettings = {lang: "en", user: {user_id, user_hash, email, name}}
 * Customer and agent text is always inserted with textContent, never as HTML. */
(function () {
  'use strict';
  if (window.__otklikWidget) return;
  window.__otklikWidget = true;
  var script = document.currentScript || document.querySelector('script[data-key][src*="otklik-widget"]');
  if (!script) return;
  var opts = Object.assign({}, window.otklikSettings || {});
  var KEY = script.getAttribute('data-key') || opts.key;
  // a page with a Content-Security-Policy lets our <style> in by the nonce it gave our <script> tag
  var NONCE = script.nonce || script.getAttribute('nonce') || '';
  if (!KEY) { console.error('Otklik widget: data-key is missing'); return; }
  var BASE = opts.server || new URL(script.src, location.href).origin;
  var API = BASE + '/api/v1/widget';
  var LANG = String(opts.lang || script.getAttribute('data-lang') || navigator.language || 'ru').slice(0, 2).toLowerCase();
  if (LANG !== 'en') LANG = 'ru';
  var STORE = 'otklik:' + KEY + ':';

  var T = {
    ru: {placeholder: 'Напишите сообщение…', send: 'Отправить', attach: 'Прикрепить файл', close: 'Закрыть',
      chat: 'Написать в чат', callback: 'Заказать звонок', telegram: 'Telegram', vk: 'ВКонтакте', whatsapp: 'WhatsApp',
      max: 'MAX', email: 'Написать на почту', phone: 'Позвонить', typing: 'печатает…', you: 'Вы', agent: 'Оператор',
      name: 'Имя', phoneField: 'Телефон', time: 'Удобное время (необязательно)', callMe: 'Перезвоните мне',
      callbackDone: 'Спасибо! Мы перезвоним вам.', email_: 'Email', question: 'Ваш вопрос', leave: 'Отправить',
      offlineDone: 'Спасибо! Мы ответим, как только начнём работу.', badPhone: 'Проверьте номер телефона',
      needName: 'Укажите имя', needContact: 'Оставьте email или телефон', failed: 'Не отправлено — повторим',
      sent: 'отправлено', read: 'прочитано', back: 'Назад', error: 'Что-то пошло не так, попробуйте ещё раз',
      tooBig: 'Файл слишком большой', badType: 'Можно прикрепить картинку или PDF', open: 'Открыть чат'},
    en: {placeholder: 'Type a message…', send: 'Send', attach: 'Attach a file', close: 'Close',
      chat: 'Chat with us', callback: 'Request a callback', telegram: 'Telegram', vk: 'VK', whatsapp: 'WhatsApp',
      max: 'MAX', email: 'Email us', phone: 'Call us', typing: 'is typing…', you: 'You', agent: 'Agent',
      name: 'Name', phoneField: 'Phone', time: 'Preferred time (optional)', callMe: 'Call me back',
      callbackDone: 'Thank you! We will call you back.', email_: 'Email', question: 'Your question', leave: 'Send',
      offlineDone: 'Thank you! We will answer as soon as we are back.', badPhone: 'Check the phone number',
      needName: 'Enter your name', needContact: 'Leave an email or a phone', failed: 'Not sent — will retry',
      sent: 'sent', read: 'read', back: 'Back', error: 'Something went wrong, please try again',
      tooBig: 'The file is too large', badType: 'Attach an image or a PDF', open: 'Open chat'}
  }[LANG];

  // brand colours of the launcher's buttons (drawn as dots: no emoji font or icon font is needed)
  var DOTS = {chat: 'var(--c)', callback: '#1a7f37', telegram: '#2aabee', vk: '#0077ff', whatsapp: '#25d366',
    max: '#7b3ff2', email: '#6b7280', phone: '#1a7f37'};
  var SVG_NS = 'http://www.w3.org/2000/svg';
  var PATHS = {
    chat: 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z',
    clip: 'M16.5 6.5l-7.8 7.8a2 2 0 0 0 2.8 2.8l7.8-7.8a4 4 0 0 0-5.7-5.7l-7.8 7.8a6 6 0 0 0 8.5 8.5l6.4-6.4',
    file: 'M6 2h8l6 6v14H6zM14 2v6h6'
  };
  function icon(name, size) {
    var svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', size);
    svg.setAttribute('height', size);
    svg.setAttribute('aria-hidden', 'true');
    var path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', PATHS[name]);
    path.setAttribute('fill', name === 'chat' ? 'currentColor' : 'none');
    path.setAttribute('stroke', 'currentColor');
    path.setAttribute('stroke-width', name === 'chat' ? '0' : '2');
    path.setAttribute('stroke-linecap', 'round');
    path.setAttribute('stroke-linejoin', 'round');
    svg.appendChild(path);
    return svg;
  }

  var CSS = [
    ':host{all:initial;--c:#2952cc;--tc:#fff;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330}',
    '*{box-sizing:border-box;font:inherit}',
    '.ow{position:fixed;bottom:20px;right:20px;z-index:2147483000;display:flex;flex-direction:column;align-items:flex-end;gap:10px}',
    '.ow.left{right:auto;left:20px;align-items:flex-start}',
    '.ow-dot{width:10px;height:10px;border-radius:50%;display:inline-block;flex:none}',
    '.ow-launcher svg{vertical-align:middle}',
    '.ow-file-link svg{vertical-align:-2px}',
    '.ow-launcher{width:58px;height:58px;border-radius:50%;border:0;background:var(--c);color:var(--tc);font-size:26px;cursor:pointer;box-shadow:0 4px 16px rgba(0,0,0,.25);position:relative}',
    '.ow-badge{position:absolute;top:-4px;right:-4px;background:#e5484d;color:#fff;border-radius:10px;font-size:12px;padding:1px 6px;display:none}',
    '.ow-menu{display:none;flex-direction:column;gap:6px;align-items:stretch}',
    '.ow-menu.on{display:flex}',
    '.ow-menu a,.ow-menu button{display:flex;gap:8px;align-items:center;padding:9px 14px;border-radius:20px;border:0;background:#fff;color:#1d2330;text-decoration:none;box-shadow:0 2px 8px rgba(0,0,0,.18);cursor:pointer;white-space:nowrap}',
    '.ow-panel{display:none;width:360px;max-width:calc(100vw - 40px);height:520px;max-height:calc(100vh - 110px);background:#fff;border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.25);flex-direction:column;overflow:hidden}',
    '.ow-panel.on{display:flex}',
    '.ow-head{background:var(--c);color:var(--tc);padding:12px 14px;display:flex;justify-content:space-between;align-items:center;font-weight:600}',
    '.ow-head button{background:none;border:0;color:var(--tc);font-size:20px;cursor:pointer;line-height:1}',
    '.ow-view{display:none;flex:1;flex-direction:column;min-height:0}',
    '.ow-view.on{display:flex}',
    '.ow-messages{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f6f7f9}',
    '.ow-msg{max-width:82%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word;overflow-wrap:anywhere}',
    '.ow-msg.ow-visitor{align-self:flex-end;background:var(--c);color:var(--tc);border-bottom-right-radius:3px}',
    '.ow-msg.ow-agent{align-self:flex-start;background:#fff;border:1px solid #e3e6ec;border-bottom-left-radius:3px}',
    '.ow-msg.ow-system{align-self:center;background:#fff8e1;font-size:13px}',
    '.ow-author{font-size:11px;opacity:.7;margin-bottom:2px}',
    '.ow-status{font-size:11px;opacity:.75;text-align:right;margin-top:2px}',
    '.ow-msg img{max-width:100%;border-radius:8px;display:block;margin-top:4px}',
    '.ow-msg a{color:inherit}',
    '.ow-typing{font-size:12px;color:#667;padding:0 14px;height:18px}',
    '.ow-quick{display:flex;flex-wrap:wrap;gap:6px;padding:6px 12px}',
    '.ow-quick button{border:1px solid var(--c);color:var(--c);background:#fff;border-radius:14px;padding:4px 10px;cursor:pointer;font-size:13px}',
    '.ow-compose{display:flex;gap:6px;padding:8px;border-top:1px solid #e3e6ec;align-items:flex-end}',
    '.ow-input{flex:1;resize:none;border:1px solid #cfd4dc;border-radius:8px;padding:8px;max-height:100px;min-height:38px}',
    '.ow-input::placeholder{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}',
    '.ow-send,.ow-attach{border:0;border-radius:8px;background:var(--c);color:var(--tc);padding:8px 12px;cursor:pointer}',
    '.ow-attach{background:#eef0f4;color:#1d2330}',
    '.ow-files{font-size:12px;padding:0 12px;color:#445}',
    'form{padding:14px;display:flex;flex-direction:column;gap:8px;overflow-y:auto}',
    'label{display:flex;flex-direction:column;gap:3px;font-size:13px}',
    'input,textarea{border:1px solid #cfd4dc;border-radius:8px;padding:8px}',
    'input[aria-invalid=true]{border-color:#e5484d}',
    'form button{border:0;border-radius:8px;background:var(--c);color:var(--tc);padding:10px;cursor:pointer}',
    '.ow-error{color:#c4262b;font-size:13px;min-height:1em}',
    '.ow-done{padding:14px;color:#1a7f37}',
    '.ow-note{padding:10px 14px;font-size:13px;color:#445}',
    '.ow-greeting{max-width:280px;background:#fff;border-radius:12px;padding:10px 30px 10px 12px;box-shadow:0 4px 16px rgba(0,0,0,.2);cursor:pointer;position:relative;white-space:pre-wrap}',
    '.ow-greeting button{position:absolute;top:4px;right:6px;border:0;background:none;cursor:pointer;font-size:16px}',
    '@media (max-width:480px){.ow-panel{width:calc(100vw - 20px);height:calc(100vh - 100px)}.ow{right:10px;bottom:10px}}'
  ].join('\n');

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k === 'class') node.className = attrs[k];
      else if (k.slice(0, 2) === 'on') node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  // A message's text with its web addresses (and the help center's own /help/ paths) as links; everything
  // else stays text nodes, so customer and agent text is never parsed as HTML.
  var LINK = /(https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?»)]|\/help\/[^\s<>"']+[^\s<>"'.,;:!?»)])/g;
  function linkified(text) {
    var node = el('div', {class: 'ow-text'});
    var last = 0;
    text.replace(LINK, function (url, _g, at) {
      if (at > last) node.appendChild(document.createTextNode(text.slice(last, at)));
      node.appendChild(el('a', {href: url.charAt(0) === '/' ? BASE + url : url, target: '_blank', rel: 'noopener nofollow',
        text: url}));
      last = at + url.length;
      return url;
    });
    if (last < text.length) node.appendChild(document.createTextNode(text.slice(last)));
    return node;
  }

  function randomId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  function get(k) { try { return localStorage.getItem(STORE + k); } catch (e) { return null; } }
  function set(k, v) { try { localStorage.setItem(STORE + k, v); } catch (e) { /* private mode */ } }

  var state = {token: get('token'), config: null, messages: {}, lastId: 0, ws: null, wsReady: false,
    pending: {}, open: false, unread: 0, polling: false, typingTimer: null, typingSent: 0, files: []};

  async function api(method, path, body, isForm) {
    var headers = {};
    if (state.token) headers['X-Otklik-Visitor'] = state.token;
    if (body && !isForm) headers['Content-Type'] = 'application/json';
    var res = await fetch(API + path, {method: method, headers: headers, credentials: 'omit',
      body: body ? (isForm ? body : JSON.stringify(body)) : undefined});
    var data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      var err = new Error((data && data.error && data.error.message) || res.statusText);
      err.status = res.status;
      err.code = data && data.error && data.error.code;
      err.fields = (data && data.error && data.error.fields) || [];
      throw err;
    }
    return data;
  }

  // -- the DOM -----------------------------------------------------------------------------------------
  var host = el('div', {id: 'otklik-widget', 'data-state': 'loading'});
  var root = host.attachShadow({mode: 'open'});
  root.appendChild(el('style', NONCE ? {text: CSS, nonce: NONCE} : {text: CSS}));
  var ui = {};
  ui.badge = el('span', {class: 'ow-badge'});
  ui.launcher = el('button', {class: 'ow-launcher', type: 'button', 'aria-label': T.open, onclick: onLauncher},
    [icon('chat', 28), ui.badge]);
  ui.menu = el('div', {class: 'ow-menu', role: 'menu'});
  ui.title = el('span', {class: 'ow-title'});
  ui.messages = el('div', {class: 'ow-messages', 'aria-live': 'polite'});
  ui.typing = el('div', {class: 'ow-typing'});
  ui.quick = el('div', {class: 'ow-quick'});
  ui.files = el('div', {class: 'ow-files'});
  ui.input = el('textarea', {class: 'ow-input', rows: '1', placeholder: T.placeholder, maxlength: '5000',
    onkeydown: function (e) { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); sendFromInput(); } },
    oninput: onTyping});
  ui.file = el('input', {type: 'file', class: 'ow-file', accept: 'image/png,image/jpeg,image/gif,image/webp,application/pdf',
    hidden: 'hidden', onchange: onFile});
  ui.chat = el('div', {class: 'ow-view ow-chat'}, [ui.messages, ui.typing, ui.quick, ui.files,
    el('div', {class: 'ow-compose'}, [
      el('button', {class: 'ow-attach', type: 'button', title: T.attach, 'aria-label': T.attach,
        onclick: function () { ui.file.click(); }}, [icon('clip', 18)]),
      ui.file, ui.input,
      el('button', {class: 'ow-send', type: 'button', onclick: sendFromInput, text: T.send})])]);
  ui.callback = el('div', {class: 'ow-view ow-callback'});
  ui.offline = el('div', {class: 'ow-view ow-offline'});
  ui.panel = el('div', {class: 'ow-panel', role: 'dialog'}, [
    el('div', {class: 'ow-head'}, [ui.title, el('button', {type: 'button', class: 'ow-close', 'aria-label': T.close,
      onclick: function () { showPanel(null); }, text: '×'})]),
    ui.chat, ui.callback, ui.offline]);
  ui.greeting = el('div', {class: 'ow-greeting', hidden: 'hidden'});
  ui.wrap = el('div', {class: 'ow'}, [ui.panel, ui.greeting, ui.menu, ui.launcher]);
  root.appendChild(ui.wrap);

  function applyConfig(cfg) {
    state.config = cfg;
    host.style.setProperty('--c', cfg.color);
    host.style.setProperty('--tc', cfg.text_color);
    if (cfg.position === 'left') ui.wrap.classList.add('left');
    ui.title.textContent = cfg.texts.title;
    ui.menu.textContent = '';
    cfg.buttons.forEach(function (b) {
      var dot = el('span', {class: 'ow-dot'});
      dot.style.background = DOTS[b.kind];  // a property, not a style attribute: allowed under a strict CSP
      var label = el('span', {text: T[b.kind]});
      var node = (b.kind === 'chat' || b.kind === 'callback')
        ? el('button', {type: 'button', 'data-kind': b.kind,
          onclick: function () { showPanel(b.kind === 'chat' ? (cfg.online ? 'chat' : 'offline') : 'callback'); }}, [dot, label])
        : el('a', {href: b.href, 'data-kind': b.kind, target: b.kind === 'email' || b.kind === 'phone' ? '_self' : '_blank',
          rel: 'noopener noreferrer'}, [dot, label]);
      ui.menu.appendChild(node);
    });
    ui.quick.textContent = '';
    cfg.quick_replies.forEach(function (q) {
      ui.quick.appendChild(el('button', {type: 'button', text: q, onclick: function () { send(q, []); }}));
    });
    buildCallback();
    buildOffline();
    host.setAttribute('data-online', cfg.online ? 'yes' : 'no');
  }

  function onLauncher() {
    ui.greeting.hidden = true;
    if (state.panel) { showPanel(null); return; }
    var buttons = state.config ? state.config.buttons : [];
    if (buttons.length === 1 && buttons[0].kind === 'chat') { showPanel(state.config.online ? 'chat' : 'offline'); return; }
    ui.menu.classList.toggle('on');
  }

  function showPanel(view) {
    state.panel = view;
    ui.menu.classList.remove('on');
    ui.panel.classList.toggle('on', !!view);
    [['chat', ui.chat], ['callback', ui.callback], ['offline', ui.offline]].forEach(function (p) {
      p[1].classList.toggle('on', p[0] === view);
    });
    state.open = view === 'chat';
    if (state.open) {
      state.unread = 0;
      ui.badge.style.display = 'none';
      ui.messages.scrollTop = ui.messages.scrollHeight;
      ui.input.focus();
      markRead();
    }
  }

  // -- messages ----------------------------------------------------------------------------------------
  function statusText(m) {
    if (m.from !== 'visitor') return '';
    if (m.failed) return T.failed;
    return m.id ? T.sent : '…';
  }

  function render(m) {
    var key = m.client_id || ('id' + m.id);
    var node = ui.messages.querySelector('[data-key="' + key + '"]');
    if (!node) {
      node = el('div', {class: 'ow-msg ' + (m.from === 'visitor' ? 'ow-visitor' : 'ow-agent'), 'data-key': key});
      ui.messages.appendChild(node);
    }
    if (m.id) node.setAttribute('data-id', String(m.id));
    node.textContent = '';
    if (m.from !== 'visitor') node.appendChild(el('div', {class: 'ow-author', text: m.author || T.agent}));
    if (m.text) node.appendChild(linkified(m.text));
    (m.attachments || []).forEach(function (a) {
      var url = BASE + a.url;
      node.appendChild(a.type.indexOf('image/') === 0
        ? el('a', {href: url, target: '_blank', rel: 'noopener'}, [el('img', {src: url, alt: a.name, class: 'ow-image'})])
        : el('div', {}, [el('a', {href: url, target: '_blank', rel: 'noopener', class: 'ow-file-link'},
          [icon('file', 14), el('span', {text: ' ' + a.name})])]));
    });
    var st = statusText(m);
    if (st) node.appendChild(el('div', {class: 'ow-status', text: st}));
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function accept(m) {
    var isNew = m.id && !state.messages[m.id];
    if (!isNew && !m.client_id) return;
    if (m.id) state.messages[m.id] = m;
    if (m.client_id) delete state.pending[m.client_id];
    render(m);
    if (m.id) state.lastId = Math.max(state.lastId, m.id);
    if (isNew && m.from === 'agent') {
      ui.typing.textContent = '';
      if (state.open && document.visibilityState === 'visible') markRead();
      else {
        state.unread += 1;
        ui.badge.textContent = String(state.unread);
        ui.badge.style.display = 'block';
        api('POST', '/read', {up_to_id: m.id, status: 'delivered'}).catch(function () {});
      }
    }
  }

  function markRead() {
    var ids = Object.keys(state.messages).map(Number).filter(function (id) { return state.messages[id].from === 'agent'; });
    if (!ids.length) return;
    var upTo = Math.max.apply(null, ids);
    if (upTo <= (state.readUpTo || 0)) return;
    state.readUpTo = upTo;
    if (state.wsReady) state.ws.send(JSON.stringify({type: 'read', up_to: upTo}));
    else api('POST', '/read', {up_to_id: upTo, status: 'read'}).catch(function () {});
  }

  function send(text, handles) {
    text = (text || '').trim();
    if (!text && !handles.length) return;
    var clientId = randomId();
    var m = {client_id: clientId, from: 'visitor', text: text, attachments: []};
    state.pending[clientId] = {client_id: clientId, text: text, attachments: handles};
    render(m);
    deliver(clientId);
  }

  async function deliver(clientId) {
    var body = state.pending[clientId];
    if (!body) return;
    if (state.wsReady) { state.ws.send(JSON.stringify(Object.assign({type: 'message'}, body))); return; }
    try {
      var res = await api('POST', '/messages', body);
      accept(res.message);
    } catch (e) {
      if (e.status && e.status < 500 && e.status !== 429) {
        delete state.pending[clientId];
        render({client_id: clientId, from: 'visitor', text: (body.text || '') + '\n⚠ ' + e.message, failed: true});
        return;
      }
      render({client_id: clientId, from: 'visitor', text: body.text, failed: true});
      setTimeout(function () { deliver(clientId); }, 3000);  // the same client_id: a retry never duplicates
    }
  }

  function sendFromInput() {
    var handles = state.files.map(function (f) { return f.handle; });
    send(ui.input.value, handles);
    ui.input.value = '';
    state.files = [];
    ui.files.textContent = '';
    typing(false);
  }

  async function onFile() {
    var file = ui.file.files[0];
    ui.file.value = '';
    if (!file) return;
    if (file.size > 10 * 1048576) { ui.files.textContent = T.tooBig; return; }
    var form = new FormData();
    form.append('file', file, file.name);
    try {
      var res = await api('POST', '/attachments', form, true);
      state.files.push(res);
      ui.files.textContent = state.files.map(function (f) { return f.name; }).join(', ');
    } catch (e) {
      ui.files.textContent = e.status === 415 ? T.badType : e.status === 413 ? T.tooBig : T.error;
    }
  }

  function onTyping() {
    var now = Date.now();
    if (now - state.typingSent > 3000) { state.typingSent = now; typing(true); }
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(function () { typing(false); }, 4000);
  }

  function typing(on) {
    if (!on) { clearTimeout(state.typingTimer); state.typingSent = 0; }
    if (state.wsReady) state.ws.send(JSON.stringify({type: 'typing', typing: on}));
    else api('POST', '/typing', {typing: on}).catch(function () {});
  }

  // -- forms -------------------------------------------------------------------------------------------
  function field(name, label, type, required) {
    return el('label', {}, [document.createTextNode(label),
      el(type === 'textarea' ? 'textarea' : 'input', Object.assign({name: name}, type === 'textarea' ? {rows: '4'} : {type: type},
        required ? {required: 'required'} : {}))]);
  }

  function showErrors(form, err) {
    var box = form.querySelector('.ow-error');
    form.querySelectorAll('[aria-invalid]').forEach(function (n) { n.removeAttribute('aria-invalid'); });
    var messages = [];
    (err.fields || []).forEach(function (f) {
      var name = f.field === 'preferred_time' ? 'time' : f.field;
      var input = form.querySelector('[name="' + name + '"]');
      if (input) input.setAttribute('aria-invalid', 'true');
      messages.push(name === 'phone' ? T.badPhone : name === 'name' ? T.needName : f.message);
    });
    box.textContent = messages.length ? messages.join('; ') : (err.message || T.error);
  }

  function buildCallback() {
    ui.callback.textContent = '';
    var form = el('form', {class: 'ow-callback-form', novalidate: 'novalidate'}, [
      field('name', T.name, 'text', true), field('phone', T.phoneField, 'tel', true), field('time', T.time, 'text'),
      el('div', {class: 'ow-error', role: 'alert'}), el('button', {type: 'submit', text: T.callMe})]);
    form.addEventListener('submit', async function (e) {
      e.preventDefault();
      var name = form.elements.name.value.trim(), phone = form.elements.phone.value.trim();
      if (!name) { showErrors(form, {fields: [{field: 'name'}]}); return; }
      if (!/^[+0-9()\s-]{5,25}$/.test(phone)) { showErrors(form, {fields: [{field: 'phone'}]}); return; }
      try {
        await api('POST', '/callback', {name: name, phone: phone, preferred_time: form.elements.time.value.trim(),
          client_id: form.dataset.cid || (form.dataset.cid = randomId())});
        ui.callback.textContent = '';
        ui.callback.appendChild(el('div', {class: 'ow-done', text: T.callbackDone}));
      } catch (err) { showErrors(form, err); }
    });
    ui.callback.appendChild(form);
  }

  function buildOffline() {
    ui.offline.textContent = '';
    var form = el('form', {class: 'ow-offline-form', novalidate: 'novalidate'}, [
      el('div', {class: 'ow-note', text: state.config.texts.offline}),
      field('name', T.name, 'text'), field('email', T.email_, 'email'), field('phone', T.phoneField, 'tel'),
      field('text', T.question, 'textarea', true), el('div', {class: 'ow-error', role: 'alert'}),
      el('button', {type: 'submit', text: T.leave})]);
    form.addEventListener('submit', async function (e) {
      e.preventDefault();
      var v = function (n) { return form.elements[n].value.trim(); };
      if (!v('email') && !v('phone')) { showErrors(form, {message: T.needContact}); return; }
      try {
        await api('POST', '/offline', {name: v('name'), email: v('email'), phone: v('phone'), text: v('text'),
          client_id: form.dataset.cid || (form.dataset.cid = randomId())});
        ui.offline.textContent = '';
        ui.offline.appendChild(el('div', {class: 'ow-done', text: T.offlineDone}));
      } catch (err) { showErrors(form, err); }
    });
    ui.offline.appendChild(form);
  }

  // -- live connection: WebSocket, long-poll when sockets are blocked --------------------------------------
  function onFrame(f) {
    if (f.type === 'ready') {
      state.wsReady = true;
      host.setAttribute('data-transport', 'websocket');
      Object.keys(state.pending).forEach(deliver);
      catchUp();
    } else if (f.type === 'ack') {
      accept(f.message);
    } else if (f.type === 'message') {
      accept(f.message);
    } else if (f.type === 'typing') {
      ui.typing.textContent = f.typing ? (f.name || T.agent) + ' ' + T.typing : '';
      clearTimeout(state.agentTyping);  // typing frames repeat while the agent types; silence clears it
      if (f.typing) state.agentTyping = setTimeout(function () { ui.typing.textContent = ''; }, 6000);
    } else if (f.type === 'greeting') {
      showGreeting(f.greeting);
    } else if (f.type === 'error' && f.client_id && state.pending[f.client_id]) {
      var body = state.pending[f.client_id];
      delete state.pending[f.client_id];
      render({client_id: f.client_id, from: 'visitor', text: (body.text || '') + '\n⚠ ' + f.error.message, failed: true});
    }
  }

  function connect(attempt) {
    var ws;
    try { ws = new WebSocket(API.replace(/^http/, 'ws') + '/ws'); } catch (e) { startPolling(); return; }
    state.ws = ws;
    var opened = false;
    ws.onopen = function () { opened = true; ws.send(JSON.stringify({type: 'auth', token: state.token})); };
    ws.onmessage = function (e) { try { onFrame(JSON.parse(e.data)); } catch (err) { /* ignore a bad frame */ } };
    ws.onclose = function () {
      state.wsReady = false;
      if (!opened && attempt >= 1) { startPolling(); return; }
      setTimeout(function () { connect(attempt + 1); }, Math.min(30000, 1000 * Math.pow(2, attempt)));
    };
  }

  async function catchUp() {
    try {
      var res = await api('GET', '/messages?after=' + state.lastId);
      res.messages.forEach(accept);
    } catch (e) { /* the next reconnect tries again */ }
  }

  async function startPolling() {
    if (state.polling) return;
    state.polling = true;
    host.setAttribute('data-transport', 'poll');
    Object.keys(state.pending).forEach(deliver);
    while (state.polling) {
      try {
        var res = await api('GET', '/poll?after=' + state.lastId + '&wait=25');
        res.messages.forEach(accept);
        (res.events || []).forEach(onFrame);
      } catch (e) { await new Promise(function (r) { setTimeout(r, 5000); }); }
    }
  }

  // -- pages and greetings -----------------------------------------------------------------------------
  function showGreeting(g) {
    if (!g || state.panel) return;
    var today = new Date().toISOString().slice(0, 10);
    if (get('greeting:' + g.id) === today) return;  // once per visitor per rule per day
    clearTimeout(state.greetingTimer);
    state.greetingTimer = setTimeout(function () {
      if (state.panel) return;
      set('greeting:' + g.id, today);
      ui.greeting.textContent = '';
      ui.greeting.appendChild(el('span', {class: 'ow-greeting-text', text: g.text}));
      ui.greeting.appendChild(el('button', {type: 'button', 'aria-label': T.close, text: '×',
        onclick: function (e) { e.stopPropagation(); ui.greeting.hidden = true; }}));
      ui.greeting.onclick = function () { ui.greeting.hidden = true; showPanel(state.config.online ? 'chat' : 'offline'); };
      ui.greeting.hidden = false;
    }, g.delay_seconds * 1000);
  }

  async function trackPage() {
    if (!/^https?:/.test(location.href)) return;
    try {
      var res = await api('POST', '/pages', {url: location.href.slice(0, 2000), title: document.title.slice(0, 300)});
      showGreeting(res.greeting);
    } catch (e) { /* page tracking is best effort */ }
  }

  ['pushState', 'replaceState'].forEach(function (name) {
    var original = history[name];
    history[name] = function () {
      var result = original.apply(this, arguments);
      setTimeout(trackPage, 0);
      return result;
    };
  });
  window.addEventListener('popstate', trackPage);
  document.addEventListener('visibilitychange', function () { if (state.open) markRead(); });

  // -- start -------------------------------------------------------------------------------------------
  async function startSession(identity) {
    return api('POST', '/session', {key: KEY, token: state.token, language: LANG, identity: identity || undefined});
  }

  async function start() {
    var res;
    var user = opts.user;
    try {
      res = await startSession(user && user.user_id ? {user_id: String(user.user_id), user_hash: String(user.user_hash || ''),
        email: user.email || undefined, name: user.name || undefined} : null);
      if (user && user.user_id) host.setAttribute('data-identity', 'verified');
    } catch (e) {
      if (e.code !== 'identity_rejected') { host.setAttribute('data-state', 'error'); console.error('Otklik widget:', e.message); return; }
      console.warn('Otklik widget: the identity signature was rejected; chatting as an anonymous visitor');
      host.setAttribute('data-identity', 'rejected');
      res = await startSession(null);
    }
    state.token = res.token;
    set('token', res.token);
    applyConfig(res.config);
    if (res.config.texts.welcome) ui.messages.appendChild(el('div', {class: 'ow-msg ow-agent ow-welcome', text: res.config.texts.welcome}));
    res.messages.forEach(accept);
    host.setAttribute('data-state', 'ready');
    connect(0);
    trackPage();
  }

  function mount() {
    document.body.appendChild(host);
    start();
  }
  window.OtklikWidget = {open: function () { showPanel('chat'); }, close: function () { showPanel(null); }};
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);
})();
