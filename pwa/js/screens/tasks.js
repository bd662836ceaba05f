// 我的任务: the grid member's open incidents (verify, handle, check), and one task's action form
// with its photos. Actions are queued in the outbox as case events, so they work offline too; the
// event carries the case version it was based on, and a changed case comes back as a conflict.

import { $, fmtSize, fmtTime, html, mount, raw, toast } from '../ui.js';
import { cachedGet, staleNote } from '../data.js';
import { describeErrors } from '../net.js';
import { finalize, readBlob, storeBlob } from '../outbox.js';
import { compressPhoto, cameraInputHTML } from '../photos.js';
import { gpsPosition, myGrid, pointFromAddress } from '../geo.js';
import { setDirty } from '../state.js';
import { go } from '../router.js';
import { syncNow } from '../actions.js';

// What the tablet offers for each transition: fields beyond the note, and the photo field.
const ACTIONS = {
  accept_task: { label: '签收', photos: null },
  verify: { label: '现场核实', photos: 'verify_photos', location: 'verify_location', genuine: true },
  feedback: { label: '处置反馈', photos: 'after_photos', photosRequired: true, location: 'feedback_location', text: ['result', '处置结果'] },
  check_pass: { label: '核查通过', photos: 'check_photos', photosRequired: true, location: 'check_location', locationRequired: true },
  check_fail: { label: '核查不通过（返工）', photos: 'check_photos', photosRequired: true, location: 'check_location', locationRequired: true, text: ['rework_reason', '不通过原因'] },
};

function dueText(t) {
  if (t.overdue) return html`<span class="badge due-over">已超期</span>`;
  if (t.remaining_seconds !== null && t.remaining_seconds < 4 * 3600) return html`<span class="badge due-soon">即将到期</span>`;
  return t.due_at ? html`<span class="due-ok">期限 ${fmtTime(t.due_at)}</span>` : '';
}

export async function render(main) {
  let r;
  try { r = await cachedGet('/api/v1/grid/tasks', { personal: true }); } catch (err) {
    mount(main, html`<h1>我的任务</h1><p class="error-list">${describeErrors(err).join('；')}</p>`);
    return;
  }
  const tasks = r.data.tasks || [];
  mount(main, html`<h1>我的任务</h1>${staleNote(r)}
    ${tasks.length ? html`<ul class="list">${tasks.map((t) => html`<li><a class="rowlink" href="#/task/${t.id}">
      <strong>${t.category_name}</strong> ${t.emergency ? html`<span class="badge due-over">紧急</span>` : ''} ${dueText(t)}<br>
      <span class="small">${[t.number, t.state_label, t.location && t.location.place].filter(Boolean).join(' · ')}</span><br>
      <span class="small muted">${t.description}</span></a></li>`)}</ul>` : html`<p class="muted">暂无待办任务。</p>`}`);
}

export async function renderTask(main, [id]) {
  let r;
  try { r = await cachedGet(`/api/v1/grid/cases/${encodeURIComponent(id)}`, { personal: true }); } catch (err) {
    mount(main, html`<h1>任务处置</h1><p class="error-list">${describeErrors(err).join('；')}</p>`);
    return;
  }
  const { case: c, actions = [], events = [] } = r.data;
  const offered = actions.filter((a) => ACTIONS[a]);
  mount(main, html`<h1>${c.number} · ${c.state_label}</h1>${staleNote(r)}
    <div class="card"><p>${c.description || (c.data && c.data.description) || ''}</p>
      <p class="small muted">上报于 ${fmtTime(c.created_at)}${c.due_at ? ` · 期限 ${fmtTime(c.due_at)}` : ''}</p></div>
    <h2>办理过程</h2>
    <ol>${events.map((e) => html`<li>${fmtTime(e.node_time)} ${e.label}</li>`)}</ol>
    <h2>办理</h2>
    ${offered.length ? html`<div class="btn-row">${offered.map((a) => html`<button type="button" class="btn btn-primary" data-action="${a}">${ACTIONS[a].label}</button>`)}</div>`
      : html`<p class="muted">当前没有需要您办理的操作。</p>`}
    <div id="action-form"></div>`);
  main.querySelectorAll('button[data-action]').forEach((b) => b.addEventListener('click', () => actionForm(main, c, b.dataset.action)));
}

