// 并单 on the case screen of a grid incident: the node's possible duplicates of this report (same
// category, near, recent) and, for the people who verify reports, "merge this one into that one".
// A merge writes two cases at once (this one 已并单, the kept one records it), so it is made online
// through its own endpoint, never queued: the kept case may have moved while the tablet was offline.

import { dialog, html, mount, toast } from './ui.js';
import { api, describeErrors } from './net.js';
import { state } from './state.js';

const MERGERS = new Set(['window_clerk', 'shift_leader', 'grid_member']);
const MERGEABLE = new Set(['reported', 'verifying', 'verified', 'filed']);

/** Fill `root` with the duplicates of case `c` when there are any; `after()` runs after a merge. */
export async function showDuplicates(root, c, after) {
  if (c.kind !== 'grid_incident' || !MERGEABLE.has(c.state) || !state.user || !MERGERS.has(state.user.role)) return;
  let r;
  try { r = await api.get(`/api/v1/grid/cases/${encodeURIComponent(c.id)}/duplicates`); } catch (_) { return; } // offline: nothing to offer
  const dups = (r.duplicates || []).filter((d) => d.id !== c.id);
  if (!dups.length || !root.isConnected) return;
  mount(root, html`<section class="card" aria-labelledby="dup-h"><h2 id="dup-h">疑似重复上报（${dups.length}）</h2>
    <p class="small muted">同类事件，${r.radius_m} 米内、${r.window_hours} 小时内上报。确认是同一问题时，将本事件并入保留的事件（需联网）。</p>
    <ul class="list">${dups.map((d) => html`<li><strong>${d.number}</strong> <span class="badge state">${d.state_label}</span>
      <span class="small">相距约 ${Math.round(d.distance_m)} 米</span><div class="small">${d.description}</div>
      <div class="btn-row"><a class="btn" href="#/case/${encodeURIComponent(d.id)}">查看</a>
        <button type="button" class="btn btn-primary" data-into="${d.id}" data-number="${d.number}">并入此事件</button></div></li>`)}</ul></section>`);
  root.querySelectorAll('button[data-into]').forEach((b) => b.addEventListener('click', async () => {
    let reason = ''; // the dialog is gone once a button is pressed: keep what is typed as it is typed
    const keep = (ev) => { if (ev.target.id === 'merge-reason') reason = ev.target.value.trim(); };
    document.addEventListener('input', keep);
    const ok = await dialog({
      title: '并单',
      body: html`<p>将本事件 ${c.number} 并入 ${b.dataset.number}？本事件将不再单独办理。</p>
        <label for="merge-reason">并单理由</label><textarea id="merge-reason" maxlength="1000"></textarea>`,
      buttons: [{ label: '确认并单', value: 'yes', cls: 'btn-primary' }, { label: '取消', value: null }],
    });
    document.removeEventListener('input', keep);
    if (ok !== 'yes') return;
    try {
      await api.post(`/api/v1/grid/cases/${encodeURIComponent(c.id)}/merge`, { into: b.dataset.into, ...(reason ? { reason } : {}) });
      toast('已并单');
      after();
    } catch (err) { toast(`未能并单：${describeErrors(err).join('；')}`); }
  }));
}
