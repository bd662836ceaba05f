// 待办 / 全部事项: the work list of every staff role, over every case kind (GET /api/v1/worklist).
// "待我办理" lists only cases where the person has a transition now; filters by kind, state, overdue
// and due soon; pages by the node's cursor. Each row opens the case screen. The last copy of a
// list is kept (encrypted) for offline use and marked with its time. A node without the work list
// endpoint is read through GET /api/v1/cases (scope-wide, newest first) and says so.

import { html, fmtTime, mount } from '../ui.js';
import { cachedGet, staleNote } from '../data.js';
import { ApiError, NetworkError, describeErrors } from '../net.js';
import { state } from '../state.js';
import { go } from '../router.js';
import { kindLabel, kindsForRole, loadKinds, stateLabel } from '../kinds.js';
import { text } from '../caseview.js';

export const PAGE = 30;
const SOON_MS = 24 * 3600 * 1000;

/** The work list request for a screen query; parameters in a fixed order so the cache key is stable. */
export function worklistPath(q) {
  const p = new URLSearchParams();
  if (q.kind) p.set('kind', q.kind);
  if (q.state) p.set('state', q.state);
  if (q.mine) p.set('actionable', '1');
  if (q.due === 'overdue') p.set('overdue', '1');
  if (q.due === 'soon') p.set('due_soon', '1');
  p.set('limit', String(q.size || PAGE));
  if (q.cursor) p.set('cursor', q.cursor);
  return `/api/v1/worklist?${p}`;
}

function readQuery(query) {
  return {
    kind: query.get('kind') || '', state: query.get('state') || '', due: query.get('due') || '',
    mine: query.get('mine') !== '0', cursor: query.get('cursor') || '', page: Number(query.get('page') || 1),
    size: Math.min(Math.max(Number(query.get('size')) || 0, 0), 200), // a page size other than the default
  };
}

function href(q, patch) {
  const n = { ...q, ...patch };
  const p = new URLSearchParams();
  if (!n.mine) p.set('mine', '0');
  if (n.kind) p.set('kind', n.kind);
  if (n.state) p.set('state', n.state);
  if (n.due) p.set('due', n.due);
  if (n.size) p.set('size', String(n.size));
  if (n.cursor) { p.set('cursor', n.cursor); p.set('page', String(n.page)); }
  const s = p.toString();
  return `#/work${s ? `?${s}` : ''}`;
}

async function fetchList(q, kinds) {
  try {
    const r = await cachedGet(worklistPath(q), { personal: true });
    return { ...r, items: r.data.items || [], next: r.data.next_cursor || null, fallback: false };
  } catch (err) {
    const missing = err instanceof ApiError && err.status === 404;
    if (!missing && !(err instanceof NetworkError)) throw err;
    if (!missing) {
      // Offline with no copy of this list: maybe one from before the node had the work list.
      try { await cachedGet(`/api/v1/cases?limit=200`, { personal: true }); } catch (_) { throw err; }
    }
  }
  // Before the node serves the work list: the scope's cases, filtered here by what can be.
  const p = new URLSearchParams();
  if (q.kind) p.set('kind', q.kind);
  if (q.state) p.set('state', q.state);
  p.set('limit', '200');
  const r = await cachedGet(`/api/v1/cases?${p}`, { personal: true });
  const now = Date.now();
  let items = (r.data.cases || []).map((c) => ({ ...c, kind_label: kindLabel(kinds, c.kind),
    state_label: stateLabel(kinds, c.kind, c.state), overdue: Boolean(c.due_at && Date.parse(c.due_at) < now) }))
    .filter((c) => !(kinds[c.kind] && (kinds[c.kind].terminal || []).includes(c.state)));
  if (q.due === 'overdue') items = items.filter((c) => c.overdue);
  if (q.due === 'soon') items = items.filter((c) => c.due_at && !c.overdue && Date.parse(c.due_at) - now < SOON_MS);
  // Each case's detail says its state's name and what this person may do there (and is then cached
  // for offline use); "待我办理" keeps the cases with something to do.
  const detailed = [];
  for (const c of items.slice(0, PAGE)) {
    try {
      const d = (await cachedGet(`/api/v1/cases/${encodeURIComponent(c.id)}`, { personal: true })).data;
      detailed.push({ ...c, state_label: d.case.state_label || c.state_label, kind_label: d.case.kind_label || c.kind_label,
        actions: d.available || [] });
    } catch (_) { detailed.push(c); }
  }
  items = q.mine ? detailed.filter((c) => (c.actions || []).length) : detailed;
  return { ...r, items, next: null, fallback: true };
}

function dueBadge(i) {
  if (i.overdue) return html`<span class="badge due-over">已超期</span>`;
  if (!i.due_at) return '';
  const left = Date.parse(i.due_at) - Date.now();
  if (i.due_soon || left < SOON_MS) return html`<span class="badge due-soon">即将到期 ${fmtTime(i.due_at)}</span>`;
  return html`<span class="due-ok small">期限 ${fmtTime(i.due_at)}</span>`;
}

