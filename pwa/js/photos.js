// Photos are compressed on the tablet (pwa.md §1.4): long edge ≤ 2048 px, JPEG re-encoded through a
// canvas, which drops every EXIF field (GPS, device serial) as OWASP ASVS 5.0 14.2.8 asks; the
// orientation is applied to the pixels first, so nothing depends on the dropped tag.

export const MAX_EDGE = 2048;
const QUALITY = 0.8;

export async function compressPhoto(file, maxEdge = MAX_EDGE) {
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  const scale = Math.min(1, maxEdge / Math.max(bitmap.width, bitmap.height));
  const w = Math.max(1, Math.round(bitmap.width * scale));
  const h = Math.max(1, Math.round(bitmap.height * scale));
  let blob;
  if (typeof OffscreenCanvas !== 'undefined') {
    const canvas = new OffscreenCanvas(w, h);
    canvas.getContext('2d').drawImage(bitmap, 0, 0, w, h);
    blob = await canvas.convertToBlob({ type: 'image/jpeg', quality: QUALITY });
  } else {
    const canvas = document.createElement('canvas');
    canvas.width = w; canvas.height = h;
    canvas.getContext('2d').drawImage(bitmap, 0, 0, w, h);
    blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', QUALITY));
  }
  bitmap.close();
  return { blob, width: w, height: h, size: blob.size, originalSize: file.size };
}

/** A file input that opens the rear camera on tablets and the file picker elsewhere. */
export function cameraInputHTML(id, label) {
  return `<span class="file-btn btn">${label}`
    + `<input type="file" id="${id}" accept="image/*" capture="environment" aria-label="${label}"></span>`;
}
