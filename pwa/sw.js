// 街道通 service worker (pwa.md §1.3): precached, versioned shell; reference reads network-first
// with a cached fallback marked with its time; writes never cached (they go through the outbox).
// It never calls skipWaiting() by itself: the page asks for it only when no form is half-filled.

// BEGIN PRECACHE (written by `python -m tests.browser.stamp_pwa`; do not edit by hand)
const VERSION = '4ca905651dcd6975';
const PRECACHE = [
  '/css/app.css',
  '/data/incident_categories.json',
  '/data/service_items.json',
  '/data/tianhe_org.json',
  '/icons/icon-192.png',
  '/icons/icon-512.png',
  '/icons/icon.svg',
  '/index.html',
  '/js/actform.js',
  '/js/actions.js',
  '/js/app.js',
  '/js/canonical.js',
  '/js/caseview.js',
  '/js/chrome.js',
  '/js/crypto.js',
  '/js/data.js',
  '/js/db.js',
  '/js/device.js',
  '/js/duplicates.js',
  '/js/geo.js',
  '/js/kinds.js',
  '/js/net.js',
  '/js/outbox.js',
  '/js/photos.js',
  '/js/pull.js',
  '/js/qr.js',
  '/js/router.js',
  '/js/schemaform.js',
  '/js/screens/apply.js',
  '/js/screens/case.js',
  '/js/screens/catalogue.js',
  '/js/screens/device.js',
  '/js/screens/home.js',
  '/js/screens/kiosk.js',
  '/js/screens/lock.js',
  '/js/screens/login.js',
  '/js/screens/outbox.js',
  '/js/screens/patrol.js',
  '/js/screens/queue.js',
  '/js/screens/receipt.js',
  '/js/screens/report.js',
  '/js/screens/tasks.js',
  '/js/screens/work.js',
  '/js/session.js',
  '/js/state.js',
  '/js/ui.js',
  '/manifest.webmanifest',
  '/schemas/grid_event_payloads.json',
  '/schemas/incident_report.json',
  '/schemas/index.json',
  '/schemas/patrol_log.json',
  '/schemas/service_application.json',
  '/vendor/qrcode-generator-2.0.4.mjs',
];
// END PRECACHE

const SHELL_CACHE = `shell-${VERSION}`;
const REF_CACHE = 'reference-v1';

// Non-personal reference reads: catalogue, categories, calendar, schemas. Personal reads (tasks,
// cases, queue) are cached by the page in IndexedDB, encrypted, never here in clear.
const REFERENCE = [
  /^\/api\/v1\/hall\/catalogue/, /^\/api\/v1\/hall\/items/, /^\/api\/v1\/catalogue/, /^\/api\/v1\/services/,
  /^\/api\/v1\/grid\/categories/, /^\/api\/v1\/categories/, /^\/api\/v1\/calendar/, /^\/api\/v1\/schemas/,
];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    // cache: 'reload' bypasses the HTTP cache, so a new version never precaches an old file.
    await cache.addAll(PRECACHE.map((url) => new Request(url, { cache: 'reload' })));
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('shell-') && name !== SHELL_CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'SKIP_WAITING') self.skipWaiting();
  if (event.data && event.data.type === 'VERSION' && event.ports[0]) event.ports[0].postMessage(VERSION);
});

async function networkFirstReference(request) {
  const cache = await caches.open(REF_CACHE);
  try {
    const resp = await fetch(request);
    if (resp.ok) {
      const headers = new Headers(resp.headers);
      headers.set('X-SN-Cached-At', new Date().toISOString());
      const body = await resp.clone().arrayBuffer();
      await cache.put(request, new Response(body, { status: resp.status, statusText: resp.statusText, headers }));
    }
    return resp;
  } catch (err) {
    const hit = await cache.match(request);
    if (hit) {
      const headers = new Headers(hit.headers);
      headers.set('X-SN-Stale', '1'); // the page shows 「数据更新于 …」 from X-SN-Cached-At
      return new Response(await hit.arrayBuffer(), { status: 200, headers });
    }
    throw err;
  }
}

// Background Sync is a bonus where it exists (Chromium): the worker cannot read the encrypted
// outbox, so it wakes an open page, which uploads (pwa.md §1.1).
self.addEventListener('sync', (event) => {
  if (event.tag !== 'outbox') return;
  event.waitUntil((async () => {
    for (const client of await self.clients.matchAll({ type: 'window' })) client.postMessage({ type: 'SYNC' });
  })());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/sync/') || url.pathname.startsWith('/hub/')) {
    if (REFERENCE.some((re) => re.test(url.pathname))) event.respondWith(networkFirstReference(req));
    return; // everything else under the API goes straight to the network
  }
  if (req.mode === 'navigate') {
    // Any app URL opens the precached shell, online or not (field-tm#2497: no blank page offline).
    event.respondWith((async () => {
      const cache = await caches.open(SHELL_CACHE);
      return (await cache.match('/index.html')) || fetch(req);
    })());
    return;
  }
  event.respondWith((async () => {
    const cache = await caches.open(SHELL_CACHE);
    const hit = await cache.match(url.pathname);
    return hit || fetch(req);
  })());
});
