// Tiny observable app state: the sync badge, the router and screens subscribe to it.

const listeners = new Set();

export const state = {
  reachable: null,      // null = unknown yet; navigator.onLine is not trusted (pwa.md rule 2)
  syncing: false,
  pending: 0,           // this user's finalized/uploading items
  othersPending: 0,     // other users' unsent items on this tablet (kept under their own keys)
  problems: 0,          // rejected or conflict items needing a person
  lastSync: null,       // ISO time of the last sync that reached the node
  user: null,           // {id, username, display_name, role, role_label, org_unit, org_path}
  unlocked: false,
  tokenExpired: false,
  updateWaiting: false,
  persisted: null,
};

export function setState(patch) {
  Object.assign(state, patch);
  for (const fn of listeners) {
    try { fn(state); } catch (err) { console.error(err); }
  }
}

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

// Half-filled forms: the service worker update waits while any is dirty (pwa.md §1.3).
const dirty = new Set();

export function setDirty(formKey, isDirty) {
  if (isDirty) dirty.add(formKey); else dirty.delete(formKey);
  setState({});
}

export function anyDirty() {
  return dirty.size > 0;
}

export function clearDirty() {
  dirty.clear();
}
