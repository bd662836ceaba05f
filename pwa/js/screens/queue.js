// 今日办件队列: the clerk's open applications by due date; overdue rows red, due within a working day amber.

import { fmtDate, fmtTime, html, mount } from '../ui.js';
import { cachedGet, staleNote } from '../data.js';
import { describeErrors } from '../net.js';

function left(row) {
  if (row.overdue) return '已超期';
  const c = Object.values(row.clocks || {}).find((x) => x.working_days_left !== null && x.working_days_left !== undefined);
  if (c) return c.working_days_left <= 0 ? '今日到期' : `剩 ${c.working_days_left} 个工作日`;
  return row.due_at ? '' : '未计时';
}

export async function render(main, _params, query) {
  const all = query.get('all') === '1';
  let r;
  try {
    r = await cachedGet(`/api/v1/hall/queue${all ? '?all=1' : ''}`, { personal: true });
  } catch (err) {
    mount(main, html`<h1>今日办件队列</h1><p class="error-list">${describeErrors(err).join('；')}</p>`);
    return;
  }
  const items = r.data.items || [];
  const overdue = items.filter((i) => i.overdue).length;
  const soon = items.filter((i) => i.due_soon).length;
  mount(main, html`<h1>今日办件队列</h1>${staleNote(r)}
    <p>共 <strong>${items.length}</strong> 件 · <span class="badge due-over">超期 ${overdue}</span> <span class="badge due-soon">临期 ${soon}</span>
      · <a href="#/queue${all ? '' : '?all=1'}">${all ? '只看待我处理' : '查看全部未办结'}</a></p>
    ${items.length ? html`<table>
      <caption class="visually-hidden">办件队列，按办理期限排序</caption>
      <thead><tr><th scope="col">办件编号</th><th scope="col">事项</th><th scope="col">申请人</th><th scope="col">状态</th><th scope="col">办理期限</th><th scope="col">剩余</th></tr></thead>
      <tbody>${items.map((i) => html`<tr class="${i.overdue ? 'overdue' : i.due_soon ? 'due-soon-row' : ''}">
        <td><a href="#/case/${encodeURIComponent(i.id)}">${i.number}</a></td><td>${i.item_name}</td><td>${i.applicant}</td><td>${i.state_label}</td>
        <td>${i.due_at ? fmtDate(i.due_at) : '—'}</td>
        <td><span class="${i.overdue ? 'due-over' : i.due_soon ? 'due-soon' : 'due-ok'}">${left(i)}</span></td></tr>`)}</tbody>
    </table>` : html`<p class="muted">暂无待办办件。</p>`}
    <p class="small muted">更新于 ${fmtTime(r.at)}</p>`);
}
