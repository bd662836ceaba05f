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
      return html`<fieldset><legend>${p.title || key}</legend>${fieldsHTML(root, p, v || {}, { prefix: path })}</fieldset>`;
    }
    if (p.type === 'array') return '';
    const star = required.has(key) ? html`<span class="star" aria-hidden="true"> *</span>` : '';
    const label = html`<label for="${id}">${p.title || key}${star}${p.description ? html`<span class="hint">${p.description}</span>` : ''}</label>`;
    const common = html`id="${id}" name="${path}" data-path="${path}" ${required.has(key) ? raw('required aria-required="true"') : ''} aria-describedby="${id}-err"`;
    const err = html`<div class="field-error" id="${id}-err"></div>`;
    if (p.enum) {
      return html`${label}<select ${common}><option value="">请选择</option>${p.enum.map((e) => html`<option value="${e}" ${v === e ? 'selected' : ''}>${e}</option>`)}</select>${err}`;
    }
    if (p.type === 'boolean') {
      return html`<label class="check"><input type="checkbox" ${common} ${v ? 'checked' : ''}>${p.title || key}</label>${err}`;
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
    if (el.type === 'checkbox') value = el.checked;
    else if (node.type === 'integer') value = el.value === '' ? undefined : Number.parseInt(el.value, 10);
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
        if (p.const === undefined && p.default === undefined) errors.push({ path: path ? `${path}.${key}` : key, message: `请填写${p.title || key}` });
      }
    }
    for (const [key, sub] of Object.entries(s.properties || {})) {
      if (v[key] !== undefined && v[key] !== null) errors.push(...validate(root, sub, v[key], path ? `${path}.${key}` : key));
    }
    return errors;
  }
  const title = s.title || path;
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
