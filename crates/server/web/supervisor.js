// The supervisor view (/supervisor): per queue, live, the waiting count, longest wait, agents by
// state and service level (GET /api/v1/stats/realtime, refreshed on events); the agents; the
// active interactions, any of which opens read-only with its messages and internal notes.

import { fmtClock, fmtDateTime, fmtDuration, fmtNumber, fmtPercent, fmtTime, t, tValue } from './i18n.js';
import { ApiError, EventStream, api, logout, onSessionLost, session } from './api.js';
import { $, h, initialLang, langSelect, toast, useLang, wireLogin } from './ui.js';

const ACTIVE_STATES = ['queued', 'offered', 'connected', 'wrap_up'];
const AGENT_STATES = ['available', 'busy', 'break', 'offline'];
const CHANNEL_ICON = {
  voice: '☎', chat: '💬', email: '✉', sms: '📱', whatsapp: '🟢', telegram: '✈', messenger: '💭',
  instagram: '📷', video: '🎥', fax: '📠', task: '📋',
};

const S = {
  realtime: null,
  fetchedAt: 0,
  agents: [],
  queues: new Map(),
  active: [],
  customers: new Map(),
  open: null,
  stream: null,
  conn: 'closed',
};
window.__sb = S;

function boot() {
  useLang(initialLang());
  onSessionLost(() => showLogin());
  wireLogin((r) => (['supervisor', 'admin'].includes(r.user.role) ? null : 'login.need_supervisor'), start);
  $('login-lang').append(langSelect(renderAll));
  $('lang-slot').append(langSelect(renderAll));
  $('logout').addEventListener('click', async () => {
    if (S.stream) S.stream.stop();
    await logout();
    showLogin();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && S.open) closeViewer();
  });
  setInterval(tick, 1000);
  const s = session.get();
  if (s && s.user && ['supervisor', 'admin'].includes(s.user.role)) start();
  else showLogin();
}

function showLogin() {
  if (S.stream) S.stream.stop();
  S.stream = null;
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-username').focus();
}

function start() {
  const s = session.get();
  $('login').hidden = true;
  $('app').hidden = false;
  $('whoami').textContent = s.user.display_name || s.user.username;
  renderAll();
  S.stream = new EventStream({
    onEvent,
    onOpen: refresh,
    onStatus: (st) => {
      S.conn = st;
      renderConn();
    },
  }).start();
}

let refreshTimer = null;
let refreshing = false;
let again = false;

/** Re-reads the figures; events in a burst cause one refresh. */
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 250);
}

async function refresh() {
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  try {
    const [realtime, agents, queues, ...lists] = await Promise.all([
      api('GET', '/stats/realtime'),
      api('GET', '/agents'),
      api('GET', '/queues'),
      ...ACTIVE_STATES.map((st) => api('GET', `/interactions?state=${st}&limit=500`)),
    ]);
    S.realtime = realtime;
    S.fetchedAt = Date.now();
    S.agents = agents;
    S.queues = new Map(queues.map((q) => [q.id, q]));
    S.active = lists.flat().sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
    await loadCustomerNames();
    renderAll();
    if (S.open) loadOpen();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) toast(t('error.generic', { message: e.message }));
  } finally {
    refreshing = false;
    if (again) {
      again = false;
      scheduleRefresh();
    }
  }
}

async function loadCustomerNames() {
  const missing = [...new Set(S.active.map((i) => i.customer_id).filter((c) => c && !S.customers.has(c)))].slice(0, 20);
  await Promise.all(missing.map(async (id) => {
    try {
      const c = await api('GET', `/customers/${id}`);
      S.customers.set(id, c.name);
    } catch {
      S.customers.set(id, null);
    }
  }));
}

function onEvent(ev) {
  const d = ev.data || {};
  if (S.open && d.interaction_id === S.open.id) {
    if (ev.type === 'message.created') {
      addMessage(d);
      renderViewerLog();
    } else if (ev.type === 'message.typing') {
      S.open.typing = d.on ? d.name || d.from : null;
      renderViewerTyping();
    }
  }
  if (ev.type.startsWith('interaction.') || ev.type === 'agent.state_changed') scheduleRefresh();
}

