// The outbox (DESIGN §8, sync.md §4.2): draft → finalized → uploading → acked | rejected | conflict.
//
// Every item belongs to one user and is encrypted under that user's data key. Items are never
// deleted by a timer; rejected and conflict items stay until a person resolves them. Uploads are
// idempotent: an envelope is signed once and stored before it is sent, so a lost response is
// answered `duplicate` on the retry; case events carry their event_id and are checked first.

import * as db from './db.js';
import { decryptBytes, decryptJSON, encryptBytes, encryptJSON, sha256Hex, uuid7 } from './crypto.js';
import { getDevice, signAs } from './device.js';
import { ApiError, NetworkError, api, getToken, ping, request } from './net.js';
import { currentKey, currentUserId } from './session.js';
import { setState, state } from './state.js';
import { pull } from './pull.js';
import { isoLocal } from './ui.js';

export const STATE_LABELS = {
  draft: '草稿', finalized: '待上传', uploading: '上传中', acked: '已受理', rejected: '被退回', conflict: '冲突',
};
const PENDING = new Set(['finalized', 'uploading']);
const BATCH = 50;
const BACKOFF_MS = [5000, 15000, 60000, 180000, 600000];

// ---- drafts ---------------------------------------------------------------------------------------

function draftPointer(formKey) { return `draft:${currentUserId()}:${formKey}`; }

/** Load the open draft of a form: {id, data, blobs} or null. */
export async function loadDraft(formKey) {
  const id = await db.kvGet(draftPointer(formKey));
  if (!id) return null;
  const item = await db.get('outbox', id);
  if (!item || item.state !== 'draft') return null;
  return { id, data: await decryptJSON(currentKey(), item.box), blobs: item.blobs || [] };
}

/** Autosave on every change (pwa.md §1.3); returns the draft's id (the future submission_id). */
export async function saveDraft(formKey, meta, data, blobs = []) {
  let id = await db.kvGet(draftPointer(formKey));
  const existing = id ? await db.get('outbox', id) : null;
  if (!existing || existing.state !== 'draft') id = uuid7();
  const box = await encryptJSON(currentKey(), data);
  const now = new Date().toISOString();
  await db.tx(['outbox', 'kv'], 'readwrite', async (s) => {
    s.outbox.put({ ...(existing && existing.state === 'draft' ? existing : { createdAt: now, attempts: 0 }),
      id, userId: currentUserId(), state: 'draft', formKey, ...meta, box, blobs, updatedAt: now });
    s.kv.put({ k: draftPointer(formKey), v: id });
  });
  return id;
}

export async function discardDraft(formKey) {
  const id = await db.kvGet(draftPointer(formKey));
  if (id) {
    const item = await db.get('outbox', id);
    if (item && item.state === 'draft') await db.del('outbox', id); // a draft was never finalized: the user chose to drop it
  }
  await db.kvSet(draftPointer(formKey), null);
}

// ---- photos -------------------------------------------------------------------------------------

/** Store a photo encrypted; returns {name, sha256, size, mime} for the envelope's attachments. */
export async function storeBlob(blob, name) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const sha256 = await sha256Hex(bytes);
  const boxed = await encryptBytes(currentKey(), bytes);
  await db.put('blobs', { key: `${currentUserId()}:${sha256}`, sha256, userId: currentUserId(), mime: blob.type, size: bytes.length, box: boxed });
  return { name, sha256, size: bytes.length, mime: blob.type || 'image/jpeg' };
}

export async function readBlob(sha256, userId = currentUserId()) {
  const row = await db.get('blobs', `${userId}:${sha256}`);
  if (!row) return null;
  return new Blob([await decryptBytes(currentKey(), row.box)], { type: row.mime });
}

// ---- finalize -----------------------------------------------------------------------------------

async function nextLocalNo() {
  // A human-readable number issued offline (pwa.md §3): device-scoped, shown until the node's number arrives.
  const d = await getDevice();
  const day = isoLocal().slice(0, 10).replace(/-/g, '');
  const n = await db.tx('kv', 'readwrite', async (s) => {
    const row = (await db.req(s.kv.get('localNo'))) || { k: 'localNo', v: { day, n: 0 } };
    if (row.v.day !== day) row.v = { day, n: 0 };
    row.v.n += 1;
    await db.req(s.kv.put(row));
    return row.v.n;
  });
  const dev = d && d.device_id ? d.device_id.slice(-4).toUpperCase() : 'BJ';
  return `${dev}-${day}-${String(n).padStart(4, '0')}`;
}

/**
 * Finalize a submission: it becomes immutable and queued. `spec`:
 *  {formKey?, kind, formId, formVersion, title, payload, attachments, orgPath}  (transport "envelope")
 *  {formKey?, transport: 'event', title, caseId, path, body, attachments}      (a case event)
 */