function rowHTML(i, kinds) {
  const cols = (((kinds[i.kind] || {}).views || {}).columns || []);
  // A false flag ("紧急：否") says nothing on a list row; everything else as a person reads it.
  const values = Object.entries(i.columns || {}).filter(([, v]) => v !== null && v !== undefined && v !== '' && v !== false)
    .map(([k, v]) => { const col = cols.find((x) => x.key === k); return col && col.label ? `${col.label}：${text(v)}` : text(v); })
    .filter((x) => x && !x.endsWith('：'));
  return html`<li class="${i.overdue ? 'row-over' : ''}"><a class="rowlink" href="#/case/${encodeURIComponent(i.id)}">
    <div class="row-head"><span class="badge state">${i.state_label || stateLabel(kinds, i.kind, i.state)}</span>
      <strong>${i.kind_label || kindLabel(kinds, i.kind)}</strong> <span class="small">${i.number || ''}</span> ${dueBadge(i)}</div>
    ${values.length ? html`<div class="row-cols">${values.join(' · ')}</div>` : ''}
    ${(i.actions || []).length ? html`<div class="small row-acts">可办理：${i.actions.map((a) => html`<span class="act-chip">${a.label || a.name}</span>`)}</div>` : ''}
    <div class="small muted">更新于 ${fmtTime(i.updated_at)}</div></a></li>`;
}

export async function render(main, _params, query) {
  const q = readQuery(query);
  const { kinds } = await loadKinds();
  const role = state.user ? state.user.role : '';
  const myKinds = kindsForRole(kinds, role);
  let r;
  try { r = await fetchList(q, kinds); } catch (err) {
    mount(main, html`<h1>${q.mine ? '我的待办' : '全部事项'}</h1><p class="error-list">${describeErrors(err).join('；')}</p>
      ${err instanceof ApiError ? '' : html`<p class="muted">离线且本机没有该列表的缓存。<a href="${href(q, { due: '', state: '', kind: '', cursor: '' })}">查看待办首页</a></p>`}`);
    return;
  }
  const states = q.kind && kinds[q.kind] ? Object.entries(kinds[q.kind].states || {}) : [];
  const chip = (label, patch, pressed) => html`<a class="chip" href="${href(q, { ...patch, cursor: '', page: 1 })}" aria-current="${pressed ? 'true' : 'false'}">${label}</a>`;
  mount(main, html`<h1>${q.mine ? '我的待办' : '全部事项'}</h1>${staleNote(r)}
    <nav class="filters" aria-label="筛选">
      <div class="chips">${chip('待我办理', { mine: true }, q.mine)}${chip('管辖范围内全部', { mine: false }, !q.mine)}
        ${chip('超期', { due: q.due === 'overdue' ? '' : 'overdue' }, q.due === 'overdue')}${chip('临期', { due: q.due === 'soon' ? '' : 'soon' }, q.due === 'soon')}</div>
      ${myKinds.length > 1 || q.kind ? html`<div class="chips">${chip('全部类型', { kind: '', state: '' }, !q.kind)}
        ${myKinds.map((k) => chip(k.label, { kind: k.name, state: '' }, q.kind === k.name))}</div>` : ''}
      ${states.length ? html`<label for="state-pick">状态</label><select id="state-pick"><option value="">全部状态</option>
        ${states.map(([s, label]) => html`<option value="${s}" ${q.state === s ? 'selected' : ''}>${label}</option>`)}</select>` : ''}
    </nav>
    ${r.fallback ? html`<p class="small muted">本节点尚未提供待办筛选，显示管辖范围内未办结的事项。</p>` : ''}
    <p class="small muted">${q.page > 1 ? `第 ${q.page} 页 · ` : ''}本页 ${r.items.length} 件 · 更新于 ${fmtTime(r.at)}</p>
    ${r.items.length ? html`<ul class="list worklist">${r.items.map((i) => rowHTML(i, kinds))}</ul>`
      : html`<p class="muted empty">${q.mine ? '暂无需要您办理的事项。' : '没有符合条件的事项。'}</p>`}
    <div class="btn-row">${q.cursor ? html`<a class="btn" href="${href(q, { cursor: '', page: 1 })}">回到第一页</a>` : ''}
      ${r.next ? html`<a class="btn btn-primary" href="${href(q, { cursor: r.next, page: q.page + 1 })}">下一页</a>` : ''}</div>`);
  if (!r.stale) keepForOffline(r.items);
  const pick = main.querySelector('#state-pick');
  if (pick) pick.addEventListener('change', () => go(href(q, { state: pick.value, cursor: '', page: 1 }).slice(1)));
}

const OFFLINE_DETAILS = 10;

/** Keep the first cases of a list just seen online, so they open offline too (a tablet that is not
 *  enrolled has no change-feed pull to do it). In the background, one at a time; failures ignored. */
async function keepForOffline(items) {
  for (const i of items.slice(0, OFFLINE_DETAILS)) {
    try { await cachedGet(`/api/v1/cases/${encodeURIComponent(i.id)}`, { personal: true }); } catch (_) { return; }
  }
}
