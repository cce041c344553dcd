// The pages apart from the chat: right-to-left and localized digits, the agent desktop driven by
// the keyboard on tasks (reject, accept, switch, note, transfer, end), the supervisor's live view
// with a read-only conversation, and how the binary serves the assets.

import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, agentLogin, api, launch, login, person, setPresence, shot, site, tidy, until } from './lib.mjs';

let browser;
let admin;
let agents;

before(async () => {
  browser = await launch();
  admin = await login('admin', 'admin');
  agents = await api('GET', '/agents', undefined, admin.token);
  for (const a of agents) await api('PUT', `/agents/${a.id}/state`, { state: 'offline' }, admin.token);
});

after(async () => {
  if (browser) await browser.close();
});

// A test that failed half-way leaves nothing behind for the next one.
afterEach(tidy);

const agentId = (name) => agents.find((a) => a.name === name).id;

async function task(subject, queue = 'support', extra = {}) {
  return api('POST', '/interactions', { queue, subject, ...extra }, admin.token);
}

test('the agent desktop in Persian is right-to-left and writes numbers with Persian digits', async () => {
  const { page, errors, context } = await person(browser, { locale: 'fa-IR' });
  await page.goto(`${BASE}/agent?lang=fa`);
  assert.equal(await page.getAttribute('html', 'dir'), 'rtl');
  assert.equal(await page.getAttribute('html', 'lang'), 'fa');
  assert.equal(await page.textContent('#login-form button[type=submit]'), 'ورود');
  await page.fill('#login-username', 'agent2');
  await page.fill('#login-password', 'agent');
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#conn.open');
  assert.equal(await page.getAttribute('html', 'dir'), 'rtl');
  // Layout follows: the offers column is on the right.
  const left = await page.locator('.col-left').boundingBox();
  const center = await page.locator('.col-center').boundingBox();
  assert.ok(left.x > center.x, 'the first column is on the right in RTL');

  await setPresence(page, 'available');
  const it = await task('بازپرداخت سفارش ۱۰۴۲');
  const offer = page.locator(`.offer[data-id="${it.id}"]`);
  await offer.waitFor();
  // The countdown and the capacity use Persian digits (Intl), and no ASCII digits.
  const countdown = await offer.locator('.countdown').textContent();
  assert.match(countdown, /^[۰-۹]:[۰-۹]{2}$/);
  const capacity = await page.textContent('#capacity');
  assert.match(capacity, /[۰-۹]/);
  assert.doesNotMatch(capacity, /[0-9]/);
  const formatted = await page.evaluate(async () => {
    const m = await import('/assets/i18n.js');
    return [m.fmtNumber(1234567), m.fmtClock(75), m.t('agent.unread', { n: 3 })];
  });
  assert.deepEqual(formatted, ['۱٬۲۳۴٬۵۶۷', '۱:۱۵', '۳ پیام خوانده‌نشده']);
  await page.waitForTimeout(300);
  await shot(page, 'agent-fa-offer');

  // The language switch turns the page around without a reload.
  await page.selectOption('#lang-slot select', 'en');
  assert.equal(await page.getAttribute('html', 'dir'), 'ltr');
  assert.match(await offer.locator('.countdown').textContent(), /^\d:\d\d$/);
  await page.selectOption('#lang-slot select', 'fa');

  // A and R act on the focused offer (a focused select keeps its own letter keys).
  await offer.focus();
  await page.keyboard.press('a');
  await page.waitForSelector('#btn-end');
  await page.click('#btn-end');
  await page.click('.inline-form button[type=submit]');
  await page.waitForSelector('.banner.info');
  const ended = await api('GET', `/interactions/${it.id}`, undefined, admin.token);
  assert.equal(ended.disposition, 'resolved');
  await setPresence(page, 'offline');
  assert.deepEqual(errors, []);
  await context.close();
});

