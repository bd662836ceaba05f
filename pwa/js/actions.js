// Actions shared by screens: sync now, what happens after an unlock, applying a waiting update.

import { drain, refreshCounts } from './outbox.js';
import { route } from './router.js';
import { anyDirty, state } from './state.js';

let waitingWorker = null;

export function setWaitingWorker(w) { waitingWorker = w; }

/** Activate a waiting service worker only when no form is half-filled; the page then reloads. */
export function applyUpdateWhenClean() {
  if (!waitingWorker || anyDirty()) return false;
  waitingWorker.postMessage({ type: 'SKIP_WAITING' });
  return true;
}

export async function syncNow(manual = false) {
  if (!state.unlocked) return null;
  return drain({ manual });
}

export async function afterUnlock() {
  await refreshCounts();
  route();
  syncNow();
}
