// Device enrolment: this tablet registers its signing key with a one-time code from a street admin;
// a street admin can also issue a code (and its QR) for another tablet.

import { $, html, mount, raw, toast, fmtTime } from '../ui.js';
import { createEnrolment, getDevice, register } from '../device.js';
import { describeErrors } from '../net.js';
import { qrSVG } from '../qr.js';
import { setState, state } from '../state.js';
import { syncNow } from '../actions.js';

export async function render(main) {
  const device = await getDevice();
  const isAdmin = state.user && ['street_admin', 'district_admin'].includes(state.user.role);
  mount(main, html`<h1>设备登记</h1>
    <div class="card">
      <h2>本机</h2>
      ${device && device.device_id
        ? html`<p>已登记：<strong>${device.label || ''}</strong>（设备号 ${device.device_id}，签名算法 ${device.alg}，登记于 ${fmtTime(device.enrolledAt)}）</p>`
        : html`<p>本机尚未登记。上报的内容会先保存在本机，登记后自动上传。</p>
          <form id="enrol-form" novalidate>
            <label for="enrol-code">登记码<span class="star" aria-hidden="true"> *</span><span class="hint">由街道管理员在其平板“设备登记”中生成，一次有效</span></label>
            <input id="enrol-code" type="text" autocomplete="off" required>
            <label for="enrol-label">设备名称<span class="hint">例如：石牌街网格平板 07</span></label>
            <input id="enrol-label" type="text" value="网格平板">
            <div id="enrol-error" class="field-error" role="alert"></div>
            <button type="submit" class="btn btn-primary btn-big">登记本机</button>
          </form>`}
    </div>
    ${isAdmin ? html`<div class="card"><h2>为其他平板生成登记码</h2>
      <form id="issue-form" novalidate><label for="issue-label">平板名称</label><input id="issue-label" type="text" value="网格平板">
      <button type="submit" class="btn">生成登记码</button></form><div id="issued" aria-live="polite"></div></div>` : ''}`);
  const form = $('#enrol-form', main);
  if (form) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const code = $('#enrol-code', main).value.trim();
      const err = $('#enrol-error', main);
      if (!code) { err.textContent = '请输入登记码'; return; }
      try {
        await register(code, $('#enrol-label', main).value.trim() || '网格平板');
        setState({ notEnrolled: false });
        toast('本机登记成功');
        await render(main);
        syncNow(true);
      } catch (e) {
        err.textContent = describeErrors(e).join('；');
      }
    });
  }
  const issue = $('#issue-form', main);
  if (issue) {
    issue.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        const res = await createEnrolment($('#issue-label', main).value.trim());
        const code = res.code || res.enrolment_code;
        mount($('#issued', main), html`<p>登记码：<strong style="font-size:1.6rem;letter-spacing:.2rem">${code}</strong>
          ${res.expires_at ? html`（${fmtTime(res.expires_at)} 前有效，一次有效）` : ''}</p>${raw(qrSVG(String(code), { label: `登记码 ${code} 的二维码` }))}`);
      } catch (e) {
        toast(describeErrors(e).join('；'));
      }
    });
  }
}
