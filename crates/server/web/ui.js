// Small DOM helpers shared by the agent desktop and the supervisor view: an element builder, the
// language switch, the login form and a polite screen-reader announcer.

import { LANGS, applyDocument, getLang, pickLang, t } from './i18n.js';
import { ApiError, login } from './api.js';

/**
 * Builds an element: `h('button', {class: 'x', onclick: f, 'aria-label': 'y'}, 'text', child)`.
 * Keys starting with `on` add listeners; `dataset`, `style` objects are merged; `null`,
 * `undefined` and `false` attributes and children are skipped. Text is always set as text.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

const LANG_KEY = 'sb.lang';

/** The page's language: `?lang=`, then the stored choice, then the browser's, then English. */
export function initialLang() {
  const q = new URLSearchParams(location.search).get('lang');
  let stored = null;
  try {
    stored = localStorage.getItem(LANG_KEY);
  } catch {
    stored = null;
  }
  return pickLang(q, stored, ...(navigator.languages || [navigator.language]));
}

/** Applies a language to the document and remembers it. */
export function useLang(lang) {
  applyDocument(lang);
  try {
    localStorage.setItem(LANG_KEY, getLang());
  } catch {
    // Private mode: the choice lasts for this page only.
  }
}

/** A `<select>` of the languages; `onChange(lang)` after the document switched. */
export function langSelect(onChange) {
  const sel = h('select', { id: 'lang', 'aria-label': t('lang.label'), 'data-i18n-aria-label': 'lang.label' },
    Object.entries(LANGS).map(([code, l]) => h('option', { value: code, lang: code }, l.name)));
  sel.value = getLang();
  sel.addEventListener('change', () => {
    useLang(sel.value);
    // Keep ?lang= (if any) in step with the choice so a reload keeps it.
    const url = new URL(location.href);
    if (url.searchParams.has('lang')) {
      url.searchParams.set('lang', getLang());
      history.replaceState(null, '', url);
    }
    onChange(getLang());
  });
  return sel;
}

/** Announces `text` to screen readers (the page's polite live region `#announcer`). */
export function announce(text) {
  const el = $('announcer');
  if (!el) return;
  el.textContent = '';
  // A separate task, so that repeating the same text is announced again.
  setTimeout(() => {
    el.textContent = text;
  }, 30);
}

/**
 * Wires the login form `#login-form` (fields `username`, `password`, message `#login-error`);
 * `check(result)` may return an error key to refuse the account for this page; `onDone()` runs
 * after a successful login.
 */
export function wireLogin(check, onDone) {
  const form = $('login-form');
  const err = $('login-error');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      const r = await login(form.username.value.trim(), form.password.value);
      const bad = check(r);
      if (bad) {
        err.textContent = t(bad);
        return;
      }
      form.password.value = '';
      onDone();
    } catch (ex) {
      if (ex instanceof ApiError && ex.status === 429) err.textContent = t('login.blocked', { s: ex.retryAfter || 60 });
      else if (ex instanceof ApiError && ex.status === 401) err.textContent = t('login.failed');
      else err.textContent = t('error.generic', { message: ex.message });
    } finally {
      btn.disabled = false;
    }
  });
}

/** Shows a transient error message in `#toast`. */
export function toast(text) {
  const el = $('toast');
  if (!el) return;
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => {
    el.hidden = true;
  }, 6000);
}

/** Whether a keyboard event comes from a field where letters are typed. */
export function isTyping(e) {
  const el = e.target;
  return el instanceof HTMLElement && (el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName));
}
