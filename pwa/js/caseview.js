// What a person needs to act on a case, drawn from the case detail alone (any kind): the data
// summary (category, place, item, applicant as masked by the node), photos, the clocks with their
// explanation, and the timeline with what each actor wrote (instruction, reasons, result).

import { fmtTime, html } from './ui.js';
import { ENUM_LABELS, FIELD_LABELS, fieldLabel, resolve } from './schemaform.js';
import { ROLE_LABELS, stateLabel, transitionOf } from './kinds.js';
import { request } from './net.js';
import { readBlob, storeBlob } from './outbox.js';

// Case data keys a person reads, in this order, with their Chinese names.
const SUMMARY = [
  ['category', '类别'], ['item_name', '事项'], ['applicant_name_masked', '申请人'], ['description', '问题描述'],
  ['location', '地点'], ['source', '来源'], ['channel', '渠道'], ['item_type', '事项类型'], ['emergency', '紧急'],
  ['unit_name', '处置单位'],
];
// Never shown: identifiers, hashes, routing paths, internals, and what has its own section.
const HIDDEN = /(^_|_id$|_ref$|^id$|sha256|_path$|^photos$|_code$|_version$|^originals_required$|^item_accepted_at$|_limit_wd$|^materials$|^category$)/;
// Payload keys that carry what the actor wants the next person to know.
const INSTRUCTION_KEYS = ['instruction', 'rework_reason', 'return_reason', 'not_filed_reason', 'on_account_reason',
  'decision_reason', 'opinion', 'reasons', 'items', 'reason', 'result', 'note', 'merge_reason', 'notice', 'plan'];
const STATUS = { running: '计时中', paused: '已暂停', stopped: '已停止', expired: '已到期', not_started: '未开始', overdue: '已超期',
  breached: '已超时' };

export function parsePayload(p) {
  if (typeof p !== 'string') return p || {};
  try { return JSON.parse(p); } catch (_) { return {}; }
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;

/** A value as a person reads it: 是/否, a place, a category, a time, an enum's Chinese name. */
export function text(v) {
  if (typeof v === 'string' && ISO_TIME.test(v)) return fmtTime(v);
  if (v === true) return '是';
  if (v === false) return '否';
  if (Array.isArray(v)) return v.map(text).join('、');
  if (v && typeof v === 'object') {
    if (v.place || v.lng) return [v.place, v.lng ? `（${Number(v.lat).toFixed(5)}, ${Number(v.lng).toFixed(5)}）` : ''].filter(Boolean).join(' ');
    if (v.name) return [v.name, v.major_class && v.minor_class ? `（${v.major_class} / ${v.minor_class}）` : ''].join('');
    return '';
  }
  return ENUM_LABELS[v] || String(v ?? '');
}

/** The data summary as label/value rows: the well-known keys first, then any other readable field. */
export function summaryRows(c, extra = {}) {
  const data = { ...(c.data || {}), ...(extra || {}) };
  const rows = [];
  const seen = new Set();
  for (const [key, label] of SUMMARY) {
    seen.add(key);
    if (data[key] === undefined || data[key] === null || data[key] === '' || (key === 'emergency' && !data[key])) continue;
    rows.push([label, text(data[key])]);
  }
  if (Array.isArray(data.materials) && data.materials.length) {
    rows.push(['申请材料', data.materials.map((m) => [m.material, m.file_name ? `（${m.file_name}）` : ''].join('')).join('、')]);
  }
  for (const [key, v] of Object.entries(data)) {
    if (seen.has(key) || HIDDEN.test(key) || v === null || v === '' || (typeof v === 'object' && !Array.isArray(v))) continue;
    if (Array.isArray(v) && v.some((x) => typeof x === 'object')) continue;
    if (!FIELD_LABELS[key]) continue; // an unnamed field would show a programme identifier
    rows.push([FIELD_LABELS[key], text(v)]);
  }
  return rows.filter(([, v]) => v);
}

/** Payload lines worth reading in the timeline ("派遣意见：请今天处置"), named by the transition's
 *  schema or our dictionary; a field with neither is left out rather than shown by its identifier. */
export function payloadLines(payload, schema = null) {
  const lines = [];
  const props = (schema && schema.properties) || {};
  for (const [key, v] of Object.entries(payload || {})) {
    if (key.startsWith('_') || HIDDEN.test(key) || v === null || v === '' || key === 'category' || key === 'description') continue;
    if (Array.isArray(v) && v.some((x) => x && typeof x === 'object' && x.sha256)) { lines.push(['照片', `${v.length} 张`]); continue; }
    const label = props[key] ? fieldLabel(key, resolve(schema, props[key])) : FIELD_LABELS[key];
    const t = text(v);
    if (t && label) lines.push([label, t]);
  }
  return lines;
}

/** The most recent thing another person asked for or reported, to read before acting. */
export function lastInstruction(events) {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    const p = parsePayload(e.payload);
    const keys = INSTRUCTION_KEYS.filter((k) => p[k] !== undefined && p[k] !== null && p[k] !== '' && !(Array.isArray(p[k]) && !p[k].length));
    if (keys.length) return { event: e, lines: keys.map((k) => [FIELD_LABELS[k] || k, text(p[k])]) };
  }
  return null;
}

