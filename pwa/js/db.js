// IndexedDB: the tablet's system of record until the node has acknowledged an item.
// Migrations are additive only (collect#6442: an upgrade must never drop finalized work),
// and nothing in this module deletes outbox rows on a timer.

export const DB_NAME = 'streetnode';
export const DB_VERSION = 1;

// Each entry upgrades from the previous version; never edit a shipped step, add a new one.
const MIGRATIONS = [
  (db) => {
    const outbox = db.createObjectStore('outbox', { keyPath: 'id' });
    outbox.createIndex('state', 'state');
    outbox.createIndex('userId', 'userId');
    db.createObjectStore('blobs', { keyPath: 'key' }); // `${userId}:${sha256}`, encrypted bytes
    db.createObjectStore('users', { keyPath: 'userId' });
    db.createObjectStore('cache', { keyPath: 'key' });
    db.createObjectStore('kv', { keyPath: 'k' });
  },
];

let dbPromise = null;

export function openDB() {
  if (dbPromise) return dbPromise;
  dbPromise = new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = (ev) => {
      const db = req.result;
      for (let v = ev.oldVersion; v < DB_VERSION; v++) MIGRATIONS[v](db, req.transaction);
    };
    req.onsuccess = () => {
      const db = req.result;
      // Another tab upgrading: close so it can proceed; this tab reloads into the new version.
      db.onversionchange = () => { db.close(); dbPromise = null; };
      resolve(db);
    };
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new Error('数据库被其他窗口占用，请关闭其他窗口后重试'));
  });
  return dbPromise;
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error('transaction aborted'));
  });
}

function reqP(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Run fn(stores) in one transaction; resolves with fn's result after the commit. */
export async function tx(names, mode, fn) {
  const db = await openDB();
  const t = db.transaction(names, mode);
  const stores = {};
  for (const n of [].concat(names)) stores[n] = t.objectStore(n);
  let result;
  try {
    result = await fn(stores, t);
  } catch (err) {
    try { t.abort(); } catch (_) { /* already finished */ }
    throw err;
  }
  await done(t);
  return result;
}

export const req = reqP;

export async function get(store, key) {
  return tx(store, 'readonly', (s) => reqP(s[store].get(key)));
}

export async function put(store, value) {
  return tx(store, 'readwrite', (s) => reqP(s[store].put(value)));
}

export async function del(store, key) {
  return tx(store, 'readwrite', (s) => reqP(s[store].delete(key)));
}

export async function all(store, index = null, query = undefined) {
  return tx(store, 'readonly', (s) => {
    const src = index ? s[store].index(index) : s[store];
    return reqP(src.getAll(query));
  });
}

export async function kvGet(k, fallback = null) {
  const row = await get('kv', k);
  return row ? row.v : fallback;
}

export async function kvSet(k, v) {
  return put('kv', { k, v });
}
