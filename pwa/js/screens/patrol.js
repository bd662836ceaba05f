// 巡查日志: start a patrol, record the route (GPS every 30 s while the screen is open) and findings,
// end it; the finished log is queued as one `patrol_log` envelope. An open patrol is a draft, so it
// survives a reload or a locked screen.

import { $, fmtTime, html, isoLocal, mount, toast } from '../ui.js';
import { cachedGet, staleNote } from '../data.js';
import { finalize, loadDraft, saveDraft } from '../outbox.js';
import { gpsPosition } from '../geo.js';
import { setDirty } from '../state.js';
import { syncNow } from '../actions.js';

const FORM = 'patrol';
const POINT_EVERY_MS = 30000;

export async function render(main) {
  const draft = await loadDraft(FORM);
  let data = draft ? draft.data : null;
  let timer = null;
  let past = null;
  try { past = await cachedGet('/api/v1/grid/patrols?member=me&limit=20', { personal: true }); } catch (_) { past = null; }

  const save = async () => {
    await saveDraft(FORM, { kind: 'patrol_log', title: '巡查日志' }, data);
    setDirty(FORM, true);
  };
  const addPoint = async () => {
    try {
      const p = await gpsPosition(8000);
      data.route.push({ lng: p.lng, lat: p.lat, at: isoLocal() });
      await save();
      draw();
    } catch (_) { /* no fix now: the next tick tries again */ }
  };

  const draw = () => {
    if (!data) {
      mount(main, html`<h1>巡查日志</h1>
        <div class="card"><p>开始巡查后，本机每 30 秒记录一次位置（需要定位权限），可随时记录巡查发现。</p>
          <button type="button" class="btn btn-primary btn-big" id="patrol-start">开始巡查</button></div>
        <h2>近期巡查</h2>${staleNote(past)}
        ${past && (past.data.patrols || []).length ? html`<ul class="list">${past.data.patrols.map((p) => html`<li>
          ${fmtTime(p.started_at)} — ${fmtTime(p.ended_at)} · 轨迹 ${p.route_points ?? (p.route || []).length} 点 · 发现 ${p.findings_count ?? (p.findings || []).length} 条</li>`)}</ul>`
          : html`<p class="muted">暂无记录（未上传的巡查见「待上传」）。</p>`}`);
      $('#patrol-start', main).addEventListener('click', async () => {
        data = { started_at: isoLocal(), route: [], findings: [], note: '' };
        await save();
        draw();
        addPoint();
        timer = setInterval(addPoint, POINT_EVERY_MS);
      });
      return;
    }
    mount(main, html`<h1>巡查进行中</h1>
      <div class="card" role="status"><p>开始于 ${fmtTime(data.started_at)} · 已记录轨迹 ${data.route.length} 点 · 发现 ${data.findings.length} 条</p></div>
      <form id="finding-form" class="card" novalidate>
        <label for="finding-note" class="req">巡查发现</label>
        <textarea id="finding-note" maxlength="1000"></textarea>
        <button type="submit" class="btn">记录发现</button>
      </form>
      <ul class="list">${data.findings.map((f) => html`<li>${f.note}</li>`)}</ul>
      <label for="patrol-note">巡查小结（选填）</label>
      <textarea id="patrol-note" maxlength="1000">${data.note}</textarea>
      <div class="btn-row"><button type="button" class="btn btn-primary btn-big" id="patrol-end">结束巡查并保存</button>
        <a class="btn" href="#/report">上报事件</a></div>`);
    $('#finding-form', main).addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const note = $('#finding-note', main).value.trim();
      if (!note) { toast('请填写巡查发现'); return; }
      let location = null;
      try { const p = await gpsPosition(5000); location = { lng: p.lng, lat: p.lat, accuracy_m: p.accuracy_m }; } catch (_) { /* optional */ }
      data.findings.push(location ? { note, location } : { note });
      await save();
      draw();
    });
    $('#patrol-note', main).addEventListener('input', async (ev) => { data.note = ev.target.value; await save(); });
    $('#patrol-end', main).addEventListener('click', async () => {
      const payload = { started_at: data.started_at, ended_at: isoLocal(), route: data.route, findings: data.findings };
      if (data.note.trim()) payload.note = data.note.trim();
      const item = await finalize({ formKey: FORM, kind: 'patrol_log', formId: 'patrol_log', formVersion: '1',
        title: `巡查日志 · ${fmtTime(data.started_at)}`, payload });
      setDirty(FORM, false);
      clearInterval(timer);
      data = null;
      toast(`巡查已保存（本机编号 ${item.localNo}），联网后自动上传`);
      syncNow();
      draw();
    });
  };
  draw();
  if (data) timer = setInterval(addPoint, POINT_EVERY_MS);
  return () => clearInterval(timer);
}
