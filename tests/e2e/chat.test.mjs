// The web chat from both sides, in real browsers: a customer on /demo/chat writes in Persian, an
// agent on /agent accepts and answers in Arabic, typing, read marks, emoji, dropped connections on
// both sides, the end with a disposition, a reload that shows the ended chat, and the customer's
// return, whose new chat shows the earlier one in the agent's customer panel. Screenshots of the
// agent desktop in English, Arabic and Persian go to artifacts/.

import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, agentLogin, api, launch, login, person, setPresence, shot, tidy, until } from './lib.mjs';

const W = '#switchboard-chat';
const FA = 'سلام، سفارش من کجاست؟';
const AR = 'مرحبا، سأتحقق من طلبك';

let browser;
let admin;

before(async () => {
  browser = await launch();
  admin = await login('admin', 'admin');
  // Only agent1 takes chats here, so the offer is predictable.
  for (const a of await api('GET', '/agents', undefined, admin.token)) {
    await api('PUT', `/agents/${a.id}/state`, { state: 'offline' }, admin.token);
  }
});

after(async () => {
  if (browser) await browser.close();
});

// A test that failed half-way leaves nothing behind for the next one.
afterEach(tidy);

/** Texts of the widget's message bubbles, in order. */
async function widgetTexts(page) {
  return page.locator(`${W} .msg .bubble p`).allTextContents();
}

/** Texts of the agent's conversation log, in order. */
async function agentTexts(page) {
  return page.locator('#log .msg .bubble p').allTextContents();
}

