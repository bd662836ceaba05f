// Forms driven by the JSON Schemas exported from schemas/ (DESIGN §8): pydantic v2 output with
// $defs/$ref, anyOf-with-null for optional fields, titles and descriptions in Chinese.

import { html, raw } from './ui.js';

const schemaCache = new Map();

/** Load a precached schema from /schemas/<name>.json (works offline). */
export async function loadSchema(name) {
  if (!schemaCache.has(name)) {
    const resp = await fetch(`/schemas/${name}.json`);
    if (!resp.ok) throw new Error(`表单定义 ${name} 缺失`);
    schemaCache.set(name, await resp.json());
  }
  return schemaCache.get(name);
}

export function resolve(root, node) {
  let n = node || {};
  while (n.$ref) {
    // A property's own title ("申请人") wins over its model's class name ("ApplicantInput").
    const { $ref, ...own } = n;
    n = { ...$ref.split('/').slice(1).reduce((acc, k) => acc[k], root), ...own };
  }
  if (n.anyOf) {
    const real = n.anyOf.filter((x) => x.type !== 'null');
    if (real.length === 1) return { ...resolve(root, real[0]), title: n.title || real[0].title, description: n.description, nullable: true, default: n.default };
  }
  return n;
}

const INPUT_HINTS = {
  phone: { type: 'tel', inputmode: 'numeric', autocomplete: 'off' },
  id_card: { type: 'text', inputmode: 'text', autocomplete: 'off' },
};

function fieldId(path) { return `f-${path.replace(/[^a-zA-Z0-9_-]/g, '-')}`; }

// Chinese names for payload fields whose model gives only an English title (pydantic's default
// "Unit Code") and for enum codes: the label a person reads must never be a programme identifier.
export const FIELD_LABELS = {
  note: '备注', instruction: '派遣意见（给处置人的要求）', unit_code: '处置单位', genuine: '情况是否属实',
  result: '处置结果', rework_reason: '返工原因', return_reason_code: '回退原因', return_reason: '回退说明',
  not_filed_reason_code: '不予立案原因', not_filed_reason: '不予立案说明', on_account_reason: '挂账理由',
  plan: '后续处置计划', decision_reason: '审批意见', merged_into: '并入的事件编号', merged_case: '重复上报的事件编号',
  merge_reason: '并单说明', closure_code: '结案类别', reason: '理由', reasons: '理由（每行一条）', items: '需补正的材料（每行一条）',
  opinion: '承办意见', outcome: '办理结果', method: '领取方式', days: '延长工作日数', slot: '预约时段', verified: '已核验原件',
  procedure: '特别程序类别', notice: '告知申请人内容', description: '问题描述', place: '地点',
  location: '地点', source: '来源', emergency: '紧急', check_location: '核查位置', verify_location: '核实位置',
  feedback_location: '处置位置', materials: '申请材料', verify_photos: '核实照片', after_photos: '处置后照片',
  check_photos: '核查照片', photos: '照片',
};

export const ENUM_LABELS = {
  not_genuine: '情况不属实', not_in_scope: '不属于网格管理范围', duplicate: '重复上报', already_solved: '已自行解决',
  insufficient_info: '信息不足', other: '其他', not_our_duty: '不属于本单位职责', wrong_location: '位置有误',
  needs_coordination: '需多部门协调', resolved: '已解决', patrol: '巡查发现', resident: '居民反映', hotline_12345: '12345 转办',
  video: '视频发现', leader_instruction: '领导批示', approved: '准予', rejected: '不予', upheld: '维持',
  in_person: '现场领取', post: '邮寄', online: '网上送达', window: '窗口', individual: '个人',
  refused: '不予许可', courier: '快递送达', e_licence: '电子证照',
};

const CJK = /[\u3400-\u9fff]/;

