// The agent desktop (/agent): presence, offers with a countdown, several conversations at once,
// the conversation pane (messages, internal notes, canned responses, transfer, end with a
// disposition) and the customer panel (contact points and cross-channel history).
//
// Everything is live over /api/v1/events. The stream does not replay, so on every (re)connect
// the page re-fetches its offers, its interactions and the messages of its open conversations,
// and merges messages by `seq`: nothing is lost and nothing shown twice.

import { fmtBytes, fmtClock, fmtDateTime, fmtNumber, fmtWhen, t, tValue } from './i18n.js';
import { ApiError, EventStream, api, fetchBlob, logout, onSessionLost, session } from './api.js';
import { $, announce, h, initialLang, isTyping, langSelect, toast, useLang, wireLogin } from './ui.js';

/** Channels whose interactions carry messages. */
const DIGITAL = new Set(['chat', 'email', 'sms', 'whatsapp', 'telegram', 'messenger', 'instagram']);
const BREAK_REASONS = ['lunch', 'coffee', 'meeting', 'training'];
const CANNED = ['canned.greeting', 'canned.checking', 'canned.anything_else', 'canned.thanks'];
/** Channels whose replies carry files (the others answer 422 attachments_not_supported). */
const FILE_CHANNELS = new Set(['chat', 'email']);
const CHANNEL_ICON = {
  voice: '☎', chat: '💬', email: '✉', sms: '📱', whatsapp: '🟢', telegram: '✈', messenger: '💭',
  instagram: '📷', video: '🎥', fax: '📠', task: '📋',
};

const S = {
  user: null,
  agentId: null,
  agent: null,
  status: null,
  queues: new Map(),
  /** Colleagues' names by agent id (filled when the transfer list is opened). */
  agentNames: new Map(),
  offers: new Map(),
  /** Events seen so far, and the count at the last event about each interaction: a resync
   * started before an event must not undo what the event did (its answers are older). */
  eventGen: 0,
  touched: new Map(),
  work: new Map(),
  active: null,
  customers: new Map(),
  stream: null,
  conn: 'closed',
  view: null,
  pendingId: 0,
  /** Earlier contacts whose conversation is open in the customer panel's history. */
  histOpen: new Set(),
};

// Exposed for the end-to-end tests and for debugging from the console.
window.__sb = S;

/* ---------- start ---------- */

function boot() {
  useLang(initialLang());
  onSessionLost(() => showLogin());
  wireLogin((r) => (r.user.agent_id ? null : 'login.need_agent'), start);
  $('login-lang').append(langSelect(rerenderAll));
  $('lang-slot').append(langSelect(rerenderAll));
  $('logout').addEventListener('click', async () => {
    if (S.stream) S.stream.stop();
    await logout();
    showLogin();
  });
  $('state').addEventListener('change', () => setPresence($('state').value));
  $('reason').addEventListener('change', () => setPresence('break', $('reason').value));
  document.addEventListener('keydown', onKey);
  document.addEventListener('visibilitychange', () => markRead(S.active));
  window.addEventListener('focus', () => markRead(S.active));
  setInterval(tick, 1000);
  const s = session.get();
  if (s && s.user && s.user.agent_id) start();
  else showLogin();
}

function showLogin() {
  if (S.stream) S.stream.stop();
  S.stream = null;
  S.offers.clear();
  S.work.clear();
  S.active = null;
  $('app').hidden = true;
  $('login').hidden = false;
  document.title = t('app.agent');
  $('login-username').focus();
}

async function start() {
  const s = session.get();
  S.user = s.user;
  S.agentId = s.user.agent_id;
  $('login').hidden = true;
  $('app').hidden = false;
  $('whoami').textContent = s.user.display_name || s.user.username;
  try {
    const [queues, agent] = await Promise.all([api('GET', '/queues'), api('GET', `/agents/${S.agentId}`)]);
    S.queues = new Map(queues.map((q) => [q.id, q]));
    S.agent = agent;
    S.status = agent.status;
  } catch (e) {
    toast(t('error.generic', { message: e.message }));
  }
  rerenderAll();
  S.stream = new EventStream({
    onEvent,
    onOpen: resync,
    onStatus: (st) => {
      S.conn = st;
      renderConn();
    },
  }).start();
}

/** Re-fetches everything the stream may have missed: presence, offers, work and messages. */
async function resync() {
  const since = S.eventGen;
  const fresh = (id) => (S.touched.get(id) || 0) > since;
  try {
    const me = encodeURIComponent(S.agentId);
    const [status, offered, connected, wrapping, queues] = await Promise.all([
      api('GET', `/agents/${S.agentId}/state`),
      api('GET', `/interactions?state=offered&agent=${me}`),
      api('GET', `/interactions?state=connected&agent=${me}`),
      api('GET', `/interactions?state=wrap_up&agent=${me}`),
      api('GET', '/queues'),
    ]);
    S.status = status;
    S.queues = new Map(queues.map((q) => [q.id, q]));
    const offeredIds = new Set(offered.map((i) => i.id));
    for (const id of [...S.offers.keys()]) if (!offeredIds.has(id) && !fresh(id)) S.offers.delete(id);
    for (const it of offered) {
      if (fresh(it.id)) continue;
      const prev = S.offers.get(it.id);
      S.offers.set(it.id, { it, expiresAt: prev ? prev.expiresAt : offerExpiry(it) });
    }
    const held = [...connected, ...wrapping];
    const heldIds = new Set(held.map((i) => i.id));
    for (const [id, w] of S.work) {
      if (!heldIds.has(id) && !w.closed && !fresh(id)) finish(id, { state: 'ended' });
    }
    for (const it of held.reverse()) if (!fresh(it.id)) upsertWork(it);
    for (const [id, gen] of [...S.touched]) if (gen <= since) S.touched.delete(id);
    if (!S.active || !S.work.has(S.active)) {
      const first = [...S.work.keys()][0];
      if (first) S.active = first;
    }
    rerenderAll();
    await Promise.all([...S.work.values()].filter((w) => !w.closed).map((w) => loadMessages(w.it.id)));
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) toast(t('error.generic', { message: e.message }));
  }
}

function offerExpiry(it) {
  const q = S.queues.get(it.queue_id);
  const timeout = (q && q.offer_timeout_s) || 30;
  return Date.parse(it.offered_at || it.updated_at) + timeout * 1000;
}

function upsertWork(it) {
  let w = S.work.get(it.id);
  if (!w) {
    w = {
      it,
      messages: new Map(),
      pending: [],
      unread: 0,
      typing: null,
      customerRead: 0,
      readSent: 0,
      loaded: false,
      unavailable: false,
      draft: '',
      note: false,
      closed: false,
      notice: null,
      lastTypingSent: 0,
      typingOff: null,
    };
    S.work.set(it.id, w);
  } else {
    w.it = { ...w.it, ...it };
  }
  return w;
}

/* ---------- events ---------- */