test('a customer chats in Persian, an agent answers in Arabic, ends it; the customer comes back', async () => {
  const email = `sara.${Date.now()}@example.com`;
  const customer = await person(browser, { viewport: { width: 1100, height: 800 }, locale: 'fa-IR' });
  const cp = customer.page;
  await cp.goto(`${BASE}/demo/chat?lang=fa`);
  assert.equal(await cp.getAttribute('html', 'dir'), 'rtl');

  // The bubble opens the pre-chat form; name and email are optional, given here.
  await cp.click(`${W} .launcher`);
  await cp.fill(`${W} input[name=name]`, 'سارا');
  await cp.fill(`${W} input[name=email]`, email);
  await cp.click(`${W} .form button[type=submit]`);
  await cp.fill(`${W} textarea`, FA);
  await cp.keyboard.press('Enter');
  // The echo with a seq is the delivery acknowledgement: ✓.
  await cp.waitForSelector(`${W} .msg.mine[data-seq] .tick`);
  // No agent is available: the customer waits in the queue.
  await until(async () => /صف|انتظار/.test(await cp.textContent(`${W} .status`)), 'the queue status');
  await shot(cp, 'widget-fa-queued');
  // The styles stay inside the shadow root: the host page's own buttons are untouched.
  const leaked = await cp.evaluate(() => [...document.styleSheets].some((s) => [...s.cssRules].some((r) => r.cssText.includes('.launcher'))));
  assert.equal(leaked, false, 'widget CSS must not reach the host document');

  // The agent logs in, becomes available and gets the offer with a countdown.
  const agent = await person(browser);
  const ap = agent.page;
  await agentLogin(ap, 'agent1');
  await setPresence(ap, 'available');
  const offer = ap.locator('.offer').first();
  await offer.waitFor();
  assert.match(await offer.locator('.countdown').textContent(), /^\d:\d\d$/);
  assert.match(await offer.textContent(), /سلام/);
  await ap.waitForTimeout(300);
  await shot(ap, 'agent-offer-en');
  // Keyboard: focus the offer and press A.
  await offer.focus();
  await ap.keyboard.press('a');
  await ap.waitForSelector('#composer-text');
  // A chat's composer has no email tools, and no stray "null" where they would be.
  assert.equal(await ap.locator('form.composer .fmt-bar').count(), 0);
  assert.doesNotMatch(await ap.textContent('form.composer'), /null|undefined/);
  await until(async () => (await agentTexts(ap)).includes(FA), 'the Persian message on the desktop');
  assert.equal(await ap.getAttribute('#log .msg.from-customer p', 'dir'), 'auto');
  // Screen pop: the customer panel shows who this is.
  await until(async () => (await ap.textContent('#customer')).includes(email), 'the customer panel');
  assert.match(await ap.textContent('#customer'), /سارا/);

  // The customer sees the agent's name, then the agent typing.
  await until(async () => (await cp.textContent(`${W} .status`)).includes('agent1'), 'the agent name in the widget');
  await ap.focus('#composer-text');
  await ap.keyboard.type('مر');
  await until(async () => (await cp.textContent(`${W} .typing`)).includes('agent1'), 'the typing indicator');
  await ap.fill('#composer-text', AR);
  await ap.keyboard.press('Enter');
  await until(async () => (await widgetTexts(cp)).includes(AR), 'the Arabic reply in the widget');
  assert.equal(await cp.textContent(`${W} .typing`), '');
  // Read marks both ways: the customer's widget is open, so the agent's reply shows ✓✓ on the
  // desktop; the agent has the chat open, so the customer's message shows ✓✓ in the widget.
  await ap.waitForSelector('#log .msg.mine .receipt.read');
  await cp.waitForSelector(`${W} .msg.mine .tick.read`);

  // Emoji from the picker.
  await cp.click(`${W} .emoji-btn`);
  await cp.click(`${W} .emojis button[aria-label="👍"]`);
  await cp.keyboard.press('Enter');
  await until(async () => (await agentTexts(ap)).includes('👍'), 'the emoji on the desktop');

  // The agent's event stream is down while the customer writes: on reconnect the desktop
  // re-fetches the messages; the missed one appears once.
  await ap.evaluate(() => window.__sb.stream.stop());
  await ap.waitForSelector('#conn.closed');
  await cp.fill(`${W} textarea`, 'هنوز اینجایید؟');
  await cp.keyboard.press('Enter');
  await cp.waitForFunction((w) => document.querySelector(w).shadowRoot.querySelectorAll('.msg.mine[data-seq]').length === 3, W);
  await ap.waitForTimeout(300);
  assert.ok(!(await agentTexts(ap)).includes('هنوز اینجایید؟'), 'the stream is down: nothing arrives');
  await ap.evaluate(() => window.__sb.stream.start());
  await ap.waitForSelector('#conn.open');
  await until(async () => (await agentTexts(ap)).filter((x) => x === 'هنوز اینجایید؟').length === 1, 'the missed message after reconnect');
  // A real drop reconnects by itself.
  await ap.evaluate(() => window.__sb.stream.drop());
  await ap.waitForSelector('#conn.connecting');
  await ap.waitForSelector('#conn.open');

  // The widget's socket drops: it reconnects with its session and shows nothing twice.
  await cp.evaluate(() => window.SwitchboardChat.reconnect());
  await ap.fill('#composer-text', 'بله، هنوز اینجا هستم');
  await ap.keyboard.press('Enter');
  await until(async () => (await widgetTexts(cp)).includes('بله، هنوز اینجا هستم'), 'the reply after the widget reconnected');
  const seqs = await cp.$$eval(`${W} .msg[data-seq]`, (els) => els.map((e) => e.dataset.seq));
  assert.equal(new Set(seqs).size, seqs.length, 'no message twice in the widget');
  assert.equal((await widgetTexts(cp)).length, 5);
  assert.deepEqual((await agentTexts(ap)).filter((x) => x === FA).length, 1);
  await shot(cp, 'widget-fa-connected');

  // Files: a type that is not allowed is refused with a message in Persian; a picture goes
  // through and the agent sees it with its Persian name.
  await cp.setInputFiles(`${W} input[type=file]`, { name: 'page.html', mimeType: 'text/html', buffer: Buffer.from('<script>1</script>') });
  await until(async () => /نوع/.test(await cp.textContent(`${W} .log .error`).catch(() => '')), 'the refused file type');
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
  await cp.setInputFiles(`${W} input[type=file]`, { name: 'رسید.png', mimeType: 'image/png', buffer: png });
  await cp.waitForSelector(`${W} .msg.mine[data-seq] .files img`);
  await until(async () => (await ap.locator('#log .files a.file').allTextContents()).some((x) => x.includes('رسید.png')), 'the picture on the desktop');
  await ap.waitForFunction(() => [...document.querySelectorAll('#log .files img.thumb')].some((i) => i.complete && i.naturalWidth === 1));
  await shot(cp, 'widget-fa-file');

  // The agent attaches a file to a reply (📎): it is listed before sending, goes with the text,
  // and the customer gets it as a link with its Persian name.
  await ap.setInputFiles('#composer-file', { name: 'راهنما.txt', mimeType: 'text/plain', buffer: Buffer.from('مرحله ۱: ...') });
  await ap.waitForSelector('#composer-files .chip');
  assert.match(await ap.textContent('#composer-files'), /راهنما\.txt/);
  await ap.fill('#composer-text', 'این راهنما را ببینید');
  await ap.keyboard.press('Enter');
  await until(async () => (await cp.locator(`${W} .msg:not(.mine) .files a`).allTextContents()).some((x) => x.includes('راهنما.txt')), 'the agent\'s file in the widget');
  assert.equal(await ap.locator('#composer-files .chip').count(), 0, 'sent files leave the composer');
  await until(async () => (await ap.locator('#log .files a.file').allTextContents()).some((x) => x.includes('راهنما.txt')), 'the sent file on the desktop');

  // The customer asks for the transcript by email (the server stores the request).
  await cp.click(`${W} .head button[aria-haspopup]`);
  await cp.click(`${W} .menu button:nth-child(1)`);
  await cp.fill(`${W} .inline:not([hidden]) input`, email);
  await cp.click(`${W} .inline:not([hidden]) button`);
  await until(async () => (await cp.textContent(`${W} .note`)).includes(email), 'the transcript confirmation');

  // An internal note stays on the desktop.
  await ap.check('#composer-note');
  await ap.fill('#composer-text', 'Order 1042: tracking number sent');
  await ap.keyboard.press('Enter');
  await ap.waitForSelector('#log .msg.internal[data-seq]');
  await ap.uncheck('#composer-note');

  // The agent ends with a disposition from the queue's list.
  await ap.click('#btn-end');
  const options = await ap.$$eval('#end-disposition option', (os) => os.map((o) => o.value));
  assert.deepEqual(options, ['resolved', 'follow_up', 'escalated', 'no_action']);
  await ap.selectOption('#end-disposition', 'resolved');
  await ap.fill('#end-notes', 'Order 1042 is on its way');
  await ap.click('.inline-form button[type=submit]');
  await until(async () => (await cp.textContent(`${W} .status`)).includes('پایان'), 'the ended status in the widget');
  await cp.waitForSelector(`${W} .ended:not([hidden])`);
  assert.ok(!(await widgetTexts(cp)).includes('Order 1042: tracking number sent'), 'internal notes never reach the customer');

  // Reload: the same conversation comes back, ended, with its messages.
  await cp.reload();
  await cp.waitForSelector(`${W} .ended:not([hidden])`);
  await until(async () => (await widgetTexts(cp)).includes(AR), 'the transcript after reload');
  assert.equal((await widgetTexts(cp)).filter((x) => x === FA).length, 1);
  await shot(cp, 'widget-fa-ended');

  // The customer returns and starts a new chat (same browser: same session, same customer).
  await cp.click(`${W} .ended button`);
  await cp.fill(`${W} textarea`, 'دوباره سلام، یک سؤال دیگر دارم');
  await cp.keyboard.press('Enter');
  await cp.waitForSelector(`${W} .msg.mine[data-seq]`);
  const offer2 = ap.locator('.offer').first();
  await offer2.waitFor();
  await ap.keyboard.press('a');
  await until(async () => (await agentTexts(ap)).includes('دوباره سلام، یک سؤال دیگر دارم'), 'the new chat on the desktop');
  // The earlier chat is in the customer's history, with its disposition and notes.
  const history = ap.locator('#customer .hist');
  await history.first().waitFor();
  assert.equal(await history.count(), 1);
  const h0 = await history.first().textContent();
  assert.match(h0, /Resolved/);
  assert.match(h0, /Order 1042 is on its way/);
  assert.match(h0, /سلام، سفارش من کجاست/);
  // Its conversation opens under it, read-only: the customer's words, the reply, the note.
  await history.first().locator('button.hist-open').click();
  await until(async () => (await ap.locator('#customer .hist-log .msg').count()) > 0, 'the earlier conversation');
  const earlier = await ap.locator('#customer .hist-log .msg p').allTextContents();
  assert.ok(earlier.includes(FA) && earlier.includes(AR) && earlier.includes('Order 1042: tracking number sent'), earlier.join(' | '));
  assert.equal(await history.first().locator('button.hist-open').getAttribute('aria-expanded'), 'true');
  await shot(ap, 'agent-history-open');
  await ap.fill('#composer-text', AR);
  await ap.keyboard.press('Enter');
  await until(async () => (await widgetTexts(cp)).filter((x) => x === AR).length === 1, 'the reply in the new chat');
  await cp.waitForSelector(`${W} .msg.mine .tick.read`);

  // With the chat minimized, a reply shows as a count on the bubble until it is opened.
  await cp.click(`${W} .head button[aria-label]:last-child`);
  await ap.fill('#composer-text', 'سفارش شما فردا می‌رسد 🚚');
  await ap.keyboard.press('Enter');
  await cp.waitForSelector(`${W} .launcher .badge:not([hidden])`);
  assert.equal(await cp.textContent(`${W} .launcher .badge`), '۱');
  await cp.click(`${W} .launcher`);
  await cp.waitForSelector(`${W} .launcher .badge[hidden]`, { state: 'attached' });
  assert.ok((await widgetTexts(cp)).includes('سفارش شما فردا می‌رسد 🚚'));

  // The desktop in three languages, without a reload.
  await ap.waitForTimeout(400);
  await shot(ap, 'agent-en');
  await ap.selectOption('#lang-slot select', 'ar');
  assert.equal(await ap.getAttribute('html', 'dir'), 'rtl');
  await until(async () => (await ap.textContent('#customer')).includes('تم الحل'), 'the Arabic disposition');
  await ap.waitForTimeout(200);
  await shot(ap, 'agent-ar');
  await ap.selectOption('#lang-slot select', 'fa');
  assert.equal(await ap.getAttribute('html', 'lang'), 'fa');
  await until(async () => (await ap.textContent('#customer')).includes('حل شد'), 'the Persian disposition');
  await ap.waitForTimeout(200);
  await shot(ap, 'agent-fa');
  await shot(cp, 'widget-fa-second-chat');
  await ap.selectOption('#lang-slot select', 'en');
  assert.equal(await ap.getAttribute('html', 'dir'), 'ltr');

  // The customer ends this one from the widget; the agent is told and ends it.
  await cp.click(`${W} .head button[aria-haspopup]`);
  await cp.click(`${W} .menu button:nth-child(2)`);
  await cp.click(`${W} .inline:not([hidden]) button.secondary`);
  await cp.waitForSelector(`${W} .ended:not([hidden])`);
  await ap.waitForSelector('.banner.warn');
  await ap.click('#btn-end');
  await ap.selectOption('#end-disposition', 'no_action');
  await ap.click('.inline-form button[type=submit]');
  await ap.waitForSelector('.banner.info');
  await setPresence(ap, 'offline');

  assert.deepEqual(agent.errors, []);
  assert.deepEqual(customer.errors, []);
  await agent.context.close();
  await customer.context.close();
});
