// The lock screen: offline PIN unlock within a shift, or the password when the PIN is not usable.

import { $, esc, html, mount } from '../ui.js';
import { state } from '../state.js';
import { activeUserRecord, pinUsable, unlockWithPin, MAX_PIN_ATTEMPTS } from '../session.js';
import { loginFormHTML, wireLoginForm } from './login.js';
import { afterUnlock } from '../actions.js';
import { go, setLockedRouteHandler } from '../router.js';

const el = () => document.getElementById('lock');

function hide() {
  const root = el();
  root.hidden = true;
  mount(root, '');
  document.getElementById('main').removeAttribute('aria-hidden');
}

export async function showLock(rec = null) {
  rec = rec || (await activeUserRecord());
  if (!rec || rec.loggedOut) { hide(); go('/login'); return; }
  const root = el();
  root.hidden = false;
  document.getElementById('main').setAttribute('aria-hidden', 'true');
  const name = rec.user ? rec.user.display_name : rec.username;
  if (pinUsable(rec)) {
    mount(root, html`<div class="panel" role="dialog" aria-modal="true" aria-labelledby="lock-title">
      <h1 id="lock-title">已锁屏</h1>
      <p>${name}，请输入 6 位 PIN 解锁。</p>
      <form id="pin-unlock" novalidate>
        <label for="pin-input">PIN</label>
        <input id="pin-input" type="password" inputmode="numeric" autocomplete="off" maxlength="6" required>
        <div id="pin-msg" class="field-error" role="alert"></div>
        <div class="pinpad" aria-hidden="true">
          ${[1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => html`<button type="button" tabindex="-1" data-d="${n}">${n}</button>`)}
          <button type="button" tabindex="-1" data-d="del">删除</button><button type="button" tabindex="-1" data-d="0">0</button>
          <button type="button" tabindex="-1" data-d="clear">清空</button>
        </div>
        <button type="submit" class="btn btn-primary btn-big" style="margin-top:1rem">解锁</button>
      </form>
      <p class="small muted">连续输错 ${MAX_PIN_ATTEMPTS} 次后需联网用密码登录。本机共有 ${state.pending + state.othersPending} 条记录待上传，始终保留在本机。</p>
      <p><button type="button" class="btn" id="use-password">用密码登录</button>
         <button type="button" class="btn" id="other-user">其他人员登录</button></p>
    </div>`);
    const input = $('#pin-input', root);
    root.querySelector('.pinpad').addEventListener('click', (ev) => {
      const d = ev.target.closest('button[data-d]')?.dataset.d;
      if (d === undefined) return;
      // one 解锁 button only (below the pad): the pad's last key clears instead of repeating it
      input.value = d === 'clear' ? '' : d === 'del' ? input.value.slice(0, -1) : (input.value + d).slice(0, 6);
    });
    $('#pin-unlock', root).addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const msg = $('#pin-msg', root);
      msg.textContent = '正在验证…';
      try {
        await unlockWithPin(rec.userId, input.value);
        hide();
        await afterUnlock();
      } catch (e) {
        input.value = '';
        msg.textContent = e.message;
        if (e.locked) setTimeout(() => showPassword(rec), 1500);
      }
    });
    $('#use-password', root).addEventListener('click', () => showPassword(rec));
    $('#other-user', root).addEventListener('click', () => { hide(); go('/login'); });
    input.focus();
  } else {
    showPassword(rec);
  }
}

function showPassword(rec) {
  const root = el();
  const name = rec.user ? rec.user.display_name : rec.username;
  mount(root, html`<div class="panel" role="dialog" aria-modal="true" aria-labelledby="lock-title">
    <h1 id="lock-title">请联网登录</h1>
    <p>${esc(name)}：PIN 不可用（本班次已结束、输错次数过多或尚未设置），请连接街道节点后用密码登录。本机未上传的数据不会丢失。</p>
    ${loginFormHTML(rec.username)}
    <p><button type="button" class="btn" id="other-user">其他人员登录</button></p>
  </div>`);
  wireLoginForm(root, async (res) => {
    hide();
    if (res.needsPin) go('/pin'); else await afterUnlock();
  });
  $('#other-user', root).addEventListener('click', () => { hide(); go('/login'); });
  $('#login-pass', root).focus();
}

setLockedRouteHandler(async () => {
  const rec = await activeUserRecord();
  if (rec && !rec.loggedOut) { await showLock(rec); return true; }
  return false;
});
