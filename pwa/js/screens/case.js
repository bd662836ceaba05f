// The case screen for every kind and every staff role: what the case is (summary, photos), what the
// last person asked for, the clocks with their explanation, the timeline — and one button per
// transition the node says this person may make now, each opening a form drawn from its payload
// schema. Acts are queued in the outbox, so this works offline on the cached copy; an act not yet
// accepted by the node is shown as 待上传 and further acts wait for it (they would be based on a
// version the node has moved past).

import { $, fmtTime, html, mount, toast } from '../ui.js';
import { cachedGet, staleNote } from '../data.js';
import { describeErrors } from '../net.js';
import { STATE_LABELS, pendingActs } from '../outbox.js';
import { state, subscribe } from '../state.js';
import { syncNow } from '../actions.js';
import { declaredActions, kindLabel, loadKinds, stateLabel, transitionOf } from '../kinds.js';
import { actionForm } from '../actform.js';
import { loadSchema } from '../schemaform.js';
import { showDuplicates } from '../duplicates.js';
import { clocksHTML, currentClockLine, lastInstruction, photoRefs, photoURL, summaryRows, timelineHTML } from '../caseview.js';

// Payload schemas shipped with the app, for a node whose case detail and kinds carry none.
const BUNDLED = { grid_incident: 'grid_event_payloads' };

async function bundledSchemas(kind) {
  if (!BUNDLED[kind]) return {};
  try { return (await loadSchema(BUNDLED[kind])).transitions || {}; } catch (_) { return {}; }
}

function actionsOf(r, kinds, c, bundled) {
  // The node's list (it checks role, tier, scope and state); schemas filled in from the declaration.
  const role = state.user ? state.user.role : '';
  const listed = Array.isArray(r.available) ? r.available
    : Array.isArray(r.actions) ? r.actions.map((name) => ({ name })) : declaredActions(kinds, c.kind, c.state, role);
  return listed.map((a) => {
    const t = transitionOf(kinds, c.kind, a.name) || {};
    return { ...a, label: a.label || t.label || a.name, schema: a.schema || t.schema || bundled[a.name] || null,
      required: a.required || t.required || [], legal_basis: a.legal_basis || t.legal_basis || '' };
  });
}