function onEvent(ev) {
  const d = ev.data || {};
  const id = d.interaction_id;
  S.eventGen += 1;
  if (id) S.touched.set(id, S.eventGen);
  switch (ev.type) {
    case 'interaction.offered':
      if (d.agent_id !== S.agentId) return;
      S.offers.set(id, {
        it: {
          id, channel: d.channel, subject: d.subject, queue_id: d.queue_id, customer_id: d.customer_id,
          state: 'offered', offered_at: ev.at,
        },
        expiresAt: d.expires_at ? Date.parse(d.expires_at) : Date.parse(ev.at) + 30000,
      });
      announce(t('agent.new_offer', { subject: d.subject || tValue('channel', d.channel) }));
      renderOffers();
      break;
    case 'interaction.offer_rejected':
    case 'interaction.offer_expired':
    case 'interaction.offer_revoked':
    case 'interaction.requeued':
      S.offers.delete(id);
      renderOffers();
      break;
    case 'interaction.accepted':
      S.offers.delete(id);
      renderOffers();
      if (d.agent_id === S.agentId && !S.work.has(id)) fetchWork(id, true);
      break;
    case 'interaction.completed':
      if (S.work.has(id)) {
        const w = S.work.get(id);
        w.it = { ...w.it, state: d.state || 'wrap_up', disposition: d.disposition, notes: d.notes };
        if (w.it.state === 'ended') finish(id, w.it);
        else renderAfterChange(id);
      }
      break;
    case 'interaction.customer_left':
      if (S.work.has(id)) {
        const w = S.work.get(id);
        w.left = true;
        w.typing = null;
        announce(t('agent.customer_left', { name: titleOf(w) }));
        renderAfterChange(id);
      }
      break;
    case 'interaction.ended':
    case 'interaction.cancelled':
    case 'interaction.withdrawn':
    case 'interaction.abandoned':
      S.offers.delete(id);
      renderOffers();
      if (S.work.has(id)) finish(id, { state: 'ended', disposition: d.disposition });
      break;
    case 'interaction.transferred':
      if (S.work.has(id) && d.from_agent_id === S.agentId) {
        if (d.to_agent_id) {
          finish(id, { state: 'offered' }, t('agent.transferred', { queue: S.agentNames.get(d.to_agent_id) || '' }));
        } else {
          const q = S.queues.get(d.to_queue_id);
          finish(id, { state: 'queued', queue_id: d.to_queue_id }, t('agent.transferred', { queue: q ? q.name : '' }));
        }
      }
      break;
    case 'agent.state_changed':
      if (d.agent_id === S.agentId) refreshStatus();
      break;
    case 'message.created':
      onMessage(id, d, ev.at);
      break;
    case 'message.typing':
      onTyping(id, d);
      break;
    case 'message.read':
      // `by` says who read (docs/chat.md); the agent's own marks need no display.
      if (S.work.has(id) && (d.by || d.from) === 'customer') {
        const w = S.work.get(id);
        w.customerRead = Math.max(w.customerRead, Number(d.seq) || 0);
        if (id === S.active) renderMessages();
      }
      break;
    default:
      break;
  }
  if (ev.type.startsWith('interaction.') && (d.agent_id === S.agentId || S.work.has(id))) refreshStatus();
}

let statusTimer = null;
function refreshStatus() {
  clearTimeout(statusTimer);
  statusTimer = setTimeout(async () => {
    try {
      S.status = await api('GET', `/agents/${S.agentId}/state`);
      renderTop();
    } catch {
      // The next event or reconnect tries again.
    }
  }, 150);
}

async function fetchWork(id, select) {
  try {
    const it = await api('GET', `/interactions/${id}`);
    delete it.events;
    if (it.state !== 'connected' && it.state !== 'wrap_up') return;
    upsertWork(it);
    if (select || !S.active) setActive(id);
    rerenderAll();
    await loadMessages(id);
  } catch (e) {
    toast(t('error.generic', { message: e.message }));
  }
}

/** Marks a work item over; it stays visible while it is the open conversation. */
function finish(id, patch, notice) {
  const w = S.work.get(id);
  if (!w) return;
  w.it = { ...w.it, ...patch };
  w.closed = true;
  w.notice = notice || null;
  w.typing = null;
  if (S.active !== id) S.work.delete(id);
  rerenderAll();
}

function normalizeMessage(m, at) {
  return {
    seq: Number(m.seq),
    id: m.id,
    from: m.from || 'system',
    name: m.name,
    text: m.text ?? '',
    internal: !!m.internal,
    at: m.at || at,
    client_id: m.client_id,
    attachments: Array.isArray(m.attachments) ? m.attachments : [],
  };
}

/** Blob URLs of attachments already fetched (the API needs the bearer token, so no plain link). */
const blobUrls = new Map();

async function attachmentUrl(interactionId, a) {
  if (!blobUrls.has(a.id)) {
    blobUrls.set(a.id, fetchBlob(`/interactions/${encodeURIComponent(interactionId)}/attachments/${encodeURIComponent(a.id)}`).then((b) => URL.createObjectURL(b)));
  }
  try {
    return await blobUrls.get(a.id);
  } catch (e) {
    blobUrls.delete(a.id);
    throw e;
  }
}

/** The files of a message: pictures shown small, every file downloadable by a click. */
function renderFiles(interactionId, list) {
  if (!list || !list.length) return null;
  return h('div', { class: 'files' }, list.map((a) => {
    const isImage = String(a.content_type || '').startsWith('image/');
    const link = h('a', { href: '#', class: 'file', dir: 'auto', dataset: { attachment: a.id } },
      `📎 ${a.name} (${fmtBytes(a.size)})`);
    link.addEventListener('click', async (e) => {
      e.preventDefault();
      try {
        const url = await attachmentUrl(interactionId, a);
        const tmp = h('a', { href: url, download: a.name });
        tmp.click();
      } catch {
        toast(t('agent.file_failed'));
      }
    });
    if (!isImage) return link;
    const img = h('img', { alt: a.name, class: 'thumb' });
    attachmentUrl(interactionId, a).then((u) => { img.src = u; }).catch(() => img.remove());
    return h('div', { class: 'file-image' }, img, link);
  }));
}

function addMessage(w, m) {
  if (!Number.isFinite(m.seq)) return false;
  if (w.messages.has(m.seq)) return false;
  w.messages.set(m.seq, m);
  return true;
}

function onMessage(id, d, at) {
  const w = S.work.get(id);
  if (!w) return;
  const m = normalizeMessage(d, at);
  if (!addMessage(w, m)) return;
  if (m.from === 'customer') {
    w.typing = null;
    const seen = id === S.active && document.visibilityState === 'visible';
    if (seen) markRead(id);
    else {
      w.unread += 1;
      announce(t('agent.new_message', { name: titleOf(w) }));
    }
  }
  if (id === S.active) renderMessages();
  renderWork();
}

function onTyping(id, d) {
  const w = S.work.get(id);
  if (!w || d.from === 'agent') return;
  clearTimeout(w.typingTimer);
  w.typing = d.on ? (d.name || titleOf(w)) : null;
  // A lost "off" must not leave the indicator on for ever.
  if (d.on) {
    w.typingTimer = setTimeout(() => {
      w.typing = null;
      if (id === S.active) renderTyping();
    }, 8000);
  }
  if (id === S.active) renderTyping();
}

async function loadMessages(id) {
  const w = S.work.get(id);
  if (!w) return;
  try {
    const r = await api('GET', `/interactions/${id}/messages`);
    const list = Array.isArray(r) ? r : (r && r.messages) || [];
    let changed = false;
    for (const m of list) changed = addMessage(w, normalizeMessage(m)) || changed;
    for (const m of list) {
      if (m.read_seq !== undefined) w.customerRead = Math.max(w.customerRead, Number(m.read_seq) || 0);
    }
    if (r && r.customer_read_seq !== undefined) w.customerRead = Math.max(w.customerRead, Number(r.customer_read_seq) || 0);
    w.loaded = true;
    w.unavailable = false;
    if (id === S.active) {
      renderMessages();
      markRead(id);
    }
    if (changed) renderWork();
  } catch (e) {
    if (e instanceof ApiError && (e.code === 'no_route' || e.status === 405 || e.status === 404)) {
      w.unavailable = true;
      if (id === S.active) renderMessages();
    } else if (!(e instanceof ApiError && e.status === 401)) {
      toast(t('error.generic', { message: e.message }));
    }
  }
}