function addMessage(m) {
  if (!S.open || m.seq === undefined) return;
  S.open.messages.set(Number(m.seq), m);
}

async function openInteraction(id) {
  S.open = { id, messages: new Map(), typing: null, it: S.active.find((x) => x.id === id), unavailable: false };
  renderViewer();
  await loadOpen();
  const v = $('viewer');
  v.focus();
}

async function loadOpen() {
  const o = S.open;
  if (!o) return;
  try {
    const [it, msgs] = await Promise.all([
      api('GET', `/interactions/${o.id}`),
      api('GET', `/interactions/${o.id}/messages`).catch((e) => {
        if (e instanceof ApiError && (e.status === 404 || e.status === 405)) {
          o.unavailable = true;
          return [];
        }
        throw e;
      }),
    ]);
    if (S.open !== o) return;
    o.it = it;
    for (const m of Array.isArray(msgs) ? msgs : msgs.messages || []) addMessage(m);
    renderViewer();
  } catch (e) {
    toast(t('error.generic', { message: e.message }));
  }
}

function closeViewer() {
  S.open = null;
  renderViewer();
}

/* ---------- rendering ---------- */

function renderAll() {
  renderConn();
  renderQueues();
  renderAgents();
  renderActive();
  renderViewer();
  $('updated').textContent = S.fetchedAt ? t('sup.updated', { time: fmtTime(new Date(S.fetchedAt)) }) : '';
  document.title = `${t('app.supervisor')} · ${t('app.name')}`;
}

function renderConn() {
  const el = $('conn');
  el.className = `conn ${S.conn}`;
  el.textContent = t(`conn.${S.conn}`);
}

function agentChips(counts) {
  const c = counts || {};
  return h('div', { class: 'chips' }, AGENT_STATES.filter((s) => c[s]).map((s) =>
    h('span', { class: `chip st-${s}`, title: t(`state.${s}`) }, h('span', { class: `dot ${s}`, 'aria-hidden': 'true' }), ` ${t(`state.${s}`)} ${fmtNumber(c[s])}`)));
}

function waitCell(q) {
  const grow = q.waiting > 0 ? (Date.now() - S.fetchedAt) / 1000 : 0;
  const s = q.waiting > 0 ? q.longest_wait_s + grow : 0;
  return h('td', { class: `num wait${s >= (q.service_level && q.service_level.threshold_s) ? ' late' : ''}`, 'data-base': String(q.longest_wait_s), 'data-waiting': String(q.waiting), 'data-threshold': String(q.service_level ? q.service_level.threshold_s : 0) }, q.waiting > 0 ? fmtClock(s) : t('sup.none'));
}

function renderQueues() {
  const table = $('queues');
  const r = S.realtime;
  const head = h('thead', {}, h('tr', {},
    h('th', { scope: 'col' }, t('sup.queue')),
    h('th', { scope: 'col', class: 'num' }, t('sup.waiting')),
    h('th', { scope: 'col', class: 'num' }, t('sup.offered')),
    h('th', { scope: 'col', class: 'num' }, t('sup.longest_wait')),
    h('th', { scope: 'col', class: 'num' }, t('sup.est_wait')),
    h('th', { scope: 'col' }, t('sup.agents_by_state')),
    h('th', { scope: 'col', class: 'num' }, t('sup.service_level'))));
  if (!r) {
    table.replaceChildren(head);
    return;
  }
  const rows = r.queues.map((q) => {
    const sl = q.service_level || {};
    const met = sl.value === null || sl.value === undefined ? null : sl.value * 100 >= sl.target_percent;
    return h('tr', { dataset: { queue: q.name } },
      h('th', { scope: 'row', dir: 'auto' }, q.name),
      h('td', { class: `num big${q.waiting ? ' hot' : ''}`, 'data-field': 'waiting' }, fmtNumber(q.waiting)),
      h('td', { class: 'num' }, fmtNumber(q.offered)),
      waitCell(q),
      h('td', { class: 'num' }, q.estimated_wait_s === null || q.estimated_wait_s === undefined ? t('sup.none') : fmtDuration(q.estimated_wait_s)),
      h('td', {}, agentChips(q.agents)),
      h('td', { class: `num${met === null ? '' : met ? ' good' : ' bad'}` },
        sl.value === null || sl.value === undefined ? t('sup.none') : fmtPercent(sl.value),
        h('div', { class: 'muted small' }, t('sup.sl_target', { percent: fmtPercent(sl.target_percent / 100), s: sl.threshold_s }))));
  });
  const total = h('tr', { class: 'total' },
    h('th', { scope: 'row' }, t('sup.total')),
    h('td', { class: 'num' }, fmtNumber(r.queues.reduce((n, q) => n + q.waiting, 0))),
    h('td', { class: 'num' }, fmtNumber(r.queues.reduce((n, q) => n + q.offered, 0))),
    h('td', {}), h('td', {}),
    h('td', {}, agentChips(r.agents)),
    h('td', {}));
  table.replaceChildren(head, h('tbody', {}, rows, total));
}

