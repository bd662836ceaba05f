// Boot: storage, service worker, session, sync loop, router.

import { openDB } from './db.js';
import { loadDeviceId } from './device.js';
import { itemContent, listItems, onConflicts, readBlob, refreshCounts } from './outbox.js';
import { ping } from './net.js';
import { activeUserRecord, startIdleWatch } from './session.js';
import { setState, state, subscribe } from './state.js';
import { renderChrome, renderBanners, showConflicts } from './chrome.js';
import { startRouter } from './router.js';
import { showLock } from './screens/lock.js';
import { applyUpdateWhenClean, setWaitingWorker, syncNow } from './actions.js';

const SYNC_INTERVAL_MS = 30000; // pwa.md §1.1: a 30–60 s timer while items are pending

function syncIntervalMs() {
  const s = Number(localStorage.getItem('sn.syncSeconds')); // a support setting, e.g. for a flaky LAN
  return s > 0 ? s * 1000 : SYNC_INTERVAL_MS;
}

async function requestPersistence() {
  // Without persistence the browser may evict the origin under storage pressure (pwa.md §1.2).
  let persisted = null;
  try {
    persisted = navigator.storage && navigator.storage.persisted ? await navigator.storage.persisted() : null;
    if (!persisted && navigator.storage && navigator.storage.persist) persisted = await navigator.storage.persist();
  } catch (_) { persisted = false; }
  let quotaLow = false;
  try {
    const est = navigator.storage && navigator.storage.estimate ? await navigator.storage.estimate() : null;
    if (est && est.quota && est.usage / est.quota > 0.8) quotaLow = true;
  } catch (_) { /* estimate unsupported */ }
  setState({ persisted, quotaLow });
}

// ---- service worker: an update never reloads a half-filled form (pwa.md §1.3) --------------------

let reloading = false;

function offerUpdate(worker) {
  setWaitingWorker(worker);
  setState({ updateWaiting: true });
  applyUpdateWhenClean();
}

async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  try {
    const reg = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
    if (reg.waiting && navigator.serviceWorker.controller) offerUpdate(reg.waiting);
    reg.addEventListener('updatefound', () => {
      const w = reg.installing;
      w.addEventListener('statechange', () => {
        if (w.state === 'installed' && navigator.serviceWorker.controller) offerUpdate(w);
      });
    });
    navigator.serviceWorker.addEventListener('message', (ev) => { if (ev.data && ev.data.type === 'SYNC') syncNow(); });
    navigator.serviceWorker.addEventListener('controllerchange', () => {
      if (reloading || !state.updateWaiting) return; // first install: nothing to reload
      reloading = true;
      window.location.reload();
    });
    setInterval(() => reg.update().catch(() => {}), 15 * 60 * 1000);
  } catch (err) {
    console.warn('service worker registration failed', err);
  }
}

// ---- sync triggers: start, reconnect, visible, timer, button, after each save --------------------

let syncTimer = null;
function startSyncLoop() {
  window.addEventListener('online', () => syncNow());
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') syncNow(); });
  clearInterval(syncTimer);
  syncTimer = setInterval(async () => {
    if (state.unlocked && (state.pending > 0 || state.reachable !== true)) await syncNow();
    else await ping();
  }, syncIntervalMs());
}

async function boot() {
  const large = localStorage.getItem('sn.largeFont') === '1';
  document.documentElement.classList.toggle('large', large);
  await openDB();
  await loadDeviceId();
  renderChrome();
  subscribe(() => { renderChrome(); renderBanners(); });
  onConflicts(showConflicts);
  registerServiceWorker();
  requestPersistence();
  startSyncLoop();
  startIdleWatch(() => showLock());
  await refreshCounts();
  ping();
  startRouter();
  const rec = await activeUserRecord();
  if (rec && !rec.loggedOut && !state.unlocked && !isPublicRoute()) showLock(rec);
}

function isPublicRoute() {
  return /^#\/(track|rate|login)/.test(window.location.hash || '');
}

// Read-only hooks for support staff and the browser tests (the data stays encrypted at rest).
window.streetnode = { state, syncNow, applyUpdateWhenClean, outbox: { list: listItems, content: itemContent, blob: readBlob } };
boot().catch((err) => {
  console.error(err);
  document.getElementById('main').textContent = `启动失败：${err.message}`;
});