/** Tells the server the agent has read the customer's messages of the open conversation. */
function markRead(id) {
  const w = id && S.work.get(id);
  if (!w || w.closed || document.visibilityState !== 'visible') return;
  w.unread = 0;
  let max = 0;
  for (const m of w.messages.values()) if (m.from === 'customer' && m.seq > max) max = m.seq;
  renderWork();
  if (max > w.readSent && DIGITAL.has(w.it.channel)) {
    w.readSent = max;
    api('POST', `/interactions/${id}/read`, { seq: max }).catch(() => {
      w.readSent = 0;
    });
  }
}

/* ---------- actions ---------- */

async function setPresence(state, reason) {
  const body = { state };
  if (state === 'break') body.reason = reason || $('reason').value || BREAK_REASONS[0];
  try {
    S.status = await api('PUT', `/agents/${S.agentId}/state`, body);
  } catch (e) {
    toast(t('error.generic', { message: e.message }));
  }
  renderTop();
}

async function accept(id) {
  const o = S.offers.get(id);
  if (!o) return;
  try {
    const it = await api('POST', `/interactions/${id}/accept`);
    S.offers.delete(id);
    upsertWork(it);
    setActive(id);
    rerenderAll();
    focusComposer();
    await loadMessages(id);
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) S.offers.delete(id);
    toast(t('error.generic', { message: e.message }));
    renderOffers();
  }
  refreshStatus();
}

async function reject(id) {
  if (!S.offers.has(id)) return;
  try {
    await api('POST', `/interactions/${id}/reject`);
  } catch (e) {
    toast(t('error.generic', { message: e.message }));
  }
  S.offers.delete(id);
  renderOffers();
  refreshStatus();
}

async function endWork(id, disposition, notes) {
  try {
    const it = await api('POST', `/interactions/${id}/end`, { disposition, notes: notes || undefined });
    const w = S.work.get(id);
    if (w) {
      w.it = { ...w.it, ...it };
      if (it.state === 'ended') finish(id, it);
      else renderAfterChange(id);
    }
  } catch (e) {
    toast(t('error.generic', { message: e.message }));
  }
  refreshStatus();
}

/** Transfers to a queue (`q:<id>`) or straight to a colleague (`a:<id>`). */
async function transferWork(id, target) {
  const [kind, to] = [target.slice(0, 1), target.slice(2)];
  try {
    const it = await api('POST', `/interactions/${id}/transfer`, kind === 'a' ? { agent: to } : { queue: to });
    const name = kind === 'a' ? S.agentNames.get(to) : (S.queues.get(to) || {}).name;
    finish(id, { state: it.state, queue_id: it.queue_id }, t('agent.transferred', { queue: name || to }));
  } catch (e) {
    toast(t('error.generic', { message: e.message }));
  }
  refreshStatus();
}

/** `copies` (email replies): `{cc, bcc}` arrays of addresses; `cc` left out lets the server
 * copy the last mail's other recipients. */
async function send(id, text, internal, files = [], copies = null) {
  const w = S.work.get(id);
  if (!w || (!text.trim() && !files.length)) return;
  const p = { key: `p${++S.pendingId}`, text, internal, copies, failed: false, at: new Date().toISOString() };
  w.pending.push(p);
  renderMessages();
  typingOff(w);
  try {
    const body = internal ? { text, internal: true } : { text };
    if (files.length) body.attachments = files.map((f) => f.id);
    if (copies && !internal) {
      if (copies.cc) body.cc = copies.cc;
      if (copies.bcc && copies.bcc.length) body.bcc = copies.bcc;
    }
    const r = await api('POST', `/interactions/${id}/messages`, body);
    w.pending = w.pending.filter((x) => x !== p);
    const m = r && (r.message || r);
    if (m && m.seq !== undefined) addMessage(w, normalizeMessage({ from: 'agent', internal, ...m }, p.at));
    // The stored mail (its Cc) shows under the message.
    if (copies && !internal) loadMail(w);
  } catch (e) {
    p.failed = true;
    toast(t('error.generic', { message: e.message }));
  }
  if (id === S.active) renderMessages();
  renderWork();
}

function typingOn(w) {
  const now = Date.now();
  clearTimeout(w.typingOff);
  w.typingOff = setTimeout(() => typingOff(w), 4000);
  if (now - w.lastTypingSent > 3000) {
    w.lastTypingSent = now;
    api('POST', `/interactions/${w.it.id}/typing`, { on: true }).catch(() => {});
  }
}

function typingOff(w) {
  clearTimeout(w.typingOff);
  if (w.lastTypingSent) {
    w.lastTypingSent = 0;
    api('POST', `/interactions/${w.it.id}/typing`, { on: false }).catch(() => {});
  }
}

/** Makes `id` the open conversation; an ended one that was open leaves the list. */
function setActive(id) {
  if (S.active === id) return;
  const prev = S.active && S.work.get(S.active);
  if (prev && prev.closed) S.work.delete(S.active);
  S.active = id;
}

function select(id) {
  if (!S.work.has(id) || S.active === id) return;
  setActive(id);
  rerenderAll();
  markRead(id);
  focusComposer();
}

function closeActive() {
  const id = S.active;
  S.work.delete(id);
  S.active = [...S.work.keys()][0] || null;
  rerenderAll();
}

/* ---------- keyboard ---------- */

function onKey(e) {
  if ($('app').hidden) return;
  if (e.altKey && !e.ctrlKey && !e.metaKey && /^Digit[1-9]$/.test(e.code)) {
    const ids = [...S.work.keys()];
    const id = ids[Number(e.code.slice(5)) - 1];
    if (id) {
      e.preventDefault();
      select(id);
    }
    return;
  }
  if (e.altKey || e.ctrlKey || e.metaKey || isTyping(e)) return;
  const key = e.key.toLowerCase();
  if (key !== 'a' && key !== 'r') return;
  const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('.offer');
  const id = focused ? focused.dataset.id : [...S.offers.keys()][0];
  if (!id) return;
  e.preventDefault();
  if (key === 'a') accept(id);
  else reject(id);
}

function focusComposer() {
  requestAnimationFrame(() => {
    const ta = $('composer-text');
    if (ta) ta.focus();
  });
}

/* ---------- rendering ---------- */

function rerenderAll() {
  renderTop();
  renderConn();
  renderOffers();
  renderWork();
  renderConversation();
  renderCustomer();
}

function renderAfterChange(id) {
  renderWork();
  if (id === S.active) {
    renderConversation();
    renderCustomer();
  }
}

