// One transition of any case kind as a form: the payload's JSON Schema (from the case detail or the
// kind's declaration) drawn by schemaform.js, with the fields a schema cannot draw well given their
// own widgets — photos from the camera, a location from GPS or a typed place, the unit a case is
// dispatched to. Submitting never needs the network: the act goes into the outbox (a signed
// `case_event` envelope on an enrolled tablet, else the REST event) with the case version it was
// based on, and is shown as 待上传 until the node has accepted it.

import { $, fmtSize, html, mount, raw, toast } from './ui.js';
import { cachedGet } from './data.js';
import { fieldsHTML, fieldLabel, isGeoPoint, isPhotoList, readFields, resolve, showErrors, validate } from './schemaform.js';
import { finalize, readBlob, storeBlob } from './outbox.js';
import { compressPhoto, cameraInputHTML } from './photos.js';
import { gpsPosition, myGrid, pointFromAddress } from './geo.js';
import { getDevice } from './device.js';
import { setDirty, state } from './state.js';

// Payload fields of transitions declared without a model yet (`required` only): their shapes as the
// kinds' guards check them (hall: reasons/items are lists, days a whole number, outcome and method codes).
const FALLBACK_FIELDS = {
  reasons: { type: 'array', items: { type: 'string', maxLength: 200 } },
  items: { type: 'array', items: { type: 'string', maxLength: 200 } },
  verified: { type: 'array', items: { type: 'string' } },
  days: { type: 'integer', minimum: 1 },
  outcome: { type: 'string', enum: ['approved', 'refused'] },
  method: { type: 'string', enum: ['window', 'courier', 'e_licence', 'post'] },
};

/** The payload schema of an action: the node's JSON Schema, else one built from its required fields. */
export function schemaFor(action, c) {
  let schema = action.schema;
  if (!schema) {
    const properties = { note: { type: 'string', maxLength: 1000, description: '备注' } };
    for (const f of action.required || []) properties[f] = FALLBACK_FIELDS[f] || { type: 'string', maxLength: 1000 };
    schema = { type: 'object', properties, required: [...(action.required || [])] };
  }
  // Originals to tick off come from the case itself (the item's checklist), not from the schema.
  const originals = (c.data && c.data.originals_required) || null;
  if (originals && schema.properties && schema.properties.verified) {
    const v = resolve(schema, schema.properties.verified);
    if (v.type === 'array') {
      schema = { ...schema, properties: { ...schema.properties, verified: { ...v, title: '已核验原件的材料', items: { type: 'string', enum: originals } } } };
    }
  }
  return schema;
}

async function unitOptions(c) {
  // Where a case may be dispatched: the district's departments (shipped with the app), the street's
  // 一队三中心 and the case's own grid (属地管理), as the dispatch guard allows.
  const out = [];
  try {
    const org = await (await fetch('/data/tianhe_org.json')).json();
    for (const d of org.departments || []) out.push([d.code, `${d.name}（区职能部门）`]);
  } catch (_) { /* offline without the shell: the typed code still works */ }
  try {
    const r = await cachedGet('/api/v1/org/units');
    for (const u of r.data.units || []) {
      if (u.kind === 'business_unit') out.push([u.code, `${u.name}（一队三中心）`]);
      if (u.kind === 'grid' && u.path === c.org_path) out.push([u.code, `${u.name}（本网格）`]);
    }
  } catch (_) { /* cached list missing */ }
  return out;
}

function photoField(key, p, required) {
  return html`<fieldset class="photo-field" data-photos="${key}"><legend>${fieldLabel(key, p)}${required ? html`<span class="star" aria-hidden="true"> *</span>` : ''}</legend>
    <div class="photos" id="ph-${key}"></div>${raw(cameraInputHTML(`ph-in-${key}`, '拍照'))}
    <div class="field-error" id="f-${key}-err"></div></fieldset>`;
}

function geoField(key, p, required) {
  return html`<fieldset data-geo="${key}"><legend>${fieldLabel(key, p)}${required ? html`<span class="star" aria-hidden="true"> *</span>` : ''}</legend>
    <button type="button" class="btn" id="gps-${key}">获取 GPS 定位</button>
    <label for="place-${key}">地点描述</label><input id="place-${key}" type="text" autocomplete="off" maxlength="200">
    <p id="loc-${key}" role="status"></p><div class="field-error" id="f-${key}-err"></div></fieldset>`;
}

