// 新建申请: the service_application form, driven by its exported JSON Schema, with materials
// photographed against the item's checklist. Autosaved as a draft on every change; finalized into
// the outbox, so it works offline and a local receipt prints at once.

import { $, dialog, fmtSize, html, mount, raw, toast } from '../ui.js';
import { fieldsHTML, idCardValid, loadSchema, readFields, showErrors, validate } from '../schemaform.js';
import { discardDraft, finalize, loadDraft, readBlob, saveDraft, storeBlob } from '../outbox.js';
import { compressPhoto, cameraInputHTML } from '../photos.js';
import { loadItem } from './catalogue.js';
import { setDirty } from '../state.js';
import { uuid7 } from '../crypto.js';
import { go } from '../router.js';
import { syncNow } from '../actions.js';

const SCHEMA = 'service_application';
const FORM_VERSION = '1';

export async function render(main, [code]) {
  const formKey = `apply:${code}`;
  const [schema, itemRes] = await Promise.all([loadSchema(SCHEMA), loadItem(code).catch((e) => ({ error: e }))]);
  if (itemRes.error) {
    mount(main, html`<h1>新建申请</h1><p class="error-list">${itemRes.error.message}</p>`);
    return;
  }
  const spec = itemRes.item.spec || {};
  const draft = await loadDraft(formKey);
  const data = draft ? draft.data : { values: {}, materials: [], caseId: uuid7() };
  const thumbs = new Map();

  mount(main, html`<h1>新建申请：${spec.name}</h1>
    ${draft ? html`<p class="stale" role="status">已恢复未完成的草稿（${new Date(draft.data.savedAt || Date.now()).toLocaleTimeString('zh-CN')} 自动保存）</p>` : ''}
    <form id="apply-form" novalidate>
      ${raw(String(fieldsHTML(schema, schema, data.values, { skip: ['case_id', 'item_code', 'materials'] })))}
      <h2>申请材料（拍照留存）</h2>
      <p class="muted small">照片在本机压缩（长边不超过 2048 像素）并去除位置等拍摄信息后加密保存，联网后上传。</p>
      <div id="materials"></div>
      <div id="apply-errors" class="error-list" role="alert"></div>
      <div class="btn-row">
        <button type="submit" class="btn btn-primary btn-big">确认收件并生成回执</button>
        <button type="button" class="btn btn-danger" id="apply-discard">放弃此草稿</button>
      </div>
    </form>`);
  const form = $('#apply-form', main);

  const drawMaterials = async () => {
    const rows = [];
    (spec.materials || []).forEach((m, i) => {
      const mine = data.materials.filter((x) => x.material === m.name);
      rows.push(html`<div class="card" data-material="${i}">
        <p><strong>${m.name}</strong> <span class="badge ${m.required ? 'st-finalized' : 'st-draft'}">${m.required ? '必需' : '视情况'}</span>
          <span class="small muted">${m.original_or_copy === 'original' ? '原件' : '复印件'}${m.note ? ` · ${m.note}` : ''}</span></p>
        <div class="photos">${mine.map((x) => html`<figure><img src="${thumbs.get(x.sha256) || ''}" alt="${m.name} 照片 ${x.file_name}">
          <figcaption>${fmtSize(x.size)} <button type="button" class="btn" data-remove="${x.file_name}" aria-label="删除 ${x.file_name}">删除</button></figcaption></figure>`)}</div>
        ${raw(cameraInputHTML(`mat-${i}`, `拍摄「${m.name}」`))}
      </div>`);
    });
    const total = data.materials.reduce((a, x) => a + x.size, 0);
    mount($('#materials', main), html`${rows}<p class="muted" role="status">已拍摄 ${data.materials.length} 张照片，共 ${fmtSize(total)}</p>`);
  };

  for (const x of data.materials) {
    const blob = await readBlob(x.sha256);
    if (blob) thumbs.set(x.sha256, URL.createObjectURL(blob));
  }
  await drawMaterials();

  const save = async () => {
    data.values = readFields(schema, schema, form);
    data.savedAt = new Date().toISOString();
    await saveDraft(formKey, { kind: 'service_application', title: `办件申请 · ${spec.name}` }, data,
      data.materials.map((x) => ({ name: x.file_name, sha256: x.sha256, size: x.size, mime: x.mime })));
    setDirty(formKey, true);
  };

  form.addEventListener('input', (ev) => { if (ev.target.type !== 'file') save(); });
  form.addEventListener('change', async (ev) => {
    const input = ev.target;
    if (input.type !== 'file' || !input.files.length) return;
    const i = Number(input.id.replace('mat-', ''));
    const m = spec.materials[i];
    const file = input.files[0];
    input.value = '';
    try {
      const photo = await compressPhoto(file);
      const n = data.materials.filter((x) => x.material === m.name).length + 1;
      const ref = await storeBlob(photo.blob, `${m.name}-${n}.jpg`);
      data.materials.push({ material: m.name, file_name: ref.name, sha256: ref.sha256, size: ref.size, mime: 'image/jpeg',
        width: photo.width, height: photo.height });
      thumbs.set(ref.sha256, URL.createObjectURL(photo.blob));
      await save();
      await drawMaterials();
      toast(`已保存照片（${photo.width}×${photo.height}，${fmtSize(photo.size)}）`);
    } catch (err) {
      toast(`照片处理失败：${err.message}`);
    }
  });
  $('#materials', main).addEventListener('click', async (ev) => {
    const name = ev.target.closest('button[data-remove]')?.dataset.remove;
    if (!name) return;
    data.materials = data.materials.filter((x) => x.file_name !== name);
    await save();
    await drawMaterials();
  });
  $('#apply-discard', main).addEventListener('click', async () => {
    await discardDraft(formKey);
    setDirty(formKey, false);
    go(`/item/${encodeURIComponent(code)}`);
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    data.values = readFields(schema, schema, form);
    const payload = {
      case_id: data.caseId, item_code: spec.implementation_code || code,
      applicant: { applicant_type: 'individual', ...(data.values.applicant || {}) },
      materials: data.materials.map(({ material, file_name, sha256, size, mime }) => ({ material, file_name, sha256, size, mime })),
      note: data.values.note || '',
    };
    const errors = validate(schema, schema, payload);
    const a = payload.applicant;
    if (a.id_card && !idCardValid(a.id_card)) errors.push({ path: 'applicant.id_card', message: '居民身份证号码校验位不正确，请核对' });
    if (a.phone && !/^1\d{10}$/.test(a.phone)) errors.push({ path: 'applicant.phone', message: '请输入 11 位手机号码' });
    if (!showErrors(form, errors)) return;
    const missing = (spec.materials || []).filter((m) => m.required && m.copies > 0
      && !data.materials.some((x) => x.material === m.name)).map((m) => m.name);
    if (missing.length) {
      const ok = await dialog({ title: '材料未拍摄', body: html`<p>以下必需材料尚未拍摄：${missing.join('、')}。</p><p>如已收取纸质材料，可继续收件。</p>`,
        buttons: [{ label: '继续收件', value: true, cls: 'btn-primary' }, { label: '返回拍摄', value: false }] });
      if (!ok) return;
    }
    const item = await finalize({
      formKey, kind: 'service_application', formId: SCHEMA, formVersion: FORM_VERSION, title: `办件申请 · ${spec.name}`,
      payload, attachments: data.materials.map((x) => ({ name: x.file_name, sha256: x.sha256, size: x.size, mime: x.mime })),
    });
    setDirty(formKey, false);
    toast('已收件，回执已生成；联网后自动上传');
    go(`/receipt/${item.id}`);
    syncNow();
  });
  return () => { for (const url of thumbs.values()) URL.revokeObjectURL(url); };
}