function renderTop() {
  const st = S.status;
  const state = st ? st.state : 'offline';
  $('state').value = state;
  const reasonSel = $('reason');
  reasonSel.hidden = state !== 'break';
  const reasons = [...BREAK_REASONS];
  if (st && st.reason && !reasons.includes(st.reason)) reasons.push(st.reason);
  reasonSel.replaceChildren(...reasons.map((r) => h('option', { value: r }, tValue('reason', r))));
  if (st && st.reason) reasonSel.value = st.reason;
  const dot = $('presence-dot');
  dot.className = `dot ${state === 'available' && st && st.activity && st.activity !== 'idle' ? 'busy' : state}`;
  const cap = (S.agent && S.agent.capacity && S.agent.capacity.per_channel) || {};
  const load = (st && st.load) || {};
  const chips = Object.keys(cap)
    .filter((c) => c === 'chat' || load[c])
    .map((c) => h('span', { class: 'chip', title: tValue('channel', c) },
      `${CHANNEL_ICON[c] || ''} ${fmtNumber(load[c] || 0)}/${fmtNumber(cap[c])}`));
  $('capacity').replaceChildren(...chips);
}

function renderConn() {
  const el = $('conn');
  el.className = `conn ${S.conn}`;
  el.textContent = t(`conn.${S.conn}`);
}

function renderOffers() {
  const ul = $('offers');
  const focusedId = document.activeElement && document.activeElement.closest && document.activeElement.closest('.offer')
    ? document.activeElement.closest('.offer').dataset.id : null;
  $('offers-count').textContent = S.offers.size ? fmtNumber(S.offers.size) : '';
  if (!S.offers.size) {
    ul.replaceChildren(h('li', { class: 'empty' }, t('agent.no_offers')));
    return;
  }
  ul.replaceChildren(...[...S.offers.values()].map(({ it, expiresAt }) => {
    const q = S.queues.get(it.queue_id);
    const left = Math.max(0, Math.ceil((expiresAt - Date.now()) / 1000));
    const total = ((q && q.offer_timeout_s) || 30);
    const title = it.subject || tValue('channel', it.channel);
    return h('li', { class: 'offer', tabindex: '0', dataset: { id: it.id }, 'aria-label': t('agent.new_offer', { subject: title }) },
      h('div', { class: 'offer-head' },
        h('span', { class: `badge ch-${it.channel}`, 'aria-hidden': 'true' }, CHANNEL_ICON[it.channel] || '•'),
        h('span', { class: 'offer-title', dir: 'auto' }, title),
        h('span', { class: 'countdown', 'data-expires': String(expiresAt), 'aria-label': t('agent.expires_in', { s: left }) }, fmtClock(left))),
      h('div', { class: 'offer-meta' }, t('agent.offer_from', { channel: tValue('channel', it.channel), queue: q ? q.name : '' })),
      h('div', { class: 'bar' }, h('span', { class: 'bar-fill', 'data-expires': String(expiresAt), 'data-total': String(total), style: { inlineSize: `${Math.min(100, (left / total) * 100)}%` } })),
      h('div', { class: 'offer-actions' },
        h('button', { type: 'button', class: 'primary', 'aria-keyshortcuts': 'a', onclick: () => accept(it.id) }, t('agent.accept'), h('kbd', {}, 'A')),
        h('button', { type: 'button', class: 'danger-ghost', 'aria-keyshortcuts': 'r', onclick: () => reject(it.id) }, t('agent.reject'), h('kbd', {}, 'R'))));
  }));
  if (focusedId) {
    const el = ul.querySelector(`.offer[data-id="${CSS.escape(focusedId)}"]`);
    if (el) el.focus();
  }
}

function customerOf(w) {
  return w.it.customer_id ? S.customers.get(w.it.customer_id) : null;
}

function titleOf(w) {
  const c = customerOf(w);
  if (c && c.name) return c.name;
  if (w.it.channel !== 'task' && w.it.subject) return w.it.subject;
  return w.it.channel === 'task' ? (w.it.subject || tValue('channel', 'task')) : t('agent.visitor');
}

function lastMessage(w) {
  let last = null;
  for (const m of w.messages.values()) if (!m.internal && (!last || m.seq > last.seq)) last = m;
  return last;
}

function renderWork() {
  const ul = $('work');
  const items = [...S.work.values()];
  const unreadTotal = items.reduce((n, w) => n + w.unread, 0);
  document.title = `${unreadTotal ? `(${fmtNumber(unreadTotal)}) ` : ''}${t('app.agent')} · ${t('app.name')}`;
  if (!items.length) {
    ul.replaceChildren(h('li', { class: 'empty' }, t('agent.no_work')));
    return;
  }
  ul.replaceChildren(...items.map((w, i) => {
    const last = lastMessage(w);
    const state = w.closed ? 'ended' : w.it.state;
    return h('li', {},
      h('button', {
        type: 'button', class: `work-item${w.it.id === S.active ? ' active' : ''}${w.closed ? ' closed' : ''}`,
        'aria-current': w.it.id === S.active ? 'true' : null, dataset: { id: w.it.id },
        'aria-keyshortcuts': i < 9 ? `Alt+${i + 1}` : null, onclick: () => select(w.it.id),
      },
      h('span', { class: `badge ch-${w.it.channel}`, 'aria-hidden': 'true' }, CHANNEL_ICON[w.it.channel] || '•'),
      h('span', { class: 'work-text' },
        h('span', { class: 'work-title', dir: 'auto' }, titleOf(w)),
        h('span', { class: 'work-last', dir: 'auto' }, w.typing ? t('agent.typing', { name: w.typing }) : last ? last.text : tValue('istate', state))),
      w.unread ? h('span', { class: 'unread', 'aria-label': t('agent.unread', { n: w.unread }) }, fmtNumber(w.unread)) : null,
      i < 9 ? h('kbd', { class: 'alt-key', 'aria-hidden': 'true' }, `Alt+${fmtNumber(i + 1)}`) : null));
  }));
}