async function actionForm(main, c, action) {
  const spec = ACTIONS[action];
  const grid = await myGrid();
  const formKey = `task:${c.id}:${action}`;
  const st = { photos: [], gps: null };
  const thumbs = new Map();
  const root = $('#action-form', main);
  mount(root, html`<form id="task-form" class="card" novalidate><h3>${spec.label}</h3>
    ${spec.genuine ? html`<fieldset><legend class="req">情况是否属实</legend>
      <label class="check"><input type="radio" name="genuine" value="yes">属实</label>
      <label class="check"><input type="radio" name="genuine" value="no">不属实</label></fieldset>` : ''}
    ${spec.text ? html`<label for="task-text" class="req">${spec.text[1]}</label><textarea id="task-text" maxlength="1000"></textarea>` : ''}
    ${spec.photos ? html`<fieldset><legend class="${spec.photosRequired ? 'req' : ''}">照片${spec.photosRequired ? '（至少一张）' : ''}</legend>
      <div class="photos" id="task-photos"></div>${raw(cameraInputHTML('task-photo', '拍照'))}</fieldset>` : ''}
    ${spec.location ? html`<fieldset><legend class="${spec.locationRequired ? 'req' : ''}">位置</legend>
      <button type="button" class="btn" id="task-gps">获取 GPS 定位</button>
      <label for="task-place">地点描述</label><input id="task-place" type="text" autocomplete="off" maxlength="200">
      <p id="task-loc" role="status"></p></fieldset>` : ''}
    <label for="task-note">备注</label><textarea id="task-note" maxlength="1000"></textarea>
    <div id="task-errors" class="error-list" role="alert"></div>
    <button type="submit" class="btn btn-primary btn-big">提交</button></form>`);
  const form = $('#task-form', root);
  form.addEventListener('input', () => setDirty(formKey, true));
  const drawPhotos = () => {
    const box = $('#task-photos', root);
    if (box) mount(box, html`${st.photos.map((p, i) => html`<figure><img src="${thumbs.get(p.sha256)}" alt="照片 ${i + 1}"><figcaption>${fmtSize(p.size)}</figcaption></figure>`)}`);
  };
  const photoInput = $('#task-photo', root);
  if (photoInput) {
    photoInput.addEventListener('change', async (ev) => {
      const file = ev.target.files[0];
      ev.target.value = '';
      if (!file) return;
      const photo = await compressPhoto(file);
      const ref = await storeBlob(photo.blob, `${spec.label}-${st.photos.length + 1}.jpg`);
      st.photos.push(ref);
      thumbs.set(ref.sha256, URL.createObjectURL(await readBlob(ref.sha256)));
      setDirty(formKey, true);
      drawPhotos();
    });
  }
  const gpsBtn = $('#task-gps', root);
  if (gpsBtn) {
    gpsBtn.addEventListener('click', async () => {
      try {
        st.gps = await gpsPosition();
        $('#task-loc', root).textContent = `GPS：${st.gps.lat.toFixed(5)}, ${st.gps.lng.toFixed(5)}（精度约 ${st.gps.accuracy_m} 米）`;
      } catch (err) { toast(err.message); }
    });
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const errors = [];
    const payload = {};
    const note = $('#task-note', root).value.trim();
    if (note) payload.note = note;
    if (spec.genuine) {
      const g = form.querySelector('input[name=genuine]:checked');
      if (!g) errors.push('请选择情况是否属实'); else payload.genuine = g.value === 'yes';
    }
    if (spec.text) {
      const t = $('#task-text', root).value.trim();
      if (!t) errors.push(`请填写${spec.text[1]}`); else payload[spec.text[0]] = t;
    }
    if (spec.photos) {
      if (spec.photosRequired && !st.photos.length) errors.push('请至少拍摄一张照片');
      payload[spec.photos] = st.photos.map((p) => ({ sha256: p.sha256, mime: p.mime, name: p.name, size: p.size }));
    }
    if (spec.location) {
      const place = $('#task-place', root).value.trim();
      const loc = st.gps ? { ...st.gps, ...(place ? { place } : {}) } : place ? pointFromAddress(grid, place) : null;
      if (loc) payload[spec.location] = loc;
      else if (spec.locationRequired) errors.push('请获取 GPS 定位或填写地点');
    }
    mount($('#task-errors', root), html`${errors.map((e) => html`<div>${e}</div>`)}`);
    if (errors.length) return;
    await finalize({
      transport: 'event', title: `${spec.label} · ${c.number}`, caseId: c.id,
      body: { transition: action, payload, base_version: c.version }, attachments: st.photos,
    });
    setDirty(formKey, false);
    toast('已保存，联网后自动提交');
    go('/tasks');
    syncNow();
  });
}