export async function finalize(spec) {
  const user = state.user;
  const id = spec.formKey ? ((await db.kvGet(draftPointer(spec.formKey))) || uuid7()) : uuid7();
  const transport = spec.transport || 'envelope';
  const now = new Date();
  let content;
  if (transport === 'envelope') {
    content = {
      fields: {
        submission_id: id, root_id: spec.rootId || id, supersedes: spec.supersedes || null,
        kind: spec.kind, form_id: spec.formId, form_version: spec.formVersion,
        org_path: spec.orgPath || user.org_path, user_id: user.id, created_at_device: isoLocal(now),
        payload: spec.payload, attachments: spec.attachments || [],
      },
    };
  } else {
    content = { caseId: spec.caseId, path: spec.path, body: { ...spec.body, event_id: id }, attachments: spec.attachments || [] };
  }
  if (transport === 'envelope') {
    const offset = await db.kvGet('clockOffsetMs');
    if (Number.isInteger(offset)) content.fields.device_clock_offset_ms = offset;
  }
  const box = await encryptJSON(currentKey(), content);
  const localNo = await nextLocalNo();
  const item = {
    id, userId: user.id, transport, kind: spec.kind || 'case_event', title: spec.title, localNo, state: 'finalized',
    box, blobs: spec.attachments || [], createdAt: now.toISOString(), updatedAt: now.toISOString(), attempts: 0,
    errors: [], lastError: null, signed: false, formKey: spec.formKey || null, parentId: spec.parentId || null,
    // An act on a case: the case screen shows it as 待上传 until the node has it (ids only, no content).
    caseId: spec.caseId || null, transitionLabel: spec.transitionLabel || null,
  };
  await db.tx(['outbox', 'kv'], 'readwrite', async (s) => {
    s.outbox.put(item);
    if (spec.formKey) s.kv.put({ k: draftPointer(spec.formKey), v: null });
  });
  await refreshCounts();
  wakeLater();
  return item;
}

function wakeLater() {
  // Where Background Sync exists, the browser wakes the worker when the network returns.
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.ready.then((reg) => (reg.sync ? reg.sync.register('outbox') : null)).catch(() => {});
}

// ---- listing ------------------------------------------------------------------------------------

export async function listItems(userId = currentUserId()) {
  const items = await db.all('outbox', 'userId', userId);
  return items.sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
}

export async function getItem(id) { return db.get('outbox', id); }

export async function itemContent(item) { return decryptJSON(currentKey(), item.box); }

/** This user's acts on one case that the node has not accepted yet (queued, uploading, or refused). */
export async function pendingActs(caseId) {
  return (await listItems()).filter((i) => i.caseId === caseId && (PENDING.has(i.state)
    || ((i.state === 'rejected' || i.state === 'conflict') && !i.resolution)));
}

/** What the node answered for an accepted item (case number, 查询码, …), or null. */
export async function itemRecord(item) { return item.recordBox ? decryptJSON(currentKey(), item.recordBox) : null; }

export async function refreshCounts() {
  const everything = await db.all('outbox');
  const uid = currentUserId();
  let pending = 0; let othersPending = 0; let problems = 0;
  for (const i of everything) {
    if (PENDING.has(i.state)) { if (i.userId === uid) pending += 1; else othersPending += 1; }
    if ((i.state === 'rejected' || i.state === 'conflict') && !i.resolution && i.userId === uid) problems += 1;
  }
  const lastSync = await db.kvGet(`lastSync:${uid}`);
  setState({ pending, othersPending, problems, lastSync });
  return { pending, othersPending, problems };
}

async function update(id, patch) {
  return db.tx('outbox', 'readwrite', async (s) => {
    const cur = await db.req(s.outbox.get(id));
    const next = { ...cur, ...patch, updatedAt: new Date().toISOString() };
    await db.req(s.outbox.put(next));
    return next;
  });
}

export async function resolve(id, resolution) {
  await update(id, { resolution, resolvedAt: new Date().toISOString() });
  await refreshCounts();
}

/** Put a rejected item back in the queue after the cause was fixed on the node side (e.g. enrolment). */
export async function retry(id) {
  await update(id, { state: 'finalized', nextAttemptAt: null, lastError: null });
  await refreshCounts();
}

// ---- upload -------------------------------------------------------------------------------------

let conflictListener = null;
export function onConflicts(fn) { conflictListener = fn; }

let again = false;