function renderConversation() {
  const main = $('conversation');
  const w = S.active && S.work.get(S.active);
  const hadFocus = document.activeElement && document.activeElement.id === 'composer-text';
  if (!w) {
    S.view = null;
    main.replaceChildren(h('div', { class: 'placeholder' }, h('p', {}, t('agent.pick'))));
    return;
  }
  const it = w.it;
  const q = S.queues.get(it.queue_id);
  const state = w.closed ? 'ended' : it.state;
  const digital = DIGITAL.has(it.channel);
  const header = h('header', { class: 'conv-head' },
    h('div', {},
      h('h2', { id: 'conv-title', dir: 'auto' }, titleOf(w)),
      h('div', { class: 'conv-meta' },
        h('span', { class: `badge ch-${it.channel}`, 'aria-hidden': 'true' }, CHANNEL_ICON[it.channel] || '•'),
        ` ${tValue('channel', it.channel)} · ${q ? q.name : ''} · `,
        h('span', { class: `state st-${state}` }, tValue('istate', state)),
        it.answered_at && !w.closed ? h('span', { class: 'timer', 'data-since': it.answered_at }, ` · ${fmtClock((Date.now() - Date.parse(it.answered_at)) / 1000)}`) : null)),
    w.closed ? h('button', { type: 'button', class: 'ghost', onclick: closeActive }, t('agent.close')) : null);

  let banner = null;
  if (w.notice) banner = h('div', { class: 'banner info', role: 'status' }, w.notice);
  else if (w.closed) banner = h('div', { class: 'banner info', role: 'status' }, t('agent.ended', { disposition: tValue('disposition', it.disposition) || '—' }));
  else if (w.left && state === 'connected') banner = h('div', { class: 'banner warn', role: 'status' }, t('agent.customer_left', { name: titleOf(w) }));
  else if (state === 'wrap_up') banner = h('div', { class: 'banner warn', role: 'status' }, t('agent.wrap_up'));

  const body = [];
  if (it.channel === 'task' || !digital) {
    const attrs = it.attributes && typeof it.attributes === 'object' ? Object.entries(it.attributes) : [];
    body.push(h('section', { class: 'task-card' },
      h('dl', {},
        h('dt', {}, t('agent.subject')), h('dd', { dir: 'auto' }, it.subject || '—'),
        h('dt', {}, t('agent.queue')), h('dd', {}, q ? q.name : '—'),
        h('dt', {}, t('agent.started')), h('dd', {}, fmtDateTime(it.created_at)),
        it.answered_at && it.waiting_since ? [h('dt', {}, t('agent.waited')), h('dd', {}, fmtClock((Date.parse(it.answered_at) - Date.parse(it.waiting_since)) / 1000))] : null,
        attrs.length ? [h('dt', {}, t('agent.details')), h('dd', {}, h('dl', { class: 'attrs' },
          attrs.map(([k, v]) => [h('dt', { dir: 'auto' }, k), h('dd', { dir: 'auto' }, typeof v === 'string' ? v : JSON.stringify(v))])))] : null)));
  }
  // Every channel has internal notes; digital ones have the conversation with the customer too.
  const log = h('div', { id: 'log', class: `log${digital ? '' : ' notes-only'}`, role: 'log', 'aria-live': 'polite', 'aria-label': t('msg.log'), tabindex: '0' });
  body.push(log);
  const typing = h('div', { id: 'typing', class: 'typing', 'aria-live': 'polite' });
  if (digital) body.push(typing);

  let composer = null;
  if (!w.closed && (state === 'connected' || state === 'wrap_up')) composer = buildComposer(w, digital && state === 'connected');
  const actions = !w.closed && state === 'connected' ? buildActions(w) : null;

  main.replaceChildren(header, banner || '', ...body, composer || '', actions || '');
  if (digital && !w.closed) renderMessagingRoute(w, main);
  S.view = { id: it.id, log, typing };
  renderMessages();
  renderTyping();
  if (hadFocus) focusComposer();
}

/** The reply route of a messaging conversation (docs/messaging.md): whether the 24-hour window
 * is open and until when, an opt-out, or a move to another channel, as a banner. */
let routeReq = 0;
async function renderMessagingRoute(w, main) {
  const req = ++routeReq;
  let r;
  try {
    r = await api('GET', `/interactions/${w.it.id}/messaging`);
  } catch {
    return;
  }
  if (req !== routeReq || S.active !== w.it.id || !r || !r.channel) return;
  takeMail(w, r);
  let text = null;
  let cls = 'info';
  if (r.opted_out) [text, cls] = [t('msg.opted_out'), 'warn'];
  else if (r.window_applies && !r.window_open) [text, cls] = [t('msg.window_closed'), 'warn'];
  else if (r.window_applies && r.window_until) text = t('msg.window_open', { until: fmtDateTime(r.window_until) });
  else if (r.channel !== w.it.channel) text = t('msg.continued', { channel: tValue('channel', r.channel) });
  const old = $('route-banner');
  if (old) old.remove();
  if (!text) return;
  const head = main.querySelector('header');
  if (head) head.after(h('div', { class: `banner ${cls}`, role: 'status', id: 'route-banner' }, text));
}

/** Keeps an email conversation's stored mails and default Cc (from GET .../messaging), fills
 * the Cc field once, and rebuilds the composer when replies turn out to go by email. */
function takeMail(w, r) {
  const wasEmail = isEmailReply(w);
  w.replyChannel = r.channel;
  w.mail = r.email || null;
  if (w.mail && w.ccText === undefined) {
    w.ccText = (w.mail.reply_cc || []).join(', ');
    const cc = $('composer-cc');
    if (cc && S.active === w.it.id) cc.value = w.ccText;
  }
  renderCopiesSummary(w);
  if (!wasEmail && isEmailReply(w) && S.active === w.it.id) renderConversation();
  else if (S.active === w.it.id) renderMessages();
}

/** Fetches the mails of an email conversation again (after a reply). */
async function loadMail(w) {
  try {
    const r = await api('GET', `/interactions/${w.it.id}/messaging`);
    if (r) takeMail(w, r);
  } catch {
    /* the messages are shown anyway */
  }
}

function isEmailReply(w) {
  return w.it.channel === 'email' || w.replyChannel === 'email';
}

/** Addresses typed into a Cc or Bcc field (commas, semicolons or spaces between them). */
function addressList(text) {
  return String(text || '').split(/[,;\s]+/).map((x) => x.trim()).filter(Boolean);
}

function renderCopiesSummary(w) {
  const el = $('composer-copies-summary');
  if (!el || S.active !== w.it.id) return;
  const cc = addressList(w.ccText);
  el.replaceChildren(...(cc.length && !w.copiesOpen ? [t('mail.cc_line', { list: '' }), h('bdi', { dir: 'ltr' }, cc.join(', '))] : []));
}

/** Wraps the textarea's selection in `before`/`after` (or takes them off again), keeping
 * spaces at its ends outside; with nothing selected the markers go in with the caret between. */
function wrapSelection(ta, before, after) {
  const v = ta.value;
  const s = ta.selectionStart ?? v.length;
  const e = ta.selectionEnd ?? s;
  const sel = v.slice(s, e);
  const lead = sel.match(/^\s*/)[0];
  const core = sel.trim();
  const trail = sel.slice(lead.length + core.length);
  const cs = s + lead.length;
  const ce = cs + core.length;
  if (core && v.slice(cs - before.length, cs) === before && v.slice(ce, ce + after.length) === after) {
    ta.value = v.slice(0, cs - before.length) + core + v.slice(ce + after.length);
    ta.setSelectionRange(cs - before.length, ce - before.length);
  } else {
    ta.value = v.slice(0, s) + lead + before + core + after + trail + v.slice(e);
    ta.setSelectionRange(cs + before.length, cs + before.length + core.length);
  }
  ta.focus();
  ta.dispatchEvent(new Event('input'));
}

/** Puts a list marker before each selected line (the caret's line when nothing is selected). */
function prefixLines(ta, marker) {
  const v = ta.value;
  const s = v.lastIndexOf('\n', (ta.selectionStart ?? v.length) - 1) + 1;
  let e = v.indexOf('\n', Math.max(ta.selectionEnd ?? s, s));
  if (e < 0) e = v.length;
  let n = 0;
  const lines = v.slice(s, e).split('\n').map((l) => (l.trim() || s === e ? `${marker(n++)}${l}` : l));
  const out = lines.join('\n');
  ta.value = v.slice(0, s) + out + v.slice(e);
  ta.setSelectionRange(s + out.length, s + out.length);
  ta.focus();
  ta.dispatchEvent(new Event('input'));
}

/** `[text](https://)` around the selection, with the address selected to be typed over. */
function insertLink(ta) {
  const v = ta.value;
  const s = ta.selectionStart ?? v.length;
  const e = ta.selectionEnd ?? s;
  const text = v.slice(s, e).trim() || t('fmt.link_text');
  const md = `[${text}](https://)`;
  ta.value = v.slice(0, s) + md + v.slice(e);
  const us = s + text.length + 3;
  ta.setSelectionRange(us, us + 'https://'.length);
  ta.focus();
  ta.dispatchEvent(new Event('input'));
}