test('the agent desktop by keyboard: reject, accept, switch, note, transfer and end tasks', async () => {
  const { page, errors, context } = await person(browser);
  await agentLogin(page, 'agent3');
  const me = agentId('agent3');
  await setPresence(page, 'available');

  const t1 = await task('Call back about invoice 77', 'support', { attributes: { invoice: '77' } });
  await page.locator('.offer').first().waitFor();
  // R rejects the focused offer; it goes back to the queue and is not offered to agent3 again
  // at once, so cancel it as a supervisor would.
  await page.locator('.offer').first().focus();
  await page.keyboard.press('r');
  await until(async () => (await page.locator('.offer').count()) === 0, 'the rejected offer to go');
  await api('POST', `/interactions/${t1.id}/end`, { disposition: 'no_action' }, admin.token);

  const t2 = await task('Quote for 20 seats', 'sales');
  await page.locator('.offer').first().waitFor();
  await page.keyboard.press('a');
  await until(async () => (await page.locator('.work-item').count()) === 1, 'the first task');
  const t3 = await task('Update billing address', 'support');
  await until(async () => (await page.locator('.offer').count()) === 1, 'the second offer');
  await page.locator('body').click({ position: { x: 5, y: 500 } });
  await page.keyboard.press('a');
  await until(async () => (await page.locator('.work-item').count()) === 2, 'the second task');
  assert.equal(await page.getAttribute('.work-item.active', 'data-id'), t3.id);
  // Alt+1 and Alt+2 switch, from anywhere, the composer included.
  await page.keyboard.press('Alt+1');
  assert.equal(await page.getAttribute('.work-item.active', 'data-id'), t2.id);
  assert.equal(await page.textContent('#conv-title'), 'Quote for 20 seats');
  await page.focus('#composer-text');
  await page.keyboard.press('Alt+2');
  assert.equal(await page.getAttribute('.work-item.active', 'data-id'), t3.id);

  // Tasks take internal notes; Shift+Enter makes a new line, Enter adds the note.
  await page.focus('#composer-text');
  await page.keyboard.type('first line');
  await page.keyboard.press('Shift+Enter');
  await page.keyboard.type('second line');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#log .msg.internal[data-seq]');
  assert.equal(await page.textContent('#log .msg.internal p'), 'first line\nsecond line');

  // Transfer t3 to sales; it leaves this agent's list as a queued interaction.
  await page.click('#btn-transfer');
  await page.selectOption('#transfer-queue', { label: 'sales' });
  await page.click('.inline-form button[type=submit]');
  await until(async () => (await api('GET', `/interactions/${t3.id}`, undefined, admin.token)).queue_id !== t3.queue_id, 'the transfer');
  // Routing may offer it straight back to agent3: reject it if so.
  await page.waitForTimeout(300);
  if (await page.locator(`.offer[data-id="${t3.id}"]`).count()) {
    await page.locator(`.offer[data-id="${t3.id}"]`).focus();
    await page.keyboard.press('r');
  }
  await api('POST', `/interactions/${t3.id}/end`, { disposition: 'no_action' }, admin.token).catch(() => {});

  // End t2 with a disposition and notes.
  await page.locator(`.work-item[data-id="${t2.id}"]`).click();
  await page.click('#btn-end');
  await page.selectOption('#end-disposition', 'follow_up');
  await page.fill('#end-notes', 'Sent the quote');
  await page.click('.inline-form button[type=submit]');
  await until(async () => (await api('GET', `/interactions/${t2.id}`, undefined, admin.token)).state === 'ended', 't2 to end');
  const done = await api('GET', `/interactions/${t2.id}`, undefined, admin.token);
  assert.equal(done.disposition, 'follow_up');
  assert.equal(done.notes, 'Sent the quote');
  assert.equal(done.agent_id, me);

  // Break with a reason, through the desktop.
  await page.selectOption('#state', 'break');
  await page.waitForFunction(() => window.__sb.status.state === 'break');
  await page.selectOption('#reason', 'coffee');
  await page.waitForFunction(() => window.__sb.status.reason === 'coffee');
  const st = await api('GET', `/agents/${me}/state`, undefined, admin.token);
  assert.deepEqual([st.state, st.reason], ['break', 'coffee']);
  await setPresence(page, 'offline');
  assert.deepEqual(errors, []);
  await context.close();
});

