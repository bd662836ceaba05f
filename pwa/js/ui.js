// Render helpers without a framework: escaped templates, DOM lookup, dialogs, toasts, time formats.

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ESC[c]);
}

/** Tagged template: interpolations are escaped unless wrapped with raw(). Arrays are joined. */
export function html(strings, ...values) {
  let out = '';
  strings.forEach((s, i) => {
    out += s;
    if (i < values.length) out += fmt(values[i]);
  });
  return new Raw(out);
}

class Raw { constructor(s) { this.s = s; } toString() { return this.s; } }
export function raw(s) { return new Raw(s); }

function fmt(v) {
  if (v instanceof Raw) return v.s;
  if (Array.isArray(v)) return v.map(fmt).join('');
  if (v === null || v === undefined || v === false) return '';
  return esc(v);
}

export function $(sel, root = document) { return root.querySelector(sel); }
export function $$(sel, root = document) { return Array.from(root.querySelectorAll(sel)); }

export function mount(el, content) {
  el.innerHTML = String(content);
  return el;
}

let toastTimer = null;
export function toast(message, ms = 3500) {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), ms);
}

/** A modal dialog; resolves with the value of the button pressed (buttons: [{label, value, cls}]). */
export function dialog({ title, body, buttons }) {
  return new Promise((resolve) => {
    const root = document.getElementById('dialog-root');
    const dlg = document.createElement('dialog');
    dlg.setAttribute('aria-labelledby', 'dlg-title');
    dlg.innerHTML = String(html`<h2 id="dlg-title">${title}</h2><div class="dlg-body">${body}</div>
      <div class="btn-row">${buttons.map((b, i) => html`<button type="button" class="btn ${b.cls || ''}" data-i="${i}">${b.label}</button>`)}</div>`);
    root.appendChild(dlg);
    dlg.addEventListener('click', (ev) => {
      const i = ev.target.closest('button[data-i]')?.dataset.i;
      if (i === undefined) return;
      dlg.close();
      dlg.remove();
      resolve(buttons[Number(i)].value);
    });
    dlg.addEventListener('cancel', (ev) => { ev.preventDefault(); });
    dlg.showModal();
  });
}

const TZ = 'Asia/Shanghai';

export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString('zh-CN', { timeZone: TZ, hour12: false, month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
}

/** With the year, for what is printed and kept (a receipt outlives the year it was issued in). */
export function fmtDateTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString('zh-CN', { timeZone: TZ, hour12: false, year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit' });
}

export function fmtDate(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleDateString('zh-CN', { timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit' });
}

export function fmtHM(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleTimeString('zh-CN', { timeZone: TZ, hour12: false, hour: '2-digit', minute: '2-digit' });
}

/** RFC 3339 with the device's UTC offset, as the envelope's created_at_device requires. */
export function isoLocal(d = new Date()) {
  const p = (n, w = 2) => String(n).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
    + `${sign}${p(Math.floor(a / 60))}:${p(a % 60)}`;
}

export function fmtSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Masks for lists, the same as server/domain/personal.py: 138****5678, 4401**********1234, 欧**明. */
export function maskPhone(p) {
  const s = String(p || '').replace(/\s/g, '');
  return s.length <= 7 ? '*'.repeat(s.length) : `${s.slice(0, 3)}${'*'.repeat(s.length - 7)}${s.slice(-4)}`;
}

export function maskId(id) {
  const s = String(id || '').replace(/\s/g, '');
  return s.length <= 8 ? '*'.repeat(s.length) : `${s.slice(0, 4)}${'*'.repeat(s.length - 8)}${s.slice(-4)}`;
}

export function maskName(n) {
  const s = Array.from(String(n || '').trim());
  if (s.length <= 1) return '*'.repeat(s.length);
  if (s.length === 2) return `${s[0]}*`;
  return `${s[0]}${'*'.repeat(s.length - 2)}${s[s.length - 1]}`;
}