export async function render(main, [id]) {
  const url = `/api/v1/cases/${encodeURIComponent(id)}`;
  let openAction = null;
  const draw = async () => {
    let r;
    try { r = await cachedGet(url, { personal: true }); } catch (err) {
      mount(main, html`<h1>事项详情</h1><p class="error-list">${describeErrors(err).join('；')}</p>
        <p><a class="btn" href="#/work">返回待办</a></p>`);
      return;
    }
    const { kinds } = await loadKinds();
    const d = r.data;
    const c = d.case;
    const events = d.events || [];
    const actions = actionsOf(d, kinds, c, await bundledSchemas(c.kind));
    if (actions.some((a) => a.schema && a.schema.properties && a.schema.properties.unit_code)) {
      cachedGet('/api/v1/org/units').catch(() => {}); // the dispatch targets, kept for an offline dispatch
    }
    const mine = await pendingActs(c.id);
    const waiting = mine.filter((i) => i.state === 'finalized' || i.state === 'uploading');
    const refused = mine.filter((i) => i.state === 'rejected' || i.state === 'conflict');
    const kindName = c.kind_label || kindLabel(kinds, c.kind);
    const current = c.current_clock || ((kinds[c.kind] || {}).views || {}).current_clock?.[c.state] || null;
    const instr = lastInstruction(events);
    const rows = summaryRows(c, d.extra);
    const photos = photoRefs(c, events, kinds);
    mount(main, html`<h1>${kindName} ${c.number || ''}</h1>${staleNote(r)}
      <p class="case-state"><span class="badge state">${c.state_label || stateLabel(kinds, c.kind, c.state)}</span>
        ${c.due_at ? html`<span class="small">期限 ${fmtTime(c.due_at)}</span>` : ''}
        <span class="small muted">更新于 ${fmtTime(c.updated_at)} · 版本 ${c.version}</span></p>
      <section class="card act-panel" aria-labelledby="act-h">
        <h2 id="act-h">办理</h2>
        ${currentClockLine(c, current)}
        ${instr ? html`<div class="instruction" role="note"><div class="small muted">最近意见 · ${instr.event.label || (transitionOf(kinds, c.kind, instr.event.transition) || {}).label || instr.event.transition} · ${fmtTime(instr.event.node_time)}</div>
          ${instr.lines.map(([k, v]) => html`<div><strong>${k}：</strong>${v}</div>`)}</div>` : ''}
        ${waiting.map((i) => html`<p class="pending-act"><span class="badge st-${i.state}">${STATE_LABELS[i.state]}</span>
          您已办理「${i.transitionLabel || i.title}」（本机编号 ${i.localNo}），${state.reachable === false ? '联网后自动上传' : '正在上传'}。</p>`)}
        ${refused.map((i) => html`<p class="error-list"><span class="badge st-${i.state}">${STATE_LABELS[i.state]}</span>
          「${i.transitionLabel || i.title}」未被节点接受：${i.lastError || ''} <a href="#/outbox">查看</a></p>`)}
        ${waiting.length ? html`<p class="muted small">上一操作被节点确认后才能继续办理本事项。</p>`
          : actions.length ? html`<div class="btn-row actions">${actions.map((a) => html`<button type="button" class="btn btn-primary act-btn" data-action="${a.name}">${a.label}</button>`)}</div>`
            : html`<p class="muted">当前没有需要您办理的操作。</p>`}
        <div id="act-form-root"></div>
      </section>
      <div id="dup-root"></div>
      ${rows.length ? html`<section class="card" aria-labelledby="sum-h"><h2 id="sum-h">基本情况</h2>
        <dl class="kv">${rows.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl></section>` : ''}
      ${photos.length ? html`<section class="card" aria-labelledby="ph-h"><h2 id="ph-h">照片（${photos.length}）</h2>
        <div class="photos">${photos.map((p, i) => html`<figure data-sha="${p.sha256}"><div class="ph-slot" role="img" aria-label="照片 ${i + 1} 加载中"></div>
          <figcaption>${p.label}</figcaption></figure>`)}</div></section>` : ''}
      <section class="card" aria-labelledby="clk-h"><h2 id="clk-h">时限</h2>${clocksHTML(c, current)}</section>
      <section class="card" aria-labelledby="tl-h"><h2 id="tl-h">办理过程</h2>${timelineHTML(c, events, kinds)}</section>`);
    main.querySelectorAll('button.act-btn').forEach((b) => b.addEventListener('click', () => open(b.dataset.action)));
    function open(name) {
      const action = actions.find((a) => a.name === name);
      openAction = name;
      main.querySelectorAll('button.act-btn').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.action === name)));
      actionForm($('#act-form-root', main), c, action, async () => {
        openAction = null;
        toast(state.reachable === false ? `「${action.label}」已保存在本机，联网后自动上传` : `「${action.label}」已提交，正在上传`);
        await draw();
        syncNow();
      });
    }
    if (openAction && !waiting.length && actions.some((a) => a.name === openAction)) open(openAction);
    loadPhotos(main);
    if (!r.stale && !waiting.length) showDuplicates($('#dup-root', main), c, draw);
  };
  await draw();
  // Redraw when the outbox moves (an act uploaded, refused) so the new state and actions show.
  let last = `${state.pending}/${state.problems}`;
  const unsub = subscribe((s) => {
    if (s.syncing) return; // compare once the drain has finished, against the count before it
    const now = `${s.pending}/${s.problems}`;
    if (now !== last) { last = now; if (!openAction) draw(); }
  });
  return () => unsub();
}

async function loadPhotos(main) {
  for (const fig of main.querySelectorAll('figure[data-sha]')) {
    const slot = fig.querySelector('.ph-slot');
    try {
      const src = await photoURL(fig.dataset.sha);
      if (!fig.isConnected) return;
      if (src) {
        const img = document.createElement('img');
        img.src = src;
        img.alt = slot.getAttribute('aria-label').replace(' 加载中', '');
        slot.replaceWith(img);
      } else { slot.textContent = '无法查看'; slot.setAttribute('aria-label', '照片无法查看'); }
    } catch (_) {
      slot.textContent = '离线，暂不能查看';
      slot.setAttribute('aria-label', '照片离线暂不能查看');
    }
  }
}
