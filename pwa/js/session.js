// Sign-in on a shared tablet (pwa.md §5): online login, offline PIN unlock within a shift,
// lockout after 5 wrong PINs, idle auto-lock, and a logout that never discards unsent work.

import * as db from './db.js';
import { decryptJSON, encryptJSON, newDataKey, parseServerKek, unwrapDataKey, wrapDataKey } from './crypto.js';
import { api, ping, setToken } from './net.js';
import { setState, state } from './state.js';

export const MAX_PIN_ATTEMPTS = 5;
export const SHIFT_MS = 12 * 3600 * 1000;       // PIN unlock is valid for one shift after an online login
const DEFAULT_IDLE_MS = 5 * 60 * 1000;          // auto-lock after 5 minutes without a touch

let dataKey = null;
let serverKek = null; // {kid, bytes}: in memory while unlocked only, never stored in the clear
let current = null; // the unlocked user's record

export function currentKey() { return dataKey; }
export function currentUserId() { return current ? current.userId : null; }

function pinSecret(userId, pin) { return `pin:${userId}:${pin}`; }
function passwordSecret(userId, password) { return `pw:${userId}:${password}`; }

export async function activeUserRecord() {
  const id = await db.kvGet('activeUser');
  return id ? db.get('users', id) : null;
}

export async function knownUsers() {
  return db.all('users');
}

function open(rec, key, kek, token) {
  dataKey = key;
  serverKek = kek;
  current = rec;
  setToken(token);
  setState({ user: rec.user, unlocked: true, tokenExpired: !token });
  touch();
}

/** Online login. Returns {needsPin} — a PIN is set after the first login of a shift. */
export async function login(username, password, deviceId) {
  const body = { username, password };
  if (deviceId) body.device_id = deviceId;
  const res = await api.post('/api/v1/auth/login', body, { auth: false });
  const uid = res.user.id;
  // The server half of the wrapping comes with the session (issue 6 §2); no KEK, no unlock.
  const kek = parseServerKek(await api.get('/api/v1/auth/kek',
    { auth: false, headers: { Authorization: `Bearer ${res.token}` } }));
  let rec = await db.get('users', uid);
  const opened = rec && rec.slots && rec.slots.password
    ? await unwrapDataKey(rec.slots.password, passwordSecret(uid, password), kek) : null;
  let key = opened ? opened.key : null;
  const reused = Boolean(key);
  const retired = (rec && rec.retired) || [];
  if (!reused && rec && rec.slots) {
    // Password changed elsewhere: keep the old slots so a PIN can still recover old items; never delete.
    retired.push({ at: new Date().toISOString(), slots: rec.slots });
  }
  if (!key) key = await newDataKey();
  const now = Date.now();
  const slots = { password: await wrapDataKey(key, passwordSecret(uid, password), kek) };
  // A PIN still inside its shift is renewed; an expired one is never revived (pwa.md §5: bounded grace).
  // A PIN slot from before the server KEK (or under a rotated KEK) is not renewed: a new PIN re-wraps.
  const pin = reused ? rec.slots.pin : null;
  if (pin && pin.v === 2 && pin.kid === kek.kid && !rec.loggedOut && now < pin.validUntil) {
    slots.pin = { ...rec.slots.pin, validUntil: now + SHIFT_MS }; // a new online login renews the shift
  }
  rec = {
    userId: uid, username: res.user.username, user: res.user, slots, retired, pinFailures: 0,
    tokenBox: await encryptJSON(key, { token: res.token, expires_at: res.expires_at }),
    loggedOut: false, lastOnlineLogin: new Date(now).toISOString(),
  };
  await db.put('users', rec);
  await db.kvSet('activeUser', uid);
  open(rec, key, kek, res.token);
  return { needsPin: !slots.pin };
}

export async function setPin(pin) {
  if (!/^\d{6}$/.test(pin)) throw new Error('PIN 须为 6 位数字');
  if (!dataKey || !serverKek) throw new Error('请先联网登录');
  const slot = await wrapDataKey(dataKey, pinSecret(current.userId, pin), serverKek, { sealKek: true });
  slot.validUntil = Date.now() + SHIFT_MS;
  current = { ...current, slots: { ...current.slots, pin: slot }, pinFailures: 0 };
  await db.put('users', current);
}

