// An email answered from the desktop: a customer mails support with a colleague in Cc (over
// SMTP, to the server's listener), the agent accepts, finds the Cc prefilled behind "Cc/Bcc",
// adds a Cc and a Bcc, bolds a word with the toolbar and italicises one with Ctrl+I, looks at the
// preview (the server's rendering, in a sandboxed frame), and sends. Checked: the message as the
// desktop shows it, the stored mail through the API, and what the relay (run.sh's SMTP sink)
// received: the envelope, the Cc header, no trace of the Bcc, and the HTML part.

import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { agentLogin, api, launch, login, person, setPresence, shot, tidy, until } from './lib.mjs';

const SMTP = process.env.SWITCHBOARD_SMTP_ADDR;
const SINK = process.env.E2E_SINK_DIR;

let browser;
let admin;

before(async () => {
  browser = await launch();
  admin = await login('admin', 'admin');
  for (const a of await api('GET', '/agents', undefined, admin.token)) {
    await api('PUT', `/agents/${a.id}/state`, { state: 'offline' }, admin.token);
  }
});

after(async () => {
  if (browser) await browser.close();
});

// A test that failed half-way leaves nothing behind for the next one.
afterEach(tidy);

/** One SMTP transaction to the server: the replies, the last one to the data. */
function smtpSend(from, to, data) {
  const [host, port] = SMTP.split(/:(?=\d+$)/);
  return new Promise((resolve, reject) => {
    const steps = ['EHLO e2e.example.test', `MAIL FROM:<${from}>`, `RCPT TO:<${to}>`, 'DATA', `${data.replace(/\r?\n/g, '\r\n')}\r\n.`, 'QUIT'];
    const replies = [];
    let buf = '';
    const sock = connect(Number(port), host);
    sock.setEncoding('utf8');
    sock.on('error', reject);
    sock.on('data', (chunk) => {
      buf += chunk;
      // A whole reply ends with a line whose fourth character is a space.
      for (;;) {
        const m = buf.match(/^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/);
        if (!m) return;
        buf = buf.slice(m[0].length);
        replies.push(m[0]);
        const step = steps.shift();
        if (step === undefined) {
          sock.end();
          resolve(replies);
          return;
        }
        sock.write(`${step}\r\n`);
      }
    });
  });
}

/** The mails the relay sink got so far. */
function sunk() {
  if (!SINK) return [];
  return readdirSync(SINK)
    .filter((f) => /^\d+\.json$/.test(f))
    .map((f) => JSON.parse(readFileSync(join(SINK, f), 'latin1')));
}

