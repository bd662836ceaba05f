// 办事指南: search the service catalogue and read an item's guide with its materials checklist.

import { $, esc, html, mount } from '../ui.js';
import { cachedGet, staleNote } from '../data.js';

const BUILTIN = '/data/service_items.json';

function fromBuiltin(data) {
  // The shipped catalogue file has specs only; shape it like the node's list rows.
  return (data.items || []).map((s) => ({ code: s.implementation_code, name: s.name, aliases: s.aliases || [],
    item_type: s.item_type, level: s.level, statutory_limit_wd: s.statutory_limit_wd, promised_limit_wd: s.promised_limit_wd, spec: s }));
}

export async function loadCatalogue() {
  const r = await cachedGet('/api/v1/catalogue/items?limit=200', { auth: false, fallbackUrl: BUILTIN });
  return { ...r, items: r.builtin ? fromBuiltin(r.data) : r.data.items };
}

export async function loadItem(code) {
  try {
    const r = await cachedGet(`/api/v1/catalogue/items/${encodeURIComponent(code)}`, { auth: false, fallbackUrl: BUILTIN });
    if (r.builtin) {
      const item = fromBuiltin(r.data).find((i) => i.code === code);
      if (!item) throw new Error('未找到该事项');
      return { ...r, item };
    }
    return { ...r, item: r.data.item };
  } catch (err) {
    if (err.status === 404) throw new Error('未找到该事项');
    throw err;
  }
}

// Residents and clerks say 低保 for 最低生活保障: a query matches a name containing its characters in order.
function abbreviates(q, name) {
  let i = 0;
  for (const ch of name) if (ch === q[i]) i += 1;
  return i === q.length;
}

const LEVELS = { street: '街道', district: '区级', community: '社区' };

export async function render(main, _params, query) {
  const cat = await loadCatalogue();
  const q0 = query.get('q') || '';
  mount(main, html`<h1>办事指南</h1>${staleNote(cat)}
    <form id="cat-search" role="search" class="card" novalidate>
      <label for="cat-q">搜索事项（名称、类型或材料）</label>
      <input id="cat-q" type="search" value="${q0}" placeholder="例如：低保、残疾、准生" autocomplete="off">
    </form>
    <p class="muted" id="cat-count" role="status"></p>
    <ul class="list" id="cat-list"></ul>`);
  const list = $('#cat-list', main);
  const draw = () => {
    const q = $('#cat-q', main).value.trim();
    // aliases (俗称) and the node's pinyin initials (dbsq) match too, also offline from the cached list
    const lq = q.toLowerCase().replace(/\s+/g, '');
    const items = cat.items.filter((i) => !q || abbreviates(q, i.name)
      || [i.item_type, i.code, ...(i.aliases || []), ...((i.spec && i.spec.materials) || []).map((m) => m.name)].join(' ').includes(q)
      || (i.initials || []).some((t) => t.includes(lq)));
    $('#cat-count', main).textContent = `共 ${items.length} 个事项`;
    mount(list, html`${items.map((i) => html`<li><a class="rowlink" href="#/item/${encodeURIComponent(i.code)}">
      <strong>${i.name}</strong>${(i.aliases || []).length ? html`<span class="small muted">（又称：${i.aliases.join('、')}）</span>` : ''}<br><span class="small muted">${i.item_type} · ${LEVELS[i.level] || i.level}
      · 承诺 ${i.promised_limit_wd ?? '—'} 个工作日（法定 ${i.statutory_limit_wd ?? '—'}）</span></a></li>`)}`);
  };
  $('#cat-search', main).addEventListener('submit', (ev) => ev.preventDefault());
  $('#cat-q', main).addEventListener('input', draw);
  draw();
}

export async function renderItem(main, [code]) {
  let r;
  try { r = await loadItem(code); } catch (err) {
    mount(main, html`<h1>事项指南</h1><p class="error-list">${err.message}</p><a class="btn" href="#/catalogue">返回目录</a>`);
    return;
  }
  const s = r.item.spec || {};
  mount(main, html`<h1>${s.name || r.item.name}</h1>${staleNote(r)}
    <div class="card">
      <p><strong>事项类型：</strong>${s.item_type} · <strong>实施编码：</strong>${s.implementation_code}</p>
      <p><strong>实施主体：</strong>${s.implementing_body} · <strong>办理窗口：</strong>${s.handling_office}</p>
      <p><strong>办理时限：</strong>承诺 ${s.promised_limit_wd} 个工作日，法定 ${s.statutory_limit_wd} 个工作日${s.note ? `（${s.note}）` : ''}</p>
      <p><strong>办理地点与时间：</strong>${s.place}；${s.hours}</p>
      <p><strong>收费：</strong>${s.fees && s.fees.charged ? '收费' : '不收费'} · <strong>到现场次数：</strong>${s.onsite_visits ?? '—'} 次 · <strong>咨询电话：</strong>${s.phone}</p>
    </div>
    <h2>受理条件</h2>
    <ul>${(s.acceptance_conditions || []).map((c) => html`<li>${c}</li>`)}</ul>
    <h2>材料清单</h2>
    <table><caption class="visually-hidden">申请材料清单</caption>
      <thead><tr><th scope="col">材料名称</th><th scope="col">是否必需</th><th scope="col">原件/复印件</th><th scope="col">份数</th><th scope="col">说明</th></tr></thead>
      <tbody>${(s.materials || []).map((m) => html`<tr><td>${m.name}</td><td>${m.required ? '必需' : '视情况'}</td>
        <td>${m.original_or_copy === 'original' ? '原件' : m.original_or_copy === 'copy' ? '复印件' : esc(m.original_or_copy || '')}</td>
        <td>${m.copies || '—'}</td><td>${m.note || ''}</td></tr>`)}</tbody>
    </table>
    <h2>设定依据</h2>
    <ul>${(s.legal_basis || []).map((b) => html`<li>${b}</li>`)}</ul>
    <div class="btn-row"><a class="btn btn-primary btn-big" href="#/apply/${encodeURIComponent(s.implementation_code || code)}">新建申请（收件）</a></div>`);
}