export class PinError extends Error {
  constructor(message, { locked = false, remaining = 0 } = {}) { super(message); this.locked = locked; this.remaining = remaining; }
}

/** Whether this user can unlock offline with a PIN now (slot present, shift not over, not locked out). */
export function pinUsable(rec) {
  return Boolean(rec && !rec.loggedOut && rec.slots && rec.slots.pin && Date.now() < rec.slots.pin.validUntil);
}

export async function unlockWithPin(userId, pin) {
  let rec = await db.get('users', userId);
  if (!pinUsable(rec)) {
    if (rec && rec.slots && rec.slots.pin) await dropPin(rec);
    throw new PinError('本班次的 PIN 已失效，请联网用密码登录', { locked: true });
  }
  // Offline: the KEK comes out of the PIN slot's sealed copy, so a wrong PIN fails there already.
  const opened = await unwrapDataKey(rec.slots.pin, pinSecret(userId, pin));
  if (!opened) {
    const failures = (rec.pinFailures || 0) + 1;
    rec = { ...rec, pinFailures: failures };
    await db.put('users', rec); // persisted before answering: a reload must not reset the count
    if (failures >= MAX_PIN_ATTEMPTS) {
      await dropPin(rec);
      throw new PinError(`PIN 连续错误 ${MAX_PIN_ATTEMPTS} 次，已停用离线解锁，请联网用密码登录`, { locked: true });
    }
    throw new PinError(`PIN 错误，还可尝试 ${MAX_PIN_ATTEMPTS - failures} 次`, { remaining: MAX_PIN_ATTEMPTS - failures });
  }
  rec = { ...rec, pinFailures: 0 };
  await db.put('users', rec);
  const { key, kek } = opened;
  const t = rec.tokenBox ? await decryptJSON(key, rec.tokenBox) : null;
  const valid = t && (!t.expires_at || new Date(t.expires_at).getTime() > Date.now());
  await db.kvSet('activeUser', userId);
  // Offline unlock never extends the server session (pwa.md §5): an expired token stays expired.
  open(rec, key, kek, valid ? t.token : null);
}

async function dropPin(rec) {
  // Deleting the PIN slot (and the KEK sealed in it) leaves the password+KEK slot: work is kept,
  // unlock needs the node.
  const slots = { ...rec.slots };
  delete slots.pin;
  await db.put('users', { ...rec, slots, pinFailures: 0 });
}

export function lock() {
  dataKey = null;
  serverKek = null;
  current = null;
  setToken(null);
  setState({ unlocked: false });
}

/** Logout revokes the token and forgets the keys in memory; the outbox and key slots stay. */
export async function logout() {
  const rec = current;
  if (rec && state.reachable !== false) {
    try { await api.post('/api/v1/auth/logout', {}); } catch (_) { /* offline: token expires by itself */ }
  }
  if (rec) {
    const slots = { ...rec.slots };
    delete slots.pin;
    await db.put('users', { ...rec, slots, tokenBox: null, loggedOut: true });
  }
  await db.kvSet('activeUser', null);
  lock();
  setState({ user: null });
}

// ---- idle lock ----------------------------------------------------------------------------------

let lastActivity = Date.now();
let idleTimer = null;

export function touch() { lastActivity = Date.now(); }

export function idleMs() {
  const s = Number(localStorage.getItem('sn.idleSeconds'));
  return s > 0 ? s * 1000 : DEFAULT_IDLE_MS;
}

export function startIdleWatch(onLock) {
  for (const ev of ['pointerdown', 'keydown', 'touchstart', 'input']) {
    window.addEventListener(ev, touch, { passive: true, capture: true });
  }
  clearInterval(idleTimer);
  idleTimer = setInterval(() => {
    if (state.unlocked && Date.now() - lastActivity > idleMs()) {
      lock();
      onLock();
    }
  }, 1000);
}

export async function checkReachable() { return ping(); }
