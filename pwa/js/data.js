// Reads for screens: network first, then the last copy kept on the tablet, marked with its time
// (pwa.md §1.3 「数据更新于 HH:mm」). Personal reads are cached encrypted under the user's data key.

import * as db from './db.js';
import { decryptJSON, encryptJSON } from './crypto.js';
import { NetworkError, api } from './net.js';
import { currentKey, currentUserId } from './session.js';
import { fmtTime, html } from './ui.js';

export async function cachedGet(path, { personal = false, auth = true, fallbackUrl = null } = {}) {
  const key = `${personal ? currentUserId() : 'public'}:${path}`;
  try {
    const data = await api.get(path, { auth });
    const at = new Date().toISOString();
    if (personal && currentKey()) await db.put('cache', { key, at, box: await encryptJSON(currentKey(), data) });
    else if (!personal) await db.put('cache', { key, at, data });
    return { data, at, stale: false };
  } catch (err) {
    if (!(err instanceof NetworkError) && !(err.status === 404 && fallbackUrl)) throw err;
    const row = await db.get('cache', key);
    if (row) {
      const data = row.box ? await decryptJSON(currentKey(), row.box) : row.data;
      return { data, at: row.at, stale: true };
    }
    if (fallbackUrl) {
      // Reference data shipped with the app (precached), for a tablet that has never reached the node.
      const resp = await fetch(fallbackUrl);
      if (resp.ok) return { data: await resp.json(), at: null, stale: true, builtin: true };
    }
    throw err;
  }
}

export function staleNote(r) {
  if (!r || !r.stale) return '';
  if (r.builtin) return html`<p class="stale" role="status">离线：显示的是应用内置的参考数据</p>`;
  return html`<p class="stale" role="status">离线：显示的是 ${fmtTime(r.at)} 更新的数据</p>`;
}
