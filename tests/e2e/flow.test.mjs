// The chat bot in a real browser: a customer on a shop page (widget without data-queue, so the
// tenant's chat flow `demo-chat` runs) is greeted, picks a topic from the buttons, and the agent
// sees the chat offered from that queue.

import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, agentLogin, api, launch, login, person, setPresence, shot, site, tidy, until } from './lib.mjs';

const W = '#switchboard-chat';
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

test('a customer picks a topic from the bot buttons and the agent gets the chat from that queue', async (t) => {
  const html = `<!doctype html><html lang="en"><head>
      <script src="${BASE}/widget.js" data-tenant="demo" async></script></head>
      <body><h1>Shop</h1></body></html>`;
  const shop = await site(t, html);
  const customer = await person(browser);
  const cp = customer.page;
  await cp.goto(shop);
  await cp.click(`${W} .launcher`);
  const subject = `Where is my order ${Date.now()}?`;
  await cp.fill(`${W} textarea`, subject);
  await cp.keyboard.press('Enter');

  // The bot greets and asks; the choices are buttons.
  await cp.waitForSelector(`${W} .msg.bot`);
  assert.match(await cp.textContent(`${W} .msg.bot .bubble`), /Welcome to the demo shop/);
  const buttons = cp.locator(`${W} .choices button`);
  await buttons.first().waitFor();
  assert.deepEqual(await buttons.allTextContents(), ['Sales', 'Support']);
  await shot(cp, 'widget-bot-menu');
  await cp.click(`${W} .choices button[data-key="1"]`);
  await until(async () => !(await buttons.allTextContents()).includes('Sales'), 'the topic buttons to go');
  await until(async () => /in the queue/.test((await cp.locator(`${W} .msg.bot .bubble`).allTextContents()).join(' ')), 'the position announcement');
  // Nobody is staffed and the queue assumes 3 minutes a contact until it has measured one, so
  // the wait is past the flow's 120 s: the bot offers other ways at once. Keeping the place
  // takes the buttons away.
  await until(async () => (await buttons.allTextContents()).includes('Keep waiting'), 'the long-wait offer');
  assert.deepEqual(await buttons.allTextContents(), ['Help center', 'Answer me by email', 'Keep waiting']);
  await cp.click(`${W} .choices button[data-key="9"]`);
  await until(async () => (await buttons.count()) === 0, 'the offer buttons to go');

  // In the sales queue: the API says so, and an agent is offered it from there.
  const sup = await login('supervisor', 'supervisor');
  const queues = await api('GET', '/queues', undefined, sup.token);
  const sales = queues.find((q) => q.name === 'sales');
  const chat = await until(async () => (await api('GET', '/interactions?channel=chat&state=queued', undefined, sup.token))
    .find((i) => i.subject === subject), 'the queued chat');
  assert.equal(chat.queue_id, sales.id);
  const agent = await person(browser);
  const ap = agent.page;
  await agentLogin(ap, 'agent2');
  await setPresence(ap, 'available');
  const offer = ap.locator(`.offer[data-id="${chat.id}"]`);
  try {
    await offer.waitFor({ timeout: 20000 });
  } catch (e) {
    // Say what the server thinks, so a failure here can be understood from the log alone.
    const it = await api('GET', `/interactions/${chat.id}`, undefined, sup.token);
    const agents = await api('GET', '/agents', undefined, sup.token);
    throw new Error(`no offer on the desktop: ${e.message}\ninteraction: ${JSON.stringify(it)}\nagents: ${JSON.stringify(agents)}\ndesktop: ${await ap.textContent('body')}`);
  }
  assert.match(await offer.textContent(), /sales/);
  await offer.focus();
  await ap.keyboard.press('a');
  // The transcript on the desktop includes the bot's part.
  await until(async () => (await ap.textContent('#log')).includes('What can we help you with?'), 'the bot messages on the desktop');

  await api('POST', `/interactions/${chat.id}/end`, { disposition: 'no_action' }, sup.token);
  await setPresence(ap, 'offline');
  assert.deepEqual(customer.errors, []);
  assert.deepEqual(agent.errors, []);
  await customer.context.close();
  await agent.context.close();
});