/** The email parts of the composer: the formatting toolbar with its preview (rendered by the
 * server, `POST /api/v1/email/preview`, the same renderer as the sent mail, and shown in a
 * sandboxed frame without scripts), and the Cc/Bcc fields behind a link. */
function buildMailTools(w, ta) {
  const previewBox = h('iframe', {
    id: 'composer-preview', class: 'mail-preview', sandbox: '', title: t('fmt.preview_title'), hidden: true,
  });
  const previewBtn = h('button', { type: 'button', class: 'ghost small', id: 'fmt-preview', 'aria-pressed': 'false' }, t('fmt.preview'));
  const showPreview = async (on) => {
    w.preview = on;
    previewBtn.setAttribute('aria-pressed', on ? 'true' : 'false');
    previewBtn.textContent = t(on ? 'fmt.edit' : 'fmt.preview');
    if (!on) {
      previewBox.hidden = true;
      previewBox.removeAttribute('srcdoc');
      ta.hidden = false;
      ta.focus();
      return;
    }
    try {
      const r = await api('POST', '/email/preview', { text: ta.value });
      if (!w.preview) return;
      previewBox.srcdoc = r.html;
      previewBox.hidden = false;
      ta.hidden = true;
    } catch (e) {
      w.preview = false;
      previewBtn.setAttribute('aria-pressed', 'false');
      previewBtn.textContent = t('fmt.preview');
      toast(t('error.generic', { message: e.message }));
    }
  };
  previewBtn.addEventListener('click', () => showPreview(!w.preview));
  const tool = (id, label, title, fn, cls = '') => h('button', {
    type: 'button', class: `ghost small fmt ${cls}`, id, title, 'aria-label': title,
    onclick: () => { if (w.preview) showPreview(false); fn(); },
  }, label);
  const bar = h('div', { class: 'fmt-bar', role: 'toolbar', 'aria-label': t('fmt.toolbar') },
    tool('fmt-bold', 'B', t('fmt.bold'), () => wrapSelection(ta, '**', '**'), 'b'),
    tool('fmt-italic', 'I', t('fmt.italic'), () => wrapSelection(ta, '_', '_'), 'i'),
    tool('fmt-bullets', '•', t('fmt.bullets'), () => prefixLines(ta, () => '- ')),
    tool('fmt-numbers', '1.', t('fmt.numbers'), () => prefixLines(ta, (n) => `${n + 1}. `)),
    tool('fmt-link', '🔗', t('fmt.link'), () => insertLink(ta)),
    previewBtn,
    h('span', { class: 'fmt-help muted', dir: 'auto' }, t('fmt.help')));
  ta.addEventListener('keydown', (e) => {
    if (!(e.ctrlKey || e.metaKey) || e.altKey || e.shiftKey) return;
    const k = e.key.toLowerCase();
    if (k === 'b' || k === 'i') {
      e.preventDefault();
      if (k === 'b') wrapSelection(ta, '**', '**');
      else wrapSelection(ta, '_', '_');
    }
  });

  // Cc and Bcc, collapsed behind a link; Cc prefilled with the last mail's other recipients.
  const field = (id, key, value, onInput) => {
    const input = h('input', {
      id, type: 'text', dir: 'ltr', autocomplete: 'off', spellcheck: 'false', value: value || '',
      placeholder: t('mail.copies_hint'), inputmode: 'email',
    });
    input.addEventListener('input', () => onInput(input.value));
    return h('div', { class: 'copy-field' }, h('label', { for: id }, t(key)), input);
  };
  const fields = h('div', { class: 'copies-fields', id: 'composer-copies', hidden: !w.copiesOpen },
    field('composer-cc', 'mail.cc', w.ccText, (v) => { w.ccText = v; }),
    field('composer-bcc', 'mail.bcc', w.bccText, (v) => { w.bccText = v; }));
  const toggle = h('button', {
    type: 'button', class: 'link', id: 'composer-copies-toggle', 'aria-expanded': w.copiesOpen ? 'true' : 'false',
    'aria-controls': 'composer-copies',
  }, t('mail.copies'));
  toggle.addEventListener('click', () => {
    w.copiesOpen = !w.copiesOpen;
    fields.hidden = !w.copiesOpen;
    toggle.setAttribute('aria-expanded', w.copiesOpen ? 'true' : 'false');
    renderCopiesSummary(w);
    if (w.copiesOpen) $('composer-cc').focus();
  });
  const copies = h('div', { class: 'copies-row' }, toggle, h('span', { id: 'composer-copies-summary', class: 'muted' }));
  const reset = () => {
    if (w.preview) showPreview(false);
    w.bccText = '';
    const bcc = $('composer-bcc');
    if (bcc) bcc.value = '';
  };
  /** What the next reply is copied to: `cc` only once known (else the server's default). */
  const current = () => ({
    cc: w.ccText === undefined ? undefined : addressList(w.ccText),
    bcc: addressList(w.bccText),
  });
  return { bar, copies, fields, previewBox, reset, current, restore: () => { if (w.preview) showPreview(true); } };
}

function buildComposer(w, canReply) {
  if (!canReply) w.note = true;
  const ta = h('textarea', {
    id: 'composer-text', rows: '3', dir: 'auto', value: w.draft,
    placeholder: t(w.note ? 'agent.note_placeholder' : 'agent.reply_placeholder'),
    'aria-label': t(w.note ? 'agent.internal' : 'agent.send'),
  });
  const noteBox = h('input', { type: 'checkbox', id: 'composer-note', checked: w.note });
  const sendBtn = h('button', { type: 'submit', class: 'primary' }, t(w.note ? 'agent.add_note' : 'agent.send'));
  const form = h('form', { class: `composer${w.note ? ' note' : ''}` });
  const canned = h('select', { id: 'canned', 'aria-label': t('agent.canned') },
    h('option', { value: '' }, t('agent.canned_pick')),
    CANNED.map((k) => h('option', { value: k }, t(k))));
  canned.addEventListener('change', () => {
    if (!canned.value) return;
    const text = t(canned.value);
    const start = ta.selectionStart ?? ta.value.length;
    ta.value = ta.value.slice(0, start) + text + ta.value.slice(ta.selectionEnd ?? start);
    w.draft = ta.value;
    canned.value = '';
    ta.focus();
  });
  noteBox.addEventListener('change', () => {
    w.note = noteBox.checked;
    form.classList.toggle('note', w.note);
    ta.placeholder = t(w.note ? 'agent.note_placeholder' : 'agent.reply_placeholder');
    ta.setAttribute('aria-label', t(w.note ? 'agent.internal' : 'agent.send'));
    sendBtn.textContent = t(w.note ? 'agent.add_note' : 'agent.send');
    ta.focus();
  });
  ta.addEventListener('input', () => {
    w.draft = ta.value;
    if (!w.note && ta.value) typingOn(w);
  });
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  // Files go with replies on channels that carry them (chat, email): uploaded at once, sent
  // with the next reply, listed above the bar until then.
  if (!w.files) w.files = [];
  const canAttach = canReply && FILE_CHANNELS.has(w.it.channel);
  const chips = h('ul', { class: 'chips', id: 'composer-files', 'aria-live': 'polite' });
  const renderChips = () => {
    chips.replaceChildren(...w.files.map((f) => h('li', { class: 'chip', dir: 'auto' },
      `${f.name} (${fmtBytes(f.size)})`,
      h('button', {
        type: 'button', class: 'ghost', 'aria-label': t('agent.remove_file', { name: f.name }),
        onclick: () => { w.files = w.files.filter((x) => x !== f); renderChips(); },
      }, '×'))));
    chips.hidden = !w.files.length;
  };
  renderChips();
  const fileInput = h('input', { type: 'file', id: 'composer-file', multiple: true, hidden: true });
  fileInput.addEventListener('change', async () => {
    const picked = [...fileInput.files];
    fileInput.value = '';
    for (const f of picked) {
      try {
        const a = await api('POST', `/attachments?name=${encodeURIComponent(f.name)}`, f, f.type || 'application/octet-stream');
        w.files.push({ id: a.id, name: f.name, size: f.size });
        renderChips();
      } catch (e) {
        toast(t('agent.file_refused', { name: f.name, message: e.message }));
      }
    }
  });
  const attachBtn = canAttach
    ? h('button', { type: 'button', class: 'ghost', id: 'btn-attach', 'aria-label': t('agent.attach'), title: t('agent.attach'), onclick: () => fileInput.click() }, '📎')
    : null;
  const mail = canReply && isEmailReply(w) ? buildMailTools(w, ta) : null;
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = ta.value;
    const files = w.note ? [] : w.files;
    if (!text.trim() && !files.length) return;
    const copies = mail && !w.note ? mail.current() : null;
    ta.value = '';
    w.draft = '';
    if (files.length) {
      w.files = [];
      renderChips();
    }
    if (mail) mail.reset();
    send(w.it.id, text, w.note, files, copies);
  });
  if (mail) requestAnimationFrame(() => { renderCopiesSummary(w); mail.restore(); });
  // (Element.append writes a null as the text "null": only the parts this channel has.)
  form.append(...[
    mail ? mail.copies : null,
    mail ? mail.fields : null,
    chips,
    mail ? mail.bar : null,
    ta,
    mail ? mail.previewBox : null,
    h('div', { class: 'composer-bar' },
      canReply ? h('label', { class: 'check' }, noteBox, ' ', t('agent.internal')) : null,
      canned,
      canAttach ? fileInput : null,
      attachBtn,
      h('span', { class: 'spacer' }),
      sendBtn),
  ].filter(Boolean));
  return form;
}

