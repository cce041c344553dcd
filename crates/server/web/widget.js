// The Switchboard chat widget: one script tag on any site,
//   <script src="https://switchboard.example.com/widget.js" data-tenant="demo" async></script>
// Attributes (docs/chat.md): data-tenant (required), data-queue, data-flow (the chat bot flow to
// run; default the tenant's chat flow unless data-queue pins a queue), data-lang (en, ar, fa;
// default the page's lang), data-prechat ("name,email": fields of the optional pre-chat form).
//
// It draws a chat bubble in a shadow root (so no style leaks in or out of the host page), talks
// to /chat/ws, keeps the chat session token in localStorage so a reload or a new tab resumes the
// same conversation, re-sends unacknowledged messages after a reconnect (the server drops
// duplicates by client_id) and merges messages by seq, so none is lost or shown twice.
// Texts come from the shared translation table /assets/i18n.js.
(function switchboardWidget() {
  'use strict';
  if (window.SwitchboardChat) return;
  const script = document.currentScript || document.querySelector('script[src*="widget.js"][data-tenant]');
  if (!script) return;
  const base = new URL(script.src, location.href);
  const cfg = {
    tenant: script.dataset.tenant,
    queue: script.dataset.queue || undefined,
    flow: script.dataset.flow || undefined,
    lang: script.dataset.lang,
    prechat: (script.dataset.prechat || '').split(',').map((s) => s.trim()).filter((f) => f === 'name' || f === 'email'),
  };
  if (!cfg.tenant) {
    console.warn('Switchboard widget: data-tenant is missing');
    return;
  }
  const api = { open() { api.pending = 'open'; }, close() { api.pending = 'close'; } };
  window.SwitchboardChat = api;
  import(new URL('/assets/i18n.js', base).href).then((i18n) => start(i18n, base, cfg, api)).catch((e) => {
    console.warn('Switchboard widget: could not load', e);
  });

  const EMOJI = ['😀', '😂', '😊', '😍', '🙂', '😉', '😅', '😢', '😮', '🤔', '😎', '🥳', '😡', '👍', '👎',
    '👏', '🙏', '🙌', '👋', '❤️', '💔', '🎉', '🔥', '⭐', '✅', '❌', '📦', '🚚', '☕', '💬'];

  const CSS = `
:host { all: initial; }
.root {
  --accent: #3552d6; --accent-text: #fff; --bg: #fff; --soft: #f2f4f8; --border: #e1e4ea;
  --text: #1d2330; --muted: #667085; --danger: #c8372d;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans Arabic", Tahoma, sans-serif;
  color: var(--text);
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
button, input, textarea { font: inherit; color: inherit; }
button { cursor: pointer; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.launcher {
  position: fixed; inset-block-end: 20px; inset-inline-end: 20px; z-index: 2147483000;
  width: 58px; height: 58px; border-radius: 50%; border: 0; background: var(--accent); color: var(--accent-text);
  box-shadow: 0 6px 20px rgb(16 24 40 / 25%); display: grid; place-items: center; font-size: 26px;
  transition: transform .15s ease;
}
.launcher:hover { transform: scale(1.05); }
.launcher svg { width: 28px; height: 28px; }
.badge {
  position: absolute; inset-block-start: -2px; inset-inline-end: -2px; min-width: 20px; height: 20px; border-radius: 10px;
  background: var(--danger); color: #fff; font-size: 12px; font-weight: 700; display: grid; place-items: center; padding: 0 5px;
}
.panel {
  position: fixed; inset-block-end: 92px; inset-inline-end: 20px; z-index: 2147483000;
  width: 370px; height: min(580px, calc(100vh - 112px)); background: var(--bg); border-radius: 16px;
  box-shadow: 0 12px 40px rgb(16 24 40 / 22%); display: flex; flex-direction: column; overflow: hidden;
  border: 1px solid var(--border);
}
@media (max-width: 480px) {
  .panel { inset: 0; width: auto; height: auto; border-radius: 0; }
}
.head { background: var(--accent); color: var(--accent-text); padding: 14px 14px 12px; display: flex; align-items: flex-start; gap: 8px; }
.head-text { flex: 1; min-width: 0; }
.title { font-weight: 700; font-size: 16px; margin: 0; }
.status { font-size: 12.5px; opacity: .9; margin-top: 2px; min-height: 18px; }
.icon-btn { background: transparent; border: 0; color: inherit; width: 32px; height: 32px; border-radius: 8px; font-size: 18px; display: grid; place-items: center; }
.icon-btn:hover { background: rgb(255 255 255 / 16%); }
.menu {
  position: absolute; inset-block-start: 58px; inset-inline-end: 12px; background: var(--bg); color: var(--text);
  border: 1px solid var(--border); border-radius: 10px; box-shadow: 0 8px 24px rgb(16 24 40 / 18%); padding: 6px; z-index: 2; min-width: 210px;
}
.menu button { display: block; width: 100%; text-align: start; background: none; border: 0; padding: 8px 10px; border-radius: 6px; }
.menu button:hover { background: var(--soft); }
.body { flex: 1; min-height: 0; display: flex; flex-direction: column; position: relative; }
.log { flex: 1; overflow-y: auto; padding: 14px; display: flex; flex-direction: column; gap: 8px; background: #fafbfc; }
.intro { align-self: stretch; background: var(--soft); border-radius: 12px; padding: 10px 12px; color: var(--text); }
.msg { display: flex; flex-direction: column; align-items: flex-start; max-width: 82%; }
.msg.mine { align-self: flex-end; align-items: flex-end; }
.who { font-size: 11.5px; color: var(--muted); margin: 0 4px 2px; }
.bubble { background: var(--bg); border: 1px solid var(--border); padding: 8px 12px; border-radius: 16px; border-end-start-radius: 4px; }
.mine .bubble { background: var(--accent); color: var(--accent-text); border-color: var(--accent); border-end-start-radius: 16px; border-end-end-radius: 4px; }
.bubble p { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; unicode-bidi: plaintext; }
.pending .bubble { opacity: .7; }
.failed .bubble { border-color: var(--danger); }
.meta { font-size: 11px; color: var(--muted); margin: 2px 4px 0; display: flex; gap: 4px; align-items: center; }
.tick { letter-spacing: -0.2em; }
.tick.read { color: var(--accent); }
.sys { align-self: center; color: var(--muted); font-size: 12.5px; text-align: center; }
.msg.bot .bubble { background: var(--soft); }
.choices { display: flex; flex-wrap: wrap; gap: 6px; align-self: stretch; }
.choices button { padding: 6px 12px; }
.typing { min-height: 22px; padding: 2px 16px; font-size: 12.5px; color: var(--muted); font-style: italic; background: #fafbfc; }
.note { margin: 0 12px 8px; padding: 8px 10px; border-radius: 8px; background: #fff4e0; color: #8a5300; font-size: 13px; }
.ended { padding: 12px 14px; border-top: 1px solid var(--border); display: flex; flex-direction: column; gap: 8px; align-items: stretch; text-align: center; color: var(--muted); }
.composer { display: flex; align-items: flex-end; gap: 6px; padding: 10px; border-top: 1px solid var(--border); background: var(--bg); }
.composer textarea {
  flex: 1; resize: none; border: 1px solid var(--border); border-radius: 12px; padding: 8px 10px; max-height: 120px;
  min-height: 38px; background: var(--bg); outline: none;
}
.composer textarea:focus { border-color: var(--accent); }
.send { background: var(--accent); color: var(--accent-text); border: 0; border-radius: 12px; height: 38px; padding: 0 14px; font-weight: 600; }
.send:disabled { opacity: .5; cursor: default; }
.emoji-btn { background: none; border: 0; font-size: 20px; width: 36px; height: 38px; border-radius: 10px; }
.emoji-btn:hover { background: var(--soft); }
.files { display: flex; flex-direction: column; gap: 4px; margin-block-start: 4px; }
.files a { color: inherit; word-break: break-all; }
.files img { max-inline-size: 200px; max-block-size: 160px; border-radius: 8px; display: block; }
.emojis {
  position: absolute; inset-block-end: 62px; inset-inline-start: 10px; background: var(--bg); border: 1px solid var(--border);
  border-radius: 12px; box-shadow: 0 8px 24px rgb(16 24 40 / 18%); padding: 8px; display: grid; grid-template-columns: repeat(6, 1fr); gap: 2px; z-index: 2;
}
.emojis button { background: none; border: 0; font-size: 22px; width: 40px; height: 40px; border-radius: 8px; }
.emojis button:hover, .emojis button:focus { background: var(--soft); }
.form { padding: 16px; display: flex; flex-direction: column; gap: 10px; overflow-y: auto; }
.form label { display: flex; flex-direction: column; gap: 4px; font-size: 13px; color: var(--muted); }
.form input { border: 1px solid var(--border); border-radius: 10px; padding: 9px 10px; color: var(--text); }
.primary { background: var(--accent); color: var(--accent-text); border: 0; border-radius: 10px; padding: 10px 14px; font-weight: 600; }
.secondary { background: var(--bg); color: var(--accent); border: 1px solid var(--accent); border-radius: 10px; padding: 8px 14px; font-weight: 600; }
.inline { display: flex; gap: 6px; padding: 0 12px 10px; }
.grow { flex: 1; align-self: center; }
.inline input { flex: 1; border: 1px solid var(--border); border-radius: 10px; padding: 7px 10px; }
.error { color: var(--danger); font-size: 12.5px; padding: 0 14px 6px; }
.foot { text-align: center; font-size: 11px; color: var(--muted); padding: 0 0 6px; background: var(--bg); }
`;

  function start(i18n, base, cfg, api) {
    const { t, pickLang, dirOf, fmtWhen, fmtDuration, fmtNumber, fmtBytes } = i18n;
    // The widget's own language: it must not change the language of the host page's other scripts,
    // so every call passes it explicitly through `T`.
    const lang = pickLang(cfg.lang, document.documentElement.lang, navigator.language);
    const T = (key, params) => t(key, params || {}, lang);
    const storeKey = `sb.chat.${cfg.tenant}`;
    const load = () => {
      try {
        return JSON.parse(localStorage.getItem(storeKey) || '{}') || {};
      } catch {
        return {};
      }
    };
    const saved = load();
    const st = {
      session: saved.session || null,
      open: !!saved.open,
      prechatDone: !!saved.session || !cfg.prechat.length,
      name: saved.name || '',
      email: saved.email || '',
      interaction: null,
      messages: new Map(),
      pending: Array.isArray(saved.pending) ? saved.pending : [],
      agentRead: 0,
      readSent: 0,
      status: { state: 'new' },
      agentTyping: null,
      unread: 0,
      ws: null,
      conn: 'closed',
      welcomed: false,
      delay: 500,
      fatal: null,
      error: null,
      transcript: null,
      lastTypingSent: 0,
      menu: null,
    };
    const persist = () => {
      try {
        localStorage.setItem(storeKey, JSON.stringify({
          session: st.session, open: st.open, name: st.name, email: st.email,
          pending: st.pending.map(({ client_id, text, at, attachments }) => ({ client_id, text, at, attachments })),
        }));
      } catch {
        // Storage refused (private mode): the conversation lasts for this page only.
      }
    };

    /* ----- DOM ----- */
    const host = document.createElement('div');
    host.id = 'switchboard-chat';
    const shadow = host.attachShadow({ mode: 'open' });
    const root = el('div', { class: 'root', dir: dirOf(lang), lang });
    // A constructed style sheet is not subject to the host page's style-src policy; a <style>
    // element is the fallback for older browsers.
    let adopted = false;
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      shadow.adoptedStyleSheets = [sheet];
      adopted = true;
    } catch {
      adopted = false;
    }
    if (!adopted) {
      const style = document.createElement('style');
      style.textContent = CSS;
      shadow.append(style);
    }
    shadow.append(root);

    function el(tag, attrs, ...kids) {
      const e = document.createElement(tag);
      for (const [k, v] of Object.entries(attrs || {})) {
        if (v === null || v === undefined || v === false) continue;
        if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? '' : v);
      }
      for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
      return e;
    }

    const bubbleIcon = () => {
      const ns = 'http://www.w3.org/2000/svg';
      const svg = document.createElementNS(ns, 'svg');
      svg.setAttribute('viewBox', '0 0 24 24');
      svg.setAttribute('aria-hidden', 'true');
      const p = document.createElementNS(ns, 'path');
      p.setAttribute('fill', 'currentColor');
      p.setAttribute('d', 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z');
      svg.append(p);
      return svg;
    };

    const badge = el('span', { class: 'badge', hidden: true, 'aria-hidden': 'true' });
    const launcher = el('button', { class: 'launcher', type: 'button', 'aria-label': T('w.launcher'), 'aria-expanded': 'false', 'aria-controls': 'sb-panel' }, bubbleIcon(), badge);
    const statusLine = el('div', { class: 'status', role: 'status', 'aria-live': 'polite' });
    const menuBtn = el('button', { class: 'icon-btn', type: 'button', 'aria-label': T('w.menu'), 'aria-haspopup': 'true', 'aria-expanded': 'false', title: T('w.menu') }, '⋯');
    const minBtn = el('button', { class: 'icon-btn', type: 'button', 'aria-label': T('w.minimize'), title: T('w.minimize') }, '—');
    const transcriptItem = el('button', { type: 'button', role: 'menuitem' }, T('w.transcript'));
    const endItem = el('button', { type: 'button', role: 'menuitem' }, T('w.end_chat'));
    const menu = el('div', { class: 'menu', role: 'menu', hidden: true }, transcriptItem, endItem);
    const head = el('div', { class: 'head' },
      el('div', { class: 'head-text' }, el('h2', { class: 'title', id: 'sb-title' }, T('w.title')), statusLine),
      menuBtn, minBtn);

    // Pre-chat form.
    const nameInput = el('input', { name: 'name', autocomplete: 'name', dir: 'auto', maxlength: '100' });
    const emailInput = el('input', { name: 'email', type: 'email', autocomplete: 'email', dir: 'ltr', maxlength: '254' });
    const prechat = el('form', { class: 'form', hidden: true },
      el('p', {}, T('w.prechat')),
      cfg.prechat.includes('name') ? el('label', {}, T('w.name'), nameInput) : null,
      cfg.prechat.includes('email') ? el('label', {}, T('w.email'), emailInput) : null,
      el('div', { class: 'error', role: 'alert' }),
      el('button', { class: 'primary', type: 'submit' }, T('w.start')));

    // Conversation.
    const log = el('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': T('w.title'), tabindex: '0' });
    const typing = el('div', { class: 'typing', 'aria-live': 'polite' });
    const note = el('div', { class: 'note', role: 'alert', hidden: true });
    const transcriptInput = el('input', { type: 'email', dir: 'ltr', 'aria-label': T('w.email'), placeholder: T('w.email'), autocomplete: 'email' });
    const transcriptForm = el('form', { class: 'inline', hidden: true }, transcriptInput, el('button', { class: 'secondary', type: 'submit' }, T('w.transcript_send')));
    const confirmEnd = el('div', { class: 'inline', hidden: true, role: 'group', 'aria-label': T('w.end_confirm') },
      el('span', { class: 'grow' }, T('w.end_confirm')),
      el('button', { class: 'secondary', type: 'button', onclick: () => { confirmEnd.hidden = true; send({ type: 'close' }); } }, T('w.yes')),
      el('button', { class: 'secondary', type: 'button', onclick: () => { confirmEnd.hidden = true; } }, T('w.no')));
    const newChatBtn = el('button', { class: 'primary', type: 'button' }, T('w.new_chat'));
    const endedBox = el('div', { class: 'ended', hidden: true }, el('div', {}, T('w.ended')), newChatBtn);
    const textarea = el('textarea', { rows: '1', dir: 'auto', placeholder: T('w.placeholder'), 'aria-label': T('w.placeholder'), maxlength: '4000' });
    const sendBtn = el('button', { class: 'send', type: 'submit' }, T('w.send'));
    const emojiBtn = el('button', { class: 'emoji-btn', type: 'button', 'aria-label': T('w.emoji'), title: T('w.emoji'), 'aria-expanded': 'false' }, '😊');
    const emojis = el('div', { class: 'emojis', role: 'group', 'aria-label': T('w.emoji'), hidden: true },
      EMOJI.map((e) => el('button', { type: 'button', 'aria-label': e, onclick: () => insertEmoji(e) }, e)));
    const fileInput = el('input', { type: 'file', hidden: true, 'aria-hidden': 'true', tabindex: '-1' });
    const attachBtn = el('button', { class: 'emoji-btn attach-btn', type: 'button', 'aria-label': T('w.attach'), title: T('w.attach') }, '📎');
    attachBtn.addEventListener('click', () => fileInput.click());
    fileInput.addEventListener('change', () => {
      const file = fileInput.files && fileInput.files[0];
      fileInput.value = '';
      if (file) upload(file);
    });
    const composer = el('form', { class: 'composer' }, emojiBtn, attachBtn, fileInput, textarea, sendBtn);
    const conv = el('div', { class: 'body' }, log, typing, note, transcriptForm, confirmEnd, endedBox, emojis, composer);
    const panel = el('div', { class: 'panel', id: 'sb-panel', role: 'dialog', 'aria-labelledby': 'sb-title', hidden: true },
      head, menu, prechat, conv, el('div', { class: 'foot' }, T('w.powered')));
    root.append(panel, launcher);

    const mount = () => document.body.append(host);
    if (document.body) mount();
    else document.addEventListener('DOMContentLoaded', mount);

    /* ----- behaviour ----- */
    function setOpen(open) {
      st.open = open;
      persist();
      panel.hidden = !open;
      launcher.setAttribute('aria-expanded', String(open));
      if (open) {
        st.unread = 0;
        render();
        ensureConnected();
        requestAnimationFrame(() => {
          if (!prechat.hidden) (prechat.querySelector('input') || prechat.querySelector('button')).focus();
          else if (!composer.hidden) textarea.focus();
          log.scrollTop = log.scrollHeight;
        });
        markRead();
      } else {
        menu.hidden = true;
        emojis.hidden = true;
        render();
      }
    }
    api.open = () => setOpen(true);
    api.close = () => setOpen(false);
    api.reconnect = () => {
      if (st.ws) st.ws.close(4000, 'reconnect');
    };
    if (api.pending === 'open') st.open = true;

    launcher.addEventListener('click', () => setOpen(panel.hidden));
    minBtn.addEventListener('click', () => {
      setOpen(false);
      launcher.focus();
    });
    panel.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape') return;
      if (!emojis.hidden) {
        emojis.hidden = true;
        emojiBtn.focus();
      } else if (!menu.hidden) {
        menu.hidden = true;
        menuBtn.focus();
      } else {
        setOpen(false);
        launcher.focus();
      }
    });
    menuBtn.addEventListener('click', () => {
      menu.hidden = !menu.hidden;
      menuBtn.setAttribute('aria-expanded', String(!menu.hidden));
      if (!menu.hidden) transcriptItem.focus();
    });
    transcriptItem.addEventListener('click', () => {
      menu.hidden = true;
      transcriptForm.hidden = false;
      transcriptInput.value = st.email || '';
      transcriptInput.focus();
    });
    endItem.addEventListener('click', () => {
      menu.hidden = true;
      confirmEnd.hidden = false;
      confirmEnd.querySelector('button').focus();
    });
    transcriptForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const email = transcriptInput.value.trim();
      if (!email) return;
      st.transcript = email;
      send({ type: 'transcript', email });
      transcriptForm.hidden = true;
    });
    prechat.addEventListener('submit', (e) => {
      e.preventDefault();
      st.name = nameInput.value.trim();
      st.email = emailInput.value.trim();
      if (st.email && !emailInput.checkValidity()) {
        prechat.querySelector('.error').textContent = emailInput.validationMessage;
        return;
      }
      st.prechatDone = true;
      persist();
      render();
      ensureConnected();
      textarea.focus();
    });
    newChatBtn.addEventListener('click', () => {
      st.interaction = null;
      st.messages.clear();
      st.status = { state: 'new' };
      st.agentRead = 0;
      st.readSent = 0;
      render();
      textarea.focus();
    });
    emojiBtn.addEventListener('click', () => {
      emojis.hidden = !emojis.hidden;
      emojiBtn.setAttribute('aria-expanded', String(!emojis.hidden));
      if (!emojis.hidden) emojis.querySelector('button').focus();
    });
    function insertEmoji(e) {
      const s = textarea.selectionStart ?? textarea.value.length;
      const end = textarea.selectionEnd ?? s;
      textarea.value = textarea.value.slice(0, s) + e + textarea.value.slice(end);
      textarea.selectionStart = textarea.selectionEnd = s + e.length;
      emojis.hidden = true;
      emojiBtn.setAttribute('aria-expanded', 'false');
      textarea.focus();
      autosize();
    }
    function autosize() {
      textarea.style.height = 'auto';
      textarea.style.height = `${Math.min(120, textarea.scrollHeight + 2)}px`;
    }
    textarea.addEventListener('input', () => {
      autosize();
      typingOn();
    });
    textarea.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        composer.requestSubmit();
      }
    });
    composer.addEventListener('submit', (e) => {
      e.preventDefault();
      const text = textarea.value.trim();
      if (!text) return;
      if (text.length > 4000) {
        showError('too_large');
        return;
      }
      textarea.value = '';
      autosize();
      typingOff();
      sendText(text);
    });
    document.addEventListener('visibilitychange', markRead);

    /** Sends a customer message: shown as pending until the server's echo acknowledges it. */
    function sendText(text, attachments) {
      st.menu = null;
      const m = { client_id: newId(), text, at: new Date().toISOString(), attachments: attachments || [] };
      st.pending.push(m);
      persist();
      if (st.status.state === 'ended') st.status = { state: 'new' };
      render();
      if (st.ws && st.welcomed) send(messageFrame(m));
      else ensureConnected();
    }

    function messageFrame(p) {
      const f = { type: 'message', text: p.text, client_id: p.client_id };
      if (p.attachments && p.attachments.length) f.attachments = p.attachments.map((a) => a.id);
      return f;
    }

    /** Uploads a file (the server checks its size and type), then sends it as a message. */
    async function upload(file) {
      if (!st.session) return;
      st.uploading = file.name;
      render();
      try {
        const url = new URL('/chat/attachments', base);
        url.searchParams.set('tenant', cfg.tenant);
        url.searchParams.set('name', file.name);
        const res = await fetch(url.href, {
          method: 'POST',
          headers: { Authorization: `Bearer ${st.session}`, 'Content-Type': file.type || 'application/octet-stream' },
          body: file,
        });
        const body = await res.json().catch(() => ({}));
        st.uploading = null;
        if (!res.ok) {
          const e = body.error || {};
          showError(e.code || `http_${res.status}`, e.message);
          return;
        }
        sendText(textarea.value.trim(), [body]);
        textarea.value = '';
        autosize();
      } catch {
        st.uploading = null;
        showError('upload_failed');
      }
    }

    /** The link (or picture) of a file of a message. */
    function fileLink(a) {
      const url = new URL(`/chat/attachments/${encodeURIComponent(a.id)}`, base);
      url.searchParams.set('tenant', cfg.tenant);
      if (st.session) url.searchParams.set('session', st.session);
      const label = `${a.name}${a.size ? ` (${fmtBytes(a.size, lang)})` : ''}`;
      const isImage = String(a.content_type || '').startsWith('image/');
      return el('a', { href: url.href, target: '_blank', rel: 'noopener', dir: 'auto', class: 'file', download: isImage ? null : a.name },
        isImage ? el('img', { src: url.href, alt: a.name }) : `📎 ${label}`);
    }

    function files(list) {
      return list && list.length ? el('div', { class: 'files' }, list.map(fileLink)) : null;
    }

    function newId() {
      if (crypto.randomUUID) return crypto.randomUUID();
      return `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
    }

    let typingTimer = null;
    function typingOn() {
      if (!st.interaction || st.status.state === 'ended') return;
      clearTimeout(typingTimer);
      typingTimer = setTimeout(typingOff, 4000);
      const now = Date.now();
      if (now - st.lastTypingSent > 3000) {
        st.lastTypingSent = now;
        send({ type: 'typing', on: true });
      }
    }
    function typingOff() {
      clearTimeout(typingTimer);
      if (st.lastTypingSent) {
        st.lastTypingSent = 0;
        send({ type: 'typing', on: false });
      }
    }

    function markRead() {
      if (!st.open || document.visibilityState !== 'visible' || !st.welcomed) return;
      let max = 0;
      for (const m of st.messages.values()) if (m.from !== 'customer' && m.seq > max) max = m.seq;
      if (max > st.readSent) {
        st.readSent = max;
        send({ type: 'read', seq: max });
      }
    }

    function showError(code) {
      const key = {
        rate_limited: 'w.error_rate_limited', too_large: 'w.error_too_large', invalid_message: 'w.error_too_large',
        attachment_too_large: 'w.error_file_too_large', attachment_type_not_allowed: 'w.error_file_type',
        attachment_content_mismatch: 'w.error_file_type', empty_attachment: 'w.error_file_empty',
        upload_failed: 'w.error_upload', unknown_attachment: 'w.error_upload',
      }[code];
      st.error = key ? T(key) : T('w.error', { code });
      render();
      clearTimeout(showError.timer);
      showError.timer = setTimeout(() => {
        st.error = null;
        render();
      }, 6000);
    }

    /* ----- connection ----- */
    function send(frame) {
      if (st.ws && st.ws.readyState === WebSocket.OPEN) {
        st.ws.send(JSON.stringify(frame));
        return true;
      }
      return false;
    }

    function ensureConnected() {
      if (st.ws || st.fatal || !st.prechatDone) return;
      connect();
    }

    let retryTimer = null;
    function connect() {
      clearTimeout(retryTimer);
      const url = new URL('/chat/ws', base);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      let ws;
      try {
        ws = new WebSocket(url.href);
      } catch {
        scheduleRetry();
        return;
      }
      st.ws = ws;
      st.conn = 'connecting';
      st.welcomed = false;
      render();
      ws.onopen = () => {
        const hello = { type: 'hello', tenant: cfg.tenant, lang };
        if (st.session) hello.session = st.session;
        if (cfg.queue) hello.queue = cfg.queue;
        if (cfg.flow) hello.flow = cfg.flow;
        if (st.name) hello.name = st.name;
        if (st.email) hello.email = st.email;
        ws.send(JSON.stringify(hello));
      };
      ws.onmessage = (e) => {
        let f;
        try {
          f = JSON.parse(e.data);
        } catch {
          return;
        }
        onFrame(f);
      };
      ws.onclose = () => {
        if (st.ws !== ws) return;
        st.ws = null;
        st.welcomed = false;
        st.conn = 'closed';
        st.agentTyping = null;
        render();
        if (!st.fatal) scheduleRetry();
      };
    }

    function scheduleRetry() {
      const wait = st.delay * (0.75 + Math.random() * 0.5);
      st.delay = Math.min(st.delay * 2, 15000);
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => {
        if (!st.ws) connect();
      }, wait);
    }

    function addMessage(m) {
      const seq = Number(m.seq);
      if (!Number.isFinite(seq) || st.messages.has(seq)) return false;
      st.messages.set(seq, { seq, from: m.from, name: m.name, text: m.text, at: m.at, client_id: m.client_id, attachments: m.attachments || [] });
      if (m.client_id) {
        const before = st.pending.length;
        st.pending = st.pending.filter((p) => p.client_id !== m.client_id);
        if (st.pending.length !== before) persist();
      }
      return true;
    }

    function lastAgentName() {
      let last = null;
      for (const m of st.messages.values()) if (m.from === 'agent' && (!last || m.seq > last.seq)) last = m;
      return last ? last.name : null;
    }

    function onFrame(f) {
      switch (f.type) {
        case 'welcome': {
          st.session = f.session;
          st.welcomed = true;
          st.everWelcomed = true;
          st.conn = 'open';
          st.delay = 500;
          const it = f.interaction;
          if (!it || !st.interaction || st.interaction.id !== it.id) st.messages.clear();
          st.interaction = it || null;
          for (const m of f.messages || []) addMessage(m);
          st.agentRead = Math.max(0, Number(f.read && f.read.agent) || 0);
          st.readSent = Math.max(st.readSent, Number(f.read && f.read.customer) || 0);
          if (!it) st.status = { state: 'new' };
          else if (it.state === 'ended') st.status = { state: 'ended' };
          else if (it.state === 'flow') st.status = { state: 'flow' };
          else if (it.state === 'connected' || it.state === 'wrap_up') st.status = { state: it.state === 'wrap_up' ? 'ended' : 'connected', agent: lastAgentName() };
          else if (st.status.state !== 'queued') st.status = { state: 'queued' };
          persist();
          // Re-send what the server has not acknowledged; it drops what it already has by client_id.
          const pending = [...st.pending];
          if (pending.length && st.status.state === 'ended') st.status = { state: 'new' };
          for (const p of pending) send(messageFrame(p));
          render();
          markRead();
          break;
        }
        case 'message':
          if (addMessage(f)) {
            if (f.from === 'agent') {
              st.agentTyping = null;
              if (f.name && st.status.state === 'connected') st.status.agent = f.name;
              if (!st.open || document.visibilityState !== 'visible') st.unread += 1;
            }
            render();
            markRead();
          }
          break;
        case 'messages':
          for (const m of f.messages || []) addMessage(m);
          render();
          markRead();
          break;
        case 'typing':
          clearTimeout(onFrame.typingTimer);
          st.agentTyping = f.on ? (f.name || T('w.agent')) : null;
          if (f.on) {
            onFrame.typingTimer = setTimeout(() => {
              st.agentTyping = null;
              render();
            }, 8000);
          }
          render();
          break;
        case 'read':
          st.agentRead = Math.max(st.agentRead, Number(f.seq) || 0);
          render();
          break;
        case 'status': {
          if (f.interaction_id && (!st.interaction || st.interaction.id !== f.interaction_id)) {
            st.interaction = { id: f.interaction_id, state: f.state };
          }
          if (st.interaction) st.interaction.state = f.state;
          if (f.state === 'queued' || f.state === 'offered') {
            st.status = { state: 'queued', position: f.position, wait_s: f.wait_s };
          } else if (f.state === 'connected') {
            st.status = { state: 'connected', agent: f.agent || lastAgentName() };
          } else if (f.state === 'ended') {
            st.status = { state: 'ended' };
            st.agentTyping = null;
          } else if (f.state === 'flow') {
            st.status = { state: 'flow' };
          }
          if (f.state !== 'flow' && f.state !== 'queued') st.menu = null;
          render();
          break;
        }
        case 'menu':
          // The bot's question with choices (the flow's menu or the long-wait offer).
          st.menu = { prompt: f.prompt, options: Array.isArray(f.options) ? f.options : [] };
          render();
          break;
        case 'transcript':
          st.error = null;
          note.hidden = false;
          note.textContent = T('w.transcript_sent', { email: st.transcript || '' });
          setTimeout(() => {
            note.hidden = true;
          }, 6000);
          break;
        case 'error':
          if (['no_such_tenant', 'no_such_queue', 'hello_first'].includes(f.code)) st.fatal = f.code;
          showError(f.code);
          break;
        default:
          break;
      }
    }

    /* ----- rendering ----- */
    function statusText() {
      if (!st.welcomed && st.everWelcomed && !st.fatal) return T('w.reconnecting');
      const s = st.status;
      if (s.state === 'queued') {
        if (s.position) {
          return s.wait_s !== undefined && s.wait_s !== null
            ? T('w.queued_wait', { position: s.position, wait: fmtDuration(s.wait_s, lang) })
            : T('w.queued', { position: s.position });
        }
        return T('w.waiting');
      }
      if (s.state === 'connected') return T('w.connected', { agent: s.agent || T('w.agent') });
      if (s.state === 'flow') return T('w.flow');
      if (s.state === 'ended') return T('w.ended');
      return st.conn === 'connecting' ? T('w.connecting') : '';
    }

    function render() {
      badge.hidden = !st.unread || st.open;
      badge.textContent = fmtNumber(st.unread, {}, lang);
      launcher.setAttribute('aria-label', st.unread ? `${T('w.launcher')} (${T('w.unread', { n: st.unread })})` : T('w.launcher'));
      panel.hidden = !st.open;
      if (!st.open) return;
      const showPrechat = !st.prechatDone;
      prechat.hidden = !showPrechat;
      conv.hidden = showPrechat;
      menuBtn.hidden = showPrechat;
      statusLine.textContent = showPrechat ? '' : statusText();
      if (showPrechat) return;
      const ended = st.status.state === 'ended' && !st.pending.length;
      endedBox.hidden = !ended;
      composer.hidden = ended;
      endItem.hidden = !st.interaction || ended;
      transcriptItem.hidden = !st.interaction;
      typing.textContent = st.agentTyping ? T('w.typing', { name: st.agentTyping }) : '';
      const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
      const nodes = [];
      if (!st.messages.size || st.status.state === 'new') nodes.push(el('div', { class: 'intro' }, T('w.intro')));
      const msgs = [...st.messages.values()].sort((a, b) => a.seq - b.seq);
      let prevFrom = null;
      for (const m of msgs) {
        if (m.from === 'system') {
          // Named system messages are the bot's (greeting, questions, announcements).
          nodes.push(m.name ? botMessage(m) : el('div', { class: 'sys', dir: 'auto' }, m.text));
          prevFrom = null;
          continue;
        }
        const mine = m.from === 'customer';
        const tick = mine
          ? el('span', { class: `tick${st.agentRead >= m.seq ? ' read' : ''}`, 'aria-label': T(st.agentRead >= m.seq ? 'msg.read' : 'msg.delivered') }, st.agentRead >= m.seq ? '✓✓' : '✓')
          : null;
        nodes.push(el('div', { class: `msg${mine ? ' mine' : ''}`, 'data-seq': String(m.seq), 'data-from': m.from },
          !mine && prevFrom !== m.from ? el('div', { class: 'who', dir: 'auto' }, m.name || T('w.agent')) : null,
          el('div', { class: 'bubble' }, m.text ? el('p', { dir: 'auto' }, m.text) : null, files(m.attachments)),
          el('div', { class: 'meta' }, el('time', { datetime: m.at || '' }, fmtWhen(m.at, lang)), tick)));
        prevFrom = m.from;
      }
      for (const p of st.pending) {
        nodes.push(el('div', { class: 'msg mine pending', 'data-client-id': p.client_id },
          el('div', { class: 'bubble' }, p.text ? el('p', { dir: 'auto' }, p.text) : null,
            p.attachments && p.attachments.length ? el('div', { class: 'files' }, p.attachments.map((a) => el('span', { dir: 'auto' }, `📎 ${a.name}`))) : null),
          el('div', { class: 'meta' }, el('span', { 'aria-label': T('msg.sending') }, '🕓'))));
      }
      if (st.uploading) nodes.push(el('div', { class: 'sys', dir: 'auto' }, T('w.uploading', { name: st.uploading })));
      if (st.menu && !st.pending.length) nodes.push(menuButtons(st.menu));
      if (st.error) nodes.push(el('div', { class: 'error', role: 'alert' }, st.error));
      log.replaceChildren(...nodes);
      if (atBottom || st.pending.length) log.scrollTop = log.scrollHeight;
    }

    /** A bot message: a bubble on the other side, named as the assistant. */
    function botMessage(m) {
      return el('div', { class: 'msg bot', 'data-seq': String(m.seq), 'data-from': 'bot' },
        el('div', { class: 'who' }, T('w.bot')),
        el('div', { class: 'bubble' }, el('p', { dir: 'auto' }, m.text)),
        el('div', { class: 'meta' }, el('time', { datetime: m.at || '' }, fmtWhen(m.at, lang))));
    }

    /** The bot's choices as buttons; a click answers with the label (typing it works too).
     * Made once per menu: every render puts the same buttons back, so a frame that arrives
     * while the customer presses one does not swap it for a copy and lose the click. */
    function menuButtons(menu) {
      if (menu.node) return menu.node;
      const buttons = menu.options.map((o) => {
        const b = el('button', { type: 'button', class: 'secondary', 'data-key': String(o.key), dir: 'auto' }, o.label);
        b.addEventListener('click', () => sendText(o.label));
        return b;
      });
      menu.node = el('div', { class: 'choices', role: 'group', 'aria-label': menu.prompt || T('w.choices') }, ...buttons);
      return menu.node;
    }

    // Start: resume a known session at once (unread replies show on the bubble); a new visitor
    // connects when opening the chat.
    render();
    if (st.open) setOpen(true);
    else if (st.session) ensureConnected();
  }
})();
