// HTTP to the street node: bearer token, timeouts, the error envelope, reachability.

import { setState, state } from './state.js';

const DEFAULT_TIMEOUT_MS = 15000;
const PING_TIMEOUT_MS = 4000;

let token = null;
let deviceId = null;

export function setToken(t) { token = t; }
export function getToken() { return token; }
export function setDeviceId(id) { deviceId = id; }

/** The node answered with an error envelope {ok:false, error, errors:[{field,message}], code, status}. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `请求失败（${status}）`);
    this.status = status;
    this.code = (body && body.code) || 'http_error';
    this.errors = (body && body.errors) || [];
    this.body = body;
  }
}

/** The node could not be reached (no network, node down, timeout). */
export class NetworkError extends Error {
  constructor(message = '无法连接到街道节点') { super(message); }
}

export async function request(path, { method = 'GET', body, headers = {}, timeout = DEFAULT_TIMEOUT_MS,
  raw = false, auth = true } = {}) {
  const h = { ...headers };
  if (auth && token) h.Authorization = `Bearer ${token}`;
  if (deviceId) h['X-Device-Id'] = deviceId;
  let payload = body;
  if (body !== undefined && !(body instanceof Blob) && !(body instanceof ArrayBuffer) && !ArrayBuffer.isView(body)) {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeout);
  let resp;
  try {
    resp = await fetch(path, { method, headers: h, body: payload, signal: ctl.signal, cache: 'no-store' });
  } catch (_) {
    markReachable(false);
    throw new NetworkError();
  } finally {
    clearTimeout(timer);
  }
  // A reference read the service worker answered from its cache (X-SN-Stale) proves only that the
  // worker is alive, not that the node is: it must not turn the badge green while offline.
  markReachable(resp.headers.get('X-SN-Stale') !== '1');
  if (raw) return resp;
  let data = null;
  const type = resp.headers.get('Content-Type') || '';
  if (type.includes('json')) {
    try { data = await resp.json(); } catch (_) { data = null; }
  }
  if (!resp.ok) {
    if (resp.status === 401 && auth && token) setState({ tokenExpired: true });
    throw new ApiError(resp.status, data);
  }
  return data;
}

export const api = {
  get: (path, opts) => request(path, { ...opts, method: 'GET' }),
  post: (path, body, opts) => request(path, { ...opts, method: 'POST', body }),
  put: (path, body, opts) => request(path, { ...opts, method: 'PUT', body }),
};

function markReachable(up) {
  if (state.reachable !== up) setState({ reachable: up });
}

/** Reachability is a timed ping of the node, never navigator.onLine alone (it lies on a LAN outage). */
export async function ping() {
  try {
    const resp = await request('/api/v1/health', { timeout: PING_TIMEOUT_MS, raw: true, auth: false });
    const up = resp.ok;
    markReachable(up);
    return up;
  } catch (_) {
    markReachable(false);
    return false;
  }
}

/** Field errors as a readable list: "字段：说明". */
export function describeErrors(err) {
  if (err instanceof ApiError && err.errors.length) {
    return err.errors.map((e) => (e.field ? `${e.field}：${e.message}` : e.message));
  }
  return [err.message || String(err)];
}
