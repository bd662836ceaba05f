// Resident kiosk: track a case with the 查询码 and the phone's last 4 digits; rate the service
// (好差评, 5 levels; 不满意 or worse needs a reason). No sign-in, no staff token is ever sent.

import { $, fmtDate, fmtTime, html, mount } from '../ui.js';
import { ApiError, NetworkError, request } from '../net.js';
import { parseHash } from '../router.js';

const LEVELS = [[5, '非常满意'], [4, '满意'], [3, '基本满意'], [2, '不满意'], [1, '非常不满意']];
const STAGES = { receipt: '接件', acceptance: '受理', completion: '办结' };
const PROBLEMS = ['办事效率低', '服务态度差', '办事指南不准确', '多次跑腿', '材料要求不合理', '等候时间长', '其他'];

function publicGet(path) { return request(path, { auth: false }); }
function publicPost(path, body) { return request(path, { method: 'POST', body, auth: false }); }

export async function renderTrack(main, params) {
  const { path, query } = parseHash();
  const code = (path.split('/')[2] || query.get('code') || '').toUpperCase();
  const token = query.get('t') || '';
  mount(main, html`<h1>办件进度查询</h1>
    <form id="track-form" class="card" novalidate>
      <label for="track-code">查询码<span class="star" aria-hidden="true"> *</span><span class="hint">回执上的 8 位字母或数字</span></label>
      <input id="track-code" type="text" autocomplete="off" maxlength="8" value="${code}" style="text-transform:uppercase">
      <label for="track-phone">手机号码后四位<span class="star" aria-hidden="true"> *</span><span class="hint">申请时登记的手机号码</span></label>
      <input id="track-phone" type="text" inputmode="numeric" autocomplete="off" maxlength="4">
      <div id="track-error" class="field-error" role="alert"></div>
      <button type="submit" class="btn btn-primary btn-big">查询</button>
    </form>
    <div id="track-result" aria-live="polite"></div>
    <p class="small muted">本页无需登录。查询信息仅用于核对身份，不会保存在本机。</p>
    <p class="small"><a href="#/login">工作人员入口</a></p>`);
  $('#track-form', main).addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const c = $('#track-code', main).value.trim().toUpperCase();
    const p4 = $('#track-phone', main).value.trim();
    const err = $('#track-error', main);
    err.textContent = '';
    if (!/^[0-9A-Z]{8}$/.test(c)) { err.textContent = '查询码为 8 位字母或数字'; return; }
    if (!/^\d{4}$/.test(p4)) { err.textContent = '请输入手机号码后四位（4 位数字）'; return; }
    try {
      const res = await publicGet(`/api/v1/track/${c}?phone4=${p4}`);
      showCase($('#track-result', main), res.case, c, token);
    } catch (e) {
      err.textContent = e instanceof NetworkError ? '暂时无法连接街道节点，请稍后再试或咨询窗口工作人员' : e.message;
    }
  });
}

function showCase(root, c, code, token) {
  const open = (c.rating && c.rating.open) || [];
  mount(root, html`<div class="card">
    <h2>${c.item_name}</h2>
    <p>办件编号：<strong>${c.number}</strong> · 当前状态：<strong>${c.state_label}</strong></p>
    <p>收件时间：${fmtTime(c.received_at)}${c.due && c.due.due_at ? html` · 办理期限：<strong>${fmtDate(c.due.due_at)}</strong>${c.due.overdue ? '（已超期）' : ''}` : ''}</p>
    ${c.due && c.due.explanation ? html`<details class="due-explain"><summary>期限是怎样计算的</summary><p class="small">${c.due.explanation}</p></details>` : ''}
    <h3>办理过程</h3>
    <ol>${(c.timeline || []).map((t) => html`<li>${fmtTime(t.at)} ${t.step} → ${t.state_label}</li>`)}</ol>
    ${open.length ? html`<h3>服务评价</h3>${token
      ? html`<p>${open.map((s) => html`<a class="btn" href="#/rate?code=${code}&t=${encodeURIComponent(token)}&stage=${s}">评价「${STAGES[s] || s}」环节</a> `)}</p>`
      : html`<p class="small">请扫描回执上的二维码进行评价（评价需使用回执上的评价码）。</p>`}` : ''}
  </div>`);
}

export async function renderRate(main, _params, query) {
  const code = (query.get('code') || '').toUpperCase();
  const token = query.get('t') || '';
  const stage = query.get('stage') || 'receipt';
  mount(main, html`<h1>服务评价（${STAGES[stage] || stage}环节）</h1>
    <form id="rate-form" class="card" novalidate>
      <fieldset><legend>总体评价（请选择一项）</legend>
        <div class="stars">${LEVELS.map(([n, label]) => html`<label class="check"><input type="radio" name="level" value="${n}">${'★'.repeat(n)}${'☆'.repeat(5 - n)} ${label}</label>`)}</div>
      </fieldset>
      <fieldset id="problems" hidden><legend>不满意的原因（差评须至少选择一项）</legend>
        ${PROBLEMS.map((p) => html`<label class="check"><input type="checkbox" name="problem" value="${p}">${p}</label>`)}
      </fieldset>
      <label for="rate-comment">意见建议（选填）</label>
      <textarea id="rate-comment" maxlength="500"></textarea>
      <div id="rate-error" class="field-error" role="alert"></div>
      <button type="submit" class="btn btn-primary btn-big">提交评价</button>
    </form>
    <p class="small muted">评价由您自愿作出，工作人员不会代为评价。评价提交后不能修改。</p>
    <div id="rate-result" aria-live="polite"></div>`);
  const form = $('#rate-form', main);
  form.addEventListener('change', () => {
    const level = Number((form.querySelector('input[name=level]:checked') || {}).value || 0);
    $('#problems', main).hidden = !(level && level <= 2);
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = $('#rate-error', main);
    const level = Number((form.querySelector('input[name=level]:checked') || {}).value || 0);
    const problems = Array.from(form.querySelectorAll('input[name=problem]:checked')).map((x) => x.value);
    const comment = $('#rate-comment', main).value.trim();
    if (!level) { err.textContent = '请选择总体评价'; return; }
    if (level <= 2 && !problems.length && !comment) { err.textContent = '差评请选择或填写不满意的原因'; return; }
    if (!token) { err.textContent = '缺少评价码，请扫描回执上的二维码进入'; return; }
    try {
      await publicPost(`/api/v1/track/${code}/rating`, { token, stage, channel: 'offline', level, problems, comment,
        indicators: { overall: level } });
      mount(main, html`<h1>感谢您的评价</h1><div class="card"><p>评价已提交。${level <= 2 ? '我们将按规定在时限内整改并回访。' : ''}</p>
        <a class="btn" href="#/track/${code}">返回查询</a></div>`);
    } catch (e) {
      err.textContent = e instanceof ApiError ? e.message : '暂时无法连接街道节点，请稍后再试';
    }
  });
}