function buildActions(w) {
  const it = w.it;
  const q = S.queues.get(it.queue_id);
  const dispositions = (q && q.dispositions) || [];
  const bar = h('div', { class: 'actions' });
  const panel = h('div', { class: 'action-panel', hidden: true });

  const showEnd = () => {
    const disp = dispositions.length
      ? h('select', { id: 'end-disposition', required: true },
        dispositions.map((d) => h('option', { value: d }, tValue('disposition', d))))
      : h('input', { id: 'end-disposition', required: true, maxlength: '64', dir: 'auto' });
    const notes = h('textarea', { id: 'end-notes', rows: '2', dir: 'auto', maxlength: '10000' });
    const form = h('form', { class: 'inline-form', 'aria-labelledby': 'end-title' },
      h('h3', { id: 'end-title' }, t('agent.end_title')),
      h('label', { for: 'end-disposition' }, t('agent.disposition')), disp,
      h('label', { for: 'end-notes' }, t('agent.notes')), notes,
      h('div', { class: 'row' },
        h('button', { type: 'button', class: 'ghost', onclick: () => { panel.hidden = true; } }, t('agent.cancel')),
        h('button', { type: 'submit', class: 'danger' }, t('agent.confirm_end'))));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      panel.hidden = true;
      endWork(it.id, disp.value.trim(), notes.value.trim());
    });
    form.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') panel.hidden = true;
    });
    panel.replaceChildren(form);
    panel.hidden = false;
    disp.focus();
  };

  const showTransfer = async () => {
    const others = [...S.queues.values()].filter((x) => x.id !== it.queue_id);
    // Colleagues who are available now can take it directly.
    let agents = [];
    try {
      agents = (await api('GET', '/agents')).filter((a) => a.id !== S.agentId);
    } catch {
      agents = [];
    }
    for (const a of agents) S.agentNames.set(a.id, a.name);
    const available = agents.filter((a) => a.status && a.status.state === 'available');
    const sel = h('select', { id: 'transfer-queue' },
      h('optgroup', { label: t('agent.transfer_queues') }, others.map((x) => h('option', { value: `q:${x.id}` }, x.name))),
      available.length ? h('optgroup', { label: t('agent.transfer_agents') }, available.map((a) => h('option', { value: `a:${a.id}` }, a.name))) : null);
    const form = h('form', { class: 'inline-form' },
      h('label', { for: 'transfer-queue' }, t('agent.transfer_to')), sel,
      h('div', { class: 'row' },
        h('button', { type: 'button', class: 'ghost', onclick: () => { panel.hidden = true; } }, t('agent.cancel')),
        h('button', { type: 'submit', class: 'primary' }, t('agent.confirm_transfer'))));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      panel.hidden = true;
      if (sel.value) transferWork(it.id, sel.value);
    });
    form.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') panel.hidden = true;
    });
    panel.replaceChildren(form);
    panel.hidden = false;
    sel.focus();
  };

  bar.append(
    h('button', { type: 'button', id: 'btn-transfer', class: 'ghost', onclick: showTransfer }, t('agent.transfer')),
    h('button', { type: 'button', id: 'btn-end', class: 'danger', onclick: showEnd }, t('agent.end')));
  return h('div', { class: 'action-area' }, panel, bar);
}

function receipt(w, m) {
  if (m.from !== 'agent' || m.internal) return null;
  const read = w.customerRead >= m.seq;
  return h('span', { class: `receipt${read ? ' read' : ''}`, title: t(read ? 'msg.read' : 'msg.delivered'), 'aria-label': t(read ? 'msg.read' : 'msg.delivered') }, read ? '✓✓' : '✓');
}

function renderMessages() {
  const v = S.view;
  const w = v && S.work.get(v.id);
  if (!w || !v.log) return;
  const log = v.log;
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const msgs = [...w.messages.values()].sort((a, b) => a.seq - b.seq);
  const nodes = msgs.map((m) => {
    const mine = m.from === 'agent';
    const who = m.internal ? t('msg.internal') : m.from === 'customer' ? (m.name || titleOf(w)) : m.from === 'system' ? t('msg.system') : (m.name || t('agent.you'));
    return h('div', { class: `msg from-${m.from}${m.internal ? ' internal' : ''}${mine ? ' mine' : ''}`, dataset: { seq: String(m.seq) } },
      h('div', { class: 'bubble' }, m.text ? h('p', { dir: 'auto' }, m.text) : null, renderFiles(w.it.id, m.attachments), copiesLine(w, m)),
      h('div', { class: 'msg-meta' }, h('span', { dir: 'auto' }, who), ' · ', h('time', { datetime: m.at || '' }, fmtWhen(m.at)), ' ', receipt(w, m)));
  });
  for (const p of w.pending) {
    nodes.push(h('div', { class: `msg from-agent mine pending${p.internal ? ' internal' : ''}` },
      h('div', { class: 'bubble' }, h('p', { dir: 'auto' }, p.text)),
      h('div', { class: 'msg-meta' }, p.failed
        ? [t('msg.failed'), ' ', h('button', { type: 'button', class: 'link', onclick: () => { w.pending = w.pending.filter((x) => x !== p); send(w.it.id, p.text, p.internal, [], p.copies); } }, t('msg.retry'))]
        : t('msg.sending'))));
  }
  if (!nodes.length) {
    nodes.push(h('p', { class: 'empty' }, w.unavailable ? t('agent.messages_unavailable') : t('agent.no_messages')));
  }
  log.replaceChildren(...nodes);
  if (atBottom || w.pending.length) log.scrollTop = log.scrollHeight;
}

