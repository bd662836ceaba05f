// Home: the tasks this role does, plus device, sign-out and the resident self-service page.

import { $, dialog, html, mount, toast } from '../ui.js';
import { state } from '../state.js';
import { logout } from '../session.js';
import { go } from '../router.js';
import { getDevice } from '../device.js';

const TILES = {
  // Every staff role: its work list and the whole of its scope, each row opening the case screen.
  work: [['#/work', '我的待办', '需要我办理的事项：受理、立案、派遣、核查、结案等，离线也可办理'],
    ['#/work?mine=0', '全部事项', '管辖范围内未办结的事项，按状态、类型、超期筛选']],
  grid: [['#/tasks', '我的任务', '查看派给我的事件，处置或核查并拍照'], ['#/report', '上报事件', '选择类别、拍照、定位、描述，离线也可上报'],
    ['#/patrol', '巡查日志', '记录今日巡查路线与发现']],
  window: [['#/catalogue', '办事指南', '检索事项、查看材料清单，新建申请'], ['#/queue', '今日办件队列', '按办结时限排序，超期标红']],
  common: [['#/outbox', '待上传与同步', '查看每条记录的上传状态、退回原因与冲突'], ['#/device', '设备登记', '用登记码登记本平板，或为其他平板生成登记码'],
    ['#/track', '居民自助查询', '居民凭查询码和手机尾号查询进度并评价']],
};

export async function render(main) {
  const role = state.user ? state.user.role : '';
  const tiles = [
    ...TILES.work,
    ...(role === 'grid_member' ? TILES.grid : []),
    ...(['window_clerk', 'community_worker', 'street_admin', 'street_handler'].includes(role) ? TILES.window : []),
    ...TILES.common,
  ];
  const device = await getDevice();
  mount(main, html`<h1>您好，${state.user ? state.user.display_name : ''}</h1>
    <p class="muted">${state.user ? `${state.user.role_label} · ${state.user.org_unit}` : ''}
      · 本机${device && device.device_id ? `已登记（${device.label || device.device_id}）` : '尚未登记'}</p>
    <div class="tiles">${tiles.map(([href, title, desc]) => html`<a class="tile" href="${href}"><strong>${title}</strong><span class="muted">${desc}</span></a>`)}</div>
    <div class="btn-row"><button type="button" class="btn btn-danger" id="logout">退出登录</button></div>`);
  $('#logout', main).addEventListener('click', async () => {
    if (state.pending > 0) {
      const ok = await dialog({
        title: '还有数据未上传',
        body: html`<p>您还有 <strong>${state.pending}</strong> 条记录未上传。退出后这些记录<strong>仍加密保存在本机</strong>，不会删除；
          您下次登录后会自动上传，其他人员无法查看。</p>`,
        buttons: [{ label: '先同步', value: 'sync', cls: 'btn-primary' }, { label: '仍然退出', value: 'out' }, { label: '取消', value: null }],
      });
      if (ok === 'sync') { window.streetnode.syncNow(true); return; }
      if (ok !== 'out') return;
    }
    await logout();
    toast('已退出登录');
    go('/login');
  });
}