test('an offer that arrives while the desktop catches up after a reconnect stays on screen', async () => {
  const { page, errors, context } = await person(browser);
  await agentLogin(page, 'agent3');
  await setPresence(page, 'available');
  // The catch-up after a reconnect is slow (its list of offers, read before the offer, arrives
  // late); meanwhile a task is offered and its event comes first. The late, older list must not
  // take the offer away.
  let held = 0;
  await page.route(/\/api\/v1\/interactions\?state=offered/, async (route) => {
    held += 1;
    const response = await route.fetch();
    await new Promise((r) => setTimeout(r, 1500));
    await route.fulfill({ response });
  });
  await page.evaluate(() => window.__sb.stream.drop());
  await page.waitForSelector('#conn.open');
  await until(async () => held > 0, 'the catch-up request');
  const t = await task('Offered during the catch-up', 'support');
  const offer = page.locator(`.offer[data-id="${t.id}"]`);
  await offer.waitFor();
  await page.waitForTimeout(2500);
  assert.equal(await offer.count(), 1, 'the offer is still shown after the catch-up answered');
  await page.unroute(/\/api\/v1\/interactions\?state=offered/);
  await offer.focus();
  await page.keyboard.press('a');
  await until(async () => (await page.locator(`.work-item[data-id="${t.id}"]`).count()) === 1, 'the accepted task');
  await api('POST', `/interactions/${t.id}/end`, { disposition: 'no_action' }, admin.token);
  await setPresence(page, 'offline');
  assert.deepEqual(errors, []);
  await context.close();
});

test('the supervisor sees queues live and opens a chat read-only', async () => {
  const { page, errors, context } = await person(browser);
  await page.goto(`${BASE}/supervisor`);
  await page.fill('#login-username', 'supervisor');
  await page.fill('#login-password', 'supervisor');
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#conn.open');
  const waiting = () => page.textContent('#queues tr[data-queue="support"] td[data-field="waiting"]');
  await until(async () => (await waiting()) !== null, 'the queue table');
  const before = Number(await waiting());

  // Nobody is available: a new task waits, and the page shows it without a reload.
  const it = await task('Waiting task for the wallboard');
  await until(async () => Number(await waiting()) === before + 1, 'the waiting count to rise');
  await until(async () => (await page.textContent('#active')).includes('Waiting task for the wallboard'), 'the active list');

  // A chat with a message and an internal note opens read-only.
  const sup = await login('supervisor', 'supervisor');
  const chatter = await person(browser);
  await chatter.page.goto(`${BASE}/demo/chat`);
  await chatter.page.click('#switchboard-chat .launcher');
  await chatter.page.click('#switchboard-chat .form button[type=submit]');
  await chatter.page.fill('#switchboard-chat textarea', 'Is anyone there?');
  await chatter.page.keyboard.press('Enter');
  await chatter.page.waitForSelector('#switchboard-chat .msg.mine[data-seq]');
  const chat = await until(async () => (await api('GET', '/interactions?channel=chat&state=queued', undefined, sup.token))[0], 'the chat');
  await api('POST', `/interactions/${chat.id}/messages`, { text: 'VIP customer', internal: true }, sup.token);
  const row = page.locator(`#active tr[data-id="${chat.id}"]`);
  await row.waitFor();
  await row.locator('button').click();
  await until(async () => (await page.textContent('#viewer-log')).includes('Is anyone there?'), 'the transcript');
  assert.match(await page.textContent('#viewer-log'), /VIP customer/);
  assert.equal(await page.locator('#viewer textarea').count(), 0, 'read-only: no composer');
  // Live: a new customer message appears in the open viewer.
  await chatter.page.fill('#switchboard-chat textarea', 'Hello again');
  await chatter.page.keyboard.press('Enter');
  await until(async () => (await page.textContent('#viewer-log')).includes('Hello again'), 'the live message');
  await page.waitForTimeout(300);
  await shot(page, 'supervisor-en');
  await page.selectOption('#lang-slot select', 'ar');
  await page.waitForTimeout(200);
  await shot(page, 'supervisor-ar');
  await page.keyboard.press('Escape');

  // Clean up: cancel both as a supervisor.
  await api('POST', `/interactions/${it.id}/end`, { disposition: 'no_action' }, sup.token);
  await api('POST', `/interactions/${chat.id}/end`, { disposition: 'no_action' }, sup.token);
  await until(async () => Number(await waiting()) === before, 'the waiting count to fall');
  assert.deepEqual(errors, []);
  assert.deepEqual(chatter.errors, []);
  await chatter.context.close();
  await context.close();
});