function renderAgents() {
  const table = $('agents');
  const head = h('thead', {}, h('tr', {},
    h('th', { scope: 'col' }, t('sup.agent')),
    h('th', { scope: 'col' }, t('sup.state')),
    h('th', { scope: 'col' }, t('sup.activity')),
    h('th', { scope: 'col' }, t('sup.load')),
    h('th', { scope: 'col' }, t('sup.since'))));
  const rows = S.agents.map((a) => {
    const st = a.status || { state: 'offline' };
    const shown = st.state === 'available' && st.activity && st.activity !== 'idle' ? 'busy' : st.state;
    const load = Object.entries(st.load || {}).filter(([, n]) => n > 0);
    return h('tr', {},
      h('th', { scope: 'row', dir: 'auto' }, a.name),
      h('td', {}, h('span', { class: `dot ${shown}`, 'aria-hidden': 'true' }), ' ', t(`state.${st.state}`),
        st.reason ? h('span', { class: 'muted' }, ` (${tValue('reason', st.reason)})`) : null),
      h('td', {}, st.activity ? tValue('activity', st.activity) : t('sup.none')),
      h('td', {}, load.length ? load.map(([c, n]) => h('span', { class: 'chip', title: tValue('channel', c) }, `${CHANNEL_ICON[c] || c} ${fmtNumber(n)}`)) : t('sup.none')),
      h('td', { class: 'muted' }, fmtDateTime(st.since)));
  });
  table.replaceChildren(head, h('tbody', {}, rows));
}

function agentName(id) {
  const a = S.agents.find((x) => x.id === id);
  return a ? a.name : '';
}

function renderActive() {
  const table = $('active');
  $('active-count').textContent = S.active.length ? fmtNumber(S.active.length) : '';
  if (!S.active.length) {
    table.replaceChildren(h('tbody', {}, h('tr', {}, h('td', { class: 'empty' }, t('sup.no_active')))));
    return;
  }
  const head = h('thead', {}, h('tr', {},
    h('th', { scope: 'col' }, t('sup.channel')),
    h('th', { scope: 'col' }, t('sup.customer')),
    h('th', { scope: 'col' }, t('sup.queue')),
    h('th', { scope: 'col' }, t('sup.state')),
    h('th', { scope: 'col' }, t('sup.agent')),
    h('th', { scope: 'col', class: 'num' }, t('agent.started')),
    h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, t('sup.open')))));
  const rows = S.active.map((it) => {
    const q = S.queues.get(it.queue_id);
    const name = it.customer_id ? S.customers.get(it.customer_id) : null;
    return h('tr', { class: S.open && S.open.id === it.id ? 'selected' : '', dataset: { id: it.id } },
      h('td', {}, h('span', { class: `badge ch-${it.channel}`, 'aria-hidden': 'true' }, CHANNEL_ICON[it.channel] || '•'), ' ', tValue('channel', it.channel)),
      h('td', {}, h('div', { dir: 'auto' }, it.customer_id ? name || t('agent.visitor') : t('sup.none')), it.subject ? h('div', { class: 'muted small ellipsis', dir: 'auto' }, it.subject) : null),
      h('td', { dir: 'auto' }, q ? q.name : ''),
      h('td', {}, h('span', { class: `state st-${it.state}` }, tValue('istate', it.state))),
      h('td', { dir: 'auto' }, it.agent_id ? agentName(it.agent_id) : t('sup.none')),
      h('td', { class: 'num timer', 'data-since': it.created_at }, fmtClock((Date.now() - Date.parse(it.created_at)) / 1000)),
      h('td', {}, h('button', { type: 'button', class: 'ghost small', onclick: () => openInteraction(it.id) }, t('sup.open'))));
  });
  table.replaceChildren(head, h('tbody', {}, rows));
}

