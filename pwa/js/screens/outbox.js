// 待上传与同步: every item of this user with its state, per-item errors with what to fix, conflicts.

import { $, dialog, html, mount, fmtTime, toast } from '../ui.js';
import { STATE_LABELS, finalize, getItem, itemContent, listItems, resolve, retry } from '../outbox.js';
import { state, subscribe } from '../state.js';
import { syncNow } from '../actions.js';

const FIX_HINTS = {
  invalid: '请按下列提示修改后重新填写提交（原记录保留在此，便于核对）。',
  forbidden: '该记录不在您的管辖范围，请联系街道管理员核对账号所属网格或社区。',
  id_conflict: '节点上已有同一编号但内容不同的记录，两份均已保留，由街道管理员核查；无需重复提交。',
  stale_version: '他人已更新该记录。可基于最新版本重新提交您的修改，或保留节点上的版本。',
  case_changed: '节点上的事项已变化（例如已被退回、改派或办结），您的操作未生效，节点已记录该冲突。请打开任务按最新状态重新办理。',
};

function itemHTML(i) {
  const status = i.result ? i.result.status : '';
  return html`<li data-id="${i.id}">
    <div><span class="badge st-${i.state}">${STATE_LABELS[i.state]}</span>
      <strong>${i.title || i.kind}</strong> <span class="muted small">本机编号 ${i.localNo || '—'}</span></div>
    <div class="small muted">创建 ${fmtTime(i.createdAt)}${i.ackedAt ? ` · 受理 ${fmtTime(i.ackedAt)}` : ''}${i.attempts ? ` · 已尝试 ${i.attempts} 次` : ''}
      ${i.blobs && i.blobs.length ? ` · ${i.blobs.length} 张照片` : ''}${i.receipt ? ` · 节点回执序号 ${i.receipt.node_seq}` : ''}</div>
    ${i.lastError && i.state !== 'acked' ? html`<p class="error-list">${i.lastError}</p>` : ''}
    ${(i.state === 'rejected' || i.state === 'conflict') ? html`<p class="small">${FIX_HINTS[status] || '请根据提示修改后重新提交。'}</p>` : ''}
    ${i.errors && i.errors.length ? html`<ul class="error-list">${i.errors.map((e) => html`<li>${e.field ? `${e.field}：` : ''}${e.message}</li>`)}</ul>` : ''}
    ${i.resolution ? html`<p class="small muted">已处理：${i.resolution === 'kept_server' ? '保留节点版本' : i.resolution === 'resubmitted' ? '已基于最新版本重新提交' : i.resolution === 'reopened' ? '已打开事项按最新状态办理' : i.resolution}</p>` : ''}
    ${actionsHTML(i)}
  </li>`;
}

function actionsHTML(i) {
  const buttons = [
    i.kind === 'service_application' ? html`<a class="btn" href="#/receipt/${i.id}">回执</a>` : '',
    i.caseId ? html`<a class="btn" href="#/case/${encodeURIComponent(i.caseId)}">打开事项</a>` : '',
    i.state === 'conflict' && !i.resolution ? html`<button type="button" class="btn btn-primary" data-act="conflict">处理冲突</button>` : '',
    i.state === 'rejected' && !i.resolution ? html`<button type="button" class="btn" data-act="retry">修正后重试</button>
      <button type="button" class="btn" data-act="done">已知悉</button>` : '',
  ].filter(Boolean);
  return buttons.length ? html`<div class="btn-row">${buttons}</div>` : '';
}

