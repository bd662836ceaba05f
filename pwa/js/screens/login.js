// Online sign-in and the PIN set after the first login of a shift.

import { $, html, mount } from '../ui.js';
import { describeErrors, NetworkError } from '../net.js';
import { login, setPin } from '../session.js';
import { getDevice } from '../device.js';
import { go } from '../router.js';
import { state } from '../state.js';
import { afterUnlock } from '../actions.js';

/** The username/password form; `onDone({needsPin})` after a successful login. */
export function loginFormHTML(username = '') {
  return html`<form id="login-form" novalidate>
    <label for="login-user">用户名</label>
    <input id="login-user" name="username" type="text" autocomplete="username" required value="${username}" ${username ? 'readonly' : ''}>
    <label for="login-pass">密码</label>
    <input id="login-pass" name="password" type="password" autocomplete="current-password" required>
    <div id="login-error" class="field-error" role="alert"></div>
    <button type="submit" class="btn btn-primary btn-big">登录</button>
  </form>`;
}

export function wireLoginForm(root, onDone) {
  const form = $('#login-form', root);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = $('#login-error', root);
    const username = form.username.value.trim();
    const password = form.password.value;
    if (!username || !password) { err.textContent = '请输入用户名和密码'; return; }
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true; btn.textContent = '正在登录…';
    try {
      const device = await getDevice();
      const res = await login(username, password, device && device.device_id);
      await onDone(res);
    } catch (e) {
      err.textContent = e instanceof NetworkError ? '无法连接街道节点。首次登录和 PIN 失效后需联网登录；本班次已登录过的人员可用 PIN 解锁。'
        : describeErrors(e).join('；');
      form.password.value = '';
      form.password.focus();
    } finally {
      btn.disabled = false; btn.textContent = '登录';
    }
  });
}

export async function afterLogin(res) {
  if (res.needsPin) go('/pin');
  else await afterUnlock();
}

export function render(main) {
  if (state.unlocked && !state.tokenExpired) { go('/home'); return; }
  mount(main, html`<h1>工作人员登录</h1>
    <div class="card">
      <p class="muted">请使用街道分配的账号登录。登录后可设置 6 位 PIN，本班次内离线时用 PIN 解锁。</p>
      ${loginFormHTML()}
    </div>
    <div class="card">
      <h2>居民自助服务</h2>
      <p><a class="btn" href="#/track">办件进度查询与评价</a></p>
    </div>`);
  wireLoginForm(main, async (res) => {
    if (!res.needsPin && window.location.hash.startsWith('#/login')) { window.location.hash = '#/home'; }
    await afterLogin(res);
  });
}

export function renderPinSetup(main) {
  mount(main, html`<h1>设置解锁 PIN</h1>
    <div class="card">
      <p>本班次（12 小时）内离线或锁屏后，用此 PIN 解锁本机。连续输错 ${5} 次后需联网用密码登录。</p>
      <form id="pin-form" novalidate>
        <label for="pin1">新 PIN（6 位数字）</label>
        <input id="pin1" type="password" inputmode="numeric" autocomplete="new-password" maxlength="6" pattern="\\d{6}" required>
        <label for="pin2">再次输入 PIN</label>
        <input id="pin2" type="password" inputmode="numeric" autocomplete="new-password" maxlength="6" pattern="\\d{6}" required>
        <div id="pin-error" class="field-error" role="alert"></div>
        <button type="submit" class="btn btn-primary btn-big">保存 PIN</button>
      </form>
    </div>`);
  $('#pin-form', main).addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const a = $('#pin1', main).value; const b = $('#pin2', main).value;
    const err = $('#pin-error', main);
    if (!/^\d{6}$/.test(a)) { err.textContent = 'PIN 须为 6 位数字'; return; }
    if (a !== b) { err.textContent = '两次输入的 PIN 不一致'; return; }
    await setPin(a);
    window.location.hash = '#/home';
    await afterUnlock();
  });
}