export async function drain({ manual = false } = {}) {
  if (!currentKey()) return { skipped: 'locked' };
  const run = async () => {
    // A request that arrives while a drain runs is not dropped: the running drain goes round again,
    // so an item saved mid-upload does not wait for the timer.
    let result;
    do {
      again = false;
      result = await drainLocked(manual);
    } while (again && !result.transportError && currentKey());
    return result;
  };
  if (navigator.locks) {
    // Page tabs (and a future SW sync handler) must never send one item twice at once.
    return navigator.locks.request('sn-outbox', { ifAvailable: true }, (lock) => {
      if (!lock) { again = true; return { skipped: 'busy' }; }
      return run();
    });
  }
  return run();
}

async function drainLocked(manual) {
  const uid = currentUserId();
  setState({ syncing: true });
  const outcome = { sent: 0, acked: 0, conflicts: [], rejected: 0, transportError: null };
  try {
    if (!(await ping())) { outcome.transportError = 'unreachable'; return outcome; }
    if (!getToken()) { setState({ tokenExpired: true }); outcome.transportError = 'login'; return outcome; }
    const now = Date.now();
    const due = (await db.all('outbox', 'userId', uid))
      .filter((i) => PENDING.has(i.state) && (manual || !i.nextAttemptAt || i.nextAttemptAt <= now))
      .sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
    const envelopes = due.filter((i) => i.transport === 'envelope');
    const events = due.filter((i) => i.transport === 'event');
    if (envelopes.length) await sendEnvelopes(envelopes, outcome);
    for (const item of events) await sendEvent(item, outcome);
    const device = await getDevice();
    if (!outcome.transportError && device && device.device_id) outcome.pulled = await pull();
    if (!outcome.transportError) {
      await db.kvSet(`lastSync:${uid}`, new Date().toISOString());
    }
  } catch (err) {
    if (err instanceof NetworkError) outcome.transportError = 'network';
    else { outcome.transportError = err.message; console.error(err); }
  } finally {
    await refreshCounts();
    setState({ syncing: false });
  }
  if (outcome.conflicts.length && conflictListener) conflictListener(outcome.conflicts);
  return outcome;
}

async function ensureSigned(item, device) {
  if (item.signed) return item;
  const content = await itemContent(item);
  for (let attempt = 0; attempt < 3; attempt++) {
    const dev = await getDevice();
    const seq = (dev.seq || 0) + 1;
    const envelope = await signAs(dev, content.fields, seq);
    const box = await encryptJSON(currentKey(), { ...content, envelope });
    const next = { ...item, box, signed: true, deviceSeq: seq, deviceId: device.device_id, updatedAt: new Date().toISOString() };
    // The sequence number and the signed envelope commit together: device_seq stays gapless.
    const ok = await db.tx(['kv', 'outbox'], 'readwrite', async (s) => {
      const row = await db.req(s.kv.get('device'));
      if ((row.v.seq || 0) + 1 !== seq) return false;
      row.v.seq = seq;
      s.kv.put(row);
      s.outbox.put(next);
      return true;
    });
    if (ok) return next;
  }
  throw new Error('签名序号冲突，请重试');
}

async function uploadBlobs(item) {
  for (const att of item.blobs || []) {
    const path = `/sync/v1/blobs/${att.sha256}`;
    const head = await request(path, { method: 'HEAD', raw: true });
    if (head.ok) continue;
    const blob = await readBlob(att.sha256, item.userId);
    if (!blob) throw new Error(`照片 ${att.name} 在本机丢失`);
    const resp = await request(path, { method: 'PUT', body: blob, headers: { 'Content-Type': att.mime }, raw: true, timeout: 120000 });
    if (!resp.ok && resp.status !== 409) {
      let body = null; try { body = await resp.json(); } catch (_) { /* not JSON */ }
      throw new ApiError(resp.status, body);
    }
  }
}

async function sendEnvelopes(items, outcome) {
  const device = await getDevice();
  if (!device || !device.device_id) {
    outcome.transportError = 'not_enrolled';
    setState({ notEnrolled: true });
    return;
  }
  const ready = [];
  for (const raw of items) {
    const item = await ensureSigned(raw, device);
    try {
      await uploadBlobs(item);
    } catch (err) {
      if (err instanceof NetworkError) throw err;
      await failed(item, err, outcome);
      continue;
    }
    ready.push(item);
  }
  for (let i = 0; i < ready.length; i += BATCH) {
    const batch = ready.slice(i, i + BATCH);
    const envs = [];
    for (const item of batch) {
      await update(item.id, { state: 'uploading', attempts: (item.attempts || 0) + 1, lastAttemptAt: new Date().toISOString() });
      envs.push((await itemContent(item)).envelope);
    }
    let res;
    try {
      // X-Device-Time lets the node measure this tablet's clock offset (sync.md §4.5).
      res = await api.post('/sync/v1/outbox', { envelopes: envs }, { timeout: 60000, headers: { 'X-Device-Time': isoWithOffset(new Date()) } });
    } catch (err) {
      if (err instanceof NetworkError) throw err;
      for (const item of batch) await failed(item, err, outcome);
      continue;
    }
    outcome.sent += batch.length;
    if (res.clock && Number.isInteger(res.clock.offset_ms)) {
      // sync.md §4.5: remember the measured offset; later envelopes carry it, and a suspect clock is shown.
      await db.kvSet('clockOffsetMs', res.clock.offset_ms);
      setState({ clockSuspect: Boolean(res.clock.suspect) });
    }
    const byId = new Map((res.results || []).map((r) => [r.submission_id, r]));
    for (const item of batch) await applyResult(item, byId.get(item.id), outcome);
  }
}