test('the widget works embedded in another site, without a pre-chat form, isolated from its styles', async (t) => {
  const { page, errors, context } = await person(browser);
  // A shop on another origin (its own little server on loopback) with aggressive styles.
  const html = `<!doctype html><html lang="ar" dir="rtl"><head><style>* { color: red !important; font-family: serif !important; }
      button { background: lime !important; border: 5px solid red !important; }</style>
      <script src="${BASE}/widget.js" data-tenant="demo" data-queue="support" async></script></head>
      <body><h1>متجر</h1><button id="own">زر</button></body></html>`;
  const shop = await site(t, html);
  assert.notEqual(new URL(shop).origin, new URL(BASE).origin);
  await page.goto(shop);
  const launcher = page.locator('#switchboard-chat .launcher');
  await launcher.waitFor();
  const bg = await launcher.evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.equal(bg, 'rgb(53, 82, 214)', "the host page's button styles do not reach the widget");
  assert.equal(await page.locator('#own').evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(0, 255, 0)');
  // The page says Arabic: the widget speaks Arabic and sits on the left (inline end in RTL).
  assert.equal(await launcher.getAttribute('aria-label'), 'تحدث معنا');
  const box = await launcher.boundingBox();
  assert.ok(box.x < 200, 'the bubble is at the inline end (left) in RTL');
  await launcher.click();
  assert.equal(await page.locator('#switchboard-chat .form').isHidden(), true, 'no pre-chat form without data-prechat');
  await page.fill('#switchboard-chat textarea', 'مرحبا من متجر آخر');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#switchboard-chat .msg.mine[data-seq]');
  const sup = await login('supervisor', 'supervisor');
  const chat = await until(async () => (await api('GET', '/interactions?channel=chat&state=queued', undefined, sup.token))
    .find((i) => i.subject === 'مرحبا من متجر آخر'), 'the chat from the other site');
  await api('POST', `/interactions/${chat.id}/end`, { disposition: 'no_action' }, sup.token);
  await page.waitForSelector('#switchboard-chat .ended:not([hidden])');
  assert.deepEqual(errors, []);
  await context.close();
});

test('the binary serves the pages and assets with types, short caching and JSON 404s', async () => {
  for (const [path, type] of [
    ['/widget.js', 'text/javascript'],
    ['/demo/chat', 'text/html'],
    ['/agent', 'text/html'],
    ['/supervisor', 'text/html'],
    ['/assets/i18n.js', 'text/javascript'],
    ['/assets/api.js', 'text/javascript'],
    ['/assets/styles.css', 'text/css'],
  ]) {
    const res = await fetch(`${BASE}${path}`);
    assert.equal(res.status, 200, path);
    assert.ok(res.headers.get('content-type').startsWith(type), `${path}: ${res.headers.get('content-type')}`);
    assert.match(res.headers.get('cache-control'), /max-age=60|no-cache/, path);
  }
  const js = await fetch(`${BASE}/assets/agent.js`);
  const again = await fetch(`${BASE}/assets/agent.js`, { headers: { 'If-None-Match': js.headers.get('etag') } });
  assert.equal(again.status, 304);
  const missing = await fetch(`${BASE}/assets/nope.js`);
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), { error: { code: 'not_found', message: 'no such asset' } });
  const page = await (await fetch(`${BASE}/agent?lang=%22%3E%3Cscript%3E`)).text();
  assert.match(page, /<html lang="en" dir="ltr">/);

  // The one translation table has every key in all three languages.
  const i18n = await import(new URL('../../crates/server/web/i18n.js', import.meta.url).href);
  // The served copy is the one in the source tree (embedded at build time).
  const served = await (await fetch(`${BASE}/assets/i18n.js`)).text();
  const { readFileSync } = await import('node:fs');
  assert.equal(served, readFileSync(new URL('../../crates/server/web/i18n.js', import.meta.url), 'utf8'), 'the binary is older than crates/server/web: rebuild it');
  const en = Object.keys(i18n.table('en')).sort();
  for (const lang of ['ar', 'fa']) assert.deepEqual(Object.keys(i18n.table(lang)).sort(), en, lang);
});
