// The pages' client of the HTTP API: the session (token in sessionStorage, so it ends with the
// tab), `api()` for JSON requests with the API's error shape, and `EventStream`, the
// `/api/v1/events` WebSocket that reconnects by itself with backoff and tells the page when it
// is (re)connected, so the page can re-fetch what it may have missed.

const KEY = 'sb.session';

/** The signed-in session: `{token, expires_at, user}` or null. */
export const session = {
  get() {
    try {
      const s = JSON.parse(sessionStorage.getItem(KEY) || 'null');
      if (s && s.expires_at && Date.parse(s.expires_at) < Date.now()) return null;
      return s;
    } catch {
      return null;
    }
  },
  set(s) {
    sessionStorage.setItem(KEY, JSON.stringify(s));
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

/** An error answer of the API: HTTP status, stable `code`, `message`. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const listeners = new Set();

/** Calls `fn` when the session is refused (401) or ended by the server. */
export function onSessionLost(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function sessionLost() {
  session.clear();
  for (const fn of listeners) fn();
}

/** The bytes of a file under `/api/v1` + `path` (an attachment), as a Blob. */
export async function fetchBlob(path) {
  const s = session.get();
  const res = await fetch(`/api/v1${path}`, { headers: s ? { Authorization: `Bearer ${s.token}` } : {} });
  if (res.status === 401) sessionLost();
  if (!res.ok) throw new ApiError(res.status, `http_${res.status}`, res.statusText);
  return res.blob();
}

/**
 * A request to `/api/v1` + `path`; resolves to the parsed JSON answer (null for 204). `body` is
 * sent as JSON, or as it is (a File or Blob) with `rawType` as its Content-Type.
 */
export async function api(method, path, body, rawType) {
  const s = session.get();
  const headers = { Accept: 'application/json' };
  if (s) headers.Authorization = `Bearer ${s.token}`;
  if (body !== undefined) headers['Content-Type'] = rawType || 'application/json';
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined || rawType ? body : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'network', e.message);
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    if (res.status === 401 && s && !path.startsWith('/auth/login')) sessionLost();
    throw new ApiError(res.status, err.code || `http_${res.status}`, err.message || res.statusText,
      Number(res.headers.get('Retry-After')) || undefined);
  }
  return data;
}

/** Logs in and keeps the session. */
export async function login(username, password) {
  const r = await api('POST', '/auth/login', { username, password });
  session.set({ token: r.token, expires_at: r.expires_at, user: r.user });
  return r;
}

/** Ends the session on the server (best effort) and here. */
export async function logout() {
  try {
    await api('POST', '/auth/logout');
  } catch {
    // Gone already: nothing to end.
  }
  session.clear();
}

/** The URL of a WebSocket path on this origin. */
export function wsUrl(path) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}${path}`;
}

/**
 * The `/api/v1/events` stream. `onEvent(ev)` gets every event; `onOpen()` runs on every
 * (re)connect, after which the page re-fetches its state (the stream does not replay);
 * `onStatus(status)` gets `connecting`, `open` or `closed`. Reconnects with backoff (0.5 s
 * doubling to 10 s, with jitter) until `stop()`; close code 4001 means the session ended.
 */
export class EventStream {
  constructor({ onEvent, onOpen, onStatus }) {
    this.onEvent = onEvent;
    this.onOpen = onOpen || (() => {});
    this.onStatus = onStatus || (() => {});
    this.socket = null;
    this.stopped = true;
    this.delay = 500;
    this.timer = null;
    this.status = 'closed';
  }

  start() {
    this.stopped = false;
    this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000);
    this.socket = null;
    this.setStatus('closed');
  }

  /** Drops the connection as if the network had (tests and the "reconnect now" action). */
  drop() {
    if (this.socket) this.socket.close(4000, 'dropped by the page');
  }

  setStatus(s) {
    this.status = s;
    this.onStatus(s);
  }

  connect() {
    const s = session.get();
    if (!s) {
      sessionLost();
      return;
    }
    this.setStatus('connecting');
    const ws = new WebSocket(wsUrl(`/api/v1/events?token=${encodeURIComponent(s.token)}`));
    this.socket = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.delay = 500;
      this.setStatus('open');
      this.onOpen();
    };
    ws.onmessage = (m) => {
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch {
        return;
      }
      // Events were lost: catch up as after a reconnect.
      if (ev.type === 'stream.lagged') this.onOpen();
      else this.onEvent(ev);
    };
    ws.onclose = (e) => {
      if (this.socket !== ws) return;
      this.socket = null;
      if (e.code === 4001) {
        this.stopped = true;
        this.setStatus('closed');
        sessionLost();
        return;
      }
      if (this.stopped) return;
      // Refused before it opened: a dead token answers 401 here too (and ends the session).
      if (!opened) api('GET', '/auth/me').catch(() => {});
      this.setStatus('connecting');
      const wait = this.delay * (0.75 + Math.random() * 0.5);
      this.delay = Math.min(this.delay * 2, 10000);
      this.timer = setTimeout(() => this.connect(), wait);
    };
  }
}
