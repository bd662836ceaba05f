// 上报事件: category, photos (compressed, EXIF stripped), location (GPS or address), description.
// Saved as a draft on every change and queued as an `incident_report` envelope: works offline.

import { $, fmtSize, html, isoLocal, mount, raw, toast } from '../ui.js';
import { cachedGet, staleNote } from '../data.js';
import { discardDraft, finalize, loadDraft, readBlob, saveDraft, storeBlob } from '../outbox.js';
import { compressPhoto, cameraInputHTML } from '../photos.js';
import { gpsPosition, inside, myGrid, pointFromAddress } from '../geo.js';
import { loadSchema } from '../schemaform.js';
import { setDirty } from '../state.js';
import { syncNow } from '../actions.js';

const FORM = 'report';
const SOURCE_LABELS = { patrol: '巡查发现', resident: '居民反映', hotline_12345: '12345 转办', video: '视频发现', leader_instruction: '领导批示' };

export async function loadCategories() {
  const r = await cachedGet('/api/v1/grid/categories', { fallbackUrl: '/data/incident_categories.json' });
  return { ...r, categories: (r.data.categories || []).filter((c) => c.active !== false) };
}

export async function render(main) {
  const [cats, schema, grid, draft] = await Promise.all([loadCategories(), loadSchema('incident_report'), myGrid(), loadDraft(FORM)]);
  const data = draft ? draft.data : { category: null, photos: [], gps: null, place: '', description: '', source: 'patrol' };
  // GPS when there is a fix (with the typed place as a note), else the address (or grid centre).
  const location = () => (data.gps ? { ...data.gps, ...(data.place ? { place: data.place } : {}) }
    : data.place ? pointFromAddress(grid, data.place) : null);
  const thumbs = new Map();
  for (const p of data.photos) { const b = await readBlob(p.sha256); if (b) thumbs.set(p.sha256, URL.createObjectURL(b)); }
  const sources = (schema.properties.source && schema.properties.source.enum) || Object.keys(SOURCE_LABELS);
  const majors = [...new Set(cats.categories.map((c) => c.major_class))];

  mount(main, html`<h1>上报事件</h1>${staleNote(cats)}
    ${draft ? html`<p class="stale" role="status">已恢复未完成的草稿</p>` : ''}
    <form id="report-form" novalidate>
      <fieldset><legend class="req">事件类别</legend>
        <label for="cat-filter">筛选类别</label>
        <input id="cat-filter" type="search" autocomplete="off" placeholder="输入关键字，如 垃圾、占道">
        <p id="cat-chosen" role="status" class="muted"></p>
        <div id="cat-groups"></div>
      </fieldset>
      <fieldset><legend class="req">现场照片（至少一张）</legend>
        <div class="photos" id="photo-list"></div>
        ${raw(cameraInputHTML('photo-input', '拍照'))}
        <p class="small muted" id="photo-sum" role="status"></p>
      </fieldset>
      <fieldset><legend class="req">位置</legend>
        <div class="btn-row"><button type="button" class="btn" id="gps">获取 GPS 定位</button></div>
        <label for="place">地点描述（无 GPS 时必填）<span class="hint">例如：石牌东路 12 号门前</span></label>
        <input id="place" type="text" list="grid-addresses" autocomplete="off" value="${data.place}" maxlength="200">
        <datalist id="grid-addresses">${((grid && grid.addresses) || []).map((a) => html`<option value="${a.address || a.name}"></option>`)}</datalist>
        <p id="loc-status" role="status"></p>
      </fieldset>
      <label for="source">来源</label>
      <select id="source">${sources.map((s) => html`<option value="${s}" ${data.source === s ? 'selected' : ''}>${SOURCE_LABELS[s] || s}</option>`)}</select>
      <label for="description" class="req">问题描述</label>
      <textarea id="description" maxlength="1000" required aria-describedby="desc-err">${data.description}</textarea>
      <div id="desc-err" class="field-error"></div>
      <div id="report-errors" class="error-list" role="alert"></div>
      <div class="btn-row">
        <button type="submit" class="btn btn-primary btn-big">提交上报</button>
        <button type="button" class="btn btn-danger" id="report-discard">清空重填</button>
      </div>
    </form>`);
  const form = $('#report-form', main);

  const drawCats = () => {
    const q = $('#cat-filter', main).value.trim();
    const groups = majors.map((m) => [m, cats.categories.filter((c) => c.major_class === m
      && (!q || `${c.name}${c.minor_class}${c.major_class}`.includes(q)))]).filter(([, list]) => list.length);
    mount($('#cat-groups', main), html`${groups.map(([m, list]) => html`<h3>${m}</h3><div class="chips">${list.map((c) => html`<button type="button" class="chip" data-code="${c.code}"
      aria-pressed="${data.category === c.code ? 'true' : 'false'}">${c.name}${c.emergency ? '（紧急）' : ''}</button>`)}</div>`)}`);
    const chosen = cats.categories.find((c) => c.code === data.category);
    $('#cat-chosen', main).textContent = chosen ? `已选：${chosen.major_class} / ${chosen.name}（处置时限 ${chosen.time_limit_label || ''}）` : '尚未选择类别';
  };
  const drawPhotos = () => {
    mount($('#photo-list', main), html`${data.photos.map((p, i) => html`<figure><img src="${thumbs.get(p.sha256) || ''}" alt="现场照片 ${i + 1}">
      <figcaption>${fmtSize(p.size)} <button type="button" class="btn" data-remove="${p.sha256}" aria-label="删除照片 ${i + 1}">删除</button></figcaption></figure>`)}`);
    const total = data.photos.reduce((a, p) => a + p.size, 0);
    $('#photo-sum', main).textContent = data.photos.length ? `${data.photos.length} 张照片 共 ${fmtSize(total)}` : '尚未拍照';
  };
  const drawLocation = () => {
    const l = location();
    let text = data.place && !l ? '无法按地址定位（本机没有网格资料），请获取 GPS 定位' : '尚未定位';
    if (l && !data.gps) text = `使用地址：${l.place}${l.accuracy_m >= 500 ? '（按网格中心近似定位）' : ''}`;
    else if (l) text = `GPS：${l.lat.toFixed(5)}, ${l.lng.toFixed(5)}（精度约 ${l.accuracy_m} 米）`;
    if (l && grid && grid.polygon && !inside(grid.polygon, l.lng, l.lat)) text += ' ⚠ 该位置不在您的网格内，节点可能退回';
    $('#loc-status', main).textContent = text;
  };
  drawCats(); drawPhotos(); drawLocation();

  const save = async () => {
    data.description = $('#description', main).value;
    data.source = $('#source', main).value;
    data.place = $('#place', main).value.trim();
    await saveDraft(FORM, { kind: 'incident_report', title: '事件上报' }, data,
      data.photos.map((p) => ({ name: p.name, sha256: p.sha256, size: p.size, mime: p.mime })));
    setDirty(FORM, true);
  };

  $('#cat-filter', main).addEventListener('input', drawCats);
  $('#cat-groups', main).addEventListener('click', async (ev) => {
    const code = ev.target.closest('button[data-code]')?.dataset.code;
    if (!code) return;
    data.category = code;
    drawCats();
    await save();
  });
  $('#photo-input', main).addEventListener('change', async (ev) => {
    const file = ev.target.files[0];
    ev.target.value = '';
    if (!file) return;
    try {
      const photo = await compressPhoto(file);
      const ref = await storeBlob(photo.blob, `现场照片-${data.photos.length + 1}.jpg`);
      data.photos.push({ ...ref, mime: 'image/jpeg', width: photo.width, height: photo.height });
      thumbs.set(ref.sha256, URL.createObjectURL(photo.blob));
      drawPhotos();
      await save();
    } catch (err) { toast(`照片处理失败：${err.message}`); }
  });
  $('#photo-list', main).addEventListener('click', async (ev) => {
    const sha = ev.target.closest('button[data-remove]')?.dataset.remove;
    if (!sha) return;
    data.photos = data.photos.filter((p) => p.sha256 !== sha);
    data.photos.forEach((p, i) => { p.name = `现场照片-${i + 1}.jpg`; });
    drawPhotos();
    await save();
  });
  $('#gps', main).addEventListener('click', async () => {
    $('#loc-status', main).textContent = '正在定位…';
    try {
      data.gps = await gpsPosition();
    } catch (err) { toast(err.message); }
    drawLocation();
    await save();
  });
  form.addEventListener('input', async (ev) => {
    if (ev.target.id === 'cat-filter' || ev.target.type === 'file') return;
    await save();
    if (ev.target.id === 'place') drawLocation();
  });
  $('#report-discard', main).addEventListener('click', async () => {
    await discardDraft(FORM);
    setDirty(FORM, false);
    render(main);
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    await save();
    const errors = [];
    if (!data.category) errors.push('请选择事件类别');
    if (!data.photos.length) errors.push('请至少拍摄一张现场照片');
    const loc = location();
    if (!loc) errors.push('请获取 GPS 定位或填写地点');
    const desc = data.description.trim();
    $('#desc-err', main).textContent = desc ? '' : '请填写问题描述';
    if (!desc) errors.push('请填写问题描述');
    mount($('#report-errors', main), html`${errors.length ? html`<ul>${errors.map((e) => html`<li>${e}</li>`)}</ul>` : ''}`);
    if (errors.length) { (desc ? $('#report-errors', main) : $('#description', main)).focus(); return; }
    const payload = { category_code: data.category, location: loc, description: desc, source: data.source, occurred_at: isoLocal() };
    const cat = cats.categories.find((c) => c.code === data.category);
    const item = await finalize({
      formKey: FORM, kind: 'incident_report', formId: 'incident_report', formVersion: '1', title: `事件上报 · ${cat ? cat.name : data.category}`,
      payload, attachments: data.photos.map((p) => ({ name: p.name, sha256: p.sha256, size: p.size, mime: p.mime })),
    });
    setDirty(FORM, false);
    mount(main, html`<h1>上报已保存</h1><div class="card" role="status">
      <p>「${item.title}」已保存在本机（本机编号 <strong>${item.localNo}</strong>），联网后自动上传。</p>
      <div class="btn-row"><a class="btn btn-primary" href="#/report" id="report-again">再报一件</a><a class="btn" href="#/outbox">查看待上传</a></div></div>`);
    $('#report-again', main).addEventListener('click', (e) => { e.preventDefault(); render(main); });
    syncNow();
  });
  return () => { for (const url of thumbs.values()) URL.revokeObjectURL(url); };
}