/** Draw the form for `action` on case `c` into `root`; `done(item)` runs after the act is queued. */
export async function actionForm(root, c, action, done) {
  const schema = schemaFor(action, c);
  const s = resolve(schema, schema);
  const props = s.properties || {};
  const required = new Set(s.required || []);
  const photoKeys = Object.keys(props).filter((k) => isPhotoList(schema, resolve(schema, props[k])));
  const geoKeys = Object.keys(props).filter((k) => isGeoPoint(schema, resolve(schema, props[k])));
  const units = props.unit_code ? await unitOptions(c) : [];
  const formKey = `case:${c.id}:${action.name}`;
  const st = { photos: Object.fromEntries(photoKeys.map((k) => [k, []])), gps: {} };
  const thumbs = new Map();
  mount(root, html`<form id="act-form" class="card act-form" novalidate aria-labelledby="act-title">
    <h3 id="act-title">${action.label}</h3>
    ${action.legal_basis ? html`<p class="small muted">依据：${action.legal_basis}</p>` : ''}
    ${onBehalfOf(c, action) ? html`<p class="small">代处置单位 ${c.data.unit_name || c.data.unit_code} 登记</p>` : ''}
    ${units.length ? html`<label for="unit-pick">选择处置单位<span class="star" aria-hidden="true"> *</span></label>
      <select id="unit-pick" aria-describedby="unit-pick-err"><option value="">请选择</option>${units.map(([code, name]) => html`<option value="${code}">${name}</option>`)}</select>
      <div class="field-error" id="unit-pick-err"></div>` : ''}
    ${raw(String(fieldsHTML(schema, schema, {}, { skip: [...photoKeys, ...geoKeys, ...(units.length ? ['unit_code'] : [])] })))}
    ${photoKeys.map((k) => photoField(k, resolve(schema, props[k]), required.has(k) || (resolve(schema, props[k]).minItems || 0) > 0))}
    ${geoKeys.map((k) => geoField(k, resolve(schema, props[k]), required.has(k)))}
    <div id="act-errors" class="error-list" role="alert"></div>
    <div class="btn-row"><button type="submit" class="btn btn-primary btn-big">确认${action.label}</button>
      <button type="button" class="btn" id="act-cancel">取消</button></div></form>`);
  const form = $('#act-form', root);
  form.addEventListener('input', () => setDirty(formKey, true));
  form.addEventListener('change', (ev) => {
    // An answered field loses its old error at once, not only at the next submit.
    const field = ev.target.closest('[data-path]');
    if (!field) return;
    field.removeAttribute('aria-invalid');
    const box = root.querySelector(`#${field.id}-err`);
    if (box) box.textContent = '';
  });
  $('#act-cancel', root).addEventListener('click', () => { setDirty(formKey, false); mount(root, ''); });
  for (const key of photoKeys) {
    $(`#ph-in-${key}`, root).addEventListener('change', async (ev) => {
      const file = ev.target.files[0];
      ev.target.value = '';
      if (!file) return;
      const photo = await compressPhoto(file);
      const ref = await storeBlob(photo.blob, `${action.label}-${st.photos[key].length + 1}.jpg`);
      st.photos[key].push(ref);
      thumbs.set(ref.sha256, URL.createObjectURL(await readBlob(ref.sha256)));
      setDirty(formKey, true);
      mount($(`#ph-${key}`, root), html`${st.photos[key].map((x, i) => html`<figure><img src="${thumbs.get(x.sha256)}" alt="照片 ${i + 1}"><figcaption>${fmtSize(x.size)}</figcaption></figure>`)}`);
    });
  }
  for (const key of geoKeys) {
    $(`#gps-${key}`, root).addEventListener('click', async () => {
      try {
        st.gps[key] = await gpsPosition();
        $(`#loc-${key}`, root).textContent = `GPS：${st.gps[key].lat.toFixed(5)}, ${st.gps[key].lng.toFixed(5)}（精度约 ${st.gps[key].accuracy_m} 米）`;
      } catch (err) { toast(err.message); }
    });
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const payload = readFields(schema, schema, form);
    if (units.length) {
      const picked = $('#unit-pick', root).value;
      if (picked) payload.unit_code = picked;
    }
    const attachments = [];
    for (const key of photoKeys) {
      if (st.photos[key].length) payload[key] = st.photos[key].map((x) => ({ sha256: x.sha256, mime: x.mime, name: x.name, size: x.size }));
      attachments.push(...st.photos[key]);
    }
    if (geoKeys.length) {
      const grid = await myGrid();
      for (const key of geoKeys) {
        const place = $(`#place-${key}`, root).value.trim();
        const loc = st.gps[key] ? { ...st.gps[key], ...(place ? { place } : {}) } : place ? pointFromAddress(grid, place) : null;
        if (loc) payload[key] = loc;
      }
    }
    const errors = validate(schema, schema, payload).map((e) => (units.length && e.path === 'unit_code' ? { ...e, message: '请选择处置单位' } : e));
    showErrors(form, errors);
    for (const key of [...photoKeys, ...geoKeys]) {
      const box = $(`#f-${key}-err`, root);
      const e = errors.find((x) => x.path === key);
      box.textContent = e ? (photoKeys.includes(key) ? '请至少拍摄一张照片' : '请获取 GPS 定位或填写地点') : '';
    }
    if (units.length) $('#unit-pick-err', root).textContent = errors.some((e) => e.path === 'unit_code') ? '请选择处置单位' : '';
    mount($('#act-errors', root), html`${errors.length ? html`<div>请按提示补全后再提交（${errors.length} 项）</div>` : ''}`);
    if (errors.length) return;
    const item = await queueAct(c, action, payload, attachments);
    setDirty(formKey, false);
    done(item);
  });
  const first = form.querySelector('select, input, textarea');
  if (first) first.focus();
}

/** Queue the act: a signed case_event envelope when this tablet is enrolled, else the REST event. */
export async function queueAct(c, action, payload, attachments = []) {
  const device = await getDevice();
  const title = `${action.label} · ${c.number || c.id}`;
  const common = { title, caseId: c.id, attachments, transitionLabel: action.label };
  const behalf = onBehalfOf(c, action);
  const body = { case_id: c.id, transition: action.name, payload, base_version: c.version, ...(behalf ? { on_behalf_of: behalf } : {}) };
  if (device && device.device_id) {
    return finalize({ ...common, kind: 'case_event', formId: 'case_event', formVersion: '1', payload: body, orgPath: c.org_path || (state.user && state.user.org_path) });
  }
  const { case_id: _, ...rest } = body;
  return finalize({ ...common, transport: 'event', body: rest });
}

/** A dispatcher records a department's or 一队三中心's handling steps on its behalf (the unit has no
 *  tablet): the act names that unit, as the grid's handling rule requires. */
export function onBehalfOf(c, action) {
  const unit = c.data && c.data.unit_code;
  if (!state.user || state.user.role !== 'dispatcher' || !unit || ['dispatch', 'redispatch'].includes(action.name)) return null;
  return unit;
}
