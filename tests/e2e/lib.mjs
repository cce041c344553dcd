// Helpers of the browser tests: the server under test (SWITCHBOARD_URL, started by run.sh),
// headless Debian Chromium through playwright-core, the API as an admin, and screenshots.

import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const BASE = process.env.SWITCHBOARD_URL || 'http://127.0.0.1:8080';
export const ARTIFACTS = process.env.ARTIFACTS || new URL('../../artifacts', import.meta.url).pathname;
mkdirSync(ARTIFACTS, { recursive: true });

/**
 * Launches Debian's Chromium. Playwright gives every launch a fresh temporary profile (its own
 * `--user-data-dir`, removed on close), so no state leaks between runs.
 */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/** The browser contexts a test opened and has not closed; `tidy` closes them. */
const openContexts = new Set();

/** A new browser context (its own storage: one person) with console errors collected. */
export async function person(browser, opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 860 }, ...opts });
  openContexts.add(context);
  context.on('close', () => openContexts.delete(context));
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/WebSocket|Failed to load resource|ERR_/.test(m.text())) errors.push(m.text());
  });
  return { context, page, errors };
}

/** A JSON request to the API. */
export async function api(method, path, body, token) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${BASE}/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return data;
}

/** Logs in through the API; `{token, user}`. */
export async function login(username, password) {
  return api('POST', '/auth/login', { username, password });
}

/** Saves a full-page screenshot as artifacts/NAME.png. */
export async function shot(page, name) {
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}

/** Waits until `fn()` is truthy (polling), or fails with `what`. */
export async function until(fn, what, timeout = 10000) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

/** Logs an agent into /agent in `page` (language `lang`) and sets it available. */
export async function agentLogin(page, username, password = 'agent', lang = 'en') {
  await page.goto(`${BASE}/agent?lang=${lang}`);
  await page.fill('#login-username', username);
  await page.fill('#login-password', password);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForSelector('#conn.open');
}

/** Sets the agent's presence through the desktop's own control. */
export async function setPresence(page, state) {
  await page.selectOption('#state', state);
  await page.waitForFunction((s) => window.__sb.status && window.__sb.status.state === s, state);
}

/**
 * Serves `html` from a little site of its own on loopback (another origin than the server's) for
 * the test `t`; the site is closed when the test ends, passed or failed, so no open socket keeps
 * the test process alive. Returns its URL.
 */
export async function site(t, html) {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${server.address().port}/`;
}

/**
 * After each test (`afterEach(tidy)`): closes the browser contexts it left open, sets every agent
 * offline and ends every contact still open, so that a test which failed half-way does not hand
 * its leftovers (an available agent, a queued chat) to the next one. What it could not tidy is
 * printed, not thrown: the test's own failure is the one to read.
 */
export async function tidy() {
  for (const c of [...openContexts]) await c.close().catch(() => {});
  const problems = [];
  try {
    const { token } = await login('admin', 'admin');
    for (const a of await api('GET', '/agents', undefined, token)) {
      if (a.status?.state !== 'offline') {
        await api('PUT', `/agents/${a.id}/state`, { state: 'offline' }, token).catch((e) => problems.push(e.message));
      }
    }
    for (const state of ['flow', 'queued', 'offered', 'connected', 'wrap_up']) {
      for (const it of await api('GET', `/interactions?state=${state}`, undefined, token)) {
        await api('POST', `/interactions/${it.id}/end`, { disposition: 'no_action' }, token).catch((e) => problems.push(e.message));
      }
    }
  } catch (e) {
    problems.push(e.message);
  }
  if (problems.length) console.error(`tidy: ${problems.join('; ')}`);
}