function renderViewer() {
  const v = $('viewer');
  v.tabIndex = -1;
  const o = S.open;
  for (const tr of document.querySelectorAll('#active tr[data-id]')) tr.classList.toggle('selected', !!o && tr.dataset.id === o.id);
  if (!o) {
    v.replaceChildren(h('div', { class: 'placeholder' }, h('p', {}, t('sup.read_only'))));
    return;
  }
  const it = o.it || {};
  const q = S.queues.get(it.queue_id);
  const name = it.customer_id ? S.customers.get(it.customer_id) : null;
  v.replaceChildren(
    h('header', { class: 'conv-head' },
      h('div', {},
        h('h2', { id: 'viewer-title', dir: 'auto' }, name || it.subject || t('agent.visitor')),
        h('div', { class: 'conv-meta' },
          `${tValue('channel', it.channel)} · ${q ? q.name : ''} · `,
          h('span', { class: `state st-${it.state}` }, tValue('istate', it.state)),
          it.agent_id ? ` · ${agentName(it.agent_id)}` : '')),
      h('button', { type: 'button', class: 'ghost', onclick: closeViewer, 'aria-keyshortcuts': 'Escape' }, t('sup.close'))),
    h('div', { class: 'banner info' }, t('sup.read_only')),
    h('div', { id: 'viewer-log', class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': t('msg.log'), tabindex: '0' }),
    h('div', { id: 'viewer-typing', class: 'typing', 'aria-live': 'polite' }));
  renderViewerLog();
  renderViewerTyping();
}

function renderViewerLog() {
  const log = $('viewer-log');
  const o = S.open;
  if (!log || !o) return;
  const msgs = [...o.messages.values()].sort((a, b) => a.seq - b.seq);
  if (!msgs.length) {
    log.replaceChildren(h('p', { class: 'empty' }, o.unavailable ? t('agent.messages_unavailable') : t('agent.no_messages')));
    return;
  }
  log.replaceChildren(...msgs.map((m) => {
    const who = m.internal ? `${t('msg.internal')} · ${m.name || ''}` : m.from === 'customer' ? (m.name || t('msg.customer')) : m.from === 'system' ? t('msg.system') : (m.name || t('w.agent'));
    return h('div', { class: `msg from-${m.from}${m.internal ? ' internal' : ''}${m.from === 'agent' ? ' mine' : ''}` },
      h('div', { class: 'bubble' }, h('p', { dir: 'auto' }, m.text)),
      h('div', { class: 'msg-meta' }, h('span', { dir: 'auto' }, who), ' · ', h('time', { datetime: m.at || '' }, fmtTime(m.at))));
  }));
  log.scrollTop = log.scrollHeight;
}

function renderViewerTyping() {
  const el = $('viewer-typing');
  if (el) el.textContent = S.open && S.open.typing ? t('agent.typing', { name: S.open.typing }) : '';
}

function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll('#queues td.wait')) {
    if (Number(el.dataset.waiting) > 0) {
      const s = Number(el.dataset.base) + (now - S.fetchedAt) / 1000;
      el.textContent = fmtClock(s);
      el.classList.toggle('late', s >= Number(el.dataset.threshold));
    }
  }
  for (const el of document.querySelectorAll('#active .timer[data-since]')) {
    el.textContent = fmtClock((now - Date.parse(el.dataset.since)) / 1000);
  }
}

boot();
