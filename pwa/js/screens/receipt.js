// 受理回执: printed at once from the tablet (a provisional local number while offline); after the
// node accepts the application it shows the case number, the 查询码 and a QR code to the tracking page.

import { $, fmtDateTime, html, mount, raw, toast } from '../ui.js';
import { getItem, itemContent, itemRecord } from '../outbox.js';
import { cachedGet, staleNote } from '../data.js';
import { qrSVG } from '../qr.js';
import { request } from '../net.js';
import { syncNow } from '../actions.js';
import { state, subscribe } from '../state.js';
import { maskId, maskName, maskPhone } from '../ui.js';

export async function render(main, [id]) {
  const item = await getItem(id);
  if (!item) { mount(main, html`<h1>受理回执</h1><p class="error-list">本机没有这条记录。</p>`); return; }
  const content = await itemContent(item);
  const p = content.fields.payload;
  // The node's answer to the upload carries the case number, the 查询码 and the rating token, so
  // the official receipt reprints offline; the application read adds the current state when online.
  const record = item.state === 'acked' ? await itemRecord(item) : null;
  let official = null; let res = null;
  if (item.state === 'acked' && p.case_id) {
    try {
      res = await cachedGet(`/api/v1/hall/applications/${p.case_id}`, { personal: true });
      official = res.data;
    } catch (_) { official = null; }
  }
  const app = official ? official.application
    : record ? { query_code: record.query_code, item_name: record.item_name, applicant: { name: maskName(p.applicant.name), id_card: maskId(p.applicant.id_card), phone: maskPhone(p.applicant.phone) } } : null;
  if (!official && record) official = { case: { number: record.number, state_label: '已收件' }, application: app };
  const token = record && record.receipt_token ? `?t=${encodeURIComponent(record.receipt_token)}` : '';
  const trackUrl = app && app.query_code ? `${window.location.origin}/#/track/${app.query_code}${token}` : null;
  mount(main, html`<h1 class="no-print">受理回执</h1>${staleNote(res)}
    <div class="receipt" id="receipt">
      ${trackUrl ? html`<div class="qr">${raw(qrSVG(trackUrl, { label: `查询码 ${app.query_code} 的进度查询二维码` }))}<br><span class="small">扫码查询进度、评价服务</span></div>` : ''}
      <h1>${official ? '办件回执' : '收件回执（预受理）'}</h1>
      <dl>
        <dt>${official ? '办件编号' : '本机收件编号'}</dt><dd>${official ? official.case.number : item.localNo}</dd>
        ${app ? html`<dt>查询码</dt><dd><strong style="font-size:1.3rem;letter-spacing:.15em">${app.query_code}</strong></dd>` : ''}
        <dt>办理事项</dt><dd>${app ? app.item_name : item.title.replace('办件申请 · ', '')}</dd>
        <dt>申请人</dt><dd>${app ? app.applicant.name : maskName(p.applicant.name)}</dd>
        <dt>身份证号</dt><dd>${app ? app.applicant.id_card : maskId(p.applicant.id_card)}</dd>
        <dt>联系电话</dt><dd>${app ? app.applicant.phone : maskPhone(p.applicant.phone)}</dd>
        <dt>收件时间</dt><dd>${fmtDateTime(content.fields.created_at_device)}</dd>
        <dt>收件人员</dt><dd>${receiver()}</dd>
        <dt>当前状态</dt><dd>${official ? official.case.state_label : '待上传至街道节点'}</dd>
        <dt>已收材料</dt><dd>${(p.materials || []).length ? html`<ul>${p.materials.map((m) => html`<li>${m.material}（${m.file_name}）</li>`)}</ul>` : '纸质材料以窗口登记为准'}</dd>
      </dl>
      <p class="small">${official
        ? '凭查询码和申请时登记的手机号码后四位，可在街道政务服务中心、社区服务站自助查询办理进度；扫描二维码可评价服务（二维码含评价码，请勿交给他人）。'
        : '本回执为预受理凭证。平板联网同步后生成正式办件编号和查询码，届时可重新打印正式回执。'}</p>
    </div>
    <div class="btn-row no-print">
      <button type="button" class="btn btn-primary" id="print">打印本回执</button>
      ${official ? html`<button type="button" class="btn" id="print-official">打印含评价码的正式回执</button>`
        : html`<button type="button" class="btn" id="sync-receipt">立即同步并刷新</button>`}
      <a class="btn" href="#/catalogue">继续收件</a>
    </div>
    <iframe id="official-frame" title="正式回执" class="visually-hidden" tabindex="-1"></iframe>`);
  $('#print', main).addEventListener('click', () => window.print());
  if (item.state !== 'acked') refreshWhenAcked(main, id);
  const sync = $('#sync-receipt', main);
  if (sync) sync.addEventListener('click', async () => { await syncNow(true); render(main, [id]); });
  const off = $('#print-official', main);
  if (off) {
    off.addEventListener('click', async () => {
      try {
        const resp = await request(`/receipt/${p.case_id}`, { raw: true });
        if (!resp.ok) throw new Error(`回执获取失败（${resp.status}）`);
        const frame = $('#official-frame', main);
        frame.srcdoc = await resp.text();
        frame.onload = () => frame.contentWindow.print();
      } catch (err) {
        toast(err.message || '需联网打印正式回执');
      }
    });
  }
}

// The issuing window: who received the application, at which unit (the provisional receipt is the
// resident's only proof until the official one is printed).
function receiver() {
  const u = state.user;
  if (!u) return '';
  return `${u.org_name || u.org_unit} ${u.role_label || ''} ${u.display_name}`;
}

// After an upload the receipt turns official by itself: re-render once this item is acknowledged,
// instead of showing 预受理 / 待上传 until someone presses 立即同步并刷新.
function refreshWhenAcked(main, id) {
  const shown = $('#receipt', main);
  let seenPending = state.pending;
  const stop = subscribe(async (s) => {
    if (!document.body.contains(shown)) { stop(); return; }
    if (s.pending === seenPending) return;
    seenPending = s.pending;
    const now = await getItem(id);
    if (now && now.state === 'acked' && document.body.contains(shown)) { stop(); render(main, [id]); }
  });
}