/** The Cc of a message's mail (email conversations), as a line under its text. */
function copiesLine(w, m) {
  const mail = w.mail && (w.mail.mails || []).find((x) => x.message_id === m.id);
  const cc = mail && mail.headers && Array.isArray(mail.headers.cc) ? mail.headers.cc : [];
  if (!cc.length) return null;
  return h('p', { class: 'copies', dir: 'auto' },
    t('mail.cc_line', { list: '' }), h('bdi', { dir: 'ltr' }, cc.join(', ')));
}

function renderTyping() {
  const v = S.view;
  const w = v && S.work.get(v.id);
  if (!w || !v.typing) return;
  v.typing.textContent = w.typing ? t('agent.typing', { name: w.typing }) : '';
}

let customerReq = 0;
async function renderCustomer() {
  const panel = $('customer');
  const w = S.active && S.work.get(S.active);
  if (!w) {
    panel.replaceChildren();
    return;
  }
  const cid = w.it.customer_id;
  if (!cid) {
    panel.replaceChildren(h('h2', { id: 'customer-title' }, t('agent.customer')), h('p', { class: 'empty' }, t('agent.no_customer')));
    return;
  }
  if (S.customers.has(cid)) drawCustomer(panel, S.customers.get(cid), w);
  else panel.replaceChildren(h('h2', { id: 'customer-title' }, t('agent.customer')));
  const req = ++customerReq;
  try {
    const c = await api('GET', `/customers/${cid}`);
    S.customers.set(cid, c);
    renderWork();
    if (req !== customerReq || S.active !== w.it.id) return;
    drawCustomer(panel, c, w);
    const title = $('conv-title');
    if (title) title.textContent = titleOf(w);
  } catch (e) {
    if (req === customerReq) panel.append(h('p', { class: 'error' }, t('error.generic', { message: e.message })));
  }
}

function drawCustomer(panel, c, w) {
  const history = (c.history || []).filter((x) => x.id !== w.it.id);
  const kindIcon = { phone: '☎', email: '✉' };
  panel.replaceChildren(
    h('h2', { id: 'customer-title' }, t('agent.customer')),
    h('div', { class: 'cust-card' },
      h('div', { class: 'avatar', 'aria-hidden': 'true' }, (c.name || '?').trim().charAt(0).toUpperCase()),
      h('div', {}, h('div', { class: 'cust-name', dir: 'auto' }, c.name || t('agent.visitor')),
        h('div', { class: 'muted' }, fmtDateTime(c.created_at)))),
    h('h3', {}, t('agent.contact_points')),
    c.contact_points && c.contact_points.length
      ? h('ul', { class: 'contacts' }, c.contact_points.map((p) => h('li', {},
        h('span', { class: 'kind', title: p.kind }, kindIcon[p.kind] || p.kind), ' ',
        h('bdi', { dir: 'ltr' }, p.value))))
      : h('p', { class: 'muted' }, '—'),
    h('h3', {}, t('agent.history')),
    history.length
      ? h('ol', { class: 'history' }, history.map((x) => {
        const q = S.queues.get(x.queue_id);
        return h('li', { class: 'hist' },
          h('div', { class: 'hist-head' },
            h('span', { class: `badge ch-${x.channel}`, 'aria-hidden': 'true' }, CHANNEL_ICON[x.channel] || '•'),
            h('span', {}, tValue('channel', x.channel)),
            h('time', { datetime: x.created_at }, fmtDateTime(x.created_at))),
          x.subject ? h('div', { class: 'hist-subject', dir: 'auto' }, x.subject) : null,
          h('div', { class: 'hist-meta' },
            q ? `${q.name} · ` : '',
            h('span', { class: `state st-${x.state}` }, tValue('istate', x.state)),
            x.disposition ? [' · ', h('strong', { class: 'disposition' }, tValue('disposition', x.disposition))] : null),
          x.notes ? h('p', { class: 'hist-notes', dir: 'auto' }, x.notes) : null,
          x.channel === 'voice' ? null : historyToggle(x));
      }))
      : h('p', { class: 'muted' }, t('agent.no_history')));
}

/** Opens (and closes) an earlier contact's conversation under its history entry, read-only. The
 * server lets an agent read it while handling another contact of the same customer. Opened ones
 * stay open when the panel is drawn again. */
function historyToggle(x) {
  const box = h('div', { class: 'hist-log', role: 'log', 'aria-label': t('msg.log'), hidden: true });
  const btn = h('button', { type: 'button', class: 'link hist-open', 'aria-expanded': 'false', dataset: { id: x.id } }, t('agent.show_conversation'));
  const show = async (open) => {
    btn.setAttribute('aria-expanded', open ? 'true' : 'false');
    btn.textContent = t(open ? 'agent.hide_conversation' : 'agent.show_conversation');
    box.hidden = !open;
    if (open) S.histOpen.add(x.id);
    else S.histOpen.delete(x.id);
    if (!open) return;
    box.replaceChildren(h('p', { class: 'muted' }, t('agent.loading')));
    try {
      const msgs = await api('GET', `/interactions/${x.id}/messages`);
      box.replaceChildren(...(msgs.length ? msgs.map((m) => historyMessage(x, m)) : [h('p', { class: 'muted' }, t('agent.no_messages'))]));
    } catch (e) {
      box.replaceChildren(h('p', { class: 'error' }, e.status === 404 ? t('agent.messages_unavailable') : t('error.generic', { message: e.message })));
    }
  };
  btn.addEventListener('click', () => show(btn.getAttribute('aria-expanded') !== 'true'));
  if (S.histOpen.has(x.id)) show(true);
  return [btn, box];
}

function historyMessage(x, m) {
  const who = m.internal ? t('msg.internal') : m.from === 'customer' ? (m.name || t('msg.customer')) : m.from === 'system' ? t('msg.system') : (m.name || t('w.agent'));
  return h('div', { class: `msg from-${m.from}${m.internal ? ' internal' : ''}` },
    h('div', { class: 'bubble' }, m.text ? h('p', { dir: 'auto' }, m.text) : null, renderFiles(x.id, m.attachments)),
    h('div', { class: 'msg-meta' }, h('span', { dir: 'auto' }, who), ' · ', h('time', { datetime: m.at || '' }, fmtDateTime(m.at))));
}

/** Once a second: offer countdowns and conversation timers. */
function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll('.offer .countdown')) {
    const left = Math.max(0, Math.ceil((Number(el.dataset.expires) - now) / 1000));
    el.textContent = fmtClock(left);
    el.setAttribute('aria-label', t('agent.expires_in', { s: left }));
    el.classList.toggle('urgent', left <= 10);
  }
  for (const el of document.querySelectorAll('.offer .bar-fill')) {
    const left = Math.max(0, (Number(el.dataset.expires) - now) / 1000);
    el.style.inlineSize = `${Math.min(100, (left / Number(el.dataset.total)) * 100)}%`;
  }
  for (const el of document.querySelectorAll('.timer[data-since]')) {
    el.textContent = ` · ${fmtClock((now - Date.parse(el.dataset.since)) / 1000)}`;
  }
}

boot();