/** RFC 3339 / ISO 8601 local time with its UTC offset ("2026-11-29T14:21:38.123+08:00"): the node
 *  measures the offset from it at every sync, and the zone shows what the tablet believes. */
export function isoWithOffset(d) {
  const p = (n, w = 2) => String(Math.abs(n)).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`
    + `:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}${sign}${p(Math.trunc(off / 60))}:${p(off % 60)}`;
}

async function applyResult(item, r, outcome) {
  if (!r) return;
  const at = new Date().toISOString();
  const base = { result: { status: r.status, at }, errors: r.errors || [] };
  if (r.status === 'created' || r.status === 'duplicate') {
    // ACKED only with the node's signed receipt stored (sync.md §4.2). The record (case number,
    // 查询码, the resident's rating token) is kept encrypted for reprinting the receipt offline.
    const recordBox = r.record ? await encryptJSON(currentKey(), r.record) : item.recordBox || null;
    await update(item.id, { ...base, state: 'acked', receipt: r.receipt || null, recordBox, ackedAt: at, lastError: null });
    outcome.acked += 1;
  } else if (r.status === 'awaiting_blobs') {
    await update(item.id, { ...base, state: 'uploading', lastError: '照片尚未全部到达节点，将继续上传' });
  } else if (r.status === 'id_conflict' || r.status === 'stale_version') {
    const next = await update(item.id, { ...base, state: 'conflict', currentHead: r.current_head || null,
      lastError: r.status === 'id_conflict' ? '节点上已有同一编号但内容不同的记录，两份都已保留待核查' : '该记录已被他人更新，您的修改基于旧版本' });
    outcome.conflicts.push(next);
  } else {
    const msg = r.status === 'forbidden' ? '无权提交到该范围（请核对所属网格或社区）' : '数据未通过节点校验，请按提示修改';
    await update(item.id, { ...base, state: 'rejected', lastError: msg });
    outcome.rejected += 1;
  }
}

async function failed(item, err, outcome) {
  if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 401 && err.status !== 408 && err.status !== 429) {
    await update(item.id, { state: 'rejected', lastError: err.message, errors: err.errors || [] });
    outcome.rejected += 1;
    return;
  }
  // 5xx, 401 (sign in again) and the like: keep it queued and back off.
  const n = Math.min(item.attempts || 0, BACKOFF_MS.length - 1);
  await update(item.id, { state: 'finalized', lastError: err.message, nextAttemptAt: Date.now() + BACKOFF_MS[n], attempts: (item.attempts || 0) + 1 });
  outcome.transportError = outcome.transportError || 'server';
}

async function sendEvent(item, outcome) {
  const content = await itemContent(item);
  try {
    if ((item.attempts || 0) > 0) {
      // The previous response may have been lost after the node applied it: look before resending.
      const detail = await api.get(`/api/v1/cases/${encodeURIComponent(content.caseId)}`);
      if ((detail.events || []).some((e) => e.id === content.body.event_id)) {
        await update(item.id, { state: 'acked', ackedAt: new Date().toISOString(), result: { status: 'duplicate' } });
        outcome.acked += 1;
        return;
      }
    }
    await uploadBlobs(item);
    await update(item.id, { state: 'uploading', attempts: (item.attempts || 0) + 1 });
    const res = await api.post(content.path || `/api/v1/cases/${encodeURIComponent(content.caseId)}/events`, content.body);
    await update(item.id, { state: 'acked', ackedAt: new Date().toISOString(), result: { status: 'created', ...res }, lastError: null });
    outcome.acked += 1;
  } catch (err) {
    if (err instanceof NetworkError) throw err;
    if (err instanceof ApiError && err.status === 409) {
      const next = await update(item.id, { state: 'conflict', lastError: err.message, errors: err.errors,
        result: { status: 'case_changed', at: new Date().toISOString() } });
      outcome.conflicts.push(next);
      return;
    }
    await failed({ ...item, attempts: (item.attempts || 0) + 1 }, err, outcome);
  }
}