/** The label a person sees for field `key`: a Chinese title, our dictionary, or the description's head. */
export function fieldLabel(key, p) {
  if (p.title && CJK.test(p.title)) return p.title;
  if (FIELD_LABELS[key]) return FIELD_LABELS[key];
  if (p.description && CJK.test(p.description)) return p.description.split(/[：:，,（(]/)[0];
  return p.title || key;
}

function fieldHint(key, p) {
  if (!p.description) return '';
  const name = fieldLabel(key, p);
  if (name.startsWith(p.description)) return ''; // the label already says it
  const fromDescription = !(p.title && CJK.test(p.title)) && !FIELD_LABELS[key] && CJK.test(p.description);
  if (!fromDescription) return p.description;
  return p.description.slice(name.length).replace(/^[：:，,（(]\s*/, '').replace(/[）)]$/, '');
}

/** A list of photo references (PhotoRef: sha256 + mime) — rendered as a camera field, not text. */
export function isPhotoList(root, p) {
  if (p.type !== 'array') return false;
  const item = resolve(root, p.items);
  return Boolean(item && item.properties && item.properties.sha256);
}

/** A map point (GeoPoint: lng + lat) — rendered as GPS + place, not as two numbers. */
export function isGeoPoint(root, p) {
  return p.type === 'object' && Boolean(p.properties && p.properties.lng && p.properties.lat);
}

/** HTML for the user-facing fields of an object schema. `skip` lists top-level keys handled elsewhere. */
export function fieldsHTML(root, schema, values = {}, { skip = [], prefix = '' } = {}) {
  const s = resolve(root, schema);
  const required = new Set(s.required || []);
  // Required fields first, in the model's declared order (the export sorts keys alphabetically).
  const order = [...(s.required || []), ...Object.keys(s.properties || {}).filter((k) => !required.has(k))];
  return html`${order.filter((k) => !skip.includes(k)).map((key) => [key, s.properties[key]]).map(([key, prop]) => {
    const p = resolve(root, prop);
    const path = prefix ? `${prefix}.${key}` : key;
    const id = fieldId(path);
    const v = values[key];
    if (p.const !== undefined) return '';
    if (p.type === 'object') {
      return html`<fieldset><legend>${fieldLabel(key, p)}</legend>${fieldsHTML(root, p, v || {}, { prefix: path })}</fieldset>`;
    }
    if (p.type === 'array') {
      const item = resolve(root, p.items);
      if (!item || item.type !== 'string') return ''; // photos and other lists: the screen's own widgets
      const starA = required.has(key) ? html`<span class="star" aria-hidden="true"> *</span>` : '';
      if (item.enum) {
        return html`<fieldset id="${id}" data-path="${path}" data-kind="set" aria-describedby="${id}-err"><legend>${fieldLabel(key, p)}${starA}</legend>
          ${item.enum.map((e) => html`<label class="check"><input type="checkbox" value="${e}" ${(v || []).includes(e) ? 'checked' : ''}>${ENUM_LABELS[e] || e}</label>`)}
          </fieldset><div class="field-error" id="${id}-err"></div>`;
      }
      return html`<label for="${id}">${fieldLabel(key, p)}${starA}<span class="hint">每行一条</span></label>
        <textarea id="${id}" name="${path}" data-path="${path}" data-kind="lines" aria-describedby="${id}-err">${(v || []).join('\n')}</textarea>
        <div class="field-error" id="${id}-err"></div>`;
    }
    const star = required.has(key) ? html`<span class="star" aria-hidden="true"> *</span>` : '';
    const name = fieldLabel(key, p);
    const hintText = fieldHint(key, p);
    const label = html`<label for="${id}">${name}${star}${hintText ? html`<span class="hint">${hintText}</span>` : ''}</label>`;
    const common = html`id="${id}" name="${path}" data-path="${path}" ${required.has(key) ? raw('required aria-required="true"') : ''} aria-describedby="${id}-err"`;
    const err = html`<div class="field-error" id="${id}-err"></div>`;
    if (p.enum) {
      return html`${label}<select ${common}><option value="">请选择</option>${p.enum.map((e) => html`<option value="${e}" ${v === e ? 'selected' : ''}>${ENUM_LABELS[e] || e}</option>`)}</select>${err}`;
    }
    if (p.type === 'boolean' && required.has(key) && p.default === undefined) {
      // A required yes/no is a choice the person must make; a checkbox would answer "no" by default.
      return html`<fieldset id="${id}" data-path="${path}" data-kind="yesno" aria-describedby="${id}-err"><legend>${name}${star}</legend>
        <label class="check"><input type="radio" name="${path}" value="yes" ${v === true ? 'checked' : ''}>是</label>
        <label class="check"><input type="radio" name="${path}" value="no" ${v === false ? 'checked' : ''}>否</label></fieldset>${err}`;
    }
    if (p.type === 'boolean') {
      return html`<label class="check"><input type="checkbox" ${common} ${v ? 'checked' : ''}>${name}</label>${err}`;
    }
    if (p.type === 'integer' || p.type === 'number') {
      return html`${label}<input type="number" ${common} value="${v ?? ''}" inputmode="numeric">${err}`;
    }
    if ((p.maxLength || 0) > 200) {
      return html`${label}<textarea ${common} maxlength="${p.maxLength}">${v ?? ''}</textarea>${err}`;
    }
    const hint = INPUT_HINTS[key] || { type: 'text', autocomplete: 'off' };
    return html`${label}<input type="${hint.type}" ${hint.inputmode ? html`inputmode="${hint.inputmode}"` : ''} autocomplete="${hint.autocomplete}" ${common} value="${v ?? ''}" ${p.maxLength ? html`maxlength="${p.maxLength}"` : ''}>${err}`;
  })}`;
}

/** Read the fields rendered by fieldsHTML back into an object (empty optional strings omitted). */
export function readFields(root, schema, form) {
  const out = {};
  for (const el of form.querySelectorAll('[data-path]')) {
    const parts = el.dataset.path.split('.');
    let node = resolve(root, schema);
    for (const part of parts) node = resolve(root, (node.properties || {})[part]);
    let value;
    if (el.dataset.kind === 'yesno') {
      const picked = el.querySelector('input:checked');
      value = picked ? picked.value === 'yes' : undefined;
    } else if (el.dataset.kind === 'set') {
      value = Array.from(el.querySelectorAll('input:checked')).map((x) => x.value);
    } else if (el.dataset.kind === 'lines') {
      value = el.value.split('\n').map((x) => x.trim()).filter(Boolean);
      if (!value.length) value = undefined;
    } else if (el.type === 'checkbox') value = el.checked;
    else if (node.type === 'integer') value = el.value === '' ? undefined : Number.parseInt(el.value, 10);
    else if (node.type === 'number') value = el.value === '' ? undefined : Number(el.value);
    else value = el.value.trim() === '' ? undefined : el.value.trim();
    let target = out;
    for (const part of parts.slice(0, -1)) target = target[part] = target[part] || {};
    if (value !== undefined) target[parts[parts.length - 1]] = value;
  }
  return out;
}

/** Check a value against the schema; errors are [{path, message}] in Chinese. */
export function validate(root, schema, value, path = '') {
  const s = resolve(root, schema);
  const errors = [];
  if (s.type === 'object') {
    const v = value || {};
    for (const key of s.required || []) {
      const p = resolve(root, s.properties[key]);
      if (v[key] === undefined || v[key] === '' || v[key] === null) {
        if (p.const === undefined && p.default === undefined) errors.push({ path: path ? `${path}.${key}` : key, message: `请填写${fieldLabel(key, p)}` });
      }
    }
    for (const [key, sub] of Object.entries(s.properties || {})) {
      if (v[key] !== undefined && v[key] !== null) errors.push(...validate(root, sub, v[key], path ? `${path}.${key}` : key));
    }
    return errors;
  }
  const title = fieldLabel(path.split('.').pop(), s);
  if (s.type === 'string' && typeof value === 'string') {
    if (s.minLength && value.length < s.minLength) errors.push({ path, message: `请填写${title}` });
    if (s.maxLength && value.length > s.maxLength) errors.push({ path, message: `${title}不能超过 ${s.maxLength} 个字` });
    if (s.pattern && !new RegExp(s.pattern, 'u').test(value)) errors.push({ path, message: `${title}格式不正确` });
    if (s.enum && !s.enum.includes(value)) errors.push({ path, message: `请选择${title}` });
  }
  if (s.type === 'array' && Array.isArray(value)) {
    if (s.minItems && value.length < s.minItems) errors.push({ path, message: `${title}至少 ${s.minItems} 项` });
    if (s.maxItems && value.length > s.maxItems) errors.push({ path, message: `${title}最多 ${s.maxItems} 项` });
  }
  return errors;
}

/** GB 11643-1999 check digit (ISO 7064 MOD 11-2), as the node checks it. */
export function idCardValid(id) {
  const s = String(id || '').toUpperCase();
  if (!/^\d{17}[\dX]$/.test(s)) return false;
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = w.reduce((acc, wi, i) => acc + wi * Number(s[i]), 0);
  return '10X98765432'[sum % 11] === s[17];
}

/** Show errors next to their fields; returns true when there were none. */
export function showErrors(form, errors) {
  for (const el of form.querySelectorAll('[data-path]')) {
    el.removeAttribute('aria-invalid');
    const box = form.querySelector(`#${el.id}-err`);
    if (box) box.textContent = '';
  }
  let first = null;
  for (const e of errors) {
    const el = form.querySelector(`[data-path="${e.path.replace(/^payload\./, '')}"]`);
    if (!el) continue;
    el.setAttribute('aria-invalid', 'true');
    const box = form.querySelector(`#${el.id}-err`);
    if (box) box.textContent = e.message;
    first = first || el;
  }
  if (first) first.focus();
  return errors.length === 0;
}