export async function render(main) {
  const draw = async () => {
    const items = (await listItems()).filter((i) => i.state !== 'draft' || i.updatedAt);
    const groups = [
      ['需要处理', items.filter((i) => (i.state === 'rejected' || i.state === 'conflict') && !i.resolution)],
      ['待上传', items.filter((i) => i.state === 'finalized' || i.state === 'uploading')],
      ['草稿', items.filter((i) => i.state === 'draft')],
      ['已受理', items.filter((i) => i.state === 'acked')],
      ['已处理的退回与冲突', items.filter((i) => (i.state === 'rejected' || i.state === 'conflict') && i.resolution)],
    ];
    mount(main, html`<h1>待上传与同步</h1>
      <div class="card">
        <p>网络：<strong>${state.reachable ? '已连接街道节点' : '离线'}</strong> · 待上传 <strong id="outbox-pending">${state.pending}</strong> 条 ·
          上次成功同步：<strong>${state.lastSync ? fmtTime(state.lastSync) : '尚未同步'}</strong></p>
        <p class="small muted">记录在节点确认受理前始终保存在本机，不会因时间自动删除。${state.othersPending ? `本机另有其他人员 ${state.othersPending} 条待上传。` : ''}</p>
        <button type="button" class="btn btn-primary" id="outbox-sync">立即同步</button>
      </div>
      ${groups.filter(([, list]) => list.length).map(([title, list]) => html`<h2>${title}（${list.length}）</h2><ul class="list">${list.map(itemHTML)}</ul>`)}
      ${items.length ? '' : html`<p class="muted">本机没有记录。</p>`}`);
    $('#outbox-sync', main).addEventListener('click', async () => {
      const r = await syncNow(true);
      if (r && r.transportError) toast('同步未完成，记录已保存在本机');
      draw();
    });
  };
  main.onclick = async (ev) => {
    const btn = ev.target.closest('button[data-act]');
    if (!btn) return;
    const id = btn.closest('li[data-id]').dataset.id;
    const act = btn.dataset.act;
    if (act === 'retry') { await retry(id); syncNow(true); }
    if (act === 'done') await resolve(id, 'acknowledged');
    if (act === 'conflict') await resolveConflict(id);
    draw();
  };
  await draw();
  let last = state.pending;
  const unsub = subscribe((s) => { if (s.pending !== last) { last = s.pending; draw(); } });
  return () => { unsub(); main.onclick = null; };
}

/** The conflict dialog (pwa.md §1.5): nothing is overwritten silently and nothing is lost. */
export async function resolveConflict(id) {
  const item = await getItem(id);
  const status = item.result ? item.result.status : '';
  if (item.caseId) {
    // An act on a case that moved meanwhile: never replayed blindly; the person looks at the case as
    // it is now and acts again if still needed. The refused act stays here for the record.
    const choice = await dialog({
      title: '处理冲突',
      body: html`<p>「${item.title}」：${item.lastError || ''}</p><p>${FIX_HINTS.case_changed}</p>`,
      buttons: [{ label: '打开事项重新办理', value: 'open', cls: 'btn-primary' }, { label: '保留节点版本', value: 'kept_server' },
        { label: '取消', value: null }],
    });
    if (choice === 'kept_server') await resolve(id, 'kept_server');
    if (choice === 'open') {
      await resolve(id, 'reopened');
      window.location.hash = `#/case/${encodeURIComponent(item.caseId)}`;
    }
    return;
  }
  const canRebase = status === 'stale_version' && item.currentHead;
  const choice = await dialog({
    title: '处理冲突',
    body: html`<p>「${item.title}」：${item.lastError || ''}</p>
      <p>${FIX_HINTS[status] || '节点上的记录已变化。'}</p>
      <p class="small muted">无论选择哪项，您的原始内容都保留在本机记录中。</p>`,
    buttons: [
      ...(canRebase ? [{ label: '基于最新版本重新提交', value: 'rebase', cls: 'btn-primary' }] : []),
      { label: '保留节点版本', value: 'kept_server' },
      { label: '取消', value: null },
    ],
  });
  if (choice === 'kept_server') await resolve(id, 'kept_server');
  if (choice === 'rebase') {
    const content = await itemContent(item);
    const f = content.fields;
    await finalize({ kind: f.kind, formId: f.form_id, formVersion: f.form_version, title: `${item.title}（重新提交）`,
      payload: f.payload, attachments: f.attachments, orgPath: f.org_path, rootId: f.root_id, supersedes: item.currentHead, parentId: item.id });
    await resolve(id, 'resubmitted');
    syncNow(true);
  }
}