/** The decoded `text/html` part of a raw mail (base64 or quoted-printable), as UTF-8. */
function htmlPart(raw) {
  const at = raw.search(/Content-Type: text\/html/i);
  assert.ok(at >= 0, 'an HTML part');
  const part = raw.slice(at);
  const headEnd = part.indexOf('\r\n\r\n');
  const head = part.slice(0, headEnd);
  let body = part.slice(headEnd + 4);
  body = body.slice(0, body.search(/\r\n--/) >= 0 ? body.search(/\r\n--/) : body.length);
  const cte = (head.match(/Content-Transfer-Encoding:\s*(\S+)/i) || [])[1] || '7bit';
  let bytes;
  if (/base64/i.test(cte)) bytes = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  else if (/quoted-printable/i.test(cte)) {
    const soft = body.replace(/=\r\n/g, '');
    bytes = Buffer.from(soft.replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  } else bytes = Buffer.from(body, 'latin1');
  return bytes.toString('utf8');
}

/** The header section of a raw mail, unfolded. */
function headersOf(raw) {
  return raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
}

test('the agent formats an email reply, copies a colleague and a blind copy, and the relay gets exactly that', async () => {
  assert.ok(SMTP && SINK, 'run by run.sh (SWITCHBOARD_SMTP_ADDR and E2E_SINK_DIR)');
  const tag = Date.now();
  const customer = `leila.${tag}@example.test`;
  const subject = `Order ${tag} has not arrived`;
  const replies = await smtpSend(customer, 'support@demo.example', [
    `From: Leila <${customer}>`,
    'To: support@demo.example',
    'Cc: "Reza Karimi" <Reza@Example.test>, Support <support@demo.example>',
    `Subject: ${subject}`,
    `Message-ID: <order-${tag}@example.test>`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    'My order has not come yet. سلام',
  ].join('\r\n'));
  assert.match(replies.at(-2), /^250/, replies.join(''));

  const { page, errors } = await person(browser);
  await agentLogin(page, 'agent1');
  await setPresence(page, 'available');
  const offer = page.locator('.offer', { hasText: subject });
  await offer.waitFor();
  await offer.locator('button.primary').click();
  await page.waitForSelector('#composer-text');

  // The Cc is prefilled from the customer's mail (without the support address), behind a link.
  await page.waitForSelector('#composer-copies-toggle');
  await until(async () => (await page.textContent('#composer-copies-summary')).includes('reza@example.test'), 'the Cc summary');
  assert.equal(await page.isHidden('#composer-cc'), true, 'collapsed at first');
  await page.click('#composer-copies-toggle');
  assert.equal(await page.inputValue('#composer-cc'), 'reza@example.test');
  await page.fill('#composer-cc', 'reza@example.test, sam@example.test');
  await page.fill('#composer-bcc', 'audit@example.test');

  // Bold with the toolbar, italic with Ctrl+I.
  const ta = page.locator('#composer-text');
  await ta.fill('Your order was shipped today. با سپاس');
  const select = (word) => ta.evaluate((el, w) => {
    const i = el.value.indexOf(w);
    el.focus();
    el.setSelectionRange(i, i + w.length);
  }, word);
  await select('shipped');
  await page.click('#fmt-bold');
  await select('today');
  await page.keyboard.press('Control+i');
  assert.equal(await ta.inputValue(), 'Your order was **shipped** _today_. با سپاس');

  // The preview is the server's rendering, in a sandboxed frame.
  await page.click('#fmt-preview');
  const frame = page.frameLocator('#composer-preview');
  await frame.locator('strong').waitFor();
  assert.equal(await frame.locator('strong').textContent(), 'shipped');
  assert.equal(await frame.locator('em').textContent(), 'today');
  assert.equal(await page.getAttribute('#composer-preview', 'sandbox'), '');
  await shot(page, 'agent-email-preview');
  await page.click('#fmt-preview');
  assert.equal(await ta.isVisible(), true, 'back to editing');
  await page.click('form.composer button[type=submit]');

  // The message as shown: the text as written, and its Cc.
  const mine = page.locator('#log .msg.mine[data-seq]').last();
  await mine.waitFor();
  assert.equal(await mine.locator('.bubble p').first().textContent(), 'Your order was **shipped** _today_. با سپاس');
  await until(async () => (await mine.locator('p.copies').allTextContents()).join(' ').includes('sam@example.test'), 'the Cc under the message');
  assert.equal(await page.inputValue('#composer-bcc'), '', 'the Bcc is cleared after sending');
  await shot(page, 'agent-email-sent');

  // What the API stored.
  const list = await api('GET', '/interactions?channel=email', undefined, admin.token);
  const it = list.find((x) => x.subject === subject);
  assert.ok(it, 'the interaction');
  const view = await until(async () => {
    const v = await api('GET', `/interactions/${it.id}/messaging`, undefined, admin.token);
    const out = v.email.mails.filter((m) => m.direction === 'out' && m.headers.cc && m.headers.cc.length);
    return out.length ? { v, out: out.at(-1) } : null;
  }, 'the stored reply');
  assert.deepEqual(view.out.headers.cc, ['reza@example.test', 'sam@example.test']);
  assert.deepEqual(view.out.headers.bcc, ['audit@example.test']);

  // What the relay received.
  const mail = await until(() => sunk().find((m) => m.data.includes(`Message-ID: <${view.out.rfc_message_id}>`)), 'the mail at the relay', 15000);
  assert.deepEqual(mail.rcpt, [customer, 'reza@example.test', 'sam@example.test', 'audit@example.test']);
  const headers = headersOf(mail.data);
  assert.match(headers, /^Cc: reza@example\.test, sam@example\.test$/m);
  assert.doesNotMatch(headers, /^Bcc:/im);
  assert.ok(!mail.data.toLowerCase().includes('audit@'), 'the Bcc is nowhere in the mail');
  assert.match(headers, /^Content-Type: multipart\/alternative/m);
  const html = htmlPart(mail.data);
  assert.match(html, /<strong>shipped<\/strong> <em>today<\/em>\. با سپاس/);
  assert.match(html, /dir="auto"/);
  assert.deepEqual(errors, []);
  await page.context().close();

  // The same composer in Persian: right to left, its own words, the Cc still prefilled.
  const fa = await person(browser);
  await agentLogin(fa.page, 'agent1', 'agent', 'fa');
  await fa.page.click('.work-item');
  await fa.page.waitForSelector('#fmt-bold');
  assert.equal(await fa.page.getAttribute('html', 'dir'), 'rtl');
  assert.equal(await fa.page.getAttribute('#fmt-bold', 'title'), 'پررنگ (Ctrl+B)');
  assert.equal(await fa.page.textContent('#composer-copies-toggle'), 'رونوشت/رونوشت پنهان');
  await until(async () => (await fa.page.textContent('#composer-copies-summary')).includes('reza@example.test'), 'the Cc summary in Persian');
  await fa.page.fill('#composer-text', 'سفارش شما **ارسال شد**.');
  await fa.page.click('#fmt-preview');
  await fa.page.frameLocator('#composer-preview').locator('strong').waitFor();
  assert.equal(await fa.page.frameLocator('#composer-preview').locator('strong').textContent(), 'ارسال شد');
  await shot(fa.page, 'agent-email-preview-fa');
  assert.deepEqual(fa.errors, []);
  await fa.context.close();

  // Leave agent1 as the other tests expect it: nothing open, offline.
  const agent = await login('agent1', 'agent');
  await api('POST', `/interactions/${it.id}/end`, { disposition: 'resolved' }, agent.token);
  await api('PUT', `/agents/${agent.user.agent_id}/state`, { state: 'offline' }, admin.token);
});
