// QR codes for receipts, drawn client-side so a receipt prints offline too.

import qrcode from '../vendor/qrcode-generator-2.0.4.mjs';

/** An SVG string for `text` (ASCII, e.g. the tracking URL) with an accessible label. */
export function qrSVG(text, { cell = 4, margin = 4, label = '二维码' } = {}) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const size = (n + margin * 2) * cell;
  let path = '';
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      if (qr.isDark(r, c)) path += `M${(c + margin) * cell},${(r + margin) * cell}h${cell}v${cell}h-${cell}z`;
    }
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${label}" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}">`
    + `<rect width="100%" height="100%" fill="#fff"/><path d="${path}" fill="#000"/></svg>`;
}
