"""The printable receipt (办件回执): A5-friendly HTML with print CSS, an SVG QR code and the node's signature.

The QR code carries the PWA's tracking address with the receipt's rating token, so the resident
rates through their own channel (domain.md §4: never through the staff UI). The signature is the
node's Ed25519 signature over the canonical JSON stored at intake; Ed25519 is deterministic, so a
reprint shows the same signature.
"""

from __future__ import annotations

from html import escape
from typing import Any

import segno

_CSS = """
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", sans-serif; margin: 2rem;
       color: #111; }
.receipt { max-width: 40rem; margin: auto; border: 1px solid #333; padding: 1.5rem 2rem; }
h1 { text-align: center; font-size: 1.5rem; letter-spacing: .3em; margin: 0 0 .25rem; }
.issuer { text-align: center; margin: 0 0 1rem; }
.head { display: flex; gap: 1rem; align-items: flex-start; }
.head table { flex: 1; }
table { width: 100%; border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #555; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { width: 6.5em; background: #f2f2f2; font-weight: normal; }
.code { font-family: "DejaVu Sans Mono", monospace; font-size: 1.4rem; letter-spacing: .15em; }
.qr { flex: none; width: 34mm; text-align: center; font-size: .75rem; margin-top: .5rem; }
/* the SVG has a viewBox: it scales as a whole, so a CSS size never clips the code */
.qr svg { display: block; width: 34mm; height: 34mm; background: #fff; }
.note { font-size: .85rem; line-height: 1.6; margin: .4rem 0; }
ul.note { padding-left: 1.4em; }
.sig { font-family: "DejaVu Sans Mono", monospace; font-size: .65rem; word-break: break-all; color: #444; }
.actions { text-align: center; margin: 1rem; }
@media print {
  /* no page size: the receipt fits the paper in the tray, A4 or A5, on one sheet */
  @page { margin: 8mm; }
  body { margin: 0; font-size: 9pt; }
  .receipt { border: none; padding: 0; max-width: none; }
  h1 { font-size: 14pt; }
  .issuer { margin-bottom: 2mm; }
  th, td { padding: 1mm 1.5mm; }
  .code { font-size: 12pt; }
  .qr, .qr svg { width: 30mm; }
  .qr svg { height: 30mm; }
  .note { font-size: 8pt; line-height: 1.45; }
  .sig { font-size: 6pt; }
  .actions { display: none; }
  th { background: none; }
  .receipt { break-inside: avoid; }
}
"""


def qr_svg(text: str) -> str:
    """An inline SVG QR code (error correction M: survives a crease in the paper)."""
    # omitsize: no fixed width/height but a viewBox, so the print CSS scales the whole code; border 4
    # is the quiet zone ISO/IEC 18004 asks for, without which phone readers often fail.
    svg = segno.make(text, error="m").svg_inline(scale=4, border=4, omitsize=True, title="查询与评价二维码")
    return str(svg).replace("<svg ", '<svg role="img" aria-label="查询与评价二维码" ', 1)


def render_receipt(r: dict[str, Any]) -> str:
    e = {k: escape(str(v)) if v is not None else "" for k, v in r.items() if not isinstance(v, list | dict)}
    materials = "".join(
        f"<li>{escape(m['material'])}（{escape(m['file_name'])}）{'，原件已核验' if m.get('original_verified') else ''}"
        "</li>" for m in r.get("materials", [])
    ) or "<li>纸质材料以窗口登记为准</li>"
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>办件回执 {e['number']}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body><div class="receipt">
<h1>办件回执</h1><p class="issuer">{e['issuer']}</p>
<div class="head"><table>
<tr><th>办件编号</th><td>{e['number']}</td></tr>
<tr><th>查询码</th><td class="code">{e['query_code']}</td></tr>
<tr><th>办理事项</th><td>{e['item_name']}<br><small>{e['item_code']}</small></td></tr>
<tr><th>申请人</th><td>{e['applicant']}</td></tr>
<tr><th>接件时间</th><td>{e['received_at']}</td></tr>
<tr><th>接件窗口</th><td>{e['window']}</td></tr>
<tr><th>承诺时限</th><td>{e['promised']}</td></tr>
<tr><th>法定时限</th><td>{e['statutory']}</td></tr>
<tr><th>当前状态</th><td>{e['state_label']}</td></tr>
</table>
<div class="qr" data-track-url="{e['track_url']}">{qr_svg(r['track_url'])}扫码查询进度、评价服务</div></div>
<p>已收材料：</p><ul class="note">{materials}</ul>
<p class="note">凭查询码和申请时登记的手机号码后四位，可在街道政务服务中心或社区服务站查询办理进度。
自接件之日起 5 个工作日内未收到补正告知的，视为受理（《中华人民共和国行政许可法》第三十二条）。
评价码：<span class="sig">{e['rating_token']}</span>（请勿交给他人，工作人员不会向您索要）。
咨询电话 {e['phone']}，监督投诉电话 {e['complaint_phone']}。</p>
<p class="sig">节点 {e['node_id']} 签名（Ed25519，密钥 {e['key_id']}）：{e['signature']}</p>
</div>
<p class="actions"><button onclick="window.print()">打印回执</button></p>
</body></html>
"""