/** Photo references in the case data and in every event, labelled by where they came from. */
export function photoRefs(c, events, kinds) {
  const out = [];
  const seen = new Set();
  const add = (list, label) => {
    for (const ph of list || []) {
      // Photos only: documents (application materials: file_name, PDF) are listed in the summary.
      if (!ph || !ph.sha256 || seen.has(ph.sha256) || ph.file_name || (ph.mime && !ph.mime.startsWith('image/'))) continue;
      seen.add(ph.sha256);
      out.push({ ...ph, label });
    }
  };
  for (const e of events) {
    const p = parsePayload(e.payload);
    const label = e.label || (transitionOf(kinds, c.kind, e.transition) || {}).label || e.transition;
    for (const v of Object.values(p)) if (Array.isArray(v) && v.some((x) => x && x.sha256)) add(v, label);
  }
  add((c.data || {}).photos, '上报');
  return out;
}

/** An object URL for a photo: this tablet's own copy, else the node's (kept encrypted for offline use). */
export async function photoURL(sha256) {
  let blob = await readBlob(sha256);
  if (!blob) {
    const resp = await request(`/sync/v1/blobs/${sha256}`, { raw: true, timeout: 30000 });
    if (!resp.ok) return null;
    blob = await resp.blob();
    await storeBlob(blob, sha256);
  }
  return URL.createObjectURL(blob);
}

function remaining(clock) {
  if (clock.overdue || clock.status === 'overdue' || clock.status === 'breached') return html`<span class="badge due-over">已超期</span>`;
  if (clock.working_days_left !== undefined && clock.working_days_left !== null && clock.unit === 'working_day') {
    return clock.working_days_left <= 0 ? html`<span class="badge due-soon">今日到期</span>` : html`<span class="due-ok">剩 ${clock.working_days_left} 个工作日</span>`;
  }
  const s = clock.remaining_seconds;
  if (s === undefined || s === null || clock.status !== 'running') return '';
  const d = Math.floor(s / 86400); const h = Math.floor((s % 86400) / 3600); const m = Math.floor((s % 3600) / 60);
  const t = d ? `${d} 天 ${h} 小时` : h ? `${h} 小时 ${m} 分` : `${m} 分钟`;
  return s < 4 * 3600 ? html`<span class="badge due-soon">剩 ${t}</span>` : html`<span class="due-ok">剩 ${t}</span>`;
}

/** One line for the action panel: the clock that matters now and what is left of it. */
export function currentClockLine(c, currentName) {
  const k = (c.clocks || {})[currentName];
  if (!k || !k.due_at) return '';
  return html`<p class="clock-line"><strong>${k.label || currentName}</strong>：截止 ${fmtTime(k.due_at)} ${remaining(k)}</p>`;
}

/** The clocks, the current one first and opened, each with the node's explanation of its deadline. */
export function clocksHTML(c, currentName) {
  const entries = Object.entries(c.clocks || {}).filter(([, k]) => k && (k.due_at || k.status));
  if (!entries.length) return html`<p class="muted">当前没有计时。</p>`;
  entries.sort(([a], [b]) => (a === currentName ? -1 : b === currentName ? 1 : 0));
  return html`<ul class="list clocks">${entries.map(([name, k]) => html`<li class="${name === currentName ? 'current' : ''}">
    <div><strong>${k.label || name}</strong> ${name === currentName ? html`<span class="badge">当前时限</span>` : ''}
      <span class="muted small">${STATUS[k.status] || k.status || ''}</span> ${remaining(k)}</div>
    <div class="small">${k.due_at ? `截止 ${fmtTime(k.due_at)}` : ''}${k.provisional ? '（暂定：节假日安排未发布，发布后重算）' : ''}</div>
    ${k.explanation ? html`<details ${name === currentName ? 'open' : ''}><summary>时限如何计算</summary><p class="small explain">${k.explanation}</p></details>` : ''}
  </li>`)}</ul>`;
}

/** The timeline: who did what and when, and what they wrote. */
export function timelineHTML(c, events, kinds) {
  if (!events.length) return html`<p class="muted">暂无办理记录。</p>`;
  return html`<ol class="timeline">${events.map((e) => {
    const label = e.label || (transitionOf(kinds, c.kind, e.transition) || {}).label || e.transition;
    const who = [e.actor_name, ROLE_LABELS[e.role] || e.role, e.on_behalf_of ? `代 ${e.on_behalf_of}` : ''].filter(Boolean).join(' · ');
    const eff = e.effective_time && e.effective_time !== e.node_time ? html`<div class="small muted">计时按 ${fmtTime(e.effective_time)}${e.effective_basis ? `（${e.effective_basis}）` : ''}</div>` : '';
    // The creating event's payload is the case data, already in the summary above.
    const lines = e.from_state ? payloadLines(parsePayload(e.payload), (transitionOf(kinds, c.kind, e.transition) || {}).schema) : [];
    return html`<li><div><strong>${label}</strong> <span class="small muted">${fmtTime(e.node_time)} · ${who}</span></div>
      ${e.to_state ? html`<div class="small muted">${e.from_state ? `${stateLabel(kinds, c.kind, e.from_state)} → ` : ''}${stateLabel(kinds, c.kind, e.to_state)}</div>` : ''}
      ${eff}${lines.length ? html`<dl class="kv small">${lines.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>` : ''}</li>`;
  })}</ol>`;
}
