// The always-visible parts: sync badge (reachability, pending count, last successful sync,
// 「立即同步」), the tab bar for the user's role, banners that need attention, the conflict dialog.

import { $, dialog, esc, fmtTime, html, mount, toast } from './ui.js';
import { state } from './state.js';
import { lock } from './session.js';
import { showLock } from './screens/lock.js';
import { syncNow, applyUpdateWhenClean } from './actions.js';
import { go } from './router.js';

// Every staff role starts from 待办: the generic work list of every case kind it takes part in.
const GRID_TABS = [['/work', '待办'], ['/report', '上报事件'], ['/patrol', '巡查日志'], ['/outbox', '待上传'], ['/home', '更多']];
const WINDOW_TABS = [['/work', '待办'], ['/catalogue', '办事指南'], ['/queue', '今日队列'], ['/outbox', '待上传'], ['/home', '更多']];
const STAFF_TABS = [['/work', '待办'], ['/outbox', '待上传'], ['/home', '更多']];

export function tabsFor(role) {
  if (role === 'grid_member') return GRID_TABS;
  if (['window_clerk', 'community_worker', 'street_admin', 'street_handler'].includes(role)) return WINDOW_TABS;
  return STAFF_TABS;
}

let wired = false;
function wire() {
  if (wired) return;
  wired = true;
  $('#sync-now').addEventListener('click', async () => {
    if (!state.unlocked) { toast('请先登录或解锁'); return; }
    const r = await syncNow(true);
    if (!r) return;
    if (r.skipped === 'busy') { toast('正在同步，请稍候'); return; }
    if (r.skipped) return;
    if (r.transportError === 'unreachable' || r.transportError === 'network') toast('无法连接街道节点，数据已保存在本机，联网后自动上传');
    else if (r.transportError === 'not_enrolled') toast('本设备尚未登记，请在「更多 → 设备登记」中输入登记码');
    else if (r.transportError === 'login') toast('登录已过期，请联网后重新登录');
    else if (r.transportError) toast(`同步未完成：${r.transportError}`);
    else toast(`同步完成：本次上传 ${r.acked} 条`);
  });
  $('#font-toggle').addEventListener('click', () => {
    const on = !document.documentElement.classList.contains('large');
    document.documentElement.classList.toggle('large', on);
    localStorage.setItem('sn.largeFont', on ? '1' : '0');
    renderChrome();
  });
  $('#lock-now').addEventListener('click', () => { lock(); showLock(); });
}

let tabsRole = undefined;
export function renderChrome() {
  wire();
  const dot = $('#net-dot');
  dot.className = 'net-dot ' + (state.syncing ? 'busy' : state.reachable === true ? 'up' : state.reachable === false ? 'down' : '');
  $('#net-label').textContent = state.syncing ? '正在同步…' : state.reachable === true ? '已连接街道节点'
    : state.reachable === false ? '离线（无法连接节点）' : '正在检测网络…';
  const pending = $('#pending');
  pending.textContent = `待上传 ${state.pending} 条`;
  pending.classList.toggle('has', state.pending > 0);
  pending.setAttribute('aria-label', `待上传 ${state.pending} 条，查看详情`);
  $('#last-sync').textContent = state.lastSync ? `上次同步 ${fmtTime(state.lastSync)}` : '尚未同步';
  $('#font-toggle').setAttribute('aria-pressed', String(document.documentElement.classList.contains('large')));
  $('#lock-now').hidden = !state.unlocked;
  $('#who').textContent = state.user && state.unlocked ? `${state.user.display_name}（${state.user.role_label}）` : '';
  const role = state.unlocked && state.user ? state.user.role : null;
  const bar = $('#tabbar');
  if (role !== tabsRole) {
    tabsRole = role;
    bar.hidden = !role;
    mount(bar, role ? html`${tabsFor(role).map(([href, label]) => html`<a href="#${href}">${label}</a>`)}` : '');
  }
}

export function renderBanners() {
  const items = [];
  if (state.persisted === false) {
    items.push(['warn', '浏览器未授予“持久存储”，存储空间紧张时本机数据可能被清除。请及时同步，切勿清除浏览器数据。']);
  }
  if (state.resetNotice) items.push(['info', `${state.resetNotice}（已重新下载，未上传的数据均已保留）`]);
  if (state.clockSuspect) items.push(['warn', '本机时间与街道节点相差超过 5 分钟，请在系统设置中校准时间（时限以节点时间为准）。']);
  if (state.quotaLow) items.push(['bad', '本机存储空间即将用尽，请尽快联网同步。']);
  if (state.unlocked && state.tokenExpired) {
    items.push(['bad', html`登录已过期：本机数据不会丢失，联网后请<a href="#/login">重新登录</a>以继续上传。`]);
  }
  if (state.unlocked && state.notEnrolled) {
    items.push(['warn', html`本设备尚未登记，上报内容暂存本机。<a href="#/device">去登记设备</a>`]);
  }
  if (state.unlocked && state.problems > 0) {
    items.push(['bad', html`有 ${state.problems} 条记录被退回或存在冲突，需要处理。<a href="#/outbox">查看</a>`]);
  }
  if (state.othersPending > 0) {
    items.push(['info', `本机还有其他工作人员的 ${state.othersPending} 条记录待上传（需其本人登录后上传）。`]);
  }
  if (state.updateWaiting) {
    items.push(['info', html`有新版本可用，当前表单填写完成（提交或保存）后自动更新。<button type="button" class="btn" id="apply-update">现在更新</button>`]);
  }
  const root = $('#banners');
  mount(root, html`${items.map(([cls, text]) => html`<div class="banner ${cls}">${text}</div>`)}`);
  const btn = $('#apply-update', root);
  if (btn) {
    btn.addEventListener('click', () => {
      if (!applyUpdateWhenClean()) toast('请先提交或保存当前表单（草稿已自动保存），再更新');
    });
  }
}

export async function showConflicts(items) {
  for (const item of items) {
    const choice = await dialog({
      title: '提交冲突',
      body: html`<p>「${esc(item.title)}」（${esc(item.localNo)}）与节点上的记录冲突：</p>
        <p><strong>${item.lastError || ''}</strong></p>
        <p>您的内容已完整保留在本机，不会被覆盖或删除。请选择处理方式：</p>`,
      buttons: [
        { label: '查看并处理', value: 'open', cls: 'btn-primary' },
        { label: '稍后处理', value: 'later' },
      ],
    });
    if (choice === 'open') { go('/outbox'); break; }
  }
}
